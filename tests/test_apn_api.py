"""Seed 003, the Passbridge-style APN device API, over real HTTP in JSON and in DataContract
XML: the seed's samples field by field, every error in both formats, paging, removal,
networks with their APN name, and who may call."""

from __future__ import annotations

import copy
import json
import re
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
from lxml import etree

from apiclient import Api
from apn_client import (
    ARRAYS,
    JSON_DEVICE_ORDER,
    JSON_WRAPPER_ORDER,
    NS,
    WRAPPER_ORDER,
    XSI,
    ApnApi,
    answer,
    apns_path,
    as_xml_value,
    from_xml,
    network_path,
    to_xml,
)
from conftest import Daemon, start_daemon, write_config

NETWORK = "iot-fleet"
SIM = "89450012345678901234"  # an ICCID
DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}\+00:00")

# The seed's JSON request sample, with values that pass validation where the sample's
# "sample string N" cannot (CLI, SIMNumber, IPAddress, EmailContact).
SEED_JSON = {
    "CLI": "(+45)12345678",
    "SIMNumber": SIM,
    "SOC": "sample string 3",
    "InternalSOC": "sample string 4",
    "Description": "sample string 5",
    "IPAddress": "10.20.30.6",
    "StartDate": "2024-04-19T05:50:03.1147245+00:00",
    "EndDate": "2024-04-19T05:50:03.1147245+00:00",
    "FriendlyName": "sample string 8",
    "Hints": {
        "BillingCycleDay": 1, "EmailContact": "billing@example.com", "TenantId": "sample string 3",
    },
    "ProvisioningMetaData": {
        "sample string 1": "sample string 2", "sample string 3": "sample string 4",
    },
    "Status": 0,
    "Version": 9,
    "ActorStatus": 0,
    "NetworkStatus": 0,
    "Enabled": True,
    "LockIMEI": True,
    "IMEI": "sample string 12",
    "LastSync": "2024-04-19T05:50:03.1147245+00:00",
    "LastConnected_Start": "2024-04-19T05:50:03.1147245+00:00",
    "LastConnected_End": "2024-04-19T05:50:03.1147245+00:00",
    "LastConnected_MCC": "sample string 14",
    "LastConnected_MNC": "sample string 15",
}  # fmt: skip

# The seed's XML request sample, adapted the same way.
SEED_XML = b"""<APNDevice xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns="http://schemas.datacontract.org/2004/07/AS.Models.API">
  <ActorStatus>stable</ActorStatus>
  <CLI>(+45)87654321</CLI>
  <Description>sample string 5</Description>
  <Enabled>true</Enabled>
  <EndDate>2024-04-19T05:50:03.1147245+00:00</EndDate>
  <FriendlyName>sample string 8</FriendlyName>
  <Hints>
    <BillingCycleDay>1</BillingCycleDay>
    <EmailContact>billing@example.com</EmailContact>
    <TenantId>sample string 3</TenantId>
  </Hints>
  <IMEI>sample string 12</IMEI>
  <IPAddress>10.20.30.7</IPAddress>
  <InternalSOC>sample string 4</InternalSOC>
  <LastConnected_End>2024-04-19T05:50:03.1147245+00:00</LastConnected_End>
  <LastConnected_MCC>sample string 14</LastConnected_MCC>
  <LastConnected_MNC>sample string 15</LastConnected_MNC>
  <LastConnected_Start>2024-04-19T05:50:03.1147245+00:00</LastConnected_Start>
  <LastSync>2024-04-19T05:50:03.1147245+00:00</LastSync>
  <LockIMEI>true</LockIMEI>
  <NetworkStatus>disconnected</NetworkStatus>
  <ProvisioningMetaData xmlns:d2p1="http://schemas.microsoft.com/2003/10/Serialization/Arrays">
    <d2p1:KeyValueOfstringstring>
      <d2p1:Key>sample string 1</d2p1:Key>
      <d2p1:Value>sample string 2</d2p1:Value>
    </d2p1:KeyValueOfstringstring>
    <d2p1:KeyValueOfstringstring>
      <d2p1:Key>sample string 3</d2p1:Key>
      <d2p1:Value>sample string 4</d2p1:Value>
    </d2p1:KeyValueOfstringstring>
  </ProvisioningMetaData>
  <SIMNumber>89450012345678901299</SIMNumber>
  <SOC>sample string 3</SOC>
  <StartDate>2024-04-19T05:50:03.1147245+00:00</StartDate>
  <Status>pending</Status>
  <Version>9</Version>
</APNDevice>"""

#: the seed's XML response: the wrapper's members, then Data's, in document order
SEED_XML_DATA_ORDER = [
    "ActorStatus", "CLI", "Description", "Enabled", "EndDate", "FriendlyName", "Hints",
    "IMEI", "IPAddress", "InternalSOC", "LastConnected_End", "LastConnected_MCC",
    "LastConnected_MNC", "LastConnected_Start", "LastSync", "LockIMEI", "NetworkStatus",
    "ProvisioningMetaData", "SIMNumber", "SOC", "StartDate", "Status", "Version",
]  # fmt: skip
#: what the API keeps of a request (the rest it reports itself)
WRITABLE = [
    "CLI", "SIMNumber", "SOC", "InternalSOC", "Description", "IPAddress", "FriendlyName",
    "Hints", "ProvisioningMetaData", "Enabled", "LockIMEI",
]  # fmt: skip
REPORTED_FRESH = {
    "Status": 0, "Version": 1, "ActorStatus": 0, "NetworkStatus": 0, "IMEI": None,
    "LastConnected_MCC": None, "LastConnected_MNC": None,
}  # fmt: skip
#: the dates a new device has not got yet: left out of an answer, not null (a client typed
#: from the seed's sample reads DateTime, which takes no null; README, "The APN API")
UNSET_FRESH = ("EndDate", "LastSync", "LastConnected_Start", "LastConnected_End")


def token(daemon, role: str, *, customer: str | None = None, apn: str | None = None) -> str:
    args = ["token", "create", "--role", role, "--name", f"apn test {role}"]
    if customer:
        args += ["--customer", customer]
    if apn:
        args += ["--apn-account", apn]
    return daemon.cli(*args).stdout.strip()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory) -> Iterator[Daemon]:
    """One daemon for the module: every test works in an API account of its own."""
    folder = tmp_path_factory.mktemp("apn")
    started = start_daemon(write_config(folder), folder / "acsd.db")
    yield started
    started.stop()


@pytest.fixture(scope="module")
def admin(daemon) -> Api:
    return Api(daemon.api_url, token(daemon, "ADMIN"))


@pytest.fixture(scope="module")
def foreign_tokens(daemon) -> dict[str, str]:
    """Tokens that must not reach a test's account: an OWNER of another API account, and a
    customer's MANAGER (made once: tests only ever read with them)."""
    return {
        "other account": token(daemon, "OWNER", apn="SOMEONE-ELSE"),
        "manager": token(daemon, "MANAGER", apn="X"),
    }


@pytest.fixture
def acct() -> str:
    return f"ACME-{uuid.uuid4().hex[:10]}"


@pytest.fixture(params=["json", "xml"])
def fmt(request) -> str:
    return request.param


@pytest.fixture
def apn(admin: Api, fmt: str) -> ApnApi:
    return ApnApi(admin, fmt)


def device(cli: str, sim: str | None = None, **extra) -> dict:
    doc = {"CLI": cli, **extra}
    if sim:
        doc["SIMNumber"] = sim
    doc.setdefault("Hints", {"BillingCycleDay": 5, "EmailContact": "ops@example.com"})
    return doc


def ok(ans, status: int = 200) -> None:
    assert ans.status == status, (ans.status, ans.reply.raw[:600])
    assert ans.wrapper["Success"] is True
    assert ans.wrapper["Code"] == status
    assert (ans.wrapper["ErrorCode"], ans.wrapper["ErrorSubCode"]) == (0, 0)
    assert ans.wrapper["ErrorDescription"] is None


