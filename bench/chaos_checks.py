"""What the chaos run must prove, checked against the emulators and the database."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from app.mapping import OBJECTS, SOBJECT_TO_OBJECT, status_label
from app.records.models import RecordLink, StatusHistory
from bench.leak_sweep import Needles, sweep
from bench.stack import Stack
from queues.models import QueueItem
from webhooks.lifecycles import lifecycle_for
from webhooks.models import WebhookEvent

CHECKED = {"Mandate__c": ("mandates", "Mandate"), "Payment__c": ("payments", "Payment")}


def verify(stack: Stack, created: dict[str, list[str]], *, drained_in: float, drained: bool,
           faults: list[dict[str, Any]], left: dict[str, Any] | None = None,
           bank_details: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """``left``: what was still in flight when the drain wait gave up (if it did);
    ``bank_details``: the (sort code, account number) pairs the run used, swept for."""
    figures: dict[str, Any] = {"drained": drained, "drain_after_last_fault_s": round(drained_in, 1),
                               "faults_injected": len(faults),
                               "fault_errors": [f for f in faults if "error" in f]}
    broken: list[str] = []
    crm = {sobject: {r["Id"]: r for r in stack.sf_call("GET", f"/sim/records/{sobject}")
                     ["records"]} for sobject in created}

    sent = sum(len(ids) for ids in created.values())
    confirmed = sum(1 for sobject, ids in created.items() for i in ids
                    if crm[sobject].get(i, {}).get("Gateway_Id__c"))
    figures.update(records_sent=sent, records_confirmed=confirmed)
    if confirmed != sent:
        broken.append(f"{sent - confirmed} CRM records never got their gateway id")

    per_crm = stack.gw_sim("GET", "/stats")["resources_per_crm_id"]
    queued = [i for sobject, ids in created.items() if sobject != "Bank_Account__c" for i in ids]
    duplicates = {i: per_crm.get(i) for i in queued if per_crm.get(i) != 1}
    figures["gateway_resources_per_crm_record_not_1"] = len(duplicates)
    if duplicates:
        broken.append(f"gateway resources per CRM record not 1: {list(duplicates.items())[:5]}")

    doubled = _gateway_ids_on_several_records(crm)
    figures["gateway_resources_with_several_crm_records"] = len(doubled)
    if doubled:
        broken.append(f"one gateway resource, several CRM records: {doubled[:5]}")

    compared: list[int] = []
    mismatched = (_final_state_mismatches(stack, crm)
                  + _field_mismatches(stack, crm, compared))
    figures["crm_fields_compared_with_gateway"] = sum(compared)
    figures["crm_records_differing_from_gateway"] = len(mismatched)
    if mismatched:
        broken.append(f"CRM differs from the gateway: {mismatched[:5]}")

    with stack.rt.db.transaction() as session:
        figures.update(_event_counts(session))
        illegal = _illegal_histories(session)
        failed_items = [(q.id, q.object, q.last_error) for q in session.scalars(
            sa.select(QueueItem).where(QueueItem.status == "failed"))]
        failed_events = [(e.id, e.resource_type, e.action, e.last_error) for e in session.scalars(
            sa.select(WebhookEvent).where(WebhookEvent.status == "failed"))]
        forged = session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent).where(
            WebhookEvent.event_id.like("EVFORGED%")))
        forged += session.scalar(sa.select(sa.func.count()).select_from(StatusHistory).where(
            StatusHistory.event_id.like("EVFORGED%")))
    figures.update(histories_with_illegal_or_skipped_moves=len(illegal),
                   items_left_failed=failed_items, events_left_failed=failed_events,
                   forged_events_stored=forged)
    if illegal:
        broken.append(f"histories with illegal or skipped moves: {illegal[:5]}")
    if failed_items or failed_events:
        broken.append("left Failed, not meant to fail: "
                      f"{(failed_items + failed_events)[:5]}")
    if forged:
        broken.append(f"{forged} forged events stored")
    if not drained:
        broken.append(f"the queues did not drain in time; left: {left}")
    if bank_details:
        leaks = sweep(Needles.of(bank_details), engine=stack.rt.db.engine,
                      redis_conn=stack.rt.redis, crm_get=lambda path: stack.sf_call("GET", path),
                      log_dir=stack.home / "log")
        figures["bank_detail_leaks"] = len(leaks)
        if leaks:
            broken.append(f"bank details found where none may be: {leaks[:5]}")
    figures["fault_effects"] = _fault_effects(stack)
    return {"ok": not broken, "broken": broken, "figures": figures, "faults": faults}


def _final_state_mismatches(stack: Stack, crm: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    for sobject, (resource, _) in CHECKED.items():
        gateway = {r["id"]: r for r in stack.gw_sim("GET", f"/resources/{resource}")[resource]}
        for record in crm.get(sobject, {}).values():
            gid = record.get("Gateway_Id__c")
            if gid in gateway:
                want = status_label(gateway[gid]["status"])
                if record.get("Status__c") != want:
                    out.append(f"{sobject} {record['Id']}: CRM {record.get('Status__c')} "
                               f"gateway {want}")
    return out


def _gateway_ids_on_several_records(crm: dict[str, dict[str, Any]]) -> list[str]:
    """Every gateway resource, queued or gateway-originated, has at most one CRM record."""
    out = []
    for sobject, records in crm.items():
        seen: dict[str, list[str]] = defaultdict(list)
        for record in records.values():
            if record.get("Gateway_Id__c"):
                seen[record["Gateway_Id__c"]].append(record["Id"])
        out += [f"{sobject} {gid}: {ids}" for gid, ids in seen.items() if len(ids) > 1]
    return out


def _field_mismatches(stack: Stack, crm: dict[str, dict[str, Any]],
                      compared: list[int]) -> list[str]:
    """Every mapped field a CRM record holds reached its gateway resource, converted as the
    mapping converts it (the last update included: an update lost or half-sent shows here)."""
    out = []
    for sobject, records in crm.items():
        obj = OBJECTS[SOBJECT_TO_OBJECT[sobject]]
        gateway = {r["id"]: r for r in stack.gw_sim("GET", f"/resources/{obj.resource}")
                   [obj.resource]}
        for record in records.values():
            resource = gateway.get(record.get("Gateway_Id__c") or "")
            if resource is None:
                continue
            for fm in obj.fields:
                value = record.get(fm.crm)
                if fm.link or fm.sensitive or value in (None, ""):
                    continue
                want = fm.to_gateway(value) if fm.to_gateway else value
                got: Any = resource
                for part in fm.gateway.split("."):
                    got = got.get(part) if isinstance(got, dict) else None
                compared.append(1)
                if got != want:
                    out.append(f"{sobject} {record['Id']}.{fm.crm}: CRM {want!r} "
                               f"gateway {got!r}")
    return out


def _event_counts(session: Any) -> dict[str, int]:
    applied = session.scalar(sa.select(sa.func.count()).select_from(StatusHistory).where(
        StatusHistory.source == "webhook"))
    rows = dict(session.execute(sa.select(WebhookEvent.status, sa.func.count())
                                .group_by(WebhookEvent.status)).all())
    return {"events_applied": applied, "events_stale": rows.get("stale", 0),
            "events_failed": rows.get("failed", 0),
            "events_left_pending": rows.get("pending", 0) + rows.get("parked", 0)}


def _illegal_histories(session: Any) -> list[str]:
    """Every recorded move must be a legal step of the object's lifecycle."""
    moves: dict[tuple[str, str | None], list[StatusHistory]] = defaultdict(list)
    for entry in session.scalars(sa.select(StatusHistory).order_by(StatusHistory.id)):
        moves[(entry.object, entry.gateway_id or entry.crm_id)].append(entry)
    links = {(lk.object, lk.gateway_id): lk for lk in session.scalars(sa.select(RecordLink))}
    bad = []
    for (obj, rid), entries in moves.items():
        lifecycle = lifecycle_for({"Mandate": "mandates", "Payment": "payments",
                                   "Refund": "refunds", "Subscription": "subscriptions",
                                   "Payout": "payouts"}.get(obj, ""))
        if lifecycle is None:
            continue
        status = None
        for entry in entries:
            if entry.to_status == entry.from_status:
                continue
            if entry.from_status != status or not lifecycle.is_legal(status, entry.to_status):
                bad.append(f"{obj} {rid}: {entry.from_status} -> {entry.to_status}")
                break
            status = entry.to_status
        link = links.get((obj, rid))
        if link is not None and link.status != status and status is not None:
            bad.append(f"{obj} {rid}: history ends {status}, record says {link.status}")
    return bad


