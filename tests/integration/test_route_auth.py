"""The route walk: every route of the app (read from ``app.url_map``, so a new one cannot be
forgotten) tried by every kind of caller, against one declared table of who may pass.

Callers: anonymous; API keys of the trigger, operations and admin roles (bearer, for the
JSON API); console sessions of an operations and an admin user (signed cookies with their
CSRF token, for the console). Each caller is tried on every route, so the table also says
that an API key opens no console page and a console session opens no API route.

A route missing from the table, or a table row with no route, fails the test. The table of
outcomes is printed (``pytest -rA`` shows it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from app.runtime import Runtime
from app.web import create_app
from tests.integration.console.support import TOKEN, Console, key, users

CALLERS = ("anonymous", "trigger key", "operations key", "admin key", "operations session",
           "admin session")
PASS, LOGIN = "pass", "login"  # pass: the route's own answer (200, 404, 422...), not 5xx
Policy = dict[str, object]


def api(*roles: str) -> Policy:
    """A JSON API route for keys of these roles; sessions are no credentials there."""
    return {"anonymous": 401, "operations session": 401, "admin session": 401,
            **{f"{role} key": PASS if role in roles else 403
               for role in ("trigger", "operations", "admin")}}


def console(*roles: str) -> Policy:
    """A console route for sessions of these roles; keys open no page."""
    return {"anonymous": LOGIN, "trigger key": LOGIN, "operations key": LOGIN,
            "admin key": LOGIN, **{f"{role} session": PASS if role in roles else 403
                                   for role in ("operations", "admin")}}


def every(outcome: object) -> Policy:
    return dict.fromkeys(CALLERS, outcome)


PUBLIC = every(PASS)
SIGNATURE_ONLY = every(498)  # no key or session replaces the webhook signature
API_SENDERS, API_READERS, API_ADMIN = api("trigger", "admin"), api("operations", "admin"), \
    api("admin")
READ, ADMIN = console("operations", "admin"), console("admin")

# Who may pass, per route. Keep it in step with the routes: the walk fails otherwise.
ROUTES: dict[tuple[str, str], Policy] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("GET", "/api/v1/docs"): PUBLIC,
    ("GET", "/api/v1/docs/assets/<path:name>"): PUBLIC,
    ("POST", "/webhooks/<string:endpoint>"): SIGNATURE_ONLY,
    # Salesforce's Outbound Messages carry no key or session: whoever calls, a body that is
    # no SOAP notification is refused (a foreign org's: test_outbound_messages.py).
    ("POST", "/salesforce/outbound"): PUBLIC,
    # The CRM's triggers send changes and bank details and read what became of a record.
    ("POST", "/api/v1/queue"): API_SENDERS,
    ("POST", "/api/v1/bank-accounts"): API_SENDERS,
    ("GET", "/api/v1/bank-accounts/modulus"): API_SENDERS,
    ("GET", "/api/v1/records/<string:obj>/<string:record_id>/history"):
        api("trigger", "operations", "admin"),
    # Operations read; admins change.
    ("GET", "/api/v1/queue-items"): API_READERS,
    ("GET", "/api/v1/queue-items/<int:item_id>"): API_READERS,
    ("PATCH", "/api/v1/queue-items/<int:item_id>"): API_ADMIN,
    ("POST", "/api/v1/queue-items/<int:item_id>/discard"): API_ADMIN,
    ("POST", "/api/v1/queue-items/<int:item_id>/reprocess"): API_ADMIN,
    ("POST", "/api/v1/queue-items/reprocess"): API_ADMIN,
    ("GET", "/api/v1/webhook-events"): API_READERS,
    ("GET", "/api/v1/webhook-events/<int:row_id>"): API_READERS,
    ("POST", "/api/v1/webhook-events/<int:row_id>/discard"): API_ADMIN,
    ("POST", "/api/v1/webhook-events/<int:row_id>/reprocess"): API_ADMIN,
    ("POST", "/api/v1/webhook-events/reprocess"): API_ADMIN,
    ("GET", "/api/v1/records/<string:obj>/<string:record_id>/timeline"): API_READERS,
    ("GET", "/api/v1/dashboard"): API_READERS,
    ("GET", "/api/v1/history"): API_READERS,
    ("GET", "/api/v1/audit-log"): API_READERS,
    ("GET", "/api/v1/alerts"): API_READERS,
    ("GET", "/api/v1/bulk-operations"): API_READERS,
    ("GET", "/api/v1/bulk-operations/<int:op_id>"): API_READERS,
    ("POST", "/api/v1/bulk-operations"): API_ADMIN,
    ("GET", "/api/v1/reconcile-runs"): API_READERS,
    ("GET", "/api/v1/reconcile-runs/<int:run_id>"): API_READERS,
    ("GET", "/api/v1/reconcile-runs/<int:run_id>/differences"): API_READERS,
    ("POST", "/api/v1/reconcile-runs"): API_ADMIN,
    ("POST", "/api/v1/reconcile-runs/<int:run_id>/repair"): API_ADMIN,
    ("POST", "/api/v1/reconcile-differences/<int:diff_id>/repair"): API_ADMIN,
    # Credentials: admins only, even to read which exist.
    ("GET", "/api/v1/api-keys"): API_ADMIN,
    ("POST", "/api/v1/api-keys"): API_ADMIN,
    ("POST", "/api/v1/api-keys/<int:key_id>/revoke"): API_ADMIN,
    ("GET", "/api/v1/webhook-secrets"): API_ADMIN,
    # The console. Anyone may try to sign in (the walk sends no name: 401) or sign out
    # (a session ends; either way the answer is the sign-in page).
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): every(401),
    ("POST", "/logout"): every(LOGIN),
    ("GET", "/console-static/<path:filename>"): PUBLIC,
    ("GET", "/"): READ,
    ("GET", "/dashboard/panel"): READ,
    ("GET", "/dashboard.json"): READ,
    ("GET", "/items"): READ,
    ("GET", "/items/<int:item_id>"): READ,
    ("GET", "/items/<int:item_id>/edit"): ADMIN,
    ("POST", "/items/<int:item_id>/edit"): ADMIN,
    ("POST", "/items/<int:item_id>/discard"): ADMIN,
    ("POST", "/items/<int:item_id>/reprocess"): ADMIN,
    ("GET", "/events"): READ,
    ("GET", "/events/<int:row_id>"): READ,
    ("POST", "/events/<int:row_id>/discard"): ADMIN,
    ("POST", "/events/<int:row_id>/reprocess"): ADMIN,
    ("GET", "/history"): READ,
    ("GET", "/history/<string:obj>/<string:record_id>"): READ,
    ("GET", "/bulk"): READ,
    ("POST", "/bulk"): ADMIN,
    ("GET", "/bulk/<int:op_id>"): READ,
    ("GET", "/bulk/<int:op_id>/progress"): READ,
    ("GET", "/reconcile"): READ,
    ("GET", "/reconcile/<int:run_id>"): READ,
    ("GET", "/reconcile/<int:run_id>/progress"): READ,
    ("GET", "/reconcile/<int:run_id>/differences.csv"): READ,
    ("POST", "/reconcile/start"): ADMIN,
    ("POST", "/reconcile/<int:run_id>/repair"): ADMIN,
    ("POST", "/reconcile/differences/<int:diff_id>/repair"): ADMIN,
    ("GET", "/audit"): READ,
    ("GET", "/alerts"): READ,
    ("GET", "/settings"): READ,
    # API keys and the webhook secrets' state: admins only, as in the API.
    ("GET", "/keys"): ADMIN,
    ("POST", "/keys"): ADMIN,
    ("POST", "/keys/<int:key_id>/revoke"): ADMIN,
}
# Values for the URL's variables: rows that do not exist (nothing is really changed), and
# files that do.
VALUES = {"obj": "Payment", "record_id": "PM000001", "endpoint": "gocardless",
          "filename": "console.css", "name": "swagger-ui.css"}


@dataclass
class Caller:
    name: str
    client: FlaskClient
    headers: dict[str, str]
    token: str  # the CSRF token of the caller's (possibly anonymous) console session

    def call(self, method: str, url: str, rule: Rule) -> TestResponse:
        if rule.rule.startswith("/webhooks/"):
            return self.client.open(url, method=method, json={"events": []},
                                    headers=self.headers)
        if rule.endpoint.startswith("console."):
            return self.client.open(url, method=method, headers=self.headers,
                                    data={"csrf_token": self.token} if method != "GET" else None)
        return self.client.open(url, method=method, json={}, headers=self.headers)


def _callers(app: Flask, rt: Runtime) -> Iterator[Caller]:
    users(rt)
    for name in CALLERS:
        client = app.test_client()
        headers = key(rt, name.split()[0], f"walk-{name}") if name.endswith("key") else {}
        if name.endswith("session"):
            person = Console(client)
            assert person.sign_in({"operations": "otto", "admin": "alice"}[
                name.split()[0]]).status_code == 302
            token = person.token
        else:
            token = TOKEN.search(client.get("/login").get_data(as_text=True)).group(1)  # type: ignore[union-attr]
        yield Caller(name, client, headers, token)


def outcome(resp: TestResponse) -> object:
    if resp.status_code in (301, 302, 303, 307, 308) and urlsplit(
            resp.headers.get("Location", "")).path == "/login":
        return LOGIN
    if resp.status_code in (401, 403, 498):
        return resp.status_code
    return "5xx" if resp.status_code >= 500 else PASS


def routes(app: Flask) -> list[tuple[str, Rule]]:
    out = [(method, rule) for rule in app.url_map.iter_rules()
           for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    # Signing out ends the walker's session: last.
    return sorted(out, key=lambda r: (r[1].endpoint == "console.logout", r[1].rule, r[0]))


def concrete(rule: Rule) -> str:
    return re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: "999999" if m.group(1) == "int"
                  else VALUES[m.group(2)], rule.rule)


def test_every_route_against_the_declared_table(rt: Runtime) -> None:
    app = create_app(runtime=rt)
    walked = routes(app)
    declared = set(ROUTES)
    present = {(method, rule.rule) for method, rule in walked}
    assert present - declared == set(), "routes missing from the table"
    assert declared - present == set(), "table rows without a route"
    callers = list(_callers(app, rt))
    lines, problems = [], []
    for method, rule in walked:
        expected = ROUTES[(method, rule.rule)]
        cells = []
        for caller in callers:
            resp = caller.call(method, concrete(rule), rule)
            got = outcome(resp)
            shown = resp.status_code if got == PASS else got
            if got != expected[caller.name]:
                problems.append(f"{caller.name} {method} {rule.rule}: {resp.status_code} "
                                f"({got}), expected {expected[caller.name]}")
                shown = f"!{shown}"
            cells.append(str(shown))
        lines.append((f"{method} {rule.rule}", cells))
    print_table(lines)
    assert problems == []


def print_table(lines: list[tuple[str, list[str]]]) -> None:
    width = max(len(route) for route, _ in lines)
    heads = ["anon", "trigger", "ops key", "admin key", "ops sess", "admin sess"]
    print(f"\nroute walk ({len(lines)} routes; login = sent to sign in, ! = unexpected)")
    print(f"{'route':<{width}}  " + "  ".join(f"{h:>10}" for h in heads))
    for route, cells in lines:
        print(f"{route:<{width}}  " + "  ".join(f"{c:>10}" for c in cells))


@pytest.mark.parametrize("path", ["/keys", "/settings"])
def test_only_admins_see_the_state_of_the_webhook_secrets(rt: Runtime, path: str) -> None:
    """The API lists them for admins only; the console must not show them to operations."""
    app = create_app(runtime=rt)
    callers = {c.name: c for c in _callers(app, rt)}
    admin_page = callers["admin session"].client.get("/keys").get_data(as_text=True)
    assert "GOCARDLESS_WEBHOOK_SECRET" in admin_page
    ops = callers["operations session"].client.get(path)
    assert "GOCARDLESS_WEBHOOK_SECRET" not in ops.get_data(as_text=True)
    assert callers["operations key"].client.get(
        "/api/v1/webhook-secrets", headers=callers["operations key"].headers).status_code == 403
