"""/metrics and /readyz: an optional bearer token, and a cost that no scrape rate can raise."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from app.runtime import Runtime
from app.web import create_app
from queues import service as queue_service
from tests.integration.test_query_counts import QueryCounter

TOKEN = "metrics-token-for-tests-0123456789"


def app_with(rt: Runtime, **settings: object) -> tuple[Runtime, FlaskClient]:
    runtime = Runtime(dataclasses.replace(rt.settings, **settings))
    return runtime, create_app(runtime=runtime).test_client()


@pytest.fixture
def guarded(rt: Runtime) -> Iterator[FlaskClient]:
    runtime, client = app_with(rt, metrics_token=TOKEN)
    yield client
    runtime.db.dispose()


@pytest.mark.parametrize("path", ["/metrics", "/readyz"])
def test_with_a_token_set_callers_without_it_get_401(guarded: FlaskClient, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer é" + TOKEN}):
        resp = guarded.get(path, headers=headers)
        assert resp.status_code == 401, (headers, resp.status_code)
        assert resp.get_json()["error"]["code"] == "unauthorized"
        assert "METRICS_TOKEN" in resp.get_json()["error"]["message"]
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert guarded.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_healthz_stays_open_and_no_token_means_open(guarded: FlaskClient,
                                                    client: FlaskClient) -> None:
    assert guarded.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200 and client.get("/readyz").status_code == 200


def queue_scans(counter: QueryCounter) -> int:
    return sum("api_queue_items" in s and "count(" in s.lower() for s in counter.take())


def test_a_scrape_loop_counts_the_queues_once_per_cache_period(rt: Runtime) -> None:
    runtime, client = app_with(rt, metrics_cache_seconds=0.5)
    queue_service.accept_changes(runtime.db, [{"object": "Customer", "record_id": "003A",
                                               "operation": "insert", "fields": {}}])
    counter = QueryCounter(runtime.db.engine)
    bodies = {client.get("/metrics").get_data(as_text=True) for _ in range(50)}
    assert queue_scans(counter) == 1
    assert len(bodies) == 1 and 'paybridge_queue_items{queue="api",status="pending"} 1.0' in (
        bodies.pop())
    # Once the period is over, the next scrape counts again and sees what changed.
    queue_service.accept_changes(runtime.db, [{"object": "Customer", "record_id": "003B",
                                               "operation": "insert", "fields": {}}])
    time.sleep(0.6)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'paybridge_queue_items{queue="api",status="pending"} 2.0' in text
    assert queue_scans(counter) == 1
    runtime.db.dispose()


def test_readyz_touches_no_table(rt: Runtime) -> None:
    runtime, client = app_with(rt)
    counter = QueryCounter(runtime.db.engine)
    for _ in range(20):
        assert client.get("/readyz").status_code == 200
    assert {s.strip() for s in counter.take()} <= {"SELECT 1", "BEGIN IMMEDIATE"}
    runtime.db.dispose()
