"""history for the indicators: registration dates, archive/restore history, cancelled measures,
alert change stamps and closures; archived children's planned measures and open alerts closed;
visits move the child's next visit (recomputed)

Revision ID: c41d7e2a9b10
Revises: c01c978d1054
Create Date: 2026-11-29 12:00:00

"""
import datetime as dt

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c41d7e2a9b10'
down_revision = "b7c1e2d3f4a5"
branch_labels = None
depends_on = None

# The values of the code at this revision (services/visits.py, seeds/rules.py), written out here
# because a migration must not change when the code does.
DEFAULT_VISIT_DAYS = {'red': 7, 'orange': 15, 'yellow': 30, 'green': 90}
DEFAULT_REASSESS_DAYS = {'red': 30, 'orange': 90, 'yellow': 180, 'green': 365}
UNASSESSED_VISIT_DAYS = 30
ARCHIVE_NOTE = '儿童已归档（系统升级时补办）'
CHUNK = 500

child = sa.table(
    'child',
    sa.column('id', sa.Integer),
    sa.column('created_at', sa.DateTime),
    sa.column('registered_on', sa.Date),
    sa.column('archived_at', sa.DateTime),
    sa.column('status_changed_at', sa.DateTime),
    sa.column('status', sa.String),
    sa.column('archive_reason', sa.String),
    sa.column('next_visit_due', sa.Date),
)
assessment = sa.table(
    'assessment',
    sa.column('id', sa.Integer),
    sa.column('child_id', sa.Integer),
    sa.column('assessed_on', sa.Date),
    sa.column('level', sa.String),
    sa.column('status', sa.String),
    sa.column('rule_version_id', sa.Integer),
    sa.column('next_reassess_on', sa.Date),
)
rule_version = sa.table('rule_version', sa.column('id', sa.Integer), sa.column('snapshot', sa.JSON))
visit = sa.table('visit', sa.column('child_id', sa.Integer), sa.column('visited_on', sa.Date))
service = sa.table(
    'support_service',
    sa.column('id', sa.Integer),
    sa.column('child_id', sa.Integer),
    sa.column('status', sa.String),
    sa.column('delivered_on', sa.Date),
    sa.column('cancelled_at', sa.DateTime),
    sa.column('cancel_reason', sa.String),
    sa.column('version', sa.Integer),
)
case_file = sa.table('case_file', sa.column('child_id', sa.Integer), sa.column('opened_on', sa.Date))
alert = sa.table(
    'alert',
    sa.column('id', sa.Integer),
    sa.column('child_id', sa.Integer),
    sa.column('status', sa.String),
    sa.column('raised_at', sa.DateTime),
    sa.column('closed_at', sa.DateTime),
    sa.column('condition_cleared_at', sa.DateTime),
    sa.column('result', sa.Text),
    sa.column('closure', sa.String),
    sa.column('updated_at', sa.DateTime),
    sa.column('version', sa.Integer),
)
alert_step = sa.table(
    'alert_step',
    sa.column('alert_id', sa.Integer),
    sa.column('at', sa.DateTime),
    sa.column('note', sa.Text),
)
status_change = sa.table(
    'child_status_change',
    sa.column('child_id', sa.Integer),
    sa.column('at', sa.DateTime),
    sa.column('status', sa.String),
    sa.column('reason', sa.String),
    sa.column('measures_cancelled', sa.Integer),
    sa.column('alerts_closed', sa.Integer),
)


