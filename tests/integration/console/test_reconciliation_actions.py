"""The Reconciliation actions against both emulators over HTTP: repairing one difference or
all of a kind changes the CRM (or queues the gateway update) as the repair paths do, is
audited, and is refused to operations users and to forms without their CSRF token; runs
started from the console are admin jobs, one at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from rq import Queue, SimpleWorker

from app.audit import AuditEntry
from app.background import ADMIN_QUEUE
from app.clock import utcnow
from app.records import service as records
from app.runtime import Runtime
from app.web import create_app
from queues.models import QueueItem
from reconcile import engine, starts
from reconcile.models import ReconcileDifference, ReconcileRun
from tests.integration.console.support import Console, key, users
from tests.integration.reconcile_world import World
from workers.context import set_runtime


@pytest.fixture
def world(linked: tuple[Runtime, str, str, requests.Session]) -> World:
    return World(*linked)


@pytest.fixture
def consoles(world: World) -> Iterator[tuple[Console, Console]]:
    """An admin's and an operations user's console on the runtime the emulators serve."""
    users(world.rt)
    admin = Console(create_app(runtime=world.rt).test_client())
    ops = Console(create_app(runtime=world.rt).test_client())
    assert admin.sign_in("alice").status_code == 302
    assert ops.sign_in("otto").status_code == 302
    yield admin, ops


def run_admin_jobs(rt: Runtime) -> None:
    set_runtime(rt)
    SimpleWorker([Queue(ADMIN_QUEUE, connection=rt.redis)], connection=rt.redis).work(
        burst=True, with_scheduler=False)


def diffs(rt: Runtime, run_id: int, **where: Any) -> list[ReconcileDifference]:
    with rt.db.transaction() as session:
        query = sa.select(ReconcileDifference).where(ReconcileDifference.run_id == run_id)
        for name, value in where.items():
            query = query.where(getattr(ReconcileDifference, name) == value)
        return list(session.scalars(query.order_by(ReconcileDifference.id)))


def audit_rows(rt: Runtime, action: str) -> list[AuditEntry]:
    with rt.db.transaction() as session:
        return list(session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)
                                    .order_by(AuditEntry.id)))


def runs_of(rt: Runtime) -> list[ReconcileRun]:
    with rt.db.transaction() as session:
        return list(session.scalars(sa.select(ReconcileRun).order_by(ReconcileRun.id)))


def test_repair_one_heals_the_crm_record_and_is_audited(world: World,
                                                        consoles: tuple[Console, Console]
                                                        ) -> None:
    admin, ops = consoles
    rt = world.rt
    payment_crm, payment = world.chain(0)["Payment"]
    world.advance("payments", payment["id"], "confirmed")  # webhooks were off
    run_id, _ = engine.reconcile(rt, ["Payment"])
    (diff,) = diffs(rt, run_id)
    assert (diff.kind, diff.repair, diff.repair_state) == ("status", "heal", "pending")
    path = f"/reconcile/differences/{diff.id}/repair"

    assert admin.client.post(path).status_code == 400  # no CSRF token
    assert ops.post(path).status_code == 403
    assert diffs(rt, run_id)[0].repair_state == "pending"
    assert world.crm_get("Payment__c", payment_crm)["Status__c"] != "Confirmed"
    assert audit_rows(rt, "reconcile_repair") == []

    resp = admin.post(path)
    assert resp.status_code == 302 and resp.headers["Location"] == f"/reconcile/{run_id}"
    assert diffs(rt, run_id)[0].repair_state == "applied"
    (run,) = runs_of(rt)  # its summary (the dashboard's, the metrics' and alert's) follows
    assert (run.summary["remaining"], run.summary["repaired"]) == ({}, 1)
    assert world.crm_get("Payment__c", payment_crm)["Status__c"] == "Confirmed"
    with rt.db.transaction() as session:
        _, history = records.history(session, "Payment", payment_crm)
        assert [(e.to_status, e.source) for e in history] == [("confirmed", "reconcile")]
    (entry,) = audit_rows(rt, "reconcile_repair")
    assert (entry.actor, entry.target_type, entry.target_id, entry.before, entry.after) == (
        "alice", "reconcile_difference", str(diff.id), {"repair_state": "pending"},
        {"repair_state": "applied"})

    again = admin.post(path)
    assert again.status_code == 302
    assert "repaired already" in admin.get(f"/reconcile/{run_id}").get_data(as_text=True)
    assert len(audit_rows(rt, "reconcile_repair")) == 1


def test_repair_all_of_a_kind_runs_as_a_job_through_the_repair_paths(
        world: World, consoles: tuple[Console, Console]) -> None:
    admin, _ = consoles
    rt = world.rt
    api = create_app(runtime=rt).test_client()
    chains = [world.chain(n) for n in range(3)]
    references = {c["Payment"][0]: world.crm_get("Payment__c", c["Payment"][0])["Reference__c"]
                  for c in chains}
    for crm_id in references:  # a gateway-owned field edited by hand in the CRM
        world.crm_update("Payment__c", crm_id, {"Reference__c": "TYPED-BY-HAND"})
    customer_crm, customer = chains[0]["Customer"]
    world.gateway_update("customers", customer["id"], {"given_name": "Augusta"})
    run_id, _ = engine.reconcile(rt, ["Customer", "Payment"])
    assert {(d.object, d.kind, d.repair) for d in diffs(rt, run_id)} == {
        ("Payment", "field", "write_back"), ("Customer", "field", "queue_update")}

    admin_key, ops_key = key(rt, "admin", "repair-script"), key(rt, "operations")
    url = f"/api/v1/reconcile-runs/{run_id}/repair"
    assert api.post(url, json={"kind": "field"}, headers=ops_key).status_code == 403
    for body, status, field in (({"kind": "wrong"}, 400, "kind"), ({}, 400, "kind"),
                                ({"kind": "field", "object": "Nope"}, 400, "object")):
        resp = api.post(url, json=body, headers=admin_key)
        assert resp.status_code == status and field in resp.get_json()["error"]["details"][
            "fields"], body
    assert api.post("/api/v1/reconcile-runs/999999/repair", json={"kind": "field"},
                    headers=admin_key).status_code == 404

    resp = api.post(url, json={"kind": "field", "object": "Payment"}, headers=admin_key)
    assert resp.status_code == 202
    op = resp.get_json()
    assert (op["queue"], op["action"], op["total"], op["status"]) == (
        "reconcile", "repair", 3, "queued")
    assert all(d.repair_state == "pending" for d in diffs(rt, run_id))  # nothing yet: a job
    run_admin_jobs(rt)
    done = api.get(f"/api/v1/bulk-operations/{op['id']}", headers=admin_key).get_json()
    assert (done["status"], done["processed"], done["changed"]) == ("done", 3, 3)
    for crm_id, reference in references.items():
        assert world.crm_get("Payment__c", crm_id)["Reference__c"] == reference
    assert [d.repair_state for d in diffs(rt, run_id, object="Customer")] == ["pending"]
    repaired = audit_rows(rt, "reconcile_repair")
    assert {e.actor for e in repaired} == {f"repair-script (bulk #{op['id']})"}
    assert len(repaired) == 3 and len(audit_rows(rt, "bulk_repair")) == 1

    # The same from the page: the CRM-owned field goes out again through the API Queue.
    page = admin.post(f"/reconcile/{run_id}/repair", {"kind": "field", "object": "Customer"})
    assert page.status_code == 302 and "/bulk/" in page.headers["Location"]
    run_admin_jobs(rt)
    assert [d.repair_state for d in diffs(rt, run_id, object="Customer")] == ["applied"]
    with rt.db.transaction() as session:
        items = list(session.scalars(sa.select(QueueItem)))
    assert [(i.object, i.record_id, i.operation) for i in items] == [
        ("Customer", customer_crm, "update")]
    bulk_page = admin.get(page.headers["Location"]).get_data(as_text=True)
    assert "reconcile" in bulk_page and "repaired" in bulk_page


def test_runs_start_as_admin_jobs_one_at_a_time(world: World,
                                                consoles: tuple[Console, Console]) -> None:
    admin, ops = consoles
    rt = world.rt
    world.chain(0)
    never = world.crm_create("Contact", {"LastName": "Never"})
    form = {"kind": "reconcile", "objects": ["Customer"], "repair": "on"}

    assert admin.client.post("/reconcile/start", data=form).status_code == 400  # no token
    assert ops.post("/reconcile/start", form).status_code == 403
    assert runs_of(rt) == []

    resp = admin.post("/reconcile/start", form)
    assert resp.status_code == 302
    (run,) = runs_of(rt)
    assert (run.state, run.objects, run.repair, run.started_by) == (
        "queued", ["Customer"], True, "console")
    assert resp.headers["Location"] == f"/reconcile/{run.id}"
    queue = Queue(ADMIN_QUEUE, connection=rt.redis)
    assert [j.func_name for j in queue.get_jobs()] == [starts.RUN_JOB]
    (started,) = audit_rows(rt, "reconcile_start")
    assert (started.actor, started.target_id, started.after["objects"]) == (
        "alice", str(run.id), ["Customer"])

    refused = admin.post("/reconcile/start", form, follow_redirects=True)
    assert "has been handed out and has not started yet" in refused.get_data(as_text=True)
    api = create_app(runtime=rt).test_client()
    admin_key = key(rt, "admin", "starter")
    conflict = api.post("/api/v1/reconcile-runs", json={"kind": "reconcile"}, headers=admin_key)
    assert conflict.status_code == 409
    assert conflict.get_json()["error"]["code"] == "run_in_progress"
    assert len(runs_of(rt)) == 1 and len(queue.get_jobs()) == 1

    page = admin.get(f"/reconcile/{run.id}").get_data(as_text=True)
    assert f'data-refresh="/reconcile/{run.id}/progress"' in page  # live while queued
    run_admin_jobs(rt)
    (run,) = runs_of(rt)
    assert (run.state, run.summary["remaining"]) == ("done", {"not_synced": 1})
    assert run.progress["Customer"]["crm_seen"] == 2
    progress = admin.get(f"/reconcile/{run.id}/progress").get_data(as_text=True)
    assert "data-final" in progress and "2</b> CRM records compared" in progress
    assert "data-refresh" not in admin.get(f"/reconcile/{run.id}").get_data(as_text=True)

    # A run some other process is saving progress on refuses a start too (the engine's
    # own one-at-a-time), with no job handed out.
    with rt.db.transaction() as session:
        session.add(ReconcileRun(kind="reconcile", objects=["Payment"], state="running",
                                 started_by="cli", started_at=utcnow(), updated_at=utcnow(),
                                 progress={}, cursor={}, summary={}))
    busy = api.post("/api/v1/reconcile-runs", json={"kind": "reconcile"}, headers=admin_key)
    assert busy.status_code == 409 and "is running" in busy.get_json()["error"]["message"]
    assert len(queue.get_jobs()) == 0 and never


def test_a_backfill_started_from_the_api_shows_its_progress(world: World,
                                                            consoles: tuple[Console, Console]
                                                            ) -> None:
    admin, _ = consoles
    rt = world.rt
    api = create_app(runtime=rt).test_client()
    admin_key = key(rt, "admin", "onboarding")
    world.chain(0)
    fresh = [world.crm_create("Contact", {"LastName": f"New{n}", "Email": f"n{n}@example.com"})
             for n in range(3)]
    for body, field in (({"kind": "sync"}, "kind"),
                        ({"kind": "backfill", "object": "Payout"}, "object"),
                        ({"kind": "backfill"}, "object"),
                        ({"kind": "reconcile", "objects": ["Nope"]}, "objects")):
        resp = api.post("/api/v1/reconcile-runs", json=body, headers=admin_key)
        assert resp.status_code == 400, body
        assert field in str(resp.get_json()["error"]["details"]), body
    resp = api.post("/api/v1/reconcile-runs", headers=admin_key, json={
        "kind": "backfill", "object": "Customer", "where": "LastName LIKE 'New%'"})
    assert resp.status_code == 202
    run_id = resp.get_json()["id"]
    run_admin_jobs(rt)
    run = api.get(f"/api/v1/reconcile-runs/{run_id}", headers=admin_key).get_json()
    assert (run["kind"], run["state"], run["where"]) == ("backfill", "done",
                                                         "LastName LIKE 'New%'")
    assert (run["totals"]["crm_seen"], run["totals"]["queued"]) == (3, 3)
    with rt.db.transaction() as session:
        queued = sorted(session.scalars(sa.select(QueueItem.record_id)))
    assert queued == sorted(fresh)
    page = admin.get(f"/reconcile/{run_id}").get_data(as_text=True)
    assert "3</b> queued as inserts" in page
    listing = admin.get("/reconcile").get_data(as_text=True)
    assert "3 records, 0 linked, 3 queued" in listing
