"""The official ``gocardless_pro`` client drives the gateway emulator through every resource
and action Paybridge uses (create, get, list with cursors, update, actions, the idempotent
409), the emulator's control endpoints walk every lifecycle step, and the events the client
then lists (``client.events``) must all be published GoCardless events
(``gocardless_events``), with every emulated action seen at least once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import gocardless_pro
import pytest
import requests
from gocardless_pro import errors as gc_errors
from werkzeug.serving import make_server

from sim.gateway import GatewayConfig, create_app
from sim.gateway import lifecycles as emulator
from tests.contract.gocardless_events import ACTIONS

TOKEN = "contract-token"


class Emulator:
    def __init__(self) -> None:
        self.app = create_app(GatewayConfig(port=0, access_token=TOKEN, webhook_url=""))
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.client = gocardless_pro.Client(access_token=TOKEN, base_url=self.base)

    def sim(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(self.base + "/sim" + path, json=body, timeout=15)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def step(self, resource_type: str, resource_id: str, action: str, **extra: Any) -> None:
        self.sim("/transition", {"resource_type": resource_type, "id": resource_id,
                                 "action": action, **extra})

    def advance(self, resource_type: str, resource_id: str, to: str) -> None:
        self.sim("/advance", {"resource_type": resource_type, "ids": [resource_id], "to": to})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.app.extensions["gateway_sim"].close()


@pytest.fixture
def gateway() -> Iterator[Emulator]:
    emulator_ = Emulator()
    yield emulator_
    emulator_.close()


def _mandate(client: gocardless_pro.Client, reference: str) -> Any:
    customer = client.customers.create(params={
        "given_name": "Ada", "family_name": "Lovelace", "email": "ada@example.org",
        "country_code": "GB", "metadata": {"crm_id": "003" + reference}})
    account = client.customer_bank_accounts.create(params={
        "account_holder_name": "Ada Lovelace", "account_number": "55779911",
        "branch_code": "200000", "country_code": "GB", "links": {"customer": customer.id}})
    return client.mandates.create(params={"scheme": "bacs", "reference": reference,
                                          "links": {"customer_bank_account": account.id}})


def _payment(client: gocardless_pro.Client, mandate_id: str, key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else None
    return client.payments.create(params={"amount": 2500, "currency": "GBP",
                                          "links": {"mandate": mandate_id}}, headers=headers)


def _drive_payments(gw: Emulator, mandate_id: str) -> None:
    client = gw.client
    first = _payment(client, mandate_id, key="contract-1")
    again = _payment(client, mandate_id, key="contract-1")  # the client resolves the 409
    assert again.id == first.id
    client.payments.update(first.id, params={"metadata": {"crm_id": "a0PAY1"}})
    assert client.payments.get(first.id).metadata == {"crm_id": "a0PAY1"}
    client.payments.cancel(first.id)
    with pytest.raises(gc_errors.InvalidStateError):
        client.payments.cancel(first.id)

    retried = _payment(client, mandate_id)
    gw.advance("payments", retried.id, "submitted")
    gw.step("payments", retried.id, "failed")
    assert client.payments.retry(retried.id).status == "pending_submission"
    gw.advance("payments", retried.id, "paid_out")
    gw.step("payments", retried.id, "failed")  # a late failure
    gw.step("payments", retried.id, "late_failure_settled")

    disputed = _payment(client, mandate_id)
    gw.advance("payments", disputed.id, "paid_out")
    for action in ("charged_back", "chargeback_cancelled", "charged_back",
                   "chargeback_settled"):
        gw.step("payments", disputed.id, action)

    refunded = _payment(client, mandate_id)
    gw.advance("payments", refunded.id, "paid_out")
    refund = client.refunds.create(params={"amount": 500, "total_amount_confirmation": 500,
                                           "links": {"payment": refunded.id}})
    client.refunds.update(refund.id, params={"metadata": {"crm_id": "a0RF1"}})
    gw.advance("refunds", refund.id, "paid")
    for action in ("refund_settled", "failed", "funds_returned"):
        gw.step("refunds", refund.id, action)
    payout = client.payments.get(refunded.id).links.payout
    gw.advance("payouts", payout, "paid")


def _drive_approvals(gw: Emulator) -> None:
    gw.sim("/settings", {"customer_approval": ["mandates", "payments", "subscriptions"]})
    mandate = _mandate(gw.client, "APPROVE-1")
    assert mandate.status == "pending_customer_approval"
    gw.advance("mandates", mandate.id, "active")
    granted = _payment(gw.client, mandate.id)
    denied = _payment(gw.client, mandate.id)
    gw.step("payments", granted.id, "customer_approval_granted")
    gw.step("payments", denied.id, "customer_approval_denied")
    subscription = gw.client.subscriptions.create(params={
        "amount": 1000, "currency": "GBP", "interval_unit": "monthly",
        "links": {"mandate": mandate.id}})
    gw.step("subscriptions", subscription.id, "customer_approval_denied")
    approved = gw.client.subscriptions.create(params={
        "amount": 1000, "currency": "GBP", "interval_unit": "monthly",
        "links": {"mandate": mandate.id}})
    gw.advance("subscriptions", approved.id, "active")
    gw.sim("/settings", {"customer_approval": []})


def _drive_subscriptions(gw: Emulator, mandate_id: str) -> None:
    client = gw.client
    subscription = client.subscriptions.create(params={
        "amount": 1000, "currency": "GBP", "interval_unit": "monthly", "count": 2,
        "links": {"mandate": mandate_id}})
    client.subscriptions.update(subscription.id, params={"name": "Monthly gift"})
    gw.sim(f"/subscriptions/{subscription.id}/collect")
    client.subscriptions.pause(subscription.id)
    client.subscriptions.resume(subscription.id)
    gw.sim(f"/subscriptions/{subscription.id}/collect")  # the last one: finished
    other = client.subscriptions.create(params={
        "amount": 1000, "currency": "GBP", "interval_unit": "weekly",
        "links": {"mandate": mandate_id}})
    client.subscriptions.cancel(other.id)


def _drive_mandates(gw: Emulator) -> None:
    client = gw.client
    for reference, ending in (("EXPIRE-01", "expired"), ("CONSUME-01", "consumed"),
                              ("BLOCK-001", "blocked"), ("MOVE-0001", "transferred"),
                              ("REPLACE-01", "replaced")):
        mandate = _mandate(client, reference)
        gw.advance("mandates", mandate.id, "active")
        gw.step("mandates", mandate.id, ending)
    failing = _mandate(client, "FAIL-0001")
    gw.step("mandates", failing.id, "failed")
    reinstated = _mandate(client, "REINSTATE-1")
    client.mandates.update(reinstated.id, params={"metadata": {"crm_id": "a0MD1"}})
    client.mandates.cancel(reinstated.id)
    client.mandates.reinstate(reinstated.id)
    gw.advance("mandates", reinstated.id, "active")
    bank_cancelled = _mandate(client, "BANKCANCEL-1")
    gw.advance("mandates", bank_cancelled.id, "active")
    gw.step("mandates", bank_cancelled.id, "cancelled", origin="bank",
            cause="mandate_cancelled")


def test_every_event_the_official_client_lists_is_a_published_one(gateway: Emulator) -> None:
    client = gateway.client
    mandate = _mandate(client, "CONTRACT-01")
    gateway.advance("mandates", mandate.id, "active")
    _drive_payments(gateway, mandate.id)
    _drive_subscriptions(gateway, mandate.id)
    _drive_approvals(gateway)
    _drive_mandates(gateway)

    # Lists with cursors, as the client pages them.
    first_page = client.events.list(params={"limit": 5})
    assert len(first_page.records) == 5 and first_page.after
    second_page = client.events.list(params={"limit": 5, "after": first_page.after})
    assert not {e.id for e in first_page.records} & {e.id for e in second_page.records}
    events = list(client.events.all(params={"limit": 50}))
    assert len({e.id for e in events}) == len(events)

    seen: dict[str, set[str]] = {}
    for event in events:
        published = ACTIONS.get(event.resource_type)
        assert published is not None, f"GoCardless sends no {event.resource_type} events"
        assert event.action in published, (event.resource_type, event.action)
        pair = (event.details.origin, event.details.cause)
        assert pair in published[event.action], (event.resource_type, event.action, pair)
        seen.setdefault(event.resource_type, set()).add(event.action)
    for resource in {*emulator.TRANSITIONS, *emulator.CREATED}:
        expected = set(emulator.event_details(resource))
        missing = expected - seen.get(resource, set())
        assert not missing, f"{resource}: the run never emitted {missing}"
    replaced = [e for e in events if e.resource_type == "mandates" and e.action == "replaced"]
    assert replaced and replaced[0].links.new_mandate
    assert client.mandates.get(replaced[0].links.new_mandate).status == "active"
