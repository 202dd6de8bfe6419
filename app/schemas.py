"""Schemas shared by more than one feature's endpoints."""

from marshmallow import Schema, fields, validate


class DiscardSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))
