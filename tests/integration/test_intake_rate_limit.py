"""Per-API-key rate limits on POST /api/v1/queue and the bank-account API (429, Retry-After)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from app.auth import create_key
from app.runtime import Runtime
from app.web import create_app
from queues.models import QueueItem


def change(n: int) -> dict[str, Any]:
    return {"changes": [{"object": "Customer", "record_id": f"003R{n:08d}",
                         "operation": "insert", "fields": {"LastName": "Rate"}}]}


def bearer(rt: Runtime, name: str) -> dict[str, str]:
    with rt.db.transaction() as session:
        return {"Authorization": f"Bearer {create_key(session, name, 'trigger')[1]}"}


def stored(rt: Runtime) -> int:
    with rt.db.transaction() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(QueueItem))


@pytest.fixture
def limited(rt: Runtime) -> Iterator[tuple[Runtime, FlaskClient, FlaskClient]]:
    """Two apps on one database and one Redis: like two gunicorn workers (or machines)."""
    settings = dataclasses.replace(rt.settings, intake_rate_limit=20, api_rate_window=60.0,
                                   bank_account_rate_limit=20)
    first, second = Runtime(settings), Runtime(settings)
    yield first, create_app(runtime=first).test_client(), create_app(
        runtime=second).test_client()
    first.db.dispose()
    second.db.dispose()


def test_a_key_over_its_rate_gets_429_and_retry_after_across_workers(
        limited: tuple[Runtime, FlaskClient, FlaskClient]) -> None:
    rt, one, two = limited
    key = bearer(rt, "trigger-a")
    # 20 a minute, a tenth of it back to back: 2 pass, whichever worker gets them.
    answers = [c.post("/api/v1/queue", json=change(n), headers=key)
               for n, c in enumerate([one, two, one, two])]
    assert [a.status_code for a in answers] == [202, 202, 429, 429]
    refused = answers[2]
    error = refused.get_json()["error"]
    assert error["code"] == "rate_limited" and "/api/v1/queue" in error["message"]
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 3 and error["details"]["retry_after"] == retry_after
    assert stored(rt) == 2  # a refused request stored nothing
    # Another key has its own allowance; the same key has another one for bank accounts.
    assert one.post("/api/v1/queue", json=change(9), headers=bearer(rt, "trigger-b")
                    ).status_code == 202
    assert one.post("/api/v1/bank-accounts", json={}, headers=key).status_code == 400


def test_retry_after_is_when_the_next_request_passes(rt: Runtime) -> None:
    runtime = Runtime(dataclasses.replace(rt.settings, intake_rate_limit=10,
                                          api_rate_window=2.0))
    client = create_app(runtime=runtime).test_client()
    key = bearer(runtime, "trigger-c")
    assert client.post("/api/v1/queue", json=change(1), headers=key).status_code == 202
    refused = client.post("/api/v1/queue", json=change(2), headers=key)
    assert refused.status_code == 429
    time.sleep(int(refused.headers["Retry-After"]))
    assert client.post("/api/v1/queue", json=change(3), headers=key).status_code == 202
    runtime.db.dispose()


def test_the_bank_account_api_is_limited_too(
        limited: tuple[Runtime, FlaskClient, FlaskClient]) -> None:
    rt, one, two = limited
    key = bearer(rt, "trigger-d")
    codes = [c.post("/api/v1/bank-accounts", json={}, headers=key).status_code
             for c in (one, two, one)]
    assert codes == [400, 400, 429]


def test_zero_turns_the_limit_off(rt: Runtime) -> None:
    runtime = Runtime(dataclasses.replace(rt.settings, intake_rate_limit=0))
    client = create_app(runtime=runtime).test_client()
    key = bearer(runtime, "trigger-e")
    assert {client.post("/api/v1/queue", json=change(n), headers=key).status_code
            for n in range(30)} == {202}
    runtime.db.dispose()
