"""Every endpoint that takes a body refuses one over its limit with 413 naming the limit.

The limit is checked against Content-Length before anything is read (or authenticated), and
a body sent without one (chunked) is cut off at the limit while it is read.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import re
import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from werkzeug.serving import make_server

from app.runtime import Runtime
from app.web import create_app

API_LIMIT, WEBHOOK_LIMIT = 4096, 2048
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
def app(rt: Runtime) -> Iterator[Flask]:
    small = Runtime(dataclasses.replace(rt.settings, max_body_bytes=API_LIMIT,
                                        webhook_max_bytes=WEBHOOK_LIMIT))
    yield create_app(runtime=small)
    small.db.dispose()


def json_routes(app: Flask) -> list[tuple[str, str]]:
    """(method, url) of every JSON API and webhook route that takes a body."""
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(("/api/v1", "/webhooks")):
            continue
        url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "gocardless" if m.group(1) == "endpoint"
                     else ("Payment" if m.group(1) == "obj" else "1"), rule.rule)
        out += [(m, url) for m in sorted(rule.methods & BODY_METHODS)]
    return out


def padded(size: int) -> bytes:
    body = json.dumps({"changes": [], "pad": ""}).encode()
    return body.replace(b'""', b'"' + b"x" * (size - len(body)) + b'"')


def limit_of(url: str) -> int:
    return WEBHOOK_LIMIT if url.startswith("/webhooks") else API_LIMIT


def test_every_json_endpoint_refuses_a_body_over_its_limit(app: Flask) -> None:
    client = app.test_client()
    routes = json_routes(app)
    assert len(routes) >= 10
    problems = []
    for method, url in routes:
        limit = limit_of(url)
        resp = client.open(url, method=method, data=padded(limit + 1),
                           headers={"Content-Type": "application/json"})
        error = (resp.get_json(silent=True) or {}).get("error") or {}
        if (resp.status_code, error.get("code")) != (413, "payload_too_large") or (
                f"{limit} bytes" not in error.get("message", "")
                or error.get("details", {}).get("limit_bytes") != limit):
            problems.append(f"{method} {url}: {resp.status_code} {error}")
    assert problems == []


def test_a_body_at_the_limit_is_read(app: Flask) -> None:
    resp = app.test_client().post("/api/v1/queue", data=padded(API_LIMIT),
                                  headers={"Content-Type": "application/json"})
    assert resp.status_code == 401  # got past the size check to the API key check


@pytest.fixture
def served(app: Flask) -> Iterator[int]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port
    server.shutdown()


@pytest.mark.parametrize("url", ["/api/v1/queue", "/webhooks/gocardless"])
def test_a_chunked_body_is_cut_off_at_the_limit(served: int, url: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", served, timeout=10)
    body = padded(limit_of(url) * 3)
    conn.request("POST", url, body=iter([body[i:i + 512] for i in range(0, len(body), 512)]),
                 headers={"Content-Type": "application/json", "Webhook-Signature": "0" * 64},
                 encode_chunked=True)
    resp = conn.getresponse()
    error = json.loads(resp.read())["error"]
    conn.close()
    assert resp.status == 413 and error["code"] == "payload_too_large"
    assert error["details"]["limit_bytes"] == limit_of(url)


def test_a_chunked_body_within_the_limit_is_read_whole(served: int, rt: Runtime) -> None:
    from webhooks.signature import sign

    events = [{"id": "EV0001", "created_at": "2026-11-22T10:00:00Z", "resource_type": "payments",
               "action": "submitted", "links": {"payment": "PM1"}, "details": {}}]
    body = json.dumps({"events": events}).encode()
    assert len(body) < WEBHOOK_LIMIT
    conn = http.client.HTTPConnection("127.0.0.1", served, timeout=10)
    conn.request("POST", "/webhooks/gocardless", body=iter([body[:100], body[100:]]),
                 headers={"Content-Type": "application/json",
                          "Webhook-Signature": sign(body, rt.settings.webhook_secret)},
                 encode_chunked=True)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 204
