"""GET /metrics in the Prometheus text format.

Queue depths are counted in the database at scrape time. Counters and latency histograms
come from Redis (app.telemetry), where every worker and the clock add to them: workers are
separate processes, often on other machines, so prometheus-client's in-process registry (or
its single-machine multiprocess mode) would miss most of them. Every web process therefore
exports the same cluster-wide totals; scrape one of them (or any, behind a load balancer).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import redis
import sqlalchemy as sa
from flask import Flask, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from app.console.dashboard import QUEUES, processes, salesforce_usage
from app.runtime import Runtime
from app.telemetry import LATENCY_BUCKETS
from reconcile.kinds import KINDS
from reconcile.service import last_result

COUNTERS = {
    "processed": ("paybridge_items_processed", "Items finished (API Queue: written back; "
                  "webhook: applied)", ["queue", "object"]),
    "failed": ("paybridge_items_failed", "Items that became Failed", ["queue", "object"]),
    "partner_calls": ("paybridge_partner_calls", "Calls to the gateway and Salesforce",
                      ["partner", "outcome"]),
    "capture_polls": ("paybridge_capture_polls", "Polls of an object for changes "
                      "(CHANGE_CAPTURE=poll)", ["object"]),
    "capture_calls": ("paybridge_capture_calls", "Salesforce calls those polls spent",
                      ["object"]),
}


class PaybridgeCollector:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        yield self._depths()
        try:
            yield from self._counters()
            yield self._latency()
        except redis.RedisError:
            pass  # counters are unavailable while Redis is; depths still report
        yield from self._health()
        yield from self._reconcile()

    def _depths(self) -> Metric:
        family = GaugeMetricFamily("paybridge_queue_items", "Items in each queue by status",
                                   labels=["queue", "status"])
        with self.rt.db.transaction() as session:
            for name, spec in QUEUES.items():
                model = spec["model"]
                for status, count in session.execute(
                        sa.select(model.status, sa.func.count()).group_by(model.status)):
                    family.add_metric([name, status], count)
        return family

    def _counters(self) -> Iterator[Metric]:
        families = {key: CounterMetricFamily(name, doc, labels=labels)
                    for key, (name, doc, labels) in COUNTERS.items()}
        for name, labels, value in self.rt.telemetry.counters():
            if name in families:
                spec = COUNTERS[name][2]
                families[name].add_metric([labels.get(k, "") for k in spec], value)
        yield from families.values()

    def _latency(self) -> Metric:
        family = HistogramMetricFamily(
            "paybridge_processing_latency_seconds",
            "Seconds from an item's arrival to its end", labels=["queue"])
        buckets: dict[str, dict[str, float]] = {}
        sums: dict[str, float] = {}
        for name, labels, value in self.rt.telemetry.histograms():
            queue = labels.get("queue", "")
            if name == "latency":
                buckets.setdefault(queue, {})[labels["le"]] = value
            elif name == "latency_sum":
                sums[queue] = value
        for queue, counts in sorted(buckets.items()):
            bounds = [(str(b), counts.get(str(b), 0.0)) for b in LATENCY_BUCKETS]
            bounds.append(("+Inf", counts.get("+Inf", 0.0)))
            family.add_metric([queue], bounds, sums.get(queue, 0.0))
        return family

    def _reconcile(self) -> Iterator[Metric]:
        """The last finished reconcile: differences left by kind after its repairs."""
        last = last_result(self.rt.db)
        family = GaugeMetricFamily("paybridge_reconcile_differences",
                                   "Differences the last reconcile left (after repair), "
                                   "by kind", labels=["kind"])
        remaining = (last or {}).get("summary", {}).get("remaining", {})
        for kind in KINDS:
            family.add_metric([kind], remaining.get(kind, 0))
        yield family
        if last and last.get("finished_at"):
            yield GaugeMetricFamily("paybridge_reconcile_last_run_timestamp_seconds",
                                    "When the last reconcile finished (Unix time)",
                                    value=datetime.fromisoformat(last["finished_at"]).timestamp())

    def _health(self) -> Iterator[Metric]:
        state = processes(self.rt)
        yield GaugeMetricFamily("paybridge_workers", "RQ workers registered",
                                value=len(state["workers"]))
        yield GaugeMetricFamily("paybridge_clock_alive", "1 while the clock beats",
                                value=1 if state["clock"]["alive"] else 0)
        usage = salesforce_usage(self.rt)
        if usage:
            yield GaugeMetricFamily("paybridge_salesforce_api_used",
                                    "Salesforce API calls used (rolling 24 h)",
                                    value=usage["used"])
            yield GaugeMetricFamily("paybridge_salesforce_api_allocation",
                                    "Salesforce daily API allocation",
                                    value=usage["allocation"])


def init_metrics(app: Flask) -> None:
    @app.get("/metrics")
    def metrics() -> Any:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(PaybridgeCollector(current_app.extensions["paybridge"]))
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