def failed(ans, status: int, code: int, sub: int | None = None) -> str:
    """The wrapper of an error: Success false, Code = HTTP status, no Data."""
    assert ans.status == status, (ans.status, ans.reply.raw[:600])
    w = ans.wrapper
    assert w["Success"] is False and w["Code"] == status, w
    assert w["ErrorCode"] == code, w
    if sub is not None:
        assert w["ErrorSubCode"] == sub, w
    assert w["Data"] is None and w["ErrorDescription"], w
    if ans.fmt == "xml":
        assert ans.order == WRAPPER_ORDER
    else:
        assert list(w) == JSON_WRAPPER_ORDER
    return w["ErrorDescription"]


# --- the seed's samples ----------------------------------------------------------------------


def test_seed_json_sample_request_and_response_field_by_field(admin: Api, daemon, acct):
    api = ApnApi(admin, "json")
    before = time.time()
    ans = api.post(apns_path(acct, NETWORK), SEED_JSON)
    ok(ans, 202)
    w = ans.wrapper
    assert list(w) == JSON_WRAPPER_ORDER
    assert ans.reply.headers["Content-Type"].startswith("application/json")
    assert w["ContinuationToken"] is None
    device_id = w["Meta"]["Id"]
    assert re.fullmatch(r"[0-9a-f]{24}", device_id)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1/operations/[0-9a-f]{24}", w["StatusUrl"])
    assert ans.reply.headers["Location"] == w["StatusUrl"]
    data = w["Data"]
    assert list(data) == [key for key in JSON_DEVICE_ORDER if key not in UNSET_FRESH]
    for key in WRITABLE:
        assert data[key] == SEED_JSON[key], key
    for key, value in REPORTED_FRESH.items():
        assert data[key] == value, key
    assert DATE.fullmatch(data["StartDate"])
    started = datetime.fromisoformat(data["StartDate"]).timestamp()
    assert before - 1 <= started <= time.time() + 1
    # The same device, read back by id and by CLI (in any notation).
    for ref in (device_id, "(+45)12345678", "4512345678"):
        again = api.get(apns_path(acct, NETWORK, ref))
        ok(again)
        assert again.data == data and again.wrapper["Meta"] == {"Id": device_id}
    # The StatusUrl reports the operation: complete, naming the device.
    path = "/" + w["StatusUrl"].split("/", 3)[3]
    status = api.get(path)
    ok(status)
    op = status.data
    assert op["Operation"] == "create" and op["Status"] == 1
    assert op["ResourceUrl"].endswith(apns_path(acct, NETWORK, device_id))
    assert DATE.fullmatch(op["Created"]) and DATE.fullmatch(op["Completed"])
    # text/json is JSON too, by Accept and by Content-Type.
    reply = admin.request(
        "POST", apns_path(acct, NETWORK), raw=json.dumps(device("(+45)22222222")).encode(),
        content_type="text/json; charset=utf-8",
    )  # fmt: skip
    assert reply.status == 202 and reply.headers["Content-Type"].startswith("text/json")
    actions = {e["action"] for e in admin.get("/audit").body["items"]}
    assert {"apn.account.create", "apn.device.create"} <= actions


def test_seed_xml_sample_request_and_response_field_by_field(admin: Api, acct):
    api = ApnApi(admin, "xml")
    ans = api.post(apns_path(acct, NETWORK), raw=SEED_XML)
    ok(ans, 202)
    assert ans.reply.headers["Content-Type"].startswith("application/xml")
    assert ans.root == "PBPRReturnOfAPNDevice7NMnQmOk"
    assert ans.order == WRAPPER_ORDER
    w = ans.wrapper
    assert w["ContinuationToken"] is None
    assert w["StatusUrl"].startswith("http://127.0.0.1:")
    assert set(w["Meta"]) == {"Id"}
    root = etree.fromstring(ans.reply.raw)
    assert root.nsmap == {None: NS, "i": XSI}
    data_el = root.find(f"{{{NS}}}Data")
    assert [etree.QName(c).localname for c in data_el] == [
        key for key in SEED_XML_DATA_ORDER if key not in UNSET_FRESH
    ]
    meta_el = root.find(f"{{{NS}}}Meta")
    assert meta_el.nsmap.get("d2p1") == ARRAYS
    metadata_el = data_el.find(f"{{{NS}}}ProvisioningMetaData")
    assert metadata_el.nsmap.get("d3p1") == ARRAYS  # one level deeper than Meta
    hints_el = data_el.find(f"{{{NS}}}Hints")
    assert [etree.QName(c).localname for c in hints_el] == [
        "BillingCycleDay", "EmailContact", "TenantId",
    ]  # fmt: skip
    data = ans.data
    sent = etree.fromstring(SEED_XML)
    for key in ("CLI", "Description", "FriendlyName", "IPAddress", "InternalSOC", "SIMNumber",
                "SOC", "Enabled", "LockIMEI"):  # fmt: skip
        assert data[key] == sent.find(f"{{{NS}}}{key}").text, key
    assert data["Hints"] == {
        "BillingCycleDay": "1",
        "EmailContact": "billing@example.com",
        "TenantId": "sample string 3",
    }
    assert data["ProvisioningMetaData"] == {
        "sample string 1": "sample string 2", "sample string 3": "sample string 4",
    }  # fmt: skip
    # Enums by name; what the API reports itself, as a new device has it.
    assert (data["ActorStatus"], data["NetworkStatus"], data["Status"]) == (
        "stable", "disconnected", "pending",
    )  # fmt: skip
    assert data["Version"] == "1"
    for key in ("IMEI", "LastConnected_MCC", "LastConnected_MNC"):
        assert data[key] is None, key
        assert data_el.find(f"{{{NS}}}{key}").get(f"{{{XSI}}}nil") == "true"
    for key in UNSET_FRESH:  # (as in JSON: left out)
        assert key not in data and data_el.find(f"{{{NS}}}{key}") is None, key
    assert DATE.fullmatch(data["StartDate"])
    # The same device in JSON (Accept decides), and in text/xml.
    path = apns_path(acct, NETWORK, w["Meta"]["Id"])
    as_json = answer(admin.get(path, headers={"Accept": "application/json"}), "json")
    ok(as_json)
    for key, value in as_json.data.items():
        assert as_xml_value(key, value) == data[key], key
    text_xml = admin.get(apns_path(acct, NETWORK, "(+45)87654321"), headers={"Accept": "text/xml"})
    assert text_xml.headers["Content-Type"].startswith("text/xml")
    assert from_xml(text_xml.raw)[2]["Data"] == data


def test_accept_chooses_the_format_and_json_is_the_default(admin: Api, acct):
    ok(ApnApi(admin, "json").post(apns_path(acct, NETWORK), device("(+45)33333333")), 202)
    path = apns_path(acct, NETWORK, "(+45)33333333")
    cases = {
        None: "application/json",
        "*/*": "application/json",
        "application/xml;q=0.9, application/json;q=0.5": "application/xml",
        "text/*": "text/json",
        "image/png": "application/json",
    }
    for accept, media in cases.items():
        reply = admin.get(path, headers={"Accept": accept} if accept else None)
        assert reply.status == 200 and reply.headers["Content-Type"].startswith(media), accept
    # A body in XML with Accept */* is answered in XML.
    reply = admin.request(
        "POST", apns_path(acct, NETWORK), raw=SEED_XML, content_type="text/xml",
        headers={"Accept": "*/*"},
    )  # fmt: skip
    assert reply.status == 202 and reply.headers["Content-Type"].startswith("text/xml")


# --- errors, in both formats -----------------------------------------------------------------


# the last: 14 digits, but not ASCII ones (.NET's \d would take them)
BAD_CLIS = ["12345678", "(+45)1234", "+4512345678", "1234567890123", "(+45)12345678\n",
            "".join(chr(0xFF10 + int(c)) for c in "45123456789012")]  # fmt: skip


