"""Queries per batch on the hot paths: no N+1.

Every statement the engine sends is counted (SQLAlchemy ``before_cursor_execute``) while a
batch of API Queue rows goes through its gateway step and its write-back against the real
emulators, and while a webhook delivery is stored.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import event
from werkzeug.serving import make_server

from app.config import Settings
from app.records import service as records
from app.runtime import Runtime
from queues import processor, service
from sim.gateway import GatewayConfig
from sim.gateway import create_app as gateway_app
from sim.salesforce import SimConfig, start_in_thread
from tests.conftest import clean
from tests.leases import held
from webhooks import intake
from webhooks.apply import WebhookContext, process_events

# The batch's rows and links are read up front in a few queries; the answers are then
# written in chunks (queues.recording): per chunk one transaction re-checks the lease, upserts
# the links and references and writes the history and the rows, each kind in one statement
# on PostgreSQL. Measured for 10 and 50 items: 10 and 10 statements on PostgreSQL, 30 and
# 110 on SQLite (whose driver sends the ORM's new rows one by one).
PER_ITEM = 2
FIXED = 12
# A webhook delivery of known payments (two events each; webhooks.together): the claim, one
# transaction that locks the links, leases and reads the events and writes the history and
# the events, the links read for the CRM write, the finish and one release for all. Before,
# each payment cost its own starting-status read, classification and release: 90 and 330
# statements on PostgreSQL for 10 and 40 payments, 135 and 495 on SQLite. Measured now: 17
# and 17 on PostgreSQL, 43 and 103 on SQLite (whose driver sends the ORM's rows one by one).
WEBHOOK_FIXED = 20
WEBHOOK_FIXED_SQLITE = 25
WEBHOOK_PER_PAYMENT_SQLITE = 2


class QueryCounter:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.statements: list[str] = []
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    def take(self) -> list[str]:
        taken, self.statements = self.statements, []
        return taken

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._count)


@pytest.fixture
def partners(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(gateway URL, Salesforce URL, its CA file), both emulators in this process."""
    gateway = gateway_app(GatewayConfig(port=0, webhook_url=""))
    server = make_server("127.0.0.1", 0, gateway, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sf = start_in_thread(SimConfig(port=0, cert_dir=str(tmp_path / "sf")))
    yield f"http://127.0.0.1:{server.server_port}", sf.base_url, sf.ca_path
    sf.stop()
    server.shutdown()
    gateway.extensions["gateway_sim"].close()


@pytest.fixture
def wired(settings: Settings, partners: tuple[str, str, str]) -> Iterator[Runtime]:
    gateway_url, sf_url, ca = partners
    runtime = Runtime(replace(settings, gateway_url=gateway_url, salesforce_login_url=sf_url,
                              salesforce_ca_bundle=ca, gateway_rate_limit=0))
    clean(runtime)
    yield runtime
    runtime.db.dispose()


def contacts(rt: Runtime, n: int, prefix: str) -> list[dict[str, Any]]:
    """Contacts created in the org (as a user would), as API Queue changes."""
    http = requests.Session()
    http.trust_env = False
    records = [{"FirstName": "Q", "LastName": f"{prefix}{i}", "Email": f"{prefix}{i}@x.example"}
               for i in range(n)]
    answer = http.post(f"{rt.settings.salesforce_login_url}/sim/records/Contact/bulk",
                       json={"records": records}, verify=rt.settings.salesforce_ca_bundle,
                       timeout=30)
    answer.raise_for_status()
    return [{"object": "Customer", "record_id": crm_id, "operation": "insert", "fields": r}
            for crm_id, r in zip(answer.json()["ids"], records, strict=True)]


def run_batch(rt: Runtime, counter: QueryCounter, items: list[Any],
              owner: str) -> tuple[int, int]:
    """(queries of the gateway steps, queries of the write-back) for one batch."""
    ids = service.claim(rt.db, [i.id for i in items], held(rt, owner, 60))
    assert len(ids) == len(items)
    ctx = processor.QueueContext(settings=rt.settings, db=rt.db, gateway=rt.gateway,
                                 crm=rt.crm, pause=rt.crm_pause)
    counter.take()
    assert processor.gateway_steps(ctx, ids, held(rt, owner)) == len(items)
    steps = len(counter.take())
    assert processor.write_back(ctx, ids, held(rt, owner)) == len(items)
    return steps, len(counter.take())


def test_a_batch_costs_a_few_queries_per_item_and_a_constant_write_back(
        wired: Runtime) -> None:
    # Every row is stored first, so no batch starts from an empty table.
    items = service.accept_changes(wired.db, contacts(wired, 62, "q"), batch_size=62)
    counter = QueryCounter(wired.db.engine)
    try:
        run_batch(wired, counter, items[:2], "warm")  # sessions, logins, caches
        steps_10, write_back_10 = run_batch(wired, counter, items[2:12], "ten")
        steps_50, write_back_50 = run_batch(wired, counter, items[12:], "fifty")
    finally:
        counter.close()
    assert steps_50 <= PER_ITEM * 50 + FIXED, steps_50
    # Linear in the items at a constant rate: nothing per item grows with the batch.
    assert steps_50 - steps_10 <= PER_ITEM * 40, (steps_10, steps_50)
    # The write-back reads rows and links in bulk, then deletes/archives in bulk.
    assert write_back_50 == write_back_10, (write_back_10, write_back_50)
    assert write_back_50 <= FIXED


def test_a_delivery_is_stored_with_one_multi_row_insert(rt: Runtime) -> None:
    events = [{"id": f"EVQ{n:05d}", "created_at": "2026-11-22T10:00:00.000Z",
               "resource_type": "payments", "action": "confirmed",
               "links": {"payment": f"PMQ{n:05d}"}, "details": {"cause": "x"}}
              for n in range(100)]
    from webhooks.schemas import BatchSchema

    parsed = BatchSchema().load({"events": events})["events"]
    counter = QueryCounter(rt.db.engine)
    try:
        stored = intake.ingest(rt, "gocardless", events, parsed)
        statements = counter.take()
    finally:
        counter.close()
    assert len(stored.stored) == 100
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 1, statements
    assert len(statements) <= 4, statements  # the dedup read, the insert (+ BEGIN/COMMIT)


def known_payments(rt: Runtime, n: int, prefix: str) -> list[str]:
    """n Payment__c records in the org, linked to gateway payments pending submission."""
    http = requests.Session()
    http.trust_env = False
    answer = http.post(f"{rt.settings.salesforce_login_url}/sim/records/Payment__c/bulk",
                       json={"records": [{"Amount__c": 10 + i} for i in range(n)]},
                       verify=rt.settings.salesforce_ca_bundle, timeout=30)
    answer.raise_for_status()
    gateway_ids = [f"PM{prefix}{i:04d}" for i in range(n)]
    with rt.db.transaction() as session:
        for crm_id, gateway_id in zip(answer.json()["ids"], gateway_ids, strict=True):
            link = records.upsert_link(session, "Payment", crm_id=crm_id, gateway_id=gateway_id)
            records.record_transition(session, link, "pending_submission", source="api")
    return gateway_ids


def apply_delivery(rt: Runtime, counter: QueryCounter, payments: list[str]) -> int:
    """Statements of one webhook job applying a delivery (submitted, confirmed per payment)."""
    from webhooks.schemas import EventSchema

    raw = [{"id": f"EV{p}{action}", "created_at": f"2026-11-22T10:0{minute}:00.000Z",
            "resource_type": "payments", "action": action, "links": {"payment": p},
            "details": {"cause": action}}
           for p in payments for minute, action in ((1, "submitted"), (2, "confirmed"))]
    ids = intake.ingest(rt, "gocardless", raw, [EventSchema().load(e) for e in raw]).stored
    ctx = WebhookContext(rt.settings, rt.db, rt.gateway, rt.crm, rt.crm_pause)
    counter.take()
    assert process_events(ctx, ids, held(rt, f"job-{len(payments)}-{payments[0]}"))[
        "written"] == len(ids)
    return len(counter.take())


def test_a_webhook_delivery_of_known_payments_costs_a_constant_few_statements(
        wired: Runtime) -> None:
    counter = QueryCounter(wired.db.engine)
    try:
        apply_delivery(wired, counter, known_payments(wired, 2, "W"))  # logins, caches
        ten = apply_delivery(wired, counter, known_payments(wired, 10, "T"))
        forty = apply_delivery(wired, counter, known_payments(wired, 40, "F"))
    finally:
        counter.close()
    if wired.db.dialect == "postgresql":
        assert forty == ten <= WEBHOOK_FIXED, (ten, forty)
    else:
        assert forty - ten <= WEBHOOK_PER_PAYMENT_SQLITE * 30, (ten, forty)
        assert ten <= WEBHOOK_FIXED_SQLITE + WEBHOOK_PER_PAYMENT_SQLITE * 10, ten
