"""The dispatcher: finds due rows that no live job holds and hands them to new jobs.

It is what makes Redis mere transport: rows whose job vanished (FLUSHALL, restart), whose
worker died (lease expired), or whose retry came due, are found in the database and
enqueued again. Duplicated jobs are harmless: a job only processes the rows it can claim.

A pass costs one Redis pipeline (the queue's live job ids, ``live_job_ids``) and one
indexed query reading at most two batches of rows, whatever the backlog: no row's job is
looked up on its own (see ``app.workrows.dispatch.due_ids``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from app.background import (
    API_QUEUE,
    PROCESS_API_ITEMS,
    PROCESS_WEBHOOK_EVENTS,
    WEBHOOK_QUEUE,
    live_job_ids,
)
from app.runtime import Runtime
from app.workrows.dispatch import Window, hand_out
from queues import service
from queues.models import QueueItem
from webhooks import service as webhook_service
from webhooks.models import WebhookEvent

log = logging.getLogger(__name__)
# This process's place in judging rows handed out long ago (the clock's passes move it on;
# a restarted clock starts again from the first row, which is only a little more work).
_WINDOWS = {"api": Window(), "webhook": Window()}


def dispatch_api(rt: Runtime, *, records: Iterable[tuple[str, str]] | None = None,
                 redispatch_after: float | None = None, limit: int | None = None) -> int:
    s = rt.settings
    ids = service.find_dispatchable(
        rt.db, limit=limit or s.batch_size * 40,
        redispatch_after=s.redispatch_after if redispatch_after is None else redispatch_after,
        live=live_job_ids(rt.redis, API_QUEUE), records=records,
        window=_WINDOWS["api"] if records is None else None)
    handed = hand_out(rt.db, rt.redis, QueueItem.__table__, ids, queue=API_QUEUE,
                      func=PROCESS_API_ITEMS, batch_size=s.batch_size, timeout=s.job_timeout)
    if handed:
        log.info("dispatched", extra={"items": handed})
    return handed


def wake_api_records(rt: Runtime, records: set[tuple[str, str]]) -> None:
    """The rows after a finished one of the same record are due now: hand them out at once."""
    if records and rt.settings.api_queue_mode == "immediate":
        dispatch_api(rt, records=records, redispatch_after=0)


def dispatch_webhooks(rt: Runtime) -> int:
    """Webhook events due (new in scheduled mode, retries, parked looks, lost jobs)."""
    s = rt.settings
    ids = webhook_service.find_dispatchable(rt.db, limit=s.batch_size * 40,
                                            redispatch_after=s.redispatch_after,
                                            live=live_job_ids(rt.redis, WEBHOOK_QUEUE),
                                            window=_WINDOWS["webhook"])
    handed = hand_out(rt.db, rt.redis, WebhookEvent.__table__, ids, queue=WEBHOOK_QUEUE,
                      func=PROCESS_WEBHOOK_EVENTS, batch_size=s.batch_size,
                      timeout=s.job_timeout)
    if handed:
        log.info("dispatched webhook events", extra={"events": handed})
    return handed
