"""Registering a bank account without keeping its details (the spec's "API method").

Order matters, because the details may exist only in this request:
1. normalise and modulus-check the details, before anything is looked up (422, nothing sent);
2. find the customer's gateway id;
3. make sure a CRM record exists to receive the result: the given one, or a new one created
   with no details (if the CRM is down, the details have not gone anywhere yet);
4. send the details straight to the gateway (down: 503 and nothing stored or queued);
5. store, in one transaction, the link CRM record <-> gateway account and an API Queue row
   already past its gateway step whose result holds only safe fields, then enqueue it: the
   CRM write-back is retried like any other and never lost.
Steps 2-4 run under BANK_ACCOUNT_DEADLINE, well inside gunicorn's WEB_TIMEOUT, so a request is
never killed between the gateway's answer and step 5 (504 deadline_exceeded instead).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.background import API_QUEUE, PROCESS_API_ITEMS, new_job_ids
from app.deadline import deadline
from app.errors import AppError
from app.mapping import STATUS_FIELD, writeback_fields
from app.records import service as records
from app.records.models import RecordLink
from app.runtime import Runtime
from app.workrows.dispatch import enqueue_marked
from bankaccounts import details as bank_details
from bankaccounts import partners
from bankaccounts.errors import BankAccountExists, InvalidDetails, StorageUnavailable
from bankaccounts.modulus import InvalidBankDetails
from bankaccounts.partners import BANK_ACCOUNT, CONTACT_FIELD, HOLDER_FIELD
from bankaccounts.tables import tables_for
from queues import service as queue_service
from queues.models import QueueItem

OBJECT = BANK_ACCOUNT.name
ENDING_FIELD = BANK_ACCOUNT.writeback["account_number_ending"]


def register(rt: Runtime, body: dict[str, Any]) -> dict[str, Any]:
    """Check, send to the gateway, record safely; returns the CRM record as the API shows it."""
    try:
        details = bank_details.validate(body["sort_code"], body["account_number"],
                                        tables_for(rt.settings))
    except InvalidBankDetails as exc:
        raise InvalidDetails(bank_details.describe(exc.reason), details={
            "fields": bank_details.fields_at_fault(exc.reason), "check": exc.reason}) from None
    with deadline(rt.settings.bank_account_deadline):
        return _register(rt, body, details)


def _register(rt: Runtime, body: dict[str, Any],
              details: bank_details.BankDetails) -> dict[str, Any]:
    holder = body["account_holder_name"]
    customer = partners.resolve_customer(rt.db, rt.gateway, body["customer_id"])
    record_id, created = partners.prepare_record(rt.crm, body["record_id"], customer, holder)
    try:
        account, note = partners.create_account(rt.gateway, details, holder, customer, record_id)
        ending = account.get("account_number_ending") or details.ending
        # Not needed past the gateway call: a later failure's traceback keeps this frame.
        del details
        result = {**writeback_fields(BANK_ACCOUNT, account, rt.settings.status_labels),
                  ENDING_FIELD: ending, HOLDER_FIELD: holder}
        if customer.crm_id:
            result[CONTACT_FIELD] = customer.crm_id
        item = _record(rt, record_id, str(account["id"]), result, note)
    except AppError as exc:
        if created:
            exc.details["created_record_id"] = record_id
            exc.message += (f" (CRM record {record_id} was created without any details: pass "
                            "it as record_id when you try again)")
        raise
    return {"record_id": record_id, "gateway_id": item.gateway_id,
            "customer_id": body["customer_id"], "customer_gateway_id": customer.gateway_id,
            "account_holder_name": holder, "bank_name": account.get("bank_name"),
            "account_number_ending": ending, "status": result.get(STATUS_FIELD),
            "queue_item_id": item.id}


def _record(rt: Runtime, record_id: str, gateway_id: str, result: dict[str, Any],
            note: str) -> QueueItem:
    """One transaction: link the record to the gateway account, queue the write-back."""
    job_id = new_job_ids(1, 1)[0] if rt.settings.api_queue_mode == "immediate" else None
    safe_fields = {k: v for k, v in result.items() if k in (CONTACT_FIELD, HOLDER_FIELD)}
    try:
        with rt.db.transaction() as session:
            link = _link(session, record_id, gateway_id)
            item = queue_service.accept_writeback(
                session, obj=OBJECT, record_id=record_id, gateway_id=gateway_id,
                fields=safe_fields, result=result, note=note, job_id=job_id)
            records.record_transition(session, link, None, source="api",
                                      cause=f"bank account registered ({note})",
                                      queue_item_id=item.id)
    except SQLAlchemyError as exc:
        raise StorageUnavailable(
            f"bank account {gateway_id} was created at the gateway but Paybridge could not "
            "record it; send the request again (with record_id) and the same account is "
            "linked", details={"record_id": record_id, "gateway_id": gateway_id}) from exc
    if job_id:
        enqueue_marked(rt.redis, {job_id: [item.id]}, queue=API_QUEUE,
                       func=PROCESS_API_ITEMS, timeout=rt.settings.job_timeout)
    return item


def _link(session: Session, record_id: str, gateway_id: str) -> RecordLink:
    """Point the CRM record at the gateway account, so mandates can find it.

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
        by_record.gateway_id = gateway_id
        return by_record
    return records.upsert_link(session, OBJECT, crm_id=record_id, gateway_id=gateway_id)
