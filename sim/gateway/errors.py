"""GoCardless-shaped API errors.

Every error the emulator answers on the API surface has the GoCardless envelope:
``{"error": {"type", "code", "message", "errors": [...], "documentation_url", "request_id"}}``.
Field errors always carry ``field``, ``message`` and ``request_pointer``, and every
``invalid_state`` error item carries a ``reason``, because the official client libraries
read those keys unconditionally.

Messages never echo submitted values: a value may be a bank account number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DOCS = "https://developer.gocardless.com/api-reference#"


@dataclass(frozen=True)
class FieldError:
    """One validation problem: ``field`` is the attribute name, ``pointer`` a JSON pointer."""

    field: str
    message: str
    pointer: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "request_pointer": self.pointer}


class ApiError(Exception):
    """An error answer: HTTP ``status``, GoCardless ``type`` and the ``errors`` list."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        errors: list[dict[str, Any]],
        documentation_anchor: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.errors = errors
        self.documentation_anchor = documentation_anchor or error_type
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        """The JSON body for this error, tagged with the request id."""
        return {
            "error": {
                "type": self.error_type,
                "code": self.status,
                "message": self.message,
                "errors": self.errors,
                "documentation_url": DOCS + self.documentation_anchor,
                "request_id": request_id,
            }
        }


def not_found(resource_type: str, resource_id: str) -> ApiError:
    """404 for an unknown id (the id itself is safe to echo: it is ours)."""
    message = f"No {resource_type} resource was found with id {resource_id}"
    return ApiError(
        404,
        "invalid_api_usage",
        "Resource not found",
        [{"reason": "resource_not_found", "message": message}],
        "resource_not_found",
    )


def gone(resource_type: str, resource_id: str) -> ApiError:
    """410 for a removed customer, in the words of GoCardless's own example body (the
    official client's fixture, github.com/gocardless/gocardless-pro-python
    tests/fixtures/customer_gone.json: reason ``customer_removed``, documentation anchor
    ``customer_data_removed``)."""
    message = "This customer data has been removed"
    return ApiError(410, "invalid_api_usage", message,
                    [{"reason": "customer_removed", "message": message}],
                    "customer_data_removed")


def validation_failed(errors: list[FieldError]) -> ApiError:
    """422 ``validation_failed`` listing every field problem."""
    return ApiError(
        422,
        "validation_failed",
        "Validation failed",
        [error.as_dict() for error in errors],
    )


def invalid_state(
    reason: str, message: str, status: int = 422, links: dict[str, str] | None = None
) -> ApiError:
    """``invalid_state`` (422 by default; 409 for conflicts)."""
    item: dict[str, Any] = {"reason": reason, "message": message}
    if links:
        item["links"] = links
    return ApiError(status, "invalid_state", message, [item], reason)


def bank_account_exists(existing_id: str) -> ApiError:
    """409 for a duplicate bank account. GoCardless types it ``validation_failed``, not
    ``invalid_state``, and names the existing account in ``links.customer_bank_account``
    (github.com/gocardless/gocardless-pro-python
    tests/fixtures/validation_failed_duplicate_bank_account_error.json; the API reference's
    customer bank accounts section: "the ID of which will be provided as
    links[customer_bank_account] in the error response")."""
    message = "Bank account already exists"
    return ApiError(409, "validation_failed", message,
                    [{"reason": "bank_account_exists", "message": message,
                      "links": {"customer_bank_account": existing_id}}], "bank_account_exists")


def idempotent_conflict(resource_id: str) -> ApiError:
    """409 for a create repeated with an idempotency key that already created a resource."""
    message = "A resource has already been created with this idempotency key"
    return invalid_state(
        "idempotent_creation_conflict",
        message,
        status=409,
        links={"conflicting_resource_id": resource_id},
    )


def invalid_api_usage(status: int, reason: str, message: str) -> ApiError:
    """4xx ``invalid_api_usage`` with one reason."""
    return ApiError(status, "invalid_api_usage", message, [{"reason": reason, "message": message}],
                    reason)


def internal_error(status: int = 500, message: str | None = None) -> ApiError:
    """5xx of type ``gocardless`` (the gateway's own failure)."""
    text = message or "Uh-oh! Something went wrong on the gateway's side"
    reason = "internal_server_error" if status == 500 else "service_unavailable"
    return ApiError(status, "gocardless", text, [{"reason": reason, "message": text}], reason)


def rate_limited(headers: dict[str, str]) -> ApiError:
    """429 ``rate_limit_exceeded``; ``headers`` carries Retry-After and the RateLimit set."""
    message = "Rate limit exceeded"
    return ApiError(
        429,
        "invalid_api_usage",
        message,
        [{"reason": "rate_limit_exceeded", "message": message}],
        "rate_limit_exceeded",
        headers,
    )


def for_status(status: int, message: str | None = None) -> ApiError:
    """A GoCardless-shaped error for an arbitrary injected HTTP status."""
    if status >= 500:
        return internal_error(status, message)
    if status == 409:
        return invalid_state("conflict", message or "Conflict", status=409)
    if status == 422:
        return invalid_state("invalid_state", message or "Invalid state")
    if status == 429:
        return rate_limited({"Retry-After": "1"})
    reasons = {400: "invalid_document_structure", 401: "access_token_not_found",
               403: "forbidden", 404: "resource_not_found", 410: "gone"}
    reason = reasons.get(status, "invalid_request")
    return invalid_api_usage(status, reason, message or reason.replace("_", " ").capitalize())
