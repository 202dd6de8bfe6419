"""API keys from the console and the admin API: listed, created (shown once), revoked;
every change audited. The key itself is never stored or logged, only its hash."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app import audit
from app.auth import ROLES, ApiKey, create_key, revoke_key
from app.config import DEV_WEBHOOK_SECRET
from app.db import Database
from app.errors import NotFound, ValidationFailed


def key_dict(key: ApiKey) -> dict[str, Any]:
    return {"id": key.id, "name": key.name, "role": key.role, "prefix": key.prefix,
            "created_at": key.created_at.isoformat(),
            "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None}


def list_keys(db: Database) -> list[ApiKey]:
    with db.transaction() as session:
        return list(session.scalars(sa.select(ApiKey).order_by(
            ApiKey.revoked_at.is_not(None), ApiKey.id.desc())))


def create(db: Database, name: str, role: str, actor: str) -> tuple[ApiKey, str]:
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationFailed("a key needs a name of 1-100 characters",
                               details={"fields": {"name": ["1-100 characters"]}})
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}",
                               details={"fields": {"role": [f"one of {', '.join(ROLES)}"]}})
    with db.transaction() as session:
        row, key = create_key(session, name, role)
        audit.record(session, actor=actor, action="create_api_key", target_type="api_key",
                     target_id=row.id, after={"name": name, "role": role, "prefix": row.prefix})
    return row, key


def revoke(db: Database, key_id: int, actor: str) -> ApiKey:
    with db.transaction() as session:
        row = session.get(ApiKey, key_id)
        if row is None or not revoke_key(session, key_id):
            raise NotFound(f"no active API key {key_id}")
        audit.record(session, actor=actor, action="revoke_api_key", target_type="api_key",
                     target_id=key_id, before={"name": row.name, "role": row.role},
                     after={"revoked_at": row.revoked_at.isoformat() if row.revoked_at else None})
        return row


def webhook_secrets(settings: Any) -> list[dict[str, Any]]:
    """Which webhook secrets are configured, never their values (they live in the
    environment; rotation: set GOCARDLESS_WEBHOOK_SECRET_PREVIOUS to the old one)."""
    return [{"endpoint": "gocardless", "variable": "GOCARDLESS_WEBHOOK_SECRET",
             "configured": bool(settings.webhook_secret),
             "development_default": settings.webhook_secret == DEV_WEBHOOK_SECRET},
            {"endpoint": "gocardless", "variable": "GOCARDLESS_WEBHOOK_SECRET_PREVIOUS",
             "configured": bool(settings.webhook_secret_previous),
             "development_default": False}]
