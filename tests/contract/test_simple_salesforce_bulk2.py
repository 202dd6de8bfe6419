"""simple-salesforce's own Bulk API 2.0 client (``sf.bulk2.<Type>``) and its getUpdated /
getDeleted calls (``sf.<Type>.updated`` / ``deleted``) drive the org emulator: the client,
not our code, judges the job bodies, the CSV result sets, the ``Sforce-Locator`` paging and
the error bodies."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import ColumnDelimiter, LineEnding, Operation
from simple_salesforce.exceptions import (
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceResourceNotFound,
)

from tests.salesforce_org import (
    distrust_environment,
    error_of,
    integration_sf,
    running_org,
    trusting_session,
)


@pytest.fixture
def http(org: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[requests.Session]:
    distrust_environment(monkeypatch)
    session = trusting_session(org[1])
    session.post(f"{org[0]}/sim/reset", timeout=10).raise_for_status()
    yield session
    session.close()


@pytest.fixture
def sf(http: requests.Session, org: tuple[str, str]) -> Salesforce:
    return integration_sf(http, org[0])


def make_contacts(http: requests.Session, base: str, count: int) -> list[str]:
    records = [{"FirstName": f"F{n}", "LastName": f"Bulk {n}", "Email": f"b{n}@example.com"}
               for n in range(count)]
    answer = http.post(f"{base}/sim/records/Contact/bulk", json={"records": records}, timeout=30)
    answer.raise_for_status()
    return list(answer.json()["ids"])


def rows(text: str, delimiter: str = ",", line_ending: str = "\n") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter,
                               lineterminator=line_ending))


def stats(http: requests.Session, base: str) -> dict[str, int]:
    return dict(http.get(f"{base}/sim/stats", timeout=10).json()["api_calls"])


def test_query_pages_through_every_record_by_locator(
        sf: Salesforce, http: requests.Session, org: tuple[str, str]) -> None:
    ids = make_contacts(http, org[0], 5)
    pages = list(sf.bulk2.Contact.query("SELECT Id, LastName, IsDeleted FROM Contact",
                                        max_records=2, wait=0))
    assert len(pages) == 3  # 2 + 2 + 1, the last answered with Sforce-Locator: null
    found = [row for page in pages for row in rows(page)]
    assert sorted(r["Id"] for r in found) == sorted(ids)
    assert list(found[0]) == ["Id", "LastName", "IsDeleted"]  # the order asked for
    assert {r["IsDeleted"] for r in found} == {"false"}
    calls = stats(http, org[0])
    assert (calls["bulk2_create"], calls["bulk2_results"]) == (1, 3)
    assert calls["bulk2_job"] >= 1  # simple-salesforce polls until JobComplete


def test_query_all_returns_deleted_records_too(
        sf: Salesforce, http: requests.Session, org: tuple[str, str]) -> None:
    keep, gone = make_contacts(http, org[0], 2)
    http.delete(f"{org[0]}/sim/records/Contact/{gone}", timeout=10).raise_for_status()
    soql = "SELECT Id, IsDeleted FROM Contact"
    live = [r for page in sf.bulk2.Contact.query(soql, wait=0) for r in rows(page)]
    every = [r for page in sf.bulk2.Contact.query_all(soql, wait=0) for r in rows(page)]
    assert [r["Id"] for r in live] == [keep]
    assert {r["Id"]: r["IsDeleted"] for r in every} == {keep: "false", gone: "true"}


def test_download_streams_each_set_to_a_file(
        sf: Salesforce, http: requests.Session, org: tuple[str, str], tmp_path: Path) -> None:
    ids = make_contacts(http, org[0], 7)
    results = sf.bulk2.Contact.download("SELECT Id, Email FROM Contact", str(tmp_path),
                                        max_records=3, wait=0)
    assert [r["number_of_records"] for r in results] == [3, 3, 1]
    assert [bool(r["locator"]) for r in results] == [True, True, False]
    found = [row for r in results for row in rows(Path(r["file"]).read_text())]
    assert sorted(r["Id"] for r in found) == sorted(ids)


def test_delimiters_line_endings_nulls_and_quotes_survive_the_csv(
        sf: Salesforce, http: requests.Session, org: tuple[str, str]) -> None:
    tricky = 'Smith, "the" | Elder'
    made = http.post(f"{org[0]}/sim/records/Contact", json={"LastName": tricky}, timeout=10)
    record_id = made.json()["id"]
    (page,) = sf.bulk2.Contact.query("SELECT Id, LastName, Email FROM Contact", wait=0,
                                     column_delimiter=ColumnDelimiter.PIPE,
                                     line_ending=LineEnding.CRLF)
    assert page.endswith("\r\n")
    (row,) = rows(page, delimiter="|", line_ending="\r\n")
    assert row == {"Id": record_id, "LastName": tricky, "Email": ""}


def test_a_job_moves_through_its_states_and_can_be_aborted_and_deleted(
        sf: Salesforce, http: requests.Session, org: tuple[str, str]) -> None:
    make_contacts(http, org[0], 3)
    jobs = sf.bulk2.Contact._client
    http.post(f"{org[0]}/sim/faults", json={"bulk_query_ms": 600_000},
              timeout=10).raise_for_status()
    slow = jobs.create_job(Operation.query, "SELECT Id FROM Contact")
    assert (slow["state"], slow["operation"], slow["object"]) == (
        "UploadComplete", "query", "Contact")
    assert (slow["columnDelimiter"], slow["lineEnding"], slow["apiVersion"]) == (
        "COMMA", "LF", 59.0)
    assert jobs.get_job(slow["id"], True)["numberRecordsProcessed"] == 0
    with pytest.raises(SalesforceGeneralError) as early:
        jobs.get_query_results(slow["id"])
    assert early.value.status == 412
    aborted = jobs.abort_job(slow["id"], True)
    assert aborted["state"] == "Aborted"
    with pytest.raises(SalesforceOperationError):
        jobs.wait_for_job(slow["id"], True, 0)

    http.post(f"{org[0]}/sim/faults", json={"bulk_query_ms": 300},
              timeout=10).raise_for_status()
    job = jobs.create_job(Operation.query, "SELECT Id FROM Contact")
    seen = [job["state"]]
    deadline = time.monotonic() + 10
    while seen[-1] != "JobComplete" and time.monotonic() < deadline:
        seen.append(jobs.get_job(job["id"], True)["state"])
    order = ["UploadComplete", "InProgress", "JobComplete"]
    assert seen[-1] == "JobComplete"
    assert [order.index(s) for s in seen] == sorted(order.index(s) for s in seen)
    assert jobs.get_job(job["id"], True)["numberRecordsProcessed"] == 3

    listed = sf.restful("jobs/query")
    assert listed["done"] is True
    assert {j["id"] for j in listed["records"]} == {slow["id"], job["id"]}
    # "Delete a Query Job" answers 204 No Content, which simple-salesforce's delete_job
    # cannot parse (it reads a JSON body), so the call is made directly.
    deleted = sf.session.delete(f"{sf.bulk2_url}query/{job['id']}", headers=sf.headers,
                                timeout=10)
    assert deleted.status_code == 204
    with pytest.raises(SalesforceResourceNotFound):
        jobs.get_job(job["id"], True)


@pytest.mark.parametrize(("soql", "code"), [
    ("SELECT Id FROM Nope__c", "INVALID_TYPE"),
    ("SELECT Nope__c FROM Contact", "INVALID_FIELD"),
    ("SELECT FROM Contact", "MALFORMED_QUERY"),
    ("SELECT COUNT() FROM Contact", "INVALIDJOB"),
    ("SELECT Id FROM Contact LIMIT 5 OFFSET 2", "INVALIDJOB"),
])
def test_a_query_the_org_cannot_run_is_refused_at_create(sf: Salesforce, soql: str,
                                                         code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.bulk2.Contact._client.create_job(Operation.query, soql)
    assert error_of(refused)["errorCode"] == code


def test_an_unknown_job_is_not_found(sf: Salesforce) -> None:
    with pytest.raises(SalesforceResourceNotFound) as missing:
        sf.bulk2.Contact._client.get_job("750000000000000AAA", True)
    assert error_of(missing)["errorCode"] == "NOT_FOUND"


# -- getUpdated / getDeleted ------------------------------------------------------------------


def modstamp(http: requests.Session, base: str, record_id: str, deleted: bool = False) -> datetime:
    suffix = "?include_deleted=true" if deleted else ""
    records = http.get(f"{base}/sim/records/Contact{suffix}", timeout=10).json()["records"]
    stamp = next(r["SystemModstamp"] for r in records if r["Id"] == record_id)
    return datetime.fromisoformat(stamp)


def test_updated_lists_changed_ids_by_the_minute(
        sf: Salesforce, http: requests.Session, org: tuple[str, str]) -> None:
    (first,) = make_contacts(http, org[0], 1)
    stamp = modstamp(http, org[0], first)
    start = stamp - timedelta(minutes=5)
    answer = sf.Contact.updated(start, stamp + timedelta(minutes=1))
    assert answer["ids"] == [first]
    assert answer["latestDateCovered"].endswith(":00.000+0000")
    # The seconds of end are ignored: an end inside the record's own minute leaves it out.
    assert sf.Contact.updated(start, stamp)["ids"] == []


def test_deleted_lists_deleted_ids_with_their_date(
        sf: Salesforce, http: requests.Session, org: tuple[str, str]) -> None:
    keep, gone = make_contacts(http, org[0], 2)
    http.delete(f"{org[0]}/sim/records/Contact/{gone}", timeout=10).raise_for_status()
    stamp = modstamp(http, org[0], gone, deleted=True)
    window = (stamp - timedelta(minutes=5), stamp + timedelta(minutes=1))
    answer = sf.Contact.deleted(*window)
    assert answer["deletedRecords"] == [
        {"id": gone, "deletedDate": stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"}]
    assert set(answer) == {"deletedRecords", "earliestDateAvailable", "latestDateCovered"}
    assert sf.Contact.updated(*window)["ids"] == [keep]


@pytest.mark.parametrize(("call", "days"), [("updated", 31), ("deleted", 16)])
def test_a_start_too_far_back_or_not_before_end_is_refused(sf: Salesforce, call: str,
                                                           days: int) -> None:
    now = datetime.now(UTC)
    with pytest.raises(SalesforceMalformedRequest) as too_old:
        getattr(sf.Contact, call)(now - timedelta(days=days), now)
    assert error_of(too_old)["errorCode"] == "INVALID_REPLICATION_DATE"
    with pytest.raises(SalesforceMalformedRequest) as backwards:
        getattr(sf.Contact, call)(now, now - timedelta(minutes=5))
    assert error_of(backwards)["errorCode"] == "INVALID_REPLICATION_DATE"


def test_more_ids_than_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    distrust_environment(monkeypatch)
    with running_org(replication_id_limit=2) as (base, ca):
        http = trusting_session(ca)
        make_contacts(http, base, 3)
        now = datetime.now(UTC)
        with pytest.raises(SalesforceMalformedRequest) as refused:
            integration_sf(http, base).Contact.updated(now - timedelta(minutes=5),
                                                       now + timedelta(minutes=2))
        assert error_of(refused)["errorCode"] == "EXCEEDED_ID_LIMIT"


# -- REST queryAll ------------------------------------------------------------------------------


def test_query_all_pages_keep_deleted_records_behind_a_query_url(
        sf: Salesforce, http: requests.Session, org: tuple[str, str]) -> None:
    ids = make_contacts(http, org[0], 2_100)
    for gone in ids[-5:]:
        http.delete(f"{org[0]}/sim/records/Contact/{gone}", timeout=10).raise_for_status()
    soql = "SELECT Id, IsDeleted, SystemModstamp FROM Contact ORDER BY LastName"
    first = sf.query(soql, include_deleted=True)
    assert (first["totalSize"], first["done"]) == (2_100, False)
    assert "/query/" in first["nextRecordsUrl"]  # "has query in the URL" even for queryAll
    every = sf.query_all(soql, include_deleted=True)["records"]
    assert {r["Id"] for r in every if r["IsDeleted"]} == set(ids[-5:])
    assert len(sf.query_all(soql)["records"]) == 2_095
