"""The lifecycle tables against moves written out by hand (not read back from the module)."""

from __future__ import annotations

from collections import deque

import pytest

from webhooks.lifecycles import LIFECYCLES, Lifecycle, UnknownAction, lifecycle_for

LEGAL: dict[str, tuple[tuple[str, str], ...]] = {
    "payments": (
        ("pending_customer_approval", "pending_submission"),
        ("pending_customer_approval", "customer_approval_denied"),
        ("pending_customer_approval", "cancelled"),
        ("pending_submission", "submitted"),
        ("pending_submission", "cancelled"),
        ("submitted", "confirmed"),
        ("submitted", "failed"),
        ("confirmed", "paid_out"),
        ("confirmed", "failed"),
        ("paid_out", "charged_back"),
        ("paid_out", "failed"),
        ("charged_back", "paid_out"),
        # A retry goes back to pending_submission (gocardless_pro PaymentsService.retry).
        ("failed", "pending_submission"),
    ),
    "mandates": (
        ("pending_customer_approval", "pending_submission"),
        ("pending_customer_approval", "blocked"),
        ("pending_submission", "submitted"),
        ("pending_submission", "failed"),
        ("pending_submission", "blocked"),
        ("pending_submission", "cancelled"),
        ("submitted", "active"),
        ("submitted", "failed"),
        ("submitted", "cancelled"),
        ("active", "submitted"),
        ("active", "cancelled"),
        ("active", "expired"),
        ("active", "consumed"),
        ("active", "blocked"),
        ("active", "suspended_by_payer"),
        ("cancelled", "submitted"),
        ("cancelled", "active"),
        ("expired", "submitted"),
        ("expired", "active"),
    ),
    "refunds": (
        ("created", "pending_submission"),
        ("created", "submitted"),
        ("created", "paid"),
        ("created", "bounced"),
        ("created", "cancelled"),
        ("pending_submission", "submitted"),
        ("pending_submission", "paid"),
        ("pending_submission", "bounced"),
        ("pending_submission", "cancelled"),
        ("submitted", "paid"),
        ("submitted", "bounced"),
        ("paid", "bounced"),
        ("bounced", "funds_returned"),
    ),
    "subscriptions": (
        ("pending_customer_approval", "active"),
        ("pending_customer_approval", "customer_approval_denied"),
        ("active", "paused"),
        ("paused", "active"),
        ("active", "finished"),
        ("active", "cancelled"),
        ("paused", "cancelled"),
    ),
    "payouts": (
        ("pending", "paid"),
        ("paid", "bounced"),
    ),
}

INITIAL = {
    "payments": {"pending_customer_approval", "pending_submission"},
    "mandates": {"pending_customer_approval", "pending_submission"},
    "refunds": {"created"},
    "subscriptions": {"pending_customer_approval", "active"},
    "payouts": {"pending"},
}

ILLEGAL = (
    ("payments", "confirmed", "pending_submission"),
    ("payments", "paid_out", "submitted"),
    ("payments", "cancelled", "submitted"),
    ("payments", "pending_submission", "confirmed"),
    ("payments", "customer_approval_denied", "pending_submission"),
    ("payments", "failed", "confirmed"),
    ("payments", "failed", "submitted"),
    ("mandates", "active", "pending_submission"),
    ("mandates", "failed", "active"),
    ("mandates", "pending_submission", "active"),
    ("mandates", "blocked", "active"),
    ("mandates", "pending_customer_approval", "cancelled"),
    ("refunds", "paid", "submitted"),
    ("refunds", "paid", "funds_returned"),
    ("refunds", "cancelled", "paid"),
    ("refunds", "submitted", "cancelled"),
    ("subscriptions", "cancelled", "active"),
    ("subscriptions", "finished", "active"),
    ("subscriptions", "paused", "finished"),
    ("payouts", "bounced", "paid"),
    ("payouts", "pending", "bounced"),
)

