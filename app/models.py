"""Imports every model so Alembic and the tests see the whole schema."""

from app.audit import AuditEntry
from app.auth import ApiKey
from app.console.models import Alert, AlertState, BulkOperation
from app.db import Base
from app.idempotency import IdempotencyKey
from app.records.models import RecordLink, StatusHistory
from app.records.refs import RecordRef
from app.user_sessions import ConsoleSession
from app.users import User
from app.workrows.leases import LeaseCounter
from queues.capture_models import CaptureSnapshot, CaptureWatermark, OutboundNotification
from queues.models import ArchivedItem, QueueItem
from reconcile.models import ReconcileDifference, ReconcileRun, ReconcileStaging
from webhooks.models import CatchupState, WebhookEvent

metadata = Base.metadata

__all__ = ["Alert", "AlertState", "ApiKey", "ArchivedItem", "AuditEntry", "BulkOperation",
           "CaptureSnapshot", "CaptureWatermark", "CatchupState", "ConsoleSession",
           "IdempotencyKey", "LeaseCounter", "OutboundNotification", "QueueItem",
           "ReconcileDifference", "ReconcileRun", "ReconcileStaging", "RecordLink", "RecordRef",
           "StatusHistory", "User", "WebhookEvent", "metadata"]
