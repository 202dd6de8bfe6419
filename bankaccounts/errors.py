"""The answers of the bank-account API when it cannot register an account.

Messages and details never carry a sort code or account number: they name the check that
failed, or pass on a partner's message after redaction.
"""

from __future__ import annotations

from app.errors import AppError, Conflict, NotFound


class InvalidDetails(AppError):
    """The details failed a format rule or the UK modulus check: nothing was sent anywhere."""

    status = 422
    code = "invalid_bank_details"


class CustomerNotFound(NotFound):
    code = "customer_not_found"


class CustomerNotReady(Conflict):
    """The customer is still on its way to the gateway (its queue item is pending)."""

    code = "customer_not_ready"


class RecordNotFound(NotFound):
    code = "record_not_found"


class RecordMismatch(Conflict):
    code = "record_mismatch"


class BankAccountExists(Conflict):
    code = "bank_account_exists"


class GatewayUnavailable(AppError):
    """Timeout, connection error, 5xx or 429: nothing was stored or queued; try again."""

    status = 503
    code = "gateway_unavailable"


class GatewayRejected(AppError):
    status = 422
    code = "gateway_rejected"


class GatewayError(AppError):
    """The gateway refused Paybridge itself (credentials, permissions): an operator's job."""

    status = 502
    code = "gateway_error"


class CrmUnavailable(AppError):
    status = 503
    code = "crm_unavailable"


class CrmRejected(AppError):
    status = 422
    code = "crm_rejected"


class StorageUnavailable(AppError):
    status = 503
    code = "storage_unavailable"


class DeadlineReached(AppError):
    """BANK_ACCOUNT_DEADLINE ran out waiting for a partner: the request may be sent again
    (with the same Idempotency-Key it carries on where this one stopped)."""

    status = 504
    code = "deadline_exceeded"
