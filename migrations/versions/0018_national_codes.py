"""national codes: the identifiers the provincial exchange reports by

Revision ID: 0018_national_codes
Revises: 0017_account_hardening
Create Date: 2026-12-10 10:00:00

- ``service_items``: ``implementation_code`` (实施编码, 31), ``handle_item_code`` (业务办理项编码,
  33), ``item_type`` (事项类型, GB/T 39046 A.1), ``record_type`` (办件类型: 1 即办件, 2 承诺件;
  existing items are 承诺件). Items stay without a 实施编码 (local, never reported) until an
  administrator imports the province's codes.
- ``departments``: ``credit_code`` (统一社会信用代码), ``area_code`` (行政区划代码); ``halls``:
  ``area_code``.
- ``service_records``: ``applicant_type`` (申请人类型: existing company records are 2 企业法人,
  the others 1 自然人), ``certificate_type`` (证件类型, unknown: NULL), ``service_number`` (服务序号,
  1) and ``national_number`` (办件编号, unique nationwide): PROVINCE_CODE before the record number
  unless it already begins with it. Data: every existing record gets its national number here
  (one UPDATE); the few that would collide with another record's (a record numbered "34X" and
  another "X") or be longer than 64 characters get a suffix with their id. Then the column is
  NOT NULL and unique.

Downgrade drops the columns.
"""
from alembic import op
import sqlalchemy as sa
from flask import current_app, has_app_context


# revision identifiers, used by Alembic.
revision = '0018_national_codes'
down_revision = '0017_account_hardening'
branch_labels = None
depends_on = None

NATIONAL_NUMBER_LENGTH = 64


def _province_code() -> str:
    """The PROVINCE_CODE setting (feedback/config.py), read from the app running the migration."""
    return str(current_app.config.get("PROVINCE_CODE", "34")) if has_app_context() else "34"


def upgrade():
    with op.batch_alter_table('service_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('implementation_code', sa.String(length=31), nullable=True))
        batch_op.add_column(sa.Column('handle_item_code', sa.String(length=33), nullable=True))
        batch_op.add_column(sa.Column('item_type', sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column('record_type', sa.String(length=1), server_default='2', nullable=False))
    with op.batch_alter_table('departments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('credit_code', sa.String(length=18), nullable=True))
        batch_op.add_column(sa.Column('area_code', sa.String(length=12), nullable=True))
    with op.batch_alter_table('halls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('area_code', sa.String(length=12), nullable=True))
    with op.batch_alter_table('service_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('applicant_type', sa.String(length=1), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('certificate_type', sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column('national_number', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('service_number', sa.SmallInteger(), server_default='1', nullable=False))

    records = sa.table('service_records', sa.column('id', sa.Integer), sa.column('record_number', sa.String),
                       sa.column('citizen_kind', sa.String), sa.column('applicant_type', sa.String),
                       sa.column('national_number', sa.String))
    conn = op.get_bind()
    conn.execute(records.update().where(records.c.citizen_kind == 'company').values(applicant_type='2'))
    _backfill_national_numbers(conn, records, _province_code())

    with op.batch_alter_table('service_records', schema=None) as batch_op:
        batch_op.alter_column('national_number', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_service_records_national_number'), ['national_number'])


def _backfill_national_numbers(conn, records, province: str) -> None:
    """Give every record its 办件编号: one UPDATE for all, then the few collisions by id."""
    has_prefix = sa.func.substr(records.c.record_number, 1, len(province)) == province
    prefixed = sa.literal(province, sa.String) + records.c.record_number
    conn.execute(records.update().values(national_number=sa.case(
        (has_prefix, records.c.record_number),
        (sa.func.length(records.c.record_number) + len(province) <= NATIONAL_NUMBER_LENGTH, prefixed),
        else_=None)))
    # Collisions: only a prefixed number can meet a record number that had the prefix already.
    taken = sa.select(records.c.national_number).group_by(records.c.national_number).having(sa.func.count() > 1)
    clashing = conn.execute(
        sa.select(records.c.id, records.c.record_number)
        .where(sa.or_(records.c.national_number.is_(None),
                      sa.and_(records.c.national_number.in_(taken), sa.not_(has_prefix))))
        .order_by(records.c.id)).all()
    if not clashing:
        return
    used = set()
    for record_id, record_number in clashing:
        suffix = f"-{record_id}"
        number = (province + record_number)[:NATIONAL_NUMBER_LENGTH - len(suffix)] + suffix
        while number in used or conn.execute(sa.select(records.c.id).where(records.c.national_number == number)
                                             .limit(1)).first():
            suffix += "X"
            number = (province + record_number)[:NATIONAL_NUMBER_LENGTH - len(suffix)] + suffix
        used.add(number)
        conn.execute(records.update().where(records.c.id == record_id).values(national_number=number))


def downgrade():
    with op.batch_alter_table('service_records', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_service_records_national_number'), type_='unique')
        batch_op.drop_column('service_number')
        batch_op.drop_column('national_number')
        batch_op.drop_column('certificate_type')
        batch_op.drop_column('applicant_type')
    with op.batch_alter_table('halls', schema=None) as batch_op:
        batch_op.drop_column('area_code')
    with op.batch_alter_table('departments', schema=None) as batch_op:
        batch_op.drop_column('area_code')
        batch_op.drop_column('credit_code')
    with op.batch_alter_table('service_items', schema=None) as batch_op:
        batch_op.drop_column('record_type')
        batch_op.drop_column('item_type')
        batch_op.drop_column('handle_item_code')
        batch_op.drop_column('implementation_code')