@pytest.mark.parametrize("cli", BAD_CLIS)
def test_a_cli_outside_the_seed_pattern_is_400(apn: ApnApi, cli: str, acct):
    ans = apn.post(apns_path(acct, NETWORK), device(cli))
    assert "CLI" in failed(ans, 400, 4001, 1)


def test_the_cli_forms_the_pattern_allows(apn: ApnApi, acct):
    for cli in (
        "(+45)12345678",
        "(45)123456",
        "(++1)5551234567890123",
        "23801123456789",
        "2380112345678901",
    ):
        ok(apn.post(apns_path(acct, NETWORK), device(cli)), 202)


def test_unknown_account_without_hints_is_404_and_creates_nothing(apn: ApnApi, acct):
    body = {"CLI": "(+45)12345678"}
    ans = apn.post(apns_path("NOBODY", NETWORK), body)
    assert "Hints" in failed(ans, 404, 4041, 1)
    failed(apn.get(apns_path("NOBODY", NETWORK)), 404, 4041)
    # With the account in place, Hints are not needed.
    ok(apn.post(apns_path(acct, NETWORK), device("(+45)11111111")), 202)
    ok(apn.post(apns_path(acct, NETWORK), body), 202)


@pytest.mark.parametrize("day", [0, 32, -1])
def test_a_billing_cycle_day_outside_1_to_31_is_400(apn: ApnApi, day: int, acct):
    body = device("(+45)12345678", Hints={"BillingCycleDay": day, "EmailContact": "a@example.com"})
    ans = apn.post(apns_path(acct, NETWORK), body)
    assert "BillingCycleDay" in failed(ans, 400, 4001, 3)


@pytest.mark.parametrize("email", ["nobody", "a@b", "two@@example.com", "a b@example.com"])
def test_a_bad_email_contact_is_400(apn: ApnApi, email: str, acct):
    body = device("(+45)12345678", Hints={"BillingCycleDay": 1, "EmailContact": email})
    ans = apn.post(apns_path(acct, NETWORK), body)
    assert "EmailContact" in failed(ans, 400, 4001, 4)


def test_hints_that_cannot_create_the_account_are_400(apn: ApnApi, acct):
    ans = apn.post(apns_path(acct, NETWORK), device("(+45)12345678", Hints={"TenantId": "t"}))
    failed(ans, 400, 4001, 3)
    ans = apn.post(apns_path(acct, NETWORK), device("(+45)12345678", Hints={"BillingCycleDay": 2}))
    failed(ans, 400, 4001, 4)


def test_hints_are_not_checked_once_the_account_exists(apn: ApnApi, acct):
    """Seed 003: Hints only help create an account that does not exist. A client that
    sends them with every device (a .NET client: BillingCycleDay 0 when unset) was refused
    for an account it was not creating; the account keeps the Hints that created it."""
    ok(apn.post(apns_path(acct, NETWORK), device("(+45)11111111")), 202)
    ignored = [
        {"BillingCycleDay": 0, "EmailContact": ""},
        {"BillingCycleDay": 32, "EmailContact": "nobody", "TenantId": "t" * 200},
        {"TenantId": "t-2"},
    ]
    for n, hints in enumerate(ignored):
        ans = apn.post(apns_path(acct, NETWORK), device(f"(+45)2222222{n}", Hints=hints))
        ok(ans, 202)
        assert ans.data["Hints"] == apn.get(apns_path(acct, NETWORK, "(+45)11111111")).data["Hints"]
    # Their form is still the contract's: an unknown member or a day that is no number.
    bad = device("(+45)33333333", Hints={"BillingCycleDay": 1, "Colour": "red"})
    failed(apn.post(apns_path(acct, NETWORK), bad), 400, 4001, 98)


def test_a_duplicate_cli_in_the_network_is_409(apn: ApnApi, acct):
    made = apn.post(apns_path(acct, NETWORK), device("(+45)12345678", SIM))
    ok(made, 202)
    # the same number, written four ways: zeros before a country code are the
    # international call prefix, no part of the number
    for cli in ("(+45)12345678", "(45)12345678", "(0045)12345678", "(+045)12345678"):
        ans = apn.post(apns_path(acct, NETWORK), device(cli))
        assert "CLI" in failed(ans, 409, 4090, 1)
    found = apn.get(apns_path(acct, NETWORK, "(0045)12345678"))
    ok(found, 200)
    assert found.wrapper["Meta"]["Id"] == made.wrapper["Meta"]["Id"]


def test_a_sim_is_in_one_network_of_the_account(apn: ApnApi, acct):
    """The same SIM in two networks of one account: both devices took its router's
    reports, and its APN came from whichever was created first. It is a 409 naming the
    network that has it; once removed there, it may go to another."""
    first = apn.post(apns_path(acct, NETWORK), device("(+45)12345678", SIM))
    ok(first, 202)
    for body, sub in ((device("(45)12345678"), 1), (device("(+45)99999999", SIM), 2)):
        said = failed(apn.post(apns_path(acct, "other-net"), body), 409, 4090, sub)
        assert repr(NETWORK) in said, said
    failed(apn.get(apns_path(acct, "other-net")), 404, 4042)  # nothing half-made
    # Another account's device may name the same SIM: its routers are that account's.
    other = f"{acct}-B"
    ok(apn.post(apns_path(other, "other-net"), device("(+45)12345678", SIM)), 202)
    ok(apn.delete(apns_path(acct, NETWORK, first.wrapper["Meta"]["Id"])), 202)
    ok(apn.post(apns_path(acct, "other-net"), device("(+45)12345678", SIM)), 202)


def test_a_duplicate_sim_number_in_the_network_is_409(apn: ApnApi, acct):
    ok(apn.post(apns_path(acct, NETWORK), device("(+45)12345678", SIM)), 202)
    ans = apn.post(apns_path(acct, NETWORK), device("(+45)99999999", SIM))
    assert "SIMNumber" in failed(ans, 409, 4090, 2)


def test_optional_members_sent_empty_count_as_left_out(apn: ApnApi, acct):
    # A .NET client writes an empty string (XML: <SIMNumber/>) for a property it has no
    # value for; two devices without an ICCID are no duplicate.
    for cli in ("(+45)12345678", "(+45)12345679"):
        ans = apn.post(apns_path(acct, NETWORK), device(cli, SIMNumber="", IPAddress=" "))
        ok(ans, 202)
        assert ans.data["SIMNumber"] is None and ans.data["IPAddress"] is None
    bad = apn.post(apns_path(acct, NETWORK), device("(+45)12345670", "12"))
    assert "SIMNumber" in failed(bad, 400, 4001, 2)


def test_an_unknown_device_is_404(apn: ApnApi, acct):
    ok(apn.post(apns_path(acct, NETWORK), device("(+45)12345678")), 202)
    for ref in ("0123456789abcdef01234567", "(+45)00000000", "nonsense"):
        failed(apn.get(apns_path(acct, NETWORK, ref)), 404, 4043)
        failed(apn.delete(apns_path(acct, NETWORK, ref)), 404, 4043)
    # A device is found only in its own network.
    ok(apn.post(apns_path(acct, "other-net"), device("(+45)22345678")), 202)
    failed(apn.get(apns_path(acct, "other-net", "(+45)12345678")), 404, 4043)
    # a network that is not there is said so (4042), as the list says it
    failed(apn.get(apns_path(acct, "no-such-net", "(+45)12345678")), 404, 4042)
    failed(apn.get(apns_path(acct, "no-such-net")), 404, 4042)
    failed(apn.get("/v1/operations/0123456789abcdef01234567"), 404, 4044)


