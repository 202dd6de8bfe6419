"""The Reconciliation pages and their JSON API, read by both roles: runs newest first and
paged, a run's progress and its differences counted, filtered, paged and exported as CSV,
never a bank detail, and the last run on the dashboard."""

from __future__ import annotations

import csv
import io
import re

from flask.testing import FlaskClient

from app.runtime import Runtime
from tests.integration.console.reconcile_seed import seed_differences, seed_run
from tests.integration.console.support import Console, key

BANK_NOTE = "refused at intake: sort code 20-00-00 account 55779911 is not allowed"


def ids_on(page: str, pattern: str) -> list[int]:
    return [int(n) for n in re.findall(pattern, page)]


def diff_ids(page: str) -> list[int]:
    body = page.split('id="diff-list"', 1)[1]
    return ids_on(body, r"<tr>\s*<td>(\d+)</td>")


def a_run_with_differences(rt: Runtime) -> tuple[int, dict[str, list[int]]]:
    run_id = seed_run(rt, summary={"found": {"field": 150, "status": 30, "not_synced": 5},
                                   "remaining": {"field": 150, "status": 10, "not_synced": 5},
                                   "repaired": 20},
                      progress={"Customer": {"phase": "done", "gateway_seen": 400,
                                             "crm_seen": 410, "differences": 155},
                                "Payment": {"phase": "done", "gateway_seen": 90,
                                            "crm_seen": 88, "differences": 30}})
    made = {
        "customer_fields": seed_differences(rt, run_id, 150),
        "payment_status": seed_differences(rt, run_id, 20, obj="Payment", kind="status",
                                           repair="heal", field="Status__c", start=1000,
                                           state="applied"),
        "payment_status_open": seed_differences(rt, run_id, 10, obj="Payment", kind="status",
                                                repair="heal", field="Status__c",
                                                start=2000, state="failed"),
        "not_synced": seed_differences(rt, run_id, 5, kind="not_synced", repair="admin",
                                       safe=False, start=3000, field=None, crm_value=None,
                                       gateway_value=None, note=BANK_NOTE),
    }
    return run_id, made


def test_runs_are_listed_newest_first_and_paged(admin_console: Console, rt: Runtime) -> None:
    runs = [seed_run(rt, age_minutes=60 - n) for n in range(52)]
    backfill = seed_run(rt, kind="backfill", state="running", objects=["Customer"],
                        started_by="console",
                        progress={"Customer": {"phase": "match", "crm_seen": 200,
                                               "matched": 3, "queued": 190, "reported": 7}})
    first = admin_console.get("/reconcile").get_data(as_text=True)
    listed = ids_on(first, r'href="/reconcile/(\d+)">#')
    assert listed == [backfill, *reversed(runs)][:50]
    assert "200 records, 3 linked, 190 queued" in first  # a backfill's progress
    older = re.search(r'href="(/reconcile\?before=\d+)">Older', first).group(1)
    second = admin_console.get(older).get_data(as_text=True)
    assert ids_on(second, r'href="/reconcile/(\d+)">#') == list(reversed(runs))[49:]
    assert '<a href="/reconcile" class="">Reconciliation</a>' in admin_console.get("/").get_data(
        as_text=True)  # the nav link


def test_a_runs_page_counts_filters_and_pages_its_differences(admin_console: Console,
                                                              rt: Runtime) -> None:
    run_id, made = a_run_with_differences(rt)
    page = admin_console.get(f"/reconcile/{run_id}").get_data(as_text=True)
    assert "490</b> gateway resources read" in page and "498</b> CRM records compared" in page
    counts = page.split('id="diff-counts"', 1)[1].split("</table>", 1)[0]
    cells = re.findall(r"<td>(\w+)</td><td><a [^>]+>(\w+)</a></td>\s*<td class=\"num\">(\d+)"
                       r"</td><td class=\"num\">(\d+)</td><td class=\"num\">(\d+)</td>", counts)
    assert cells == [("Customer", "field", "150", "150", "150"),
                     ("Customer", "not_synced", "5", "5", "0"),
                     ("Payment", "status", "30", "10", "10")]
    assert "Repair all 150</button>" in page and "Repair all 10</button>" in page
    assert page.count(">Repair</button>") == 100  # every open safe difference shown
    assert diff_ids(page) == made["customer_fields"][:100]  # a page is 100, in id order
    nxt = re.search(r'href="([^"]+)">Next', page).group(1).replace("&amp;", "&")
    assert diff_ids(admin_console.get(nxt).get_data(as_text=True)) == (
        made["customer_fields"][100:] + made["payment_status"] + made["payment_status_open"]
        + made["not_synced"])[:100]

    def shown(**args: str) -> list[int]:
        resp = admin_console.get(f"/reconcile/{run_id}", query_string=args)
        assert resp.status_code == 200, args
        return diff_ids(resp.get_data(as_text=True))

    assert shown(object="Payment") == made["payment_status"] + made["payment_status_open"]
    assert shown(kind="status", repair_state="failed") == made["payment_status_open"]
    assert shown(safe="false") == made["not_synced"]
    assert shown(object="Payment", kind="field") == []
    bad = admin_console.get(f"/reconcile/{run_id}?kind=everything")
    assert bad.status_code == 400 and b"kind must be one of" in bad.data
    assert admin_console.get("/reconcile/999999").status_code == 404


