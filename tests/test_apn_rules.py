"""The rules that tie APN devices to CWMP sessions, and the DataContract codec, without a
daemon: MCC/MNC from an IMSI, number forms, the IMEI lock's decisions, XML edge cases."""

from __future__ import annotations

from dataclasses import replace

import pytest
from lxml import etree

from acsd.api import apn_xml
from acsd.api.apn_wire import DEVICE
from acsd.provisioning.apn import (
    ACTIVE,
    CONNECTED,
    DISCONNECTED,
    PENDING,
    REFUSED,
    SimReport,
    apply_session,
    msisdn_key,
    plmn,
    sim_report,
)
from acsd.simkeys import CLI_PATTERN, parse_cli
from acsd.store.base import ApnDeviceRecord


@pytest.mark.parametrize(
    ("imsi", "mcc", "mnc"),
    [
        ("001010000000001", "001", "01"),  # the test network
        ("238011234567890", "238", "01"),  # Denmark: two-digit MNCs
        ("310260123456789", "310", "260"),  # USA: three-digit MNCs
        ("405854123456789", "405", "854"),  # India's 405 series
        ("12345", None, None),
        (None, None, None),
    ],
)
def test_mcc_and_mnc_come_from_the_imsi(imsi, mcc, mnc):
    assert plmn(imsi) == (mcc, mnc)


def test_msisdns_compare_in_international_form():
    assert msisdn_key("+45 12 34 56 78") == "4512345678"
    assert msisdn_key("004512345678") == "4512345678"
    assert msisdn_key("4512345678") == "4512345678"
    assert msisdn_key("") is None


def test_the_cli_pattern_is_the_seeds():
    assert parse_cli("(+45)12345678") == ("msisdn:4512345678", None, "4512345678")
    assert parse_cli("(45)12345678") == ("msisdn:4512345678", None, "4512345678")
    # a country code's leading zeros are the international call prefix, no part of it
    for written in ("(0045)12345678", "(+0045)12345678", "(045)12345678"):
        assert parse_cli(written) == ("msisdn:4512345678", None, "4512345678"), written
    # no country's code: kept apart from every real one, as one 0
    assert (
        parse_cli("(000)12345678")
        == parse_cli("(0)12345678")
        == ("msisdn:012345678", None, "012345678")
    )
    assert parse_cli("001010000000001") == ("imsi:001010000000001", "001010000000001", None)
    for bad in ("(+)12345678", "(+123456)12345", "(+45)1234", "1" * 13, "1" * 17, "(+45)123456 "):
        assert parse_cli(bad) is None, bad
    assert CLI_PATTERN.groupindex.keys() >= {"msisdn", "imsi"}


def _device(**kw) -> ApnDeviceRecord:
    base = dict(id="a" * 24, account="A", network="N", cli="(+45)12345678", cli_key="k")
    return ApnDeviceRecord(**{**base, **kw})


def _report(**kw) -> SimReport:
    base = dict(at=1000.0, router="r" * 24, serial="SER1", imsi="001010000000001", mcc="001",
                mnc="01", attached=True, connection_time=100, imei="359999000000011")  # fmt: skip
    return SimReport(**{**base, **kw})


def test_a_session_with_the_modem_attached_connects_the_device():
    new, audit = apply_session(_report(), _device())
    assert audit is None and new is not None
    assert (new.network_status, new.status) == (CONNECTED, ACTIVE)
    assert (new.last_connected_start, new.last_connected_end, new.last_sync) == (900, 1000, 1000)
    assert (new.last_connected_mcc, new.last_connected_mnc) == ("001", "01")
    assert new.imei is None and new.router == "r" * 24  # not locked: IMEI not kept


def test_a_detached_modem_disconnects_and_keeps_the_last_connection():
    before = _device(network_status=CONNECTED, last_connected_start=10.0, last_connected_end=20.0)
    new, _ = apply_session(_report(attached=False), before)
    assert new.network_status == DISCONNECTED and new.last_sync == 1000
    assert (new.last_connected_start, new.last_connected_end) == (10.0, 20.0)


