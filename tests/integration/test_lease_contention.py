"""Several processes contend for the same API Queue rows at once; the gateway emulator's own
request log is the judge.

Workers pick the same rows at random while a storm process dispatches every row over and
over (the clock, wake-ups and admin reprocess all dispatch): no row may be held by two jobs
at once, so no create and no update may reach the gateway twice. A worker frozen mid-call
(SIGSTOP) loses its lease to another; when it wakes, its late result must be dropped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import requests

from app.config import ROOT
from app.runtime import Runtime
from queues import service
from queues.models import ArchivedItem

POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgresql")
RECORDS = 600 if POSTGRES else 200
UPDATED = RECORDS // 3


@pytest.fixture
def world(emulators: tuple[Runtime, str, str]) -> tuple[Runtime, str, str]:
    return emulators


def _env(rt: Runtime, **extra: str) -> dict[str, str]:
    s = rt.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update({
        "PAYBRIDGE_ENV": "test", "DATABASE_URL": s.effective_database_url,
        "REDIS_URL": rt.redis_url, "GATEWAY_URL": s.gateway_url,
        "SALESFORCE_LOGIN_URL": s.salesforce_login_url,
        "SALESFORCE_CA_BUNDLE": s.salesforce_ca_bundle, "GATEWAY_RATE_LIMIT": "0",
        "GATEWAY_TIMEOUT": "2", "SALESFORCE_TIMEOUT": "3", "LEASE_SECONDS": "14",
        "RETRY_SCHEDULE": "0.05s,0.1s,0.2s,0.4s", "RETRY_JITTER": "0", "JOB_BATCH_SIZE": "40",
        "LOG_LEVEL": "WARNING", "PAYBRIDGE_HOME": str(s.home), **extra})
    return env


def _spawn(rt: Runtime, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.integration.contenders", *args],
                            cwd=ROOT, env=_env(rt, **env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _report(proc: subprocess.Popen[str], timeout: float) -> dict[str, int]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _contacts(sf_url: str, ca: str, n: int) -> list[str]:
    ids: list[str] = []
    for start in range(0, n, 200):
        body = {"records": [{"FirstName": "Lease", "LastName": f"L{i}"}
                            for i in range(start, min(n, start + 200))]}
        resp = requests.post(f"{sf_url}/sim/records/Contact/bulk", json=body, verify=ca,
                             timeout=30)
        ids += resp.json()["ids"]
    return ids


def _log(gw_url: str, path: str) -> dict[str, list[dict]]:
    return requests.get(f"{gw_url}/sim/requests", params={"path": path}, timeout=30).json()


def _archived(rt: Runtime) -> list[ArchivedItem]:
    with rt.db.transaction() as session:
        return list(session.query(ArchivedItem))


def test_no_row_reaches_the_gateway_twice_under_contention(world) -> None:
    rt, gw_url, sf_url = world
    requests.post(f"{gw_url}/sim/faults", json={"latency_ms": 15}, timeout=10)
    crm_ids = _contacts(sf_url, rt.settings.salesforce_ca_bundle, RECORDS)
    service.accept_changes(rt.db, [
        {"object": "Customer", "record_id": c, "operation": "insert",
         "fields": {"FirstName": "Lease", "LastName": f"L{n}", "Email": f"l{n}@example.com"}}
        for n, c in enumerate(crm_ids)])
    # The updates queue behind their inserts (strict per-record order).
    service.accept_changes(rt.db, [
        {"object": "Customer", "record_id": c, "operation": "update",
         "fields": {"FirstName": "Lease", "LastName": f"L{n}", "Email": f"new{n}@example.com"},
         "previous_fields": {"Email": f"l{n}@example.com"}}
        for n, c in enumerate(crm_ids[:UPDATED])])

    procs = [_spawn(rt, "worker", "240") for _ in range(3)] + [_spawn(rt, "storm", "240")]
    reports = [_report(p, 300) for p in procs]

    left = service.list_items(rt.db, status="failed", limit=2)
    assert service.counts_by_status(rt.db) == {}, [(i.status, i.last_error) for i in left]
    archived = _archived(rt)
    assert len(archived) == RECORDS + UPDATED
    assert len({a.id for a in archived}) == len(archived)
    assert reports[-1]["refused_held"] > 0, "the storm really offered rows a job held"
    creates = _log(gw_url, "/customers")
    assert creates["in_flight"] == []
    posts = Counter(r["idempotency_key"] for r in creates["requests"] if r["method"] == "POST")
    assert len(posts) == RECORDS and set(posts.values()) == {1}, posts.most_common(3)
    puts = Counter(r["path"] for r in creates["requests"] if r["method"] == "PUT")
    assert len(puts) == UPDATED and set(puts.values()) == {1}, puts.most_common(3)
    stats = requests.get(f"{gw_url}/sim/stats", timeout=10).json()
    assert set(stats["resources_per_crm_id"].values()) == {1}


def test_a_worker_frozen_mid_call_loses_its_lease_and_its_late_result(world) -> None:
    rt, gw_url, sf_url = world
    (crm_id,) = _contacts(sf_url, rt.settings.salesforce_ca_bundle, 1)
    (item,) = service.accept_changes(rt.db, [
        {"object": "Customer", "record_id": crm_id, "operation": "insert",
         "fields": {"FirstName": "Lease", "LastName": "Frozen", "Email": "frozen@example.com"}}])
    # Every call takes 1.5 s: long enough to freeze the first worker inside one.
    requests.post(f"{gw_url}/sim/faults", json={"latency_ms": 1500}, timeout=10)
    lease = 10.0  # just over the worst call of GATEWAY_TIMEOUT=2 (Settings.validate)
    first = _spawn(rt, "one", str(item.id), LEASE_SECONDS=str(lease), SALESFORCE_TIMEOUT="2")
    deadline = time.monotonic() + 30
    while not _log(gw_url, "/customers")["in_flight"]:
        assert first.poll() is None, first.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "the first worker never called the gateway"
        time.sleep(0.02)
    os.kill(first.pid, signal.SIGSTOP)  # frozen mid-call: its heartbeat stops with it
    try:
        time.sleep(lease + 0.5)  # its lease expires
        requests.delete(f"{gw_url}/sim/faults", timeout=10)
        second = _report(_spawn(rt, "one", str(item.id), LEASE_SECONDS=str(lease),
                                SALESFORCE_TIMEOUT="2"), 60)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    late = _report(first, 60)

    assert second["claimed"] == 1 and second["written_back"] == 1
    assert late["claimed"] == 1 and late["fenced"] >= 1, late
    (done,) = _archived(rt)
    assert done.id == item.id and done.gateway_id
    stats = requests.get(f"{gw_url}/sim/stats", timeout=10).json()
    assert stats["resources_per_crm_id"] == {crm_id: 1}
    outcomes = [e["outcome"] for e in done.error_log]
    assert outcomes.count("ok") == 1, done.error_log  # only the new holder's result