def test_digits_alone_are_an_imsi_from_14_to_16_and_an_msisdn_otherwise(apn: ApnApi, acct):
    # The seed's CLI pattern reads 14-16 digits alone as an IMSI: an MSISDN of that many
    # digits in international form is not found by them, and the 404 says why.
    long = apn.post(apns_path(acct, NETWORK), device("(+45)123456789012"))
    ok(long, 202)
    said = failed(apn.get(apns_path(acct, NETWORK, "45123456789012")), 404, 4043)
    assert "IMSI" in said and "(+CC)NUMBER" in said, said
    ok(apn.get(apns_path(acct, NETWORK, "(+45)123456789012")))
    # after a +, as E.164 writes a number, any count of digits is an MSISDN (no IMSI has one)
    e164 = apn.get(apns_path(acct, NETWORK, "+45123456789012"))
    ok(e164)
    assert e164.wrapper["Meta"]["Id"] == long.wrapper["Meta"]["Id"]
    imsi = apn.post(apns_path(acct, NETWORK), device("238010000000001"))
    ok(imsi, 202)
    found = apn.get(apns_path(acct, NETWORK, "238010000000001"))
    ok(found)
    assert found.wrapper["Meta"]["Id"] == imsi.wrapper["Meta"]["Id"]
    # Fewer digits (acsd's extension): the MSISDN in international form, 00 or not.
    short = apn.post(apns_path(acct, NETWORK), device("(+45)12345678"))
    ok(short, 202)
    for ref in ("4512345678", "004512345678", "+4512345678"):
        found = apn.get(apns_path(acct, NETWORK, ref))
        ok(found)
        assert found.wrapper["Meta"]["Id"] == short.wrapper["Meta"]["Id"], ref
    said = failed(apn.get(apns_path(acct, NETWORK, "4599999999")), 404, 4043)
    assert "IMSI" not in said, said
    for ref in ("+", "++4512345678", "+45 12345678", "+(45)12345678"):
        failed(apn.get(apns_path(acct, NETWORK, ref)), 404, 4043)


def test_ids_are_taken_in_any_case(apn: ApnApi, acct):
    accepted = apn.post(apns_path(acct, NETWORK), device("(+45)12345678"))
    ok(accepted, 202)
    status_url = accepted.reply.headers["Location"]
    op_id = status_url.rstrip("/").rsplit("/", 1)[1]
    ok(apn.get(f"/v1/operations/{op_id.upper()}"))
    device_id = accepted.wrapper["Meta"]["Id"]
    assert device_id == device_id.lower()
    found = apn.get(apns_path(acct, NETWORK, device_id.upper()))
    ok(found)
    assert found.wrapper["Meta"]["Id"] == device_id


def test_a_token_of_another_account_is_403(apn: ApnApi, foreign_tokens, acct):
    ok(apn.post(apns_path(acct, NETWORK), device("(+45)12345678")), 202)
    other = apn.as_(foreign_tokens["other account"])
    failed(other.post(apns_path(acct, NETWORK), device("(+45)22345678")), 403, 4030)
    failed(other.get(apns_path(acct, NETWORK)), 403, 4030)
    failed(other.get(apns_path(acct, NETWORK, "(+45)12345678")), 403, 4030)
    failed(other.delete(apns_path(acct, NETWORK, "(+45)12345678")), 403, 4030)
    failed(
        other.put(network_path(acct, NETWORK), {"APN": "x.example"}, root="AccountNetwork"),
        403,
        4030,
    )
    # A customer's token without an APN account may not either; no token at all is 401.
    world_token = foreign_tokens["manager"]
    failed(apn.as_(world_token).get(apns_path(acct, NETWORK)), 403, 4030)
    failed(apn.as_(None).get(apns_path(acct, NETWORK)), 401, 4010)
    failed(apn.as_("acsd_not-a-token").get(apns_path(acct, NETWORK)), 401, 4010)


def test_malformed_bodies_are_400(apn: ApnApi, acct):
    path = apns_path(acct, NETWORK)
    if apn.fmt == "json":
        bad = [b'{"CLI": "(+45)12345678",', b"[1, 2]", b'{"CLI": "x", "CLI": "y"}', b"\xff\xfe"]
        sub = 1
    else:
        bad = [
            b"<APNDevice xmlns='" + NS.encode() + b"'><CLI>(+45)12345678</CLI>",
            b"<APNDevice><CLI>(+45)12345678</CLI></APNDevice>",  # not in the contract namespace
            b"<Device xmlns='" + NS.encode() + b"'/>",
            b'<!DOCTYPE x [<!ENTITY e "boom">]><APNDevice xmlns="' + NS.encode() + b'"/>',
        ]
        sub = 2
    for raw in bad:
        failed(apn.post(path, raw=raw), 400, 4000, sub)
    failed(apn.post(path, raw=b"  "), 400, 4000, 3)


def test_json_member_names_match_in_any_case(admin: Api, acct):
    """The seed's API reads JSON with Json.NET, which matches member names in any case: a
    client that writes camelCase (cli, simNumber, hints) was refused with 400 unknown
    member. Two spellings of one member are one member given twice."""
    api = ApnApi(admin, "json")
    body = {
        "cli": "(+45)12345678", "simNumber": SIM, "friendlyname": "van 7",
        "hints": {"billingCycleDay": 5, "EMAILCONTACT": "ops@example.com"},
        "ProvisioningMetaData": {"costCentre": "A1"},
    }  # fmt: skip
    ans = api.post(apns_path(acct, NETWORK), body)
    ok(ans, 202)
    assert (ans.data["CLI"], ans.data["SIMNumber"], ans.data["FriendlyName"]) == (
        "(+45)12345678", SIM, "van 7",
    )  # fmt: skip
    assert ans.data["Hints"]["BillingCycleDay"] == 5
    assert ans.data["ProvisioningMetaData"] == {"costCentre": "A1"}  # its keys are data
    twice = {"CLI": "(+45)12345679", "cli": "(+45)12345670"}
    assert "given more than once" in failed(api.post(apns_path(acct, NETWORK), twice), 400, 4001, 1)
    put = api.put(network_path(acct, NETWORK), {"apn": "iot.example"})
    ok(put)
    assert put.data["APN"] == "iot.example"


def test_wrong_types_and_unknown_members_are_400(apn: ApnApi, acct):
    path = apns_path(acct, NETWORK)
    if apn.fmt == "json":
        cases = [
            ({**device("(+45)12345678"), "Enabled": "yes"}, 99),
            ({**device("(+45)12345678"), "Colour": "red"}, 98),
            ({"SIMNumber": SIM}, 1),
            (device("(+45)12345678", "1234"), 2),
            (device("(+45)12345678", IPAddress="10.0.0.300"), 6),
            # a scope id is free text to ipaddress: it was stored unbounded, or with control
            # characters an XML answer cannot carry (now no scope id is taken at all)
            (device("(+45)12345678", IPAddress="fe80::1%" + "A" * 900), 6),
            (device("(+45)12345678", IPAddress="fe80::1%\u0001<x>"), 6),
            # no address the APN's core gives a SIM
            *(
                (device("(+45)12345678", IPAddress=ip), 6)
                for ip in (
                    "0.0.0.0",
                    "127.0.0.1",
                    "224.0.0.1",
                    "255.255.255.255",
                    "169.254.1.1",
                    "::",
                    "::1",
                    "fe80::1",
                    "ff02::1",
                    "::ffff:127.0.0.1",
                )
            ),
            (
                {
                    **device("(+45)12345678"),
                    "Hints": {"BillingCycleDay": 1, "EmailContact": "a\u0001b@x.example"},
                },
                4,
            ),
            (device("(+45)12345678", Status=7), 99),
        ]
        for body, sub in cases:
            failed(apn.post(path, body), 400, 4001, sub)
    else:
        base = '<APNDevice xmlns="' + NS + '"><CLI>(+45)12345678</CLI>{}</APNDevice>'
        hints = (
            "<Hints><BillingCycleDay>1</BillingCycleDay>"
            "<EmailContact>a@example.com</EmailContact></Hints>"
        )
        cases = [
            ("<Enabled>yes</Enabled>", 99),
            ("<Colour>red</Colour>", 98),
            ("<Status>bogus</Status>", 99),
            ("<Hints><BillingCycleDay>first</BillingCycleDay></Hints>", 3),
            ("<Version>9</Version><Version>9</Version>", 99),
            (hints + "<IPAddress>nowhere</IPAddress>", 6),
        ]
        for inner, sub in cases:
            failed(apn.post(path, raw=base.format(inner).encode()), 400, 4001, sub)


