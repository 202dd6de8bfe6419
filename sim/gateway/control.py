"""Control endpoints under ``/sim`` (no authentication, no rate limit, no API faults).

    GET    /sim/health                         -> {"status": "ok"}
    GET    /sim/faults | POST | DELETE         API faults (see ``faults``) and "rate_limit"
    GET    /sim/stats                          counters (requests, 429s, creates, crm ids...)
    GET    /sim/resources/<type>[?status=]     every resource of a type, removed ones too
    GET    /sim/resources/<type>/<id>
    POST   /sim/reset                          forget resources, events, deliveries, counters
                                               and faults (webhook URL/secret and settings
                                               stay)
    POST   /sim/seed                           {"resource_type", "items": [create bodies]}:
                                               up to 10,000 creates in one request (bench)
    POST   /sim/advance                        {"resource_type", "ids"?, "to"? | "steps"?}
    POST   /sim/transition                     {"resource_type", "id", "action", "origin"?,
                                                "cause"?, "description"?, "details"?,
                                                "metadata"?}: "event" is null for a step
                                               GoCardless takes silently; an origin/cause
                                               pair it does not document is a 400
    POST   /sim/subscriptions/<id>/collect     {"amount"?, "charge_date"?}
    GET    /sim/settings | POST                {"customer_approval": [...types],
                                                "auto_advance_seconds": n,
                                                "restricted": [...features]}
    GET    /sim/webhooks[?limit=]              deliveries and counters
    POST   /sim/webhooks/flush[?timeout=]      wait until delivered or given up
    GET    /sim/webhooks/faults | POST | DELETE
    POST   /sim/webhooks/config                {"url"?, "secret"?}
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app, jsonify, request

from . import restrictions
from .api import CREATORS  # the API's own creators: one rule per resource
from .errors import ApiError, invalid_api_usage
from .lifecycles import APPROVABLE, HAPPY_PATH, TRANSITIONS, statuses
from .restrictions import FEATURES
from .store import RESOURCE_TYPES, SINGULAR

if TYPE_CHECKING:
    from .app import Simulator

bp = Blueprint("gateway_control", __name__, url_prefix="/sim")


def sim() -> Simulator:
    return current_app.extensions["gateway_sim"]


def bad_request(message: str) -> ApiError:
    return invalid_api_usage(400, "invalid_control_request", message)


def body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if data is None:
        if request.get_data().strip():
            raise bad_request("body must be a JSON object")
        return {}
    if not isinstance(data, dict):
        raise bad_request("body must be a JSON object")
    return data


@bp.get("/health")
def health() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/faults")
def faults_show() -> Response:
    simulator = sim()
    return jsonify({**simulator.faults.snapshot(), "rate_limit": simulator.limiter.snapshot()})


@bp.post("/faults")
def faults_set() -> Response:
    simulator = sim()
    data = body()
    try:
        rate = data.get("rate_limit")
        if rate is not None:
            if not isinstance(rate, dict):
                raise ValueError("rate_limit must be an object")
            limit = rate.get("limit", simulator.limiter.limit)
            window = rate.get("window_s", simulator.limiter.window_s)
            if isinstance(limit, bool) or not isinstance(limit, int) or isinstance(
                window, bool
            ) or not isinstance(window, int | float):
                raise ValueError("rate_limit needs integer limit and numeric window_s")
            simulator.limiter.configure(limit, float(window))
        simulator.faults.configure(data)
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    return faults_show()


@bp.delete("/faults")
def faults_clear() -> Response:
    simulator = sim()
    simulator.faults.clear()
    simulator.limiter.configure(simulator.config.rate_limit, simulator.config.rate_window)
    return faults_show()


@bp.get("/stats")
def stats() -> Response:
    return jsonify(sim().stats_snapshot())


@bp.get("/requests")
def requests_log() -> Response:
    """The API request log (``?path=/customers`` filters by path prefix)."""
    return jsonify(sim().stats.log(request.args.get("path", "")))


def _resource_type(name: str) -> str:
    if name not in RESOURCE_TYPES:
        raise bad_request("resource type must be one of " + ", ".join(RESOURCE_TYPES))
    return name


@bp.get("/resources/<name>")
def resources(name: str) -> Response:
    resource_type = _resource_type(name)
    simulator = sim()
    status = request.args.get("status")
    with simulator.store.lock:
        items = []
        for record in simulator.store.all(resource_type):
            if status and record.status != status:
                continue
            simulator.engine.refresh(record)
            items.append({**record.public(), "removed": bool(record.extra.get("removed"))})
    return jsonify({resource_type: items, "count": len(items)})


@bp.get("/resources/<name>/<resource_id>")
def resource(name: str, resource_id: str) -> Response:
    resource_type = _resource_type(name)
    simulator = sim()
    with simulator.store.lock:
        record = simulator.store.get(resource_type, resource_id, allow_removed=True)
        simulator.engine.refresh(record)
        return jsonify({SINGULAR[resource_type]: record.public(),
                        "removed": bool(record.extra.get("removed"))})


@bp.post("/reset")
def reset() -> Response:
    sim().reset()
    return jsonify({"reset": True})


SEED_MAX = 10_000


@bp.post("/seed")
def seed() -> Response:
    """Many creates in one request, for benchmarks: each item exactly as ``POST /<type>``
    would create it (same validation, same events), without the HTTP round trip per item;
    the answer lists the ids and the resources as the API renders them. Items before a
    refused one stay created; the answer names the refused one's index."""
    data = body()
    resource_type, items = data.get("resource_type"), data.get("items")
    if resource_type not in CREATORS:
        raise bad_request("resource_type must be one of " + ", ".join(CREATORS))
    if not isinstance(items, list) or not 0 < len(items) <= SEED_MAX or not all(
            isinstance(i, dict) for i in items):
        raise bad_request(f"items must be a list of 1 to {SEED_MAX} objects")
    simulator = sim()
    made: list[dict[str, Any]] = []
    with simulator.store.lock:
        for index, item in enumerate(items):
            try:
                restrictions.check_create(simulator.engine.restricted, resource_type, item)
                record = CREATORS[resource_type](simulator.engine, item, None)
            except ApiError as error:
                response = jsonify({"ids": [r["id"] for r in made], "refused": index,
                                    "error": error.body("")["error"]})
                response.status_code = error.status
                return response
            simulator.engine.refresh(record)
            made.append(record.public())
    response = jsonify({"ids": [r["id"] for r in made], resource_type: made})
    response.status_code = 201
    return response


