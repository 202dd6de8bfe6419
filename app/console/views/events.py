"""Webhook events: the Failed list (any status, filtered), a detail page, reprocess and
discard."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from app.console.session import admin_required
from app.console.views.common import PAGE, actor, bp, filter_args, list_filter, rt
from app.errors import NotFound
from app.mapping import OBJECTS
from webhooks import service
from webhooks.models import STATUSES


@bp.route("/events")
def events() -> Any:
    flt = list_filter(request.args, "failed")
    before = request.args.get("before", type=int)
    rows = service.list_events(rt().db, status=flt.status, resource_type=flt.kind,
                               resource_id=flt.record, error=flt.error, since=flt.since,
                               until=flt.until, limit=PAGE, before_id=before)
    kinds = sorted({o.resource for o in OBJECTS.values()})
    return render_template("console/events.html", rows=rows, flt=flt, args=filter_args(flt),
                           statuses=STATUSES, kinds=kinds,
                           next_before=rows[-1].id if len(rows) == PAGE else None)


@bp.route("/events/<int:row_id>")
def event(row_id: int) -> Any:
    row = service.get_event(rt().db, row_id)
    if row is None:
        raise NotFound(f"webhook event {row_id} does not exist (applied events are deleted)")
    return render_template("console/event.html", event=row.to_dict(detail=True))


@bp.route("/events/<int:row_id>/reprocess", methods=["POST"])
@admin_required
def event_reprocess(row_id: int) -> Any:
    if service.reprocess(rt(), ids=[row_id], actor=actor()):
        flash(f"Event {row_id} is being reprocessed.", "success")
    else:
        flash(f"Event {row_id} is not Failed any more; nothing to reprocess.", "error")
    return redirect(url_for("console.event", row_id=row_id))


@bp.route("/events/<int:row_id>/discard", methods=["POST"])
@admin_required
def event_discard(row_id: int) -> Any:
    reason = request.form.get("reason", "").strip()
    if not reason:
        flash("Say why it is discarded: the reason is kept with the event.", "error")
        return redirect(url_for("console.event", row_id=row_id))
    try:
        service.discard(rt().db, row_id, reason, actor=actor())
    except ValueError as exc:
        flash(str(exc), "error")
    else:
        flash(f"Event {row_id} discarded.", "success")
    return redirect(url_for("console.event", row_id=row_id))
