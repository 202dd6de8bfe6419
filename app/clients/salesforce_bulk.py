"""Reading a large object with a Bulk API 2.0 query job, through simple-salesforce's bulk2
client, one CSV result set in memory at a time.

A job costs a handful of calls whatever its size (create, a few polls, one call per result
set of ``page_size`` records) where SOQL pages cost one call per 2,000 records. The rows come
back as CSV text; ``rest_value`` turns each cell back into what the REST API's JSON carries
(booleans, numbers, null, dateTimes in the ``+0000`` form) from the object's describe, so a
caller cannot tell which path a record took. Every call goes through the caller's ``call``
(``SalesforceClient._call``: session renewal, error classification, pacing, telemetry).

Sources: Bulk API 2.0 and Bulk API Developer Guide, "Query Jobs"
(https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/queries.htm),
"Get Results for a Query Job" (locator, maxRecords, Sforce-Locator "null" on the last set).
"""

from __future__ import annotations

import csv
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import Operation

from app.clients.errors import PartnerError, PermanentError, TransientError

log = logging.getLogger(__name__)
T = TypeVar("T")
Call = Callable[[Callable[[Salesforce], T]], T]

NUMBER_TYPES = frozenset({"double", "currency", "percent"})
_WHOLE = re.compile(r"-?\d+")


def rest_value(kind: str, text: str) -> Any:
    """A CSV cell as the REST API's JSON gives the same field of type ``kind`` (the
    describe's type name): empty is null, as Salesforce stores no empty text."""
    if text == "":
        return None
    if kind == "boolean":
        return text.lower() == "true"
    if kind == "int":
        return int(text)
    if kind in NUMBER_TYPES:
        # JSON numbers: a whole number reads as int, anything else as float.
        return int(text) if _WHOLE.fullmatch(text) else float(text)
    if kind == "datetime" and text.endswith("Z"):
        return text[:-1] + "+0000"
    return text


@dataclass(frozen=True)
class BulkRead:
    """One whole-object read: ``soql`` selects fields of ``sobject``, Id among them."""

    sobject: str
    soql: str
    include_deleted: bool
    types: Mapping[str, str]  # field name (lower case) -> describe type
    version: str  # "59.0", for the records' attributes.url
    drop_id: bool  # Id was added for attributes.url only


def _jobs(sf: Salesforce, sobject: str) -> Any:
    # simple-salesforce's bulk2 job client, the one its own Type.query() drives; it is
    # built per call so a renewed session's token is the one used.
    return getattr(sf.bulk2, sobject)._client


def iter_bulk(call: Call[Any], read: BulkRead, *, page_size: int, wait: float,
              first_poll: float = 0.5, max_poll: float = 10.0,
              sleep: Callable[[float], None] = time.sleep) -> Iterator[dict[str, Any]]:
    """Create the job, wait for it (polls back off from ``first_poll`` to ``max_poll``;
    past ``wait`` seconds the job is aborted and a TransientError raised), then yield its
    records set by set."""
    operation = Operation.query_all if read.include_deleted else Operation.query
    job = call(lambda sf: _jobs(sf, read.sobject).create_job(operation, read.soql))
    job_id = str(job["id"])
    log.info("salesforce bulk query job created",
             extra={"bulk_job_id": job_id, "sobject": read.sobject})
    _await(call, read.sobject, job_id, wait, first_poll, max_poll, sleep)
    locator = ""
    while True:
        page = call(lambda sf, at=locator: _jobs(sf, read.sobject).get_query_results(
            job_id, at, page_size))
        yield from _records(str(page["records"]), read)
        locator = str(page.get("locator") or "")
        if not locator:
            return


def _await(call: Call[Any], sobject: str, job_id: str, wait: float, first_poll: float,
           max_poll: float, sleep: Callable[[float], None]) -> None:
    deadline = time.monotonic() + wait
    delay = first_poll
    while True:
        sleep(max(0.0, min(delay, deadline - time.monotonic())))
        info = call(lambda sf: _jobs(sf, sobject).get_job(job_id, True))
        state = str(info.get("state"))
        if state == "JobComplete":
            return
        if state in ("Failed", "Aborted"):
            raise PermanentError(f"Salesforce bulk query job {job_id} ended {state}: "
                                 f"{info.get('errorMessage') or 'no message'}")
        if time.monotonic() >= deadline:
            _abort(call, sobject, job_id)
            raise TransientError(f"Salesforce bulk query job {job_id} did not complete "
                                 f"within {wait:g}s (state {state})")
        delay = min(delay * 2, max_poll)


def _abort(call: Call[Any], sobject: str, job_id: str) -> None:
    """Best effort: a job left running still counts against the org's daily job limit."""
    try:
        call(lambda sf: _jobs(sf, sobject).abort_job(job_id, True))
    except PartnerError as exc:
        log.warning("salesforce bulk query job not aborted",
                    extra={"bulk_job_id": job_id, "error": str(exc)})


def _lines(text: str) -> Iterator[str]:
    """The text's lines, endings kept (the csv module joins a quoted value's lines again),
    one at a time: ``io.StringIO`` would copy a result set into a buffer of four bytes per
    character, some 60 MB for a set of 50,000 records."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end + 1
        yield text[start:end]
        start = end


def _records(text: str, read: BulkRead) -> Iterator[dict[str, Any]]:
    """The records of one result set (the job's defaults: comma, LF), as REST renders them:
    attributes first, then the fields asked for."""
    for row in csv.DictReader(_lines(text)):
        record: dict[str, Any] = {"attributes": {
            "type": read.sobject,
            "url": f"/services/data/v{read.version}/sobjects/{read.sobject}/{row.get('Id')}"}}
        # The header spells the fields as Salesforce does, in the order asked for (API 50.0
        # and later), as the REST API's JSON keys do.
        for name, cell in row.items():
            if not (read.drop_id and name == "Id"):
                record[name] = rest_value(read.types.get(name.lower(), "string"), cell)
        yield record
