"""The GoCardless API subset, as Flask routes.

Envelopes are keyed by resource type (``{"payments": {...}}`` in and out). Creates answer
201, everything else 200. Action endpoints take the optional ``{"data": {...}}`` body the
official clients send (or ``null``); action metadata is stored on the event the action
causes. List endpoints return newest first unless ``sort_direction=asc`` (an emulator
extension), with cursor pagination (``after``/``before``, ``limit`` 1-500, default 50),
``created_at[gt|gte|lt|lte]``, ``status`` (comma-separated) and link filters (``customer``,
``mandate``, ``payment``, ...); ``/events`` also filters on ``resource_type`` and ``action``.
Authentication, rate limiting and fault injection happen in ``app`` before these run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from . import billing, payers, restrictions
from .clock import parse_timestamp
from .engine import Engine
from .errors import ApiError, invalid_api_usage
from .store import Record
from .validation import Validator, action_data, envelope

bp = Blueprint("gateway_api", __name__)

CREATABLE = "customers, customer_bank_accounts, mandates, payments, subscriptions, refunds"
READABLE = CREATABLE + ", payouts, events"
UPDATABLE = CREATABLE + ", payouts"
LINK_FILTERS = ("customer", "customer_bank_account", "mandate", "payment", "subscription",
                "refund", "payout", "creditor")
CREATED_AT_BOUNDS = ("gt", "gte", "lt", "lte")
MAX_LIMIT = 500
DEFAULT_LIMIT = 50

Creator = Callable[[Engine, dict[str, Any], str | None], Record]
Updater = Callable[[Engine, Record, dict[str, Any]], Record]
Action = Callable[[Engine, Record, dict[str, Any]], Record]

CREATORS: dict[str, Creator] = {
    "customers": payers.create_customer,
    "customer_bank_accounts": payers.create_bank_account,
    "mandates": payers.create_mandate,
    "payments": billing.create_payment,
    "subscriptions": billing.create_subscription,
    "refunds": billing.create_refund,
}
UPDATERS: dict[str, Updater] = {
    "customers": payers.update_customer,
    "customer_bank_accounts": payers.update_bank_account,
    "mandates": payers.update_metadata,
    "payments": billing.update_payment,
    "subscriptions": billing.update_subscription,
    "refunds": payers.update_metadata,
    "payouts": payers.update_metadata,
}


def _metadata(data: dict[str, Any]) -> dict[str, str]:
    """Validated ``metadata`` from an action's ``data`` (stored on the resulting event)."""
    check = Validator("data", data)
    value = check.metadata()
    check.check()
    return value


ACTIONS: dict[tuple[str, str], Action] = {
    ("customer_bank_accounts", "disable"): lambda e, r, d: payers.disable_bank_account(e, r),
    ("mandates", "cancel"): lambda e, r, d: payers.cancel_mandate(e, r, _metadata(d)),
    ("mandates", "reinstate"): lambda e, r, d: payers.reinstate_mandate(e, r, _metadata(d)),
    ("payments", "cancel"): lambda e, r, d: billing.cancel_payment(e, r, _metadata(d)),
    ("payments", "retry"): billing.retry_payment,
    ("subscriptions", "pause"): billing.pause_subscription,
    ("subscriptions", "resume"): lambda e, r, d: billing.resume_subscription(e, r, _metadata(d)),
    ("subscriptions", "cancel"): lambda e, r, d: billing.cancel_subscription(e, r, _metadata(d)),
}


def engine() -> Engine:
    return current_app.extensions["gateway_sim"].engine


def json_body() -> Any:
    """The parsed request body (``None`` when empty); 400 when it is not JSON."""
    raw = request.get_data()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise invalid_api_usage(400, "invalid_document_structure",
                                "Invalid document structure: body is not valid JSON") from None


def render(record: Record, status: int = 200) -> Response:
    eng = engine()
    with eng.store.lock:
        eng.refresh(record)
        body = {record.type: record.public()}
    response = jsonify(body)
    response.status_code = status
    return response


