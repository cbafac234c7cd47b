"""The case stage machine: every allowed and forbidden move, each gate refused with its Chinese message
and allowed once its record exists, reopening, and the records (需求评估, 会商, plan, 服务, 跟进)."""

import datetime as dt
import itertools

import pytest

from choices import CaseStage
from models import Alert, Assessment, CaseEvent, CaseTypeRule, Child, Staff, User, db
from services import cases
from services.cases import ActionInput, MeasureInput
from services.validation import InvalidInput

S = CaseStage
NOW = dt.datetime(2026, 6, 10, 9, 0)
_tick = itertools.count(1)


def later():
    return NOW + dt.timedelta(minutes=next(_tick))


@pytest.fixture
def user(app):
    return db.session.scalar(db.select(User).where(User.username == "supervisor"))


@pytest.fixture
def case(app, user):
    child = db.session.scalar(db.select(Child).order_by(Child.id))
    return cases.open_case(child.id, "abuse", opened_on=NOW.date(), user_id=user.id, now=NOW)


def social_staff():
    return db.session.scalar(db.select(Staff).where(Staff.kind == "social").order_by(Staff.id))


def fill_needs(case, user):
    return cases.save_needs(
        case,
        assessed_on=NOW.date(),
        problems={"care": "祖母年迈，放学后无人照看", "education": "近月缺课3次"},
        risk_rating="high",
        risk="独自在家，存在人身安全风险",
        child_strengths="喜欢画画，与老师关系好",
        family_strengths="姑姑愿意代为照料",
        user_id=user.id,
        now=later(),
    )


def hold_conference(case, user):
    return cases.add_conference(
        case,
        held_on=NOW.date(),
        departments=["civil", "police"],
        attendees="镇民生服务办、派出所",
        problem="儿童无人照料，如何安排临时照护",
        decisions="由姑姑临时照护，民政办启动认定",
        actions=[ActionInput("镇民生服务办", "启动事实无人抚养儿童认定", NOW.date() + dt.timedelta(days=15))],
        today=NOW.date(),
        user_id=user.id,
    )


def make_plan(case):
    staff = social_staff()
    cases.save_plan(
        case,
        goals="恢复稳定监护",
        professional_id=staff.id,
        measures=[MeasureInput(None, "每周入户一次", "社工", NOW.date() + dt.timedelta(days=30))],
        candidates=[staff],
    )
    db.session.flush()


def deliver(case, user):
    measure = case.measures[0]
    return cases.add_service(
        case,
        measure_id=measure.id,
        delivered_on=NOW.date(),
        provider="社工甲",
        content="入户开展心理疏导",
        outcome="儿童情绪好转",
        user_id=user.id,
        now=later(),
    )


def follow(case, user, change="回访：情况稳定"):
    return cases.add_follow_up(
        case,
        followed_on=NOW.date(),
        method="home",
        followed_by="社工甲",
        change=change,
        user_id=user.id,
        now=later(),
    )


def put_in(case, stage, user):
    """Walk the case forward through the allowed path to ``stage``, recording what each gate asks."""
    for target in cases.ORDER[1 : cases.ORDER.index(stage) + 1]:
        if target == S.INTERVENE:
            fill_needs(case, user)
            hold_conference(case, user)
            make_plan(case)
        if target == S.TRACK:
            deliver(case, user)
        if target == S.CLOSED:
            follow(case, user)
            case.closure_reason = "goals_met"
            case.closing_evaluation = "监护已恢复"
        cases.move_stage(case, target, user_id=user.id, now=later())
    return case


ALLOWED = {(S.IDENTIFY, S.ASSESS), (S.ASSESS, S.INTERVENE), (S.INTERVENE, S.TRACK), (S.TRACK, S.INTERVENE)}
ALLOWED |= {(S.TRACK, S.CLOSED)}
ALL_PAIRS = [(a, b) for a in cases.ORDER for b in cases.ORDER if a != b]


