"""A process that contends for API Queue rows, run by test_lease_contention.py.

    python -m tests.integration.contenders worker SECONDS
    python -m tests.integration.contenders storm SECONDS
    python -m tests.integration.contenders one ID        # one job on one row, then report

``worker`` picks due rows at random (the same rows other workers pick) and runs the real job
function on them; ``storm`` keeps dispatching every row at once (``redispatch_after=0``), the
way the clock, wake-ups and admin reprocess all dispatch. Settings come from the environment.
Each prints one JSON line with what its jobs reported.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter

import sqlalchemy as sa

from app.runtime import Runtime
from app.workrows.dispatch import mark_dispatched
from queues.models import QueueItem
from workers.context import runtime
from workers.dispatcher import dispatch_api
from workers.jobs import process_api_items


def _pending(rt: Runtime, limit: int) -> list[int]:
    with rt.db.transaction() as session:
        return list(session.scalars(sa.select(QueueItem.id).where(QueueItem.status == "pending")
                                    .order_by(sa.func.random()).limit(limit)))


def main(role: str, arg: str) -> None:
    rt = runtime()
    totals: Counter[str] = Counter()
    if role == "one":
        totals.update(process_api_items([int(arg)]))
        print(json.dumps(totals), flush=True)
        return
    deadline = time.monotonic() + float(arg)
    while time.monotonic() < deadline:
        if role == "storm":
            totals["dispatched"] += dispatch_api(rt, redispatch_after=0)
            # Offer every pending row, held or not, as a racing dispatcher would: marking
            # must refuse the ones a live job holds.
            offered = _pending(rt, 10_000)
            if not offered:
                break
            marked = mark_dispatched(rt.db, QueueItem.__table__, {"pb-storm": offered})
            totals["offered"] += len(offered)
            totals["refused_held"] += len(offered) - sum(len(v) for v in marked.values())
            continue
        ids = _pending(rt, 40)
        if not ids:
            break
        totals.update({k: v for k, v in process_api_items(ids).items() if isinstance(v, int)})
    print(json.dumps(totals), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
