"""Applying events in order: park and wake, heal, stale, illegal, CRM record creation.

Real database and Redis; the gateway and Salesforce emulators run in threads over HTTP(S).
Events are crafted here (ids and times chosen) and stored through the real intake path.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from app.records import service as records
from app.runtime import Runtime
from tests.leases import held
from webhooks import intake
from webhooks.apply import WebhookContext, process_events
from webhooks.models import WebhookEvent
from webhooks.schemas import EventSchema

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture
def partners(emulators: tuple[Runtime, str, str]) -> tuple[Runtime, str, str]:
    rt, gw_url, sf_url = emulators
    return Runtime(replace(rt.settings, park_wait=0.0, heal_after=2)), gw_url, sf_url


def ctx(rt: Runtime) -> WebhookContext:
    return WebhookContext(rt.settings, rt.db, rt.gateway, rt.crm, rt.crm_pause)


def gateway_payment(gw_url: str, customer: dict[str, Any] | None = None) -> str:
    """A payment made at the gateway for a customer made there (as a hosted page would)."""
    s = requests.Session()
    s.headers["Authorization"] = "Bearer sandbox-token"

    def create(kind: str, body: dict[str, Any]) -> str:
        resp = s.post(f"{gw_url}/{kind}", json={kind: body}, timeout=10)
        assert resp.status_code == 201, resp.text
        return str(resp.json()[kind]["id"])

    owner = create("customers", customer or {"given_name": "A", "family_name": "B",
                                             "email": "a@b.c"})
    account = create("customer_bank_accounts", {
        "account_holder_name": "A B", "account_number": "55779911", "branch_code": "200000",
        "country_code": "GB", "links": {"customer": owner}})
    mandate = create("mandates", {"scheme": "bacs", "links": {"customer_bank_account": account}})
    return create("payments", {"amount": 1500, "currency": "GBP", "links": {"mandate": mandate}})


def deliver(rt: Runtime, payment: str, *events: tuple[str, str, int]) -> list[int]:
    raw = [{"id": eid, "created_at": (T0 + timedelta(minutes=minute)).isoformat(),
            "resource_type": "payments", "action": action, "links": {"payment": payment},
            "details": {"cause": action}} for eid, action, minute in events]
    parsed = [EventSchema().load(e) for e in raw]
    return intake.ingest(rt, "gocardless", raw, parsed).stored


def statuses(rt: Runtime, payment: str) -> list[str | None]:
    with rt.db.transaction() as session:
        _, entries = records.history(session, "Payment", payment)
        return [e.to_status for e in entries if e.from_status != e.to_status]


def rows(rt: Runtime) -> dict[str, tuple[str, str | None]]:
    with rt.db.transaction() as session:
        return {e.event_id: (e.status, e.reason) for e in session.scalars(sa.select(WebhookEvent))}


def crm_payment(rt: Runtime, sf_url: str) -> dict[str, Any]:
    s = requests.Session()
    s.trust_env = False
    found = s.get(f"{sf_url}/sim/records/Payment__c", verify=rt.settings.salesforce_ca_bundle,
                  timeout=10).json()
    (record,) = found["records"]
    return record


def test_out_of_order_events_park_then_wake_and_apply_in_order(partners) -> None:
    rt, gw, sf = partners
    pay = gateway_payment(gw)
    ids = deliver(rt, pay, ("EV3", "confirmed", 3), ("EV1", "created", 1))
    process_events(ctx(rt), ids, held(rt, "job-a"))
    assert statuses(rt, pay) == ["pending_submission"]
    assert rows(rt)["EV3"][0] == "parked"
    assert "skips submitted" in rows(rt)["EV3"][1]
    # The missing event arrives: the parked one is woken in the same pass.
    process_events(ctx(rt), deliver(rt, pay, ("EV2", "submitted", 2)), held(rt, "job-b"))
    assert statuses(rt, pay) == ["pending_submission", "submitted", "confirmed"]
    assert rows(rt) == {}  # applied events are deleted; history stays
    record = crm_payment(rt, sf)
    assert record["Gateway_Id__c"] == pay and record["Status__c"] == "Confirmed"
    assert record["Last_Event_Id__c"] == "EV3" and record["Amount__c"] == 15.0


def test_an_older_event_after_a_newer_one_is_stale_and_kept(partners) -> None:
    rt, gw, _ = partners
    pay = gateway_payment(gw)
    process_events(ctx(rt), deliver(rt, pay, ("EV1", "created", 1), ("EV2", "submitted", 2),
                                    ("EV4", "failed", 4)), held(rt, "job-a"))
    process_events(ctx(rt), deliver(rt, pay, ("EV3", "confirmed", 3)), held(rt, "job-b"))
    assert statuses(rt, pay) == ["pending_submission", "submitted", "failed"]
    status, reason = rows(rt)["EV3"]
    assert status == "stale" and "older than the last applied event EV4" in reason


def test_late_failure_and_chargeback_reversal_are_legal(partners) -> None:
    rt, gw, _ = partners
    pay = gateway_payment(gw)
    process_events(ctx(rt), deliver(
        rt, pay, ("EV1", "created", 1), ("EV2", "submitted", 2), ("EV3", "confirmed", 3),
        ("EV4", "paid_out", 4), ("EV5", "charged_back", 5), ("EV6", "chargeback_cancelled", 6)),
        held(rt, "job-a"))
    assert statuses(rt, pay) == ["pending_submission", "submitted", "confirmed", "paid_out",
                                 "charged_back", "paid_out"]


def test_an_impossible_move_fails_for_an_admin(partners) -> None:
    rt, gw, _ = partners
    pay = gateway_payment(gw)
    process_events(ctx(rt), deliver(rt, pay, ("EV1", "created", 1), ("EV2", "cancelled", 2),
                                    ("EV3", "confirmed", 3)), held(rt, "job-a"))
    status, reason = rows(rt)["EV3"]
    assert status == "failed" and "cannot become confirmed" in reason
    assert statuses(rt, pay) == ["pending_submission", "cancelled"]


def test_a_gap_that_waiting_does_not_close_is_healed_from_the_gateway(partners) -> None:
    rt, gw, _ = partners
    pay = gateway_payment(gw)
    requests.post(f"{gw}/sim/advance", json={"resource_type": "payments", "ids": [pay],
                                             "to": "confirmed"}, timeout=10).raise_for_status()
    ids = deliver(rt, pay, ("EV1", "created", 1), ("EV3", "confirmed", 3))  # EV2 never comes
    for n in range(3):
        process_events(ctx(rt), ids, held(rt, f"job-{n}"))
    assert statuses(rt, pay) == ["pending_submission", "submitted", "confirmed"]
    with rt.db.transaction() as session:
        _, entries = records.history(session, "Payment", pay)
    healed = [e for e in entries if e.source == "heal"]
    assert [e.to_status for e in healed] == ["submitted"]
    assert "gateway is confirmed" in healed[0].cause


def test_a_gap_the_gateway_contradicts_fails_instead_of_guessing(partners) -> None:
    rt, gw, _ = partners
    pay = gateway_payment(gw)  # still pending_submission at the gateway
    ids = deliver(rt, pay, ("EV1", "created", 1), ("EV3", "confirmed", 3))
    for n in range(3):
        process_events(ctx(rt), ids, held(rt, f"job-{n}"))
    status, _ = rows(rt)["EV3"]
    assert status == "failed"
    assert statuses(rt, pay) == ["pending_submission"]


def test_duplicate_delivery_is_applied_once(partners) -> None:
    rt, gw, _ = partners
    pay = gateway_payment(gw)
    process_events(ctx(rt), deliver(rt, pay, ("EV1", "created", 1)), held(rt, "job-a"))
    assert deliver(rt, pay, ("EV1", "created", 1)) == []  # known from the history
    assert statuses(rt, pay) == ["pending_submission"]


@pytest.mark.parametrize("mode", ["event", "batch", "scheduled"])
def test_processing_modes_hand_out_jobs_as_configured(rt: Runtime, mode: str) -> None:
    from rq import Queue

    from app.background import WEBHOOK_QUEUE
    from workers.dispatcher import dispatch_webhooks

    moded = Runtime(replace(rt.settings, webhook_mode=mode))
    ids = deliver(moded, "PM1", ("EV1", "created", 1), ("EV2", "submitted", 2),
                  ("EV3", "confirmed", 3))
    jobs = Queue(WEBHOOK_QUEUE, connection=moded.redis).get_jobs()
    sizes = sorted(len(j.args[0]) for j in jobs)
    assert sizes == {"event": [1, 1, 1], "batch": [3], "scheduled": []}[mode]
    if mode == "scheduled":
        assert dispatch_webhooks(moded) == 3  # the clock's sweep hands them out
        assert sorted(i for j in Queue(WEBHOOK_QUEUE, connection=moded.redis).get_jobs()
                      for i in j.args[0]) == sorted(ids)
    moded.db.dispose()


def test_catch_up_stores_events_that_were_never_delivered(partners) -> None:
    from webhooks.catchup import catch_up

    rt, gw, _ = partners
    pay = gateway_payment(gw)  # the emulator delivers nothing here (no webhook URL)
    requests.post(f"{gw}/sim/advance", json={"resource_type": "payments", "ids": [pay],
                                             "to": "paid_out"}, timeout=10).raise_for_status()
    first = catch_up(rt)
    assert first >= 4  # created, submitted, confirmed, paid_out (+ mandate/customer events)
    stored = rows(rt)
    assert catch_up(rt) == 0  # the overlap re-reads them; duplicates are ignored
    assert rows(rt) == stored
    with rt.db.transaction() as session:
        actions = set(session.scalars(sa.select(WebhookEvent.action).where(
            WebhookEvent.resource_id == pay)))
    assert {"created", "submitted", "confirmed", "paid_out"} <= actions