@pytest.mark.parametrize("start,target", sorted(ALLOWED))
def test_allowed_moves(app, case, user, start, target):
    put_in(case, start, user)
    if start == S.ASSESS:
        fill_needs(case, user)
        hold_conference(case, user)
        make_plan(case)
    if target == S.TRACK:
        deliver(case, user)
    if target == S.CLOSED:
        follow(case, user, "再次回访")
    event = cases.move_stage(
        case,
        target,
        user_id=user.id,
        now=later(),
        note="推进",
        closing_evaluation="目标达成",
        closure_reason="goals_met",
    )
    assert case.stage == target.value
    assert event.kind == "stage" and event.from_stage == start.value and event.to_stage == target.value
    assert event.user_id == user.id and event.note == "推进"


@pytest.mark.parametrize("start,target", [p for p in ALL_PAIRS if p not in ALLOWED])
def test_forbidden_moves(app, case, user, start, target):
    put_in(case, start, user)
    events = len(case.events)
    with pytest.raises(InvalidInput) as refused:
        cases.move_stage(case, target, user_id=user.id, now=later())
    assert case.stage == start.value and len(case.events) == events
    message = str(refused.value)
    if start == S.CLOSED:
        assert "重新开启" in message
    elif cases.ORDER.index(target) > cases.ORDER.index(start):
        assert "逐步推进" in message
    else:
        assert "只有「跟踪」阶段可以退回「介入」" in message


def test_allowed_moves_offer_the_next_step_first(app, case, user):
    assert cases.allowed_moves(case) == [S.ASSESS]
    put_in(case, S.TRACK, user)
    assert cases.allowed_moves(case) == [S.CLOSED, S.INTERVENE]


def test_moving_to_the_same_stage_is_refused(app, case, user):
    with pytest.raises(InvalidInput, match="已处于"):
        cases.move_stage(case, S.IDENTIFY, user_id=user.id, now=later())


def test_a_case_with_nothing_in_it_cannot_be_closed(app, case, user):
    """Pressing on through every stage with no record refuses at 介入, and every gate names its record."""
    cases.move_stage(case, S.ASSESS, user_id=user.id, now=later())
    with pytest.raises(InvalidInput) as refused:
        cases.move_stage(case, S.INTERVENE, user_id=user.id, now=later())
    message = str(refused.value)
    assert "须完成需求评估，尚缺：需求评估记录" in message
    assert "「监护侵害」个案进入「介入」前须召开会商并记录会商决定" in message
    assert "帮扶目标、帮扶措施、“一对一”服务的负责专业人员" in message
    for target in (S.TRACK, S.CLOSED):
        with pytest.raises(InvalidInput, match="逐步推进"):
            cases.move_stage(
                case,
                target,
                user_id=user.id,
                now=later(),
                closing_evaluation="好",
                closure_reason="goals_met",
            )
    assert case.stage == S.ASSESS.value


def test_intervene_needs_the_needs_assessment(app, case, user):
    cases.move_stage(case, S.ASSESS, user_id=user.id, now=later())
    hold_conference(case, user)
    make_plan(case)
    with pytest.raises(InvalidInput, match="进入「介入」前须完成需求评估，尚缺：需求评估记录"):
        cases.move_stage(case, S.INTERVENE, user_id=user.id, now=later())
    fill_needs(case, user)
    cases.move_stage(case, S.INTERVENE, user_id=user.id, now=later())
    assert case.stage == S.INTERVENE.value


def test_intervene_needs_a_conference_for_abuse_and_absence(app, case, user):
    cases.move_stage(case, S.ASSESS, user_id=user.id, now=later())
    fill_needs(case, user)
    make_plan(case)
    with pytest.raises(InvalidInput, match="「监护侵害」个案进入「介入」前须召开会商并记录会商决定"):
        cases.move_stage(case, S.INTERVENE, user_id=user.id, now=later())
    hold_conference(case, user)
    cases.move_stage(case, S.INTERVENE, user_id=user.id, now=later())
    assert case.stage == S.INTERVENE.value


def test_the_conference_rule_is_data_per_case_type(app, user):
    child = db.session.scalar(db.select(Child).order_by(Child.id))
    improper = cases.open_case(child.id, "improper", opened_on=NOW.date(), user_id=user.id, now=NOW)
    abuse = cases.open_case(child.id, "abuse", opened_on=NOW.date(), user_id=user.id, now=NOW)
    assert not cases.conference_required("improper") and cases.conference_required("absence")
    for case in (improper, abuse):
        cases.move_stage(case, S.ASSESS, user_id=user.id, now=later())
        fill_needs(case, user)
        make_plan(case)
    cases.move_stage(improper, S.INTERVENE, user_id=user.id, now=later())  # 监护不当: no 会商 needed
    db.session.get(CaseTypeRule, "abuse").conference_required = False  # the admin relaxes the rule
    cases.move_stage(abuse, S.INTERVENE, user_id=user.id, now=later())
    assert improper.stage == abuse.stage == S.INTERVENE.value


