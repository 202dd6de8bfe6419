"""Reconciliation: the runs (reconcile and backfill), a run's progress and differences,
their CSV export, and the admin actions: repair one, repair all of a kind, start a run."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from flask import Response, flash, redirect, render_template, request, stream_with_context, url_for

from app.console import bulk
from app.console.session import admin_required
from app.console.views.common import PAGE, actor, bp, rt
from app.mapping import OBJECTS, QUEUEABLE_OBJECTS
from reconcile import service, starts
from reconcile.kinds import KINDS
from reconcile.models import REPAIR_STATES

# A spreadsheet runs a cell starting with one of these as a formula: CRM text never should.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@bp.route("/reconcile")
def reconcile_runs() -> Any:
    before = request.args.get("before", type=int)
    runs = service.list_runs(rt().db, before_id=before, limit=PAGE)
    return render_template("console/reconcile_runs.html", runs=runs, objects=list(OBJECTS),
                           backfill_objects=["all", *QUEUEABLE_OBJECTS],
                           next_before=runs[-1]["id"] if len(runs) == PAGE else None)


def _run_page(run_id: int) -> dict[str, Any]:
    run = service.get_run(rt().db, run_id)
    flt = service.parse_filter(request.args)
    after = request.args.get("after", type=int) or 0
    rows, next_after = service.differences(rt().db, run_id, flt, after_id=after)
    return {"run": run, "counts": service.counts(rt().db, run_id), "rows": rows,
            "flt": flt, "args": flt.as_args(), "next_after": next_after,
            "objects": list(OBJECTS), "kinds": KINDS, "states": REPAIR_STATES}


@bp.route("/reconcile/<int:run_id>")
def reconcile_run(run_id: int) -> Any:
    return render_template("console/reconcile_run.html", **_run_page(run_id))


@bp.route("/reconcile/<int:run_id>/progress")
def reconcile_progress(run_id: int) -> Any:
    """The run's progress alone: the page swaps it in while the run is under way."""
    return render_template("console/_reconcile_progress.html",
                           run=service.get_run(rt().db, run_id))


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_lines(rows: Iterable[list[Any]]) -> Iterator[str]:
    """Each row as one CSV line, written as it is read."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


@bp.route("/reconcile/<int:run_id>/differences.csv")
def reconcile_csv(run_id: int) -> Any:
    service.get_run(rt().db, run_id)
    flt = service.parse_filter(request.args)
    lines = csv_lines(service.csv_rows(rt().db, run_id, flt))
    return Response(stream_with_context(lines), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="reconcile-run-{run_id}.csv"'})


@bp.route("/reconcile/differences/<int:diff_id>/repair", methods=["POST"])
@admin_required
def reconcile_repair_one(diff_id: int) -> Any:
    diff = service.repair_one(rt(), diff_id, actor())
    category = "success" if diff["repair_state"] == "applied" else "error"
    flash(f"Difference {diff_id}: {diff['repair_state']}. {diff['note'] or ''}", category)
    return redirect(url_for("console.reconcile_run", run_id=diff["run_id"],
                            **service.parse_filter(request.form).as_args()))


@bp.route("/reconcile/<int:run_id>/repair", methods=["POST"])
@admin_required
def reconcile_repair_all(run_id: int) -> Any:
    op = bulk.start_repair(rt(), run_id=run_id, kind=request.form.get("kind", ""),
                           obj=request.form.get("object") or None, actor=actor())
    return redirect(url_for("console.bulk_page", op_id=op.id))


@bp.route("/reconcile/start", methods=["POST"])
@admin_required
def reconcile_start() -> Any:
    form = request.form
    kind = form.get("kind", "")
    objects = form.getlist("objects") if kind == "reconcile" else [form.get("object", "")]
    run = starts.start(rt(), kind, objects, repair=form.get("repair") == "on",
                       dry_run=form.get("dry_run") == "on", where=form.get("where"),
                       actor=actor())
    flash(f"{kind.capitalize()} run {run['id']} queued.", "success")
    return redirect(url_for("console.reconcile_run", run_id=run["id"]))
