"""The event classifier: examples, then the ordering guarantee as a property."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhooks.lifecycles import CREATED, LIFECYCLES, Lifecycle, UnknownAction
from webhooks.ordering import classify, heal_decision

PAYMENTS = LIFECYCLES["payments"]
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def pay(current: str | None, action: str, when: int = 10, event_id: str = "EV5",
        watermark: tuple[datetime, str] | None = (T0, "EV1")):
    return classify(PAYMENTS, current, watermark, action, at(when), event_id, resource_id="PM1")


# --- examples -------------------------------------------------------------------------


def test_legal_newer_event_applies() -> None:
    d = pay("pending_submission", "submitted")
    assert (d.kind, d.to_status, d.missing) == ("apply", "submitted", ())
    assert "PM1" in d.reason


def test_first_event_of_unknown_resource_applies_when_it_reports_an_initial_status() -> None:
    d = pay(None, "created", watermark=None)
    assert (d.kind, d.to_status) == ("apply", "pending_submission")
    d = classify(PAYMENTS, None, None, "created", T0, "EV1",
                 created_status="pending_customer_approval")
    assert (d.kind, d.to_status) == ("apply", "pending_customer_approval")


def test_older_event_is_stale() -> None:
    d = pay("confirmed", "submitted", when=0, event_id="EV0", watermark=(at(5), "EV3"))
    assert d.kind == "stale"
    assert "older" in d.reason


def test_equal_time_is_ordered_by_event_id() -> None:
    wm = (at(5), "EV3")
    assert pay("submitted", "confirmed", when=5, event_id="EV2", watermark=wm).kind == "stale"
    assert pay("submitted", "confirmed", when=5, event_id="EV4", watermark=wm).kind == "apply"


def test_exact_duplicate_is_stale_already_applied() -> None:
    d = pay("submitted", "submitted", when=5, event_id="EV3", watermark=(at(5), "EV3"))
    assert d.kind == "stale"
    assert "already applied" in d.reason


def test_skipping_a_stage_is_a_gap_naming_the_missing_status() -> None:
    d = pay("pending_submission", "confirmed")
    assert (d.kind, d.to_status, d.missing) == ("gap", "confirmed", ("submitted",))
    assert d.reason == (
        "payments PM1: pending_submission -> confirmed skips submitted; "
        "waiting for the missing event"
    )


def test_unknown_resource_with_a_later_status_is_a_gap() -> None:
    d = pay(None, "confirmed", watermark=None)
    assert (d.kind, d.missing) == ("gap", ("pending_submission", "submitted"))
    assert "gateway" in d.reason


def test_unreachable_status_is_illegal() -> None:
    d = pay("cancelled", "confirmed")
    assert (d.kind, d.to_status) == ("illegal", "confirmed")
    assert "cancelled" in d.reason and "confirmed" in d.reason


def test_status_outside_the_lifecycle_is_illegal() -> None:
    d = pay("teleported", "confirmed")
    assert d.kind == "illegal"
    assert "not a payments status" in d.reason


def test_event_without_status_is_informational_and_can_be_stale() -> None:
    d = pay("failed", "late_failure_settled")
    assert (d.kind, d.to_status) == ("informational", None)
    d = pay("failed", "late_failure_settled", when=0, event_id="EV0", watermark=(at(5), "EV1"))
    assert d.kind == "stale"


def test_repeat_of_a_status_on_no_cycle_is_informational() -> None:
    d = classify(LIFECYCLES["refunds"], "paid", (T0, "EV1"), "paid", at(10), "EV5")
    assert (d.kind, d.to_status) == ("informational", "paid")


def test_newer_repeat_of_a_status_on_a_cycle_waits_for_the_round() -> None:
    # submitted again after submitted: a retry whose failed and resubmission_requested
    # events have not arrived yet.
    d = pay("submitted", "submitted")
    assert (d.kind, d.missing) == ("gap", ("failed", "pending_submission"))


@pytest.mark.parametrize("current", ["pending_submission", "pending_customer_approval",
                                     "submitted", "paid_out"])
def test_created_for_a_resource_with_a_status_changes_nothing(current: str) -> None:
    """Its status came from the API answer, a heal or a re-link: the resource's creation is
    behind it, whatever the table's default starting status is."""
    d = pay(current, "created")
    assert (d.kind, d.to_status) == ("informational", current)
    assert pay(current, "created", when=0, event_id="EV0", watermark=(at(5), "EV1")).kind == (
        "stale")


