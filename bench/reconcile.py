"""Reconciliation at size: N linked records per object in both emulators, a few known
drifts, ``paybridge reconcile`` run as a real process; its partner calls are counted at the
emulators, its peak RSS read from the kernel's high-water mark while it runs.

Seeding uses the emulators' admin endpoints (test equipment, not partner API) and is not
measured: Salesforce's ``/sim/records/{Type}/bulk`` (create with the lookups, then update
with the fields a write-back leaves and the gateway id), the gateway's ``/sim/seed`` (each
item through the API's own create, ``metadata.crm_id`` naming its record), Paybridge's
record links inserted in bulk and ANALYZEd (autovacuum is off on these machines). The
trigger and webhook delivery are off, as nothing here should reach Paybridge but the
reconcile itself.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from app.mapping import GATEWAY_ID_FIELD, OBJECTS
from app.records.models import RecordLink
from app.supervisor import PY
from bench.report import Figure
from bench.stack import ROOT, Stack
from webhooks.crm_records import crm_fields_for

CHUNK = 5000  # records per emulator admin call
SEEDED = ("Customer", "BankAccount", "Mandate", "Payment")
SF_CALLS_PER_OBJECT = 20
RSS_GROWTH = 0.10
MB = 1024 * 1024
# What ``drift`` introduces: kind -> how many.
EXPECTED = {"status": 3, "field": 4, "missing_in_crm": 2, "missing_at_gateway": 1,
            "link_missing": 1}


@dataclass(frozen=True)
class ReconcileParams:
    sizes: tuple[int, ...]  # linked records per object, smallest first
    bulk_threshold: int | None = None  # SALESFORCE_BULK_THRESHOLD for the run (None: default)


def chunks(rows: Sequence[Any]) -> list[Sequence[Any]]:
    return [rows[i:i + CHUNK] for i in range(0, len(rows), CHUNK)]


class Seeder:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.labels = dict(stack.settings.status_labels)

    def crm_create(self, sobject: str, records: Sequence[dict[str, Any]]) -> list[str]:
        ids: list[str] = []
        for chunk in chunks(records):
            answer = self.stack.sf_call("POST", f"/sim/records/{sobject}/bulk",
                                        json={"records": list(chunk)})
            if len(answer["ids"]) != len(chunk):
                raise RuntimeError(f"{sobject} seeding refused: {answer['results'][:3]}")
            ids += answer["ids"]
        return ids

    def crm_update(self, sobject: str, records: Sequence[dict[str, Any]]) -> None:
        for chunk in chunks(records):
            answer = self.stack.sf_call("PATCH", f"/sim/records/{sobject}/bulk",
                                        json={"records": list(chunk)})
            refused = [r for r in answer["results"] if not r["success"]]
            if refused:
                raise RuntimeError(f"{sobject} update refused: {refused[:3]}")

    def gateway_seed(self, resource: str, items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        made: list[dict[str, Any]] = []
        for chunk in chunks(items):
            made += self.stack.gw_sim("POST", "/seed", json={"resource_type": resource,
                                                            "items": list(chunk)})[resource]
        return made

    def linked(self, obj: str, crm_records: list[dict[str, Any]],
               gateway_bodies: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
        """Records linked both ways, as Paybridge's insert and write-back leave them."""
        om = OBJECTS[obj]
        crm_ids = self.crm_create(om.sobject, crm_records)
        resources = self.gateway_seed(om.resource, [
            {**body, "metadata": {"crm_id": crm_id}}
            for body, crm_id in zip(gateway_bodies, crm_ids, strict=True)])
        self.crm_update(om.sobject, [
            {"Id": crm_id, **crm_fields_for(om, r, self.labels), GATEWAY_ID_FIELD: r["id"]}
            for crm_id, r in zip(crm_ids, resources, strict=True)])
        table = RecordLink.__table__
        with self.stack.rt.db.engine.begin() as conn:
            for chunk in chunks(list(zip(crm_ids, resources, strict=True))):
                conn.execute(sa.insert(table), [
                    {"object": obj, "crm_id": crm_id, "gateway_id": r["id"],
                     "status": r.get("status"), "lease_token": 0} for crm_id, r in chunk])
        return crm_ids, resources

    def chains(self, n: int) -> dict[str, tuple[list[str], list[dict[str, Any]]]]:
        """``n`` customers, each with a bank account, a mandate and a payment."""
        customers = self.linked("Customer", [{"LastName": "Recon"}] * n, [
            {"given_name": "Ada", "family_name": f"Recon{i}", "email": f"r{i}@example.com"}
            for i in range(n)])
        accounts = self.linked("BankAccount", [{"Contact__c": c} for c in customers[0]], [
            {"account_holder_name": "Ada Recon", "account_number": "55779911",
             "branch_code": "200000", "country_code": "GB", "currency": "GBP",
             "links": {"customer": r["id"]}} for r in customers[1]])
        mandates = self.linked("Mandate", [{"Bank_Account__c": c} for c in accounts[0]], [
            {"scheme": "bacs", "links": {"customer_bank_account": r["id"]}}
            for r in accounts[1]])
        payments = self.linked("Payment", [{"Mandate__c": c} for c in mandates[0]], [
            {"amount": 1500 + i % 500, "currency": "GBP", "description": f"Gift {i}",
             "links": {"mandate": r["id"]}} for i, r in enumerate(mandates[1])])
        return {"Customer": customers, "BankAccount": accounts, "Mandate": mandates,
                "Payment": payments}

    def drift(self, chains: dict[str, tuple[list[str], list[dict[str, Any]]]]) -> None:
        """Exactly ``EXPECTED``, spread over the seeded records."""
        payment_crm, payments = chains["Payment"]
        customer_crm, customers = chains["Customer"]
        step = max(1, len(payments) // 7)
        # The gateway moved three payments on while its webhooks were off.
        self.stack.gw_sim("POST", "/advance", json={
            "resource_type": "payments", "ids": [payments[i * step]["id"] for i in (1, 2, 3)],
            "to": "submitted"})
        # Two gateway-owned fields typed over by hand in the CRM (trigger off).
        self.crm_update("Payment__c", [{"Id": payment_crm[i * step], "Reference__c": "BYHAND"}
                                       for i in (4, 5)])
        # Two customers renamed in the gateway's dashboard (a CRM-owned field).
        for i in (1, 6):
            self.stack.gw_call("PUT", f"/customers/{customers[i * step]['id']}",
                               json={"customers": {"given_name": "Edited"}})
        # Two payments the gateway made by itself: no CRM record names them.
        self.gateway_seed("payments", [{"amount": 999, "currency": "GBP", "links": {
            "mandate": chains["Mandate"][1][0]["id"]}}] * 2)
        # A Contact carrying a gateway id the gateway does not know (a sandbox refresh).
        self.crm_create("Contact", [{"LastName": "Ghost", GATEWAY_ID_FIELD: "CU000000000000"}])
        # A customer whose insert reached the gateway and whose write-back was lost.
        (lost,) = self.crm_create("Contact", [{"LastName": "Lost", "Email": "lost@example.com"}])
        self.gateway_seed("customers", [{"given_name": "Ada", "family_name": "Lost",
                                         "email": "lost@example.com",
                                         "metadata": {"crm_id": lost}}])


def seed(stack: Stack, n: int) -> None:
    stack.reset()
    stack.sf_call("POST", "/sim/trigger", json={"url": None})
    stack.gw_sim("POST", "/webhooks/config", json={"url": ""})
    seeder = Seeder(stack)
    seeder.drift(seeder.chains(n))
    with stack.rt.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE record_links"))


def counters(stack: Stack) -> tuple[dict[str, int], int, int]:
    """Salesforce calls by kind, the allocation used, and gateway API requests so far."""
    sf = stack.sf_call("GET", "/sim/stats")
    gw = stack.gw_sim("GET", "/stats")["requests"]
    api = sum(sum(by_status.values()) for key, by_status in gw.items()
              if not key.split(" ", 1)[1].startswith("/sim"))
    return dict(sf["api_calls"]), int(sf["api_usage"]["used"]), api


def run_reconcile(stack: Stack, env: dict[str, str], log: Path) -> tuple[float, int, int]:
    """``paybridge reconcile`` of the seeded objects, as a process of its own: (wall
    seconds, exit code, peak RSS bytes). Stopped (TERM, then KILL) if the bench is.

    The peak is the kernel's high-water mark of the process's own memory (``VmHWM``), read
    until it exits. Not ``wait4``'s ``ru_maxrss``: that keeps the peak from before ``exec``,
    when the child was still a copy of this bench holding the seeded records."""
    argv = [PY, "-m", "app.cli", "reconcile", *(f"--object={o}" for o in SEEDED)]
    peak = 0
    with log.open("ab") as out:
        started = time.monotonic()
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            time.sleep(0.2)  # past exec: the high-water mark is the new program's
            while proc.poll() is None:
                peak = max(peak, _high_water(proc.pid))
                time.sleep(0.1)
        finally:
            if proc.returncode is None:
                _stop(proc)
    return time.monotonic() - started, int(proc.returncode), peak


def _high_water(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)  # the run is marked stopped, to be resumed
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def found_kinds(stack: Stack) -> dict[str, int]:
    with stack.rt.db.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT kind, count(*) FROM reconcile_differences WHERE run_id = "
            "(SELECT max(id) FROM reconcile_runs WHERE state = 'done') GROUP BY kind")).all()
    return {str(kind): int(n) for kind, n in rows}


