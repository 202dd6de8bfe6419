"""The scheduled reconcile: the clock hands out one job when a run is due (never one per
tick), an RQ worker runs it, the differences it leaves show as metrics and as an alert."""

from __future__ import annotations

import time
from dataclasses import replace

import sqlalchemy as sa
from rq import Queue, SimpleWorker

from app.background import ADMIN_QUEUE
from app.console import alerts
from app.runtime import Runtime
from app.web import create_app
from reconcile import runs, schedule
from reconcile.models import ReconcileRun
from tests.integration.reconcile_world import World
from workers.context import set_runtime


def test_the_clock_hands_out_one_run_when_due_and_its_result_is_measured(linked) -> None:
    base = linked[0]
    rt = Runtime(replace(base.settings, reconcile_interval=1.0))
    set_runtime(rt)
    world = World(rt, *linked[1:])
    world.chain(0)
    never = world.crm_create("Contact", {"LastName": "Never"})  # left for an admin

    assert schedule.schedule(rt) == 0  # a new installation waits one interval
    deadline = time.monotonic() + 10
    handed = 0
    while handed == 0 and time.monotonic() < deadline:
        handed = schedule.schedule(rt)
        time.sleep(0.1)
    assert handed == 1
    assert schedule.schedule(rt) == 0  # due still, but its job is already handed out
    queue = Queue(ADMIN_QUEUE, connection=rt.redis)
    assert [j.func_name for j in queue.get_jobs()] == [schedule.RUN_JOB]
    SimpleWorker([queue], connection=rt.redis).work(burst=True, with_scheduler=False)

    with rt.db.transaction() as session:
        (run,) = session.scalars(sa.select(ReconcileRun))
        assert (run.state, run.started_by, run.repair) == ("done", "clock", True)
        assert run.summary["remaining"] == {"not_synced": 1}
    sent = alerts.check(rt)
    assert [(a.kind, a.count) for a in sent] == [("reconcile", 1)]
    assert "not_synced 1" in sent[0].body and never
    metrics = create_app(runtime=rt).test_client().get("/metrics").get_data(as_text=True)
    assert 'paybridge_reconcile_differences{kind="not_synced"} 1.0' in metrics
    assert 'paybridge_reconcile_differences{kind="status"} 0.0' in metrics
    rt.db.dispose()


def test_a_skipped_scheduled_job_leaves_a_console_start_its_hold(linked) -> None:
    rt = linked[0]
    set_runtime(rt)
    run, _ = runs.open_run(rt.db, "reconcile", ["Payment"], started_by="cli")  # busy
    rt.redis.set(schedule.SCHEDULED_KEY, "console")  # a console start waits for its job
    assert schedule.run_scheduled(rt) == {"runs": 0}
    assert rt.redis.get(schedule.SCHEDULED_KEY) is not None  # still the console's
    with rt.db.transaction() as session:
        assert session.get(ReconcileRun, run.id).state == "running"
