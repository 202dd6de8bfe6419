"""Where a resource first heard of through its ``created`` event really started.

The lifecycle table's default starting status is wrong for restricted mandates and for
payments and subscriptions awaiting customer approval (``pending_customer_approval``), and
a ``created`` event does not say which it is. The gateway does: its current status is the
starting one while it is still a starting status; once it has moved on, an approval event
held for the resource shows that it started awaiting approval.
"""

from __future__ import annotations

from typing import Any

from app.mapping import OBJECTS
from app.records import service as records
from app.workrows.leases import Lease
from webhooks import service
from webhooks.lifecycles import CREATED, lifecycle_for

AWAITING_APPROVAL = "pending_customer_approval"
# Events only a resource that started awaiting its customer's approval receives.
APPROVAL_ACTIONS = frozenset({"customer_approval_granted", "customer_approval_denied",
                              "customer_approval_skipped"})


def starting_status(ctx: Any, obj: str, gateway_id: str,
                    lease: Lease) -> tuple[dict[str, Any] | None, str | None]:
    """``(resource, created_status)`` for a resource new to Paybridge whose created event is
    waiting: the resource as the gateway reports it (the caller reuses it to make the CRM
    record) and its real starting status (``None``: the table's default). ``(None, None)``
    when there is nothing to ask. ``ctx`` is the webhook context; no transaction is open
    during the gateway call."""
    resource_type = OBJECTS[obj].resource
    lifecycle = lifecycle_for(resource_type)
    if lifecycle is None:
        return None, None
    with ctx.db.transaction() as session:
        link = records.find_link(session, obj, gateway_id=gateway_id)
        if link is not None and link.status is not None:
            return None, None
        actions = service.workable_actions(session, resource_type, gateway_id)
    if CREATED not in actions:
        return None, None
    lease.ensure(ctx.db, ctx.settings.partner_call_budget)
    resource = ctx.gateway.get(resource_type, gateway_id)
    status = resource.get("status")
    if status in lifecycle.initial:
        return resource, str(status)
    if APPROVAL_ACTIONS & actions and AWAITING_APPROVAL in lifecycle.initial:
        return resource, AWAITING_APPROVAL
    return resource, None
