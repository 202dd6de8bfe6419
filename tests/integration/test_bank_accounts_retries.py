"""The bank-account API under timeouts and retries, against both emulators over HTTP.

A deadline well inside gunicorn's worker timeout (504 when it runs out, nothing half-done
that a retry cannot finish), the Idempotency-Key (a retry never makes a second CRM record
or gateway account), and the disabling of an account that new details replace.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from app import idempotency
from app.auth import create_key
from app.config import ROOT, ConfigError, Settings
from app.deadline import deadline
from app.ratelimit import RateLimiter, Throttled
from app.runtime import Runtime
from app.supervisor import Ports, paybridge_procs
from app.web import create_app
from queues.models import QueueItem
from tests.integration import test_bank_accounts_api as bank_api
from tests.integration.test_bank_accounts_api import (
    ACCOUNT,
    OTHER_ACCOUNT,
    OTHER_SORT_CODE,
    SORT_CODE,
    Partners,
    body,
    count,
    known_customer,
    run_queue,
)

# That module's emulators (one pair for this module too) and the settings aimed at them.
partners = bank_api.partners
settings = bank_api.settings

URL = "/api/v1/bank-accounts"


def post(client: FlaskClient, headers: dict[str, str], payload: dict[str, Any],
         key: str | None = None) -> Any:
    extra = {idempotency.HEADER: key} if key else {}
    return client.post(URL, headers={**headers, **extra}, json=payload)


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
    # --print-config loads the app too: the development stack's settings let it.
    env = {**os.environ, "WEB_TIMEOUT": "41", "PORT": "8000", "PAYBRIDGE_ENV": "development",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    web = next(line.split(":", 1)[1] for line in (ROOT / "Procfile").read_text().splitlines()
               if line.startswith("web:"))
    procfile = ["sh", "-c", web.strip() + ' "$@"', "sh"]
    (supervised,) = [p.argv for p in paybridge_procs(Ports(8000, 8001, 8002), 0)
                     if p.name == "web"]
    for argv in (procfile, supervised):
        assert gunicorn_timeout(argv, env) == 41, shlex.join(argv)


def test_a_deadline_that_does_not_end_well_before_web_timeout_refuses_to_start() -> None:
    env = {"PAYBRIDGE_ENV": "test", "WEB_TIMEOUT": "30s"}
    with pytest.raises(ConfigError, match="BANK_ACCOUNT_DEADLINE.*WEB_TIMEOUT"):
        Settings.from_env({**env, "BANK_ACCOUNT_DEADLINE": "28s"}).validate()
    Settings.from_env({**env, "BANK_ACCOUNT_DEADLINE": "25s"}).validate()


@pytest.fixture
def hurried(rt: Runtime) -> Iterator[tuple[Runtime, FlaskClient]]:
    """A 1.5 s deadline, with partner timeouts (10 s) that only the deadline can cut."""
    short = Runtime(dataclasses.replace(rt.settings, bank_account_deadline=1.5,
                                        gateway_timeout=10.0, salesforce_timeout=10.0,
                                        lease_seconds=60.0))
    with create_app(runtime=short).test_client() as client:
        yield short, client
    short.db.dispose()


def test_a_slow_gateway_gets_504_in_time_and_the_retry_finishes_the_same_account(
        hurried: tuple[Runtime, FlaskClient], partners: Partners,
        trigger_headers: dict) -> None:
    rt, client = hurried
    who = known_customer(rt, partners)
    partners.gw("POST", "/sim/faults", json={"timeout_rate": 1.0, "timeout_sleep_s": 2.5})
    started = time.monotonic()
    resp = post(client, trigger_headers, body(who.contact_id), key="retry-after-504")
    elapsed = time.monotonic() - started
    assert resp.status_code == 504, resp.get_json()
    error = resp.get_json()["error"]
    assert error["code"] == "deadline_exceeded" and "Idempotency-Key" in error["message"]
    assert elapsed < 1.5 + 0.5
    created = error["details"]["created_record_id"]
    time.sleep(1.5)  # the slow gateway finishes what it was asked: the account exists now
    partners.gw("DELETE", "/sim/faults")
    assert len(partners.sent_bank_accounts()) == 1
    assert count(rt, QueueItem) == 0  # nothing recorded yet: the gateway never answered

    again = post(client, trigger_headers, body(who.contact_id), key="retry-after-504")
    assert again.status_code == 201, again.get_json()
    out = again.get_json()
    assert out["record_id"] == created
    assert out["gateway_id"] == partners.sent_bank_accounts()[0]["id"]
    assert "Idempotent-Replayed" not in again.headers  # it carried on, then answered
    one_of_each(rt, partners)
    replay = post(client, trigger_headers, body(who.contact_id), key="retry-after-504")
    assert replay.status_code == 201 and replay.get_json() == out
    assert replay.headers["Idempotent-Replayed"] == "true"
    one_of_each(rt, partners)


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
    resp = post(client, trigger_headers, body(who.contact_id), key="slow-crm")
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


# --- the Idempotency-Key ---------------------------------------------------------------------

def test_a_retry_with_the_same_key_gets_the_first_answer(
        client: FlaskClient, rt: Runtime, partners: Partners, trigger_headers: dict) -> None:
    who = known_customer(rt, partners)
    first = post(client, trigger_headers, body(who.contact_id), key="k-1")
    assert first.status_code == 201, first.get_json()
    again = post(client, trigger_headers, body(who.contact_id, sort_code="08-99-99"), key="k-1")
    assert again.status_code == 201 and again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    one_of_each(rt, partners)
    assert count(rt, QueueItem) == 1
    # A different request under the same key is refused, and does nothing.
    other = post(client, trigger_headers, body(who.contact_id, account_holder_name="B"),
                 key="k-1")
    assert other.status_code == 422
    assert other.get_json()["error"]["code"] == "idempotency_key_reused"
    one_of_each(rt, partners)


def test_keys_belong_to_one_api_key(client: FlaskClient, rt: Runtime, partners: Partners,
                                    trigger_headers: dict) -> None:
    first, second = known_customer(rt, partners), known_customer(rt, partners)
    with rt.db.transaction() as session:
        other_client = {"Authorization": f"Bearer {create_key(session, 'b', 'trigger')[1]}"}
    assert post(client, trigger_headers, body(first.contact_id), key="shared").status_code == 201
    resp = post(client, other_client, body(second.contact_id, sort_code=OTHER_SORT_CODE,
                                           account_number=OTHER_ACCOUNT), key="shared")
    assert resp.status_code == 201 and "Idempotent-Replayed" not in resp.headers
    assert resp.get_json()["customer_gateway_id"] == second.gateway_id


def test_an_answer_lost_after_the_gateway_acted_is_finished_by_the_retry(
        client: FlaskClient, rt: Runtime, partners: Partners, trigger_headers: dict) -> None:
    who = known_customer(rt, partners)
    partners.gw("POST", "/sim/faults", json={"fail_next": [{
        "status": 503, "count": 1, "path_prefix": "/customer_bank_accounts",
        "after_effect": True}]})
    lost = post(client, trigger_headers, body(who.contact_id), key="lost")
    assert lost.status_code == 503, lost.get_json()
    assert len(partners.sent_bank_accounts()) == 1  # made, but we never heard
    again = post(client, trigger_headers, body(who.contact_id), key="lost")
    assert again.status_code == 201, again.get_json()
    assert again.get_json()["record_id"] == lost.get_json()["error"]["details"][
        "created_record_id"]
    one_of_each(rt, partners)


@pytest.mark.parametrize("header", ["", "has space", "x" * 256, "é"])
def test_a_malformed_key_is_400_naming_the_header(client: FlaskClient, partners: Partners,
                                                  trigger_headers: dict, header: str) -> None:
    resp = client.post(URL, headers={**trigger_headers, idempotency.HEADER: header},
                       json=body("003X"))
    assert resp.status_code == 400
    assert idempotency.HEADER in resp.get_json()["error"]["details"]["fields"]
    assert partners.gateway_requests() == {}


def stored_rows(rt: Runtime) -> list[dict[str, Any]]:
    with rt.db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(
            "SELECT * FROM idempotency_keys")).mappings()]


def test_only_a_keyed_digest_is_stored_never_the_details(
        client: FlaskClient, rt: Runtime, partners: Partners, trigger_headers: dict) -> None:
    import hashlib

    who = known_customer(rt, partners)
    payload = body(who.contact_id)
    assert post(client, trigger_headers, payload, key="digest").status_code == 201
    (row,) = stored_rows(rt)
    text = json.dumps(row, default=str)
    assert ACCOUNT not in text and SORT_CODE not in text
    plain = json.dumps({**payload, "record_id": None}, sort_keys=True, separators=(",", ":"))
    assert row["request_digest"] != hashlib.sha256(plain.encode()).hexdigest()
    assert row["state"] == "done" and row["response_status"] == 201


def test_keys_expire_and_are_pruned(rt: Runtime, partners: Partners,
                                    trigger_headers: dict) -> None:
    brief = Runtime(dataclasses.replace(rt.settings, idempotency_key_ttl=0.5))
    client = create_app(runtime=brief).test_client()
    first, second = known_customer(brief, partners), known_customer(brief, partners)
    assert post(client, trigger_headers, body(first.contact_id), key="ttl").status_code == 201
    time.sleep(0.6)
    # Forgotten: the key now names a new request (it would be 422 while remembered).
    resp = post(client, trigger_headers, body(second.contact_id), key="ttl")
    assert resp.status_code == 201 and "Idempotent-Replayed" not in resp.headers
    time.sleep(0.6)
    assert idempotency.prune(brief.db) == 1 and stored_rows(brief) == []
    brief.db.dispose()


def test_simultaneous_requests_with_one_key_create_one_account(
        rt: Runtime, partners: Partners, trigger_headers: dict) -> None:
    """Four at once, through two apps (as two gunicorn workers): one does the work."""
    who = known_customer(rt, partners)
    partners.gw("POST", "/sim/faults", json={"latency_ms": 700})
    runtimes = [Runtime(rt.settings), Runtime(rt.settings)]
    clients = [create_app(runtime=r).test_client() for r in runtimes]
    start = threading.Barrier(4)
    answers: list[Any] = []

    def send(client: FlaskClient) -> None:
        start.wait()
        answers.append(post(client, trigger_headers, body(who.contact_id), key="together"))

    threads = [threading.Thread(target=send, args=(clients[n % 2],)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    partners.gw("DELETE", "/sim/faults")
    codes = sorted(a.status_code for a in answers)
    assert codes == [201, 409, 409, 409], [a.get_json() for a in answers]
    for waiting in (a for a in answers if a.status_code == 409):
        assert waiting.get_json()["error"]["code"] == "idempotency_key_in_flight"
        assert int(waiting.headers["Retry-After"]) >= 1
    done = next(a for a in answers if a.status_code == 201).get_json()
    replay = post(clients[1], trigger_headers, body(who.contact_id), key="together")
    assert replay.status_code == 201 and replay.get_json() == done
    one_of_each(rt, partners)
    assert partners.gateway_requests()["POST /customer_bank_accounts"] == {"201": 1}
    for r in runtimes:
        r.db.dispose()


def test_a_claim_whose_holder_died_is_taken_over_and_the_late_holder_is_fenced(
        rt: Runtime) -> None:
    def take() -> idempotency.Claim | idempotency.Stored:
        return idempotency.claim(rt.db, scope="test", api_key_id=1, key="crash",
                                 request_digest="d" * 64, lease_seconds=0.3, ttl_seconds=60,
                                 progress={"gateway_key": "g1"})

    first = take()
    assert isinstance(first, idempotency.Claim)
    first = idempotency.note_progress(rt.db, first, record_id="a0B1")
    with pytest.raises(idempotency.KeyInFlight):
        take()
    time.sleep(0.35)  # its worker was killed: the lease runs out
    second = take()
    assert isinstance(second, idempotency.Claim) and second.token == first.token + 1
    assert second.progress == {"gateway_key": "g1", "record_id": "a0B1"}  # carries on
    with pytest.raises(idempotency.KeyInFlight), rt.db.transaction() as session:
        idempotency.finish(session, first, 201, {"late": True})
    with rt.db.transaction() as session:
        idempotency.finish(session, second, 201, {"ok": True})
    assert take() == idempotency.Stored(201, {"ok": True})


# --- new details replace an account: the old one is disabled -----------------------------------

def history(client: FlaskClient, headers: dict[str, str], record_id: str) -> list[str]:
    resp = client.get(f"/api/v1/records/BankAccount/{record_id}/history", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return [entry["cause"] or "" for entry in resp.get_json()["history"]]


def test_new_details_disable_the_replaced_account_and_the_history_says_so(
        client: FlaskClient, rt: Runtime, partners: Partners, trigger_headers: dict,
        admin_headers: dict) -> None:
    who = known_customer(rt, partners)
    first = post(client, trigger_headers, body(who.contact_id)).get_json()
    run_queue(rt)
    old = first["gateway_id"]
    replaced = post(client, trigger_headers, body(
        who.contact_id, record_id=first["record_id"], sort_code=OTHER_SORT_CODE,
        account_number=OTHER_ACCOUNT))
    assert replaced.status_code == 201, replaced.get_json()
    new = replaced.get_json()["gateway_id"]
    assert new != old
    # The first try to disable fails (the gateway is down); the row keeps it and retries.
    partners.gw("POST", "/sim/faults", json={"fail_next": [{
        "status": 503, "count": 1, "path_prefix": f"/customer_bank_accounts/{old}/actions"}]})
    run_queue(rt)  # the write-back of the new account
    run_queue(rt)  # then the disabling, which fails once
    with rt.db.transaction() as session:
        (waiting,) = session.scalars(sa.select(QueueItem))
        assert waiting.operation == "delete" and waiting.gateway_id == old
        assert waiting.attempts == 1 and waiting.status == "pending"
    time.sleep(0.3)  # the retry schedule's first interval
    run_queue(rt)
    accounts = {a["id"]: a for a in partners.sent_bank_accounts()}
    assert accounts[old]["enabled"] is False and accounts[new]["enabled"] is True
    assert partners.gateway_requests()["POST /customer_bank_accounts/{id}/actions/disable"] == {
        "503": 1, "200": 1}
    assert count(rt, QueueItem) == 0
    (record,) = partners.crm_records("Bank_Account__c")
    assert record["Gateway_Id__c"] == new and record["Status__c"] == "Active"
    assert record["Account_Number_Ending__c"] == OTHER_ACCOUNT[-2:]
    causes = history(client, admin_headers, first["record_id"])
    assert any(f"replaces {old}, which is queued to be disabled" in c for c in causes), causes
    assert f"replaced customer_bank_accounts {old} disabled at the gateway" in causes
