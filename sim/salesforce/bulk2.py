"""Bulk API 2.0 query jobs: create, poll, page through CSV results, abort, delete, list.

Routes and bodies follow the Bulk API 2.0 and Bulk API Developer Guide, "Query Jobs"
(https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/queries.htm):

    POST   /services/data/vXX.X/jobs/query                 create (operation query|queryAll)
    GET    /services/data/vXX.X/jobs/query                 every query job (1,000 a page)
    GET    /services/data/vXX.X/jobs/query/<id>            job info (state, records processed)
    PATCH  /services/data/vXX.X/jobs/query/<id>            abort ({"state": "Aborted"})
    DELETE /services/data/vXX.X/jobs/query/<id>            delete
    GET    /services/data/vXX.X/jobs/query/<id>/results    CSV, ?maxRecords=&locator=

The query is the emulator's SOQL subset (``sim.salesforce.soql``) less what Bulk API 2.0
refuses ("doesn't support SOQL queries that include ... GROUP BY, OFFSET, or TYPEOF
clauses; aggregate functions such as COUNT()", same page). Each call passes the REST guard
(``sim.salesforce.api``): one unit of the daily allocation, whatever it does.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from sim.salesforce import errors, query, soql
from sim.salesforce.bulk_jobs import (
    DEFAULT_MAX_RECORDS,
    DELIMITERS,
    LINE_ENDINGS,
    QueryJob,
    csv_value,
    locator_for,
    offset_of,
)
from sim.salesforce.errors import SfError
from sim.salesforce.store import sf_now
from sim.salesforce.web import current_org, current_user, json_object, json_response, no_content

bp = Blueprint("sf_bulk2", __name__)

BASE = "/services/data/<version>/jobs/query"
OPERATIONS = ("query", "queryAll")
# "Get Information About All Query Jobs": at most 1,000 jobs per answer, the rest behind
# nextRecordsUrl (https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/query_get_all_jobs.htm).
LIST_PAGE = 1000


def _enum_error(name: str, value: object) -> SfError:
    # Salesforce deserialises the job body into enums; an unknown value fails the parse.
    # The message wording is ours (not documented).
    return errors.json_parser_error(f"Cannot deserialize value of {name}: {value!r}")


def _unsupported(message: str) -> SfError:
    # Stand-in code: the guide lists the unsupported clauses but not the REST errorCode.
    return SfError(400, "INVALIDJOB", message)


def _job(job_id: str) -> QueryJob:
    """The job, or the REST API's NOT_FOUND (caller holds the org lock)."""
    job = current_org().query_jobs.get(job_id)
    if job is None:
        raise errors.not_found()
    return job


def _version(path_version: str) -> str:
    return path_version.removeprefix("v")


@bp.post(BASE, strict_slashes=False)
def create(version: str) -> Response:
    body = json_object()
    operation = body.get("operation")
    if operation not in OPERATIONS:
        raise _enum_error("OperationEnum", operation)
    delimiter = body.get("columnDelimiter") or "COMMA"
    if delimiter not in DELIMITERS:
        raise _enum_error("ColumnDelimiterEnum", delimiter)
    line_ending = body.get("lineEnding") or "LF"
    if line_ending not in LINE_ENDINGS:
        raise _enum_error("LineEndingEnum", line_ending)
    text = body.get("query")
    if not isinstance(text, str) or not text.strip():
        raise _unsupported("A query is required for a query job")
    parsed = soql.parse(text)
    if parsed.count_only:
        raise _unsupported("Aggregate queries (COUNT()) are not supported by Bulk API 2.0")
    if parsed.offset:
        raise _unsupported("OFFSET is not supported by Bulk API 2.0")
    org = current_org()
    with org.lock:
        found = query.select(parsed, include_deleted=operation == "queryAll")
        kinds = [found.sobject.spec(name).type for name in found.fields]  # type: ignore[union-attr]
        rows = [[csv_value(kind, r.values.get(name)) for name, kind in
                 zip(found.fields, kinds, strict=True)] for r in found.records]
        org.stats.query_records += len(rows)
        job = QueryJob(
            id=org.ids.new("750"), operation=operation, object=found.sobject.name,
            query=text, created_by=current_user().id, created_date=sf_now(),
            api_version=_version(version), column_delimiter=delimiter,
            line_ending=line_ending, header=found.fields, rows=rows,
            processing_seconds=org.faults.bulk_query_ms / 1000)
        org.query_jobs[job.id] = job
        return json_response(job.info(fresh=True))


