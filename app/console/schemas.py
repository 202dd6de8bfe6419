"""Request and response shapes of the console's JSON API (dashboard, history search,
bulk operations, audit log, API keys, webhook secrets, alerts, reconciliation)."""

from __future__ import annotations

from datetime import UTC

from marshmallow import Schema, fields, validate

from app.auth import ROLES
from app.mapping import OBJECTS
from app.schemas import MAX_ID, ROW_ID
from reconcile.kinds import KINDS as DIFFERENCE_KINDS
from reconcile.models import REPAIR_STATES
from reconcile.starts import KINDS as RUN_KINDS


class QueueStatsSchema(Schema):
    label = fields.String()
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    oldest_pending_at = fields.String(allow_none=True)
    oldest_pending_seconds = fields.Float(allow_none=True)
    by_kind = fields.Dict(metadata={"description": "object / resource type -> status -> count"})
    last_hour = fields.Dict(metadata={"description": "done, failed, failure_rate, bars"})
    last_day = fields.Dict(metadata={"description": "done, failed, failure_rate, hourly bars"})


class DashboardSchema(Schema):
    generated_at = fields.String()
    queues = fields.Dict(keys=fields.String(), values=fields.Nested(QueueStatsSchema))
    salesforce = fields.Dict(allow_none=True, metadata={
        "description": "used, allocation, share, seen_at (last Sforce-Limit-Info)"})
    capture = fields.Dict(allow_none=True, metadata={
        "description": "CHANGE_CAPTURE=poll only: interval_seconds, objects (calls of each "
                       "object's last poll, polled_at), calls_per_interval, calls_per_day, "
                       "share_of_allocation"})
    reconcile = fields.Dict(allow_none=True, metadata={
        "description": "the newest reconcile run: id, state, started_at, finished_at, objects, "
                       "found, repaired, remaining, remaining_by_kind"})
    redis = fields.String()
    workers = fields.List(fields.Dict())
    clock = fields.Dict()


class SearchQuerySchema(Schema):
    q = fields.String(required=True, validate=validate.Length(min=1, max=200), metadata={
        "description": "a CRM id, gateway id, reference, or a customer's id, name or e-mail"})


class RecordMatchSchema(Schema):
    object = fields.String()
    crm_id = fields.String(allow_none=True)
    gateway_id = fields.String(allow_none=True)
    status = fields.String(allow_none=True)
    last_event_id = fields.String(allow_none=True)
    reference = fields.String(allow_none=True)
    exact = fields.Boolean()


class SearchResultSchema(Schema):
    results = fields.List(fields.Nested(RecordMatchSchema))


class TimelineSchema(Schema):
    object = fields.String()
    crm_id = fields.String(allow_none=True)
    gateway_id = fields.String(allow_none=True)
    status = fields.String(allow_none=True)
    last_event_id = fields.String(allow_none=True)
    reference = fields.String(allow_none=True)
    customer_id = fields.String(allow_none=True)
    parent_object = fields.String(allow_none=True)
    parent_id = fields.String(allow_none=True)
    history = fields.List(fields.Dict(), metadata={
        "description": "from, to, cause, event_id, event_time, applied_at, source"})
    events = fields.List(fields.Dict(), metadata={
        "description": "webhook events still stored: stale, parked, pending, failed"})
    items = fields.List(fields.Dict(), metadata={"description": "API Queue items, open or done"})


class AuditQuerySchema(Schema):
    actor = fields.String(load_default=None, validate=validate.Length(max=120))
    action = fields.String(load_default=None, validate=validate.Length(max=40))
    target_type = fields.String(load_default=None, validate=validate.Length(max=40))
    target_id = fields.String(load_default=None, validate=validate.Length(max=64))
    since = fields.AwareDateTime(load_default=None, default_timezone=UTC)
    until = fields.AwareDateTime(load_default=None, default_timezone=UTC)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    before_id = fields.Integer(load_default=None, validate=ROW_ID)


class AuditEntrySchema(Schema):
    id = fields.Integer()
    at = fields.String()
    actor = fields.String()
    action = fields.String()
    target_type = fields.String()
    target_id = fields.String(allow_none=True)
    before = fields.Dict(allow_none=True)
    after = fields.Dict(allow_none=True)
    note = fields.String(allow_none=True)


class AuditListSchema(Schema):
    items = fields.List(fields.Nested(AuditEntrySchema))
    next_before_id = fields.Integer(allow_none=True)


class BulkFilterSchema(Schema):
    kind = fields.String(load_default=None, validate=validate.Length(max=48), metadata={
        "description": "object (API Queue) or resource type (webhook events)"})
    record = fields.String(load_default=None, validate=validate.Length(max=64))
    error = fields.String(load_default=None, validate=validate.Length(max=200))
    since = fields.AwareDateTime(load_default=None, default_timezone=UTC)
    until = fields.AwareDateTime(load_default=None, default_timezone=UTC)


class BulkCreateSchema(Schema):
    queue = fields.String(required=True, validate=validate.OneOf(("api", "webhook")))
    action = fields.String(required=True, validate=validate.OneOf(("reprocess", "discard")))
    filter = fields.Nested(BulkFilterSchema, load_default=dict)
    reason = fields.String(load_default=None, validate=validate.Length(max=2000))