def test_other_content_types_are_415_and_unknown_routes_answer_in_the_wrapper(admin: Api, acct):
    path = apns_path(acct, NETWORK)
    reply = admin.request(
        "POST", path, raw=b"CLI=1", content_type="application/x-www-form-urlencoded"
    )
    assert answer(reply, "json").wrapper["ErrorCode"] == 4150 and reply.status == 415
    said = answer(reply, "json").wrapper["ErrorDescription"]
    assert "-H 'Content-Type: application/json'" in said, said
    ans = answer(
        admin.get("/v1/accounts/x/nothing-here", headers={"Accept": "application/xml"}), "xml"
    )
    failed(ans, 404, 4040)
    reply = admin.request("PATCH", path, raw=b"{}", content_type="application/json")
    failed(answer(reply, "json"), 405, 4050)
    assert "POST" in reply.headers["Allow"]
    # a method a network or an operation does not take: in their own wrapper, which a
    # client typed for them reads (the device's made its DataContractSerializer throw)
    xml = {"Accept": "application/xml"}
    network = path.removesuffix("/devices/apns")
    operation = "/v1/operations/" + "0" * 24
    for where, root in (
        (network, "PBPRReturnOfAccountNetwork7NMnQmOk"),
        (operation, "PBPRReturnOfOperationStatus7NMnQmOk"),
        (path, "PBPRReturnOfArrayOfAPNDevice7NMnQmOk"),  # (the list: GET answers so)
    ):
        ans = answer(admin.request("DELETE", where, headers=xml), "xml")
        failed(ans, 405, 4050)
        assert ans.root == root, (where, ans.root)
    reply = admin.request(
        "POST", path, raw=b"x" * (1024 * 1024 + 10), content_type="application/json"
    )
    failed(answer(reply, "json"), 413, 4130)


# --- lists, removal, networks ----------------------------------------------------------------


def test_the_list_pages_with_a_continuation_token(apn: ApnApi, acct):
    clis = [f"(+45)1000000{n}" for n in range(5)]
    for cli in clis:
        ok(apn.post(apns_path(acct, NETWORK), device(cli)), 202)
    ok(apn.post(apns_path(acct, "elsewhere"), device("(+45)55555555")), 202)
    seen, token_, pages = [], None, 0
    while True:
        query = {"PageSize": 2, **({"ContinuationToken": token_} if token_ else {})}
        page = apn.get(apns_path(acct, NETWORK), query=query)
        ok(page)
        if apn.fmt == "xml":
            assert page.root == "PBPRReturnOfArrayOfAPNDevice7NMnQmOk"
        assert len(page.data) <= 2
        seen += [d["CLI"] for d in page.data]
        pages += 1
        token_ = page.wrapper["ContinuationToken"]
        if not token_:
            break
    assert seen == clis and pages == 3
    everything = apn.get(apns_path(acct, NETWORK), query={"pagesize": 1000})
    assert [d["CLI"] for d in everything.data] == clis
    assert everything.wrapper["ContinuationToken"] is None
    failed(apn.get(apns_path(acct, NETWORK), query={"ContinuationToken": "!!"}), 400, 4001, 9)
    # a token of this list is not one of another network's: refused, not an empty page
    first = apn.get(apns_path(acct, NETWORK), query={"PageSize": 2}).wrapper["ContinuationToken"]
    elsewhere = apn.get(apns_path(acct, "elsewhere"), query={"ContinuationToken": first})
    failed(elsewhere, 400, 4001, 9)
    failed(apn.get(apns_path(acct, NETWORK), query={"PageSize": 0}), 400, 4001, 10)
    # more digits than int() takes was a 500; leading zeros still make a number
    failed(apn.get(apns_path(acct, NETWORK), query={"PageSize": "9" * 4301}), 400, 4001, 10)
    assert apn.get(apns_path(acct, NETWORK), query={"PageSize": "0" * 4301 + "2"}).status == 200
    failed(apn.get(apns_path(acct, NETWORK), query={"Sort": "CLI"}), 400, 4001, 98)
    failed(apn.get(apns_path(acct, "no-such-network")), 404, 4042)
    # a query template's empty values are left out, as the empty token always was
    empty = {"PageSize": "", "ContinuationToken": "", "IncludeEnded": ""}
    listed = apn.get(apns_path(acct, NETWORK), query=empty)
    ok(listed)
    assert [d["CLI"] for d in listed.data] == clis
    failed(apn.get(apns_path(acct, NETWORK) + "?PageSize=&PageSize=2"), 400, 4001, 10)


def test_delete_sets_the_end_date_and_frees_the_cli(apn: ApnApi, acct):
    created = apn.post(apns_path(acct, NETWORK), device("(+45)12345678", SIM))
    device_id = created.wrapper["Meta"]["Id"]
    gone = apn.delete(apns_path(acct, NETWORK, device_id))
    ok(gone, 202)
    assert gone.wrapper["StatusUrl"] and gone.wrapper["StatusUrl"] != created.wrapper["StatusUrl"]
    data = apn.get(apns_path(acct, NETWORK, device_id)).data
    assert data["EndDate"] and DATE.fullmatch(data["EndDate"])
    assert str(data["Status"]) in ("3", "deleted") and str(data["Version"]) == "2"
    status = apn.get("/" + gone.wrapper["StatusUrl"].split("/", 3)[3]).data
    assert status["Operation"] == "delete" and str(status["Status"]) in ("1", "complete")
    # Removing it again changes nothing.
    again = apn.delete(apns_path(acct, NETWORK, device_id))
    ok(again, 200)
    assert again.data["EndDate"] == data["EndDate"]
    assert apn.get(apns_path(acct, NETWORK)).data == []
    listed = apn.get(apns_path(acct, NETWORK), query={"IncludeEnded": "true"}).data
    assert [d["CLI"] for d in listed] == ["(+45)12345678"]
    # The CLI and SIM can be used again; by CLI the active device is found.
    new = apn.post(apns_path(acct, NETWORK), device("(+45)12345678", SIM))
    ok(new, 202)
    by_cli = apn.get(apns_path(acct, NETWORK, "(+45)12345678"))
    assert by_cli.wrapper["Meta"]["Id"] == new.wrapper["Meta"]["Id"]


def test_dates_never_set_are_left_out_in_both_formats(apn: ApnApi, acct):
    # (null, or XML's i:nil, is no DateTime: a .NET client typed from the seed's sample
    # throws on it, while a member left out reads as its default)
    created = apn.post(apns_path(acct, NETWORK), device("(+45)12345670", SIM))
    ok(created, 202)
    device_id = created.wrapper["Meta"]["Id"]
    one = apn.get(apns_path(acct, NETWORK, device_id)).data
    listed = apn.get(apns_path(acct, NETWORK)).data
    for data in (created.data, one, *listed):
        assert DATE.fullmatch(data["StartDate"])
        assert not set(UNSET_FRESH) & set(data), data
        # (other members nobody set yet are null as before: a string is a .NET reference)
        assert data["IMEI"] is None and data["LastConnected_MCC"] is None
    raw = apn.get(apns_path(acct, NETWORK, device_id)).reply.raw
    assert b"EndDate" not in raw and b"LastSync" not in raw
    gone = apn.delete(apns_path(acct, NETWORK, device_id)).data
    assert DATE.fullmatch(gone["EndDate"]) and "LastSync" not in gone
    ended = apn.get(apns_path(acct, NETWORK), query={"IncludeEnded": "true"}).data
    assert [d["EndDate"] for d in ended] == [gone["EndDate"]]


