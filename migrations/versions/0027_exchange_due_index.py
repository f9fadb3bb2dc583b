"""exchange ledger: the due index ends with the id (a push run resumes its scan where the last
batch ended); the depends_on index holds only messages that have a parent

Revision ID: 0027_exchange_due_index
Revises: 0026_incremental_statistics
Create Date: 2026-12-02 06:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0027_exchange_due_index'
down_revision = '0026_incremental_statistics'
branch_labels = None
depends_on = None

HAS_PARENT = sa.text("depends_on IS NOT NULL")


def upgrade():
    op.drop_index("ix_exchange_messages_due", table_name="exchange_messages")
    op.create_index("ix_exchange_messages_due", "exchange_messages", ["status", "lane", "kind", "next_attempt_at", "id"])
    op.drop_index("ix_exchange_messages_depends_on", table_name="exchange_messages")
    op.create_index("ix_exchange_messages_depends_on", "exchange_messages", ["depends_on"],
                    postgresql_where=HAS_PARENT, sqlite_where=HAS_PARENT)


def downgrade():
    op.drop_index("ix_exchange_messages_depends_on", table_name="exchange_messages")
    op.create_index("ix_exchange_messages_depends_on", "exchange_messages", ["depends_on"])
    op.drop_index("ix_exchange_messages_due", table_name="exchange_messages")
    op.create_index("ix_exchange_messages_due", "exchange_messages", ["status", "lane", "kind", "next_attempt_at"])
