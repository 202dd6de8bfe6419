"""A gateway-originated customer end to end, with the real processes (gunicorn, RQ workers, the
clock, both emulators).

Everything is made at the gateway through the official ``gocardless_pro`` client, as a
hosted payment page would (the CRM has none of it), then walked through the published
actions of each resource at the gateway's control endpoints: the mandate cancelled and
reinstated, others expired, consumed, blocked, transferred, replaced (the CRM record then
follows the replacement) and failed; a payment failed, retried (back to
``pending_submission``, the client's ``PaymentsService.retry`` docs), paid out, failed late
and settled; a payment charged back, the chargeback cancelled, charged back again and
settled; a payment cancelled; a refund paid, settled, failed and its funds returned; the
payout paid. Then every resource must appear exactly once in the Salesforce emulator,
linked to its parents, in the gateway's final status, with every gateway event in its
status history in the order the gateway made them, and no event Failed.
"""

from __future__ import annotations

from typing import Any

import gocardless_pro
import pytest

from app.mapping import OBJECTS, status_label
from tests.e2e.conftest import Stack, wait_until
from tests.e2e.test_webhooks_e2e import crm, drained

pytestmark = pytest.mark.e2e


class Gateway:
    """The official client against the stack's gateway emulator, and its control surface."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.client = gocardless_pro.Client(access_token=stack.env["GATEWAY_ACCESS_TOKEN"],
                                            base_url=stack.gw)

    def _sim(self, path: str, body: dict[str, Any]) -> None:
        resp = self.stack.http.post(f"{self.stack.gw}/sim{path}", json=body, timeout=30)
        assert resp.status_code == 200, resp.text

    def advance(self, resource_type: str, resource_id: str, to: str) -> None:
        self._sim("/advance", {"resource_type": resource_type, "ids": [resource_id], "to": to})

    def step(self, resource_type: str, resource_id: str, *actions: str) -> None:
        for action in actions:
            self._sim("/transition", {"resource_type": resource_type, "id": resource_id,
                                      "action": action})

    def payment(self, mandate_id: str, amount: int) -> str:
        return str(self.client.payments.create(params={
            "amount": amount, "currency": "GBP", "links": {"mandate": mandate_id}}).id)


def hosted_page(gw: Gateway) -> dict[str, str]:
    """Customer, bank account and mandate, created as a hosted payment page creates them."""
    customer = gw.client.customers.create(params={
        "given_name": "Grace", "family_name": "Hopper", "email": "grace@example.org",
        "address_line1": "1 Navy Way", "city": "London", "postal_code": "N1 1AA",
        "country_code": "GB"})
    account = gw.client.customer_bank_accounts.create(params={
        "account_holder_name": "Grace Hopper", "account_number": "55779911",
        "branch_code": "200000", "country_code": "GB", "links": {"customer": customer.id}})
    mandate = gw.client.mandates.create(params={
        "scheme": "bacs", "links": {"customer_bank_account": account.id}})
    return {"customers": customer.id, "customer_bank_accounts": account.id,
            "mandates": mandate.id}


def walk(gw: Gateway, made: dict[str, str],
         replaced: dict[str, str]) -> dict[str, list[str]]:
    """Every lifecycle step; the ids made, by resource type (``replaced`` is filled with
    each replacement mandate -> the mandate it replaced)."""
    mandate = made["mandates"]
    gw.client.mandates.cancel(mandate)
    gw.client.mandates.reinstate(mandate)
    gw.advance("mandates", mandate, "active")

    retried = gw.payment(mandate, 2500)
    gw.advance("payments", retried, "submitted")
    gw.step("payments", retried, "failed")
    assert gw.client.payments.retry(retried).status == "pending_submission"
    gw.advance("payments", retried, "paid_out")
    gw.step("payments", retried, "failed", "late_failure_settled")  # a late failure

    disputed = gw.payment(mandate, 3000)
    gw.advance("payments", disputed, "paid_out")
    gw.step("payments", disputed, "charged_back", "chargeback_cancelled", "charged_back",
            "chargeback_settled")

    cancelled = gw.payment(mandate, 1200)
    gw.client.payments.cancel(cancelled)

    refunded = gw.payment(mandate, 4000)
    gw.advance("payments", refunded, "paid_out")
    refund = gw.client.refunds.create(params={
        "amount": 1500, "total_amount_confirmation": 1500, "links": {"payment": refunded}})
    gw.advance("refunds", refund.id, "paid")
    gw.step("refunds", refund.id, "refund_settled", "failed", "funds_returned")
    payouts = sorted({gw.client.payments.get(p).links.payout
                      for p in (retried, disputed, refunded)} - {None})
    for payout in payouts:
        gw.advance("payouts", payout, "paid")
    return {"payments": [retried, disputed, cancelled, refunded], "refunds": [refund.id],
            "payouts": payouts, **{k: [v] for k, v in made.items()},
            "mandates": [mandate, *other_mandates(gw, made["customer_bank_accounts"], replaced)]}


def other_mandates(gw: Gateway, account: str, replaced: dict[str, str]) -> list[str]:
    """More mandates on the same bank account, one for each other way a mandate ends. For the
    replaced one, the id returned is the replacement's (``links.new_mandate``): the CRM
    record follows the mandate that replaces it (webhooks/replacement.py)."""
    made = []
    for ending in ("expired", "consumed", "blocked", "transferred", "replaced", "failed"):
        mandate = gw.client.mandates.create(params={
            "scheme": "bacs", "links": {"customer_bank_account": account}}).id
        if ending != "failed":  # a mandate fails before it is ever active
            gw.advance("mandates", mandate, "active")
        gw.step("mandates", mandate, ending)
        if ending == "replaced":
            replacement = gw.client.mandates.get(mandate).links.new_mandate
            replaced[replacement] = mandate
            mandate = replacement
        made.append(mandate)
    return made



def gateway_events(gw: Gateway) -> dict[str, list[Any]]:
    """The gateway's events per resource id, oldest first (as the official client lists)."""
    by_resource: dict[str, list[Any]] = {}
    for event in gw.client.events.all(params={"limit": 500}):
        singular = event.resource_type[:-1]
        resource_id = event.attributes["links"].get(singular)
        by_resource.setdefault(resource_id, []).append(event)
    for events in by_resource.values():
        events.sort(key=lambda e: (e.created_at, e.id))
    return by_resource


