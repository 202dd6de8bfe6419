"""Outbound Messages, as a record-triggered Flow's "Outbound Message" action sends them.

Rules followed, from Salesforce's documentation:
- the SOAP ``notifications`` envelope: OrganizationId, ActionId, SessionId, EnterpriseUrl,
  PartnerUrl, then ``Notification`` elements (at most 100) each with its ``Id`` and an
  ``sObject`` of ``xsi:type="sf:<Type>"`` carrying the chosen fields
  (https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_om_outboundmessaging_wsdl.htm);
- a message counts as delivered only when the listener answers ``<Ack>true</Ack>``; until
  then it is retried with growing intervals, for up to 24 hours, keeping its notification
  ids, and a retried message may arrive after a newer one
  (https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_om_outboundmessaging_understanding.htm);
- messages are sent for creates and updates only (a Flow's Outbound Message action does not
  run on delete).

``POST /sim/outbound {"url": ..., "fields": {"Contact": [...]}}`` switches it on (``fields``
optional: every set field by default); ``GET /sim/outbound`` lists what was sent.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import requests

SYSTEM = frozenset({"IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp",
                    "CreatedById", "LastModifiedById", "OwnerId", "Name"})
MAX_AGE = 24 * 3600.0


@dataclass
class Message:
    body: bytes
    ids: list[str]
    created: float
    attempts: int = 0
    due: float = 0.0
    acked: bool = False


@dataclass
class OutboundSender:
    org_id: str
    action_id: str
    url: str | None = None
    fields: dict[str, list[str]] = field(default_factory=dict)
    backoff: float = 0.25
    backoff_max: float = 4.0
    sent: list[Message] = field(default_factory=list)
    _pending: list[Message] = field(default_factory=list)
    _wake: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def envelope(self, changes: list[dict[str, Any]], ids: list[str]) -> bytes:
        items = []
        for nid, change in zip(ids, changes, strict=True):
            sobject = str(change["sobject"])
            wanted = self.fields.get(sobject)
            values = {k: v for k, v in change["fields"].items()
                      if k not in SYSTEM and (wanted is None or k in wanted or k == "Id")}
            inner = "".join(f"<sf:{k}>{escape(str(v))}</sf:{k}>" for k, v in values.items())
            items.append(f'<Notification><Id>{nid}</Id><sObject xsi:type="sf:{sobject}" '
                         f'xmlns:sf="urn:sobject.enterprise.soap.sforce.com">{inner}'
                         "</sObject></Notification>")
        return ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
                'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
                '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
                f"<OrganizationId>{self.org_id}</OrganizationId>"
                f"<ActionId>{self.action_id}</ActionId><SessionId xsi:nil=\"true\"/>"
                "<EnterpriseUrl>https://127.0.0.1/services/Soap/c/59.0</EnterpriseUrl>"
                "<PartnerUrl>https://127.0.0.1/services/Soap/u/59.0</PartnerUrl>"
                + "".join(items) + "</notifications></soapenv:Body></soapenv:Envelope>"
                ).encode()

    def submit(self, changes: list[dict[str, Any]], ids: list[str]) -> None:
        """Queue one message per 100 creates/updates (caller holds the org lock)."""
        if not self.url:
            return
        kept = [(c, i) for c, i in zip(changes, ids, strict=True)
                if c["operation"] != "delete"]
        for start in range(0, len(kept), 100):
            chunk = kept[start:start + 100]
            self._pending.append(Message(self.envelope([c for c, _ in chunk],
                                                       [i for _, i in chunk]),
                                         [i for _, i in chunk], time.time()))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        session = requests.Session()
        session.trust_env = False
        while True:
            self._wake.wait(timeout=0.1)
            self._wake.clear()
            now = time.time()
            for message in [m for m in list(self._pending) if m.due <= now]:
                self._send(session, message, now)

    def _send(self, session: requests.Session, message: Message, now: float) -> None:
        message.attempts += 1
        try:
            answer = session.post(str(self.url), data=message.body, timeout=10,
                                  headers={"Content-Type": "text/xml; charset=utf-8",
                                           "SOAPAction": '""'})
            message.acked = answer.status_code == 200 and "<Ack>true</Ack>" in answer.text
        except requests.RequestException:
            message.acked = False
        if message.acked or now - message.created > MAX_AGE:
            self._pending.remove(message)
            self.sent.append(message)
            return
        message.due = now + min(self.backoff_max, self.backoff * 2 ** (message.attempts - 1))
