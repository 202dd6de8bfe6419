"""Salesforce error shapes.

REST calls that fail as a whole answer a JSON *list* of ``{"message", "errorCode"}`` objects
(DML failures add ``"fields"``). Inside sObject Collections results, each failed record
carries ``{"statusCode", "message", "fields"}`` instead. Both are built from ``SfError``.
"""

from __future__ import annotations

from typing import Any

NOT_FOUND_MESSAGE = "The requested resource does not exist"


class SfError(Exception):
    """A failure the API reports with ``code``; ``fields`` is set for record-level errors."""

    def __init__(
        self, status: int, code: str, message: str, fields: list[str] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def rest_body(self) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            body["fields"] = self.fields
        return [body]

    def result_error(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields or []}


def not_found() -> SfError:
    return SfError(404, "NOT_FOUND", NOT_FOUND_MESSAGE)


def entity_deleted() -> SfError:
    return SfError(404, "ENTITY_IS_DELETED", "entity is deleted", [])


def invalid_field(field: str, sobject: str) -> SfError:
    return SfError(400, "INVALID_FIELD", f"No such column '{field}' on sobject of type {sobject}",
                   [field])


def read_only_field(field: str) -> SfError:
    return SfError(
        400,
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        f"Unable to create/update fields: {field}. Please check the security settings of this "
        "field and verify that it is read/write for your user or client application.",
        [field],
    )


def unable_to_lock(record_id: str) -> SfError:
    return SfError(
        400,
        "UNABLE_TO_LOCK_ROW",
        f"unable to obtain exclusive access to this record or 1 records: {record_id}",
        [],
    )


def invalid_session() -> SfError:
    return SfError(401, "INVALID_SESSION_ID", "Session expired or invalid")


def request_limit_exceeded() -> SfError:
    return SfError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")


def malformed_query(message: str) -> SfError:
    return SfError(400, "MALFORMED_QUERY", message)


def json_parser_error(message: str) -> SfError:
    return SfError(400, "JSON_PARSER_ERROR", message)


def too_many_chunks(limit: int) -> SfError:
    """More type runs in one Collections request than Salesforce processes.

    The limit is documented (see ``sim.salesforce.composite``); the message is the one the
    platform gives for the same limit in DML ("Cannot have more than 10 chunks in a single
    operation. Please rearrange the data to reduce chunking."), as quoted in public reports.
    The REST errorCode is not documented anywhere we could find; INVALID_BATCH_REQUEST is a
    stand-in that Paybridge does not rely on (it never sends more than one chunk per type).
    """
    return SfError(
        400,
        "INVALID_BATCH_REQUEST",
        f"Cannot have more than {limit} chunks in a single operation. Please rearrange the "
        "data to reduce chunking.",
    )
