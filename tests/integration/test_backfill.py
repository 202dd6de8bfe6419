"""Backfill of existing CRM records against both emulators over HTTP: records already at
the gateway are linked (by metadata.crm_id, then by e-mail), the rest queued and created,
nothing twice, bank accounts reported; a second backfill finds nothing to do."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner

from app import cli_reconcile
from app.mapping import GATEWAY_ID_FIELD
from queues.models import QueueItem
from reconcile.models import ReconcileDifference, ReconcileRun
from tests.integration.partners import drain
from tests.integration.reconcile_world import World


def _creates(world: World) -> int:
    return int(world.gateway_stats()["requests"].get("POST /customers", {}).get("201", 0))


def _queued(rt: Any) -> list[int]:
    with rt.db.transaction() as session:
        return list(session.scalars(sa.select(QueueItem.id).where(
            QueueItem.status == "pending").order_by(QueueItem.id)))


def test_backfill_of_1000_contacts_creates_nothing_twice(linked, monkeypatch) -> None:
    rt, _, sf_url, sf = linked
    world = World(*linked)
    people = [{"FirstName": f"P{n}", "LastName": "Existing", "Email": f"p{n}@example.com"}
              for n in range(1000)]
    ids = sf.post(f"{sf_url}/sim/records/Contact/bulk", json={"records": people},
                  timeout=60).json()["ids"]
    for n in range(300):  # created by an earlier integration, which kept our record id
        world.gateway_create("customers", {"given_name": f"P{n}", "family_name": "Existing",
                                           "email": f"p{n}@example.com",
                                           "metadata": {"crm_id": ids[n]}})
    for n in range(300, 600):  # set up on a hosted page: only the e-mail ties them
        world.gateway_create("customers", {"given_name": f"P{n}", "family_name": "Existing",
                                           "email": f"P{n}@Example.com"})
    # Customers already linked from the CRM side whose e-mail another record shares: theirs,
    # never matched to the other record.
    for n in range(600, 605):
        taken = world.gateway_create("customers", {"given_name": "Twin", "family_name": "Linked",
                                                   "email": f"p{n}@example.com"})
        world.crm_create("Contact", {"LastName": "Linked", "Email": f"p{n}@example.com",
                                     GATEWAY_ID_FIELD: taken["id"]})
    accounts = [world.crm_create("Bank_Account__c", {"Account_Holder_Name__c": f"H{n}",
                                                     "Contact__c": ids[n]}) for n in range(3)]
    before = _creates(world)

    monkeypatch.setattr(cli_reconcile, "_settings", lambda: rt.settings)
    result = CliRunner().invoke(cli_reconcile.backfill, ["all"])
    assert result.exit_code == 1, result.output  # the bank accounts wait for their details
    assert "link_missing           found     600  remaining       0" in result.output
    with rt.db.transaction() as session:  # the progress the console shows
        (run,) = session.scalars(sa.select(ReconcileRun))
        assert run.progress["Customer"] == {"phase": "done", "gateway_seen": 605,
                                            "crm_seen": 1000, "matched": 600, "queued": 400,
                                            "reported": 0}
        assert run.progress["BankAccount"]["reported"] == 3
    queued = _queued(rt)
    assert len(queued) == 400
    for start in range(0, len(queued), 200):
        drain(rt, *queued[start:start + 200])
    assert _creates(world) - before == 400

    contacts = [r for r in world.crm_all("Contact") if r["LastName"] == "Existing"]
    assert len(contacts) == 1000 and all(r[GATEWAY_ID_FIELD] for r in contacts)
    assert len({r[GATEWAY_ID_FIELD] for r in world.crm_all("Contact")}) == 1005
    with rt.db.transaction() as session:
        reported = {d.crm_id: d.note for d in session.scalars(sa.select(ReconcileDifference)
                    .where(ReconcileDifference.object == "BankAccount"))}
    assert set(reported) == set(accounts)
    assert all("POST /api/v1/bank-accounts" in (note or "") for note in reported.values())

    again = CliRunner().invoke(cli_reconcile.backfill, ["Customer"])
    assert again.exit_code == 0, again.output
    assert _queued(rt) == [] and _creates(world) - before == 400
