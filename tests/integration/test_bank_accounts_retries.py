"""The bank-account API under timeouts and retries, against both emulators over HTTP.

A deadline well inside gunicorn's worker timeout (504 when it runs out, nothing half-done
that a retry cannot finish).
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.config import ROOT, Settings
from app.deadline import deadline
from app.ratelimit import RateLimiter, Throttled
from app.runtime import Runtime
from app.supervisor import Ports, paybridge_procs
from app.web import create_app
from tests.integration import test_bank_accounts_api as bank_api
from tests.integration.test_bank_accounts_api import (
    Partners,
    body,
    known_customer,
)

# That module's emulators (one pair for this module too) and the settings aimed at them.
partners = bank_api.partners
settings = bank_api.settings

URL = "/api/v1/bank-accounts"


def post(client: FlaskClient, headers: dict[str, str], payload: dict[str, Any]) -> Any:
    return client.post(URL, headers=headers, json=payload)


def one_of_each(rt: Runtime, partners: Partners) -> None:
    """Exactly one CRM record and one gateway account exist."""
    assert len(partners.crm_records("Bank_Account__c")) == 1
    assert len(partners.sent_bank_accounts()) == 1


# --- the deadline and gunicorn's timeout -------------------------------------------------------

def gunicorn_timeout(argv: list[str], env: dict[str, str]) -> int:
    out = subprocess.run([*argv, "--print-config"], env=env, capture_output=True, text=True,
                         timeout=60, check=True, cwd=ROOT).stdout
    return int(next(line.split("=")[1] for line in out.splitlines()
                    if line.startswith("timeout ")))


def test_every_way_of_starting_gunicorn_uses_web_timeout() -> None:
    env = {**os.environ, "WEB_TIMEOUT": "41", "PORT": "8000",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    web = next(line.split(":", 1)[1] for line in (ROOT / "Procfile").read_text().splitlines()
               if line.startswith("web:"))
    procfile = ["sh", "-c", web.strip() + ' "$@"', "sh"]
    (supervised,) = [p.argv for p in paybridge_procs(Ports(8000, 8001, 8002), 0)
                     if p.name == "web"]
    for argv in (procfile, supervised):
        assert gunicorn_timeout(argv, env) == 41, shlex.join(argv)


def test_a_deadline_that_does_not_end_well_before_web_timeout_refuses_to_start() -> None:
    with pytest.raises(RuntimeError, match="BANK_ACCOUNT_DEADLINE.*WEB_TIMEOUT"):
        Settings.from_env({"BANK_ACCOUNT_DEADLINE": "28s", "WEB_TIMEOUT": "30s"}).validate()
    Settings.from_env({"BANK_ACCOUNT_DEADLINE": "25s", "WEB_TIMEOUT": "30s"}).validate()


@pytest.fixture
def hurried(rt: Runtime) -> Iterator[tuple[Runtime, FlaskClient]]:
    """A 1.5 s deadline, with partner timeouts (10 s) that only the deadline can cut."""
    short = Runtime(dataclasses.replace(rt.settings, bank_account_deadline=1.5,
                                        gateway_timeout=10.0, salesforce_timeout=10.0,
                                        lease_seconds=60.0))
    with create_app(runtime=short).test_client() as client:
        yield short, client
    short.db.dispose()


def test_without_a_key_the_retry_names_the_record_and_links_the_same_account(
        hurried: tuple[Runtime, FlaskClient], partners: Partners,
        trigger_headers: dict) -> None:
    rt, client = hurried
    who = known_customer(rt, partners)
    partners.gw("POST", "/sim/faults", json={"timeout_rate": 1.0, "timeout_sleep_s": 2.5})
    resp = post(client, trigger_headers, body(who.contact_id))
    assert resp.status_code == 504, resp.get_json()
    created = resp.get_json()["error"]["details"]["created_record_id"]
    time.sleep(1.5)
    partners.gw("DELETE", "/sim/faults")
    again = post(client, trigger_headers, body(who.contact_id, record_id=created))
    assert again.status_code == 201, again.get_json()
    assert again.get_json()["gateway_id"] == partners.sent_bank_accounts()[0]["id"]
    one_of_each(rt, partners)


def test_a_slow_crm_gets_504_and_nothing_reaches_the_gateway(
        hurried: tuple[Runtime, FlaskClient], partners: Partners,
        trigger_headers: dict) -> None:
    rt, client = hurried
    who = known_customer(rt, partners)
    rt.crm.login()  # the token is not what this test is about
    partners.sf("POST", "/sim/faults", json={"latency_ms": 2500})
    started = time.monotonic()
    resp = post(client, trigger_headers, body(who.contact_id))
    assert time.monotonic() - started < 1.5 + 0.5
    partners.sf("DELETE", "/sim/faults")
    assert resp.status_code == 504, resp.get_json()
    assert resp.get_json()["error"]["code"] == "deadline_exceeded"
    assert partners.sent_bank_accounts() == []


def test_a_rate_limiter_never_sleeps_past_the_deadline(rt: Runtime) -> None:
    limiter = RateLimiter(rt.redis, "deadline-test", 1000, 60.0, max_wait=5.0)
    limiter.block(3.0)
    started = time.monotonic()
    with deadline(1.0), pytest.raises(Throttled):
        limiter.acquire()
    assert time.monotonic() - started < 0.5
