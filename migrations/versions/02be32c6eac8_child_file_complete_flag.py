"""child file_complete flag (建档完成) in the dashboard's covering index; reassessment-due index with archived_at

Revision ID: 02be32c6eac8
Revises: 3ab5e9520c1a
Create Date: 2026-11-29 02:29:23.294203

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '02be32c6eac8'
down_revision = '3ab5e9520c1a'
branch_labels = None
depends_on = None


# Plain ALTER TABLE ADD COLUMN and index statements, which SQLite runs in place: no batch rebuild of
# the child table.


def upgrade():
    op.add_column('child', sa.Column('file_complete', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.drop_index('ix_child_level_dues', table_name='child')
    op.create_index('ix_child_level_dues', 'child', ['archived_at', 'village_id', 'current_level', 'level_assessed_on', 'next_assessment_due', 'next_visit_due', 'file_complete'], unique=False)
    op.drop_index('ix_child_next_assessment_due', table_name='child')
    op.create_index('ix_child_assessment_due', 'child', ['next_assessment_due', 'archived_at'], unique=False)
    # Existing children: the same rule as services/filing.py (address, a guardian, a category).
    op.execute(
        "UPDATE child SET file_complete = TRUE"
        " WHERE address IS NOT NULL AND address != ''"
        " AND EXISTS (SELECT 1 FROM child_guardian WHERE child_guardian.child_id = child.id)"
        " AND EXISTS (SELECT 1 FROM child_category WHERE child_category.child_id = child.id)"
    )


def downgrade():
    op.drop_index('ix_child_assessment_due', table_name='child')
    op.create_index('ix_child_next_assessment_due', 'child', ['next_assessment_due'], unique=False)
    op.drop_index('ix_child_level_dues', table_name='child')
    op.create_index('ix_child_level_dues', 'child', ['archived_at', 'village_id', 'current_level', 'level_assessed_on', 'next_assessment_due', 'next_visit_due'], unique=False)
    with op.batch_alter_table('child', schema=None) as batch_op:
        batch_op.drop_column('file_complete')
