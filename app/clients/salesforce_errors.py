"""Salesforce's errors, classified: what is transient, what pauses, what is permanent.

REQUEST_LIMIT_EXCEEDED becomes ``PausedError``; UNABLE_TO_LOCK_ROW, 5xx and transport
failures are transient; anything else (deleted record, invalid field) is permanent, with
Salesforce's own message, redacted. At the token endpoint only a refusal of the credentials
(400/401 ``invalid_client``, ``invalid_grant``, ...) is permanent; 5xx, 429 (with its
Retry-After) and any other answer are transient, and the client secret is never shown.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import requests
from simple_salesforce.exceptions import SalesforceError

from app.clients.errors import (
    PartnerError,
    PausedError,
    PermanentError,
    TransientError,
    retry_after_seconds,
)
from app.redaction import MASK, redact

TRANSIENT_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"})
# OAuth token errors (RFC 6749 section 5.2, and Salesforce's own) that refuse our credentials,
# grant or connected app: retrying cannot help. Any other answer from the token endpoint
# (rate_limit_exceeded, server_error, temporarily_unavailable, no code at all) is transient.
GENERIC_LOGIN_HOSTS = frozenset({"login.salesforce.com", "test.salesforce.com"})
REFUSALS = frozenset({
    "invalid_request", "invalid_client", "invalid_client_id", "invalid_client_credentials",
    "invalid_grant", "unauthorized_client", "unsupported_grant_type", "invalid_scope",
    "inactive_user", "inactive_org", "invalid_app_access", "access_denied",
})


def _errors_of(exc: SalesforceError) -> list[dict[str, Any]]:
    content = exc.content
    if isinstance(content, list):
        return [c for c in content if isinstance(c, dict)]
    if isinstance(content, dict):
        return [content]
    return []


def error_code(error: dict[str, Any]) -> str:
    # A call that fails whole says "errorCode"; a record of sObject Collections "statusCode".
    return str(error.get("errorCode") or error.get("statusCode") or "UNKNOWN")


def describe(errors: list[dict[str, Any]]) -> str:
    """Salesforce's own words for its errors: ``CODE: message`` each, redacted."""
    return redact("; ".join(f"{error_code(e)}: {e.get('message')}" for e in errors))


def classify(exc: Exception) -> Exception:
    """Turn a simple-salesforce / requests exception into our error classes."""
    if isinstance(exc, requests.Timeout | requests.ConnectionError):
        return TransientError(f"Salesforce unreachable: {type(exc).__name__}")
    if not isinstance(exc, SalesforceError):
        return exc
    errors = _errors_of(exc)
    codes = {error_code(e) for e in errors}
    message = describe(errors) or f"HTTP {exc.status}"
    if "REQUEST_LIMIT_EXCEEDED" in codes:
        return PausedError(f"Salesforce: {message}", status=exc.status)
    if codes & TRANSIENT_CODES or exc.status >= 500:
        return TransientError(f"Salesforce: {message}", status=exc.status)
    return PermanentError(f"Salesforce: {message}", status=exc.status, details=errors)


def login_error(response: requests.Response, secret: str,
                login_url: str = "") -> PartnerError:
    """Classify a token endpoint answer other than 200.

    Permanent only for a genuine refusal of our credentials or grant: HTTP 400/401 with an
    OAuth ``error`` code in REFUSALS. An unavailable (5xx), throttled (429, or Salesforce's
    ``rate_limit_exceeded``) or otherwise unexpected answer (a proxy's page, a 404) is
    transient, with the server's ``Retry-After`` when given. Either way the message carries
    Salesforce's own ``error`` and ``error_description``, and never the client secret, even
    if the server echoed it.
    """
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    code = _scrub(str(body.get("error") or ""), secret)
    description = _scrub(str(body.get("error_description") or ""), secret)[:300]
    if status in (400, 401) and code in REFUSALS:
        cause = f"{code}: {description}" if description else code
        return PermanentError(
            f"Salesforce login refused (HTTP {status}, {cause}); {_fix_for(login_url)}",
            status=status, details={"error": code, "error_description": description})
    shown = ""
    if code.isidentifier() and len(code) <= 64:  # an OAuth error code, not a page's text
        shown = f", {code}: {description}" if description else f", {code}"
    return TransientError(f"Salesforce login unavailable (HTTP {status}{shown})",
                          status=status,
                          retry_after=retry_after_seconds(response.headers.get("Retry-After")))


def _fix_for(login_url: str) -> str:
    """What to check after a refusal. On Salesforce's generic login hosts the
    client-credentials flow is not available at all: only the org's My Domain host takes
    it (Salesforce Help 000886201, "Migrate from OAuth Username-Password to Client
    Credentials Flow": https://help.salesforce.com/s/articleView?id=000886201&type=1)."""
    if (urlsplit(login_url).hostname or "").lower() in GENERIC_LOGIN_HOSTS:
        return ("SALESFORCE_LOGIN_URL must be the org's My Domain URL "
                "(https://<mydomain>.my.salesforce.com, or "
                "https://<mydomain>--<sandbox>.sandbox.my.salesforce.com): the client-credentials "
                "flow is not available on login.salesforce.com or test.salesforce.com")
    return ("check SALESFORCE_CLIENT_ID / SALESFORCE_CLIENT_SECRET and the connected app's "
            "client-credentials user")


def _scrub(text: str, secret: str) -> str:
    if secret:
        for form in {secret, quote_plus(secret), quote(secret, safe="")}:
            text = text.replace(form, MASK)
    return redact(text)
