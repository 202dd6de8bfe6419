"""Reconcile runs and differences written straight into the database, as a run leaves them,
for the console's reading tests (the actions' tests make theirs with real runs)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from app.clock import utcnow
from app.runtime import Runtime
from reconcile.models import ReconcileDifference, ReconcileRun


def seed_run(rt: Runtime, *, kind: str = "reconcile", state: str = "done",
             objects: list[str] | None = None, age_minutes: float = 0,
             progress: dict[str, Any] | None = None, summary: dict[str, Any] | None = None,
             started_by: str = "clock") -> int:
    started = utcnow() - timedelta(minutes=age_minutes)
    with rt.db.transaction() as session:
        run = ReconcileRun(kind=kind, objects=objects or ["Customer", "Payment"], repair=False,
                           dry_run=False, state=state, started_by=started_by,
                           started_at=started, updated_at=started,
                           finished_at=started if state == "done" else None,
                           progress=progress or {}, cursor={}, summary=summary or {})
        session.add(run)
        session.flush()
        return run.id


def seed_differences(rt: Runtime, run_id: int, n: int, *, obj: str = "Customer",
                     kind: str = "field", repair: str = "queue_update", safe: bool = True,
                     state: str = "pending", start: int = 0, **values: Any) -> list[int]:
    rows = [ReconcileDifference(
        run_id=run_id, key=f"{obj}:{kind}:{start + i}", object=obj, kind=kind,
        crm_id=f"003SEED{start + i:010d}", gateway_id=f"CU{start + i:08d}",
        field=values.get("field", "FirstName"), crm_value=values.get("crm_value", f"Ada{i}"),
        gateway_value=values.get("gateway_value", f"Augusta{i}"), repair=repair, safe=safe,
        repair_state=state, note=values.get("note", "the CRM owns this field"),
        found_at=utcnow()) for i in range(n)]
    with rt.db.transaction() as session:
        session.add_all(rows)
        session.flush()
        return [r.id for r in rows]
