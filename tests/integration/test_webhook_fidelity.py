"""GoCardless' event semantics through the real intake and apply path, against the emulators.

Batches are signed and posted to ``/webhooks/gocardless`` like GoCardless posts them, stored
by the real intake, then applied with ``process_events``; the gateway and Salesforce
emulators run in threads over HTTP(S).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from app.records import service as records
from app.runtime import Runtime
from app.web import create_app
from tests.integration.test_webhook_apply import T0, ctx, gateway_payment, statuses
from tests.leases import held
from webhooks.apply import process_events
from webhooks.models import WebhookEvent
from webhooks.signature import sign


@pytest.fixture
def partners(emulators: tuple[Runtime, str, str]) -> tuple[Runtime, str, str]:
    rt, gw_url, sf_url = emulators
    settings = replace(rt.settings, park_wait=0.0, heal_after=2, webhook_keep_applied=3600.0)
    return Runtime(settings), gw_url, sf_url


def event(eid: str, resource_type: str, resource_id: str, action: str, minute: int,
          **details: Any) -> dict[str, Any]:
    singular = resource_type[:-1]
    links = {singular: resource_id, **details.pop("links", {})}
    return {"id": eid, "created_at": (T0 + timedelta(minutes=minute)).isoformat(),
            "resource_type": resource_type, "action": action, "links": links,
            "details": {"origin": "gocardless", "cause": action, **details}, "metadata": {}}


def post(rt: Runtime, *events: dict[str, Any]) -> list[int]:
    """Sign and post one batch to the real webhook endpoint; the stored rows' ids."""
    body = json.dumps({"events": list(events)}).encode()
    app = create_app(runtime=rt)
    with app.test_client() as client:
        answer = client.post("/webhooks/gocardless", data=body, headers={
            "Content-Type": "application/json",
            "Webhook-Signature": sign(body, rt.settings.webhook_secret)})
    assert answer.status_code == 204, answer.get_data(as_text=True)
    with rt.db.transaction() as session:
        return list(session.scalars(sa.select(WebhookEvent.id).where(
            WebhookEvent.event_id.in_([e["id"] for e in events]))))


def apply(rt: Runtime, ids: list[int], job: str) -> None:
    process_events(ctx(rt), ids, held(rt, job))


def rows(rt: Runtime) -> dict[str, tuple[str, str | None]]:
    with rt.db.transaction() as session:
        return {e.event_id: (e.status, e.reason) for e in session.scalars(sa.select(WebhookEvent))}


def sf(rt: Runtime, sf_url: str, path: str) -> Any:
    s = requests.Session()
    s.trust_env = False
    return s.get(f"{sf_url}/sim/{path}", verify=rt.settings.salesforce_ca_bundle,
                 timeout=10).json()


def crm_records(rt: Runtime, sf_url: str, sobject: str) -> list[dict[str, Any]]:
    return list(sf(rt, sf_url, f"records/{sobject}")["records"])


def history(rt: Runtime, obj: str, record_id: str) -> list[Any]:
    with rt.db.transaction() as session:
        _, entries = records.history(session, obj, record_id)
        session.expunge_all()
        return entries


# Unknown actions -------------------------------------------------------------------------


def test_an_unknown_action_is_informational_never_failed(partners) -> None:
    rt, gw, sf_url = partners
    pay = gateway_payment(gw)
    apply(rt, post(rt, event("EV1", "payments", pay, "created", 1)), "job-a")
    calls = sf(rt, sf_url, "stats")["api_calls_total"]

    # GoCardless may add an action at any time; receivers are to ignore what they do not
    # know. It is recorded, changes nothing and finishes Done.
    apply(rt, post(rt, event("EV5", "payments", pay, "teleported", 5)), "job-b")
    status, reason = rows(rt)["EV5"]
    assert status == "applied" and "unknown event action 'teleported'" in (reason or "")
    entries = history(rt, "Payment", pay)
    unknown = [e for e in entries if e.event_id == "EV5"]
    assert len(unknown) == 1 and unknown[0].from_status == unknown[0].to_status
    assert unknown[0].cause and unknown[0].cause.startswith("teleported")
    assert statuses(rt, pay) == ["pending_submission"]
    assert sf(rt, sf_url, "stats")["api_calls_total"] == calls, "no CRM write for it"
    (record,) = crm_records(rt, sf_url, "Payment__c")
    assert record["Status__c"] == "Pending Submission" and record["Last_Event_Id__c"] == "EV1"

    # The watermark did not move: an older status event still applies after it.
    apply(rt, post(rt, event("EV3", "payments", pay, "submitted", 3)), "job-c")
    assert statuses(rt, pay) == ["pending_submission", "submitted"]
    assert rows(rt)["EV3"][0] == "applied"
    (record,) = crm_records(rt, sf_url, "Payment__c")
    assert record["Status__c"] == "Submitted" and record["Last_Event_Id__c"] == "EV3"


