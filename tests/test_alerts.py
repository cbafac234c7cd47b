"""Alert rules: each rule on the day before and the day it fires, idempotent runs, clearing."""

import datetime as dt
import itertools
import uuid

import pytest

from choices import AlertRule, AlertStatus, AssessmentStatus, CaseStage, GuardianStatus, Level
from models import (
    Alert,
    Assessment,
    Case,
    Child,
    ChildGuardian,
    Guardian,
    LevelRule,
    MandatoryReport,
    RuleRun,
    RuleVersion,
    SupportService,
    Village,
    Visit,
    db,
)
from seeds.demo import id_number
from services import alerts
from services.alerts import run_rules

D = dt.date(2026, 6, 10)
_serial = itertools.count(700)


def make_child(birth=dt.date(2015, 3, 4), created=dt.datetime(2026, 1, 5, 9, 0), **fields) -> Child:
    village = db.session.scalar(db.select(Village).order_by(Village.sort_order))
    fields.setdefault("registered_on", created.date())
    child = Child(
        name="测试儿童",
        gender="M",
        id_number=id_number(birth, next(_serial), True, region="500102"),
        birth_date=birth,
        village_id=village.id,
        created_at=created,
        **fields,
    )
    db.session.add(child)
    db.session.flush()
    return child


def assess(child, on, level, worsened=False, status=AssessmentStatus.APPROVED.value) -> Assessment:
    version = RuleVersion(snapshot={}, fingerprint=uuid.uuid4().hex)
    db.session.add(version)
    db.session.flush()
    a = Assessment(
        child_id=child.id,
        assessed_on=on,
        computed_level=level,
        level=level,
        worsened=worsened,
        status=status,
        rule_version_id=version.id,
    )
    db.session.add(a)
    if status == AssessmentStatus.APPROVED.value and (
        child.level_assessed_on is None or on >= child.level_assessed_on
    ):  # as the assessment area does on approval
        child.level_assessed_on = on
        child.current_level = level
    db.session.flush()
    return a


def holds(rule_fn, key, today, now=None) -> bool:
    return key in {c.key for c in rule_fn(today, now)}


def key(rule, kind, ident):
    return f"{rule.value}:{kind}:{ident}"


# --------------------------------------------------------------------------- each rule


def test_visit_overdue_fires_the_day_after_the_due_date(app):
    child = make_child()
    assess(child, D - dt.timedelta(15), Level.ORANGE.value)  # orange: visited every 15 days
    assert child.next_visit_due == D
    k = key(AlertRule.VISIT_OVERDUE, "child", child.id)
    assert not holds(alerts.visit_overdue, k, D)
    assert holds(alerts.visit_overdue, k, D + dt.timedelta(1))
    cond = next(c for c in alerts.visit_overdue(D + dt.timedelta(1)) if c.key == k)
    assert cond.severity == "orange" and "逾期 1 天" in cond.detail


def test_a_visit_moves_the_due_date_by_the_level_interval(app):
    child = make_child()
    assess(child, D - dt.timedelta(7), Level.RED.value)
    db.session.add(Visit(child_id=child.id, visited_on=D, kind="home"))
    db.session.flush()
    k = key(AlertRule.VISIT_OVERDUE, "child", child.id)
    # red: every 7 days, counted from the visit
    assert not holds(alerts.visit_overdue, k, D + dt.timedelta(7))
    assert holds(alerts.visit_overdue, k, D + dt.timedelta(8))


def test_reassessment_overdue(app):
    child = make_child(current_level=Level.YELLOW.value, next_assessment_due=D)
    k = key(AlertRule.REASSESSMENT_OVERDUE, "child", child.id)
    assert not holds(alerts.reassessment_overdue, k, D)
    assert holds(alerts.reassessment_overdue, k, D + dt.timedelta(1))