# Event actions and the status each reports (None: informational), as documented.
ACTIONS = {
    "payments": {
        "created": "pending_submission",
        "customer_approval_granted": "pending_submission",
        "customer_approval_denied": "customer_approval_denied",
        "submitted": "submitted",
        "confirmed": "confirmed",
        "paid_out": "paid_out",
        "failed": "failed",
        "late_failure_settled": None,
        "charged_back": "charged_back",
        "chargeback_cancelled": "paid_out",
        "chargeback_settled": None,
        "cancelled": "cancelled",
        "resubmission_requested": "pending_submission",
        "surcharge_fee_debited": None,
        "surcharge_fee_credited": None,
    },
    "mandates": {
        "reinstated": "active",
        "transferred": None,
        "replaced": None,
        "resubmission_requested": None,
        "customer_approval_skipped": "pending_submission",
    },
    "refunds": {
        "created": "created",
        "paid": "paid",
        "failed": "bounced",
        "funds_returned": "funds_returned",
        "refund_settled": None,
    },
    "subscriptions": {"resumed": "active", "payment_created": None, "amended": None},
    "payouts": {"paid": "paid", "fx_rate_confirmed": None},
}


def _all_legal() -> list[tuple[str, str, str]]:
    return [(rt, src, dst) for rt, moves in LEGAL.items() for src, dst in moves]


@pytest.mark.parametrize(("resource_type", "src", "dst"), _all_legal())
def test_documented_move_is_legal(resource_type: str, src: str, dst: str) -> None:
    assert LIFECYCLES[resource_type].is_legal(src, dst)


@pytest.mark.parametrize("resource_type", sorted(LEGAL))
def test_graph_has_no_undocumented_move(resource_type: str) -> None:
    lc = LIFECYCLES[resource_type]
    moves = {(src, dst) for src, dsts in lc.transitions.items() for dst in dsts}
    assert moves == set(LEGAL[resource_type])


@pytest.mark.parametrize(("resource_type", "src", "dst"), ILLEGAL)
def test_sample_move_is_illegal(resource_type: str, src: str, dst: str) -> None:
    assert not LIFECYCLES[resource_type].is_legal(src, dst)


@pytest.mark.parametrize("resource_type", sorted(INITIAL))
def test_only_initial_statuses_start_a_record(resource_type: str) -> None:
    lc = LIFECYCLES[resource_type]
    assert lc.initial == INITIAL[resource_type]
    for status in lc.statuses:
        assert lc.is_legal(None, status) == (status in INITIAL[resource_type])


def test_terminal_statuses_are_derived() -> None:
    assert LIFECYCLES["payments"].terminal == {"cancelled", "customer_approval_denied"}
    assert LIFECYCLES["payouts"].terminal == {"bounced"}
    assert LIFECYCLES["refunds"].terminal == {"cancelled", "funds_returned"}


@pytest.mark.parametrize(
    ("resource_type", "src", "dst", "expected"),
    [
        ("payments", "pending_submission", "paid_out", ("submitted", "confirmed")),
        ("payments", "pending_submission", "submitted", ()),
        ("payments", "submitted", "submitted", ("failed", "pending_submission")),
        ("payments", None, "confirmed", ("pending_submission", "submitted")),
        ("payments", None, "pending_submission", ()),
        ("payments", "cancelled", "confirmed", None),
        ("payments", "pending_submission", "pending_submission", ("submitted", "failed")),
        ("payments", "confirmed", "confirmed", ("failed", "pending_submission",
                                                "submitted")),
        ("payments", "cancelled", "cancelled", None),
        ("mandates", "pending_submission", "active", ("submitted",)),
        ("mandates", None, "active", ("pending_submission", "submitted")),
        ("mandates", "pending_customer_approval", "submitted", ("pending_submission",)),
        ("mandates", "active", "pending_submission", None),
        ("refunds", "paid", "funds_returned", ("bounced",)),
        ("subscriptions", "active", "active", ("paused",)),
        ("payouts", "pending", "bounced", ("paid",)),
    ],
)
def test_path_is_shortest_route(
    resource_type: str, src: str | None, dst: str, expected: tuple[str, ...] | None
) -> None:
    assert LIFECYCLES[resource_type].path(src, dst) == expected


