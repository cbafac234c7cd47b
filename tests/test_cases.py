"""The case stage machine: every allowed and forbidden move, each gate, reopen, events."""

import datetime as dt
import itertools

import pytest

from choices import CaseStage
from models import CaseEvent, Child, Staff, User, db
from services import cases
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


def with_plan(case):
    case.plan_goals = "恢复稳定监护"
    case.plan_measures = "每周入户；联系亲属代为履责"
    case.professional_id = db.session.scalar(db.select(Staff.id).where(Staff.kind == "social"))
    return case


def put_in(case, stage, user):
    """Walk the case forward through the allowed path to ``stage``."""
    with_plan(case)
    for target in cases.ORDER[1 : cases.ORDER.index(stage) + 1]:
        if target == S.CLOSED:
            cases.add_track_record(case, "跟踪回访，情况稳定", user_id=user.id, now=later())
            case.closing_evaluation = "监护已恢复"
        cases.move_stage(case, target, user_id=user.id, now=later())
    return case


ALLOWED = {(S.IDENTIFY, S.ASSESS), (S.ASSESS, S.INTERVENE), (S.INTERVENE, S.TRACK), (S.TRACK, S.INTERVENE)}
ALLOWED |= {(S.TRACK, S.CLOSED)}
ALL_PAIRS = [(a, b) for a in cases.ORDER for b in cases.ORDER if a != b]


@pytest.mark.parametrize("start,target", sorted(ALLOWED))
def test_allowed_moves(app, case, user, start, target):
    put_in(case, start, user)
    if target == S.CLOSED:
        cases.add_track_record(case, "再次回访", user_id=user.id, now=later())
        case.closing_evaluation = "目标达成"
    event = cases.move_stage(case, target, user_id=user.id, now=later(), note="推进")
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


def test_moving_to_the_same_stage_is_refused(app, case, user):
    with pytest.raises(InvalidInput, match="已处于"):
        cases.move_stage(case, S.IDENTIFY, user_id=user.id, now=later())


def test_intervene_needs_a_plan(app, case, user):
    cases.move_stage(case, S.ASSESS, user_id=user.id, now=later())
    with pytest.raises(InvalidInput, match="帮扶目标、帮扶措施、“一对一”服务的负责专业人员"):
        cases.move_stage(case, S.INTERVENE, user_id=user.id, now=later())
    case.plan_goals = "目标"
    case.plan_measures = "措施"
    with pytest.raises(InvalidInput, match="负责专业人员"):
        cases.move_stage(case, S.INTERVENE, user_id=user.id, now=later())
    with_plan(case)
    cases.move_stage(case, S.INTERVENE, user_id=user.id, now=later())
    assert case.stage == S.INTERVENE.value


def test_close_needs_a_track_record_and_an_evaluation(app, case, user):
    put_in(case, S.TRACK, user)
    with pytest.raises(InvalidInput, match="跟踪」记录"):
        cases.move_stage(case, S.CLOSED, user_id=user.id, now=later(), closing_evaluation="好")
    cases.add_track_record(case, "回访", user_id=user.id, now=later())
    case.closing_evaluation = None
    with pytest.raises(InvalidInput, match="结案评估"):
        cases.move_stage(case, S.CLOSED, user_id=user.id, now=later(), closing_evaluation="  ")
    cases.move_stage(case, S.CLOSED, user_id=user.id, now=later(), closing_evaluation="监护恢复，目标达成")
    assert case.stage == S.CLOSED.value and case.closed_on == NOW.date()


def test_track_records_only_in_the_track_stage(app, case, user):
    with pytest.raises(InvalidInput, match="跟踪"):
        cases.add_track_record(case, "提前记录", user_id=user.id, now=later())
    put_in(case, S.TRACK, user)
    with pytest.raises(InvalidInput, match="跟踪情况"):
        cases.add_track_record(case, "", user_id=user.id, now=later())


def test_reopen_with_a_reason_and_close_again_needs_new_tracking(app, case, user):
    put_in(case, S.CLOSED, user)
    with pytest.raises(InvalidInput, match="原因"):
        cases.reopen(case, " ", user_id=user.id, now=later())
    event = cases.reopen(case, "再次发现监护缺失", user_id=user.id, now=later())
    assert event.kind == "reopen" and case.stage == S.INTERVENE.value and case.closed_on is None
    assert case.closing_evaluation is None
    cases.move_stage(case, S.TRACK, user_id=user.id, now=later())
    with pytest.raises(InvalidInput, match="跟踪」记录"):
        cases.move_stage(case, S.CLOSED, user_id=user.id, now=later(), closing_evaluation="再次结案")
    cases.add_track_record(case, "重新回访", user_id=user.id, now=later())
    cases.move_stage(case, S.CLOSED, user_id=user.id, now=later(), closing_evaluation="再次结案")
    assert case.stage == S.CLOSED.value


def test_reopen_only_closed(app, case, user):
    with pytest.raises(InvalidInput, match="已结案"):
        cases.reopen(case, "理由", user_id=user.id, now=later())


def test_every_change_is_an_event(app, case, user):
    put_in(case, S.CLOSED, user)
    db.session.commit()
    kinds = db.session.scalars(
        db.select(CaseEvent.kind).where(CaseEvent.case_id == case.id).order_by(CaseEvent.at)
    )
    assert list(kinds) == ["open", "stage", "stage", "stage", "track", "stage"]


def test_conference_needs_departments_and_decisions(app, case):
    today = NOW.date()
    with pytest.raises(InvalidInput, match="部门"):
        cases.add_conference(case, held_on=today, departments=[], attendees="", decisions="x", today=today)
    with pytest.raises(InvalidInput, match="晚于今天"):
        cases.add_conference(
            case,
            held_on=today + dt.timedelta(1),
            departments=["civil"],
            attendees="",
            decisions="x",
            today=today,
        )
    conference = cases.add_conference(
        case,
        held_on=today,
        departments=["civil", "police", "bogus"],
        attendees="张三",
        decisions="由民政牵头",
        today=today,
    )
    assert conference.departments == ["civil", "police"]


def test_unknown_case_type_is_refused(app, user):
    child = db.session.scalar(db.select(Child).order_by(Child.id))
    with pytest.raises(InvalidInput, match="个案类型"):
        cases.open_case(child.id, "nonsense", opened_on=NOW.date(), user_id=user.id, now=NOW)
