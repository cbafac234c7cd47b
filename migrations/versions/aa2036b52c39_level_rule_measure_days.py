"""level rule measure days: the tiered measures' due days become rule data

Revision ID: aa2036b52c39
Revises: 59a593150081
Create Date: 2026-11-29 03:18:43.075419

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'aa2036b52c39'
down_revision = '59a593150081'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('level_rule', sa.Column('measure_days', sa.Integer(), nullable=True))
    # The days the code used until now (red: 兜底保障 within 3 days, as the work plan asks).
    for level, days in (('red', 3), ('orange', 15), ('yellow', 30)):
        op.execute(sa.text("UPDATE level_rule SET measure_days = :days WHERE level = :level").bindparams(days=days, level=level))


def downgrade():
    with op.batch_alter_table('level_rule', schema=None) as batch_op:
        batch_op.drop_column('measure_days')
