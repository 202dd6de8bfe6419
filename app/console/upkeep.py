"""The console's periodic work, run from the clock's tick: alerts and lost bulk operations."""

from __future__ import annotations

import logging

from app.console import alerts, bulk
from app.runtime import Runtime

log = logging.getLogger(__name__)


def upkeep(rt: Runtime) -> None:
    """Never lets an alerting problem stop the clock's dispatching: it is logged instead."""
    try:
        alerts.check(rt)
        bulk.resume_stalled(rt)
    except Exception:  # the clock's boundary for console work
        log.exception("console upkeep failed; will try again at the next interval")
