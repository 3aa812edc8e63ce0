"""genieacs-sim (genieacs/genieacs-sim, Node) with its default data model, as it really
answers, against the running daemon: acsd must read its status and apply wifi/DHCP
settings without ever asking it for a name it does not hold.

What the CPE here does comes from the simulator's source:

- ``genieacs-sim`` (the worker): the data model CSV read into ``device``: an object row's
  key gets a trailing dot and holds ``[writable]`` only; a parameter's holds ``[writable,
  value, type]``.
- ``methods.js``:
  ``GetParameterNames``: every key that starts with ParameterPath (NextLevel false), or
  the direct children (NextLevel true); a path it lacks lists nothing, no fault.
  ``GetParameterValues``: ``device[name][1]`` for each name asked. In the current release
  (xml-parser.js) a name it lacks, or an object (``encodeEntities(undefined)``), throws
  and the simulator process dies; in the libxmljs release (``if (device[name])``) a name
  it lacks is left out and an object answers one ParameterValueStruct named as the
  partial path, without value or type: nothing below it.
  ``SetParameterValues``: ``device[name][1] = ...``: a name it lacks throws (it dies).
  ``AddObject``: the next free instance, with a copy of the fields of the table's other
  rows (default values): an empty table's new row has no field at all.
  ``DeleteObject``: every key under the row.
- ``simulator.js`` (``handleMethod``): a method ``methods.js`` lacks gets fault 9000.

The data model is a part of ``data_model_202BC1-BM632w-8KA8WA1151100043.csv``, the one it
runs with by default (tests/data/genieacs-sim/bm632w.csv: the objects acsd reads and
writes, with its public addresses moved to documentation ranges). Its HTTP is as
test_cpe_stacks.GenieacsSim and RawHttp write it.
"""

from __future__ import annotations

import copy
import csv
from pathlib import Path

from acsd.cwmp import rpc
from acsd.cwmp.soap import parse_envelope
from api_world import seed_body
from test_cpe_stacks import GenieacsSim, N, Node, RawHttp

MODEL = Path(__file__).parent / "data" / "genieacs-sim" / "bm632w.csv"
INFORM_PARAMS = [  # methods.js, INFORM_PARAMS (the InternetGatewayDevice ones)
    "InternetGatewayDevice.DeviceInfo.SpecVersion",
    "InternetGatewayDevice.DeviceInfo.HardwareVersion",
    "InternetGatewayDevice.DeviceInfo.SoftwareVersion",
    "InternetGatewayDevice.DeviceInfo.ProvisioningCode",
    "InternetGatewayDevice.ManagementServer.ParameterKey",
    "InternetGatewayDevice.ManagementServer.ConnectionRequestURL",
    "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ExternalIPAddress",
]
W = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1."
H = "InternetGatewayDevice.LANDevice.1.LANHostConfigManagement."


class Died(AssertionError):
    """What kills the simulator process (an exception thrown in handleMethod)."""


def load_model(**overrides: str) -> dict[str, list]:
    """The CSV as the genieacs-sim worker reads it into ``device``."""
    device: dict[str, list] = {}
    with MODEL.open(newline="") as f:
        for row in csv.DictReader(f):
            is_object = row["Object"] == "true"
            key = row["Parameter"] + ("." if is_object else "")
            device[key] = [row["Writable"] == "true"]
            if not is_object:
                device[key] += [row["Value"] or "", row["Value type"]]
    for key, value in overrides.items():
        device[key][1] = value
    return device


def ont_model() -> dict[str, list]:
    """The model as another Huawei (an ONT's OUI and product class, its LAN enabled):
    one that no profile says anything of partial paths for."""
    model = load_model()
    model["DeviceID.OUI"][1] = "00E0FC"
    model["DeviceID.ProductClass"][1] = "HG8245Q2"
    model[H + "IPInterface.1.Enable"][1] = "true"
    return model


