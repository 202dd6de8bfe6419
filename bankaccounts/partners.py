"""The bank-account API's synchronous calls to the CRM and the gateway.

Each turns the partner's failure classes into an answer for the caller: transient failures
become 503 "try again" (nothing was stored or queued), refusals pass the partner's own
(redacted) message on. Nothing here writes to Paybridge's database or Redis.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from app.clients.errors import PartnerError, PermanentError, TransientError
from app.clients.gateway import GatewayClient
from app.clients.salesforce import SalesforceClient
from app.db import Database
from app.deadline import DeadlineExceeded
from app.errors import AppError
from app.mapping import OBJECTS, STATUS_FIELD
from app.records import service as records
from bankaccounts.details import BankDetails
from bankaccounts.errors import (
    CrmRejected,
    CrmUnavailable,
    CustomerNotFound,
    CustomerNotReady,
    DeadlineReached,
    GatewayError,
    GatewayRejected,
    GatewayUnavailable,
    RecordMismatch,
    RecordNotFound,
)
from queues import service as queue_service

T = TypeVar("T")
BANK_ACCOUNT = OBJECTS["BankAccount"]
# GoCardless customer ids: "CU" and upper-case letters and digits.
GATEWAY_CUSTOMER_ID = re.compile(r"^CU[0-9A-Z]{4,40}$")
# Status__c of a CRM record created ahead of the gateway call; the write-back replaces it.
PLACEHOLDER_STATUS = "Pending"
AGAIN = ("send the request again; with the same Idempotency-Key it carries on where this one "
         "stopped and creates nothing twice")


def crm_field(gateway_name: str) -> str:
    """The Bank_Account__c field that feeds a gateway field (per the mapping table)."""
    return next(f.crm for f in BANK_ACCOUNT.fields if f.gateway == gateway_name)


CONTACT_FIELD = crm_field("links.customer")
HOLDER_FIELD = crm_field("account_holder_name")


@dataclass(frozen=True)
class Customer:
    crm_id: str | None
    gateway_id: str


def resolve_customer(db: Database, gateway: GatewayClient, customer_id: str) -> Customer:
    """The customer by CRM id or gateway id: Paybridge's links first, then the gateway."""
    with db.transaction() as session:
        link = (records.find_link(session, "Customer", crm_id=customer_id)
                or records.find_link(session, "Customer", gateway_id=customer_id))
        if link is not None and link.gateway_id:
            return Customer(link.crm_id, link.gateway_id)
        if queue_service.pending_in_records(session, "Customer", customer_id):
            raise CustomerNotReady(
                f"customer {customer_id} has not reached the gateway yet; try again shortly")
    if not GATEWAY_CUSTOMER_ID.match(customer_id):
        raise CustomerNotFound(
            f"no customer with CRM id or gateway id {customer_id}; a Contact must reach the "
            "gateway (through POST /api/v1/queue) before its bank account is registered")
    try:
        resource = gateway.get("customers", customer_id)
    except PartnerError as exc:
        if exc.status in (404, 410):
            raise CustomerNotFound(f"the gateway has no customer {customer_id}") from exc
        raise gateway_answer(exc) from exc
    crm_id = (resource.get("metadata") or {}).get("crm_id")
    return Customer(str(crm_id) if crm_id else None, customer_id)


def prepare_record(crm: SalesforceClient, record_id: str | None, customer: Customer,
                   holder: str) -> tuple[str, bool]:
    """The Bank Account record to fill in: the given one (checked), or a new one holding no
    details. Returns (record id, created)."""
    if record_id:
        existing = _on_crm(lambda: crm.get(BANK_ACCOUNT.sobject, record_id), record_id)
        contact = existing.get(CONTACT_FIELD)
        if contact and customer.crm_id and contact != customer.crm_id:
            raise RecordMismatch(f"{BANK_ACCOUNT.sobject} {record_id} belongs to another "
                                 f"contact ({contact}), not to customer {customer.crm_id}")
        return record_id, False
    fields: dict[str, Any] = {HOLDER_FIELD: holder, STATUS_FIELD: PLACEHOLDER_STATUS}
    if customer.crm_id:
        fields[CONTACT_FIELD] = customer.crm_id
    return _on_crm(lambda: crm.create(BANK_ACCOUNT.sobject, fields), None), True