@bp.post("/advance")
def advance() -> Response:
    data = body()
    resource_type = data.get("resource_type")
    if resource_type not in HAPPY_PATH:
        raise bad_request("resource_type must be one of " + ", ".join(HAPPY_PATH))
    ids = data.get("ids")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
        raise bad_request("ids must be a list of ids")
    to = data.get("to")
    if to is not None and to not in statuses(resource_type):
        raise bad_request(f"'{to}' is not a {resource_type} status")
    steps = data.get("steps")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise bad_request("steps must be a positive integer")
    return jsonify(sim().engine.advance(resource_type, ids, to, steps))


@bp.post("/transition")
def transition() -> Response:
    data = body()
    resource_type = data.get("resource_type")
    if resource_type not in TRANSITIONS:
        raise bad_request("resource_type must be one of " + ", ".join(TRANSITIONS))
    action = data.get("action")
    if action not in TRANSITIONS[resource_type]:
        raise bad_request(f"action must be one of {', '.join(TRANSITIONS[resource_type])}")
    details = data.get("details") or {}
    metadata = data.get("metadata") or {}
    if not isinstance(details, dict) or not isinstance(metadata, dict):
        raise bad_request("details and metadata must be objects")
    engine = sim().engine
    with engine.store.lock:
        record = engine.store.get(resource_type, str(data.get("id")), allow_removed=True)
        try:
            event = engine.apply(record, action, origin=data.get("origin"),
                                 cause=data.get("cause"), description=data.get("description"),
                                 details=details, metadata=metadata)
        except ValueError as exc:  # an origin / cause GoCardless does not document
            raise bad_request(str(exc)) from None
        engine.refresh(record)
        return jsonify({SINGULAR[resource_type]: record.public(),
                        "event": event.public() if event is not None else None})


