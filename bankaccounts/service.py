"""Registering a bank account without keeping its details (the spec's "API method").

Order matters, because the details may exist only in this request:
1. normalise and modulus-check the details, before anything is looked up (422, nothing sent);
2. with an Idempotency-Key, claim it (a retry gets the first answer, or carries on where the
   first attempt stopped);
3. find the customer's gateway id;
4. make sure a CRM record exists to receive the result: the given one, the one an earlier
   attempt made, or a new one created with no details (if the CRM is down, the details have
   not gone anywhere yet);
5. send the details straight to the gateway (down: 503 and nothing stored or queued);
6. store, in one transaction, the link CRM record <-> gateway account, an API Queue row
   already past its gateway step whose result holds only safe fields, the answer for the
   Idempotency-Key and, when the record pointed at another account, a row disabling that one;
   then enqueue: the CRM write-back is retried like any other and never lost.
Steps 3-5 run under BANK_ACCOUNT_DEADLINE, well inside gunicorn's WEB_TIMEOUT, so a request is
never killed between the gateway's answer and step 6.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app import idempotency
from app.background import API_QUEUE, PROCESS_API_ITEMS, new_job_ids
from app.config import DEADLINE_MARGIN
from app.deadline import deadline
from app.errors import AppError
from app.mapping import STATUS_FIELD, writeback_fields
from app.records import service as records
from app.records.models import RecordLink
from app.runtime import Runtime
from app.workrows.dispatch import enqueue_marked
from bankaccounts import details as bank_details
from bankaccounts import partners
from bankaccounts.details import BankDetails
from bankaccounts.errors import BankAccountExists, InvalidDetails, StorageUnavailable
from bankaccounts.modulus import InvalidBankDetails
from bankaccounts.partners import BANK_ACCOUNT, CONTACT_FIELD, HOLDER_FIELD
from bankaccounts.tables import tables_for
from queues import service as queue_service
from queues.models import QueueItem

log = logging.getLogger(__name__)
OBJECT = BANK_ACCOUNT.name
ENDING_FIELD = BANK_ACCOUNT.writeback["account_number_ending"]
SCOPE = "bank-accounts"


@dataclass(frozen=True)
class RetryKey:
    """A client's Idempotency-Key, and the API key it belongs to (keys of one client only)."""

    key: str
    api_key_id: int


def register(rt: Runtime, body: dict[str, Any],
             retry_key: RetryKey | None = None) -> tuple[dict[str, Any], bool]:
    """Check, send to the gateway, record safely. Returns (the record as the API shows it,
    whether it is the stored answer of an earlier request with the same Idempotency-Key)."""
    details = _checked(rt, body)
    with deadline(rt.settings.bank_account_deadline):
        if retry_key is None:
            return _register(rt, body, details, None), False
        held = _claim(rt, body, details, retry_key)
        if isinstance(held, idempotency.Stored):
            return held.body, True
        try:
            return _register(rt, body, details, held), False
        except BaseException:
            with contextlib.suppress(SQLAlchemyError):  # the lease then simply runs out
                idempotency.release(rt.db, held)
            raise


def _checked(rt: Runtime, body: dict[str, Any]) -> BankDetails:
    try:
        return bank_details.validate(body["sort_code"], body["account_number"],
                                     tables_for(rt.settings))
    except InvalidBankDetails as exc:
        raise InvalidDetails(bank_details.describe(exc.reason), details={
            "fields": bank_details.fields_at_fault(exc.reason), "check": exc.reason}) from None


def _claim(rt: Runtime, body: dict[str, Any], details: BankDetails,
           retry_key: RetryKey) -> idempotency.Claim | idempotency.Stored:
    s = rt.settings
    # The digest covers the details as checked (so "08-99-99" and "089999" are one request).
    request = {**{k: body[k] for k in ("customer_id", "account_holder_name", "record_id")},
               "sort_code": details.sort_code, "account_number": details.account_number}
    return idempotency.claim(
        rt.db, scope=SCOPE, api_key_id=retry_key.api_key_id, key=retry_key.key,
        request_digest=idempotency.digest(s.secret_key, request),
        # No request outlives gunicorn's timeout: by then the claim's holder is gone.
        lease_seconds=s.web_timeout + DEADLINE_MARGIN, ttl_seconds=s.idempotency_key_ttl,
        progress={"gateway_key": partners.new_gateway_key()})


