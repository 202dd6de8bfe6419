"""Admin use cases on API Queue items that need more than the database: waking the
processing of reprocessed items, and editing a Failed item's payload (validated exactly as
intake validates it). The console, the JSON API and bulk operations all come through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from marshmallow import ValidationError

from app.api import flatten
from app.background import API_QUEUE, PROCESS_API_ITEMS
from app.errors import NotFound, ValidationFailed
from app.redaction import MASK
from app.runtime import Runtime
from app.workrows.dispatch import hand_out
from queues import intake, service
from queues.models import QueueItem
from queues.schemas import ChangeSchema

_change = ChangeSchema()


def wake(rt: Runtime, ids: Sequence[int]) -> None:
    """Hand reprocessed items to a job now (the dispatcher would find them anyway)."""
    hand_out(rt.db, rt.redis, QueueItem.__table__, ids, queue=API_QUEUE,
             func=PROCESS_API_ITEMS, batch_size=rt.settings.batch_size,
             timeout=rt.settings.job_timeout)


def reprocess(rt: Runtime, *, ids: Sequence[int] | None = None, obj: str | None = None,
              actor: str) -> list[int]:
    done = service.reprocess(rt.db, ids=ids, obj=obj, actor=actor)
    wake(rt, done)
    return done


def validate_edit(rt: Runtime, item: QueueItem, fields: Any,
                  previous_fields: Any) -> dict[str, Any]:
    """The edited change, loaded by intake's own schema and bank-detail rules."""
    raw = {"object": item.object, "record_id": item.record_id, "operation": item.operation,
           "fields": fields, "previous_fields": previous_fields}
    try:
        change = _change.load(raw)
    except ValidationError as exc:
        named = flatten(exc.messages)
        name, messages = next(iter(named.items()))
        raise ValidationFailed(f"{name}: {messages[0]}", details={"fields": named}) from exc
    intake.screen_bank_details(rt.settings, [change])
    return change


def _keep_masked(edited: Any, stored: dict[str, Any] | None) -> Any:
    """A field an admin saw masked and left masked keeps its stored value."""
    if not isinstance(edited, dict) or not stored:
        return edited
    return {k: stored.get(k, v) if v == MASK else v for k, v in edited.items()}


def edit_and_reprocess(rt: Runtime, item_id: int, fields: Any, previous_fields: Any,
                       actor: str) -> QueueItem:
    item = service.get_item(rt.db, item_id)
    if item is None:
        raise NotFound(f"queue item {item_id} does not exist")
    fields, previous_fields = (_keep_masked(fields, item.fields),
                               _keep_masked(previous_fields, item.previous_fields))
    change = validate_edit(rt, item, fields, previous_fields)
    try:
        edited = service.edit(rt.db, item_id, change["fields"], change["previous_fields"],
                              actor)
    except ValueError as exc:
        raise ValidationFailed(str(exc), code="invalid_state") from exc
    if edited is None:
        raise NotFound(f"queue item {item_id} does not exist")
    wake(rt, [item_id])
    return edited