@pytest.mark.parametrize("resource_type", sorted(ACTIONS))
def test_documented_actions_report_their_status(resource_type: str) -> None:
    lc = LIFECYCLES[resource_type]
    for action, status in ACTIONS[resource_type].items():
        assert lc.status_for(action) == status, action


@pytest.mark.parametrize("lifecycle", list(LIFECYCLES.values()), ids=list(LIFECYCLES))
def test_every_action_reports_a_status_of_its_lifecycle_or_none(lifecycle: Lifecycle) -> None:
    for action, status in lifecycle.actions.items():
        assert status is None or status in lifecycle.statuses, action


@pytest.mark.parametrize("lifecycle", list(LIFECYCLES.values()), ids=list(LIFECYCLES))
def test_every_status_is_reachable_from_an_initial_status(lifecycle: Lifecycle) -> None:
    seen = set(lifecycle.initial)
    queue = deque(seen)
    while queue:
        for nxt in lifecycle.transitions.get(queue.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    assert seen == lifecycle.statuses


def test_unknown_action_raises() -> None:
    """The table does not know it; the apply path records it as informational."""
    with pytest.raises(UnknownAction) as caught:
        LIFECYCLES["payments"].status_for("teleported")
    assert caught.value.action == "teleported"
    assert "payments" in str(caught.value) and "teleported" in str(caught.value)


def test_created_status_overrides_the_default_initial_status() -> None:
    payments = LIFECYCLES["payments"]
    assert payments.status_for("created") == "pending_submission"
    assert payments.status_for("created", "pending_customer_approval") == (
        "pending_customer_approval"
    )
    assert payments.status_for("confirmed", "pending_customer_approval") == "confirmed"
    with pytest.raises(ValueError, match="is not initial"):
        payments.status_for("created", "confirmed")


def test_lifecycle_for_known_and_statusless_resource_types() -> None:
    assert lifecycle_for("payments") is LIFECYCLES["payments"]
    assert set(LIFECYCLES) == {"payments", "mandates", "refunds", "subscriptions", "payouts"}
    for resource_type in ("customers", "customer_bank_accounts", "creditors",
                          "instalment_schedules", "billing_requests"):
        assert lifecycle_for(resource_type) is None


def test_tables_are_frozen_and_validated() -> None:
    moves = {"a": frozenset({"b"})}
    lc = Lifecycle("things", frozenset({"a"}), moves, {"made": "a"})
    moves["b"] = frozenset({"a"})
    assert not lc.is_legal("b", "a")
    with pytest.raises(TypeError):
        lc.transitions["b"] = frozenset({"a"})  # type: ignore[index]
    with pytest.raises(ValueError, match="unknown statuses"):
        Lifecycle("things", frozenset({"a"}), {"a": frozenset({"b"})}, {"x": "zzz"})
    with pytest.raises(ValueError, match="every status once"):
        Lifecycle("things", frozenset({"a"}), {"a": frozenset({"b"})}, {}, preferred=("a",))
    with pytest.raises(ValueError, match="is not a move"):
        Lifecycle("things", frozenset({"a"}), {"a": frozenset({"a"})}, {})


@pytest.mark.parametrize(
    ("src", "dst", "avoid", "expected"),
    [
        ("pending_submission", "pending_submission", "confirmed", True),  # already there
        ("pending_submission", "failed", "confirmed", True),  # submitted -> failed
        ("pending_submission", "paid_out", "confirmed", False),  # only through confirmed
        (None, "submitted", "pending_submission", False),
        ("failed", "confirmed", "pending_submission", False),  # a retry starts over
    ],
)
def test_reachable_avoiding_a_stage(src: str | None, dst: str, avoid: str,
                                    expected: bool) -> None:
    assert LIFECYCLES["payments"].reachable_avoiding(src, dst, avoid) is expected
