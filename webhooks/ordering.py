"""Decide what to do with one gateway event, given what Paybridge knows of its resource.

Per resource Paybridge keeps a *watermark*: the status it believes the resource has and the
``(created_at, id)`` of the last event that changed it. "Never back in time" is judged by
that event time, not by a status rank: late failures and chargeback reversals legitimately
move a payment to an "earlier looking" status. Everything here is pure; the caller stores
the watermark, parks gaps and heals them.

The caller's contract, which together with ``classify`` keeps events in order:

* ``apply``: record the move, set the watermark to the event's ``(created_at, id)``, then
  re-classify the parked events of the resource, oldest first.
* ``informational``: record a history entry; the watermark does **not** move, so an early
  informational event can never make an older status event look stale.
* ``stale``: do not apply; keep it visible as stale.
* ``gap``: park it; it is woken by the next ``apply`` on the resource, and healed with
  ``heal_decision`` from the gateway's current state when waiting does not help.
* ``illegal``: fail it with ``reason`` for an admin.

Datetimes must be timezone-aware (GoCardless ``created_at`` is UTC); naive and aware times
do not compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from webhooks.lifecycles import CREATED, Lifecycle

Watermark = tuple[datetime, str]
Kind = Literal["apply", "stale", "gap", "illegal", "informational"]


@dataclass(frozen=True)
class Decision:
    """The verdict on one event.

    ``to_status``: the status the event reports (``None`` for an event that reports none).
    ``reason``: one line for an admin. ``missing``: for a gap, the statuses expected
    between the current one and ``to_status``, in order.
    """

    kind: Kind
    to_status: str | None
    reason: str
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class Heal:
    """How to bring a record to the gateway's current status.

    ``statuses``: the statuses to record, in order, ending with the gateway's (empty when
    the record is already there). ``possible`` is False when the gateway's status cannot be
    reached from the record's, in which case ``statuses`` is empty and ``reason`` says why.
    """

    possible: bool
    statuses: tuple[str, ...]
    reason: str


def _name(lifecycle: Lifecycle, resource_id: str | None) -> str:
    return f"{lifecycle.resource_type} {resource_id}" if resource_id else lifecycle.resource_type


def classify(
    lifecycle: Lifecycle,
    current_status: str | None,
    watermark: Watermark | None,
    event_action: str,
    event_created_at: datetime,
    event_id: str,
    *,
    resource_id: str | None = None,
    created_status: str | None = None,
) -> Decision:
    """Classify an event for a resource whose status is ``current_status``.

    ``current_status`` / ``watermark`` are ``None`` while Paybridge has no record / has
    applied no event. ``resource_id`` only names the resource in the reason;
    ``created_status`` is passed to ``Lifecycle.status_for``. Checks run in this order:

    1. stale: ``(created_at, id)`` is not newer than the watermark (equal: "already applied");
    2. informational: the action reports no status, or it is ``created`` for a resource that
       already has a status (from the API answer, a heal or a re-link: its creation is
       behind it, whatever the table's default starting status is);
    3. same status: a repeat of a status on no cycle is informational; on a cycle (payments
       submitted -> failed -> submitted) a newer repeat is a new round whose intermediate
       events are missing, so it is a gap;
    4. apply: a legal move; gap: reachable only through other statuses (also any
       non-initial status for an unknown resource); illegal: unreachable.

    Raises ``UnknownAction`` for an action the lifecycle does not know.
    """
    known = event_action == CREATED and current_status is not None
    to_status = current_status if known else lifecycle.status_for(event_action, created_status)
    name = _name(lifecycle, resource_id)
    if watermark is not None and (event_created_at, event_id) <= watermark:
        if (event_created_at, event_id) == watermark:
            return Decision("stale", to_status, f"{name}: event {event_id} already applied")
        return Decision(
            "stale",
            to_status,
            f"{name}: event {event_id} ({event_created_at.isoformat()}) is older than the "
            f"last applied event {watermark[1]} ({watermark[0].isoformat()}); not applied",
        )
    if to_status is None:
        return Decision(
            "informational", None, f"{name}: {event_action!r} changes no status; recorded"
        )
    if known:
        return Decision("informational", to_status,
                        f"{name}: created, and already {to_status}; nothing to change")
    if to_status == current_status:
        cycle = lifecycle.path(current_status, current_status)
        if cycle is None:
            return Decision(
                "informational", to_status, f"{name}: already {to_status}; nothing to change"
            )
        return Decision(
            "gap",
            to_status,
            f"{name}: already {to_status}, yet a newer {event_action!r} means a new round "
            f"through {', '.join(cycle)}; waiting for the missing events",
            cycle,
        )
    if lifecycle.is_legal(current_status, to_status):
        return Decision("apply", to_status, f"{name}: {current_status or 'new'} -> {to_status}")
    route = lifecycle.path(current_status, to_status)
    if route is not None:
        if current_status is None:
            reason = (
                f"{name}: not known to Paybridge and {to_status} is not a starting status; "
                f"fetch its state from the gateway"
            )
        else:
            reason = (
                f"{name}: {current_status} -> {to_status} skips {', '.join(route)}; "
                f"waiting for the missing event"
            )
        return Decision("gap", to_status, reason, route)
    if current_status not in lifecycle.statuses:
        reason = f"{name}: {current_status!r} is not a {lifecycle.resource_type} status"
    else:
        reason = f"{name}: {current_status} cannot become {to_status}; no such move exists"
    return Decision("illegal", to_status, reason)


def heal_decision(
    lifecycle: Lifecycle,
    current_status: str | None,
    gateway_status: str,
    *,
    resource_id: str | None = None,
) -> Heal:
    """Plan how to bring a record forward to the status the gateway reports now.

    Used when a gap does not close by waiting. An unknown resource adopts the gateway's
    status (Paybridge has no earlier history to keep in order). A known one goes through
    the statuses of a shortest route, which fills the stages whose events never came; a
    status it cannot reach (the gateway would be "behind" it) cannot be healed.
    """
    name = _name(lifecycle, resource_id)
    if gateway_status not in lifecycle.statuses:
        return Heal(False, (), f"{name}: gateway status {gateway_status!r} is not in the lifecycle")
    if current_status is None:
        return Heal(True, (gateway_status,), f"{name}: new to Paybridge; adopt {gateway_status}")
    if current_status == gateway_status:
        return Heal(True, (), f"{name}: already {gateway_status}; in step with the gateway")
    route = lifecycle.path(current_status, gateway_status)
    if route is None:
        return Heal(
            False, (), f"{name}: {current_status} cannot become {gateway_status}; needs an admin"
        )
    steps = (*route, gateway_status)
    return Heal(True, steps, f"{name}: {current_status} -> {' -> '.join(steps)}")
