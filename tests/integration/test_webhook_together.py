"""A job's plain resources are classified together in one transaction; when that raises,
each resource goes alone, so only the one that raises is failed; a job that lost its lease
on the resources writes nothing for them.

Real database and Redis; the gateway and Salesforce emulators run in threads over HTTP(S).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.records import service as records
from app.records.models import StatusHistory
from app.runtime import Runtime
from tests.integration.test_webhook_apply import ctx, gateway_payment, statuses
from tests.leases import held
from webhooks import intake
from webhooks.apply import process_events
from webhooks.classification import classify_resource
from webhooks.coalescing import claim_resources
from webhooks.context import Touched
from webhooks.crm_write import _finish
from webhooks.models import WebhookEvent
from webhooks.schemas import EventSchema
from webhooks.together import apply_together

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def deliver(rt: Runtime, events: list[tuple[str, str, str, int]]) -> list[int]:
    """One delivery of (event id, payment, action, minute) events."""
    raw = [{"id": eid, "created_at": (T0 + timedelta(minutes=minute)).isoformat(),
            "resource_type": "payments", "action": action, "links": {"payment": payment},
            "details": {"cause": action}} for eid, payment, action, minute in events]
    return intake.ingest(rt, "gocardless", raw, [EventSchema().load(e) for e in raw]).stored


def known_payments(rt: Runtime, gw: str, n: int) -> list[str]:
    """n payments made at the gateway, each applied once (CRM record made, status known)."""
    pays = [gateway_payment(gw) for _ in range(n)]
    process_events(ctx(rt), deliver(rt, [(f"EC{p}", p, "created", 1) for p in pays]),
                   held(rt, "created"))
    assert all(statuses(rt, p) == ["pending_submission"] for p in pays)
    return pays


def applied_once(rt: Runtime) -> Counter[str]:
    with rt.db.transaction() as session:
        return Counter(session.scalars(sa.select(StatusHistory.event_id).where(
            StatusHistory.event_id.is_not(None))))


class FailedCounts:
    """Stands in for app.telemetry.Telemetry: what the job counts as Failed."""

    def __init__(self) -> None:
        self.failed_by_object: Counter[str] = Counter()

    def failed(self, queue: str, by_object: dict[str, int]) -> None:
        self.failed_by_object.update(by_object)

    def processed(self, queue: str, items: object) -> None:
        pass


def test_one_resource_that_raises_is_failed_alone_and_the_others_apply(emulators) -> None:
    rt, gw, _ = emulators
    good, bad, other = known_payments(rt, gw, 3)
    # Resources are classified in the order of their first event: ``other``'s illegal event
    # is failed before ``bad`` raises.
    ids = deliver(rt, [(f"EX{other}", other, "cancelled", 2), (f"EF{other}", other, "confirmed", 3)]
                  + [(f"ES{p}", p, "submitted", 2) for p in (good, bad)]
                  + [(f"EF{p}", p, "confirmed", 3) for p in (good, bad)])
    with rt.db.transaction() as session:
        # A payload our code does not expect (details is a string): classifying it raises.
        session.execute(sa.update(WebhookEvent).where(WebhookEvent.event_id == f"ES{bad}")
                        .values(payload={"details": "not an object"}))
    lease, counts = held(rt, "job-a"), FailedCounts()
    job = ctx(rt)
    job.telemetry = counts

    process_events(job, ids, lease)

    assert lease.fenced == 0  # what the rolled-back attempt noted was forgotten
    assert statuses(rt, good) == ["pending_submission", "submitted", "confirmed"]
    assert statuses(rt, other) == ["pending_submission", "cancelled"]
    assert statuses(rt, bad) == ["pending_submission"]
    with rt.db.transaction() as session:
        left = {e.event_id: e for e in session.scalars(sa.select(WebhookEvent))}
    assert set(left) == {f"ES{bad}", f"EF{bad}", f"EF{other}"}  # the others were finished
    broken = left[f"ES{bad}"]
    assert (broken.status, broken.attempts) == ("pending", 1)  # retried on the schedule
    assert "AttributeError" in (broken.last_error or "")
    assert left[f"EF{other}"].status == "failed"  # cannot become confirmed once cancelled
    # counted once: the rolled-back together attempt failed it too, but that did not happen
    assert counts.failed_by_object == {"payments": 1}
    assert all(e.lease_owner is None for e in left.values())
    assert set(applied_once(rt).values()) == {1}


def test_a_job_that_lost_its_lease_writes_nothing_and_the_new_holder_applies_once(
        emulators) -> None:
    """Job A leases the delivery's resources, then stalls past its lease and job B takes
    them over. When A goes on, the together transaction finds the resources no longer its
    own and writes nothing; B applies every event once."""
    rt, gw, _ = emulators
    pays = known_payments(rt, gw, 3)
    ids = deliver(rt, [(f"ES{p}", p, "submitted", 2) for p in pays])
    stalled, taker = held(rt, "job-a", seconds=0.2), held(rt, "job-b")
    claimed = claim_resources(rt.db, ids, stalled, rt.settings.batch_size)
    assert len(claimed.leased) == 3
    time.sleep(0.5)  # no heartbeat: A's lease on the resources runs out
    assert len(claim_resources(rt.db, ids, taker, rt.settings.batch_size).leased) == 3

    late = [Touched(obj, gateway_id) for _, gateway_id, obj in claimed.leased]
    assert apply_together(ctx(rt), late, stalled) == []
    classify_resource(ctx(rt), late[0], stalled)  # the path of a resource new to Paybridge

    assert all(not item.event_ids for item in late) and stalled.fenced == 4
    assert all(statuses(rt, pay) == ["pending_submission"] for pay in pays)
    with rt.db.transaction() as session:
        assert all(e.lease_owner is None for e in session.scalars(sa.select(WebhookEvent)))
    process_events(ctx(rt), ids, taker)
    for pay in pays:
        assert statuses(rt, pay) == ["pending_submission", "submitted"]
    assert set(applied_once(rt).values()) == {1}
    with rt.db.transaction() as session:
        assert session.scalars(sa.select(WebhookEvent)).all() == []
        assert records.find_link(session, "Payment", gateway_id=pays[0]).lease_owner is None


def test_events_no_longer_held_at_the_finish_are_each_counted_as_dropped(emulators) -> None:
    """A job whose events were taken from it before it finished them finishes none and
    counts every one it lost (the fencing figure operators read), not one per step."""
    rt, gw, _ = emulators
    pays = known_payments(rt, gw, 2)
    ids = deliver(rt, [(f"ED{p}", p, "submitted", 2) for p in pays])
    thief = held(rt, "thief")
    with rt.db.transaction() as session:  # the events are another job's now
        session.execute(sa.update(WebhookEvent).where(WebhookEvent.id.in_(ids)).values(
            lease_owner=thief.owner, lease_token=thief.token,
            lease_until=datetime.now(UTC) + timedelta(seconds=60)))
    late = held(rt, "late")
    assert _finish(ctx(rt), ids, late) == 0
    assert late.fenced == len(ids) == 2
    with rt.db.transaction() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent)
                              .where(WebhookEvent.id.in_(ids))) == 2  # nothing finished
