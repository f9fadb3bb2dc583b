"""voice calls: the phone channel (IVR ratings, voice complaints) and masked callback calls

Revision ID: 0024_voice_calls
Revises: 0023_monthly_reports
Create Date: 2026-12-02 04:00:00
"""
from alembic import op
import sqlalchemy as sa

from feedback.db_types import UTCDateTime


revision = '0024_voice_calls'
down_revision = '0023_monthly_reports'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'voice_calls',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('call_sid', sa.String(length=64), nullable=True),
        sa.Column('direction', sa.String(length=20), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('from_phone', sa.String(length=40), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('status_at', UTCDateTime(), nullable=True),
        sa.Column('ended_at', UTCDateTime(), nullable=True),
        sa.Column('duration_seconds', sa.Integer(), nullable=True),
        sa.Column('error_code', sa.String(length=20), nullable=True),
        sa.Column('error_message', sa.String(length=300), nullable=True),
        sa.Column('record_ids', sa.JSON(), nullable=False),
        sa.Column('position', sa.SmallInteger(), nullable=False),
        sa.Column('step', sa.String(length=20), nullable=False),
        sa.Column('pending_level', sa.SmallInteger(), nullable=True),
        sa.Column('misses', sa.SmallInteger(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('rated_count', sa.SmallInteger(), nullable=False),
        sa.Column('outcome', sa.String(length=30), nullable=True),
        sa.Column('evaluation_id', sa.Integer(), nullable=True),
        sa.Column('complaint_id', sa.Integer(), nullable=True),
        sa.Column('ticket_id', sa.Integer(), nullable=True),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('dial_status', sa.String(length=20), nullable=True),
        sa.Column('dial_duration_seconds', sa.Integer(), nullable=True),
        sa.Column('reached', sa.Boolean(), nullable=True),
        sa.Column('result_recorded_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['complaint_id'], ['complaints.id'], name=op.f('fk_voice_calls_complaint_id_complaints')),
        sa.ForeignKeyConstraint(['evaluation_id'], ['evaluations.id'], name=op.f('fk_voice_calls_evaluation_id_evaluations')),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_voice_calls_ticket_id_tickets')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_voice_calls_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_voice_calls')),
        sa.UniqueConstraint('call_sid', name=op.f('uq_voice_calls_call_sid')),
    )
    with op.batch_alter_table('voice_calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_voice_calls_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_voice_calls_ticket_created', ['ticket_id', 'created_at'], unique=False)
        batch_op.create_index('ix_voice_calls_state_created', ['direction', 'state', 'created_at'], unique=False)
    op.create_table(
        'voice_recordings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('call_id', sa.Integer(), nullable=False),
        sa.Column('recording_sid', sa.String(length=64), nullable=True),
        sa.Column('url', sa.String(length=500), nullable=True),
        sa.Column('duration_seconds', sa.Integer(), nullable=False),
        sa.Column('purpose', sa.String(length=20), nullable=False),
        sa.Column('evaluation_id', sa.Integer(), nullable=True),
        sa.Column('complaint_id', sa.Integer(), nullable=True),
        sa.Column('ticket_id', sa.Integer(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('erased_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['call_id'], ['voice_calls.id'], name=op.f('fk_voice_recordings_call_id_voice_calls')),
        sa.ForeignKeyConstraint(['complaint_id'], ['complaints.id'], name=op.f('fk_voice_recordings_complaint_id_complaints')),
        sa.ForeignKeyConstraint(['evaluation_id'], ['evaluations.id'], name=op.f('fk_voice_recordings_evaluation_id_evaluations')),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_voice_recordings_ticket_id_tickets')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_voice_recordings')),
        sa.UniqueConstraint('recording_sid', name=op.f('uq_voice_recordings_recording_sid')),
    )
    with op.batch_alter_table('voice_recordings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_voice_recordings_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_voice_recordings_evaluation_id'), ['evaluation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_voice_recordings_complaint_id'), ['complaint_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_voice_recordings_ticket_id'), ['ticket_id'], unique=False)
    # Outbound rating calls (feedback/voice/outbound.py): the counter's mark, the outbox, the
    # numbers' opt-in (SMS 来电) and opt-out (key 9 in a call).
    with op.batch_alter_table('service_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prefers_call', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        'voice_outbound_calls',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('service_record_id', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(length=20), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('attempts', sa.SmallInteger(), nullable=False),
        sa.Column('next_attempt_at', UTCDateTime(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('placed_at', UTCDateTime(), nullable=True),
        sa.Column('error_code', sa.String(length=20), nullable=True),
        sa.Column('error_message', sa.String(length=300), nullable=True),
        sa.Column('call_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['call_id'], ['voice_calls.id'], name=op.f('fk_voice_outbound_calls_call_id_voice_calls')),
        sa.ForeignKeyConstraint(['service_record_id'], ['service_records.id'],
                                name=op.f('fk_voice_outbound_calls_service_record_id_service_records')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_voice_outbound_calls')),
        sa.UniqueConstraint('service_record_id', name=op.f('uq_voice_outbound_calls_service_record_id')),
    )
    with op.batch_alter_table('voice_outbound_calls', schema=None) as batch_op:
        batch_op.create_index('ix_voice_outbound_calls_state_next', ['state', 'next_attempt_at'], unique=False)
    op.create_table(
        'voice_call_preferences',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('phone', sa.String(length=20), nullable=False),
        sa.Column('wants_calls', sa.Boolean(), nullable=False),
        sa.Column('source', sa.String(length=40), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_voice_call_preferences')),
        sa.UniqueConstraint('phone', name=op.f('uq_voice_call_preferences_phone')),
    )


def downgrade():
    op.drop_table('voice_call_preferences')
    op.drop_table('voice_outbound_calls')
    with op.batch_alter_table('service_records', schema=None) as batch_op:
        batch_op.drop_column('prefers_call')
    op.drop_table('voice_recordings')
    op.drop_table('voice_calls')
