"""child: partial indexes of the children on the register — by reassessment due, by registration date (the 工作台)

Revision ID: a7c3e9d1f2b4
Revises: f1a2b3c4d5e6
Create Date: 2026-11-30 07:00:00

"""
import sqlalchemy as sa
from alembic import op


revision = "a7c3e9d1f2b4"
down_revision = "f1a2b3c4d5e6"
branch_labels = None
depends_on = None


def upgrade():
    on_register = sa.text("archived_at IS NULL")
    op.create_index(
        "ix_child_reassess_due",
        "child",
        ["next_assessment_due", "registered_on"],
        unique=False,
        sqlite_where=on_register,
        postgresql_where=on_register,
    )
    op.create_index(
        "ix_child_registered_later",
        "child",
        ["registered_on"],
        unique=False,
        sqlite_where=on_register,
        postgresql_where=on_register,
    )


def downgrade():
    op.drop_index("ix_child_registered_later", table_name="child")
    op.drop_index("ix_child_reassess_due", table_name="child")