class Sim:
    """One genieacs-sim process: ``release`` "current" (dies of names it lacks and of
    partial paths) or "libxmljs" (answers them as above); "expanding" is no release of it
    but firmware that names the object beside its parameters, and faults 9005."""

    def __init__(self, device: dict[str, list], serial: str, release: str = "current") -> None:
        self.device = device
        self.release = release
        device["DeviceID.SerialNumber"][1] = serial  # simulator.js start()
        self.stack = GenieacsSim()
        #: (path, NextLevel) of each GetParameterNames asked
        self.listed: list[tuple[str, bool]] = []

    def paths(self) -> list[str]:  # methods.js getSortedPaths
        return sorted(p for p in self.device if p.split(".")[0] != "DeviceID")

    def inform(self, event: str) -> bytes:
        dev = self.device
        device_id = [
            N(tag, {}, dev[f"DeviceID.{key}"][1])
            for tag, key in [
                ("Manufacturer", "Manufacturer"),
                ("OUI", "OUI"),
                ("ProductClass", "ProductClass"),
                ("SerialNumber", "SerialNumber"),
            ]
        ]
        events = [N("EventStruct", {}, [N("EventCode", {}, event), N("CommandKey", {}, None)])]
        params = [
            N(
                "ParameterValueStruct",
                {},
                [N("Name", {}, p), N("Value", {"xsi:type": dev[p][2]}, dev[p][1])],
            )
            for p in INFORM_PARAMS
            if p in dev
        ]
        body = N(
            "cwmp:Inform",
            {},
            [
                N("DeviceId", {}, device_id),
                N("Event", {"soap-enc:arrayType": "cwmp:EventStruct[1]"}, events),
                N("MaxEnvelopes", {}, "1"),
                N("CurrentTime", {}, "2026-12-06T22:00:00.000Z"),
                N("RetryCount", {}, "0"),
                N(
                    "ParameterList",
                    {"soap-enc:arrayType": "cwmp:ParameterValueStruct[16]"},
                    params,
                ),
            ],
        )
        return self.stack.envelope("inform1", body)

    def answer(self, request: rpc.Message) -> Node:
        dev = self.device
        if isinstance(request, rpc.GetParameterNames):
            path = request.path
            self.listed.append((path, request.next_level))
            if request.next_level:
                names = []
                for p in self.paths():
                    if p.startswith(path) and len(p) > len(path) + 1:
                        i = p.find(".", len(path) + 1)
                        if i == -1 or i == len(p) - 1:
                            names.append(p)
            else:
                names = [p for p in self.paths() if p.startswith(path)]
            infos = [
                N(
                    "ParameterInfoStruct",
                    {},
                    [N("Name", {}, p), N("Writable", {}, str(dev[p][0]).lower())],
                )
                for p in names
            ]
            array = {"soap-enc:arrayType": f"cwmp:ParameterInfoStruct[{len(names)}]"}
            return N("cwmp:GetParameterNamesResponse", {}, [N("ParameterList", array, infos)])
        if isinstance(request, rpc.GetParameterValues):
            structs = []
            for name in request.names:
                if self.release == "current" and (name not in dev or len(dev[name]) < 2):
                    raise Died(f"GetParameterValues of {name}")
                if name not in dev and self.release == "expanding":
                    return self.stack.fault(9005, "Invalid parameter name")
                if name not in dev:
                    continue
                if self.release == "expanding" and name.endswith("."):
                    # the object's own name, and then (as TR-069 says) what is below it
                    below = [p for p in self.paths() if p.startswith(name) and len(dev[p]) > 1]
                    structs += [
                        N("ParameterValueStruct", {}, [N("Name", {}, p), N("Value", {}, value)])
                        for p, value in [(name, None), *((p, dev[p][1]) for p in below)]
                    ]
                    continue
                entry = dev[name]
                value = entry[1] if len(entry) > 1 else None
                attrs = {"xsi:type": entry[2]} if len(entry) > 2 else {}
                structs.append(
                    N("ParameterValueStruct", {}, [N("Name", {}, name), N("Value", attrs, value)])
                )
            array = {"soap-enc:arrayType": f"cwmp:ParameterValueStruct[{len(request.names)}]"}
            return N("cwmp:GetParameterValuesResponse", {}, [N("ParameterList", array, structs)])
        if isinstance(request, rpc.SetParameterValues):
            for p in request.parameters:
                if p.name not in dev or len(dev[p.name]) < 2:
                    raise Died(f"SetParameterValues of {p.name}")
                dev[p.name][1:] = [p.value, p.type]
            return N("cwmp:SetParameterValuesResponse", {}, [N("Status", {}, "0")])
        if isinstance(request, rpc.AddObject):
            obj = request.object_name
            number = 1
            while f"{obj}{number}." in dev:
                number += 1
            dev[f"{obj}{number}."] = [True]
            defaults = {"xsd:boolean": "false", "xsd:int": "0", "xsd:unsignedInt": "0"}
            for p in self.paths():
                if p.startswith(obj) and len(p) > len(obj):
                    n = f"{obj}{number}{p[p.index('.', len(obj)) :]}"
                    if n not in dev:
                        entry = dev[p]
                        kind = entry[2] if len(entry) > 2 else None
                        dev[n] = [entry[0], defaults.get(kind, ""), kind]
            if self.release == "expanding":  # a row as TR-098 defines it
                for leaf, kind in [("Chaddr", "xsd:string"), ("Yiaddr", "xsd:string")]:
                    dev.setdefault(f"{obj}{number}.{leaf}", [True, "", kind])
                dev.setdefault(f"{obj}{number}.Enable", [True, "false", "xsd:boolean"])
            status = [N("InstanceNumber", {}, str(number)), N("Status", {}, "0")]
            return N("cwmp:AddObjectResponse", {}, status)
        if isinstance(request, rpc.DeleteObject):
            for p in [p for p in dev if p.startswith(request.object_name)]:
                del dev[p]
            return N("cwmp:DeleteObjectResponse", {}, [N("Status", {}, "0")])
        return self.stack.fault(9000, "Method not supported")

    def session(self, daemon, event: str = "2 PERIODIC", *, may_die: bool = False) -> list[str]:
        """One session: Inform, the empty POST, each request answered until the 204.
        Returns the methods acsd asked for. ``may_die``: what kills the process ends the
        session there ("died" last): its connection closes, the request unanswered."""
        headers = [
            ("Content-Type", 'text/xml; charset="utf-8"'),
            ("Authorization", "Basic Og=="),
            ("Connection", "keep-alive"),
        ]
        http = RawHttp(daemon.cwmp_url, headers, cookies="whole")
        answer = http.post(self.inform(event))
        assert answer.status == 200, answer.body
        answer = http.post(None)
        asked = []
        while answer.status == 200:
            self.stack.read(answer.body)
            env = parse_envelope(answer.body)
            asked.append(env.body.METHOD)
            try:
                reply = self.answer(env.body)
            except Died:
                if not may_die:
                    raise
                http.close()
                return [*asked, "died"]
            answer = http.post(self.stack.envelope(env.id or "", reply))
        assert answer.status == 204, (answer.status, answer.body)
        http.close()
        return asked


