"""Sign-in throttling, per user name and per client address, in the real Redis: wrong
passwords cost time, the cost decays, and nobody can lock an admin out for good."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from app.config import Settings
from app.runtime import Runtime
from app.web import create_app
from tests.conftest import clean
from tests.integration.console.support import PASSWORD, TOKEN, users

# Seconds per forgiven failure: long where a test counts tries (each costs a password hash,
# and time passing forgives), short where a test watches the decay.
SLOW, QUICK = 60.0, 3.0
WRONG = "not the password"
NAMES = ("alice", "otto", "nobody", "root", "carol")


def _app(settings: Settings, decay: float) -> Iterator[Flask]:
    runtime = Runtime(replace(settings, signin_failure_decay=decay))
    clean(runtime)
    users(runtime)
    yield create_app(runtime=runtime)
    runtime.db.dispose()


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    yield from _app(settings, SLOW)


@pytest.fixture
def quick(settings: Settings) -> Iterator[Flask]:
    yield from _app(settings, QUICK)


def attempt(app: Flask, name: str, password: str, address: str = "198.51.100.7",
            device: str | None = None) -> TestResponse:
    """One sign-in from a fresh browser at ``address`` (with a device cookie, if given)."""
    with app.test_client() as browser:
        env = {"REMOTE_ADDR": address}
        if device:
            browser.set_cookie("paybridge_device", device)
        page = browser.get("/login", environ_base=env).get_data(as_text=True)
        token = TOKEN.search(page).group(1)  # type: ignore[union-attr]
        resp = browser.post("/login", environ_base=env, data={
            "name": name, "password": password, "csrf_token": token})
        cookie = browser.get_cookie("paybridge_device")
        resp.device = cookie.value if cookie else None  # type: ignore[attr-defined]
        return resp


def throttled(resp: TestResponse) -> float:
    assert resp.status_code == 429, resp.status_code
    assert b"Too many failed sign-ins" in resp.data
    return float(resp.headers["Retry-After"])


def test_wrong_passwords_for_one_name_pause_that_name_from_anywhere(app: Flask) -> None:
    for n in range(5):
        assert attempt(app, "alice", WRONG, address=f"198.51.100.{n}").status_code == 401
    # The sixth try waits, even with the right password and from yet another address.
    assert 0 < throttled(attempt(app, "alice", PASSWORD, address="203.0.113.9")) <= SLOW
    assert attempt(app, "otto", PASSWORD).status_code == 302  # other names are not touched


def test_wrong_passwords_from_one_address_pause_that_address(app: Flask) -> None:
    for n in range(20):  # five names, four tries each: no name reaches its own limit
        name = NAMES[n % 5]
        resp = attempt(app, name, PASSWORD if name in ("nobody", "root") else WRONG,
                       address="198.51.100.7")
        assert resp.status_code == 401, (n, resp.status_code)
    throttled(attempt(app, "otto", PASSWORD, address="198.51.100.7"))
    assert attempt(app, "otto", PASSWORD, address="203.0.113.9").status_code == 302


def test_an_ipv6_network_counts_as_one_address(app: Flask) -> None:
    for n in range(20):
        attempt(app, NAMES[n % 5], WRONG, address=f"2001:db8:1:2::{n + 1:x}")
    throttled(attempt(app, "otto", PASSWORD, address="2001:db8:1:2:ffff::1"))
    assert attempt(app, "otto", PASSWORD, address="2001:db8:1:3::1").status_code == 302


def test_the_pause_decays_and_hammering_does_not_extend_it(quick: Flask) -> None:
    for _ in range(5):
        attempt(quick, "alice", WRONG)
    started = time.monotonic()
    for _ in range(30):  # refused tries are not guesses: they add nothing
        assert throttled(attempt(quick, "alice", WRONG)) <= math.ceil(QUICK)
    time.sleep(max(0.0, QUICK - (time.monotonic() - started)) + 0.1)
    assert attempt(quick, "alice", PASSWORD).status_code == 302


def test_one_forgiven_failure_per_decay_interval(quick: Flask) -> None:
    for _ in range(5):
        attempt(quick, "alice", WRONG)
    wait = throttled(attempt(quick, "alice", WRONG))
    time.sleep(wait + 0.1)
    assert attempt(quick, "alice", WRONG).status_code == 401  # one more guess, no more
    throttled(attempt(quick, "alice", WRONG))


def test_a_browser_that_signed_in_before_is_not_locked_out_by_others(app: Flask) -> None:
    """Someone hammering an admin's name slows every stranger down, not the admin's own
    browser: it carries a signed device cookie from its last successful sign-in."""
    first = attempt(app, "alice", PASSWORD, address="192.0.2.10")
    assert first.status_code == 302 and first.device
    for n in range(25):
        attempt(app, "alice", WRONG, address="192.0.2.10" if n % 2 else f"198.51.100.{n}")
    throttled(attempt(app, "alice", PASSWORD, address="192.0.2.10"))  # a stranger's browser
    assert attempt(app, "alice", PASSWORD, address="192.0.2.10",
                   device=first.device).status_code == 302
    # The device cookie is for that name only, and a forged one is worth nothing.
    throttled(attempt(app, "alice", PASSWORD, device="forged." + first.device))


def test_a_known_browser_still_has_a_limit_of_its_own(app: Flask) -> None:
    device = attempt(app, "alice", PASSWORD).device
    for _ in range(5):
        assert attempt(app, "alice", WRONG, device=device).status_code == 401
    throttled(attempt(app, "alice", PASSWORD, device=device))


def test_empty_forms_are_not_guesses(app: Flask) -> None:
    for _ in range(30):
        assert attempt(app, "alice", "").status_code == 401
    assert attempt(app, "alice", PASSWORD).status_code == 302
