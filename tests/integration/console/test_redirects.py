"""The console's redirects stay on this site however the target is spelled (the targets
themselves are judged against the WHATWG URL parser in tests/unit/test_redirects.py)."""

from __future__ import annotations

from urllib.parse import parse_qs

import ada_url
import pytest
from flask.testing import FlaskClient

from app.console.redirects import local_path
from app.runtime import Runtime
from tests.integration.console.support import PASSWORD, TOKEN, Console, failed_item, users
from tests.unit.test_redirects import HOSTILE

TARGETS = [t for t in HOSTILE if t]


@pytest.mark.parametrize("target", TARGETS, ids=repr)
def test_signing_in_never_sends_the_browser_off_site(client: FlaskClient, rt: Runtime,
                                                    target: str) -> None:
    users(rt)
    page = client.get("/login", query_string={"next": target})
    assert page.status_code in (200, 400)  # 400: a NUL is refused before any page
    assert target not in page.get_data(as_text=True)  # not even carried into the form
    token = TOKEN.search(client.get("/login").get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    resp = client.post("/login", data={"name": "alice", "password": PASSWORD, "next": target,
                                       "csrf_token": token})
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    again = client.get("/login", query_string={"next": target})  # signed in already
    assert again.headers.get("Location", "/") == "/"


def test_the_way_back_after_sign_in_is_kept(client: FlaskClient, rt: Runtime) -> None:
    users(rt)
    first = client.get("/items?status=failed&kind=Payment")
    assert first.headers["Location"] == "/login?next=/items?status%3Dfailed%26kind%3DPayment"
    page = client.get(first.headers["Location"]).get_data(as_text=True)
    token = TOKEN.search(page).group(1)  # type: ignore[union-attr]
    resp = client.post("/login", data={"name": "alice", "password": PASSWORD, "csrf_token": token,
                                       "next": "/items?status=failed&kind=Payment"})
    assert resp.headers["Location"] == "/items?status=failed&kind=Payment"


@pytest.mark.parametrize("path", ["/history/Payment/%2F%2Fevil.example",
                                  "/history/Payment/%5Cevil.example",
                                  "/history/Payment/%09%2Fevil.example", "//evil.example/x"])
def test_a_strange_path_never_leads_off_site(client: FlaskClient, rt: Runtime,
                                             path: str) -> None:
    """Whatever answers (the sign-in redirect, Werkzeug's merged slashes, a 404), the
    browser stays here, and a target carried into the sign-in page is a path of ours."""
    users(rt)
    resp = client.get(path)
    location = resp.headers.get("Location")
    if location is None:
        return
    resolved = ada_url.URL(ada_url.join_url("http://localhost/", location))
    assert resolved.host == "localhost", location
    carried = parse_qs(resolved.search.lstrip("?")).get("next", [None])[0]
    assert carried is None or local_path(carried) == carried, location


def test_a_refused_action_goes_back_only_to_a_page_of_this_site(admin_console: Console,
                                                                rt: Runtime) -> None:
    item_id = failed_item(rt)
    for referrer, expected in (("https://evil.example/phish", "/"),
                               ("http://localhost//evil.example", "/"),
                               (f"http://localhost/items/{item_id}", f"/items/{item_id}")):
        resp = admin_console.post("/keys/999/revoke", headers={"Referer": referrer})
        assert resp.status_code == 302 and resp.headers["Location"] == expected, referrer
