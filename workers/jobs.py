"""Job entry points: ids in, one service call. Their dotted paths are stable (workers.names).

Each run takes a fresh fenced lease (a re-run of the same job never inherits an old one),
keeps it renewed while it works, and is the boundary where an unexpected exception is
recorded on the rows it still holds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from rq import get_current_job

from app.logs import log_context
from app.runtime import Runtime
from app.workrows.boundary import fail_held
from app.workrows.leases import Heartbeat, Lease, new_lease
from queues import service
from queues.models import QueueItem
from queues.processor import process_batch
from webhooks.apply import process_events
from webhooks.models import WebhookEvent
from workers.context import queue_context, runtime, webhook_context

log = logging.getLogger(__name__)


def _job_id() -> str | None:
    job = get_current_job()
    return job.id if job else None


def _job_label() -> str:
    return _job_id() or "direct"


def _run(model: Any, name: str, work: Callable[[Runtime, Lease], dict[str, int]]
         ) -> dict[str, int]:
    """One job run: a fresh lease kept renewed, ``work`` inside the boundary."""
    rt = runtime()
    s = rt.settings
    label = _job_label()
    with log_context(job_id=label):
        lease = new_lease(rt.db, label, s.lease_seconds)
        with Heartbeat(rt.db, lease):
            try:
                counts = work(rt, lease)
            except Exception as exc:  # the job boundary
                fail_held(rt.db, model, lease, exc, stage="job",
                          schedule=s.retry_schedule, jitter=s.retry_jitter)
                counts = {"errors": 1}
        rt.telemetry.flush()  # the job's partner calls show as it ends
        counts = {**counts, "fenced": lease.fenced}
        log.info(name, extra=counts)
        return counts


def _api_items(ids: list[int]) -> Callable[[Runtime, Lease], dict[str, int]]:
    def work(rt: Runtime, lease: Lease) -> dict[str, int]:
        claimed = service.claim(rt.db, ids, lease)
        if not claimed:
            return {"claimed": 0}
        return {"claimed": len(claimed), **process_batch(queue_context(rt), claimed, lease)}
    return work


def process_api_items(ids: list[int]) -> dict[str, int]:
    return _run(QueueItem, "api items processed", _api_items(ids))


def process_webhook_events(ids: list[int]) -> dict[str, int]:
    return _run(WebhookEvent, "webhook events processed",
                lambda rt, lease: process_events(webhook_context(rt), ids, lease, _job_id()))
