"""Application factory and server for the gateway emulator.

``create_app(config)`` builds a Flask app around one ``Simulator`` (all state, in memory)
and starts its background threads (webhook delivery, auto-advance); call
``app.extensions["gateway_sim"].close()`` to stop them. ``serve(config)`` runs it on a
threaded werkzeug server until SIGINT/SIGTERM.

Every API request (anything outside ``/sim``) goes through, in order: bearer-token check
(401), rate limit (429), injected faults (latency, timeouts, ``fail_next``, ``reject_next``,
``error_rate``), the route, then ``after_effect`` replacement. Every API response carries the
RateLimit headers; every request is counted in ``/sim/stats``.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
import traceback
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server

from . import api, control
from .autoadvance import AutoAdvancer
from .clock import Clock
from .config import GatewayConfig
from .engine import Engine
from .errors import (
    ApiError,
    FieldError,
    for_status,
    internal_error,
    invalid_api_usage,
    rate_limited,
    validation_failed,
)
from .faults import FaultState
from .ratelimit import RateLimiter
from .stats import RequestStats
from .store import Store, random_code
from .webhooks import WebhookDispatcher

log = logging.getLogger("sim.gateway")


class Simulator:
    """Every component of one emulator instance."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config.validate()
        self.rng = random.Random(config.seed)
        self.clock = Clock(config.time_scale)
        self.dispatcher = WebhookDispatcher(
            self.clock, config.webhook_url, config.webhook_secret, config.batch_size, self.rng,
            timeout_s=config.webhook_timeout_s, max_retries=config.webhook_max_retries,
        )
        self.store = Store(self.clock, self.dispatcher.enqueue)
        self.engine = Engine(self.store, self.clock)
        self.faults = FaultState(self.rng)
        self.limiter = RateLimiter(self.clock, config.rate_limit, config.rate_window)
        self.stats = RequestStats()
        self.auto = AutoAdvancer(self.engine, config.auto_advance_seconds)

    def start(self) -> None:
        self.dispatcher.start()
        self.auto.start()

    def close(self) -> None:
        self.auto.close()
        self.dispatcher.close()

    def reset(self) -> None:
        """Forget all resources, events, deliveries, counters and faults."""
        with self.store.lock:
            self.store.reset()
            self.dispatcher.reset()
        self.dispatcher.clear_faults()
        self.faults.clear()
        self.faults.injected.clear()
        self.limiter.configure(self.config.rate_limit, self.config.rate_window)
        self.limiter.refused = 0
        self.stats.reset()

    def stats_snapshot(self) -> dict[str, Any]:
        store = self.store
        with store.lock:
            per_crm = {crm: dict(counts) for crm, counts in store.crm_ids.items()}
            counts = {
                "creates": dict(store.creates),
                "gateway_creates": dict(store.gateway_creates),
                "idempotent_duplicates_prevented": dict(store.duplicates_prevented),
                "idempotent_duplicates_prevented_total": sum(
                    store.duplicates_prevented.values()),
                "resources_per_crm_id": {crm: sum(c.values()) for crm, c in per_crm.items()},
                "resources_per_crm_id_by_type": per_crm,
                "events": len(store.all("events")),
            }
        webhooks = self.dispatcher.snapshot(limit=0)
        return {
            **self.stats.snapshot(),
            **counts,
            "rate_limit": self.limiter.snapshot(),
            "faults_injected": dict(self.faults.injected),
            "webhooks": {key: webhooks[key] for key in
                         ("counters", "pending_events", "retrying", "in_flight")},
            "auto_advance_ticks": self.auto.ticks,
        }


def _is_api() -> bool:
    return not (request.path == "/sim" or request.path.startswith("/sim/"))


def _error_response(error: ApiError) -> Response:
    response = jsonify(error.body(g.get("request_id", "")))
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def _template() -> str:
    if request.url_rule is None:
        return "<unmatched>"
    path = request.path
    resource_id = (request.view_args or {}).get("resource_id")
    if resource_id:
        path = path.replace("/" + resource_id, "/{id}", 1)
    return path


def _guard(simulator: Simulator) -> None:
    """Authentication, rate limit and injected faults for one API request."""
    expected = "Bearer " + simulator.config.access_token
    header = request.headers.get("Authorization")
    if header != expected:
        reason = "missing_authorization_header" if header is None else "access_token_not_found"
        raise invalid_api_usage(401, reason, "Invalid or missing access token")
    decision = simulator.limiter.hit()
    g.rate_headers = decision.headers
    if not decision.allowed:
        raise rate_limited(decision.headers)
    faults = simulator.faults.decide(request.method, request.path)
    if faults.delay_s:
        time.sleep(faults.delay_s)
    if faults.fail is not None:
        if faults.fail.after_effect:
            g.after_effect = faults.fail
        else:
            raise for_status(faults.fail.status, faults.fail.message)
    if faults.reject is not None:
        envelope = request.path.strip("/").split("/")[0]
        field = faults.reject.field
        raise validation_failed([FieldError(field, faults.reject.message,
                                            f"/{envelope}/{field}")])
    if faults.random_error:
        raise internal_error(500)


def create_app(config: GatewayConfig | None = None, *, start_threads: bool = True) -> Flask:
    """Build the emulator app. State lives in ``app.extensions["gateway_sim"]``."""
    simulator = Simulator(config or GatewayConfig())
    app = Flask("sim.gateway")
    app.json.sort_keys = False
    app.extensions["gateway_sim"] = simulator
    app.register_blueprint(control.bp)
    app.register_blueprint(api.bp)

    @app.before_request
    def before() -> None:
        g.request_id = random_code(14)
        if _is_api():
            g.log_entry = simulator.stats.begin(request.method, request.path,
                                                request.headers.get("Idempotency-Key"))
            _guard(simulator)

    @app.after_request
    def after(response: Response) -> Response:
        if _is_api():
            rule = g.pop("after_effect", None)
            if rule is not None:
                response = _error_response(for_status(rule.status, rule.message))
            rate_headers = g.get("rate_headers") or simulator.limiter.peek()
            for name, value in rate_headers.items():
                response.headers.setdefault(name, value)
        simulator.stats.record(request.method, _template(), response.status_code)
        simulator.stats.end(g.pop("log_entry", None), response.status_code)
        return response

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        return _error_response(error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        reason = {404: "path_not_found", 405: "method_not_allowed"}.get(status, "invalid_request")
        return _error_response(invalid_api_usage(status, reason, error.name))

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        # Only the type and stack are logged: an exception message could quote request data.
        stack = "".join(traceback.format_tb(error.__traceback__))
        log.error("unhandled %s on %s %s\n%s", type(error).__name__, request.method,
                  request.path, stack)
        return _error_response(internal_error(500))

    if start_threads:
        simulator.start()
    return app


def serve(config: GatewayConfig) -> None:
    """Run the emulator until interrupted; prints one line saying where it listens."""
    app = create_app(config)
    simulator: Simulator = app.extensions["gateway_sim"]
    server = make_server(config.host, config.port, app, threaded=True)

    def stop(_signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"Paybridge gateway emulator listening on http://{config.host}:{server.server_port}",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        simulator.close()
