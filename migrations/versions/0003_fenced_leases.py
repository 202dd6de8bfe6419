"""work-row engine: fencing tokens on every lease, digests of what was last sent

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 08:50:00

Rows leased by the previous release keep their lease until it expires (token 0 is below
every token this release grants), so work in flight during the upgrade is handed out again,
never lost and never held twice.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

LEASED = ('api_queue_items', 'webhook_events', 'record_links')


def upgrade() -> None:
    counter = op.create_table(
        'lease_tokens',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('value', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_lease_tokens')),
    )
    op.bulk_insert(counter, [{'name': 'work', 'value': 0}])
    for table in LEASED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('lease_token', sa.BigInteger(), server_default='0',
                                       nullable=False))
    with op.batch_alter_table('record_links') as batch:
        batch.add_column(sa.Column(
            'sent_digests',
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
            nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('record_links') as batch:
        batch.drop_column('sent_digests')
    for table in LEASED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column('lease_token')
    op.drop_table('lease_tokens')
