"""Worker memory over a long run: one RQ worker drains a large backlog.

The backlog is made cheaply but honestly: the Contacts exist in the org (its trigger off
while they are created), their queue rows are inserted in bulk and handed out by the real
dispatcher, and the worker does the full work for each: gateway call, link and history,
batched write-back. Its RSS is sampled with the number of items finished.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bench.procstats import pid_of, rss_bytes
from bench.report import Figure
from bench.stack import Stack
from bench.workload import create_contacts
from queues.models import QueueItem
from queues.service import insert_idempotency_key
from workers.dispatcher import dispatch_api

TARGET = 0.10
MB = 1024 * 1024


@dataclass(frozen=True)
class MemoryParams:
    items: int
    warm: int  # items after which the worker counts as warmed up


def backlog(stack: Stack, items: int) -> None:
    stack.sf_call("POST", "/sim/trigger", json={"url": None})
    try:
        ids = create_contacts(stack, items, prefix="M")
    finally:
        stack.sf_call("POST", "/sim/trigger", json={"url": f"{stack.web}/api/v1/queue"})
    table = QueueItem.__table__
    with stack.rt.db.engine.begin() as conn:
        for start in range(0, len(ids), 5000):
            conn.execute(sa.insert(table), [{
                "object": "Customer", "record_id": crm_id, "operation": "insert",
                "fields": {"FirstName": "Bench", "LastName": f"M{n}",
                           "Email": f"m{n}@example.com"},
                "stage": "new", "idempotency_key": insert_idempotency_key("Customer", crm_id),
                "status": "pending", "attempts": 0, "error_log": []}
                for n, crm_id in enumerate(ids[start:start + 5000], start)])
    while dispatch_api(stack.rt):
        pass


def run(stack: Stack, params: MemoryParams) -> Iterator[Figure]:
    """Figures as they are measured: items/s of each tenth of the run (a slowdown as the
    tables grow shows at once), then the RSS growth from warm to the end."""
    stack.reset()
    stack.gw_sim("POST", "/webhooks/faults", json={"pause": True})
    samples: list[Sample] = []
    try:
        backlog(stack, params.items)
        _analyse(stack)
        yield from _sample_worker(stack, params, samples)
    finally:
        stack.gw_sim("POST", "/webhooks/faults", json={"pause": False})
    done = samples[-1].done
    start = samples[0].rss
    # Growth is judged from the first sample after warm-up: imports, pools and caches filled
    # by the first items are not growth.
    warm = next((x.rss for x in samples if x.done >= params.warm), samples[-1].rss)
    end = samples[-1].rss
    growth = (end - warm) / warm
    detail: dict[str, Any] = {"items_done": done, "rss_start_mb": start / MB,
                              "rss_warm_mb": warm / MB, "rss_end_mb": end / MB,
                              "growth_since_warm": growth,
                              "growth_since_start": (end - start) / start,
                              "samples": [(round(x.rss / MB, 1), x.done, round(x.at, 1))
                                          for x in samples[::10]]}
    yield Figure("memory.worker_rss_end", f"worker RSS after {done:,} items", end / MB, "MiB",
                 ceiling=warm / MB, ceiling_label=f"after {params.warm:,} items (warm)",
                 target="growth <= 10 %", passed=growth <= TARGET and done >= params.items,
                 detail=detail)
    yield Figure("memory.worker_rss_start", "worker RSS at start (registered with RQ)",
                 start / MB, "MiB")


@dataclass(frozen=True)
class Sample:
    rss: int  # bytes
    done: int  # items finished
    at: float  # seconds since the worker started


def _sample_worker(stack: Stack, params: MemoryParams,
                   samples: list[Sample]) -> Iterator[Figure]:
    """Sample (RSS, items finished) every second into ``samples`` until every item is
    finished, yielding the items/s of each tenth of the run as it ends.

    A long-running worker, not a burst one, with the clock beside it: if Redis loses the
    jobs meanwhile (a flush by someone else on a shared machine), the dispatcher hands the
    rows out again, as in production, instead of the worker quitting early."""
    clock = stack.start_clock()
    (proc,) = stack.start_workers(1)
    pid = pid_of(proc)
    began = time.monotonic()
    deadline = began + 3600
    tenth = max(1, params.items // 10)
    mark = (0, 0.0)  # items and seconds at the start of the current tenth
    first_rate: float | None = None
    try:
        done, analysed = 0, time.monotonic()
        while done < params.items and time.monotonic() < deadline:
            rss = rss_bytes(pid)
            done = stack.count("SELECT count(*) FROM api_queue_archive")
            at = time.monotonic() - began
            samples.append(Sample(rss, done, at))
            while done >= mark[0] + tenth and mark[0] < params.items:
                end_items = mark[0] + tenth
                rate = (done - mark[0]) / max(1e-6, at - mark[1])
                first_rate = rate if first_rate is None else first_rate
                n = end_items // tenth
                yield Figure(f"memory.items_per_s.{n * 10}",
                             f"memory phase, items/s up to {n * 10} % ({end_items:,} items)",
                             rate, "items/s", ceiling=first_rate,
                             ceiling_label="in the first 10 %",
                             detail={"items": done, "seconds": at, "rss_mb": rss / MB})
                mark = (done, at)
            if time.monotonic() - analysed > 20:
                _analyse(stack)
                analysed = time.monotonic()
            # Not faster: counting the archive is a scan of a growing table, and the bench
            # must not take the machine from the worker it measures.
            time.sleep(1.0)
    finally:
        stack.stop([proc, clock])


def _analyse(stack: Stack) -> None:
    """What autovacuum does as tables grow (it is off on this machine): fresh statistics,
    so plans prepared while the tables were empty are made again."""
    if stack.rt.db.dialect == "postgresql":
        with stack.rt.db.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE record_links, record_refs, api_queue_items, "
                                 "api_queue_archive, status_history"))
