"""Demo activities: the red walk, a 红色监护课堂, a staff training, with some attendance, and a few 爱心妈妈 pairings."""

import datetime as dt
from decimal import Decimal

from sqlalchemy import bindparam, insert, select

from choices import ActivityKind, Audience, ServiceKind, ServiceStatus, StaffKind
from models import (
    Activity,
    Attendance,
    Child,
    ChildGuardian,
    Guardian,
    MentorPairing,
    Staff,
    SupportService,
    Village,
    activity_lecturer,
    activity_village,
    pinyin_keys,
)

RED_WALK_TITLE = "重走微长征·童心向未来"


def fill_name_keys(session) -> None:
    """Pinyin of guardians and staff written in bulk without it (the roll finds them by pinyin)."""
    cache: dict[str, tuple[str, str]] = {}
    for model in (Guardian, Staff):
        table = model.__table__
        rows = session.execute(select(table.c.id, table.c.name).where(table.c.name_pinyin == "")).all()
        params = []
        for pk, name in rows:
            if name not in cache:
                cache[name] = pinyin_keys(name)
            full, initials = cache[name]
            params.append({"pk": pk, "full": full, "initials": initials})
        if params:
            stmt = (
                table.update()
                .where(table.c.id == bindparam("pk"))
                .values(name_pinyin=bindparam("full"), name_initials=bindparam("initials"))
            )
            session.execute(stmt, params)


def _activity(session, **fields) -> Activity:
    activity = Activity(version=1, **fields)
    session.add(activity)
    session.flush()
    return activity


def seed_activities(session, rng) -> None:
    fill_name_keys(session)
    villages = session.scalars(select(Village).order_by(Village.sort_order, Village.id)).all()
    staff = session.scalars(select(Staff).order_by(Staff.id)).all()
    by_kind: dict[str, list[Staff]] = {}
    for s in staff:
        by_kind.setdefault(s.kind, []).append(s)
    lecturer = (by_kind.get(StaffKind.PARTY_LECTURER.value) or staff[:1])[0]
    expert = (by_kind.get(StaffKind.EDUCATION_EXPERT.value) or staff[:1])[0]
    supervisor = (by_kind.get(StaffKind.SUPERVISOR.value) or staff[:1])[0]

    walk = _activity(
        session,
        kind=ActivityKind.RED_WALK.value,
        title=RED_WALK_TITLE,
        starts_at=dt.datetime(2026, 4, 4, 9, 0),
        ends_at=dt.datetime(2026, 4, 4, 12, 0),
        place="二路红军微长征步道",
        organiser="罗云镇民生服务办、镇团委",
        audience=[Audience.CHILDREN.value, Audience.PARENTS.value],
        capacity=200,
        budget=Decimal("6000.00"),
        description="沿二路红军微长征步道重走红军路，在四川二路红军纪念碑前讲红色故事，亲子共同完成寻访任务卡。",
    )
    session.execute(insert(activity_lecturer), [{"activity_id": walk.id, "staff_id": lecturer.id}])
    # Some villages' children and guardians already signed in; the first village is left for its director.
    walk_rows = []
    for village in villages[2:5]:
        children = session.scalars(
            select(Child.id)
            .where(Child.village_id == village.id, Child.archived_at.is_(None))
            .order_by(Child.id)
            .limit(6)
        ).all()
        for cid in children:
            walk_rows.append({"child_id": cid})
        guardians = session.scalars(
            select(ChildGuardian.guardian_id).where(ChildGuardian.child_id.in_(children[:3])).distinct()
        ).all()
        walk_rows.extend({"guardian_id": gid} for gid in sorted(guardians))
    _attend(session, walk, walk_rows)

    second = villages[1] if len(villages) > 1 else villages[0]
    red_class = _activity(
        session,
        kind=ActivityKind.RED_CLASS.value,
        title=f"红色监护课堂·{second.name}家长专场",
        starts_at=dt.datetime(2026, 5, 16, 14, 30),
        ends_at=dt.datetime(2026, 5, 16, 16, 30),
        place="四川二路红军纪念碑",
        organiser=f"{second.name}村（居）委会",
        audience=[Audience.PARENTS.value],
        capacity=40,
        budget=Decimal("1500.00"),
        description="讲述二路红军“军民鱼水情”故事，结合家庭教育促进法讲解监护责任与亲子沟通。",
    )
    session.execute(insert(activity_village), [{"activity_id": red_class.id, "village_id": second.id}])
    session.execute(insert(activity_lecturer), [{"activity_id": red_class.id, "staff_id": expert.id}])
    guardians = session.scalars(
        select(Guardian.id).where(Guardian.village_id == second.id).order_by(Guardian.id).limit(12)
    ).all()
    _attend(session, red_class, [{"guardian_id": gid} for gid in guardians])

    training = _activity(
        session,
        kind=ActivityKind.TRAINING.value,
        title="儿童主任、社工、网格员业务培训（第一期）",
        starts_at=dt.datetime(2026, 2, 26, 9, 0),
        ends_at=dt.datetime(2026, 2, 26, 16, 30),
        place="罗云镇新时代文明实践所",
        organiser="罗云镇民生服务办",
        audience=[Audience.STAFF.value],
        staff_kinds=[StaffKind.DIRECTOR.value, StaffKind.SOCIAL.value, StaffKind.GRID.value],
        capacity=80,
        budget=Decimal("3000.00"),
        description="困境儿童监护能力评估规范、巡查走访与强制报告、风险预警处置流程。",
    )
    session.execute(insert(activity_lecturer), [{"activity_id": training.id, "staff_id": supervisor.id}])
    trained = by_kind.get(StaffKind.DIRECTOR.value, []) + by_kind.get(StaffKind.SOCIAL.value, [])
    trained += by_kind.get(StaffKind.GRID.value, [])[::2]
    _attend(session, training, [{"staff_id": s.id} for s in trained])

    _seed_pairings(session, by_kind.get(StaffKind.CARING_MOTHER.value, []))


def _attend(session, activity, people) -> None:
    signed_at = activity.starts_at - dt.timedelta(minutes=10)
    rows = []
    for person in people:
        row = {"child_id": None, "guardian_id": None, "staff_id": None}
        row.update(person)
        rows.append({"activity_id": activity.id, "signed_at": signed_at, **row})
    if rows:
        session.execute(insert(Attendance), rows)


def _seed_pairings(session, mothers) -> None:
    if not mothers:
        return
    children = session.scalars(
        select(Child)
        .where(Child.caring_mother_id.is_not(None), Child.archived_at.is_(None))
        .order_by(Child.id)
        .limit(4)
    ).all()
    for i, child in enumerate(children):
        pairing = MentorPairing(
            staff_id=child.caring_mother_id,
            child_id=child.id,
            start_on=dt.date(2026, 3, 1) + dt.timedelta(days=7 * i),
            notes="每月至少两次入户陪伴，关注学习与情绪。",
            version=1,
        )
        session.add(pairing)
        session.add(
            SupportService(
                child_id=child.id,
                kind=ServiceKind.CARING_MOTHER.value,
                status=ServiceStatus.DELIVERED.value,
                delivered_on=pairing.start_on + dt.timedelta(days=10),
                provider_id=child.caring_mother_id,
                duration_minutes=90,
                content="入户陪伴，辅导作业，了解近期在校情况。",
                version=1,
            )
        )
    session.flush()
