"""Filters and keyset paging for the admin lists of work rows (both queues).

Pages go newest first by id and continue *before* the last id seen, so page 2,000 costs the
same as page 1: with an index on (status, id), or (status, kind, id), the database walks the
index backwards from the cursor and stops after ``limit`` rows, never sorting or counting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa


@dataclass(frozen=True)
class ListFilter:
    status: str | None = None
    kind: str | None = None  # object type (API Queue) or resource type (webhook events)
    record: str | None = None  # CRM record id or gateway resource id
    error: str | None = None  # text within the last error, any case
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v)
                for k, v in self.__dict__.items() if v not in (None, "")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ListFilter:
        values = dict(data)
        for key in ("since", "until"):
            if isinstance(values.get(key), str):
                values[key] = datetime.fromisoformat(values[key])
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


def conditions(model: Any, flt: ListFilter, *, kind: Any, record: Any) -> list[Any]:
    conds: list[Any] = []
    for column, value in ((model.status, flt.status), (kind, flt.kind), (record, flt.record)):
        if value:
            conds.append(column == value)
    if flt.error:
        conds.append(sa.func.lower(model.last_error).contains(flt.error.lower(),
                                                              autoescape=True))
    if flt.since:
        conds.append(model.created_at >= flt.since)
    if flt.until:
        conds.append(model.created_at < flt.until)
    return conds


def page_query(model: Any, conds: list[Any], *, limit: int,
               before_id: int | None = None) -> sa.Select[Any]:
    query = sa.select(model).where(*conds).order_by(model.id.desc()).limit(limit)
    if before_id:
        query = query.where(model.id < before_id)
    return query
