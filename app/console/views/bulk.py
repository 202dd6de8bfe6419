"""Bulk reprocess / discard of everything a list's filter matches, with live progress."""

from __future__ import annotations

from typing import Any

from flask import jsonify, redirect, render_template, request, url_for

from app.console import bulk
from app.console.session import admin_required
from app.console.views.common import actor, bp, list_filter, rt


@bp.route("/bulk", methods=["POST"])
@admin_required
def bulk_start() -> Any:
    flt = list_filter(request.form, "failed")
    op = bulk.start(rt(), queue=request.form.get("queue", ""),
                    action=request.form.get("action", ""), flt=flt,
                    reason=request.form.get("reason") or None, actor=actor())
    return redirect(url_for("console.bulk_page", op_id=op.id))


@bp.route("/bulk")
def bulk_list() -> Any:
    return render_template("console/bulk_list.html", ops=bulk.recent(rt(), limit=50))


@bp.route("/bulk/<int:op_id>")
def bulk_page(op_id: int) -> Any:
    return render_template("console/bulk.html", op=bulk.get(rt(), op_id).to_dict())


@bp.route("/bulk/<int:op_id>/progress")
def bulk_progress(op_id: int) -> Any:
    """Polled by the page while the operation runs."""
    return jsonify(bulk.get(rt(), op_id).to_dict())
