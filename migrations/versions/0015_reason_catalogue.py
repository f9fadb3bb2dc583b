"""reason catalogue: the reason codes (评价指标) as data, versioned; each rating keeps its version

Revision ID: 0015_reason_catalogue
Revises: 0014_ticket_rules
Create Date: 2026-12-01 22:00:00

Until now the codes were a constant in the source (feedback/evaluations/levels.py) holding
21 of the 40 national codes: every bad level's, but only 309/314, 411 and 510/517 of the
good levels. Version 1 of the catalogue is that constant, so the ratings already stored
(all given under it) get version 1; version 2 adds the 19 good-level codes it lacked, so
every level's national codes of DOMAIN.md are offered from then on. Codes are never
deleted or reused: an administrator retires them (/admin/reasons).
"""
from datetime import datetime, timezone
import uuid

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015_reason_catalogue'
down_revision = '0014_ticket_rules'
branch_labels = None
depends_on = None

# The national label codes (DOMAIN.md), copied here: a migration never imports the app.
CODES = {
    108: "在办事指南之外增加新的审批条件", 109: "需提供办事指南之外的申报材料", 110: "无理由超过法定办理时间",
    111: "办事指南提供样本有错", 112: "承诺在线收取申报材料实际无法收取", 113: "多头跑窗口和部门",
    114: "跑动次数与承诺的不一致", 115: "服务态度差效率低",
    207: "没有提供材料样本", 208: "没有提供材料清单", 209: "未在承诺时间内办结",
    210: "同样内容的证明材料被要求多次提交", 211: "承诺网办但无法在线办理",
    212: "在线预约办理后到实体大厅重复取号排队", 213: "窗口人员业务不熟练", 214: "服务态度生硬",
    307: "一次性告知需要补正的材料", 308: "提供申报材料样本", 309: "在承诺的时间内办结", 310: "办事指南指引准确",
    311: "按办事指南要求的材料即可办理", 312: "可以快递送达", 313: "跑动次数与承诺的一致", 314: "服务态度一般",
    406: "填写一张表单就可以办理", 407: "在线提交材料窗口核验", 408: "一张清单告知全部申报材料",
    409: "可以用告知承诺减免材料", 410: "可以在线预约办理", 411: "跑大厅一次办完", 412: "可以使用自助机办理",
    413: "服务态度较好",
    510: "一窗受理一次办结", 511: "可以先受理后补材料", 512: "不用提交证明", 513: "可以全程网上办理",
    514: "可以使用手机办理", 515: "可以就近办理", 516: "无需材料直接办理", 517: "服务热情效率高",
}
# The constant the source held until now: version 1, the version of every rating stored so far.
VERSION_1 = {108, 109, 110, 111, 112, 113, 114, 115, 207, 208, 209, 210, 211, 212, 213, 214, 309, 314, 411, 510, 517}


def upgrade():
    op.create_table('reason_catalogue',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('stamp', sa.String(length=32), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reason_catalogue'))
    )
    codes = op.create_table('reason_codes',
    sa.Column('code', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('level', sa.SmallInteger(), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('added_in_version', sa.Integer(), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_reason_codes'))
    )
    changes = op.create_table('reason_code_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('code', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_reason_code_changes_actor_id_users')),
    sa.ForeignKeyConstraint(['code'], ['reason_codes.code'], name=op.f('fk_reason_code_changes_code_reason_codes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reason_code_changes'))
    )
    with op.batch_alter_table('reason_code_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reason_code_changes_version'), ['version'], unique=False)

    # Not in batch mode: SQLite adds a column with a constant default in place (a batch would
    # copy the whole table).
    op.add_column('evaluations', sa.Column('reasons_version', sa.Integer(), server_default='1', nullable=False))

    now = datetime.now(timezone.utc).replace(microsecond=0)
    if op.get_bind().dialect.name == 'sqlite':
        now = now.replace(tzinfo=None)  # as UTCDateTime stores it there
    catalogue = sa.table('reason_catalogue', sa.column('id', sa.Integer), sa.column('version', sa.Integer),
                         sa.column('stamp', sa.String), sa.column('changed_at', sa.DateTime(timezone=True)))
    op.bulk_insert(catalogue, [{'id': 1, 'version': 2, 'stamp': uuid.uuid4().hex, 'changed_at': now}])
    rows = [{'code': code, 'level': code // 100, 'label': label, 'active': True,
             'added_in_version': 1 if code in VERSION_1 else 2, 'added_at': now, 'retired_at': None}
            for code, label in sorted(CODES.items())]
    op.bulk_insert(codes, rows)
    op.bulk_insert(changes, [{'version': row['added_in_version'], 'code': row['code'], 'action': 'added',
                              'changed_at': now, 'actor_id': None}
                             for row in sorted(rows, key=lambda r: (r['added_in_version'], r['code']))])


def downgrade():
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.drop_column('reasons_version')
    with op.batch_alter_table('reason_code_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reason_code_changes_version'))
    op.drop_table('reason_code_changes')
    op.drop_table('reason_codes')
    op.drop_table('reason_catalogue')
