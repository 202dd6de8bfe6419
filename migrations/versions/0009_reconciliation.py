"""reconciliation: runs, their differences, the gateway side staged per run

Revision ID: 0009_reconciliation
Revises: 0008
Create Date: 2026-12-02 18:49:05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import BigId, JSONType, UTCDateTime

revision = '0009_reconciliation'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'reconcile_runs',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('objects', JSONType, nullable=False),
        sa.Column('repair', sa.Boolean(), nullable=False),
        sa.Column('dry_run', sa.Boolean(), nullable=False),
        sa.Column('soql_where', sa.Text(), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('started_by', sa.String(length=16), nullable=False),
        sa.Column('started_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('finished_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('progress', JSONType, nullable=False),
        sa.Column('cursor', JSONType, nullable=False),
        sa.Column('summary', JSONType, nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reconcile_runs')),
    )
    op.create_index('ix_reconcile_runs_kind_started_at', 'reconcile_runs',
                    ['kind', 'started_at'])
    op.create_table(
        'reconcile_differences',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('run_id', sa.BigInteger(), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('object', sa.String(length=32), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('crm_id', sa.String(length=64), nullable=True),
        sa.Column('gateway_id', sa.String(length=64), nullable=True),
        sa.Column('field', sa.String(length=64), nullable=True),
        sa.Column('crm_value', sa.Text(), nullable=True),
        sa.Column('gateway_value', sa.Text(), nullable=True),
        sa.Column('repair', sa.String(length=32), nullable=False),
        sa.Column('safe', sa.Boolean(), nullable=False),
        sa.Column('repair_state', sa.String(length=16), nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('found_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('repaired_at', UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['run_id'], ['reconcile_runs.id'],
                                name=op.f('fk_reconcile_differences_run_id_reconcile_runs'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reconcile_differences')),
        sa.UniqueConstraint('run_id', 'key', name='uq_reconcile_differences_run_id_key'),
    )
    op.create_index('ix_reconcile_differences_run_id_kind', 'reconcile_differences',
                    ['run_id', 'kind', 'id'])
    op.create_index('ix_reconcile_differences_run_id_object', 'reconcile_differences',
                    ['run_id', 'object', 'id'])
    op.create_table(
        'reconcile_staging',
        sa.Column('run_id', sa.BigInteger(), nullable=False),
        sa.Column('object', sa.String(length=32), nullable=False),
        sa.Column('gateway_id', sa.String(length=64), nullable=False),
        sa.Column('crm_id', sa.String(length=64), nullable=True),
        sa.Column('match_key', sa.String(length=320), nullable=True),
        sa.Column('data', JSONType, nullable=False),
        sa.Column('seen', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['reconcile_runs.id'],
                                name=op.f('fk_reconcile_staging_run_id_reconcile_runs'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('run_id', 'object', 'gateway_id',
                                name=op.f('pk_reconcile_staging')),
    )
    op.create_index('ix_reconcile_staging_run_id_object_crm_id', 'reconcile_staging',
                    ['run_id', 'object', 'crm_id'])
    op.create_index('ix_reconcile_staging_run_id_object_match_key', 'reconcile_staging',
                    ['run_id', 'object', 'match_key'])


def downgrade() -> None:
    op.drop_table('reconcile_staging')
    op.drop_table('reconcile_differences')
    op.drop_table('reconcile_runs')
