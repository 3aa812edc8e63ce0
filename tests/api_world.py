"""A small operator world for API tests: a reseller with a sub-reseller, their customers,
another customer, a model, and a token for every role (made when first used)."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from typing import Any

from apiclient import Api

SEED_REQUEST = {
    "name": "Johns router",
    "model": "12345678901234567890AAAA",
    "customer": "12345678901234567890CCCC",
    "macAddress": "123456789012",
    "serialNumber": "484t563tyehfcu38hcnb4",
    "mvnoAccount": "12345678901234567890DDDD",
    "notes": "Note about device",
    "wifi": {
        "enabled": True,
        "ssid": "SkyNet",
        "password": "JohnConner",
        "enabled5G": True,
        "ssid5G": "Need4Speed",
        "password5G": "SarahConner",
        "enabled6G": False,
        "ssid6G": None,
        "password6G": None,
        "bandsteering": False,
    },
    "dhcp": {
        "enable": True,
        "ipPoolStart": "192.168.0.100",
        "ipPoolEnd": "192.168.0.200",
        "leaseTime": 10,
        "primaryDnsServer": "8.8.8.8",
        "reservedClients": [
            {"mac": "123456789013", "ip": "192.168.0.10", "enable": True, "id": "r8jf84fv"}
        ],
    },
}


# The seed-000 example as ``acsd device apply`` takes it for a simulated router: no
# customer or model (none exist outside the API's world, and apply refuses references to
# records that do not exist), no MAC address (each router has its own; one MAC on two
# records is refused), the serial number given by each test. Its pool and reservation
# are in 192.168.0.0/24: see seed_body for routers whose LAN is another.
SEED_BODY = {
    k: v
    for k, v in SEED_REQUEST.items()
    if k not in ("serialNumber", "customer", "model", "macAddress")
}


def seed_body(serial: str, lan: str = "192.168.0") -> dict:
    """SEED_BODY for the router ``serial`` whose LAN is ``lan``.0/24: the seed's pool and
    reservation moved into it (acsd refuses addresses outside the LAN a router reported)."""
    body = copy.deepcopy(SEED_BODY)
    body["serialNumber"] = serial
    dhcp = body["dhcp"]
    dhcp["ipPoolStart"], dhcp["ipPoolEnd"] = f"{lan}.100", f"{lan}.200"
    for client in dhcp["reservedClients"]:
        client["ip"] = f"{lan}.{client['ip'].rsplit('.', 1)[1]}"
    return body


#: which customer each role's token of a world belongs to (None: no customer)
TOKEN_CUSTOMER = {"ADMIN": None, "RESELLER": "reseller", "OWNER": "own", "MANAGER": "own"}


@dataclass
class World:
    api: Api
    tokens: dict[str, str] = field(default_factory=dict)
    customers: dict[str, str] = field(default_factory=dict)
    model: str = ""
    #: the daemon whose CLI creates a role's token when a test first acts as that role
    #: (each is a CLI subprocess: most tests act as ADMIN only)
    daemon: Any = None

    def as_(self, role: str) -> Api:
        if role not in self.tokens and self.daemon is not None:
            customer = TOKEN_CUSTOMER[role]
            self.tokens[role] = token(self.daemon, role, customer and self.customers[customer])
        return self.api.as_(self.tokens[role])


def token(daemon, role: str, customer: str | None = None) -> str:
    args = ["token", "create", "--role", role, "--name", f"test {role}"]
    if customer:
        args += ["--customer", customer]
    return daemon.cli(*args).stdout.strip()


def populate(world: World) -> None:
    """The customers (a reseller tree and an outsider) and the EX220 model, made as ADMIN."""
    admin = world.api

    def customer(name: str, type_: str = "CUSTOMER", reseller: str | None = None) -> str:
        reply = admin.post("/customer", {"name": name, "type": type_, "reseller": reseller})
        assert reply.status == 201, reply.body
        return reply.body["_id"]

    world.customers["reseller"] = customer("Reseller One", "RESELLER")
    world.customers["sub"] = customer("Sub Reseller", "RESELLER", world.customers["reseller"])
    world.customers["own"] = customer("Own Customer", reseller=world.customers["reseller"])
    world.customers["subs_customer"] = customer("Sub's Customer", reseller=world.customers["sub"])
    world.customers["other"] = customer("Other Customer")
    reply = admin.post(
        "/network/model",
        {
            "name": "EX220",
            "type": "ROUTER",
            "brand": "TP-LINK",
            "description": "5G router with 2.4/5GHz wifi and 3 ethernet ports",
            "picture": "12345678901234567890BBBB",
            # No profile: the world's routers are of every simulated kind, and a model's
            # profile would serve those that no profile matches (see
            # test_provisioning_vendors for that)
        },
    )
    assert reply.status == 201, reply.body
    world.model = reply.body["_id"]


def build_world(daemon, admin_token: str | None = None) -> World:
    """A new world on ``daemon`` (fresh customers every call); a role's token is created
    when a test first acts as that role. ``admin_token`` reuses an ADMIN token of it."""
    admin = Api(daemon.api_url, admin_token or token(daemon, "ADMIN"))
    world = World(api=admin, tokens={"ADMIN": admin.token or ""}, daemon=daemon)
    populate(world)
    return world


def device_body(world: World, customer: str, serial: str, mac: str | None = None) -> dict:
    body = {**SEED_REQUEST, "customer": world.customers[customer], "model": world.model}
    body["serialNumber"] = serial
    body["macAddress"] = mac or "02" + hashlib.sha1(serial.encode()).hexdigest()[:10]
    return body
