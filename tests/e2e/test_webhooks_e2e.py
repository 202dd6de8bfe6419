"""Webhook Queue end to end: the gateway emulator posts signed batches to the real processes."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from app.supervisor import paybridge_procs
from tests.e2e.conftest import Stack, wait_until

pytestmark = pytest.mark.e2e

HAPPY_PATH = ["pending_submission", "submitted", "confirmed", "paid_out"]


def gw_create(stack: Stack, resource: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = stack.gw_call("POST", f"/{resource}", json={resource: body})
    assert resp.status_code == 201, resp.text
    return resp.json()[resource]


def gateway_side_mandate(stack: Stack) -> str:
    """A customer, bank account and mandate created at the gateway (a hosted page, say):
    the CRM has none of them yet."""
    customer = gw_create(stack, "customers", {"given_name": "Hosted", "family_name": "Page",
                                              "email": "hosted@example.com"})
    account = gw_create(stack, "customer_bank_accounts", {
        "account_holder_name": "Hosted Page", "account_number": "55779911",
        "branch_code": "200000", "country_code": "GB", "currency": "GBP",
        "links": {"customer": customer["id"]}})
    mandate = gw_create(stack, "mandates", {"scheme": "bacs",
                                            "links": {"customer_bank_account": account["id"]}})
    stack.http.post(f"{stack.gw}/sim/advance", json={
        "resource_type": "mandates", "ids": [mandate["id"]], "to": "active"},
        timeout=30).raise_for_status()
    return str(mandate["id"])


def crm(stack: Stack, sobject: str) -> list[dict[str, Any]]:
    return stack.sf_call("GET", f"/sim/records/{sobject}").json()["records"]


def drained(stack: Stack) -> bool:
    flushed = stack.http.post(f"{stack.gw}/sim/webhooks/flush?timeout=5", timeout=30)
    if flushed.status_code != 200:
        return False
    body = stack.api("GET", "/api/v1/webhook-events?status=pending&limit=1").json()
    parked = stack.api("GET", "/api/v1/webhook-events?status=parked&limit=1").json()
    return not body["items"] and not parked["items"]


def test_payments_driven_through_their_lifecycles_arrive_shuffled_and_duplicated(
        fresh: Stack) -> None:
    stack = fresh
    mandate = gateway_side_mandate(stack)
    payments = [gw_create(stack, "payments", {"amount": 1000 + n, "currency": "GBP",
                                              "links": {"mandate": mandate}})["id"]
                for n in range(200)]
    stack.http.post(f"{stack.gw}/sim/webhooks/faults",
                    json={"duplicate_rate": 0.3, "shuffle": True}, timeout=10).raise_for_status()
    stack.http.post(f"{stack.gw}/sim/advance", json={
        "resource_type": "payments", "ids": payments, "to": "paid_out"},
        timeout=60).raise_for_status()
    wait_until(lambda: drained(stack), 180, "every event applied", stack)

    by_gateway_id = {p["Gateway_Id__c"]: p for p in crm(stack, "Payment__c")}
    assert set(payments) <= set(by_gateway_id), "every payment got a CRM record"
    assert len(crm(stack, "Mandate__c")) == 1 and len(crm(stack, "Contact")) == 1
    mandate_crm_id = crm(stack, "Mandate__c")[0]["Id"]
    for gid in payments:
        record = by_gateway_id[gid]
        assert record["Status__c"] == "Paid Out", record
        assert record["Mandate__c"] == mandate_crm_id
        history = stack.api("GET", f"/api/v1/records/Payment/{gid}/history").json()["history"]
        moves = [h["to"] for h in history if h["from"] != h["to"]]
        assert moves == HAPPY_PATH, (gid, history)
        times = [h["event_time"] for h in history if h["event_time"]]
        assert times == sorted(times)
        applied = [h["event_id"] for h in history if h["event_id"]]
        assert len(applied) == len(set(applied)), "a duplicate was applied twice"
    stale = stack.api("GET", "/api/v1/webhook-events?status=stale&limit=500").json()["items"]
    failed = stack.api("GET", "/api/v1/webhook-events?status=failed&limit=5").json()["items"]
    assert failed == [], [(e["resource_type"], e["action"], e["last_error"]) for e in failed]
    # Duplicates were either ignored at intake or kept visible as stale, never applied.
    assert all(e["resource_type"] in {"payments", "mandates", "payouts"} for e in stale)


def test_a_delivery_signed_with_a_wrong_key_is_refused_then_retried(fresh: Stack) -> None:
    stack = fresh
    stack.http.post(f"{stack.gw}/sim/webhooks/faults", json={"wrong_key_next": 1},
                    timeout=10).raise_for_status()
    mandate = gateway_side_mandate(stack)
    wait_until(lambda: drained(stack), 60, "the retried delivery", stack)
    deliveries = stack.http.get(f"{stack.gw}/sim/webhooks", timeout=10).json()
    statuses = [a.get("status") for d in deliveries["deliveries"]
                for a in d.get("attempts", [])]
    assert 498 in statuses
    record = next(m for m in crm(stack, "Mandate__c") if m["Gateway_Id__c"] == mandate)
    assert record["Status__c"] == "Active"


def test_a_worker_killed_mid_batch_loses_nothing(fresh: Stack) -> None:
    stack = fresh
    mandate = gateway_side_mandate(stack)
    wait_until(lambda: drained(stack), 60, "the mandate", stack)
    payments = [gw_create(stack, "payments", {"amount": 500, "currency": "GBP",
                                              "links": {"mandate": mandate}})["id"]
                for _ in range(60)]
    stack.sf_call("POST", "/sim/faults", json={"latency_ms": 40}).raise_for_status()
    stack.http.post(f"{stack.gw}/sim/advance", json={
        "resource_type": "payments", "ids": payments, "to": "confirmed"},
        timeout=60).raise_for_status()
    time.sleep(1.0)
    for name in [p.name for p in stack.procs if p.name.startswith("worker")]:
        proc = stack.proc(name)
        assert proc.popen is not None
        os.killpg(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait()
        stack.procs.remove(proc)
    for proc in paybridge_procs(stack.ports, 2):
        if proc.name.startswith("worker"):
            proc.name += f"-{time.monotonic_ns()}"
            stack.start_proc(proc)
    stack.sf_call("DELETE", "/sim/faults").raise_for_status()
    wait_until(lambda: drained(stack), 120, "every event after the kill", stack)
    statuses = {p["Gateway_Id__c"]: p["Status__c"] for p in crm(stack, "Payment__c")}
    assert [statuses.get(gid) for gid in payments] == ["Confirmed"] * len(payments)
