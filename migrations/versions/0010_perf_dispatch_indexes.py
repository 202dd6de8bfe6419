"""dispatch indexes: the dispatcher's pass finds due rows by index, whatever the backlog

Revision ID: 0010_perf_dispatch_indexes
Revises: 0009_reconciliation
Create Date: 2026-12-03 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010_perf_dispatch_indexes'
down_revision = '0009_reconciliation'
branch_labels = None
depends_on = None

TABLES = ('api_queue_items', 'webhook_events')


def upgrade() -> None:
    for table in TABLES:
        # Never handed out (NULL) or handed out long ago: both are ranges of this index.
        op.create_index(f'ix_{table}_dispatched', table, ['dispatched_at'])
        # Only rows under a lease are in it, so intake (no lease yet) never maintains it.
        where = sa.text('lease_owner IS NOT NULL')
        op.create_index(f'ix_{table}_leased', table, ['lease_until'],
                        postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f'ix_{table}_leased', table_name=table)
        op.drop_index(f'ix_{table}_dispatched', table_name=table)
