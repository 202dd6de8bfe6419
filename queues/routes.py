"""API Queue endpoints: intake for CRM triggers, and the admin actions on queue items."""

from __future__ import annotations

from typing import Any

from flask import current_app, g
from flask_smorest import Blueprint

from app.auth import require_key
from app.errors import NotFound, ValidationFailed
from app.schemas import DiscardSchema
from app.throttle import rate_limited
from queues import admin, intake, service
from queues.schemas import (
    ItemDetailSchema,
    ItemEditSchema,
    ItemListSchema,
    ItemQuerySchema,
    QueueRequestSchema,
    QueueResponseSchema,
    ReprocessResultSchema,
    ReprocessSchema,
)

blp = Blueprint("queue", __name__, url_prefix="/api/v1", description="API Queue")


def _rt() -> Any:
    return current_app.extensions["paybridge"]


@blp.route("/queue", methods=["POST"])
@require_key("trigger", "admin")
@rate_limited("queue", lambda s: s.intake_rate_limit)
@blp.arguments(QueueRequestSchema)
@blp.response(202, QueueResponseSchema)
@blp.alt_response(429, description="rate_limited: this key's INTAKE_RATE_LIMIT is spent; "
                  "send again after Retry-After seconds")
def post_queue(body: dict[str, Any]) -> dict[str, Any]:
    """Queue 1-200 CRM record changes (all accepted or none)."""
    items = intake.submit(_rt(), body["changes"])
    return {"items": [{"id": i.id, "object": i.object, "record_id": i.record_id,
                       "operation": i.operation, "status": i.status} for i in items]}


@blp.route("/queue-items", methods=["GET"])
@require_key("admin", "operations")
@blp.arguments(ItemQuerySchema, location="query")
@blp.response(200, ItemListSchema)
def list_items(query: dict[str, Any]) -> dict[str, Any]:
    """List queue items, newest first, filtered by status / object / record / error / date."""
    items = service.list_items(_rt().db, status=query["status"], obj=query["object"],
                               record_id=query["record_id"], error=query["error"],
                               since=query["since"], until=query["until"],
                               limit=query["limit"], before_id=query["before_id"])
    more = len(items) == query["limit"]
    return {"items": [i.to_dict() for i in items],
            "next_before_id": items[-1].id if items and more else None}


@blp.route("/queue-items/<int:item_id>", methods=["GET"])
@require_key("admin", "operations")
@blp.response(200, ItemDetailSchema)
def get_item(item_id: int) -> dict[str, Any]:
    """One queue item (or, once done, its archive entry) with the log of every attempt."""
    item = service.get_item_or_archived(_rt().db, item_id)
    if item is None:
        raise NotFound(f"queue item {item_id} does not exist (or its archive entry expired)")
    return item.to_dict(detail=True)


@blp.route("/queue-items/<int:item_id>/reprocess", methods=["POST"])
@require_key("admin")
@blp.response(200, ReprocessResultSchema)
def reprocess_one(item_id: int) -> dict[str, Any]:
    """Reprocess one Failed item now."""
    done = admin.reprocess(_rt(), ids=[item_id], actor=g.api_key_name)
    if not done:
        raise NotFound(f"queue item {item_id} is not Failed (or does not exist)")
    return {"reprocessed": done}


@blp.route("/queue-items/reprocess", methods=["POST"])
@require_key("admin")
@blp.arguments(ReprocessSchema)
@blp.response(200, ReprocessResultSchema)
def reprocess_many(body: dict[str, Any]) -> dict[str, Any]:
    """Reprocess every Failed item matching the filter (ids and/or object)."""
    return {"reprocessed": admin.reprocess(_rt(), ids=body["ids"], obj=body["object"],
                                           actor=g.api_key_name)}


@blp.route("/queue-items/<int:item_id>/discard", methods=["POST"])
@require_key("admin")
@blp.arguments(DiscardSchema)
@blp.response(200, ItemDetailSchema)
def discard(body: dict[str, Any], item_id: int) -> dict[str, Any]:
    """Discard one Failed item, with a reason (it no longer holds back its record)."""
    try:
        item = service.discard(_rt().db, item_id, body["reason"], actor=g.api_key_name)
    except ValueError as exc:
        raise ValidationFailed(str(exc), code="invalid_state") from exc
    if item is None:
        raise NotFound(f"queue item {item_id} does not exist")
    return item.to_dict(detail=True)


@blp.route("/queue-items/<int:item_id>", methods=["PATCH"])
@require_key("admin")
@blp.arguments(ItemEditSchema)
@blp.response(200, ItemDetailSchema)
def edit(body: dict[str, Any], item_id: int) -> dict[str, Any]:
    """Replace a Failed item's payload (validated as at intake) and reprocess it."""
    item = admin.edit_and_reprocess(_rt(), item_id, body["fields"], body["previous_fields"],
                                    actor=g.api_key_name)
    return item.to_dict(detail=True)