def test_an_edit_cannot_undo_what_the_gates_checked(app, user):
    child = db.session.scalar(db.select(Child).order_by(Child.id))
    case = cases.open_case(child.id, "improper", opened_on=NOW.date(), user_id=user.id, now=NOW)
    # before 介入 the type may change freely: the gate checks the 会商 when the case moves on
    assert cases.edit_errors(case, case_type="abuse", opened_on=NOW.date()) == {}
    cases.move_stage(case, S.ASSESS, user_id=user.id, now=later())
    fill_needs(case, user)
    make_plan(case)
    cases.move_stage(case, S.INTERVENE, user_id=user.id, now=later())  # 监护不当: no 会商 needed
    errors = cases.edit_errors(case, case_type="abuse", opened_on=NOW.date())
    assert list(errors) == ["case_type"] and "须召开会商" in errors["case_type"]
    assert cases.edit_errors(case, case_type="improper", opened_on=NOW.date()) == {}
    late = NOW.date() + dt.timedelta(days=1)  # the 需求评估 was made on NOW's day
    errors = cases.edit_errors(case, case_type="improper", opened_on=late)
    assert errors == {"opened_on": f"立案日期不能晚于个案中已有记录的最早日期（{NOW.date():%Y-%m-%d}）"}
    hold_conference(case, user)
    assert cases.edit_errors(case, case_type="abuse", opened_on=NOW.date()) == {}


def test_intervene_needs_a_plan(app, case, user):
    cases.move_stage(case, S.ASSESS, user_id=user.id, now=later())
    fill_needs(case, user)
    hold_conference(case, user)  # its 分工 is a measure already: only the goals and professional lack
    with pytest.raises(InvalidInput, match="尚缺：帮扶目标、“一对一”服务的负责专业人员"):
        cases.move_stage(case, S.INTERVENE, user_id=user.id, now=later())
    make_plan(case)
    cases.move_stage(case, S.INTERVENE, user_id=user.id, now=later())


def test_track_needs_a_service_against_a_measure(app, case, user):
    put_in(case, S.INTERVENE, user)
    follow(case, user)  # a follow-up is not a service
    with pytest.raises(InvalidInput, match="进入「跟踪」前须至少记录一次帮扶措施的落实服务"):
        cases.move_stage(case, S.TRACK, user_id=user.id, now=later())
    deliver(case, user)
    cases.move_stage(case, S.TRACK, user_id=user.id, now=later())
    assert case.stage == S.TRACK.value


def test_close_needs_a_track_follow_up_a_reason_and_an_evaluation(app, case, user):
    put_in(case, S.INTERVENE, user)
    follow(case, user, "介入中的跟进")  # made in 介入: does not count for closing
    deliver(case, user)
    cases.move_stage(case, S.TRACK, user_id=user.id, now=later())
    with pytest.raises(InvalidInput, match="结案前须至少有一条「跟踪」阶段的跟进记录"):
        cases.move_stage(
            case, S.CLOSED, user_id=user.id, now=later(), closing_evaluation="好", closure_reason="goals_met"
        )
    follow(case, user)
    with pytest.raises(InvalidInput, match="结案前须选择结案原因"):
        cases.move_stage(
            case, S.CLOSED, user_id=user.id, now=later(), closing_evaluation="好", closure_reason="bogus"
        )
    with pytest.raises(InvalidInput, match="结案前须填写结案评估"):
        cases.move_stage(
            case, S.CLOSED, user_id=user.id, now=later(), closing_evaluation="  ", closure_reason="goals_met"
        )
    cases.move_stage(
        case,
        S.CLOSED,
        user_id=user.id,
        now=later(),
        closing_evaluation="监护恢复，目标达成",
        closure_reason="goals_met",
    )
    assert case.stage == S.CLOSED.value and case.closed_on == NOW.date()
    assert case.closing_evaluation == "监护恢复，目标达成" and case.closure_reason == "goals_met"


