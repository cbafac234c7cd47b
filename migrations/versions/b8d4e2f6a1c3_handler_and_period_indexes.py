"""alert: a handler's open alerts by deadline; expense: the period's sums from the index alone

Revision ID: b8d4e2f6a1c3
Revises: a7c3e9d1f2b4
Create Date: 2026-11-30 10:30:00

"""
import sqlalchemy as sa
from alembic import op


revision = "b8d4e2f6a1c3"
down_revision = "a7c3e9d1f2b4"
branch_labels = None
depends_on = None


def _analyze(*indexes):
    """A SQLite database with statistics gets the new indexes' too (the app gathers them once, when
    there are none at all; an index without them is weighed by guesses). PostgreSQL's autovacuum
    does it."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    has_stats = bind.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first()
    if has_stats and bind.exec_driver_sql("SELECT 1 FROM sqlite_stat1 LIMIT 1").first():
        for index in indexes:
            bind.exec_driver_sql(f"ANALYZE {index}")


def upgrade():
    # 我的预警 (the 工作台, 今日) read every alert along the deadline index for the handler's.
    # Partial: the unassigned alerts would read as one huge handler in SQLite's statistics.
    assigned = sa.text("handler_id IS NOT NULL")
    op.create_index(
        "ix_alert_handler_open",
        "alert",
        ["handler_id", "deadline", "status"],
        unique=False,
        sqlite_where=assigned,
        postgresql_where=assigned,
    )
    # The period's paid and committed sums (资金执行率) looked up every expense row of the period.
    op.create_index("ix_expense_period", "expense", ["spent_on", "status", "amount"], unique=False)
    op.drop_index("ix_expense_spent_on", table_name="expense")
    _analyze("ix_alert_handler_open", "ix_expense_period")


def downgrade():
    op.create_index("ix_expense_spent_on", "expense", ["spent_on"], unique=False)
    op.drop_index("ix_expense_period", table_name="expense")
    op.drop_index("ix_alert_handler_open", table_name="alert")