@bp.post(f"/<any({CREATABLE}):resource_type>")
def create(resource_type: str) -> Response:
    data = envelope(json_body(), resource_type)
    key = request.headers.get("Idempotency-Key") or None
    restrictions.check_create(engine().restricted, resource_type, data)
    record = CREATORS[resource_type](engine(), data, key)
    return render(record, 201)


@bp.get(f"/<any({READABLE}):resource_type>/<resource_id>")
def show(resource_type: str, resource_id: str) -> Response:
    return render(engine().store.get(resource_type, resource_id))


@bp.put(f"/<any({UPDATABLE}):resource_type>/<resource_id>")
def update(resource_type: str, resource_id: str) -> Response:
    eng = engine()
    record = eng.store.get(resource_type, resource_id)
    data = envelope(json_body(), resource_type)
    return render(UPDATERS[resource_type](eng, record, data))


@bp.delete("/customers/<resource_id>")
def remove_customer(resource_id: str) -> Response:
    eng = engine()
    data = action_data(json_body())
    with eng.store.lock:
        record = eng.store.get("customers", resource_id)
        payers.remove_customer(eng, record, _metadata(data))
        return render(record)


@bp.post(f"/<any({UPDATABLE}):resource_type>/<resource_id>/actions/<action>")
def act(resource_type: str, resource_id: str, action: str) -> Response:
    handler = ACTIONS.get((resource_type, action))
    if handler is None:
        raise invalid_api_usage(404, "path_not_found", f"{resource_type} have no action {action}")
    eng = engine()
    restrictions.check_action(eng.restricted, resource_type, action)
    data = action_data(json_body())
    return render(handler(eng, eng.store.get(resource_type, resource_id), data))


def _limit() -> int:
    raw = request.args.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(422, "validation_failed", "Validation failed",
                       [{"field": "limit", "message": f"must be between 1 and {MAX_LIMIT}",
                         "request_pointer": "/limit"}])
    return int(raw)


def _created_bounds() -> tuple[int | None, int | None]:
    low: int | None = None
    high: int | None = None
    for bound in CREATED_AT_BOUNDS:
        name = f"created_at[{bound}]"
        raw = request.args.get(name)
        if raw is None:
            continue
        try:
            value = parse_timestamp(raw)
        except ValueError:
            raise ApiError(422, "validation_failed", "Validation failed",
                           [{"field": name, "message": "must be an ISO 8601 timestamp",
                             "request_pointer": "/" + name}]) from None
        if bound in ("gt", "gte"):
            start = value + 1 if bound == "gt" else value
            low = start if low is None else max(low, start)
        else:
            end = value + 1 if bound == "lte" else value
            high = end if high is None else min(high, end)
    return low, high


def _matcher(resource_type: str) -> Callable[[Record], bool]:
    statuses = set(filter(None, request.args.get("status", "").split(",")))
    links = {name: request.args[name] for name in LINK_FILTERS if request.args.get(name)}
    plain = {}
    if resource_type == "events":
        plain = {name: request.args[name] for name in ("resource_type", "action")
                 if request.args.get(name)}

    def match(record: Record) -> bool:
        if record.extra.get("removed"):
            return False
        if statuses and record.status not in statuses:
            return False
        own_links = record.data.get("links") or {}
        for name, wanted in links.items():
            if (own_links.get(name) or record.extra.get(name)) != wanted:
                return False
        return all(record.data.get(name) == wanted for name, wanted in plain.items())

    return match


@bp.get(f"/<any({READABLE}):resource_type>")
def index(resource_type: str) -> Response:
    direction = request.args.get("sort_direction", "desc")
    if direction not in ("asc", "desc"):
        raise invalid_api_usage(400, "invalid_sort_direction", "sort_direction must be asc or desc")
    limit = _limit()
    low, high = _created_bounds()
    eng = engine()
    with eng.store.lock:
        page = eng.store.page(resource_type, _matcher(resource_type), limit=limit,
                              after=request.args.get("after"), before=request.args.get("before"),
                              descending=direction == "desc", created_from_us=low,
                              created_to_us=high)
        items = []
        for record in page.records:
            eng.refresh(record)
            items.append(record.public())
    return jsonify({resource_type: items,
                    "meta": {"cursors": {"before": page.before, "after": page.after},
                             "limit": limit}})
