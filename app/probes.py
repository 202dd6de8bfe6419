"""Health and monitoring endpoints: /healthz, /readyz, and the guard in front of /metrics.

``/healthz`` is always open (it says the process is up, nothing more). ``/readyz`` and
``/metrics`` describe the deployment, so with ``METRICS_TOKEN`` set they need it as a bearer
token. ``/metrics`` counts the queues in the database; its answer is reused for
``METRICS_CACHE_SECONDS`` by each process, and only one request at a time builds it, so no
scrape rate can turn it into a stream of table scans. ``/readyz`` is a ``SELECT 1`` and a
Redis ``PING``: cheap enough to answer fresh every time.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, current_app, jsonify, make_response, request

from app.config import Settings
from app.errors import Unauthorized

GUARDED = ("/metrics", "/readyz")


def _health(app: Flask) -> None:
    @app.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz():  # type: ignore[no-untyped-def]
        rt = current_app.extensions["paybridge"]
        checks = {}
        try:
            with rt.db.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # readiness reports, it does not raise
            checks["database"] = f"unreachable: {type(exc).__name__}"
        try:
            rt.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unreachable: {type(exc).__name__}"
        ready = all(v == "ok" for v in checks.values())
        return jsonify({"status": "ready" if ready else "not ready", "checks": checks}), (
            200 if ready else 503)


def bearer_matches(expected: str) -> bool:
    """The request carries ``Authorization: Bearer <expected>`` (constant-time; bytes, so
    a non-ASCII header is a mismatch rather than a TypeError)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode("utf-8", "surrogateescape"), expected.encode())


def _guard(app: Flask, token: str) -> None:
    @app.before_request
    def _require_metrics_token():  # type: ignore[no-untyped-def]
        if request.path in GUARDED and not bearer_matches(token):
            raise Unauthorized("this endpoint needs 'Authorization: Bearer <METRICS_TOKEN>'",
                               headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        return None


def reuse_for(seconds: float, view: Callable[..., Any]) -> Callable[..., Any]:
    """``view`` answering from its last 200 while it is younger than ``seconds``; one
    caller at a time rebuilds it, the others wait and get the new answer."""
    lock = threading.Lock()
    last: dict[str, Any] = {"at": float("-inf"), "body": b"", "mimetype": None}

    @wraps(view)
    def cached(*args: Any, **kwargs: Any) -> Response:
        with lock:
            if time.monotonic() - last["at"] < seconds:
                return Response(last["body"], mimetype=last["mimetype"])
            response = make_response(view(*args, **kwargs))
            if response.status_code == 200:
                last.update(at=time.monotonic(), body=response.get_data(),
                            mimetype=response.mimetype)
            return response

    return cached


def init_probes(app: Flask, settings: Settings) -> None:
    """Health endpoints and the token guard now; call ``cache_metrics`` once /metrics exists."""
    _health(app)
    if settings.metrics_token:
        _guard(app, settings.metrics_token)


def cache_metrics(app: Flask, settings: Settings) -> None:
    if settings.metrics_cache_seconds <= 0:
        return
    endpoint = next(r.endpoint for r in app.url_map.iter_rules() if r.rule == "/metrics")
    app.view_functions[endpoint] = reuse_for(settings.metrics_cache_seconds,
                                             app.view_functions[endpoint])
