"""Idempotency-Key: a client's retry gets the first request's answer, never a second effect.

A request carrying the header (the GoCardless / Stripe convention) claims one row per
(scope, API key, key) before it does anything. The row keeps a keyed digest of the request,
never the request itself: the bank-account API's body holds bank details, and a plain hash of
them would be a fingerprint anyone reading the table could test guesses against.

- While the first request runs, the same key gets ``409 idempotency_key_in_flight``.
- Once it has succeeded, its answer (stored in the same transaction as its effect) is
  replayed; a different body under the same key gets ``422 idempotency_key_reused``.
- A request that failed releases its claim and keeps how far it got (``progress``), so a
  retry carries on from there instead of starting again.
- A claim is a lease: a worker killed mid-request (gunicorn's timeout) leaves it to expire,
  then a retry takes over. Every write under a claim is fenced by its token, so a first
  attempt that is somehow still running cannot overwrite the one that took over.

Rows are forgotten IDEMPOTENCY_KEY_TTL after first use (the clock prunes them).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.db import Base, BigId, Database, JSONType, UTCDateTime
from app.errors import AppError, Conflict, ValidationFailed

HEADER = "Idempotency-Key"
RUNNING, DONE = "running", "done"
# Printable ASCII without spaces, as the GoCardless and Stripe keys are (UUIDs fit).
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (
        sa.UniqueConstraint("scope", "api_key_id", "key",
                            name="uq_idempotency_keys_scope_api_key_id_key"),
        sa.Index("ix_idempotency_keys_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(sa.String(32))
    api_key_id: Mapped[int] = mapped_column(sa.BigInteger)  # keys of one client only
    key: Mapped[str] = mapped_column(sa.String(255))
    request_digest: Mapped[str] = mapped_column(sa.String(64))
    state: Mapped[str] = mapped_column(sa.String(16))
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_token: Mapped[int] = mapped_column(sa.BigInteger)
    # How far the request got (ids it created, keys it sent on): never request data.
    progress: Mapped[dict[str, Any]] = mapped_column(JSONType)
    response_status: Mapped[int | None] = mapped_column(sa.Integer)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class KeyInFlight(Conflict):
    code = "idempotency_key_in_flight"


class KeyReused(AppError):
    status = 422
    code = "idempotency_key_reused"


@dataclass(frozen=True)
class Claim:
    row_id: int
    token: int
    progress: dict[str, Any]


@dataclass(frozen=True)
class Stored:
    status: int
    body: dict[str, Any]


def checked_key(value: str) -> str:
    if not _KEY.match(value):
        message = "must be 1-255 printable ASCII characters without spaces (a UUID fits)"
        raise ValidationFailed(f"{HEADER}: {message}", details={"fields": {HEADER: [message]}})
    return value


def digest(secret: str, request: Mapping[str, Any]) -> str:
    """HMAC-SHA256 of the canonical JSON of ``request``, under a key derived from
    SECRET_KEY: equal requests match, and without the secret nothing can be learnt."""
    key = hmac.new(secret.encode(), b"paybridge idempotency digest", hashlib.sha256).digest()
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def claim(db: Database, *, scope: str, api_key_id: int, key: str, request_digest: str,
          lease_seconds: float, ttl_seconds: float, progress: dict[str, Any]) -> Claim | Stored:
    """Claim the key for this request (``progress`` is where a fresh one starts), or get the
    stored answer of the request that already succeeded under it. One transaction."""
    now = utcnow()
    fresh = {"request_digest": request_digest, "state": RUNNING, "lease_token": 1,
             "lease_until": now + timedelta(seconds=lease_seconds), "progress": progress,
             "response_status": None, "response_body": None, "created_at": now,
             "expires_at": now + timedelta(seconds=ttl_seconds)}
    table = IdempotencyKey.__table__
    with db.transaction() as session:
        row_id = session.scalar(
            db.insert(table).values(scope=scope, api_key_id=api_key_id, key=key, **fresh)
            .on_conflict_do_nothing(index_elements=["scope", "api_key_id", "key"])
            .returning(table.c.id))
        if row_id is not None:
            return Claim(row_id, 1, progress)
        row = session.scalars(sa.select(IdempotencyKey).where(
            IdempotencyKey.scope == scope, IdempotencyKey.api_key_id == api_key_id,
            IdempotencyKey.key == key).with_for_update()).one()
        if row.expires_at <= now:  # forgotten: a new request under an old key
            for name, value in {**fresh, "lease_token": row.lease_token + 1}.items():
                setattr(row, name, value)
            return Claim(row.id, row.lease_token, progress)
        if not hmac.compare_digest(row.request_digest, request_digest):
            raise KeyReused(f"this {HEADER} was already used with a different request; use a "
                            "new key for a new request")
        if row.state == DONE:
            return Stored(int(row.response_status or 200), dict(row.response_body or {}))
        if row.lease_until > now:
            raise KeyInFlight(
                f"a request with this {HEADER} is still being processed; send it again "
                "shortly to get its answer",
                details={"in_flight_until": row.lease_until.isoformat()},
                headers={"Retry-After": "1"})
        # The earlier attempt failed, or its worker died: carry on where it stopped.
        row.lease_token += 1
        row.lease_until = now + timedelta(seconds=lease_seconds)
        return Claim(row.id, row.lease_token, dict(row.progress or {}))


def _fenced(held: Claim) -> Any:
    table = IdempotencyKey.__table__
    return sa.update(table).where(table.c.id == held.row_id,
                                  table.c.lease_token == held.token)


def note_progress(db: Database, held: Claim, **progress: Any) -> Claim:
    """Remember how far the request got (its own transaction, so a failure later keeps it)."""
    merged = {**held.progress, **progress}
    with db.transaction() as session:
        if not session.execute(_fenced(held).values(progress=merged)).rowcount:
            raise _taken_over()
    return Claim(held.row_id, held.token, merged)


def finish(session: Any, held: Claim, status: int, body: dict[str, Any]) -> None:
    """Store the answer in the caller's transaction, the one that makes the effect durable:
    both or neither. A claim another attempt took over raises, rolling the effect back."""
    if not session.execute(_fenced(held).values(
            state=DONE, response_status=status, response_body=body)).rowcount:
        raise _taken_over()


def release(db: Database, held: Claim) -> None:
    """The request failed: a retry may carry on at once (its progress stays)."""
    with db.transaction() as session:
        session.execute(_fenced(held).values(lease_until=utcnow()))


def prune(db: Database) -> int:
    with db.transaction() as session:
        result = session.execute(sa.delete(IdempotencyKey).where(
            IdempotencyKey.expires_at <= utcnow()))
        return result.rowcount or 0


def _taken_over() -> KeyInFlight:
    return KeyInFlight(f"another attempt with this {HEADER} took this request over; send it "
                       "again shortly to get its answer", headers={"Retry-After": "1"})
