"""What a router says when it refuses the shared password it is given ([cwmp.auth]
previous_password): its fault texts may quote the password, and a session taken up by
another worker after a reload changed the password cannot mask a value it never knew,
so the texts of an answer to the SetParameterValues that carried it are withheld."""

from __future__ import annotations

from acsd.cwmp import rpc
from acsd.log import MASK
from acsd.provisioning.rotation import WITHHELD, masked, withheld


def _refusal(quoted: str) -> rpc.Fault:
    return rpc.Fault(
        code=9003,
        string=f"Invalid arguments: {quoted}",
        spv_faults=[
            rpc.SetParameterValuesFault(
                name="Device.ManagementServer.Password", code=9007, string=f"bad value {quoted}"
            ),
            rpc.SetParameterValuesFault(name="Device.WiFi.SSID.1.SSID", code=9007, string=""),
        ],
    )


def test_the_texts_of_an_answer_to_the_password_s_request_are_withheld():
    fault = withheld(_refusal("old-fleet-pw"))
    assert fault.code == 9003 and fault.string == WITHHELD
    assert [(f.name, f.code, f.string) for f in fault.spv_faults] == [
        ("Device.ManagementServer.Password", 9007, WITHHELD),
        ("Device.WiFi.SSID.1.SSID", 9007, ""),
    ]
    assert "old-fleet-pw" not in repr(fault)


def test_masking_finds_only_the_password_it_knows():
    # (why withholding is needed: after a reload the worker knows the new password only)
    fault = masked(_refusal("old-fleet-pw"), "new-fleet-pw")
    assert "old-fleet-pw" in fault.string
    fault = masked(_refusal("new-fleet-pw"), "new-fleet-pw")
    assert "new-fleet-pw" not in repr(fault) and MASK in fault.string


async def test_the_driver_withholds_the_texts_of_the_answer_to_the_password_s_request():
    """A session taken up after a reload changed the password: the driver knows the newer
    one, the CPE quotes the one it was sent; the answer reaches the apply phase without
    the texts, whatever value they quote."""
    from test_provisioning_faults import bare_driver

    driver, session = bare_driver()
    driver.acs_password_due = True
    driver._acs_password = "newer-fleet-pw"
    seen: list[rpc.Message] = []
    driver.apply = object()  # type: ignore[assignment]  (only its presence is asked)
    driver._on_apply_response = lambda _s, _r, answer: seen.append(answer)  # type: ignore[method-assign]
    # (the request as parked: its values blanked)
    request = rpc.SetParameterValues(
        parameters=[rpc.ParameterValue("Device.ManagementServer.Password", "", "xsd:string")],
        parameter_key="k",
    )
    await driver.response(session, request, _refusal("new-fleet-pw"))
    other = rpc.SetParameterValues(
        parameters=[rpc.ParameterValue("Device.WiFi.SSID.1.SSID", "x", "xsd:string")],
        parameter_key="k",
    )
    await driver.response(session, other, _refusal("Cafe"))
    assert "new-fleet-pw" not in repr(seen[0]) and seen[0].string == WITHHELD
    assert seen[1].string == "Invalid arguments: Cafe"  # another request's texts stay