def upgrade():
    bind = op.get_bind()
    now = dt.datetime.now().replace(microsecond=0)

    op.add_column('child', sa.Column('registered_on', sa.Date(), nullable=True))
    op.add_column('child', sa.Column('status_changed_at', sa.DateTime(), nullable=True))
    op.create_table(
        'child_status_change',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('child_id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.String(length=200), nullable=True),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('measures_cancelled', sa.Integer(), nullable=False),
        sa.Column('alerts_closed', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['child_id'], ['child.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_child_status_change_child_at', 'child_status_change', ['child_id', 'at'], unique=False)
    op.add_column('support_service', sa.Column('cancelled_at', sa.DateTime(), nullable=True))
    op.add_column('support_service', sa.Column('cancel_reason', sa.String(length=200), nullable=True))
    op.add_column('alert', sa.Column('closure', sa.String(length=16), nullable=True))
    op.add_column('alert', sa.Column('updated_at', sa.DateTime(), nullable=True))

    bind.execute(alert.update().where(alert.c.status == 'done').values(closure='handled'))
    _registration_dates(bind)
    _archive_history(bind, now)
    bind.execute(
        alert.update().values(
            updated_at=sa.func.coalesce(alert.c.closed_at, alert.c.condition_cleared_at, alert.c.raised_at)
        )
    )
    _reassessment_dates(bind)
    _next_visits(bind)

    with op.batch_alter_table('child', schema=None) as batch_op:
        batch_op.alter_column('registered_on', existing_type=sa.Date(), nullable=False)
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.alter_column('updated_at', existing_type=sa.DateTime(), nullable=False)
    op.create_index('ix_alert_updated', 'alert', ['updated_at', 'id'], unique=False)
    op.drop_index('ix_child_level_dues', table_name='child')
    op.create_index(
        'ix_child_level_dues',
        'child',
        ['archived_at', 'village_id', 'current_level', 'level_assessed_on', 'next_assessment_due',
         'next_visit_due', 'file_complete', 'registered_on'],
        unique=False,
    )


def _dates(bind, stmt) -> dict:
    return {cid: day for cid, day in bind.execute(stmt) if day is not None}


def _as_date(value):
    return value.date() if isinstance(value, dt.datetime) else value


def _registration_dates(bind) -> None:
    """登记日期: the day the row was written, or the child's earliest dated record when that is earlier
    (records entered into the system after the fact)."""
    earliest = [
        _dates(bind, sa.select(assessment.c.child_id, sa.func.min(assessment.c.assessed_on)).group_by(assessment.c.child_id)),
        _dates(bind, sa.select(visit.c.child_id, sa.func.min(visit.c.visited_on)).group_by(visit.c.child_id)),
        _dates(bind, sa.select(service.c.child_id, sa.func.min(service.c.delivered_on)).group_by(service.c.child_id)),
        _dates(bind, sa.select(case_file.c.child_id, sa.func.min(case_file.c.opened_on)).group_by(case_file.c.child_id)),
    ]
    rows = []
    for cid, created_at in bind.execute(sa.select(child.c.id, child.c.created_at)):
        days = [_as_date(created_at) or dt.date.today()] + [d[cid] for d in earliest if cid in d]
        rows.append({'cid': cid, 'day': min(days)})
    _update_each(bind, child, 'registered_on', rows)


def _update_each(bind, table, column, rows) -> None:
    stmt = table.update().where(table.c.id == sa.bindparam('cid')).values({column: sa.bindparam('day')})
    for start in range(0, len(rows), 5000):
        if rows[start : start + 5000]:
            bind.execute(stmt, rows[start : start + 5000])


def _archive_history(bind, now) -> None:
    """Each archived child gets its archive as the register's history, and what the archive leaves
    open is settled now: planned measures cancelled, open alerts withdrawn (with a step saying why)."""
    archived = bind.execute(
        sa.select(child.c.id, child.c.archived_at, child.c.status, child.c.archive_reason).where(
            child.c.archived_at.is_not(None)
        )
    ).all()
    for start in range(0, len(archived), CHUNK):
        chunk = archived[start : start + CHUNK]
        ids = [row.id for row in chunk]
        cancelled = dict(
            bind.execute(
                sa.select(service.c.child_id, sa.func.count())
                .where(service.c.child_id.in_(ids), service.c.status == 'planned')
                .group_by(service.c.child_id)
            ).all()
        )
        bind.execute(
            service.update()
            .where(service.c.child_id.in_(ids), service.c.status == 'planned')
            .values(status='cancelled', cancelled_at=now, cancel_reason=ARCHIVE_NOTE, version=service.c.version + 1)
        )
        open_alerts = bind.execute(
            sa.select(alert.c.id, alert.c.child_id).where(alert.c.child_id.in_(ids), alert.c.status != 'done')
        ).all()
        closed: dict = {}
        for alert_id, cid in open_alerts:
            closed[cid] = closed.get(cid, 0) + 1
        if open_alerts:
            bind.execute(
                alert.update()
                .where(alert.c.id.in_([a for a, _ in open_alerts]))
                .values(status='done', closed_at=now, result=ARCHIVE_NOTE, closure='withdrawn', version=alert.c.version + 1)
            )
            bind.execute(alert_step.insert(), [{'alert_id': a, 'at': now, 'note': f'办结：{ARCHIVE_NOTE}'} for a, _ in open_alerts])
        bind.execute(
            status_change.insert(),
            [
                {
                    'child_id': row.id,
                    'at': row.archived_at,
                    'status': row.status if row.status != 'active' else 'closed',
                    'reason': row.archive_reason,
                    'measures_cancelled': cancelled.get(row.id, 0),
                    'alerts_closed': closed.get(row.id, 0),
                }
                for row in chunk
            ],
        )
    bind.execute(child.update().where(child.c.archived_at.is_not(None)).values(status_changed_at=child.c.archived_at))


def _snapshots(bind) -> dict:
    return {rid: snapshot or {} for rid, snapshot in bind.execute(sa.select(rule_version.c.id, rule_version.c.snapshot))}


def _days(snapshots, version_id, level, key, defaults) -> int:
    row = (snapshots.get(version_id) or {}).get('levels', {}).get(level) or {}
    return row.get(key) or defaults.get(level, UNASSESSED_VISIT_DAYS)


def _reassessment_dates(bind) -> None:
    """Every approved assessment carries its next reassessment date (until now only the latest one did)."""
    snapshots = _snapshots(bind)
    rows = [
        {'cid': aid, 'day': on + dt.timedelta(days=_days(snapshots, rv, level, 'reassess_days', DEFAULT_REASSESS_DAYS))}
        for aid, on, level, rv in bind.execute(
            sa.select(assessment.c.id, assessment.c.assessed_on, assessment.c.level, assessment.c.rule_version_id).where(
                assessment.c.status == 'approved', assessment.c.next_reassess_on.is_(None)
            )
        )
    ]
    _update_each(bind, assessment, 'next_reassess_on', rows)


def _next_visits(bind) -> None:
    """下次走访 = the latest contact (visit, approved assessment, or registration) + the level's interval."""
    snapshots = _snapshots(bind)
    last_visit = _dates(bind, sa.select(visit.c.child_id, sa.func.max(visit.c.visited_on)).group_by(visit.c.child_id))
    latest = {}
    for cid, on, aid, level, rv in bind.execute(
        sa.select(assessment.c.child_id, assessment.c.assessed_on, assessment.c.id, assessment.c.level, assessment.c.rule_version_id)
        .where(assessment.c.status == 'approved')
    ):
        if cid not in latest or (on, aid) > latest[cid][:2]:
            latest[cid] = (on, aid, level, rv)
    rows = []
    for cid, registered_on, due in bind.execute(sa.select(child.c.id, child.c.registered_on, child.c.next_visit_due)):
        contact = [registered_on]
        days = UNASSESSED_VISIT_DAYS
        if cid in last_visit:
            contact.append(last_visit[cid])
        if cid in latest:
            on, _, level, rv = latest[cid]
            contact.append(on)
            days = _days(snapshots, rv, level, 'visit_days', DEFAULT_VISIT_DAYS)
        fresh = max(contact) + dt.timedelta(days=days)
        if fresh != due:
            rows.append({'cid': cid, 'day': fresh})
    _update_each(bind, child, 'next_visit_due', rows)


def downgrade():
    op.drop_index('ix_child_level_dues', table_name='child')
    op.create_index(
        'ix_child_level_dues',
        'child',
        ['archived_at', 'village_id', 'current_level', 'level_assessed_on', 'next_assessment_due',
         'next_visit_due', 'file_complete'],
        unique=False,
    )
    op.drop_index('ix_alert_updated', table_name='alert')
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_column('updated_at')
        batch_op.drop_column('closure')
    with op.batch_alter_table('support_service', schema=None) as batch_op:
        batch_op.drop_column('cancel_reason')
        batch_op.drop_column('cancelled_at')
    op.drop_index('ix_child_status_change_child_at', table_name='child_status_change')
    op.drop_table('child_status_change')
    with op.batch_alter_table('child', schema=None) as batch_op:
        batch_op.drop_column('status_changed_at')
        batch_op.drop_column('registered_on')
