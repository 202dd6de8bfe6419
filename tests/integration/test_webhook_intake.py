"""POST /webhooks/gocardless: signature, validation, size, dedup; nothing applied inline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from gocardless_pro import webhooks as official
from gocardless_pro.errors import InvalidSignatureError
from hypothesis import given, settings
from hypothesis import strategies as st

from app.records import service as records
from app.runtime import Runtime
from webhooks.models import WebhookEvent
from webhooks.signature import sign, verify

SECRET = "paybridge-dev-webhook-secret"
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def event(n: int, action: str = "submitted", resource: str = "PM0001", **over) -> dict:
    base = {"id": f"EV{n:06d}", "created_at": (T0 + timedelta(seconds=n)).isoformat()
            .replace("+00:00", "Z"), "resource_type": "payments", "action": action,
            "links": {"payment": resource}, "details": {"origin": "bank", "cause": "x"}}
    base.update(over)
    return base


def post(client: FlaskClient, body: bytes, secret: str | None = SECRET, **headers: str):
    if secret is not None:
        headers.setdefault("Webhook-Signature", sign(body, secret))
    return client.post("/webhooks/gocardless", data=body,
                       headers={"Content-Type": "application/json", **headers})


def stored(rt: Runtime) -> list[WebhookEvent]:
    with rt.db.transaction() as session:
        return list(session.scalars(sa.select(WebhookEvent).order_by(WebhookEvent.event_id)))


def test_valid_batch_is_stored_whole_and_answered_204(client: FlaskClient, rt: Runtime) -> None:
    body = json.dumps({"events": [event(n, resource=f"PM{n % 7}") for n in range(500)]}).encode()
    resp = post(client, body)
    assert resp.status_code == 204 and resp.data == b""
    rows = stored(rt)
    assert len(rows) == 500
    assert {r.status for r in rows} == {"pending"}  # nothing applied inside the request
    assert rows[3].resource_id == "PM3" and rows[3].event_time == T0 + timedelta(seconds=3)


def test_repeated_event_ids_are_ignored(client: FlaskClient, rt: Runtime) -> None:
    first = json.dumps({"events": [event(1), event(2)]}).encode()
    again = json.dumps({"events": [event(2), event(3), event(3)]}).encode()
    assert post(client, first).status_code == 204
    assert post(client, again).status_code == 204
    assert [r.event_id for r in stored(rt)] == ["EV000001", "EV000002", "EV000003"]


def test_an_event_applied_and_deleted_is_still_recognised(client: FlaskClient,
                                                          rt: Runtime) -> None:
    with rt.db.transaction() as session:
        link = records.upsert_link(session, "Payment", crm_id="a0C1", gateway_id="PM0001")
        records.record_transition(session, link, "submitted", source="webhook",
                                  event_id="EV000001", event_time=T0)
    assert post(client, json.dumps({"events": [event(1)]}).encode()).status_code == 204
    assert stored(rt) == []


@pytest.mark.parametrize("signature", [None, "", "deadbeef", sign(b"other body", SECRET)])
def test_bad_or_missing_signature_is_498_and_nothing_stored(
        client: FlaskClient, rt: Runtime, signature: str | None) -> None:
    body = json.dumps({"events": [event(1)]}).encode()
    headers = {} if signature is None else {"Webhook-Signature": signature}
    resp = post(client, body, secret=None, **headers)
    assert resp.status_code == 498
    assert resp.get_json()["error"]["code"] == "invalid_signature"
    assert stored(rt) == []


def test_a_forged_batch_signed_with_another_key_is_refused(client: FlaskClient,
                                                          rt: Runtime) -> None:
    body = json.dumps({"events": [event(1)]}).encode()
    assert post(client, body, secret="not-the-secret").status_code == 498
    assert stored(rt) == []


def test_the_previous_secret_is_accepted_during_rotation(rt: Runtime) -> None:
    from dataclasses import replace

    from app.web import create_app

    rotated = Runtime(replace(rt.settings, webhook_secret="new-secret",
                              webhook_secret_previous=SECRET))
    with create_app(runtime=rotated).test_client() as client:
        body = json.dumps({"events": [event(1)]}).encode()
        assert post(client, body, secret=SECRET).status_code == 204
        assert post(client, json.dumps({"events": [event(2)]}).encode(),
                    secret="new-secret").status_code == 204
        assert post(client, json.dumps({"events": [event(3)]}).encode(),
                    secret="older-secret").status_code == 498
    rotated.db.dispose()


@pytest.mark.parametrize(("body", "named"), [
    (b"{not json", "not valid JSON"),
    (b"[]", "events"),
    (json.dumps({"events": []}).encode(), "events"),
    (json.dumps({"events": [event(1), {**event(2), "created_at": "yesterday"}]}).encode(),
     "events[1].created_at"),
    (json.dumps({"events": [{k: v for k, v in event(1).items() if k != "id"}]}).encode(),
     "events[0].id"),
    (json.dumps({"events": [event(1, links="PM1")]}).encode(), "events[0].links"),
    ("{\"events\": [\"\u00e9\"]}".encode("latin-1"), "JSON"),
    # Not JSON (RFC 8259 has no such numbers), though Python's parser takes them: storing
    # them would change what the gateway sent.
    (json.dumps({"events": [event(1, details={"amount": float("nan")})]}).encode(), "NaN"),
    (json.dumps({"events": [event(1, details={"amount": float("inf")})]}).encode(),
     "Infinity"),
])
def test_malformed_batches_are_400_naming_the_problem(client: FlaskClient, rt: Runtime,
                                                     body: bytes, named: str) -> None:
    resp = post(client, body)
    assert resp.status_code == 400
    assert named in resp.get_json()["error"]["message"]
    assert stored(rt) == []


@pytest.mark.parametrize("header", ["é" * 64, "sha256=" + "\u00ff" * 57, "\x80", "ü"])
def test_a_non_ascii_signature_is_498_not_500(client: FlaskClient, rt: Runtime,
                                                header: str) -> None:
    # Header values arrive decoded as latin-1; a digest comparison of non-ASCII text raises.
    body = json.dumps({"events": [event(1)]}).encode()
    resp = post(client, body, secret=None, **{"Webhook-Signature": header})
    assert resp.status_code == 498, resp.get_json()
    assert resp.get_json()["error"]["code"] == "invalid_signature"
    assert verify(body, header, [SECRET]) is False
    assert stored(rt) == []


def test_oversized_body_is_413(client: FlaskClient, rt: Runtime) -> None:
    body = json.dumps({"events": [event(1, details={"pad": "x" * (3 * 1024 * 1024)})]}).encode()
    assert post(client, body).status_code == 413
    assert stored(rt) == []


def test_unknown_endpoint_is_404(client: FlaskClient) -> None:
    resp = client.post("/webhooks/stripe", data=b"{}")
    assert resp.status_code == 404


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=300), secret=st.text(min_size=1, max_size=40),
       tamper=st.booleans())
def test_verification_agrees_with_the_official_library(body: bytes, secret: str,
                                                       tamper: bool) -> None:
    header = sign(body, secret)
    if tamper:
        header = sign(body + b"x", secret)
    ours = verify(body, header, [secret])
    try:
        official._verify_signature(body, secret, header)
        theirs = True
    except InvalidSignatureError:
        theirs = False
    assert ours == theirs == (not tamper)


def test_official_parser_accepts_what_we_accept() -> None:
    body = json.dumps({"events": [event(1), event(2)]}).encode()
    header = sign(body, SECRET)
    assert verify(body, header, [SECRET])
    parsed = official.parse(body, SECRET, header)
    assert [e.id for e in parsed] == ["EV000001", "EV000002"]


def test_batch_mode_splits_a_big_delivery_without_splitting_a_resource(rt: Runtime) -> None:
    from collections import Counter
    from dataclasses import replace

    from app.config import Settings
    from app.web import create_app

    assert Settings.from_env(environ={}).webhook_mode == "batch"  # the default
    batched = Runtime(replace(rt.settings, webhook_mode="batch", batch_size=200))
    # 130 resources, 4 or 5 events each, interleaved as a gateway sends them: 600 events.
    events = [event(n, resource=f"PM{n % 130:03d}") for n in range(600)]
    with create_app(runtime=batched).test_client() as client:
        assert post(client, json.dumps({"events": events}).encode()).status_code == 204
    batched.db.dispose()
    rows = stored(rt)
    assert len(rows) == 600
    per_job = Counter(r.job_id for r in rows)
    assert len(per_job) >= 3 and None not in per_job
    assert max(per_job.values()) <= 200
    jobs_of = {}
    for r in rows:
        jobs_of.setdefault(r.resource_id, set()).add(r.job_id)
    assert all(len(jobs) == 1 for jobs in jobs_of.values()), "a resource split over jobs"


def test_event_mode_still_gives_every_event_its_own_job(rt: Runtime) -> None:
    from dataclasses import replace

    from app.web import create_app

    moded = Runtime(replace(rt.settings, webhook_mode="event"))
    with create_app(runtime=moded).test_client() as client:
        body = json.dumps({"events": [event(n, resource="PM1") for n in range(5)]}).encode()
        assert post(client, body).status_code == 204
    moded.db.dispose()
    assert len({r.job_id for r in stored(rt)}) == 5


def test_times_and_text_are_stored_exactly_as_received(client: FlaskClient, rt: Runtime) -> None:
    # An offset with seconds is valid ISO 8601; rounding it away would move the event in time.
    when = "2026-11-22T10:00:00.123456+01:00:30"
    body = json.dumps({"events": [event(1, created_at=when, details={"note": "é \u00fc ✓"}),
                                  event(2, created_at="2026-11-22T10:00:00-05:00")]}).encode()
    assert post(client, body).status_code == 204
    first, second = stored(rt)
    assert first.event_time == datetime.fromisoformat(when)
    assert second.event_time == datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
    assert first.payload["created_at"] == when
    assert first.payload["details"]["note"] == "é \u00fc ✓"
