"""Job entry points of the operations console: ids in, one service call each."""

from __future__ import annotations

from app.console import bulk
from app.logs import log_context
from workers.context import runtime


def run_bulk_operations(ids: list[int]) -> dict[str, int]:
    rt = runtime()
    for op_id in ids:
        with log_context(bulk_operation=op_id):
            bulk.run(rt, op_id)
    return {"operations": len(ids)}


def run_reconcile(_ids: list[int]) -> dict[str, int]:
    """The scheduled reconcile (the clock hands it out when due)."""
    from reconcile.schedule import run_scheduled

    return run_scheduled(runtime())


def run_requested(ids: list[int]) -> dict[str, int]:
    """Reconcile or backfill runs asked for from the console (queued, by id)."""
    from reconcile.starts import run_requested as run_one

    rt = runtime()
    started = 0
    for run_id in ids:
        started += int(run_one(rt, run_id)["runs"])
    return {"runs": started}
