"""Change capture by Outbound Messages with the real processes: the emulated org sends a
record-triggered Flow's SOAP messages to gunicorn's POST /salesforce/outbound (its built-in
trigger is off). A regular user's creates and updates through simple-salesforce reach the
gateway in order with previous fields right, after Salesforce's retries when Paybridge is
down; Paybridge's own write-backs send nothing back; a forged or foreign-org message is
refused. (Deletions reach Paybridge only by polling: a Flow's Outbound Message does not run
on delete; see test_capture_poll_e2e.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.supervisor import wait_http
from tests.e2e.capture import (
    customer,
    customer_calls,
    queued,
    regular_user,
    settled,
    trigger_off,
)
from tests.e2e.conftest import Stack, running_stack, wait_until
from tests.integration.test_outbound_messages import envelope

pytestmark = pytest.mark.e2e
SENT_FIELDS = ["FirstName", "LastName", "Email"]  # what the Outbound Message was set to send
WORKERS = ("worker-1", "worker-2")


def flow_to_paybridge(stack: Stack) -> None:
    """The org's Flow sends Contacts to Paybridge, which then accepts this org only."""
    trigger_off(stack)
    answer = stack.sf_call("POST", "/sim/outbound", json={
        "url": f"{stack.web}/salesforce/outbound", "fields": {"Contact": SENT_FIELDS}})
    answer.raise_for_status()
    stack.env["SALESFORCE_ORG_ID"] = answer.json()["org_id"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, database_url: str,
          redis_url: str) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("outbound-stack"), database_url, redis_url,
                       {"CHANGE_CAPTURE": "push"}, prepare=flow_to_paybridge) as st:
        yield st


def messages(stack: Stack) -> dict[str, Any]:
    return stack.sf_call("GET", "/sim/outbound").json()


def delivered(stack: Stack, count: int) -> bool:
    """``count`` messages acknowledged in all, none waiting for a retry."""
    found = messages(stack)
    return len(found["sent"]) == count and not found["pending"]


def test_creates_and_updates_reach_the_gateway_in_order(fresh: Stack) -> None:
    stack, user = fresh, regular_user(fresh)
    before = len(messages(stack)["sent"])
    record_id = user.Contact.create({"FirstName": "Grace", "LastName": "Hopper",
                                     "Email": "grace@example.com", "Phone": "01234"})["id"]
    wait_until(lambda: settled(stack, record_id, 1), 60, "the insert to be done", stack)
    gateway_id = user.Contact.get(record_id)["Gateway_Id__c"]
    assert gateway_id and customer(stack, record_id)["id"] == gateway_id

    stack.halt(*WORKERS)  # to read the row the message made
    user.Contact.update(record_id, {"Email": "grace@example.org"})
    wait_until(lambda: queued(stack, record_id), 30, "the update to be queued", stack)
    [(operation, fields, previous)] = queued(stack, record_id)
    assert operation == "update"
    assert fields == {"FirstName": "Grace", "LastName": "Hopper", "Email": "grace@example.org"}
    assert previous == {"FirstName": "Grace", "LastName": "Hopper",
                        "Email": "grace@example.com"}
    stack.resume(*WORKERS)
    wait_until(lambda: settled(stack, record_id, 2), 60, "the update to be done", stack)
    assert customer(stack, record_id)["email"] == "grace@example.org"
    assert customer_calls(stack, gateway_id) == ["PUT"]
    # Two user changes, two messages: the integration user's write-backs sent none.
    wait_until(lambda: delivered(stack, before + 2), 30, "both messages acknowledged", stack)


def test_messages_sent_while_paybridge_is_down_arrive_once(fresh: Stack) -> None:
    stack, user = fresh, regular_user(fresh)
    before = len(messages(stack)["sent"])
    stack.halt("web")
    record_id = user.Contact.create({"FirstName": "Alan", "LastName": "Turing",
                                     "Email": "alan@example.com"})["id"]
    wait_until(lambda: stack.sf_call("GET", "/sim/outbound").json()["pending"], 10,
               "the message to wait for a retry", stack)
    stack.resume("web")
    wait_http(f"{stack.web}/healthz", 60)
    wait_until(lambda: settled(stack, record_id, 1), 60, "the insert to be done", stack)
    wait_until(lambda: delivered(stack, before + 1), 30, "the message acknowledged", stack)
    assert messages(stack)["sent"][-1]["attempts"] > 1


@pytest.mark.parametrize(("body", "status"), [
    (envelope("00D000000000999EAA", [("04l000000000003AAA", "003000000000002AAA",
                                      {"LastName": "Foreign"})]), 403),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', 400),
    (b"<notifications>not soap</notifications>", 400),
])
def test_forged_or_foreign_org_messages_are_refused(fresh: Stack, body: bytes,
                                                    status: int) -> None:
    stack = fresh
    answer = stack.http.post(f"{stack.web}/salesforce/outbound", data=body, timeout=30,
                             headers={"Content-Type": "text/xml; charset=utf-8"})
    assert answer.status_code == status
    assert "Fault" in answer.text and "<Ack>" not in answer.text
    assert queued(stack, "003000000000002AAA") == []
    assert stack.api("GET", "/api/v1/queue-items").json()["items"] == []
