"""Paybridge's lifecycle tables and the gateway emulator, each held to GoCardless' published
event types (``gocardless_events``, transcribed from the API reference; see its sources).

Neither side is compared with the other: both are compared with the partner's documents, so
an assumption shared by the product and the emulator cannot pass unnoticed.
"""

from __future__ import annotations

import pytest

from sim.gateway import lifecycles as emulator
from tests.contract.gocardless_events import (
    ACTIONS,
    ORIGINS,
    REPORTED_ELSEWHERE,
    SOURCE_URL,
    STATUS_AFTER,
    STATUSES,
)
from webhooks.lifecycles import CREATED, lifecycle_for

TYPES_WITH_STATUS = sorted(STATUSES)
EMULATED = sorted({*emulator.TRANSITIONS, *emulator.CREATED, "customers"})


def test_the_table_names_its_source_and_only_documented_origins() -> None:
    assert SOURCE_URL.startswith("https://developer.gocardless.com/api-reference")
    for resource, actions in ACTIONS.items():
        for action, pairs in actions.items():
            assert {origin for origin, _ in pairs} <= ORIGINS, (resource, action)


# (a) every action, cause and origin the emulator can emit is published -------------------


@pytest.mark.parametrize("resource", EMULATED)
def test_the_emulator_emits_only_published_actions_causes_and_origins(resource: str) -> None:
    published = ACTIONS[resource]
    for action, pairs in emulator.event_details(resource).items():
        assert action in published, f"{resource} {action!r} is not a GoCardless event action"
        unpublished = pairs - published[action]
        assert not unpublished, f"{resource} {action}: undocumented origin/cause {unpublished}"
    assert emulator.ORIGINS == ORIGINS


def test_the_emulator_moves_statuses_as_documented() -> None:
    for (resource, action), status in STATUS_AFTER.items():
        assert emulator.TRANSITIONS[resource][action].target == status, (resource, action)


# (b) every published action is known to Paybridge ---------------------------------------


@pytest.mark.parametrize("resource", sorted(ACTIONS))
def test_paybridge_knows_every_published_action(resource: str) -> None:
    lifecycle = lifecycle_for(resource)
    if lifecycle is None:
        # No lifecycle (customers): every event of the type is recorded as informational.
        assert resource == "customers"
        return
    unknown = set(ACTIONS[resource]) - set(lifecycle.actions)
    assert not unknown, f"Paybridge's {resource} table lacks published actions {unknown}"
    for action in ACTIONS[resource]:
        status = lifecycle.status_for(action)
        assert status is None or status in STATUSES[resource], (resource, action, status)


@pytest.mark.parametrize("resource", TYPES_WITH_STATUS)
def test_paybridge_invents_no_action(resource: str) -> None:
    """An action Paybridge knows but GoCardless does not publish must at least be one that
    another source reports (so a made-up action cannot hide in the tables)."""
    lifecycle = lifecycle_for(resource)
    assert lifecycle is not None
    extra = set(lifecycle.actions) - set(ACTIONS[resource])
    assert extra <= REPORTED_ELSEWHERE.get(resource, frozenset()), extra


def test_paybridge_moves_statuses_as_documented() -> None:
    for (resource, action), status in STATUS_AFTER.items():
        if (resource, action) == ("mandates", "replaced"):
            continue  # the CRM record follows the replacement mandate (re-linked), see apply
        lifecycle = lifecycle_for(resource)
        assert lifecycle is not None
        assert lifecycle.status_for(action) == status, (resource, action)


def test_payouts_are_not_announced_by_a_created_event() -> None:
    assert CREATED not in ACTIONS["payouts"]
    payouts = lifecycle_for("payouts")
    assert payouts is not None and CREATED not in payouts.actions
    assert "payouts" not in emulator.CREATED


# (c) statuses: Paybridge's and the emulator's equal the published enums -----------------


@pytest.mark.parametrize("resource", TYPES_WITH_STATUS)
def test_status_sets_equal_the_published_enums(resource: str) -> None:
    lifecycle = lifecycle_for(resource)
    assert lifecycle is not None
    assert lifecycle.statuses == STATUSES[resource], "Paybridge"
    assert emulator.statuses(resource) == STATUSES[resource], "emulator"
