"""The real processes a benchmark runs against: both emulators, gunicorn, RQ workers, clock.

Process specs come from the main job's supervisor, so the bench measures what
`paybridge run` runs. Emulators and the web app stay up for the whole bench; workers, the
clock and (when a setting changes) the web app are restarted per scenario. ``reset`` empties
the emulators, the tables and the bench's Redis database between scenarios.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from app.auth import create_key
from app.config import Settings
from app.models import metadata
from app.runtime import Runtime
from app.supervisor import (
    PY,
    Addresses,
    Ports,
    Proc,
    emulator_procs,
    paybridge_procs,
    start,
    stop,
)
from app.supervisor import wait_http as _wait_http

ROOT = Path(__file__).resolve().parent.parent


def http_session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # only 127.0.0.1 is ever called; proxies and CA variables don't apply
    return s


def wait_until(predicate: Callable[[], Any], timeout: float, what: str,
               interval: float = 0.1, explain: Callable[[], str] | None = None) -> Any:
    """Poll ``predicate`` until it is truthy; on timeout raise ``TimeoutError``, its message
    followed by ``explain()`` (what broke the awaited condition) when given."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            message = f"timed out after {timeout:.0f}s waiting for {what}"
            if explain is not None:
                try:
                    message += f": {explain()}"
                except Exception as exc:  # the explanation must not hide the timeout
                    message += f" (could not say what is missing: {exc!r})"
            raise TimeoutError(message)
        time.sleep(interval)


def stop_procs(procs: list[Proc]) -> None:
    """Stop processes as the supervisor does (SIGTERM, SIGKILL after its grace period), then
    SIGKILL whatever is left in their process groups: every one was started in a session of
    its own, so a child outliving its parent (a gunicorn worker, an RQ work horse) is still
    in the group and must not outlive the run."""
    try:
        stop(procs)
    finally:
        for proc in procs:
            if proc.popen is None:
                continue
            if proc.popen.poll() is None:
                proc.popen.kill()
                proc.popen.wait()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.popen.pid, signal.SIGKILL)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def end_on_signals() -> None:
    """SIGTERM, SIGINT and SIGHUP (the terminal closed) unwind the bench like an exception,
    so every ``finally`` runs and ``Stack.close`` ends every process it started. Further
    signals are ignored meanwhile: a second Ctrl-C must not cut the clean-up short and leave
    processes behind."""

    def _unwind(signum: int, _frame: object) -> None:
        for name in STOP_SIGNALS:
            signal.signal(name, signal.SIG_IGN)
        print(f"bench: stopped by signal {signum}; ending every process it started",
              file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)

    for name in STOP_SIGNALS:
        signal.signal(name, _unwind)


