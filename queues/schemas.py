"""Request and response shapes of the API Queue endpoints."""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.mapping import OBJECTS, QUEUEABLE_OBJECTS, MappingError, to_gateway
from app.schemas import ROW_ID
from queues.models import OPERATIONS, STATUSES

CRM_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
OPERATION_ALIASES = {"cancel": "delete"}
MAX_FIELDS = 500


def _scalar_map(value: Any) -> None:
    if len(value) > MAX_FIELDS:
        raise ValidationError(f"at most {MAX_FIELDS} fields")
    for key, item in value.items():
        if not isinstance(key, str) or not key or len(key) > 100:
            raise ValidationError("field names must be non-empty strings of up to 100 characters")
        if item is not None and not isinstance(item, str | int | float | bool):
            raise ValidationError(f"{key}: values must be text, numbers, booleans or null")
        if isinstance(item, str) and len(item) > 32000:
            raise ValidationError(f"{key}: values are limited to 32,000 characters")


class ChangeSchema(Schema):
    object = fields.String(required=True, validate=validate.OneOf(QUEUEABLE_OBJECTS))
    record_id = fields.String(required=True, validate=validate.Regexp(
        CRM_ID, error="must be a CRM record id (1-64 letters, digits, _ . : -)"))
    operation = fields.String(required=True, validate=validate.OneOf(
        (*OPERATIONS, *OPERATION_ALIASES)))
    previous_fields = fields.Dict(load_default=None, allow_none=True, validate=_scalar_map)
    # Declared last: the attribute name shadows marshmallow's ``fields`` module in the class.
    fields = fields.Dict(required=True, validate=_scalar_map)

    @validates_schema
    def _values_convert(self, data: dict[str, Any], **_: Any) -> None:
        """Catch values the gateway mapping cannot convert now, not at the first attempt."""
        obj = OBJECTS.get(data.get("object", ""))
        if obj is None or "fields" not in data:
            return
        try:
            to_gateway(obj, data["fields"], lambda _o, crm_id: crm_id)
        except MappingError as exc:
            raise ValidationError({"fields": {exc.crm_field: [exc.message]}}) from exc


class QueueRequestSchema(Schema):
    changes = fields.List(fields.Nested(ChangeSchema), required=True,
                          validate=validate.Length(min=1, max=200))


class QueuedItemSchema(Schema):
    id = fields.Integer()
    object = fields.String()
    record_id = fields.String()
    operation = fields.String()
    status = fields.String()


class QueueResponseSchema(Schema):
    items = fields.List(fields.Nested(QueuedItemSchema))


class ItemQuerySchema(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    object = fields.String(load_default=None, validate=validate.OneOf(QUEUEABLE_OBJECTS))
    record_id = fields.String(load_default=None, validate=validate.Length(max=64))
    error = fields.String(load_default=None, validate=validate.Length(max=200),
                          metadata={"description": "text within the last error, any case"})
    since = fields.AwareDateTime(load_default=None, default_timezone=UTC,
                                 metadata={"description": "created at or after"})
    until = fields.AwareDateTime(load_default=None, default_timezone=UTC,
                                 metadata={"description": "created before"})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    before_id = fields.Integer(load_default=None, validate=ROW_ID)


class ItemSchema(Schema):
    id = fields.Integer()
    object = fields.String()
    record_id = fields.String()
    operation = fields.String()
    status = fields.String()
    stage = fields.String()
    gateway_id = fields.String(allow_none=True)
    attempts = fields.Integer()
    next_attempt_at = fields.String()
    last_error = fields.String(allow_none=True)
    discard_reason = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()


class ItemDetailSchema(ItemSchema):
    previous_fields = fields.Dict(allow_none=True)
    result = fields.Dict(allow_none=True)
    error_log = fields.List(fields.Dict())
    leased_until = fields.String(allow_none=True)
    fields = fields.Dict()  # last: it shadows the module name inside the class body


class ItemListSchema(Schema):
    items = fields.List(fields.Nested(ItemSchema))
    next_before_id = fields.Integer(allow_none=True)


class ReprocessSchema(Schema):
    ids = fields.List(fields.Integer(validate=ROW_ID), load_default=None,
                      validate=validate.Length(max=10000))
    object = fields.String(load_default=None, validate=validate.OneOf(QUEUEABLE_OBJECTS))


class ItemEditSchema(Schema):
    """A Failed item's new snapshot; validated by ChangeSchema, as at intake."""

    previous_fields = fields.Dict(load_default=None, allow_none=True)
    fields = fields.Dict(required=True)  # last: it shadows the module name inside the class


class ReprocessResultSchema(Schema):
    reprocessed = fields.List(fields.Integer())
