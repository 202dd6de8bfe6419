"""GatewayClient: the GoCardless-style REST API over one keep-alive requests.Session.

Errors are classified here and nowhere else: transport failures, 5xx and 429 are transient
(with the server's ``Retry-After`` / ``RateLimit-Reset`` when given); 4xx are permanent and
carry the gateway's own message; a 409 ``idempotent_creation_conflict`` is not an error at all
but the answer to a create that already happened, so ``create`` returns the existing resource.
A 409 without that ``links.conflicting_resource_id`` (the earlier request with the same
Idempotency-Key still in progress, or any other conflict with no state reason) is transient:
the retry, with the same key, gets the resource. A 409 that names a reason of its own stays
permanent: ``invalid_state`` ones are InvalidStateError, and GoCardless answers a duplicate
bank account with a ``validation_failed`` 409 ``bank_account_exists`` (the official client
raises ValidationFailedError for it), a PermanentError whose details keep the link to the
existing account.
"""

from __future__ import annotations

import email.utils
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests

from app.clients.errors import (
    InvalidStateError,
    PermanentError,
    TransientError,
    retry_after_seconds,
)
from app.deadline import DeadlineExceeded, call_timeouts
from app.redaction import redact, redact_value

log = logging.getLogger(__name__)
API_VERSION = "2015-07-06"


@dataclass(frozen=True)
class Created:
    resource: dict[str, Any]
    already_existed: bool  # True when the gateway answered 409 idempotent_creation_conflict


def _retry_after(response: requests.Response) -> float | None:
    """Seconds the gateway asked us to wait. RateLimit-Reset (sent on every answer) only
    counts for a 429: on a 503 it is just the end of the current rate window."""
    seconds = retry_after_seconds(response.headers.get("Retry-After"))
    if seconds is not None:
        return seconds
    reset = response.headers.get("RateLimit-Reset")
    if reset and response.status_code == 429:
        try:
            return max(0.0, email.utils.parsedate_to_datetime(reset).timestamp() - time.time())
        except (TypeError, ValueError):
            try:
                return max(0.0, float(reset))
            except ValueError:
                return None
    return None


