"""Architecture checks: the import contracts, and the product's mapping against the org.

The Salesforce emulator declares its org's schema itself (``sim.salesforce.metadata``), so
the product's mapping table can be checked against it: every CRM field ``app.mapping``
reads or writes must exist on the emulated sObject, spelled as the org spells it, with a
type that fits what the product does with it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.mapping import (
    GATEWAY_ID_FIELD,
    LAST_EVENT_FIELD,
    OBJECTS,
    STATUS_FIELD,
    SYNC_ERROR_FIELD,
    FieldMap,
    ObjectMap,
    as_int,
    country_code,
    pence_to_pounds,
    pounds_to_pence,
)
from sim.salesforce.schema import Schema, SObjectType

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Schema.declared()

TEXT_TYPES = frozenset({"string", "textarea", "email", "phone", "picklist"})
NUMBER_TYPES = frozenset({"double"})
# What a CRM value must be for each converter the mapping applies to it (CRM -> gateway).
READ_CONVERTER_TYPES = {pounds_to_pence: {"currency"}, as_int: NUMBER_TYPES,
                        country_code: TEXT_TYPES}
# ... and for each converter applied to a gateway value written back to the CRM.
WRITE_CONVERTER_TYPES = {pence_to_pounds: {"currency"}}
# Written-back gateway booleans become labels: the values each converter is tried on.
LABEL_SAMPLES = {"enabled": (True, False)}


def test_import_contracts_hold() -> None:
    """``lint-imports`` with the contracts in pyproject.toml ([tool.importlinter])."""
    binary = Path(sys.executable).with_name("lint-imports")
    assert binary.exists(), f"{binary} is missing: pip install -r requirements-dev.txt"
    result = subprocess.run(
        [str(binary), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _sobject(obj: ObjectMap, schema: Schema) -> SObjectType:
    found = schema.get(obj.sobject)
    assert found is not None, f"{obj.name}: the org has no sObject {obj.sobject}"
    assert found.name == obj.sobject, f"{obj.name}: the org spells it {found.name}"
    return found


def _field_problem(sobject: SObjectType, name: str, allowed: set[str] | frozenset[str],
                   why: str) -> str | None:
    spec = sobject.spec(name)
    if spec is None:
        return f"{sobject.name}.{name}: no such field on the org ({why})"
    if spec.name != name:
        return f"{sobject.name}.{name}: the org spells it {spec.name}"
    if spec.type not in allowed:
        return f"{sobject.name}.{name}: is {spec.type}, {why} needs one of {sorted(allowed)}"
    return None


def _read_types(fm: FieldMap) -> tuple[frozenset[str] | set[str], str]:
    leaf = fm.gateway.rsplit(".", 1)[-1]
    if fm.link:
        return {"reference"}, f"a lookup of {fm.link}"
    if fm.to_gateway is not None:
        assert fm.to_gateway in READ_CONVERTER_TYPES, (
            f"{fm.crm}: converter {fm.to_gateway} is unknown to this test; add its CRM type")
        return READ_CONVERTER_TYPES[fm.to_gateway], f"converting with {fm.to_gateway.__name__}"
    if leaf.endswith("date"):
        return {"date"}, f"gateway date {fm.gateway}"
    return TEXT_TYPES, f"gateway text {fm.gateway}"


def _write_types(obj: ObjectMap, gateway_field: str) -> tuple[frozenset[str] | set[str], str]:
    converter = obj.writeback_converters.get(gateway_field)
    if converter in WRITE_CONVERTER_TYPES:
        return WRITE_CONVERTER_TYPES[converter], f"written back from {gateway_field}"
    if converter is not None:
        assert gateway_field in LABEL_SAMPLES, (
            f"{obj.name}.{gateway_field}: converter unknown to this test; add its CRM type")
        return {"picklist"}, f"a label written back from {gateway_field}"
    if gateway_field == "status":
        return {"picklist"}, "the status label written back"
    if gateway_field.endswith("date"):
        return {"date"}, f"gateway date {gateway_field} written back"
    return TEXT_TYPES - {"picklist"}, f"gateway text {gateway_field} written back"


def mapping_problems(obj: ObjectMap, schema: Schema = SCHEMA) -> list[str]:
    """Every way ``obj`` disagrees with the org's schema (empty: they agree); by default the
    emulator's built-in declaration."""
    sobject = _sobject(obj, schema)
    problems: list[str] = []
    if sobject.logical != obj.name:
        problems.append(f"{sobject.name}: the org's trigger reports it as {sobject.logical!r}, "
                        f"the product expects {obj.name!r}")

    for fm in obj.fields:  # read from the CRM record, sent to the gateway
        allowed, why = _read_types(fm)
        problem = _field_problem(sobject, fm.crm, allowed, why)
        if problem is None and fm.link:
            target = OBJECTS[fm.link].sobject
            spec = sobject.spec(fm.crm)
            assert spec is not None
            if spec.reference_to != target:
                problem = (f"{sobject.name}.{fm.crm}: refers to {spec.reference_to}, "
                           f"the product resolves it as a {target}")
        if problem is None and fm.gateway in obj.defaults:
            spec = sobject.spec(fm.crm)
            assert spec is not None
            default = obj.defaults[fm.gateway]
            if spec.picklist and default not in spec.picklist:
                problem = (f"{sobject.name}.{fm.crm}: the product's default {default!r} is "
                           f"not one of the org's values {list(spec.picklist)}")
        if problem:
            problems.append(problem)

    written: dict[str, tuple[frozenset[str] | set[str], str]] = {
        GATEWAY_ID_FIELD: (TEXT_TYPES - {"picklist"}, "the gateway id"),
        LAST_EVENT_FIELD: (TEXT_TYPES - {"picklist"}, "the last webhook event id"),
        SYNC_ERROR_FIELD: ({"string", "textarea"}, "the sync error text"),
    }
    if obj.has_status:
        written[STATUS_FIELD] = ({"picklist"}, "the status label")
    for gateway_field, crm in obj.writeback.items():
        allowed, why = _write_types(obj, gateway_field)
        if crm in written:
            allowed = set(allowed) & set(written[crm][0])
        written[crm] = (allowed, why)
        converter = obj.writeback_converters.get(gateway_field)
        spec = sobject.spec(crm)
        if converter is not None and gateway_field in LABEL_SAMPLES and spec is not None:
            labels = {converter(sample) for sample in LABEL_SAMPLES[gateway_field]}
            missing = labels - set(spec.picklist)
            if missing:
                problems.append(f"{sobject.name}.{crm}: the org's picklist lacks "
                                f"{sorted(missing)} ({why})")

    for crm, (allowed, why) in written.items():  # written onto the CRM record
        problem = _field_problem(sobject, crm, allowed, why)
        if problem is None and crm in sobject.read_only:
            problem = f"{sobject.name}.{crm}: is read-only on the org, the product writes it"
        if problem:
            problems.append(problem)

    for crm in obj.crm_fields - {fm.crm for fm in obj.fields} - set(written):
        problems.append(f"{sobject.name}.{crm}: carried by the mapping but not checked here")
    return problems


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_mapping_matches_the_orgs_declared_schema(name: str) -> None:
    assert mapping_problems(OBJECTS[name]) == []


def test_the_orgs_trigger_watches_exactly_the_mapped_objects() -> None:
    watched = {t.logical: t.name for t in SCHEMA.types() if t.logical is not None}
    assert watched == {obj.name: obj.sobject for obj in OBJECTS.values()}


def test_a_wrong_field_name_in_the_mapping_is_caught() -> None:
    """The cross-check itself: a misspelt or mistyped mapping entry is reported."""
    payment = OBJECTS["Payment"]
    wrong_name = FieldMap("Charge_Day__c", "charge_date", on_update=False)
    wrong_type = FieldMap("Description__c", "amount", pounds_to_pence, on_update=False)
    broken = ObjectMap(
        name=payment.name, sobject=payment.sobject, resource=payment.resource,
        fields=(*payment.fields, wrong_name, wrong_type),
        writeback={**payment.writeback, "amount_refunded": "Refunded__c"},
        defaults=payment.defaults,
    )
    problems = "\n".join(mapping_problems(broken))
    assert "Payment__c.Charge_Day__c: no such field" in problems
    assert "Payment__c.Description__c: is string" in problems
    assert "Payment__c.Refunded__c: no such field" in problems