def test_follow_ups_and_services_only_in_intervene_and_track(app, case, user):
    with pytest.raises(InvalidInput, match="只有处于「介入」或「跟踪」阶段的个案可以添加跟进记录"):
        follow(case, user)
    put_in(case, S.INTERVENE, user)
    follow(case, user)
    assert case.follow_ups[-1].stage == S.INTERVENE.value
    with pytest.raises(InvalidInput, match="请写明儿童和家庭的变化情况"):
        follow(case, user, change=" ")
    deliver(case, user)
    cases.move_stage(case, S.TRACK, user_id=user.id, now=later())
    follow(case, user)
    assert case.follow_ups[-1].stage == S.TRACK.value


def test_follow_up_checks_its_fields(app, case, user):
    put_in(case, S.INTERVENE, user)
    with pytest.raises(InvalidInput) as refused:
        cases.add_follow_up(
            case,
            followed_on=NOW.date() + dt.timedelta(days=1),
            method="fax",
            followed_by="",
            change="",
            user_id=user.id,
            now=later(),
        )
    message = str(refused.value)
    for part in ("跟进日期不能晚于今天", "请选择跟进方式", "请填写跟进人", "请写明儿童和家庭的变化情况"):
        assert part in message
    with pytest.raises(InvalidInput, match="不能早于立案日期"):
        cases.add_follow_up(
            case,
            followed_on=NOW.date() - dt.timedelta(days=1),
            method="phone",
            followed_by="甲",
            change="变化",
            user_id=user.id,
            now=later(),
        )


def test_a_service_is_recorded_against_this_cases_measure(app, case, user):
    child = db.session.scalar(db.select(Child).order_by(Child.id.desc()))
    other = cases.open_case(child.id, "improper", opened_on=NOW.date(), user_id=user.id, now=NOW)
    put_in(case, S.INTERVENE, user)
    put_in(other, S.INTERVENE, user)
    with pytest.raises(InvalidInput, match="请选择所落实的帮扶措施"):
        cases.add_service(
            case,
            measure_id=other.measures[0].id,
            delivered_on=NOW.date(),
            provider="甲",
            content="内容",
            user_id=user.id,
            now=later(),
        )
    with pytest.raises(InvalidInput, match="服务时长"):
        cases.add_service(
            case,
            measure_id=case.measures[0].id,
            delivered_on=NOW.date(),
            provider="甲",
            content="内容",
            duration_minutes=0,
            user_id=user.id,
            now=later(),
        )


def test_reopen_with_a_reason_and_moving_on_needs_new_work(app, case, user):
    put_in(case, S.CLOSED, user)
    with pytest.raises(InvalidInput, match="原因"):
        cases.reopen(case, " ", user_id=user.id, now=later())
    event = cases.reopen(case, "再次发现监护缺失", user_id=user.id, now=later())
    assert event.kind == "reopen" and case.stage == S.INTERVENE.value and case.closed_on is None
    assert case.closing_evaluation is None and case.closure_reason is None
    with pytest.raises(InvalidInput, match="落实服务"):
        cases.move_stage(case, S.TRACK, user_id=user.id, now=later())
    deliver(case, user)
    cases.move_stage(case, S.TRACK, user_id=user.id, now=later())
    with pytest.raises(InvalidInput, match="跟进记录"):
        cases.move_stage(
            case,
            S.CLOSED,
            user_id=user.id,
            now=later(),
            closing_evaluation="再次结案",
            closure_reason="goals_met",
        )
    follow(case, user, "重新回访")
    cases.move_stage(
        case,
        S.CLOSED,
        user_id=user.id,
        now=later(),
        closing_evaluation="再次结案",
        closure_reason="goals_met",
    )
    assert case.stage == S.CLOSED.value


def test_reopening_keeps_how_the_case_ended_before_in_its_story(app, case, user):
    put_in(case, S.CLOSED, user)
    closed_on = case.closed_on
    cases.reopen(case, "再次发现监护缺失", user_id=user.id, now=later())
    db.session.commit()
    db.session.expire_all()
    notes = [(e.kind, e.note) for e in db.session.get(type(case), case.id).events]
    assert notes[-2] == ("note", f"此前结案（{closed_on}，帮扶目标达成）的结案评估：监护已恢复")
    assert notes[-1] == ("reopen", "再次发现监护缺失")


