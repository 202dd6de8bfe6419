"""POST /salesforce/outbound: Salesforce's SOAP Outbound Message in, Ack only once stored,
resends ignored, forged or foreign-org messages refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from app.runtime import Runtime
from app.web import create_app
from queues import outbound
from queues.models import QueueItem

ORG = "00D000000000001EAA"


def envelope(org: str, notifications: list[tuple[str, str, dict[str, str]]]) -> bytes:
    """A notifications envelope as the Outbound Messaging WSDL describes it."""
    items = "".join(
        f"<Notification><Id>{nid}</Id><sObject xsi:type=\"sf:Contact\" "
        f"xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\"><sf:Id>{rid}</sf:Id>"
        + "".join(f"<sf:{k}>{v}</sf:{k}>" for k, v in fields.items())
        + "<sf:Phone xsi:nil=\"true\"/></sObject></Notification>"
        for nid, rid, fields in notifications)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{org}</OrganizationId><ActionId>04k000000000001AAA</ActionId>"
        "<SessionId xsi:nil=\"true\"/><EnterpriseUrl>https://x/services/Soap/c/59.0</EnterpriseUrl>"
        "<PartnerUrl>https://x/services/Soap/u/59.0</PartnerUrl>"
        f"{items}</notifications></soapenv:Body></soapenv:Envelope>").encode()


@pytest.fixture
def org_rt(rt: Runtime) -> Runtime:
    return Runtime(replace(rt.settings, salesforce_org_id=ORG))


@pytest.fixture
def soap(org_rt: Runtime) -> Iterator[FlaskClient]:
    with create_app(runtime=org_rt).test_client() as test_client:
        yield test_client


def _post(soap: FlaskClient, body: bytes) -> tuple[int, str]:
    answer = soap.post("/salesforce/outbound", data=body, content_type="text/xml")
    return answer.status_code, answer.get_data(as_text=True)


def _rows(rt: Runtime) -> list[tuple[str, str, dict[str, str], dict[str, str] | None]]:
    with rt.db.transaction() as session:
        return [(i.record_id, i.operation, i.fields, i.previous_fields)
                for i in session.scalars(sa.select(QueueItem).order_by(QueueItem.id))]


def test_changes_are_stored_then_acknowledged_and_resends_ignored(
        soap: FlaskClient, org_rt: Runtime) -> None:
    first = envelope(ORG, [("04l000000000001AAA", "003000000000001AAA",
                            {"LastName": "Hopper", "Email": "grace@example.com"})])
    status, text = _post(soap, first)
    assert status == 200 and "<Ack>true</Ack>" in text
    assert _post(soap, first)[0] == 200  # Salesforce resends the same notification id
    second = envelope(ORG, [("04l000000000002AAA", "003000000000001AAA",
                             {"LastName": "Hopper", "Email": "grace@example.org"})])
    assert _post(soap, second)[0] == 200
    rows = _rows(org_rt)
    assert [r[1] for r in rows] == ["insert", "update"]
    assert rows[0][2] == {"LastName": "Hopper", "Email": "grace@example.com"}
    assert rows[1][3] == rows[0][2]


@pytest.mark.parametrize("body", [
    envelope("00D000000000999EAA", [("04l000000000003AAA", "003000000000002AAA",
                                     {"LastName": "Foreign"})]),
    b"<notifications>not soap</notifications>",
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',
    b"not xml at all",
])
def test_forged_or_foreign_messages_are_refused(soap: FlaskClient, org_rt: Runtime,
                                                body: bytes) -> None:
    status, text = _post(soap, body)
    assert status in (400, 403) and "Fault" in text and "Ack" not in text
    assert _rows(org_rt) == []


def test_no_org_configured_refuses_everything(rt: Runtime) -> None:
    with create_app(runtime=rt).test_client() as soap:
        status, _ = _post(soap, envelope(ORG, [("04l000000000004AAA", "003000000000003AAA",
                                                {"LastName": "Nobody"})]))
    assert status == 403


def test_a_crash_before_the_ids_are_kept_queues_the_resend_once(
        org_rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    body = envelope(ORG, [("04l000000000009AAA", "003000000000009AAA", {"LastName": "Once"})])

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the step died here")

    with monkeypatch.context() as patched:
        patched.setattr(outbound, "_remember", crash)
        with pytest.raises(RuntimeError):
            outbound.store(org_rt, outbound.parse(body, ORG))
    assert _rows(org_rt) == []  # no Ack was sent, so Salesforce resends it
    assert outbound.store(org_rt, outbound.parse(body, ORG)) == 1
    assert outbound.store(org_rt, outbound.parse(body, ORG)) == 0
    assert [r[:2] for r in _rows(org_rt)] == [("003000000000009AAA", "insert")]
