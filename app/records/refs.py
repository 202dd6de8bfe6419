"""What payment operations search by, beyond ids: a resource's reference and its customer.

Noted whenever Paybridge sees a gateway resource (the API Queue's gateway call, a CRM
record created from an event). A payment names only its mandate; its customer comes from
the mandate's own entry, noted earlier because a parent always reaches the gateway first.
Nothing sensitive is kept: a reference, gateway ids, a customer's name and e-mail.
"""

from __future__ import annotations

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


def _customer_of(session: Session, obj: str, resource: dict[str, Any],
                 parent: tuple[str, str] | None) -> str | None:
    links = resource.get("links") or {}
    if obj == "Customer":
        return str(resource.get("id") or "") or None
    if links.get("customer"):
        return str(links["customer"])
    if parent is None:
        return None
    return session.scalar(sa.select(RecordRef.customer_id).where(
        RecordRef.object == parent[0], RecordRef.gateway_id == parent[1]))


def note(session: Session, obj: str, resource: dict[str, Any]) -> None:
    """Remember (or refresh) the searchable facts of one gateway resource."""
    gateway_id = resource.get("id")
    if not gateway_id:
        return
    links = resource.get("links") or {}
    parent = next(((PARENTS[name], str(links[name])) for name in PARENTS
                   if links.get(name)), None)
    ref = session.scalars(sa.select(RecordRef).where(
        RecordRef.object == obj, RecordRef.gateway_id == str(gateway_id))).first()
    if ref is None:
        ref = RecordRef(object=obj, gateway_id=str(gateway_id))
        session.add(ref)
    reference = resource.get("reference")
    ref.reference = str(reference)[:140] if reference else ref.reference
    ref.customer_id = _customer_of(session, obj, resource, parent) or ref.customer_id
    if parent:
        ref.parent_object, ref.parent_id = parent
    if obj == "Customer":
        words = (resource.get(k) for k in ("given_name", "family_name", "company_name", "email"))
        ref.label = " ".join(str(w) for w in words if w).lower()[:300] or ref.label