@pytest.mark.parametrize(
    ("current", "action", "expected"),
    [
        ("paid_out", "failed", "failed"),  # late failure
        ("confirmed", "failed", "failed"),  # late failure
        ("charged_back", "chargeback_cancelled", "paid_out"),  # chargeback reversal
        ("failed", "resubmission_requested", "pending_submission"),  # retry
    ],
)
def test_moves_that_look_backwards_apply_when_newer(current: str, action: str,
                                                    expected: str) -> None:
    d = pay(current, action)
    assert (d.kind, d.to_status) == ("apply", expected)


def test_unknown_action_raises() -> None:
    with pytest.raises(UnknownAction, match="teleported"):
        pay("submitted", "teleported")


def test_mandate_reinstatement() -> None:
    mandates = LIFECYCLES["mandates"]
    wm = (T0, "EV1")
    assert classify(mandates, "cancelled", wm, "submitted", at(1), "EV2").kind == "apply"
    assert classify(mandates, "submitted", wm, "reinstated", at(1), "EV2").to_status == "active"
    assert classify(mandates, "expired", wm, "reinstated", at(1), "EV2").kind == "apply"
    assert classify(mandates, "active", wm, "transferred", at(1), "EV2").kind == "informational"


def test_heal_goes_through_the_missing_stages() -> None:
    h = heal_decision(PAYMENTS, "pending_submission", "paid_out", resource_id="PM1")
    assert h.possible and h.statuses == ("submitted", "confirmed", "paid_out")


def test_heal_of_unknown_resource_adopts_the_gateway_status() -> None:
    h = heal_decision(LIFECYCLES["payouts"], None, "paid")
    assert h.possible and h.statuses == ("paid",)


def test_heal_when_in_step_records_nothing() -> None:
    h = heal_decision(PAYMENTS, "submitted", "submitted")
    assert h.possible and h.statuses == ()


def test_heal_refuses_to_go_back_or_to_unknown_statuses() -> None:
    h = heal_decision(PAYMENTS, "cancelled", "confirmed", resource_id="PM1")
    assert not h.possible and h.statuses == () and "PM1" in h.reason
    assert not heal_decision(PAYMENTS, "submitted", "teleported").possible


# --- the ordering guarantee -----------------------------------------------------------


@dataclass(frozen=True)
class Event:
    action: str
    created_at: datetime
    id: str
    created_status: str | None = None


@dataclass
class Resource:
    """What the caller does with each decision (see webhooks.ordering's contract)."""

    lifecycle: Lifecycle
    status: str | None
    watermark: tuple[datetime, str] | None = None
    parked: list[Event] = field(default_factory=list)
    applied: list[Event] = field(default_factory=list)

    def receive(self, event: Event) -> None:
        kind = self._try(event)
        if kind == "gap":
            self.parked.append(event)
        elif kind == "apply":
            self._wake()

    def _wake(self) -> None:
        progressed = True
        while progressed:
            progressed = False
            for event in sorted(self.parked, key=lambda e: (e.created_at, e.id)):
                kind = self._try(event)
                if kind != "gap":
                    self.parked.remove(event)
                if kind == "apply":
                    progressed = True
                    break

    def _try(self, event: Event) -> str:
        d = classify(self.lifecycle, self.status, self.watermark, event.action,
                     event.created_at, event.id, created_status=event.created_status)
        assert d.kind != "illegal", d.reason
        if d.kind == "apply":
            assert d.to_status is not None
            assert self.lifecycle.is_legal(self.status, d.to_status)
            assert self.watermark is None or (event.created_at, event.id) > self.watermark
            self.status, self.watermark = d.to_status, (event.created_at, event.id)
            self.applied.append(event)
        return d.kind


