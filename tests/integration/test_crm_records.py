"""CRM records Paybridge creates for gateway resources it learns of from events: each must
be a record a real Salesforce org accepts (the emulator holds it to the org's schema).

Real database and Redis; both emulators run in threads over HTTP(S).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import requests
import sqlalchemy as sa

from app.runtime import Runtime
from tests.integration.test_webhook_apply import gateway_payment
from tests.leases import held
from webhooks import intake
from webhooks.apply import WebhookContext, process_events
from webhooks.models import WebhookEvent
from webhooks.schemas import EventSchema


def apply_created(rt: Runtime, payment: str) -> dict[str, tuple[str, str | None]]:
    raw = [{"id": "EV1", "created_at": datetime(2026, 11, 22, 9, tzinfo=UTC).isoformat(),
            "resource_type": "payments", "action": "created", "links": {"payment": payment},
            "details": {"cause": "payment_created"}}]
    stored = intake.ingest(rt, "gocardless", raw, [EventSchema().load(e) for e in raw]).stored
    process_events(WebhookContext(rt.settings, rt.db, rt.gateway, rt.crm, rt.crm_pause),
                   stored, held(rt, "job-a"))
    with rt.db.transaction() as session:
        return {e.event_id: (e.status, e.last_error)
                for e in session.scalars(sa.select(WebhookEvent))}


def crm_records(rt: Runtime, sf_url: str, sobject: str) -> list[dict[str, Any]]:
    s = requests.Session()
    s.trust_env = False
    answer = s.get(f"{sf_url}/sim/records/{sobject}", verify=rt.settings.salesforce_ca_bundle,
                   timeout=10)
    return list(answer.json()["records"])


def test_a_company_customer_becomes_a_contact_named_after_the_company(
        emulators: tuple[Runtime, str, str]) -> None:
    """GoCardless needs a company name or a given and family name; Salesforce needs a
    Contact's LastName. A company-only customer has no family name to give it."""
    rt, gw, sf = emulators
    payment = gateway_payment(gw, {"company_name": "Acme Ltd", "email": "ap@acme.example"})
    assert apply_created(rt, payment) == {}  # applied, nothing left Failed
    (contact,) = crm_records(rt, sf, "Contact")
    assert (contact["LastName"], contact["FirstName"]) == ("Acme Ltd", None)
    (record,) = crm_records(rt, sf, "Payment__c")
    assert record["Gateway_Id__c"] == payment


def test_a_person_customer_keeps_their_own_names(emulators: tuple[Runtime, str, str]) -> None:
    rt, gw, sf = emulators
    payment = gateway_payment(gw, {"given_name": "Ada", "family_name": "Lovelace",
                                   "company_name": "Analytical Engines"})
    assert apply_created(rt, payment) == {}
    (contact,) = crm_records(rt, sf, "Contact")
    assert (contact["FirstName"], contact["LastName"]) == ("Ada", "Lovelace")


def test_a_value_the_org_refuses_fails_at_once_with_salesforces_message(
        emulators: tuple[Runtime, str, str]) -> None:
    """A status label the org's restricted picklist lacks is a data error: retrying cannot
    help, so the event is Failed on its first attempt, for an admin, saying why."""
    rt, gw, sf = emulators
    rt = Runtime(replace(rt.settings, status_labels={"pending_submission": "Awaiting Bank"}))
    payment = gateway_payment(gw, {"given_name": "Ada", "family_name": "Lovelace"})
    assert apply_created(rt, payment) == {"EV1": (
        "failed", "Salesforce: INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: Status: bad value for "
                  "restricted picklist field: Awaiting Bank")}
    with rt.db.transaction() as session:
        (event,) = session.scalars(sa.select(WebhookEvent))
        assert event.attempts == 1
    assert crm_records(rt, sf, "Payment__c") == []