def test_red_child_without_safety_net_after_three_days(app):
    child = make_child(current_level=Level.RED.value, level_assessed_on=D)
    assess(child, D, Level.RED.value)
    k = key(AlertRule.RED_WITHOUT_SAFETY_NET, "child", child.id)
    assert not holds(alerts.red_without_safety_net, k, D + dt.timedelta(3))
    assert holds(alerts.red_without_safety_net, k, D + dt.timedelta(4))
    db.session.add(
        SupportService(
            child_id=child.id, kind="safety_net", status="delivered", delivered_on=D + dt.timedelta(4)
        )
    )
    db.session.flush()
    assert not holds(alerts.red_without_safety_net, k, D + dt.timedelta(4))


def test_red_child_without_safety_net_follows_the_red_measure_days(app):
    db.session.get(LevelRule, Level.RED.value).measure_days = 5
    child = make_child(current_level=Level.RED.value, level_assessed_on=D)
    assess(child, D, Level.RED.value)
    k = key(AlertRule.RED_WITHOUT_SAFETY_NET, "child", child.id)
    assert not holds(alerts.red_without_safety_net, k, D + dt.timedelta(5))
    assert holds(alerts.red_without_safety_net, k, D + dt.timedelta(6))


def test_red_since_counts_from_the_first_red_of_the_current_run(app):
    child = make_child(current_level=Level.RED.value, level_assessed_on=D + dt.timedelta(2))
    assess(child, D - dt.timedelta(30), Level.YELLOW.value)
    assess(child, D, Level.RED.value)
    assess(child, D + dt.timedelta(2), Level.RED.value)
    k = key(AlertRule.RED_WITHOUT_SAFETY_NET, "child", child.id)
    assert not holds(alerts.red_without_safety_net, k, D + dt.timedelta(3))
    assert holds(alerts.red_without_safety_net, k, D + dt.timedelta(4))


def test_level_worsened_holds_while_it_is_the_latest_assessment(app):
    child = make_child()
    assess(child, D - dt.timedelta(90), Level.YELLOW.value)
    worse = assess(child, D, Level.ORANGE.value, worsened=True)
    k = key(AlertRule.LEVEL_WORSENED, "assessment", worse.id)
    assert not holds(alerts.level_worsened, k, D - dt.timedelta(1))
    assert holds(alerts.level_worsened, k, D)
    cond = next(c for c in alerts.level_worsened(D) if c.key == k)
    assert "由黄升为橙" in cond.detail
    assess(child, D + dt.timedelta(20), Level.ORANGE.value)
    assert not holds(alerts.level_worsened, k, D + dt.timedelta(20))


def test_draft_assessment_does_not_count(app):
    child = make_child()
    assess(child, D, Level.RED.value, worsened=True, status=AssessmentStatus.DRAFT.value)
    assert child.id in {c.child_id for c in alerts.never_assessed(D)}
    assert child.id not in {c.child_id for c in alerts.level_worsened(D)}


def test_report_without_first_response_after_24_hours(app):
    village = db.session.scalar(db.select(Village).order_by(Village.id))
    received = dt.datetime(2026, 6, 10, 22, 30)
    report = MandatoryReport(
        reporter_kind="teacher", received_at=received, village_id=village.id, situation="…", urgency="urgent"
    )
    db.session.add(report)
    db.session.flush()
    k = key(AlertRule.REPORT_UNANSWERED, "report", report.id)
    # the day before it fires (whole day) and the day it fires, before and after 22:30
    assert not holds(alerts.report_unanswered, k, dt.date(2026, 6, 10))
    assert not holds(alerts.report_unanswered, k, dt.date(2026, 6, 11), dt.datetime(2026, 6, 11, 22, 29))
    assert holds(alerts.report_unanswered, k, dt.date(2026, 6, 11), dt.datetime(2026, 6, 11, 22, 30))
    report.first_response_at = dt.datetime(2026, 6, 11, 23, 0)
    db.session.flush()
    assert not holds(alerts.report_unanswered, k, dt.date(2026, 6, 12))