def _register(rt: Runtime, body: dict[str, Any], details: BankDetails,
              held: idempotency.Claim | None) -> dict[str, Any]:
    holder = body["account_holder_name"]
    customer = partners.resolve_customer(rt.db, rt.gateway, body["customer_id"])
    earlier = held.progress.get("record_id") if held else None
    record_id, created = partners.prepare_record(rt.crm, body["record_id"] or earlier,
                                                 customer, holder)
    created = created or earlier is not None
    try:
        if held is not None and created and earlier is None:
            held = _note(rt, held, record_id)
        gateway_key = held.progress["gateway_key"] if held else partners.new_gateway_key()
        account, note = partners.create_account(rt.gateway, details, holder, customer,
                                                record_id, gateway_key)
        ending = account.get("account_number_ending") or details.ending
        # Not needed past the gateway call: a later failure's traceback keeps this frame.
        del details
        result = {**writeback_fields(BANK_ACCOUNT, account, rt.settings.status_labels),
                  ENDING_FIELD: ending, HOLDER_FIELD: holder}
        if customer.crm_id:
            result[CONTACT_FIELD] = customer.crm_id

        def answer(item: QueueItem) -> dict[str, Any]:
            return {"record_id": record_id, "gateway_id": item.gateway_id,
                    "customer_id": body["customer_id"],
                    "customer_gateway_id": customer.gateway_id,
                    "account_holder_name": holder, "bank_name": account.get("bank_name"),
                    "account_number_ending": ending, "status": result.get(STATUS_FIELD),
                    "queue_item_id": item.id}

        return _record(rt, record_id, str(account["id"]), result, note, answer, held)
    except AppError as exc:
        if created:
            exc.details["created_record_id"] = record_id
            exc.message += (f" (CRM record {record_id} was created without any details: pass "
                            "it as record_id, or send the same Idempotency-Key, when you try "
                            "again)")
        raise


def _note(rt: Runtime, held: idempotency.Claim, record_id: str) -> idempotency.Claim:
    """Remember the record this request created, so a retry fills it in, never a second."""
    try:
        return idempotency.note_progress(rt.db, held, record_id=record_id)
    except SQLAlchemyError as exc:
        raise StorageUnavailable("Paybridge could not record its progress; nothing was sent "
                                 "to the gateway") from exc


def _record(rt: Runtime, record_id: str, gateway_id: str, result: dict[str, Any], note: str,
            answer: Callable[[QueueItem], dict[str, Any]],
            held: idempotency.Claim | None) -> dict[str, Any]:
    """One transaction: link the record to the gateway account, queue the write-back (and
    the disabling of an account the record no longer uses), store the answer."""
    job_id = new_job_ids(1, 1)[0] if rt.settings.api_queue_mode == "immediate" else None
    safe_fields = {k: v for k, v in result.items() if k in (CONTACT_FIELD, HOLDER_FIELD)}
    try:
        with rt.db.transaction() as session:
            link, replaced = _link(session, record_id, gateway_id)
            item = queue_service.accept_writeback(
                session, obj=OBJECT, record_id=record_id, gateway_id=gateway_id,
                fields=safe_fields, result=result, note=note, job_id=job_id)
            cause = f"bank account registered ({note})"
            if replaced:
                # Gateway accounts are immutable: new details are a new account, and the
                # old one is disabled at the gateway once the write-back has gone through.
                queue_service.accept_retirement(session, obj=OBJECT, record_id=record_id,
                                                gateway_id=replaced)
                cause += f"; replaces {replaced}, which is queued to be disabled"
            records.record_transition(session, link, None, source="api", cause=cause,
                                      queue_item_id=item.id)
            shown = answer(item)
            if held is not None:
                idempotency.finish(session, held, 201, shown)
    except SQLAlchemyError as exc:
        raise StorageUnavailable(
            f"bank account {gateway_id} was created at the gateway but Paybridge could not "
            "record it; send the request again (with record_id, or the same "
            "Idempotency-Key) and the same account is linked",
            details={"record_id": record_id, "gateway_id": gateway_id}) from exc
    if job_id:
        enqueue_marked(rt.redis, {job_id: [item.id]}, queue=API_QUEUE,
                       func=PROCESS_API_ITEMS, timeout=rt.settings.job_timeout)
    return shown


def _link(session: Session, record_id: str, gateway_id: str) -> tuple[RecordLink, str | None]:
    """Point the CRM record at the gateway account, so mandates can find it. Returns the
    link and the gateway account it pointed at before, if this replaced one.

    New details for a record that had an account replace it (gateway accounts are
    immutable). An account already linked to another record is a duplicate of that one.
    """
    by_gateway = records.find_link(session, OBJECT, gateway_id=gateway_id)
    if by_gateway is not None and by_gateway.crm_id not in (None, record_id):
        raise BankAccountExists(
            f"the customer already has this bank account: CRM record {by_gateway.crm_id} "
            f"(gateway id {gateway_id})",
            details={"existing_record_id": by_gateway.crm_id, "gateway_id": gateway_id})
    by_record = records.find_link(session, OBJECT, crm_id=record_id)
    if by_gateway is None and by_record is not None:
        replaced = by_record.gateway_id
        by_record.gateway_id = gateway_id
        return by_record, replaced
    return records.upsert_link(session, OBJECT, crm_id=record_id, gateway_id=gateway_id), None
