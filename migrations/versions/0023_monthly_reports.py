"""monthly reports: the 月度通报 per month and scope, its archived PDF, XLSX and figures

Revision ID: 0023_monthly_reports
Revises: 0022_talks_rechecks
Create Date: 2026-12-03 12:00:00

- ``monthly_reports``: one bulletin per month and scope (the city, or a department with the
  departments below it): a draft until a supervisor signs it; then its PDF and XLSX bytes and
  the figures snapshot are the archive, never regenerated (feedback/reports).
"""
from alembic import op
import sqlalchemy as sa

from feedback.db_types import UTCDateTime


revision = '0023_monthly_reports'
down_revision = '0022_talks_rechecks'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "monthly_reports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("scope", sa.String(40), nullable=False),
        sa.Column("department_id", sa.Integer(), sa.ForeignKey("departments.id")),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("cases", sa.JSON(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("pdf", sa.LargeBinary()),
        sa.Column("xlsx", sa.LargeBinary()),
        sa.Column("pdf_sha256", sa.String(64)),
        sa.Column("xlsx_sha256", sa.String(64)),
        sa.Column("generated_at", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id")),
        sa.Column("prepared_by_job", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("signed_at", UTCDateTime()),
        sa.Column("signed_by_id", sa.Integer(), sa.ForeignKey("users.id")),
        sa.UniqueConstraint("month", "scope", name="uq_monthly_reports_month_scope"),
    )


def downgrade():
    op.drop_table("monthly_reports")
