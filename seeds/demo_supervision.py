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
from seeds import moments
from seeds.demo_history import settle_register
from services import clock
from services.alerts import run_rules, triage_report
from services.cases import (
    ActionInput,
    MeasureInput,
    add_conference,
    add_follow_up,
    add_service,
    move_stage,
    open_case,
    save_needs,
    save_plan,
)
from services.visits import DEFAULT_VISIT_DAYS, UNASSESSED_VISIT_DAYS, after_save

SEED = 4004
# Above this many children (the benchmark) the demo step skips the per-record ORM work.
SMALL_TOWN = 5000


def seed_supervision(session, rng=None, *, today: dt.date | None = None) -> None:
    local = random.Random(SEED)
    today = today or clock.today()
    now = moments.at(today, 9, 30)
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


# The demo cases, one per stage (and one more waiting in 评估); the closed one tells a whole story.
CASE_WALKS = [
    # (stage reached, case type, opened days ago, reported to the bureau)
    (CaseStage.IDENTIFY, "abuse", 2, False),
    (CaseStage.ASSESS, "absence", 10, True),
    (CaseStage.INTERVENE, "absence", 45, True),
    (CaseStage.TRACK, "improper", 60, True),
    (CaseStage.CLOSED, "absence", 120, True),
    (CaseStage.ASSESS, "improper", 6, False),
]

CLOSED_STORY = {
    "needs": {
        "care": "父亲服刑、母亲离家失联，由72岁祖母独自照料；祖母因病住院期间，儿童放学后无人照看，一日三餐不规律",
        "education": "近两个月3次无故缺课，作业常未完成，数学成绩由80分降至50分左右",
        "emotion": "情绪低落，不愿与同学交往，谈及父母时哭泣，夜间难以入睡",
        "economy": "家庭仅靠祖母每月养老金维持，尚未认定为事实无人抚养儿童，未领取基本生活补贴",
    },
    "risk_rating": "high",
    "risk": "祖母住院期间儿童独自在家，存在人身安全与生活照料风险；长期缺乏监护与情感支持，有辍学和心理问题风险",
    "child_strengths": "性格温和懂事，喜欢画画，与班主任关系较好，愿意向老师倾诉",
    "family_strengths": "姑姑住在镇上，愿意在祖母住院期间代为照料；邻居热心，常帮忙接送；祖母出院后仍有照护意愿",
    "conference": {
        "departments": ["civil", "police", "education", "village", "women"],
        "attendees": "镇民生服务办（主持）、罗云派出所、罗云镇中心小学班主任、村委会、镇妇联、社工",
        "problem": "父亲服刑、母亲失联，祖母住院，儿童事实无人照料：由谁临时照护，如何办理事实无人抚养儿童认定",
        "decisions": "一、由姑姑作为委托照护人，村委会见证签订委托照护协议；二、镇民生服务办启动事实无人抚养儿童认定；"
        "三、学校安排课后托管并每周反馈出勤；四、社工每周入户一次，开展心理疏导",
        "actions": [
            ("镇民生服务办", "启动事实无人抚养儿童认定，对接基本生活补贴", 15),
            ("村委会", "见证签订委托照护协议，明确姑姑的照护责任", 7),
            ("罗云镇中心小学", "安排课后托管，每周向社工反馈出勤情况", 10),
        ],
    },
    "goals": "一、三个月内落实稳定的委托照护；二、儿童恢复正常上学，无故缺课为零；三、儿童情绪改善，能主动与同伴交往",
    "measures": [
        ("社工", "每周入户一次，开展心理疏导与情绪陪伴（共8次）", 60),
        ("儿童主任", "每月走访一次，核实委托照护落实情况", 90),
    ],
    "services": [
        (10, 1, "与姑姑、村委会一起签订委托照护协议，明确接送、饮食和就医安排", "协议已签订，姑姑接儿童同住"),
        (14, 3, "第1次入户心理疏导：绘画表达，了解儿童对父母的想法", "儿童愿意交流，画了全家福"),
        (18, 2, "学校课后托管安排落实，班主任每周五反馈出勤", "本周全勤"),
        (25, 3, "第3次心理疏导：情绪识别与表达训练", "儿童能说出自己的情绪，夜间入睡改善"),
        (30, 0, "认定材料已报区民政局，儿童获认定为事实无人抚养儿童", "自次月起按月领取基本生活补贴"),
        (45, 4, "儿童主任入户核实照护情况", "饮食起居正常，姑姑照护到位"),
        (60, 3, "第8次心理疏导，回顾目标达成情况", "儿童主动报名学校美术兴趣小组"),
    ],
    "follow_ups_intervene": [(40, "phone", "电话了解学校出勤：近一个月无缺课，数学小测验72分")],
    "follow_ups_track": [
        (85, "home", "入户回访：祖母已出院，与姑姑轮流照护；儿童情绪稳定，与同学一起上下学"),
        (105, "school", "到校了解：期末数学82分，本学期无缺课，班主任反映儿童开朗了许多"),
    ],
    "closure_reason": "goals_met",
    "evaluation": "经近四个月帮扶，三项目标均已达成：儿童由姑姑稳定委托照护，已认定为事实无人抚养儿童并按月领取基本生活补贴；"
    "本学期无缺课，期末数学成绩回升至82分；情绪明显好转，参加了学校美术兴趣小组。家庭监护能力明显改善，"
    "予以结案，转入儿童主任常规巡查走访。",
}

