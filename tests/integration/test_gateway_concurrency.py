"""One API Queue job keeps several gateway calls in flight (GATEWAY_CONCURRENCY), and the
guarantees hold: rows of linked records stay serial and in order, and a result that comes
back after the job lost its lease is not written.

Real database and Redis; both emulators over HTTP(S) in threads, the gateway slowed down so
calls overlap; the gateway's own request log (start and end of every request) is the judge.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from app.clock import utcnow
from app.records import service as records
from app.records.models import RecordLink
from app.runtime import Runtime
from app.workrows import leases
from app.workrows.leases import new_lease
from queues import processor, service
from queues.models import STAGE_NEW, QueueItem
from workers.context import queue_context, set_runtime
from workers.jobs import process_api_items

qi = QueueItem.__table__


@pytest.fixture
def world(emulators: tuple[Runtime, str, str]) -> tuple[Runtime, str, str, requests.Session]:
    rt, gw_url, sf_url = emulators
    moded = Runtime(replace(rt.settings, gateway_concurrency=4))
    set_runtime(moded)
    sf = requests.Session()
    sf.trust_env = False  # REQUESTS_CA_BUNDLE would override verify (see FACTS)
    sf.verify = rt.settings.salesforce_ca_bundle
    yield moded, gw_url, sf_url, sf
    moded.db.dispose()


def slow_gateway(gw_url: str, ms: int) -> None:
    requests.post(f"{gw_url}/sim/faults", json={"latency_ms": ms},
                  timeout=10).raise_for_status()


def gateway_log(gw_url: str, path: str) -> dict[str, list[dict[str, Any]]]:
    return requests.get(f"{gw_url}/sim/requests", params={"path": path}, timeout=30).json()


def most_at_once(requests_done: list[dict[str, Any]]) -> int:
    """The most requests the gateway was serving at the same moment."""
    edges = sorted([(r["started"], 1) for r in requests_done]
                   + [(r["ended"], -1) for r in requests_done])
    flying = peak = 0
    for _, step in edges:  # at a tie an end sorts first: touching is not overlapping
        flying += step
        peak = max(peak, flying)
    return peak


def crm_records(sf: requests.Session, sf_url: str, sobject: str,
                rows: list[dict[str, Any]]) -> list[str]:
    resp = sf.post(f"{sf_url}/sim/records/{sobject}/bulk", json={"records": rows})
    assert resp.status_code == 201, resp.text
    return [str(i) for i in resp.json()["ids"]]


def contacts(sf: requests.Session, sf_url: str, n: int) -> list[dict[str, Any]]:
    rows = [{"FirstName": "Many", "LastName": f"C{i}", "Email": f"c{i}@example.com"}
            for i in range(n)]
    crm_ids = crm_records(sf, sf_url, "Contact", rows)
    return [{"object": "Customer", "record_id": crm_id, "operation": "insert", "fields": row}
            for crm_id, row in zip(crm_ids, rows, strict=True)]


def test_one_job_keeps_calls_in_flight_up_to_the_setting(world) -> None:
    rt, gw_url, sf_url, sf = world
    slow_gateway(gw_url, 800)
    items = service.accept_changes(rt.db, contacts(sf, sf_url, 12))

    counts = process_api_items([i.id for i in items])

    assert counts["gateway_ok"] == 12 and counts["written_back"] == 12, counts
    posts = [r for r in gateway_log(gw_url, "/customers")["requests"] if r["method"] == "POST"]
    assert len(posts) == 12
    assert 1 < most_at_once(posts) <= rt.settings.gateway_concurrency


def bank_account(gw_url: str, sf: requests.Session, sf_url: str, rt: Runtime) -> str:
    """A customer and bank account that reached the gateway earlier (the bank-account API),
    linked to their CRM records: the Bank_Account__c CRM id."""
    gw = requests.Session()
    gw.headers["Authorization"] = "Bearer sandbox-token"

    def create(kind: str, body: dict[str, Any]) -> str:
        resp = gw.post(f"{gw_url}/{kind}", json={kind: body}, timeout=10)
        assert resp.status_code == 201, resp.text
        return str(resp.json()[kind]["id"])

    customer = create("customers", {"given_name": "A", "family_name": "B", "email": "a@b.c"})
    account = create("customer_bank_accounts", {
        "account_holder_name": "A B", "account_number": "55779911", "branch_code": "200000",
        "country_code": "GB", "links": {"customer": customer}})
    (contact,) = crm_records(sf, sf_url, "Contact", [{"LastName": "B"}])
    (crm_id,) = crm_records(sf, sf_url, "Bank_Account__c", [{"Contact__c": contact}])
    with rt.db.transaction() as session:
        records.upsert_link(session, "Customer", crm_id=contact, gateway_id=customer)
        records.upsert_link(session, "BankAccount", crm_id=crm_id, gateway_id=account)
    return crm_id


def test_a_payment_queued_with_its_new_mandate_follows_it_while_others_overlap(world) -> None:
    """Each mandate and its payment are one lane (the payment needs the mandate's gateway
    id); lanes run side by side."""
    rt, gw_url, sf_url, sf = world
    account = bank_account(gw_url, sf, sf_url, rt)
    slow_gateway(gw_url, 600)
    mandates = crm_records(sf, sf_url, "Mandate__c",
                           [{"Bank_Account__c": account, "Scheme__c": "bacs"}] * 4)
    payments = crm_records(sf, sf_url, "Payment__c",
                           [{"Mandate__c": m, "Amount__c": 10.0} for m in mandates])
    changes = [{"object": "Mandate", "record_id": m, "operation": "insert",
                "fields": {"Bank_Account__c": account, "Scheme__c": "bacs"}} for m in mandates]
    changes += [{"object": "Payment", "record_id": p, "operation": "insert",
                 "fields": {"Mandate__c": m, "Amount__c": 10.0}}
                for m, p in zip(mandates, payments, strict=True)]
    items = service.accept_changes(rt.db, changes)

    counts = process_api_items([i.id for i in items])

    assert counts["gateway_ok"] == 8 and counts["written_back"] == 8, counts
    log = [r for r in gateway_log(gw_url, "/")["requests"] if r["method"] == "POST"]
    by_key = {r["idempotency_key"]: r for r in log}
    for mandate, payment in zip(mandates, payments, strict=True):
        first = by_key[service.insert_idempotency_key("Mandate", mandate)]
        then = by_key[service.insert_idempotency_key("Payment", payment)]
        assert first["ended"] <= then["started"], (first, then)
    assert most_at_once(log) > 1


def test_rows_of_one_record_reach_the_gateway_one_after_another_in_order(world) -> None:
    rt, gw_url, sf_url, sf = world
    slow_gateway(gw_url, 50)
    inserts = contacts(sf, sf_url, 8)
    service.accept_changes(rt.db, inserts)
    for n in range(1, 4):  # three updates per record, queued behind its insert
        service.accept_changes(rt.db, [
            {**c, "operation": "update",
             "fields": {**c["fields"], "Phone": f"0{n}"},
             "previous_fields": {**c["fields"], "Phone": f"0{n - 1}" if n > 1 else None}}
            for c in inserts])
    for _ in range(20):  # jobs over every row, as the dispatcher and wake-ups hand them out
        with rt.db.transaction() as session:
            left = list(session.scalars(sa.select(QueueItem.id)))
        if not left:
            break
        process_api_items(left)
    assert service.counts_by_status(rt.db) == {}

    with rt.db.transaction() as session:
        gateway_ids = {link.crm_id: link.gateway_id
                       for link in session.scalars(sa.select(RecordLink))}
    log = gateway_log(gw_url, "/customers")["requests"]
    for change in inserts:
        gateway_id = gateway_ids[change["record_id"]]
        mine = sorted((r for r in log if r["path"] == f"/customers/{gateway_id}" or (
            r["method"] == "POST" and r["idempotency_key"] == service.insert_idempotency_key(
                "Customer", change["record_id"]))), key=lambda r: r["started"])
        assert [r["method"] for r in mine] == ["POST", "PUT", "PUT", "PUT"], mine
        for earlier, later in zip(mine, mine[1:], strict=False):
            assert earlier["ended"] <= later["started"]
    customers = requests.get(f"{gw_url}/sim/resources/customers", timeout=10).json()
    assert Counter(c["phone_number"] for c in customers["customers"]) == {"03": 8}


def test_results_arriving_after_the_lease_was_lost_are_not_written(world) -> None:
    rt, gw_url, sf_url, sf = world
    slow_gateway(gw_url, 1500)
    items = service.accept_changes(rt.db, contacts(sf, sf_url, 4))
    ids = [i.id for i in items]
    report: dict[str, int] = {}
    job = threading.Thread(target=lambda: report.update(process_api_items(ids)))
    job.start()
    deadline = time.monotonic() + 30
    while len(gateway_log(gw_url, "/customers")["in_flight"]) < len(ids):
        assert job.is_alive() and time.monotonic() < deadline, "the calls never overlapped"
        time.sleep(0.02)
    # Its worker froze mid-call and the rows went to another job: a takeover, as a grant
    # after the lease expired makes one.
    other = new_lease(rt.db, "other", 60)
    assert leases.claim(rt.db, qi, qi.c.id.in_(ids), other) == sorted(ids)
    job.join(60)

    assert report["fenced"] == len(ids) and report["gateway_ok"] == 0, report
    with rt.db.transaction() as session:
        rows = session.scalars(sa.select(QueueItem).where(QueueItem.id.in_(ids))).all()
        assert {(r.stage, r.lease_owner) for r in rows} == {(STAGE_NEW, other.owner)}
        assert not any(e["outcome"] == "ok" for r in rows for e in r.error_log)
        assert session.scalars(sa.select(RecordLink)).all() == []
    found = sf.get(f"{sf_url}/sim/records/Contact").json()["records"]
    assert [r for r in found if r.get("Gateway_Id__c")] == []

    # The new holder's run (the same idempotency keys) finishes them: one resource each.
    leases.release(rt.db, qi, ids, other)
    slow_gateway(gw_url, 0)
    assert process_api_items(ids)["written_back"] == len(ids)
    stats = requests.get(f"{gw_url}/sim/stats", timeout=10).json()
    assert set(stats["resources_per_crm_id"].values()) == {1}


def test_answers_lost_before_they_were_written_are_replayed_not_duplicated(world) -> None:
    """A job's answers are written in chunks after its calls: a worker that dies between
    the two leaves its rows at the gateway step, and their retry must find the resources
    the lost answers named (the same idempotency keys), never make a second one."""
    rt, gw_url, sf_url, sf = world
    items = service.accept_changes(rt.db, contacts(sf, sf_url, 6))
    ids = [i.id for i in items]
    dead = new_lease(rt.db, "dead", 60)
    assert service.claim(rt.db, ids, dead) == sorted(ids)
    ctx = queue_context(rt)
    answers = [processor.call_step(ctx, item_id, dead) for item_id in ids]
    assert all(answers)  # the calls were made; the worker dies before writing any answer
    with rt.db.transaction() as session:  # its lease runs out
        session.execute(sa.update(qi).where(qi.c.id.in_(ids))
                        .values(lease_until=utcnow() - timedelta(seconds=1)))
        assert set(session.scalars(sa.select(QueueItem.stage))) == {STAGE_NEW}

    counts = process_api_items(ids)

    assert counts["gateway_ok"] == 6 and counts["written_back"] == 6, counts
    customers = requests.get(f"{gw_url}/sim/resources/customers", timeout=10).json()
    assert len(customers["customers"]) == 6
    with rt.db.transaction() as session:
        linked = {link.crm_id: link.gateway_id for link in session.scalars(sa.select(RecordLink))}
    assert linked == {i.record_id: a.resource["id"]
                      for i, a in zip(items, answers, strict=True)}
