"""The worker process: builds the runtime, preloads job code, then runs an RQ worker.

SimpleWorker (default) runs jobs in-process: each job carries many row ids, and not forking
saves the fork + import cost per job. ``WORKER_CLASS=fork`` isolates every job in a child;
the child then drops the parent's connections first.
"""

from __future__ import annotations

import logging

from rq import SimpleWorker, Worker

import workers.jobs  # noqa: F401 - preloaded so jobs do not import on first use
from app.background import ALL_QUEUES
from app.config import Settings
from app.logs import configure_logging
from app.runtime import Runtime
from workers.context import set_runtime

log = logging.getLogger(__name__)


class ForkingWorker(Worker):
    def main_work_horse(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        from workers.context import runtime

        runtime().after_fork()
        return super().main_work_horse(*args, **kwargs)


def run(burst: bool = False, name: str | None = None) -> None:
    settings = Settings.from_env()
    configure_logging("worker", settings.log_format, settings.log_level)
    rt = Runtime(settings)
    set_runtime(rt)
    worker_cls = SimpleWorker if settings.worker_class == "simple" else ForkingWorker
    worker = worker_cls(list(ALL_QUEUES), connection=rt.redis, name=name)
    log.info("worker starting", extra={"queues": list(ALL_QUEUES),
                                       "class": worker_cls.__name__})
    worker.work(burst=burst, with_scheduler=False, logging_level=settings.log_level)
