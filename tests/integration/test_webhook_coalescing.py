"""Event mode (one RQ job per event) spends Salesforce calls like batch mode: the first job
of a delivery applies the other events stored with it, and the later per-event jobs find
their events done and return without a partner call.

Real database and Redis, the real RQ worker (SimpleWorker, burst) running the real job
functions; the Salesforce emulator over HTTPS counts the calls.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from rq import Queue, SimpleWorker

from app.background import WEBHOOK_QUEUE
from app.records import service as records
from app.records.models import StatusHistory
from app.runtime import Runtime
from webhooks import intake
from webhooks.models import WebhookEvent
from webhooks.schemas import EventSchema
from workers.context import set_runtime
from workers.jobs import process_webhook_events

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
STAGES = {"submitted": 1, "confirmed": 2, "paid_out": 3}
PAYMENTS = 400


@pytest.fixture
def world(emulators: tuple[Runtime, str, str]) -> tuple[Runtime, str, requests.Session]:
    rt, _, sf_url = emulators
    moded = Runtime(replace(rt.settings, webhook_mode="event"))
    set_runtime(moded)
    sf = requests.Session()
    sf.trust_env = False  # REQUESTS_CA_BUNDLE would override verify (see FACTS)
    sf.verify = rt.settings.salesforce_ca_bundle
    return moded, sf_url, sf


def payments_in_crm(rt: Runtime, sf: requests.Session, sf_url: str, n: int) -> list[str]:
    """n Payment__c records, each linked to its gateway payment, pending submission (as
    payments queued from the CRM are once the gateway created them)."""
    crm_ids: list[str] = []
    for start in range(0, n, 200):
        resp = sf.post(f"{sf_url}/sim/records/Payment__c/bulk", json={"records": [
            {"Amount__c": 10 + i} for i in range(start, min(n, start + 200))]})
        crm_ids += resp.json()["ids"]
    gateway_ids = [f"PM{n:05d}" for n in range(len(crm_ids))]
    with rt.db.transaction() as session:
        for crm_id, gateway_id in zip(crm_ids, gateway_ids, strict=True):
            link = records.upsert_link(session, "Payment", crm_id=crm_id, gateway_id=gateway_id)
            records.record_transition(session, link, "pending_submission", source="api")
    return gateway_ids


def deliver(rt: Runtime, events: list[tuple[str, str]]) -> list[int]:
    """One signed delivery's worth of events, stored through the real intake path (which
    enqueues one job per event in event mode)."""
    raw = [{"id": f"EV{payment}{action}", "resource_type": "payments", "action": action,
            "created_at": (T0 + timedelta(minutes=STAGES[action])).isoformat(),
            "links": {"payment": payment}, "details": {"cause": action}}
           for payment, action in events]
    return intake.ingest(rt, "gocardless", raw, [EventSchema().load(e) for e in raw]).stored


def three_deliveries(rt: Runtime, payments: list[str]) -> int:
    """Deliveries as a gateway sends them: events of many payments in each, one payment's
    events spread over several deliveries. Returns how many events were delivered."""
    first, second, third = (
        [(p, "submitted") for p in payments[:300]],
        [(p, "confirmed") for p in payments[:200]] + [(p, "submitted") for p in payments[300:]],
        [(p, "paid_out") for p in payments[:150]])
    return sum(len(deliver(rt, batch)) for batch in (first, second, third))


def sf_calls(sf: requests.Session, sf_url: str) -> int:
    return int(sf.get(f"{sf_url}/sim/stats").json()["api_usage"]["used"])


def assert_applied_once_in_order(rt: Runtime, payments: list[str], events: int) -> None:
    with rt.db.transaction() as session:
        left = session.scalars(sa.select(WebhookEvent)).all()
        assert [(e.event_id, e.status, e.last_error) for e in left] == []
        applied = Counter(session.scalars(sa.select(StatusHistory.event_id).where(
            StatusHistory.event_id.is_not(None))))
        assert len(applied) == events and set(applied.values()) == {1}
        for n, payment in enumerate(payments):
            _, entries = records.history(session, "Payment", payment)
            moves = [e.to_status for e in entries]
            expected = ["pending_submission", "submitted"] + (
                ["confirmed"] if n < 200 else []) + (["paid_out"] if n < 150 else [])
            assert moves == expected, (payment, moves)


def crm_statuses(sf: requests.Session, sf_url: str) -> Counter[str]:
    found = sf.get(f"{sf_url}/sim/records/Payment__c").json()["records"]
    return Counter(r["Status__c"] for r in found)


def test_event_mode_writes_a_delivery_back_in_collections_calls(world) -> None:
    rt, sf_url, sf = world
    payments = payments_in_crm(rt, sf, sf_url, PAYMENTS)
    events = three_deliveries(rt, payments)
    queue = Queue(WEBHOOK_QUEUE, connection=rt.redis)
    assert queue.count == events  # one job per event, as a Platform Event would be
    before = sf_calls(sf, sf_url)

    SimpleWorker([queue], connection=rt.redis).work(burst=True)

    calls = sf_calls(sf, sf_url) - before
    assert calls <= math.ceil(events / 200) + 2, calls
    assert_applied_once_in_order(rt, payments, events)
    assert crm_statuses(sf, sf_url) == {"Paid Out": 150, "Confirmed": 50, "Submitted": 200}


def test_per_event_jobs_racing_each_other_apply_every_event_once(world) -> None:
    """Two workers take the per-event jobs at once: a job that starts while another holds
    its resource returns, and nothing is applied twice or out of order."""
    rt, sf_url, sf = world
    payments = payments_in_crm(rt, sf, sf_url, PAYMENTS)
    events = three_deliveries(rt, payments)
    jobs: deque[list[int]] = deque(
        job.args[0] for job in Queue(WEBHOOK_QUEUE, connection=rt.redis).get_jobs())
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def work() -> None:
        while True:
            try:
                ids = jobs.popleft()
            except IndexError:
                return
            try:
                results.append(process_webhook_events(ids))
            except BaseException as exc:  # noqa: BLE001 - the test reports every failure
                errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    # A job that found its resource held by the other left its events for the dispatcher
    # (due again in a second): hand them out as the clock would, until none is left.
    for _ in range(20):
        with rt.db.transaction() as session:
            left = list(session.scalars(sa.select(WebhookEvent.id)))
        if not left:
            break
        process_webhook_events(left)
    assert_applied_once_in_order(rt, payments, events)
    assert crm_statuses(sf, sf_url) == {"Paid Out": 150, "Confirmed": 50, "Submitted": 200}
    assert sum(r.get("errors", 0) for r in results) == 0


def test_a_failed_delivery_write_is_retried_on_schedule_not_by_each_later_job(world) -> None:
    """The first job's CRM write fails for every record (transient): each event waits for
    its retry; the per-event jobs still queued do not try again at once, one call each."""
    rt, sf_url, sf = world
    rt = Runtime(replace(rt.settings, retry_schedule=(300.0,)))
    set_runtime(rt)
    payments = payments_in_crm(rt, sf, sf_url, 150)
    events = len(deliver(rt, [(p, "submitted") for p in payments]))
    sf.post(f"{sf_url}/sim/faults", json={"unable_to_lock_row": 10_000}).raise_for_status()
    queue = Queue(WEBHOOK_QUEUE, connection=rt.redis)
    before = sf_calls(sf, sf_url)

    SimpleWorker([queue], connection=rt.redis).work(burst=True)

    assert sf_calls(sf, sf_url) - before == 1
    with rt.db.transaction() as session:
        rows = session.scalars(sa.select(WebhookEvent)).all()
        assert len(rows) == events
        assert {(r.status, r.attempts, r.job_id) for r in rows} == {("pending", 1, None)}
        assert all("UNABLE_TO_LOCK_ROW" in (r.last_error or "") for r in rows)
    rt.db.dispose()
