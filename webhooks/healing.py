"""Healing a gap that waiting did not close: the gateway's current state of the resource
proves which stages happened (they are recorded, and the parked event classified again),
or it contradicts them (the event goes to an admin instead of guessing). The gateway call
is made outside any transaction; what it answered is written only while the resource is
still held.
"""

from __future__ import annotations

import logging

from app.clients.errors import PartnerError, TransientError
from app.records import service as records
from app.workrows.leases import Lease
from app.workrows.rows import PENDING
from app.workrows.states import log_attempt, transition
from webhooks import service
from webhooks.context import Touched, WebhookContext, count_failure
from webhooks.lifecycles import lifecycle_for
from webhooks.models import WebhookEvent

log = logging.getLogger(__name__)


def heal(ctx: WebhookContext, item: Touched, event_row: int, lease: Lease) -> None:
    """Waiting did not close the gap: ask the gateway where the resource is now."""
    resource = item.resource_type
    lifecycle = lifecycle_for(resource)
    lease.ensure(ctx.db, ctx.settings.partner_call_budget)
    try:
        gateway_status = str(ctx.gateway.get(resource, item.gateway_id).get("status"))
    except TransientError as exc:  # the gateway will answer later; the event stays parked
        log.warning("could not heal from the gateway", extra={"error": str(exc)})
        return
    except PartnerError as exc:
        # A refusal (404: the gateway has no such resource) will not change by waiting: the
        # event goes to an admin with the gateway's own words instead of parking forever.
        with ctx.db.transaction() as session:
            ev = session.get(WebhookEvent, event_row)
            if not service.holds_resource(session, item.obj, item.gateway_id, lease):
                lease.drop("heal", event=event_row)
            elif ev is not None:
                count_failure(ctx, ev, stage="heal", transient=False, schedule=(), jitter=0,
                                error=f"{ev.reason}; cannot heal, the gateway answered "
                                f"{exc.status}: {exc}")
        return
    with ctx.db.transaction() as session:
        if not service.holds_resource(session, item.obj, item.gateway_id, lease):
            lease.drop("heal", event=event_row)
            return
        link = records.upsert_link(session, item.obj, crm_id=None, gateway_id=item.gateway_id)
        # A parked event is not leased itself; the resource lease just checked covers it.
        ev = session.get(WebhookEvent, event_row)
        if ev is None or lifecycle is None:
            return
        target = lifecycle.status_for(ev.action)
        route = lifecycle.path(link.status, target) if target else None
        confirmed = target is not None and (gateway_status == target or (
            lifecycle.path(target, gateway_status) is not None
            and not lifecycle.reachable_avoiding(link.status, gateway_status, target)))
        if route is not None and confirmed:
            for missing in route:  # the gateway's state proves these stages happened
                records.record_transition(session, link, missing, source="heal",
                                          cause=f"missing event; gateway is {gateway_status}")
            item.needs_write = item.needs_write or bool(route)
            transition(ev, PENDING, hold=True)  # classified again in this job, leased then
            log_attempt(ev, {"stage": "heal", "outcome": "healed",
                             "error": f"filled {', '.join(route) or 'nothing'}"})
        else:
            count_failure(
                ctx, ev, stage="heal", transient=False, schedule=(), jitter=0,
                error=f"{ev.reason}; the gateway reports {gateway_status}, which does not "
                      "confirm the missing stages")
