"""Accepting CRM changes: validate, store the whole batch, then (immediate mode) enqueue."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from app.background import API_QUEUE, PROCESS_API_ITEMS, new_job_ids
from app.config import Settings
from app.errors import ValidationFailed
from app.mapping import OBJECTS
from app.redaction import bank_detail_fields
from app.runtime import Runtime
from app.workrows.dispatch import enqueue_marked
from bankaccounts.details import (
    CRM_ACCOUNT_NUMBER,
    CRM_SORT_CODE,
    describe,
    fields_at_fault,
    validate,
)
from bankaccounts.modulus import InvalidBankDetails, ModulusTables
from bankaccounts.tables import tables_for
from queues import service
from queues.models import QueueItem
from queues.schemas import OPERATION_ALIASES

log = logging.getLogger(__name__)
_BANK_ACCOUNT_UPDATABLE = any(f.on_update for f in OBJECTS["BankAccount"].fields)
_CRM_NAMES = {"sort_code": CRM_SORT_CODE, "account_number": CRM_ACCOUNT_NUMBER}


def _refuse_bank_details(changes: Sequence[dict[str, Any]], store: bool) -> None:
    """No bank details under any name: with STORE_BANK_DETAILS off, raw details are never
    queued; with it on, only the bank account's own detail fields may carry them."""
    for index, change in enumerate(changes):
        declared = OBJECTS[change["object"]].sensitive_crm_fields
        allowed = declared if store else frozenset()
        carried = sorted({f for snapshot in (change["fields"], change.get("previous_fields") or {})
                          for f in bank_detail_fields(snapshot, allowed)})
        if not carried:
            continue
        where = ", ".join(carried)
        if store or not set(carried) <= declared:
            message = (f"changes[{index}]: {where} look like bank details; they may only be "
                       "sent as a bank account's sort code and account number")
        else:
            message = (f"changes[{index}]: {where} must not be sent while STORE_BANK_DETAILS "
                       "is off")
        raise ValidationFailed(
            message + "; submit bank details through POST /api/v1/bank-accounts, which sends "
            "them straight to the gateway and stores only the last two digits",
            code="bank_details_not_allowed", details={"index": index, "fields": carried})


def _check_bank_details(changes: Sequence[dict[str, Any]], tables: ModulusTables) -> None:
    """With STORE_BANK_DETAILS on: details are modulus-checked before they are queued, and
    queued normalised (separators removed), as the gateway wants them."""
    for index, change in enumerate(changes):
        fields = change["fields"]
        if change["object"] != "BankAccount" or all(
                fields.get(f) in (None, "") for f in (CRM_SORT_CODE, CRM_ACCOUNT_NUMBER)):
            continue
        try:
            checked = validate(fields.get(CRM_SORT_CODE), fields.get(CRM_ACCOUNT_NUMBER), tables)
        except InvalidBankDetails as exc:
            raise ValidationFailed(
                f"changes[{index}]: {describe(exc.reason)}", code="invalid_bank_details",
                details={"index": index, "check": exc.reason,
                         "fields": [_CRM_NAMES[f] for f in fields_at_fault(exc.reason)]},
            ) from None
        fields[CRM_SORT_CODE], fields[CRM_ACCOUNT_NUMBER] = (checked.sort_code,
                                                             checked.account_number)


def screen_bank_details(settings: Settings, changes: list[dict[str, Any]]) -> None:
    """The bank-detail rules every queued change passes, at intake and when an admin edits
    a Failed item's payload."""
    _refuse_bank_details(changes, settings.store_bank_details)
    if settings.store_bank_details:
        _check_bank_details(changes, tables_for(settings))


def _has_gateway_effect(change: dict[str, Any]) -> bool:
    """Bank accounts are created at the gateway by POST /api/v1/bank-accounts, or (with
    STORE_BANK_DETAILS on) by a queued insert carrying the details. A Bank Account insert
    without details, or an update (none of its fields can change at the gateway), could
    only fail there and hold back the write-back of that record. Deletes disable."""
    if change["object"] != "BankAccount" or change["operation"] == "delete":
        return True
    if change["operation"] == "update":
        return _BANK_ACCOUNT_UPDATABLE
    return any(change["fields"].get(f) not in (None, "")
               for f in (CRM_SORT_CODE, CRM_ACCOUNT_NUMBER))


def screen(rt: Runtime, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The intake rules on validated changes (operation aliases, bank details), before any
    write: raises ``ValidationFailed`` naming the change; returns the changes to store."""
    for change in changes:
        change["operation"] = OPERATION_ALIASES.get(change["operation"], change["operation"])
    screen_bank_details(rt.settings, changes)
    kept = [c for c in changes if _has_gateway_effect(c)]
    if len(kept) < len(changes):
        log.info("bank account changes left to the bank-account API",
                 extra={"changes": len(changes) - len(kept)})
    return kept


def store(session: Session, rt: Runtime, changes: list[dict[str, Any]]) -> list[QueueItem]:
    """Store screened changes in the caller's transaction; ``enqueue`` them after it commits."""
    s = rt.settings
    job_ids = (new_job_ids(len(changes), s.batch_size)
               if s.api_queue_mode == "immediate" and changes else None)
    return service.store_changes(session, changes, dispatch_job_ids=job_ids,
                                 batch_size=s.batch_size)


def enqueue(rt: Runtime, items: list[QueueItem]) -> None:
    """Hand committed rows to their jobs (immediate mode); rows without a job wait for the
    sweep or the dispatcher."""
    assignments: dict[str, list[int]] = {}
    for item in items:
        if item.job_id:
            assignments.setdefault(item.job_id, []).append(item.id)
    if assignments:
        enqueue_marked(rt.redis, assignments, queue=API_QUEUE, func=PROCESS_API_ITEMS,
                       timeout=rt.settings.job_timeout)


def submit(rt: Runtime, changes: list[dict[str, Any]]) -> list[QueueItem]:
    """Accept a batch of changes whole: screened, stored in one transaction, then enqueued."""
    kept = screen(rt, changes)
    with rt.db.transaction() as session:
        items = store(session, rt, kept)
    enqueue(rt, items)
    return items
