"""One router's parameter tree and the CWMP operations on it (GPV, GPN, SPV, GPA, SPA,
AddObject, DeleteObject).

Values live in one dict per router, copied from the template at start-up; the leaf metadata
and the object list stay shared with the template until AddObject/DeleteObject changes the
shape of this router's tree (copy on write), so thousands of routers cost little more than
their values.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from acsd.cwmp import rpc
from acsd.sim.template import PLACEHOLDER, Leaf, PathRules, Template, object_paths

# Seconds between power-on and the WAN link coming up; "link_uptime" values lag "uptime".
LINK_DELAY = 8

_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?$")
# TR-181: an IPv4Address entry's IPAddress and SubnetMask "can only be modified if the
# AddressingType is Static"; the DHCP client's entry is its own.
_STATIC_ONLY = re.compile(r"^(.*\.IPv4Address\.\d+\.)(IPAddress|SubnetMask)$")
#: TR-181 WPA passphrases: 8 to 63 characters (an empty one is refused, 9007)
_PASSPHRASE_8_63 = re.compile(r"^Device\.WiFi\.AccessPoint\.\d+\.Security\.KeyPassphrase$")
#: TR-181 security modes: ModeEnabled is an enumerationRef to ModesSupported, the list of
#: modes this access point can run (a 6 GHz one lists no WPA2 and no None: Wi-Fi 6E allows
#: only WPA3-SAE and OWE there), and firmware refuses any other (9007)
_MODE_ENABLED = re.compile(r"^(Device\.WiFi\.AccessPoint\.\d+\.Security\.)ModeEnabled$")
#: TR-098 address lists of at most 64 characters (list of IPAddress, maxLength 64): a
#: firmware that follows the model refuses a longer value (9007)
_LIST_64 = re.compile(
    r"^InternetGatewayDevice\.(LANDevice\.\d+\.LANHostConfigManagement|WANDevice\.\d+\."
    r"WANConnectionDevice\.\d+\.WAN(IP|PPP)Connection\.\d+)\.(DNSServers|IPRouters)$"
)
_DHCP_CLIENT_ENABLE = re.compile(r"^(Device\.DHCPv4\.Client\.\d+\.)Enable$")
# What a TR-181 DHCPv4 client's lease made, and takes away when the client stops: entries
# "auto-created and auto-deleted as IP addresses are added and deleted via DHCP".
# (instance pattern, leaf, value, also on the client's Interface)
_LEASED = (
    (r"{iface}\.IPv4Address\.\d+\.", "AddressingType", "DHCP", False),
    (r"Device\.Routing\.Router\.\d+\.IPv4Forwarding\.\d+\.", "Origin", "DHCPv4", True),
    (r"Device\.DNS\.Client\.Server\.\d+\.", "Type", "DHCPv4", True),
)
_LEASE_LEAVES = {
    "DHCPStatus": "Init",
    "IPAddress": "",
    "SubnetMask": "",
    "IPRouters": "",
    "DNSServers": "",
    "DHCPServer": "",
    "LeaseTimeRemaining": "0",
}
_RANGES = {
    "int": (-(2**31), 2**31 - 1),
    "unsignedInt": (0, 2**32 - 1),
    "long": (-(2**63), 2**63 - 1),
    "unsignedLong": (0, 2**64 - 1),
}


class CwmpFault(Exception):
    """A CPE fault (9000-9899) raised by a tree operation; ``to_rpc`` gives the SOAP Fault."""

    def __init__(
        self,
        code: int,
        detail: str = "",
        spv_faults: list[rpc.SetParameterValuesFault] | None = None,
    ) -> None:
        super().__init__(f"{code} {detail}")
        self.code = code
        self.detail = detail
        self.spv_faults = spv_faults or []

    def to_rpc(self) -> rpc.Fault:
        return rpc.cpe_fault(self.code, self.detail, self.spv_faults)


def valid_value(typ: str, value: str) -> bool:
    """Whether ``value`` is a lexically valid ``xsd:typ`` (what fault 9007 guards)."""
    if typ == "string":
        return True
    if typ == "boolean":
        # TR-069 booleans: exactly these four literals
        return value in ("0", "1", "true", "false")
    if typ in _RANGES:
        try:
            number = int(value.strip())
        except ValueError:
            return False
        low, high = _RANGES[typ]
        return low <= number <= high
    if typ == "dateTime":
        return bool(_DATETIME.match(value))
    if typ == "base64":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
        return True
    if typ == "hexBinary":
        return len(value) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in value)
    return False


def iso_time(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def fill(value: str, ident: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: ident[m.group(1)], value)


class Tree:
    """The parameter tree of one router."""

    def __init__(
        self,
        template: Template,
        values: dict[str, str],
        *,
        clock: Callable[[], float] = time.monotonic,
        leaves: dict[str, Leaf] | None = None,
        objects: dict[str, None] | None = None,
    ) -> None:
        self.template = template
        self.root = template.root
        self.values = values
        self.leaves = template.leaves if leaves is None else leaves
        self.objects = template.objects if objects is None else objects
        self._own_shape = leaves is not None
        self.clock = clock
        self.boot_at = clock()
        self.notification: dict[str, int] = {}
        self.access_lists: dict[str, list[str]] = {}
        # passive/active parameters the router changed by itself since the last Inform
        self.changed: dict[str, None] = {}
        self._next_instance: dict[str, int] = {}
        # DHCPv4 client -> the entries its lease made, kept while it is off to come back
        # (as a new lease would bring them) when it is turned on again
        self.released: dict[str, dict[str, str]] = {}

    # --- construction -------------------------------------------------------------------

    @classmethod
    def from_template(
        cls,
        template: Template,
        ident: dict[str, str],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> Tree:
        values = template.defaults.copy()
        for path in template.templated:
            values[path] = fill(values[path], ident)
        return cls(template, values, clock=clock)

    @classmethod
    def restore(
        cls,
        template: Template,
        state: dict[str, Any],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> Tree:
        """Rebuild a tree saved by :meth:`snapshot` (instances added by AddObject included)."""
        values: dict[str, str] = {}
        leaves: dict[str, Leaf] = {}
        for path, value in state["values"].items():
            leaf = template.leaf_for(path)
            if leaf is not None:  # a path the template no longer knows is dropped
                # a hand-edited state file gets what the firmware would have stored
                values[path] = template.stored(path, leaf.type, str(value))
                leaves[path] = leaf
        objects: dict[str, None] = {}
        for path in (*values, *template.tables, *state.get("objects", ())):
            if path.endswith(".") and path not in template.objects and not template.table_of(path):
                continue
            objects.update(dict.fromkeys(object_paths(path)))
        tree = cls(template, values, clock=clock, leaves=leaves, objects=objects)
        tree.notification = {
            k: int(v) for k, v in state.get("notification", {}).items() if k in values
        }
        tree.access_lists = {
            k: list(v) for k, v in state.get("access_lists", {}).items() if k in values
        }
        tree._next_instance = {
            k: int(v) for k, v in state.get("next_instance", {}).items() if k in template.tables
        }
        tree.released = {
            str(k): {str(p): str(v) for p, v in rows.items()}
            for k, rows in state.get("released", {}).items()
        }
        for table in template.tables:  # a hand-edited file may have added or removed rows
            tree._recount(table)
        return tree

    def snapshot(self) -> dict[str, Any]:
        """What :meth:`restore` needs: stored values (dynamic ones excluded), attributes."""
        return {
            "values": dict(self.values),
            "objects": [o for o in self.objects if self.template.table_of(o)],
            "notification": dict(self.notification),
            "access_lists": dict(self.access_lists),
            "next_instance": dict(self._next_instance),
            "released": {k: dict(v) for k, v in self.released.items()},
        }

    def flat(self) -> dict[str, str]:
        """Every parameter with its real value (secrets included), for ``--dump``."""
        return {path: self.get(path) for path in self.values}

    # --- reading ------------------------------------------------------------------------

    def get(self, path: str) -> str:
        """The value the router holds (secrets in clear, dynamic values computed now)."""
        kind = self.template.dynamic.get(path)
        if kind is None:
            return self.values[path]
        if kind == "now":
            return iso_time(time.time())
        uptime = int(self.clock() - self.boot_at)
        if kind == "link_uptime":
            uptime = max(0, uptime - LINK_DELAY)
        return str(uptime)

    def __contains__(self, path: str) -> bool:
        return path in self.values

    def leaf(self, path: str) -> Leaf:
        return self.leaves[path]

    def wire_value(self, path: str) -> rpc.ParameterValue:
        """The ParameterValueStruct as GetParameterValues returns it: secrets read back "",
        the rest in the firmware's form (the tree's "report" option, e.g. booleans as 1/0)."""
        leaf = self.leaves[path]
        if leaf.secured:
            return rpc.ParameterValue(path, "", leaf.xsd)
        value = self.template.reported(path, leaf.type, self.get(path))
        return rpc.ParameterValue(path, value, leaf.xsd)

    def _below(self, prefix: str) -> Iterator[str]:
        return (p for p in self.values if p.startswith(prefix))

    def _expand(self, name: str) -> list[str]:
        """A full name or a partial path -> the parameter names it covers; 9005 if unknown."""
        if name == "":
            name = self.root
        if name.endswith("."):
            if name not in self.objects:
                raise CwmpFault(9005, name)
            return list(self._below(name))
        if name not in self.values:
            raise CwmpFault(9005, name)
        return [name]

    def get_values(self, names: Iterable[str]) -> list[rpc.ParameterValue]:
        # one unknown name fails the whole call (TR-069 GetParameterValues)
        return [self.wire_value(p) for name in names for p in self._expand(name)]

    def object_writable(self, path: str) -> bool:
        """Objects are "writable" when AddObject (tables) or DeleteObject (their instances)
        is allowed on them."""
        if path in self.template.tables:
            return True
        parent, _, number = path[:-1].rpartition(".")
        return number.isdigit() and parent + "." in self.template.tables

    def get_names(self, path: str, next_level: bool) -> list[rpc.ParameterInfo]:
        if path == "":
            if next_level:
                return [rpc.ParameterInfo(self.root, False)]
            path = self.root
        if not path.endswith("."):
            if path not in self.values:
                raise CwmpFault(9005, path)
            if next_level:
                raise CwmpFault(9003, "NextLevel true on a parameter name")
            return [rpc.ParameterInfo(path, self.leaves[path].writable)]
        if path not in self.objects:
            raise CwmpFault(9005, path)
        out: list[rpc.ParameterInfo] = []
        seen: set[str] = set()
        start = len(path)

        def emit_object(obj: str) -> None:
            if obj not in seen:
                seen.add(obj)
                out.append(rpc.ParameterInfo(obj, self.object_writable(obj)))

        if not next_level:
            emit_object(path)
        # walk the parameters in tree order, naming each object before its first parameter
        for param in self._below(path):
            rest = param[start:]
            if next_level:
                dot = rest.find(".")
                if dot == -1:
                    out.append(rpc.ParameterInfo(param, self.leaves[param].writable))
                else:
                    emit_object(path + rest[: dot + 1])
                continue
            for obj in object_paths(rest):
                emit_object(path + obj)
            out.append(rpc.ParameterInfo(param, self.leaves[param].writable))
        # objects without parameters (empty tables) still exist
        for obj in self.objects:
            inside = obj.startswith(path) and obj != path
            if inside and (not next_level or obj[start:].count(".") == 1):
                emit_object(obj)
        return out

    # --- writing ------------------------------------------------------------------------

    def set_values(
        self,
        params: list[rpc.ParameterValue],
        parameter_key: str,
        refuse: PathRules[int] | None = None,
    ) -> int:
        """SetParameterValues, all or nothing; returns the Status: 0 = applied, 1 = stored
        but applied only after a reboot (a changed parameter the tree lists in
        "needs_reboot"). ``refuse`` holds injected faults (``--fault``): a parameter it
        matches fails with that code, and so, atomically, does the whole call."""
        faults: list[rpc.SetParameterValuesFault] = []
        for pv in params:
            code = self._check_set(pv.name, pv.value, refuse)
            if code:
                text = rpc.CPE_FAULTS.get(code, "Fault")
                faults.append(rpc.SetParameterValuesFault(pv.name, code, text))
        if faults:
            raise CwmpFault(9003, "SetParameterValues refused", faults)
        template = self.template
        status = 0
        clients: dict[str, bool] = {}
        for pv in params:
            leaf = self.leaves[pv.name]
            value = template.stored(pv.name, leaf.type, pv.value)
            if self.values[pv.name] != value and template.needs_reboot.get(pv.name, leaf.type):
                status = 1
            if client := _DHCP_CLIENT_ENABLE.match(pv.name):
                clients[client.group(1)] = value.lower() in ("1", "true")
            self.values[pv.name] = value
            if pv.name.endswith(".Enable"):
                # TR-181's Status of an entry follows its Enable (Enabled / Disabled)
                state = pv.name[: -len("Enable")] + "Status"
                if self.values.get(state) in ("Enabled", "Disabled"):
                    self.values[state] = "Enabled" if value.lower() in ("1", "true") else "Disabled"
            # some vendors hold one setting under two names (TR-098 KeyPassphrase and
            # PreSharedKey.1.KeyPassphrase): writing either changes both
            for twin in template.links.get(pv.name, ()):
                if twin in self.values:
                    self.values[twin] = value
        for client, enabled in clients.items():
            self._dhcp_client(client, enabled)
        self._set_parameter_key(parameter_key)
        return status

    def _dhcp_client(self, client: str, enabled: bool) -> None:
        """A TR-181 DHCPv4 client turned off takes its lease's address, default route and
        DNS servers with it; turned on again, it gets them back."""
        if enabled:
            back = self.released.pop(client, {})
            if back:
                self._own()
            for path, value in back.items():
                leaf = self.template.leaf_for(path)
                if leaf is not None:
                    self.values[path] = value
                    self.leaves[path] = leaf
                    self.objects.update(dict.fromkeys(object_paths(path)))
        elif client not in self.released:
            iface = re.escape(self.values.get(client + "Interface", "").rstrip("."))
            gone: dict[str, str] = {}
            for pattern, leaf, value, on_iface in _LEASED:
                row = re.compile("^(" + pattern.format(iface=iface) + ")" + re.escape(leaf) + "$")
                rows = [
                    m.group(1) for p, v in self.values.items() if v == value and (m := row.match(p))
                ]
                for base in rows:
                    if on_iface and not re.fullmatch(
                        iface + r"\.?", self.values.get(base + "Interface", "")
                    ):
                        continue
                    gone.update((p, v) for p, v in self.values.items() if p.startswith(base))
                    self._remove(base)
            for leaf, blank in _LEASE_LEAVES.items():  # no lease, nothing it offered
                if client + leaf in self.values:
                    gone[client + leaf] = self.values[client + leaf]
                    self.values[client + leaf] = blank
            self.released[client] = gone
        for table in self.template.tables:
            self._recount(table)

    def _check_set(self, name: str, value: str, refuse: PathRules[int] | None = None) -> int:
        if name not in self.values:
            return 9005
        leaf = self.leaves[name]
        # an injected fault, or one the firmware always gives (a parameter the data model
        # and GetParameterNames call writable that this firmware refuses all the same)
        code = refuse.get(name, leaf.type) if refuse else None
        code = code or self.template.set_faults.get(name, leaf.type)
        if code:
            return code
        if not leaf.writable:
            return 9008
        static_only = _STATIC_ONLY.match(name)
        if static_only and self.values.get(static_only.group(1) + "AddressingType") not in (
            None,
            "Static",
        ):
            return 9008
        if not valid_value(leaf.type, value):
            return 9007
        if _PASSPHRASE_8_63.search(name) and not 8 <= len(value) <= 63:
            return 9007  # TR-181: KeyPassphrase is string(8:63)
        if len(value) > 64 and _LIST_64.search(name):
            return 9007  # TR-098: DNSServers, IPRouters are lists of 64 characters
        if (mode := _MODE_ENABLED.match(name)) and not self._supported_mode(mode.group(1), value):
            return 9007
        return 0

    def _supported_mode(self, security: str, value: str) -> bool:
        """Whether the access point whose Security object is ``security`` lists ``value``
        in its ModesSupported (a tree without the list, or with it empty, takes any)."""
        listed = self.values.get(security + "ModesSupported", "")
        modes = {item.strip() for item in listed.split(",") if item.strip()}
        return not modes or value.strip() in modes

    def _set_parameter_key(self, key: str) -> None:
        path = self.root + "ManagementServer.ParameterKey"
        if path in self.values:
            self.values[path] = key

    def set_local(self, path: str, value: str) -> int:
        """A change made by the router itself (signal drift, a user on the web UI). Returns
        the parameter's notification attribute when the value really changed, else 0; the
        parameter is then reported with "4 VALUE CHANGE" in the next Inform."""
        if path not in self.values:
            raise KeyError(path)
        value = self.template.stored(path, self.leaves[path].type, value)
        if self.values[path] == value:
            return 0
        self.values[path] = value
        level = self.notification.get(path, 0)
        if level in (1, 2):
            self.changed[path] = None
            return level
        return 0

    def _own(self) -> None:
        if not self._own_shape:
            self.leaves = dict(self.leaves)
            self.objects = dict(self.objects)
            self._own_shape = True

    def instances(self, table: str) -> list[int]:
        start = len(table)
        return [
            int(o[start:-1])
            for o in self.objects
            if o.startswith(table)
            and o[start:-1].isdigit()
            and o.count(".") == table.count(".") + 1
        ]

    def _recount(self, table: str) -> None:
        counter = self.template.tables[table].count
        if counter and counter in self.values:
            self.values[counter] = str(len(self.instances(table)))

    def add_object(self, path: str, parameter_key: str) -> int:
        """AddObject on a table path ("...StaticAddress."); returns the instance number."""
        table = self.template.tables.get(path)
        if table is None or path not in self.objects:
            raise CwmpFault(9005, f"{path} is not a table that accepts AddObject")
        existing = self.instances(path)
        if len(existing) >= table.max_instances:
            raise CwmpFault(9004, f"{path} is full ({table.max_instances} instances)")
        # numbers grow monotonically, so a deleted instance's number is not handed out again
        # (the ACS must not rely on either behaviour); some firmware starts high or skips
        # numbers (the table's instance_start / instance_step)
        last = max([*existing, self._next_instance.get(path, 0)])
        start, step = table.instance_start, table.instance_step
        number = max(start, last + step) if last else start
        self._next_instance[path] = number
        self._own()
        instance = f"{path}{number}."
        self.objects[instance] = None
        for rel, (default, leaf) in table.child.items():
            full = instance + rel
            self.objects.update(dict.fromkeys(object_paths(full)))
            self.values[full] = default
            self.leaves[full] = leaf
        self._recount(path)
        self._set_parameter_key(parameter_key)
        return number

    def delete_object(self, path: str, parameter_key: str) -> None:
        """DeleteObject on an instance path ("...StaticAddress.3.")."""
        if not path.endswith(".") or path not in self.objects:
            raise CwmpFault(9005, path)
        parent, _, number = path[:-1].rpartition(".")
        table = parent + "."
        if not number.isdigit() or table not in self.template.tables:
            raise CwmpFault(9005, f"{path} is not a deletable instance")
        self._next_instance[table] = max(self._next_instance.get(table, 0), int(number))
        self._remove(path)
        self._recount(table)
        self._set_parameter_key(parameter_key)

    def lack(self, *paths: str) -> None:
        """Firmware of the model without these leaves (another version of it): they fault
        9005 as any name the router does not have."""
        for path in paths:
            if path not in self.leaves:
                raise KeyError(path)
            self._remove(path)

    def _remove(self, path: str) -> None:
        """An instance ("...StaticAddress.3.") and everything below it goes."""
        self._own()
        for param in [p for p in self.values if p.startswith(path)]:
            del self.values[param]
            del self.leaves[param]
            self.notification.pop(param, None)
            self.access_lists.pop(param, None)
            self.changed.pop(param, None)
        for obj in [o for o in self.objects if o.startswith(path)]:
            del self.objects[obj]

    # --- attributes ---------------------------------------------------------------------

    def get_attributes(self, names: Iterable[str]) -> list[rpc.ParameterAttribute]:
        return [
            rpc.ParameterAttribute(
                p, self.notification.get(p, 0), list(self.access_lists.get(p, ()))
            )
            for name in names
            for p in self._expand(name)
        ]

    def set_attributes(self, structs: list[rpc.SetParameterAttributesStruct]) -> None:
        plan: list[tuple[rpc.SetParameterAttributesStruct, list[str]]] = []
        for s in structs:
            targets = self._expand(s.name)
            if s.notification_change:
                if not 0 <= s.notification <= 6:
                    raise CwmpFault(9003, f"Notification {s.notification} out of range")
                if s.notification == 2 and any(p in self.template.dynamic for p in targets):
                    # values that change every second (UpTime, clocks) refuse active
                    # notification, as real CPEs do
                    raise CwmpFault(9009, f"active notification refused on {s.name}")
            plan.append((s, targets))
        for s, targets in plan:
            for p in targets:
                if s.notification_change:
                    if s.notification:
                        self.notification[p] = s.notification
                    else:
                        self.notification.pop(p, None)
                if s.access_list_change:
                    self.access_lists[p] = list(s.access_list)
