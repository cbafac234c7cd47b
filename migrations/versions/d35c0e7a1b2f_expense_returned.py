"""expense returned: an approver sends a draft back to its handler with a reason (待我审批)

Revision ID: d35c0e7a1b2f
Revises: c01c978d1054
Create Date: 2026-11-29 12:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd35c0e7a1b2f'
down_revision = "c41d7e2a9b10"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('expense', schema=None) as batch_op:
        batch_op.add_column(sa.Column('returned_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('returned_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('return_note', sa.Text(), nullable=True))
        batch_op.create_foreign_key('fk_expense_returned_by_id_user_account', 'user_account', ['returned_by_id'], ['id'])


def downgrade():
    with op.batch_alter_table('expense', schema=None) as batch_op:
        batch_op.drop_constraint('fk_expense_returned_by_id_user_account', type_='foreignkey')
        batch_op.drop_column('return_note')
        batch_op.drop_column('returned_by_id')
        batch_op.drop_column('returned_at')
