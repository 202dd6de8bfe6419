"""The console's JSON API: what the pages do, through the same services, for scripts."""

from __future__ import annotations

from typing import Any

from flask import current_app, g
from flask_smorest import Blueprint

from app import audit
from app.auth import require_key
from app.console import alerts, bulk, dashboard, keys, timeline
from app.console.schemas import (
    AlertListSchema,
    ApiKeyCreatedSchema,
    ApiKeyCreateSchema,
    ApiKeyListSchema,
    ApiKeySchema,
    AuditListSchema,
    AuditQuerySchema,
    BulkCreateSchema,
    BulkListSchema,
    BulkSchema,
    DashboardSchema,
    DifferenceListSchema,
    DifferenceQuerySchema,
    DifferenceSchema,
    ReconcileRunDetailSchema,
    ReconcileRunListSchema,
    ReconcileRunQuerySchema,
    ReconcileStartedSchema,
    ReconcileStartSchema,
    RepairAllSchema,
    SearchQuerySchema,
    SearchResultSchema,
    SecretListSchema,
    TimelineSchema,
)
from app.listing import ListFilter
from reconcile import service as reconcile_service
from reconcile import starts

blp = Blueprint("console_api", __name__, url_prefix="/api/v1",
                description="Operations: dashboard, history search, bulk actions, audit, keys, "
                            "reconciliation")
READERS = ("admin", "operations")


def _rt() -> Any:
    return current_app.extensions["paybridge"]


@blp.route("/dashboard", methods=["GET"])
@require_key(*READERS)
@blp.response(200, DashboardSchema)
def get_dashboard() -> dict[str, Any]:
    """Both queues' health: counts, oldest pending, throughput, failures, workers, clock."""
    return dashboard.snapshot(_rt())


@blp.route("/history", methods=["GET"])
@require_key(*READERS)
@blp.arguments(SearchQuerySchema, location="query")
@blp.response(200, SearchResultSchema)
def search_history(query: dict[str, Any]) -> dict[str, Any]:
    """Find records by CRM id, gateway id, reference, or customer (id, name, e-mail)."""
    return {"results": timeline.search(_rt().db, query["q"])}


@blp.route("/records/<string:obj>/<string:record_id>/timeline", methods=["GET"])
@require_key(*READERS)
@blp.response(200, TimelineSchema)
def get_timeline(obj: str, record_id: str) -> dict[str, Any]:
    """A record's status history with the stale, parked and Failed events beside it."""
    return timeline.timeline(_rt().db, obj, record_id)


@blp.route("/audit-log", methods=["GET"])
@require_key(*READERS)
@blp.arguments(AuditQuerySchema, location="query")
@blp.response(200, AuditListSchema)
def list_audit(query: dict[str, Any]) -> dict[str, Any]:
    """Admin actions, newest first: who, what, when, which item, before and after."""
    limit, before_id = query.pop("limit"), query.pop("before_id")
    rows = audit.search(_rt().db, audit.AuditFilter(**query), limit=limit, before_id=before_id)
    more = len(rows) == limit
    return {"items": [r.to_dict() for r in rows],
            "next_before_id": rows[-1].id if rows and more else None}


@blp.route("/bulk-operations", methods=["POST"])
@require_key("admin")
@blp.arguments(BulkCreateSchema)
@blp.response(202, BulkSchema)
def create_bulk(body: dict[str, Any]) -> dict[str, Any]:
    """Reprocess or discard every Failed item matching a filter, in the background."""
    op = bulk.start(_rt(), queue=body["queue"], action=body["action"],
                    flt=ListFilter(**body["filter"]), reason=body["reason"],
                    actor=g.api_key_name)
    return op.to_dict()


@blp.route("/bulk-operations", methods=["GET"])
@require_key(*READERS)
@blp.response(200, BulkListSchema)
def list_bulk() -> dict[str, Any]:
    """The latest bulk operations with their progress."""
    return {"items": [op.to_dict() for op in bulk.recent(_rt())]}


@blp.route("/bulk-operations/<int:op_id>", methods=["GET"])
@require_key(*READERS)
@blp.response(200, BulkSchema)
def get_bulk(op_id: int) -> dict[str, Any]:
    """One bulk operation's progress."""
    return bulk.get(_rt(), op_id).to_dict()


@blp.route("/api-keys", methods=["GET"])
@require_key("admin")
@blp.response(200, ApiKeyListSchema)
def list_keys() -> dict[str, Any]:
    """API keys (never the keys themselves): active first."""
    return {"items": [keys.key_dict(k) for k in keys.list_keys(_rt().db)]}


