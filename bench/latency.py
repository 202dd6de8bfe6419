"""End-to-end latency at light load, one change at a time, on the emulators' own clocks.

CRM change -> write-back: a Contact created in the org; latency is its LastModifiedDate
(set by Paybridge's write-back) minus its CreatedDate. Gateway event -> CRM update: a
payment moved one stage at the gateway; latency is the Payment__c's LastModifiedDate minus
the event's created_at. Both include the partners' own delays (the org's trigger call, the
gateway's batching of events), as a user would see them.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import datetime

from bench.report import Figure
from bench.stack import Stack, wait_until
from bench.workload import create_payments, crm_mandate, drain_events, drain_queue, gateway_ids

STAGES = ("submitted", "confirmed", "paid_out")


@dataclass(frozen=True)
class LatencyParams:
    samples: int


def _sf_time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def crm_to_writeback(stack: Stack, samples: int) -> list[float]:
    out = []
    for n in range(samples):
        record = stack.sf_call("POST", "/sim/records/Contact", json={
            "FirstName": "Light", "LastName": f"Load{n}", "Email": f"light{n}@example.com"})
        record_id = record["id"]

        def written(record_id: str = record_id) -> dict | None:
            r = stack.sf_call("GET", f"/sim/records/Contact/{record_id}")
            return r if r.get("Gateway_Id__c") else None

        done = wait_until(written, 30, "a write-back", 0.005)
        out.append((_sf_time(done["LastModifiedDate"]) - _sf_time(done["CreatedDate"])) * 1000)
        time.sleep(0.05)
    return out


def event_to_crm(stack: Stack, samples: int) -> list[float]:
    _, mandate = crm_mandate(stack)
    crm_ids = create_payments(stack, mandate, max(1, samples // len(STAGES) + 1))
    drain_queue(stack, 60)
    drain_events(stack, 60)
    by_gateway = dict(zip(gateway_ids(stack, "Payment__c", crm_ids), crm_ids, strict=True))
    out: list[float] = []
    for stage in STAGES:
        for gateway_id, crm_id in by_gateway.items():
            if len(out) >= samples:
                return out
            before = stack.gw_call("GET", f"/events?payment={gateway_id}&limit=1")["events"]
            stack.gw_sim("POST", "/advance", json={"resource_type": "payments",
                                                    "ids": [gateway_id], "to": stage})
            event = wait_until(lambda g=gateway_id, b=before: _newer_event(stack, g, b), 10,
                               "the gateway event")
            label = stage.replace("_", " ").title()

            def updated(c: str = crm_id, want: str = label) -> dict | None:
                r = stack.sf_call("GET", f"/sim/records/Payment__c/{c}")
                return r if r.get("Status__c") == want else None

            done = wait_until(updated, 30, "the CRM update", 0.005)
            event_at = datetime.fromisoformat(event["created_at"].replace("Z", "+00:00"))
            out.append((_sf_time(done["LastModifiedDate"]) - event_at.timestamp()) * 1000)
            time.sleep(0.05)
    return out


def _newer_event(stack: Stack, gateway_id: str, before: list[dict]) -> dict | None:
    events = stack.gw_call("GET", f"/events?payment={gateway_id}&limit=1")["events"]
    if events and (not before or events[0]["id"] != before[0]["id"]):
        return dict(events[0])
    return None


def run(stack: Stack, params: LatencyParams) -> list[Figure]:
    stack.reset()
    procs = [stack.start_web(), stack.start_clock(), *stack.start_workers(2)]
    try:
        crm = crm_to_writeback(stack, params.samples)
        gateway = event_to_crm(stack, params.samples)
    finally:
        stack.stop(procs)
    figures = []
    for key, label, values in (("crm_to_writeback", "CRM change -> write-back", crm),
                               ("event_to_crm", "gateway event -> CRM update", gateway)):
        p50, p99 = statistics.median(values), _p(values, 99)
        detail = {"samples": len(values), "min_ms": min(values), "max_ms": max(values)}
        figures += [
            Figure(f"latency.{key}.p50", f"{label}, p50", p50, "ms", ceiling=min(values),
                   ceiling_label="fastest sample", target="<= 100 ms", passed=p50 <= 100,
                   detail=detail),
            Figure(f"latency.{key}.p99", f"{label}, p99", p99, "ms", ceiling=min(values),
                   ceiling_label="fastest sample", target="<= 1000 ms", passed=p99 <= 1000),
        ]
    return figures
