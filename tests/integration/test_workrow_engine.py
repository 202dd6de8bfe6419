"""The work-row engine's guarantees, each with the fault that would break it made real.

Real database and Redis; where a partner is needed, the emulators run in threads over HTTP.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import requests
import sqlalchemy as sa

from app.records import service as records
from app.runtime import Runtime
from app.workrows import dispatch
from app.workrows.leases import Heartbeat, LeaseCounter, new_lease
from queues import service
from queues.models import QueueItem
from tests.integration.partners import change, contact, drain
from webhooks import intake
from webhooks.models import WebhookEvent
from webhooks.schemas import EventSchema
from workers import clock
from workers.context import set_runtime
from workers.jobs import process_api_items, process_webhook_events
from workers.leadership import Leadership

qi = QueueItem.__table__


def test_dispatching_never_frees_a_row_a_live_job_holds(rt: Runtime) -> None:
    (item,) = service.accept_changes(rt.db, [change("003L1")])
    holder = new_lease(rt.db, "holder", 30)
    assert service.claim(rt.db, [item.id], holder) == [item.id]
    # The clock, a wake-up and an admin action all dispatch: none may touch the live lease.
    marked = dispatch.mark_dispatched(rt.db, qi, {"pb-other-job": [item.id]})
    assert marked == {}
    assert service.claim(rt.db, [item.id], new_lease(rt.db, "intruder", 30)) == []
    with rt.db.transaction() as session:
        assert service.load_owned(session, item.id, holder) is not None


def test_tokens_grow_and_a_late_result_after_a_takeover_is_dropped(rt: Runtime) -> None:
    (item,) = service.accept_changes(rt.db, [change("003L2")])
    old = new_lease(rt.db, "old", 0.2)
    assert service.claim(rt.db, [item.id], old) == [item.id]
    time.sleep(0.3)  # its worker froze; the lease expired
    new = new_lease(rt.db, "new", 30)
    assert new.token > old.token
    assert service.claim(rt.db, [item.id], new) == [item.id]
    with rt.db.transaction() as session:
        assert service.complete(session, [item.id], old) == 0  # the late finish matches nothing
        assert service.load_owned(session, item.id, old) is None
        row = session.get(QueueItem, item.id)
        assert (row.lease_token, row.lease_owner) == (new.token, new.owner)


def test_tokens_are_unique_when_many_jobs_start_at_once_on_a_new_counter(rt: Runtime) -> None:
    """Jobs starting together, even before the counter row exists, each get their own token."""
    with rt.db.transaction() as session:
        session.execute(sa.delete(LeaseCounter))
    start = threading.Barrier(8)
    tokens: list[int] = []
    errors: list[BaseException] = []

    def begin() -> None:
        start.wait()
        try:
            tokens.extend(new_lease(rt.db, "racer", 30).token for _ in range(5))
        except BaseException as exc:  # noqa: BLE001 - the test reports every failure
            errors.append(exc)

    threads = [threading.Thread(target=begin) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(tokens) == list(range(1, 41))


def test_the_heartbeat_keeps_rows_held_for_as_long_as_the_job_runs(rt: Runtime) -> None:
    (item,) = service.accept_changes(rt.db, [change("003L3")])
    lease = new_lease(rt.db, "slow-job", 0.6)
    with Heartbeat(rt.db, lease, interval=0.1):
        assert service.claim(rt.db, [item.id], lease) == [item.id]
        time.sleep(1.5)  # well past the lease: only renewal keeps it
        assert service.claim(rt.db, [item.id], new_lease(rt.db, "other", 30)) == []
    time.sleep(0.8)  # the job ended: the lease now runs out
    assert service.claim(rt.db, [item.id], new_lease(rt.db, "other", 30)) == [item.id]


def _store_event(rt: Runtime, raw: dict[str, Any]) -> int:
    (row_id,) = intake.ingest(rt, "gocardless", [raw], [EventSchema().load(raw)]).stored
    return row_id


def test_an_event_whose_apply_raises_ends_failed_with_the_exception(rt: Runtime) -> None:
    set_runtime(rt)
    # A malformed payload our code does not expect: details is a string, not an object.
    raw = {"id": "EVBROKEN1", "created_at": "2026-11-22T09:00:00.000Z",
           "resource_type": "payments", "action": "created", "links": {"payment": "PM0001"},
           "details": {"cause": "payment_created"}}
    row_id = _store_event(rt, raw)
    with rt.db.transaction() as session:
        session.execute(sa.update(WebhookEvent).where(WebhookEvent.id == row_id)
                        .values(payload={**raw, "details": "not an object"}))
        # Known already (queued from the CRM), so no gateway is asked where it started:
        # applying the event is what raises.
        link = records.upsert_link(session, "Payment", crm_id="a0P0001", gateway_id="PM0001")
        records.record_transition(session, link, "pending_submission", source="api")
    attempts = len(rt.settings.retry_schedule) + 1
    for _ in range(attempts):
        process_webhook_events([row_id])
    with rt.db.transaction() as session:
        ev = session.get(WebhookEvent, row_id)
        assert (ev.status, ev.attempts) == ("failed", attempts)
        assert "AttributeError" in ev.last_error
        assert "Traceback" in ev.error_log[-1]["traceback"]
        assert ev.lease_owner is None


def test_the_clock_survives_any_exception_in_a_tick(rt: Runtime, monkeypatch) -> None:
    def broken(_rt: Runtime) -> None:
        raise ValueError("a malformed catch-up event")

    monkeypatch.setattr(clock, "catch_up", broken)
    monkeypatch.setattr(clock, "_last", {"prune": 0.0, "catchup": 0.0, "console": 0.0})
    (item,) = service.accept_changes(rt.db, [change("003L4")])
    assert clock.tick(rt) == 1  # dispatch ran, the catch-up raised, the tick carried on
    assert rt.redis.get(clock.HEARTBEAT_KEY) is not None
    with rt.db.transaction() as session:
        assert session.get(QueueItem, item.id).job_id is not None


def test_one_clock_leads_and_a_standby_takes_over_when_it_stops(rt: Runtime) -> None:
    leader = Leadership(rt.redis, ttl_seconds=0.5, name="a")
    standby = Leadership(rt.redis, ttl_seconds=0.5, name="b")
    service.accept_changes(rt.db, [change("003L5")])
    assert clock.tick(rt, leader) == 1  # the leader dispatches the due row
    (second,) = service.accept_changes(rt.db, [change("003L6")])
    assert clock.tick(rt, standby) == 0  # the standby does no duty while the lead is held
    with rt.db.transaction() as session:
        assert session.get(QueueItem, second.id).job_id is None
    time.sleep(0.7)  # the leader froze past its lease
    assert clock.tick(rt, standby) == 1  # ...and the standby took over
    assert not leader.hold()  # the old leader, waking, finds it lost the lead
    assert clock.tick(rt, leader) == 0
    standby.release()
    assert leader.hold()  # a clean stop hands the lead over at once


def test_an_update_sends_what_a_discarded_update_left_behind(linked) -> None:
    rt, gw_url, sf_url, sf = linked
    crm_id = contact(sf, sf_url, Email="a@example.com")
    (insert,) = service.accept_changes(rt.db, [change(crm_id, Email="a@example.com")])
    drain(rt, insert.id)
    # The next update is refused by the gateway, ends Failed and is discarded...
    requests.post(f"{gw_url}/sim/faults", json={"reject_next": [
        {"field": "email", "method": "PUT", "count": 5}]}, timeout=10)
    (lost,) = service.accept_changes(rt.db, [{
        **change(crm_id, "update", Email="b@example.com", Phone="0100"),
        "previous_fields": {"Email": "a@example.com"}}])
    drain(rt, lost.id)
    assert service.get_item(rt.db, lost.id).status == "failed"
    service.discard(rt.db, lost.id, "refused; superseded")
    requests.delete(f"{gw_url}/sim/faults", timeout=10)
    # ...and a later update that only touches the phone must still carry the new e-mail.
    (later,) = service.accept_changes(rt.db, [{
        **change(crm_id, "update", Email="b@example.com", Phone="0200"),
        "previous_fields": {"Email": "b@example.com", "Phone": "0100"}}])
    drain(rt, later.id)
    with rt.db.transaction() as session:
        gateway_id = records.find_link(session, "Customer", crm_id=crm_id).gateway_id
    customer = requests.get(f"{gw_url}/customers/{gateway_id}", timeout=10,
                            headers={"Authorization": "Bearer sandbox-token"}).json()
    assert customer["customers"]["email"] == "b@example.com"
    assert customer["customers"]["phone_number"] == "0200"


def test_a_retried_insert_writes_the_gateway_id_a_webhook_already_linked(linked) -> None:
    rt, gw_url, sf_url, sf = linked
    crm_id = contact(sf, sf_url)
    # The create succeeds at the gateway but its answer is lost...
    requests.post(f"{gw_url}/sim/faults", json={"fail_next": [
        {"status": 503, "method": "POST", "path_prefix": "/customers",
         "after_effect": True}]}, timeout=10)
    (item,) = service.accept_changes(rt.db, [change(crm_id)])
    process_api_items([item.id])
    assert service.get_item(rt.db, item.id).attempts == 1
    created = requests.get(f"{gw_url}/sim/resources/customers", timeout=10).json()
    (customer,) = [c for c in created["customers"]
                   if (c.get("metadata") or {}).get("crm_id") == crm_id]
    # ...then its event is applied first: the record is found through metadata.crm_id.
    with rt.db.transaction() as session:
        records.upsert_link(session, "Customer", crm_id=crm_id, gateway_id=customer["id"])
    time.sleep(max(rt.settings.retry_schedule[0], 0.3))
    drain(rt, item.id)
    record = sf.get(f"{sf_url}/sim/records/Contact/{crm_id}").json()
    assert record["Gateway_Id__c"] == customer["id"]
