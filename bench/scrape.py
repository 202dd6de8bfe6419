"""What a scrape of /metrics and /readyz costs, with a backlog in both queues.

Fills the API Queue and the Webhook Queue with ``--rows`` pending rows each (one multi-row
insert per 10,000), then times ``--requests`` scrapes of each endpoint through the WSGI app
in this process (no HTTP server: the figure is Paybridge's own cost). Prints requests per
second and the mean milliseconds per request. Uses DATABASE_URL / REDIS_URL when set (the
tables are emptied first: never point it at a database you care about), else a temporary
SQLite file and an embedded Redis.

    .venv/bin/python bench/scrape.py --rows 100000 --requests 200
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import redis
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.clock import utcnow  # noqa: E402
from app.config import Settings  # noqa: E402
from app.migrate import upgrade  # noqa: E402
from app.models import metadata  # noqa: E402
from app.runtime import Runtime  # noqa: E402
from app.web import create_app  # noqa: E402
from queues.models import QueueItem  # noqa: E402
from webhooks.models import WebhookEvent  # noqa: E402

CHUNK = 10_000


def fill(rt: Runtime, rows: int) -> None:
    now = utcnow()
    with rt.db.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            if table.name != "lease_tokens":
                conn.execute(table.delete())
        for start in range(0, rows, CHUNK):
            n = range(start, min(rows, start + CHUNK))
            conn.execute(sa.insert(QueueItem.__table__), [{
                "object": "Customer", "record_id": f"003B{i:012d}", "operation": "insert",
                "fields": {}, "status": "pending", "stage": "new", "attempts": 0,
                "idempotency_key": f"pb-bench-{i}", "next_attempt_at": now, "error_log": [],
                "created_at": now, "updated_at": now} for i in n])
            conn.execute(sa.insert(WebhookEvent.__table__), [{
                "event_id": f"EVB{i:012d}", "endpoint": "gocardless", "delivery_id": "bench",
                "resource_type": "payments", "resource_id": f"PM{i}", "action": "submitted",
                "event_time": now, "payload": {}, "stage": "new", "status": "pending",
                "attempts": 0, "next_attempt_at": now, "error_log": [], "created_at": now,
                "updated_at": now} for i in n])
        if rt.db.dialect == "postgresql":
            conn.execute(sa.text("ANALYZE"))  # autovacuum is off on these machines (FACTS)


def scrape(client: object, path: str, count: int, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    for _ in range(count):
        resp = client.get(path, headers=headers)  # type: ignore[attr-defined]
        assert resp.status_code in (200, 503), (path, resp.status_code)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="paybridge-scrape-"))
    settings = Settings.from_env(home=home, env="test", log_format="text", log_level="WARNING")
    upgrade(settings.effective_database_url)
    rt = Runtime(settings)
    fill(rt, args.rows)
    client = create_app(runtime=rt).test_client()
    token = settings.metrics_token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    print(f"{rt.db.dialect}, {args.rows} pending rows in each queue, {args.requests} requests")
    for path in ("/metrics", "/readyz"):
        elapsed = scrape(client, path, args.requests, headers)
        print(f"{path:10} {args.requests / elapsed:8.0f} req/s  "
              f"{elapsed / args.requests * 1000:7.2f} ms/request")
    rt.db.dispose()
    if not os.environ.get("REDIS_URL"):
        # The embedded redis-server is a daemon: it would outlive this script.
        with contextlib.suppress(redis.RedisError):
            rt.redis.shutdown(nosave=True)
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