def test_the_csv_export_streams_the_filtered_differences(admin_console: Console,
                                                         rt: Runtime) -> None:
    run_id, made = a_run_with_differences(rt)
    seed_differences(rt, run_id, 1, obj="Payment", field="Description__c", start=9000,
                     crm_value="=HYPERLINK(\"http://evil\")", gateway_value="-5")
    resp = admin_console.get(f"/reconcile/{run_id}/differences.csv?object=Customer")
    assert resp.is_streamed and resp.mimetype == "text/csv"
    assert f"reconcile-run-{run_id}.csv" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    assert rows[0][:4] == ["id", "run_id", "object", "kind"]
    assert [int(r[0]) for r in rows[1:]] == made["customer_fields"] + made["not_synced"]
    first = dict(zip(rows[0], rows[1], strict=True))
    assert (first["crm_value"], first["gateway_value"], first["repair"]) == (
        "Ada0", "Augusta0", "queue_update")
    text = resp.get_data(as_text=True)
    assert "55779911" not in text and "[REDACTED]" in text
    formula = admin_console.get(f"/reconcile/{run_id}/differences.csv?object=Payment"
                                "&kind=field").get_data(as_text=True)
    assert "'=HYPERLINK" in formula and ",'-5," in formula  # a spreadsheet runs no formula
    assert admin_console.get(f"/reconcile/{run_id}/differences.csv?safe=maybe"
                             ).status_code == 400


def test_no_bank_detail_reaches_a_page_or_an_answer(admin_console: Console,
                                                    client: FlaskClient, rt: Runtime) -> None:
    run_id, _ = a_run_with_differences(rt)
    seed_differences(rt, run_id, 1, obj="BankAccount", field="Account_Holder_Name__c",
                     start=7000, crm_value="A Lovelace 20-00-00 55779911",
                     gateway_value="account_number=55779911")
    ops = key(rt, "operations")
    for text in (admin_console.get(f"/reconcile/{run_id}?kind=not_synced").get_data(
                     as_text=True),
                 admin_console.get(f"/reconcile/{run_id}?object=BankAccount").get_data(
                     as_text=True),
                 client.get(f"/api/v1/reconcile-runs/{run_id}/differences?limit=500",
                            headers=ops).get_data(as_text=True)):
        assert "55779911" not in text and "[REDACTED]" in text


