"""What the change-capture end-to-end tests share: a regular user's simple-salesforce client
on the Salesforce emulator, and what Paybridge and the gateway hold for one CRM record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import requests
import sqlalchemy as sa
from simple_salesforce import Salesforce

from queues.capture_models import CaptureWatermark
from queues.models import ArchivedItem, QueueItem
from tests.e2e.conftest import Stack

USER = {"grant_type": "password", "username": "demo@example.com", "password": "demo"}


def regular_user(stack: Stack) -> Salesforce:
    """A regular (not the integration) user of the org, through simple-salesforce."""
    http = requests.Session()
    http.trust_env = False  # REQUESTS_CA_BUNDLE would override verify (see FACTS)
    http.verify = stack.env["SALESFORCE_CA_BUNDLE"]
    token = http.post(f"{stack.sf}/services/oauth2/token", data=USER, timeout=30).json()
    return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"],
                      session=http, version="59.0")


def trigger_off(stack: Stack) -> None:
    """The emulator's built-in trigger is for demos: these tests capture changes themselves."""
    stack.sf_call("POST", "/sim/trigger", json={"url": None}).raise_for_status()


def queued(stack: Stack, record_id: str) -> list[tuple[str, dict[str, Any],
                                                          dict[str, Any] | None]]:
    """The record's rows still in the API Queue, oldest first: operation, fields, previous."""
    with stack.rt.db.transaction() as session:
        return [(i.operation, i.fields, i.previous_fields) for i in session.scalars(
            sa.select(QueueItem).where(QueueItem.record_id == record_id)
            .order_by(QueueItem.id))]


def handled(stack: Stack, record_id: str) -> list[str]:
    """Operations of the record's rows Paybridge finished (archive), oldest first."""
    with stack.rt.db.transaction() as session:
        return list(session.scalars(sa.select(ArchivedItem.operation).where(
            ArchivedItem.record_id == record_id).order_by(ArchivedItem.id)))


def settled(stack: Stack, record_id: str, operations: int) -> bool:
    """That many of the record's rows are finished and none waits."""
    return len(handled(stack, record_id)) == operations and not queued(stack, record_id)


def customer(stack: Stack, crm_id: str) -> dict[str, Any] | None:
    """The gateway's customer made for a CRM record (removed ones included)."""
    found = stack.http.get(f"{stack.gw}/sim/resources/customers", timeout=10).json()
    return next((c for c in found["customers"] if c["metadata"].get("crm_id") == crm_id), None)


def customer_calls(stack: Stack, gateway_id: str) -> list[str]:
    """The methods of the gateway API calls made on one existing customer, in the order the
    gateway answered them."""
    log = stack.http.get(f"{stack.gw}/sim/requests", params={"path": "/customers/"},
                         timeout=10).json()["requests"]
    return [e["method"] for e in log if e["path"] == f"/customers/{gateway_id}"
            and e["status"] < 300]


def watermark(stack: Stack, obj: str = "Customer") -> tuple[datetime, datetime] | None:
    """(newest SystemModstamp taken in, when it was polled) for one object."""
    with stack.rt.db.transaction() as session:
        mark = session.get(CaptureWatermark, obj)
        return (mark.modstamp, mark.polled_at) if mark is not None else None


def stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
