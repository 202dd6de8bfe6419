"""change capture: polling watermarks, record snapshots, outbound notification ids

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 15:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import JSONType, UTCDateTime

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'capture_watermarks',
        sa.Column('object', sa.String(length=32), nullable=False),
        sa.Column('modstamp', UTCDateTime(timezone=True), nullable=False),
        sa.Column('polled_at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('object', name=op.f('pk_capture_watermarks')),
    )
    op.create_table(
        'capture_snapshots',
        sa.Column('object', sa.String(length=32), nullable=False),
        sa.Column('record_id', sa.String(length=64), nullable=False),
        sa.Column('modstamp', UTCDateTime(timezone=True), nullable=False),
        sa.Column('fields', JSONType, nullable=False),
        sa.Column('deleted', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('object', 'record_id', name=op.f('pk_capture_snapshots')),
    )
    op.create_table(
        'outbound_notifications',
        sa.Column('notification_id', sa.String(length=64), nullable=False),
        sa.Column('received_at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('notification_id', name=op.f('pk_outbound_notifications')),
    )
    op.create_index(op.f('ix_outbound_notifications_received_at'), 'outbound_notifications',
                    ['received_at'])


def downgrade() -> None:
    op.drop_index(op.f('ix_outbound_notifications_received_at'),
                  table_name='outbound_notifications')
    op.drop_table('outbound_notifications')
    op.drop_table('capture_snapshots')
    op.drop_table('capture_watermarks')
