"""Declarative lifecycle graphs of the gateway resources Paybridge keeps in step.

One table per resource type says which statuses a resource may start in, which status may
follow which (the legal moves), and which status each event ``action`` reports (``None``:
the event is informational and changes no status). Statuses and actions are the public
GoCardless ones. Nothing here does I/O; the tables are data, checked once at import.

Where the tables go beyond the plain chains of the design, the reason is written next to
the move. The actions are GoCardless' published event types
(https://developer.gocardless.com/api-reference/#event-types; tests/contract holds them and
checks these tables against them). The refund table in particular follows GoCardless'
published refund events (``created``, ``paid``, ``failed``, ``refund_settled``,
``funds_returned``): the ``pending_submission`` and ``submitted`` stages exist as statuses
but are announced by no event, so a refund may reach an announced status straight from an
unannounced one; waiting for an event that is never sent would park every refund until it
is healed. Likewise no event announces a new payout: the first one is ``paid``.

GoCardless adds event types without a new API version and asks receivers to ignore what
they do not know, so an action missing here is recorded as informational by the caller
(``UnknownAction``), never failed.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

# The action GoCardless uses for a resource's first event.
CREATED = "created"


class UnknownAction(ValueError):
    """An event action the resource type's table does not know.

    Paybridge cannot interpret such an event, and GoCardless says receivers should ignore
    actions they do not know: the caller records it as informational (history, no status
    change) with ``str(error)`` as the reason; it is never dropped and never failed.
    """

    def __init__(self, resource_type: str, action: str) -> None:
        super().__init__(f"{resource_type}: unknown event action {action!r}")
        self.resource_type = resource_type
        self.action = action


@dataclass(frozen=True)
class Lifecycle:
    """The lifecycle of one gateway resource type.

    ``initial``: the statuses a resource can have when Paybridge first hears of it.
    ``transitions``: status -> the statuses that may directly follow it.
    ``actions``: event action -> the status it reports, or ``None`` for an informational
    event. ``preferred``: every status once, the usual line first and detours (cancellation,
    failure) last; when two shortest routes tie, ``path`` takes the one through preferred
    statuses. The mappings are frozen on construction; an inconsistent table raises
    ``ValueError``.
    """

    resource_type: str
    initial: frozenset[str]
    transitions: Mapping[str, frozenset[str]] = field(hash=False)
    actions: Mapping[str, str | None] = field(hash=False)
    preferred: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Frozen copies, so a caller holding the original dicts cannot change the graph.
        moves = {src: frozenset(dst) for src, dst in self.transitions.items()}
        object.__setattr__(self, "initial", frozenset(self.initial))
        object.__setattr__(self, "transitions", MappingProxyType(moves))
        object.__setattr__(self, "actions", MappingProxyType(dict(self.actions)))
        if not self.initial:
            raise ValueError(f"{self.resource_type}: no initial status")
        for src, dsts in moves.items():
            if src in dsts:
                raise ValueError(f"{self.resource_type}: {src} -> {src} is not a move")
        unknown = {s for s in self.actions.values() if s is not None} - self.statuses
        if unknown:
            raise ValueError(f"{self.resource_type}: actions name unknown statuses {unknown}")
        if self.preferred and sorted(self.preferred) != sorted(self.statuses):
            raise ValueError(f"{self.resource_type}: preferred must list every status once")

    @cached_property
    def statuses(self) -> frozenset[str]:
        """Every status of the graph."""
        found = set(self.initial) | set(self.transitions)
        for dsts in self.transitions.values():
            found |= dsts
        return frozenset(found)

    @cached_property
    def _rank(self) -> Mapping[str, int]:
        # Without a preference, names decide, which at least keeps answers stable.
        order = self.preferred or tuple(sorted(self.statuses))
        return {status: index for index, status in enumerate(order)}

    @cached_property
    def terminal(self) -> frozenset[str]:
        """Statuses no move leaves."""
        return frozenset(s for s in self.statuses if not self.transitions.get(s))

    def successors(self, status: str | None) -> frozenset[str]:
        """Statuses one move away; from ``None`` (no record yet) these are the initial ones."""
        if status is None:
            return self.initial
        return self.transitions.get(status, frozenset())

    def is_legal(self, from_status: str | None, to_status: str) -> bool:
        """Whether ``to_status`` may directly follow ``from_status`` (``None``: no record)."""
        return to_status in self.successors(from_status)

    def path(self, from_status: str | None, to_status: str) -> tuple[str, ...] | None:
        """The statuses between the two on a shortest route of one or more moves.

        ``()`` when the move is direct, ``None`` when ``to_status`` cannot be reached. From
        ``None`` the route starts at an initial status, which is then part of the answer
        unless it is ``to_status`` itself. ``path(s, s)`` answers the shortest cycle through
        ``s`` (``None`` when ``s`` lies on no cycle). Among equally short routes the one
        through the most preferred statuses wins (a mandate reaches active from
        pending_submission through submitted, not through cancelled and a reinstatement).
        """
        # Cheapest-first search; a route costs (moves, sum of the ranks it passes through).
        heap: list[tuple[int, int, tuple[str, ...]]] = [
            (1, self._rank[s], (s,)) for s in self.successors(from_status)
        ]
        heapq.heapify(heap)
        done: set[str] = set()
        while heap:
            moves, rank, route = heapq.heappop(heap)
            status = route[-1]
            if status == to_status:
                return route[:-1]
            if status in done:
                continue
            done.add(status)
            for nxt in self.successors(status):
                heapq.heappush(heap, (moves + 1, rank + self._rank[nxt], (*route, nxt)))
        return None

    def reachable_avoiding(self, from_status: str | None, to_status: str, avoid: str) -> bool:
        """Whether ``to_status`` can be reached from ``from_status`` (zero or more moves;
        ``None``: no record) without passing through ``avoid``. A heal uses it: the gateway's
        status proves a stage happened only if no route to it skips that stage (with retry
        and reinstatement cycles, "reachable from the stage" alone proves nothing)."""
        if from_status == to_status:
            return True
        seen: set[str] = set()
        todo = [s for s in self.successors(from_status) if s != avoid]
        while todo:
            status = todo.pop()
            if status == to_status:
                return True
            if status in seen:
                continue
            seen.add(status)
            todo.extend(s for s in self.successors(status) if s != avoid)
        return False

    def status_for(self, action: str, created_status: str | None = None) -> str | None:
        """The status an event ``action`` reports; ``None`` for an informational event.

        A ``created`` event reports the table's default initial status unless the caller
        knows better (e.g. the resource was fetched and is ``pending_customer_approval``):
        ``created_status`` then overrides it and must be an initial status. Raises
        ``UnknownAction`` for an action the table does not know.
        """
        if action not in self.actions:
            raise UnknownAction(self.resource_type, action)
        if action == CREATED and created_status is not None:
            if created_status not in self.initial:
                raise ValueError(f"{self.resource_type}: {created_status!r} is not initial")
            return created_status
        return self.actions[action]


def _graph(**moves: str) -> dict[str, frozenset[str]]:
    """``status="next other"`` keyword pairs -> a transitions mapping (keeps tables terse)."""
    return {src: frozenset(dsts.split()) for src, dsts in moves.items()}


PAYMENTS = Lifecycle(
    resource_type="payments",
    initial=frozenset({"pending_customer_approval", "pending_submission"}),
    transitions=_graph(
        # Cancelling works until the payment is submitted, approval pending or not.
        pending_customer_approval="pending_submission customer_approval_denied cancelled",
        pending_submission="submitted cancelled",
        submitted="confirmed failed",
        confirmed="paid_out failed",  # late failure
        paid_out="charged_back failed",  # late failure
        charged_back="paid_out",  # chargeback cancelled
        # A retry: "retrying the payment follows the same process as its initial creation"
        # (gocardless_pro PaymentsService.retry), so resubmission_requested makes it
        # pending_submission again and the submitted event follows.
        failed="pending_submission",
    ),
    actions={
        CREATED: "pending_submission",
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
        # Not on GoCardless' event-types pages; Zuora's GoCardless table lists it.
        "surcharge_fee_credited": None,
    },
    preferred=(
        "pending_submission", "submitted", "confirmed", "paid_out", "pending_customer_approval",
        "charged_back", "failed", "customer_approval_denied", "cancelled",
    ),
)

MANDATES = Lifecycle(
    resource_type="mandates",
    initial=frozenset({"pending_customer_approval", "pending_submission"}),
    transitions=_graph(
        # Blocks are matched when a mandate is created, so blocking comes before submission
        # too; a mandate can be cancelled (by the merchant or the bank) once it is pending
        # submission, before activation.
        pending_customer_approval="pending_submission blocked",
        pending_submission="submitted failed blocked cancelled",
        submitted="active failed cancelled",
        # active -> submitted: after a bank-account transfer the mandate is resubmitted to
        # the new bank (GoCardless sends submitted with cause bank_account_transferred).
        active="submitted cancelled expired consumed blocked suspended_by_payer",
        # Reinstatement: through the reinstate endpoint the mandate is submitted again and
        # becomes active (reinstated) or fails; a bank undoing its own cancellation or
        # expiry notice makes it active directly, with no submission.
        cancelled="submitted active",
        expired="submitted active",
    ),
    actions={
        CREATED: "pending_submission",
        "customer_approval_granted": "pending_submission",
        "customer_approval_skipped": "pending_submission",
        "submitted": "submitted",
        "active": "active",
        "reinstated": "active",
        "failed": "failed",
        "cancelled": "cancelled",
        "expired": "expired",
        "consumed": "consumed",
        "blocked": "blocked",
        # The status is published, an event for entering it is not: understood in case.
        "suspended_by_payer": "suspended_by_payer",
        # The mandate stays as it is: it moved to another bank account or scheme identifier.
        "transferred": None,
        "replaced": None,
        # Only prepares cancelled|expired -> submitted; the submitted event makes the move.
        "resubmission_requested": None,
    },
    preferred=(
        "pending_submission", "submitted", "active", "pending_customer_approval", "cancelled",
        "expired", "failed", "blocked", "consumed", "suspended_by_payer",
    ),
)

REFUNDS = Lifecycle(
    resource_type="refunds",
    initial=frozenset({"created"}),
    transitions=_graph(
        # pending_submission and submitted are announced by no GoCardless event (see the
        # module docstring), so paid / bounced may follow created or pending_submission.
        created="pending_submission submitted paid bounced cancelled",
        pending_submission="submitted paid bounced cancelled",
        submitted="paid bounced",
        paid="bounced",  # a refund can fail even after it was settled
        bounced="funds_returned",  # the failed refund's money is credited back in a payout
    ),
    actions={
        CREATED: "created",
        "paid": "paid",
        "failed": "bounced",
        "funds_returned": "funds_returned",
        "refund_settled": None,  # deducted from a payout; the status does not change
    },
    preferred=(
        "created", "pending_submission", "submitted", "paid", "bounced", "funds_returned",
        "cancelled",
    ),
)

SUBSCRIPTIONS = Lifecycle(
    resource_type="subscriptions",
    initial=frozenset({"pending_customer_approval", "active"}),
    transitions=_graph(
        pending_customer_approval="active customer_approval_denied",
        active="paused finished cancelled",
        paused="active cancelled",
    ),
    actions={
        CREATED: "active",
        "customer_approval_granted": "active",
        "customer_approval_denied": "customer_approval_denied",
        "paused": "paused",
        "resumed": "active",
        "finished": "finished",
        "cancelled": "cancelled",
        "payment_created": None,
        "amended": None,
        # Announce a future pause / resume; the paused / resumed events make the move.
        **dict.fromkeys(("scheduled_pause", "scheduled_pause_cancelled", "scheduled_resume",
                         "scheduled_resume_cancelled")),
    },
    preferred=(
        "active", "pending_customer_approval", "paused", "finished", "cancelled",
        "customer_approval_denied",
    ),
)

PAYOUTS = Lifecycle(
    resource_type="payouts",
    initial=frozenset({"pending"}),
    transitions=_graph(pending="paid", paid="bounced"),
    # GoCardless announces no new payout and no bounce (a bounce is a creditors event):
    # Paybridge learns of a payout from paid (a gap for an unknown resource, healed from the
    # gateway at once, as no created event will ever come).
    actions={
        "paid": "paid",
        "fx_rate_confirmed": None,
        "tax_exchange_rates_confirmed": None,
    },
    preferred=("pending", "paid", "bounced"),
)

LIFECYCLES: dict[str, Lifecycle] = {
    lc.resource_type: lc for lc in (PAYMENTS, MANDATES, REFUNDS, SUBSCRIPTIONS, PAYOUTS)
}


def lifecycle_for(resource_type: str) -> Lifecycle | None:
    """The lifecycle of a GoCardless resource type; ``None`` for types without statuses
    (customers, customer_bank_accounts, creditors, billing_requests, ...)."""
    return LIFECYCLES.get(resource_type)
