"""catch-up watermark: what the catch-up has covered and where its scan stands

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 14:30:00

No row is written here: the first catch-up after the upgrade starts from the newest event
already seen, as the previous release did, and keeps its own place from then on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'catchup_state',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('covered_until', UTCDateTime(timezone=True), nullable=False),
        sa.Column('scan_since', UTCDateTime(timezone=True), nullable=True),
        sa.Column('scan_top', UTCDateTime(timezone=True), nullable=True),
        sa.Column('scan_cursor', sa.String(length=64), nullable=True),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_catchup_state')),
    )


def downgrade() -> None:
    op.drop_table('catchup_state')
