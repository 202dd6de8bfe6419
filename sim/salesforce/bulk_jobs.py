"""Bulk API 2.0 query jobs of one org: their state over time and their CSV result sets.

Salesforce documents a query job's life (Bulk API 2.0 and Bulk API Developer Guide, "Job
States": https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_bulk_v2/bulk_api_2_job_states.htm):
created ``UploadComplete`` ("the job is ready to be processed"), then ``InProgress``, then
``JobComplete`` (or ``Failed`` / ``Aborted``). Here the query runs when the job is created and
the job then takes ``processing_seconds`` (the ``bulk_query_ms`` fault) to complete: the first
half of it ``UploadComplete``, the second ``InProgress``.

No Flask here: ``Org`` keeps the jobs, ``sim.salesforce.bulk2`` serves them.
"""

from __future__ import annotations

import base64
import csv
import io
import time
from dataclasses import dataclass, field
from typing import Any

# "Get Results for a Query Job": maxRecords is optional and, without it, "the server uses a
# default value based on the service"
# (https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/query_get_job_results.htm).
# The figure is not published; 50,000 is simple-salesforce's own page size (bulk2.py
# DEFAULT_QUERY_PAGE_SIZE).
DEFAULT_MAX_RECORDS = 50_000
# "Create a Job" (query): columnDelimiter and lineEnding, with COMMA and LF as defaults
# (https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/query_create_job.htm).
DELIMITERS = {"BACKQUOTE": "`", "CARET": "^", "COMMA": ",", "PIPE": "|", "SEMICOLON": ";",
              "TAB": "\t"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
FINAL_STATES = frozenset({"JobComplete", "Aborted", "Failed"})


def csv_value(kind: str, value: Any) -> str:
    """One cell as Bulk API query results print it: booleans ``true``/``false``, numbers
    as written, dateTimes in the ``yyyy-MM-ddTHH:mm:ss.SSSZ`` form ("Valid Date Format in
    Records", https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/datafiles_date_format.htm),
    null as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if kind == "datetime" and isinstance(value, str) and value.endswith("+0000"):
        return value.removesuffix("+0000") + "Z"
    return str(value)


def locator_for(offset: int) -> str:
    """An opaque locator (the documented example, ``MTAwMDA``, is base64 of an offset)."""
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def offset_of(locator: str) -> int | None:
    try:
        text = base64.b64decode(locator + "=" * (-len(locator) % 4), validate=True).decode()
        return int(text) if text.isdigit() else None
    except ValueError:
        return None


@dataclass
class QueryJob:
    id: str
    operation: str  # query | queryAll
    object: str
    query: str
    created_by: str
    created_date: str
    api_version: str  # "59.0"
    column_delimiter: str
    line_ending: str
    header: list[str]
    rows: list[list[str]]  # the result set, already rendered as CSV cells
    processing_seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)
    aborted: bool = False
    modstamp: str = ""

    def state(self) -> str:
        if self.aborted:
            return "Aborted"
        elapsed = time.monotonic() - self.started
        if elapsed >= self.processing_seconds:
            return "JobComplete"
        return "UploadComplete" if elapsed < self.processing_seconds / 2 else "InProgress"

    def info(self, *, fresh: bool = False) -> dict[str, Any]:
        """The job info body ("Get Information About a Query Job"); ``fresh``: the create
        answer, always ``UploadComplete`` (Step 6: Query Jobs walkthrough)."""
        state = "UploadComplete" if fresh else self.state()
        done = state == "JobComplete"
        return {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": self.created_date,
            "systemModstamp": self.modstamp or self.created_date,
            "state": state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.api_version),
            "jobType": "V2Query",
            "lineEnding": self.line_ending,
            "columnDelimiter": self.column_delimiter,
            "numberRecordsProcessed": len(self.rows) if done else 0,
            "retries": 0,
            "totalProcessingTime": int(self.processing_seconds * 1000) if done else 0,
        }

    def page(self, offset: int, max_records: int) -> tuple[str, int, str]:
        """(CSV body, records in it, next locator or ``"null"``) from ``offset`` on. Every
        set starts with the header row; values are quoted as in the documented example."""
        rows = self.rows[offset:offset + max_records]
        out = io.StringIO()
        writer = csv.writer(out, delimiter=DELIMITERS[self.column_delimiter],
                            lineterminator=LINE_ENDINGS[self.line_ending],
                            quoting=csv.QUOTE_NONNUMERIC)
        writer.writerow(self.header)
        writer.writerows(rows)
        following = offset + len(rows)
        locator = locator_for(following) if following < len(self.rows) else "null"
        return out.getvalue(), len(rows), locator
