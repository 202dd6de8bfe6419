"""Reconciliation against both emulators over HTTP: each kind of drift introduced directly
in one emulator (the CRM's trigger and the gateway's webhooks off) is found with its kind,
the safe ones are repaired through Paybridge's own paths, and a second run finds nothing."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from app.clock import utcnow
from app.mapping import GATEWAY_ID_FIELD
from app.records import service as records
from queues.models import QueueItem
from reconcile import engine, repairs
from reconcile.models import ReconcileDifference, ReconcileRun
from tests.integration.partners import drain
from tests.integration.reconcile_world import World

OBJECTS = ["Customer", "BankAccount", "Mandate", "Payment"]


def differences(rt: Any, run_id: int) -> list[tuple[str, str, str | None]]:
    with rt.db.transaction() as session:
        rows = session.scalars(sa.select(ReconcileDifference).where(
            ReconcileDifference.run_id == run_id).order_by(ReconcileDifference.id))
        return sorted((d.object, d.kind, d.field) for d in rows)


def test_records_in_step_show_no_difference(linked) -> None:
    world = World(*linked)
    for n in range(3):
        world.chain(n)
    run_id, summary = engine.reconcile(world.rt, OBJECTS)
    assert differences(world.rt, run_id) == []
    assert summary["found"] == {}


def test_each_drift_is_found_with_its_kind_repaired_and_gone_on_the_next_run(linked) -> None:
    rt = linked[0]
    world = World(*linked)
    chains = [world.chain(n) for n in range(3)]
    payment_crm, payment = chains[0]["Payment"]
    customer_crm, customer = chains[1]["Customer"]
    other_payment_crm, _ = chains[2]["Payment"]
    # The gateway moves on while webhooks are off: the CRM still shows the old status.
    world.advance("payments", payment["id"], "confirmed")
    # Someone edits the customer in the gateway's dashboard: the CRM owns that field.
    world.gateway_update("customers", customer["id"], {"given_name": "Augusta"})
    # Someone edits a gateway-owned field in the CRM while the trigger is off.
    world.crm_update("Payment__c", other_payment_crm, {"Reference__c": "TYPED-BY-HAND"})
    # A payment the gateway made by itself (no CRM record).
    mandate_id = chains[0]["Mandate"][1]["id"]
    orphan = world.gateway_create("payments", {"amount": 999, "currency": "GBP",
                                               "links": {"mandate": mandate_id}})
    # A customer whose insert reached the gateway but whose write-back was lost.
    unlinked_crm = world.crm_create("Contact", {"FirstName": "Ada", "LastName": "Byron",
                                                "Email": "b@example.com"})
    world.gateway_create("customers", {"given_name": "Ada", "family_name": "Byron",
                                       "email": "b@example.com",
                                       "metadata": {"crm_id": unlinked_crm}})

    run_id, summary = engine.reconcile(rt, OBJECTS, repair=True)

    assert differences(rt, run_id) == sorted([
        ("Payment", "status", "Status__c"),
        ("Customer", "field", "FirstName"),
        ("Payment", "field", "Reference__c"),
        ("Payment", "missing_in_crm", None),
        ("Customer", "link_missing", GATEWAY_ID_FIELD),
    ])
    assert summary["remaining"] == {}, summary
    # The repairs went through Paybridge's paths: a queued update, CRM writes, a new record.
    with rt.db.transaction() as session:
        items = list(session.scalars(sa.select(QueueItem)))
    assert [(i.object, i.record_id, i.operation) for i in items] == [
        ("Customer", customer_crm, "update")]
    drain(rt, *(i.id for i in items))
    assert world.gateway_get("customers", customer["id"])["given_name"] == "Ada1"
    assert world.crm_get("Payment__c", payment_crm)["Status__c"] == "Confirmed"
    with rt.db.transaction() as session:
        _, entries = records.history(session, "Payment", payment_crm)
        assert [(e.to_status, e.source) for e in entries] == [("confirmed", "reconcile")]
    assert world.crm_get("Contact", unlinked_crm)[GATEWAY_ID_FIELD]
    made = [r for r in world.crm_all("Payment__c") if r[GATEWAY_ID_FIELD] == orphan["id"]]
    assert len(made) == 1 and made[0]["Mandate__c"] == chains[0]["Mandate"][0]

    second, summary = engine.reconcile(rt, OBJECTS)
    assert second != run_id
    assert differences(rt, second) == [], summary


def test_what_only_an_admin_can_settle_is_kept_and_the_command_fails(linked, monkeypatch) -> None:
    from click.testing import CliRunner

    from app import cli_reconcile
    from queues import intake
    from tests.integration.partners import change

    rt = linked[0]
    world = World(*linked)
    chains = [world.chain(n) for n in range(2)]
    # A CRM record naming a gateway id the gateway never had (a sandbox refresh).
    lost = world.crm_create("Contact", {"LastName": "Lost", GATEWAY_ID_FIELD: "CU0000NOPE"})
    # A record never sent to the gateway.
    never = world.crm_create("Contact", {"LastName": "Never"})
    # Two gateway resources claiming one record: the second insert of a duplicated trigger.
    duplicated_crm, _ = chains[0]["Customer"]
    second = world.gateway_create("customers", {"given_name": "Ada0", "family_name": "Twice",
                                                "metadata": {"crm_id": duplicated_crm}})
    # A gateway resource naming a record the CRM does not have.
    world.gateway_create("customers", {"given_name": "Gone", "family_name": "Away",
                                       "metadata": {"crm_id": "0030000000GONEAAA"}})
    # A payment the gateway cannot change the amount of, edited in the CRM.
    payment_crm, _ = chains[1]["Payment"]
    world.crm_update("Payment__c", payment_crm, {"Amount__c": 99.99})
    # A queue item the gateway refused.
    (item,) = intake.submit(rt, [change(never, Email="not-an-email")])
    drain(rt, item.id)

    monkeypatch.setattr(cli_reconcile, "_settings", lambda: rt.settings)
    result = CliRunner().invoke(cli_reconcile.reconcile, ["--repair", "--object", "Customer",
                                                          "--object", "Payment"])
    assert result.exit_code == 1, result.output
    assert "remaining" in result.output and "queue_failed" in result.output
    with rt.db.transaction() as session:
        found = {(d.kind, d.crm_id, d.repair_state) for d in session.scalars(
            sa.select(ReconcileDifference))}
    assert found == {
        ("missing_at_gateway", lost, "pending"),
        ("not_synced", never, "pending"),
        ("duplicate_at_gateway", duplicated_crm, "pending"),
        ("missing_in_crm", "0030000000GONEAAA", "pending"),
        ("field", payment_crm, "pending"),
        ("queue_failed", never, "pending"),
    }
    with rt.db.transaction() as session:
        dup = session.scalars(sa.select(ReconcileDifference).where(
            ReconcileDifference.kind == "duplicate_at_gateway")).one()
    assert dup.gateway_id == second["id"]


def test_a_run_that_dies_midway_resumes_from_its_saved_cursor(linked, monkeypatch) -> None:
    from datetime import timedelta

    import requests

    from reconcile import runs

    rt, gw_url, sf_url, sf = linked
    world = World(*linked)
    total = 700  # two CRM batches
    records = []
    for n in range(total):  # linked from the CRM side only, as hosted-page customers are
        made = world.gateway_create("customers", {"given_name": f"R{n}", "family_name": "Resume",
                                                  "email": f"r{n}@example.com"})
        records.append({"FirstName": f"R{n}", "LastName": "Resume", "Email": f"r{n}@example.com",
                        GATEWAY_ID_FIELD: made["id"]})
    ids = sf.post(f"{sf_url}/sim/records/Contact/bulk", json={"records": records},
                  timeout=60).json()["ids"]
    world.crm_update("Contact", ids[-1], {"FirstName": "Changed"})  # one difference, late

    class Died(BaseException):
        """Stands for the process being killed: nothing gets to mark the run."""

    def die_after_first_batch(obj: str, phase: str, n: int) -> None:
        if phase == "crm":
            raise Died

    with pytest.raises(Died):
        engine.reconcile(rt, ["Customer"], progress=die_after_first_batch)
    with rt.db.transaction() as session:
        died = session.scalars(sa.select(ReconcileRun.id)).one()
    first = runs.cursor_of(rt.db, died, "Customer")
    in_crm_order = [r["Id"] for r in rt.crm.iter_records("Contact", ["Id"], order_by="Id")]
    assert first == {"phase": "crm", "after": in_crm_order[engine.BATCH - 1]}
    with pytest.raises(runs.AlreadyRunning):  # its process might still be alive
        engine.reconcile(rt, ["Customer"])

    monkeypatch.setattr(runs, "STALE_AFTER", timedelta(0))  # now it is known to be dead
    lists = requests.get(f"{gw_url}/sim/stats", timeout=10).json()["requests"]["GET /customers"]
    run_id, summary = engine.reconcile(rt, ["Customer"])
    assert run_id == died
    again = requests.get(f"{gw_url}/sim/stats", timeout=10).json()["requests"]["GET /customers"]
    assert again == lists  # the gateway side was not read again
    progress = runs.cursor_of(rt.db, died, "Customer")
    assert progress == {"phase": "done", "after": None}
    with rt.db.transaction() as session:
        run = session.get(ReconcileRun, died)
        assert run.progress["Customer"]["crm_seen"] == total  # each record compared once
        assert run.progress["Customer"]["gateway_seen"] == total
    assert summary["found"] == {"field": 1}


def _heal_difference(world: World) -> tuple[Any, str, str]:
    """A payment confirmed at the gateway while webhooks were off: one ``heal``."""
    payment_crm, payment = world.chain(0)["Payment"]
    world.advance("payments", payment["id"], "confirmed")
    run_id, _ = engine.reconcile(world.rt, ["Payment"])
    with world.rt.db.transaction() as session:
        (diff,) = session.scalars(sa.select(ReconcileDifference).where(
            ReconcileDifference.run_id == run_id))
    assert (diff.repair, diff.repair_state) == ("heal", "pending")
    return diff, payment_crm, payment["id"]


def _history(world: World, crm_id: str) -> list[tuple[str, str]]:
    with world.rt.db.transaction() as session:
        _, history = records.history(session, "Payment", crm_id)
        return [(e.to_status, e.source) for e in history]


def test_a_difference_another_repair_has_claimed_is_left_to_it(linked) -> None:
    world = World(*linked)
    diff, payment_crm, _ = _heal_difference(world)
    with world.rt.db.transaction() as session:  # a repair-all job took it a moment ago
        row = session.get(ReconcileDifference, diff.id)
        row.repair_state, row.repaired_at = "repairing", utcnow()
    with pytest.raises(repairs.NotRepairable, match="being repaired already"):
        repairs.repair_one(world.rt, diff.id, actor="alice")
    assert _history(world, payment_crm) == []
    assert world.crm_get("Payment__c", payment_crm)["Status__c"] != "Confirmed"

    with world.rt.db.transaction() as session:  # that job died long ago: taken up again
        session.get(ReconcileDifference, diff.id).repaired_at = \
            utcnow() - repairs.CLAIM_EXPIRES - timedelta(seconds=1)
    assert repairs.repair_one(world.rt, diff.id, actor="alice")[0] == "applied"
    assert _history(world, payment_crm) == [("confirmed", "reconcile")]


def test_two_repairs_of_one_difference_at_once_apply_it_once(linked) -> None:
    world = World(*linked)
    diff, payment_crm, _ = _heal_difference(world)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def one() -> None:
        start.wait()
        try:
            outcomes.append(repairs.repair_one(world.rt, diff.id, actor="alice")[0])
        except repairs.NotRepairable as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("applied") == 1, outcomes
    assert _history(world, payment_crm) == [("confirmed", "reconcile")]


def test_the_staged_gateway_side_is_analyzed_before_it_is_queried(linked) -> None:
    """The staging table fills within seconds and is queried at once, before autovacuum
    could look at it: without statistics PostgreSQL scans the whole object per batch."""
    rt = linked[0]
    if rt.db.dialect != "postgresql":
        pytest.skip("planner statistics are PostgreSQL's")

    def staged_rows_known() -> float:
        with rt.db.engine.connect() as conn:  # pg_class is transactional: no stats lag
            return float(conn.execute(sa.text(
                "SELECT reltuples FROM pg_class WHERE relname = 'reconcile_staging'")).scalar())

    with rt.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE reconcile_staging"))  # empty now: 0 rows known
    assert staged_rows_known() == 0
    World(*linked).chain(0)
    engine.reconcile(rt, ["Customer"])
    # Analyzed while the run's rows were there (finishing deletes them, not the statistics).
    assert staged_rows_known() == 1
