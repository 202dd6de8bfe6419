"""Alembic guards: one head; upgrade from empty gives exactly the models' schema; downgrade."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from app.db import make_engine
from app.migrate import alembic_config
from app.models import metadata

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def test_exactly_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    if not os.environ.get("DATABASE_URL", "").startswith("postgresql"):
        pytest.skip("PostgreSQL run: set DATABASE_URL (CI does)")
    name = f"paybridge_mig_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_upgrade_from_empty_matches_the_models_and_downgrades(empty_database: str) -> None:
    cfg = alembic_config(empty_database)
    command.upgrade(cfg, "head")
    engine = make_engine(empty_database)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                metadata)
    assert diff == []
    command.downgrade(cfg, "base")
    with engine.connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
    command.upgrade(cfg, "head")
    engine.dispose()


def test_upgrading_keeps_work_in_flight_and_then_drains_it(empty_database: str) -> None:
    """Rows of both queues left by the previous release (pending, leased by a worker still
    running, parked, Failed) survive the upgrade to fenced leases: nothing is lost, a live
    lease is still respected until it expires, and then everything can be worked off."""
    from datetime import UTC, datetime, timedelta

    from app.db import Database
    from app.workrows.leases import new_lease
    from queues import service
    from webhooks import service as webhook_service

    cfg = alembic_config(empty_database)
    command.upgrade(cfg, "0002")
    engine = make_engine(empty_database)
    # Written as the release's own UTC column type stores them (naive UTC on SQLite).
    now = datetime.now(UTC)
    if engine.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)
    old = sa.MetaData()
    old.reflect(engine, only=["api_queue_items", "webhook_events"])
    work = {"attempts": 0, "error_log": [], "created_at": now, "updated_at": now,
            "next_attempt_at": now - timedelta(seconds=1)}
    leased = {"lease_owner": "old-release-worker", "lease_until": now + timedelta(seconds=2)}
    free = dict.fromkeys(leased)  # every row names the same columns (one executemany)
    with engine.begin() as conn:
        conn.execute(old.tables["api_queue_items"].insert(), [
            {**work, "object": "Customer", "record_id": f"003M{n}", "operation": "insert",
             "fields": {"LastName": "M"}, "stage": "new", "idempotency_key": f"pb-m{n}",
             "status": status, **(leased if n == 1 else free)}
            for n, status in enumerate(("pending", "pending", "failed"))])
        conn.execute(old.tables["webhook_events"].insert(), [
            {**work, "event_id": f"EVM{n}", "endpoint": "gocardless", "delivery_id": "WBM",
             "resource_type": "payments", "resource_id": f"PMM{n}", "action": "confirmed",
             "event_time": now, "payload": {}, "stage": "new", "status": status,
             **(leased if n == 1 else free)}
            for n, status in enumerate(("pending", "pending", "parked", "failed"))])
    engine.dispose()
    command.upgrade(cfg, "head")

    db = Database(empty_database)
    try:
        assert service.counts_by_status(db) == {"pending": 2, "failed": 1}
        assert webhook_service.counts_by_status(db) == {"pending": 2, "parked": 1, "failed": 1}
        with db.transaction() as session:
            ids = [r.id for r in service.list_items(db, limit=10)]
            tokens = session.execute(sa.text("SELECT lease_token FROM api_queue_items")).all()
        assert {t[0] for t in tokens} == {0}
        # The old release's worker still holds its row: only the free one is claimed.
        first = new_lease(db, "new-release", 30)
        assert first.token >= 1
        claimed = service.claim(db, ids, first)
        assert len(claimed) == 1
        import time

        time.sleep(2.2)  # the old worker's lease runs out
        second = new_lease(db, "new-release", 30)
        assert len(service.claim(db, ids, second)) == 1
        assert len(service.reprocess(db, ids=ids, actor="upgrade-test")) == 1
        third = new_lease(db, "new-release", 30)
        assert len(service.claim(db, ids, third)) == 1
        with db.transaction() as session:
            done = sum(service.complete(session, ids, lease)
                       for lease in (first, second, third))
        assert done == 3 and service.counts_by_status(db) == {}
        resources = webhook_service.resources_of(
            db, [e.id for e in webhook_service.list_events(db, limit=10)])
        lease = new_lease(db, "new-release", 30)
        with db.transaction() as session:
            events = [ev for rtype, rid in resources
                      for ev in webhook_service.lease_resource_events(session, db, rtype, rid,
                                                                      lease)]
        # Pending, the old worker's (its lease has ended) and parked; Failed waits for an admin.
        assert len(events) == 3 and all(ev.lease_token == lease.token for ev in events)
    finally:
        db.dispose()
