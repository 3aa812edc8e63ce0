"""The operator's API racing a router's session: a change made while a session is open (it
read the record at its Inform) must not be undone by what that session writes at its end.

The tests share one daemon (module_daemon): each has routers (serial prefixes), API
accounts and devices of its own. The routers are simulated ones driven a message at a
time (cpe_steps.SteppedCpe), so that a test acts between two messages of a session."""

from __future__ import annotations

from acsd.cwmp import rpc
from acsd.sim.runner import Simulation
from apiclient import Api
from apn_client import ApnApi, apns_path
from cpe_steps import SteppedCpe
from test_apn_api import token
from test_apn_end_to_end import HINTS, mobile_router


def stepped(daemon, profile: str, prefix: str) -> SteppedCpe:
    sim = Simulation(daemon.cwmp_url, [profile], 1, serial_prefix=prefix)
    return SteppedCpe(daemon.cwmp_url, sim.routers[0])


def test_a_router_unlinked_from_its_apn_account_mid_session_stays_unlinked(module_daemon):
    """An operator who takes a router away from an APN account (mvnoAccount) while it is in
    a session: the session began as that account's router, but its end must not connect
    the account's SIM through the router again, nor lock the SIM to the router's modem
    (the account would read the IMEI of a router that is no longer its)."""
    daemon = module_daemon
    admin = Api(daemon.api_url, token(daemon, "ADMIN"))
    apn = ApnApi(admin, "json")
    sim, card = mobile_router(daemon, "RACEAPN")
    router = SteppedCpe(daemon.cwmp_url, sim.routers[0])
    router.session()  # its SIM numbers are on its record from now on
    daemon.apply({"serialNumber": card["serial"], "mvnoAccount": "RACE-A"})
    device_id = daemon.device_json(card["serial"])["_id"]
    router.inform(["2 PERIODIC"])
    router.until(rpc.GetParameterValues)
    # the account registers the SIM, locked to the modem it is first seen in; then the
    # router is unlinked from the account, both while the session is open
    created = apn.post(
        apns_path("RACE-A", "fleet"), {"CLI": card["imsi"], "LockIMEI": True, "Hints": HINTS}
    )
    assert created.status == 202, created.wrapper
    sim_path = apns_path("RACE-A", "fleet", created.wrapper["Meta"]["Id"])
    reply = admin.patch(f"/network/device/{device_id}", {"mvnoAccount": None})
    assert reply.status == 200 and "mvnoAccount" not in reply.body
    router.finish()
    for _ in range(2):  # and the next session leaves it so
        got = apn.get(sim_path)
        assert "Router" not in got.wrapper["Meta"], got.wrapper
        assert got.data["NetworkStatus"] == 0 and got.data["LastSync"] is None
        assert got.data["IMEI"] is None
        router.session(["2 PERIODIC"])