def test_reopen_only_closed(app, case, user):
    with pytest.raises(InvalidInput, match="已结案"):
        cases.reopen(case, "理由", user_id=user.id, now=later())


def test_a_closed_case_takes_no_new_records(app, case, user):
    put_in(case, S.CLOSED, user)
    with pytest.raises(InvalidInput, match="已结案"):
        hold_conference(case, user)
    with pytest.raises(InvalidInput, match="已结案"):
        fill_needs(case, user)
    with pytest.raises(InvalidInput, match="只有处于「介入」或「跟踪」阶段"):
        deliver(case, user)


def test_every_move_is_an_event(app, case, user):
    put_in(case, S.CLOSED, user)
    db.session.commit()
    kinds = db.session.scalars(
        db.select(CaseEvent.kind).where(CaseEvent.case_id == case.id).order_by(CaseEvent.at)
    )
    assert list(kinds) == ["open", "stage", "stage", "stage", "stage"]


def test_needs_assessment_checks_its_parts_and_links_the_four_colour_assessment(app, case, user):
    with pytest.raises(InvalidInput, match="请先将个案推进到「评估」阶段"):
        fill_needs(case, user)
    cases.move_stage(case, S.ASSESS, user_id=user.id, now=later())
    with pytest.raises(InvalidInput) as refused:
        cases.save_needs(
            case,
            assessed_on=NOW.date(),
            problems={"care": " ", "bogus": "x"},
            risk_rating="extreme",
            risk="",
            child_strengths="",
            family_strengths=" ",
            user_id=user.id,
            now=later(),
        )
    for part in (
        "请至少写明一个方面存在的问题",
        "请选择风险程度",
        "请写明风险判断",
        "儿童的优势",
        "家庭的优势",
    ):
        assert part in str(refused.value)
    assert case.needs is None
    needs = fill_needs(case, user)
    db.session.flush()
    assert needs.problems == {"care": "祖母年迈，放学后无人照看", "education": "近月缺课3次"}
    approved = db.session.scalar(
        db.select(Assessment)
        .where(
            Assessment.child_id == case.child_id,
            Assessment.status == "approved",
            Assessment.assessed_on <= NOW.date(),
        )
        .order_by(Assessment.assessed_on.desc(), Assessment.id.desc())
    )
    assert needs.assessment_id == (approved.id if approved else None)


def test_needs_link_the_assessment_in_force_that_day(app, user):
    child = db.session.scalar(
        db.select(Child).where(
            Child.id.in_(db.select(Assessment.child_id).where(Assessment.status == "approved"))
        )
    )
    approved = db.session.scalar(
        db.select(Assessment)
        .where(Assessment.child_id == child.id, Assessment.status == "approved")
        .order_by(Assessment.assessed_on.desc(), Assessment.id.desc())
    )
    day = approved.assessed_on + dt.timedelta(days=1)
    moment = dt.datetime.combine(day, dt.time(10))
    case = cases.open_case(child.id, "improper", opened_on=day, user_id=user.id, now=moment)
    cases.move_stage(case, S.ASSESS, user_id=user.id, now=moment)
    needs = cases.save_needs(
        case,
        assessed_on=day,
        problems={"family": "亲子沟通少"},
        risk_rating="low",
        risk="低",
        child_strengths="开朗",
        family_strengths="和睦",
        user_id=user.id,
        now=moment,
    )
    assert needs.assessment_id == approved.id