def test_the_default_data_model_is_read_and_provisioned_without_a_name_it_lacks(module_daemon):
    daemon = module_daemon
    serial = "GSIMBM632W01"
    daemon.apply(seed_body(serial, "192.168.1"))
    sim = Sim(load_model(), serial)
    asked = sim.session(daemon)
    # the profile says so up front: names listed first, never a partial path asked for
    assert asked[0] == "GetParameterNames"
    assert "SetParameterValues" in asked
    dev = sim.device
    assert dev[W + "SSID"][1] == "SkyNet"
    assert dev[H + "MinAddress"][1] == "192.168.1.100"
    assert dev[H + "MaxAddress"][1] == "192.168.1.200"
    # an empty table's new row has no field to set: it goes again, and the job says why
    assert not [p for p in dev if p.startswith(H + "DHCPStaticAddress.1")]
    device = daemon.device_json(serial)
    assert device["status"]["lanIp"] == "192.168.1.1"
    assert device["status"]["wanIp"] == "203.0.113.139"
    assert "without Chaddr" in str(device["job"])

    # later sessions read the plan's leaves by name, and list only the table of the
    # operator's rows (which rows it has now)
    assert sim.session(daemon) == ["GetParameterNames", "GetParameterValues"]
    assert daemon.device_json(serial)["status"]["upTime"] == 213138