def test_the_json_api_reads_the_same_and_names_bad_input(client: FlaskClient,
                                                         rt: Runtime) -> None:
    ops = key(rt, "operations")
    run_id, made = a_run_with_differences(rt)
    other = seed_run(rt, kind="backfill", objects=["Customer"])
    listed = client.get("/api/v1/reconcile-runs?limit=1", headers=ops).get_json()
    assert [r["id"] for r in listed["items"]] == [other]
    assert listed["next_before_id"] == other
    rest = client.get(f"/api/v1/reconcile-runs?before_id={other}", headers=ops).get_json()
    assert [r["id"] for r in rest["items"]] == [run_id] and rest["next_before_id"] is None
    assert [r["id"] for r in client.get("/api/v1/reconcile-runs?kind=backfill",
                                        headers=ops).get_json()["items"]] == [other]
    run = client.get(f"/api/v1/reconcile-runs/{run_id}", headers=ops).get_json()
    assert run["totals"]["gateway_seen"] == 490 and run["summary"]["repaired"] == 20
    assert {(c["object"], c["kind"]): c["open"] for c in run["counts"]} == {
        ("Customer", "field"): 150, ("Customer", "not_synced"): 5, ("Payment", "status"): 10}
    page = client.get(f"/api/v1/reconcile-runs/{run_id}/differences?object=Payment&limit=25",
                      headers=ops).get_json()
    assert [d["id"] for d in page["items"]] == made["payment_status"] + made[
        "payment_status_open"][:5]
    tail = client.get(f"/api/v1/reconcile-runs/{run_id}/differences?object=Payment&limit=25"
                      f"&after_id={page['next_after_id']}", headers=ops).get_json()
    assert [d["id"] for d in tail["items"]] == made["payment_status_open"][5:]
    assert tail["next_after_id"] is None

    refused = [client.post(path, json=body, headers=ops).status_code for path, body in (
        ("/api/v1/reconcile-runs", {"kind": "reconcile"}),
        (f"/api/v1/reconcile-runs/{run_id}/repair", {"kind": "field"}),
        (f"/api/v1/reconcile-differences/{made['customer_fields'][0]}/repair", None))]
    assert refused == [403, 403, 403]
    admin = key(rt, "admin")
    unknown = client.post("/api/v1/reconcile-differences/999999/repair", headers=admin)
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "not_found"
    needs_admin = client.post(f"/api/v1/reconcile-differences/{made['not_synced'][0]}/repair",
                              headers=admin)
    assert needs_admin.status_code == 409
    assert needs_admin.get_json()["error"]["code"] == "not_repairable"
    assert len(client.get("/api/v1/reconcile-runs", headers=ops).get_json()["items"]) == 2

    for path, status, code, field in (
            ("/api/v1/reconcile-runs/999999", 404, "not_found", None),
            ("/api/v1/reconcile-runs/999999/differences", 404, "not_found", None),
            (f"/api/v1/reconcile-runs/{run_id}/differences?kind=nope", 400,
             "validation_failed", "kind"),
            (f"/api/v1/reconcile-runs/{run_id}/differences?repair_state=done", 400,
             "validation_failed", "repair_state"),
            (f"/api/v1/reconcile-runs/{run_id}/differences?safe=yes", 400,
             "validation_failed", "safe"),
            ("/api/v1/reconcile-runs?kind=sync", 400, "validation_failed", "kind")):
        resp = client.get(path, headers=ops)
        error = resp.get_json()["error"]
        assert (resp.status_code, error["code"]) == (status, code), path
        if field:
            assert field in error["details"]["fields"], path


def test_the_dashboard_shows_the_last_reconcile_run(admin_console: Console,
                                                    client: FlaskClient, rt: Runtime) -> None:
    empty = admin_console.get("/dashboard/panel").get_data(as_text=True)
    assert "Last reconcile" in empty and "no run yet" in empty
    seed_run(rt, age_minutes=600, summary={"found": {"field": 1}, "remaining": {},
                                           "repaired": 1})
    last = seed_run(rt, age_minutes=5, summary={
        "found": {"status": 4, "not_synced": 2}, "remaining": {"not_synced": 2},
        "repaired": 4})
    seed_run(rt, kind="backfill", age_minutes=1)  # another kind: not this card
    panel = admin_console.get("/").get_data(as_text=True)
    tile = panel.split('id="reconcile-tile"', 1)[1].split("</div>\n  <div", 1)[0]
    assert f'href="/reconcile/{last}">#{last} done' in tile
    assert "6 found · 4 repaired · 2 remaining" in tile
    api = client.get("/api/v1/dashboard", headers=key(rt, "operations")).get_json()
    assert (api["reconcile"]["id"], api["reconcile"]["found"], api["reconcile"]["remaining"],
            api["reconcile"]["remaining_by_kind"]) == (last, 6, 2, {"not_synced": 2})


def test_operations_users_read_every_reconciliation_page(ops_console: Console,
                                                         rt: Runtime) -> None:
    run_id, _ = a_run_with_differences(rt)
    for path in ("/reconcile", f"/reconcile/{run_id}", f"/reconcile/{run_id}/progress",
                 f"/reconcile/{run_id}/differences.csv"):
        assert ops_console.get(path).status_code == 200, path
    page = ops_console.get(f"/reconcile/{run_id}").get_data(as_text=True)
    assert "Repair all" not in page and ">Repair</button>" not in page
    assert "Start reconcile" not in ops_console.get("/reconcile").get_data(as_text=True)
