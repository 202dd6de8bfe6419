"""Dashboard, status history search and timelines, alerts, /metrics and the API docs."""

from __future__ import annotations

import dataclasses
import http.server
import socketserver
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from app.clock import utcnow
from app.config import Settings
from app.console import alerts
from app.console.models import Alert, AlertState
from app.records import refs
from app.records import service as records
from app.runtime import Runtime
from queues.models import FAILED, PENDING, QueueItem
from tests.integration.console.support import (
    Console,
    failed_item,
    key,
)
from webhooks.models import WebhookEvent


def seed_payment(rt: Runtime) -> None:
    """A customer, its mandate and a payment with two transitions and one stale event."""
    now = utcnow()
    with rt.db.transaction() as session:
        for obj, crm_id, resource in (
                ("Customer", "003ADA", {"id": "CU1", "given_name": "Ada",
                                        "family_name": "Lovelace", "email": "ada@example.com"}),
                ("Mandate", "a0MADA", {"id": "MD1", "reference": "REF-MD1",
                                       "links": {"customer": "CU1"}}),
                ("Payment", "a0PADA", {"id": "PM1", "reference": "INV-42",
                                       "links": {"mandate": "MD1"}})):
            link = records.upsert_link(session, obj, crm_id=crm_id, gateway_id=resource["id"])
            refs.note(session, obj, resource)
            if obj == "Payment":
                records.record_transition(session, link, "pending_submission", source="api",
                                          cause="insert via API queue", queue_item_id=7)
                records.record_transition(session, link, "submitted", source="webhook",
                                          cause="submitted: payment_submitted", event_id="EV2",
                                          event_time=now)
        session.add(WebhookEvent(
            event_id="EV1", endpoint="gocardless", delivery_id="d", resource_type="payments",
            resource_id="PM1", action="created", event_time=now - timedelta(hours=1),
            payload={}, status="stale", reason="older than EV2, already applied",
            error_log=[], next_attempt_at=now))


def test_history_search_by_every_kind_of_key(client: FlaskClient, rt: Runtime) -> None:
    seed_payment(rt)
    headers = key(rt, "operations")

    def found(term: str) -> set[tuple[str, str]]:
        body = client.get("/api/v1/history", query_string={"q": term}, headers=headers)
        return {(r["object"], r["gateway_id"]) for r in body.get_json()["results"]}

    assert found("a0PADA") == {("Payment", "PM1")}
    assert found("PM1") == {("Payment", "PM1")}
    assert found("INV-42") == {("Payment", "PM1")}
    assert found("lovelace") == {("Customer", "CU1"), ("Mandate", "MD1"), ("Payment", "PM1")}
    assert found("CU1") == {("Customer", "CU1"), ("Mandate", "MD1"), ("Payment", "PM1")}
    assert found("nobody") == set()


def test_timeline_shows_history_with_stale_events_beside_it(client: FlaskClient,
                                                            admin_console: Console,
                                                            rt: Runtime) -> None:
    seed_payment(rt)
    body = client.get("/api/v1/records/Payment/PM1/timeline",
                      headers=key(rt, "admin")).get_json()
    assert [(h["from"], h["to"], h["source"]) for h in body["history"]] == [
        (None, "pending_submission", "api"), ("pending_submission", "submitted", "webhook")]
    assert body["reference"] == "INV-42" and body["customer_id"] == "CU1"
    assert [(e["event_id"], e["status"]) for e in body["events"]] == [("EV1", "stale")]
    resp = admin_console.get("/history?q=PM1")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/history/Payment/PM1")
    page = admin_console.get("/history/Payment/PM1").get_data(as_text=True)
    for text in ("submitted", "EV2", "EV1", "stale", "queue item #7", "INV-42"):
        assert text in page


