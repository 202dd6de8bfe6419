"""Comparing one CRM record with its gateway resource, in one form.

The gateway side is kept as the values at the gateway paths the mapping names (never a
bank-detail field), so it can be staged in the database. The CRM side is put into gateway
form with the mapping's own ``to_gateway`` (its converters, defaults, and the rule that the
first CRM field with a value feeds a shared gateway field); fields the gateway writes back
(status, charge date, reference...) are compared in CRM form with ``writeback_fields``.
Who owns a field decides the repair: the gateway owns what it writes back, the CRM owns the
fields an update may send, and the rest can only be put right by an admin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from app.mapping import (
    GATEWAY_ID_FIELD,
    STATUS_FIELD,
    MappingError,
    ObjectMap,
    to_gateway,
    writeback_fields,
)
from app.redaction import redact, redact_value, sensitive_key
from queues.polling import captured_fields
from reconcile import kinds
from reconcile.kinds import Finding

# The documented second match for a CRM record without a gateway id, after metadata.crm_id:
# object -> (CRM field, gateway field), compared case-insensitively.
MATCH_KEYS: dict[str, tuple[str, str]] = {"Customer": ("Email", "email")}


class UnknownLink(Exception):
    """A lookup whose parent's gateway id is not known: that field is not compared."""


def crm_select(obj: ObjectMap) -> list[str]:
    """The CRM fields read per record: the mapped ones, never bank details."""
    return ["Id", *(f for f in captured_fields(obj) if f != "Id")]


def gateway_paths(obj: ObjectMap) -> list[str]:
    paths = [fm.gateway for fm in obj.fields if not fm.sensitive]
    paths += [g for g in obj.writeback if g != "id"]
    return [p for p in dict.fromkeys(paths) if not sensitive_key(p.rsplit(".", 1)[-1])]


def _path(resource: Mapping[str, Any], dotted: str) -> Any:
    value: Any = resource
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def match_key(value: Any) -> str | None:
    text = str(value).strip().lower() if value not in (None, "") else ""
    return text[:320] or None


def staged(obj: ObjectMap, resource: Mapping[str, Any]) -> dict[str, Any]:
    """The staging row of one gateway resource (values masked, as everything stored is)."""
    values = {p: _path(resource, p) for p in gateway_paths(obj)}
    metadata = resource.get("metadata") or {}
    match = MATCH_KEYS.get(obj.name)
    return {
        "gateway_id": str(resource["id"]),
        "crm_id": str(metadata["crm_id"])[:64] if metadata.get("crm_id") else None,
        "match_key": match_key(values.get(match[1])) if match else None,
        "data": redact_value({"status": resource.get("status"), "values": values}),
    }


def same(a: Any, b: Any) -> bool:
    """Equal once put in one form: empty is empty, 12.5 == 12.50 == "12.5", text trimmed."""
    return _norm(a) == _norm(b)


def _norm(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float | Decimal):
        try:
            return format(Decimal(str(value)).normalize(), "f")
        except InvalidOperation:
            return str(value)
    return str(value).strip()


def shown(value: Any) -> str | None:
    """A value as a difference row stores it: text, bank details masked."""
    return None if value is None else redact(str(value))[:2000]


def compare(obj: ObjectMap, record: Mapping[str, Any], data: Mapping[str, Any],
            resolve_link: Callable[[str, str], str | None],
            labels: Mapping[str, str] | None = None) -> list[Finding]:
    """Every field and status on which a linked pair disagrees."""
    crm_id, gateway_id = str(record["Id"]), str(record.get(GATEWAY_ID_FIELD))
    values: Mapping[str, Any] = data.get("values") or {}
    found: list[Finding] = []

    def add(kind: str, repair: str, field: str, crm: Any, gw: Any, note: str) -> None:
        found.append(Finding(obj.name, kind, repair, crm_id, gateway_id, field, shown(crm),
                             shown(gw), note))

    written_back = {obj.writeback[g] for g in obj.writeback if g != "id"}
    resource = {**{p: v for p, v in values.items() if "." not in p},
                "status": data.get("status")}
    wanted = writeback_fields(obj, resource, labels)
    for crm_field in dict.fromkeys(obj.writeback.values()):
        # A field the gateway leaves empty is empty in the CRM too (the write-back sets it).
        gw_value = wanted.get(crm_field)
        if crm_field == GATEWAY_ID_FIELD or same(record.get(crm_field), gw_value):
            continue
        if crm_field == STATUS_FIELD:
            repair = kinds.HEAL if "status" in obj.writeback else kinds.WRITE_BACK
            add(kinds.STATUS, repair, crm_field, record.get(crm_field), gw_value,
                "the gateway's status is the truth: the CRM record is brought to it")
        else:
            add(kinds.FIELD, kinds.WRITE_BACK, crm_field, record.get(crm_field), gw_value,
                "the gateway sets this field: its value is written onto the CRM record")
    _sent_fields(obj, record, values, resolve_link, written_back, add)
    return found


def _sent_fields(obj: ObjectMap, record: Mapping[str, Any], values: Mapping[str, Any],
                 resolve_link: Callable[[str, str], str | None], written_back: set[str],
                 add: Callable[..., None]) -> None:
    """The fields the CRM sends, in gateway form. An empty CRM field is not compared: an
    update never sends one (the gateway keeps its own value or default)."""

    def resolve(parent: str, parent_crm_id: str) -> str:
        found = resolve_link(parent, parent_crm_id)
        if found is None:
            raise UnknownLink(parent_crm_id)
        return found

    plain = {k: v for k, v in record.items() if k not in obj.sensitive_crm_fields}
    body: dict[str, Any] = {}
    for fm in obj.fields:
        if fm.sensitive or fm.crm in written_back or plain.get(fm.crm) in (None, ""):
            continue
        try:
            part = to_gateway(obj, plain, resolve, only=[fm.crm])
        except UnknownLink:
            continue
        except MappingError as exc:
            add(kinds.FIELD, kinds.ADMIN, fm.crm, plain.get(fm.crm), values.get(fm.gateway),
                f"the CRM value cannot be sent: {exc.message}")
            continue
        if fm.gateway in body:  # an earlier CRM field already feeds this gateway field
            continue
        body[fm.gateway] = _path(part, fm.gateway)
        if same(body[fm.gateway], values.get(fm.gateway)):
            continue
        if fm.on_update:
            add(kinds.FIELD, kinds.QUEUE_UPDATE, fm.crm, plain.get(fm.crm),
                values.get(fm.gateway), "the CRM owns this field: an update sends it again")
        else:
            add(kinds.FIELD, kinds.ADMIN, fm.crm, plain.get(fm.crm), values.get(fm.gateway),
                f"the gateway cannot change {fm.gateway} of a {obj.resource[:-1]}: correct "
                "the CRM record, or cancel and create it again")

