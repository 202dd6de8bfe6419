"""sObject Collections: create, update and delete up to 200 records, retrieve up to 2000.

One Collections request is one API call, however many records it carries. The answer is
200 with one result per record, in order; a record's failure is reported in its result
(``success: false``) unless the request itself is malformed (400). Records of different
types may be mixed, in at most ten "chunks" (runs of one type).

Source: Salesforce REST API Developer Guide, "Create Records Using sObject Collections" and
"Update Records Using sObject Collections"
(https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_create.htm,
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_update.htm).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from sim.salesforce import errors
from sim.salesforce.errors import SfError
from sim.salesforce.org import WriteRequest, WriteResult
from sim.salesforce.schema import normalize_id
from sim.salesforce.web import (
    current_org,
    current_user,
    id_list,
    json_object,
    json_response,
)

bp = Blueprint("sf_composite", __name__)

MAX_WRITE = 200
MAX_RETRIEVE = 2000
# "If the request body includes objects of more than one type, they are processed as chunks
# [...] {account1, account2, contact1, account3} [is] processed in three chunks [...] A single
# request can process up to 10 chunks." (the create and update pages cited above)
MAX_CHUNKS = 10


def _too_many(limit: int) -> SfError:
    return SfError(
        400,
        "EXCEEDED_ID_LIMIT",
        f"record limit reached. cannot submit more than {limit} records into this call",
    )


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _translate(result: WriteResult, record_id: str | None) -> WriteResult:
    """Inside Collections a missing record is a cross-reference error, not a 404."""
    error = result.error
    if error is None or error.code not in ("NOT_FOUND", "INVALID_TYPE") or not record_id:
        return result
    if normalize_id(record_id) is None:
        result.error = SfError(400, "MALFORMED_ID", f"malformed id {record_id}", ["Id"])
    elif error.code == "NOT_FOUND" or current_org().schema.for_id(record_id) is None:
        result.error = SfError(
            400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["Id"]
        )
    return result


def _records(body: dict[str, Any]) -> list[dict[str, Any]]:
    records = body.get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise SfError(400, "JSON_PARSER_ERROR", "records: a list of sObjects is required")
    if len(records) > MAX_WRITE:
        raise _too_many(MAX_WRITE)
    if chunk_count([_type_of(r) for r in records]) > MAX_CHUNKS:
        raise errors.too_many_chunks(MAX_CHUNKS)
    return records


def chunk_count(types: list[str]) -> int:
    """How many chunks Salesforce cuts a list into: a new one each time the type changes."""
    schema = current_org().schema
    canonical = [(found.name if (found := schema.get(t)) else t) for t in types]
    return sum(1 for n, t in enumerate(canonical) if n == 0 or t != canonical[n - 1])


def _type_of(record: dict[str, Any]) -> str:
    attributes = record.get("attributes")
    kind = attributes.get("type") if isinstance(attributes, dict) else None
    return kind if isinstance(kind, str) else ""


def _record_id(record: dict[str, Any]) -> str | None:
    for key, value in record.items():
        if key.lower() == "id" and isinstance(value, str):
            return value
    return None


def _write(requests: list[WriteRequest], all_or_none: bool) -> Response:
    org = current_org()
    results = org.write(requests, current_user(), all_or_none=all_or_none)
    results = [_translate(r, q.record_id) for r, q in zip(results, requests, strict=True)]
    with org.lock:
        org.stats.collections_records += sum(1 for r in results if r.error is None)
    return json_response([r.as_json() for r in results])


@bp.route(
    "/services/data/<version>/composite/sobjects",
    methods=["POST", "PATCH", "DELETE"],
    strict_slashes=False,
)
def collection(version: str) -> Response:
    if request.method == "DELETE":
        ids = id_list(request.args.get("ids"))
        if len(ids) > MAX_WRITE:
            raise _too_many(MAX_WRITE)
        schema = current_org().schema
        requests = []
        for record_id in ids:
            sobject = schema.for_id(record_id)
            requests.append(WriteRequest("delete", sobject.name if sobject else "", record_id))
        return _write(requests, _flag(request.args.get("allOrNone", "false")))
    body = json_object()
    records = _records(body)
    if request.method == "POST":
        requests = [
            WriteRequest("insert", _type_of(r), body={k: v for k, v in r.items()
                                                      if k != "attributes"})
            for r in records
        ]
    else:
        requests = [
            WriteRequest("update", _type_of(r), _record_id(r),
                         {k: v for k, v in r.items() if k != "attributes"})
            for r in records
        ]
    return _write(requests, _flag(body.get("allOrNone", False)))


@bp.route(
    "/services/data/<version>/composite/sobjects/<sobject>",
    methods=["GET", "POST"],
    strict_slashes=False,
)
def retrieve(version: str, sobject: str) -> Response:
    """Records by id, ``null`` for an id that is unknown, deleted or of another type."""
    if request.method == "POST":
        body = json_object()
        ids = [str(i) for i in body.get("ids") or []]
        wanted = [str(f) for f in body.get("fields") or []]
    else:
        ids = id_list(request.args.get("ids"))
        wanted = id_list(request.args.get("fields"))
    if len(ids) > MAX_RETRIEVE:
        raise _too_many(MAX_RETRIEVE)
    org = current_org()
    with org.lock:
        found = org.store.sobject(sobject)
        names = org.store.resolve_fields(found, wanted) if wanted else list(found.fields)
        if "Id" not in names:
            names = ["Id", *names]
        out: list[dict[str, Any] | None] = []
        for record_id in ids:
            record = org.store.find(record_id)
            if record is None or record.deleted or record.sobject is not found:
                out.append(None)
            else:
                out.append(org.store.render(record, version, names))
    return json_response(out)