def test_dashboard_counts_ages_and_throughput(client: FlaskClient, admin_console: Console,
                                              rt: Runtime) -> None:
    failed_item(rt, 1)
    failed_item(rt, 2, obj="Payment")
    with rt.db.transaction() as session:
        session.add(QueueItem(object="Customer", record_id="003OLD", operation="insert",
                              fields={}, status=PENDING, idempotency_key="k",
                              created_at=utcnow() - timedelta(minutes=90)))
    rt.telemetry.processed("api", [("Customer", utcnow() - timedelta(seconds=2))] * 3)
    rt.telemetry.salesforce_usage(1234, 15000)
    body = client.get("/api/v1/dashboard", headers=key(rt, "operations")).get_json()
    api = body["queues"]["api"]
    assert api["counts"] == {"failed": 2, "pending": 1}
    assert api["by_kind"]["Payment"] == {"failed": 1}
    assert 85 * 60 < api["oldest_pending_seconds"] < 95 * 60
    assert api["last_hour"]["done"] == 3 and len(api["last_day"]["bars"]) == 24
    assert body["salesforce"]["used"] == 1234 and body["clock"]["alive"] is False
    page = admin_console.get("/").get_data(as_text=True)
    assert "API Queue" in page and "<svg" in page and "8.2%" in page


class Receiver(http.server.BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        Receiver.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class SmtpSink(socketserver.StreamRequestHandler):
    """Just enough SMTP to accept messages (no TLS, no auth)."""

    messages: list[str] = []

    def handle(self) -> None:
        self.wfile.write(b"220 sink\r\n")
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb == b"DATA":
                self.wfile.write(b"354 go\r\n")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk
                SmtpSink.messages.append(data.decode())
                self.wfile.write(b"250 ok\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            elif verb in (b"EHLO", b"HELO"):
                self.wfile.write(b"250 sink\r\n")
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def alert_rt(settings: Settings, rt: Runtime) -> Iterator[Runtime]:
    Receiver.bodies, SmtpSink.messages = [], []
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    smtp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), SmtpSink)
    for server in (web, smtp):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    configured = dataclasses.replace(
        settings, alert_webhook_url=f"http://127.0.0.1:{web.server_address[1]}/hook",
        smtp_host="127.0.0.1", smtp_port=smtp.server_address[1], smtp_starttls=False,
        alert_email_to="ops@example.com", console_url="https://paybridge.example")
    runtime = Runtime(configured)
    yield runtime
    web.shutdown()
    smtp.shutdown()
    runtime.db.dispose()


def test_a_burst_of_500_failures_is_one_alert_by_webhook_and_email(alert_rt: Runtime) -> None:
    assert alerts.check(alert_rt) == []  # the first look only sets the watermark
    with alert_rt.db.transaction() as session:
        session.get(AlertState, "failed:api").watermark = utcnow() - timedelta(hours=1)
        then = utcnow() - timedelta(minutes=30)
        session.execute(sa.insert(QueueItem), [
            {"object": "Payment" if n % 5 else "Mandate", "record_id": f"a0P{n}",
             "operation": "insert", "fields": {}, "status": FAILED, "idempotency_key": f"k{n}",
             "last_error": "POST /payments: mandate is cancelled", "error_log": [],
             "created_at": then, "updated_at": then, "next_attempt_at": then}
            for n in range(500)])
    assert alerts.check(alert_rt) == []  # the burst may still be going on
    sent = alerts.check(alert_rt)  # nothing new: the burst is over, one alert for all
    assert [(a.kind, a.count) for a in sent] == [("failed:api", 500)]
    assert sent[0].delivery == {"webhook": "sent", "email": "sent"}
    assert len(Receiver.bodies) == 1 and b"500 API Queue item(s)" in Receiver.bodies[0]
    assert len(SmtpSink.messages) == 1 and "Payment 400, Mandate 100" in SmtpSink.messages[0]
    assert "https://paybridge.example/items?status=failed" in SmtpSink.messages[0]
    assert alerts.check(alert_rt) == []


