"""What payment operations search by, beyond ids: a resource's reference and its customer.

Noted whenever Paybridge sees a gateway resource (the API Queue's gateway call, a CRM
record created from an event). A payment names only its mandate; its customer comes from
the mandate's own entry, noted earlier because a parent always reaches the gateway first.
Nothing sensitive is kept: a reference, gateway ids, a customer's name and e-mail.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.clock import utcnow
from app.db import Base, BigId, UTCDateTime

# link name in a gateway resource -> the logical object it points at
PARENTS = {"customer_bank_account": "BankAccount", "mandate": "Mandate", "payment": "Payment"}


class RecordRef(Base):
    __tablename__ = "record_refs"
    __table_args__ = (
        sa.UniqueConstraint("object", "gateway_id", name="uq_record_refs_object_gateway_id"),
        sa.Index("ix_record_refs_reference", "reference"),
        sa.Index("ix_record_refs_customer", "customer_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    object: Mapped[str] = mapped_column(sa.String(32))
    gateway_id: Mapped[str] = mapped_column(sa.String(64))
    reference: Mapped[str | None] = mapped_column(sa.String(140))
    # A customer's name and e-mail, lower-cased, so "what happened to my payment" can start
    # from the person asking.
    label: Mapped[str | None] = mapped_column(sa.String(300))
    customer_id: Mapped[str | None] = mapped_column(sa.String(64))  # the customer's gateway id
    parent_object: Mapped[str | None] = mapped_column(sa.String(32))
    parent_id: Mapped[str | None] = mapped_column(sa.String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


def note(session: Session, obj: str, resource: dict[str, Any]) -> None:
    """Remember (or refresh) the searchable facts of one gateway resource."""
    note_many(session, [(obj, resource)])


def note_many(session: Session, seen: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """``note`` for many resources in one query, reading their entries and their parents'
    (the customer a payment or mandate belongs to) together. A parent earlier in ``seen``
    counts."""
    wanted = [(obj, str(r["id"]), r) for obj, r in seen if r.get("id")]
    if not wanted:
        return
    parents = {(o, g): _parent(r) for o, g, r in wanted}
    keys = {(o, g) for o, g, _ in wanted} | {p for p in parents.values() if p}
    pairs = sa.tuple_(RecordRef.object, RecordRef.gateway_id)
    known = {(r.object, r.gateway_id): r
             for r in session.scalars(sa.select(RecordRef).where(pairs.in_(sorted(keys))))}
    for obj, gateway_id, resource in wanted:
        ref = known.get((obj, gateway_id))
        if ref is None:
            ref = known[(obj, gateway_id)] = RecordRef(object=obj, gateway_id=gateway_id)
            session.add(ref)
        parent = parents[(obj, gateway_id)]
        reference = resource.get("reference")
        ref.reference = str(reference)[:140] if reference else ref.reference
        ref.customer_id = _customer_of(obj, resource, known.get(parent) if parent else None
                                       ) or ref.customer_id
        if parent:
            ref.parent_object, ref.parent_id = parent
        if obj == "Customer":
            words = (resource.get(k) for k in ("given_name", "family_name", "company_name",
                                               "email"))
            ref.label = " ".join(str(w) for w in words if w).lower()[:300] or ref.label


def _parent(resource: dict[str, Any]) -> tuple[str, str] | None:
    links = resource.get("links") or {}
    return next(((PARENTS[name], str(links[name])) for name in PARENTS if links.get(name)),
                None)


def _customer_of(obj: str, resource: dict[str, Any], parent: RecordRef | None) -> str | None:
    links = resource.get("links") or {}
    if obj == "Customer":
        return str(resource.get("id") or "") or None
    if links.get("customer"):
        return str(links["customer"])
    return parent.customer_id if parent is not None else None
