"""API Queue items: the Failed list (any status, filtered), a detail page, and the actions:
reprocess, edit the payload then reprocess, discard with a reason."""

from __future__ import annotations

import json
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from app.console.session import admin_required
from app.console.views.common import PAGE, actor, bp, filter_args, list_filter, rt
from app.errors import NotFound, ValidationFailed
from app.mapping import QUEUEABLE_OBJECTS
from queues import admin, service
from queues.models import STATUSES


@bp.route("/items")
def items() -> Any:
    flt = list_filter(request.args, "failed")
    before = request.args.get("before", type=int)
    rows = service.list_items(rt().db, status=flt.status, obj=flt.kind, record_id=flt.record,
                              error=flt.error, since=flt.since, until=flt.until,
                              limit=PAGE, before_id=before)
    return render_template("console/items.html", rows=rows, flt=flt, args=filter_args(flt),
                           statuses=STATUSES, kinds=QUEUEABLE_OBJECTS,
                           next_before=rows[-1].id if len(rows) == PAGE else None)


def _item(item_id: int) -> Any:
    item = service.get_item_or_archived(rt().db, item_id)
    if item is None:
        raise NotFound(f"queue item {item_id} does not exist (or its archive entry expired)")
    return item


@bp.route("/items/<int:item_id>")
def item(item_id: int) -> Any:
    return render_template("console/item.html", item=_item(item_id).to_dict(detail=True))


@bp.route("/items/<int:item_id>/reprocess", methods=["POST"])
@admin_required
def item_reprocess(item_id: int) -> Any:
    if admin.reprocess(rt(), ids=[item_id], actor=actor()):
        flash(f"Item {item_id} is being reprocessed.", "success")
    else:
        flash(f"Item {item_id} is not Failed any more; nothing to reprocess.", "error")
    return redirect(url_for("console.item", item_id=item_id))


@bp.route("/items/<int:item_id>/edit", methods=["GET", "POST"])
@admin_required
def item_edit(item_id: int) -> Any:
    current = _item(item_id).to_dict(detail=True)
    if request.method == "GET":
        return render_template("console/item_edit.html", item=current,
                               fields_text=json.dumps(current["fields"], indent=2),
                               previous_text=json.dumps(current["previous_fields"], indent=2)
                               if current["previous_fields"] is not None else "")
    fields_text = request.form.get("fields", "")
    previous_text = request.form.get("previous_fields", "").strip()
    try:
        fields = json.loads(fields_text)
        previous = json.loads(previous_text) if previous_text else None
        admin.edit_and_reprocess(rt(), item_id, fields, previous, actor=actor())
    except json.JSONDecodeError as exc:
        error, details = f"not valid JSON: {exc.msg} (line {exc.lineno})", {}
    except ValidationFailed as exc:
        error, details = exc.message, exc.details.get("fields", {})
    else:
        flash(f"Item {item_id} saved and sent for reprocessing.", "success")
        return redirect(url_for("console.item", item_id=item_id))
    return render_template("console/item_edit.html", item=current, fields_text=fields_text,
                           previous_text=previous_text, error=error, details=details), 400


@bp.route("/items/<int:item_id>/discard", methods=["POST"])
@admin_required
def item_discard(item_id: int) -> Any:
    reason = request.form.get("reason", "").strip()
    if not reason:
        flash("Say why it is discarded: the reason is kept with the item.", "error")
        return redirect(url_for("console.item", item_id=item_id))
    try:
        service.discard(rt().db, item_id, reason, actor=actor())
    except ValueError as exc:
        flash(str(exc), "error")
    else:
        flash(f"Item {item_id} discarded.", "success")
    return redirect(url_for("console.item", item_id=item_id))