@blp.route("/api-keys", methods=["POST"])
@require_key("admin")
@blp.arguments(ApiKeyCreateSchema)
@blp.response(201, ApiKeyCreatedSchema)
def create_key(body: dict[str, Any]) -> dict[str, Any]:
    """Create an API key; the answer carries the key, which is never shown again."""
    row, key = keys.create(_rt().db, body["name"], body["role"], actor=g.api_key_name)
    return {**keys.key_dict(row), "key": key}


@blp.route("/api-keys/<int:key_id>/revoke", methods=["POST"])
@require_key("admin")
@blp.response(200, ApiKeySchema)
def revoke_key(key_id: int) -> dict[str, Any]:
    """Revoke an API key at once."""
    return keys.key_dict(keys.revoke(_rt().db, key_id, actor=g.api_key_name))


@blp.route("/webhook-secrets", methods=["GET"])
@require_key("admin")
@blp.response(200, SecretListSchema)
def list_secrets() -> dict[str, Any]:
    """Which webhook secrets are configured (values are never shown)."""
    return {"items": keys.webhook_secrets(_rt().settings)}


@blp.route("/alerts", methods=["GET"])
@require_key(*READERS)
@blp.response(200, AlertListSchema)
def list_alerts() -> dict[str, Any]:
    """Alerts sent lately, with each channel's delivery outcome."""
    return {"items": [a.to_dict() for a in alerts.recent(_rt())]}


@blp.route("/reconcile-runs", methods=["GET"])
@require_key(*READERS)
@blp.arguments(ReconcileRunQuerySchema, location="query")
@blp.response(200, ReconcileRunListSchema)
def list_reconcile_runs(query: dict[str, Any]) -> dict[str, Any]:
    """Reconcile and backfill runs, newest first, with their progress and summary."""
    rows = reconcile_service.list_runs(_rt().db, kind=query["kind"],
                                       before_id=query["before_id"], limit=query["limit"])
    more = len(rows) == query["limit"]
    return {"items": rows, "next_before_id": rows[-1]["id"] if rows and more else None}


@blp.route("/reconcile-runs", methods=["POST"])
@require_key("admin")
@blp.arguments(ReconcileStartSchema)
@blp.response(202, ReconcileStartedSchema)
def start_reconcile_run(body: dict[str, Any]) -> dict[str, Any]:
    """Start a reconcile or a backfill as an admin job; 409 while one of its kind runs."""
    objects = body["objects"] if body["kind"] == "reconcile" else [body["object"] or ""]
    return starts.start(_rt(), body["kind"], objects, repair=body["repair"],
                        dry_run=body["dry_run"], where=body["where"], actor=g.api_key_name)


@blp.route("/reconcile-runs/<int:run_id>", methods=["GET"])
@require_key(*READERS)
@blp.response(200, ReconcileRunDetailSchema)
def get_reconcile_run(run_id: int) -> dict[str, Any]:
    """One run: its progress, summary, and differences counted by object and kind."""
    run = reconcile_service.get_run(_rt().db, run_id)
    return {**run, "counts": reconcile_service.counts(_rt().db, run_id)}


@blp.route("/reconcile-runs/<int:run_id>/differences", methods=["GET"])
@require_key(*READERS)
@blp.arguments(DifferenceQuerySchema, location="query")
@blp.response(200, DifferenceListSchema)
def list_differences(query: dict[str, Any], run_id: int) -> dict[str, Any]:
    """A run's differences in id order, filtered; page on with ``after_id``."""
    reconcile_service.get_run(_rt().db, run_id)
    after, limit = query.pop("after_id"), query.pop("limit")
    rows, next_after = reconcile_service.differences(
        _rt().db, run_id, reconcile_service.parse_filter(query), after_id=after, limit=limit)
    return {"items": rows, "next_after_id": next_after}


@blp.route("/reconcile-runs/<int:run_id>/repair", methods=["POST"])
@require_key("admin")
@blp.arguments(RepairAllSchema)
@blp.response(202, BulkSchema)
def repair_all_differences(body: dict[str, Any], run_id: int) -> dict[str, Any]:
    """Repair every open difference of one kind (and object) that has a safe repair, as a
    bulk operation in the background."""
    return bulk.start_repair(_rt(), run_id=run_id, kind=body["kind"], obj=body["object"],
                             actor=g.api_key_name).to_dict()


@blp.route("/reconcile-differences/<int:diff_id>/repair", methods=["POST"])
@require_key("admin")
@blp.response(200, DifferenceSchema)
def repair_difference(diff_id: int) -> dict[str, Any]:
    """Repair one difference through its repair path; the difference afterwards."""
    return reconcile_service.repair_one(_rt(), diff_id, g.api_key_name)