def _reset_in(response: requests.Response) -> float | None:
    reset = response.headers.get("RateLimit-Reset")
    if not reset:
        return None
    try:
        return max(0.0, email.utils.parsedate_to_datetime(reset).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _error_message(body: Any, status: int) -> tuple[str, dict[str, Any]]:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return f"gateway answered HTTP {status}", {}
    parts = [str(error.get("message") or f"HTTP {status}")]
    for item in error.get("errors") or []:
        if isinstance(item, dict):
            field = item.get("field") or item.get("reason")
            parts.append(f"{field}: {item.get('message')}" if field else str(item.get("message")))
    return redact("; ".join(parts)), redact_value(error)


class GatewayClient:
    def __init__(self, base_url: str, access_token: str, *, timeout: float = 10.0,
                 limiter: Any = None, telemetry: Any = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter  # app.ratelimit.RateLimiter, shared by every worker
        self.telemetry = telemetry  # app.telemetry.Telemetry: counts calls by outcome
        self.calls: dict[str, int] = {}
        self.timeout = (min(3.05, timeout), timeout)
        self.session = requests.Session()
        # The environment's proxy and CA settings are read once, here, not on every call:
        # requests re-reads os.environ per request when trust_env is on (half a
        # millisecond of CPU per gateway call, more than the rest of the client).
        self.session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        self.session.verify = (os.environ.get("REQUESTS_CA_BUNDLE")
                               or os.environ.get("CURL_CA_BUNDLE") or True)
        self.session.trust_env = False
        self.session.headers.update({
            "Authorization": f"Bearer {access_token}",
            "GoCardless-Version": API_VERSION,
            "Accept": "application/json",
            "User-Agent": "paybridge",
        })
        # An API Queue job calls from several threads (queues.lanes); a requests.Session is
        # not made to be shared between threads, so each call borrows an idle one. They
        # stay open between jobs (keep-alive); ``session`` is the first one.
        self._lock = threading.Lock()
        self._idle = [self.session]

    def _new_session(self) -> requests.Session:
        """Another session set up like ``session``."""
        session = requests.Session()
        session.headers.update(self.session.headers)
        session.proxies.update(self.session.proxies)
        session.verify = self.session.verify
        session.trust_env = self.session.trust_env
        return session

    @contextmanager
    def _borrowed(self) -> Iterator[requests.Session]:
        with self._lock:
            session = self._idle.pop() if self._idle else None
        session = session or self._new_session()
        try:
            yield session
        finally:
            with self._lock:
                self._idle.append(session)

    def _request(self, method: str, path: str, *, json: Any = None,
                 idempotency_key: str | None = None, params: Any = None) -> requests.Response:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        if self.limiter is not None:
            self.limiter.acquire()
        timeout = call_timeouts(*self.timeout, what=f"the gateway ({method} {path})")
        try:
            with self._borrowed() as session:
                response = session.request(method, self.base_url + path, json=json,
                                           params=params, headers=headers, timeout=timeout)
        except requests.Timeout as exc:
            self._count("timeout")
            if timeout != self.timeout:  # cut by the request's deadline
                raise DeadlineExceeded(f"the gateway did not answer {method} {path} within "
                                       "the request's deadline") from exc
            raise TransientError(f"gateway timed out on {method} {path}") from exc
        except requests.ConnectionError as exc:
            self._count("unreachable")
            raise TransientError(f"gateway unreachable on {method} {path}") from exc
        self._count(str(response.status_code))
        self._respect_limits(response)
        return response

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.calls[outcome] = self.calls.get(outcome, 0) + 1
        if self.telemetry is not None:
            self.telemetry.partner_call("gateway", outcome)

    def _respect_limits(self, response: requests.Response) -> None:
        """Tell every worker to hold off when the gateway says the window is spent, and pace
        to the gateway's own ``RateLimit-Limit`` when it is lower than configured."""
        if self.limiter is None:
            return
        reported = response.headers.get("RateLimit-Limit", "")
        if reported.isdigit() and 0 < int(reported) < self.limiter.limit:
            self.limiter.set_rate(int(reported), self.limiter.window)
        exhausted = response.headers.get("RateLimit-Remaining") == "0"
        if response.status_code == 429 or exhausted:
            wait = _retry_after(response) if response.status_code == 429 else _reset_in(response)
            if wait:
                self.limiter.block(wait)

    def _check(self, response: requests.Response, method: str, path: str) -> dict[str, Any]:
        status = response.status_code
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {}
        if 200 <= status < 300:
            return body
        message, details = _error_message(body, status)
        where = f"{method} {path}"
        if status == 429 or status >= 500 or (status == 409 and _unsettled_conflict(details)):
            raise TransientError(f"{where}: {message}", status=status,
                                 retry_after=_retry_after(response), details=details)
        gated = _gated_feature(status, method, path, details)
        if gated:
            raise PermanentError(f"{where}: {gated} (GoCardless: {message})", status=status,
                                 details=details)
        if details.get("type") == "invalid_state":
            reasons = [e.get("reason") for e in details.get("errors", []) if isinstance(e, dict)]
            raise InvalidStateError(f"{where}: {message}", status=status,
                                    reason=next((r for r in reasons if r), None), details=details)
        raise PermanentError(f"{where}: {message}", status=status, details=details)

    def create(self, resource: str, body: dict[str, Any], idempotency_key: str) -> Created:
        path = f"/{resource}"
        response = self._request("POST", path, json={resource: body},
                                 idempotency_key=idempotency_key)
        if response.status_code == 409:
            existing = _conflicting_id(response)
            if existing:
                return Created(self.get(resource, existing), already_existed=True)
        return Created(self._check(response, "POST", path)[resource], already_existed=False)

    def get(self, resource: str, resource_id: str) -> dict[str, Any]:
        path = f"/{resource}/{resource_id}"
        return self._check(self._request("GET", path), "GET", path)[resource]

    def update(self, resource: str, resource_id: str, body: dict[str, Any]) -> dict[str, Any]:
        path = f"/{resource}/{resource_id}"
        response = self._request("PUT", path, json={resource: body})
        return self._check(response, "PUT", path)[resource]

    def action(self, resource: str, resource_id: str, action: str,
               data: dict[str, Any] | None = None) -> dict[str, Any]:
        path = f"/{resource}/{resource_id}/actions/{action}"
        response = self._request("POST", path, json={"data": data or {}})
        return self._check(response, "POST", path)[resource]

    def delete(self, resource: str, resource_id: str) -> dict[str, Any]:
        path = f"/{resource}/{resource_id}"
        body = self._check(self._request("DELETE", path), "DELETE", path)
        return body.get(resource) or {"id": resource_id}

    def list_events(self, *, after: str | None = None, created_after: str | None = None,
                    limit: int = 500) -> tuple[list[dict[str, Any]], str | None]:
        params: dict[str, Any] = {"limit": limit}
        if after:
            params["after"] = after
        if created_after:
            params["created_at[gt]"] = created_after
        body = self._check(self._request("GET", "/events", params=params), "GET", "/events")
        return body.get("events", []), (body.get("meta") or {}).get("cursors", {}).get("after")


    def iter_resources(self, resource: str, params: dict[str, Any] | None = None, *,
                       limit: int = 500) -> Iterator[dict[str, Any]]:
        """Every ``resource`` the list endpoint returns for ``params`` (e.g.
        ``{"customer": "CU1"}``), one page of up to 500 in memory at a time, following
        ``meta.cursors.after`` (https://developer.gocardless.com/api-reference/#overview-cursor-pagination)."""
        query: dict[str, Any] = {**(params or {}), "limit": limit}
        path = f"/{resource}"
        while True:
            body = self._check(self._request("GET", path, params=query), "GET", path)
            yield from body.get(resource, [])
            after = (body.get("meta") or {}).get("cursors", {}).get("after")
            if not after:
                return
            query["after"] = after

# Features GoCardless gates per merchant: the reason it answers 403 with, and the endpoint,
# say which feature was missing; its own message is generic. Sources: the API reference's
# "Restrictions" (https://developer.gocardless.com/api-reference/#restrictions) and the
# reasons listed under "Errors".
_PAYMENT_PAGES = ("creating bank accounts and mandates from raw bank details needs payment "
                  "pages GoCardless has approved as scheme-rules compliant: ask GoCardless "
                  "to approve yours, or set mandates up through Billing Requests")
_GATED = {
    ("forbidden", "POST", "customer_bank_accounts"): _PAYMENT_PAGES,
    ("forbidden", "POST", "mandates"): _PAYMENT_PAGES,
    ("feature_disabled", "POST", "payments"): (
        "custom payment references depend on the GoCardless package: ask GoCardless to "
        "enable them, or stop sending Reference__c"),
    ("feature_disabled", "POST", "refunds"): (
        "refunds are off until GoCardless enables them on the account: ask GoCardless "
        "support to enable refunds"),
}


def _gated_feature(status: int, method: str, path: str, details: dict[str, Any]) -> str | None:
    if status != 403:
        return None
    parts = path.strip("/").split("/")
    reasons = {e.get("reason") for e in details.get("errors") or [] if isinstance(e, dict)}
    if parts[-1] == "reinstate" and "forbidden" in reasons:  # /mandates/MD1/actions/reinstate
        return _PAYMENT_PAGES.replace("creating", "reinstating mandates, like creating", 1)
    return next((_GATED[(r, method, parts[0])] for r in reasons
                 if (r, method, parts[0]) in _GATED), None)


# 409 reasons that name no refusal of the resource's state: the conflict is with another
# request (the same Idempotency-Key still in flight, a concurrent change), not with the data.
_UNSETTLED_CONFLICTS = frozenset({"idempotent_creation_conflict", "conflict"})


def _unsettled_conflict(details: dict[str, Any]) -> bool:
    """True for a 409 that retrying can settle: one with no ``conflicting_resource_id`` to
    return (``create`` handles those first) and no reason of its own, such as
    ``bank_account_exists``, which stays permanent for the caller to read. A
    ``validation_failed`` 409 is never settled by a retry: GoCardless asks for other input
    (https://developer.gocardless.com/api-reference/#api-usage-errors; the official
    client's fixture validation_failed_duplicate_bank_account_error.json is one)."""
    if details.get("type") == "validation_failed":
        return False
    reasons = {e.get("reason") for e in details.get("errors") or [] if isinstance(e, dict)}
    return reasons - {None} <= _UNSETTLED_CONFLICTS


def _conflicting_id(response: requests.Response) -> str | None:
    try:
        errors = response.json()["error"]["errors"]
    except (ValueError, KeyError, TypeError):
        return None
    for item in errors:
        if isinstance(item, dict) and item.get("reason") == "idempotent_creation_conflict":
            return (item.get("links") or {}).get("conflicting_resource_id")
    return None
