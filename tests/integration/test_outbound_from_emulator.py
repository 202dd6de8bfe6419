"""Outbound Messages end to end over HTTP: a regular user's creates and updates in the
Salesforce emulator reach the API Queue in order with previous fields right, through the
emulator's SOAP messages and their retries; the integration user's write-backs send none."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import requests
import sqlalchemy as sa
from simple_salesforce import Salesforce
from werkzeug.serving import make_server

from app.clients.salesforce import CrmWrite
from app.runtime import Runtime
from app.supervisor import free_port
from app.web import create_app
from queues.models import QueueItem

USER = {"grant_type": "password", "username": "demo@example.com", "password": "demo"}


def _rows(rt: Runtime) -> list[tuple[str, str, dict[str, Any], dict[str, Any] | None]]:
    with rt.db.transaction() as session:
        return [(i.record_id, i.operation, i.fields, i.previous_fields)
                for i in session.scalars(sa.select(QueueItem).order_by(QueueItem.id))]


def _wait(predicate: Any, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_outbound_messages_reach_the_queue_after_retries(
        emulators: tuple[Runtime, str, str]) -> None:
    rt, _gw, sf_url = emulators
    http = requests.Session()
    http.trust_env = False  # REQUESTS_CA_BUNDLE would override verify (see FACTS)
    http.verify = rt.settings.salesforce_ca_bundle
    port = free_port()  # nothing listens yet: the first deliveries fail and are retried
    org_id = http.post(f"{sf_url}/sim/outbound", json={
        "url": f"http://127.0.0.1:{port}/salesforce/outbound",
        "fields": {"Contact": ["LastName", "Email"]}}).json()["org_id"]
    token = http.post(f"{sf_url}/services/oauth2/token", data=USER).json()
    user = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"],
                      session=http, version="59.0")
    record_id = user.Contact.create({"LastName": "Turing", "Email": "alan@example.com",
                                     "Phone": "01234"})["id"]
    time.sleep(0.5)
    rt = Runtime(replace(rt.settings, salesforce_org_id=org_id))
    server = make_server("127.0.0.1", port, create_app(runtime=rt), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _wait(lambda: len(_rows(rt)) == 1)
        [result] = rt.crm.update_many([CrmWrite("Contact", record_id, {"Gateway_Id__c": "CU9"})])
        assert result.ok
        user.Contact.update(record_id, {"Email": "alan@example.org"})
        _wait(lambda: len(_rows(rt)) == 2)
        time.sleep(0.5)
        rows = _rows(rt)
        assert [r[1] for r in rows] == ["insert", "update"]  # the write-back sent nothing
        assert rows[0][2] == {"LastName": "Turing", "Email": "alan@example.com"}
        assert rows[1][2]["Email"] == "alan@example.org" and rows[1][3] == rows[0][2]
        sent = http.get(f"{sf_url}/sim/outbound").json()["sent"]
        assert sent[0]["attempts"] > 1 and all(m["acked"] for m in sent)
    finally:
        server.shutdown()
