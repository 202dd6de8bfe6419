"""Reading whole objects from both partners, a page at a time, against the emulators over
HTTP: Salesforce's ``nextRecordsUrl`` (2,000 records a page) and GoCardless's list cursors
(500 a page). Reconciliation and backfill read this way."""

from __future__ import annotations

import requests

from app.clients.gateway import GatewayClient


def _calls(sf: requests.Session, sf_url: str) -> int:
    return int(sf.get(f"{sf_url}/sim/stats", timeout=10).json()["api_calls_total"])


def test_salesforce_records_come_page_by_page_past_2000(linked) -> None:
    rt, _, sf_url, sf = linked
    for start in range(0, 4500, 1500):
        records = [{"FirstName": f"P{n}", "LastName": "Reader"} for n in range(start, start + 1500)]
        sf.post(f"{sf_url}/sim/records/Contact/bulk", json={"records": records},
                timeout=60).raise_for_status()
    rt.crm.login()
    before = _calls(sf, sf_url)
    names = [r["FirstName"] for r in rt.crm.iter_records("Contact", ["Id", "FirstName"],
                                                         where="LastName = 'Reader'")]
    assert sorted(names) == sorted(f"P{n}" for n in range(4500))
    assert _calls(sf, sf_url) - before == 3  # 2,000 + 2,000 + 500


def test_gateway_resources_come_page_by_page_with_cursors(emulators) -> None:
    rt, gw_url, _ = emulators
    client = GatewayClient(gw_url, rt.settings.gateway_access_token)
    made = {client.create("customers", {"given_name": f"G{n}", "family_name": "Lister",
                                        "email": f"g{n}@example.com"}, f"key-{n}").resource["id"]
            for n in range(1100)}
    seen = [c["id"] for c in client.iter_resources("customers")]
    assert set(seen) == made and len(seen) == len(made)
    lists = requests.get(f"{gw_url}/sim/stats", timeout=10).json()["requests"]["GET /customers"]
    assert lists == {"200": 3}  # 500 + 500 + 100
