"""Links between CRM records and gateway resources, and the status history.

Every status change goes through ``record_transition`` so the link's status and its history
row are written in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.records.models import RecordLink, StatusHistory


def find_link(session: Session, obj: str, *, crm_id: str | None = None,
              gateway_id: str | None = None) -> RecordLink | None:
    query = sa.select(RecordLink).where(RecordLink.object == obj)
    if crm_id is not None:
        query = query.where(RecordLink.crm_id == crm_id)
    elif gateway_id is not None:
        query = query.where(RecordLink.gateway_id == gateway_id)
    else:
        raise ValueError("find_link needs crm_id or gateway_id")
    return session.scalars(query).first()


def gateway_ids(session: Session, obj: str, crm_ids: Iterable[str]) -> dict[str, str]:
    """CRM id -> gateway id for the given records of one object (one query)."""
    ids = list(set(crm_ids))
    if not ids:
        return {}
    rows = session.execute(
        sa.select(RecordLink.crm_id, RecordLink.gateway_id).where(
            RecordLink.object == obj, RecordLink.crm_id.in_(ids),
            RecordLink.gateway_id.is_not(None))
    )
    return {crm: gw for crm, gw in rows}


def upsert_link(session: Session, obj: str, *, crm_id: str | None, gateway_id: str | None,
                for_update: bool = True) -> RecordLink:
    """Find the link by either id (locking it on PostgreSQL) or create it, filling gaps."""
    return upsert_links(session, obj, [(crm_id, gateway_id)], for_update=for_update)[0]


def upsert_links(session: Session, obj: str, pairs: Sequence[tuple[str | None, str | None]],
                 *, for_update: bool = True) -> list[RecordLink]:
    """``upsert_link`` for many records of one object in at most three statements: the link
    of each (CRM id, gateway id), found by CRM id first, then by gateway id, else created;
    gaps filled; returned in the order asked. Locks are taken in id order, the same for
    every caller, so two batches never wait on each other in a circle."""
    by_crm = _links_by(session, obj, RecordLink.crm_id, {c for c, _ in pairs if c},
                       for_update)
    by_gateway = _links_by(session, obj, RecordLink.gateway_id,
                           {g for c, g in pairs if g and c not in by_crm}, for_update)
    found, created = [], False
    for crm_id, gateway_id in pairs:
        link = (by_crm.get(crm_id) if crm_id else None) or (
            by_gateway.get(gateway_id) if gateway_id else None)
        if link is None:
            link = RecordLink(object=obj, crm_id=crm_id, gateway_id=gateway_id)
            session.add(link)
            created = True
        if crm_id and not link.crm_id:
            link.crm_id = crm_id
        if gateway_id and not link.gateway_id:
            link.gateway_id = gateway_id
        by_crm.update({link.crm_id: link} if link.crm_id else {})
        by_gateway.update({link.gateway_id: link} if link.gateway_id else {})
        found.append(link)
    if created:
        session.flush()
    return found


def _links_by(session: Session, obj: str, column: Any, values: set[str],
              for_update: bool) -> dict[str, RecordLink]:
    if not values:
        return {}
    query = sa.select(RecordLink).where(RecordLink.object == obj, column.in_(sorted(values)))
    if for_update:
        query = query.order_by(RecordLink.id).with_for_update()
    return {getattr(link, column.key): link for link in session.scalars(query)}


def record_transition(
    session: Session, link: RecordLink, to_status: str | None, *, source: str,
    cause: str | None = None, event_id: str | None = None, event_time: datetime | None = None,
    queue_item_id: int | None = None, watermark: bool = True,
) -> StatusHistory:
    """Append one history row and move the link's status (None: an informational entry).

    ``watermark`` False records the event without moving the resource's last-applied event
    (informational events must not make older status events look stale).
    """
    entry = StatusHistory(
        object=link.object, crm_id=link.crm_id, gateway_id=link.gateway_id,
        from_status=link.status, to_status=to_status if to_status is not None else link.status,
        cause=cause, event_id=event_id, event_time=event_time, applied_at=utcnow(),
        source=source, queue_item_id=queue_item_id,
    )
    session.add(entry)
    if to_status is not None:
        link.status = to_status
    if watermark and event_id is not None and event_time is not None:
        link.last_event_id, link.last_event_at = event_id, event_time
    return entry


def history(session: Session, obj: str, record_id: str) -> tuple[RecordLink | None,
                                                                list[StatusHistory]]:
    """The link and its full history, looked up by CRM id or gateway id."""
    link = find_link(session, obj, crm_id=record_id) or find_link(
        session, obj, gateway_id=record_id)
    if link is None:
        return None, []
    conds = []
    if link.crm_id:
        conds.append(StatusHistory.crm_id == link.crm_id)
    if link.gateway_id:
        conds.append(StatusHistory.gateway_id == link.gateway_id)
    rows = session.scalars(
        sa.select(StatusHistory).where(StatusHistory.object == obj, sa.or_(*conds))
        .order_by(StatusHistory.id)  # appended in the order applied, which is event order
    ).all()
    return link, list(rows)


def history_dict(entry: StatusHistory) -> dict[str, Any]:
    return {
        "from": entry.from_status, "to": entry.to_status, "cause": entry.cause,
        "event_id": entry.event_id, "source": entry.source,
        "event_time": entry.event_time.isoformat() if entry.event_time else None,
        "applied_at": entry.applied_at.isoformat(), "queue_item_id": entry.queue_item_id,
        "crm_id": entry.crm_id, "gateway_id": entry.gateway_id,
    }
