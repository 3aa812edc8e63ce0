"""What the CPE reported becomes the seed-000 status, through the built-in profiles.

Three router kinds, as the simulator models them: a TR-181 5G/4G mobile router, a TR-181
fixed-line router with a DHCP WAN, and a TR-098 DSL gateway with PPPoE. Then each selector
feature on its own, with small inline profiles.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from acsd.models import REPORTED_STATUS_FIELDS, DeviceStatus
from acsd.provisioning.profiles import load_profiles, parse_profile
from acsd.provisioning.status import extract_identity, extract_status

TREES = Path(__file__).resolve().parents[1] / "src" / "acsd" / "sim" / "trees"


# --- the three router kinds -------------------------------------------------------------


def mobile_values(**cell: str) -> dict[str, str]:
    """A TR-181 mobile router: LAN on IP.Interface.1, WAN over Cellular on IP.Interface.2."""
    d = "Device."
    ip, fwd, dns = d + "IP.Interface.", d + "Routing.Router.1.IPv4Forwarding.", d + "DNS.Client."
    c = d + "Cellular.Interface.1."
    values = {
        d + "RootDataModelVersion": "2.17",
        d + "DeviceInfo.Manufacturer": "SimCell",
        d + "DeviceInfo.SoftwareVersion": "SC5G200_V1.4.2_B312",
        d + "DeviceInfo.HardwareVersion": "SC5G200-HW1.0",
        d + "DeviceInfo.ProvisioningCode": "",
        d + "DeviceInfo.UpTime": "86400",
        d + "ManagementServer.ParameterKey": "rev-7",
        d + "ManagementServer.ConnectionRequestURL": "http://100.64.0.30:7547/cr",
        d + "ManagementServer.AliasBasedAddressing": "false",
        d + "ManagementServer.PeriodicInformInterval": "300",
        d + "Ethernet.Interface.1.Upstream": "false",
        d + "Ethernet.Interface.1.MACAddress": "0A:5E:11:00:00:08",
        d + "Ethernet.Interface.1.Status": "Up",
        ip + "1.Status": "Up",
        ip + "1.LowerLayers": "Device.Ethernet.Link.1",
        ip + "1.IPv4Address.1.Status": "Enabled",
        ip + "1.IPv4Address.1.IPAddress": "192.168.0.1",
        ip + "1.IPv4Address.1.SubnetMask": "255.255.255.0",
        ip + "1.IPv6Address.1.IPAddress": "fe80::1",
        ip + "1.IPv6Address.1.Origin": "WellKnown",
        ip + "2.Status": "Up",
        ip + "2.LowerLayers": "Device.Cellular.Interface.1",
        ip + "2.LastChange": "3600",
        ip + "2.IPv4Address.1.Status": "Enabled",
        ip + "2.IPv4Address.1.IPAddress": "100.64.0.30",
        ip + "2.IPv4Address.1.SubnetMask": "255.255.255.252",
        ip + "2.IPv6Address.1.IPAddress": "fe80::a5e:11ff:fe00:9",
        ip + "2.IPv6Address.1.Origin": "WellKnown",
        ip + "2.IPv6Address.1.Status": "Enabled",
        ip + "2.IPv6Address.2.IPAddress": "2001:db8:0:1::2",
        ip + "2.IPv6Address.2.Origin": "AutoConfigured",
        ip + "2.IPv6Address.2.Status": "Enabled",
        ip + "2.IPv6Address.2.IPAddressStatus": "Preferred",
        ip + "3.Type": "Loopback",
        ip + "3.IPv4Address.1.IPAddress": "127.0.0.1",
        ip + "3.IPv6Address.1.IPAddress": "::1",
        d + "DHCPv4.Server.Pool.1.Interface": "Device.IP.Interface.1",
        d + "DHCPv4.Server.Pool.1.MinAddress": "192.168.0.100",
        dns + "Server.1.DNSServer": "192.0.2.53",
        dns + "Server.1.Type": "DHCPv4",
        dns + "Server.1.Status": "Enabled",
        dns + "Server.2.DNSServer": "198.51.100.53",
        dns + "Server.2.Type": "DHCPv4",
        dns + "Server.2.Status": "Enabled",
        dns + "Server.3.DNSServer": "2001:db8:53::1",
        dns + "Server.3.Type": "DHCPv6",
        dns + "Server.3.Status": "Enabled",
        dns + "Server.4.DNSServer": "2001:db8:53::2",
        dns + "Server.4.Type": "DHCPv6",
        dns + "Server.4.Status": "Enabled",
        # a LAN subnet route first: only the entry with empty destination is the default
        fwd + "1.Status": "Enabled",
        fwd + "1.DestIPAddress": "192.168.0.0",
        fwd + "1.DestSubnetMask": "255.255.255.0",
        fwd + "1.GatewayIPAddress": "",
        fwd + "1.Interface": "Device.IP.Interface.1",
        fwd + "2.Status": "Enabled",
        fwd + "2.DestIPAddress": "",
        fwd + "2.DestSubnetMask": "",
        fwd + "2.GatewayIPAddress": "100.64.0.29",
        fwd + "2.Interface": "Device.IP.Interface.2",
        c + "Status": "Up",
        c + "LastChange": "3600",
        c + "IMEI": "359999000000072",
        c + "CurrentAccessTechnology": "NR",
        c + "RSSI": "-67",
        c + "RSRP": "-95",
        c + "RSRQ": "-11",
        c + "UpstreamMaxBitRate": "150000",
        c + "DownstreamMaxBitRate": "1000000",
        c + "USIM.Status": "Valid",
        c + "USIM.IMSI": "001010000000007",
        c + "USIM.ICCID": "89001010000000000074",
        c + "USIM.MSISDN": "15550000007",
        c + "USIM.PINCheck": "Off",
    }
    values.update({c + k: v for k, v in cell.items()})
    return values


MOBILE_STATUS = {
    "lanIp": "192.168.0.1",
    "subnetMask": "255.255.255.0",
    "gateway": "100.64.0.29",
    "wanIp": "100.64.0.30",
    "upTime": 86400,
    "dns": "192.0.2.53",
    "dns2": "198.51.100.53",
    "ipv6": "2001:db8:0:1::2",
    "ipv6Dns": "2001:db8:53::1",
    "ipv6Dns2": "2001:db8:53::2",
    "simStatus": "1",
    "networkType": "32",
    # RSRP -95 dBm on -140..-44: 45/96 = 46.9 %
    "ssSingnalStrength": 47,
    "uplinkRate": 150000,
    "downlinkRate": 1000000,
    "connectionTime": 3600,
}


def fixed_values() -> dict[str, str]:
    """A TR-181 fixed-line router: WAN on IP.Interface.2 with a DHCPv4 client, no modem."""
    d = "Device."
    ip, fwd, dns = d + "IP.Interface.", d + "Routing.Router.1.IPv4Forwarding.", d + "DNS.Client."
    return {
        d + "RootDataModelVersion": "2.11",
        d + "DeviceInfo.SoftwareVersion": "1.1.2 Build 20230512 Rel.66372",
        d + "DeviceInfo.HardwareVersion": "EX220 v1.0",
        d + "DeviceInfo.UpTime": "1234",
        d + "ManagementServer.ParameterKey": "",
        d + "ManagementServer.ConnectionRequestURL": "http://100.64.0.6:7547/cr",
        d + "ManagementServer.PeriodicInformInterval": "600",
        # the WAN port comes first; the router's own MAC is its LAN side
        d + "Ethernet.Interface.1.Upstream": "true",
        d + "Ethernet.Interface.1.MACAddress": "50:C7:BF:00:00:11",
        d + "Ethernet.Interface.2.Upstream": "false",
        d + "Ethernet.Interface.2.MACAddress": "50:C7:BF:00:00:10",
        ip + "1.IPv4Address.1.Status": "Enabled",
        ip + "1.IPv4Address.1.IPAddress": "192.168.0.1",
        ip + "1.IPv4Address.1.SubnetMask": "255.255.255.0",
        ip + "2.LowerLayers": "Device.Ethernet.Link.2",
        ip + "2.IPv4Address.1.Status": "Enabled",
        ip + "2.IPv4Address.1.IPAddress": "100.64.0.6",
        ip + "2.IPv4Address.1.SubnetMask": "255.255.255.252",
        d + "DHCPv4.Client.1.Interface": "Device.IP.Interface.2",
        d + "DHCPv4.Client.1.Status": "Enabled",
        d + "DHCPv4.Client.1.DHCPStatus": "Bound",
        d + "DHCPv4.Client.1.IPAddress": "100.64.0.6",
        d + "DHCPv4.Client.1.SubnetMask": "255.255.255.252",
        d + "DHCPv4.Client.1.IPRouters": "100.64.0.5",
        d + "DHCPv4.Client.1.DNSServers": "192.0.2.53,198.51.100.53",
        d + "DHCPv4.Server.Pool.1.Interface": "Device.IP.Interface.1",
        dns + "Server.1.DNSServer": "192.0.2.53",
        dns + "Server.1.Type": "DHCPv4",
        dns + "Server.2.DNSServer": "198.51.100.53",
        dns + "Server.2.Type": "DHCPv4",
        fwd + "1.DestIPAddress": "",
        fwd + "1.DestSubnetMask": "",
        fwd + "1.GatewayIPAddress": "100.64.0.5",
        fwd + "1.Interface": "Device.IP.Interface.2",
    }


FIXED_STATUS = {
    "lanIp": "192.168.0.1",
    "subnetMask": "255.255.255.0",
    "gateway": "100.64.0.5",
    "wanIp": "100.64.0.6",
    "upTime": 1234,
    "dns": "192.0.2.53",
    "dns2": "198.51.100.53",
}


def dsl_values() -> dict[str, str]:
    """A TR-098 DSL gateway with one PPPoE connection."""
    g = "InternetGatewayDevice."
    ppp = g + "WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1."
    lan = g + "LANDevice.1.LANHostConfigManagement.IPInterface.1."
    return {
        g + "DeviceSummary": "InternetGatewayDevice:1.4[](Baseline:1, EthernetLAN:1, ADSLWAN:1)",
        g + "DeviceInfo.SoftwareVersion": "SLV200_3.20.7",
        g + "DeviceInfo.HardwareVersion": "SLV200-A1",
        g + "DeviceInfo.UpTime": "7200",
        g + "ManagementServer.ParameterKey": "rev-3",
        g + "ManagementServer.ConnectionRequestURL": "http://100.64.0.10:7547/",
        g + "ManagementServer.PeriodicInformInterval": "3600",
        g + "Layer3Forwarding.DefaultConnectionService": ppp[:-1],
        g + "Layer3Forwarding.ForwardNumberOfEntries": "0",
        lan + "Enable": "true",
        lan + "IPInterfaceIPAddress": "192.168.1.1",
        lan + "IPInterfaceSubnetMask": "255.255.255.0",
        g + "LANDevice.1.LANEthernetInterfaceConfig.1.MACAddress": "00:1A:2B:00:00:20",
        g + "WANDevice.1.WANDSLInterfaceConfig.Status": "Up",
        g + "WANDevice.1.WANDSLInterfaceConfig.UpstreamCurrRate": "36408",
        g + "WANDevice.1.WANDSLInterfaceConfig.DownstreamCurrRate": "77008",
        ppp + "ConnectionStatus": "Connected",
        ppp + "ExternalIPAddress": "100.64.0.10",
        ppp + "RemoteIPAddress": "100.64.0.9",
        ppp + "DNSServers": "192.0.2.53,198.51.100.53",
        ppp + "Uptime": "7100",
    }


DSL_STATUS = {
    "lanIp": "192.168.1.1",
    "subnetMask": "255.255.255.0",
    "gateway": "100.64.0.9",
    "wanIp": "100.64.0.10",
    "upTime": 7200,
    "dns": "192.0.2.53",
    "dns2": "198.51.100.53",
    "uplinkRate": 36408,
    "downlinkRate": 77008,
}


def test_mobile_router_status(tr181):
    assert extract_status(tr181, mobile_values()) == MOBILE_STATUS


def test_mobile_router_status_fits_the_seed_model(tr181):
    status = extract_status(tr181, mobile_values())
    assert list(status) == [f for f in REPORTED_STATUS_FIELDS if f in status]
    assert DeviceStatus(**status).model_dump(exclude_none=True) == status


def test_mobile_router_identity(tr181):
    assert extract_identity(tr181, mobile_values()) == {
        "macAddress": "0A:5E:11:00:00:08",
        "periodicInterval": 300,
        "connectionRequestUrl": "http://100.64.0.30:7547/cr",
        "parameterKey": "rev-7",
        "softwareVersion": "SC5G200_V1.4.2_B312",
        "hardwareVersion": "SC5G200-HW1.0",
        # the modem and its SIM (APN devices are matched on them)
        "imei": "359999000000072",
        "imsi": "001010000000007",
        "iccid": "89001010000000000074",
        "msisdn": "15550000007",
    }


def test_fixed_line_router_status(tr181):
    assert extract_status(tr181, fixed_values()) == FIXED_STATUS


def test_fixed_line_router_identity_takes_the_lan_mac(tr181):
    identity = extract_identity(tr181, fixed_values())
    assert identity["macAddress"] == "50:C7:BF:00:00:10"
    assert identity["periodicInterval"] == 600
    # an empty ParameterKey is not a reported value
    assert "parameterKey" not in identity


def test_fixed_line_router_with_only_its_dhcp_client(tr181):
    # no DNS client table, no routing table: the DHCPv4 client's own values serve
    values = {k: v for k, v in fixed_values().items() if ".DNS." not in k and ".Routing." not in k}
    values["Device.DHCPv4.Client.1.DNSServers"] = " 192.0.2.53 , 198.51.100.53 "
    assert extract_status(tr181, values) == FIXED_STATUS


def test_addresses_with_a_prefix_length_are_the_addresses(tr181):
    # OpenWrt-based agents copy UCI's "192.168.1.1/24": the field is the address (the API's
    # LAN checks parse it; kept whole, they fell back to no check at all)
    values = fixed_values()
    ip = "Device.IP.Interface."
    values[ip + "1.IPv4Address.1.IPAddress"] = "192.168.0.1/24"
    values[ip + "2.IPv4Address.1.IPAddress"] = "100.64.0.6/30"
    values["Device.DHCPv4.Client.1.IPAddress"] = "100.64.0.6/30"
    values["Device.DNS.Client.Server.1.DNSServer"] = "192.0.2.53/32"
    assert extract_status(tr181, values) == FIXED_STATUS


def test_fixed_line_router_without_any_wan_reference(tr181):
    values = {
        k: v
        for k, v in fixed_values().items()
        if ".Routing." not in k and not k.endswith("Client.1.Interface")
    }
    del values["Device.DHCPv4.Client.1.IPAddress"]
    # no default route and no DHCP client interface: the WAN is unknown, so is its address
    assert "wanIp" not in extract_status(tr181, values)


def test_dsl_gateway_status(tr098):
    assert extract_status(tr098, dsl_values()) == DSL_STATUS


def test_dsl_gateway_identity(tr098):
    assert extract_identity(tr098, dsl_values()) == {
        "macAddress": "00:1A:2B:00:00:20",
        "periodicInterval": 3600,
        "connectionRequestUrl": "http://100.64.0.10:7547/",
        "parameterKey": "rev-3",
        "softwareVersion": "SLV200_3.20.7",
        "hardwareVersion": "SLV200-A1",
    }


# --- references ----------------------------------------------------------------------------


def test_tr181_reference_with_a_trailing_dot(tr181):
    values = mobile_values()
    values["Device.DHCPv4.Server.Pool.1.Interface"] = "Device.IP.Interface.1."
    values["Device.Routing.Router.1.IPv4Forwarding.2.Interface"] = "Device.IP.Interface.2."
    assert extract_status(tr181, values) == MOBILE_STATUS


def test_tr181_lan_falls_back_to_ip_interface_1(tr181):
    values = mobile_values()
    del values["Device.DHCPv4.Server.Pool.1.Interface"]
    status = extract_status(tr181, values)
    assert (status["lanIp"], status["subnetMask"]) == ("192.168.0.1", "255.255.255.0")


def test_tr181_lan_follows_the_pool_reference_not_instance_1(tr181):
    values = mobile_values()
    values["Device.DHCPv4.Server.Pool.1.Interface"] = "Device.IP.Interface.4"
    values["Device.IP.Interface.4.IPv4Address.1.IPAddress"] = "10.0.0.1"
    values["Device.IP.Interface.4.IPv4Address.1.SubnetMask"] = "255.0.0.0"
    status = extract_status(tr181, values)
    assert (status["lanIp"], status["subnetMask"]) == ("10.0.0.1", "255.0.0.0")


def test_tr181_cellular_backed_interface_is_the_wan_without_a_default_route(tr181):
    values = {k: v for k, v in mobile_values().items() if ".Routing." not in k}
    status = extract_status(tr181, values)
    assert status["wanIp"] == "100.64.0.30"
    assert status["ipv6"] == "2001:db8:0:1::2"
    assert "gateway" not in status


@pytest.mark.parametrize("dcs_suffix", ["", "."])
def test_tr098_default_connection_service_with_and_without_trailing_dot(tr098, dcs_suffix):
    values = dsl_values()
    values["InternetGatewayDevice.Layer3Forwarding.DefaultConnectionService"] += dcs_suffix
    assert extract_status(tr098, values) == DSL_STATUS


def test_tr098_without_default_connection_service_takes_the_connected_connection(tr098):
    values = dsl_values()
    del values["InternetGatewayDevice.Layer3Forwarding.DefaultConnectionService"]
    # a management connection that is down comes first in instance order
    mgmt = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1."
    values[mgmt + "ConnectionStatus"] = "Disconnected"
    values[mgmt + "ExternalIPAddress"] = "10.10.0.2"
    values[mgmt + "DefaultGateway"] = "10.10.0.1"
    values[mgmt + "DNSServers"] = "10.10.0.1"
    assert extract_status(tr098, values) == DSL_STATUS


def test_tr098_ip_connection_gateway_and_default_route(tr098):
    g = "InternetGatewayDevice."
    ipc = g + "WANDevice.1.WANConnectionDevice.2.WANIPConnection.1."
    values = {k: v for k, v in dsl_values().items() if "WANPPPConnection" not in k}
    values[g + "Layer3Forwarding.DefaultConnectionService"] = ipc[:-1]
    values[ipc + "ConnectionStatus"] = "Connected"
    values[ipc + "ExternalIPAddress"] = "203.0.113.7"
    values[ipc + "DefaultGateway"] = "203.0.113.1"
    values[ipc + "DNSServers"] = "203.0.113.53"
    status = extract_status(tr098, values)
    assert (status["wanIp"], status["gateway"], status["dns"]) == (
        "203.0.113.7",
        "203.0.113.1",
        "203.0.113.53",
    )
    assert "dns2" not in status
    # without a DefaultGateway, the default route of Layer3Forwarding (0.0.0.0 destination)
    del values[ipc + "DefaultGateway"]
    values[g + "Layer3Forwarding.Forwarding.1.DestIPAddress"] = "10.0.0.0"
    values[g + "Layer3Forwarding.Forwarding.1.GatewayIPAddress"] = "10.9.9.9"
    values[g + "Layer3Forwarding.Forwarding.2.DestIPAddress"] = "0.0.0.0"
    values[g + "Layer3Forwarding.Forwarding.2.DestSubnetMask"] = "0.0.0.0"
    values[g + "Layer3Forwarding.Forwarding.2.GatewayIPAddress"] = "203.0.113.254"
    assert extract_status(tr098, values)["gateway"] == "203.0.113.254"


def test_tr098_disconnected_default_connection_reports_no_wan(tr098):
    values = dsl_values()
    ppp = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1."
    values[ppp + "ConnectionStatus"] = "Disconnected"
    values[ppp + "ExternalIPAddress"] = "0.0.0.0"
    status = extract_status(tr098, values)
    for field in ("wanIp", "gateway", "dns", "dns2"):
        assert field not in status


def test_tr098_dsl_rate_without_value_is_omitted(tr098):
    values = dsl_values()
    values["InternetGatewayDevice.WANDevice.1.WANDSLInterfaceConfig.UpstreamCurrRate"] = (
        "4294967295"
    )
    status = extract_status(tr098, values)
    assert "uplinkRate" not in status
    assert status["downlinkRate"] == 77008


# --- mobile specifics ----------------------------------------------------------------------


def test_lte_reports_the_4g_signal_and_code_8(tr181):
    status = extract_status(tr181, mobile_values(CurrentAccessTechnology="LTE", RSRP="-100"))
    assert status["networkType"] == "8"
    assert status["signalStrength"] == 42  # 40/96 = 41.7 %
    assert "ssSingnalStrength" not in status


@pytest.mark.parametrize("state", ["Down", "NotPresent", "Error"])
def test_a_modem_that_is_not_up_reports_no_signal(tr181, state):
    # RSRP left from the last connection read as the signal of a modem with no network
    status = extract_status(
        tr181, mobile_values(CurrentAccessTechnology="LTE", RSRP="-96", Status=state)
    )
    assert status["networkType"] == "1"
    assert "signalStrength" not in status and "ssSingnalStrength" not in status
    # an idle modem, waiting to attach, still measures its cell
    dormant = mobile_values(CurrentAccessTechnology="LTE", RSRP="-96", Status="Dormant")
    assert extract_status(tr181, dormant)["signalStrength"] == 46


def test_3g_has_no_rsrp_so_rssi_gives_the_signal(tr181):
    status = extract_status(
        tr181, mobile_values(CurrentAccessTechnology="UMTSHSPA", RSRP="0", RSSI="-80")
    )
    assert status["networkType"] == "4"
    assert status["signalStrength"] == 59  # UMTS RSSI -80 on -117..-54: 37/63 = 58.7 %
    assert "ssSingnalStrength" not in status


@pytest.mark.parametrize(
    ("tech", "rssi", "expected"),
    # Device:2.17's RSSI spans: GPRS/EDGE -111..-49, UMTS -117..-54, LTE/NR -117..-25 dBm
    [("EDGE", "-80", 50), ("UMTS", "-117", 0), ("LTE", "-71", 50), ("LTE", "-25", 100)],
)
def test_rssi_without_rsrp_is_scaled_over_its_technologys_span(tr181, tech, rssi, expected):
    status = extract_status(tr181, mobile_values(CurrentAccessTechnology=tech, RSRP="0", RSSI=rssi))
    assert status["signalStrength"] == expected


@pytest.mark.parametrize(
    ("rsrp", "expected"), [("-140", 0), ("-150", 0), ("-44", 100), ("-30", 100), ("-92", 50)]
)
def test_signal_scaling_clamps_to_0_100(tr181, rsrp, expected):
    status = extract_status(tr181, mobile_values(CurrentAccessTechnology="LTE", RSRP=rsrp))
    assert status["signalStrength"] == expected


@pytest.mark.parametrize(
    ("tech", "code"),
    [("GPRS", "2"), ("EDGE", "2"), ("UMTS", "4"), ("UMTSHSPA", "4"), ("LTE", "8"), ("NR", "32")],
)
def test_network_type_codes(tr181, tech, code):
    status = extract_status(tr181, mobile_values(CurrentAccessTechnology=tech))
    assert status["networkType"] == code


def test_network_type_of_an_unknown_technology_is_omitted(tr181):
    status = extract_status(tr181, mobile_values(CurrentAccessTechnology="CDMA2000OneX"))
    assert "networkType" not in status


@pytest.mark.parametrize("state", ["Down", "Dormant", "NotPresent", "Error"])
def test_a_modem_that_is_not_up_has_no_network_and_no_connection_time(tr181, state):
    status = extract_status(tr181, mobile_values(Status=state))
    assert status["networkType"] == "1"
    assert "connectionTime" not in status


@pytest.mark.parametrize(
    ("usim", "pin_check", "code"),
    [
        ("Valid", "Off", "1"),
        ("Valid", "OnNetworkAccess", "2"),
        ("Valid", "Reboot", "2"),
        ("Available", "OnNetworkAccess", "3"),
        ("Blocked", "OnNetworkAccess", "4"),
        ("None", "Off", "6"),
        ("Error", "Off", "7"),
        ("Removed", "Off", "7"),  # not a TR-181 value: unknown
        ("valid", "off", "1"),  # firmware that lower-cases its enums
    ],
)
def test_sim_status_codes(tr181, usim, pin_check, code):
    values = mobile_values(**{"USIM.Status": usim, "USIM.PINCheck": pin_check})
    assert extract_status(tr181, values)["simStatus"] == code


def test_a_router_without_modem_reports_no_mobile_field(tr181):
    values = {k: v for k, v in mobile_values().items() if ".Cellular." not in k}
    status = extract_status(tr181, values)
    for field in (
        "simStatus",
        "networkType",
        "signalStrength",
        "ssSingnalStrength",
        "uplinkRate",
        "downlinkRate",
        "connectionTime",
    ):
        assert field not in status


# --- omissions ------------------------------------------------------------------------------


def test_nothing_reported_gives_an_empty_status(tr181, tr098):
    assert extract_status(tr181, {}) == {}
    assert extract_status(tr098, {}) == {}
    assert extract_identity(tr181, {}) == {}


def test_empty_values_count_as_not_reported(tr181):
    values = {
        k: ("" if k.endswith(("IPAddress", "UpTime")) else v) for k, v in mobile_values().items()
    }
    status = extract_status(tr181, values)
    for field in ("lanIp", "wanIp", "ipv6", "upTime"):
        assert field not in status
    assert status["subnetMask"] == "255.255.255.0"


def test_only_link_local_ipv6_gives_no_ipv6(tr181):
    values = mobile_values()
    values["Device.IP.Interface.2.IPv6Address.2.IPAddress"] = "fe80::2"
    values["Device.IP.Interface.2.IPv6Address.2.Origin"] = "AutoConfigured"
    assert "ipv6" not in extract_status(tr181, values)


def test_the_preferred_ipv6_address_wins_over_a_deprecated_one_before_it(tr181):
    # after a renumbering the old address stays a while, Deprecated, often as the first row
    values = mobile_values()
    ip = "Device.IP.Interface.2.IPv6Address."
    values[ip + "2.IPAddressStatus"] = "Deprecated"
    values.update({ip + "3.IPAddress": "2001:db8:0:2::2", ip + "3.Origin": "AutoConfigured",
                   ip + "3.Status": "Enabled", ip + "3.IPAddressStatus": "Preferred"})  # fmt: skip
    assert extract_status(tr181, values)["ipv6"] == "2001:db8:0:2::2"
    # a deprecated one alone is still the router's address
    del values[ip + "3.IPAddress"]
    assert extract_status(tr181, values)["ipv6"] == "2001:db8:0:1::2"


def test_a_ds_lite_softwire_address_is_no_wan_address(tr181):
    # every DS-Lite router's IPv4 default route goes into its softwire, 192.0.0.2 (RFC 6333)
    values = mobile_values()
    values["Device.IP.Interface.2.IPv4Address.1.IPAddress"] = "192.0.0.2"
    assert "wanIp" not in extract_status(tr181, values)


def test_a_ds_lite_router_shows_the_ipv6_address_of_its_dhcpv6_client_interface(tr181):
    # The IPv4 default route goes into the softwire (IP.Interface.4, 192.0.0.2): {wan} is
    # that, with no IPv6 address; the line's own is on the interface DHCPv6 runs on.
    values = mobile_values()
    ip, fwd = "Device.IP.Interface.", "Device.Routing.Router.1.IPv4Forwarding.2."
    values.update({
        ip + "4.Status": "Up", ip + "4.LowerLayers": "",
        ip + "4.IPv4Address.1.Status": "Enabled", ip + "4.IPv4Address.1.IPAddress": "192.0.0.2",
        fwd + "Interface": "Device.IP.Interface.4", fwd + "GatewayIPAddress": "",
        "Device.DHCPv6.Client.1.Interface": "Device.IP.Interface.2",
    })  # fmt: skip
    status = extract_status(tr181, values)
    assert "wanIp" not in status and status["ipv6"] == "2001:db8:0:1::2"
    # an IPv6-only line: no IPv4 default route at all
    values = mobile_values()
    for key in [k for k in values if k.startswith(("Device.Routing.", "Device.Cellular."))]:
        del values[key]
    for key in [k for k in values if k.startswith(ip + "2.IPv4Address.")]:
        del values[key]
    values[ip + "2.LowerLayers"] = "Device.Ethernet.Link.2"
    values["Device.DHCPv6.Client.1.Interface"] = "Device.IP.Interface.2"
    assert extract_status(tr181, values)["ipv6"] == "2001:db8:0:1::2"


def test_a_wan_that_is_down_shows_no_ipv6_resolvers(tr181):
    values = mobile_values()
    values["Device.IP.Interface.2.Status"] = "Down"
    status = extract_status(tr181, values)
    assert not {"wanIp", "dns", "ipv6", "ipv6Dns", "ipv6Dns2"} & set(status), status


def test_a_single_dns_server_gives_no_dns2(tr181):
    values = mobile_values()
    del values["Device.DNS.Client.Server.2.DNSServer"]
    status = extract_status(tr181, values)
    assert status["dns"] == "192.0.2.53"
    assert "dns2" not in status


# --- selector features, one at a time ---------------------------------------------------------


def profile(fields: str, refs: str = ""):
    text = f'name = "t"\nroot = "Device."\n[match]\nmodelName = "T"\n{refs}\n{fields}'
    return parse_profile(text, "t.toml")


def test_wildcard_matches_in_numeric_instance_order():
    p = profile('[status.fields.dns]\npaths = ["Device.DNS.Client.Server.*.DNSServer"]\n')
    values = {
        "Device.DNS.Client.Server.10.DNSServer": "10.0.0.10",
        "Device.DNS.Client.Server.2.DNSServer": "10.0.0.2",
        "Device.DNS.Client.Server.1.DNSServer": "",
    }
    assert extract_status(p, values) == {"dns": "10.0.0.2"}


def test_where_tests_siblings_and_reads_missing_as_empty():
    p = profile(
        "[status.fields.gateway]\n"
        'paths = ["Device.Routing.Router.1.IPv4Forwarding.*.GatewayIPAddress"]\n'
        'where = { DestIPAddress = "", Origin = { not_in = ["Static"] } }\n'
    )
    fwd = "Device.Routing.Router.1.IPv4Forwarding."
    values = {
        fwd + "1.DestIPAddress": "10.0.0.0",
        fwd + "1.GatewayIPAddress": "10.1.1.1",
        fwd + "2.Origin": "Static",
        fwd + "2.GatewayIPAddress": "10.2.2.2",
        fwd + "3.GatewayIPAddress": "10.3.3.3",  # no DestIPAddress, no Origin reported
    }
    assert extract_status(p, values) == {"gateway": "10.3.3.3"}


def test_when_gates_a_rule_on_another_path():
    p = profile(
        '[status.fields.wanIp]\npaths = ["Device.IP.Interface.2.IPv4Address.1.IPAddress"]\n'
        'when = { "Device.IP.Interface.2.Status" = ["Up", "Dormant"] }\n'
    )
    addr = {"Device.IP.Interface.2.IPv4Address.1.IPAddress": "192.0.2.1"}
    assert extract_status(p, {**addr, "Device.IP.Interface.2.Status": "up"}) == {
        "wanIp": "192.0.2.1"
    }
    assert extract_status(p, {**addr, "Device.IP.Interface.2.Status": "Down"}) == {}
    assert extract_status(p, addr) == {}


def test_split_pick_and_family():
    p = profile(
        '[status.fields.dns2]\npaths = ["Device.DHCPv4.Client.1.DNSServers"]\nsplit = ","\n'
        'family = "ipv4"\npick = 1\n'
        '[status.fields.ipv6Dns]\npaths = ["Device.DHCPv4.Client.1.DNSServers"]\nsplit = ","\n'
        'family = "ipv6"\n'
    )
    values = {"Device.DHCPv4.Client.1.DNSServers": "2001:db8::53 , 192.0.2.1,,192.0.2.2 bogus"}
    assert extract_status(p, values) == {"dns2": "192.0.2.2", "ipv6Dns": "2001:db8::53"}


def test_ipv6_global_drops_link_local_and_loopback():
    p = profile(
        '[status.fields.ipv6]\npaths = ["Device.IP.Interface.*.IPv6Address.*.IPAddress"]\n'
        'family = "ipv6-global"\n'
    )
    ip = "Device.IP.Interface."
    values = {
        ip + "1.IPv6Address.1.IPAddress": "::1",
        ip + "2.IPv6Address.1.IPAddress": "FE80::1",
        ip + "2.IPv6Address.2.IPAddress": "febf::1",
        ip + "2.IPv6Address.3.IPAddress": "192.0.2.1",
        ip + "2.IPv6Address.4.IPAddress": "2001:db8::7",
    }
    assert extract_status(p, values) == {"ipv6": "2001:db8::7"}


def test_map_with_and_without_default():
    p = profile(
        '[status.fields.simStatus]\npaths = ["Device.A.1.S"]\nmap = { Ok = "1" }\ndefault = "7"\n'
        '[status.fields.networkType]\npaths = ["Device.A.1.S"]\nmap = { Ok = "8" }\n'
    )
    assert extract_status(p, {"Device.A.1.S": "OK"}) == {"simStatus": "1", "networkType": "8"}
    # an unmapped value: the default, or nothing
    assert extract_status(p, {"Device.A.1.S": "odd"}) == {"simStatus": "7"}
    # nothing reported: the default is never invented
    assert extract_status(p, {"Device.A.1.S": ""}) == {}


def test_multiply_changes_units_and_rounds_half_up():
    p = profile(
        '[status.fields.uplinkRate]\npaths = ["Device.A.1.Mbps"]\nmultiply = 1000\n'
        '[status.fields.downlinkRate]\npaths = ["Device.A.1.Bps"]\nmultiply = 0.001\n'
    )
    values = {"Device.A.1.Mbps": "2.5", "Device.A.1.Bps": "1500"}
    assert extract_status(p, values) == {"uplinkRate": 2500, "downlinkRate": 2}


def test_a_value_that_is_not_a_number_is_omitted_for_an_int_field():
    p = profile('[status.fields.upTime]\npaths = ["Device.A.1.T", "Device.A.1.U"]\ntype = "int"\n')
    assert extract_status(p, {"Device.A.1.T": "n/a", "Device.A.1.U": "12"}) == {"upTime": 12}
    assert extract_status(p, {"Device.A.1.T": "nan"}) == {}
    # only digits as xsd:int writes them: not what float() would take besides
    for odd in ("1_000", "1e3", "\u0663\u0664", "inf", "0x10", "12,5", ""):
        assert extract_status(p, {"Device.A.1.T": odd}) == {}, odd
    for plain, shown in ((" 42 ", 42), ("0", 0), ("+3", 3), ("12.5", 13)):
        assert extract_status(p, {"Device.A.1.T": plain}) == {"upTime": shown}, plain


def test_ignore_treats_placeholder_values_as_not_reported():
    p = profile(
        '[status.fields.gateway]\npaths = ["Device.A.1.G", "Device.A.2.G"]\nignore = ["0.0.0.0"]\n'
    )
    assert extract_status(p, {"Device.A.1.G": "0.0.0.0", "Device.A.2.G": "10.0.0.1"}) == {
        "gateway": "10.0.0.1"
    }


def test_named_refs_chain_and_follow_reference_lists():
    refs = (
        '[refs.wan]\npaths = ["Device.IP.Interface.*."]\n'
        'where = { LowerLayers = { glob = "*Device.PPP.Interface.*" } }\n'
        '[refs.ppp]\npaths = ["{wan}.LowerLayers"]\n'
    )
    p = profile(
        '[status.fields.wanIp]\npaths = ["{ppp}.IPCP.LocalIPAddress"]\n'
        '[status.fields.gateway]\npaths = ["{ppp}.IPCP.RemoteIPAddress"]\n',
        refs,
    )
    values = {
        "Device.IP.Interface.1.LowerLayers": "Device.Ethernet.Link.1",
        "Device.IP.Interface.2.LowerLayers": "Device.Ethernet.Link.2, Device.PPP.Interface.3.",
        "Device.PPP.Interface.3.IPCP.LocalIPAddress": "198.51.100.9",
        "Device.PPP.Interface.3.IPCP.RemoteIPAddress": "198.51.100.1",
    }
    assert extract_status(p, values) == {"gateway": "198.51.100.1", "wanIp": "198.51.100.9"}


def test_a_dangling_reference_yields_nothing():
    p = profile('[status.fields.lanIp]\npaths = ["{Device.X.1.Ref}.IPAddress"]\n')
    assert extract_status(p, {"Device.X.1.Ref": "Device.IP.Interface.9"}) == {}
    assert extract_status(p, {"Device.X.1.Ref": ""}) == {}


# --- the simulator's routers ------------------------------------------------------------------

SIM_VALUES = {
    "wan_ip": "100.64.0.2",
    "wan_gw": "100.64.0.1",
    "wan_ipv6": "2001:db8:0:1::2",
    "rat": "NR",
    "rsrp": "-95",
    "rssi": "-67",
    "rsrq": "-11",
    "up_kbps": "150000",
    "down_kbps": "1000000",
    "dsl_up": "36408",
    "dsl_down": "77008",
    "mac_lan": "0A:5E:11:00:00:08",
    "mac_wan": "0A:5E:11:00:00:09",
    "cr_url": "http://100.64.0.2:7547/",
}


@pytest.mark.parametrize(
    ("tree", "fields"),
    [
        ("tr181-mobile", set(REPORTED_STATUS_FIELDS) - {"signalStrength"}),
        ("tplink-tr181", {"lanIp", "subnetMask", "gateway", "wanIp", "upTime", "dns", "dns2"}),
        (
            "tr098-dsl",
            {"lanIp", "subnetMask", "gateway", "wanIp", "upTime", "dns", "dns2"}
            | {"uplinkRate", "downlinkRate"},
        ),
    ],
)
def test_simulated_routers_report_every_field_their_tree_holds(profiles, tree, fields):
    path = TREES / f"{tree}.json"
    if not path.exists():
        pytest.fail(f"simulator tree {path.name} not present")
    params = json.loads(path.read_text())["parameters"]
    values = {
        name: re.sub(r"\{(\w+)\}", lambda m: SIM_VALUES.get(m.group(1), "x"), entry[0])
        for name, entry in params.items()
    }
    prof = profiles.for_root(json.loads(path.read_text())["root"])
    status = extract_status(prof, values)
    assert set(status) == fields
    assert status["wanIp"] == "100.64.0.2"
    assert status["gateway"] == "100.64.0.1"
    assert extract_identity(prof, values)["macAddress"] == "0A:5E:11:00:00:08"


def test_extraction_speed(tr181, capsys):
    # a full mobile router's reply is a few hundred values; add counters and Wi-Fi noise
    values = mobile_values()
    for i in range(1, 5):
        for stat in ("BytesSent", "BytesReceived", "PacketsSent", "PacketsReceived", "Errors"):
            values[f"Device.IP.Interface.{i}.Stats.{stat}"] = "123456"
            values[f"Device.Ethernet.Interface.{i}.Stats.{stat}"] = "123456"
    for i in range(1, 30):
        values[f"Device.WiFi.AccessPoint.{i % 4 + 1}.AssociatedDevice.{i}.MACAddress"] = "x"
        values[f"Device.WiFi.AccessPoint.{i % 4 + 1}.AssociatedDevice.{i}.SignalStrength"] = "-50"
    rounds = 2000
    start = time.perf_counter()
    for _ in range(rounds):
        extract_status(tr181, values)
        extract_identity(tr181, values)
    took = (time.perf_counter() - start) / rounds
    with capsys.disabled():
        print(f"\n  status+identity over {len(values)} values: {took * 1e6:.0f} us")


def test_text_longer_than_any_field_allows_is_not_reported(tr181):
    # Only the body limit bounds what a CPE puts in a value; a field takes the next source
    # or stays out rather than carry it into the record and every API answer.
    values = mobile_values()
    values["Device.ManagementServer.ConnectionRequestURL"] = "http://192.0.2.1/" + "c" * 5000
    values["Device.DeviceInfo.ModelName"] = "M" * 257
    values["Device.IP.Interface.1.IPv4Address.1.IPAddress"] = "1" * 10_000
    identity = extract_identity(tr181, values)
    assert "connectionRequestUrl" not in identity and "modelName" not in identity
    assert "lanIp" not in extract_status(tr181, values)
    values["Device.DeviceInfo.ModelName"] = "M" * 256
    assert extract_identity(tr181, values)["modelName"] == "M" * 256


def test_a_value_that_is_not_what_its_seed_field_holds_is_not_reported(tr181):
    # Found by fuzzing: "not-a-number" was stored as lanIp and -1 (an unsignedInt) as upTime.
    values = mobile_values()
    values["Device.IP.Interface.1.IPv4Address.1.IPAddress"] = "not-a-number"
    values["Device.IP.Interface.1.IPv4Address.1.SubnetMask"] = "255.255.255.256"
    values["Device.DeviceInfo.UpTime"] = "-1"
    status = extract_status(tr181, values)
    assert not {"lanIp", "subnetMask", "upTime"} & set(status)
    assert status["wanIp"]  # the rest as before
    # a fallback rule still gets its turn: the second address of the LAN interface
    values["Device.IP.Interface.1.IPv4Address.2.IPAddress"] = "192.168.77.1"
    values["Device.IP.Interface.1.IPv4Address.2.Status"] = "Enabled"
    assert extract_status(tr181, values)["lanIp"] == "192.168.77.1"


def test_fields_a_faulted_name_could_have_held():
    from acsd.provisioning.status import fields_read_at

    tr181 = load_profiles().get("tr181")
    pool_ref = "Device.DHCPv4.Server.Pool.1.Interface"
    lan = {pool_ref: "Device.IP.Interface.1"}
    fields = ("lanIp", "subnetMask", "dns", "upTime")

    def held(values: dict[str, str], *names: str) -> list[str]:
        return fields_read_at(tr181, values, fields, names)

    # the LAN leaf, its object or an object above it; also its `where` key (Status). dns
    # is shown only while the WAN interface is Up, and the WAN is an IP interface that
    # the refs find among all of them (one stacked on PPP, say): any of them counts for it.
    assert held(lan, "Device.IP.Interface.1.IPv4Address.1.IPAddress") == ["lanIp", "dns"]
    assert held(lan, "Device.IP.Interface.1.IPv4Address.1.Status") == [
        "lanIp",
        "subnetMask",
        "dns",
    ]
    assert held(lan, "Device.IP.Interface.") == ["lanIp", "subnetMask", "dns"]
    assert held(lan, "Device.") == list(fields)
    # the ref pointing elsewhere: the fallback path (IP.Interface.1) still counts
    assert held({pool_ref: "Device.IP.Interface.3"}, "Device.IP.Interface.3.") == [
        "lanIp",
        "subnetMask",
        "dns",
    ]
    # the ref itself unread: where it is read counts
    assert held({}, pool_ref) == ["lanIp", "subnetMask"]
    # names that hold none of them (but the WAN's Status, for dns)
    assert held(lan, "Device.Cellular.Interface.") == []
    assert held(lan, "Device.IP.Interface.2.") == ["dns"]
    assert held(lan, "Device.DNS.Client.Server.") == ["dns"]
    assert held(lan) == []


@pytest.mark.parametrize(
    ("profile", "leaf"),
    [
        # (the vendor leaves public sources show: see each profile's comment)
        ("huawei", "X_HW_IPv6.IPv6Address.1.IPAddress"),
        ("zte", "X_ZTE-COM_ExternalIPv6Address"),
        ("nokia-cmcc", "X_CMCC_IPv6IPAddress"),
    ],
)
def test_tr098_vendor_ipv6_address_of_the_default_connection(profiles, profile, leaf):
    # TR-098 has no standard IPv6 parameters: a vendor profile reads its firmware's leaf on
    # the default connection, and takes no link-local address nor one of a connection
    # that is down.
    ppp = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1."
    values = {**dsl_values(), ppp + leaf: "2001:db8:10::1"}
    p = profiles.get(profile)
    assert extract_status(p, values) == {**DSL_STATUS, "ipv6": "2001:db8:10::1"}
    assert "ipv6" not in extract_status(p, {**values, ppp + leaf: "fe80::1"})
    assert "ipv6" not in extract_status(p, {**values, ppp + "ConnectionStatus": "Disconnected"})
    # plain tr098 maps none
    assert "ipv6" not in extract_status(profiles.get("tr098"), values)
