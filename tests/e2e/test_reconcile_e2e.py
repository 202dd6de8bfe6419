"""Reconciliation and backfill with the real processes: gunicorn, two RQ workers, the clock
and both emulators over HTTP, the org's trigger and the gateway's webhooks off, so every
drift below is made directly in one emulator and nothing but reconciliation notices it.

``paybridge reconcile`` and ``paybridge backfill`` run as processes of their own; the repairs
they queue are carried out by the running workers, as any other queue item."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import requests
import sqlalchemy as sa

from app.mapping import GATEWAY_ID_FIELD
from app.records import service as records
from app.runtime import Runtime
from app.supervisor import PY
from bench.stack import ROOT
from queues.models import QueueItem
from reconcile import schedule
from reconcile.models import ReconcileDifference, ReconcileRun
from tests.e2e.conftest import Stack, running_stack, wait_until
from tests.integration.reconcile_world import World

pytestmark = pytest.mark.e2e


def partners_quiet(stack: Stack) -> None:
    """Nothing reaches Paybridge by itself: no trigger calls, no webhook deliveries."""
    stack.sf_call("POST", "/sim/trigger", json={"url": None}).raise_for_status()
    stack.http.post(f"{stack.gw}/sim/webhooks/config", json={"url": ""},
                    timeout=10).raise_for_status()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, database_url: str,
          redis_url: str) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("reconcile-stack"), database_url, redis_url,
                       prepare=partners_quiet) as st:
        yield st


@pytest.fixture
def world(fresh: Stack) -> World:
    sf = requests.Session()
    sf.trust_env = False  # REQUESTS_CA_BUNDLE would override verify (FACTS)
    sf.verify = fresh.env["SALESFORCE_CA_BUNDLE"]
    return World(fresh.rt, fresh.gw, fresh.sf, sf)


def paybridge(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """The command line, as an operator runs it, against the stack's settings."""
    return subprocess.run([PY, "-m", "app.cli", *args], env=stack.env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


def last_run(stack: Stack, kind: str = "reconcile") -> ReconcileRun:
    with stack.rt.db.transaction() as session:
        run = session.scalars(sa.select(ReconcileRun).where(ReconcileRun.kind == kind)
                              .order_by(ReconcileRun.id.desc()).limit(1)).one()
        session.expunge(run)
        return run


def found(stack: Stack, run_id: int) -> dict[tuple[str, str, str | None], str]:
    """(object, kind, record) -> repair state, for every difference; the record is the CRM
    id, or the gateway id of a resource the CRM lacked (its repair names the new record)."""
    with stack.rt.db.transaction() as session:
        return {(d.object, d.kind, d.gateway_id if d.kind == "missing_in_crm" else d.crm_id):
                d.repair_state
                for d in session.scalars(sa.select(ReconcileDifference).where(
                    ReconcileDifference.run_id == run_id))}


def queue_settled(stack: Stack) -> bool:
    with stack.rt.db.transaction() as session:
        return not session.scalars(sa.select(QueueItem).where(
            QueueItem.status.in_(("pending", "processing")))).first()


def test_safe_drifts_are_found_repaired_through_the_workers_and_gone_next_run(
        world: World, fresh: Stack) -> None:
    stack = fresh
    chains = [world.chain(n) for n in range(3)]
    payment_crm, payment = chains[0]["Payment"]
    customer_crm, customer = chains[1]["Customer"]
    typed_crm, _ = chains[2]["Payment"]
    # The gateway moved a payment on while its webhooks were off (kind status).
    world.advance("payments", payment["id"], "submitted")
    # A CRM-owned field changed in the gateway's dashboard (field, queue_update).
    world.gateway_update("customers", customer["id"], {"given_name": "Augusta"})
    # A gateway-owned field typed over in the CRM (field, write_back).
    world.crm_update("Payment__c", typed_crm, {"Reference__c": "BYHAND"})
    # A payment the gateway made by itself (missing_in_crm, create_crm).
    orphan = world.gateway_create("payments", {"amount": 999, "currency": "GBP", "links": {
        "mandate": chains[0]["Mandate"][1]["id"]}})
    # An insert that reached the gateway whose write-back was lost (link_missing).
    lost = world.crm_create("Contact", {"LastName": "Byron", "Email": "byron@example.com"})
    lost_at_gateway = world.gateway_create("customers", {
        "given_name": "Ada", "family_name": "Byron", "email": "byron@example.com",
        "metadata": {"crm_id": lost}})

    checked = paybridge(stack, "reconcile", "--dry-run")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    expected = {
        ("Payment", "status", payment_crm): "pending",
        ("Customer", "field", customer_crm): "pending",
        ("Payment", "field", typed_crm): "pending",
        ("Payment", "missing_in_crm", orphan["id"]): "pending",
        ("Customer", "link_missing", lost): "pending",
    }
    assert found(stack, last_run(stack).id) == expected
    assert world.crm_get("Payment__c", payment_crm)["Status__c"] == "Pending Submission"

    repaired = paybridge(stack, "reconcile", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    run = last_run(stack)
    assert found(stack, run.id) == {key: "applied" for key in expected}
    # The status came from the gateway, recorded as every transition is.
    with stack.rt.db.transaction() as session:
        _, history = records.history(session, "Payment", payment_crm)
        assert [(h.to_status, h.source) for h in history] == [("submitted", "reconcile")]
    assert world.crm_get("Payment__c", payment_crm)["Status__c"] == "Submitted"
    assert world.crm_get("Payment__c", typed_crm)["Reference__c"] != "BYHAND"
    assert world.crm_get("Contact", lost)[GATEWAY_ID_FIELD] == lost_at_gateway["id"]
    made = [r for r in world.crm_all("Payment__c") if r[GATEWAY_ID_FIELD] == orphan["id"]]
    assert len(made) == 1 and made[0]["Mandate__c"] == chains[0]["Mandate"][0]
    # The CRM-owned field went back to the gateway as a queued update, through a worker.
    wait_until(lambda: world.gateway_get("customers", customer["id"])["given_name"] == "Ada1",
               60, "the queued update to reach the gateway", stack)
    wait_until(lambda: queue_settled(stack), 60, "the API queue to settle", stack)

    again = paybridge(stack, "reconcile")
    assert again.returncode == 0, again.stdout + again.stderr
    assert found(stack, last_run(stack).id) == {}
    assert world.gateway_stats()["creates"] == {"customers": 4, "customer_bank_accounts": 3,
                                                "mandates": 3, "payments": 4}


def test_what_needs_an_admin_is_found_with_its_kind_and_left_alone(
        world: World, fresh: Stack) -> None:
    stack = fresh
    chains = [world.chain(n) for n in range(3)]
    # A CRM record naming a gateway id the gateway never had (a sandbox refresh).
    ghost = world.crm_create("Contact", {"LastName": "Ghost", GATEWAY_ID_FIELD: "CU0000NOPE"})
    # A CRM record carrying another record's gateway id.
    borrowed = world.crm_create("Contact", {"LastName": "Borrow",
                                            GATEWAY_ID_FIELD: chains[2]["Customer"][1]["id"]})
    # A second gateway customer claiming a record: a duplicated insert.
    twice_crm = chains[0]["Customer"][0]
    twice = world.gateway_create("customers", {"given_name": "Ada0", "family_name": "Twice",
                                               "metadata": {"crm_id": twice_crm}})
    # A record never sent to the gateway, and its insert, refused by the gateway: Failed.
    never = world.crm_create("Contact", {"LastName": "Never"})
    answer = stack.api("POST", "/api/v1/queue", json={"changes": [{
        "object": "Customer", "record_id": never, "operation": "insert",
        "fields": {"LastName": "Never", "Email": "not-an-email"}}]})
    assert answer.status_code == 202, answer.text
    wait_until(lambda: stack.api("GET", "/api/v1/queue-items?status=failed").json()["items"],
               60, "the refused insert to be Failed", stack)
    # A field the gateway cannot change, edited in the CRM.
    amount_crm = chains[1]["Payment"][0]
    world.crm_update("Payment__c", amount_crm, {"Amount__c": 99.99})

    result = paybridge(stack, "reconcile", "--repair")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "queue_failed" in result.stdout
    assert found(stack, last_run(stack).id) == {
        ("Customer", "missing_at_gateway", ghost): "pending",
        ("Customer", "link_conflict", borrowed): "pending",
        ("Customer", "duplicate_at_gateway", twice_crm): "pending",
        ("Customer", "not_synced", never): "pending",
        ("Customer", "queue_failed", never): "pending",
        ("Payment", "field", amount_crm): "pending",
    }
    with stack.rt.db.transaction() as session:
        duplicate = session.scalars(sa.select(ReconcileDifference).where(
            ReconcileDifference.kind == "duplicate_at_gateway")).one()
        assert duplicate.gateway_id == twice["id"]  # the one the CRM record does not carry
    assert world.crm_get("Contact", ghost)[GATEWAY_ID_FIELD] == "CU0000NOPE"  # untouched


def test_the_scheduled_job_runs_on_a_worker_and_repairs(world: World, fresh: Stack) -> None:
    """The clock's hand-out, taken by a running worker from the admin queue."""
    stack = fresh
    chain = world.chain(0)
    payment_crm, payment = chain["Payment"]
    world.advance("payments", payment["id"], "submitted")
    rt = Runtime(replace(stack.rt.settings, reconcile_interval=1.0))
    rt.redis.delete(schedule.SCHEDULED_KEY)
    rt.redis.set(schedule.FIRST_DUE_KEY, str(time.time() - 1))
    try:
        assert schedule.schedule(rt) == 1
    finally:
        rt.db.dispose()
        rt.redis.close()
    wait_until(lambda: world.crm_get("Payment__c", payment_crm)["Status__c"] == "Submitted",
               60, "the scheduled reconcile to heal the payment", stack)
    run = wait_until(lambda: (r := last_run(stack)).state == "done" and r, 60,
                     "the scheduled run to finish", stack)
    assert run.started_by == "clock" and run.repair
    assert found(stack, run.id) == {("Payment", "status", payment_crm): "applied"}


def test_backfill_queues_the_rest_and_links_what_the_gateway_has_creating_nothing_twice(
        world: World, fresh: Stack) -> None:
    stack = fresh
    ids = [world.crm_create("Contact", {"FirstName": "On", "LastName": f"Board{n}",
                                        "Email": f"board{n}@example.com"}) for n in range(6)]
    # Two already reached the gateway (their write-back was lost): one names its record in
    # metadata.crm_id, the other only has its e-mail.
    named = world.gateway_create("customers", {"given_name": "On", "family_name": "Board0",
                                               "email": "board0@example.com",
                                               "metadata": {"crm_id": ids[0]}})
    by_email = world.gateway_create("customers", {"given_name": "On", "family_name": "Board1",
                                                  "email": "BOARD1@example.com"})

    result = paybridge(stack, "backfill", "Customer")
    assert result.returncode == 0, result.stdout + result.stderr
    wait_until(lambda: all(world.crm_get("Contact", i).get(GATEWAY_ID_FIELD) for i in ids),
               60, "every Contact to carry a gateway id", stack)
    wait_until(lambda: queue_settled(stack), 60, "the API queue to settle", stack)
    linked = [world.crm_get("Contact", i)[GATEWAY_ID_FIELD] for i in ids]
    assert linked[:2] == [named["id"], by_email["id"]]
    stats = world.gateway_stats()
    assert stats["creates"] == {"customers": 6}  # two by hand above, four by the backfill
    assert len(set(linked)) == 6
    again = paybridge(stack, "backfill", "Customer")
    assert again.returncode == 0, again.stdout + again.stderr
    assert world.gateway_stats()["creates"] == {"customers": 6}
    # Matched by e-mail whatever its case: the case itself is a difference reconcile shows.
    paybridge(stack, "reconcile", "--object", "Customer")
    assert found(stack, last_run(stack).id) == {("Customer", "field", ids[1]): "pending"}
