"""Demo data of the supervision area: visits, mandatory reports, cases and the alerts they raise.

Deterministic for a given day (its own seeded RNG, dates counted back from ``clock.today()``);
visits are bulk-inserted so the 100,000-child benchmark database builds in seconds.
"""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import insert, select

from choices import CaseStage, GuardianStatus, ReporterKind, StaffKind, Urgency, VisitKind
from models import Child, ChildGuardian, Guardian, MandatoryReport, Staff, User, Visit, db, visit_staff
from seeds.demo_history import settle_register
from services import clock
from services.alerts import run_rules, triage_report
from services.cases import add_conference, add_track_record, move_stage, open_case
from services.visits import DEFAULT_VISIT_DAYS, UNASSESSED_VISIT_DAYS, after_save

SEED = 4004
# Above this many children (the benchmark) the demo step skips the per-record ORM work.
SMALL_TOWN = 5000


def seed_supervision(session, rng=None, *, today: dt.date | None = None) -> None:
    local = random.Random(SEED)
    today = today or clock.today()
    now = dt.datetime.combine(today, dt.time(9, 30))
    children = session.execute(
        select(Child.id, Child.village_id, Child.current_level)
        .where(Child.archived_at.is_(None))
        .order_by(Child.id)
    ).all()
    _seed_visits(session, local, children, today)
    settle_register(session)  # registration dates and 下次走访 from the records just written
    if len(children) > SMALL_TOWN:
        return
    users = {u.username: u for u in session.scalars(select(User))}
    _seed_risky_visit(session, children, users, today, now)
    _seed_reports(session, local, children, users, today, now)
    _seed_cases(session, children, users, today, now)
    _seed_guardian_change(session, children, today)
    session.flush()
    run_rules(today, now)


def _seed_visits(session, rng, children, today) -> None:
    kinds = [k.value for k in VisitKind]
    first_new = (session.scalar(select(db.func.max(Visit.id))) or 0) + 1
    visits = []
    for child_id, _village_id, level in children:
        if rng.random() < 0.15:
            continue  # not visited yet
        days = DEFAULT_VISIT_DAYS.get(level, UNASSESSED_VISIT_DAYS) if level else UNASSESSED_VISIT_DAYS
        # Most are on time; about one in six is a few days past due.
        last = today - dt.timedelta(days=rng.randint(0, days + (6 if rng.random() < 0.17 else -1)))
        for visited_on in (last - dt.timedelta(days=days), last):
            visits.append(
                {
                    "child_id": child_id,
                    "visited_on": visited_on,
                    "kind": rng.choice(kinds),
                    "child_seen": rng.random() < 0.95,
                    "guardian_present": rng.random() < 0.85,
                    "living_ok": rng.random() < 0.9,
                    "school_ok": rng.random() < 0.93,
                    "harm_signs": False,
                    "risk_found": False,
                    "notes": "例行走访，儿童生活学习情况正常" if visited_on == last else "例行走访",
                    "next_due": visited_on + dt.timedelta(days=days),
                    "version": 1,
                }
            )
    for start in range(0, len(visits), 20000):
        session.execute(insert(Visit), visits[start : start + 20000])
    # The village's 儿童主任 made each visit (ids left to the database, so PostgreSQL sequences stay right).
    session.execute(
        insert(visit_staff).from_select(
            ["visit_id", "staff_id"],
            select(Visit.id, Staff.id)
            .join(Child, Child.id == Visit.child_id)
            .join(Staff, (Staff.village_id == Child.village_id) & (Staff.kind == StaffKind.DIRECTOR.value))
            .where(Visit.id >= first_new),
        )
    )


def _child_in(children, village_index: int, nth: int = 0):
    villages = sorted({v for _, v, _ in children})
    in_village = [c for c, v, _ in children if v == villages[village_index % len(villages)]]
    return session_child(in_village[nth % len(in_village)])


def session_child(child_id: int) -> Child:
    return db.session.get(Child, child_id)


def _seed_risky_visit(session, children, users, today, now) -> None:
    child = _child_in(children, 0, 3)
    visit = Visit(
        child_id=child.id,
        visited_on=today - dt.timedelta(days=1),
        kind=VisitKind.HOME.value,
        child_seen=True,
        guardian_present=False,
        living_ok=False,
        school_ok=True,
        harm_signs=False,
        risk_found=True,
        notes="祖母住院，儿童独自在家两天，邻居代为照看",
        recorded_by_id=users["director1"].id,
    )
    session.add(visit)
    session.flush()
    after_save(visit, now=now - dt.timedelta(hours=20))