def test_case_stage_unchanged_for_30_days(app):
    child = make_child()
    case = Case(
        child_id=child.id,
        case_type="absence",
        opened_on=D,
        reported_to_bureau_on=D,
        stage=CaseStage.ASSESS.value,
        stage_changed_at=dt.datetime.combine(D, dt.time(16, 0)),
    )
    db.session.add(case)
    db.session.flush()
    k = key(AlertRule.CASE_STAGE_STALE, "case", case.id)
    assert not holds(alerts.case_stage_stale, k, D + dt.timedelta(29))
    assert holds(alerts.case_stage_stale, k, D + dt.timedelta(30))
    case.stage = CaseStage.CLOSED.value
    db.session.flush()
    assert not holds(alerts.case_stage_stale, k, D + dt.timedelta(30))


@pytest.mark.parametrize(
    "status,severity",
    [
        (GuardianStatus.IMPRISONED, "orange"),
        (GuardianStatus.MISSING, "red"),
        (GuardianStatus.DECEASED, "red"),
        (GuardianStatus.ILL, "orange"),
    ],
)
def test_guardian_status_change_asks_for_reassessment(app, status, severity):
    child = make_child()
    guardian = Guardian(
        name="测试监护人", village_id=child.village_id, status=status.value, status_changed_on=D
    )
    db.session.add(guardian)
    db.session.flush()
    db.session.add(ChildGuardian(child_id=child.id, guardian_id=guardian.id, is_primary=True))
    db.session.flush()
    k = f"{AlertRule.GUARDIAN_STATUS_CHANGED.value}:child:{child.id}:guardian:{guardian.id}:{status.value}"
    assert not holds(alerts.guardian_status_changed, k, D - dt.timedelta(1))
    assert holds(alerts.guardian_status_changed, k, D)
    assert next(c for c in alerts.guardian_status_changed(D) if c.key == k).severity == severity
    assess(child, D + dt.timedelta(2), Level.ORANGE.value)
    assert not holds(alerts.guardian_status_changed, k, D + dt.timedelta(2))


def test_migrant_guardian_is_no_trigger(app):
    child = make_child()
    guardian = Guardian(name="外出务工", village_id=child.village_id, status="migrant", status_changed_on=D)
    db.session.add(guardian)
    db.session.flush()
    db.session.add(ChildGuardian(child_id=child.id, guardian_id=guardian.id))
    db.session.flush()
    assert child.id not in {c.child_id for c in alerts.guardian_status_changed(D)}


def test_turning_18_within_90_days(app):
    child = make_child(birth=dt.date(2008, 9, 8))  # 18 on 2026-09-08
    k = key(AlertRule.TURNING_18, "child", child.id)
    fires = dt.date(2026, 9, 8) - dt.timedelta(90)
    assert not holds(alerts.turning_18, k, fires - dt.timedelta(1))
    assert holds(alerts.turning_18, k, fires)
    assert holds(alerts.turning_18, k, dt.date(2026, 9, 7))
    assert not holds(alerts.turning_18, k, dt.date(2026, 9, 8))


def test_turning_18_born_on_29_february(app):
    assert alerts.eighteenth_birthday(dt.date(2008, 2, 29)) == dt.date(2026, 3, 1)


def test_never_assessed_from_the_day_of_registration(app):
    child = make_child(created=dt.datetime(2026, 6, 10, 8, 0))
    k = key(AlertRule.NEVER_ASSESSED, "child", child.id)
    assert not holds(alerts.never_assessed, k, D - dt.timedelta(1))
    assert holds(alerts.never_assessed, k, D)
    assess(child, D + dt.timedelta(5), Level.GREEN.value)
    assert holds(alerts.never_assessed, k, D + dt.timedelta(4))
    assert not holds(alerts.never_assessed, k, D + dt.timedelta(5))


def test_case_not_reported_within_3_days(app):
    child = make_child()
    case = Case(child_id=child.id, case_type="abuse", opened_on=D, stage="identify")
    db.session.add(case)
    db.session.flush()
    k = key(AlertRule.CASE_UNREPORTED, "case", case.id)
    assert not holds(alerts.case_unreported, k, D + dt.timedelta(3))
    assert holds(alerts.case_unreported, k, D + dt.timedelta(4))
    case.reported_to_bureau_on = D + dt.timedelta(4)
    db.session.flush()
    assert not holds(alerts.case_unreported, k, D + dt.timedelta(4))


