"""Job entry points: ids in, one service call. Their dotted paths are stable (workers.names)."""

from __future__ import annotations

import logging
import uuid

from rq import get_current_job

from app.logs import log_context
from queues import service
from queues.processor import process_batch
from webhooks.apply import process_events
from workers.context import queue_context, runtime, webhook_context

log = logging.getLogger(__name__)


def process_api_items(ids: list[int]) -> dict[str, int]:
    rt = runtime()
    job = get_current_job()
    # A fresh owner per run: a re-run of the same job must not inherit an old lease.
    owner = f"{job.id if job else 'direct'}:{uuid.uuid4().hex[:8]}"
    with log_context(job_id=job.id if job else None):
        claimed = service.claim(rt.db, ids, owner, rt.settings.lease_seconds)
        if not claimed:
            return {"claimed": 0}
        counts = process_batch(queue_context(rt), claimed, owner)
        log.info("api items processed", extra={"claimed": len(claimed), **counts})
        return {"claimed": len(claimed), **counts}


def process_webhook_events(ids: list[int]) -> dict[str, int]:
    rt = runtime()
    job = get_current_job()
    owner = f"{job.id if job else 'direct'}:{uuid.uuid4().hex[:8]}"
    with log_context(job_id=job.id if job else None):
        counts = process_events(webhook_context(rt), ids, owner)
        log.info("webhook events processed", extra=counts)
        return counts
