"""Webhook intake: signed batches stored durably, against a bare storage ceiling.

The ceiling (bench.store_app) checks the same signed batches and stores them with one
multi-row insert per batch on the same database; a verify-only endpoint (bench.verify_app)
shows what the HTTP stack alone costs. All run under the same gunicorn settings as
Paybridge's web process. Bodies are built and signed before the clock starts (signing is
the gateway's work). No RQ worker runs, so the web processes have the machine to
themselves; every stored event is counted afterwards.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from app.config import Settings
from app.supervisor import Proc, free_port, paybridge_procs
from bench import store_app
from bench.loadgen import LoadResult, post_all
from bench.procstats import CpuMeter
from bench.report import Figure
from bench.stack import Stack, wait_http
from webhooks.signature import sign

PATH = "/webhooks/gocardless"
SHARE = 0.6  # of the storage ceiling
# The target holds for the mode Paybridge runs in when WEBHOOK_MODE is not set; the other
# mode that enqueues at intake is measured beside it.
_DEFAULTS = Settings.from_env(environ={})
DEFAULT_MODE = _DEFAULTS.webhook_mode
OTHER_MODE = "event" if DEFAULT_MODE == "batch" else "batch"
_JOBS = {"batch": f"jobs of up to {_DEFAULTS.batch_size} events", "event": "one job per event"}


@dataclass(frozen=True)
class IntakeParams:
    batches: int
    big_batches: int
    concurrency: int = 16
    events_per_batch: int = 100
    big_events: int = 500


def bodies(count: int, size: int, secret: str) -> list[tuple[bytes, dict[str, str]]]:
    """``count`` signed batches of ``size`` payment events, every event id new."""
    run = uuid.uuid4().hex[:10].upper()
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    out = []
    for b in range(count):
        events = [{"id": f"EV{run}{b:05d}{e:04d}", "created_at": now,
                   "resource_type": "payments", "action": "confirmed",
                   "links": {"payment": f"PM{run}{b:05d}{e:04d}"},
                   "details": {"origin": "gocardless", "cause": "payment_confirmed",
                               "description": "Enough time has passed since the payment was "
                                              "submitted for the bank to return an error."},
                   "metadata": {}} for e in range(size)]
        body = json.dumps({"events": events, "meta": {"webhook_id": f"WB{run}{b:05d}"}},
                          separators=(",", ":")).encode()
        out.append((body, {"Content-Type": "application/json",
                           "Webhook-Signature": sign(body, secret)}))
    return out


def _bare_app(stack: Stack, name: str, wsgi: str) -> Proc:
    """A bench WSGI app under exactly the web process's gunicorn command line."""
    port = free_port()
    web = next(p for p in paybridge_procs(stack.ports, 0) if p.name == "web")
    argv = [(wsgi if a == "app.wsgi:app" else a) for a in web.argv]
    argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"
    proc = Proc(name, argv, {"BENCH_PORT": str(port)})
    stack._start([proc])
    wait_http(f"http://127.0.0.1:{port}/")
    return proc


def _load(port: int, batches: list[tuple[bytes, dict[str, str]]],
          concurrency: int) -> LoadResult:
    post_all(port, PATH, batches[:4], 4)  # connections, imports and caches warmed up
    return post_all(port, PATH, batches[4:], concurrency)


def _summary(result: LoadResult, per_batch: int) -> dict[str, Any]:
    return {"batches": result.requests, "elapsed_s": result.elapsed_s,
            "events_per_s": result.requests * per_batch / result.elapsed_s,
            "p50_ms": result.p50, "p99_ms": result.percentile(99),
            "statuses": result.statuses}


def _ceiling(stack: Stack, name: str, wsgi: str, batches: list[tuple[bytes, dict[str, str]]],
             concurrency: int, per_batch: int) -> dict[str, Any]:
    proc = _bare_app(stack, name, wsgi)
    try:
        return _summary(_load(int(proc.env["BENCH_PORT"]), batches, concurrency), per_batch)
    finally:
        stack.stop([proc])


def _analyse(stack: Stack) -> None:
    """Fresh statistics for what intake grows (autovacuum may be off, as on this machine)."""
    if stack.rt.db.dialect == "postgresql":
        with stack.rt.db.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE webhook_events, status_history"))


