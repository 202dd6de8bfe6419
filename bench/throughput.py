"""Partner calls and CPU per item at sustained load, with unlimited emulators.

API queue: Contacts created in the org in bulk (its trigger sends 200 changes a call) go to
the gateway and are written back. Webhooks: payments created from the CRM are moved to
paid_out at the gateway, which posts their events in signed batches. CPU is summed over
every Paybridge process (gunicorn master and workers, RQ workers, clock) and compared with
the physical floor of an item's work measured bare in the same run (bench.floor: one
gateway call with ``requests`` plus one single-row commit). Webhook delivery is held while
the API queue is measured, so each figure counts only its own work.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from app.supervisor import Proc
from bench import floor
from bench.procstats import CpuMeter
from bench.report import Figure
from bench.stack import Stack
from bench.workload import (
    create_contacts,
    create_payments,
    crm_mandate,
    drain_events,
    drain_queue,
    gateway_ids,
    gateway_requests,
    sf_usage,
)

SF_TARGET = 10.0  # Salesforce API calls per 1,000 records (the floor is 5: 200 per call)
FLOOR_TARGET = 1.5  # CPU per item, times the physical floor


@dataclass(frozen=True)
class LoadParams:
    records: int
    payments: int
    floor_items: int
    workers: int = 2


def _phase(stack: Stack, procs: list[Proc]) -> tuple[CpuMeter, dict[str, Any], dict[str, int]]:
    meter = CpuMeter(procs)
    meter.start()
    return meter, sf_usage(stack), gateway_requests(stack)


def _usage_delta(stack: Stack, sf0: dict[str, Any], gw0: dict[str, int]) -> dict[str, Any]:
    sf1, gw1 = sf_usage(stack), gateway_requests(stack)
    calls = {k: v - sf0["calls"].get(k, 0) for k, v in sf1["calls"].items()
             if v - sf0["calls"].get(k, 0)}
    gateway = {k: v - gw0.get(k, 0) for k, v in gw1.items() if v - gw0.get(k, 0)}
    return {"sf_calls": sf1["used"] - sf0["used"], "sf_calls_by_kind": calls,
            "sf_records_written": sf1["records_written"] - sf0["records_written"],
            # The clock's catch-up lists events on its own beat, whatever the load: it is
            # shown by route but is not a call made for a queued change.
            "gateway_calls": sum(v for k, v in gateway.items()
                                 if not k.startswith("GET /events")),
            "gateway_calls_by_route": gateway}


def _history_rows(stack: Stack) -> int:
    return stack.count("SELECT count(*) FROM status_history WHERE source = 'webhook' "
                       "AND event_id IS NOT NULL")


def api_queue(stack: Stack, params: LoadParams) -> dict[str, Any]:
    stack.reset()
    stack.gw_sim("POST", "/webhooks/faults", json={"pause": True})
    procs = [stack.start_web(), stack.start_clock(), *stack.start_workers(params.workers)]
    try:
        meter, sf0, gw0 = _phase(stack, procs)
        started = time.monotonic()
        create_contacts(stack, params.records, prefix="T")
        drain_queue(stack, timeout=600)
        elapsed = time.monotonic() - started
        cpu = meter.stop()
        usage = _usage_delta(stack, sf0, gw0)
    finally:
        stack.stop(procs)
        stack.gw_sim("POST", "/webhooks/faults", json={"pause": False})
    left = stack.count("SELECT count(*) FROM api_queue_items")  # failed or still waiting
    return {"records": params.records, "elapsed_s": elapsed, "cpu_s": cpu,
            "rows_left": left, **usage}


def webhooks(stack: Stack, params: LoadParams, mode: str) -> dict[str, Any]:
    """Payments created from the CRM, then moved to paid_out; events applied in ``mode``."""
    stack.reset()
    env = {"WEBHOOK_MODE": mode}
    procs = [stack.start_web(env), stack.start_clock(env),
             *stack.start_workers(params.workers, env)]
    try:
        _, mandate_crm_id = crm_mandate(stack)
        crm_ids = create_payments(stack, mandate_crm_id, params.payments)
        drain_queue(stack, timeout=600)
        drain_events(stack, timeout=600)  # the payments' "created" events
        payments = gateway_ids(stack, "Payment__c", crm_ids)
        applied_before = _history_rows(stack)
        meter, sf0, gw0 = _phase(stack, procs)
        started = time.monotonic()
        stack.gw_sim("POST", "/advance", json={"resource_type": "payments", "ids": payments,
                                                "to": "paid_out"})
        drain_events(stack, timeout=600)
        elapsed = time.monotonic() - started
        cpu = meter.stop()
        usage = _usage_delta(stack, sf0, gw0)
        applied = _history_rows(stack) - applied_before
    finally:
        stack.stop(procs)
    failed = stack.count("SELECT count(*) FROM webhook_events WHERE status = 'failed'")
    return {"mode": mode, "payments": len(payments), "events": applied, "elapsed_s": elapsed,
            "cpu_s": cpu, "failed_events": failed, **usage}


def _cpu_ms(result: dict[str, Any], unit: int, only: str = "") -> float:
    return sum(v for k, v in result["cpu_s"].items() if k.startswith(only)) * 1000 / max(1, unit)


def run(stack: Stack, params: LoadParams, modes: tuple[str, ...]) -> Iterator[Figure]:
    stack.reset()
    bare = floor.measure(stack, params.floor_items)
    ceiling = bare.cpu_ms
    target = f"<= {FLOOR_TARGET}x floor"
    yield Figure("ceiling.cpu_floor_ms", "floor: one gateway call (requests) + one "
                 "single-row commit, bare", ceiling, "ms CPU", ceiling_label="measured in this run",
                 detail={"http_cpu_ms": bare.http_cpu_ms, "commit_cpu_ms": bare.commit_cpu_ms,
                         "items": bare.items})
    api = api_queue(stack, params)
    n = api["records"]
    per_1000 = api["sf_calls"] * 1000 / n
    cpu = _cpu_ms(api, n)
    yield from [
        Figure("api.sf_calls_per_1000", "Salesforce calls per 1,000 records, API queue",
               per_1000, "calls", ceiling=5.0, ceiling_label="floor (200 records per call)",
               target="<= 10", passed=per_1000 <= SF_TARGET, detail=api),
        Figure("api.gateway_calls_per_change", "gateway calls per queued change (inserts)",
               api["gateway_calls"] / n, "calls", ceiling=1.0,
               ceiling_label="one call per change", target="<= 1",
               passed=api["gateway_calls"] <= n),
        Figure("api.cpu_ms_per_record", "CPU per record, API queue (all processes)",
               cpu, "ms", ceiling=ceiling, ceiling_label="floor", target=target,
               passed=cpu <= FLOOR_TARGET * ceiling, detail={"ratio": cpu / ceiling}),
        Figure("api.worker_cpu_ms_per_record", "  of which RQ workers",
               _cpu_ms(api, n, "worker"), "ms", ceiling=ceiling, ceiling_label="floor"),
        Figure("api.records_per_s", "API queue throughput, unlimited emulators",
               n / api["elapsed_s"], "records/s",
               ceiling_label=f"{params.workers} workers, 2 cores shared with emulators"),
    ]
    for mode in modes:
        hooks = webhooks(stack, params, mode)
        events = max(1, hooks["events"])
        per_1000 = hooks["sf_calls"] * 1000 / events
        cpu = _cpu_ms(hooks, events)
        yield from [
            Figure(f"webhooks.{mode}.sf_calls_per_1000",
                   f"Salesforce calls per 1,000 events, WEBHOOK_MODE={mode}", per_1000,
                   "calls", ceiling=5.0, ceiling_label="floor (200 records per call)",
                   target="<= 10", passed=per_1000 <= SF_TARGET, detail=hooks),
            Figure(f"webhooks.{mode}.cpu_ms_per_event",
                   f"CPU per event applied, WEBHOOK_MODE={mode}", cpu, "ms",
                   ceiling=ceiling, ceiling_label="floor", target=target,
                   passed=cpu <= FLOOR_TARGET * ceiling, detail={"ratio": cpu / ceiling}),
            Figure(f"webhooks.{mode}.events_per_s",
                   f"events applied per second, WEBHOOK_MODE={mode}",
                   hooks["events"] / hooks["elapsed_s"], "events/s"),
        ]
