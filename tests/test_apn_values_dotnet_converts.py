"""The APN API (seed 003) takes a JSON value of another type where the seed's ASP.NET
service (Json.NET's JsonSerializer) converts it, stores it in the member's own type, and
refuses what that service refuses, with the member named: over real HTTP, read back by GET."""

from __future__ import annotations

import uuid

import pytest

from apiclient import Api
from apn_client import NS, ApnApi, apns_path, network_path
from test_apn_api import NETWORK, failed, ok, token


@pytest.fixture(scope="module")
def admin(module_daemon) -> Api:
    return Api(module_daemon.api_url, token(module_daemon, "ADMIN"))


@pytest.fixture
def acct() -> str:
    return f"ACME-{uuid.uuid4().hex[:10]}"


def _post_raw(api: ApnApi, path: str, text: str):
    return api.post(path, raw=text.encode())


def test_values_json_net_converts_are_taken_and_read_back_in_their_type(admin: Api, acct):
    """A client that works against the seed's service sends "BillingCycleDay": "7",
    "Enabled": "True", "LockIMEI": 1, a number for the CLI: all were 400 here."""
    api = ApnApi(admin, "json")
    path = apns_path(acct, NETWORK)
    # (by hand: a number keeps its text, 1.50 stays "1.50" in a string member)
    body = """{
        "CLI": 238010000000001, "SIMNumber": 89450012345678901234,
        "Description": 1.50, "FriendlyName": true, "SOC": 42,
        "Hints": {"BillingCycleDay": " +07 ", "EmailContact": "ops@example.com",
                  "TenantId": 17},
        "ProvisioningMetaData": {"rate": 12, "big": 1e3, "roaming": false, "none": null},
        "Enabled": "True", "LockIMEI": 1, "Version": "3", "Status": "0"
    }"""
    made = _post_raw(api, path, body)
    ok(made, 202)
    read = api.get(apns_path(acct, NETWORK, made.wrapper["Meta"]["Id"]))
    ok(read)
    data = read.data
    assert data["CLI"] == "238010000000001"  # an IMSI: its decimal digits
    assert data["SIMNumber"] == "89450012345678901234"
    assert (data["Description"], data["FriendlyName"], data["SOC"]) == ("1.50", "true", "42")
    assert data["Hints"] == {
        "BillingCycleDay": 7, "EmailContact": "ops@example.com", "TenantId": "17",
    }  # fmt: skip
    assert data["ProvisioningMetaData"] == {
        "rate": "12", "big": "1e3", "roaming": "false", "none": None,
    }  # fmt: skip
    assert data["Enabled"] is True and data["LockIMEI"] is True
    # (reported members: taken in their converted type, and ignored)
    assert (data["Version"], data["Status"]) == (1, 0)
    # the IMSI finds the device as a CLI typed as text does
    ok(api.get(apns_path(acct, NETWORK, "238010000000001")))
    # false the same ways: 0, 0.0, "false" in any case with blanks
    for n, (enabled, lock) in enumerate(((0, "FALSE"), (0.0, " false "), ("False", 0))):
        made = api.post(path, {"CLI": f"(+45)1111111{n}", "Enabled": enabled, "LockIMEI": lock})
        ok(made, 202)
        read = api.get(apns_path(acct, NETWORK, f"(+45)1111111{n}")).data
        assert (read["Enabled"], read["LockIMEI"]) == (False, False), (enabled, lock)
    # any number other than 0 is true (Convert.ToBoolean)
    made = api.post(path, {"CLI": "(+45)22222220", "Enabled": 2.5, "LockIMEI": -1})
    ok(made, 202)
    assert (made.data["Enabled"], made.data["LockIMEI"]) == (True, True)
    # the network's APN name, a string member too
    put = api.put(network_path(acct, NETWORK), {"APN": 5060})
    ok(put)
    assert api.get(network_path(acct, NETWORK)).data["APN"] == "5060"


