"""Console users: created from the command line, passwords stored only as salted hashes.

Two roles: *admin* (may change things: reprocess, edit, discard, manage API keys) and
*operations* (reads everything, changes nothing). Passwords are hashed with werkzeug's
scrypt, which is slow on purpose, unlike API keys (random 256-bit tokens, SHA-256 is right).
A new password or a disable ends every open session of the user (app.user_sessions).
"""

from __future__ import annotations

import re
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from app.clock import utcnow
from app.db import Base, BigId, UTCDateTime
from app.user_sessions import ConsoleSession, end_all, live

ADMIN, OPERATIONS = "admin", "operations"
ROLES = (ADMIN, OPERATIONS)
MIN_PASSWORD = 10
_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,100}$")
# Compared against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("paybridge-timing-equaliser")


class User(Base):
    __tablename__ = "console_users"
    __table_args__ = (sa.UniqueConstraint("name", name="uq_console_users_name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    role: Mapped[str] = mapped_column(sa.String(16))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


class UserError(ValueError):
    """A user cannot be created or changed as asked (says why)."""


def _check(name: str, role: str, password: str) -> None:
    if not _NAME.match(name):
        raise UserError("a user name is 1-100 letters, digits, '-', '_', '.' or '@'")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")


def create_user(session: Session, name: str, role: str, password: str) -> User:
    _check(name, role, password)
    if session.scalar(sa.select(User.id).where(User.name == name)) is not None:
        raise UserError(f"a user named {name!r} already exists")
    user = User(name=name, role=role, password_hash=generate_password_hash(password))
    session.add(user)
    session.flush()
    return user


def _named(session: Session, name: str) -> User:
    user = session.scalars(sa.select(User).where(User.name == name)).first()
    if user is None:
        raise UserError(f"no user named {name!r}")
    return user


def set_password(session: Session, name: str, password: str) -> User:
    """A new password; whoever signed in with the old one is signed out."""
    user = _named(session, name)
    _check(name, user.role, password)
    user.password_hash = generate_password_hash(password)
    end_all(session, user.id)
    return user


def set_disabled(session: Session, name: str, disabled: bool) -> User:
    """Disabling ends every session; enabling again does not bring any back."""
    user = _named(session, name)
    user.disabled_at = utcnow() if disabled else None
    end_all(session, user.id)
    return user


def end_sessions(session: Session, name: str) -> int:
    """Signs the user out everywhere; returns how many sessions were open."""
    return end_all(session, _named(session, name).id)


def authenticate(session: Session, name: str, password: str) -> User | None:
    """The active user with that name and password, or None (same cost either way)."""
    user = session.scalars(sa.select(User).where(User.name == name)).first()
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or user.disabled_at:
        return None
    user.last_login_at = utcnow()
    return user


def session_user(session: Session, token: str) -> User | None:
    """The active user whose open session has this token, or None."""
    return session.scalars(
        sa.select(User).join(ConsoleSession, ConsoleSession.user_id == User.id)
        .where(live(token), User.disabled_at.is_(None))
    ).first()
