"""Webhook intake: signed batches stored durably, against a verify-only endpoint.

Both run under the same gunicorn settings as Paybridge's web process. Bodies are built and
signed before the clock starts (signing is the gateway's work). No RQ worker runs, so the
web processes have the machine to themselves; every stored event is counted afterwards.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.supervisor import Proc, paybridge_procs
from bench.loadgen import LoadResult, post_all
from bench.procstats import CpuMeter
from bench.report import Figure
from bench.stack import Stack, free_port, wait_http
from webhooks.signature import sign

PATH = "/webhooks/gocardless"


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


def _verify_only(stack: Stack) -> Proc:
    port = free_port()
    web = next(p for p in paybridge_procs(stack.ports, 0) if p.name == "web")
    argv = [("bench.verify_app:app" if a == "app.wsgi:app" else a) for a in web.argv]
    argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"
    proc = Proc("verify-only", argv, {"BENCH_PORT": str(port)})
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


def run(stack: Stack, params: IntakeParams) -> list[Figure]:
    stack.reset()
    secret = stack.settings.webhook_secret
    size, c = params.events_per_batch, params.concurrency
    ceiling_proc = _verify_only(stack)
    try:
        port = int(ceiling_proc.env["BENCH_PORT"])
        ceiling = _summary(_load(port, bodies(params.batches + 4, size, secret), c), size)
    finally:
        stack.stop([ceiling_proc])
    web = stack.start_web()
    try:
        meter = CpuMeter([web])
        meter.start()
        stored = _summary(_load(stack.ports.web, bodies(params.batches + 4, size, secret), c),
                          size)
        stored["web_cpu_ms_per_event"] = sum(meter.stop().values()) * 1000 / (
            params.batches * size)
        big = bodies(params.big_batches + 4, params.big_events, secret)
        big16 = _summary(_load(stack.ports.web, big, c), params.big_events)
        big = bodies(params.big_batches + 4, params.big_events, secret)
        big1 = _summary(_load(stack.ports.web, big, 1), params.big_events)
    finally:
        stack.stop([web])
    # One job per delivery instead of one per event: what enqueueing costs at intake.
    web = stack.start_web({"WEBHOOK_MODE": "batch"})
    try:
        batch_mode = _summary(_load(stack.ports.web, bodies(params.batches + 4, size, secret),
                                    c), size)
    finally:
        stack.stop([web])
    sent = (2 * (params.batches + 4) * size + 2 * (params.big_batches + 4) * params.big_events)
    in_db = stack.count("SELECT count(*) FROM webhook_events")
    stored["events_in_database"], stored["events_sent"] = in_db, sent
    share = stored["events_per_s"] / ceiling["events_per_s"]
    all_204 = all(set(s["statuses"]) == {204} for s in (stored, big16, big1, batch_mode))
    return [
        Figure("intake.events_per_s",
               f"webhook intake, {size}-event batches, concurrency {c}, WEBHOOK_MODE=event",
               stored["events_per_s"], "events/s", ceiling=ceiling["events_per_s"],
               ceiling_label="events/s verify-only", target=">= 30 % of verify-only",
               passed=share >= 0.3 and in_db == sent and all_204,
               detail={"stored": stored, "verify_only": ceiling, "share": share}),
        Figure("intake.batch_mode.events_per_s",
               "webhook intake, WEBHOOK_MODE=batch (one job per delivery)",
               batch_mode["events_per_s"], "events/s", ceiling=ceiling["events_per_s"],
               ceiling_label="events/s verify-only", detail=batch_mode),
        Figure("intake.ack_p50_ms", f"ACK p50, {size}-event batches, concurrency {c}",
               stored["p50_ms"], "ms", ceiling=ceiling["p50_ms"], ceiling_label="verify-only"),
        Figure("intake.ack_p99_ms", f"ACK p99, {size}-event batches, concurrency {c}",
               stored["p99_ms"], "ms", ceiling=ceiling["p99_ms"], ceiling_label="verify-only"),
        Figure("intake.big_ack_p99_ms.c1",
               f"ACK p99, {params.big_events}-event batches, one delivery at a time",
               big1["p99_ms"], "ms", ceiling=big1["p50_ms"], ceiling_label="p50",
               target="<= 250 ms", passed=big1["p99_ms"] <= 250, detail=big1),
        Figure(f"intake.big_ack_p99_ms.c{c}",
               f"ACK p99, {params.big_events}-event batches, concurrency {c}",
               big16["p99_ms"], "ms", ceiling=big16["p50_ms"], ceiling_label="p50",
               target="<= 250 ms", passed=big16["p99_ms"] <= 250, detail=big16),
    ]
