"""Background work: hand row ids to RQ after the rows are committed.

Jobs carry ids, never payloads. Features name jobs by their stable dotted path, so they
need not import the worker code.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

import redis
from rq import Queue
from rq.registry import DeferredJobRegistry, ScheduledJobRegistry, StartedJobRegistry

log = logging.getLogger(__name__)
API_QUEUE = "paybridge-api"
WEBHOOK_QUEUE = "paybridge-webhooks"
# Console bulk operations; listed last, so item processing goes first.
ADMIN_QUEUE = "paybridge-admin"
ALL_QUEUES = (API_QUEUE, WEBHOOK_QUEUE, ADMIN_QUEUE)

PROCESS_API_ITEMS = "workers.jobs.process_api_items"
PROCESS_WEBHOOK_EVENTS = "workers.jobs.process_webhook_events"


def new_job_ids(count: int, size: int) -> list[str]:
    return [f"pb-{uuid.uuid4().hex}" for _ in range((count + size - 1) // size)]


def chunk(ids: Sequence[int], size: int) -> list[list[int]]:
    return [list(ids[i:i + size]) for i in range(0, len(ids), size)]


def enqueue(connection: redis.Redis, queue_name: str, func: str,
            assignments: dict[str, list[int]], *, timeout: int) -> bool:
    """Enqueue one job per (job id, ids). False when Redis is unreachable: the rows are safe
    in the database and the dispatcher hands them out again."""
    if not assignments:
        return True
    queue = Queue(queue_name, connection=connection)
    jobs = [Queue.prepare_data(func, args=(ids,), job_id=job_id, timeout=timeout,
                               result_ttl=0, failure_ttl=7 * 86400)
            for job_id, ids in assignments.items()]
    try:
        queue.enqueue_many(jobs)
    except redis.RedisError as exc:
        log.warning("could not enqueue; the dispatcher will retry",
                    extra={"jobs": len(jobs), "error": str(exc)})
        return False
    return True


def live_job_ids(connection: redis.Redis, queue_name: str) -> set[str]:
    """Every job of the queue that is still to run or running: queued (and the list a
    worker moves a job through while dequeuing it), started, scheduled, deferred.

    One pipeline whatever the backlog, sized by the queue (one id per job of up to
    ``JOB_BATCH_SIZE`` rows), so the dispatcher judges every row in one query instead of
    looking up each row's job. Redis unreachable: no job counts as live (handing rows out
    again is harmless; a job only processes the rows it can claim)."""
    queue = Queue(queue_name, connection=connection)
    registries = [StartedJobRegistry(queue=queue), ScheduledJobRegistry(queue=queue),
                  DeferredJobRegistry(queue=queue)]
    pipe = connection.pipeline(transaction=False)
    pipe.lrange(queue.key, 0, -1)
    pipe.lrange(queue.intermediate_queue_key, 0, -1)
    for registry in registries:
        pipe.zrange(registry.key, 0, -1)
    try:
        queued, moving, *registered = pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not read the live jobs; treating none as live",
                    extra={"queue": queue_name, "error": str(exc)})
        return set()
    live = {as_text(j) for j in [*queued, *moving]}
    for registry, entries in zip(registries, registered, strict=True):
        live.update(registry.parse_job_id(as_text(e)) for e in entries)
    return live


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
