"""console: users, audit log, bulk operations, alerts, record references, list indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 04:04:13.754067
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
import app.db

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert_state',
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('watermark', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('pending', sa.Integer(), nullable=False),
    sa.Column('pending_detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('last_sent_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('kind', name=op.f('pk_alert_state'))
    )
    op.create_table('alerts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('delivery', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_kind', ['kind', 'id'], unique=False)

    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('target_type', sa.String(length=40), nullable=False),
    sa.Column('target_id', sa.String(length=64), nullable=True),
    sa.Column('before', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('after', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_action', ['action', 'id'], unique=False)
        batch_op.create_index('ix_audit_log_actor', ['actor', 'id'], unique=False)
        batch_op.create_index('ix_audit_log_at', ['at'], unique=False)
        batch_op.create_index('ix_audit_log_target', ['target_type', 'target_id', 'id'], unique=False)

    op.create_table('bulk_operations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('queue', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('filter', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('processed', sa.Integer(), nullable=False),
    sa.Column('changed', sa.Integer(), nullable=False),
    sa.Column('cursor', sa.BigInteger(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bulk_operations'))
    )
    with op.batch_alter_table('bulk_operations', schema=None) as batch_op:
        batch_op.create_index('ix_bulk_operations_status', ['status', 'id'], unique=False)

    op.create_table('console_users',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('disabled_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_users')),
    sa.UniqueConstraint('name', name='uq_console_users_name')
    )
    op.create_table('record_refs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('object', sa.String(length=32), nullable=False),
    sa.Column('gateway_id', sa.String(length=64), nullable=False),
    sa.Column('reference', sa.String(length=140), nullable=True),
    sa.Column('label', sa.String(length=300), nullable=True),
    sa.Column('customer_id', sa.String(length=64), nullable=True),
    sa.Column('parent_object', sa.String(length=32), nullable=True),
    sa.Column('parent_id', sa.String(length=64), nullable=True),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record_refs')),
    sa.UniqueConstraint('object', 'gateway_id', name='uq_record_refs_object_gateway_id')
    )
    with op.batch_alter_table('record_refs', schema=None) as batch_op:
        batch_op.create_index('ix_record_refs_customer', ['customer_id'], unique=False)
        batch_op.create_index('ix_record_refs_reference', ['reference'], unique=False)

    with op.batch_alter_table('api_queue_items', schema=None) as batch_op:
        batch_op.create_index('ix_api_queue_items_status_id', ['status', 'id'], unique=False)
        batch_op.create_index('ix_api_queue_items_status_object', ['status', 'object', 'id'], unique=False)

    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_events_status_id', ['status', 'id'], unique=False)
        batch_op.create_index('ix_webhook_events_status_resource', ['status', 'resource_type', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_events_status_resource')
        batch_op.drop_index('ix_webhook_events_status_id')

    with op.batch_alter_table('api_queue_items', schema=None) as batch_op:
        batch_op.drop_index('ix_api_queue_items_status_object')
        batch_op.drop_index('ix_api_queue_items_status_id')

    with op.batch_alter_table('record_refs', schema=None) as batch_op:
        batch_op.drop_index('ix_record_refs_reference')
        batch_op.drop_index('ix_record_refs_customer')

    op.drop_table('record_refs')
    op.drop_table('console_users')
    with op.batch_alter_table('bulk_operations', schema=None) as batch_op:
        batch_op.drop_index('ix_bulk_operations_status')

    op.drop_table('bulk_operations')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_target')
        batch_op.drop_index('ix_audit_log_at')
        batch_op.drop_index('ix_audit_log_actor')
        batch_op.drop_index('ix_audit_log_action')

    op.drop_table('audit_log')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_kind')

    op.drop_table('alerts')
    op.drop_table('alert_state')
