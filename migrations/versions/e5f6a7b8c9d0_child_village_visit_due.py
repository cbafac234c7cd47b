"""child: index of one village's visits by date (今日, the visit rules)

Revision ID: e5f6a7b8c9d0
Revises: 6265f25e60ff
Create Date: 2026-11-29 18:30:00

"""
from alembic import op


revision = "e5f6a7b8c9d0"
down_revision = "6265f25e60ff"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("child", schema=None) as batch_op:
        batch_op.create_index(
            "ix_child_village_visit_due",
            ["archived_at", "village_id", "next_visit_due", "current_level"],
            unique=False,
        )


def downgrade():
    with op.batch_alter_table("child", schema=None) as batch_op:
        batch_op.drop_index("ix_child_village_visit_due")
