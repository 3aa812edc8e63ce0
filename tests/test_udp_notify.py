"""What the provisioning memory keeps of the active notification on a router's
UDPConnectionRequestAddress (acsd.provisioning.udp_notify): set once, a refusal not asked
again, another fault asked again after the back-off, all forgotten at a BOOTSTRAP."""

from __future__ import annotations

from acsd.cwmp import rpc
from acsd.provisioning import udp_notify
from acsd.provisioning.jobs import RetryPolicy, new_memory

PATH = "Device.ManagementServer.UDPConnectionRequestAddress"
POLICY = RetryPolicy(base=300, max_attempts=3)


def test_set_once_and_kept_until_a_bootstrap() -> None:
    memory = new_memory(None, bootstrap=False)
    assert udp_notify.notify_due(memory, PATH, 0, POLICY)
    request = udp_notify.notify_request(PATH)
    (struct,) = request.parameters
    assert (struct.name, struct.notification_change, struct.notification) == (PATH, True, 2)
    assert not struct.access_list_change  # (the router's access list stays as it is)
    udp_notify.record_answer(memory, PATH, rpc.SetParameterAttributesResponse(), 0, POLICY)
    stored = new_memory(memory, bootstrap=False)
    assert not udp_notify.notify_due(stored, PATH, 10**9, POLICY)
    # a factory reset forgets attributes; another data model's path is another parameter
    assert udp_notify.notify_due(new_memory(memory, bootstrap=True), PATH, 0, POLICY)
    other = "InternetGatewayDevice.ManagementServer.UDPConnectionRequestAddress"
    assert udp_notify.notify_due(stored, other, 0, POLICY)


def test_a_refusal_is_not_asked_again_until_a_bootstrap() -> None:
    memory = new_memory(None, bootstrap=False)
    fault = rpc.cpe_fault(9009, "notification request rejected")
    assert udp_notify.record_answer(memory, PATH, fault, 0, POLICY) is fault
    stored = new_memory(memory, bootstrap=False)
    assert stored["udpNotify"]["code"] == 9009
    assert not udp_notify.notify_due(stored, PATH, 10**9, POLICY)
    assert udp_notify.notify_due(new_memory(memory, bootstrap=True), PATH, 0, POLICY)


def test_another_fault_is_asked_again_after_the_back_off_a_few_times() -> None:
    memory = new_memory(None, bootstrap=False)
    busy = rpc.cpe_fault(9002, "internal error")
    now = 1000.0
    for attempt in range(1, POLICY.max_attempts + 1):
        udp_notify.record_answer(memory, PATH, busy, now, POLICY)
        retry_at = memory["udpNotify"]["retryAt"]
        assert retry_at == now + 300 * 2 ** (attempt - 1)
        assert not udp_notify.notify_due(memory, PATH, retry_at - 1, POLICY)
        now = retry_at
    # given up after max_attempts (until a BOOTSTRAP or new firmware)
    assert not udp_notify.notify_due(memory, PATH, now + 10**6, POLICY)


def test_a_hand_edited_entry_is_set_again() -> None:
    for stored in ("set", {"set": True}, {"path": 5}):
        memory = new_memory({"udpNotify": stored}, bootstrap=False)
        assert "udpNotify" not in memory
        assert udp_notify.notify_due(memory, PATH, 0, POLICY)


def test_a_retry_put_off_by_a_clock_that_was_ahead_is_due_once_it_is_put_right() -> None:
    memory = new_memory(None, bootstrap=False)
    ahead = 1000.0 + 2 * 86400  # the clock two days ahead when the router was busy
    udp_notify.record_answer(memory, PATH, rpc.cpe_fault(9002, "internal error"), ahead, POLICY)
    assert not udp_notify.notify_due(memory, PATH, ahead + 10, POLICY)  # as it was
    assert udp_notify.notify_due(memory, PATH, 1000.0, POLICY)  # put right: not in two days
