"""Shapes of gateway event batches and of the admin webhook-event endpoints."""

from __future__ import annotations

from datetime import UTC

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
