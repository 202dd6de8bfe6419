"""The Salesforce allocation, shared by every caller through Redis: paced, and paused before
the reserve left for the org's other integrations is touched."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from app.clients.crm_allowance import CrmAllowance
from app.clients.errors import PausedError
from app.clients.salesforce import SalesforceClient
from app.crm_pause import CrmPause
from app.runtime import Runtime
from tests.salesforce_org import CLIENT_ID, CLIENT_SECRET, running_org


@pytest.fixture
def org() -> Iterator[tuple[str, str]]:
    """A fresh org per test (not the module's shared one): each test spends and limits the
    org's daily allocation."""
    with running_org() as found:
        yield found


def sim(org: tuple[str, str], method: str, path: str, **kw: object) -> dict:
    http = requests.Session()
    http.trust_env = False
    answer = http.request(method, org[0] + path, verify=org[1], timeout=30, **kw)
    answer.raise_for_status()
    return answer.json()


def client(rt: Runtime, org: tuple[str, str], **allowance: float) -> SalesforceClient:
    settings = {"reserve": 0.5, "window": 86400.0, "burst": 1.0, "pause_seconds": 60.0,
                **allowance}
    return SalesforceClient(org[0], CLIENT_ID, CLIENT_SECRET, ca_bundle=org[1],
                            allowance=CrmAllowance(rt.redis, CrmPause(rt.redis), **settings))


def test_calls_stop_at_our_share_and_every_caller_sees_the_pause(
        rt: Runtime, org: tuple[str, str]) -> None:
    sim(org, "POST", "/sim/faults", json={"daily_limit": 20})
    contact = sim(org, "POST", "/sim/records/Contact", json={"LastName": "Share"})["id"]
    first, second = client(rt, org), client(rt, org)  # two workers
    calls = 0
    with pytest.raises(PausedError) as paused:
        for _ in range(30):
            (first if calls % 2 else second).get("Contact", contact)
            calls += 1
    assert calls == 10  # half of 20 used; the reserve is left alone
    assert paused.value.retry_after and paused.value.retry_after > 1
    with pytest.raises(PausedError):
        first.get("Contact", contact)
    stats = sim(org, "GET", "/sim/stats")
    assert stats["api_usage"]["used"] == 10
    assert CrmPause(rt.redis).until() is not None


def test_after_the_burst_calls_are_paced_evenly(rt: Runtime, org: tuple[str, str]) -> None:
    # 1,000 calls a day, all ours, 1 % of them back to back: then one call every 86 s,
    # far longer than a caller waits in-line, so the next caller is told to come back.
    sim(org, "POST", "/sim/faults", json={"daily_limit": 1000})
    contact = sim(org, "POST", "/sim/records/Contact", json={"LastName": "Paced"})["id"]
    crm = client(rt, org, reserve=0.0, burst=0.01)
    made = 0
    with pytest.raises(PausedError) as paced:
        for _ in range(20):
            crm.get("Contact", contact)
            made += 1
    # The first call told us the allocation; then the burst of 10 went through.
    assert made == 11
    assert paced.value.retry_after and paced.value.retry_after > 60
    assert CrmPause(rt.redis).until() is None  # pacing is not a pause


def test_request_limit_exceeded_pauses_every_caller(rt: Runtime, org: tuple[str, str]) -> None:
    contact = sim(org, "POST", "/sim/records/Contact", json={"LastName": "Refused"})["id"]
    crm = client(rt, org)
    crm.get("Contact", contact)
    sim(org, "POST", "/sim/faults", json={"request_limit_exceeded": True})
    with pytest.raises(PausedError) as refused:
        crm.get("Contact", contact)
    assert refused.value.retry_after and refused.value.retry_after > 1
    sim(org, "DELETE", "/sim/faults")
    with pytest.raises(PausedError):  # still paused, though the org would answer again
        client(rt, org).get("Contact", contact)
