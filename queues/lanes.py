"""Lanes: which of a job's rows must reach the gateway one after another, and running the
lanes side by side.

Rows of different records are independent at the gateway, so one job keeps several calls in
flight (GATEWAY_CONCURRENCY) and a single worker can fill the gateway's allowance. What must
stay serial shares a lane, run in id order exactly as a job without threads would: the rows
of one record (a claim already holds only the first of a record, but a lane does not rely on
it), and rows of records linked to each other in the same job (a payment queued with its new
mandate needs the mandate's gateway id; a cancellation must not overtake an insert that
names the record). Each lane runs in a thread of its own; nothing in a lane shares a
database session with another (every step opens its own transaction), and each result is
written under the job's lease, fenced as always.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

Key = tuple[str, str]  # (object, CRM record id)


def lanes_of(ids: Sequence[int], rows: Iterable[tuple[int, Key, Iterable[Key]]]) -> list[list[int]]:
    """Group ``ids`` into lanes, ordered by their first id, each in id order. ``rows``:
    (id, its record, the records it links to) for the rows that may call the gateway; other
    ids get a lane of their own."""
    parent: dict[Key, Key] = {}

    def root(key: Key) -> Key:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    keys: dict[int, Key] = {}
    links: list[tuple[Key, Key]] = []
    for row_id, key, linked in rows:
        keys[row_id] = key
        root(key)
        links.extend((key, other) for other in linked)
    for key, other in links:
        if other in parent:  # a record with a row of its own in this job
            parent[root(other)] = root(key)
    lanes: dict[object, list[int]] = {}
    for row_id in sorted(ids):
        lane = root(keys[row_id]) if row_id in keys else row_id
        lanes.setdefault(lane, []).append(row_id)
    return list(lanes.values())


def run_lanes(lanes: Sequence[Sequence[int]], step: Callable[[int], bool],
              concurrency: int) -> int:
    """``step`` every row, lanes side by side (at most ``concurrency`` at once), each lane's
    rows one after another; returns how many steps returned True. The first exception a
    lane raised is raised once every lane has ended."""
    if concurrency <= 1 or len(lanes) <= 1:
        return sum(1 for lane in lanes for row_id in lane if step(row_id))

    def lane_run(lane: Sequence[int]) -> int:
        return sum(1 for row_id in lane if step(row_id))

    with ThreadPoolExecutor(max_workers=min(concurrency, len(lanes)),
                            thread_name_prefix="gateway-lane") as pool:
        # Each lane carries the job's log context (job id) into its thread.
        futures = [pool.submit(contextvars.copy_context().run, lane_run, lane)
                   for lane in lanes]
        return sum(f.result() for f in futures)
