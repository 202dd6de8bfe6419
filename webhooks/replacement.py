"""A replaced mandate: the CRM record follows the mandate that replaces it.

GoCardless replaces a mandate when the creditor moves to a new scheme identifier: the event
is mandates ``replaced`` with ``links[new_mandate]`` (API reference, event types,
https://developer.gocardless.com/api-reference/#event-types), and the old mandate becomes
cancelled. Payments must go to the new mandate from then on, so Paybridge moves the CRM
mandate's link to the new id (and the caller writes it into the CRM's gateway id field);
the old mandate's history stays with the record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clients.errors import PermanentError, TransientError
from app.clock import utcnow
from app.records import service as records
from app.records.models import StatusHistory
from app.workrows.leases import Lease, LeaseLost
from webhooks import service
from webhooks.models import WebhookEvent

REPLACED = "replaced"


def replacement_of(ev: WebhookEvent) -> str | None:
    """The id of the mandate that replaces this event's mandate, if it announces one."""
    if ev.resource_type != "mandates" or ev.action != REPLACED:
        return None
    new = ((ev.payload or {}).get("links") or {}).get("new_mandate")
    return str(new) if new else None


def relink(session: Session, obj: str, old_id: str, new_id: str, lease: Lease, *,
           event_time: datetime | None) -> None:
    """Point the record's link (held under ``lease``) at ``new_id``, in the history too.

    Raises ``TransientError`` while another job holds a link of the new mandate, and
    ``PermanentError`` when the new mandate already has a record of its own (two CRM
    records cannot be merged by Paybridge: an admin decides).
    """
    if not service.holds_resource(session, obj, old_id, lease):
        lease.drop("relink", gateway_id=old_id)
        raise LeaseLost(f"{obj} {old_id} was taken over before it was re-linked")
    link = records.find_link(session, obj, gateway_id=old_id)
    assert link is not None  # held above
    other = records.find_link(session, obj, gateway_id=new_id)
    if other is not None:
        _clear_the_way(session, other, obj, old_id, new_id)
    if link.crm_id:
        # Entries written before the CRM record existed name only the old id: give them the
        # record's id, so its history still finds them once the link names the new mandate.
        session.execute(sa.update(StatusHistory).where(
            StatusHistory.object == obj, StatusHistory.gateway_id == old_id,
            StatusHistory.crm_id.is_(None)).values(crm_id=link.crm_id))
    link.gateway_id = new_id
    records.record_transition(session, link, None, source="webhook", event_time=event_time,
                              cause=f"{REPLACED}: re-linked from {old_id} to {new_id}",
                              watermark=False)
    # The old mandate's events still to work on follow the record (a retry finds it).
    session.execute(sa.update(WebhookEvent).where(
        WebhookEvent.resource_type == "mandates", WebhookEvent.resource_id == old_id)
        .values(resource_id=new_id))


def _clear_the_way(session: Session, other: Any, obj: str, old_id: str, new_id: str) -> None:
    """A link row for the new mandate exists: drop it if it is an empty placeholder."""
    leased = other.lease_owner is not None and other.lease_until is not None and (
        other.lease_until > utcnow())
    if leased:
        raise TransientError(f"{obj} {new_id} is being worked on; re-link {old_id} later")
    if other.crm_id or other.status:
        raise PermanentError(
            f"{obj} {old_id} was replaced by {new_id}, which already has its own record "
            f"({other.crm_id or 'status ' + str(other.status)}); link the CRM record by hand")
    session.delete(other)
    session.flush()