def run(stack: Stack, params: ReconcileParams) -> Iterator[Figure]:
    """Each size's figures as soon as that size is measured (a 100,000 size takes minutes)."""
    measured: list[Figure] = []
    out = measured.append

    env = {**stack.env}
    if params.bulk_threshold is not None:
        env["SALESFORCE_BULK_THRESHOLD"] = str(params.bulk_threshold)
    peaks: dict[int, int] = {}
    try:
        for n in params.sizes:
            started = time.monotonic()
            seed(stack, n)
            print(f"bench: reconcile  seeded {n:,} per object in "
                  f"{time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
            sf_before, used_before, gw_before = counters(stack)
            log = stack.home / "log" / f"reconcile-{n}.log"
            wall, code, peak = run_reconcile(stack, env, log)
            sf_after, used_after, gw_after = counters(stack)
            peaks[n] = peak
            out(_size_figures(stack, n, wall, code, peak, peaks, params.sizes[0],
                              {k: sf_after[k] - sf_before.get(k, 0) for k in sf_after
                               if sf_after[k] != sf_before.get(k, 0)},
                              used_after - used_before, gw_after - gw_before, out))
            yield from measured
            measured.clear()
    finally:  # the next scenario expects both partners to call Paybridge again
        stack.sf_call("POST", "/sim/trigger", json={"url": f"{stack.web}/api/v1/queue"})
        stack.gw_sim("POST", "/webhooks/config", json={"url": f"{stack.web}/webhooks/gocardless"})


def _size_figures(stack: Stack, n: int, wall: float, code: int, peak: int,
                  peaks: dict[int, int], smallest: int, sf_calls: dict[str, int], used: int,
                  gw_calls: int, out: Callable[[Figure], None]) -> Figure:
    """Emit this size's figures; returns the last (the drifts found)."""
    per_object = used / len(SEEDED)
    out(Figure(f"reconcile.{n}.sf_calls", f"reconcile {n:,}/object: Salesforce calls per object",
               per_object, "calls", ceiling=SF_CALLS_PER_OBJECT, ceiling_label="(target)",
               target=f"< {SF_CALLS_PER_OBJECT}", passed=per_object < SF_CALLS_PER_OBJECT,
               detail={"allocation_used": used, "by_kind": sf_calls}))
    # Per object, one list page per 500 resources (at least one, even when empty); the
    # drifts add 2 payments and 1 customer at the gateway.
    pages = sum(math.ceil((n + extra) / 500) for extra in (1, 0, 0, 2))
    out(Figure(f"reconcile.{n}.gateway_calls", f"reconcile {n:,}/object: gateway calls",
               gw_calls, "calls", ceiling=pages, ceiling_label="pages of 500",
               target="1 per 500 resources", passed=gw_calls <= pages))
    records = n * len(SEEDED)
    out(Figure(f"reconcile.{n}.wall_s", f"reconcile {n:,}/object: wall time", wall, "s",
               detail={"exit_code": code}))
    out(Figure(f"reconcile.{n}.records_per_s", f"reconcile {n:,}/object: CRM records compared",
               records / wall, "records/s"))
    base = peaks.get(smallest, peak)
    judged = n != smallest
    out(Figure(f"reconcile.{n}.rss_peak", f"reconcile {n:,}/object: peak RSS", peak / MB,
               "MiB", ceiling=base / MB if judged else None,
               ceiling_label=f"MiB at {smallest:,}/object" if judged else "",
               target="growth <= 10 %" if judged else "",
               passed=(peak - base) / base <= RSS_GROWTH if judged else None))
    found = found_kinds(stack)
    return Figure(f"reconcile.{n}.drifts", f"reconcile {n:,}/object: drifts found",
                  sum(found.values()), "", ceiling=sum(EXPECTED.values()),
                  ceiling_label="introduced", target="all, each with its kind",
                  passed=found == EXPECTED and code == 1,
                  detail={"found": found, "expected": EXPECTED, "exit_code": code})