def test_parallel_deletes_end_the_device_once_and_every_status_url_answers(apn: ApnApi, acct):
    created = apn.post(apns_path(acct, NETWORK), device("(+45)12345679", SIM))
    device_id = created.wrapper["Meta"]["Id"]
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda _: apn.delete(apns_path(acct, NETWORK, device_id)),
                                range(10)))  # fmt: skip
    # One of them removed it (202 and an operation); the others found it removed (200),
    # and no answer points at an operation that does not exist.
    assert sorted(a.status for a in answers).count(202) == 1, [a.status for a in answers]
    assert all(a.status in (200, 202) for a in answers)
    for a in answers:
        assert a.data["EndDate"]
        url = a.wrapper.get("StatusUrl")
        assert (url is not None) == (a.status == 202)
        if url:
            status = apn.get("/" + url.split("/", 3)[3])
            ok(status, 200)
            assert status.data["Operation"] == "delete"


def test_a_network_gets_its_apn_name(apn: ApnApi, acct):
    failed(
        apn.put(network_path(acct, NETWORK), {"APN": "iot.example"}, root="AccountNetwork"),
        404,
        4041,
    )
    ok(apn.post(apns_path(acct, NETWORK), device("(+45)12345678")), 202)
    got = apn.get(network_path(acct, NETWORK))
    ok(got)
    assert got.data == {"ForeignKey": NETWORK, "APN": None}
    put = apn.put(
        network_path(acct, NETWORK), {"APN": "iot.acsd-test.example"}, root="AccountNetwork"
    )
    ok(put)
    if apn.fmt == "xml":
        assert put.root == "PBPRReturnOfAccountNetwork7NMnQmOk"
    assert put.data == {"ForeignKey": NETWORK, "APN": "iot.acsd-test.example"}
    assert apn.get(network_path(acct, NETWORK)).data["APN"] == "iot.acsd-test.example"
    # A network that does not exist yet is created by PUT.
    ok(apn.put(network_path(acct, "new-net"), {"APN": "m2m"}, root="AccountNetwork"))
    ok(apn.put(network_path(acct, "new-net"), {"APN": "a" * 63}, root="AccountNetwork"))
    ok(
        apn.put(
            network_path(acct, "new-net"), {"APN": "a" * 31 + "." + "b" * 32}, root="AccountNetwork"
        )
    )
    # (65 characters: more than a router's TR-181 APN parameter holds, string(64); a label
    # of 64: more than a DNS label, which the network's resolver refuses)
    for bad in ("", "bad name", "-x.example", "a" * 101, "a" * 65, "a" * 64):
        ans = apn.put(network_path(acct, NETWORK), {"APN": bad}, root="AccountNetwork")
        failed(ans, 400, 4001, 8)
    ans = apn.put(
        network_path(acct, NETWORK), {"ForeignKey": "other", "APN": "m2m"}, root="AccountNetwork"
    )
    failed(ans, 400, 4001)
    failed(apn.get(network_path(acct, "unknown")), 404, 4042)


# --- who may call ----------------------------------------------------------------------------


def test_a_token_scoped_to_the_account_manages_it_and_nothing_else(admin: Api, daemon, acct):
    scoped = ApnApi(Api(daemon.api_url, token(daemon, "OWNER", apn=acct)), "json")
    ok(scoped.post(apns_path(acct, NETWORK), device("(+45)12345678")), 202)
    listed = scoped.get(apns_path(acct, NETWORK))
    ok(listed)
    assert [d["CLI"] for d in listed.data] == ["(+45)12345678"]
    ok(scoped.get(network_path(acct, NETWORK)))
    status_url = scoped.post(apns_path(acct, NETWORK), device("(+45)22345678")).wrapper["StatusUrl"]
    ok(scoped.get("/" + status_url.split("/", 3)[3]))
    failed(scoped.post(apns_path(acct + "-other", NETWORK), device("(+45)12345678")), 403, 4030)
    # Its account's operations only.
    other_op = ApnApi(admin, "json").post(
        apns_path(acct + "-other", NETWORK), device("(+45)12345678")
    )
    # (another account's operation is no operation for it: a 403 named the account)
    answer = scoped.get("/" + other_op.wrapper["StatusUrl"].split("/", 3)[3])
    failed(answer, 404, 4044)
    assert acct + "-other" not in answer.reply.raw.decode()
    # It sees no customer's records through the rest of the API.
    assert scoped.api.get("/network/device").body["items"] == []
    assert scoped.api.get("/customer").status in (200, 403)
    listing = daemon.cli("token", "list").stdout
    assert f"apn:{acct}" in listing


def test_token_create_refuses_an_apn_scope_that_makes_no_sense(daemon):
    bad = daemon.cli("token", "create", "--role", "ADMIN", "--apn-account", "X", check=False)
    assert bad.returncode != 0 and "ADMIN" in bad.stderr
    bad = daemon.cli("token", "create", "--role", "RESELLER", "--apn-account", "X", check=False)
    assert bad.returncode != 0 and "customer" in bad.stderr
    bad = daemon.cli("token", "create", "--role", "OWNER", "--apn-account", "a/b", check=False)
    assert bad.returncode != 0


def test_an_account_key_no_token_could_be_scoped_to_is_refused(apn: ApnApi):
    # The API made an account " " that `token create --apn-account` refuses: one rule
    # for both now.
    for key in ("%20", "%20%20", "x%09y"):
        ans = apn.post(
            f"/v1/accounts/{key}/networks/{NETWORK}/devices/apns", device("(+45)12345678")
        )
        assert "foreignaccountkey" in failed(ans, 400, 4001)
    ans = apn.post("/v1/accounts/fine/networks/%20/devices/apns", device("(+45)12345678"))
    assert "foreignkey" in failed(ans, 400, 4001)


def test_every_write_is_audited_with_before_and_after(admin: Api, acct):
    api = ApnApi(admin, "json")
    created = api.post(apns_path(acct, NETWORK), copy.deepcopy(SEED_JSON))
    device_id = created.wrapper["Meta"]["Id"]
    api.delete(apns_path(acct, NETWORK, device_id))
    api.put(network_path(acct, NETWORK), {"APN": "m2m.example"})
    mine = {acct, f"{acct}/{NETWORK}", device_id}
    entries = [e for e in admin.get("/audit").body["items"] if e.get("resourceId") in mine]
    by_action = {e["action"]: e for e in entries}
    assert by_action["apn.device.create"]["resourceId"] == device_id
    assert by_action["apn.device.create"]["after"]["CLI"] == "(+45)12345678"
    assert by_action["apn.device.delete"]["before"]["EndDate"] is None
    assert by_action["apn.device.delete"]["after"]["EndDate"]
    assert by_action["apn.account.create"]["after"]["EmailContact"] == "billing@example.com"
    assert by_action["apn.network.update"]["after"]["APN"] == "m2m.example"


def test_text_xml_cannot_carry_is_refused_and_never_breaks_an_xml_answer(admin: Api, acct):
    # U+FFFF has no control-character category, but XML 1.0 cannot carry it: stored, it
    # made every XML read of the network answer 500.
    path = apns_path(acct, NETWORK)
    json_api, xml_api = ApnApi(admin, "json"), ApnApi(admin, "xml")
    for name in ("Description", "FriendlyName"):
        failed(json_api.post(path, device("(+45)12345678", **{name: "a\uffffb"})), 400, 4001)
    # an error that quotes a client's key XML cannot carry is still written in the wrapper
    raw = json.dumps({**device("(+45)12345678"), "\u0001x": "a"}).encode()
    accept_xml = {"Accept": "application/xml"}
    reply = admin.request(
        "POST", path, raw=raw, content_type="application/json", headers=accept_xml
    )
    text = failed(answer(reply, "xml"), 400, 4001)
    assert "\ufffdx" in text
    ok(json_api.post(path, device("(+45)12345678")), 202)
    assert len(xml_api.get(path).data) == 1
    failed(xml_api.get(path, query={"PageSize": "\u00b2"}), 400, 4001, 10)
    failed(xml_api.get(path, query={"PageSize": "\uff11\uff10"}), 400, 4001, 10)


