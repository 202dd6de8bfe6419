"""Change capture by polling, against the Salesforce emulator over TLS: a regular user's
creates, updates and deletes reach the API Queue in order with the right previous fields;
Paybridge's own write-backs never come back; a late-visible transaction inside the overlap
is not missed; a restart resumes from the watermark; idle polling costs one call per object."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from simple_salesforce import Salesforce

from app.clients.salesforce import CrmWrite
from app.runtime import Runtime
from queues import polling as polling_module
from queues.capture_models import CaptureWatermark
from queues.models import QueueItem
from queues.polling import poll_changes, polled_objects

USER = {"grant_type": "password", "username": "demo@example.com", "password": "demo"}


@pytest.fixture
def polling(emulators: tuple[Runtime, str, str]) -> tuple[Runtime, Salesforce, requests.Session,
                                                          str]:
    """A polling runtime, a regular user's simple-salesforce client and the emulator's URL."""
    rt, _gw, sf_url = emulators
    rt = Runtime(replace(rt.settings, change_capture="poll", capture_overlap=300.0))
    http = requests.Session()
    http.trust_env = False  # REQUESTS_CA_BUNDLE would override verify (see FACTS)
    http.verify = rt.settings.salesforce_ca_bundle
    token = http.post(f"{sf_url}/services/oauth2/token", data=USER).json()
    user = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"],
                      session=http, version="59.0")
    return rt, user, http, sf_url


def _rows(rt: Runtime) -> list[tuple[str, str, dict[str, Any], dict[str, Any] | None]]:
    with rt.db.transaction() as session:
        return [(i.record_id, i.operation, i.fields, i.previous_fields)
                for i in session.scalars(sa.select(QueueItem).order_by(QueueItem.id))]


def test_create_update_delete_reach_the_queue_in_order(polling: Any) -> None:
    rt, user, _http, _url = polling
    poll_changes(rt)
    record_id = user.Contact.create({"FirstName": "Ada", "LastName": "Lovelace",
                                     "Email": "ada@example.com"})["id"]
    assert poll_changes(rt) == 1
    user.Contact.update(record_id, {"Email": "ada@example.org"})
    assert poll_changes(rt) == 1
    user.Contact.delete(record_id)
    assert poll_changes(rt) == 1
    assert poll_changes(rt) == 0  # the overlap reads them again: deduplicated
    rows = [r for r in _rows(rt) if r[0] == record_id]
    assert [r[1] for r in rows] == ["insert", "update", "delete"]
    assert rows[0][2]["Email"] == "ada@example.com" and rows[0][3] is None
    assert rows[1][2]["Email"] == "ada@example.org"
    assert rows[1][3] == rows[0][2]
    assert rows[2][3] == rows[1][2]


def test_own_write_backs_never_come_back(polling: Any) -> None:
    rt, user, _http, _url = polling
    record_id = user.Contact.create({"LastName": "Loop"})["id"]
    assert poll_changes(rt) == 1
    [result] = rt.crm.update_many([CrmWrite("Contact", record_id, {"Gateway_Id__c": "CU123"})])
    assert result.ok
    assert poll_changes(rt) == 0
    # The write-back is in the snapshot: the user's next change carries it as previous.
    user.Contact.update(record_id, {"LastName": "Loop2"})
    assert poll_changes(rt) == 1
    assert _rows(rt)[-1][3]["Gateway_Id__c"] == "CU123"


@pytest.mark.parametrize(("overlap", "caught"), [(300.0, True), (0.0, False)])
def test_late_visible_transaction_inside_the_overlap(polling: Any, overlap: float,
                                                     caught: bool) -> None:
    rt, user, http, url = polling
    rt = Runtime(replace(rt.settings, capture_overlap=overlap))
    user.Contact.create({"LastName": "Early"})
    poll_changes(rt)  # the watermark is now at Early's stamp
    http.post(f"{url}/sim/late-visible", json={"seconds": 60}).raise_for_status()
    late_id = user.Contact.create({"LastName": "Late"})["id"]
    poll_changes(rt)
    assert (late_id in {r[0] for r in _rows(rt)}) is caught


def test_restart_resumes_from_the_watermark(polling: Any) -> None:
    rt, user, _http, _url = polling
    first = user.Contact.create({"LastName": "Before"})["id"]
    poll_changes(rt)
    with rt.db.transaction() as session:
        assert session.get(CaptureWatermark, "Customer") is not None
    rt.redis.flushdb()  # Redis is transport: nothing of the capture lives there
    second = user.Contact.create({"LastName": "WhileDown"})["id"]
    restarted = Runtime(rt.settings)
    assert poll_changes(restarted) == 1
    assert [r[0] for r in _rows(rt)] == [first, second]


def test_idle_polling_costs_one_call_per_object(polling: Any) -> None:
    rt, _user, http, url = polling
    poll_changes(rt)  # logs in and sets the watermarks
    http.post(f"{url}/sim/stats/reset").raise_for_status()
    poll_changes(rt)
    stats = http.get(f"{url}/sim/stats").json()
    assert stats["api_usage"]["used"] == len(polled_objects())


class Crash(RuntimeError):
    """The step dying between storing the changes and remembering what it saw."""


def test_a_crash_before_the_snapshots_loses_nothing_and_queues_once(
        polling: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rt, user, _http, _url = polling
    poll_changes(rt)
    record_id = user.Contact.create({"LastName": "Crash", "Email": "crash@example.com"})["id"]

    def crash(*args: Any, **kwargs: Any) -> None:
        raise Crash

    with monkeypatch.context() as patched:
        patched.setattr(polling_module, "_remember", crash)
        with pytest.raises(Crash):
            poll_changes(rt)
    assert _rows(rt) == []  # nothing half-taken: the changes went with the snapshots
    assert poll_changes(rt) == 1  # nothing lost: the watermark did not move either
    assert poll_changes(rt) == 0
    assert [r[:2] for r in _rows(rt)] == [(record_id, "insert")]