def test_conditions_alert_once_and_say_when_resolved(alert_rt: Runtime) -> None:
    alerts.check(alert_rt)
    with alert_rt.db.transaction() as session:
        session.add(QueueItem(object="Customer", record_id="003WAIT", operation="insert",
                              fields={}, status=PENDING, idempotency_key="k",
                              created_at=utcnow() - timedelta(hours=3)))
    alert_rt.telemetry.salesforce_usage(95, 100)
    kinds = sorted(a.kind for a in alerts.check(alert_rt))
    assert kinds == ["pending_age:api", "salesforce_usage"]
    assert alerts.check(alert_rt) == []  # no repeat within ALERT_REPEAT
    with alert_rt.db.transaction() as session:
        session.execute(sa.delete(QueueItem))
    alert_rt.telemetry.salesforce_usage(10, 100)
    resolved = alerts.check(alert_rt)
    assert sorted(a.subject.split(":")[0] for a in resolved) == ["Resolved", "Resolved"]
    with alert_rt.db.transaction() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Alert)) == 4


def test_metrics_in_prometheus_format(client: FlaskClient, rt: Runtime) -> None:
    failed_item(rt)
    rt.telemetry.processed("api", [("Customer", utcnow() - timedelta(seconds=3))])
    rt.telemetry.partner_call("gateway", "201")
    rt.telemetry.partner_call("gateway", "503")
    rt.telemetry.partner_call("salesforce", "ok")
    rt.telemetry.failed("webhook", {"payments": 2})
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    text = resp.get_data(as_text=True)
    for line in ('paybridge_queue_items{queue="api",status="failed"} 1.0',
                 'paybridge_items_processed_total{object="Customer",queue="api"} 1.0',
                 'paybridge_partner_calls_total{outcome="ok",partner="gateway"} 1.0',
                 'paybridge_items_failed_total{object="payments",queue="webhook"} 2.0',
                 'paybridge_partner_calls_total{outcome="5xx",partner="gateway"} 1.0',
                 'paybridge_processing_latency_seconds_bucket{le="5.0",queue="api"} 1.0',
                 'paybridge_processing_latency_seconds_count{queue="api"} 1.0',
                 "paybridge_workers 0.0"):
        assert line in text, line


def test_openapi_documents_every_console_endpoint_and_docs_work_offline(
        client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    for path, method in (("/api/v1/dashboard", "get"), ("/api/v1/history", "get"),
                         ("/api/v1/records/{obj}/{record_id}/timeline", "get"),
                         ("/api/v1/audit-log", "get"), ("/api/v1/bulk-operations", "post"),
                         ("/api/v1/bulk-operations/{op_id}", "get"),
                         ("/api/v1/api-keys", "post"), ("/api/v1/api-keys/{key_id}/revoke", "post"),
                         ("/api/v1/webhook-secrets", "get"), ("/api/v1/alerts", "get"),
                         ("/api/v1/queue-items/{item_id}", "patch"),
                         ("/api/v1/queue-items", "get"), ("/api/v1/webhook-events", "get")):
        assert method in spec["paths"][path], (path, method)
    params = {p["name"] for p in spec["paths"]["/api/v1/queue-items"]["get"]["parameters"]}
    assert {"error", "since", "until", "before_id"} <= params
    docs = client.get("/api/v1/docs").get_data(as_text=True)
    assert "/api/v1/docs/assets/swagger-ui-bundle.js" in docs and "cdn" not in docs
    assert client.get("/api/v1/docs/assets/swagger-ui-bundle.js").status_code == 200


def test_partner_calls_counted_in_a_worker_reach_every_other_process(rt: Runtime) -> None:
    """A worker counts its partner calls in memory and sends them in one pipeline: when a
    job ends (``flush``), at most PARTNER_CALLS_EVERY apart, and at exit. None is lost."""
    from app.telemetry import Telemetry

    worker, web = Telemetry(rt.redis), Telemetry(rt.redis)
    for outcome in ("201", "201", "429"):
        worker.partner_call("gateway", outcome)
    worker.flush()
    worker.partner_call("gateway", "201")
    worker.flush()
    calls = {labels["outcome"]: value for name, labels, value in web.counters()
             if name == "partner_calls"}
    assert calls == {"ok": 3.0, "429": 1.0}
