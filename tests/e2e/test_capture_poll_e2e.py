"""Change capture by polling (CHANGE_CAPTURE=poll) with the real processes: nothing in the
org calls Paybridge (the emulator's trigger is off); the clock asks Salesforce for what
changed. A regular user's creates, updates and deletes through simple-salesforce reach the
gateway in order with previous fields right; Paybridge's own write-backs never come back; a
late-visible transaction inside the overlap is not missed; a restarted clock resumes from
its watermark; idle polling spends one call per object per poll, counted by the org."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.mapping import OBJECTS, QUEUEABLE_OBJECTS
from app.supervisor import paybridge_procs
from tests.e2e.capture import (
    customer,
    customer_calls,
    handled,
    queued,
    regular_user,
    settled,
    stamp,
    trigger_off,
    watermark,
)
from tests.e2e.conftest import Stack, running_stack, wait_until

pytestmark = pytest.mark.e2e
POLLING = {"CHANGE_CAPTURE": "poll", "CAPTURE_POLL_INTERVAL": "1", "CAPTURE_OVERLAP": "300"}
WORKERS = ("worker-1", "worker-2")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, database_url: str,
          redis_url: str) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("poll-stack"), database_url, redis_url,
                       POLLING, prepare=trigger_off) as st:
        yield st


def person(name: str) -> dict[str, str]:
    """A Contact the gateway takes as a customer."""
    return {"FirstName": "Test", "LastName": name, "Email": f"{name.lower()}@example.com"}


def _taken_in(stack: Stack, record_id: str, user: object) -> bool:
    """The latest version of the record (any user's change) is behind the watermark and a
    poll ran after it: whatever that poll was going to queue, it has."""
    record = user.Contact.get(record_id)  # type: ignore[attr-defined]
    mark = watermark(stack)
    return mark is not None and mark[0] >= stamp(record["SystemModstamp"])


def test_changes_reach_the_gateway_in_order_and_write_backs_stay_home(fresh: Stack) -> None:
    stack, user = fresh, regular_user(fresh)
    record_id = user.Contact.create({"FirstName": "Ada", "LastName": "Lovelace",
                                     "Email": "ada@example.com"})["id"]
    wait_until(lambda: settled(stack, record_id, 1), 60, "the insert to be done", stack)
    gateway_id = user.Contact.get(record_id)["Gateway_Id__c"]
    assert gateway_id and customer(stack, record_id)["id"] == gateway_id
    # The write-back changed the Contact (as the integration user): polled, never queued.
    wait_until(lambda: _taken_in(stack, record_id, user), 30, "the write-back polled", stack)
    assert handled(stack, record_id) == ["insert"] and queued(stack, record_id) == []

    # Workers held back while each change is queued, to read the row the poll made.
    stack.halt(*WORKERS)
    user.Contact.update(record_id, {"Email": "ada@example.org"})
    wait_until(lambda: queued(stack, record_id), 30, "the update to be queued", stack)
    [(operation, fields, previous)] = queued(stack, record_id)
    assert operation == "update" and fields["Email"] == "ada@example.org"
    assert previous == {"FirstName": "Ada", "LastName": "Lovelace",
                        "Email": "ada@example.com", "Gateway_Id__c": gateway_id}
    stack.resume(*WORKERS)
    wait_until(lambda: settled(stack, record_id, 2), 60, "the update to be done", stack)
    assert customer(stack, record_id)["email"] == "ada@example.org"

    stack.halt(*WORKERS)
    user.Contact.delete(record_id)
    wait_until(lambda: queued(stack, record_id), 30, "the delete to be queued", stack)
    [(operation, _fields, previous)] = queued(stack, record_id)
    assert operation == "delete" and previous is not None
    assert previous["Email"] == "ada@example.org"
    stack.resume(*WORKERS)
    wait_until(lambda: settled(stack, record_id, 3), 60, "the delete to be done", stack)
    assert handled(stack, record_id) == ["insert", "update", "delete"]
    assert customer_calls(stack, gateway_id) == ["PUT", "DELETE"]


def test_a_late_visible_transaction_inside_the_overlap_is_not_missed(fresh: Stack) -> None:
    stack, user = fresh, regular_user(fresh)
    early = user.Contact.create(person("Early"))["id"]
    wait_until(lambda: settled(stack, early, 1) and _taken_in(stack, early, user), 60,
               "the early record taken in", stack)
    mark = watermark(stack)
    assert mark is not None
    # The next transaction commits 120 s after Salesforce stamped it: behind the watermark.
    stack.sf_call("POST", "/sim/late-visible", json={"seconds": 120}).raise_for_status()
    late = user.Contact.create(person("Late"))["id"]
    assert stamp(user.Contact.get(late)["SystemModstamp"]) < mark[0]
    wait_until(lambda: settled(stack, late, 1), 60, "the late record to be done", stack)
    assert customer(stack, late) is not None


def test_a_restarted_clock_resumes_from_its_watermark(fresh: Stack) -> None:
    stack, user = fresh, regular_user(fresh)
    before = user.Contact.create(person("Before"))["id"]
    wait_until(lambda: settled(stack, before, 1) and _taken_in(stack, before, user), 60,
               "the first record taken in", stack)
    stack.halt("clock")
    assert watermark(stack) is not None
    down = user.Contact.create(person("WhileDown"))["id"]
    # Without its watermark a clock would start CAPTURE_OVERLAP before now; with no overlap
    # only the watermark can find a record made while it was down.
    [clock] = [p for p in paybridge_procs(stack.ports, 0) if p.name == "clock"]
    clock.env = {"CAPTURE_OVERLAP": "300"}
    stack.start_proc(clock)
    try:
        wait_until(lambda: settled(stack, down, 1), 60, "the record made while down", stack)
        assert handled(stack, before) == ["insert"]  # not queued again after the restart
    finally:
        stack.halt("clock")
        stack.resume("clock")


def _polls(stack: Stack) -> dict[tuple[str, str], float]:
    return {(name, labels["object"]): value for name, labels, value in
            stack.rt.telemetry.counters() if name in ("capture_polls", "capture_calls")}


def test_idle_polling_spends_one_call_per_object_per_poll(fresh: Stack) -> None:
    stack = fresh
    polled = [OBJECTS[name].name for name in QUEUEABLE_OBJECTS]
    stack.halt("clock")  # the window opens and closes with no poll in flight
    start = _polls(stack)
    stack.sf_call("POST", "/sim/stats/reset").raise_for_status()
    stack.resume("clock")

    def delta(kind: str, obj: str) -> float:
        return _polls(stack).get((kind, obj), 0.0) - start.get((kind, obj), 0.0)

    wait_until(lambda: all(delta("capture_polls", o) >= 3 for o in polled), 60,
               "three idle polls of every object", stack)
    stack.halt("clock")
    polls = {o: delta("capture_polls", o) for o in polled}
    calls = {o: delta("capture_calls", o) for o in polled}
    stats = stack.sf_call("GET", "/sim/stats").json()
    stack.resume("clock")
    assert calls == polls  # one call each
    assert max(polls.values()) - min(polls.values()) <= 1  # every object, every poll
    assert stats["api_usage"]["used"] == sum(calls.values())  # as the org counted them
    spent = {k: v for k, v in stats["api_calls"].items() if v and k != "oauth"}
    assert spent == {"query": sum(calls.values())}
