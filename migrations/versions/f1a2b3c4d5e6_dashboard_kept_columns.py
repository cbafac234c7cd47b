"""工作台 at 100,000 children: kept columns and covering indexes

- child.filing_consent: a 建档与评估 consent stands now (services/consent.py keeps it); the register's
  covering index carries it and the birth date, so the consent figures read the index alone;
- support_service.village_id: the child's village kept on the measure (services/follow_child.py), with
  an index of a village's measures by due date, so the measures' figures join no child;
- alert: the on-time and open-alert figures' columns in their village indexes.

Revision ID: f1a2b3c4d5e6
Revises: e5f6a7b8c9d0
Create Date: 2026-11-30 04:00:00

"""
import sqlalchemy as sa
from alembic import op


revision = "f1a2b3c4d5e6"
down_revision = "e5f6a7b8c9d0"
branch_labels = None
depends_on = None

LEVEL_DUES = [
    "archived_at",
    "village_id",
    "current_level",
    "level_assessed_on",
    "next_assessment_due",
    "next_visit_due",
    "file_complete",
    "registered_on",
]


def upgrade():
    with op.batch_alter_table("child", schema=None) as batch_op:
        batch_op.add_column(sa.Column("filing_consent", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute(
        "UPDATE child SET filing_consent = EXISTS (SELECT 1 FROM consent WHERE consent.child_id = child.id"
        " AND consent.scope = 'filing' AND consent.withdrawn_on IS NULL)"
    )
    with op.batch_alter_table("child", schema=None) as batch_op:
        batch_op.drop_index("ix_child_level_dues")
        batch_op.create_index("ix_child_level_dues", LEVEL_DUES + ["birth_date", "filing_consent"], unique=False)

    with op.batch_alter_table("support_service", schema=None) as batch_op:
        batch_op.add_column(sa.Column("village_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE support_service SET village_id = (SELECT child.village_id FROM child"
        " WHERE child.id = support_service.child_id)"
    )
    with op.batch_alter_table("support_service", schema=None) as batch_op:
        batch_op.alter_column("village_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key("fk_support_service_village_id_village", "village", ["village_id"], ["id"])
        batch_op.create_index(
            "ix_support_service_village_due",
            ["village_id", "due_on", "status", "delivered_on", "cancelled_at"],
            unique=False,
        )

    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_village_deadline")
        batch_op.create_index(
            "ix_alert_village_deadline", ["village_id", "deadline", "closed_at", "closure"], unique=False
        )
        batch_op.create_index("ix_alert_village_open", ["village_id", "raised_at", "deadline", "status", "closed_at"], unique=False)


def downgrade():
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_village_open")
        batch_op.drop_index("ix_alert_village_deadline")
        batch_op.create_index("ix_alert_village_deadline", ["village_id", "deadline"], unique=False)
    with op.batch_alter_table("support_service", schema=None) as batch_op:
        batch_op.drop_index("ix_support_service_village_due")
        # the column's foreign key goes with it (named here, unnamed in a database made by create_all)
        batch_op.drop_column("village_id")
    with op.batch_alter_table("child", schema=None) as batch_op:
        batch_op.drop_index("ix_child_level_dues")
        batch_op.create_index("ix_child_level_dues", LEVEL_DUES, unique=False)
        batch_op.drop_column("filing_consent")
