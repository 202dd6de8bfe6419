"""Reconciliation against both emulators over HTTP: each kind of drift introduced directly
in one emulator (the CRM's trigger and the gateway's webhooks off) is found with its kind,
the safe ones are repaired through Paybridge's own paths, and a second run finds nothing."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.mapping import GATEWAY_ID_FIELD
from app.records import service as records
from queues.models import QueueItem
from reconcile import engine
from reconcile.models import ReconcileDifference
from tests.integration.partners import drain
from tests.integration.reconcile_world import World

OBJECTS = ["Customer", "BankAccount", "Mandate", "Payment"]


def differences(rt: Any, run_id: int) -> list[tuple[str, str, str | None]]:
    with rt.db.transaction() as session:
        rows = session.scalars(sa.select(ReconcileDifference).where(
            ReconcileDifference.run_id == run_id).order_by(ReconcileDifference.id))
        return sorted((d.object, d.kind, d.field) for d in rows)


def test_records_in_step_show_no_difference(linked) -> None:
    world = World(*linked)
    for n in range(3):
        world.chain(n)
    run_id, summary = engine.reconcile(world.rt, OBJECTS)
    assert differences(world.rt, run_id) == []
    assert summary["found"] == {}


def test_each_drift_is_found_with_its_kind_repaired_and_gone_on_the_next_run(linked) -> None:
    rt = linked[0]
    world = World(*linked)
    chains = [world.chain(n) for n in range(3)]
    payment_crm, payment = chains[0]["Payment"]
    customer_crm, customer = chains[1]["Customer"]
    other_payment_crm, _ = chains[2]["Payment"]
    # The gateway moves on while webhooks are off: the CRM still shows the old status.
    world.advance("payments", payment["id"], "confirmed")
    # Someone edits the customer in the gateway's dashboard: the CRM owns that field.
    world.gateway_update("customers", customer["id"], {"given_name": "Augusta"})
    # Someone edits a gateway-owned field in the CRM while the trigger is off.
    world.crm_update("Payment__c", other_payment_crm, {"Reference__c": "TYPED-BY-HAND"})
    # A payment the gateway made by itself (no CRM record).
    mandate_id = chains[0]["Mandate"][1]["id"]
    orphan = world.gateway_create("payments", {"amount": 999, "currency": "GBP",
                                               "links": {"mandate": mandate_id}})
    # A customer whose insert reached the gateway but whose write-back was lost.
    unlinked_crm = world.crm_create("Contact", {"FirstName": "Ada", "LastName": "Byron",
                                                "Email": "b@example.com"})
    world.gateway_create("customers", {"given_name": "Ada", "family_name": "Byron",
                                       "email": "b@example.com",
                                       "metadata": {"crm_id": unlinked_crm}})

    run_id, summary = engine.reconcile(rt, OBJECTS, repair=True)

    assert differences(rt, run_id) == sorted([
        ("Payment", "status", "Status__c"),
        ("Customer", "field", "FirstName"),
        ("Payment", "field", "Reference__c"),
        ("Payment", "missing_in_crm", None),
        ("Customer", "link_missing", GATEWAY_ID_FIELD),
    ])
    assert summary["remaining"] == {}, summary
    # The repairs went through Paybridge's paths: a queued update, CRM writes, a new record.
    with rt.db.transaction() as session:
        items = list(session.scalars(sa.select(QueueItem)))
    assert [(i.object, i.record_id, i.operation) for i in items] == [
        ("Customer", customer_crm, "update")]
    drain(rt, *(i.id for i in items))
    assert world.gateway_get("customers", customer["id"])["given_name"] == "Ada1"
    assert world.crm_get("Payment__c", payment_crm)["Status__c"] == "Confirmed"
    with rt.db.transaction() as session:
        _, entries = records.history(session, "Payment", payment_crm)
        assert [(e.to_status, e.source) for e in entries] == [("confirmed", "reconcile")]
    assert world.crm_get("Contact", unlinked_crm)[GATEWAY_ID_FIELD]
    made = [r for r in world.crm_all("Payment__c") if r[GATEWAY_ID_FIELD] == orphan["id"]]
    assert len(made) == 1 and made[0]["Mandate__c"] == chains[0]["Mandate"][0]

    second, summary = engine.reconcile(rt, OBJECTS)
    assert second != run_id
    assert differences(rt, second) == [], summary
