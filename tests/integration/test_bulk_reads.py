"""A large object is read with one Bulk API 2.0 query job instead of a SOQL call per 2,000
records, and callers cannot tell: ``iter_records`` yields the same dicts either way. Calls
are counted at the Salesforce emulator (``/sim/stats``), over HTTPS."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import requests

from app.clients.errors import PausedError, TransientError
from app.clients.salesforce import SalesforceClient
from app.runtime import Runtime

FIELDS = ["Id", "Amount__c", "Charge_Date__c", "Description__c", "Reference__c", "IsDeleted",
          "CreatedDate", "SystemModstamp", "OwnerId"]


def _calls(sf: requests.Session, sf_url: str) -> dict[str, int]:
    return dict(sf.get(f"{sf_url}/sim/stats", timeout=10).json()["api_calls"])


def _spent(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def _payments(sf: requests.Session, sf_url: str, count: int) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, 5000):
        records = [{"Amount__c": n if n % 3 else n + 0.25, "Reference__c": f"REF-{n}",
                    "Charge_Date__c": "2026-01-15" if n % 2 else None,
                    "Description__c": 'Rent, "flat" 2' if n % 7 == 0 else None}
                   for n in range(start, min(count, start + 5000))]
        answer = sf.post(f"{sf_url}/sim/records/Payment__c/bulk", json={"records": records},
                         timeout=120)
        answer.raise_for_status()
        ids += answer.json()["ids"]
    return ids


def _client(rt: Runtime, **bulk: Any) -> SalesforceClient:
    s = rt.settings
    return SalesforceClient(s.salesforce_login_url, s.salesforce_client_id,
                            s.salesforce_client_secret, ca_bundle=s.salesforce_ca_bundle,
                            timeout=30, **bulk)


def test_a_large_object_costs_a_few_calls_and_yields_the_soql_records(linked) -> None:
    rt, _, sf_url, sf = linked
    ids = _payments(sf, sf_url, 25_000)
    for gone in ids[:3]:
        sf.delete(f"{sf_url}/sim/records/Payment__c/{gone}", timeout=10).raise_for_status()
    soql_reader, bulk_reader = _client(rt, bulk_threshold=0), _client(rt, bulk_page_size=10_000)
    soql_reader.login()
    bulk_reader.login()

    before = _calls(sf, sf_url)
    by_soql = list(soql_reader.iter_records("Payment__c", FIELDS, include_deleted=True))
    middle = _calls(sf, sf_url)
    by_bulk = list(bulk_reader.iter_records("Payment__c", FIELDS, include_deleted=True))
    after = _calls(sf, sf_url)

    assert _spent(before, middle) == {"query": 13}  # 12 pages of 2,000 and one of 1,000
    # The first SOQL page (its totalSize), the describe, the job, one poll, 3 sets of 10,000.
    assert _spent(middle, after) == {"query": 1, "describe": 1, "bulk2_create": 1,
                                     "bulk2_job": 1, "bulk2_results": 3}
    assert len(by_bulk) == 25_000
    assert sorted(by_bulk, key=lambda r: r["Id"]) == sorted(by_soql, key=lambda r: r["Id"])
    assert sum(r["IsDeleted"] for r in by_bulk) == 3
    sample = next(r for r in by_bulk if r["Reference__c"] == "REF-7")
    assert sample["Description__c"] == 'Rent, "flat" 2' and sample["Amount__c"] == 7
    assert type(sample["Amount__c"]) is type(next(
        r for r in by_soql if r["Id"] == sample["Id"])["Amount__c"])


def test_fields_not_asked_for_stay_out_and_order_and_filters_hold(linked) -> None:
    rt, _, sf_url, sf = linked
    _payments(sf, sf_url, 3_000)
    reader = _client(rt, bulk_threshold=1_000)
    before = _calls(sf, sf_url)
    records = list(reader.iter_records("Payment__c", ["Reference__c"],
                                       where="Reference__c != 'REF-5'",
                                       order_by="Reference__c DESC"))
    assert _spent(before, _calls(sf, sf_url))["bulk2_create"] == 1
    soql = list(_client(rt, bulk_threshold=0).iter_records(
        "Payment__c", ["Reference__c"], where="Reference__c != 'REF-5'",
        order_by="Reference__c DESC"))
    assert len(records) == 2_999 and records == soql  # Id was only borrowed for attributes.url
    assert set(records[0]) == {"attributes", "Reference__c"}


def test_a_caller_that_counted_reads_no_page_it_drops(linked) -> None:
    """The count decides up front: a Bulk read starts with the job (the only query is the
    COUNT()), and a read told to stay on SOQL never switches."""
    rt, _, sf_url, sf = linked
    _payments(sf, sf_url, 2_500)
    reader = _client(rt, bulk_threshold=1_000)
    reader.login()
    before = _calls(sf, sf_url)
    count = reader.count_records("Payment__c")
    assert reader.wants_bulk(count) and not reader.wants_bulk(1_000)
    by_bulk = list(reader.iter_records("Payment__c", ["Id"], bulk=True))
    middle = _calls(sf, sf_url)
    assert _spent(before, middle) == {"query": 1, "describe": 1, "bulk2_create": 1,
                                      "bulk2_job": 1, "bulk2_results": 1}
    by_soql = list(reader.iter_records("Payment__c", ["Id"], bulk=False))
    assert _spent(middle, _calls(sf, sf_url)) == {"query": 2}  # pages of 2,000 and 500
    assert len(by_bulk) == count == 2_500
    assert sorted(r["Id"] for r in by_bulk) == sorted(r["Id"] for r in by_soql)


def test_a_small_object_costs_one_call(linked) -> None:
    rt, _, sf_url, sf = linked
    _payments(sf, sf_url, 50)
    rt.crm.login()
    before = _calls(sf, sf_url)
    assert len(list(rt.crm.iter_records("Payment__c", FIELDS))) == 50
    assert _spent(before, _calls(sf, sf_url)) == {"query": 1}


def test_a_job_that_does_not_complete_in_time_is_aborted_and_transient(linked) -> None:
    rt, _, sf_url, sf = linked
    _payments(sf, sf_url, 2_500)
    sf.post(f"{sf_url}/sim/faults", json={"bulk_query_ms": 600_000},
            timeout=10).raise_for_status()
    reader = _client(rt, bulk_threshold=1_000, bulk_wait=1.0)
    with pytest.raises(TransientError, match="did not complete"):
        list(reader.iter_records("Payment__c", ["Id"]))
    jobs = reader._call(lambda api: api.restful("jobs/query"))["records"]
    assert [job["state"] for job in jobs] == ["Aborted"]


def test_the_threshold_comes_from_the_environment(rt: Runtime) -> None:
    assert rt.settings.salesforce_bulk_threshold == 10_000
    runtime = Runtime(replace(rt.settings, salesforce_bulk_threshold=25))
    assert runtime.crm.bulk_threshold == 25


def test_the_jobs_calls_are_classified_like_any_other(linked) -> None:
    """The allocation runs out between creating the job and polling it: the read stops
    with PausedError (REQUEST_LIMIT_EXCEEDED), as any other Salesforce call would."""
    rt, _, sf_url, sf = linked
    _payments(sf, sf_url, 2_500)
    reader = _client(rt, bulk_threshold=1_000)
    reader.login()
    used = sf.get(f"{sf_url}/sim/stats", timeout=10).json()["api_usage"]["used"]
    # Room for the first SOQL page, the describe and the job's creation; not for a poll.
    sf.post(f"{sf_url}/sim/faults", json={"daily_limit": used + 3},
            timeout=10).raise_for_status()
    with pytest.raises(PausedError, match="REQUEST_LIMIT_EXCEEDED"):
        list(reader.iter_records("Payment__c", ["Id"]))
    assert _calls(sf, sf_url)["bulk2_create"] == 1