def new_gateway_key() -> str:
    """A random idempotency key for one create: a key derived from the details would be a
    stored fingerprint of them."""
    return f"pb-ba-{uuid.uuid4().hex}"


def create_account(gateway: GatewayClient, details: BankDetails, holder: str,
                   customer: Customer, record_id: str,
                   gateway_key: str) -> tuple[dict[str, Any], str]:
    """Create the bank account at the gateway. Returns (resource, note).

    ``gateway_key`` is the same for every attempt of one client request with an
    Idempotency-Key (it is kept with the claim), so the gateway answers a repeat with the
    account it already made. Without one, a repeat is still recognised, by the gateway's
    409 ``bank_account_exists`` (same customer, same details, still enabled), which names
    the existing account: that account is the answer.
    """
    safe = {**BANK_ACCOUNT.defaults, "account_holder_name": holder,
            "links": {"customer": customer.gateway_id}, "metadata": {"crm_id": record_id}}
    try:
        created = gateway.create(BANK_ACCOUNT.resource, {**safe, **details.gateway_fields()},
                                 gateway_key)
        if created.already_existed:
            return created.resource, "already at the gateway (an earlier attempt made it)"
        return created.resource, "created through the bank-account API"
    except PermanentError as exc:
        existing = _existing_account(exc)
        if existing is None:
            raise gateway_answer(exc) from exc
    except PartnerError as exc:
        raise gateway_answer(exc) from exc
    try:
        resource = gateway.get(BANK_ACCOUNT.resource, existing)
    except PartnerError as exc:
        raise gateway_answer(exc) from exc
    return resource, "already at the gateway (same customer and details)"


def _existing_account(exc: PermanentError) -> str | None:
    """The account a 409 ``bank_account_exists`` names in ``links.customer_bank_account``.
    GoCardless sends it as ``validation_failed`` (the official client's fixture
    validation_failed_duplicate_bank_account_error.json); the reason, not the type, decides."""
    for item in (exc.details or {}).get("errors") or []:
        if not isinstance(item, dict) or item.get("reason") != "bank_account_exists":
            continue
        found = (item.get("links") or {}).get("customer_bank_account")
        if found:
            return str(found)
    return None


def gateway_answer(exc: PartnerError) -> AppError:
    """What the caller is told about a gateway failure (messages arrive redacted)."""
    if isinstance(exc, DeadlineExceeded):
        return DeadlineReached(f"{exc.message}. The gateway may still act on it: {AGAIN}")
    if isinstance(exc, TransientError):
        wait = f" (it asked to wait {exc.retry_after:.0f}s)" if exc.retry_after else ""
        return GatewayUnavailable(
            f"the payment gateway is unavailable{wait}: {exc.message}. Nothing was stored or "
            "queued; send the request again", details={"retry_after": exc.retry_after})
    if exc.status in (401, 403):
        return GatewayError(f"the gateway refused Paybridge's credentials: {exc.message}")
    return GatewayRejected(f"the gateway refused the bank account: {exc.message}",
                           details={"gateway": exc.details or {}})


def _on_crm(call: Callable[[], T], record_id: str | None) -> T:
    try:
        return call()
    except DeadlineExceeded as exc:
        raise DeadlineReached(f"{exc.message}. Nothing was sent to the gateway; send the "
                              "request again") from exc
    except TransientError as exc:
        raise CrmUnavailable(f"the CRM is unavailable: {exc.message}. Nothing was sent to the "
                             "gateway; send the request again") from exc
    except PartnerError as exc:
        if record_id and exc.status == 404:
            raise RecordNotFound(
                f"{BANK_ACCOUNT.sobject} {record_id} does not exist in the CRM") from exc
        raise CrmRejected(f"the CRM refused the bank account record: {exc.message}") from exc