def test_archived_children_raise_nothing(app):
    child = make_child(next_assessment_due=D, archived_at=dt.datetime(2026, 5, 1), status="moved")
    for rule_fn in alerts.RULES.values():
        assert child.id not in {c.child_id for c in rule_fn(D + dt.timedelta(10), None)}


def test_every_rule_of_the_spec_is_registered():
    assert set(alerts.RULES) == set(AlertRule)


# --------------------------------------------------------------------------- the run


def _alerts_for(k):
    return db.session.scalars(db.select(Alert).where(Alert.condition_key == k).order_by(Alert.id)).all()


def test_runs_are_idempotent_and_clear_once(app):
    child = make_child(current_level=Level.RED.value, next_assessment_due=D)
    k = key(AlertRule.REASSESSMENT_OVERDUE, "child", child.id)
    run_rules(D)
    assert _alerts_for(k) == []
    first = run_rules(D + dt.timedelta(1))
    assert first.raised >= 1
    again = run_rules(D + dt.timedelta(1))
    run_rules(D + dt.timedelta(2))
    assert again.raised == 0
    (alert,) = _alerts_for(k)
    assert alert.severity == "red" and alert.status == AlertStatus.OPEN.value
    assert alert.deadline - alert.raised_at == dt.timedelta(hours=24)
    assert alert.village_id == child.village_id and alert.title == AlertRule.REASSESSMENT_OVERDUE.label

    child.next_assessment_due = D + dt.timedelta(30)
    db.session.commit()
    cleared = run_rules(D + dt.timedelta(3))
    assert cleared.cleared >= 1
    run_rules(D + dt.timedelta(3))
    db.session.expire_all()
    (alert,) = _alerts_for(k)
    assert alert.condition_cleared_at is not None
    assert alert.status == AlertStatus.OPEN.value  # a person still closes it
    assert db.session.scalar(db.select(db.func.count()).select_from(RuleRun)) >= 5


def test_condition_back_on_an_open_alert_reuses_it(app):
    child = make_child(next_assessment_due=D)
    k = key(AlertRule.REASSESSMENT_OVERDUE, "child", child.id)
    run_rules(D + dt.timedelta(1))
    child.next_assessment_due = D + dt.timedelta(5)
    db.session.commit()
    run_rules(D + dt.timedelta(2))
    run_rules(D + dt.timedelta(6))
    db.session.expire_all()
    (alert,) = _alerts_for(k)
    assert alert.condition_cleared_at is None


def test_a_closed_alert_is_not_raised_again_for_the_same_occurrence(app):
    child = make_child(next_assessment_due=D)
    k = key(AlertRule.REASSESSMENT_OVERDUE, "child", child.id)
    run_rules(D + dt.timedelta(1))
    (alert,) = _alerts_for(k)
    alerts.close_alert(alert, "已安排复评", user_id=None, now=dt.datetime(2026, 6, 11, 10))
    db.session.commit()
    run_rules(D + dt.timedelta(2))
    assert len(_alerts_for(k)) == 1
    # cleared, then overdue again: a new occurrence, a new alert
    child.next_assessment_due = D + dt.timedelta(10)
    db.session.commit()
    run_rules(D + dt.timedelta(3))
    run_rules(D + dt.timedelta(11))
    found = _alerts_for(k)
    assert len(found) == 2 and found[1].status == AlertStatus.OPEN.value


def test_never_two_open_alerts_for_one_key(app):
    make_child(next_assessment_due=D, current_level=Level.ORANGE.value)
    for offset in (1, 1, 2, 3):
        run_rules(D + dt.timedelta(offset))
    rows = db.session.execute(
        db.select(Alert.condition_key, db.func.count())
        .where(Alert.status != AlertStatus.DONE.value, Alert.condition_key.is_not(None))
        .group_by(Alert.condition_key)
        .having(db.func.count() > 1)
    ).all()
    assert rows == []


