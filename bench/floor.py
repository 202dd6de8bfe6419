"""The physical floor of CPU per item: the least work any item needs, done bare.

Every API Queue record and every applied event needs at least one partner call and one
durable write. The floor is exactly that, measured in this process with nothing else
around it: one ``requests`` call creating a customer at the gateway emulator (what the API
Queue's insert does) plus one single-row insert committed on the same database. CPU is this
thread's own (``time.thread_time``), so the bench's other threads do not count.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import requests
import sqlalchemy as sa

from bench.stack import Stack, http_session

TABLE = "bench_floor"  # the bench's own; dropped when measured
_rows = sa.table(TABLE, sa.column("note"))


@dataclass(frozen=True)
class Floor:
    cpu_ms: float  # per item: one gateway call + one single-row commit
    http_cpu_ms: float
    commit_cpu_ms: float
    items: int


def measure(stack: Stack, items: int) -> Floor:
    engine = stack.rt.db.engine
    key = "BIGSERIAL PRIMARY KEY" if engine.dialect.name == "postgresql" else "INTEGER PRIMARY KEY"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE IF NOT EXISTS {TABLE} (id {key}, note VARCHAR(64))"))
    http = http_session()
    http.headers.update({"Authorization": f"Bearer {stack.settings.gateway_access_token}",
                         "Accept": "application/json"})
    run = uuid.uuid4().hex[:8]
    try:
        for n in range(20):  # connections and caches warmed up, as in a running worker
            _call(stack, http, f"warm-{run}-{n}")
            _commit(engine, f"warm-{n}")
        http_cpu = commit_cpu = 0.0
        for n in range(items):
            started = time.thread_time()
            _call(stack, http, f"{run}-{n}")
            between = time.thread_time()
            _commit(engine, f"{run}-{n}")
            http_cpu += between - started
            commit_cpu += time.thread_time() - between
    finally:
        http.close()
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}"))
    return Floor(cpu_ms=(http_cpu + commit_cpu) * 1000 / items,
                 http_cpu_ms=http_cpu * 1000 / items, commit_cpu_ms=commit_cpu * 1000 / items,
                 items=items)


def _call(stack: Stack, http: requests.Session, key: str) -> None:
    response = http.post(
        f"{stack.gw}/customers", headers={"Idempotency-Key": f"floor-{key}"}, timeout=30,
        json={"customers": {"given_name": "Floor", "family_name": key,
                            "email": f"{key}@example.com"}})
    response.raise_for_status()


def _commit(engine: sa.Engine, note: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(_rows).values(note=note))
