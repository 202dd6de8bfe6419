"""Classifying a job's plain resources together: the resources whose events need nothing
from a partner before they are classified (Paybridge knows where they are), which is almost
every resource of a busy delivery.

One transaction for all of them: their links, still held under the job's lease, locked in
one query; their workable events leased in one statement and read in one query; then each
resource classified by the same rules as alone (``webhooks.classification``), oldest event
first. A resource whose starting status must first be asked of the gateway keeps the
per-resource path. When the transaction raises it is rolled back whole and every resource
goes the per-resource path, so the one that raises is failed alone and the others apply.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace

from app.records.models import RecordLink
from app.workrows.leases import Lease
from webhooks import service
from webhooks.classification import classify_events
from webhooks.context import Touched, WebhookContext
from webhooks.lifecycles import lifecycle_for

log = logging.getLogger(__name__)


def apply_together(ctx: WebhookContext, items: list[Touched], lease: Lease) -> list[Touched]:
    """Classify the plain resources of ``items`` in one transaction; returns the items left
    for the per-resource path (all of them when that transaction failed). A resource no
    longer held under ``lease`` is in neither: nothing is written for it."""
    if not items:
        return []
    failures = _Failures()
    try:
        with ctx.db.transaction() as session:
            links = service.held_links(session, [(i.obj, i.gateway_id) for i in items], lease)
            held = [i for i in items if (i.obj, i.gateway_id) in links]
            plain = [i for i in held if _plain(i, links[(i.obj, i.gateway_id)])]
            events = service.lease_events_of(
                session, ctx.db, [(i.resource_type, i.gateway_id) for i in plain], lease)
            counting = replace(ctx, telemetry=failures)
            for item in plain:
                classify_events(counting, session, item, links[(item.obj, item.gateway_id)],
                                events[(item.resource_type, item.gateway_id)])
    except Exception as exc:  # noqa: BLE001 - each resource alone finds (and fails) the culprit
        log.warning("applying the job's resources together failed; each goes alone",
                    extra={"error": f"{type(exc).__name__}: {exc}"})
        for item in items:
            item.forget()
        return list(items)
    if failures.by_object and ctx.telemetry is not None:
        ctx.telemetry.failed("webhook", dict(failures.by_object))
    if len(held) < len(items):
        lease.drop("apply", rows=len(items) - len(held))
    done = {id(i) for i in plain}
    return [i for i in held if id(i) not in done]


def _plain(item: Touched, link: RecordLink) -> bool:
    """Whether the resource's events can be classified with nothing asked of the gateway:
    ``webhooks.starting`` only asks about a resource whose status Paybridge does not know."""
    return link.status is not None or lifecycle_for(item.resource_type) is None


class _Failures:
    """The events made Failed in the together transaction, counted once it has committed
    (a rolled-back one counts nothing: its resources are classified again alone)."""

    def __init__(self) -> None:
        self.by_object: Counter[str] = Counter()

    def failed(self, queue: str, by_object: Mapping[str, int]) -> None:
        self.by_object.update(by_object)