def test_deadline_by_severity_and_overdue_mark(app):
    raised = dt.datetime(2026, 6, 10, 9, 0)
    assert alerts.deadline_for("red", raised) == dt.datetime(2026, 6, 11, 9, 0)
    assert alerts.deadline_for("orange", raised) == dt.datetime(2026, 6, 13, 9, 0)
    assert alerts.deadline_for("yellow", raised) == dt.datetime(2026, 6, 17, 9, 0)
    alert = Alert(status="open", deadline=dt.datetime(2026, 6, 11, 9, 0))
    assert not alerts.is_overdue(alert, dt.datetime(2026, 6, 11, 9, 0))
    assert alerts.is_overdue(alert, dt.datetime(2026, 6, 11, 9, 1))
    alert.status = "done"
    assert not alerts.is_overdue(alert, dt.datetime(2026, 6, 12))


def test_handling_loop(app):
    child = make_child(next_assessment_due=D)
    run_rules(D + dt.timedelta(1))
    (alert,) = _alerts_for(key(AlertRule.REASSESSMENT_OVERDUE, "child", child.id))
    now = dt.datetime(2026, 6, 11, 10, 0)
    from models import User

    supervisor = db.session.scalar(db.select(User).where(User.username == "supervisor"))
    alerts.assign_handler(alert, supervisor.id, user_id=supervisor.id, now=now)
    assert alert.status == AlertStatus.IN_PROGRESS.value
    with pytest.raises(alerts.InvalidInput, match="处置结果"):
        alerts.close_alert(alert, " ", user_id=supervisor.id, now=now)
    alerts.add_step(alert, "已电话联系社工安排复评", user_id=supervisor.id, now=now)
    alerts.close_alert(alert, "已复评", user_id=supervisor.id, now=now)
    assert alert.status == AlertStatus.DONE.value and alert.closed_at == now
    with pytest.raises(alerts.InvalidInput, match="已办结"):
        alerts.add_step(alert, "再记一笔", user_id=supervisor.id, now=now)


def test_a_recorded_visit_clears_the_overdue_alert(app):
    from services.visits import after_save

    child = make_child()
    assess(child, D - dt.timedelta(90), Level.GREEN.value)
    k = key(AlertRule.VISIT_OVERDUE, "child", child.id)
    run_rules(D + dt.timedelta(1))
    run_rules(D + dt.timedelta(2))
    assert len(_alerts_for(k)) == 1
    visit = Visit(child_id=child.id, visited_on=D + dt.timedelta(2), kind="home")
    db.session.add(visit)
    db.session.flush()
    after_save(visit, now=dt.datetime(2026, 6, 12, 10))
    assert visit.next_due == D + dt.timedelta(2 + 90)  # green: every 90 days
    db.session.commit()
    (alert,) = _alerts_for(k)
    # cleared by the child's own rule run when the visit was saved, not an hour later
    assert alert.condition_cleared_at == dt.datetime(2026, 6, 12, 10)
    summary = run_rules(D + dt.timedelta(2))
    db.session.expire_all()
    (alert,) = _alerts_for(k)
    assert summary.cleared == 0 and summary.recurred == 0 and alert.condition_cleared_at is not None


def test_cli_runs_the_rules_for_a_given_day(app):
    child = make_child(next_assessment_due=D)
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["run-alert-rules", "--today", "2026-06-11"])
    assert result.exit_code == 0 and "预警规则已运行（2026-06-11）" in result.output
    assert len(_alerts_for(key(AlertRule.REASSESSMENT_OVERDUE, "child", child.id))) == 1
    again = app.test_cli_runner().invoke(args=["run-alert-rules", "--today", "2026-06-11"])
    assert "新增 0" in again.output


def test_the_town_may_change_the_deadlines(app):
    from models import Setting

    db.session.get(Setting, "alert_deadline_hours_red").value = "12"
    db.session.commit()
    assert alerts.deadline_for("red", dt.datetime(2026, 6, 10, 9)) == dt.datetime(2026, 6, 10, 21)
    assert alerts.deadline_for("orange", dt.datetime(2026, 6, 10, 9)) == dt.datetime(2026, 6, 13, 9)
