"""Imports every model so Alembic and the tests see the whole schema."""

from app.auth import ApiKey
from app.db import Base
from app.records.models import RecordLink, StatusHistory
from queues.models import ArchivedItem, QueueItem

metadata = Base.metadata

__all__ = ["ApiKey", "ArchivedItem", "QueueItem", "RecordLink", "StatusHistory", "metadata"]
