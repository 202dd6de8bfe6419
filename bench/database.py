"""The bench's own database: created when missing, emptied and migrated at the start."""

from __future__ import annotations

import sqlalchemy as sa

from app.db import make_engine
from app.migrate import upgrade


def ensure_database(url: str) -> None:
    """PostgreSQL: create the named database if the server does not have it yet."""
    if not url.startswith("postgresql"):
        return
    target = sa.engine.make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    server = make_engine(target.set(database="postgres").render_as_string(hide_password=False))
    try:
        with server.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                  {"n": target.database}).scalar()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    finally:
        server.dispose()


def reset_database(url: str) -> None:
    """Drop everything (PostgreSQL: the public schema) and migrate to the head revision."""
    ensure_database(url)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text("DROP SCHEMA public CASCADE"))
                conn.execute(sa.text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
    upgrade(url)