class BulkSchema(Schema):
    id = fields.Integer()
    queue = fields.String()
    action = fields.String()
    filter = fields.Dict()
    reason = fields.String(allow_none=True)
    actor = fields.String()
    status = fields.String()
    total = fields.Integer()
    processed = fields.Integer()
    changed = fields.Integer()
    error = fields.String(allow_none=True)
    created_at = fields.String()
    finished_at = fields.String(allow_none=True)


class BulkListSchema(Schema):
    items = fields.List(fields.Nested(BulkSchema))


class ApiKeySchema(Schema):
    id = fields.Integer()
    name = fields.String()
    role = fields.String()
    prefix = fields.String()
    created_at = fields.String()
    revoked_at = fields.String(allow_none=True)


class ApiKeyCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class ApiKeyCreatedSchema(ApiKeySchema):
    key = fields.String(metadata={"description": "the key itself: shown this once only"})


class ApiKeyListSchema(Schema):
    items = fields.List(fields.Nested(ApiKeySchema))


class SecretSchema(Schema):
    endpoint = fields.String()
    variable = fields.String()
    configured = fields.Boolean()
    development_default = fields.Boolean()


class SecretListSchema(Schema):
    items = fields.List(fields.Nested(SecretSchema))


class AlertSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    subject = fields.String()
    body = fields.String()
    count = fields.Integer()
    delivery = fields.Dict()
    created_at = fields.String()


class AlertListSchema(Schema):
    items = fields.List(fields.Nested(AlertSchema))


class ReconcileRunSchema(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": "reconcile or backfill"})
    objects = fields.List(fields.String())
    repair = fields.Boolean()
    dry_run = fields.Boolean()
    where = fields.String(allow_none=True, metadata={"description": "backfill's SOQL condition"})
    state = fields.String(metadata={"description": "queued, running, done, failed, stopped"})
    started_by = fields.String(metadata={"description": "cli, clock or console"})
    started_at = fields.String()
    finished_at = fields.String(allow_none=True)
    updated_at = fields.String(metadata={"description": "the last progress saved"})
    progress = fields.Dict(metadata={"description": "object -> phase and counters"})
    totals = fields.Dict(metadata={"description": "the counters summed over the objects"})
    summary = fields.Dict(metadata={"description": "found and remaining by kind, repaired"})
    error = fields.String(allow_none=True)


class ReconcileRunDetailSchema(ReconcileRunSchema):
    counts = fields.List(fields.Dict(), metadata={
        "description": "per object and kind: found, open, repairable (open with a safe repair)"})


class ReconcileRunQuerySchema(Schema):
    kind = fields.String(load_default=None, validate=validate.OneOf(RUN_KINDS))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    before_id = fields.Integer(load_default=None, validate=ROW_ID)


class ReconcileRunListSchema(Schema):
    items = fields.List(fields.Nested(ReconcileRunSchema))
    next_before_id = fields.Integer(allow_none=True)


class ReconcileStartSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(RUN_KINDS))
    objects = fields.List(fields.String(validate=validate.OneOf(tuple(OBJECTS))),
                          load_default=list, metadata={
                              "description": "reconcile: these objects (none: every one)"})
    object = fields.String(load_default=None, metadata={
        "description": "backfill: one queueable object, or all"})
    repair = fields.Boolean(load_default=False, metadata={
        "description": "reconcile: apply the safe repairs"})
    dry_run = fields.Boolean(load_default=False)
    where = fields.String(load_default=None, validate=validate.Length(max=2000), metadata={
        "description": "backfill: a SOQL condition the records must also meet"})


class ReconcileStartedSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    objects = fields.List(fields.String())
    state = fields.String()


class DifferenceQuerySchema(Schema):
    object = fields.String(load_default=None, validate=validate.OneOf(tuple(OBJECTS)))
    kind = fields.String(load_default=None, validate=validate.OneOf(DIFFERENCE_KINDS))
    repair_state = fields.String(load_default=None, validate=validate.OneOf(REPAIR_STATES))
    safe = fields.String(load_default=None, validate=validate.OneOf(("true", "false")))
    after_id = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_ID))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class DifferenceSchema(Schema):
    id = fields.Integer()
    run_id = fields.Integer()
    object = fields.String()
    kind = fields.String()
    crm_id = fields.String(allow_none=True)
    gateway_id = fields.String(allow_none=True)
    field = fields.String(allow_none=True)
    crm_value = fields.String(allow_none=True, metadata={"description": "masked"})
    gateway_value = fields.String(allow_none=True, metadata={"description": "masked"})
    repair = fields.String(metadata={"description": "the suggested repair"})
    safe = fields.Boolean(metadata={"description": "applied by a repair without an admin's "
                                                   "judgement"})
    repair_state = fields.String()
    note = fields.String(allow_none=True)
    found_at = fields.String()
    repaired_at = fields.String(allow_none=True)


class DifferenceListSchema(Schema):
    items = fields.List(fields.Nested(DifferenceSchema))
    next_after_id = fields.Integer(allow_none=True)


class RepairAllSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(DIFFERENCE_KINDS))
    object = fields.String(load_default=None, validate=validate.OneOf(tuple(OBJECTS)))
