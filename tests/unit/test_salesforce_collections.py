"""How Paybridge packs CRM writes into sObject Collections calls (pure, no server).

Salesforce takes at most 200 records and at most ten chunks (runs of one sObject type) per
call; the emulator enforces both (tests/sim, tests/contract).
"""

from __future__ import annotations

from app.clients.salesforce import (
    COLLECTION_CHUNKS,
    COLLECTION_LIMIT,
    CrmWrite,
    _collection_calls,
)


def runs(kinds: list[str]) -> int:
    return sum(1 for n, k in enumerate(kinds) if n == 0 or k != kinds[n - 1])


def test_calls_respect_both_limits_and_keep_each_types_order() -> None:
    types = [f"Type{t}__c" for t in range(12)]  # more types than one call has chunks
    writes = [CrmWrite(types[n % 12], f"id{n}", {}) for n in range(450)]
    calls = _collection_calls(writes)
    assert sorted(i for call in calls for i in call) == list(range(450))
    for call in calls:
        assert len(call) <= COLLECTION_LIMIT
        assert runs([writes[i].sobject for i in call]) <= COLLECTION_CHUNKS
    flat = [i for call in calls for i in call]
    for kind in types:
        mine = [i for i in flat if writes[i].sobject == kind]
        assert mine == sorted(mine)


def test_a_batch_of_few_types_is_one_call_with_one_run_per_type() -> None:
    writes = [CrmWrite("Contact" if n % 2 else "Mandate__c", f"id{n}", {}) for n in range(30)]
    (call,) = _collection_calls(writes)
    assert runs([writes[i].sobject for i in call]) == 2
    assert [writes[i].sobject for i in call[:15]] == ["Mandate__c"] * 15
