"""Field work on a phone: 今日 (what to do today in my villages), finding a child for a visit, and
the minimal offline copy of my villages the phone keeps.

Everything here takes plain values (the villages in scope, the user's id) and returns plain data,
ready to be sent as JSON: the phone renders 今日 from it online, and from its offline copy when the
signal is gone.

The offline copy holds only what a day in the villages needs, and never an ID number: children
(name, the pinyin and the last 4 digits of the ID number that the search box needs, village, level,
next visit due, last visit, the primary guardian's name and phone), the visit form's choices, the
staff who may be named as visitors, and the next 14 days' activities with their rolls.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import case, func, select

from choices import LEVEL_COLOURS, AlertStatus, Level, Role, ServiceKind, ServiceStatus, StaffKind, VisitKind
from models import (
    Activity,
    Alert,
    Child,
    ChildGuardian,
    Guardian,
    Staff,
    SupportService,
    Village,
    Visit,
    db,
)
from services.activities import attendance_counts
from services.attendance import build_roll
from services.scoping import scope
from services.search import child_search_clause
from services.visits import ANSWERS, UNASSESSED_VISIT_DAYS, visit_days_by_level, visit_days_of

# Rows shown per list of 今日; the count says how many there are in all.
LIST_LIMIT = 30
DUE_SOON_DAYS = 7  # 今日 lists the visits due this week
COPY_ACTIVITY_DAYS = 14
COPY_EXPIRES_DAYS = 7
# An account of the whole town carries only the children whose visit is due within this many days.
TOWN_COPY_DAYS = 14
TOWN_COPY_LIMIT = 3000
COPY_VERSION = 1
LEVEL_RANK = {Level.RED.value: 0, Level.ORANGE.value: 1, Level.YELLOW.value: 2, Level.GREEN.value: 3}
FIELD_ROLES = {Role.DIRECTOR.value, Role.SOCIAL.value, Role.SUPERVISOR.value}


def _in_register():
    return Child.archived_at.is_(None)


def _level_order():
    return case(LEVEL_RANK, value=Child.current_level, else_=4)


def levels() -> list[dict]:
    """The levels with their colours and visit intervals (the phone moves a child's 下次走访 with them
    when it records a visit offline, until the server's date arrives with the next sync)."""
    days = visit_days_by_level()
    return [
        {"value": lv.value, "label": lv.label, "colour": LEVEL_COLOURS[lv], "visit_days": days.get(lv.value)}
        for lv in Level
    ]


# --------------------------------------------------------------------------- 今日


@dataclass
class Section:
    count: int
    rows: list[dict]

    def as_json(self) -> dict:
        return {"count": self.count, "rows": self.rows}


def _child_row(child_id, name, village, level, due, today, last_visit=None) -> dict:
    row = {
        "id": child_id,
        "name": name,
        "village": village,
        "level": level,
        "next_visit_due": due.isoformat() if due else None,
        "days_overdue": (today - due).days if due and due < today else 0,
    }
    if last_visit is not None:
        row["last_visit"] = last_visit.isoformat()
    return row


def _last_visits(child_ids) -> dict[int, dt.date]:
    if not child_ids:
        return {}
    return dict(
        db.session.execute(
            select(Visit.child_id, func.max(Visit.visited_on))
            .where(Visit.child_id.in_(list(child_ids)))
            .group_by(Visit.child_id)
        ).all()
    )


def _village_names() -> dict[int, str]:
    return dict(db.session.execute(select(Village.id, Village.name)).all())


def visits_overdue(village_ids, today: dt.date) -> tuple[dict, Section]:
    """Children in register whose 下次走访 is before today: the count by level, and the most urgent
    first (red before orange …, the longest overdue first within a level)."""
    late = Child.next_visit_due < today
    by_level = {
        level: n
        for level, n in db.session.execute(
            scope(
                select(Child.current_level, func.count()).where(_in_register(), late),
                Child,
                village_ids,
            ).group_by(Child.current_level)
        )
    }
    rows = db.session.execute(
        scope(
            select(Child.id, Child.name, Child.village_id, Child.current_level, Child.next_visit_due).where(
                _in_register(), late
            ),
            Child,
            village_ids,
        )
        .order_by(_level_order(), Child.next_visit_due, Child.id)
        .limit(LIST_LIMIT)
    ).all()
    return by_level, _child_section(sum(by_level.values()), rows, today)


def visits_due_soon(village_ids, today: dt.date) -> Section:
    """Children whose 下次走访 falls today or within the week."""
    soon = Child.next_visit_due.between(today, today + dt.timedelta(days=DUE_SOON_DAYS - 1))
    base = scope(select(Child.id).where(_in_register(), soon), Child, village_ids)
    count = db.session.scalar(select(func.count()).select_from(base.subquery()))
    rows = db.session.execute(
        scope(
            select(Child.id, Child.name, Child.village_id, Child.current_level, Child.next_visit_due).where(
                _in_register(), soon
            ),
            Child,
            village_ids,
        )
        .order_by(Child.next_visit_due, _level_order(), Child.id)
        .limit(LIST_LIMIT)
    ).all()
    return _child_section(count, rows, today)


def never_assessed(village_ids, today: dt.date) -> Section:
    """Children in register with no approved assessment (the 工作台's 未评估)."""
    base = scope(select(Child.id).where(_in_register(), Child.current_level.is_(None)), Child, village_ids)
    count = db.session.scalar(select(func.count()).select_from(base.subquery()))
    rows = db.session.execute(
        scope(
            select(Child.id, Child.name, Child.village_id, Child.current_level, Child.next_visit_due).where(
                _in_register(), Child.current_level.is_(None)
            ),
            Child,
            village_ids,
        )
        .order_by(Child.id)
        .limit(LIST_LIMIT)
    ).all()
    return _child_section(count, rows, today)


def _child_section(count, rows, today) -> Section:
    villages = _village_names()
    last = _last_visits([r[0] for r in rows])
    return Section(
        count,
        [
            _child_row(cid, name, villages.get(vid, ""), level, due, today, last.get(cid))
            for cid, name, vid, level, due in rows
        ],
    )


def measures_due(village_ids, today: dt.date) -> tuple[int, Section]:
    """Tiered measures planned and due within the week (overdue ones first); also the overdue count,
    which is the 工作台's 赋能服务逾期未落实."""
    planned = SupportService.status == ServiceStatus.PLANNED.value
    horizon = today + dt.timedelta(days=DUE_SOON_DAYS - 1)

    # both counts from one scan of the week's planned measures
    due = scope(
        select(SupportService.due_on.label("due_on")).where(planned, SupportService.due_on <= horizon),
        SupportService,
        village_ids,
    ).subquery()
    overdue, total = db.session.execute(
        select(func.count().filter(due.c.due_on < today), func.count()).select_from(due)
    ).one()
    rows = db.session.execute(
        scope(
            select(
                SupportService.id,
                SupportService.kind,
                SupportService.due_on,
                SupportService.tier,
                Child.id,
                Child.name,
                Child.village_id,
                Child.current_level,
            )
            .join(Child, Child.id == SupportService.child_id)
            .where(planned, SupportService.due_on <= horizon),
            Child,
            village_ids,
        )
        .order_by(SupportService.due_on, SupportService.id)
        .limit(LIST_LIMIT)
    ).all()
    villages = _village_names()
    return overdue, Section(
        total,
        [
            {
                "id": sid,
                "kind": ServiceKind.label_of(kind),
                "due_on": due.isoformat() if due else None,
                "days_overdue": (today - due).days if due and due < today else 0,
                "child_id": cid,
                "child": name,
                "village": villages.get(vid, ""),
                "level": level,
            }
            for sid, kind, due, _tier, cid, name, vid, level in rows
        ],
    )


def my_alerts(village_ids, user_id: int, now: dt.datetime) -> Section:
    """Open alerts assigned to me, the nearest deadline first."""
    mine = (Alert.handler_id == user_id) & (Alert.status != AlertStatus.DONE.value)
    base = scope(select(Alert.id).where(mine), Alert, village_ids)
    count = db.session.scalar(select(func.count()).select_from(base.subquery()))
    rows = db.session.execute(
        scope(
            select(
                Alert.id,
                Alert.title,
                Alert.severity,
                Alert.status,
                Alert.deadline,
                Alert.child_id,
                Alert.village_id,
            ).where(mine),
            Alert,
            village_ids,
        )
        .order_by(Alert.deadline, Alert.id)
        .limit(LIST_LIMIT)
    ).all()
    names = dict(
        db.session.execute(
            select(Child.id, Child.name).where(Child.id.in_({r[5] for r in rows if r[5]}))
        ).all()
    )
    villages = _village_names()
    return Section(
        count,
        [
            {
                "id": aid,
                "title": title,
                "severity": severity,
                "status": AlertStatus.label_of(status),
                "deadline": deadline.isoformat(timespec="minutes"),
                "overdue": deadline < now,
                "child": names.get(child_id, ""),
                "village": villages.get(village_id, ""),
            }
            for aid, title, severity, status, deadline, child_id, village_id in rows
        ],
    )


def activities_between(village_ids, start: dt.datetime, end: dt.datetime) -> list[Activity]:
    return db.session.scalars(
        scope(
            select(Activity).where(Activity.starts_at >= start, Activity.starts_at < end),
            Activity,
            village_ids,
        ).order_by(Activity.starts_at, Activity.id)
    ).all()


def activity_rows(village_ids, today: dt.date) -> tuple[list[dict], list[dict]]:
    """Today's activities, and the rest of the week's."""
    start = dt.datetime.combine(today, dt.time.min)
    week = activities_between(village_ids, start, start + dt.timedelta(days=DUE_SOON_DAYS))
    signed = attendance_counts(db.session, [a.id for a in week])
    rows = [
        {
            "id": a.id,
            "title": a.title,
            "starts_at": a.starts_at.isoformat(timespec="minutes"),
            "place": a.place or "",
            "signed": signed.get(a.id, 0),
            "today": a.starts_at.date() == today,
        }
        for a in week
    ]
    return [r for r in rows if r["today"]], [r for r in rows if not r["today"]]


def today_work(village_ids, *, user_id: int, now: dt.datetime) -> dict:
    """Everything 今日 shows, as JSON-ready data."""
    today = now.date()
    overdue_by_level, overdue = visits_overdue(village_ids, today)
    measures_overdue, measures = measures_due(village_ids, today)
    activities_today, activities_week = activity_rows(village_ids, today)
    return {
        "today": today.isoformat(),
        "visits_overdue": {
            **overdue.as_json(),
            "by_level": {(level or "none"): n for level, n in overdue_by_level.items()},
        },
        "visits_due": visits_due_soon(village_ids, today).as_json(),
        "measures": {**measures.as_json(), "overdue": measures_overdue},
        "alerts": my_alerts(village_ids, user_id, now).as_json(),
        "never_assessed": never_assessed(village_ids, today).as_json(),
        "activities_today": activities_today,
        "activities_week": activities_week,
        "levels": levels(),
    }


# --------------------------------------------------------------------------- finding a child


def find_children(village_ids, text: str, limit: int = 20) -> list[dict]:
    """Children in register matching the search box (name, pinyin, initials, ID number or its last 4),
    with the level and the last visit, for the visit form's picker."""
    clause = child_search_clause(text)
    if clause is None:
        return []
    return _picker_rows(village_ids, clause, limit)


def children_by_id(village_ids, ids) -> list[dict]:
    return _picker_rows(village_ids, Child.id.in_(list(ids)), len(ids))


def _picker_rows(village_ids, clause, limit) -> list[dict]:
    rows = db.session.execute(
        scope(
            select(Child.id, Child.name, Child.village_id, Child.current_level, Child.next_visit_due).where(
                clause, _in_register()
            ),
            Child,
            village_ids,
        )
        .order_by(Child.name_pinyin, Child.id)
        .limit(limit)
    ).all()
    villages = _village_names()
    last = _last_visits([r[0] for r in rows])
    return [
        {
            "id": cid,
            "name": name,
            "village": villages.get(vid, ""),
            "level": level,
            "next_visit_due": due.isoformat() if due else None,
            "last_visit": last[cid].isoformat() if cid in last else None,
        }
        for cid, name, vid, level, due in rows
    ]


# --------------------------------------------------------------------------- the offline copy

# The columns of a child in the copy, in order (arrays keep a 3,000-child village small).
CHILD_FIELDS = (
    "id",
    "name",
    "pinyin",
    "initials",
    "id_last4",
    "village_id",
    "level",
    "next_visit_due",
    "last_visit",
    "guardian",
    "guardian_phone",
    "visit_days",  # the interval the server moves 下次走访 by (services/visits.visit_days_of)
)
ROLL_FIELDS = ("key", "name", "kind", "village", "role", "pinyin", "initials", "id_last4", "present")


def copy_children(village_ids, today: dt.date) -> list[list]:
    stmt = select(
        Child.id,
        Child.name,
        Child.name_pinyin,
        Child.name_initials,
        Child.id_last4,
        Child.village_id,
        Child.current_level,
        Child.next_visit_due,
    ).where(_in_register())
    if village_ids is None:
        # The whole town does not fit a phone: the children whose visit falls due within the fortnight.
        stmt = stmt.where(Child.next_visit_due <= today + dt.timedelta(days=TOWN_COPY_DAYS)).order_by(
            Child.next_visit_due, Child.id
        )
        stmt = stmt.limit(TOWN_COPY_LIMIT)
    else:
        stmt = scope(stmt, Child, village_ids)
    rows = db.session.execute(stmt).all()
    if village_ids is not None:
        # sorted here: asked to sort, SQLite read the whole register along the pinyin index (to skip
        # a sort of one village's rows) — 0.2 s for a 3,000-child village of 100,000 children
        rows.sort(key=lambda r: (r.village_id, r.name_pinyin or "", r.id))
    ids = [r[0] for r in rows]
    chosen = scope(select(Child.id).where(_in_register()), Child, village_ids)
    if village_ids is None:
        chosen = ids
    last = (
        dict(
            db.session.execute(
                select(Visit.child_id, func.max(Visit.visited_on))
                .where(Visit.child_id.in_(chosen))
                .group_by(Visit.child_id)
            ).all()
        )
        if ids
        else {}
    )
    guardians: dict[int, tuple[str, str | None]] = {}
    if ids:
        for child_id, name, phone in db.session.execute(
            select(ChildGuardian.child_id, Guardian.name, Guardian.phone)
            .join(Guardian, Guardian.id == ChildGuardian.guardian_id)
            .where(ChildGuardian.child_id.in_(chosen))
            .order_by(ChildGuardian.child_id, ChildGuardian.is_primary.desc(), ChildGuardian.id)
        ):
            guardians.setdefault(child_id, (name, phone))
    days = visit_days_of(ids)
    out = []
    for cid, name, pinyin, initials, last4, vid, level, due in rows:
        guardian, phone = guardians.get(cid, (None, None))
        seen = last.get(cid)
        out.append(
            [
                cid,
                name,
                pinyin,
                initials,
                last4,
                vid,
                level,
                due.isoformat() if due else None,
                seen.isoformat() if seen else None,
                guardian,
                phone,
                days.get(cid, UNASSESSED_VISIT_DAYS),
            ]
        )
    return out


def copy_activities(village_ids, now: dt.datetime) -> list[dict]:
    start = dt.datetime.combine(now.date(), dt.time.min)
    out = []
    for activity in activities_between(village_ids, start, start + dt.timedelta(days=COPY_ACTIVITY_DAYS)):
        roll = build_roll(db.session, activity, village_ids)
        out.append(
            {
                "id": activity.id,
                "title": activity.title,
                "starts_at": activity.starts_at.isoformat(timespec="minutes"),
                "place": activity.place or "",
                "too_long": roll.too_long,
                "roll": [
                    [
                        e.key,
                        e.name,
                        e.kind,
                        e.village,
                        e.role,
                        e.pinyin,
                        e.initials,
                        e.id_last4,
                        int(e.present),
                    ]
                    for e in roll.entries
                ],
            }
        )
    return out


def copy_staff(village_ids) -> list[list]:
    rows = db.session.execute(
        scope(select(Staff.id, Staff.name, Staff.kind).where(Staff.active.is_(True)), Staff, village_ids)
        .where(
            Staff.kind.in_(
                [
                    k.value
                    for k in (
                        StaffKind.DIRECTOR,
                        StaffKind.SOCIAL,
                        StaffKind.SUPERVISOR,
                        StaffKind.GRID,
                        StaffKind.CADRE,
                        StaffKind.CARING_MOTHER,
                        StaffKind.VOLUNTEER,
                    )
                ]
            )
        )
        .order_by(Staff.village_id.is_(None), Staff.kind, Staff.id)
        .limit(500)
    ).all()
    return [[sid, name, StaffKind.label_of(kind)] for sid, name, kind in rows]


def offline_copy(village_ids, *, user: dict, now: dt.datetime) -> dict:
    """The phone's copy of the user's villages (see the module's docstring for what is in it)."""
    villages = db.session.execute(
        scope(select(Village.id, Village.name), Village, village_ids).order_by(Village.sort_order, Village.id)
    ).all()
    return {
        "version": COPY_VERSION,
        "user": user,
        "generated_at": now.isoformat(timespec="seconds"),
        "expires_days": COPY_EXPIRES_DAYS,
        "whole_town": village_ids is None,
        "villages": [[vid, name] for vid, name in villages],
        "levels": levels(),
        "unassessed_visit_days": UNASSESSED_VISIT_DAYS,
        "kinds": VisitKind.choices(),
        "answers": list(ANSWERS.items()),
        "child_fields": list(CHILD_FIELDS),
        "children": copy_children(village_ids, now.date()),
        "roll_fields": list(ROLL_FIELDS),
        "activities": copy_activities(village_ids, now),
        "staff": copy_staff(village_ids),
    }