@dataclass
class Stack(Addresses):
    database_url: str
    redis_url: str
    home: Path
    time_scale: float = 1.0
    ports: Ports = field(default_factory=Ports.free)
    procs: list[Proc] = field(default_factory=list)
    http: requests.Session = field(default_factory=http_session)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ, "PAYBRIDGE_HOME": str(self.home), "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url, "PORT": str(self.ports.web), "LOG_FORMAT": "json",
            "PAYBRIDGE_ENV": "development", "PYTHONPATH": str(ROOT),
            "SALESFORCE_LOGIN_URL": self.sf,
            "SALESFORCE_CA_BUNDLE": str(self.home / "sim-salesforce" / "ca.pem"),
            "GATEWAY_URL": self.gw,
            # Our own gateway limiter is off unless a scenario limits the emulator.
            "GATEWAY_RATE_LIMIT": "0",
        }
        self.settings = Settings.from_env(self.env)
        self.rt = Runtime(self.settings)
        self._closed = False
        # However the bench ends (an exception nobody caught, sys.exit), nothing it started
        # survives it; a signal ends up here too (end_on_signals).
        atexit.register(self.close)

    # -- addresses ---------------------------------------------------------------------------

    @property
    def ca(self) -> str:
        return self.env["SALESFORCE_CA_BUNDLE"]

    # -- partner calls -----------------------------------------------------------------------

    def sf_call(self, method: str, path: str, **kw: Any) -> Any:
        response = self.http.request(method, self.sf + path, verify=self.ca, timeout=120, **kw)
        response.raise_for_status()
        return response.json()

    def gw_call(self, method: str, path: str, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.settings.gateway_access_token}"}
        response = self.http.request(method, self.gw + path, headers=headers, timeout=120, **kw)
        response.raise_for_status()
        return response.json() if response.content else {}

    def gw_sim(self, method: str, path: str, **kw: Any) -> Any:
        response = self.http.request(method, f"{self.gw}/sim{path}", timeout=120, **kw)
        response.raise_for_status()
        return response.json() if response.content else {}

    # -- processes ---------------------------------------------------------------------------

    def _start(self, procs: list[Proc], env: dict[str, str] | None = None) -> list[Proc]:
        for proc in procs:
            proc.env.update(env or {})
            start(proc, self.env, self.home / "log")
            self.procs.append(proc)
        return procs

    def stop(self, procs: list[Proc]) -> None:
        stop_procs(procs)
        for proc in procs:
            if proc in self.procs:
                self.procs.remove(proc)

    def start_emulators(self) -> None:
        with self.rt.db.transaction() as session:
            trigger_key = create_key(session, "salesforce-emulator", "trigger")[1]
        procs = emulator_procs(self.home, self.ports, trigger_key, self.settings)
        for proc in procs:
            if proc.name == "sim-gateway":
                proc.argv += ["--time-scale", str(self.time_scale)]
        self._start(procs)
        wait_http(f"{self.gw}/sim/health")
        wait_until(lambda: Path(self.ca).exists(), 60, "the Salesforce emulator's CA")
        wait_http(f"{self.sf}/sim/health", verify=self.ca)

    def start_web(self, env: dict[str, str] | None = None, web_workers: int = 2) -> Proc:
        (web,) = self._start([p for p in paybridge_procs(self.ports, 0, web_workers)
                              if p.name == "web"], env)
        wait_http(f"{self.web}/healthz")
        return web

    def start_clock(self, env: dict[str, str] | None = None) -> Proc:
        return self._start([Proc("clock", [PY, "-m", "app.cli", "clock"])], env)[0]

    def start_workers(self, count: int, env: dict[str, str] | None = None,
                      burst: bool = False) -> list[Proc]:
        argv = [PY, "-m", "app.cli", "worker", *(["--burst"] if burst else [])]
        procs = [Proc(f"worker-{n}-{time.monotonic_ns()}", list(argv))
                 for n in range(1, count + 1)]
        self._start(procs, env)
        if not burst:  # a burst worker may be done before it could be counted
            wait_until(lambda: self.live_workers() >= count, 60, f"{count} RQ workers")
        return procs

    def live_workers(self) -> int:
        from rq import Worker

        return len(Worker.all(connection=self.rt.redis))

    def stop_paybridge(self) -> None:
        self.stop([p for p in self.procs if not p.name.startswith("sim-")])

    def close(self) -> None:
        """End every process this stack started (safe to call again) and its connections."""
        procs = list(self.procs)
        if self._closed and not procs:
            return
        self._closed = True
        try:
            stop_procs(procs)
        finally:
            for proc in procs:
                if proc in self.procs:
                    self.procs.remove(proc)
            self.rt.db.dispose()
            if "redis" in self.rt.__dict__:
                self.rt.redis.close()
            self.http.close()

    # -- state -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Empty emulators, tables (API keys stay) and the bench's Redis database."""
        self.sf_call("POST", "/sim/reset")
        self.gw_sim("POST", "/reset")
        with self.rt.db.engine.begin() as conn:
            tables = [t for t in reversed(metadata.sorted_tables) if t.name != "api_keys"]
            if self.rt.db.dialect == "postgresql":
                conn.execute(sa.text("TRUNCATE " + ", ".join(t.name for t in tables)))
            else:
                for table in tables:
                    conn.execute(table.delete())
        self.rt.redis.flushdb()

    def count(self, sql: str) -> int:
        with self.rt.db.engine.connect() as conn:
            return int(conn.execute(sa.text(sql)).scalar() or 0)

    def queue_left(self) -> int:
        return self.count("SELECT count(*) FROM api_queue_items WHERE status = 'pending'")

    def events_left(self) -> int:
        return self.count("SELECT count(*) FROM webhook_events "
                          "WHERE status IN ('pending', 'parked')")


def wait_http(url: str, verify: str | bool = True) -> None:
    _wait_http(url, 60, verify=verify)


@contextlib.contextmanager
def running(stack: Stack, procs: list[Proc]) -> Iterator[list[Proc]]:
    try:
        yield procs
    finally:
        stack.stop(procs)
