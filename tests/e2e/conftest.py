"""The real processes over HTTP: gunicorn, RQ workers, the clock, and both emulators.

One stack per test module (start-up costs seconds); every test starts from empty emulators,
tables and queues. Process specs come from the main job's own supervisor, so the tests run
what `paybridge run` runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from app.auth import create_key
from app.config import Settings
from app.runtime import Runtime
from app.supervisor import (
    Addresses,
    Ports,
    Proc,
    emulator_procs,
    paybridge_procs,
    start,
    stop,
    wait_http,
)
from bench.stack import stop_procs
from tests.conftest import clean

FAST_ENV = {
    "PAYBRIDGE_ENV": "test", "LOG_FORMAT": "json", "RETRY_SCHEDULE": "0.3s,0.6s,1s",
    "RETRY_JITTER": "0", "LEASE_SECONDS": "15", "REDISPATCH_AFTER": "2",
    "DISPATCH_INTERVAL": "0.2", "SALESFORCE_LIMIT_PAUSE": "1", "GATEWAY_TIMEOUT": "2",
    "SALESFORCE_TIMEOUT": "3",
}


def session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


@dataclass
class Stack(Addresses):
    home: Path
    env: dict[str, str]
    ports: Ports
    rt: Runtime
    procs: list[Proc]
    admin_key: str = ""
    http: requests.Session = field(default_factory=session)

    def sf_call(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.http.request(method, self.sf + path, verify=self.env["SALESFORCE_CA_BUNDLE"],
                                 timeout=30, **kw)

    def gw_call(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.env['GATEWAY_ACCESS_TOKEN']}"}
        return self.http.request(method, self.gw + path, headers=headers, timeout=30, **kw)

    def api(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.admin_key}", **kw.pop("headers", {})}
        return self.http.request(method, self.web + path, headers=headers, timeout=30, **kw)

    def proc(self, name: str) -> Proc:
        return next(p for p in self.procs if p.name == name)

    def start_proc(self, proc: Proc) -> None:
        self.procs.append(proc)
        start(proc, self.env, self.home / "log")

    def halt(self, *names: str) -> None:
        """Stop these processes as the supervisor does (SIGTERM, then wait for them)."""
        procs = [self.proc(n) for n in names]
        stop(procs)
        for proc in procs:
            self.procs.remove(proc)

    def resume(self, *names: str) -> None:
        """Start these Paybridge processes again, as `paybridge run` starts them."""
        for proc in paybridge_procs(self.ports, 2):
            if proc.name in names:
                self.start_proc(proc)

    def logs(self) -> str:
        out = []
        for path in sorted((self.home / "log").glob("*.log")):
            out.append(f"===== {path.name}\n" + path.read_text(errors="replace")[-4000:])
        return "\n".join(out)


def wait_until(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "",
               stack: Stack | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = "\n" + stack.logs() if stack else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{extra}")
        time.sleep(0.2)


@contextmanager
def running_stack(home: Path, database_url: str, redis_url: str,
                  extra_env: dict[str, str] | None = None,
                  prepare: Callable[[Stack], None] | None = None) -> Iterator[Stack]:
    """Both emulators, then Paybridge (gunicorn, two workers, the clock) on ``extra_env``
    over the fast defaults. ``prepare`` runs once the emulators answer and before Paybridge
    starts: it may add to ``stack.env`` what only the emulators can tell (the org id)."""
    ports = Ports.free()
    env = {**os.environ, **FAST_ENV, "PAYBRIDGE_HOME": str(home), "DATABASE_URL": database_url,
           "REDIS_URL": redis_url, "PORT": str(ports.web),
           "SALESFORCE_LOGIN_URL": f"https://127.0.0.1:{ports.salesforce}",
           "SALESFORCE_CA_BUNDLE": str(home / "sim-salesforce" / "ca.pem"),
           "GATEWAY_URL": f"http://127.0.0.1:{ports.gateway}", **(extra_env or {})}
    settings = Settings.from_env(env)
    rt = Runtime(settings)
    clean(rt)
    with rt.db.transaction() as s:
        trigger_key = create_key(s, "salesforce-emulator", "trigger")[1]
    env["GATEWAY_ACCESS_TOKEN"] = settings.gateway_access_token
    st = Stack(home, env, ports, rt, [])
    try:
        for proc in emulator_procs(home, ports, trigger_key, settings):
            st.start_proc(proc)
        wait_http(f"{st.gw}/sim/stats", 60)
        wait_until(lambda: (home / "sim-salesforce" / "ca.pem").exists(), 30, "emulator CA")
        wait_http(f"{st.sf}/sim/health", 60, verify=env["SALESFORCE_CA_BUNDLE"])
        if prepare is not None:
            prepare(st)
        for proc in paybridge_procs(ports, 2):
            st.start_proc(proc)
        wait_http(f"{st.web}/healthz", 60)
    except BaseException:
        stop_procs(st.procs)
        print(st.logs())
        rt.db.dispose()
        raise
    try:
        yield st
    finally:
        # Whatever a test left running (restarted workers included) ends with the module;
        # stop_procs also ends children that outlived their parent (same process group).
        try:
            stop_procs(st.procs)
        finally:
            rt.db.dispose()
            if "redis" in rt.__dict__:
                rt.redis.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, database_url: str,
          redis_url: str) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack"), database_url, redis_url) as st:
        yield st


@pytest.fixture
def fresh(stack: Stack) -> Stack:
    """Empty emulators, tables and queues; a new admin key."""
    stack.sf_call("POST", "/sim/reset").raise_for_status()
    stack.sf_call("DELETE", "/sim/faults").raise_for_status()
    stack.http.post(f"{stack.gw}/sim/reset", timeout=10).raise_for_status()
    stack.http.delete(f"{stack.gw}/sim/faults", timeout=10).raise_for_status()
    with stack.rt.db.engine.begin() as conn:
        from app.models import metadata

        for table in reversed(metadata.sorted_tables):
            if table.name != "api_keys":
                conn.execute(table.delete())
    stack.rt.redis.delete("paybridge:crm:paused_until")
    with stack.rt.db.transaction() as s:
        stack.admin_key = create_key(s, "e2e-admin", "admin")[1]
    return stack
