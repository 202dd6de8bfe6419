"""The benchmark suite, small: every figure is produced, and the counted ones hold.

Only counts are asserted (429s received, Salesforce calls per 1,000 records): they do not
depend on how fast or busy the machine is. Timings are printed by the bench, never checked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.main import QUICK, run_suite
from bench.report import table

pytestmark = pytest.mark.e2e


def test_quick_bench_produces_every_figure(database_url: str, redis_url: str,
                                           tmp_path: Path) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the bench runs on PostgreSQL, like production")
    figures, meta = run_suite(database_url, redis_url, quick=True, home=tmp_path,
                              fresh_database=False)
    print(table(figures))
    by_key = {f.key: f for f in figures}
    expected = {
        "idle.cpu_max_percent", "ceiling.cpu_floor_ms", "api.sf_calls_per_1000",
        "api.gateway_calls_per_change", "api.cpu_ms_per_record", "intake.events_per_s",
        "intake.ack_p99_ms", "backlog.dispatch_ms", "backlog.claim_ms",
        "backlog.idle_tick_ms", "memory.worker_rss_end",
        "latency.crm_to_writeback.p50", "latency.event_to_crm.p99",
        *(f"webhooks.{mode}.sf_calls_per_1000" for mode in QUICK.webhook_modes),
        *(f"webhooks.{mode}.cpu_ms_per_event" for mode in QUICK.webhook_modes),
        *(f"ratelimit.utilisation.{n}w" for n in QUICK.rate.workers),
        *(f"ratelimit.429_after_warmup.{n}w" for n in QUICK.rate.workers),
        *(f"reconcile.{n}.{figure}" for n in QUICK.reconcile.sizes
          for figure in ("sf_calls", "gateway_calls", "rss_peak", "drifts")),
    }
    assert expected <= set(by_key), sorted(expected - set(by_key))
    assert all(by_key[k].value is not None for k in expected), [
        k for k in expected if by_key[k].value is None]
    for workers in QUICK.rate.workers:
        refused = by_key[f"ratelimit.429_after_warmup.{workers}w"]
        assert refused.value == 0 and refused.ceiling == 0, "the limited gateway said 429"
    assert by_key["api.sf_calls_per_1000"].value <= 10, by_key["api.sf_calls_per_1000"].detail
    assert by_key["api.gateway_calls_per_change"].value == 1.0
    for n in QUICK.reconcile.sizes:  # counted at the emulators and in the database
        for figure in ("sf_calls", "gateway_calls", "drifts"):
            assert by_key[f"reconcile.{n}.{figure}"].passed, by_key[f"reconcile.{n}.{figure}"]
