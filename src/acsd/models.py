"""The operator's view of a router: the seed-000 device object, defined once.

The API, the CLI and the OpenAPI description all use these models. Field names are the
contract of seed 000 (including its spelling ``ssSingnalStrength``). Properties holding no
value are omitted from output, as the seed allows.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DeviceState = Literal["ACTIVE", "PROVISIONING", "DELETING"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ReservedClient(_Strict):
    mac: str
    ip: str
    enable: bool = True
    id: str | None = None


class Wifi(_Strict):
    enabled: bool | None = None
    ssid: str | None = None
    password: str | None = None
    enabled5G: bool | None = None
    ssid5G: str | None = None
    password5G: str | None = None
    enabled6G: bool | None = None
    ssid6G: str | None = None
    password6G: str | None = None
    bandsteering: bool | None = None


class Dhcp(_Strict):
    enable: bool | None = None
    ipPoolStart: str | None = None
    ipPoolEnd: str | None = None
    leaseTime: int | None = None
    primaryDnsServer: str | None = None
    reservedClients: list[ReservedClient] | None = None


class DeviceStatus(_Strict):
    """What the router reported (plus ``online`` and ``lastComm``, derived by acsd)."""

    provisioned: bool | None = None
    lastComm: str | None = None
    online: bool | None = None
    lanIp: str | None = None
    subnetMask: str | None = None
    gateway: str | None = None
    wanIp: str | None = None
    publicIp: str | None = None
    upTime: int | None = None
    dns: str | None = None
    dns2: str | None = None
    ipv6: str | None = None
    ipv6Dns: str | None = None
    ipv6Dns2: str | None = None
    simStatus: str | None = None
    networkType: str | None = None
    signalStrength: int | None = None
    ssSingnalStrength: int | None = None
    uplinkRate: int | None = None
    downlinkRate: int | None = None
    connectionTime: int | None = None


#: The status fields a CPE reports (everything but the ones acsd derives itself).
REPORTED_STATUS_FIELDS: tuple[str, ...] = tuple(
    name
    for name in DeviceStatus.model_fields
    if name not in ("provisioned", "lastComm", "online", "publicIp")
)


class CpeInfo(_Strict):
    """acsd's extension to the seed object: who the router says it is."""

    oui: str | None = None
    productClass: str | None = None
    manufacturer: str | None = None
    modelName: str | None = None
    softwareVersion: str | None = None
    hardwareVersion: str | None = None
    profile: str | None = None
    connectionRequestUrl: str | None = None


class Device(_Strict):
    id: str = Field(alias="_id")
    state: DeviceState = "ACTIVE"
    name: str | None = None
    model: str | None = None
    modelType: str | None = None
    modelBrand: str | None = None
    modelDescription: str | None = None
    modelPicture: str | None = None
    customer: str | None = None
    macAddress: str | None = None
    serialNumber: str | None = None
    mvnoAccount: str | None = None
    jobs: int = 0
    notes: str | None = None
    wifi: Wifi | None = None
    dhcp: Dhcp | None = None
    status: DeviceStatus = Field(default_factory=DeviceStatus)
    cpe: CpeInfo | None = None

    def to_json(self) -> dict[str, Any]:
        """The seed-000 object: aliases (``_id``), no null properties."""
        return self.model_dump(by_alias=True, exclude_none=True)
