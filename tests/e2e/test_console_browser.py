"""The console in a real headless Chromium, against the real processes and both emulators:
sign in, fix a Failed item's payload and watch it go, read a payment's timeline, bulk
reprocess, start a reconcile and watch it finish, and keep screenshots of the main pages in
docs/screenshots/."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.users import create_user
from tests.e2e.conftest import Stack, wait_until
from webhooks.signature import sign

pytestmark = pytest.mark.e2e
CHROMIUM = "/usr/bin/chromium"
# The committed screenshots are refreshed only when asked (PAYBRIDGE_SCREENSHOTS=1), so a
# plain test run leaves the work tree clean.
SHOTS = (Path(__file__).resolve().parents[2] / "docs" / "screenshots"
         if os.environ.get("PAYBRIDGE_SCREENSHOTS") == "1"
         else Path(tempfile.gettempdir()) / "paybridge-screenshots")
PASSWORD = "correct horse battery"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing: install Debian's browser with "
                "`apt-get install -y chromium` to run the browser tests",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright is not installed (requirements-dev.txt)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, fresh: Stack) -> Iterator[Any]:
    with fresh.rt.db.transaction() as session:
        create_user(session, "alice", "admin", PASSWORD)
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=fresh.web)
    context.set_default_timeout(20_000)
    tab = context.new_page()
    blocked: list[str] = []  # what the Content-Security-Policy refused: must stay empty
    tab.on("console", lambda msg: blocked.append(msg.text)
           if "Content Security Policy" in msg.text else None)
    tab.goto("/")
    assert "/login" in tab.url  # anonymous: the sign-in page
    tab.fill("input[name=name]", "alice")
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_selector("text=Dashboard")
    yield tab
    context.close()
    assert blocked == []


def shot(tab: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / name), full_page=True)


def contacts(stack: Stack, *emails: str) -> list[str]:
    records = [{"FirstName": "Grace", "LastName": f"Hopper{n}", "Email": email}
               for n, email in enumerate(emails)]
    resp = stack.sf_call("POST", "/sim/records/Contact/bulk", json={"records": records})
    resp.raise_for_status()
    return list(resp.json()["ids"])


def refuse_next_email(stack: Stack) -> None:
    """The gateway refuses the next customer's e-mail (the CRM accepts any well-formed one,
    as Salesforce does, so the refusal that needs a person comes from the gateway)."""
    stack.http.post(f"{stack.gw}/sim/faults", timeout=10, json={"reject_next": [{
        "field": "email", "message": "is not a valid email address", "method": "POST",
        "path_prefix": "/customers"}]}).raise_for_status()


def failed_ids(stack: Stack) -> list[int]:
    body = stack.api("GET", "/api/v1/queue-items?status=failed").json()
    return [i["id"] for i in body["items"]]


def test_fix_a_failed_items_payload_and_see_it_disappear(page: Any, fresh: Stack) -> None:
    refuse_next_email(fresh)
    (crm_id,) = contacts(fresh, "grace@exmaple.com")
    wait_until(lambda: failed_ids(fresh), 60, "the invalid e-mail to fail", fresh)
    page.click("nav >> text=API Queue")
    row = page.locator("#item-list tr", has_text=crm_id)
    shot(page, "failed-items.png")
    row.locator("a").click()
    page.wait_for_selector("text=is not a valid email")
    shot(page, "failed-item.png")
    page.click("#edit")
    fields = page.locator("#fields")
    fields.fill(fields.input_value().replace("grace@exmaple.com", "grace@example.com"))
    page.click("#save")
    page.wait_for_selector("text=saved and sent for reprocessing")

    def gone() -> bool:
        page.goto("/items?status=failed")
        return page.locator("#item-list tr", has_text=crm_id).count() == 0 and not [
            i for i in fresh.api("GET", "/api/v1/queue-items?limit=5").json()["items"]]

    wait_until(gone, 60, "the fixed item to be processed", fresh)
    written = fresh.sf_call("GET", f"/sim/records/Contact/{crm_id}").json()
    assert written.get("Gateway_Id__c", "").startswith("CU")
    page.click("nav >> text=Audit log")
    page.wait_for_selector("#audit >> text=edit")


def gateway(stack: Stack, resource: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = stack.gw_call("POST", f"/{resource}", json={resource: body})
    assert resp.status_code == 201, resp.text
    return dict(resp.json()[resource])


def advance(stack: Stack, resource: str, gateway_id: str, to: str) -> None:
    stack.http.post(f"{stack.gw}/sim/advance", json={
        "resource_type": resource, "ids": [gateway_id], "to": to}, timeout=30).raise_for_status()


def events_applied(stack: Stack, payment_id: str) -> bool:
    stack.http.post(f"{stack.gw}/sim/webhooks/flush?timeout=5", timeout=30)
    history = stack.api("GET", f"/api/v1/records/Payment/{payment_id}/history").json()
    return len(history.get("history", [])) >= 4


def late_delivery(stack: Stack, payment_id: str) -> None:
    """An event from an hour ago, delivered now: older than what was applied, so stale."""
    when = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    body = json.dumps({"events": [{"id": "EVLATE0001", "created_at": when,
                                   "resource_type": "payments", "action": "submitted",
                                   "links": {"payment": payment_id},
                                   "details": {"cause": "payment_submitted"}}]}).encode()
    signature = sign(body, stack.rt.settings.webhook_secret)
    resp = stack.http.post(f"{stack.web}/webhooks/gocardless", data=body, timeout=10,
                           headers={"Webhook-Signature": signature,
                                    "Content-Type": "application/json"})
    assert resp.status_code == 204, resp.text
    wait_until(lambda: stack.api("GET", "/api/v1/webhook-events?status=stale").json()["items"],
               30, "the late event to be marked stale", stack)


def test_read_a_payments_timeline(page: Any, fresh: Stack) -> None:
    """A mandate set up at the gateway (a hosted page) and a payment on it, driven to paid
    out: the events create the CRM records and the status history."""
    customer = gateway(fresh, "customers", {"given_name": "Ada", "family_name": "Lovelace",
                                            "email": "ada@example.com"})
    account = gateway(fresh, "customer_bank_accounts", {
        "account_holder_name": "Ada Lovelace", "account_number": "55779911",
        "branch_code": "200000", "country_code": "GB", "currency": "GBP",
        "links": {"customer": customer["id"]}})
    mandate = gateway(fresh, "mandates", {"scheme": "bacs", "links": {
        "customer_bank_account": account["id"]}})
    advance(fresh, "mandates", mandate["id"], "active")
    payment = gateway(fresh, "payments", {"amount": 2500, "currency": "GBP",
                                          "reference": "INV42",
                                          "links": {"mandate": mandate["id"]}})
    advance(fresh, "payments", payment["id"], "paid_out")
    wait_until(lambda: events_applied(fresh, payment["id"]), 90,
               "the payment's events to be applied", fresh)
    late_delivery(fresh, payment["id"])
    page.click("nav >> text=Status history")
    page.fill("#q", "lovelace")
    page.press("#q", "Enter")
    page.wait_for_selector(f"#results >> text={payment['id']}")
    page.fill("#q", payment["id"])
    page.press("#q", "Enter")
    page.wait_for_selector("#timeline")
    text = page.inner_text("#timeline")
    for status in ("pending_submission", "submitted", "confirmed", "paid_out"):
        assert status in text
    assert "EVLATE0001" in page.inner_text("aside")  # shown beside the timeline, stale
    shot(page, "timeline.png")


def test_bulk_reprocess_with_progress(page: Any, fresh: Stack) -> None:
    fresh.http.post(f"{fresh.gw}/sim/faults", json={"fail_next": [
        {"status": 422, "count": 3, "path_prefix": "/customers", "method": "POST"}]},
        timeout=10).raise_for_status()
    ids = contacts(fresh, "b1@example.com", "b2@example.com", "b3@example.com")
    wait_until(lambda: len(failed_ids(fresh)) == 3, 60, "three Failed items", fresh)
    page.goto("/items?status=failed")
    page.click("summary:has-text('Bulk action')")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Reprocess all matching')")
    page.wait_for_url(re.compile(r"/bulk/\d+$"))
    page.wait_for_selector("#status >> text=done")
    assert page.inner_text("#processed") == "3" and page.inner_text("#changed") == "3"
    assert page.eval_on_selector("#bar", "el => el.style.width") == "100%"  # set by the script
    wait_until(lambda: not failed_ids(fresh) and all(
        fresh.sf_call("GET", f"/sim/records/Contact/{i}").json().get("Gateway_Id__c")
        for i in ids), 60, "the reprocessed items to reach the gateway", fresh)


def test_reconcile_from_the_console_then_repair_what_it_found(page: Any, fresh: Stack) -> None:
    (crm_id,) = contacts(fresh, "r1@example.com")
    gateway_id = wait_until(lambda: fresh.sf_call("GET", f"/sim/records/Contact/{crm_id}")
                            .json().get("Gateway_Id__c"), 60, "the contact to sync", fresh)
    # Edited in the CRM while its trigger is off: the gateway never heard of it.
    trigger = fresh.sf_call("GET", "/sim/trigger").json()
    fresh.sf_call("POST", "/sim/trigger", json={"url": None}).raise_for_status()
    try:
        fresh.sf_call("PATCH", f"/sim/records/Contact/{crm_id}",
                      json={"FirstName": "Augusta"}).raise_for_status()
    finally:
        fresh.sf_call("POST", "/sim/trigger", json={"url": trigger["url"]}).raise_for_status()

    page.goto("/reconcile")
    page.check("#start-reconcile input[value=Customer]")
    page.click("#start-reconcile button[type=submit]")
    page.wait_for_url(re.compile(r"/reconcile/\d+$"))
    # A worker runs it; the page follows the progress and reloads itself when it ends.
    page.wait_for_selector("h1 .badge-done", timeout=60_000)
    progress = page.inner_text("#panel")
    assert "1 gateway resources read" in progress and "1 CRM records compared" in progress
    assert "Augusta" in page.inner_text("#diff-list")
    shot(page, "reconcile-run.png")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#diff-counts button:has-text('Repair all 1')")
    page.wait_for_url(re.compile(r"/bulk/\d+$"))
    page.wait_for_selector("#status >> text=done")
    assert page.inner_text("#changed") == "1"
    wait_until(lambda: fresh.gw_call("GET", f"/customers/{gateway_id}").json()["customers"][
        "given_name"] == "Augusta", 60, "the queued update to reach the gateway", fresh)
    page.goto("/")
    assert "1 found · 1 repaired · 0 remaining" in page.inner_text("#reconcile-tile")


def test_dashboard_screenshot(page: Any, fresh: Stack) -> None:
    contacts(fresh, "d1@example.com", "d2@example.com")
    refuse_next_email(fresh)
    contacts(fresh, "broken@exmaple.com")
    wait_until(lambda: failed_ids(fresh), 60, "one Failed item for the dashboard", fresh)
    page.goto("/")
    page.wait_for_selector("text=Webhook Queue")
    assert page.locator(".tile-label", has_text="Workers").count() == 1
    shot(page, "dashboard.png")
    assert shutil.which(CHROMIUM) or os.path.exists(CHROMIUM)


def test_sign_in_redirects_stay_on_the_console_in_chromium(page: Any, fresh: Stack) -> None:
    """The targets of tests/unit/test_redirects.py as Chromium itself reads them: the
    dangerous ones really leave the site when used as they are, yet signing in (already
    signed in: the page sends the browser straight on) always lands on the console."""
    from urllib.parse import quote

    from tests.unit.test_redirects import BENIGN, HOSTILE

    def origin(target: str) -> str:
        return str(page.evaluate(
            "t => { try { return new URL(t, location.href).origin } catch (e) { return '' } }",
            target))

    leaving = {t for t in HOSTILE if t and origin(t) != fresh.web}
    assert {"//evil.example/x", "/\\evil.example/x", "/\t/evil.example", " //evil.example",
            "\\\\evil.example/x", "javascript:alert(1)"} <= leaving
    assert all(origin(t) == fresh.web for t in BENIGN)
    for target in [t for t in HOSTILE if t] + BENIGN:
        page.goto("/login?next=" + quote(target, safe=""))
        assert page.url.startswith(fresh.web + "/"), (target, page.url)
