"""The process-wide runtime for job code, and the QueueContext built from it."""

from __future__ import annotations

from app.config import Settings
from app.runtime import Runtime
from queues.processor import QueueContext
from webhooks.apply import WebhookContext

_runtime: Runtime | None = None


def set_runtime(runtime: Runtime) -> None:
    global _runtime
    _runtime = runtime


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime(Settings.from_env())
    return _runtime


def queue_context(rt: Runtime) -> QueueContext:
    from workers.dispatcher import wake_api_records

    return QueueContext(
        settings=rt.settings, db=rt.db, gateway=rt.gateway, crm=rt.crm, pause=rt.crm_pause,
        wake=lambda records: wake_api_records(rt, records), telemetry=rt.telemetry,
    )


def webhook_context(rt: Runtime) -> WebhookContext:
    return WebhookContext(settings=rt.settings, db=rt.db, gateway=rt.gateway, crm=rt.crm,
                          pause=rt.crm_pause, telemetry=rt.telemetry)