def test_a_body_that_does_not_inflate_is_400(apn: ApnApi, acct):
    gzip = {"Content-Encoding": "gzip"}
    failed(apn.post(apns_path(acct, NETWORK), raw=b"not gzip", headers=gzip), 400, 4000)
    # gzip is inflated; an encoding acsd does not inflate is 415 in the wrapper, not
    # aiohttp's bare text/plain 400
    import gzip as gz

    doc = device("(+45)12345679")
    body = json.dumps(doc).encode() if apn.fmt == "json" else to_xml(doc, "APNDevice")
    ok(apn.post(apns_path(acct, NETWORK), raw=gz.compress(body), headers=gzip), 202)
    for encoding in ("br", "zstd"):
        reply = apn.post(apns_path(acct, NETWORK), raw=body, headers={"Content-Encoding": encoding})
        assert encoding in failed(reply, 415, 4150)


def test_public_url_is_the_base_of_status_urls_whatever_the_host_header(daemon_factory):
    # Behind a proxy the Host header is not where clients reach acsd, and it is the
    # client's to write: [api] public_url says where the API is.
    site = daemon_factory(api={"public_url": "https://acs.example.net/"})
    api = ApnApi(Api(site.api_url, token(site, "ADMIN")), "json")
    ans = api.post(apns_path("ACME-PUBLIC", NETWORK), device("(+45)12345670"))
    ok(ans, 202)
    status_url = ans.wrapper["StatusUrl"]
    assert re.fullmatch(r"https://acs\.example\.net/v1/operations/[0-9a-f]{24}", status_url)
    assert ans.reply.headers["Location"] == status_url


@pytest.mark.parametrize(
    "value", ["ftp://acs.example.net", "https://", "https://acs.example.net/?x=1", "acs"]
)
def test_a_public_url_that_is_no_http_base_is_refused(tmp_path, value: str):
    from acsd.config import ConfigError, load_config

    path = tmp_path / "acsd.toml"
    path.write_text(f'[api]\npublic_url = "{value}"\n')
    with pytest.raises(ConfigError, match=r"api\.public_url"):
        load_config(path)


@pytest.mark.parametrize("key", ["%2E", "%2E%2E"])
def test_dot_segments_are_no_account_or_network_key(apn: ApnApi, key: str):
    # "/v1/accounts/../networks/..." is another URL once a client resolves it: a StatusUrl
    # or Location made of it would lead nowhere
    for path in (f"/v1/accounts/{key}/networks/net/devices/apns",
                 f"/v1/accounts/DOTS/networks/{key}/devices/apns"):  # fmt: skip
        failed(apn.post(path, device("(+45)66666666")), 400, 4001)


def test_a_key_whose_escapes_are_no_utf8_is_refused_not_aliased(apn: ApnApi):
    # x%ffy reached the handler as the text "x%ffy": the same network as x%25ffy, under a
    # key nobody typed (a Latin-1 client's)
    for path in ("/v1/accounts/AC%ffME/networks/net/devices/apns",
                 "/v1/accounts/LATIN/networks/x%ffy/devices/apns"):  # fmt: skip
        assert "not UTF-8" in failed(apn.post(path, device("(+45)66666667")), 400, 4001)
    assert apn.get("/v1/accounts/LATIN/networks/x%ffy").status == 400


def test_the_operation_status_numbers_are_spelt_out_in_the_openapi_document(admin: Api):
    # acsd's own resource: its 1 is complete, while the seed's ActorStatus 1 is pending
    doc = admin.get("/openapi.json")
    assert doc.status == 200
    assert "0 pending, 1 complete, 2 failed" in json.dumps(doc.body)


def test_a_charset_is_honoured_for_xml_and_refused_for_json_as_the_device_api_does(
    admin: Api, acct
):
    path = apns_path(acct, NETWORK)
    accept = {"Accept": "application/json"}
    doc = device("(+45)77777771", Description="Åse's router")
    latin = json.dumps(doc, ensure_ascii=False).encode("latin-1")
    refused = admin.request("POST", path, raw=latin, headers=accept,
                            content_type="application/json; charset=latin-1")  # fmt: skip
    assert (refused.status, refused.body["ErrorCode"]) == (415, 4150), refused.body
    # XML in the charset its Content-Type names, without a declaration (RFC 7303)
    xml = (
        '<APNDevice xmlns="http://schemas.datacontract.org/2004/07/AS.Models.API">'
        "<CLI>(+45)77777772</CLI><Description>Åse's router</Description>"
        "<Hints><BillingCycleDay>5</BillingCycleDay><EmailContact>ops@example.com</EmailContact>"
        "</Hints></APNDevice>"
    ).encode("latin-1")
    taken = admin.request("POST", path, raw=xml, headers=accept,
                          content_type="text/xml; charset=iso-8859-1")  # fmt: skip
    assert taken.status == 202, taken.body
    shown = admin.request("GET", apns_path(acct, NETWORK, "(+45)77777772"), headers=accept)
    assert shown.body["Data"]["Description"] == "Åse's router"
    # UTF-16 with its own declaration; and a declaration the Content-Type overrides
    for cli, raw, ctype in (
        ("(+45)77777774", '<?xml version="1.0" encoding="UTF-16"?>' + xml.decode("latin-1")
         .replace("77777772", "77777774"), "utf-16"),
        ("(+45)77777775", '<?xml version="1.0" encoding="UTF-8"?>' + xml.decode("latin-1")
         .replace("77777772", "77777775"), "iso-8859-1"),
    ):  # fmt: skip
        data = raw.encode("utf-16") if ctype == "utf-16" else raw.encode("latin-1")
        taken = admin.request("POST", path, raw=data, headers=accept,
                              content_type=f"application/xml; charset={ctype}")  # fmt: skip
        assert taken.status == 202, (ctype, taken.body)
        shown = admin.request("GET", apns_path(acct, NETWORK, cli), headers=accept)
        assert shown.body["Data"]["Description"] == "Åse's router"
    # a structured-syntax suffix is JSON, as the device API takes it
    body = json.dumps(device("(+45)77777773")).encode()
    suffixed = admin.request("POST", path, raw=body, headers=accept,
                             content_type="application/vnd.example+json")  # fmt: skip
    assert suffixed.status == 202, suffixed.body


@pytest.mark.parametrize(
    ("charset", "description"),
    [
        # Python's "undefined" codec fails every decode with a plain UnicodeError, not the
        # UnicodeDecodeError of a body that is not in its charset
        ("undefined", "Åse's router"),
        # these decode an escape to a lone surrogate, which no UTF-8 (nor XML) can carry
        ("unicode_escape", "\\ud800"),
        ("raw_unicode_escape", "\\ud800"),
    ],
)
def test_an_xml_charset_that_cannot_decode_the_body_is_400_not_500(
    admin: Api, acct, charset: str, description: str
):
    xml = (
        '<APNDevice xmlns="http://schemas.datacontract.org/2004/07/AS.Models.API">'
        f"<CLI>(+45)77777779</CLI><Description>{description}</Description>"
        "<Hints><BillingCycleDay>5</BillingCycleDay><EmailContact>ops@example.com</EmailContact>"
        "</Hints></APNDevice>"
    ).encode("latin-1")
    reply = admin.request("POST", apns_path(acct, NETWORK), raw=xml,
                          content_type=f"application/xml; charset={charset}",
                          headers={"Accept": "application/json"})  # fmt: skip
    assert (reply.status, reply.body["ErrorCode"], reply.body["ErrorSubCode"]) == (
        400, 4000, 2), reply.body  # fmt: skip
    gone = admin.request("GET", apns_path(acct, NETWORK, "(+45)77777779"),
                         headers={"Accept": "application/json"})  # fmt: skip
    assert gone.status == 404, gone.body


