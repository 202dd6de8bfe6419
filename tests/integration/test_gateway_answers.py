"""How Paybridge reads the gateway's answers, against the gateway emulator over HTTP: what
GoCardless documents as success, as a fault to wait out, and as a refusal to explain."""

from __future__ import annotations

import time
from dataclasses import replace

import requests
import sqlalchemy as sa

from app.records import service as records
from app.runtime import Runtime
from queues import service
from queues.models import ArchivedItem
from tests.integration.partners import change, contact, drain
from tests.integration.test_webhook_apply import ctx, deliver, gateway_payment
from tests.leases import held
from webhooks.apply import process_events
from webhooks.models import WebhookEvent


def done(rt: Runtime, item_id: int) -> bool:
    """Finished rows leave the API Queue for the archive."""
    return isinstance(service.get_item_or_archived(rt.db, item_id), ArchivedItem)


def test_a_repeated_customer_removal_answered_410_is_success(linked) -> None:
    rt, gw_url, sf_url, sf = linked
    crm_id = contact(sf, sf_url)
    (insert,) = service.accept_changes(rt.db, [change(crm_id)])
    drain(rt, insert.id)
    assert done(rt, insert.id)
    # The removal happens at the gateway but its answer is lost; the retry is answered 410
    # Gone ("customer_removed"), which says the removal the row asked for is done.
    requests.post(f"{gw_url}/sim/faults", json={"fail_next": [
        {"status": 503, "method": "DELETE", "path_prefix": "/customers",
         "after_effect": True}]}, timeout=10).raise_for_status()
    (removal,) = service.accept_changes(rt.db, [change(crm_id, "delete")])
    drain(rt, removal.id)
    time.sleep(max(rt.settings.retry_schedule[0], 0.3))
    drain(rt, removal.id)
    row = service.get_item_or_archived(rt.db, removal.id)
    assert row.attempts >= 1, "the fault never took effect"
    assert done(rt, removal.id), row.error_log


def test_a_heal_the_gateway_answers_404_ends_failed_with_the_reason(emulators) -> None:
    rt, _, _ = emulators
    rt = Runtime(replace(rt.settings, park_wait=0.0, heal_after=2))
    # An event for a payment the gateway does not know (another account's, say), skipping
    # stages: waiting cannot close the gap and the heal's look-up is answered 404.
    ids = deliver(rt, "PM0NOTHERE", ("EV404", "confirmed", 3))
    for n in range(4):
        process_events(ctx(rt), ids, held(rt, f"job-{n}"))
    with rt.db.transaction() as session:
        ev = session.scalars(sa.select(WebhookEvent).where(WebhookEvent.event_id == "EV404")).one()
        assert ev.status == "failed"
        assert "cannot heal" in ev.last_error and "404" in ev.last_error
        assert "PM0NOTHERE" in ev.last_error


def _gateway(gw_url: str, path: str) -> dict:
    resp = requests.get(f"{gw_url}{path}", timeout=10,
                        headers={"Authorization": "Bearer sandbox-token"})
    resp.raise_for_status()
    return resp.json()


def test_features_gocardless_gates_fail_naming_what_the_merchant_must_enable(linked) -> None:
    rt, gw_url, _, _ = linked
    payment = gateway_payment(gw_url)
    mandate = _gateway(gw_url, f"/payments/{payment}")["payments"]["links"]["mandate"]
    account = _gateway(gw_url, f"/mandates/{mandate}")["mandates"]["links"][
        "customer_bank_account"]
    with rt.db.transaction() as session:
        records.upsert_link(session, "BankAccount", crm_id="a0A000000000001AAA",
                            gateway_id=account)
        records.upsert_link(session, "Mandate", crm_id="a0C000000000001AAA", gateway_id=mandate)
        records.upsert_link(session, "Payment", crm_id="a0D000000000001AAA", gateway_id=payment)
    requests.post(f"{gw_url}/sim/settings", timeout=10, json={
        "restricted": ["payment_pages", "custom_payment_references", "refunds"]},
    ).raise_for_status()
    items = service.accept_changes(rt.db, [
        change("a0C000000000002AAA", obj="Mandate", Bank_Account__c="a0A000000000001AAA"),
        change("a0D000000000002AAA", obj="Payment", Mandate__c="a0C000000000001AAA",
               Amount__c="10.00", Reference__c="INV-42"),
        change("a0E000000000002AAA", obj="Refund", Payment__c="a0D000000000001AAA",
               Amount__c="1.00", Total_Amount_Confirmation__c="1.00"),
    ])
    drain(rt, *(i.id for i in items))
    errors = {}
    for item in items:
        row = service.get_item(rt.db, item.id)
        assert row is not None and row.status == "failed", item.object
        assert row.attempts == 1  # a refusal that retrying cannot change
        errors[item.object] = row.last_error
    assert "payment pages" in errors["Mandate"] and "Billing Requests" in errors["Mandate"]
    assert "custom payment references" in errors["Payment"]
    assert "refunds" in errors["Refund"] and "enable" in errors["Refund"]


def test_a_deleted_records_removal_needs_no_write_back(linked) -> None:
    rt, _gw_url, sf_url, sf = linked
    crm_id = contact(sf, sf_url)
    (insert,) = service.accept_changes(rt.db, [change(crm_id)])
    drain(rt, insert.id)
    # The record was deleted in the CRM (how polling learns of it): the gateway removes the
    # customer, and there is no record left to write the answer onto.
    sf.delete(f"{sf_url}/sim/records/Contact/{crm_id}").raise_for_status()
    (removal,) = service.accept_changes(rt.db, [change(crm_id, "delete")])
    drain(rt, removal.id)
    row = service.get_item_or_archived(rt.db, removal.id)
    assert done(rt, removal.id), row.error_log
