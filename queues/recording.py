"""Writing down what the gateway answered, many rows per transaction.

A job's gateway calls run side by side (``queues.lanes``); each answer is kept in an
``Outcomes`` buffer and written with others in one transaction (links, references, history,
the rows themselves: a few statements for the lot), instead of a transaction per row. Nothing
is lost by waiting: an answer not yet written when a worker dies leaves its row at the
gateway step, and the row's retry replays the same idempotency key (a create finds the
resource it made) or sends the same values again (an update). Each write is fenced by the
lease like every other: a row no longer held is left to whoever holds it now.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.logs import log_context
from app.mapping import GATEWAY_ID_FIELD, ObjectMap, writeback_fields
from app.records import refs
from app.records import service as records
from app.records.models import RecordLink
from app.workrows.leases import Lease
from queues import service
from queues.models import QueueItem

if TYPE_CHECKING:
    from queues.processor import Plan, QueueContext

log = logging.getLogger(__name__)
NO_CHANGE = "no gateway field changed"
# Answers written together: enough to make a row's share of the transaction small, few
# enough that a worker lost mid-job replays little. An answer waits at most MAX_WAIT.
CHUNK = 50
MAX_WAIT = 1.0


@dataclass(frozen=True)
class Outcome:
    """One successful gateway call, not yet written down."""

    item_id: int
    plan: Plan
    resource: dict[str, Any]
    note: str


def field_digests(obj: ObjectMap, fields: dict[str, Any]) -> dict[str, str]:
    """CRM field -> digest of its value, for the mapped fields the gateway holds (never the
    sensitive ones): what an update compares against."""
    out = {}
    for fm in obj.fields:
        value = fields.get(fm.crm)
        if fm.sensitive or value is None or value == "":
            continue
        text = json.dumps(value, sort_keys=True, default=str)
        out[fm.crm] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return out


class Outcomes:
    """Answers waiting to be written, shared by a job's lanes.

    ``flush`` returns only once every answer added before it was called is committed (by
    this thread or by one that took it first): a row planned after a flush sees the links
    its parents' answers made."""

    def __init__(self, ctx: QueueContext, lease: Lease) -> None:
        self.ctx, self.lease = ctx, lease
        self.written = 0
        self._pending: list[Outcome] = []
        self._oldest = 0.0
        self._pending_lock = threading.Lock()
        # Held while a chunk is taken and written, so a flush waits for one in flight.
        self._writing = threading.Lock()

    def add(self, outcome: Outcome) -> None:
        with self._pending_lock:
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending.append(outcome)
            due = len(self._pending) >= CHUNK or time.monotonic() - self._oldest >= MAX_WAIT
        if due:
            self.flush()

    def flush(self) -> None:
        with self._writing:
            with self._pending_lock:
                taken, self._pending = self._pending, []
            if taken:
                self.written += record_outcomes(self.ctx, taken, self.lease)


def record_outcomes(ctx: QueueContext, outcomes: Sequence[Outcome], lease: Lease) -> int:
    """Write the answers in one transaction; returns how many rows were still held."""
    with ctx.db.transaction() as session:
        held = {i.id: i for i in service.load_owned_many(
            session, [o.item_id for o in outcomes], lease)}
        kept = [o for o in outcomes if o.item_id in held]
        links = _links(session, [(o, held[o.item_id]) for o in kept if not o.plan.retires])
        refs.note_many(session, [(o.plan.obj.name, o.resource) for o in kept
                                 if not o.plan.retires])
        for outcome in kept:
            _write(ctx, session, held[outcome.item_id], outcome, links.get(outcome.item_id))
    if len(kept) < len(outcomes):  # another job holds them now; its call reuses the key
        lease.drop("gateway result", len(outcomes) - len(kept))
    for outcome in kept:
        with log_context(item_id=outcome.item_id):
            log.info("gateway call done", extra={"object": outcome.plan.obj.name,
                                                 "note": outcome.note})
    return len(kept)


def _links(session: Any, pairs: Sequence[tuple[Outcome, QueueItem]]) -> dict[int, RecordLink]:
    """Item id -> its record's link (found or made, locked), one lookup per object."""
    by_object: dict[str, list[tuple[Outcome, QueueItem]]] = {}
    for outcome, item in pairs:
        by_object.setdefault(outcome.plan.obj.name, []).append((outcome, item))
    found: dict[int, RecordLink] = {}
    for obj_name, group in by_object.items():
        ids = [(item.record_id, _gateway_id(o)) for o, item in group]
        for (outcome, _), link in zip(group, records.upsert_links(session, obj_name, ids),
                                      strict=True):
            found[outcome.item_id] = link
    return found


def _gateway_id(outcome: Outcome) -> str | None:
    gateway_id = outcome.resource.get("id") or outcome.plan.gateway_id
    return str(gateway_id) if gateway_id else None


def _write(ctx: QueueContext, session: Any, item: QueueItem, outcome: Outcome,
           link: RecordLink | None) -> None:
    plan, resource = outcome.plan, outcome.resource
    gateway_id = str(resource.get("id") or plan.gateway_id)
    if plan.retires:
        _retired(session, item, plan)
    elif link is not None:
        _history(session, item, plan, resource, link)
    result = writeback_fields(plan.obj, resource, ctx.settings.status_labels)
    if plan.retires:
        result = {}  # the CRM record shows the resource that replaced this one
    elif outcome.note == NO_CHANGE:
        # Nothing new at the gateway, but an insert's record must still carry the id:
        # an earlier attempt may have created the resource and lost the answer.
        result = {GATEWAY_ID_FIELD: gateway_id} if plan.operation == "insert" else {}
    service.record_gateway_done(session, item, gateway_id, result, outcome.note)


def _history(session: Any, item: QueueItem, plan: Plan, resource: dict[str, Any],
             link: RecordLink) -> None:
    obj = plan.obj
    if plan.operation != "delete":
        link.sent_digests = {**(link.sent_digests or {}), **field_digests(obj, plan.fields)}
    status = resource.get("status")
    if obj.has_status and status and status != link.status and link.last_event_at is None:
        # Only before any webhook event was applied: afterwards events own the status.
        records.record_transition(session, link, str(status), source="api",
                                  cause=f"{item.operation} via API queue",
                                  queue_item_id=item.id)


def _retired(session: Any, item: QueueItem, plan: Plan) -> None:
    """The replaced resource is cancelled: say so in the record's history (the link stays
    on the resource that replaced it)."""
    link = records.find_link(session, plan.obj.name, crm_id=item.record_id)
    if link is None:
        return
    done = {"disable": "disabled", "cancel": "cancelled"}.get(plan.obj.cancel_action or "",
                                                               "deleted")
    entry = records.record_transition(
        session, link, None, source="api", queue_item_id=item.id,
        cause=f"replaced {plan.obj.resource} {plan.gateway_id} {done} at the gateway")
    entry.gateway_id = plan.gateway_id
