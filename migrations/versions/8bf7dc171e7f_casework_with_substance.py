"""casework with substance: 需求评估, plan measures, 服务记录, 跟进记录, the 会商's problem and 分工,
the case types that require a 会商, the case's source report; 档案编号 and their counters; the staff
kinds a training is for

Revision ID: 8bf7dc171e7f
Revises: c49782f6365b
Create Date: 2026-11-29 11:26:31.721563

Existing data: each case's free-text 帮扶措施 becomes one measure per line; each 跟踪 note of the old
event log becomes a 跟进记录 of the 跟踪 stage (the moves already made stand: the new gates apply to
moves from now on); a case opened from a 强制报告 is linked to it where the report names the case's
child; every child gets its 档案编号 in the order of registration, per village and year.
"""
import datetime as dt
import re

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '8bf7dc171e7f'
down_revision = "d35c0e7a1b2f"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('case_type_rule',
    sa.Column('case_type', sa.String(length=16), nullable=False),
    sa.Column('conference_required', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('case_type')
    )
    op.create_table('file_counter',
    sa.Column('village_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['village_id'], ['village.id'], ),
    sa.PrimaryKeyConstraint('village_id', 'year')
    )
    op.create_table('case_follow_up',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('followed_on', sa.Date(), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('followed_by', sa.String(length=100), nullable=False),
    sa.Column('change', sa.Text(), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['case_file.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('case_follow_up', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_follow_up_case_id'), ['case_id'], unique=False)

    op.create_table('case_needs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('assessed_on', sa.Date(), nullable=False),
    sa.Column('problems', sa.JSON(), nullable=False),
    sa.Column('risk_rating', sa.String(length=16), nullable=False),
    sa.Column('risk', sa.Text(), nullable=False),
    sa.Column('child_strengths', sa.Text(), nullable=False),
    sa.Column('family_strengths', sa.Text(), nullable=False),
    sa.Column('assessment_id', sa.Integer(), nullable=True),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['assessment_id'], ['assessment.id'], ),
    sa.ForeignKeyConstraint(['case_id'], ['case_file.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('case_id')
    )
    op.create_table('case_measure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('responsible', sa.String(length=100), nullable=True),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('conference_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['case_file.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['conference_id'], ['case_conference.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('case_measure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_measure_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_measure_conference_id'), ['conference_id'], unique=False)

    op.create_table('case_service',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('measure_id', sa.Integer(), nullable=False),
    sa.Column('delivered_on', sa.Date(), nullable=False),
    sa.Column('provider', sa.String(length=100), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('duration_minutes', sa.Integer(), nullable=True),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['case_file.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['measure_id'], ['case_measure.id'], ),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('case_service', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_service_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_service_measure_id'), ['measure_id'], unique=False)

    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.add_column(sa.Column('staff_kinds', sa.JSON(), nullable=False, server_default='[]'))

    with op.batch_alter_table('case_conference', schema=None) as batch_op:
        batch_op.add_column(sa.Column('problem', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('recorded_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_case_conference_recorded_by_id', 'user_account', ['recorded_by_id'], ['id'])

    with op.batch_alter_table('case_file', schema=None) as batch_op:
        batch_op.add_column(sa.Column('report_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_case_file_report_id'), ['report_id'], unique=False)
        batch_op.create_foreign_key('fk_case_file_report_id', 'mandatory_report', ['report_id'], ['id'])

    # a child's reports, read by its rule run and its dossier: indexed by the records migration

    conn = op.get_bind()
    _case_type_rules(conn)
    _measures_from_plans(conn)
    _follow_ups_from_track_events(conn)
    _link_reports(conn)
    with op.batch_alter_table('case_file', schema=None) as batch_op:
        batch_op.drop_column('plan_measures')

    op.add_column('child', sa.Column('file_no', sa.String(length=40), nullable=True))
    _number_children(conn)
    with op.batch_alter_table('child', schema=None) as batch_op:
        batch_op.alter_column('file_no', existing_type=sa.String(length=40), nullable=False)
        batch_op.create_index(batch_op.f('ix_child_file_no'), ['file_no'], unique=True)


def _case_type_rules(conn):
    # the work plan's 个案会商 for 监护侵害 and 监护缺失
    for case_type, required in (('abuse', True), ('absence', True), ('improper', False)):
        conn.execute(
            sa.text("INSERT INTO case_type_rule (case_type, conference_required) VALUES (:t, :r)"),
            {"t": case_type, "r": required},
        )


def _measures_from_plans(conn):
    rows = conn.execute(sa.text("SELECT id, plan_measures FROM case_file WHERE plan_measures IS NOT NULL")).all()
    for case_id, text in rows:
        for line in re.split(r"[\n；;]+", text or ""):
            line = line.strip(" \t。")
            if line:
                conn.execute(
                    sa.text("INSERT INTO case_measure (case_id, content, source) VALUES (:c, :t, 'plan')"),
                    {"c": case_id, "t": line},
                )


def _follow_ups_from_track_events(conn):
    rows = conn.execute(
        sa.text(
            "SELECT e.id, e.case_id, e.at, e.user_id, e.note, u.display_name, u.username FROM case_event e"
            " LEFT JOIN user_account u ON u.id = e.user_id WHERE e.kind = 'track' ORDER BY e.id"
        )
    ).all()
    for event_id, case_id, at, user_id, note, display, username in rows:
        at = at if isinstance(at, dt.datetime) else dt.datetime.fromisoformat(str(at))
        conn.execute(
            sa.text(
                "INSERT INTO case_follow_up (case_id, followed_on, method, followed_by, change, stage,"
                " recorded_by_id, recorded_at) VALUES (:c, :d, 'other', :by, :change, 'track', :u, :at)"
            ),
            {"c": case_id, "d": at.date(), "by": display or username or "系统", "change": note or "（未写明）",
             "u": user_id, "at": at},
        )
        conn.execute(sa.text("DELETE FROM case_event WHERE id = :id"), {"id": event_id})


def _link_reports(conn):
    rows = conn.execute(
        sa.text(
            "SELECT c.id, MIN(r.id), COUNT(r.id) FROM case_file c"
            " JOIN case_event e ON e.case_id = c.id AND e.kind = 'open' AND e.note LIKE '由强制报告转入%'"
            " JOIN mandatory_report r ON r.child_id = c.child_id AND r.outcome = 'to_case'"
            " GROUP BY c.id"
        )
    ).all()
    for case_id, report_id, found in rows:
        if found == 1:
            conn.execute(sa.text("UPDATE case_file SET report_id = :r WHERE id = :c"), {"r": report_id, "c": case_id})


def _number_children(conn):
    town = conn.execute(sa.text("SELECT value FROM setting WHERE key = 'town_code'")).scalar()
    if not town:
        town = "LY"
        conn.execute(
            sa.text("INSERT INTO setting (key, value, label) VALUES ('town_code', :v, :l)"),
            {"v": town, "l": "档案编号中的镇（街道）代码（档案编号：镇代码-村代码-年份-序号）"},
        )
    codes = dict(conn.execute(sa.text("SELECT id, code FROM village")).all())
    last = {}
    rows = conn.execute(sa.text("SELECT id, village_id, created_at FROM child ORDER BY created_at, id")).all()
    for child_id, village_id, created_at in rows:
        if created_at is not None and not isinstance(created_at, dt.datetime):
            created_at = dt.datetime.fromisoformat(str(created_at))
        year = created_at.year if created_at else dt.date.today().year
        sequence = last[(village_id, year)] = last.get((village_id, year), 0) + 1
        number = f"{town}-{codes.get(village_id) or village_id}-{year}-{sequence:04d}"
        conn.execute(sa.text("UPDATE child SET file_no = :n WHERE id = :id"), {"n": number, "id": child_id})
    for (village_id, year), sequence in last.items():
        conn.execute(
            sa.text("INSERT INTO file_counter (village_id, year, last) VALUES (:v, :y, :l)"),
            {"v": village_id, "y": year, "l": sequence},
        )


def downgrade():
    with op.batch_alter_table('child', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_child_file_no'))
        batch_op.drop_column('file_no')

    with op.batch_alter_table('case_file', schema=None) as batch_op:
        batch_op.add_column(sa.Column('plan_measures', sa.TEXT(), nullable=True))
        batch_op.drop_constraint('fk_case_file_report_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_case_file_report_id'))
        batch_op.drop_column('report_id')
    # the measures go back into the free text, one per line; follow-ups back into 跟踪 notes
    conn = op.get_bind()
    for case_id, text in conn.execute(
        sa.text("SELECT case_id, content FROM case_measure ORDER BY case_id, id")
    ).all():
        conn.execute(
            sa.text(
                "UPDATE case_file SET plan_measures = CASE WHEN plan_measures IS NULL THEN :t"
                " ELSE plan_measures || :nl || :t END WHERE id = :c"
            ),
            {"t": text, "c": case_id, "nl": "\n"},
        )
    conn.execute(
        sa.text(
            "INSERT INTO case_event (case_id, at, user_id, kind, note)"
            " SELECT case_id, recorded_at, recorded_by_id, 'track', change FROM case_follow_up"
        )
    )

    with op.batch_alter_table('case_conference', schema=None) as batch_op:
        batch_op.drop_constraint('fk_case_conference_recorded_by_id', type_='foreignkey')
        batch_op.drop_column('recorded_by_id')
        batch_op.drop_column('problem')

    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.drop_column('staff_kinds')

    with op.batch_alter_table('case_service', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_service_measure_id'))
        batch_op.drop_index(batch_op.f('ix_case_service_case_id'))

    op.drop_table('case_service')
    with op.batch_alter_table('case_measure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_measure_conference_id'))
        batch_op.drop_index(batch_op.f('ix_case_measure_case_id'))

    op.drop_table('case_measure')
    op.drop_table('case_needs')
    with op.batch_alter_table('case_follow_up', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_follow_up_case_id'))

    op.drop_table('case_follow_up')
    op.drop_table('file_counter')
    op.drop_table('case_type_rule')
