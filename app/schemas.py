"""Schemas shared by more than one feature's endpoints."""

from marshmallow import Schema, fields, validate

MAX_ID = 2**63 - 1  # a BIGINT; larger numbers name no row (and would overflow the driver)
ROW_ID = validate.Range(min=1, max=MAX_ID)


class DiscardSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))
