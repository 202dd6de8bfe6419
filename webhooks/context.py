"""What a webhook job carries from step to step: its partners, and per resource it leased
the events waiting for the CRM write."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.clients.gateway import GatewayClient
from app.clients.salesforce import SalesforceClient
from app.config import Settings
from app.crm_pause import CrmPause
from app.db import Database
from app.mapping import OBJECTS
from app.workrows.boundary import fail_held
from app.workrows.leases import Lease
from app.workrows.states import record_failure
from webhooks.models import WebhookEvent


@dataclass
class WebhookContext:
    settings: Settings
    db: Database
    gateway: GatewayClient
    crm: SalesforceClient
    pause: CrmPause
    telemetry: Any = None  # app.telemetry.Telemetry: processed counts and latencies


@dataclass
class Touched:
    """A resource this job leased, and its events waiting for the CRM write."""

    obj: str
    gateway_id: str
    event_ids: list[int] = field(default_factory=list)
    heal: int | None = None  # an event whose gap should be healed from the gateway
    healed: set[int] = field(default_factory=set)  # at most one heal per event per job
    # Whether the CRM record needs the link's status and watermark: not when the job only
    # recorded informational events (nothing the CRM shows has changed).
    needs_write: bool = False
    # The resource as the gateway reported it when its created event came first (reused
    # when its CRM record is made), and the real starting status taken from it.
    resource: dict[str, Any] | None = None
    created_status: str | None = None
    replaced_by: str | None = None  # a mandate replaced event's links.new_mandate
    replaced_at: datetime | None = None

    @property
    def resource_type(self) -> str:
        return OBJECTS[self.obj].resource

    def forget(self) -> None:
        """What a rolled-back classification noted is void: start the resource afresh."""
        fresh = Touched(self.obj, self.gateway_id)
        self.__dict__.update(fresh.__dict__)


def count_failure(ctx: WebhookContext, ev: WebhookEvent, **kwargs: Any) -> str:
    """record_failure, counting the events that become Failed (dashboard, metrics)."""
    outcome = record_failure(ev, **kwargs)
    if outcome == "failed" and ctx.telemetry is not None:
        ctx.telemetry.failed("webhook", {ev.resource_type: 1})
    return outcome


def fail_events(ctx: WebhookContext, lease: Lease, exc: Exception,
                ids: list[int] | None = None, where: Any = None) -> None:
    """The job boundary: ``exc`` recorded on the held events ``ids`` (or matching
    ``where``), retried on the schedule, then Failed."""
    s = ctx.settings
    failed = fail_held(ctx.db, WebhookEvent, lease, exc, stage="apply",
                       schedule=s.retry_schedule, jitter=s.retry_jitter, ids=ids, where=where)
    if failed and ctx.telemetry is not None:
        ctx.telemetry.failed("webhook", {failed[0].resource_type: len(failed)})
