"""exchange ledger on PostgreSQL: the due and depends_on indexes hold only the messages still
open (pending, sending, failed); an acknowledged message leaves them

Revision ID: 0030_exchange_open_indexes
Revises: 0029_exchange_requests
Create Date: 2026-12-02 13:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0030_exchange_open_indexes'
down_revision = '0029_exchange_requests'
branch_labels = None
depends_on = None

OPEN = "status IN ('pending', 'sending', 'failed')"
HAS_PARENT = "depends_on IS NOT NULL"


def _indexes(due_where: str | None, parent_where: str) -> None:
    op.drop_index("ix_exchange_messages_due", table_name="exchange_messages")
    op.create_index("ix_exchange_messages_due", "exchange_messages", ["status", "lane", "kind", "next_attempt_at", "id"],
                    postgresql_where=sa.text(due_where) if due_where else None)
    op.drop_index("ix_exchange_messages_depends_on", table_name="exchange_messages")
    op.create_index("ix_exchange_messages_depends_on", "exchange_messages", ["depends_on"],
                    postgresql_where=sa.text(parent_where), sqlite_where=sa.text(HAS_PARENT))


def upgrade():
    _indexes(OPEN, f"{HAS_PARENT} AND {OPEN}")


def downgrade():
    _indexes(None, HAS_PARENT)
