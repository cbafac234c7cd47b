"""Casework at scale: a case page holding 50 moves, 10 会商 and 100 跟进记录, and one child's alert rule
run (what follows an approval, a visit or a case move) in a town of 100,000 children."""

import datetime as dt

from sqlalchemy import insert, select

from choices import CaseStage
from models import (
    Alert,
    Case,
    CaseConference,
    CaseEvent,
    CaseFollowUp,
    CaseMeasure,
    CaseNeeds,
    CaseService,
    Child,
    User,
    db,
)
from services import clock
from services.alerts import run_rules, run_rules_for_children

MARKER = "基准：个案50条过程、10次会商、100条跟进"
EVENTS, CONFERENCES, FOLLOW_UPS, SERVICES = 50, 10, 100, 60


def build(app):
    session = db.session
    session.info["skip_audit"] = True
    child = session.scalar(select(Child).where(Child.archived_at.is_(None)).order_by(Child.id.desc()))
    user = session.scalar(select(User.id).where(User.username == "social"))
    opened = dt.date(2025, 1, 6)
    case = Case(
        child_id=child.id,
        case_type="absence",
        opened_on=opened,
        reported_to_bureau_on=opened,
        stage=CaseStage.TRACK.value,
        stage_changed_at=dt.datetime(2025, 6, 1, 10),
        plan_goals=MARKER,
        version=1,
    )
    session.add(case)
    session.flush()
    session.add(
        CaseNeeds(
            case_id=case.id,
            assessed_on=opened,
            problems={"care": "照料不足", "education": "缺课", "emotion": "情绪低落"},
            risk_rating="high",
            risk="独自在家",
            child_strengths="懂事",
            family_strengths="亲属愿意照料",
            recorded_by_id=user,
            version=1,
        )
    )
    day = dt.datetime(2025, 1, 6, 9)
    session.execute(
        insert(CaseEvent),
        [
            {
                "case_id": case.id,
                "at": day + dt.timedelta(days=i),
                "user_id": user,
                "kind": "stage" if i % 2 else "note",
                "from_stage": "intervene" if i % 2 else None,
                "to_stage": "track" if i % 2 else None,
                "note": f"基准过程记录 {i}",
            }
            for i in range(EVENTS)
        ],
    )
    for n in range(CONFERENCES):
        conference = CaseConference(
            case_id=case.id,
            held_on=opened + dt.timedelta(days=7 * n),
            departments=["civil", "police", "village"],
            attendees="民政办、派出所、村委会、社工",
            problem=f"第{n + 1}次会商研究的问题",
            decisions=f"第{n + 1}次会商决定：落实临时照料，社工每周跟进",
            recorded_by_id=user,
        )
        session.add(conference)
        session.flush()
        for k in range(2):
            session.add(
                CaseMeasure(
                    case_id=case.id,
                    content=f"会商{n + 1}分工{k + 1}",
                    responsible="村委会",
                    due_on=conference.held_on + dt.timedelta(days=10),
                    source="conference",
                    conference_id=conference.id,
                )
            )
    session.flush()
    measures = session.scalars(select(CaseMeasure.id).where(CaseMeasure.case_id == case.id)).all()
    session.execute(
        insert(CaseService),
        [
            {
                "case_id": case.id,
                "measure_id": measures[i % len(measures)],
                "delivered_on": opened + dt.timedelta(days=i),
                "provider": "社工",
                "content": f"基准服务 {i}",
                "outcome": "良好",
                "recorded_by_id": user,
                "recorded_at": day + dt.timedelta(days=i),
            }
            for i in range(SERVICES)
        ],
    )
    session.execute(
        insert(CaseFollowUp),
        [
            {
                "case_id": case.id,
                "followed_on": opened + dt.timedelta(days=i),
                "method": "phone",
                "followed_by": "社工",
                "change": f"基准跟进：第{i + 1}次回访，情况稳定",
                "stage": "track",
                "recorded_by_id": user,
                "recorded_at": day + dt.timedelta(days=i),
            }
            for i in range(FOLLOW_UPS)
        ],
    )
    session.commit()
    run_rules(clock.today(), clock.now())  # the town's alerts exist, as after the hourly run


def measure(bench) -> None:
    case_id = db.session.scalar(select(Case.id).where(Case.plan_goals == MARKER))
    bench.time_get(
        "case page: 50 events, 10 conferences, 100 follow-ups",
        "supervisor",
        f"/admin/case/details/?id={case_id}",
        100,
        note=f"{SERVICES} services, {2 * CONFERENCES} measures",
    )
    # One child's rule run, as after an approval: a child that holds alerts, in the whole town's tables.
    child_id = db.session.scalar(
        select(Alert.child_id)
        .where(Alert.child_id.is_not(None))
        .group_by(Alert.child_id)
        .order_by(Alert.child_id)
    )
    children = db.session.scalar(select(db.func.count()).select_from(Child))
    today, now = clock.today(), clock.now()

    def one_child():
        run_rules_for_children([child_id], today, now)
        db.session.rollback()

    bench.time_call(
        "alert rules for one child (after an approval)",
        one_child,
        50,
        repeat=15,
        note=f"{children:,} children; all ten rules, that child only",
    )
