"""load_events (intake's validation) answers exactly as BatchSchema: same events accepted,
same values out, same field-by-field errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from webhooks.schemas import MAX_EVENTS, BatchSchema, load_events

MISSING = object()
GOOD = {"id": "EV0001", "created_at": "2026-11-22T10:00:00.000Z", "resource_type": "payments",
        "action": "confirmed", "links": {"payment": "PM0001"}, "details": {"cause": "x"}}


def answer(load: Any, document: Any) -> tuple[str, Any]:
    try:
        return "ok", load(document)
    except ValidationError as exc:
        return "error", exc.messages


def schema_load(document: Any) -> Any:
    return BatchSchema().load(document if isinstance(document, dict) else {"events": None})[
        "events"]


def same_answer(document: Any) -> None:
    assert answer(load_events, document) == answer(schema_load, document)


def texts(longest: int) -> st.SearchStrategy[Any]:
    return st.one_of(st.text(max_size=longest + 2), st.sampled_from(["", "x" * longest,
                     "x" * (longest + 1)]), st.none(), st.integers(), st.lists(st.text()))


WHENS = st.one_of(
    st.sampled_from(["2026-11-22T10:00:00Z", "2026-11-22T10:00:00.123456+00:00",
                     "2026-11-22 10:00+01:00", "20261122T100000Z", "2026-W47-1T10:00Z",
                     "2026-11-22T10:00:00", "2026-11-22", "yesterday", "", "2026-13-01T00:00Z",
                     "2026-11-22T10:00:00+25:00"]),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())).map(lambda d: d.isoformat()),
    st.text(max_size=30), st.integers(), st.none())
LINKS = st.one_of(st.dictionaries(st.text(max_size=10),
                                  st.one_of(st.text(max_size=10), st.none(), st.integers())),
                  st.text(max_size=5), st.lists(st.text()), st.none())
DETAILS = st.one_of(st.dictionaries(st.text(max_size=5), st.text(max_size=5)), st.none(),
                    st.text(max_size=5), st.lists(st.integers()))
EVENTS = st.one_of(
    st.fixed_dictionaries({}, optional={
        "id": texts(64), "created_at": WHENS, "resource_type": texts(48), "action": texts(64),
        "links": LINKS, "details": DETAILS, "metadata": st.dictionaries(st.text(), st.text()),
    }),
    st.builds(lambda over: {**GOOD, **over},
              st.dictionaries(st.sampled_from(sorted(GOOD)), st.one_of(
                  texts(64), WHENS, LINKS, DETAILS), max_size=2)),
    st.sampled_from([None, "event", 1, []]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(EVENTS, min_size=1, max_size=4))
@example([GOOD])
@example([{k: v for k, v in GOOD.items() if k != "details"}])
def test_any_events_get_the_schemas_answer(events: list[Any]) -> None:
    same_answer({"events": events, "meta": {"webhook_id": "WB1"}})


LONGEST = {"id": 64, "resource_type": 48, "action": 64}
BOUNDARIES = [
    *({name: value} for name, n in LONGEST.items()
      for value in ("", "x" * n, "x" * (n + 1), None, 7, ["x"])),
    *({"created_at": when} for when in [
        "2026-11-22T10:00:00Z", "2026-11-22T10:00:00.123456+00:00", "2026-11-22 10:00+01:00",
        "20261122T100000Z", "2026-W47-1T10:00Z", "2026-11-22T10:00:00", "2026-11-22",
        "yesterday", "", "2026-13-01T00:00Z", "2026-11-22T10:00:00+25:00", None, 1700000000]),
    *({"links": links} for links in [{}, {"payment": None}, {"payment": 1}, {"payment": [1]},
                                     "PM1", ["PM1"], None]),
    *({"details": details} for details in [{}, None, "x", [1], {"a": {"b": 1}}]),
]


@pytest.mark.parametrize("over", BOUNDARIES)
def test_every_rule_at_its_edge_gets_the_schemas_answer(over: dict[str, Any]) -> None:
    same_answer({"events": [GOOD, {**GOOD, **over}]})


@pytest.mark.parametrize("name", sorted(GOOD))
def test_a_missing_field_gets_the_schemas_answer(name: str) -> None:
    same_answer({"events": [{k: v for k, v in GOOD.items() if k != name}]})


@pytest.mark.parametrize("document", [
    {}, {"events": None}, {"events": []}, {"events": {}}, {"events": "x"}, [], None, "events",
    {"events": [GOOD] * (MAX_EVENTS + 1)}, {"events": [GOOD] * MAX_EVENTS},
])
def test_odd_documents_get_the_schemas_answer(document: Any) -> None:
    same_answer(document)


def test_a_plain_delivery_keeps_its_unknown_keys_and_parses_the_time() -> None:
    [event] = load_events({"events": [{**GOOD, "metadata": {"a": "b"}}]})
    assert event["metadata"] == {"a": "b"} and event["created_at"].utcoffset() is not None