def test_unknown_events_are_listed_for_admins_as_applied(partners) -> None:
    rt, gw, _ = partners
    pay = gateway_payment(gw)
    apply(rt, post(rt, event("EV1", "payments", pay, "created", 1),
                   event("EV2", "payments", pay, "brand_new_action", 2)), "job-a")
    app = create_app(runtime=rt)
    from app.auth import create_key

    with rt.db.transaction() as session:
        key = create_key(session, "ops", "admin")[1]
    with app.test_client() as client:
        listed = client.get("/api/v1/webhook-events?status=applied",
                            headers={"Authorization": f"Bearer {key}"}).get_json()
        failed = client.get("/api/v1/webhook-events?status=failed",
                            headers={"Authorization": f"Bearer {key}"}).get_json()
    assert failed["items"] == []
    unknown = next(i for i in listed["items"] if i["event_id"] == "EV2")
    assert "unknown event action" in unknown["reason"]


def test_an_unknown_action_finishes_done_like_any_applied_event(partners) -> None:
    rt, gw, _ = partners
    done = Runtime(replace(rt.settings, webhook_keep_applied=0.0))
    pay = gateway_payment(gw)
    apply(done, post(done, event("EV1", "payments", pay, "created", 1),
                     event("EV2", "payments", pay, "not_yet_invented", 2)), "job-a")
    assert rows(done) == {}  # Done: deleted like every applied event; history keeps both
    assert [e.event_id for e in history(done, "Payment", pay)] == ["EV1", "EV2"]
    done.db.dispose()


# The real starting status --------------------------------------------------------------


def gateway(gw_url: str) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = "Bearer sandbox-token"
    s.trust_env = False
    return s


