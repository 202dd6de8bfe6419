"""The Salesforce emulator's declared org schema (sim/salesforce/metadata.py)."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from sim.salesforce import metadata
from sim.salesforce.metadata import FieldSpec, SObjectSpec
from sim.salesforce.schema import STANDARD_FIELDS, SYSTEM_FIELDS, Schema, SchemaError


def test_every_declared_sobject_is_served_with_its_key_prefix() -> None:
    schema = Schema.declared()
    prefixes = {t.name: t.key_prefix for t in schema.types()}
    assert prefixes == {
        "Contact": "003", "Bank_Account__c": "a0A", "Mandate__c": "a0B", "Payment__c": "a0C",
        "Subscription__c": "a0D", "Refund__c": "a0E", "Payout__c": "a0F",
    }
    assert Schema.from_mapping().types() == schema.types()


def test_fields_are_the_standard_ones_then_the_declared_ones_by_name() -> None:
    payout = Schema.declared().get("payout__C")
    assert payout is not None and payout.logical == "Payout"
    assert payout.fields == STANDARD_FIELDS + (
        "Amount__c", "Arrival_Date__c", "Gateway_Id__c", "Last_Event_Id__c",
        "Paybridge_Error__c", "Reference__c", "Status__c",
    )
    assert payout.read_only == SYSTEM_FIELDS
    amount = payout.spec("amount__c")
    assert amount is not None and (amount.name, amount.type) == ("Amount__c", "currency")
    assert payout.spec("Bogus__c") is None


def test_contact_name_is_compound_and_read_only() -> None:
    contact = Schema.declared().get("Contact")
    assert contact is not None
    assert contact.fields.count("Name") == 1 and "Name" in contact.read_only
    last_name = contact.spec("LastName")
    assert last_name is not None and last_name.required


def test_references_name_their_target() -> None:
    mandate = Schema.declared().get("Mandate__c")
    assert mandate is not None
    bank_account = mandate.spec("Bank_Account__c")
    assert bank_account is not None
    assert (bank_account.type, bank_account.reference_to) == ("reference", "Bank_Account__c")


def _with_field(spec: FieldSpec) -> list[SObjectSpec]:
    first, *rest = metadata.SOBJECTS
    return [replace(first, fields=(*first.fields, spec)), *rest]


@pytest.mark.parametrize(
    ("sobjects", "message"),
    [
        (_with_field(FieldSpec("X__c", "text")), "unknown field type"),
        (_with_field(FieldSpec("X__c", "reference")), "names (and must name) a target"),
        (_with_field(FieldSpec("X__c", "reference", reference_to="Nope__c")), "unknown sObject"),
        (_with_field(FieldSpec("X__c", "string", picklist=("a",))), "only a picklist"),
        (_with_field(FieldSpec("FirstName", "string")), "declares a field twice"),
        ([*metadata.SOBJECTS, replace(metadata.SOBJECTS[1], name="Other__c")], "unique"),
        ([replace(metadata.SOBJECTS[0], key_prefix="a0Z")], "standard key prefix"),
    ],
)
def test_an_inconsistent_declaration_is_refused(
    sobjects: list[SObjectSpec], message: str
) -> None:
    with pytest.raises(SchemaError, match=re.escape(message)):
        Schema.declared(sobjects)
