"""exchange requests: a push stores each request once (exchange_requests) and its messages
point at it (exchange_messages.request_id), instead of a copy of the item in every message

Revision ID: 0029_exchange_requests
Revises: 0028_job_watermark_ids
Create Date: 2026-12-02 10:00:00
"""
from alembic import op
import sqlalchemy as sa

from feedback.db_types import UTCDateTime


revision = '0029_exchange_requests'
down_revision = '0028_job_watermark_ids'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "exchange_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("lane", sa.String(length=10), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_requests")),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and bind.dialect.server_version_info >= (14,):
        # A request's text (up to 200 items of JSON) compresses well; lz4 costs a fraction of
        # the default pglz's time. A server built without lz4 keeps the default.
        try:
            with bind.begin_nested():
                op.execute("ALTER TABLE exchange_requests ALTER COLUMN body SET COMPRESSION lz4")
        except sa.exc.DBAPIError:
            pass
    with op.batch_alter_table("exchange_messages") as batch:
        batch.add_column(sa.Column("request_id", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("exchange_messages") as batch:
        batch.drop_column("request_id")
    op.drop_table("exchange_requests")