def create(gw_url: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = gateway(gw_url).post(f"{gw_url}/{kind}", json={kind: body}, timeout=10)
    assert resp.status_code == 201, resp.text
    return dict(resp.json()[kind])


def control(gw_url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = gateway(gw_url).post(f"{gw_url}/sim{path}", json=body, timeout=10)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def emitted(gw_url: str, **filters: str) -> list[dict[str, Any]]:
    """The emulator's own events (as GoCardless would deliver them), oldest first."""
    resp = gateway(gw_url).get(f"{gw_url}/events", params={
        "sort_direction": "asc", "limit": 500, **filters}, timeout=10)
    return list(resp.json()["events"])


def gateway_mandate(gw_url: str) -> str:
    customer = create(gw_url, "customers", {"given_name": "A", "family_name": "B",
                                            "email": "a@b.c"})
    account = create(gw_url, "customer_bank_accounts", {
        "account_holder_name": "A B", "account_number": "55779911", "branch_code": "200000",
        "country_code": "GB", "links": {"customer": customer["id"]}})
    return str(create(gw_url, "mandates", {"links": {"customer_bank_account": account["id"]}})[
        "id"])


def _resource(gw_url: str, kind: str) -> str:
    if kind == "mandates":
        return gateway_mandate(gw_url)
    mandate = gateway_mandate(gw_url)
    body: dict[str, Any] = {"amount": 1500, "currency": "GBP", "links": {"mandate": mandate}}
    if kind == "subscriptions":
        body["interval_unit"] = "monthly"
    return str(create(gw_url, kind, body)["id"])


OBJECT = {"mandates": "Mandate", "payments": "Payment", "subscriptions": "Subscription"}
NEXT = {"mandates": "pending_submission", "payments": "pending_submission",
        "subscriptions": "active"}


@pytest.mark.parametrize("kind", ["mandates", "payments", "subscriptions"])
def test_a_resource_awaiting_approval_starts_there(partners, kind: str) -> None:
    rt, gw, sf_url = partners
    control(gw, "/settings", {"customer_approval": [kind]})
    resource = _resource(gw, kind)
    singular = kind[:-1]
    (created,) = [e for e in emitted(gw, resource_type=kind) if e["links"][singular] == resource]
    apply(rt, post(rt, created), "job-a")
    entries = history(rt, OBJECT[kind], resource)
    assert [e.to_status for e in entries] == ["pending_customer_approval"]
    (record,) = [r for r in crm_records(rt, sf_url, f"{OBJECT[kind]}__c")
                 if r["Gateway_Id__c"] == resource]
    assert record["Status__c"] == "Pending Customer Approval"

    control(gw, "/transition", {"resource_type": kind, "id": resource,
                                "action": "customer_approval_granted"})
    granted = emitted(gw, resource_type=kind, action="customer_approval_granted")[-1]
    apply(rt, post(rt, granted), "job-b")
    entries = history(rt, OBJECT[kind], resource)
    assert [e.to_status for e in entries] == ["pending_customer_approval", NEXT[kind]]


def test_a_late_created_event_still_starts_awaiting_approval(partners) -> None:
    """The gateway has moved on by the time the created event is applied: the approval
    event held beside it shows where the mandate started."""
    rt, gw, _ = partners
    control(gw, "/settings", {"customer_approval": ["mandates"]})
    mandate = gateway_mandate(gw)
    control(gw, "/advance", {"resource_type": "mandates", "ids": [mandate], "to": "submitted"})
    events = [e for e in emitted(gw, resource_type="mandates") if e["links"]["mandate"] == mandate]
    assert [e["action"] for e in events] == ["created", "customer_approval_granted", "submitted"]
    apply(rt, post(rt, *events), "job-a")
    assert [e.to_status for e in history(rt, "Mandate", mandate)] == [
        "pending_customer_approval", "pending_submission", "submitted"]


def test_without_approval_the_default_starting_status_stays(partners) -> None:
    rt, gw, _ = partners
    payment = _resource(gw, "payments")
    (created,) = emitted(gw, resource_type="payments")
    apply(rt, post(rt, created), "job-a")
    assert [e.to_status for e in history(rt, "Payment", payment)] == ["pending_submission"]


# Retries and payouts -------------------------------------------------------------------


def test_a_retried_payment_goes_back_to_pending_submission(partners) -> None:
    """gocardless_pro PaymentsService.retry: resubmission_requested, then "the same process
    as its initial creation" (submitted, then confirmed or failed)."""
    rt, gw, sf_url = partners
    payment = _resource(gw, "payments")
    control(gw, "/advance", {"resource_type": "payments", "ids": [payment], "to": "submitted"})
    control(gw, "/transition", {"resource_type": "payments", "id": payment, "action": "failed"})
    retried = gateway(gw).post(f"{gw}/payments/{payment}/actions/retry", json={"data": {}},
                               timeout=10)
    assert retried.json()["payments"]["status"] == "pending_submission"
    control(gw, "/advance", {"resource_type": "payments", "ids": [payment], "to": "submitted"})
    events = [e for e in emitted(gw, resource_type="payments")
              if e["links"]["payment"] == payment]
    assert [e["action"] for e in events] == [
        "created", "submitted", "failed", "resubmission_requested", "submitted"]
    # The retry's submitted arrives before its resubmission_requested: it waits for it.
    apply(rt, post(rt, *events[:3], events[4]), "job-a")
    assert rows(rt)[events[4]["id"]][0] == "parked"
    apply(rt, post(rt, events[3]), "job-b")
    assert statuses(rt, payment) == ["pending_submission", "submitted", "failed",
                                     "pending_submission", "submitted"]
    (record,) = crm_records(rt, sf_url, "Payment__c")
    assert record["Status__c"] == "Submitted" and record["Last_Event_Id__c"] == events[4]["id"]


def test_a_payout_first_heard_of_when_paid_is_applied_at_once(partners) -> None:
    """GoCardless sends no created event for payouts: waiting for one cannot help."""
    rt, gw, sf_url = partners
    payment = _resource(gw, "payments")
    control(gw, "/advance", {"resource_type": "payments", "ids": [payment], "to": "paid_out"})
    payout = gateway(gw).get(f"{gw}/payments/{payment}", timeout=10).json()["payments"][
        "links"]["payout"]
    control(gw, "/advance", {"resource_type": "payouts", "ids": [payout], "to": "paid"})
    (paid,) = emitted(gw, resource_type="payouts")
    assert paid["action"] == "paid"
    slow = Runtime(replace(rt.settings, heal_after=5))
    apply(slow, post(slow, paid), "job-a")
    assert [e.to_status for e in history(slow, "Payout", payout)] == ["pending", "paid"]
    (record,) = crm_records(slow, sf_url, "Payout__c")
    assert record["Status__c"] == "Paid" and record["Gateway_Id__c"] == payout
    slow.db.dispose()


# A replaced mandate ----------------------------------------------------------------------


def test_a_replaced_mandate_relinks_its_record_so_later_payments_use_the_new_one(
        partners) -> None:
    from queues import service as queue_service
    from queues.processor import process_batch
    from workers.context import queue_context

    rt, gw, sf_url = partners
    old = gateway_mandate(gw)
    control(gw, "/advance", {"resource_type": "mandates", "ids": [old], "to": "active"})
    apply(rt, post(rt, *emitted(gw, resource_type="mandates")), "job-a")
    (record,) = crm_records(rt, sf_url, "Mandate__c")
    assert record["Gateway_Id__c"] == old and record["Status__c"] == "Active"

    # GoCardless: "The event will include links[new_mandate] with the ID of the new mandate".
    result = control(gw, "/transition", {"resource_type": "mandates", "id": old,
                                         "action": "replaced"})
    new = result["event"]["links"]["new_mandate"]
    apply(rt, post(rt, result["event"]), "job-b")

    with rt.db.transaction() as session:
        link = records.find_link(session, "Mandate", gateway_id=new)
        assert link is not None and link.crm_id == record["Id"] and link.status == "active"
        assert records.find_link(session, "Mandate", gateway_id=old) is None
    (record,) = crm_records(rt, sf_url, "Mandate__c")
    assert record["Gateway_Id__c"] == new and record["Status__c"] == "Active"
    entries = history(rt, "Mandate", record["Id"])
    assert [e.to_status for e in entries if e.from_status != e.to_status] == [
        "pending_submission", "submitted", "active"]
    relinked = [e for e in entries if e.cause and "re-linked" in e.cause]
    assert len(relinked) == 1 and old in relinked[0].cause and relinked[0].gateway_id == new
    assert rows(rt)[result["event"]["id"]][0] == "applied"

    # A payment queued from the CRM afterwards is taken against the new mandate.
    s = requests.Session()
    s.trust_env = False
    payment_crm = s.post(f"{sf_url}/sim/records/Payment__c", json={
        "Mandate__c": record["Id"], "Amount__c": 12.5, "Currency__c": "GBP"},
        verify=rt.settings.salesforce_ca_bundle, timeout=10).json()["id"]
    (item,) = queue_service.accept_changes(rt.db, [{
        "object": "Payment", "record_id": payment_crm, "operation": "insert",
        "fields": {"Mandate__c": record["Id"], "Amount__c": 12.5, "Currency__c": "GBP"}}])
    claimed = queue_service.claim(rt.db, [item.id], held(rt, "queue", 30))
    process_batch(queue_context(rt), claimed, held(rt, "queue"))
    (payment,) = crm_records(rt, sf_url, "Payment__c")
    assert payment["Gateway_Id__c"], payment
    at_gateway = gateway(gw).get(f"{gw}/payments/{payment['Gateway_Id__c']}", timeout=10)
    assert at_gateway.json()["payments"]["links"]["mandate"] == new


def test_a_replacement_onto_a_mandate_with_its_own_record_waits_for_an_admin(
        partners) -> None:
    rt, gw, _ = partners
    old = gateway_mandate(gw)
    control(gw, "/advance", {"resource_type": "mandates", "ids": [old], "to": "active"})
    apply(rt, post(rt, *emitted(gw, resource_type="mandates")), "job-a")
    result = control(gw, "/transition", {"resource_type": "mandates", "id": old,
                                         "action": "replaced"})
    new = result["event"]["links"]["new_mandate"]
    with rt.db.transaction() as session:  # the new mandate reached the CRM another way
        records.upsert_link(session, "Mandate", crm_id="a0MOTHER", gateway_id=new)
    apply(rt, post(rt, result["event"]), "job-b")
    status, _ = rows(rt)[result["event"]["id"]]
    assert status == "failed"
    with rt.db.transaction() as session:
        (ev,) = session.scalars(sa.select(WebhookEvent).where(
            WebhookEvent.event_id == result["event"]["id"]))
        assert "already has its own record" in ev.error_log[-1]["error"]
        assert records.find_link(session, "Mandate", gateway_id=old) is not None
