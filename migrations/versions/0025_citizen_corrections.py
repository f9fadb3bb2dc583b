"""citizen-facing rules: a rating corrected by SMS within the correction window; ticket closing without a rating

Revision ID: 0025_citizen_corrections
Revises: 0024_voice_calls
Create Date: 2026-12-02 04:00:00
"""
from alembic import op
import sqlalchemy as sa

from feedback.db_types import UTCDateTime


revision = '0025_citizen_corrections'
down_revision = '0024_voice_calls'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbound_sms', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answers_inbound_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_outbound_sms_answers_inbound_id_inbound_sms'), 'inbound_sms',
                                    ['answers_inbound_id'], ['id'])
    op.create_table(
        'sms_rating_corrections',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('evaluation_id', sa.Integer(), nullable=False),
        sa.Column('inbound_sms_id', sa.Integer(), nullable=False),
        sa.Column('old_level', sa.SmallInteger(), nullable=False),
        sa.Column('new_level', sa.SmallInteger(), nullable=False),
        sa.Column('outcome', sa.String(length=20), nullable=False),
        sa.Column('requested_at', UTCDateTime(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['evaluation_id'], ['evaluations.id'],
                                name=op.f('fk_sms_rating_corrections_evaluation_id_evaluations')),
        sa.ForeignKeyConstraint(['inbound_sms_id'], ['inbound_sms.id'],
                                name=op.f('fk_sms_rating_corrections_inbound_sms_id_inbound_sms')),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_sms_rating_corrections_ticket_id_tickets')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_rating_corrections')),
        sa.UniqueConstraint('evaluation_id', name=op.f('uq_sms_rating_corrections_evaluation_id')),
    )


def downgrade():
    op.drop_table('sms_rating_corrections')
    with op.batch_alter_table('outbound_sms', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbound_sms_answers_inbound_id_inbound_sms'), type_='foreignkey')
        batch_op.drop_column('answers_inbound_id')
