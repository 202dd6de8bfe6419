"""The ceiling for CPU per item: a bare RQ job that does nothing, on the same Redis.

``python -m bench.noop`` runs an RQ SimpleWorker (the worker class Paybridge uses) on its
own queue; the bench enqueues no-op jobs to it and divides the worker's CPU time by them.
"""

from __future__ import annotations

import os
import sys

from rq import Queue, SimpleWorker

from app.redis_conn import connect

QUEUE = "bench-noop"
FUNC = "bench.noop.noop"


def noop() -> None:
    """Does nothing: what is measured is RQ's own cost per job."""


def enqueue(connection: object, count: int) -> None:
    queue = Queue(QUEUE, connection=connection)  # type: ignore[arg-type]
    jobs = [Queue.prepare_data(FUNC, result_ttl=0) for _ in range(count)]
    for start in range(0, count, 500):
        queue.enqueue_many(jobs[start:start + 500])


def pending(connection: object) -> int:
    queue = Queue(QUEUE, connection=connection)  # type: ignore[arg-type]
    return queue.count + queue.started_job_registry.count


def main() -> int:
    worker = SimpleWorker([QUEUE], connection=connect(os.environ["REDIS_URL"]))
    worker.work(burst=False, with_scheduler=False, logging_level="WARNING")
    return 0


if __name__ == "__main__":
    sys.exit(main())
