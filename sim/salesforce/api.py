"""REST API: OAuth, the per-call guard (session, allocation, counters), sObject routes, limits.

Every ``/services/data/vNN.N/...`` call passes ``guard`` first: it needs a live bearer
token (else 401 INVALID_SESSION_ID), then a share of the daily allocation (else 403
REQUEST_LIMIT_EXCEEDED); each call it lets through consumes one unit, whatever it does, and
its answer carries ``Sforce-Limit-Info: api-usage=<used>/<max>``.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from sim.salesforce import errors
from sim.salesforce.auth import AuthError
from sim.salesforce.errors import SfError
from sim.salesforce.metadata import FieldSpec
from sim.salesforce.org import WriteRequest
from sim.salesforce.schema import SYSTEM_FIELDS, SObjectType
from sim.salesforce.web import (
    VERSION_RE,
    current_org,
    current_user,
    id_list,
    json_object,
    json_response,
    no_content,
)

bp = Blueprint("sf_api", __name__)

SUPPORTED_VERSIONS = ("57.0", "58.0", "59.0", "60.0", "61.0", "62.0")

# (endpoint, method) -> counter kind; endpoint alone when the method does not matter.
_KINDS: dict[Any, str] = {
    "sf_api.limits": "limits",
    "sf_api.describe_global": "describe",
    "sf_api.sobject_info": "describe",
    "sf_api.describe": "describe",
    "sf_api.create": "sobject_create",
    ("sf_api.record", "GET"): "sobject_get",
    ("sf_api.record", "PATCH"): "sobject_update",
    ("sf_api.record", "DELETE"): "sobject_delete",
    ("sf_composite.collection", "POST"): "collections_create",
    ("sf_composite.collection", "PATCH"): "collections_update",
    ("sf_composite.collection", "DELETE"): "collections_delete",
    "sf_composite.retrieve": "collections_get",
    "sf_query.query": "query",
    "sf_query.query_all": "query",
    "sf_query.query_more": "query",
    "sf_query.query_all_more": "query",
    "sf_bulk2.create": "bulk2_create",
    "sf_bulk2.list_jobs": "bulk2_job",
    "sf_bulk2.info": "bulk2_job",
    "sf_bulk2.abort": "bulk2_job",
    "sf_bulk2.delete": "bulk2_job",
    "sf_bulk2.results": "bulk2_results",
    "sf_replication.updated": "get_updated",
    "sf_replication.deleted": "get_deleted",
}


def _call_kind() -> str:
    endpoint = request.endpoint or ""
    return _KINDS.get((endpoint, request.method)) or _KINDS.get(endpoint) or "other"


def _is_data_call(path: str) -> bool:
    # "/services/data/" alone lists the versions and, as on a real org, needs no session.
    return path.startswith("/services/data/") and path.rstrip("/") != "/services/data"


def guard() -> None:
    """``before_request``: latency fault, then session and allocation checks for data calls."""
    path = request.path
    if not path.startswith("/services/"):
        return
    org = current_org()
    latency = org.faults.latency_ms
    if latency:
        time.sleep(latency / 1000)  # outside the lock: slow, not serialised
    if not _is_data_call(path):
        return
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    with org.lock:
        session = org.auth.session(token) if token else None
        if session is None:
            raise errors.invalid_session()
        g.sf_user = session.user
        # From here on the answer carries the usage as this call left it.
        g.sf_usage = (org.stats.api_used, org.faults.daily_limit)
        if not VERSION_RE.fullmatch(path.split("/")[3]):
            raise errors.not_found()
        if org.faults.request_limit_exceeded or org.stats.api_used >= org.faults.daily_limit:
            raise errors.request_limit_exceeded()
        org.stats.api_used += 1
        org.stats.calls[_call_kind()] += 1
        g.sf_usage = (org.stats.api_used, org.faults.daily_limit)


def add_limit_header(response: Response) -> Response:
    """``after_request``: Sforce-Limit-Info on every authenticated data API answer."""
    usage = g.get("sf_usage")
    if usage is not None:
        response.headers["Sforce-Limit-Info"] = f"api-usage={usage[0]}/{usage[1]}"
    return response


def handle_sf_error(exc: SfError) -> Response:
    return json_response(exc.rest_body(), exc.status)


def handle_http_error(exc: HTTPException) -> Response | HTTPException:
    """Unknown paths and methods answer the way the real API (or the control API) does."""
    if request.path.startswith("/services/"):
        if exc.code == 405:
            allowed = ",".join(sorted(m for m in (exc.valid_methods or []) if m != "OPTIONS"))
            return json_response(
                [{"errorCode": "METHOD_NOT_ALLOWED",
                  "message": f"HTTP Method '{request.method}' not allowed. Allowed are {allowed}"}],
                405,
            )
        if exc.code == 404:
            return json_response(errors.not_found().rest_body(), 404)
    if request.path.startswith("/sim/"):
        return json_response({"error": exc.name, "message": exc.description}, exc.code or 500)
    return exc


def install(app: Flask) -> None:
    app.before_request(guard)
    app.after_request(add_limit_header)
    app.register_error_handler(SfError, handle_sf_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_blueprint(bp)


# -- OAuth and discovery ------------------------------------------------------------------------


@bp.post("/services/oauth2/token")
def token() -> Response:
    org = current_org()
    with org.lock:
        org.stats.calls["oauth"] += 1
        basic = request.authorization
        client = (basic.username or "", basic.password or "") \
            if basic is not None and basic.type == "basic" else None
        try:
            user = org.auth.login(request.form, host=request.host.rsplit(":", 1)[0],
                                  basic=client)
        except AuthError as exc:
            return json_response({"error": exc.error, "error_description": exc.description}, 400)
        return json_response(org.auth.issue(user, request.host_url.rstrip("/")))


@bp.get("/services/data", strict_slashes=False)
def versions() -> Response:
    org = current_org()
    with org.lock:
        org.stats.calls["versions"] += 1
    return json_response(
        [{"label": f"v{v}", "url": f"/services/data/v{v}", "version": v}
         for v in SUPPORTED_VERSIONS]
    )


@bp.get("/services/data/<version>/limits", strict_slashes=False)
def limits(version: str) -> Response:
    org = current_org()
    with org.lock:
        used, limit = org.stats.api_used, org.faults.daily_limit
    return json_response({"DailyApiRequests": {"Max": limit, "Remaining": max(0, limit - used)}})


def _type_summary(sobject: SObjectType, version: str) -> dict[str, Any]:
    base = f"/services/data/{version}/sobjects/{sobject.name}"
    return {
        "name": sobject.name,
        "label": sobject.name.removesuffix("__c").replace("_", " "),
        "keyPrefix": sobject.key_prefix,
        "custom": sobject.custom,
        "createable": True,
        "updateable": True,
        "deletable": True,
        "queryable": True,
        "urls": {"sobject": base, "describe": f"{base}/describe",
                 "rowTemplate": f"{base}/{{ID}}"},
    }


def _describe_field(spec: FieldSpec) -> dict[str, Any]:
    """One field as the describe call reports it (the properties clients read most)."""
    return {
        "name": spec.name,
        "label": spec.display_label,
        "type": spec.type,
        "length": spec.length or 0,
        "nillable": not spec.required and spec.name not in SYSTEM_FIELDS,
        "createable": not spec.read_only,
        "updateable": not spec.read_only,
        "custom": spec.name.endswith("__c"),
        "referenceTo": [spec.reference_to] if spec.reference_to else [],
        "restrictedPicklist": spec.restricted,
        "picklistValues": [{"active": True, "defaultValue": False, "label": v, "value": v,
                            "validFor": None} for v in spec.picklist],
    }


@bp.get("/services/data/<version>/sobjects", strict_slashes=False)
def describe_global(version: str) -> Response:
    org = current_org()
    types = [_type_summary(t, version) for t in org.schema.types()]
    return json_response({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": types})


@bp.get("/services/data/<version>/sobjects/<sobject>/describe", strict_slashes=False)
def describe(version: str, sobject: str) -> Response:
    org = current_org()
    found = org.store.sobject(sobject)
    body = _type_summary(found, version)
    body["fields"] = [_describe_field(spec) for spec in found.specs]
    return json_response(body)


@bp.get("/services/data/<version>/sobjects/<sobject>", strict_slashes=False)
def sobject_info(version: str, sobject: str) -> Response:
    org = current_org()
    with org.lock:
        found = org.store.sobject(sobject)
        recent = [org.store.render(r, version, ["Id", "Name"])
                  for r in org.store.all_of(found)[-20:]]
    return json_response({"objectDescribe": _type_summary(found, version), "recentItems": recent})


# -- single records ------------------------------------------------------------------------------


@bp.post("/services/data/<version>/sobjects/<sobject>", strict_slashes=False)
def create(version: str, sobject: str) -> Response:
    org = current_org()
    found = org.store.sobject(sobject)
    body = json_object()
    record_id = org.write_one(WriteRequest("insert", found.name, body=body), current_user())
    return json_response({"id": record_id, "success": True, "errors": []}, 201)


@bp.route(
    "/services/data/<version>/sobjects/<sobject>/<record_id>",
    methods=["GET", "PATCH", "DELETE"],
    strict_slashes=False,
)
def record(version: str, sobject: str, record_id: str) -> Response:
    org = current_org()
    found = org.store.sobject(sobject)
    if request.method == "GET":
        with org.lock:
            existing = org.store.existing(found, record_id)
            only = id_list(request.args.get("fields"))
            names = org.store.resolve_fields(found, only) if only else None
            return json_response(org.store.render(existing, version, names))
    user = current_user()
    if request.method == "PATCH":
        org.write_one(WriteRequest("update", found.name, record_id, json_object()), user)
    else:
        org.write_one(WriteRequest("delete", found.name, record_id), user)
    return no_content()

