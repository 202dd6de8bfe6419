"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 03:48:48.889125
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
import app.db

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash'))
    )
    op.create_table('api_queue_archive',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('object', sa.String(length=32), nullable=False),
    sa.Column('record_id', sa.String(length=64), nullable=False),
    sa.Column('operation', sa.String(length=16), nullable=False),
    sa.Column('gateway_id', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error_log', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_queue_archive'))
    )
    with op.batch_alter_table('api_queue_archive', schema=None) as batch_op:
        batch_op.create_index('ix_api_queue_archive_completed', ['completed_at'], unique=False)
        batch_op.create_index('ix_api_queue_archive_record', ['object', 'record_id'], unique=False)

    op.create_table('api_queue_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('object', sa.String(length=32), nullable=False),
    sa.Column('record_id', sa.String(length=64), nullable=False),
    sa.Column('operation', sa.String(length=16), nullable=False),
    sa.Column('fields', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('previous_fields', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('idempotency_key', sa.String(length=80), nullable=False),
    sa.Column('gateway_id', sa.String(length=64), nullable=True),
    sa.Column('result', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('dispatched_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('job_id', sa.String(length=64), nullable=True),
    sa.Column('error_log', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('discard_reason', sa.Text(), nullable=True),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_queue_items')),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('api_queue_items', schema=None) as batch_op:
        batch_op.create_index('ix_api_queue_items_created', ['created_at'], unique=False)
        batch_op.create_index('ix_api_queue_items_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_api_queue_items_record', ['object', 'record_id', 'id'], unique=False)

    op.create_table('record_links',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('object', sa.String(length=32), nullable=False),
    sa.Column('crm_id', sa.String(length=64), nullable=True),
    sa.Column('gateway_id', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=48), nullable=True),
    sa.Column('last_event_id', sa.String(length=64), nullable=True),
    sa.Column('last_event_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record_links')),
    sa.UniqueConstraint('object', 'crm_id', name='uq_record_links_object_crm_id'),
    sa.UniqueConstraint('object', 'gateway_id', name='uq_record_links_object_gateway_id')
    )
    op.create_table('status_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('object', sa.String(length=32), nullable=False),
    sa.Column('crm_id', sa.String(length=64), nullable=True),
    sa.Column('gateway_id', sa.String(length=64), nullable=True),
    sa.Column('from_status', sa.String(length=48), nullable=True),
    sa.Column('to_status', sa.String(length=48), nullable=True),
    sa.Column('cause', sa.String(length=200), nullable=True),
    sa.Column('event_id', sa.String(length=64), nullable=True),
    sa.Column('event_time', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('applied_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('queue_item_id', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_status_history'))
    )
    with op.batch_alter_table('status_history', schema=None) as batch_op:
        batch_op.create_index('ix_status_history_event_id', ['event_id'], unique=False)
        batch_op.create_index('ix_status_history_object_crm_id', ['object', 'crm_id', 'id'], unique=False)
        batch_op.create_index('ix_status_history_object_gateway_id', ['object', 'gateway_id', 'id'], unique=False)

    op.create_table('webhook_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('endpoint', sa.String(length=32), nullable=False),
    sa.Column('delivery_id', sa.String(length=64), nullable=False),
    sa.Column('resource_type', sa.String(length=48), nullable=False),
    sa.Column('resource_id', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('event_time', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('dispatched_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('job_id', sa.String(length=64), nullable=True),
    sa.Column('error_log', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('discard_reason', sa.Text(), nullable=True),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_events')),
    sa.UniqueConstraint('event_id', name='uq_webhook_events_event_id'),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_events_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_webhook_events_event_time', ['event_time'], unique=False)
        batch_op.create_index('ix_webhook_events_resource', ['resource_type', 'resource_id', 'event_time'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_events_resource')
        batch_op.drop_index('ix_webhook_events_event_time')
        batch_op.drop_index('ix_webhook_events_due')

    op.drop_table('webhook_events')
    with op.batch_alter_table('status_history', schema=None) as batch_op:
        batch_op.drop_index('ix_status_history_object_gateway_id')
        batch_op.drop_index('ix_status_history_object_crm_id')
        batch_op.drop_index('ix_status_history_event_id')

    op.drop_table('status_history')
    op.drop_table('record_links')
    with op.batch_alter_table('api_queue_items', schema=None) as batch_op:
        batch_op.drop_index('ix_api_queue_items_record')
        batch_op.drop_index('ix_api_queue_items_due')
        batch_op.drop_index('ix_api_queue_items_created')

    op.drop_table('api_queue_items')
    with op.batch_alter_table('api_queue_archive', schema=None) as batch_op:
        batch_op.drop_index('ix_api_queue_archive_record')
        batch_op.drop_index('ix_api_queue_archive_completed')

    op.drop_table('api_queue_archive')
    op.drop_table('api_keys')
