"""job watermarks: a job that reads rows by id keeps its last id in a column of its own
(flag_bursts kept it as microseconds after 1970 in the moment column)

Revision ID: 0028_job_watermark_ids
Revises: 0027_exchange_due_index
Create Date: 2026-12-02 07:00:00
"""
from datetime import datetime, timedelta, timezone

from alembic import op
import sqlalchemy as sa


revision = '0028_job_watermark_ids'
down_revision = '0027_exchange_due_index'
branch_labels = None
depends_on = None

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
marks = sa.table("job_watermarks", sa.column("name", sa.String), sa.column("value", sa.DateTime(timezone=True)),
                 sa.column("last_id", sa.BigInteger))


def _aware(value):
    if isinstance(value, str):  # SQLite without the type's processing
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def upgrade():
    with op.batch_alter_table("job_watermarks") as batch:
        batch.add_column(sa.Column("last_id", sa.BigInteger(), nullable=True))
    bind = op.get_bind()
    for name, value in bind.execute(sa.select(marks.c.name, marks.c.value).where(marks.c.name == "flag_bursts")):
        last_id = int((_aware(value) - EPOCH) / timedelta(microseconds=1))
        bind.execute(marks.update().where(marks.c.name == name).values(last_id=last_id))


def downgrade():
    bind = op.get_bind()
    for name, last_id in bind.execute(sa.select(marks.c.name, marks.c.last_id).where(marks.c.last_id.is_not(None))):
        moment = EPOCH + timedelta(microseconds=last_id)
        value = moment if bind.dialect.name == "postgresql" else moment.replace(tzinfo=None)
        bind.execute(marks.update().where(marks.c.name == name).values(value=value))
    with op.batch_alter_table("job_watermarks") as batch:
        batch.drop_column("last_id")
