"""Shapes of gateway event batches and of the admin webhook-event endpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, fields, validate

from app.schemas import ROW_ID
from webhooks.models import STATUSES

MAX_EVENTS = 1000


class EventSchema(Schema):
    """One GoCardless-format event. Unknown keys are kept (stored with the event)."""

    class Meta:
        unknown = "include"

    id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    created_at = fields.AwareDateTime(required=True, format="iso", default_timezone=None)
    resource_type = fields.String(required=True, validate=validate.Length(min=1, max=48))
    action = fields.String(required=True, validate=validate.Length(min=1, max=64))
    links = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True),
                        required=True)
    details = fields.Dict(load_default=dict)


class BatchSchema(Schema):
    class Meta:
        unknown = "exclude"

    events = fields.List(fields.Nested(EventSchema), required=True,
                         validate=validate.Length(min=1, max=MAX_EVENTS))


_batch = BatchSchema()
_NO_DETAILS: Any = object()


def load_events(document: Any) -> list[dict[str, Any]]:
    """The events of a decoded delivery body, validated by BatchSchema's rules; raises its
    ValidationError (field by field) for a delivery that breaks one.

    Marshmallow spends ~30 us per event walking its fields; a delivery that plainly keeps
    every rule (the gateway's every delivery) is checked here in a few, and anything else
    goes through BatchSchema itself, so what is accepted and every error message stay the
    schema's. tests/unit/test_webhook_schemas.py holds the two to the same answers."""
    events = document.get("events") if isinstance(document, dict) else None
    if isinstance(events, list) and 1 <= len(events) <= MAX_EVENTS:
        parsed = [_plain_event(e) for e in events]
        if None not in parsed:
            return parsed  # type: ignore[return-value]
    return _batch.load(document if isinstance(document, dict) else {"events": None})["events"]


def _plain_event(event: Any) -> dict[str, Any] | None:
    """EventSchema's load of ``event`` when it keeps every rule with plain JSON values;
    None when it may not (BatchSchema then decides and names the field)."""
    if type(event) is not dict:
        return None
    id_, kind, action = event.get("id"), event.get("resource_type"), event.get("action")
    links, details = event.get("links"), event.get("details", _NO_DETAILS)
    created = event.get("created_at")
    if not (type(id_) is str and 0 < len(id_) <= 64 and type(kind) is str
            and 0 < len(kind) <= 48 and type(action) is str and 0 < len(action) <= 64
            and type(links) is dict and type(created) is str
            and (details is _NO_DETAILS or type(details) is dict)):
        return None
    for key, value in links.items():
        if type(key) is not str or (value is not None and type(value) is not str):
            return None
    try:
        when = datetime.fromisoformat(created)  # AwareDateTime(format="iso") parses so
    except ValueError:
        return None
    if when.tzinfo is None or when.tzinfo.utcoffset(when) is None:
        return None
    return {**event, "created_at": when, "links": dict(links),
            "details": {} if details is _NO_DETAILS else dict(details)}


class EventQuerySchema(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    resource_type = fields.String(load_default=None, validate=validate.Length(max=48))
    resource_id = fields.String(load_default=None, validate=validate.Length(max=64))
    error = fields.String(load_default=None, validate=validate.Length(max=200),
                          metadata={"description": "text within the last error, any case"})
    since = fields.AwareDateTime(load_default=None, default_timezone=UTC,
                                 metadata={"description": "received at or after"})
    until = fields.AwareDateTime(load_default=None, default_timezone=UTC,
                                 metadata={"description": "received before"})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    before_id = fields.Integer(load_default=None, validate=ROW_ID)


class EventRowSchema(Schema):
    id = fields.Integer()
    event_id = fields.String()
    endpoint = fields.String()
    resource_type = fields.String()
    resource_id = fields.String(allow_none=True)
    action = fields.String()
    event_time = fields.String()
    status = fields.String()
    stage = fields.String()
    reason = fields.String(allow_none=True)
    attempts = fields.Integer()
    next_attempt_at = fields.String()
    last_error = fields.String(allow_none=True)
    discard_reason = fields.String(allow_none=True)
    received_at = fields.String()
    updated_at = fields.String()


class EventDetailSchema(EventRowSchema):
    payload = fields.Dict()
    error_log = fields.List(fields.Dict())
    delivery_id = fields.String()


class EventListSchema(Schema):
    items = fields.List(fields.Nested(EventRowSchema))
    next_before_id = fields.Integer(allow_none=True)


class EventReprocessSchema(Schema):
    ids = fields.List(fields.Integer(validate=ROW_ID), load_default=None,
                      validate=validate.Length(max=10000))
    resource_type = fields.String(load_default=None, validate=validate.Length(max=48))
