"""State-machine property test of the work-row engine against its declared table.

Hypothesis drives claims, lease expiries, failures, completions, dispatches, reprocesses,
discards and late writes by jobs whose lease moved on, on the real database; after every
step: no row is lost, every observed move is declared in ``TRANSITIONS``, and no row is held
by two leases at once.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from app.clock import utcnow
from app.runtime import Runtime
from app.workrows import dispatch
from app.workrows.leases import Lease, new_lease, owned
from app.workrows.rows import DONE
from app.workrows.states import TRANSITIONS, IllegalTransition, allowed, record_failure
from queues import service
from queues.models import ArchivedItem, QueueItem
from tests.conftest import clean

qi = QueueItem.__table__
WORKERS = 3
ROWS = 4


def test_no_sequence_of_moves_breaks_the_declared_table(rt: Runtime) -> None:
    class Rows(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            clean(rt)
            items = service.accept_changes(rt.db, [
                {"object": "Customer", "record_id": f"003S{n}", "operation": "insert",
                 "fields": {"LastName": "S"}, "previous_fields": None} for n in range(ROWS)])
            self.ids = [i.id for i in items]
            self.seen = {i: "pending" for i in self.ids}
            self.leases: list[Lease] = []  # every lease ever granted, current and stale
            self.by_worker: dict[int, list[Lease]] = {w: [] for w in range(WORKERS)}

        def _lease(self, worker: int) -> Lease:
            lease = new_lease(rt.db, f"w{worker}", 30)
            self.leases.append(lease)
            self.by_worker[worker].append(lease)
            return lease

        def _pick(self, worker: int, back: int) -> Lease | None:
            """The worker's current lease (back=0) or one of its earlier, stale ones."""
            mine = self.by_worker[worker]
            return mine[-1 - back] if len(mine) > back else None

        @rule(worker=st.integers(0, WORKERS - 1))
        def claim(self, worker: int) -> None:
            service.claim(rt.db, self.ids, self._lease(worker))

        @rule(row=st.integers(0, ROWS - 1))
        def expire(self, row: int) -> None:  # its holder froze
            with rt.db.transaction() as session:
                session.execute(sa.update(qi).where(qi.c.id == self.ids[row])
                                .values(lease_until=utcnow() - timedelta(seconds=1)))

        @rule(worker=st.integers(0, WORKERS - 1), back=st.integers(0, 2),
              transient=st.booleans())
        def fail(self, worker: int, back: int, transient: bool) -> None:
            lease = self._pick(worker, back)
            if lease is None:
                return
            with rt.db.transaction() as session:
                for item in session.scalars(sa.select(QueueItem).where(owned(qi, lease))):
                    record_failure(item, stage="gateway", error="boom", transient=transient,
                                   schedule=(0.0, 0.0), jitter=0)

        @rule(worker=st.integers(0, WORKERS - 1), back=st.integers(0, 2))
        def complete(self, worker: int, back: int) -> None:
            lease = self._pick(worker, back)
            if lease is None:
                return
            with rt.db.transaction() as session:
                service.complete(session, self.ids, lease)

        @rule()
        def dispatch_all(self) -> None:
            dispatch.mark_dispatched(rt.db, qi, {"pb-storm": self.ids})

        @rule()
        def reprocess(self) -> None:
            service.reprocess(rt.db, ids=self.ids, actor="prop")

        @rule(row=st.integers(0, ROWS - 1))
        def discard(self, row: int) -> None:
            # Only Failed rows can be discarded: otherwise refused, nothing changed.
            with contextlib.suppress(IllegalTransition):
                service.discard(rt.db, self.ids[row], "prop", actor="prop")

        @invariant()
        def nothing_lost_and_every_move_declared(self) -> None:
            with rt.db.transaction() as session:
                live = {r.id: r for r in session.scalars(
                    sa.select(QueueItem).where(QueueItem.id.in_(self.ids)))}
                done = set(session.scalars(sa.select(ArchivedItem.id).where(
                    ArchivedItem.id.in_(self.ids))))
                now = utcnow()
                for row_id in self.ids:
                    assert (row_id in live) != (row_id in done), f"row {row_id} lost or doubled"
                    status = live[row_id].status if row_id in live else DONE
                    before = self.seen[row_id]
                    assert status == before or allowed("api", before, status), (before, status)
                    assert status == DONE or status in TRANSITIONS["api"]
                    self.seen[row_id] = status
                    if row_id in live:
                        row = live[row_id]
                        holders = [ls for ls in self.leases
                                   if (row.lease_token, row.lease_owner) == (ls.token, ls.owner)]
                        assert len(holders) <= 1
                        if row.lease_until is not None and row.lease_until > now:
                            assert row.status == "pending", "only pending rows are held"

    run_state_machine_as_test(Rows, settings=settings(
        max_examples=60, stateful_step_count=30, deadline=None,
        suppress_health_check=list(HealthCheck)))
