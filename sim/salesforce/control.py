"""The control API under ``/sim``: no auth, no API allocation, for tests and the demo.

Record writes here act as the default *regular* user, so they fire the trigger exactly like
a person editing records in the CRM would; they are never hit by the lock-row fault.
Failures of record calls use the REST API's error list; other failures answer
``{"error": ...}``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from sim.salesforce.errors import SfError
from sim.salesforce.org import WriteRequest
from sim.salesforce.web import current_org, json_object, json_response, no_content

bp = Blueprint("sf_control", __name__, url_prefix="/sim")

VERSION = "v59.0"
FAULT_KEYS = frozenset(
    {"request_limit_exceeded", "unable_to_lock_row", "expire_sessions", "latency_ms",
     "daily_limit", "bulk_query_ms"}
)


def _truthy(name: str) -> bool:
    return request.args.get(name, "").lower() in ("1", "true", "yes")


def _render(record_id: str) -> dict[str, Any]:
    org = current_org()
    with org.lock:
        record = org.store.find(record_id)
        assert record is not None  # just written
        return org.store.render(record, VERSION)


@bp.get("/health")
def health() -> Response:
    return json_response({"ok": True})


@bp.get("/info")
def info() -> Response:
    """Who can log in and what the org holds: handy when wiring a client up by hand."""
    org = current_org()
    return json_response(
        {
            "org_id": org.auth.org_id,
            "instance_url": request.host_url.rstrip("/"),
            "client_id": org.config.client_id,
            "integration_user": {"id": org.auth.integration_user.id,
                                 "username": org.auth.integration_user.username},
            "users": [{"id": u.id, "username": u.username} for u in org.auth.users.values()],
            "sobjects": {t.name: {"key_prefix": t.key_prefix, "object": t.logical,
                                  "fields": list(t.fields)}
                         for t in org.schema.types()},
        }
    )


# -- records ---------------------------------------------------------------------------------------


@bp.post("/records/<sobject>")
def create_record(sobject: str) -> Response:
    org = current_org()
    found = org.store.sobject(sobject)
    record_id = org.write_one(
        WriteRequest("insert", found.name, body=json_object()), org.auth.default_user,
        with_faults=False,
    )
    return json_response(
        {"id": record_id, "success": True, "errors": [], "record": _render(record_id)}, 201
    )


@bp.post("/records/<sobject>/bulk")
def create_records(sobject: str) -> Response:
    """Create many records in one go: one trigger call per 200 of them."""
    org = current_org()
    found = org.store.sobject(sobject)
    records = json_object().get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return json_response({"error": "body must be {\"records\": [{...}, ...]}"}, 400)
    requests = [WriteRequest("insert", found.name, body=r) for r in records]
    results = org.write(requests, org.auth.default_user, with_faults=False)
    return json_response(
        {
            "ids": [r.id for r in results if r.error is None],
            "results": [r.as_json() for r in results],
        },
        201 if all(r.error is None for r in results) else 200,
    )


@bp.patch("/records/<sobject>/bulk")
def update_records(sobject: str) -> Response:
    """Update many records in one go (``{"records": [{"Id": ..., fields}, ...]}``), as the
    same regular user: one trigger call per 200 of them, one result per record."""
    org = current_org()
    found = org.store.sobject(sobject)
    records = json_object().get("records")
    if not isinstance(records, list) or not all(
            isinstance(r, dict) and isinstance(r.get("Id"), str) for r in records):
        return json_response({"error": "body must be {\"records\": [{\"Id\": ..., ...}]}"},
                             400)
    requests = [WriteRequest("update", found.name, r["Id"],
                             {k: v for k, v in r.items() if k != "Id"}) for r in records]
    results = org.write(requests, org.auth.default_user, with_faults=False)
    return json_response({"results": [r.as_json() for r in results]},
                         200 if all(r.error is None for r in results) else 207)


@bp.get("/records/<sobject>")
def list_records(sobject: str) -> Response:
    """All records of a type (``?include_deleted=true`` adds deleted ones)."""
    org = current_org()
    with org.lock:
        found = org.store.sobject(sobject)
        rows = [org.store.render(r, VERSION)
                for r in org.store.all_of(found, _truthy("include_deleted"))]
    return json_response({"totalSize": len(rows), "records": rows})


@bp.get("/records/<sobject>/<record_id>")
def get_record(sobject: str, record_id: str) -> Response:
    """One record, deleted or not (``IsDeleted`` tells)."""
    org = current_org()
    with org.lock:
        found = org.store.sobject(sobject)
        record = org.store.find(record_id)
        if record is None or record.sobject is not found:
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        return json_response(org.store.render(record, VERSION))


@bp.patch("/records/<sobject>/<record_id>")
def update_record(sobject: str, record_id: str) -> Response:
    org = current_org()
    found = org.store.sobject(sobject)
    written = org.write_one(
        WriteRequest("update", found.name, record_id, json_object()), org.auth.default_user,
        with_faults=False,
    )
    return json_response(_render(written))


@bp.delete("/records/<sobject>/<record_id>")
def delete_record(sobject: str, record_id: str) -> Response:
    org = current_org()
    found = org.store.sobject(sobject)
    org.write_one(
        WriteRequest("delete", found.name, record_id), org.auth.default_user, with_faults=False
    )
    return no_content()


# -- faults, counters, trigger ---------------------------------------------------------------------


@bp.get("/faults")
def get_faults() -> Response:
    org = current_org()
    with org.lock:
        return json_response(org.faults.as_json())


@bp.post("/faults")
def set_faults() -> Response:
    """Switch faults; ``expire_sessions: true`` revokes every token issued so far, once."""
    org = current_org()
    body = json_object()
    unknown = sorted(set(body) - FAULT_KEYS)
    if unknown:
        return json_response({"error": f"unknown fault(s): {', '.join(unknown)}"}, 400)
    with org.lock:
        try:
            org.faults.update(body)
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        answer = org.faults.as_json()
        if body.get("expire_sessions") is True:
            answer["sessions_expired"] = org.auth.expire_all()
    return json_response(answer)


@bp.delete("/faults")
def clear_faults() -> Response:
    org = current_org()
    with org.lock:
        org.faults.clear()
        return json_response(org.faults.as_json())


@bp.get("/stats")
def stats() -> Response:
    org = current_org()
    with org.lock:
        body = org.stats.as_json(org.faults.daily_limit)
    trigger = org.trigger.status()
    body["trigger"] = trigger
    body["trigger_calls_sent"] = trigger["sent"]
    body["trigger_calls_failed"] = trigger["failed"]
    return json_response(body)


@bp.post("/stats/reset")
def reset_stats() -> Response:
    org = current_org()
    with org.lock:
        org.stats.reset()
        org.trigger.reset_counters()
    return json_response({"ok": True})


@bp.post("/reset")
def reset() -> Response:
    current_org().reset()
    return json_response({"ok": True})


@bp.get("/trigger")
def get_trigger() -> Response:
    return json_response(current_org().trigger.status())


@bp.post("/trigger")
def set_trigger() -> Response:
    """``{"url": ..., "api_key": ...}``; a null/empty url switches the trigger off."""
    body = json_object()
    url = body.get("url")
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        return json_response({"error": "url must be an http(s) URL or null"}, 400)
    org = current_org()
    key = body.get("api_key", org.trigger.settings.api_key)
    org.trigger.configure(url, key)
    return json_response(org.trigger.status())


@bp.post("/trigger/wait")
def wait_trigger() -> Response:
    """Wait until every queued trigger call is finished (``{"timeout": s}``, default 10)."""
    body = json_object(required=False)
    timeout = body.get("timeout", 10)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout < 0:
        return json_response({"error": "timeout must be a number of seconds"}, 400)
    idle = current_org().trigger.wait_idle(min(float(timeout), 120.0))
    return json_response({"idle": idle, **current_org().trigger.status()}, 200 if idle else 504)


@bp.get("/trigger-log")
def trigger_log() -> Response:
    """Every trigger call (oldest first); ``?changes=true`` includes the changes sent."""
    org = current_org()
    calls = org.trigger.log(with_changes=_truthy("changes"))
    return json_response({"calls": calls, **org.trigger.status()})
