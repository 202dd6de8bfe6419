"""Console sessions kept on the server, so that signing out really ends one.

The signed cookie carries only a random session token; the database keeps its SHA-256 hash
(a read of the table gives no usable cookie), whose user it is and when it ends. A captured
cookie therefore stops working the moment its row goes: at sign-out (that session), at a
password change or a disable (every session of the user), or at its expiry (the lifetime
counts from sign-in, on the server, whatever the cookie's own timestamp says).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.clock import utcnow
from app.db import Base, BigId, UTCDateTime


class ConsoleSession(Base):
    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("console_users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, user_id: int, lifetime: float) -> str:
    """A new session for the user; returns the token for the cookie (never stored)."""
    now = utcnow()
    # Sign-ins are rare, so they sweep the expired rows: no job needed for it.
    session.execute(sa.delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    session.add(ConsoleSession(token_hash=hash_token(token), user_id=user_id, created_at=now,
                               expires_at=now + timedelta(seconds=lifetime)))
    return token


def live(token: str) -> sa.ColumnElement[bool]:
    """The condition for the row of an open session with this token."""
    return sa.and_(ConsoleSession.token_hash == hash_token(token),
                   ConsoleSession.expires_at > utcnow())


def end_session(session: Session, token: str) -> None:
    session.execute(sa.delete(ConsoleSession).where(
        ConsoleSession.token_hash == hash_token(token)))


def end_all(session: Session, user_id: int) -> int:
    """Ends every session of the user; returns how many were open."""
    result = session.execute(sa.delete(ConsoleSession).where(
        ConsoleSession.user_id == user_id, ConsoleSession.expires_at > utcnow()))
    session.execute(sa.delete(ConsoleSession).where(ConsoleSession.user_id == user_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
