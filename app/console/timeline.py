"""Status history search and timelines: what payment operations read.

A search term is tried as a CRM id, a gateway id, a reference, and a customer (gateway id,
or words of the name or e-mail); a customer brings every record noted under it. A timeline
is the record's status history plus what is still waiting beside it: webhook events that
are stale, parked, pending or Failed, and the API Queue items of the record (open or done).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db import Database
from app.errors import NotFound
from app.mapping import OBJECTS
from app.records import service as records
from app.records.models import RecordLink
from app.records.refs import RecordRef
from queues.models import ArchivedItem, QueueItem
from webhooks.models import WebhookEvent

MAX_RESULTS = 100
ORDER = {name: index for index, name in enumerate(OBJECTS)}


def _customer_ids(session: Session, term: str) -> set[str]:
    """Gateway ids of the customers the term names (id, CRM id, name or e-mail words)."""
    found = set(session.scalars(sa.select(RecordLink.gateway_id).where(
        RecordLink.object == "Customer", RecordLink.gateway_id.is_not(None),
        sa.or_(RecordLink.crm_id == term, RecordLink.gateway_id == term))))
    if len(term) >= 3:
        words = term.lower().split()
        conds = [RecordRef.label.contains(word, autoescape=True) for word in words]
        found |= set(session.scalars(sa.select(RecordRef.gateway_id).where(
            RecordRef.object == "Customer", *conds).limit(MAX_RESULTS)))
    return found


def search(db: Database, term: str) -> list[dict[str, Any]]:
    term = term.strip()
    if not term:
        return []
    with db.transaction() as session:
        keys = {(o, g) for o, g in session.execute(sa.select(RecordRef.object, RecordRef.gateway_id)
                                                   .where(RecordRef.reference == term))}
        customers = _customer_ids(session, term)
        if customers:
            keys |= {(o, g) for o, g in session.execute(
                sa.select(RecordRef.object, RecordRef.gateway_id).where(
                    RecordRef.customer_id.in_(customers)).limit(MAX_RESULTS))}
        keys |= {("Customer", c) for c in customers}
        conds = [sa.or_(RecordLink.crm_id == term, RecordLink.gateway_id == term)]
        conds += [sa.and_(RecordLink.object == o, RecordLink.gateway_id == g) for o, g in keys]
        links = list(session.scalars(sa.select(RecordLink).where(sa.or_(*conds))
                                     .limit(MAX_RESULTS)))
        refs = _refs(session, [(link.object, link.gateway_id) for link in links])
    found = [{"object": link.object, "crm_id": link.crm_id, "gateway_id": link.gateway_id,
              "status": link.status, "last_event_id": link.last_event_id,
              "reference": refs.get((link.object, link.gateway_id), {}).get("reference"),
              "exact": term in (link.crm_id, link.gateway_id)} for link in links]
    return sorted(found, key=lambda r: (not r["exact"], ORDER.get(r["object"], 99),
                                        r["gateway_id"] or r["crm_id"] or ""))


def _refs(session: Session, keys: list[tuple[str, str | None]]) -> dict[tuple[str, str],
                                                                        dict[str, Any]]:
    pairs = [(o, g) for o, g in keys if g]
    if not pairs:
        return {}
    rows = session.scalars(sa.select(RecordRef).where(
        sa.tuple_(RecordRef.object, RecordRef.gateway_id).in_(pairs)))
    return {(r.object, r.gateway_id): {"reference": r.reference, "customer_id": r.customer_id,
                                       "parent_object": r.parent_object,
                                       "parent_id": r.parent_id} for r in rows}


def timeline(db: Database, obj: str, record_id: str) -> dict[str, Any]:
    if obj not in OBJECTS:
        raise NotFound(f"unknown object {obj!r}; one of {', '.join(OBJECTS)}")
    with db.transaction() as session:
        link, entries = records.history(session, obj, record_id)
        if link is None:
            raise NotFound(f"no {obj} with CRM id or gateway id {record_id!r}")
        events = list(session.scalars(sa.select(WebhookEvent).where(
            WebhookEvent.resource_type == OBJECTS[obj].resource,
            WebhookEvent.resource_id == link.gateway_id)
            .order_by(WebhookEvent.event_time))) if link.gateway_id else []
        items = list(session.scalars(sa.select(QueueItem).where(
            QueueItem.object == obj, QueueItem.record_id == link.crm_id)
            .order_by(QueueItem.id))) if link.crm_id else []
        done = list(session.scalars(sa.select(ArchivedItem).where(
            ArchivedItem.object == obj, ArchivedItem.record_id == link.crm_id)
            .order_by(ArchivedItem.id))) if link.crm_id else []
        ref = _refs(session, [(obj, link.gateway_id)]).get((obj, link.gateway_id or ""), {})
        kept = {e.event_id: e.id for e in events}
        history = [{**records.history_dict(e), "event_row_id": kept.get(e.event_id or "")}
                   for e in entries]
    return {"object": obj, "crm_id": link.crm_id, "gateway_id": link.gateway_id,
            "status": link.status, "last_event_id": link.last_event_id,
            "reference": ref.get("reference"), "customer_id": ref.get("customer_id"),
            "parent_object": ref.get("parent_object"), "parent_id": ref.get("parent_id"),
            "history": history, "events": [e.to_dict() for e in events],
            "items": [i.to_dict() for i in (*items, *done)]}
