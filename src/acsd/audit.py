"""What goes into the audit log, shared by the API, the command line and the store: secrets
masked, a device as an operator sees it, who wrote when there is no token (the CLI), and the
entry of an Internet line that a write ended."""

from __future__ import annotations

import os
import pwd
from typing import Any

from acsd import clock
from acsd.ids import new_id
from acsd.log import is_secret_name, peer_text
from acsd.store.base import AuditRecord, DeviceRecord


def masked(value: Any) -> Any:
    """A copy fit for the audit log: secrets replaced, structure kept."""
    if isinstance(value, dict):
        return {k: ("***" if is_secret_name(k) and v else masked(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


def device_view(record: DeviceRecord) -> dict[str, Any]:
    """A device's operator fields and provisioning state, as its audit entries show it."""
    return masked(
        {
            "serialNumber": record.serial_number,
            "name": record.name,
            "customer": record.customer,
            "model": record.model,
            "macAddress": record.mac_address,
            "mvnoAccount": record.mvno_account,
            "notes": record.notes,
            "wifi": record.wifi,
            "dhcp": record.dhcp,
            "state": record.state,
            "revision": record.revision,
        }
    )


def _local_user() -> str:
    """The account the command runs as, by its user id (getpass.getuser() reads $LOGNAME
    and $USER first: `USER=ceo acsd token create` was audited as cli:ceo), and under sudo
    the account that ran sudo ("root (sudo by alice)": every operator was cli:root)."""
    try:
        name = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # no passwd entry (a bare container): the id itself
        name = str(os.getuid())
    invoker = os.environ.get("SUDO_USER", "")
    if invoker and invoker != name and os.getuid() == 0:
        return f"{name} (sudo by {peer_text(invoker, 32)})"
    return name


def entry(
    action: str,
    resource: str,
    resource_id: str | None,
    *,
    token_id: str | None,
    token_name: str | None,
    role: str | None,
    customer: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> AuditRecord:
    """An audit entry made now, ``before``/``after`` with their secrets masked."""
    return AuditRecord(
        id=new_id(),
        at=clock.now(),
        action=action,
        resource=resource,
        resource_id=resource_id,
        token_id=token_id,
        token_name=token_name,
        role=role,
        customer=customer,
        before=masked(before) if before is not None else None,
        after=masked(after) if after is not None else None,
        request_id=request_id,
    )


def cli_record(
    action: str,
    resource: str,
    resource_id: str | None = None,
    *,
    customer: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditRecord:
    """An entry for a write made with the ``acsd`` command on the server: no token, so the
    local user account stands for the author (``tokenName`` "cli:root")."""
    return entry(
        action, resource, resource_id, token_id=None, token_name=f"cli:{_local_user()}",
        role="CLI", customer=customer, before=before, after=after,
    )  # fmt: skip
