"""Status history: search, and a record's timeline."""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, url_for

from app.console import timeline
from app.console.views.common import bp, rt


@bp.route("/history")
def history() -> Any:
    term = request.args.get("q", "").strip()
    results = timeline.search(rt().db, term) if term else []
    if len(results) == 1 and results[0]["exact"]:
        only = results[0]
        return redirect(url_for("console.record", obj=only["object"],
                                record_id=only["gateway_id"] or only["crm_id"]))
    return render_template("console/history.html", term=term, results=results)


@bp.route("/history/<string:obj>/<string:record_id>")
def record(obj: str, record_id: str) -> Any:
    return render_template("console/timeline.html", t=timeline.timeline(rt().db, obj, record_id))
