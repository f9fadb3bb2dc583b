"""account hardening: login failures per source address, demo accounts flagged

Revision ID: 0017_account_hardening
Revises: 0016_erasable_contacts
Create Date: 2026-12-02 10:00:00

- ``login_throttles``: failed sign-ins counted per source address and account name (an HMAC
  of it), per address, and per account from anywhere (feedback/accounts/throttle.py). A
  lockout now locks one address out of one account, never the account for everybody, so the
  account's own counter and lock (``users.failed_logins``, ``users.locked_until``) go.
- ``users.is_demo``: accounts made by ``demo load``, whose passwords are in the README; they
  sign in only in development. Data: an existing account with a demo name whose password is
  still the README's (its Argon2 hash checked here) is flagged — a database loaded in
  development and moved to production no longer lets the README's passwords in.

Downgrade drops the table and the flag and puts the columns back empty (no account locked).
"""
from alembic import op
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


# revision identifiers, used by Alembic.
revision = '0017_account_hardening'
down_revision = '0016_erasable_contacts'
branch_labels = None
depends_on = None

# feedback/demo/service.py DEMO_PASSWORDS as of this migration (a migration never imports the app).
DEMO_PASSWORDS = {
    "admin": "Linjiang-A2026",
    "supervisor": "Linjiang-S2026",
    "handler_ga": "Linjiang-H2026",
    "handler_scj": "Linjiang-H2026",
    "staff_ga01": "Linjiang-W2026",
}


def upgrade():
    op.create_table('login_throttles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('address', sa.String(length=45), nullable=False),
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_throttles')),
    sa.UniqueConstraint('kind', 'address', 'account', name=op.f('uq_login_throttles_kind'))
    )
    with op.batch_alter_table('login_throttles', schema=None) as batch_op:
        batch_op.create_index('ix_login_throttles_window_started_at', ['window_started_at'], unique=False)

    op.add_column('users', sa.Column('is_demo', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('locked_until')
        batch_op.drop_column('failed_logins')

    users = sa.table('users', sa.column('id', sa.Integer), sa.column('username', sa.String),
                     sa.column('password_hash', sa.String), sa.column('is_demo', sa.Boolean))
    conn = op.get_bind()
    hasher = PasswordHasher()
    for user_id, username, password_hash in conn.execute(
            sa.select(users.c.id, users.c.username, users.c.password_hash)
            .where(sa.func.lower(users.c.username).in_(list(DEMO_PASSWORDS)))).all():
        try:
            still_readme = hasher.verify(password_hash, DEMO_PASSWORDS[username.lower()])
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            still_readme = False
        if still_readme:
            conn.execute(users.update().where(users.c.id == user_id).values(is_demo=True))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_column('is_demo')
    with op.batch_alter_table('login_throttles', schema=None) as batch_op:
        batch_op.drop_index('ix_login_throttles_window_started_at')
    op.drop_table('login_throttles')
