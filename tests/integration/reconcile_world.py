"""Records linked on both sides, made directly in the two emulators (as if Paybridge had
synchronised them), and the drift tests introduce in them."""

from __future__ import annotations

from typing import Any

import requests

from app.mapping import GATEWAY_ID_FIELD, OBJECTS
from app.runtime import Runtime
from webhooks.crm_records import crm_fields_for


class World:
    def __init__(self, rt: Runtime, gw_url: str, sf_url: str, sf: requests.Session) -> None:
        self.rt, self.gw_url, self.sf_url, self.sf = rt, gw_url, sf_url, sf
        self.gw = requests.Session()
        self.gw.headers["Authorization"] = f"Bearer {rt.settings.gateway_access_token}"
        self.made = 0

    # -- the gateway ---------------------------------------------------------------------------
    def gateway_create(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        self.made += 1
        resp = self.gw.post(f"{self.gw_url}/{resource}", json={resource: body}, timeout=10,
                            headers={"Idempotency-Key": f"world-{self.made}-{id(self)}"})
        assert resp.status_code == 201, resp.text
        return dict(resp.json()[resource])

    def gateway_get(self, resource: str, gateway_id: str) -> dict[str, Any]:
        resp = self.gw.get(f"{self.gw_url}/{resource}/{gateway_id}", timeout=10)
        resp.raise_for_status()
        return dict(resp.json()[resource])

    def gateway_update(self, resource: str, gateway_id: str, body: dict[str, Any]) -> None:
        resp = self.gw.put(f"{self.gw_url}/{resource}/{gateway_id}", json={resource: body},
                           timeout=10)
        assert resp.status_code == 200, resp.text

    def advance(self, resource: str, gateway_id: str, to: str) -> None:
        resp = self.gw.post(f"{self.gw_url}/sim/advance", timeout=10,
                            json={"resource_type": resource, "ids": [gateway_id], "to": to})
        assert resp.status_code == 200, resp.text

    def gateway_stats(self) -> dict[str, Any]:
        return dict(self.gw.get(f"{self.gw_url}/sim/stats", timeout=10).json())

    # -- the CRM ------------------------------------------------------------------------------
    def crm_create(self, sobject: str, fields: dict[str, Any]) -> str:
        resp = self.sf.post(f"{self.sf_url}/sim/records/{sobject}", json=fields, timeout=10)
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    def crm_update(self, sobject: str, record_id: str, fields: dict[str, Any]) -> None:
        resp = self.sf.patch(f"{self.sf_url}/sim/records/{sobject}/{record_id}", json=fields,
                             timeout=10)
        assert resp.status_code == 200, resp.text

    def crm_get(self, sobject: str, record_id: str) -> dict[str, Any]:
        resp = self.sf.get(f"{self.sf_url}/sim/records/{sobject}/{record_id}", timeout=10)
        resp.raise_for_status()
        return dict(resp.json())

    def crm_all(self, sobject: str) -> list[dict[str, Any]]:
        resp = self.sf.get(f"{self.sf_url}/sim/records/{sobject}", timeout=30)
        return list(resp.json()["records"])

    # -- both -----------------------------------------------------------------------------------
    def linked(self, obj: str, body: dict[str, Any], crm_links: dict[str, str] | None = None,
               ) -> tuple[str, dict[str, Any]]:
        """A gateway resource and its CRM record, linked both ways, fields as a write-back
        leaves them. ``crm_links``: lookup field -> parent CRM id."""
        om = OBJECTS[obj]
        crm_id = self.crm_create(om.sobject, {**_required(obj), **(crm_links or {})})
        resource = self.gateway_create(om.resource, {**body, "metadata": {"crm_id": crm_id}})
        fields = crm_fields_for(om, resource, dict(self.rt.settings.status_labels))
        fields[GATEWAY_ID_FIELD] = resource["id"]
        self.crm_update(om.sobject, crm_id, fields)
        return crm_id, resource

    def chain(self, n: int) -> dict[str, tuple[str, dict[str, Any]]]:
        """Customer, bank account, mandate and payment, linked on both sides."""
        customer = self.linked("Customer", {"given_name": f"Ada{n}", "family_name": "Lovelace",
                                            "email": f"ada{n}@example.com"})
        account = self.linked("BankAccount", {
            "account_holder_name": "Ada Lovelace", "account_number": "55779911",
            "branch_code": "200000", "country_code": "GB", "currency": "GBP",
            "links": {"customer": customer[1]["id"]}}, {"Contact__c": customer[0]})
        mandate = self.linked("Mandate", {
            "scheme": "bacs", "links": {"customer_bank_account": account[1]["id"]}},
            {"Bank_Account__c": account[0]})
        payment = self.linked("Payment", {
            "amount": 1500 + n, "currency": "GBP", "description": f"Gift {n}",
            "links": {"mandate": mandate[1]["id"]}}, {"Mandate__c": mandate[0]})
        return {"Customer": customer, "BankAccount": account, "Mandate": mandate,
                "Payment": payment}


def _required(obj: str) -> dict[str, Any]:
    return {"LastName": "Lovelace"} if obj == "Customer" else {}