def gateway_answers_by_status(gateway_stats: dict[str, Any]) -> dict[str, int]:
    """API answers of the gateway emulator (its ``/sim/stats``) by status, its control
    routes (``/sim/...``) left out."""
    by_status: dict[str, int] = defaultdict(int)
    for route, counts in gateway_stats.get("requests", {}).items():
        if not route.split(" ", 1)[-1].startswith("/sim"):
            for status, n in counts.items():
                by_status[status] += n
    return dict(sorted(by_status.items()))


def gateway_5xx(gateway_stats: dict[str, Any]) -> int:
    return sum(n for status, n in gateway_answers_by_status(gateway_stats).items()
               if status.startswith("5"))


def webhook_counters(gateway_stats: dict[str, Any]) -> dict[str, int]:
    """The emulator's webhook delivery counters (deliveries, events_duplicated, ...)."""
    return dict(gateway_stats.get("webhooks", {}).get("counters", {}))


def _fault_effects(stack: Stack) -> dict[str, Any]:
    """What the injected faults did to real traffic (proof that they bit)."""
    gateway = stack.gw_sim("GET", "/stats")
    salesforce = stack.sf_call("GET", "/sim/stats")
    return {
        "gateway_answers_by_status": gateway_answers_by_status(gateway),
        # A create repeated with an Idempotency-Key that already created a resource: the
        # emulator answers 409 idempotent_creation_conflict and counts it, by resource type.
        "gateway_idempotent_replays": gateway.get("idempotent_duplicates_prevented_total", 0),
        "gateway_idempotent_replays_by_type": gateway.get("idempotent_duplicates_prevented", {}),
        "webhook_delivery_counters": webhook_counters(gateway),
        "salesforce_api_calls": salesforce["api_calls"],
        "salesforce_trigger_calls_failed": salesforce.get("trigger_calls_failed"),
    }
