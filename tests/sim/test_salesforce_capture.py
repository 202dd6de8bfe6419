"""The emulator's change-capture semantics: who changed a record, SystemModstamp, queryAll
with IsDeleted, datetime comparison in SOQL and the late-visible transaction."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from simple_salesforce import Salesforce

from sim.salesforce import SimConfig, start_in_thread

CLIENT = {"client_id": "paybridge", "client_secret": "paybridge-dev-secret"}
USER = {"username": "demo@example.com", "password": "demo"}


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[str, requests.Session]]:
    base, ca, stop = start_in_thread(SimConfig(port=0))
    http = requests.Session()
    http.trust_env = False
    http.verify = ca
    yield base, http
    stop()


def _login(sim: tuple[str, requests.Session], form: dict[str, str]) -> tuple[Salesforce, str]:
    base, http = sim
    token = http.post(f"{base}/services/oauth2/token", data=form).json()
    sf = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"],
                    session=http, version="59.0")
    return sf, token["id"].rsplit("/", 1)[1]


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_writes_carry_who_and_when(sim: tuple[str, requests.Session]) -> None:
    user, user_id = _login(sim, {"grant_type": "password", **USER})
    integration, integration_id = _login(sim, {"grant_type": "client_credentials", **CLIENT})
    record_id = user.Contact.create({"LastName": "Who"})["id"]
    first = user.Contact.get(record_id)
    assert first["CreatedById"] == first["LastModifiedById"] == user_id
    integration.Contact.update(record_id, {"Gateway_Id__c": "CU1"})
    second = user.Contact.get(record_id)
    assert second["LastModifiedById"] == integration_id
    assert second["CreatedById"] == user_id
    assert _stamp(second["SystemModstamp"]) >= _stamp(first["SystemModstamp"])


def test_query_all_returns_deletes_and_compares_datetimes(
        sim: tuple[str, requests.Session]) -> None:
    user, _ = _login(sim, {"grant_type": "password", **USER})
    since = (datetime.now(UTC) - timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    record_id = user.Contact.create({"LastName": "Gone"})["id"]
    user.Contact.delete(record_id)
    soql = ("SELECT Id, IsDeleted FROM Contact WHERE SystemModstamp >= "  # noqa: S608
            f"{since} ORDER BY SystemModstamp")
    live = {r["Id"] for r in user.query(soql)["records"]}
    every = {r["Id"]: r["IsDeleted"] for r in user.query(soql, include_deleted=True)["records"]}
    assert record_id not in live
    assert every[record_id] is True
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert user.query(f"SELECT Id FROM Contact WHERE SystemModstamp > {later}")[  # noqa: S608
        "totalSize"] == 0


def test_late_visible_transaction_is_stamped_before_it_appears(
        sim: tuple[str, requests.Session]) -> None:
    base, http = sim
    user, _ = _login(sim, {"grant_type": "password", **USER})
    assert http.post(f"{base}/sim/late-visible", json={"seconds": 0}).status_code == 400
    assert http.post(f"{base}/sim/late-visible", json={"seconds": 120}).status_code == 200
    before = datetime.now(UTC)
    late_id = user.Contact.create({"LastName": "Late"})["id"]
    on_time_id = user.Contact.create({"LastName": "OnTime"})["id"]  # the switch is one-shot
    late = _stamp(user.Contact.get(late_id)["SystemModstamp"])
    assert before - timedelta(seconds=125) < late < before - timedelta(seconds=115)
    assert _stamp(user.Contact.get(on_time_id)["SystemModstamp"]) >= before - timedelta(seconds=1)
