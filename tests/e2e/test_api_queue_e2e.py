"""API Queue end to end: Salesforce emulator trigger -> Paybridge -> gateway emulator -> back."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
import sqlalchemy as sa

from app.supervisor import paybridge_procs
from queues.models import ArchivedItem
from tests.e2e.conftest import Stack, wait_until

pytestmark = pytest.mark.e2e


def contacts(stack: Stack) -> list[dict[str, Any]]:
    return stack.sf_call("GET", "/sim/records/Contact").json()["records"]


def create_contacts(stack: Stack, n: int, prefix: str = "E2E") -> list[str]:
    records = [{"FirstName": "Test", "LastName": f"{prefix}{i}",
                "Email": f"{prefix.lower()}{i}@example.com"} for i in range(n)]
    resp = stack.sf_call("POST", "/sim/records/Contact/bulk", json={"records": records})
    resp.raise_for_status()
    return list(resp.json()["ids"])


def queue_empty(stack: Stack) -> bool:
    body = stack.api("GET", "/api/v1/queue-items?limit=1").json()
    return not body["items"]


def all_linked(stack: Stack, ids: list[str]) -> bool:
    by_id = {c["Id"]: c for c in contacts(stack)}
    return all(by_id.get(i, {}).get("Gateway_Id__c") for i in ids)


def gateway_stats(stack: Stack) -> dict[str, Any]:
    return stack.http.get(f"{stack.gw}/sim/stats", timeout=10).json()


def test_hundred_records_reach_the_gateway_and_come_back(fresh: Stack) -> None:
    stack = fresh
    ids = create_contacts(stack, 100)
    wait_until(lambda: all_linked(stack, ids) and queue_empty(stack), 90,
               "100 gateway ids written back", stack)
    per_crm = gateway_stats(stack)["resources_per_crm_id"]
    assert {crm_id: per_crm.get(crm_id) for crm_id in ids} == dict.fromkeys(ids, 1)
    gateway_customers = {c["metadata"]["crm_id"]: c["id"] for c in stack.http.get(
        f"{stack.gw}/sim/resources/customers", timeout=10).json()["customers"]}
    for contact in contacts(stack):
        assert contact["Gateway_Id__c"] == gateway_customers[contact["Id"]]
    sf = stack.sf_call("GET", "/sim/stats").json()
    writes = sf["api_calls"].get("collections_update", 0)
    # Write-backs go through sObject Collections: well under one API call per record.
    assert 1 <= writes <= 25, sf["api_calls"]
    assert sf["api_calls"].get("sobject_update", 0) == 0


def test_503_twice_then_success_keeps_both_failures_in_the_log(fresh: Stack) -> None:
    stack = fresh
    stack.http.post(f"{stack.gw}/sim/faults", json={"fail_next": [
        {"status": 503, "count": 2, "path_prefix": "/customers", "method": "POST"}]},
        timeout=10).raise_for_status()
    (crm_id,) = create_contacts(stack, 1, "Retry")
    wait_until(lambda: all_linked(stack, [crm_id]) and queue_empty(stack), 60,
               "the retried item to succeed", stack)
    with stack.rt.db.transaction() as session:
        archived = session.scalars(sa.select(ArchivedItem.id)).all()
    assert len(archived) == 1
    detail = stack.api("GET", f"/api/v1/queue-items/{archived[0]}").json()
    outcomes = [(e["stage"], e["outcome"], e.get("status")) for e in detail["error_log"]]
    assert outcomes[:3] == [("gateway", "retry", 503), ("gateway", "retry", 503),
                            ("gateway", "ok", None)]
    assert detail["status"] == "done" and detail["attempts"] == 2
    assert gateway_stats(stack)["resources_per_crm_id"][crm_id] == 1


def test_validation_rejection_fails_at_once_then_reprocess_succeeds(fresh: Stack) -> None:
    stack = fresh
    stack.http.post(f"{stack.gw}/sim/faults", json={"reject_next": [
        {"count": 1, "path_prefix": "/customers", "field": "email",
         "message": "is not a valid email address"}]}, timeout=10).raise_for_status()
    (crm_id,) = create_contacts(stack, 1, "Reject")
    failed = wait_until(lambda: stack.api("GET", "/api/v1/queue-items?status=failed")
                        .json()["items"], 60, "the item to fail", stack)
    assert failed[0]["attempts"] == 1  # a validation error is not retried
    assert "email: is not a valid email address" in failed[0]["last_error"]
    resp = stack.api("POST", f"/api/v1/queue-items/{failed[0]['id']}/reprocess")
    assert resp.status_code == 200
    wait_until(lambda: all_linked(stack, [crm_id]) and queue_empty(stack), 60,
               "the reprocessed item to succeed", stack)


def test_updates_follow_their_insert_in_order(fresh: Stack) -> None:
    stack = fresh
    ids = create_contacts(stack, 10, "Order")
    for round_no in range(1, 4):
        for crm_id in ids:
            stack.sf_call("PATCH", f"/sim/records/Contact/{crm_id}",
                          json={"Email": f"v{round_no}-{crm_id.lower()}@example.com"}
                          ).raise_for_status()
    wait_until(lambda: all_linked(stack, ids) and queue_empty(stack), 90,
               "inserts and updates to drain", stack)
    customers = {c["metadata"]["crm_id"]: c for c in stack.http.get(
        f"{stack.gw}/sim/resources/customers", timeout=10).json()["customers"]}
    for crm_id in ids:
        assert customers[crm_id]["email"] == f"v3-{crm_id.lower()}@example.com"
    assert all(v == 1 for v in gateway_stats(stack)["resources_per_crm_id"].values())


def test_redis_flushed_while_items_are_pending(fresh: Stack) -> None:
    stack = fresh
    stack.http.post(f"{stack.gw}/sim/faults", json={"latency_ms": 150},
                    timeout=10).raise_for_status()
    ids = create_contacts(stack, 40, "Flush")
    wait_until(lambda: any(c.get("Gateway_Id__c") for c in contacts(stack)), 30,
               "processing to start", stack)
    stack.rt.redis.flushall()
    stack.http.delete(f"{stack.gw}/sim/faults", timeout=10)
    wait_until(lambda: all_linked(stack, ids) and queue_empty(stack), 90,
               "every item despite the flush", stack)
    per_crm = gateway_stats(stack)["resources_per_crm_id"]
    assert [per_crm[i] for i in ids] == [1] * len(ids)


def test_worker_killed_mid_item_loses_nothing(fresh: Stack) -> None:
    stack = fresh
    stack.http.post(f"{stack.gw}/sim/faults", json={"latency_ms": 300},
                    timeout=10).raise_for_status()
    ids = create_contacts(stack, 30, "Kill")
    wait_until(lambda: any(c.get("Gateway_Id__c") for c in contacts(stack)), 30,
               "processing to start", stack)
    for name in ("worker-1", "worker-2"):
        proc = stack.proc(name)
        assert proc.popen is not None
        os.killpg(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait()
        stack.procs.remove(proc)
    time.sleep(0.5)
    for proc in paybridge_procs(stack.ports, 2):
        if proc.name.startswith("worker"):
            proc.name += "-restarted"
            stack.start_proc(proc)
    stack.http.delete(f"{stack.gw}/sim/faults", timeout=10)
    wait_until(lambda: all_linked(stack, ids) and queue_empty(stack), 90,
               "every item after the kill", stack)
    per_crm = gateway_stats(stack)["resources_per_crm_id"]
    assert [per_crm[i] for i in ids] == [1] * len(ids)