def test_wifi_on_turns_on_the_bm632w_wlan_switch(module_daemon):
    # The dump has no RadioEnabled: its whole-WLAN switch is LANDevice.1.X_HUAWEI_WLANEnable.
    # Found off, wifi "enabled" turns it on with the SSID.
    daemon = module_daemon
    serial = "GSIMBM632W02"
    daemon.apply(seed_body(serial, "192.168.1"))
    switch = "InternetGatewayDevice.LANDevice.1.X_HUAWEI_WLANEnable"
    sim = Sim(load_model(**{switch: "false"}), serial)
    sim.session(daemon)
    assert sim.device[switch][1] == "true"
    assert sim.device[W + "Enable"][1] == "true"
    # (the seed's reservation stays on the job: the dump's table is empty, see above)
    faults = daemon.device_json(serial)["job"]["faults"]
    assert faults and all(f["setting"].startswith("dhcp.reservations") for f in faults)
    # off again by hand: put back at the next drift check
    sim.device[switch][1] = "false"
    sim.session(daemon, "1 BOOT")
    assert sim.device[switch][1] == "true"


def test_a_cpe_that_answers_a_partial_path_with_the_object_alone_is_listed(module_daemon):
    # Another OUI: the plain Huawei profile, which knows nothing of it. The libxmljs
    # release answers the partial path with the object itself; acsd learns from that
    # (this CPE and its kind) and lists instead.
    daemon = module_daemon
    serial = "GSIMLEARN001"
    daemon.apply(seed_body(serial, "192.168.1"))
    sim = Sim(ont_model(), serial, release="libxmljs")
    asked = sim.session(daemon)
    assert asked[:2] == ["GetParameterValues", "GetParameterNames"]
    assert sim.device[W + "SSID"][1] == "SkyNet"
    assert daemon.device_json(serial)["status"]["lanIp"] == "192.168.1.1"

    # a second one of its kind is listed from its first read on
    other = "GSIMLEARN002"
    daemon.apply(seed_body(other, "192.168.1"))
    asked = Sim(ont_model(), other, release="libxmljs").session(daemon)
    assert asked[0] == "GetParameterNames"


def test_a_cpe_that_dies_of_a_partial_path_is_listed_after_two_sessions(module_daemon):
    # The current release with a data model no profile knows (here: another product
    # class): it dies of the partial path, starts again and Informs anew, so no answer
    # ever shows acsd that it does not expand them. Two such sessions in a row do.
    daemon = module_daemon
    serial = "GSIMDIES0001"
    daemon.apply(seed_body(serial, "192.168.1"))
    model = ont_model()
    model["DeviceID.ProductClass"][1] = "HG8245Q3"
    sim = Sim(model, serial)
    assert Sim(copy.deepcopy(model), serial).session(daemon, may_die=True) == [
        "GetParameterValues",
        "died",
    ]
    assert Sim(copy.deepcopy(model), serial).session(daemon, may_die=True) == [
        "GetParameterValues",
        "died",
    ]
    # the second session is over when the third Informs: listed from then on
    asked = sim.session(daemon)
    assert asked[0] == "GetParameterNames" and "SetParameterValues" in asked
    assert sim.device[W + "SSID"][1] == "SkyNet"
    assert daemon.device_json(serial)["status"]["lanIp"] == "192.168.1.1"
    # and so is the next one of its kind, from its first read on
    other = "GSIMDIES0002"
    daemon.apply(seed_body(other, "192.168.1"))
    assert Sim(copy.deepcopy(model), other).session(daemon)[0] == "GetParameterNames"