def run(stack: Stack, params: IntakeParams) -> Iterator[Figure]:
    stack.reset()
    secret = stack.settings.webhook_secret
    size, c, big_size = params.events_per_batch, params.concurrency, params.big_events
    verify_only = _ceiling(stack, "verify-only", "bench.verify_app:app",
                           bodies(params.batches + 4, size, secret), c, size)
    yield Figure("intake.verify_only.events_per_s",
                 f"verify-only endpoint (no storage), {size}-event batches, concurrency {c}",
                 verify_only["events_per_s"], "events/s", detail=verify_only)
    engine = stack.rt.db.engine
    store_app.create_table(engine)
    try:
        ceiling = _ceiling(stack, "store-only", "bench.store_app:app",
                           bodies(params.batches + 4, size, secret), c, size)
        big_ceiling = _ceiling(stack, "store-only", "bench.store_app:app",
                               bodies(params.big_batches + 4, big_size, secret), 1, big_size)
    finally:
        store_app.drop_table(engine)
    yield Figure("intake.store_only.events_per_s",
                 f"storage ceiling: bare endpoint, one multi-row insert per batch, "
                 f"concurrency {c}", ceiling["events_per_s"], "events/s",
                 ceiling=verify_only["events_per_s"], ceiling_label="verify-only",
                 detail=ceiling)
    sent = 0
    web = stack.start_web({"WEBHOOK_MODE": DEFAULT_MODE})
    try:
        meter = CpuMeter([web])
        meter.start()
        stored = _summary(_load(stack.ports.web, bodies(params.batches + 4, size, secret), c),
                          size)
        stored["web_cpu_ms_per_event"] = sum(meter.stop().values()) * 1000 / (
            params.batches * size)
        sent += (params.batches + 4) * size
        in_db = stack.count("SELECT count(*) FROM webhook_events")
        share = stored["events_per_s"] / ceiling["events_per_s"]
        yield Figure(
            "intake.events_per_s",
            f"webhook intake, {size}-event batches, concurrency {c}, "
            f"WEBHOOK_MODE={DEFAULT_MODE} (the default: {_JOBS[DEFAULT_MODE]})",
            stored["events_per_s"], "events/s", ceiling=ceiling["events_per_s"],
            ceiling_label="storage ceiling", target=f">= {SHARE:.0%} of ceiling",
            passed=share >= SHARE and in_db == sent and set(stored["statuses"]) == {204},
            detail={"stored": stored, "ceiling": ceiling, "share": share,
                    "events_in_database": in_db, "events_sent": sent})
        yield Figure("intake.ack_p50_ms", f"ACK p50, {size}-event batches, concurrency {c}",
                     stored["p50_ms"], "ms", ceiling=ceiling["p50_ms"],
                     ceiling_label="storage ceiling")
        yield Figure("intake.ack_p99_ms", f"ACK p99, {size}-event batches, concurrency {c}",
                     stored["p99_ms"], "ms", ceiling=ceiling["p99_ms"],
                     ceiling_label="storage ceiling")
        _analyse(stack)
        big = bodies(params.big_batches + 4, big_size, secret)
        big1 = _summary(_load(stack.ports.web, big, 1), big_size)
        sent += (params.big_batches + 4) * big_size
        yield Figure("intake.big_ack_p99_ms.c1",
                     f"ACK p99, {big_size}-event batches, one delivery at a time",
                     big1["p99_ms"], "ms", ceiling=big_ceiling["p99_ms"],
                     ceiling_label="storage ceiling", target="<= 250 ms",
                     passed=big1["p99_ms"] <= 250 and set(big1["statuses"]) == {204},
                     detail={"stored": big1, "ceiling": big_ceiling})
        big = bodies(params.big_batches + 4, big_size, secret)
        big16 = _summary(_load(stack.ports.web, big, c), big_size)
        sent += (params.big_batches + 4) * big_size
        yield Figure(f"intake.big_ack_p99_ms.c{c}",
                     f"ACK p99, {big_size}-event batches, concurrency {c}",
                     big16["p99_ms"], "ms", ceiling=big16["p50_ms"], ceiling_label="p50",
                     target="<= 250 ms",
                     passed=big16["p99_ms"] <= 250 and set(big16["statuses"]) == {204},
                     detail=big16)
    finally:
        stack.stop([web])
    _analyse(stack)
    # The other mode, for what its enqueueing costs at intake: no throughput target of its
    # own, but every event must still be stored.
    web = stack.start_web({"WEBHOOK_MODE": OTHER_MODE})
    try:
        other = _summary(_load(stack.ports.web, bodies(params.batches + 4, size, secret), c),
                         size)
        sent += (params.batches + 4) * size
    finally:
        stack.stop([web])
    in_db = stack.count("SELECT count(*) FROM webhook_events")
    yield Figure(f"intake.{OTHER_MODE}_mode.events_per_s",
                 f"webhook intake, WEBHOOK_MODE={OTHER_MODE} ({_JOBS[OTHER_MODE]}; not the "
                 f"default)", other["events_per_s"], "events/s",
                 ceiling=ceiling["events_per_s"], ceiling_label="storage ceiling",
                 target="every event stored",
                 passed=in_db == sent and set(other["statuses"]) == {204},
                 detail={**other, "share": other["events_per_s"] / ceiling["events_per_s"],
                         "events_in_database": in_db, "events_sent": sent})