SHORT_STORY = {
    "needs": {
        "care": "监护人外出务工，由年迈祖辈照料，日常生活照料不足",
        "education": "学习习惯较差，家庭作业无人辅导",
    },
    "risk_rating": "medium",
    "risk": "照料不足，存在安全隐患和学业下滑风险",
    "child_strengths": "身体健康，乐于参加集体活动",
    "family_strengths": "祖辈照护意愿强，亲属关系和睦",
    "conference": {
        "departments": ["civil", "village", "school"],
        "attendees": "镇民生服务办、村委会、学校、社工",
        "problem": "监护人长期外出，祖辈照护能力不足，如何补足日常照料",
        "decisions": "由村委会联系监护人定期返乡探视；学校安排学业辅导；社工每两周跟进",
        "actions": [("村委会", "联系监护人，约定每月视频通话、每季度返乡探视", 10)],
    },
    "goals": "改善日常照料，保障儿童按时上学",
    "measures": [("社工", "每两周入户一次，指导祖辈照护与家庭教育", 60)],
    "services": [(20, 1, "入户指导祖辈合理安排儿童作息和饮食", "祖辈表示会按计划执行")],
    "follow_ups_intervene": [(40, "phone", "电话回访：作息改善，作业按时完成")],
    "follow_ups_track": [(90, "home", "入户回访：照料情况稳定")],
}


def _seed_cases(session, children, users, today, now) -> None:
    supervisor = users["supervisor"].id
    social_staff = session.get(Staff, users["social"].staff_id) if users["social"].staff_id else None
    for n, (stage, case_type, days_ago, reported) in enumerate(CASE_WALKS):
        child = _child_in(children, n, 20 + n)
        opened = today - dt.timedelta(days=days_ago)
        story = CLOSED_STORY if stage == CaseStage.CLOSED else SHORT_STORY
        at = moments.at(opened, 10)
        case = open_case(
            child.id,
            case_type,
            opened_on=opened,
            user_id=supervisor,
            now=at,
            reported_to_bureau_on=opened + dt.timedelta(days=1) if reported else None,
            note="演示个案：村（社区）摸排发现",
        )
        _walk_case(case, stage, story, opened, days_ago, supervisor, social_staff, today)
    session.flush()


def _walk_case(case, stage, story, opened, days_ago, user_id, social_staff, today) -> None:
    """Fill a demo case the way a social worker would, day by day, up to ``stage``."""
    reached = [CaseStage.ASSESS, CaseStage.INTERVENE, CaseStage.TRACK, CaseStage.CLOSED]
    reached = reached[: reached.index(stage) + 1] if stage in reached else []
    # The closed case follows its story's days; the others are squeezed into the days they have.
    scale = 1.0 if stage == CaseStage.CLOSED else max(days_ago - 1, 1) / 110

    def at(day: float, hour: int = 10) -> dt.datetime:
        # not after the demo's rule run that follows (at 09:30, or the clock's time before then)
        return min(moments.at(opened + dt.timedelta(days=int(day * scale)), hour), moments.at(today, 9))

    def move(target, day, **closing):
        move_stage(case, target, user_id=user_id, now=at(day, 16), run_alert_rules=False, **closing)

    if not reached:
        return
    move(CaseStage.ASSESS, 1)
    save_needs(
        case,
        assessed_on=at(3).date(),
        problems=story["needs"],
        risk_rating=story["risk_rating"],
        risk=story["risk"],
        child_strengths=story["child_strengths"],
        family_strengths=story["family_strengths"],
        user_id=user_id,
        now=at(3),
    )
    if CaseStage.INTERVENE not in reached:
        return
    conference = story["conference"]
    held = at(5)
    add_conference(
        case,
        held_on=held.date(),
        departments=conference["departments"],
        attendees=conference["attendees"],
        problem=conference["problem"],
        decisions=conference["decisions"],
        actions=[
            ActionInput(who, what, held.date() + dt.timedelta(days=days))
            for who, what, days in conference["actions"]
        ],
        today=held.date(),
        user_id=user_id,
    )
    professional = social_staff.name if social_staff else "社工"
    save_plan(
        case,
        goals=story["goals"],
        professional_id=social_staff.id if social_staff else None,
        measures=[
            MeasureInput(
                None, what, professional if who == "社工" else who, at(6).date() + dt.timedelta(days=d)
            )
            for who, what, d in story["measures"]
        ],
        candidates=[social_staff] if social_staff else [],
    )
    db.session.flush()
    move(CaseStage.INTERVENE, 7)
    measures = list(case.measures)
    for day, index, content, outcome in story["services"]:
        if CaseStage.TRACK not in reached and day > 0.6 * 110:
            break
        measure = measures[index % len(measures)]
        add_service(
            case,
            measure_id=measure.id,
            delivered_on=at(day).date(),
            provider=measure.responsible or professional,
            content=content,
            outcome=outcome,
            duration_minutes=60,
            user_id=user_id,
            now=at(day),
        )
    for day, method, change in story["follow_ups_intervene"]:
        add_follow_up(
            case,
            followed_on=at(day).date(),
            method=method,
            followed_by=professional,
            change=change,
            user_id=user_id,
            now=at(day),
        )
    if CaseStage.TRACK not in reached:
        return
    move(CaseStage.TRACK, 70)
    for day, method, change in story["follow_ups_track"]:
        add_follow_up(
            case,
            followed_on=at(day).date(),
            method=method,
            followed_by=professional,
            change=change,
            user_id=user_id,
            now=at(day),
        )
    if CaseStage.CLOSED not in reached:
        return
    move(
        CaseStage.CLOSED,
        110,
        closing_evaluation=story["evaluation"],
        closure_reason=story["closure_reason"],
        note="督导员审核同意结案",
    )