def test_conference_records_its_parts_and_its_work_joins_the_plan(app, case, user):
    today = NOW.date()
    with pytest.raises(InvalidInput) as refused:
        cases.add_conference(
            case,
            held_on=today,
            departments=["bogus"],
            attendees="",
            problem="",
            decisions="",
            actions=[ActionInput("派出所", "", None)],
            today=today,
        )
    message = str(refused.value)
    for part in (
        "参与会商的部门",
        "参会人员",
        "会商研究的问题",
        "会商决定",
        "第1项分工须写明责任人、工作内容和完成期限",
    ):
        assert part in message
    with pytest.raises(InvalidInput, match="晚于今天"):
        cases.add_conference(
            case,
            held_on=today + dt.timedelta(1),
            departments=["civil"],
            attendees="甲",
            problem="问题",
            decisions="x",
            actions=[ActionInput("甲", "事", today + dt.timedelta(3))],
            today=today,
        )
    with pytest.raises(InvalidInput, match="至少写明一项分工"):
        cases.add_conference(
            case,
            held_on=today,
            departments=["civil"],
            attendees="甲",
            problem="问题",
            decisions="x",
            actions=[],
            today=today,
        )
    conference = cases.add_conference(
        case,
        held_on=today,
        departments=["civil", "police", "bogus"],
        attendees="张三",
        problem="无人照料",
        decisions="由民政牵头",
        actions=[
            ActionInput("派出所", "查找失联母亲", today + dt.timedelta(days=10)),
            ActionInput("", "", None),
        ],
        today=today,
    )
    db.session.flush()
    assert conference.departments == ["civil", "police"]
    assert [(m.responsible, m.content, m.source) for m in case.measures] == [
        ("派出所", "查找失联母亲", "conference")
    ]
    assert conference.actions == case.measures


def test_plan_keeps_measures_with_services_and_checks_the_professional(app, case, user):
    put_in(case, S.INTERVENE, user)
    deliver(case, user)  # on the conference's 分工 (the first measure)
    plan_measure = next(m for m in case.measures if m.source == "plan")
    cases.add_service(
        case,
        measure_id=plan_measure.id,
        delivered_on=NOW.date(),
        provider="社工甲",
        content="入户",
        user_id=user.id,
        now=later(),
    )
    with pytest.raises(InvalidInput, match="已有服务记录，不能删除"):
        cases.save_plan(
            case,
            goals="目标",
            professional_id=case.professional_id,
            measures=[MeasureInput(plan_measure.id, plan_measure.content, "", None, delete=True)],
            candidates=[social_staff()],
        )
    outsider = db.session.scalar(db.select(Staff).where(Staff.kind == "grid"))
    with pytest.raises(InvalidInput, match="不在可选名单中"):
        cases.save_plan(
            case, goals="目标", professional_id=outsider.id, measures=[], candidates=[social_staff()]
        )
    cases.save_plan(
        case,
        goals="新的目标",
        professional_id=case.professional_id,
        measures=[
            MeasureInput(plan_measure.id, "每周入户两次", "社工乙", NOW.date()),
            MeasureInput(None, "联系学校", "班主任", None),
            MeasureInput(None, "", "", None),
        ],
        candidates=[social_staff()],
    )
    assert case.plan_goals == "新的目标"
    assert [m.content for m in case.measures if m.source == "plan"] == ["每周入户两次", "联系学校"]


def test_professional_candidates_are_case_workers_of_the_village_or_town(app, case):
    village_id = case.child.village_id
    candidates = cases.professional_candidates(village_id)
    assert candidates and all(s.kind in ("social", "supervisor", "expert", "director") for s in candidates)
    assert all(s.village_id in (None, village_id) for s in candidates)
    assert candidates[0].kind == "social"
    grid = db.session.scalar(db.select(Staff).where(Staff.kind == "grid", Staff.village_id == village_id))
    assert grid not in candidates and grid in cases.professional_candidates(village_id, also=[grid.id])


def test_moving_a_case_clears_its_stale_alert_at_once(app, case, user):
    """The 30-day stale-case alert of this case clears the moment the case moves, without the hourly run."""
    from services.alerts import run_rules

    case.stage_changed_at = NOW - dt.timedelta(days=40)
    db.session.commit()
    run_rules(NOW.date(), NOW)
    alert = db.session.scalar(
        db.select(Alert).where(Alert.condition_key == f"case_stage_stale:case:{case.id}")
    )
    assert alert is not None and alert.condition_cleared_at is None
    cases.move_stage(case, S.ASSESS, user_id=user.id, now=later())
    db.session.commit()
    db.session.refresh(alert)
    assert alert.condition_cleared_at is not None


def test_unknown_case_type_is_refused(app, user):
    child = db.session.scalar(db.select(Child).order_by(Child.id))
    with pytest.raises(InvalidInput, match="个案类型"):
        cases.open_case(child.id, "nonsense", opened_on=NOW.date(), user_id=user.id, now=NOW)