def test_a_customer_made_at_the_gateway_reaches_the_crm_once_in_its_final_state(
        fresh: Stack) -> None:
    stack = fresh
    gw = Gateway(stack)
    replacements: dict[str, str] = {}
    made = walk(gw, hosted_page(gw), replacements)
    wait_until(lambda: drained(stack), 240, "every gateway event applied", stack)

    failed = stack.api("GET", "/api/v1/webhook-events?status=failed&limit=50").json()["items"]
    assert failed == [], [(e["resource_type"], e["action"], e["last_error"]) for e in failed]
    events = gateway_events(gw)
    crm_ids: dict[str, str] = {}
    by_object = {obj.resource: obj for obj in OBJECTS.values()}
    for resource_type, ids in made.items():
        obj = by_object[resource_type]
        records = crm(stack, obj.sobject)
        for gid in ids:
            mine = [r for r in records if r.get("Gateway_Id__c") == gid]
            assert len(mine) == 1, (obj.sobject, gid, mine)
            crm_ids[gid] = mine[0]["Id"]
        assert len(records) == len(ids), (obj.sobject, records)
    for resource_type, ids in made.items():
        obj = by_object[resource_type]
        for gid in ids:
            # A replacement has no events of its own: its record carries the history of
            # the mandate it replaced, which no CRM record names any more.
            replaced = replacements.get(gid)
            assert replaced is None or not [r for r in crm(stack, obj.sobject)
                                            if r.get("Gateway_Id__c") == replaced]
            _check(stack, gw, obj, gid, crm_ids, events.get(replaced or gid, []),
                   replaced is not None)


def _check(stack: Stack, gw: Gateway, obj: Any, gid: str, crm_ids: dict[str, str],
           events: list[Any], replacement: bool = False) -> None:
    (record,) = [r for r in crm(stack, obj.sobject) if r.get("Gateway_Id__c") == gid]
    resource = getattr(gw.client, obj.resource).get(gid).attributes
    for field in obj.fields:  # linked to its parents
        if field.link:
            parent = resource["links"].get(field.gateway.split(".")[-1])
            assert record.get(field.crm) == crm_ids[parent], (obj.sobject, field.crm, record)
    if "status" in resource:  # customers and bank accounts have none
        assert record["Status__c"] == status_label(resource["status"]), (gid, record)
    history = stack.api("GET", f"/api/v1/records/{obj.name}/{gid}/history").json()["history"]
    applied = [h["event_id"] for h in history if h["event_id"]]
    assert applied == [e.id for e in events], (gid, history, [e.action for e in events])
    if events and not replacement:
        moves = [h["to"] for h in history if h["from"] != h["to"]]
        assert moves[-1] == resource["status"], (gid, history)
