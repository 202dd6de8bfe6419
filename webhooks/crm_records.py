"""Creating CRM records for gateway resources the CRM does not have yet.

A payment created by a gateway-side subscription, or a mandate set up on a hosted page,
arrives first as an event. Its CRM record is created once, linked to its parent records
(created the same way when they are missing too), with only non-sensitive fields.
Exactly once: before creating, the CRM is asked whether a record with that gateway id
already exists (a previous attempt may have created it and then failed to say so).
"""

from __future__ import annotations

from typing import Any

from app.clients.errors import TransientError
from app.mapping import (
    GATEWAY_ID_FIELD,
    OBJECTS,
    ObjectMap,
    country_code,
    country_name,
    pence_to_pounds,
    pounds_to_pence,
    writeback_fields,
)
from app.records import refs
from app.records import service as records
from app.workrows.leases import Lease, LeaseLost
from webhooks import service

INVERSE = {pounds_to_pence: pence_to_pounds, country_code: country_name}
MAX_DEPTH = 4  # payment -> mandate -> bank account -> customer


def _path(resource: dict[str, Any], dotted: str) -> Any:
    value: Any = resource
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def crm_fields_for(obj: ObjectMap, resource: dict[str, Any],
                   labels: dict[str, str]) -> dict[str, Any]:
    """Plain (non-link, non-sensitive) fields back in CRM units, plus the write-back ones;
    a field the CRM requires that stays empty is filled from the mapping's fallbacks."""
    fields: dict[str, Any] = {}
    for fm in obj.fields:
        if fm.link or fm.sensitive or not fm.to_crm:
            continue
        value = _path(resource, fm.gateway)
        if value is not None:
            inverse = INVERSE.get(fm.to_gateway) if fm.to_gateway else None
            fields[fm.crm] = inverse(value) if inverse else value
    for crm, sources in obj.crm_fallbacks.items():
        if fields.get(crm) in (None, ""):
            found = next((v for v in (_path(resource, g) for g in sources) if v), None)
            if found is not None:
                fields[crm] = found
    fields.update(writeback_fields(obj, resource, labels))
    return fields


def ensure_crm_record(ctx: Any, obj_name: str, gateway_id: str, labels: dict[str, str],
                      lease: Lease, depth: int = 0,
                      resource: dict[str, Any] | None = None) -> str:
    """The CRM id of the record for this gateway resource, creating it (and parents) if new.

    ``ctx`` is the webhook context (db, gateway, crm, settings). The caller holds the
    resource's lease; a parent is leased here while it is created, so two jobs needing the
    same new parent never create it twice (the loser retries). ``resource``: the resource
    as the caller just fetched it (not fetched again).
    """
    with ctx.db.transaction() as session:
        link = records.find_link(session, obj_name, gateway_id=gateway_id)
        if link and link.crm_id:
            return link.crm_id
    if depth == 0:
        return _create(ctx, obj_name, gateway_id, labels, lease, depth, resource)
    if not service.acquire_resource(ctx.db, obj_name, gateway_id, lease):
        raise TransientError(f"{obj_name} {gateway_id} is being created by another job")
    try:
        return _create(ctx, obj_name, gateway_id, labels, lease, depth)
    finally:
        service.release_resource(ctx.db, obj_name, gateway_id, lease)


def _create(ctx: Any, obj_name: str, gateway_id: str, labels: dict[str, str], lease: Lease,
            depth: int, fetched: dict[str, Any] | None = None) -> str:
    with ctx.db.transaction() as session:
        link = records.find_link(session, obj_name, gateway_id=gateway_id)
        if link and link.crm_id:  # created while we waited for the lease
            return link.crm_id
    obj = OBJECTS[obj_name]
    budget = ctx.settings.partner_call_budget
    resource = fetched
    if resource is None:
        lease.ensure(ctx.db, budget)
        resource = ctx.gateway.get(obj.resource, gateway_id)
    lease.ensure(ctx.db, budget)
    crm_id = (resource.get("metadata") or {}).get("crm_id") or ctx.crm.find_id(
        obj.sobject, GATEWAY_ID_FIELD, gateway_id)
    if not crm_id:
        fields = crm_fields_for(obj, resource, labels)
        for fm in obj.fields:
            parent_gateway_id = _path(resource, fm.gateway) if fm.link else None
            if parent_gateway_id and depth < MAX_DEPTH and fm.link:
                fields[fm.crm] = ensure_crm_record(ctx, fm.link, str(parent_gateway_id),
                                                   labels, lease, depth + 1)
        lease.ensure(ctx.db, budget)
        crm_id = ctx.crm.create(obj.sobject, fields)
    with ctx.db.transaction() as session:
        if not service.holds_resource(session, obj_name, gateway_id, lease):
            # Another job holds the resource now; it finds this record by its gateway id.
            lease.drop("crm record link", gateway_id=gateway_id)
            raise LeaseLost(f"{obj_name} {gateway_id} was taken over while its record was made")
        records.upsert_link(session, obj_name, crm_id=str(crm_id), gateway_id=gateway_id)
        refs.note(session, obj_name, resource)
    return str(crm_id)
