"""Helpers for tests that run queued changes against both emulators over HTTP."""

from __future__ import annotations

import time
from typing import Any

import requests
import sqlalchemy as sa

from app.runtime import Runtime
from queues.models import QueueItem
from workers.jobs import process_api_items


def change(record: str, op: str = "insert", obj: str = "Customer",
           **fields: Any) -> dict[str, Any]:
    base = {"FirstName": "Ada", "LastName": "Lovelace"} if obj == "Customer" else {}
    return {"object": obj, "record_id": record, "operation": op,
            "fields": {**base, **fields}, "previous_fields": None}


def contact(sf: requests.Session, sf_url: str, **fields: Any) -> str:
    """A Contact in the Salesforce emulator, as a user would have made it."""
    resp = sf.post(f"{sf_url}/sim/records/Contact/bulk",
                   json={"records": [{"FirstName": "Ada", "LastName": "Lovelace", **fields}]})
    return str(resp.json()["ids"][0])


def drain(rt: Runtime, *ids: int) -> None:
    """Run the API Queue job on these rows until none is pending (retries are short here)."""
    for _ in range(20):
        process_api_items(list(ids))
        with rt.db.transaction() as session:
            left = session.scalars(sa.select(QueueItem).where(QueueItem.id.in_(ids))).all()
        if all(i.status != "pending" for i in left):
            return
        time.sleep(0.25)
