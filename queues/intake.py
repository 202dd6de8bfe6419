"""Accepting CRM changes: validate, store the whole batch, then (immediate mode) enqueue."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.background import API_QUEUE, PROCESS_API_ITEMS, enqueue, new_job_ids
from app.errors import ValidationFailed
from app.mapping import OBJECTS
from app.runtime import Runtime
from queues import service
from queues.models import QueueItem
from queues.schemas import OPERATION_ALIASES


def _refuse_bank_details(changes: Sequence[dict[str, Any]]) -> None:
    """The spec's validation rule: with STORE_BANK_DETAILS off, raw details are never queued."""
    for index, change in enumerate(changes):
        sensitive = OBJECTS[change["object"]].sensitive_crm_fields
        carried = sorted(f for f in sensitive
                         for snapshot in (change["fields"], change.get("previous_fields") or {})
                         if snapshot.get(f) not in (None, ""))
        if carried:
            raise ValidationFailed(
                f"changes[{index}]: {', '.join(sorted(set(carried)))} must not be sent while "
                "STORE_BANK_DETAILS is off; submit bank details through POST "
                "/api/v1/bank-accounts, which sends them straight to the gateway and stores "
                "only the last two digits",
                code="bank_details_not_allowed",
                details={"index": index, "fields": sorted(set(carried))})


def submit(rt: Runtime, changes: list[dict[str, Any]]) -> list[QueueItem]:
    for change in changes:
        change["operation"] = OPERATION_ALIASES.get(change["operation"], change["operation"])
    s = rt.settings
    if not s.store_bank_details:
        _refuse_bank_details(changes)
    job_ids = (new_job_ids(len(changes), s.batch_size) if s.api_queue_mode == "immediate"
               else None)
    items = service.accept_changes(rt.db, changes, dispatch_job_ids=job_ids,
                                   batch_size=s.batch_size)
    if job_ids:
        assignments: dict[str, list[int]] = {}
        for item in items:
            assignments.setdefault(item.job_id or "", []).append(item.id)
        enqueue(rt.redis, API_QUEUE, PROCESS_API_ITEMS, assignments, timeout=s.job_timeout)
    return items
