"""What one dispatcher pass costs, counted (Redis commands and SQL statements, never time),
with a small and a twenty times larger backlog that live jobs hold; and that judging jobs
in bulk still finds every row whose job is gone, wherever it sits in the backlog."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from rq.job import Job

from app.background import API_QUEUE, PROCESS_API_ITEMS, chunk, enqueue
from app.clock import utcnow
from app.runtime import Runtime
from queues.models import QueueItem
from workers.dispatcher import dispatch_api

qi = QueueItem.__table__


def hold(rt: Runtime, rows: int, *, handed_ago: float) -> dict[str, list[int]]:
    """``rows`` pending rows handed ``handed_ago`` seconds ago to queued jobs of one batch
    each (no worker runs, so every job stays live); returns job id -> row ids."""
    now = utcnow()
    at = now - timedelta(seconds=handed_ago)
    with rt.db.engine.begin() as conn:
        ids = [r[0] for r in conn.execute(sa.insert(qi).returning(qi.c.id), [
            {"object": "Customer", "record_id": f"COST{n}", "operation": "insert",
             "fields": {}, "stage": "new", "idempotency_key": f"pb-cost-{n}",
             "status": "pending", "attempts": 0, "next_attempt_at": now, "error_log": [],
             "created_at": now, "updated_at": now, "dispatched_at": at}
            for n in range(rows)])]
        jobs = {f"pb-cost-{n}": part for n, part in enumerate(chunk(sorted(ids),
                                                                     rt.settings.batch_size))}
        for job_id, part in jobs.items():
            conn.execute(sa.update(qi).where(qi.c.id.in_(part)).values(job_id=job_id))
    assert enqueue(rt.redis, API_QUEUE, PROCESS_API_ITEMS, jobs, timeout=60)
    return jobs


@contextlib.contextmanager
def counted(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Count the SQL statements and Redis commands this process sends meanwhile."""
    counts = {"sql": 0, "redis": 0}

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        # SQLite's BEGIN IMMEDIATE (app.db) is transaction control, not a query.
        if not sql.lstrip().upper().startswith("BEGIN"):
            counts["sql"] += 1

    command = rt.redis.execute_command
    execute = redis.client.Pipeline.execute

    def one(*args: Any, **kwargs: Any) -> Any:
        counts["redis"] += 1
        return command(*args, **kwargs)

    def pipelined(self: redis.client.Pipeline, *args: Any, **kwargs: Any) -> Any:
        counts["redis"] += len(self.command_stack)
        return execute(self, *args, **kwargs)

    monkeypatch.setattr(rt.redis, "execute_command", one)
    monkeypatch.setattr(redis.client.Pipeline, "execute", pipelined)
    sa.event.listen(rt.db.engine, "before_cursor_execute", statement)
    try:
        yield counts
    finally:
        sa.event.remove(rt.db.engine, "before_cursor_execute", statement)
        monkeypatch.undo()


def _pass_cost(rt: Runtime, monkeypatch: pytest.MonkeyPatch, rows: int,
               handed_ago: float) -> dict[str, int]:
    with rt.db.engine.begin() as conn:
        conn.execute(sa.delete(qi))
    rt.redis.flushdb()
    hold(rt, rows, handed_ago=handed_ago)
    with counted(rt, monkeypatch) as counts:
        assert dispatch_api(rt) == 0, "a row a live job holds was handed out again"
    return counts


@pytest.mark.parametrize("handed_ago", [0.0, 60.0], ids=["handed-recently", "handed-long-ago"])
def test_a_pass_over_held_rows_costs_the_same_at_any_backlog(
        rt: Runtime, monkeypatch: pytest.MonkeyPatch, handed_ago: float) -> None:
    assert handed_ago == 0 or handed_ago > rt.settings.redispatch_after
    small = _pass_cost(rt, monkeypatch, 1_000, handed_ago)
    large = _pass_cost(rt, monkeypatch, 20_000, handed_ago)
    assert large == small, {"1,000 rows": small, "20,000 rows": large}
    assert small["sql"] == 1 and small["redis"] <= 5, small



def test_a_vanished_job_is_found_at_the_far_end_of_a_held_backlog(rt: Runtime) -> None:
    jobs = hold(rt, 20_000, handed_ago=60)
    gone = max(jobs, key=lambda job_id: jobs[job_id][0])  # the newest rows' job
    lost = jobs[gone]
    Job.fetch(gone, connection=rt.redis).delete()
    # Each pass judges one window of the rows handed out long ago, so the clock's passes
    # reach the far end within backlog / window passes: its rows go to a new job there,
    # and every other row stays with its live job.
    window = rt.settings.batch_size * 40
    passes = [dispatch_api(rt) for _ in range(-(-20_000 // window))]
    assert sum(passes) == len(lost), passes
    with rt.db.engine.connect() as conn:
        moved = {r[0]: r[1] for r in conn.execute(
            sa.select(qi.c.id, qi.c.job_id).where(qi.c.id.in_(lost)))}
    assert set(moved) == set(lost) and not set(moved.values()) & set(jobs)
    assert dispatch_api(rt) == 0
