"""Claiming, per-record order, leases and re-dispatch, on the real database and Redis."""

from __future__ import annotations

import time

from rq import Queue

from app.background import API_QUEUE
from app.runtime import Runtime
from app.workrows.states import record_failure
from queues import service
from tests.leases import held
from workers.dispatcher import dispatch_api


def changes(record: str, *ops: str) -> list[dict]:
    return [{"object": "Customer", "record_id": record, "operation": op,
             "fields": {"LastName": f"v{n}"}, "previous_fields": None}
            for n, op in enumerate(ops)]


def test_only_the_first_row_of_a_record_can_be_claimed(rt: Runtime) -> None:
    items = service.accept_changes(rt.db, changes("003A", "insert", "update", "update")
                                   + changes("003B", "insert"))
    ids = [i.id for i in items]
    assert service.claim(rt.db, ids, held(rt, "w1", 30)) == [ids[0], ids[3]]
    # A second claimer gets nothing while the leases hold.
    assert service.claim(rt.db, ids, held(rt, "w2", 30)) == []
    with rt.db.transaction() as session:
        service.complete(session, [ids[0]], held(rt, "w1"))
    assert service.claim(rt.db, ids, held(rt, "w2", 30)) == [ids[1]]


def test_a_failed_row_holds_back_later_rows_until_discarded(rt: Runtime) -> None:
    first, second = (i.id for i in service.accept_changes(
        rt.db, changes("003C", "insert", "update")))
    assert service.claim(rt.db, [first, second], held(rt, "w", 30)) == [first]
    with rt.db.transaction() as session:
        item = service.load_owned(session, first, held(rt, "w"))
        record_failure(item, stage="gateway", error="bad", transient=False,
                               schedule=(1.0,), jitter=0)
    assert service.claim(rt.db, [second], held(rt, "w", 30)) == []
    service.discard(rt.db, first, "not needed")
    assert service.claim(rt.db, [second], held(rt, "w", 30)) == [second]


def test_an_expired_lease_lets_another_worker_take_the_row(rt: Runtime) -> None:
    (item,) = service.accept_changes(rt.db, changes("003D", "insert"))
    assert service.claim(rt.db, [item.id], held(rt, "dead-worker", 0.2)) == [item.id]
    assert service.claim(rt.db, [item.id], held(rt, "w2", 30)) == []
    time.sleep(0.3)
    assert service.claim(rt.db, [item.id], held(rt, "w2", 30)) == [item.id]
    # The dead worker can no longer write an outcome.
    with rt.db.transaction() as session:
        assert service.load_owned(session, item.id, held(rt, "dead-worker")) is None


def test_transient_failures_escalate_then_fail(rt: Runtime) -> None:
    (item,) = service.accept_changes(rt.db, changes("003E", "insert"))
    outcomes = []
    for _ in range(3):
        time.sleep(0.05)
        assert service.claim(rt.db, [item.id], held(rt, "w", 30)) == [item.id], outcomes
        with rt.db.transaction() as session:
            row = service.load_owned(session, item.id, held(rt, "w"))
            outcomes.append(record_failure(
                row, stage="gateway", error="HTTP 503", transient=True,
                schedule=(0.01, 0.02), jitter=0, status=503))
    assert outcomes == ["retry", "retry", "failed"]
    row = service.get_item(rt.db, item.id)
    assert row.status == "failed" and row.attempts == 3
    assert [e["outcome"] for e in row.error_log] == ["retry", "retry", "failed"]
    assert all(e["status"] == 503 for e in row.error_log)


def test_rows_survive_a_redis_flush_and_are_dispatched_again(rt: Runtime) -> None:
    s = rt.settings
    items = service.accept_changes(rt.db, changes("003F", "insert") + changes("003G", "insert"),
                                   dispatch_job_ids=["pb-lost-job"], batch_size=s.batch_size)
    rt.redis.flushall()
    # Freshly dispatched rows are left alone (their job may still be queued)...
    assert dispatch_api(rt) == 0
    time.sleep(s.redispatch_after + 0.1)
    # ...until the redispatch delay shows their job is gone.
    assert dispatch_api(rt) == 2
    jobs = Queue(API_QUEUE, connection=rt.redis).get_jobs()
    assert sorted(i for j in jobs for i in j.args[0]) == sorted(i.id for i in items)
    # A live job keeps its rows: nothing is handed out twice.
    time.sleep(s.redispatch_after + 0.1)
    assert dispatch_api(rt) == 0


def test_reprocess_gives_a_fresh_set_of_retries(rt: Runtime) -> None:
    (item,) = service.accept_changes(rt.db, changes("003H", "insert"))
    service.claim(rt.db, [item.id], held(rt, "w", 30))
    with rt.db.transaction() as session:
        row = service.load_owned(session, item.id, held(rt, "w"))
        record_failure(row, stage="gateway", error="x", transient=False,
                               schedule=(1.0,), jitter=0)
    assert service.reprocess(rt.db, ids=[item.id]) == [item.id]
    row = service.get_item(rt.db, item.id)
    assert (row.status, row.attempts) == ("pending", 0)
    assert row.error_log[-1]["outcome"] == "reprocess"


def test_ids_are_never_reused_after_rows_finish(rt: Runtime) -> None:
    (first,) = service.accept_changes(rt.db, changes("003I", "insert"))
    assert service.claim(rt.db, [first.id], held(rt, "w", 30)) == [first.id]
    with rt.db.transaction() as session:
        # the table is now empty, the row archived
        assert service.complete(session, [first.id], held(rt, "w")) == 1
    (second,) = service.accept_changes(rt.db, changes("003J", "insert"))
    assert second.id > first.id
    assert service.claim(rt.db, [second.id], held(rt, "w", 30)) == [second.id]
    with rt.db.transaction() as session:
        assert service.complete(session, [second.id], held(rt, "w")) == 1  # no clash in the archive
