"""REST "sObject Get Updated" and "sObject Get Deleted": the ids changed in a time span.

    GET /services/data/vXX.X/sobjects/<type>/updated/?start=<dateTime>&end=<dateTime>
        {"ids": [...], "latestDateCovered": "..."}
    GET /services/data/vXX.X/sobjects/<type>/deleted/?start=<dateTime>&end=<dateTime>
        {"deletedRecords": [{"id", "deletedDate"}], "earliestDateAvailable", "latestDateCovered"}

Rules, from https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_getupdated.htm,
.../resources_getdeleted.htm and the SOAP API's getUpdated()/getDeleted() "Rules and
Guidelines" (https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_getupdated.htm):
- "The API ignores the seconds portion of the specified dateTime value" (12:30:15 is 12:30:00).
- start must precede end, else INVALID_REPLICATION_DATE.
- Updated: "Results are returned for no more than 30 days previous to the day the call is
  executed"; deleted: no more than 15 days. An earlier start is INVALID_REPLICATION_DATE.
- "There is a limit of 600,000 IDs ... EXCEEDED_ID_LIMIT" (``SimConfig.replication_id_limit``).
- The change date is SystemModstamp; a deleted record's deletedDate "is obtained using the
  SystemModstamp system field".
- latestDateCovered is at most end: here end, or the current minute when end lies ahead.
The span is taken as [start, end); the documents do not say which ends are inclusive.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, request

from sim.salesforce.errors import SfError
from sim.salesforce.modstamp import format_stamp
from sim.salesforce.store import Record
from sim.salesforce.web import current_org, json_response

bp = Blueprint("sf_replication", __name__)

UPDATED_DAYS, DELETED_DAYS = 30, 15


def _invalid_date(message: str) -> SfError:
    return SfError(400, "INVALID_REPLICATION_DATE", message)


def _parameter(name: str) -> datetime:
    raw = request.args.get(name)
    if not raw:
        # Stand-in code: the documents do not say what a missing parameter answers.
        raise SfError(400, "MISSING_ARGUMENT", f"The '{name}' parameter is required")
    try:
        moment = datetime.fromisoformat(raw.strip().replace(" ", "+"))
    except ValueError:
        raise _invalid_date(f"'{name}' is not a valid dateTime: {raw}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _span(days: int) -> tuple[datetime, datetime, datetime]:
    """(start, end, latestDateCovered) of the request, minute-granular and checked."""
    start, end = _parameter("start"), _parameter("end")
    if start >= end:
        raise _invalid_date("start must be before end")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    if start < now - timedelta(days=days):
        raise _invalid_date(f"start must be within the last {days} days")
    return start, end, min(end, now)


def _stamp(record: Record) -> datetime:
    return datetime.fromisoformat(str(record.values["SystemModstamp"]))


def _within(sobject_name: str, start: datetime, end: datetime,
            deleted: bool) -> list[Record]:
    org = current_org()
    sobject = org.store.sobject(sobject_name)
    found = [r for r in org.store.all_of(sobject, include_deleted=True)
             if r.deleted == deleted and start <= _stamp(r) < end]
    if len(found) > org.config.replication_id_limit:
        raise SfError(400, "EXCEEDED_ID_LIMIT",
                      f"More than {org.config.replication_id_limit} ids: choose start and end "
                      "dates that are closer together")
    return sorted(found, key=_stamp)


@bp.get("/services/data/<version>/sobjects/<sobject>/updated/", strict_slashes=False)
def updated(version: str, sobject: str) -> Response:
    start, end, covered = _span(UPDATED_DAYS)
    org = current_org()
    with org.lock:
        ids = [r.id for r in _within(sobject, start, end, deleted=False)]
    return json_response({"ids": ids, "latestDateCovered": format_stamp(covered)})


@bp.get("/services/data/<version>/sobjects/<sobject>/deleted/", strict_slashes=False)
def deleted(version: str, sobject: str) -> Response:
    start, end, covered = _span(DELETED_DAYS)
    org = current_org()
    with org.lock:
        gone = [{"id": r.id, "deletedDate": r.values["SystemModstamp"]}
                for r in _within(sobject, start, end, deleted=True)]
        # Nothing is ever purged from this org's delete log: it reaches back to its start.
        earliest = format_stamp(org.started_at.replace(second=0, microsecond=0))
    return json_response({"deletedRecords": gone, "earliestDateAvailable": earliest,
                          "latestDateCovered": format_stamp(covered)})
