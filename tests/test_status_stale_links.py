"""A link that is down keeps reporting what it had while it was up: an IPCP address after
the PPP session dropped, a DSL or modem rate after the line or modem went down. The status
shows what the router has now, so such values count as not reported."""

from __future__ import annotations

import pytest

from acsd.provisioning.profiles import load_profiles
from acsd.provisioning.status import extract_status
from test_status_extract import DSL_STATUS, dsl_values, fixed_values, mobile_values


def pppoe_values(connection_status: str) -> dict[str, str]:
    """A TR-181 PPPoE router: no default route, no DHCPv4 client, the WAN is PPP.Interface.1."""
    values = {
        k: v
        for k, v in fixed_values().items()
        if "DHCPv4.Client" not in k and "IPv4Forwarding" not in k and "IP.Interface.2" not in k
    }
    ppp = "Device.PPP.Interface.1."
    values.update(
        {
            ppp + "Status": "Up" if connection_status == "Connected" else "Down",
            ppp + "ConnectionStatus": connection_status,
            ppp + "IPCP.LocalIPAddress": "203.0.113.7",
            ppp + "IPCP.RemoteIPAddress": "203.0.113.1",
            ppp + "IPCP.DNSServers": "192.0.2.1,192.0.2.2",
        }
    )
    return values


def test_tr181_connected_ppp_gives_wan_and_gateway(tr181):
    status = extract_status(tr181, pppoe_values("Connected"))
    assert status["wanIp"] == "203.0.113.7"
    assert status["gateway"] == "203.0.113.1"


def test_tr181_ppp_beside_an_iptv_dhcp_vlan_is_the_internet_line(tr181):
    # PPPoE for the Internet, a DHCPv4 client on an IPTV (or VoIP, management) VLAN, and a
    # default route naming only its Interface (TR-181: one of GatewayIPAddress and
    # Interface): the VLAN's address, router and DNS were reported as the WAN's.
    values = pppoe_values("Connected")
    iptv = "Device.DHCPv4.Client.1."
    values.update(
        {
            iptv + "Interface": "Device.IP.Interface.3",
            iptv + "Status": "Enabled",
            iptv + "IPAddress": "10.200.0.5",
            iptv + "IPRouters": "10.200.0.1",
            iptv + "DNSServers": "10.200.0.53",
            "Device.IP.Interface.3.Status": "Up",
            "Device.IP.Interface.3.IPv4Address.1.IPAddress": "10.200.0.5",
            "Device.IP.Interface.3.IPv4Address.1.Status": "Enabled",
            "Device.IP.Interface.3.LowerLayers": "Device.Ethernet.VLANTermination.2",
            "Device.IP.Interface.2.Status": "Up",
            "Device.IP.Interface.2.LowerLayers": "Device.PPP.Interface.1",
        }
    )
    values = {k: v for k, v in values.items() if "DNS.Client" not in k}
    status = extract_status(tr181, values)
    assert (status["wanIp"], status["gateway"]) == ("203.0.113.7", "203.0.113.1")
    assert (status["dns"], status["dns2"]) == ("192.0.2.1", "192.0.2.2")


def test_tr181_wan_that_is_down_shows_no_dns_servers(tr181):
    # as it shows no wanIp or gateway (TR-098's DNS servers are the connection's, and go
    # with it): firmware that keeps the DNS client's rows showed a resolver on a dead line
    values = fixed_values()
    assert extract_status(tr181, values)["dns"] == "192.0.2.53"
    values["Device.IP.Interface.2.Status"] = "Down"
    # the lease is gone with the link (its values empty unless Bound, TR-181)
    client = "Device.DHCPv4.Client.1."
    values.update({client + k: "" for k in ("IPAddress", "IPRouters", "DNSServers")})
    status = extract_status(tr181, values)
    assert not {"wanIp", "gateway", "dns", "dns2"} & status.keys(), status


@pytest.mark.parametrize("state", ["Disconnected", "Connecting", "Unconfigured"])
def test_tr181_disconnected_ppp_stale_ipcp_is_not_the_wan(tr181, state):
    # TR-098's rules take PPP values only from a Connected connection; TR-181's IPCP leaves
    # are no different: after the session drops they hold the last session's addresses.
    status = extract_status(tr181, pppoe_values(state))
    assert "wanIp" not in status
    assert "gateway" not in status


def test_tr181_disconnected_ppp_stale_ipcp_dns_not_shown(tr181):
    values = {k: v for k, v in pppoe_values("Disconnected").items() if "DNS.Client" not in k}
    status = extract_status(tr181, values)
    assert "dns" not in status and "dns2" not in status


