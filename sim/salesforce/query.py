"""``query`` / ``queryAll``: run a SOQL subset (see ``soql``) over the org's records.

Results come in batches of 2000, like the real API: a longer result answers ``done: false``
with a ``nextRecordsUrl`` to fetch the rest from (each fetch is one more API call).
``queryAll`` also returns deleted records (``IsDeleted`` true), and its ``nextRecordsUrl``
says ``query`` too: "Although the nextRecordsUrl has query in the URL, it still provides
remaining results from the initial QueryAll request. The remaining results include deleted
records that matched the initial query" (REST API Developer Guide, "QueryAll":
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_queryall.htm).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, request

from sim.salesforce import errors, soql
from sim.salesforce.errors import SfError
from sim.salesforce.schema import SObjectType
from sim.salesforce.store import Record
from sim.salesforce.web import current_org, json_response

bp = Blueprint("sf_query", __name__)

BATCH_SIZE = 2000


def _invalid_type(name: str) -> SfError:
    return SfError(
        400,
        "INVALID_TYPE",
        f"sObject type '{name}' is not supported. If you are attempting to use a custom object, "
        "be sure to append the '__c' after the entity name. Please reference your WSDL or the "
        "describe call for the appropriate names.",
    )


def _invalid_column(name: str, sobject: str) -> SfError:
    return SfError(
        400,
        "INVALID_FIELD",
        f"No such column '{name}' on entity '{sobject}'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name. Please reference your "
        "WSDL or the describe call for the appropriate names.",
    )


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, str):
        return (1, value.lower())
    return (0, value)


@dataclass
class Selection:
    """What a query selects: its type, the fields in the order asked for, and the matching
    records in the query's order (before rendering)."""

    sobject: SObjectType
    fields: list[str]
    records: list[Record]
    count_only: bool


def select(parsed: soql.Query, include_deleted: bool) -> Selection:
    """Resolve a parsed query against the org and run it; caller holds the org lock.
    INVALID_TYPE / INVALID_FIELD for names the schema does not know."""
    org = current_org()
    sobject = org.schema.get(parsed.sobject)
    if sobject is None:
        raise _invalid_type(parsed.sobject)
    selected: list[str] = []
    for name in parsed.fields:
        canonical = sobject.canonical_field(name)
        if canonical is None:
            raise _invalid_column(name, sobject.name)
        if canonical not in selected:
            selected.append(canonical)
    for name in parsed.where_fields + ([parsed.order_by[0]] if parsed.order_by else []):
        if sobject.canonical_field(name) is None:
            raise _invalid_column(name, sobject.name)
    matches = []
    for record in org.store.all_of(sobject, include_deleted):
        by_lower = {k.lower(): v for k, v in record.values.items()}
        if parsed.where is None or parsed.where(by_lower):
            matches.append(record)
    if parsed.order_by:
        key, descending, nulls_last = parsed.order_by
        canonical_key = sobject.canonical_field(key) or key
        present = [r for r in matches if r.values.get(canonical_key) is not None]
        absent = [r for r in matches if r.values.get(canonical_key) is None]
        present.sort(key=lambda r: _sort_key(r.values[canonical_key]), reverse=descending)
        matches = present + absent if nulls_last else absent + present
    matches = matches[parsed.offset :]
    if parsed.limit is not None:
        matches = matches[: parsed.limit]
    return Selection(sobject, selected, matches, parsed.count_only)


def _run(text: str, version: str, include_deleted: bool) -> Response:
    parsed = soql.parse(text)
    org = current_org()
    with org.lock:
        found = select(parsed, include_deleted)
        if found.count_only:
            return json_response({"totalSize": len(found.records), "done": True, "records": []})
        rows = [org.store.render(r, version, found.fields) for r in found.records]
        org.stats.query_records += len(rows)
        return _page(rows, len(rows), version)


def _page(rows: list[dict[str, Any]], total: int, version: str) -> Response:
    """The first batch of ``rows``; the rest is parked under a locator (caller holds lock)."""
    body: dict[str, Any] = {"totalSize": total, "done": len(rows) <= BATCH_SIZE}
    if len(rows) > BATCH_SIZE:
        locator = current_org().save_cursor(total, rows[BATCH_SIZE:])
        body["nextRecordsUrl"] = f"/services/data/{version}/query/{locator}-{BATCH_SIZE}"
    body["records"] = rows[:BATCH_SIZE]
    return json_response(body)


def _more(version: str, locator: str) -> Response:
    org = current_org()
    cursor = locator.partition("-")[0]
    with org.lock:
        parked = org.cursors.pop(cursor, None)
        if parked is None:
            raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        total, rows = parked
        return _page(rows, total, version)


def _query_text() -> str:
    text = request.args.get("q")
    if not text:
        raise errors.malformed_query("A query string must be provided with the q parameter")
    return text


@bp.get("/services/data/<version>/query", strict_slashes=False)
def query(version: str) -> Response:
    return _run(_query_text(), version, include_deleted=False)


@bp.get("/services/data/<version>/queryAll", strict_slashes=False)
def query_all(version: str) -> Response:
    return _run(_query_text(), version, include_deleted=True)


@bp.get("/services/data/<version>/query/<locator>")
def query_more(version: str, locator: str) -> Response:
    return _more(version, locator)


@bp.get("/services/data/<version>/queryAll/<locator>")
def query_all_more(version: str, locator: str) -> Response:
    return _more(version, locator)
