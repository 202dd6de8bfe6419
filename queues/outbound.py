"""Salesforce Outbound Messages: real-time change capture without Apex.

A record-triggered Flow's "Outbound Message" action POSTs a SOAP ``notifications`` envelope
(https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_om_outboundmessaging_wsdl.htm):
``OrganizationId``, ``ActionId``, ``SessionId``, ``EnterpriseUrl``, ``PartnerUrl`` and up to
100 ``Notification`` elements, each with its own ``Id`` and an ``sObject`` of
``xsi:type="sf:Contact"`` (etc.) holding the fields chosen for the message. Salesforce
resends a message until the listener answers ``<Ack>true</Ack>``, for up to 24 hours, and a
resend keeps each notification's ``Id``
(https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_om_outboundmessaging_understanding.htm),
so ids already stored are skipped. The XML is untrusted: it is parsed with defusedxml
(no DTDs, no entity expansion), never the standard library parser.

An Outbound Message carries the record as it is now, with no operation: a record never seen
before is an insert, a known one an update whose ``previous_fields`` come from the snapshot
polling also keeps. (Outbound Messages cannot fire on delete.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element  # noqa: S405 - the type only; parsing is defusedxml

import sqlalchemy as sa
from defusedxml import ElementTree
from marshmallow import ValidationError
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.errors import AppError, ValidationFailed
from app.mapping import OBJECTS, QUEUEABLE_OBJECTS
from app.runtime import Runtime
from queues import intake
from queues.capture_models import CaptureSnapshot, OutboundNotification
from queues.schemas import ChangeSchema

log = logging.getLogger(__name__)
OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOBJECT_NS = "urn:sobject.enterprise.soap.sforce.com"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_BY_SOBJECT = {o.sobject: o for name, o in OBJECTS.items() if name in QUEUEABLE_OBJECTS}

ACK = ('<?xml version="1.0" encoding="UTF-8"?>'
       '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
       '<soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">'
       '<Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>')


class OrgRefused(AppError):
    status = 403
    code = "foreign_org"


@dataclass(frozen=True)
class Notification:
    id: str
    object: str
    record_id: str
    fields: dict[str, Any]


def fault(message: str) -> str:
    """A SOAP 1.1 fault: Salesforce keeps the message queued and tries again later."""
    escaped = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
            '<soapenv:Body><soapenv:Fault><faultcode>soapenv:Client</faultcode>'
            f'<faultstring>{escaped}</faultstring></soapenv:Fault></soapenv:Body>'
            '</soapenv:Envelope>')


def _text(parent: Element, tag: str) -> str:
    found = parent.find(f"{{{OUTBOUND_NS}}}{tag}")
    return (found.text or "").strip() if found is not None else ""


def parse(body: bytes, org_id: str) -> list[Notification]:
    """The notifications of an envelope from ``org_id``; ValidationFailed / OrgRefused."""
    try:
        root = ElementTree.fromstring(body)
    except Exception as exc:  # defusedxml raises its own and ParseError: all mean "refuse"
        raise ValidationFailed("body is not a well-formed XML document without a DTD",
                               code="invalid_soap") from exc
    envelope = root.find(f".//{{{OUTBOUND_NS}}}notifications")
    if envelope is None:
        raise ValidationFailed("no notifications element", code="invalid_soap")
    # Ids compare on their first 15 characters (the 18-character form adds a case checksum).
    sent = _text(envelope, "OrganizationId")
    if not org_id or not sent or sent[:15] != org_id[:15]:
        raise OrgRefused("OrganizationId is not the configured SALESFORCE_ORG_ID")
    return [_notification(n) for n in envelope.findall(f"{{{OUTBOUND_NS}}}Notification")]


def _notification(element: Element) -> Notification:
    record = element.find(f"{{{OUTBOUND_NS}}}sObject")
    if record is None:
        raise ValidationFailed("a Notification has no sObject", code="invalid_soap")
    sobject = record.get(XSI_TYPE, "").rpartition(":")[2]
    obj = _BY_SOBJECT.get(sobject)
    if obj is None:
        raise ValidationFailed(f"sObject type {sobject!r} is not mapped", code="invalid_soap")
    fields: dict[str, Any] = {}
    for child in record:
        name = child.tag.rpartition("}")[2]
        if child.get(XSI_NIL) != "true" and name in obj.crm_fields | {"Id"}:
            fields[name] = (child.text or "").strip()
    record_id = fields.pop("Id", "")
    return Notification(_text(element, "Id"), obj.name, record_id, fields)


def store(rt: Runtime, notifications: list[Notification]) -> int:
    """Queue the notifications not seen before through the API Queue's intake; returns how
    many were queued. The changes, the notification ids and the snapshots commit together,
    so a resend after a crash is queued once: when this returns they are committed, and
    only then is Ack sent."""
    with rt.db.transaction() as session:
        ids = [n.id for n in notifications]
        known = set(session.scalars(sa.select(OutboundNotification.notification_id).where(
            OutboundNotification.notification_id.in_(ids))))
        fresh = [n for n in notifications if n.id not in known and n.id]
        snapshots = {(s.object, s.record_id): dict(s.fields) for s in session.scalars(
            sa.select(CaptureSnapshot).where(CaptureSnapshot.record_id.in_(
                [n.record_id for n in fresh])))}
        changes = []
        for n in fresh:
            previous = snapshots.get((n.object, n.record_id))
            change = {"object": n.object, "record_id": n.record_id, "fields": n.fields,
                      "operation": "update" if previous is not None else "insert",
                      "previous_fields": previous}
            try:
                changes.append(ChangeSchema().load(change))
            except ValidationError as exc:
                raise ValidationFailed(f"notification {n.id}: invalid change",
                                       details={"fields": exc.normalized_messages()}) from exc
            snapshots[(n.object, n.record_id)] = n.fields
        items = intake.store(session, rt, intake.screen(rt, changes))
        _remember(session, fresh)
    intake.enqueue(rt, items)
    return len(items)


def _remember(session: Session, fresh: list[Notification]) -> None:
    now = utcnow()
    for n in fresh:
        session.merge(OutboundNotification(notification_id=n.id, received_at=now))
        snapshot = session.get(CaptureSnapshot, (n.object, n.record_id))
        if snapshot is None:
            session.add(CaptureSnapshot(object=n.object, record_id=n.record_id,
                                        modstamp=now, fields=n.fields, deleted=False))
        else:
            snapshot.fields = n.fields
