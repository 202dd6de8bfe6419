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
from rq.job import Job, JobStatus

log = logging.getLogger(__name__)
API_QUEUE = "paybridge-api"
WEBHOOK_QUEUE = "paybridge-webhooks"
# Console bulk operations; listed last, so item processing goes first.
ADMIN_QUEUE = "paybridge-admin"
ALL_QUEUES = (API_QUEUE, WEBHOOK_QUEUE, ADMIN_QUEUE)

PROCESS_API_ITEMS = "workers.jobs.process_api_items"
PROCESS_WEBHOOK_EVENTS = "workers.jobs.process_webhook_events"
ALIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


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


def alive_jobs(connection: redis.Redis, job_ids: set[str]) -> set[str]:
    if not job_ids:
        return set()
    ids = list(job_ids)
    try:
        jobs = Job.fetch_many(ids, connection=connection)
    except redis.RedisError:
        return set()
    alive = set()
    for job_id, job in zip(ids, jobs, strict=True):
        if job is None:
            continue
        try:
            if job.get_status(refresh=False) in ALIVE:
                alive.add(job_id)
        except Exception:  # noqa: S112 - a job we cannot read counts as lost
            continue
    return alive