def _seed_reports(session, rng, children, users, today, now) -> None:
    plans = [
        # (village, hours ago, responded after h, outcome, reporter, urgency, situation)
        (0, 30, None, None, ReporterKind.NEIGHBOUR, Urgency.URGENT, "邻居反映儿童夜间常独自在家哭闹"),
        (1, 5, None, None, ReporterKind.TEACHER, Urgency.NORMAL, "班主任发现学生连续三天未到校"),
        (2, 50, 2, "to_alert", ReporterKind.MEDICAL, Urgency.CRITICAL, "卫生院接诊儿童身上多处伤痕"),
        (3, 80, 30, "no_risk", ReporterKind.GRID, Urgency.NORMAL, "网格员反映儿童衣着单薄，经核实为误会"),
        (0, 26, 1, None, ReporterKind.CADRE, Urgency.URGENT, "村干部反映监护人外出务工联系不上"),
        (4, 12, None, None, ReporterKind.OTHER, Urgency.NORMAL, "群众来电反映一名陌生儿童在集市流浪"),
    ]
    for n, (village_i, hours, responded, outcome, kind, urgency, situation) in enumerate(plans):
        child = _child_in(children, village_i, 5 + n)
        known = n != 5
        received = now - dt.timedelta(hours=hours)
        report = MandatoryReport(
            reporter_kind=kind.value,
            anonymous=kind == ReporterKind.NEIGHBOUR,
            reporter_name=None if kind == ReporterKind.NEIGHBOUR else f"演示报告人{n + 1}",
            received_at=received,
            child_id=child.id if known else None,
            child_description=None if known else "约10岁男孩，口音不像本地人",
            village_id=child.village_id,
            situation=situation,
            urgency=urgency.value,
            recorded_by_id=users["clerk"].id,
        )
        if responded is not None:
            report.first_response_at = received + dt.timedelta(hours=responded)
            report.first_response_note = "已电话联系并安排上门核实"
        session.add(report)
        session.flush()
        if outcome:
            triage_report(
                report,
                outcome,
                "上门核实属实，转预警处置" if outcome == "to_alert" else "上门核实，儿童由外婆照看，无风险",
                user_id=users["supervisor"].id,
                now=received + dt.timedelta(hours=(responded or 0) + 1),
            )


def _seed_guardian_change(session, children, today) -> None:
    """One primary guardian who went to prison last week: the child awaits reassessment."""
    child = _child_in(children, 1, 7)
    guardian = session.scalar(
        select(Guardian)
        .join(ChildGuardian, ChildGuardian.guardian_id == Guardian.id)
        .where(ChildGuardian.child_id == child.id)
        .order_by(ChildGuardian.is_primary.desc(), Guardian.id)
    )
    if guardian is not None:
        guardian.status = GuardianStatus.IMPRISONED.value
        guardian.status_changed_on = today - dt.timedelta(days=6)


def _seed_cases(session, children, users, today, now) -> None:
    supervisor = users["supervisor"].id
    social = session.scalar(select(Staff.id).where(Staff.kind == StaffKind.SOCIAL.value).order_by(Staff.id))
    walks = [
        (CaseStage.IDENTIFY, "abuse", 2, False),
        (CaseStage.ASSESS, "absence", 10, True),
        (CaseStage.INTERVENE, "absence", 45, True),
        (CaseStage.TRACK, "improper", 60, True),
        (CaseStage.CLOSED, "absence", 120, True),
        (CaseStage.ASSESS, "improper", 6, False),
    ]
    order = [CaseStage.ASSESS, CaseStage.INTERVENE, CaseStage.TRACK, CaseStage.CLOSED]
    for n, (stage, case_type, days_ago, reported) in enumerate(walks):
        child = _child_in(children, n, 20 + n)
        opened = today - dt.timedelta(days=days_ago)
        at = dt.datetime.combine(opened, dt.time(10, 0))
        case = open_case(
            child.id,
            case_type,
            opened_on=opened,
            user_id=supervisor,
            now=at,
            reported_to_bureau_on=opened + dt.timedelta(days=1) if reported else None,
            note="演示个案",
        )
        case.plan_goals = "恢复稳定监护，保障儿童按时上学"
        case.plan_measures = "每周入户一次；对接兜底保障；爱心妈妈一对一陪伴"
        case.professional_id = social
        steps = order[: order.index(stage) + 1] if stage in order else []
        gap = dt.timedelta(days=max(days_ago // (len(steps) + 1), 1)) if steps else dt.timedelta(0)
        for target in steps:
            at += gap
            if target == CaseStage.CLOSED:
                add_track_record(case, "回访：监护人已返家，儿童情况稳定", user_id=supervisor, now=at)
                at += dt.timedelta(hours=1)
                case.closing_evaluation = "监护能力恢复，帮扶目标达成"
            move_stage(case, target, user_id=supervisor, now=at, note="演示推进")
        if stage in (CaseStage.INTERVENE, CaseStage.TRACK, CaseStage.CLOSED):
            add_conference(
                case,
                held_on=opened + dt.timedelta(days=3),
                departments=["civil", "police", "village", "school"],
                attendees="镇民政办、派出所、村委会、学校",
                decisions="由村委会安排临时照料，社工每周跟进",
                today=today,
            )
    session.flush()
