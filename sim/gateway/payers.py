"""API operations on the payer side: customers, customer bank accounts and mandates.

Each function validates its input (422 ``validation_failed`` listing every problem), checks
the idempotency key first (409 on reuse), and runs under ``store.lock`` so a create and its
``created`` event are atomic. Bank details are kept only in ``Store.bank_details``; the
public record carries ``account_number_ending`` and a made-up ``bank_name``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from .engine import Engine
from .errors import bank_account_exists, invalid_state
from .lifecycles import MANDATE_CHARGEABLE, TRANSITIONS
from .store import BankDetails, Record, random_code
from .validation import Validator

CUSTOMER_FIELDS = (
    "email", "given_name", "family_name", "company_name", "address_line1", "address_line2",
    "address_line3", "city", "region", "postal_code", "phone_number", "language",
    "danish_identity_number", "swedish_identity_number",
)
BANK_NAMES = (
    "PAYBRIDGE TEST BANK PLC", "NORTHERN COUNTIES BANK", "WESSEX BUILDING SOCIETY",
    "ALBION SAVINGS BANK", "THAMES VALLEY BANK", "HIGHLAND MUTUAL BANK",
)
MANDATE_REFERENCE = re.compile(r"^[A-Z0-9 .&/-]{6,18}$")
IBAN_SHAPE = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")


def _customer_fields(check: Validator) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in CUSTOMER_FIELDS:
        if name in check.data:
            values[name] = check.string(name, max_len=255)
    if "country_code" in check.data:
        values["country_code"] = check.country_code()
    email = values.get("email")
    if email is not None and ("@" not in email or email.startswith("@") or email.endswith("@")):
        check.add("email", "is not a valid email address")
    return values


def _check_names(check: Validator, customer: dict[str, Any]) -> None:
    if customer.get("company_name"):
        return
    for name in ("given_name", "family_name"):
        if not customer.get(name):
            check.add(name, "is required unless company_name is provided")


def create_customer(engine: Engine, data: dict[str, Any], key: str | None) -> Record:
    store = engine.store
    with store.lock:
        store.check_idempotency("customers", key)
        check = Validator("customers", data)
        fields = _customer_fields(check)
        metadata = check.metadata()
        _check_names(check, fields)
        check.check()
        public = {name: None for name in CUSTOMER_FIELDS}
        public.update({"country_code": None, "language": "en"})
        public.update({k: v for k, v in fields.items() if v is not None})
        public["metadata"] = metadata
        return engine.create("customers", public, extra={}, idempotency_key=key)


def update_customer(engine: Engine, record: Record, data: dict[str, Any]) -> Record:
    with engine.store.lock:
        check = Validator("customers", data)
        fields = _customer_fields(check)
        metadata = check.metadata() if "metadata" in data else None
        merged = {**record.data, **fields}
        _check_names(check, merged)
        check.check()
        record.data.update(fields)
        if metadata is not None:
            record.data["metadata"] = metadata
        return record


def remove_customer(engine: Engine, record: Record, metadata: dict[str, str]) -> Record:
    """GoCardless "remove": the customer disappears from GET and lists (410 afterwards).
    No event: the event types document no customer action."""
    with engine.store.lock:
        record.extra["removed"] = True
        return record


def _iban_valid(iban: str) -> bool:
    if not IBAN_SHAPE.match(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    digits = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(digits) % 97 == 1


def _bank_details(check: Validator) -> tuple[BankDetails | None, str | None]:
    """Validated bank details and the country they imply (values never echoed)."""
    iban = check.string("iban")
    account_number = check.string("account_number")
    branch_code = check.string("branch_code")
    if iban is not None:
        iban = iban.replace(" ", "").upper()
        if account_number is not None or branch_code is not None:
            check.add("iban", "must not be combined with account_number or branch_code")
        elif not _iban_valid(iban):
            check.add("iban", "is not a valid IBAN")
        elif not iban.startswith("GB"):
            check.add("iban", "must be a UK IBAN for the Bacs scheme")
        else:
            return BankDetails(None, None, iban), "GB"
        return None, None
    if account_number is None:
        check.add("account_number", "is required")
    elif not (account_number.isdigit() and 6 <= len(account_number) <= 10):
        check.add("account_number", "must be 6 to 10 digits")
        account_number = None
    if branch_code is None:
        check.add("branch_code", "is required")
    else:
        branch_code = branch_code.replace("-", "").replace(" ", "")
        if not (branch_code.isdigit() and len(branch_code) == 6):
            check.add("branch_code", "must be a 6 digit sort code")
            branch_code = None
    if account_number is None or branch_code is None:
        return None, None
    return BankDetails(account_number.rjust(8, "0"), branch_code, None), "GB"


def _fingerprint(details: BankDetails) -> str:
    raw = f"{details.account_number}|{details.branch_code}|{details.iban}".encode()
    return hashlib.sha256(raw).hexdigest()


def create_bank_account(engine: Engine, data: dict[str, Any], key: str | None) -> Record:
    store = engine.store
    with store.lock:
        store.check_idempotency("customer_bank_accounts", key)
        check = Validator("customer_bank_accounts", data)
        holder = check.string("account_holder_name", required=True, max_len=255)
        details, implied_country = _bank_details(check)
        country = check.country_code()
        if country is None and "iban" not in data and "country_code" not in data:
            check.add("country_code", "is required")
        if country is not None and implied_country is not None and country != implied_country:
            check.add("country_code", "must be GB for the Bacs scheme")
        currency = check.currency(required=False) or "GBP"
        metadata = check.metadata()
        customer_id = check.link("customer")
        customer = store.find("customers", customer_id) if customer_id else None
        if customer_id and (customer is None or customer.extra.get("removed")):
            check.link_error("customer", "does not exist")
        check.check()
        assert details is not None and customer is not None
        fingerprint = (customer.id, _fingerprint(details))
        existing = store.find("customer_bank_accounts", store.bank_fingerprints.get(
            fingerprint, ""))
        if existing is not None and existing.data["enabled"]:
            raise bank_account_exists(existing.id)
        digits = details.iban or details.account_number or ""
        name_index = int(_fingerprint(details)[:8], 16) % len(BANK_NAMES)
        public = {
            "account_holder_name": holder,
            "account_number_ending": digits[-2:],
            "account_type": None,
            "bank_name": BANK_NAMES[name_index],
            "country_code": implied_country,
            "currency": currency,
            "enabled": True,
            "metadata": metadata,
            "links": {"customer": customer.id},
        }
        record = store.insert("customer_bank_accounts", public, idempotency_key=key)
        store.bank_details[record.id] = details
        store.bank_fingerprints[fingerprint] = record.id
        return record


def update_bank_account(engine: Engine, record: Record, data: dict[str, Any]) -> Record:
    with engine.store.lock:
        check = Validator("customer_bank_accounts", data)
        metadata = check.metadata()
        check.check()
        if "metadata" in data:
            record.data["metadata"] = metadata
        return record


def disable_bank_account(engine: Engine, record: Record) -> Record:
    """Disable the account and, as GoCardless does, cancel the mandates that use it."""
    with engine.store.lock:
        if not record.data["enabled"]:
            return record
        record.data["enabled"] = False
        cancellable = TRANSITIONS["mandates"]["cancelled"].sources
        for mandate in engine.store.all("mandates"):
            if mandate.data["links"]["customer_bank_account"] == record.id and (
                mandate.status in cancellable
            ):
                # Documented as api / bank_account_closed: "The customer's account was
                # disabled at your request."
                engine.apply(mandate, "cancelled", origin="api", cause="bank_account_closed",
                             description="The customer's account was disabled at your request.",
                             details={"reason_code": None})
        return record


def create_mandate(engine: Engine, data: dict[str, Any], key: str | None) -> Record:
    store = engine.store
    with store.lock:
        store.check_idempotency("mandates", key)
        check = Validator("mandates", data)
        check.choice("scheme", ("bacs",))
        reference = check.string("reference")
        if reference is not None and not MANDATE_REFERENCE.match(reference):
            check.add("reference", "must be 6 to 18 characters: A-Z, 0-9, space . & / -")
        elif reference is not None and reference in store.mandate_references:
            check.add("reference", "has already been taken")
        metadata = check.metadata()
        account_id = check.link("customer_bank_account")
        account = store.find("customer_bank_accounts", account_id) if account_id else None
        if account_id and account is None:
            check.link_error("customer_bank_account", "does not exist")
        check.check()
        assert account is not None
        if not account.data["enabled"]:
            raise invalid_state("bank_account_disabled",
                                f"Customer bank account {account.id} is disabled")
        public = {
            "reference": reference or "PAYBRIDGE-" + random_code(8),
            "scheme": "bacs",
            "next_possible_charge_date": None,
            "payments_require_approval": "payments" in engine.customer_approval,
            "authorisation_source": None,
            "consent_type": None,
            "funds_settlement": "managed",
            "verified_at": None,
            "metadata": metadata,
            "links": {
                "customer_bank_account": account.id,
                "customer": account.data["links"]["customer"],
                "creditor": store.creditor_id,
            },
        }
        record = engine.create("mandates", public, extra={}, idempotency_key=key)
        store.mandate_references[public["reference"]] = record.id
        engine.refresh(record)
        return record


def update_metadata(engine: Engine, record: Record, data: dict[str, Any]) -> Record:
    """PUT for resources whose only updatable field is ``metadata``."""
    with engine.store.lock:
        check = Validator(record.type, data)
        metadata = check.metadata()
        check.check()
        if "metadata" in data:
            record.data["metadata"] = metadata
        return record


def cancel_mandate(engine: Engine, record: Record, metadata: dict[str, str]) -> Record:
    with engine.store.lock:
        engine.apply(record, "cancelled", origin="api", cause="mandate_cancelled",
                     description="The mandate was cancelled at your request.",
                     details={"reason_code": None}, metadata=metadata,
                     reason="cancellation_failed")
        return record


def reinstate_mandate(engine: Engine, record: Record, metadata: dict[str, str]) -> Record:
    """Reinstate a cancelled/expired mandate: ``resubmission_requested``, then the happy path
    (``submitted`` and finally ``reinstated``, which makes it active)."""
    with engine.store.lock:
        engine.apply(record, "resubmission_requested", metadata=metadata,
                     reason="mandate_not_inactive")
        return record


def chargeable_mandate(engine: Engine, check: Validator) -> Record | None:
    """The mandate under ``links.mandate`` (field error if unknown, None if absent)."""
    mandate_id = check.link("mandate")
    mandate = engine.store.find("mandates", mandate_id) if mandate_id else None
    if mandate_id and mandate is None:
        check.link_error("mandate", "does not exist")
    return mandate


def require_chargeable(mandate: Record) -> None:
    if mandate.status not in MANDATE_CHARGEABLE:
        raise invalid_state("mandate_is_inactive",
                            f"Mandate {mandate.id} is {mandate.status} and cannot be charged")