def test_one_lost_answer_to_a_partial_path_does_not_make_a_cpe_listed(module_daemon):
    # A line that drops once mid-read is no proof: the answer of the next session
    # (the object's parameters, as TR-069 says) clears it.
    daemon = module_daemon
    serial = "EXPANDDROP01"
    daemon.apply(seed_body(serial, "192.168.1"))
    model = ont_model()
    model["DeviceID.ProductClass"][1] = "HG8245Q4"
    dropping = Sim(copy.deepcopy(model), serial)  # dies of the partial path, once
    assert dropping.session(daemon, may_die=True) == ["GetParameterValues", "died"]
    for _ in range(2):
        sim = Sim(copy.deepcopy(model), serial, release="expanding")
        assert sim.session(daemon)[0] == "GetParameterValues"
    # lost once more: one in a row again, still read the usual way
    assert Sim(copy.deepcopy(model), serial).session(daemon, may_die=True) == [
        "GetParameterValues",
        "died",
    ]
    sim = Sim(copy.deepcopy(model), serial, release="expanding")
    assert sim.session(daemon)[0] == "GetParameterValues"
    assert not [path for path, _ in sim.listed if path == "InternetGatewayDevice."]


def test_answers_too_large_to_read_are_no_lost_answers(module_daemon):
    # An answer over max_body ends the session with the read outstanding too, but the
    # CPE did answer: the read is split (session.read_split), not listed.
    daemon = module_daemon
    serial = "EXPANDHUGE01"
    model = ont_model()
    model["DeviceID.ProductClass"][1] = "HG8245Q5"
    for _ in range(2):
        sim = Sim(copy.deepcopy(model), serial, release="expanding")
        http = RawHttp(daemon.cwmp_url, [("Authorization", "Basic Og==")], cookies="whole")
        assert http.post(sim.inform("2 PERIODIC")).status == 200
        env = parse_envelope(http.post(None).body)
        assert isinstance(env.body, rpc.GetParameterValues)
        assert any(name.endswith(".") for name in env.body.names)
        answer = N("cwmp:GetParameterValuesResponse", {}, [N("ParameterList", {}, [])])
        # (whitespace after the envelope: an answer of over 1 MiB, the default max_body)
        huge = sim.stack.envelope(env.id or "", answer) + b" " * (1024 * 1024)
        assert http.post(huge).status == 413
        http.close()
    sim = Sim(copy.deepcopy(model), serial, release="expanding")
    assert sim.session(daemon)[0] == "GetParameterValues"


def test_firmware_that_names_the_object_beside_its_parameters_is_read_as_usual(module_daemon):
    # It does expand partial paths: no GetParameterNames, not for it, not for its kind.
    daemon = module_daemon
    serial = "EXPANDING001"
    daemon.apply(seed_body(serial, "192.168.1"))
    model = ont_model()
    model["DeviceID.ProductClass"][1] = "HG8245H"
    sim = Sim(model, serial, release="expanding")
    asked = sim.session(daemon)
    assert asked[0] == "GetParameterValues"
    # Not listed as a CPE that does not expand them is (partial paths whole, NextLevel
    # false): only the objects that the search for a name it lacks (a 9005) lists, each once
    assert all(next_level for _path, next_level in sim.listed), sim.listed
    assert len(set(sim.listed)) == len(sim.listed)
    assert sim.device[W + "SSID"][1] == "SkyNet"


def test_what_is_kept_of_such_a_cpe_survives_only_in_its_own_shape():
    # kept with the device: a row edited by hand must not crash its sessions
    from acsd.provisioning.jobs import new_memory

    stored = {"partialPaths": False, "held": ["InternetGatewayDevice.DeviceInfo.UpTime", 3]}
    memory = new_memory(stored, bootstrap=False)
    assert memory["partialPaths"] is False
    assert memory["held"] == ["InternetGatewayDevice.DeviceInfo.UpTime"]
    # a reset may bring another data model: listed again, but still not expanded
    memory = new_memory(stored, bootstrap=True)
    assert memory["partialPaths"] is False and "held" not in memory
    # what says nothing is not kept at all: every open session holds its router's memory
    for stored in ({"partialPaths": "no", "held": "x"}, {"held": [3]}, None):
        memory = new_memory(stored, bootstrap=False)
        assert "partialPaths" not in memory and "held" not in memory, stored
