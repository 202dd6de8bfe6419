"""CrmClient for Salesforce, through simple-salesforce.

Login is OAuth 2.0 (client credentials) against SALESFORCE_LOGIN_URL, which must be the org's
My Domain URL (Salesforce refuses the flow on login/test.salesforce.com); the token is handed to
``simple_salesforce.Salesforce(instance_url, session_id, session)``. TLS: requests lets the
REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE environment variables override a session's ``verify``, so
the session ignores the environment (``trust_env = False``) and trusts exactly the configured
CA bundle (or the default public CAs). Certificate checks are never switched off.

Errors: an expired session is renewed once, transparently; the rest are classified by
``app.clients.salesforce_errors`` (transient, paused for the org's allocation, permanent).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
)

from app.clients.errors import (
    PausedError,
    TransientError,
)
from app.clients.salesforce_bulk import BulkRead, iter_bulk
from app.clients.salesforce_errors import (
    TRANSIENT_CODES,
    classify,
    describe,
    error_code,
    login_error,
)
from app.deadline import DeadlineExceeded, call_timeouts

log = logging.getLogger(__name__)
T = TypeVar("T")
# sObject Collections: at most 200 records per call, processed in "chunks" (a new one each
# time the sObject type changes), at most 10 chunks per call. Salesforce REST API Developer
# Guide, "Update Records Using sObject Collections":
# https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_update.htm
COLLECTION_LIMIT = 200
COLLECTION_CHUNKS = 10
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
@dataclass(frozen=True)
class CrmWrite:
    sobject: str
    record_id: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class CrmWriteResult:
    ok: bool
    record_id: str | None = None
    code: str | None = None
    message: str | None = None
    transient: bool = False


class _TimeoutSession(requests.Session):
    """simple-salesforce passes no timeout; a hung socket must not hang a worker forever.

    Every answer's ``Sforce-Limit-Info`` is remembered here, whichever simple-salesforce
    object made the call (sObject calls keep their own usage, not the client's).
    """

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout
        self.last_usage: tuple[int, int] | None = None

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        # Under a web request's deadline both timeouts are cut to fit in it (app.deadline).
        configured = (self._timeout, self._timeout)
        timeout = call_timeouts(*configured, "Salesforce")
        kwargs.setdefault("timeout", timeout)
        try:
            response = super().request(*args, **kwargs)
        except requests.Timeout as exc:
            if timeout != configured:
                raise DeadlineExceeded("Salesforce did not answer within the request's "
                                       "deadline") from exc
            raise
        usage = _USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
        if usage:
            self.last_usage = (int(usage.group(1)), int(usage.group(2)))
        return response


class SalesforceClient:
    def __init__(self, login_url: str, client_id: str, client_secret: str, *,
                 ca_bundle: str = "", version: str = "59.0", timeout: float = 30.0,
                 telemetry: Any = None, allowance: Any = None, bulk_threshold: int = 10_000,
                 bulk_page_size: int = 50_000, bulk_wait: float = 600.0) -> None:
        self.login_url = login_url.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.version = version
        self.session = _TimeoutSession(timeout)
        self.session.trust_env = False
        self.session.verify = ca_bundle or True
        self._sf: Salesforce | None = None
        self._lock = threading.Lock()
        self.calls = 0
        self.telemetry = telemetry  # app.telemetry.Telemetry: calls by outcome, API usage
        # app.clients.crm_allowance.CrmAllowance: pacing and pausing shared by all workers
        self.allowance = allowance
        # Whole-object reads of more records than this go through a Bulk API 2.0 query job
        # (0: never); its result sets hold bulk_page_size records; it must finish in bulk_wait.
        self.bulk_threshold = bulk_threshold
        self.bulk_page_size = bulk_page_size
        self.bulk_wait = bulk_wait
        self._field_types: dict[str, dict[str, str]] = {}

    def _login(self) -> Salesforce:
        try:
            response = self.session.post(
                f"{self.login_url}/services/oauth2/token",
                data={"grant_type": "client_credentials", "client_id": self.client_id,
                      "client_secret": self._client_secret},
            )
        except requests.RequestException as exc:
            raise classify(exc) from exc
        if response.status_code != 200:
            raise login_error(response, self._client_secret, self.login_url)
        try:
            token = response.json()
            instance_url, access_token = token["instance_url"], token["access_token"]
        except (ValueError, KeyError, TypeError):
            raise TransientError("Salesforce login answered HTTP 200 without a token",
                                 status=200) from None
        self.identity_url = str(token.get("id") or "")  # .../id/<org id>/<user id>
        return Salesforce(instance_url=instance_url, session_id=access_token,
                          session=self.session, version=self.version)

    def _client(self, renew: bool = False) -> Salesforce:
        with self._lock:
            if self._sf is None or renew:
                self._sf = self._login()
            return self._sf

    def _call(self, fn: Callable[[Salesforce], T]) -> T:
        for attempt in (1, 2):
            sf = self._client(renew=False)
            if self.allowance is not None:
                self.allowance.before_call()
            try:
                self.calls += 1
                answer = fn(sf)
            except DeadlineExceeded:  # raised by the session, before simple-salesforce saw it
                self._observe("deadline")
                raise
            except SalesforceExpiredSession:
                self._observe("expired_session")
                if attempt == 2:
                    raise TransientError("Salesforce session expired twice in a row") from None
                log.info("salesforce session expired; logging in again")
                self._client(renew=True)
            except (SalesforceError, requests.RequestException) as exc:
                error = classify(exc)
                self._observe(type(error).__name__.removesuffix("Error").lower() or "error")
                if isinstance(error, PausedError) and self.allowance is not None:
                    error = self.allowance.refused(error)
                raise error from exc
            else:
                self._observe("ok")
                return answer
        raise AssertionError("unreachable")

    def _observe(self, outcome: str) -> None:
        """Count the call; after any answer, pass the org's API usage on (pacing, console)."""
        usage = self.api_usage()
        if usage is not None and self.allowance is not None:
            self.allowance.observe(*usage)
        if self.telemetry is None:
            return
        self.telemetry.partner_call("salesforce", outcome)
        if usage is not None:
            self.telemetry.salesforce_usage(*usage)

    def api_usage(self) -> tuple[int, int] | None:
        """(used, allocation) from the last Sforce-Limit-Info header seen, if any."""
        return self.session.last_usage

    def update_many(self, writes: Sequence[CrmWrite]) -> list[CrmWriteResult]:
        """sObject Collections PATCH, one result per write, in the order of ``writes``.

        The records are sent grouped by sObject type, 200 per call and at most
        ``COLLECTION_CHUNKS`` type runs per call: callers pass rows in id order, and a batch
        that switches type on every record would be refused whole. Salesforce answers in the
        order it was sent, so each answer is put back at its write's place.
        """
        results: list[CrmWriteResult | None] = [None] * len(writes)
        for call in _collection_calls(writes):
            records = [{"attributes": {"type": writes[i].sobject}, "id": writes[i].record_id,
                        **writes[i].fields} for i in call]
            answer = self._call(lambda sf, r=records: sf.restful(
                "composite/sobjects", method="PATCH", json={"allOrNone": False, "records": r}))
            if len(answer) != len(call):
                raise TransientError(f"Salesforce answered {len(answer)} results for "
                                     f"{len(call)} records")
            for index, item in zip(call, answer, strict=True):
                results[index] = _result(item)
        return [r for r in results if r is not None]

    def create(self, sobject: str, fields: dict[str, Any]) -> str:
        answer = self._call(lambda sf: getattr(sf, sobject).create(fields))
        return str(answer["id"])

    def find_id(self, sobject: str, field: str, value: str) -> str | None:
        """The id of the record whose ``field`` equals ``value`` (one SOQL query)."""
        if not all(c.isalnum() or c == "_" for c in sobject + field):
            raise ValueError("object and field names are API names")
        quoted = value.replace("\\", "\\\\").replace("'", "\\'")
        answer = self._call(lambda sf: sf.query(
            f"SELECT Id FROM {sobject} WHERE {field} = '{quoted}' LIMIT 1"))  # noqa: S608
        records = answer.get("records") or []
        return str(records[0]["Id"]) if records else None

    def get(self, sobject: str, record_id: str) -> dict[str, Any]:
        return dict(self._call(lambda sf: getattr(sf, sobject).get(record_id)))

    # What ``paybridge doctor`` reads about the org.
    def login(self) -> None:
        """Log in now (a fresh token), raising the classified error when refused."""
        self._client(renew=True)

    def describe(self, sobject: str) -> dict[str, Any]:
        return dict(self._call(lambda sf: getattr(sf, sobject).describe()))

    def limits(self) -> dict[str, Any]:
        return dict(self._call(lambda sf: sf.limits()))

    def versions(self) -> list[str]:
        """The API versions the org serves (``GET /services/data``)."""
        def fetch(sf: Salesforce) -> Any:
            response = self.session.get(f"https://{sf.sf_instance}/services/data/")
            response.raise_for_status()
            return response.json()
        return [str(v.get("version")) for v in self._call(fetch)]

    # What polling change capture asks (queues/polling.py).
    def integration_user_id(self) -> str:
        """The id of the user Paybridge logs in as, from the token answer's identity URL
        (``https://login.salesforce.com/id/<org id>/<user id>``): its changes are our own
        write-backs, which polling must never send round again."""
        self._client()
        return getattr(self, "identity_url", "").rstrip("/").rsplit("/", 1)[-1]

    def count_records(self, sobject: str, where: str | None = None) -> int:
        """How many records match: one call (``SELECT COUNT()``, whose answer is its
        ``totalSize``: developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/
        sforce_api_calls_soql_select_count.htm)."""
        if not sobject.replace("_", "").isalnum():
            raise ValueError("object names are API names")
        soql = f"SELECT COUNT() FROM {sobject}" + (f" WHERE {where}" if where else "")  # noqa: S608
        return int(self._call(lambda sf: sf.query(soql)).get("totalSize") or 0)

    def changed_since(self, sobject: str, fields: Sequence[str],
                      since: datetime) -> list[dict[str, Any]]:
        """Every record of ``sobject`` with ``SystemModstamp >= since``, deleted ones included
        (``queryAll``), oldest first: one call when idle, one more per ``nextRecordsUrl``."""
        # SOQL dateTime literal, UTC (developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/
        # soql_sosl/sforce_api_calls_soql_select_dateformats.htm).
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return list(self.iter_records(sobject, fields, where=f"SystemModstamp >= {stamp}",
                                      order_by="SystemModstamp ASC", include_deleted=True))

    def wants_bulk(self, count: int) -> bool:
        """Whether a read of ``count`` records goes through a Bulk API 2.0 query job."""
        return bool(self.bulk_threshold) and count > self.bulk_threshold

    def iter_records(self, sobject: str, fields: Sequence[str], *, where: str | None = None,
                     order_by: str | None = None, include_deleted: bool = False,
                     bulk: bool | None = None) -> Iterator[dict[str, Any]]:
        """The records of ``sobject`` matching ``where`` (a SOQL condition), one page in
        memory at a time, as the REST API renders them. One SOQL call per page of up to
        2,000 records, following ``nextRecordsUrl`` (``query`` / ``queryAll`` with
        ``include_deleted``); when the first page says more than ``bulk_threshold`` records
        match, the whole read is a Bulk API 2.0 query job instead (a describe, the job,
        its polls, one call per ``bulk_page_size`` records).

        ``bulk``: the caller's decision when it already knows the count (``wants_bulk`` of
        ``count_records``), so no SOQL page is read only to be dropped (nor its query
        cursor left open: Salesforce keeps few per user)."""
        if not all(c.isalnum() or c == "_" for c in sobject + "".join(fields)):
            raise ValueError("object and field names are API names")
        clauses = f" WHERE {where}" if where else ""
        clauses += f" ORDER BY {order_by}" if order_by else ""
        if bulk:
            yield from self._iter_bulk(sobject, fields, clauses, include_deleted)
            return
        soql = f"SELECT {', '.join(fields)} FROM {sobject}{clauses}"  # noqa: S608
        page = self._call(lambda sf: sf.query(soql, include_deleted=include_deleted))
        if (bulk is None and not page.get("done", True)
                and self.wants_bulk(int(page.get("totalSize") or 0))):
            yield from self._iter_bulk(sobject, fields, clauses, include_deleted)
            return
        yield from page.get("records") or []
        while not page.get("done", True) and page.get("nextRecordsUrl"):
            url = str(page["nextRecordsUrl"])
            page = self._call(lambda sf, u=url: sf.query_more(
                u, identifier_is_url=True, include_deleted=include_deleted))
            yield from page.get("records") or []

    def _iter_bulk(self, sobject: str, fields: Sequence[str], clauses: str,
                   include_deleted: bool) -> Iterator[dict[str, Any]]:
        # Id rides along when not asked for: REST records name it in attributes.url.
        has_id = any(f.lower() == "id" for f in fields)
        selected = list(fields) if has_id else ["Id", *fields]
        read = BulkRead(sobject, f"SELECT {', '.join(selected)} FROM {sobject}{clauses}",  # noqa: S608
                        include_deleted, self.field_types(sobject), self.version,
                        drop_id=not has_id)
        log.info("salesforce read goes through a bulk query job", extra={"sobject": sobject})
        yield from iter_bulk(self._call, read, page_size=self.bulk_page_size,
                             wait=self.bulk_wait)

    def field_types(self, sobject: str) -> dict[str, str]:
        """Field name (lower case) -> describe type, asked once per object."""
        if sobject not in self._field_types:
            described = self.describe(sobject)
            self._field_types[sobject] = {str(f["name"]).lower(): str(f["type"])
                                          for f in described.get("fields") or []}
        return self._field_types[sobject]


def _collection_calls(writes: Sequence[CrmWrite]) -> list[list[int]]:
    """Indexes of ``writes`` per Collections call: grouped by sObject type (types in the
    order they first appear, writes of one type in their own order), a new call at 200
    records or before an 11th type run."""
    first_seen: dict[str, int] = {}
    for w in writes:
        first_seen.setdefault(w.sobject, len(first_seen))
    order = sorted(range(len(writes)), key=lambda i: (first_seen[writes[i].sobject], i))
    calls: list[list[int]] = []
    runs, previous = 0, None
    for index in order:
        kind = writes[index].sobject
        new_run = kind != previous
        if not calls or len(calls[-1]) >= COLLECTION_LIMIT or (
                new_run and runs >= COLLECTION_CHUNKS):
            calls.append([])
            runs, new_run = 0, True
        runs += new_run
        calls[-1].append(index)
        previous = kind
    return calls


def _result(item: dict[str, Any]) -> CrmWriteResult:
    """One record's answer. A refused record (required field, restricted picklist, value too
    long, lookup...) is a data error that retrying cannot fix, unless every error is one of
    the TRANSIENT_CODES (a row lock)."""
    if item.get("success"):
        return CrmWriteResult(ok=True, record_id=item.get("id"))
    errors = [e for e in item.get("errors") or [] if isinstance(e, dict)] or [{}]
    codes = [error_code(e) for e in errors]
    return CrmWriteResult(ok=False, record_id=item.get("id"), code=codes[0],
                          message=describe(errors),
                          transient=all(c in TRANSIENT_CODES for c in codes))


def paused_for(pause: Any, error: PausedError, default: float) -> float:
    """How long rows should wait after a PausedError: what the error or the shared pause
    says, else ``default`` (at least a second)."""
    until = pause.until() if pause is not None else None
    wait = error.retry_after or (until - time.time() if until else default)
    return max(1.0, wait)
