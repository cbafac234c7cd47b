"""Demo history for the indicators: a few children archived (one restored since), registration dates
that agree with the records, and 下次走访 computed from the visits and assessments written.

Deterministic for a given day: the archives are dated back from ``clock.today()``.
"""

import datetime as dt

from sqlalchemy import bindparam, func, select, update

from choices import ChildStatus
from models import Assessment, Case, Child, SupportService, User, Visit
from seeds import moments
from services import clock, visits
from services.register import archive_child, restore_child

# (nth child of the town, status, reason, days ago archived, days ago restored or None)
ARCHIVES = [
    (7, ChildStatus.MOVED, "随父母迁居重庆主城，已与迁入地社区交接", 45, None),
    (61, ChildStatus.ADULT, "已年满18周岁，转入成年人社会救助", 20, None),
    (113, ChildStatus.CLOSED, "监护人刑满释放返家，监护能力恢复，经评估结案", 9, None),
    (167, ChildStatus.MOVED, "随母亲到外地务工，暂离本镇", 60, 30),
]
SMALL_TOWN = 5000


def seed_archives(session, rng=None, *, today: dt.date | None = None) -> None:
    """Archive a few children through the register's own rule (their planned measures are cancelled),
    at dates in the past; one of them comes back later."""
    today = today or clock.today()
    children = session.scalars(select(Child).order_by(Child.id)).all()
    if len(children) > SMALL_TOWN or len(children) < 2:
        return
    clerk = session.scalar(select(User.id).where(User.username == "clerk"))
    for nth, status, reason, archived_ago, restored_ago in ARCHIVES:
        child = children[nth % len(children)]
        if child.is_archived:
            continue
        at = moments.at(today - dt.timedelta(days=archived_ago), 16)
        archive_child(child, status.value, reason, now=at, user_id=clerk)
        if restored_ago is not None:
            session.flush()
            back = moments.at(today - dt.timedelta(days=restored_ago), 9)
            restore_child(child, now=back, user_id=clerk)
    session.flush()


def settle_register(session) -> None:
    """Registration dates no later than the child's earliest record, then every child's 下次走访."""
    earliest: dict[int, dt.date] = {}
    for model, column in (
        (Assessment, Assessment.assessed_on),
        (Visit, Visit.visited_on),
        (SupportService, SupportService.delivered_on),
        (Case, Case.opened_on),
    ):
        for child_id, day in session.execute(
            select(model.child_id, func.min(column)).group_by(model.child_id)
        ):
            if day is not None and (child_id not in earliest or day < earliest[child_id]):
                earliest[child_id] = day
    rows = [
        {"cid": child_id, "day": earliest[child_id]}
        for child_id, registered_on in session.execute(select(Child.id, Child.registered_on))
        if child_id in earliest and earliest[child_id] < registered_on
    ]
    table = Child.__table__
    stmt = update(table).where(table.c.id == bindparam("cid")).values(registered_on=bindparam("day"))
    for start in range(0, len(rows), 5000):
        session.execute(stmt, rows[start : start + 5000])
    visits.refresh(session.connection())
    session.expire_all()


__all__ = ["seed_archives", "settle_register"]
