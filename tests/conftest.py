"""Shared fixtures: a real database and a real Redis for every test.

Embedded defaults (a SQLite file, an embedded redis-server) unless DATABASE_URL / REDIS_URL
name real servers, as CI does for PostgreSQL and Redis. The schema is built once per session
with the Alembic migrations themselves, and every test starts from empty tables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.config import Settings
from app.db import make_engine
from app.migrate import upgrade
from app.models import metadata
from app.redis_conn import start_embedded
from app.runtime import Runtime


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return os.environ.get("REDIS_URL") or start_embedded(
        tmp_path_factory.mktemp("redis") / "redis.db")


def reset_database(url: str) -> None:
    """Empty the test database completely (PostgreSQL: the public schema), then migrate."""
    engine = make_engine(url)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    upgrade(url)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("DATABASE_URL") or (
        f"sqlite:///{tmp_path_factory.mktemp('db') / 'paybridge.db'}")
    reset_database(url)
    return url


def fast_settings(database_url: str, redis_url: str, home: Path, **overrides: object) -> Settings:
    base = dict(
        env="test", database_url=database_url, redis_url=redis_url, home=home,
        retry_schedule=(0.2, 0.4, 0.8), retry_jitter=0.0, log_format="text",
        lease_seconds=10.0, redispatch_after=2.0, dispatch_interval=0.2,
        salesforce_limit_pause=1.0,
    )
    base.update(overrides)
    return Settings.from_env(environ={}, **base)


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return fast_settings(database_url, redis_url, tmp_path)


def clean(rt: Runtime) -> None:
    with rt.db.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    rt.redis.flushdb()


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime(settings)
    clean(runtime)
    yield runtime
    runtime.db.dispose()