@bp.get(BASE, strict_slashes=False)
def list_jobs(version: str) -> Response:
    org = current_org()
    start = offset_of(request.args.get("queryLocator", "")) or 0
    wanted = request.args.get("jobType")
    with org.lock:
        jobs = [j for j in org.query_jobs.values() if wanted in (None, "V2Query")]
        page = [j.info() for j in jobs[start:start + LIST_PAGE]]
    more = start + LIST_PAGE < len(jobs)
    following = locator_for(start + LIST_PAGE)
    next_url = f"/services/data/{version}/jobs/query?queryLocator={following}" if more else None
    return json_response({"done": not more, "records": page, "nextRecordsUrl": next_url})


@bp.get(f"{BASE}/<job_id>")
def info(version: str, job_id: str) -> Response:
    org = current_org()
    with org.lock:
        return json_response(_job(job_id).info())


@bp.patch(f"{BASE}/<job_id>")
def abort(version: str, job_id: str) -> Response:
    """"Abort a Query Job": the body's only property is ``state: Aborted``."""
    body = json_object()
    if body.get("state") != "Aborted":
        raise _enum_error("state (only Aborted is accepted for a query job)", body.get("state"))
    org = current_org()
    with org.lock:
        job = _job(job_id)
        if job.state() == "JobComplete":
            # Stand-in code: a finished job cannot be aborted; the errorCode is not documented.
            raise SfError(400, "INVALIDJOBSTATE", "Cannot abort a job that is complete")
        job.aborted = True
        job.modstamp = sf_now()
        return json_response(job.info())


@bp.delete(f"{BASE}/<job_id>")
def delete(version: str, job_id: str) -> Response:
    """"Delete a Query Job": allowed once the job is UploadComplete, JobComplete, Aborted or
    Failed; 204 No Content."""
    org = current_org()
    with org.lock:
        job = _job(job_id)
        if job.state() == "InProgress":
            raise SfError(400, "INVALIDJOBSTATE", "Cannot delete a job that is in progress")
        del org.query_jobs[job_id]
    return no_content()


@bp.get(f"{BASE}/<job_id>/results")
def results(version: str, job_id: str) -> Response:
    """"Get Results for a Query Job": the job must be JobComplete, and asked with the API
    version it was created with ("Otherwise, the call returns a 409 error")."""
    raw_max = request.args.get("maxRecords")
    max_records = DEFAULT_MAX_RECORDS
    if raw_max is not None:
        if not raw_max.isdigit() or int(raw_max) < 1:
            raise SfError(400, "INVALID_MAX_RECORDS",  # stand-in code
                          f"maxRecords must be a positive whole number, not {raw_max!r}")
        max_records = int(raw_max)
    org = current_org()
    with org.lock:
        job = _job(job_id)
        if job.api_version != _version(version):
            raise SfError(409, "API_VERSION_MISMATCH",  # stand-in code, documented status
                          f"The job was created in API version {job.api_version}")
        state = job.state()
        if state != "JobComplete":
            # Status from the guide's example of a failed results request (v47.0, 412
            # Precondition Failed); the code is a stand-in.
            raise SfError(412, "JOB_NOT_COMPLETE",
                          f"Can only download the results of a completed job; the job is "
                          f"{state}")
        locator = request.args.get("locator")
        offset = 0 if locator in (None, "") else offset_of(locator)
        if offset is None or offset > len(job.rows):
            raise SfError(400, "INVALID_LOCATOR", f"invalid locator: {locator}")  # stand-in
        body, count, following = job.page(offset, max_records)
    response = Response(body, status=200, mimetype="text/csv")
    response.headers["Sforce-NumberOfRecords"] = str(count)
    response.headers["Sforce-Locator"] = following
    return response
