"""child: partial index of the children on the register by reassessment due (the 工作台)

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
        ["next_assessment_due", "registered_on", "archived_at"],
        unique=False,
        sqlite_where=on_register,
        postgresql_where=on_register,
    )
    # A SQLite database with statistics gets this index's too (the app gathers them once, when there
    # are none at all; a new index without them is weighed by guesses). PostgreSQL's autovacuum does it.
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        has_stats = bind.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first()
        if has_stats and bind.exec_driver_sql("SELECT 1 FROM sqlite_stat1 WHERE tbl = 'child' LIMIT 1").first():
            bind.exec_driver_sql("ANALYZE ix_child_reassess_due")


def downgrade():
    op.drop_index("ix_child_reassess_due", table_name="child")
