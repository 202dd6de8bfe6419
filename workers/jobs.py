"""Job entry points: ids in, one service call. Their dotted paths are stable (workers.names).

Each run takes a fresh fenced lease (a re-run of the same job never inherits an old one),
keeps it renewed while it works, and is the boundary where an unexpected exception is
recorded on the rows it still holds.
"""

from __future__ import annotations

import logging

from rq import get_current_job

from app.logs import log_context
from app.workrows.boundary import fail_held
from app.workrows.leases import Heartbeat, new_lease
from queues import service
from queues.models import QueueItem
from queues.processor import process_batch
from webhooks.apply import process_events
from webhooks.models import WebhookEvent
from workers.context import queue_context, runtime, webhook_context

log = logging.getLogger(__name__)


def _job_label() -> str:
    job = get_current_job()
    return job.id if job else "direct"


def process_api_items(ids: list[int]) -> dict[str, int]:
    rt = runtime()
    s = rt.settings
    label = _job_label()
    with log_context(job_id=label):
        lease = new_lease(rt.db, label, s.lease_seconds)
        with Heartbeat(rt.db, lease):
            claimed = service.claim(rt.db, ids, lease)
            if not claimed:
                return {"claimed": 0}
            try:
                counts = process_batch(queue_context(rt), claimed, lease)
            except Exception as exc:  # the job boundary
                fail_held(rt.db, QueueItem, lease, exc, stage="job",
                          schedule=s.retry_schedule, jitter=s.retry_jitter)
                counts = {"errors": 1}
        counts = {"claimed": len(claimed), **counts, "fenced": lease.fenced}
        log.info("api items processed", extra=counts)
        return counts


def process_webhook_events(ids: list[int]) -> dict[str, int]:
    rt = runtime()
    s = rt.settings
    label = _job_label()
    with log_context(job_id=label):
        lease = new_lease(rt.db, label, s.lease_seconds)
        with Heartbeat(rt.db, lease):
            try:
                counts = process_events(webhook_context(rt), ids, lease)
            except Exception as exc:  # the job boundary
                fail_held(rt.db, WebhookEvent, lease, exc, stage="job",
                          schedule=s.retry_schedule, jitter=s.retry_jitter)
                counts = {"errors": 1}
        counts = {**counts, "fenced": lease.fenced}
        log.info("webhook events processed", extra=counts)
        return counts
