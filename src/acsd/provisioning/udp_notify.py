"""Active notification on a router's UDPConnectionRequestAddress (TR-069 Annex G).

With acsd's STUN server on, a router behind NAT is reached at the mapping its STUN client
learnt. When that mapping changes (the NAT reboots, the carrier rebinds), acsd would not
know before the router's next periodic session, and its UDP Connection Requests would go
to the old one. With Notification 2 (active) on the parameter, the router Informs "4 VALUE
CHANGE" with the new address at once.

acsd sets it once per router (SetParameterAttributes, Notification=2, NotificationChange
true) and remembers that in the provisioning memory (``udpNotify``), so no steady session
pays for it; a BOOTSTRAP (a factory reset forgets attributes) or new firmware forgets it.
A router that refuses it (9009 notification rejected, 9003, 9005, 9008, 9000) is not asked
again until then; another fault (busy, internal error) is asked again after the job retry
policy's back-off, at most ``max_attempts`` times. Neither fails the session.
"""

from __future__ import annotations

from typing import Any

from acsd.cwmp import rpc
from acsd.provisioning.jobs import RetryPolicy
from acsd.provisioning.profiles import Profile

#: the provisioning memory's key
MEMORY_KEY = "udpNotify"
#: Notification 2: active (an Inform of its own when the value changes)
ACTIVE = 2
#: a router that answers these will not take the attribute: asked again only after a
#: BOOTSTRAP or new firmware
NOTIFY_REFUSED_FOR_GOOD = frozenset({9000, 9003, 9005, 9008, 9009})
#: the identity key whose paths name the parameter (the profile's data)
IDENTITY_KEY = "udpConnectionRequestAddress"


def udp_address_path(profile: Profile, values: dict[str, Any]) -> str | None:
    """The router's UDPConnectionRequestAddress as the profile names it, if the router
    has it (reported in the Inform or read this session); None otherwise."""
    for key, rules in profile.identity:
        if key != IDENTITY_KEY:
            continue
        for rule in rules:
            for selector in rule.paths:
                if selector.text in values:
                    return selector.text
    return None


def notify_due(memory: dict[str, Any], path: str, now: float, policy: RetryPolicy) -> bool:
    """Whether this session sets the notification on ``path``."""
    entry = memory.get(MEMORY_KEY)
    if not isinstance(entry, dict) or entry.get("path") != path:
        return True  # never set, or set on another path (another data model)
    if entry.get("set") is True or entry.get("refused") is True:
        return False
    attempts = entry.get("attempts")
    if type(attempts) is not int or attempts >= policy.max_attempts:
        return False
    retry_at = entry.get("retryAt")
    # (one further off than the policy ever puts it was set by a clock that was ahead)
    return not isinstance(retry_at, int | float) or not now < retry_at <= now + policy.cap


def notify_request(path: str) -> rpc.SetParameterAttributes:
    return rpc.SetParameterAttributes(
        parameters=[
            rpc.SetParameterAttributesStruct(
                name=path, notification_change=True, notification=ACTIVE
            )
        ]
    )


def record_answer(
    memory: dict[str, Any], path: str, answer: rpc.Message, now: float, policy: RetryPolicy
) -> rpc.Fault | None:
    """Remember what the router answered; the fault when it refused."""
    if not isinstance(answer, rpc.Fault):
        memory[MEMORY_KEY] = {"path": path, "set": True}
        return None
    entry: dict[str, Any] = {"path": path, "code": answer.code}
    if answer.code in NOTIFY_REFUSED_FOR_GOOD:
        entry["refused"] = True
    else:
        before = memory.get(MEMORY_KEY)
        attempts = before.get("attempts") if isinstance(before, dict) else None
        attempts = (attempts if type(attempts) is int else 0) + 1
        delay = min(policy.base * 2 ** (attempts - 1), policy.cap)
        entry.update(attempts=attempts, retryAt=int(now + delay))
    memory[MEMORY_KEY] = entry
    return answer