def test_the_lock_records_then_refuses_once_then_accepts_the_right_modem_again():
    first, audit = apply_session(_report(), _device(lock_imei=True))
    assert first.imei == "359999000000011" and first.version == 2
    assert audit.action == "apn.device.imei_locked"
    swapped = _report(imei="359999000000029", at=2000.0)
    refused, audit = apply_session(swapped, first)
    assert (refused.status, refused.network_status) == (REFUSED, DISCONNECTED)
    assert refused.imei == "359999000000011" and refused.refused_imei == "359999000000029"
    assert refused.last_connected_end == first.last_connected_end  # no connection recorded
    assert audit.action == "apn.device.refused" and audit.after["RefusedIMEI"] == swapped.imei
    again, audit = apply_session(replace(swapped, at=3000.0), refused)
    assert again.status == REFUSED and audit is None
    back, audit = apply_session(_report(at=4000.0), again)
    assert (back.status, back.network_status, back.refused_imei) == (ACTIVE, CONNECTED, None)


def test_sim_report_reads_the_profile_fields():
    report = sim_report(
        {"imsi": "310260123456789", "iccid": "8901 2600 0000 0000 0012", "msisdn": "+15551234"},
        {"networkType": "8", "connectionTime": 30},
        at=5.0, router="r", serial="S",
    )  # fmt: skip
    assert (report.mcc, report.mnc, report.iccid) == ("310", "260", "89012600000000000012")
    assert report.msisdn == "15551234" and report.attached and report.connection_time == 30
    assert not sim_report({}, {"networkType": "1"}, at=0, router="r", serial="S").attached
    assert _device().status == PENDING


def test_xml_values_are_escaped_and_nil_is_written_for_none():
    doc = {name: None for name, _ in DEVICE.members}
    doc.update({"CLI": "(+45)12345678", "Description": "<&>", "Status": 2, "Enabled": False,
                "ProvisioningMetaData": {"k&": None}})  # fmt: skip
    raw = apn_xml.wrapper_xml({"Success": True, "Code": 200, "Data": doc}, DEVICE)
    root = etree.fromstring(raw)
    ns = f"{{{apn_xml.NS}}}"
    data = root.find(ns + "Data")
    assert data.find(ns + "Description").text == "<&>"
    assert data.find(ns + "Status").text == "refused"
    assert data.find(ns + "Enabled").text == "false"
    assert data.find(ns + "Hints").get(f"{{{apn_xml.XSI}}}nil") == "true"
    assert root.find(ns + "Meta").get(f"{{{apn_xml.XSI}}}nil") == "true"
    # What is written reads back as the same document.
    device = (
        etree.tostring(data).replace(b"<Data", b"<APNDevice").replace(b"</Data>", b"</APNDevice>")
    )
    assert apn_xml.parse(device, DEVICE) == doc


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"<APNDevice xmlns='urn:other'/>",
        b"<?xml version='1.0'?><!DOCTYPE a SYSTEM 'file:///etc/passwd'><APNDevice/>",
        b"not xml",
    ],
)
def test_unusable_xml_bodies(raw):
    with pytest.raises(apn_xml.XmlBodyError):
        apn_xml.parse(raw, DEVICE)


def _device_xml(inner: str) -> bytes:
    return f"<APNDevice xmlns='{apn_xml.NS}'>{inner}</APNDevice>".encode()


def test_bad_xml_members_name_their_path():
    with pytest.raises(apn_xml.XmlFieldError) as err:
        apn_xml.parse(_device_xml("<Hints><BillingCycleDay>x</BillingCycleDay></Hints>"), DEVICE)
    assert err.value.path == "Hints.BillingCycleDay"
    with pytest.raises(apn_xml.XmlFieldError) as err:
        apn_xml.parse(_device_xml("<ProvisioningMetaData><x/></ProvisioningMetaData>"), DEVICE)
    assert err.value.path == "ProvisioningMetaData"