@bp.post("/subscriptions/<resource_id>/collect")
def collect(resource_id: str) -> Response:
    data = body()
    amount = data.get("amount")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)
                               or amount < 1):
        raise bad_request("amount must be a positive integer")
    charge_date = data.get("charge_date")
    if charge_date is not None:
        try:
            charge_date = date.fromisoformat(charge_date).isoformat()
        except (TypeError, ValueError):
            raise bad_request("charge_date must be YYYY-MM-DD") from None
    engine = sim().engine
    with engine.store.lock:
        subscription = engine.store.get("subscriptions", resource_id)
        payment = engine.collect(subscription, amount, charge_date)
        return jsonify({"payments": payment.public(), "subscriptions": subscription.public()})


def settings_view() -> dict[str, Any]:
    simulator = sim()
    return {"customer_approval": sorted(simulator.engine.customer_approval),
            "restricted": sorted(simulator.engine.restricted),
            "auto_advance_seconds": simulator.auto.interval_s,
            "time_scale": simulator.clock.time_scale}


@bp.get("/settings")
def settings_show() -> Response:
    return jsonify(settings_view())


@bp.post("/settings")
def settings_set() -> Response:
    data = body()
    simulator = sim()
    approval = data.get("customer_approval")
    if approval is not None:
        if not isinstance(approval, list) or not set(approval) <= set(APPROVABLE):
            raise bad_request("customer_approval must list types among " + ", ".join(APPROVABLE))
        simulator.engine.customer_approval = set(approval)
    restricted = data.get("restricted")
    if restricted is not None:
        if not isinstance(restricted, list) or not set(restricted) <= set(FEATURES):
            raise bad_request("restricted must list features among " + ", ".join(FEATURES))
        simulator.engine.restricted = set(restricted)
    interval = data.get("auto_advance_seconds")
    if interval is not None:
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval < 0:
            raise bad_request("auto_advance_seconds must be a number >= 0")
        simulator.auto.set_interval(float(interval))
    return jsonify(settings_view())


@bp.get("/webhooks")
def webhooks() -> Response:
    limit = request.args.get("limit")
    if limit is not None and not limit.isdigit():
        raise bad_request("limit must be a positive integer")
    return jsonify(sim().dispatcher.snapshot(int(limit) if limit else None))


@bp.post("/webhooks/flush")
def webhooks_flush() -> Response:
    raw = request.args.get("timeout", body().get("timeout", 30))
    try:
        timeout = float(raw)
    except (TypeError, ValueError):
        raise bad_request("timeout must be a number of seconds") from None
    return jsonify(sim().dispatcher.flush(timeout))


@bp.get("/webhooks/faults")
def webhook_faults_show() -> Response:
    return jsonify(sim().dispatcher.faults_snapshot())


@bp.post("/webhooks/faults")
def webhook_faults_set() -> Response:
    try:
        sim().dispatcher.set_faults(body())
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    return webhook_faults_show()


@bp.delete("/webhooks/faults")
def webhook_faults_clear() -> Response:
    sim().dispatcher.clear_faults()
    return webhook_faults_show()


@bp.post("/webhooks/config")
def webhook_config() -> Response:
    data = body()
    url, secret = data.get("url"), data.get("secret")
    if (url is not None and not isinstance(url, str)) or (
        secret is not None and not isinstance(secret, str)
    ):
        raise bad_request("url and secret must be strings")
    sim().dispatcher.configure(url, secret)
    return jsonify({"url": sim().dispatcher.url})
