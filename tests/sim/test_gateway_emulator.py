"""End-to-end tests of the gateway emulator over real HTTP (ephemeral ports).

Each test builds its own emulator with ``create_app`` behind a threaded werkzeug server and,
where webhooks matter, a small local receiver that verifies signatures with the official
``gocardless_pro.webhooks.parse``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import gocardless_pro
import pytest
import requests
from gocardless_pro import errors as gc_errors
from gocardless_pro import webhooks as gc_webhooks
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from sim.gateway import GatewayConfig, create_app, parse_args

TOKEN = "test-token"
SECRET = "test-webhook-secret"
ACCOUNT_NUMBER = "55779911"
SORT_CODE = "408812"
IBAN = "GB29NWBK60161331926819"
IBAN_DIGITS = "31926819"
REPO = Path(__file__).resolve().parents[2]


class Receiver:
    """A webhook endpoint: verifies each POST with the official library and records it."""

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.fail_next = 0
        self.always_fail = False
        self.accepted: list[dict[str, Any]] = []
        self.rejected_signatures = 0
        self.requests = 0
        self.raw_bodies: list[bytes] = []
        self._lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks/gocardless"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        body = request.get_data()
        with self._lock:
            self.requests += 1
            self.raw_bodies.append(body)
            if self.always_fail or self.fail_next > 0:
                self.fail_next = max(0, self.fail_next - 1)
                return Response("boom", status=500)(environ, start_response)
            try:
                events = gc_webhooks.parse(body, self.secret,
                                           request.headers.get("Webhook-Signature", ""))
            except gc_errors.InvalidSignatureError:
                self.rejected_signatures += 1
                return Response("bad signature", status=498)(environ, start_response)
            assert request.headers["Content-Type"] == "application/json"
            self.accepted.append({"events": [e.attributes for e in events],
                                  "content_type": request.headers["Content-Type"]})
        return Response("", status=204)(environ, start_response)

    def event_ids(self) -> list[str]:
        return [e["id"] for batch in self.accepted for e in batch["events"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Gateway:
    """HTTP helper around one running emulator."""

    def __init__(self, config: GatewayConfig) -> None:
        self.app = create_app(config)
        self.sim = self.app.extensions["gateway_sim"]
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.http = requests.Session()
        self.http.headers.update({"Authorization": f"Bearer {TOKEN}",
                                  "GoCardless-Version": "2015-07-06"})

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 15)
        return self.http.request(method, self.base + path, json=body, **kwargs)

    def post(self, path: str, body: Any = None, key: str | None = None) -> requests.Response:
        headers = {"Idempotency-Key": key} if key else {}
        return self.call("POST", path, body, headers=headers)

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.call("GET", path, params=params)

    def control(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = requests.request(method, self.base + "/sim" + path, json=body, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def client(self) -> gocardless_pro.Client:
        return gocardless_pro.Client(access_token=TOKEN, base_url=self.base)

    def flush(self, timeout: float = 10) -> dict[str, Any]:
        return self.control("POST", f"/webhooks/flush?timeout={timeout}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.sim.close()

    # Resource builders -------------------------------------------------------------------
    def customer(self, **extra: Any) -> dict[str, Any]:
        body = {"given_name": "Ada", "family_name": "Lovelace", "email": "ada@example.org",
                "country_code": "GB", **extra}
        response = self.post("/customers", {"customers": body})
        assert response.status_code == 201, response.text
        return response.json()["customers"]

    def bank_account(self, customer_id: str, **extra: Any) -> dict[str, Any]:
        body = {"account_holder_name": "Ada Lovelace", "account_number": ACCOUNT_NUMBER,
                "branch_code": SORT_CODE, "country_code": "GB", "currency": "GBP",
                "links": {"customer": customer_id}, **extra}
        response = self.post("/customer_bank_accounts", {"customer_bank_accounts": body})
        assert response.status_code == 201, response.text
        return response.json()["customer_bank_accounts"]

    def mandate(self, **extra: Any) -> dict[str, Any]:
        account = self.bank_account(self.customer()["id"])
        body = {"scheme": "bacs", "links": {"customer_bank_account": account["id"]}, **extra}
        response = self.post("/mandates", {"mandates": body})
        assert response.status_code == 201, response.text
        return response.json()["mandates"]

    def payment(self, mandate_id: str, amount: int = 1500, key: str | None = None,
                **extra: Any) -> requests.Response:
        body = {"amount": amount, "currency": "GBP", "links": {"mandate": mandate_id}, **extra}
        return self.post("/payments", {"payments": body}, key=key)

    def events(self, **params: Any) -> list[dict[str, Any]]:
        response = self.get("/events", sort_direction="asc", limit=500, **params)
        assert response.status_code == 200, response.text
        return response.json()["events"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


@pytest.fixture
def make_gateway(receiver: Receiver) -> Iterator[Callable[..., Gateway]]:
    started: list[Gateway] = []

    def build(**overrides: Any) -> Gateway:
        settings = {"port": 0, "access_token": TOKEN, "webhook_url": receiver.url,
                    "webhook_secret": SECRET, "time_scale": 0.01, "seed": 7, **overrides}
        gateway = Gateway(GatewayConfig(**settings))
        started.append(gateway)
        return gateway

    yield build
    for gateway in started:
        gateway.close()


@pytest.fixture
def gw(make_gateway: Callable[..., Gateway]) -> Gateway:
    return make_gateway()


def error_of(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status
    assert error["request_id"]
    assert error["documentation_url"].startswith("https://")
    return error


def fields_of(response: requests.Response) -> dict[str, str]:
    error = error_of(response, 422)
    assert error["type"] == "validation_failed"
    for item in error["errors"]:
        assert item["request_pointer"].startswith("/")
    return {item["field"]: item["message"] for item in error["errors"]}


# API surface ---------------------------------------------------------------------------


def test_authentication_is_required(gw: Gateway) -> None:
    missing = requests.get(gw.base + "/customers", timeout=5)
    error = error_of(missing, 401)
    assert error["type"] == "invalid_api_usage"
    assert "RateLimit-Remaining" in missing.headers
    wrong = requests.get(gw.base + "/customers", headers={"Authorization": "Bearer nope"},
                         timeout=5)
    assert error_of(wrong, 401)["errors"][0]["reason"] == "access_token_not_found"
    with pytest.raises(gc_errors.AuthenticationError):
        gocardless_pro.Client(access_token="nope", base_url=gw.base).customers.list()


def test_customer_create_get_update_remove(gw: Gateway) -> None:
    customer = gw.customer(metadata={"crm_id": "003CRM1"})
    assert customer["id"].startswith("CU") and len(customer["id"]) == 14
    assert customer["created_at"].endswith("Z") and len(customer["created_at"]) == 24
    assert gw.get(f"/customers/{customer['id']}").json()["customers"] == customer

    updated = gw.call("PUT", f"/customers/{customer['id']}",
                      {"customers": {"city": "London", "metadata": {"crm_id": "003CRM1"}}})
    assert updated.status_code == 200 and updated.json()["customers"]["city"] == "London"

    removed = gw.call("DELETE", f"/customers/{customer['id']}")
    assert removed.status_code == 200
    gone = error_of(gw.get(f"/customers/{customer['id']}"), 410)
    # The official client's fixture customer_gone.json (tests/contract/recorded/errors).
    assert gone["type"] == "invalid_api_usage"
    assert gone["errors"][0]["reason"] == "customer_removed"
    assert gw.get("/customers").json()["customers"] == []

    missing = error_of(gw.get("/customers/CU000000000000"), 404)
    assert missing["type"] == "invalid_api_usage"
    assert missing["message"] == "Resource not found"
    assert missing["errors"][0]["reason"] == "resource_not_found"


def test_customer_validation(gw: Gateway) -> None:
    fields = fields_of(gw.post("/customers", {"customers": {
        "email": "not-an-email", "country_code": "gbr",
        "metadata": {"a": "1", "b": "2", "c": "3", "d": "4"}}}))
    assert set(fields) == {"email", "country_code", "metadata", "given_name", "family_name"}
    company = gw.post("/customers", {"customers": {"company_name": "Acme Ltd"}})
    assert company.status_code == 201
    bad_envelope = error_of(gw.post("/customers", {"customer": {}}), 400)
    assert bad_envelope["errors"][0]["reason"] == "invalid_document_structure"


def test_bank_account_create_validate_update_disable(gw: Gateway) -> None:
    customer = gw.customer()
    account = gw.bank_account(customer["id"], metadata={"crm_id": "BANK1"})
    assert account["id"].startswith("BA")
    assert account["account_number_ending"] == ACCOUNT_NUMBER[-2:]
    assert account["enabled"] is True and account["bank_name"]
    assert account["links"] == {"customer": customer["id"]}
    assert "account_number" not in account and "branch_code" not in account

    duplicate = error_of(gw.post("/customer_bank_accounts", {"customer_bank_accounts": {
        "account_holder_name": "Ada", "account_number": ACCOUNT_NUMBER,
        "branch_code": SORT_CODE, "country_code": "GB", "links": {"customer": customer["id"]}}}),
        409)
    # validation_failed, as in the official client's fixture (tests/contract/recorded/errors).
    assert duplicate["type"] == "validation_failed"
    assert duplicate["errors"][0]["reason"] == "bank_account_exists"
    assert duplicate["errors"][0]["links"]["customer_bank_account"] == account["id"]

    fields = fields_of(gw.post("/customer_bank_accounts", {"customer_bank_accounts": {
        "account_number": "12345", "branch_code": "12-34", "country_code": "GB",
        "links": {"customer": "CU000000000000"}}}))
    assert set(fields) == {"account_holder_name", "account_number", "branch_code", "customer"}

    via_iban = gw.post("/customer_bank_accounts", {"customer_bank_accounts": {
        "account_holder_name": "Ada", "iban": IBAN, "links": {"customer": customer["id"]}}})
    assert via_iban.status_code == 201
    assert via_iban.json()["customer_bank_accounts"]["account_number_ending"] == IBAN[-2:]
    assert "iban" in fields_of(gw.post("/customer_bank_accounts", {"customer_bank_accounts": {
        "account_holder_name": "Ada", "iban": "GB00NWBK60161331926819",
        "links": {"customer": customer["id"]}}}))

    updated = gw.call("PUT", f"/customer_bank_accounts/{account['id']}",
                      {"customer_bank_accounts": {"metadata": {"note": "x"}}})
    assert updated.json()["customer_bank_accounts"]["metadata"] == {"note": "x"}
    disabled = gw.post(f"/customer_bank_accounts/{account['id']}/actions/disable")
    assert disabled.status_code == 200
    assert disabled.json()["customer_bank_accounts"]["enabled"] is False
    refused = error_of(gw.post("/mandates", {"mandates": {
        "links": {"customer_bank_account": account["id"]}}}), 422)
    assert refused["errors"][0]["reason"] == "bank_account_disabled"


def test_mandate_replaced_names_the_new_mandate(gw: Gateway) -> None:
    mandate = gw.mandate(metadata={"crm_id": "MAND1"})
    gw.control("POST", "/advance", {"resource_type": "mandates", "to": "active"})
    result = gw.control("POST", "/transition", {"resource_type": "mandates",
                                                "id": mandate["id"], "action": "replaced"})
    new_id = result["event"]["links"]["new_mandate"]
    assert result["event"]["details"]["origin"] == "gocardless"
    assert result["event"]["details"]["cause"] == "scheme_identifier_changed"
    old = gw.get(f"/mandates/{mandate['id']}").json()["mandates"]
    assert old["status"] == "cancelled" and old["links"]["new_mandate"] == new_id
    new = gw.get(f"/mandates/{new_id}").json()["mandates"]
    assert new["status"] == "active"
    assert new["links"]["customer_bank_account"] == mandate["links"]["customer_bank_account"]
    # The new mandate takes payments; the replaced one cannot.
    assert gw.payment(new_id).status_code == 201
    assert error_of(gw.payment(mandate["id"]), 422)["errors"][0]["reason"] == (
        "mandate_is_inactive")


def test_transition_refuses_details_gocardless_never_sends(gw: Gateway) -> None:
    mandate = gw.mandate()
    for origin, cause in (("gateway", "mandate_submitted"), ("gocardless", "made_up")):
        response = requests.post(gw.base + "/sim/transition", json={
            "resource_type": "mandates", "id": mandate["id"], "action": "submitted",
            "origin": origin, "cause": cause}, timeout=5)
        assert error_of(response, 400)["type"] == "invalid_api_usage"
    assert gw.get(f"/mandates/{mandate['id']}").json()["mandates"]["status"] == (
        "pending_submission")


def test_mandate_create_update_cancel_reinstate(gw: Gateway) -> None:
    mandate = gw.mandate(reference="PAYBRIDGE-REF-1", metadata={"crm_id": "MAND1"})
    assert mandate["id"].startswith("MD") and mandate["status"] == "pending_submission"
    assert mandate["reference"] == "PAYBRIDGE-REF-1" and mandate["scheme"] == "bacs"
    assert mandate["next_possible_charge_date"]
    assert gw.get(f"/mandates/{mandate['id']}").json()["mandates"]["id"] == mandate["id"]
    fields = fields_of(gw.post("/mandates", {"mandates": {
        "scheme": "sepa_core", "reference": "PAYBRIDGE-REF-1",
        "links": {"customer_bank_account": "BA000000000000"}}}))
    assert set(fields) == {"scheme", "reference", "customer_bank_account"}

    put = gw.call("PUT", f"/mandates/{mandate['id']}", {"mandates": {"metadata": {"k": "v"}}})
    assert put.json()["mandates"]["metadata"] == {"k": "v"}

    cancelled = gw.post(f"/mandates/{mandate['id']}/actions/cancel",
                        {"data": {"metadata": {"why": "left"}}})
    assert cancelled.json()["mandates"]["status"] == "cancelled"
    again = error_of(gw.post(f"/mandates/{mandate['id']}/actions/cancel"), 422)
    assert again["type"] == "invalid_state"
    assert again["errors"][0]["reason"] == "cancellation_failed"

    reinstated = gw.post(f"/mandates/{mandate['id']}/actions/reinstate")
    assert reinstated.json()["mandates"]["status"] == "pending_submission"
    gw.control("POST", "/advance", {"resource_type": "mandates", "ids": [mandate["id"]],
                                    "to": "active"})
    actions = [e["action"] for e in gw.events(mandate=mandate["id"])]
    assert actions == ["created", "cancelled", "resubmission_requested", "submitted",
                       "reinstated"]
    cancel_event = gw.events(mandate=mandate["id"], action="cancelled")[0]
    assert cancel_event["metadata"] == {"why": "left"}
    assert cancel_event["details"]["origin"] == "api"


def test_payment_create_update_cancel_and_validation(gw: Gateway) -> None:
    mandate = gw.mandate()
    created = gw.payment(mandate["id"], metadata={"crm_id": "PAY1"}, description="Gift",
                         reference="GIFT1")
    assert created.status_code == 201
    payment = created.json()["payments"]
    assert payment["id"].startswith("PM") and payment["status"] == "pending_submission"
    assert payment["charge_date"] == mandate["next_possible_charge_date"]
    assert payment["links"]["mandate"] == mandate["id"]

    fields = fields_of(gw.payment(mandate["id"], amount=0, currency="EUR",
                                  charge_date="2000-01-03"))
    assert fields["amount"] == "must be greater than 0"
    assert {"currency", "charge_date"} <= set(fields)
    assert "mandate" in fields_of(gw.payment("MD000000000000"))
    assert "amount" in fields_of(gw.payment(mandate["id"], amount="10"))

    put = gw.call("PUT", f"/payments/{payment['id']}",
                  {"payments": {"metadata": {"crm_id": "PAY1", "x": "y"},
                                "retry_if_possible": True}})
    assert put.json()["payments"]["retry_if_possible"] is True
    assert put.json()["payments"]["metadata"]["x"] == "y"

    no_retry = error_of(gw.post(f"/payments/{payment['id']}/actions/retry"), 422)
    assert no_retry["errors"][0]["reason"] == "retry_failed"
    cancelled = gw.post(f"/payments/{payment['id']}/actions/cancel", None)
    assert cancelled.json()["payments"]["status"] == "cancelled"

    paid = gw.payment(mandate["id"]).json()["payments"]
    gw.control("POST", "/advance", {"resource_type": "payments", "ids": [paid["id"]],
                                    "to": "paid_out"})
    refused = error_of(gw.post(f"/payments/{paid['id']}/actions/cancel"), 422)
    assert refused["type"] == "invalid_state"
    assert refused["errors"][0]["reason"] == "cancellation_failed"


def test_payment_failure_and_retry(gw: Gateway) -> None:
    mandate = gw.mandate()
    payment = gw.payment(mandate["id"]).json()["payments"]
    gw.control("POST", "/advance", {"resource_type": "payments", "to": "submitted"})
    gw.control("POST", "/transition", {"resource_type": "payments", "id": payment["id"],
                                       "action": "failed"})
    retried = gw.post(f"/payments/{payment['id']}/actions/retry",
                      {"data": {"metadata": {"attempt": "2"}}})
    assert retried.status_code == 200, retried.text
    assert retried.json()["payments"]["status"] == "pending_submission"
    gw.control("POST", "/advance", {"resource_type": "payments", "steps": 1})
    actions = [e["action"] for e in gw.events(payment=payment["id"])]
    assert actions == ["created", "submitted", "failed", "resubmission_requested", "submitted"]


def test_subscription_lifecycle_and_collect(gw: Gateway) -> None:
    mandate = gw.mandate()
    body = {"amount": 1000, "currency": "GBP", "name": "Monthly gift", "interval_unit": "monthly",
            "interval": 1, "day_of_month": 1, "count": 2, "links": {"mandate": mandate["id"]},
            "metadata": {"crm_id": "SUB1"}}
    created = gw.post("/subscriptions", {"subscriptions": body})
    assert created.status_code == 201, created.text
    sub = created.json()["subscriptions"]
    assert sub["id"].startswith("SB") and sub["status"] == "active"
    assert sub["start_date"].endswith("-01") and len(sub["upcoming_payments"]) == 2

    bad = {**body, "interval_unit": "fortnightly", "amount": -5, "day_of_month": 31}
    assert {"interval_unit", "amount", "day_of_month"} <= set(
        fields_of(gw.post("/subscriptions", {"subscriptions": bad})))

    put = gw.call("PUT", f"/subscriptions/{sub['id']}",
                  {"subscriptions": {"name": "Renamed", "amount": 1200}})
    assert put.json()["subscriptions"]["name"] == "Renamed"
    assert put.json()["subscriptions"]["upcoming_payments"][0]["amount"] == 1200

    collected = gw.control("POST", f"/subscriptions/{sub['id']}/collect")
    payment = collected["payments"]
    assert payment["links"]["subscription"] == sub["id"]
    assert payment["links"]["mandate"] == mandate["id"] and payment["amount"] == 1200
    created_event = gw.events(payment=payment["id"])[0]
    assert created_event["action"] == "created"
    assert created_event["details"]["origin"] == "gocardless"
    assert created_event["links"]["subscription"] == sub["id"]

    paused = gw.post(f"/subscriptions/{sub['id']}/actions/pause")
    assert paused.json()["subscriptions"]["status"] == "paused"
    assert error_of(gw.post(f"/subscriptions/{sub['id']}/actions/pause"), 422)["type"] == (
        "invalid_state")
    resumed = gw.post(f"/subscriptions/{sub['id']}/actions/resume")
    assert resumed.json()["subscriptions"]["status"] == "active"
    gw.control("POST", f"/subscriptions/{sub['id']}/collect")
    events = gw.events(subscription=sub["id"], resource_type="subscriptions")
    actions = [e["action"] for e in events]
    assert actions == ["created", "payment_created", "paused", "resumed", "payment_created",
                       "finished"]

    other = gw.post("/subscriptions", {"subscriptions": {**body, "count": None}}).json()
    cancelled = gw.post(f"/subscriptions/{other['subscriptions']['id']}/actions/cancel")
    assert cancelled.json()["subscriptions"]["status"] == "cancelled"


def test_refunds_and_payouts(gw: Gateway) -> None:
    mandate = gw.mandate()
    payment = gw.payment(mandate["id"], amount=2000).json()["payments"]
    refund_body = {"amount": 500, "total_amount_confirmation": 500,
                   "links": {"payment": payment["id"]}, "metadata": {"crm_id": "RF1"}}
    early = error_of(gw.post("/refunds", {"refunds": refund_body}), 422)
    assert early["errors"][0]["reason"] == "refund_payment_invalid_state"

    gw.control("POST", "/advance", {"resource_type": "payments", "to": "paid_out"})
    paid = gw.get(f"/payments/{payment['id']}").json()["payments"]
    payout = gw.get(f"/payouts/{paid['links']['payout']}").json()["payouts"]
    assert payout["id"].startswith("PO") and payout["amount"] == 2000
    assert payout["status"] == "pending"
    paid_out_event = gw.events(payment=payment["id"], action="paid_out")[0]
    assert paid_out_event["links"]["payout"] == payout["id"]
    assert paid_out_event["links"]["mandate"] == mandate["id"]
    assert paid_out_event["links"]["customer"] == mandate["links"]["customer"]

    mismatch = {**refund_body, "total_amount_confirmation": 400}
    assert "total_amount_confirmation" in fields_of(gw.post("/refunds", {"refunds": mismatch}))
    created = gw.post("/refunds", {"refunds": refund_body})
    assert created.status_code == 201
    refund = created.json()["refunds"]
    assert refund["id"].startswith("RF") and refund["status"] == "created"
    put = gw.call("PUT", f"/refunds/{refund['id']}", {"refunds": {"metadata": {"a": "b"}}})
    assert put.json()["refunds"]["metadata"] == {"a": "b"}
    advanced = gw.control("POST", "/advance", {"resource_type": "refunds", "to": "paid"})
    assert gw.get(f"/refunds/{refund['id']}").json()["refunds"]["status"] == "paid"
    # pending_submission and submitted are reached silently: only paid is announced.
    assert len(advanced["events"]) == 1
    assert [e["action"] for e in gw.events(refund=refund["id"])] == ["created", "paid"]
    gw.control("POST", "/advance", {"resource_type": "payouts", "to": "paid"})
    assert gw.get(f"/payouts/{payout['id']}").json()["payouts"]["status"] == "paid"
    # A payout is first announced when it is paid: there is no payouts "created".
    assert [e["action"] for e in gw.events(resource_type="payouts")] == ["paid"]
    gw.control("POST", "/transition", {"resource_type": "refunds", "id": refund["id"],
                                       "action": "refund_settled"})
    failed = gw.control("POST", "/transition", {"resource_type": "refunds",
                                                "id": refund["id"], "action": "failed"})
    assert failed["refund"]["status"] == "bounced"
    assert (failed["event"]["details"]["origin"], failed["event"]["details"]["cause"]) == (
        "gocardless", "refund_failed")
    silent = gw.control("POST", "/transition", {"resource_type": "payouts", "id": payout["id"],
                                                "action": "bounced"})
    assert silent["event"] is None and silent["payout"]["status"] == "bounced"


def test_list_pagination_and_limits(gw: Gateway) -> None:
    ids = [gw.customer()["id"] for _ in range(5)]
    first = gw.get("/customers", limit=2).json()
    assert [c["id"] for c in first["customers"]] == ids[::-1][:2]
    assert first["meta"] == {"cursors": {"before": None, "after": ids[3]}, "limit": 2}
    second = gw.get("/customers", limit=2, after=first["meta"]["cursors"]["after"]).json()
    assert [c["id"] for c in second["customers"]] == [ids[2], ids[1]]
    back = gw.get("/customers", limit=2, before=second["meta"]["cursors"]["before"]).json()
    assert [c["id"] for c in back["customers"]] == [ids[4], ids[3]]
    ascending = gw.get("/customers", limit=10, sort_direction="asc").json()
    assert [c["id"] for c in ascending["customers"]] == ids
    assert ascending["meta"]["cursors"]["after"] is None
    assert [c.id for c in gw.client().customers.all(params={"limit": 2})] == ids[::-1]
    assert "limit" in fields_of(gw.get("/customers", limit=501))


def test_official_client_round_trip(gw: Gateway) -> None:
    client = gw.client()
    customer = client.customers.create(params={"given_name": "Grace", "family_name": "Hopper"})
    account = client.customer_bank_accounts.create(params={
        "account_holder_name": "Grace Hopper", "account_number": ACCOUNT_NUMBER,
        "branch_code": SORT_CODE, "country_code": "GB", "links": {"customer": customer.id}})
    mandate = client.mandates.create(params={"scheme": "bacs",
                                             "links": {"customer_bank_account": account.id}})
    params = {"amount": 999, "currency": "GBP", "links": {"mandate": mandate.id}}
    first = client.payments.create(params=params, headers={"Idempotency-Key": "client-key"})
    again = client.payments.create(params=params, headers={"Idempotency-Key": "client-key"})
    assert first.id == again.id and first.amount == 999
    with pytest.raises(gc_errors.ValidationFailedError):
        client.payments.create(params={**params, "amount": 0})
    client.payments.cancel(first.id)
    with pytest.raises(gc_errors.InvalidStateError):
        client.payments.cancel(first.id)
    assert client.payments.get(first.id).status == "cancelled"
    assert client._api_client.rate_limit.limit is not None


def test_idempotency_conflict_creates_nothing(gw: Gateway) -> None:
    mandate = gw.mandate()
    first = gw.payment(mandate["id"], key="key-1", metadata={"crm_id": "a0X001"})
    assert first.status_code == 201
    second = gw.payment(mandate["id"], key="key-1", metadata={"crm_id": "a0X001"})
    error = error_of(second, 409)
    assert error["type"] == "invalid_state"
    assert error["message"] == "A resource has already been created with this idempotency key"
    assert error["errors"][0]["reason"] == "idempotent_creation_conflict"
    assert error["errors"][0]["links"]["conflicting_resource_id"] == first.json()["payments"]["id"]
    assert gw.control("GET", "/resources/payments")["count"] == 1
    stats = gw.control("GET", "/stats")
    assert stats["idempotent_duplicates_prevented"] == {"payments": 1}
    assert stats["resources_per_crm_id"]["a0X001"] == 1
    assert stats["requests"]["POST /payments"] == {"201": 1, "409": 1}
    # Keys are scoped per resource type, and creates without a key are always allowed.
    assert gw.post("/customers", {"customers": {"company_name": "A"}}, key="key-1").ok
    assert gw.payment(mandate["id"]).status_code == 201


# Fault injection -----------------------------------------------------------------------


def test_fail_next_twice_then_success(gw: Gateway) -> None:
    mandate = gw.mandate()
    gw.control("POST", "/faults", {"fail_next": [
        {"status": 503, "count": 2, "path_prefix": "/payments", "method": "POST"}]})
    assert gw.get("/payments").status_code == 200
    for _ in range(2):
        error = error_of(gw.payment(mandate["id"], key="retry-me"), 503)
        assert error["type"] == "gocardless"
    assert gw.control("GET", "/resources/payments")["count"] == 0
    assert gw.payment(mandate["id"], key="retry-me").status_code == 201
    assert gw.control("GET", "/resources/payments")["count"] == 1
    assert gw.control("GET", "/faults")["fail_next"] == []
    assert gw.control("GET", "/stats")["faults_injected"]["fail_next"] == 2


def test_fail_next_after_effect_creates_then_errors(gw: Gateway) -> None:
    mandate = gw.mandate()
    gw.control("POST", "/faults", {"fail_next": [
        {"status": 500, "count": 1, "path_prefix": "/payments", "after_effect": True}]})
    lost = gw.payment(mandate["id"], key="lost-answer", metadata={"crm_id": "a0X9"})
    assert error_of(lost, 500)["type"] == "gocardless"
    stored = gw.control("GET", "/resources/payments")["payments"]
    assert len(stored) == 1
    replay = error_of(gw.payment(mandate["id"], key="lost-answer"), 409)
    assert replay["errors"][0]["links"]["conflicting_resource_id"] == stored[0]["id"]
    assert gw.control("GET", "/stats")["resources_per_crm_id"] == {"a0X9": 1}


def test_reject_next_latency_errors_and_timeouts(gw: Gateway) -> None:
    mandate = gw.mandate()
    gw.control("POST", "/faults", {"reject_next": [
        {"count": 1, "path_prefix": "/payments", "field": "amount", "message": "is too big"}]})
    assert fields_of(gw.payment(mandate["id"])) == {"amount": "is too big"}
    assert gw.payment(mandate["id"]).status_code == 201

    gw.control("POST", "/faults", {"error_rate": 1.0})
    assert error_of(gw.get("/payments"), 500)["type"] == "gocardless"
    assert gw.control("DELETE", "/faults")["error_rate"] == 0.0

    gw.control("POST", "/faults", {"latency_ms": 150})
    started = time.monotonic()
    assert gw.get("/payments").status_code == 200
    assert time.monotonic() - started >= 0.15

    gw.control("POST", "/faults", {"latency_ms": 0, "timeout_rate": 1.0, "timeout_sleep_s": 0.6})
    with pytest.raises(requests.Timeout):
        gw.call("POST", "/payments", {"payments": {
            "amount": 700, "currency": "GBP", "links": {"mandate": mandate["id"]}}},
            headers={"Idempotency-Key": "slow"}, timeout=0.2)
    gw.control("DELETE", "/faults")
    deadline = time.monotonic() + 5
    while gw.control("GET", "/resources/payments")["count"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gw.control("GET", "/resources/payments")["count"] == 2
    assert gw.payment(mandate["id"], key="slow").status_code == 409


def test_rate_limit_headers_and_429(gw: Gateway) -> None:
    unlimited = gw.get("/customers")
    assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(unlimited.headers)
    gw.control("POST", "/faults", {"rate_limit": {"limit": 3, "window_s": 60}})
    remaining = []
    for _ in range(3):
        response = gw.get("/customers")
        assert response.status_code == 200
        assert response.headers["RateLimit-Limit"] == "3"
        parsedate_to_datetime(response.headers["RateLimit-Reset"])
        remaining.append(int(response.headers["RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]
    limited = gw.get("/customers")
    error = error_of(limited, 429)
    assert error["errors"][0]["reason"] == "rate_limit_exceeded"
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["RateLimit-Remaining"] == "0"
    with pytest.raises(gc_errors.RateLimitError):
        gw.client().customers.list()
    assert gw.control("GET", "/stats")["rate_limited"] == 2
    time.sleep(0.65)  # the 60 s window lasts 0.6 s at time scale 0.01
    assert gw.get("/customers").status_code == 200


# Lifecycles and events -----------------------------------------------------------------


def test_advance_emits_ordered_events(gw: Gateway) -> None:
    mandate = gw.mandate()
    payments = [gw.payment(mandate["id"]).json()["payments"]["id"] for _ in range(3)]
    result = gw.control("POST", "/advance", {"resource_type": "payments", "to": "paid_out"})
    assert {r["status"] for r in result["resources"]} == {"paid_out"}
    assert len(result["events"]) == 9
    events = gw.events(resource_type="payments")
    stamps = [e["created_at"] for e in gw.events()]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    steps = [e["action"] for e in events if e["action"] != "created"]
    assert steps == ["submitted"] * 3 + ["confirmed"] * 3 + ["paid_out"] * 3
    assert {e["links"]["payment"] for e in events} == set(payments)
    for event in events:
        assert event["id"].startswith("EV")
        # GoCardless sets scheme (and reason_code) only when a bank is the origin.
        assert "scheme" not in event["details"]
        assert event["details"]["origin"] in ("api", "gocardless")
    assert gw.control("GET", "/resources/payouts")["count"] == 1
    illegal = requests.post(gw.base + "/sim/transition", json={
        "resource_type": "payments", "id": payments[0], "action": "submitted"}, timeout=5)
    assert error_of(illegal, 422)["type"] == "invalid_state"


def test_late_failure_chargeback_and_mandate_cascade(gw: Gateway) -> None:
    mandate = gw.mandate()
    late, disputed, pending = (gw.payment(mandate["id"]).json()["payments"]["id"]
                               for _ in range(3))
    gw.control("POST", "/advance", {"resource_type": "payments", "ids": [late, disputed],
                                    "to": "paid_out"})
    for action in ("failed", "late_failure_settled"):
        gw.control("POST", "/transition", {"resource_type": "payments", "id": late,
                                           "action": action})
    for action in ("charged_back", "chargeback_cancelled"):
        gw.control("POST", "/transition", {"resource_type": "payments", "id": disputed,
                                           "action": action})
    assert gw.get(f"/payments/{late}").json()["payments"]["status"] == "failed"
    assert gw.get(f"/payments/{disputed}").json()["payments"]["status"] == "paid_out"
    sub = gw.post("/subscriptions", {"subscriptions": {
        "amount": 500, "currency": "GBP", "interval_unit": "weekly",
        "links": {"mandate": mandate["id"]}}}).json()["subscriptions"]

    gw.control("POST", "/advance", {"resource_type": "mandates", "to": "active"})
    gw.control("POST", "/transition", {"resource_type": "mandates", "id": mandate["id"],
                                       "action": "cancelled", "cause": "bank_account_closed"})
    assert gw.get(f"/payments/{pending}").json()["payments"]["status"] == "cancelled"
    assert gw.get(f"/subscriptions/{sub['id']}").json()["subscriptions"]["status"] == "cancelled"
    cascade = gw.events(payment=pending, action="cancelled")[0]
    assert cascade["details"]["cause"] == "mandate_cancelled"
    assert cascade["details"]["origin"] == "gocardless"
    refused = error_of(gw.payment(mandate["id"]), 422)
    assert refused["errors"][0]["reason"] == "mandate_is_inactive"


def test_events_list_filters(gw: Gateway) -> None:
    gw.mandate()
    everything = gw.events()
    cutoff = everything[0]["created_at"]
    later = gw.events(**{"created_at[gt]": cutoff})
    assert [e["id"] for e in later] == [e["id"] for e in everything[1:]]
    inclusive = gw.events(**{"created_at[gte]": cutoff})
    assert len(inclusive) == len(everything)
    assert {e["resource_type"] for e in gw.events(resource_type="mandates")} == {"mandates"}
    newest_first = gw.get("/events").json()["events"]
    assert [e["id"] for e in newest_first] == [e["id"] for e in everything][::-1]
    single = gw.get(f"/events/{everything[0]['id']}").json()["events"]
    assert single == everything[0]
    assert "created_at[gt]" in fields_of(gw.get("/events", **{"created_at[gt]": "yesterday"}))


def test_customer_approval_and_auto_advance(gw: Gateway) -> None:
    gw.control("POST", "/settings", {"customer_approval": ["payments"]})
    mandate = gw.mandate()
    payment = gw.payment(mandate["id"]).json()["payments"]
    assert payment["status"] == "pending_customer_approval"
    assert mandate["payments_require_approval"] is True
    gw.control("POST", "/settings", {"customer_approval": [], "auto_advance_seconds": 2})
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if gw.get(f"/payments/{payment['id']}").json()["payments"]["status"] == "paid_out":
            break
        time.sleep(0.05)
    actions = [e["action"] for e in gw.events(payment=payment["id"])]
    assert actions == ["created", "customer_approval_granted", "submitted", "confirmed",
                       "paid_out"]
    assert gw.get(f"/mandates/{mandate['id']}").json()["mandates"]["status"] == "active"


def test_reset_clears_state(gw: Gateway) -> None:
    gw.mandate()
    gw.control("POST", "/faults", {"latency_ms": 5})
    gw.control("POST", "/reset")
    assert gw.control("GET", "/resources/customers")["count"] == 0
    assert gw.events() == []
    assert gw.control("GET", "/faults")["latency_ms"] == 0
    assert gw.control("GET", "/stats")["creates"] == {}


# Webhook delivery ----------------------------------------------------------------------


def test_webhooks_are_signed_batched_and_complete(
    make_gateway: Callable[..., Gateway], receiver: Receiver
) -> None:
    gw = make_gateway(batch_size=3)
    mandate = gw.mandate()
    for _ in range(4):
        gw.payment(mandate["id"])
    assert gw.flush()["flushed"] is True
    created = [e["id"] for e in gw.events()]
    assert receiver.event_ids() == created
    assert all(1 <= len(batch["events"]) <= 3 for batch in receiver.accepted)
    assert receiver.rejected_signatures == 0
    deliveries = gw.control("GET", "/webhooks")["deliveries"]
    assert {d["state"] for d in deliveries} == {"delivered"}
    assert all(d["statuses"] == [204] for d in deliveries)


def test_webhook_retries_after_receiver_error(gw: Gateway, receiver: Receiver) -> None:
    receiver.fail_next = 2
    mandate = gw.mandate()
    assert gw.flush()["flushed"] is True
    assert receiver.event_ids() == [e["id"] for e in gw.events()]
    delivery = gw.control("GET", "/webhooks")["deliveries"][0]
    assert delivery["statuses"] == [500, 500, 204] and delivery["state"] == "delivered"
    links = receiver.accepted[0]["events"][0]["links"]
    assert links["mandate"] == mandate["id"]
    assert links["customer"] == mandate["links"]["customer"]


def test_webhook_given_up_after_eight_retries(
    make_gateway: Callable[..., Gateway], receiver: Receiver
) -> None:
    gw = make_gateway(time_scale=0.001)
    receiver.always_fail = True
    gw.mandate()
    assert gw.flush()["flushed"] is True
    delivery = gw.control("GET", "/webhooks")["deliveries"][0]
    assert delivery["given_up"] is True and len(delivery["attempts"]) == 9
    assert gw.control("GET", "/stats")["webhooks"]["counters"]["given_up"] == 1


def test_webhook_duplicates(make_gateway: Callable[..., Gateway], receiver: Receiver) -> None:
    gw = make_gateway()
    gw.control("POST", "/webhooks/faults", {"duplicate_rate": 1.0})
    gw.mandate()
    gw.flush()
    event_id = gw.events()[0]["id"]
    assert receiver.event_ids() == [event_id, event_id]
    assert len(receiver.accepted) == 2
    deliveries = gw.control("GET", "/webhooks")["deliveries"]
    assert deliveries[1]["duplicate_event_ids"] == [event_id]


def test_webhook_shuffle_delivers_out_of_order(
    make_gateway: Callable[..., Gateway], receiver: Receiver
) -> None:
    gw = make_gateway()
    gw.control("POST", "/webhooks/faults", {"pause": True, "shuffle": True})
    mandate = gw.mandate()
    for _ in range(6):
        gw.payment(mandate["id"])
    gw.control("POST", "/webhooks/faults", {"pause": False})
    assert gw.flush()["flushed"] is True
    created = [e["id"] for e in gw.events()]
    received = receiver.event_ids()
    assert sorted(received) == sorted(created) and received != created
    first_batch = {e["id"] for e in receiver.accepted[0]["events"]}
    held_back = [i for i in created if i not in first_batch]
    newest_in_first = max(created.index(i) for i in first_batch)
    assert any(created.index(i) < newest_in_first for i in held_back)


def test_webhook_drop_leaves_events_for_catch_up(gw: Gateway, receiver: Receiver) -> None:
    gw.mandate()
    gw.flush()
    checkpoint = gw.events()[-1]["created_at"]
    gw.control("POST", "/webhooks/faults", {"drop_rate": 1.0})
    gw.mandate()
    gw.mandate()
    gw.flush()
    assert len(receiver.event_ids()) == 1
    snapshot = gw.control("GET", "/webhooks")
    assert snapshot["counters"]["dropped"] >= 1
    assert {d["state"] for d in snapshot["deliveries"][1:]} == {"dropped"}
    missing = gw.events(**{"created_at[gt]": checkpoint})
    assert len(missing) == 2
    assert not set(e["id"] for e in missing) & set(receiver.event_ids())


def test_webhook_wrong_key_then_recovery(gw: Gateway, receiver: Receiver) -> None:
    gw.control("POST", "/webhooks/faults", {"wrong_key_next": 1})
    gw.mandate()
    gw.flush()
    assert receiver.rejected_signatures == 1
    delivery = gw.control("GET", "/webhooks")["deliveries"][0]
    assert delivery["statuses"] == [498, 204]
    assert [a["wrong_key"] for a in delivery["attempts"]] == [True, False]
    assert receiver.event_ids() == [e["id"] for e in gw.events()]


def test_webhook_pause_and_flush_timeout(gw: Gateway, receiver: Receiver) -> None:
    gw.control("POST", "/webhooks/faults", {"pause": True})
    gw.mandate()
    held = gw.flush(timeout=0.2)
    assert held["flushed"] is False and held["pending_events"] == 1
    assert receiver.requests == 0
    gw.control("DELETE", "/webhooks/faults")
    assert gw.flush()["flushed"] is True
    assert len(receiver.event_ids()) == 1


# Bank details and the process ----------------------------------------------------------


def test_cli_process_never_exposes_bank_details(receiver: Receiver) -> None:
    env = {**os.environ, "GATEWAY_SIM_ACCESS_TOKEN": TOKEN, "GATEWAY_SIM_TIME_SCALE": "0.01"}
    process = subprocess.Popen(
        [sys.executable, "-m", "sim.gateway", "--port", "0", "--webhook-url", receiver.url,
         "--webhook-secret", SECRET],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in banner
        base = banner.strip().rsplit(" ", 1)[-1]
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        texts: list[str] = []

        def call(method: str, path: str, body: Any = None) -> dict[str, Any]:
            response = http.request(method, base + path, json=body, timeout=10)
            texts.append(response.text + str(response.headers))
            return response.json()

        customer = call("POST", "/customers", {"customers": {"company_name": "Acme"}})
        customer_id = customer["customers"]["id"]
        details = {"account_holder_name": "Acme", "country_code": "GB",
                   "links": {"customer": customer_id}}
        local = call("POST", "/customer_bank_accounts", {"customer_bank_accounts": {
            **details, "account_number": ACCOUNT_NUMBER, "branch_code": "40-88-12"}})
        call("POST", "/customer_bank_accounts", {"customer_bank_accounts": {
            **details, "iban": IBAN}})
        call("POST", "/customer_bank_accounts", {"customer_bank_accounts": {
            **details, "account_number": ACCOUNT_NUMBER + "77777", "branch_code": SORT_CODE + "9"}})
        call("POST", "/customer_bank_accounts", {"customer_bank_accounts": {
            **details, "account_number": ACCOUNT_NUMBER, "branch_code": SORT_CODE}})
        account_id = local["customer_bank_accounts"]["id"]
        call("GET", f"/customer_bank_accounts/{account_id}")
        call("GET", "/customer_bank_accounts")
        call("POST", "/mandates", {"mandates": {"links": {"customer_bank_account": account_id}}})
        call("GET", "/events")
        for path in ("/resources/customer_bank_accounts", "/stats", "/webhooks"):
            call("GET", "/sim" + path)
        call("POST", "/sim/webhooks/flush")
    finally:
        process.terminate()
        stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "POST /customer_bank_accounts" in stderr
    captured = "\n".join(texts) + stdout + stderr
    captured += "".join(body.decode() for body in receiver.raw_bodies)
    for secret in (ACCOUNT_NUMBER, SORT_CODE, "40-88-12", IBAN, IBAN_DIGITS):
        assert secret not in captured


def test_config_from_env_and_cli() -> None:
    env = {"GATEWAY_SIM_PORT": "9100", "GATEWAY_SIM_RATE_LIMIT": "5",
           "GATEWAY_SIM_TIME_SCALE": "0.5", "GATEWAY_SIM_WEBHOOK_URL": ""}
    config = parse_args(["--port", "9200", "--batch-size", "7"], environ=env)
    assert (config.port, config.rate_limit, config.time_scale, config.batch_size) == (
        9200, 5, 0.5, 7)
    assert config.webhook_url == "" and config.access_token == "sandbox-token"
    defaults = parse_args([], environ={})
    assert (defaults.port, defaults.webhook_secret, defaults.rate_window) == (
        8002, "paybridge-dev-webhook-secret", 60.0)
    assert defaults.webhook_url == "http://127.0.0.1:8000/webhooks/gocardless"


def test_seed_creates_as_the_api_does_and_stops_at_a_refused_item(gw: Gateway) -> None:
    mandate = gw.mandate()
    items = [{"amount": 100 + n, "currency": "GBP", "metadata": {"crm_id": f"a0{n}"},
              "links": {"mandate": mandate["id"]}} for n in range(3)]
    answer = requests.post(f"{gw.base}/sim/seed", timeout=30,
                           json={"resource_type": "payments", "items": items})
    assert answer.status_code == 201, answer.text
    ids = answer.json()["ids"]
    shown = [gw.get(f"/payments/{i}").json()["payments"] for i in ids]
    assert answer.json()["payments"] == shown
    assert [(p["amount"], p["status"], p["metadata"]["crm_id"]) for p in shown] == [
        (100, "pending_submission", "a00"), (101, "pending_submission", "a01"),
        (102, "pending_submission", "a02")]
    created = gw.get("/events", resource_type="payments", action="created").json()["events"]
    assert {e["links"]["payment"] for e in created} == set(ids)  # the API's events too
    refused = requests.post(f"{gw.base}/sim/seed", timeout=30, json={
        "resource_type": "payments", "items": [items[0], {**items[0], "amount": 0}]})
    assert refused.status_code == 422
    assert refused.json()["refused"] == 1 and len(refused.json()["ids"]) == 1
    assert refused.json()["error"]["errors"][0]["field"] == "amount"
    bad = requests.post(f"{gw.base}/sim/seed", timeout=30,
                        json={"resource_type": "payouts", "items": [{}]})
    assert bad.status_code == 400