@pytest.mark.parametrize("state", ["Down", "Dormant", "NotPresent", "LowerLayerDown", "Error"])
def test_cellular_rates_only_while_modem_up(tr181, state):
    # Up/DownstreamMaxBitRate: "the current maximum attainable data rate" (Device:2.17): a
    # modem that is not Up attains none; the figure left is the last connection's.
    status = extract_status(tr181, mobile_values(Status=state))
    assert "uplinkRate" not in status
    assert "downlinkRate" not in status


def test_cellular_rates_while_modem_up(tr181):
    status = extract_status(tr181, mobile_values())
    assert (status["uplinkRate"], status["downlinkRate"]) == (150000, 1000000)


@pytest.mark.parametrize(
    "line", ["NoSignal", "Initializing", "EstablishingLink", "Disabled", "Error"]
)
def test_dsl_rates_only_while_line_up(tr098, line):
    # UpstreamCurrRate is "the current physical layer aggregate data rate" (TR-098): with
    # the line not Up there is none, whatever the modem still holds.
    values = dsl_values()
    values["InternetGatewayDevice.WANDevice.1.WANDSLInterfaceConfig.Status"] = line
    status = extract_status(tr098, values)
    assert "uplinkRate" not in status
    assert "downlinkRate" not in status


def test_dsl_rates_while_line_up(tr098):
    status = extract_status(tr098, dsl_values())
    assert status["uplinkRate"] == DSL_STATUS["uplinkRate"]
    assert status["downlinkRate"] == DSL_STATUS["downlinkRate"]


def test_dsl_status_is_fetched(tr098):
    # the rule's `where` reads WANDSLInterfaceConfig.Status: the session must ask for it
    assert "InternetGatewayDevice.WANDevice.1.WANDSLInterfaceConfig.Status" in tr098.fetch


# --- a subtree the router no longer has -------------------------------------------------------


async def test_a_subtree_the_router_now_lacks_leaves_the_stored_tree():
    # A mobile router whose modem went (USB stick pulled, firmware without it): the read of
    # Device.Cellular.Interface. answers 9005. The session's status is extracted from the
    # stored tree merged with this session's values; the modem's old values must not be in
    # it, or simStatus, networkType and the signal stay in the status for ever.
    from acsd.cwmp.session import CwmpSession  # noqa: F401  (the driver's session type)
    from acsd.provisioning.absent import AbsentHints
    from acsd.provisioning.driver import ProvisioningDriver
    from acsd.provisioning.status import untyped
    from acsd.store.base import CpeIdentity

    profiles = load_profiles()
    stored = {k: [v, "xsd:string"] for k, v in mobile_values().items()}

    class Store:
        async def device_params(self, device_id):
            return dict(stored)

    driver = ProvisioningDriver(store=Store(), profiles=profiles, hints=AbsentHints())  # type: ignore[arg-type]
    driver.profile = profiles.get("tr181")
    driver.identity = CpeIdentity(oui="00D09E", product_class="Box", serial_number="STALE01")
    driver.record = type("R", (), {"id": "dev1", "absent_paths": []})()  # type: ignore[assignment]
    cellular = "Device.Cellular.Interface."
    driver.fetch.ok = [n for n in driver.profile.fetch if n != cellular]
    driver.fetch.absent = {cellular}
    driver.values = {k: v for k, v in stored.items() if not k.startswith(cellular)}
    merged = await driver._merged_params()
    assert not [k for k in merged if k.startswith(cellular)]
    status = extract_status(driver.profile, untyped(merged))
    for field in ("simStatus", "networkType", "signalStrength", "ssSingnalStrength"):
        assert field not in status
    assert status["lanIp"] == "192.168.0.1"


@pytest.mark.parametrize("state", ["Down", "LowerLayerDown", "Dormant", "NotPresent", "Error"])
def test_wan_addresses_only_while_the_wan_interface_is_up(tr181, state):
    # IPv4Address/IPv6Address entries are configuration (their Status is Enabled/Disabled),
    # not a sign the interface carries them: a WAN IP.Interface that is not Up (a modem
    # that lost the network) has no WAN address, whatever entry it still holds.
    values = mobile_values(Status="Down")
    values["Device.IP.Interface.2.Status"] = state
    status = extract_status(tr181, values)
    assert "wanIp" not in status
    assert "ipv6" not in status
    # nor a gateway: the default route goes out over that interface
    assert "gateway" not in status
    assert status["lanIp"] == "192.168.0.1"
