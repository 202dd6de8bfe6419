"""Request and response shapes of the bank-account API."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from queues.schemas import CRM_ID

_ID_ERROR = "must be a CRM or gateway id (1-64 letters, digits, _ . : -)"


class BankDetailField(fields.String):
    """A sort code or account number, handed on untouched (JSON null included).

    Documented as a string, but any value reaches the bank-details check, so that every
    problem with the details gets the same 422 naming the check, never a generic 400.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=True, allow_none=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        return value


class BankAccountRequestSchema(Schema):
    customer_id = fields.String(required=True, validate=validate.Regexp(CRM_ID, error=_ID_ERROR),
                                metadata={"description": "The customer's CRM (Contact) id or "
                                          "gateway id"})
    account_holder_name = fields.String(required=True, validate=[
        validate.Length(min=1, max=255), validate.Regexp(r".*\S", error="must not be blank")])
    sort_code = BankDetailField(metadata={
        "description": "6 digits; spaces and dashes are ignored", "example": "20-00-00"})
    account_number = BankDetailField(metadata={
        "description": "6 to 10 digits; spaces and dashes are ignored"})
    record_id = fields.String(load_default=None, validate=validate.Regexp(
        CRM_ID, error=_ID_ERROR), metadata={
        "description": "An existing Bank_Account__c record to fill in; without it, one is "
                       "created"})


class BankAccountSchema(Schema):
    record_id = fields.String(metadata={"description": "The Bank_Account__c record id"})
    gateway_id = fields.String()
    customer_id = fields.String()
    customer_gateway_id = fields.String()
    account_holder_name = fields.String()
    bank_name = fields.String(allow_none=True)
    account_number_ending = fields.String(metadata={"description": "The last two digits"})
    status = fields.String(allow_none=True)
    queue_item_id = fields.Integer(metadata={
        "description": "The API Queue item writing this back to the CRM"})


class ModulusInfoSchema(Schema):
    version = fields.String()
    source = fields.String()
    substitutions_source = fields.String()
    row_count = fields.Integer()
    substitution_count = fields.Integer()
    origin = fields.String(metadata={"description": "shipped, or configured by "
                                     "MODULUS_WEIGHTS_PATH / MODULUS_SUBSTITUTIONS_PATH"})
