"""SystemModstamp of the transaction being applied (the late-visible switch: see ``capture``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sim.salesforce.store import RecordStore


def format_stamp(moment: datetime) -> str:
    """A datetime the way the API prints it: 2024-05-01T09:30:00.000+0000."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def late_stamp(store: RecordStore) -> str | None:
    """The SystemModstamp of the transaction about to be applied when the late-visible switch
    is on (and switch it off), else None. Caller holds the org lock."""
    seconds = store.late_visible_seconds
    if seconds <= 0:
        return None
    store.late_visible_seconds = 0.0
    return format_stamp(datetime.now(UTC) - timedelta(seconds=seconds))
