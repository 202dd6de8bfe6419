"""Telemetry totals: what a finished batch adds to the shared counters and histogram."""

from __future__ import annotations

from datetime import timedelta

from app.clock import utcnow
from app.runtime import Runtime
from app.telemetry import LATENCY_BUCKETS


def test_a_batch_adds_each_item_to_its_object_and_every_bucket_at_or_above_its_age(
        rt: Runtime) -> None:
    rt.redis.flushdb()
    now = utcnow()
    ages = [0.01, 2.0, 2.0, 100.0]
    items = [("Customer", now - timedelta(seconds=a)) for a in ages[:3]]
    items.append(("Payment", now - timedelta(seconds=ages[3])))
    rt.telemetry.processed("api", items)
    counters = {(n, tuple(sorted(lb.items()))): v for n, lb, v in rt.telemetry.counters()}
    assert counters[("processed", (("object", "Customer"), ("queue", "api")))] == 3
    assert counters[("processed", (("object", "Payment"), ("queue", "api")))] == 1
    histogram = {lb.get("le"): v for n, lb, v in rt.telemetry.histograms() if n == "latency"}
    # Each bucket counts the items at most its bound old (a little slack for the clock).
    expected = {str(b): sum(1 for a in ages if a <= b) for b in LATENCY_BUCKETS}
    assert histogram == {**expected, "+Inf": 4}
    (total,) = [v for n, _, v in rt.telemetry.histograms() if n == "latency_sum"]
    assert sum(ages) <= total < sum(ages) + 1
    assert rt.telemetry.series("api", 1)[-1]["done"] == 4
