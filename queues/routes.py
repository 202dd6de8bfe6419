"""API Queue endpoints: intake for CRM triggers, and the admin actions on queue items."""

from __future__ import annotations

from typing import Any

from flask import current_app, g
from flask_smorest import Blueprint

from app.auth import require_key
from app.errors import NotFound, ValidationFailed
from queues import intake, service
from queues.schemas import (
    DiscardSchema,
    ItemDetailSchema,
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
@blp.arguments(QueueRequestSchema)
@blp.response(202, QueueResponseSchema)
def post_queue(body: dict[str, Any]) -> dict[str, Any]:
    """Queue 1-200 CRM record changes (all accepted or none)."""
    items = intake.submit(_rt(), body["changes"])
    return {"items": [{"id": i.id, "object": i.object, "record_id": i.record_id,
                       "operation": i.operation, "status": i.status} for i in items]}


@blp.route("/queue-items", methods=["GET"])
@require_key("admin")
@blp.arguments(ItemQuerySchema, location="query")
@blp.response(200, ItemListSchema)
def list_items(query: dict[str, Any]) -> dict[str, Any]:
    """List queue items, newest first, filtered by status / object / record."""
    items = service.list_items(_rt().db, status=query["status"], obj=query["object"],
                               record_id=query["record_id"], limit=query["limit"],
                               before_id=query["before_id"])
    more = len(items) == query["limit"]
    return {"items": [i.to_dict() for i in items],
            "next_before_id": items[-1].id if items and more else None}


@blp.route("/queue-items/<int:item_id>", methods=["GET"])
@require_key("admin")
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
    done = service.reprocess(_rt().db, ids=[item_id], actor=g.api_key_name)
    if not done:
        raise NotFound(f"queue item {item_id} is not Failed (or does not exist)")
    _wake(done)
    return {"reprocessed": done}


@blp.route("/queue-items/reprocess", methods=["POST"])
@require_key("admin")
@blp.arguments(ReprocessSchema)
@blp.response(200, ReprocessResultSchema)
def reprocess_many(body: dict[str, Any]) -> dict[str, Any]:
    """Reprocess every Failed item matching the filter (ids and/or object)."""
    done = service.reprocess(_rt().db, ids=body["ids"], obj=body["object"],
                             actor=g.api_key_name)
    _wake(done)
    return {"reprocessed": done}


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


def _wake(ids: list[int]) -> None:
    if ids:
        from app.background import API_QUEUE, PROCESS_API_ITEMS, enqueue, new_job_ids

        rt = _rt()
        job_id = new_job_ids(1, 1)[0]
        service.mark_dispatched(rt.db, {job_id: ids})
        enqueue(rt.redis, API_QUEUE, PROCESS_API_ITEMS, {job_id: ids},
                timeout=rt.settings.job_timeout)
