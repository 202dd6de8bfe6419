"""Work a benchmark feeds in, the way real users make it: CRM records created in the org
(its trigger calls Paybridge), gateway resources moved along their lifecycles (the gateway
posts signed event batches)."""

from __future__ import annotations

from typing import Any

from bench.stack import Stack, wait_until

BULK = 1000  # records per emulator call; the org's trigger sends them 200 at a time


def create_contacts(stack: Stack, n: int, prefix: str = "B") -> list[str]:
    ids: list[str] = []
    for start in range(0, n, BULK):
        records = [{"FirstName": "Bench", "LastName": f"{prefix}{i}",
                    "Email": f"{prefix.lower()}{i}@example.com"}
                   for i in range(start, min(n, start + BULK))]
        ids += stack.sf_call("POST", "/sim/records/Contact/bulk", json={"records": records})["ids"]
    return ids


def trigger_idle(stack: Stack) -> None:
    stack.sf_call("POST", "/sim/trigger/wait", json={"timeout": 120})


def drain_queue(stack: Stack, timeout: float) -> None:
    trigger_idle(stack)
    wait_until(lambda: stack.queue_left() == 0, timeout, "the API queue to drain", 0.05)


def drain_events(stack: Stack, timeout: float) -> None:
    def drained() -> bool:
        hooks = stack.gw_sim("GET", "/stats")["webhooks"]
        idle = not (hooks["pending_events"] or hooks["retrying"] or hooks["in_flight"] > 0)
        return idle and stack.events_left() == 0

    wait_until(drained, timeout, "every webhook event to be applied", 0.05)


def crm_mandate(stack: Stack) -> tuple[str, str]:
    """A customer, bank account and mandate set up at the gateway (a hosted page), then
    created in the CRM by Paybridge from their events. Returns (gateway id, CRM id)."""
    customer = stack.gw_call("POST", "/customers", json={"customers": {
        "given_name": "Bench", "family_name": "Payer", "email": "payer@example.com"}})
    account = stack.gw_call("POST", "/customer_bank_accounts", json={"customer_bank_accounts": {
        "account_holder_name": "Bench Payer", "account_number": "55779911",
        "branch_code": "200000", "country_code": "GB", "currency": "GBP",
        "links": {"customer": customer["customers"]["id"]}}})
    mandate = stack.gw_call("POST", "/mandates", json={"mandates": {
        "scheme": "bacs",
        "links": {"customer_bank_account": account["customer_bank_accounts"]["id"]}}})
    gateway_id = mandate["mandates"]["id"]
    stack.gw_sim("POST", "/advance", json={"resource_type": "mandates", "ids": [gateway_id],
                                            "to": "active"})

    def in_crm() -> str | None:
        for record in stack.sf_call("GET", "/sim/records/Mandate__c")["records"]:
            if record.get("Gateway_Id__c") == gateway_id and record.get("Status__c"):
                return str(record["Id"])
        return None

    return gateway_id, wait_until(in_crm, 60, "the mandate in the CRM")


def create_payments(stack: Stack, mandate_crm_id: str, n: int) -> list[str]:
    ids: list[str] = []
    for start in range(0, n, BULK):
        records = [{"Mandate__c": mandate_crm_id, "Amount__c": 10 + (i % 90),
                    "Currency__c": "GBP", "Reference__c": f"BENCH{i}"}
                   for i in range(start, min(n, start + BULK))]
        ids += stack.sf_call("POST", "/sim/records/Payment__c/bulk",
                             json={"records": records})["ids"]
    return ids


def gateway_ids(stack: Stack, sobject: str, crm_ids: list[str]) -> list[str]:
    wanted = set(crm_ids)
    return [str(r["Gateway_Id__c"]) for r in stack.sf_call("GET", f"/sim/records/{sobject}")
            ["records"] if r["Id"] in wanted and r.get("Gateway_Id__c")]


def sf_usage(stack: Stack) -> dict[str, Any]:
    """Data API calls the org counted (OAuth calls do not use the allocation) and records
    written through sObject Collections."""
    stats = stack.sf_call("GET", "/sim/stats")
    return {"used": stats["api_usage"]["used"], "calls": stats["api_calls"],
            "records_written": stats["collections_records_written"]}


def gateway_requests(stack: Stack) -> dict[str, int]:
    """API requests the gateway emulator answered, by "METHOD /path status"."""
    out: dict[str, int] = {}
    for route, counts in stack.gw_sim("GET", "/stats")["requests"].items():
        if route.split(" ", 1)[-1].startswith("/sim"):
            continue  # the bench's own control calls
        for status, n in counts.items():
            out[f"{route} {status}"] = n
    return out
