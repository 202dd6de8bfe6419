"""Gateway webhook intake (signed, no API key) and the admin webhook-event endpoints."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app, g, request
from flask_smorest import Blueprint
from marshmallow import ValidationError

from app.api import flatten
from app.auth import require_key
from app.client_address import allowed, client_address
from app.errors import AppError, Forbidden, NotFound, ValidationFailed
from app.schemas import DiscardSchema
from webhooks import intake, service
from webhooks.schemas import (
    EventDetailSchema,
    EventListSchema,
    EventQuerySchema,
    EventReprocessSchema,
    load_events,
)
from webhooks.signature import verify

intake_blp = Blueprint("webhooks", __name__, url_prefix="/webhooks",
                       description="Gateway webhooks (HMAC-signed event batches)")
admin_blp = Blueprint("webhook_events", __name__, url_prefix="/api/v1",
                      description="Webhook Events (admin)")


def _rt() -> Any:
    return current_app.extensions["paybridge"]


def _secrets(endpoint: str) -> list[str]:
    s = _rt().settings
    if endpoint != "gocardless":
        raise NotFound(f"no webhook endpoint named {endpoint!r}")
    return [s.webhook_secret, s.webhook_secret_previous]


class InvalidSignature(AppError):
    status = 498  # what GoCardless expects for a bad signature
    code = "invalid_signature"


class SourceNotAllowed(Forbidden):
    code = "source_not_allowed"


def _check_source() -> None:
    """WEBHOOK_ALLOWED_CIDRS, when set: a request from elsewhere is refused before its body
    is looked at, whatever its signature."""
    s = _rt().settings
    if not s.webhook_allowed_cidrs:
        return
    address = client_address(request.remote_addr, request.headers.get("X-Forwarded-For"),
                             s.trusted_proxy_count)
    if not allowed(address, s.webhook_allowed_cidrs):
        raise SourceNotAllowed(
            f"webhooks are accepted only from the networks in WEBHOOK_ALLOWED_CIDRS; this "
            f"request came from {address or 'an unreadable address'}")


def _not_json(name: str) -> Any:
    """Python's parser takes NaN and Infinity, which JSON has not (RFC 8259 section 6);
    stored, they would be changed or refused by the database: the delivery is refused."""
    raise ValueError(f"{name} is not a JSON number")


@intake_blp.route("/<string:endpoint>", methods=["POST"])
@intake_blp.doc(security=[], responses={204: {"description": "stored"}, 400: {}, 413: {},
                                        403: {"description": "source not allowed"},
                                        498: {"description": "invalid signature"}})
def receive(endpoint: str) -> Response:
    """Receive a signed batch of gateway events; store them all, apply nothing here."""
    secrets = _secrets(endpoint)
    _check_source()
    body = request.get_data(cache=False)  # at most WEBHOOK_MAX_BYTES (app.body_limits)
    if not verify(body, request.headers.get("Webhook-Signature"), secrets):
        raise InvalidSignature("missing or invalid Webhook-Signature")
    try:
        document = json.loads(body, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"body is not valid JSON: {exc}") from exc
    try:
        parsed = load_events(document)
    except ValidationError as exc:
        fields = flatten(exc.messages)
        name, messages = next(iter(fields.items()))
        raise ValidationFailed(f"{name}: {messages[0]}", details={"fields": fields}) from exc
    intake.ingest(_rt(), endpoint, document["events"], parsed)
    return Response(status=204)


@admin_blp.route("/webhook-events", methods=["GET"])
@require_key("admin", "operations")
@admin_blp.arguments(EventQuerySchema, location="query")
@admin_blp.response(200, EventListSchema)
def list_events(query: dict[str, Any]) -> dict[str, Any]:
    """List webhook events, newest first, by status / resource / error / date."""
    rows = service.list_events(_rt().db, **query)
    more = len(rows) == query["limit"]
    return {"items": [r.to_dict() for r in rows],
            "next_before_id": rows[-1].id if rows and more else None}


@admin_blp.route("/webhook-events/<int:row_id>", methods=["GET"])
@require_key("admin", "operations")
@admin_blp.response(200, EventDetailSchema)
def get_event(row_id: int) -> dict[str, Any]:
    """One webhook event with its payload and the log of every attempt."""
    row = service.get_event(_rt().db, row_id)
    if row is None:
        raise NotFound(f"webhook event {row_id} does not exist (applied events are deleted)")
    return row.to_dict(detail=True)


@admin_blp.route("/webhook-events/<int:row_id>/reprocess", methods=["POST"])
@require_key("admin")
@admin_blp.response(200, EventReprocessSchema)
def reprocess_one(row_id: int) -> dict[str, Any]:
    """Reprocess one Failed webhook event now."""
    done = service.reprocess(_rt(), ids=[row_id], actor=g.api_key_name)
    if not done:
        raise NotFound(f"webhook event {row_id} is not Failed (or does not exist)")
    return {"ids": done}


@admin_blp.route("/webhook-events/reprocess", methods=["POST"])
@require_key("admin")
@admin_blp.arguments(EventReprocessSchema)
@admin_blp.response(200, EventReprocessSchema)
def reprocess_many(body: dict[str, Any]) -> dict[str, Any]:
    """Reprocess every Failed webhook event matching the filter."""
    return {"ids": service.reprocess(_rt(), ids=body["ids"],
                                     resource_type=body["resource_type"],
                                     actor=g.api_key_name)}


@admin_blp.route("/webhook-events/<int:row_id>/discard", methods=["POST"])
@require_key("admin")
@admin_blp.arguments(DiscardSchema)
@admin_blp.response(200, EventDetailSchema)
def discard(body: dict[str, Any], row_id: int) -> dict[str, Any]:
    """Discard one Failed webhook event, with a reason."""
    try:
        row = service.discard(_rt().db, row_id, body["reason"], actor=g.api_key_name)
    except ValueError as exc:
        raise ValidationFailed(str(exc), code="invalid_state") from exc
    if row is None:
        raise NotFound(f"webhook event {row_id} does not exist")
    return row.to_dict(detail=True)
