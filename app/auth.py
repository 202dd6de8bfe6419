"""API keys: created by the CLI, shown once, stored only as a SHA-256 hash.

Keys are 256-bit random tokens, so a fast hash is the right tool (unlike passwords, there
is nothing to brute-force); lookups go by the hash's index.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

import sqlalchemy as sa
from flask import current_app, g, request
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.clock import utcnow
from app.db import Base, BigId, UTCDateTime
from app.errors import Forbidden, Unauthorized

# operations: read-only admin endpoints (the console's operations role, for scripts).
ROLES = ("trigger", "admin", "operations")


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    role: Mapped[str] = mapped_column(sa.String(16))
    prefix: Mapped[str] = mapped_column(sa.String(16))  # shown in listings to tell keys apart
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, name: str, role: str) -> tuple[ApiKey, str]:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    key = f"pb_{role}_{secrets.token_urlsafe(32)}"
    row = ApiKey(name=name, role=role, prefix=key[:12], key_hash=hash_key(key))
    session.add(row)
    session.flush()
    return row, key


def revoke_key(session: Session, key_id: int) -> bool:
    row = session.get(ApiKey, key_id)
    if row is None or row.revoked_at:
        return False
    row.revoked_at = utcnow()
    return True


def lookup(session: Session, key: str) -> ApiKey | None:
    return session.scalars(
        sa.select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
    ).first()


def require_key(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Route decorator: a valid `Authorization: Bearer <key>` whose role is in ``roles``."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
            with current_app.extensions["paybridge"].db.transaction() as session:
                key = lookup(session, token.strip())
                if key is None:
                    raise Unauthorized("unknown or revoked API key")
                if key.role not in roles:
                    raise Forbidden(f"this endpoint needs a key with role {' or '.join(roles)}")
                g.api_key_id, g.api_key_name, g.api_key_role = key.id, key.name, key.role
            return view(*args, **kwargs)

        return wrapper

    return decorator
