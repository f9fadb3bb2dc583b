"""exchange ledger: messages to report upward, the pause switch, daily reconciliations

Revision ID: 0019_exchange_ledger
Revises: 0018_national_codes
Create Date: 2026-12-02 12:00:00

- ``exchange_messages``: one row per reportable event (record, rating, invalidation,
  complaint, rectification step, supervision step), its delivery status, attempts, remote id
  and the masked last request and answer (feedback/exchange). Existing data is not queued
  here: ``flask --app wsgi exchange backfill --from … --to …`` queues it (补报).
- ``exchange_control``: one row, whether pushing is paused.
- ``exchange_reconciliations``: each day's local counts beside the acknowledged counts.
"""
from alembic import op
import sqlalchemy as sa

from feedback.db_types import UTCDateTime


revision = '0019_exchange_ledger'
down_revision = '0018_national_codes'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "exchange_messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("subject_key", sa.String(60), nullable=False),
        sa.Column("message_id", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("lane", sa.String(10), nullable=False),
        sa.Column("depends_on", sa.String(60)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime()),
        sa.Column("claim", sa.String(32)),
        sa.Column("remote_id", sa.String(100)),
        sa.Column("last_request", sa.Text()),
        sa.Column("last_answer", sa.Text()),
        sa.Column("last_error", sa.String(300)),
        sa.Column("last_attempt_at", UTCDateTime()),
        sa.Column("event_at", UTCDateTime(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("produced_at", UTCDateTime(), nullable=False),
        sa.Column("acknowledged_at", UTCDateTime()),
        sa.Column("backfilled", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("subject_key", name="uq_exchange_messages_subject_key"),
        sa.UniqueConstraint("message_id", name="uq_exchange_messages_message_id"),
    )
    op.create_index("ix_exchange_messages_due", "exchange_messages", ["status", "lane", "kind", "next_attempt_at"])
    op.create_index("ix_exchange_messages_day", "exchange_messages", ["business_date", "kind", "status"])
    op.create_index("ix_exchange_messages_depends_on", "exchange_messages", ["depends_on"])
    op.create_table(
        "exchange_control",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("changed_at", UTCDateTime()),
        sa.Column("changed_by", sa.String(80), nullable=False),
    )
    op.create_table(
        "exchange_reconciliations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("local_count", sa.Integer(), nullable=False),
        sa.Column("produced", sa.Integer(), nullable=False),
        sa.Column("acknowledged", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("matches", sa.Boolean(), nullable=False),
        sa.Column("checked_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_exchange_reconciliations_day", "exchange_reconciliations", ["day"])


def downgrade():
    op.drop_index("ix_exchange_reconciliations_day", table_name="exchange_reconciliations")
    op.drop_table("exchange_reconciliations")
    op.drop_table("exchange_control")
    op.drop_index("ix_exchange_messages_depends_on", table_name="exchange_messages")
    op.drop_index("ix_exchange_messages_day", table_name="exchange_messages")
    op.drop_index("ix_exchange_messages_due", table_name="exchange_messages")
    op.drop_table("exchange_messages")
