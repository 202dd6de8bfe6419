"""Who may see and do what in the console: anonymous visitors get only the sign-in page,
operations users read but change nothing, admins act; every form needs its CSRF token."""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.audit import AuditEntry
from app.runtime import Runtime
from app.users import User, set_disabled
from queues.models import QueueItem
from tests.integration.console.support import (
    PASSWORD,
    Console,
    failed_event,
    failed_item,
    users,
)

PUBLIC = {"console.login", "console.static"}


def console_rules(app: Flask) -> list[tuple[str, str, str]]:
    """(method, concrete path, endpoint) for every console route."""
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("console."):
            continue
        path = re.sub(r"<(?:[a-z]+:)?(\w+)>", lambda m: {
            "obj": "Payment", "record_id": "PM1", "filename": "console.css"}.get(m.group(1), "1"),
            rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((method, path, rule.endpoint))
    return out


def test_anonymous_visitors_get_nothing_but_the_sign_in_page(client: FlaskClient,
                                                             rt: Runtime) -> None:
    failed_item(rt)
    rules = console_rules(client.application)
    assert len(rules) > 20
    for method, path, endpoint in rules:
        if endpoint in PUBLIC:
            continue
        resp = client.open(path, method=method, data={"reason": "x", "fields": "{}"})
        assert resp.status_code == 302, (method, path, resp.status_code)
        assert resp.headers["Location"].startswith("/login"), (method, path)
        assert b"003FAIL" not in resp.data
    page = client.get("/login")
    assert page.status_code == 200 and b"Sign in" in page.data
    assert client.get("/console-static/console.css").status_code == 200


def test_operations_users_cannot_change_anything(ops_console: Console, rt: Runtime) -> None:
    item_id, event_id = failed_item(rt), failed_event(rt)
    posts = [(p, e) for m, p, e in console_rules(ops_console.client.application)
             if m == "POST" and e not in ("console.login", "console.logout")]
    assert {e for _, e in posts} >= {"console.item_reprocess", "console.item_edit",
                                     "console.item_discard", "console.event_reprocess",
                                     "console.event_discard", "console.bulk_start",
                                     "console.api_key_create", "console.api_key_revoke"}
    for path, endpoint in posts:
        path = path.replace("/items/1", f"/items/{item_id}").replace(
            "/events/1", f"/events/{event_id}")
        resp = ops_console.post(path, {"reason": "no", "fields": "{}", "queue": "api",
                                       "action": "reprocess", "name": "k", "role": "admin"})
        assert resp.status_code == 403, (endpoint, path, resp.status_code)
    assert ops_console.get("/keys").status_code == 403
    with rt.db.transaction() as session:
        assert session.get(QueueItem, item_id).status == "failed"
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 0


def test_operations_users_read_every_page(ops_console: Console, rt: Runtime) -> None:
    item_id, event_id = failed_item(rt), failed_event(rt)
    for path in ("/", "/dashboard/panel", "/dashboard.json", "/items", f"/items/{item_id}",
                 "/events", f"/events/{event_id}", "/history?q=nothing", "/audit", "/bulk",
                 "/alerts", "/settings"):
        resp = ops_console.get(path)
        assert resp.status_code == 200, path
    detail = ops_console.get(f"/items/{item_id}").get_data(as_text=True)
    assert "Read-only" in detail and 'id="reprocess"' not in detail


def test_admin_pages_and_forms_need_the_csrf_token(admin_console: Console, rt: Runtime) -> None:
    item_id = failed_item(rt)
    no_token = admin_console.client.post(f"/items/{item_id}/reprocess")
    assert no_token.status_code == 400 and b"expired" in no_token.data
    ok = admin_console.post(f"/items/{item_id}/reprocess")
    assert ok.status_code == 302
    with rt.db.transaction() as session:
        assert session.get(QueueItem, item_id).status == "pending"


def test_sign_in_refusals_sign_out_and_disabled_users(client: FlaskClient, rt: Runtime) -> None:
    users(rt)
    console = Console(client)
    assert console.sign_in("alice", "wrong password!").status_code == 401
    assert console.sign_in("nobody", PASSWORD).status_code == 401
    resp = console.sign_in("alice")
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    assert console.post("/logout").status_code == 302
    assert client.get("/").status_code == 302
    console.sign_in("alice")
    with rt.db.transaction() as session:
        set_disabled(session, "alice", True)
    assert client.get("/").status_code == 302  # the open session ends at once


def test_sign_in_never_redirects_off_site(client: FlaskClient, rt: Runtime) -> None:
    users(rt)
    page = client.get("/login?next=//evil.example/x")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    resp = client.post("/login", data={"name": "alice", "password": PASSWORD,
                                       "next": "//evil.example/x", "csrf_token": token.group(1)})
    assert resp.headers["Location"] == "/"


def test_users_are_created_from_the_command_line(rt: Runtime, database_url: str,
                                                 client: FlaskClient) -> None:
    from click.testing import CliRunner

    from app.cli import cli

    runner = CliRunner(env={"DATABASE_URL": database_url, "PAYBRIDGE_ENV": "test"})
    made = runner.invoke(cli, ["users", "create", "carol", "--role", "operations",
                                "--password-stdin"], input=f"{PASSWORD}\n")
    assert made.exit_code == 0, made.output
    assert PASSWORD not in made.output
    short = runner.invoke(cli, ["users", "create", "dave", "--role", "admin",
                                 "--password-stdin"], input="short\n")
    assert short.exit_code != 0 and "at least" in short.output
    listed = runner.invoke(cli, ["users", "list"])
    assert "carol\toperations\tactive" in listed.output
    with rt.db.transaction() as session:
        stored = session.scalar(sa.select(User.password_hash).where(User.name == "carol"))
    assert stored.startswith("scrypt:") and PASSWORD not in stored
    assert Console(client).sign_in("carol").status_code == 302
