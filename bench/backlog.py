"""Backlog: what claiming and dispatching cost with a small and a huge pile of pending rows.

Rows are generated in the database in one statement (generate_series on PostgreSQL, a
recursive CTE on SQLite), then analysed as autovacuum would. Three operations are timed
with each size, in this process against the bench database and Redis:
- dispatch: dispatcher passes handing out never-dispatched rows, per 1,000 rows;
- claim: one worker claiming a job's rows (FOR UPDATE SKIP LOCKED on PostgreSQL);
- idle tick: a dispatcher pass when every row is already held by a live job (immediate
  mode right after a burst: nothing to do, but the pass still has to find that out).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from app.workrows.leases import new_lease
from bench.report import Figure
from bench.stack import Stack
from queues import service
from workers.dispatcher import dispatch_api

TARGET = 1.5

_PG_ROWS = """
INSERT INTO api_queue_items (object, record_id, operation, fields, stage, idempotency_key,
    status, attempts, next_attempt_at, error_log, created_at, updated_at, dispatched_at, job_id)
SELECT 'Customer', 'BL' || g, 'insert', '{}'::jsonb, 'new', 'pb-bl-' || g, 'pending', 0,
    now(), '[]'::jsonb, now(), now(),
    CASE WHEN :held THEN now() - make_interval(secs => :ago) END,
    CASE WHEN :held THEN 'pb-held' END
FROM generate_series(1, :n) AS g
"""

_SQLITE_ROWS = """
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :n)
INSERT INTO api_queue_items (object, record_id, operation, fields, stage, idempotency_key,
    status, attempts, next_attempt_at, error_log, created_at, updated_at, dispatched_at, job_id)
SELECT 'Customer', 'BL' || n, 'insert', '{}', 'new', 'pb-bl-' || n, 'pending', 0,
    :now, '[]', :now, :now, CASE WHEN :held THEN :handed END,
    CASE WHEN :held THEN 'pb-held' END
FROM g
"""


@dataclass(frozen=True)
class BacklogParams:
    small: int
    large: int
    repeats: int = 5


def fill(stack: Stack, rows: int, held: bool, ago: float = 0.0) -> float:
    """Insert ``rows`` pending rows; ``held`` ones look handed to a live job ``ago`` seconds
    ago. Seconds taken."""
    started = time.monotonic()
    db = stack.rt.db
    with db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM api_queue_items"))
        if db.dialect == "postgresql":
            conn.execute(sa.text(_PG_ROWS), {"n": rows, "held": held, "ago": ago})
        else:
            now = time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime())
            handed = time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime(time.time() - ago))
            conn.execute(sa.text(_SQLITE_ROWS), {"n": rows, "held": held, "now": now,
                                                 "handed": handed})
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE api_queue_items" if db.dialect == "postgresql"
                             else "ANALYZE"))
    if held:
        # The held rows' job must be alive, or the dispatcher would rightly hand them out.
        from app.background import API_QUEUE, PROCESS_API_ITEMS, enqueue

        stack.rt.redis.delete("rq:job:pb-held")
        enqueue(stack.rt.redis, API_QUEUE, PROCESS_API_ITEMS, {"pb-held": []}, timeout=60)
    return time.monotonic() - started


def _timed(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall-clock ms of ``fn`` over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(stack: Stack, rows: int, repeats: int) -> dict[str, Any]:
    rt = stack.rt
    out: dict[str, Any] = {"rows": rows}
    out["fill_s"] = fill(stack, rows, held=False)
    rt.redis.flushdb()
    handed: list[int] = []
    started = time.perf_counter()
    while len(handed) < repeats and (not handed or handed[-1]):
        handed.append(dispatch_api(rt))
    taken = (time.perf_counter() - started) * 1000
    out["dispatched_rows"] = handed
    out["dispatch_ms"] = taken * 1000 / max(1, sum(handed))  # per 1,000 rows handed out

    size = stack.settings.batch_size
    ids = iter(_first_ids(stack, size * repeats))

    def claim() -> None:
        batch = [next(ids) for _ in range(size)]
        got = service.claim(rt.db, batch, new_lease(rt.db, "bench", 60))
        assert len(got) == size, f"claimed {len(got)} of {size}"

    out["claim_ms"] = _timed(claim, repeats)
    out["fill_held_s"] = fill(stack, rows, held=True)
    # Handed out within REDISPATCH_AFTER of the pass, however long a large fill took (its
    # rows carry the fill's start time): nothing to judge, as right after a burst.
    recent = out["fill_held_s"] + 60
    out["idle_tick_ms"] = _timed(lambda: dispatch_api(rt, redispatch_after=recent), repeats)
    # The same, long after the rows were handed out (a queue hours deep): each pass judges
    # one window of them against the live jobs read from Redis.
    out["fill_held_old_s"] = fill(stack, rows, held=True, ago=3600)
    out["idle_tick_old_ms"] = _timed(lambda: dispatch_api(rt), repeats)
    rt.redis.flushdb()
    with rt.db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM api_queue_items"))
    return out


def _first_ids(stack: Stack, n: int) -> list[int]:
    with stack.rt.db.engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.text(
            "SELECT id FROM api_queue_items WHERE lease_owner IS NULL ORDER BY id LIMIT :n"),
            {"n": n})]


def run(stack: Stack, params: BacklogParams) -> list[Figure]:
    """Figures come at the end: each compares the large backlog with the small one."""
    stack.reset()
    small = measure(stack, params.small, params.repeats)
    large = measure(stack, params.large, params.repeats)
    figures = []
    for key, label in (("dispatch_ms", "dispatcher, per 1,000 rows handed out"),
                       ("claim_ms", f"claim of one job's {stack.settings.batch_size} rows"),
                       ("idle_tick_ms", "dispatcher pass, every row held by a live job"),
                       ("idle_tick_old_ms", "the same pass, rows handed out an hour ago")):
        ratio = large[key] / max(small[key], 1e-6)
        figures.append(Figure(
            f"backlog.{key}", f"{label}, {params.large:,} pending rows", large[key], "ms",
            ceiling=small[key], ceiling_label=f"with {params.small:,} rows",
            target=f"<= {TARGET}x", passed=ratio <= TARGET,
            detail={"ratio": ratio, "small": small, "large": large}))
    return figures
