"""Security headers on every console page, and pages a strict Content-Security-Policy can
serve: no inline script, no event-handler attributes, no inline styles."""

from __future__ import annotations

import secrets
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest
from werkzeug.test import TestResponse

from app.config import Settings
from app.runtime import Runtime
from app.web import create_app
from tests.integration.console.reconcile_seed import seed_differences, seed_run
from tests.integration.console.support import Console, failed_event, failed_item

TEMPLATES = Path(__file__).resolve().parents[3] / "app" / "console" / "templates"


def csp(resp: TestResponse) -> dict[str, str]:
    policy = resp.headers.get("Content-Security-Policy", "")
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] if " " in d else ""
            for d in (p.strip() for p in policy.split(";")) if d}


def assert_console_headers(resp: TestResponse, path: str) -> None:
    policy = csp(resp)
    assert policy.get("script-src") == "'self'", (path, policy)
    assert policy.get("default-src") == "'none'", path
    assert policy.get("frame-ancestors") == "'none'", path
    assert "unsafe" not in resp.headers["Content-Security-Policy"], path
    assert resp.headers["X-Frame-Options"] == "DENY", path
    assert resp.headers["X-Content-Type-Options"] == "nosniff", path
    assert resp.headers["Referrer-Policy"] == "same-origin", path


class InlineFinder(HTMLParser):
    """Collects what a CSP without 'unsafe-inline' would block in a rendered page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script" and not names.get("src"):
            self.found.append("<script> without src")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=...>")
            if name == "style":
                self.found.append(f"<{tag} style=...>")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith(
                    "javascript:"):
                self.found.append(f"<{tag} {name}=javascript:...>")
        if tag == "style":
            self.found.append("<style> element")


PAGES = ["/", "/dashboard/panel", "/items", "/items/{item}", "/items/{item}/edit", "/events",
         "/events/{event}", "/history?q=PM", "/history/Payment/PM000001", "/audit", "/bulk",
         "/bulk/1", "/alerts", "/keys", "/settings", "/items/999999", "/reconcile",
         "/reconcile/{run}", "/reconcile/{run}/progress"]


def test_every_console_page_has_the_headers_and_nothing_inline(admin_console: Console,
                                                              rt: Runtime) -> None:
    from app.console import bulk
    from app.listing import ListFilter

    item, event = failed_item(rt), failed_event(rt)
    run = seed_run(rt, state="running")
    seed_differences(rt, run, 3)
    op = bulk.start(rt, queue="api", action="reprocess", flt=ListFilter(status="failed"),
                    reason=None, actor="alice")
    for template in PAGES:
        path = template.format(item=item, event=event, run=run).replace("/bulk/1", f"/bulk/{op.id}")
        resp = admin_console.get(path)
        assert resp.status_code in (200, 404), (path, resp.status_code)
        assert_console_headers(resp, path)
        assert resp.headers["Cache-Control"] == "no-store", path  # payments, payloads, keys
        assert "Strict-Transport-Security" not in resp.headers  # not outside production
        finder = InlineFinder()
        finder.feed(resp.get_data(as_text=True))
        assert finder.found == [], (path, finder.found)
    for json_path in ("/dashboard.json", f"/bulk/{op.id}/progress"):
        assert admin_console.get(json_path).headers["Cache-Control"] == "no-store"


def test_the_sign_in_page_and_refusals_have_them_too(admin_console: Console) -> None:
    anonymous = admin_console.client.application.test_client()
    for resp, path in ((anonymous.get("/login"), "/login"),
                       (anonymous.post("/logout"), "POST /logout"),
                       (admin_console.client.post("/items/1/reprocess"), "no CSRF token")):
        assert_console_headers(resp, path)


def test_no_template_has_inline_script_or_handlers() -> None:
    for template in sorted(TEMPLATES.rglob("*.html")):
        finder = InlineFinder()
        finder.feed(template.read_text())
        assert finder.found == [], (template.name, finder.found)


@pytest.fixture
def production(settings: Settings) -> Runtime:
    strong = {name: secrets.token_urlsafe(48) for name in (
        "secret_key", "gateway_access_token", "webhook_secret", "salesforce_client_secret")}
    # Production refuses the emulators' addresses too: the pages never call them here.
    return Runtime(replace(settings, env="production", gateway_url="https://api.gocardless.com",
                           salesforce_login_url="https://acme.my.salesforce.com", **strong))


def test_production_pages_ask_for_https_from_now_on(production: Runtime) -> None:
    page = create_app(runtime=production).test_client().get("/login")
    hsts = page.headers["Strict-Transport-Security"]
    assert hsts.startswith("max-age=") and int(hsts.split("=")[1].split(";")[0]) >= 15552000