@pytest.mark.parametrize(
    ("member", "value", "sub"),
    [
        # Json.NET: "Input string '1.0' is not a valid integer" (a number with a fraction)
        ("BillingCycleDay", 1.0, 3),
        ("BillingCycleDay", "1.5", 3),
        ("BillingCycleDay", "1e1", 3),
        ("BillingCycleDay", "", 3),
        ("BillingCycleDay", True, 3),
        ("BillingCycleDay", "2147483648", 3),  # beyond Int32
        ("BillingCycleDay", "٣", 3),  # a digit, not an ASCII one
        ("Enabled", "yes", 99),
        ("Enabled", "1", 99),  # Boolean.TryParse takes no "1"
        ("Enabled", "", 99),
        ("LockIMEI", "0", 99),
        ("LockIMEI", [1], 99),
        ("CLI", 4511113333, 1),  # its digits, which are no (+CC)NUMBER nor IMSI
        ("CLI", {"n": 1}, 1),
        ("Description", [1], 99),
        ("Version", 2.0, 99),
    ],
)
def test_values_json_net_refuses_are_still_400_naming_the_member(
    admin: Api, acct, member, value, sub
):
    api = ApnApi(admin, "json")
    body = {"CLI": "(+45)12345678", "Hints": {"BillingCycleDay": 5, "EmailContact": "a@b.example"}}
    if member == "BillingCycleDay":
        body["Hints"]["BillingCycleDay"] = value
    else:
        body[member] = value
    said = failed(api.post(apns_path(acct, NETWORK), body), 400, 4001, sub)
    assert member in said, said


def test_an_unknown_member_is_still_the_error_beside_a_converted_value(admin: Api, acct):
    api = ApnApi(admin, "json")
    body = {"CLI": "(+45)12345678", "Enabled": "True", "Colour": 1, "LockIMEI": "yes"}
    said = failed(api.post(apns_path(acct, NETWORK), body), 400, 4001, 98)
    assert "Colour" in said, said


def test_a_numeric_string_reads_as_the_same_int_in_json_and_xml(admin: Api, acct):
    """XML's Int32 text (XmlConvert.ToInt32) follows the same rules: leading zeros of
    any length are taken (they were refused past ten characters), beyond Int32 is not
    (it was taken)."""
    json_api, xml_api = ApnApi(admin, "json"), ApnApi(admin, "xml")
    hints = {"BillingCycleDay": "000000000009", "EmailContact": "a@b.example"}
    ok(json_api.post(apns_path(acct, NETWORK), {"CLI": "(+45)12345678", "Hints": hints}), 202)
    assert (
        json_api.get(apns_path(acct, NETWORK, "(+45)12345678")).data["Hints"]["BillingCycleDay"]
        == 9
    )
    other = acct + "-X"
    xml = (
        f'<APNDevice xmlns="{NS}"><CLI>(+45)12345678</CLI><Hints>'
        "<BillingCycleDay> 000000000009 </BillingCycleDay>"
        "<EmailContact>a@b.example</EmailContact></Hints></APNDevice>"
    )
    ok(xml_api.post(apns_path(other, NETWORK), raw=xml.encode()), 202)
    read = json_api.get(apns_path(other, NETWORK, "(+45)12345678")).data
    assert read["Hints"]["BillingCycleDay"] == 9
    # (Version: reported, so no rule of its own bounds it)
    too_big = xml.replace("</CLI>", "</CLI><Version>2147483648</Version>")
    said = failed(xml_api.post(apns_path(acct, NETWORK), raw=too_big.encode()), 400, 4001, 99)
    assert "Version" in said, said
    # XML reads as DataContractSerializer: "True" is no xsd:boolean there
    bad = f'<APNDevice xmlns="{NS}"><CLI>(+45)12345670</CLI><Enabled>True</Enabled></APNDevice>'
    failed(xml_api.post(apns_path(acct, NETWORK), raw=bad.encode()), 400, 4001, 99)