def test_whitespace_around_an_xml_date_is_no_part_of_it(admin: Api, acct):
    # xsd:dateTime collapses whitespace as xsd:int and xsd:boolean do (DataContract readers
    # take all of them padded); the seed's request sample sends the dates, which acsd ignores.
    raw = SEED_XML.replace(b"(+45)87654321", b"(+45)87654329").replace(
        b"<StartDate>2024-04-19T05:50:03.1147245+00:00</StartDate>",
        b"<StartDate>\n    2024-04-19T05:50:03.1147245+00:00\n  </StartDate>",
    )
    assert b"<StartDate>\n" in raw
    reply = admin.request(
        "POST", apns_path(acct, NETWORK), raw=raw, content_type="application/xml",
        headers={"Accept": "application/json"},
    )  # fmt: skip
    assert reply.status == 202, reply.body
    assert reply.body["Data"]["CLI"] == "(+45)87654329"


def _raw_post(daemon, target: str, host: bytes | None, body: bytes, token: str) -> dict:
    """One request as a client writes it, Host header and all (HTTP/1.0 may send none)."""
    address = daemon.api_url.split("//", 1)[1].rstrip("/")
    hostname, port = address.rsplit(":", 1)
    lines = [f"POST {target} HTTP/1.0".encode()]
    if host is not None:
        lines.append(b"Host: " + host)
    lines += [f"Authorization: Bearer {token}".encode(), b"Content-Type: application/json",
              f"Content-Length: {len(body)}".encode(), b"", body]  # fmt: skip
    with socket.create_connection((hostname, int(port)), timeout=30) as conn:
        conn.sendall(b"\r\n".join(lines))
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    return {"status": int(head.split()[1]), **json.loads(payload)}


def test_a_host_header_that_makes_no_url_does_not_fail_a_stored_create(admin: Api, daemon, acct):
    # The StatusUrl is written after the device is stored: a Host that makes no URL (none
    # at all, a port that is no number, a space) answered 500 for a device that was made.
    address = daemon.api_url.rstrip("/")
    target = apns_path(acct, NETWORK)
    hosts = (None, b"x:abc", b"x:99999", b"a b", b"a/b", b"<x>", b'x"y', b"[zz]", b"[::1")
    for n, host in enumerate(hosts):
        body = json.dumps(device(f"(+45)654321{n:02d}")).encode()
        reply = _raw_post(daemon, target, host, body, admin.token or "")
        assert reply["status"] == 202, (host, reply)
        assert reply["StatusUrl"].startswith(f"{address}/v1/operations/"), (host, reply)
        status = admin.get(reply["StatusUrl"].removeprefix(address))
        assert status.status == 200 and status.body["Data"]["Status"] == 1, status.body
    # A Host that makes a URL is the one the client named (as before)
    body = json.dumps(device("(+45)65432199")).encode()
    reply = _raw_post(daemon, target, b"api.example:8443", body, admin.token or "")
    assert reply["StatusUrl"].startswith("http://api.example:8443/v1/operations/"), reply


def test_an_operation_says_it_is_done_in_the_seeds_actor_status_too(daemon, apn: ApnApi, acct):
    """A client that knows only the seed's ActorStatusValues (0 stable, 1 pending: "an
    operation is long running", 10 stalled) and polls a StatusUrl read the operation's
    Status 1 (complete) as pending, for ever: the operation says stable in those terms,
    for a client of the account's own token (one that manages APN devices only)."""
    scoped = ApnApi(Api(daemon.api_url, token(daemon, "OWNER", apn=acct)), apn.fmt)
    created = scoped.post(apns_path(acct, NETWORK), device("(+45)13572468"))
    ok(created, 202)
    gone = scoped.delete(apns_path(acct, NETWORK, created.wrapper["Meta"]["Id"]))
    ok(gone, 202)
    stable = 0 if apn.fmt == "json" else "stable"
    for accepted, kind in ((created, "create"), (gone, "delete")):
        status = scoped.get("/" + accepted.wrapper["StatusUrl"].split("/", 3)[3])
        ok(status)
        assert status.data["Operation"] == kind
        assert status.data["ActorStatus"] == stable, status.data


def test_an_xml_body_declared_in_punycode_is_refused_at_once(admin: Api, acct):
    """punycode is one of Python's codecs but no charset, and decodes in quadratic time on
    the event loop: a large body declared so held every request of the daemon. It is
    refused as a body that cannot be read, without decoding it."""
    n = 400_000
    raw = b"<" + b"a" * n + b"-" + b"b" * (n // 2)
    started = time.monotonic()
    reply = admin.request("POST", apns_path(acct, NETWORK), raw=raw,
                          content_type="application/xml; charset=punycode",
                          headers={"Accept": "application/json"})  # fmt: skip
    took = time.monotonic() - started
    assert (reply.status, reply.body["ErrorCode"], reply.body["ErrorSubCode"]) == (
        400, 4000, 2), reply.body  # fmt: skip
    assert "not a character set" in json.dumps(reply.body), reply.body
    assert took < 5, f"answered after {took:.1f} s"


def test_a_dotnet_json_client_s_dates_are_taken(admin: Api, acct):
    # DataContractJsonSerializer (a WCF client; Json.NET with MicrosoftDateFormat) writes
    # every DateTime member as "\/Date(ms+zone)\/": each create was a 400 "must be a date".
    body = {**SEED_JSON, "CLI": "(+45)12345099", "SIMNumber": "89450012345678909999"}
    text = json.dumps({**body, "StartDate": "START", "EndDate": "END"})
    text = text.replace('"START"', '"\\/Date(1454284800000+0000)\\/"')
    text = text.replace('"END"', '"\\/Date(-62135596800000)\\/"')
    reply = admin.request("POST", apns_path(acct, NETWORK), raw=text.encode())
    assert reply.status == 202, reply.raw
    # (ignored, as every reported date of a request: the device's own are acsd's)
    assert reply.body["Data"]["StartDate"] != "/Date(1454284800000+0000)/"


def test_a_reported_date_sent_empty_is_left_out(apn: ApnApi, acct):
    # A client that sends back a device it holds writes a date it has none of as "" (a
    # form field, a .NET string) or <EndDate/>: ignored as any reported date, not a 400.
    for n, empty in enumerate(("", "  ")):
        doc = device(f"(+45)1234510{n}", EndDate=empty, LastSync=empty, StartDate=empty)
        created = apn.post(apns_path(acct, NETWORK), doc)
        ok(created, 202)
        assert "EndDate" not in created.data and DATE.fullmatch(created.data["StartDate"])
    # a date that is not one is still refused: "" is no licence for any text
    failed(apn.post(apns_path(acct, NETWORK), device("(+45)12345109", EndDate="soon")), 400, 4001)


def test_a_key_check_reads_the_path_of_an_absolute_form_target(admin: Api, acct):
    # "POST http://host/v1/..." (a proxy's form) shifted the path's segments: x%ffy was
    # taken, the aliasing the check is there to stop
    host, port = admin.host, admin.port
    body = json.dumps(device("(+45)66666668")).encode()
    target = f"http://{host}:{port}/v1/accounts/{acct}/networks/x%ffy/devices/apns"
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            f"POST {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {admin.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        status = sock.recv(65536).split(b"\r\n")[0]
    assert status.split()[1] == b"400", status


def test_an_xml_value_of_any_length_is_named_by_its_start_not_echoed_whole(admin: Api, acct):
    raw = SEED_XML.replace(
        b"<Enabled>true</Enabled>", b"<Enabled>" + b"y" * 200_000 + b"</Enabled>"
    )
    reply = admin.request(
        "POST", apns_path(acct, NETWORK), raw=raw, content_type="application/xml",
        headers={"Accept": "application/json"},
    )  # fmt: skip
    assert reply.status == 400, reply.body
    text = json.dumps(reply.body)
    assert "is not a boolean" in text and len(text) < 1000, text[:300]
