"""Catch-up against the gateway emulator over HTTP: events the gateway gave up delivering
are recovered however long before the newest delivered one they were made, every page is
read, and a scan interrupted by its page budget (or a restart) resumes where it stopped."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import requests
import sqlalchemy as sa

from app.runtime import Runtime
from tests.integration.test_webhook_apply import gateway_payment
from webhooks import intake
from webhooks.catchup import catch_up
from webhooks.models import CatchupState, WebhookEvent
from webhooks.schemas import EventSchema


@pytest.fixture
def world(emulators: tuple[Runtime, str, str]) -> tuple[Runtime, str]:
    rt, gw, _ = emulators
    return Runtime(replace(rt.settings, catchup_overlap=0.5)), gw


def stored_ids(rt: Runtime) -> set[str]:
    with rt.db.transaction() as session:
        return set(session.scalars(sa.select(WebhookEvent.event_id)))


def gateway_events(gw: str, **params: str) -> list[dict]:
    resp = requests.get(f"{gw}/events", params={"limit": "500", **params}, timeout=10,
                        headers={"Authorization": "Bearer sandbox-token"})
    resp.raise_for_status()
    return resp.json()["events"]


def delivered(rt: Runtime, events: list[dict]) -> None:
    """As if the gateway's webhook had reached the endpoint with these events."""
    intake.ingest(rt, "gocardless", events, [EventSchema().load(e) for e in events])


def test_an_event_given_up_long_before_the_newest_delivered_one_is_recovered(world) -> None:
    rt, gw = world
    catch_up(rt)  # the clock's first tick: nothing to recover yet
    lost = gateway_payment(gw)  # its events' deliveries were given up
    lost_events = {e["id"] for e in gateway_events(gw)}
    time.sleep(1.0)  # longer than the overlap
    later = gateway_payment(gw)
    known = {e["id"] for e in gateway_events(gw)} - lost_events
    delivered(rt, [e for e in gateway_events(gw) if e["id"] in known])
    assert stored_ids(rt).isdisjoint(lost_events)

    catch_up(rt)
    ids = stored_ids(rt)
    assert lost_events <= ids and known <= ids
    with rt.db.transaction() as session:
        resources = set(session.scalars(sa.select(WebhookEvent.resource_id)))
    assert {lost, later} <= resources


def test_a_scan_reads_every_page_across_ticks_and_resumes_after_a_restart(world) -> None:
    rt, gw = world
    catch_up(rt)
    for _ in range(6):
        gateway_payment(gw)  # several events each
    expected = {e["id"] for e in gateway_events(gw)}
    assert len(expected) > 10
    paced = Runtime(replace(rt.settings, catchup_page_size=5, catchup_pages=2))
    before = len(requests.get(f"{gw}/sim/requests", params={"path": "/events"},
                              timeout=10).json()["requests"])

    assert catch_up(paced) == 10  # two pages of five, then the tick's budget is spent
    with rt.db.transaction() as session:
        state = session.get(CatchupState, "events")
        assert state.scan_cursor is not None and state.scan_since is not None
    # A new process (a restarted clock) goes on from the saved cursor.
    restarted = Runtime(paced.settings)
    ticks = 1
    while stored_ids(rt) != expected:
        catch_up(restarted)
        ticks += 1
        assert ticks < 10, "the scan never finished"
    calls = len(requests.get(f"{gw}/sim/requests", params={"path": "/events"},
                             timeout=10).json()["requests"]) - before
    pages = -(-len(expected) // 5)
    assert calls <= pages + 1  # every page read once: nothing started again from the top
    with rt.db.transaction() as session:
        state = session.get(CatchupState, "events")
        assert state.scan_cursor is None  # the scan finished and moved the watermark
    restarted.db.dispose()
    paced.db.dispose()
