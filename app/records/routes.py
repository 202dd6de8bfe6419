"""Status history: what payment operations read."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from app.auth import require_key
from app.errors import NotFound
from app.mapping import OBJECTS
from app.records import service

blp = Blueprint("records", __name__, url_prefix="/api/v1", description="Status histories")


class TransitionSchema(Schema):
    from_ = fields.String(data_key="from", attribute="from", allow_none=True)
    to = fields.String(allow_none=True)
    cause = fields.String(allow_none=True)
    event_id = fields.String(allow_none=True)
    event_time = fields.String(allow_none=True)
    applied_at = fields.String()
    source = fields.String()
    queue_item_id = fields.Integer(allow_none=True)


class HistorySchema(Schema):
    object = fields.String()
    crm_id = fields.String(allow_none=True)
    gateway_id = fields.String(allow_none=True)
    status = fields.String(allow_none=True)
    last_event_id = fields.String(allow_none=True)
    history = fields.List(fields.Nested(TransitionSchema))


@blp.route("/records/<string:obj>/<string:record_id>/history", methods=["GET"])
@require_key("admin", "operations", "trigger")
@blp.response(200, HistorySchema)
def record_history(obj: str, record_id: str) -> dict[str, Any]:
    """Every status transition of a record, by CRM id or gateway id, in order."""
    if obj not in OBJECTS:
        raise NotFound(f"unknown object {obj!r}; one of {', '.join(OBJECTS)}")
    with current_app.extensions["paybridge"].db.transaction() as session:
        link, entries = service.history(session, obj, record_id)
        if link is None:
            raise NotFound(f"no {obj} with CRM id or gateway id {record_id!r}")
        return {"object": obj, "crm_id": link.crm_id, "gateway_id": link.gateway_id,
                "status": link.status, "last_event_id": link.last_event_id,
                "history": [service.history_dict(e) for e in entries]}