def _announcing(lc: Lifecycle) -> dict[str, list[str]]:
    """status -> the (non-created) actions reporting it."""
    found: dict[str, list[str]] = {}
    for action, status in sorted(lc.actions.items()):
        if status is not None and action != CREATED:
            found.setdefault(status, []).append(action)
    return found


@st.composite
def scenarios(draw: st.DrawFn, shortcut_free: bool):
    """A random legal walk as events: (lifecycle, starting status, events, status events)."""
    lc = LIFECYCLES[draw(st.sampled_from(sorted(LIFECYCLES)))]
    announcing = _announcing(lc)
    first = draw(st.sampled_from(sorted(lc.initial)))
    # A record created from its `created` event, or one Paybridge already holds.
    from_event = CREATED in lc.actions and draw(st.booleans())
    steps: list[tuple[str, str | None]] = [(CREATED, first)] if from_event else []
    earlier: set[str] = set(lc.initial) if from_event else set()
    status = first
    for _ in range(draw(st.integers(0, 10))):
        choices = sorted(s for s in lc.successors(status) if s in announcing)
        if shortcut_free:
            # No later status may be a legal move from an earlier one: then an event that
            # arrives too early is always detected as a gap instead of being applied.
            choices = [s for s in choices if s not in earlier]
        if not choices:
            break
        earlier |= lc.successors(status)
        status = draw(st.sampled_from(choices))
        steps.append((draw(st.sampled_from(announcing[status])), None))
    informational = sorted(a for a, s in lc.actions.items() if s is None)
    for _ in range(draw(st.integers(0, 2))):
        steps.insert(draw(st.integers(0, len(steps))), (draw(st.sampled_from(informational)), ""))
    events, seconds = [], 0
    for index, (action, created_status) in enumerate(steps):
        seconds += draw(st.integers(0, 2))  # equal times are ordered by id
        events.append(Event(action, at(seconds), f"EV{index:03d}", created_status or None))
    status_events = [e for e, (_, mark) in zip(events, steps, strict=True) if mark != ""]
    return lc, (None if from_event else first), status, events, status_events


def _deliver(lc: Lifecycle, start: str | None, events: list[Event]) -> Resource:
    resource = Resource(lc, start)
    for event in events:
        resource.receive(event)
    return resource


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_delivery_order_ends_in_the_walks_final_status(data: st.DataObject) -> None:
    lc, start, final, events, status_events = data.draw(scenarios(shortcut_free=False))
    resource = _deliver(lc, start, data.draw(st.permutations(events)))
    assert resource.status == final
    assert resource.parked == []
    if status_events:
        assert resource.applied[-1] == status_events[-1]


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_delivery_order_applies_exactly_the_events_in_order(data: st.DataObject) -> None:
    lc, start, final, events, status_events = data.draw(scenarios(shortcut_free=True))
    resource = _deliver(lc, start, data.draw(st.permutations(events)))
    assert resource.applied == status_events
    assert resource.status == final
    assert resource.parked == []


def test_a_shortcut_applied_early_leaves_the_skipped_events_stale() -> None:
    # submitted -> confirmed -> failed (late failure) delivered as failed first: failed is a
    # legal move from submitted, so nothing can tell that confirmed is still on its way.
    resource = Resource(PAYMENTS, "submitted")
    confirmed, failed = Event("confirmed", at(1), "EV1"), Event("failed", at(2), "EV2")
    for event in (failed, confirmed):
        resource.receive(event)
    assert resource.status == "failed" and resource.applied == [failed]
