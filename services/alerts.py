"""Risk alerts: the system rules of SPEC.md, the idempotent rule run, and the handling loop.

Each rule is one function ``rule(today, now) -> list[Condition]``: the conditions holding on that
day, as plain values, computed with a few set-based queries (never one query per child).
``run_rules`` turns them into alerts: one Alert per new condition (``condition_key``), nothing for a
condition that already has its alert, and ``condition_cleared_at`` on alerts whose condition is gone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, case, event, exists, func, insert, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from choices import (
    GUARDIAN_STATUSES_NEEDING_REASSESSMENT,
    AlertClosure,
    AlertRule,
    AlertSource,
    AlertStatus,
    AssessmentStatus,
    CaseStage,
    GuardianStatus,
    Level,
    ReporterKind,
    ReportOutcome,
    Role,
    ServiceKind,
    ServiceStatus,
    Severity,
    Urgency,
)
from models import (
    Alert,
    AlertStep,
    ApiToken,
    Assessment,
    Case,
    Child,
    ChildGuardian,
    Guardian,
    LevelRule,
    MandatoryReport,
    RuleRun,
    Setting,
    SupportService,
    User,
    Village,
    Visit,
    db,
    localnow,
    user_village,
    utcnow,
)
from services import lease
from services.scoping import scope
from services.validation import InvalidInput

DEFAULT_DEADLINE_HOURS = {Severity.RED: 24, Severity.ORANGE: 72, Severity.YELLOW: 7 * 24}
# The red level's measure days (LevelRule.measure_days, the work plan's 3) when the table lacks them.
SAFETY_NET_DAYS = 3
REPORT_RESPONSE_HOURS = 24
CASE_STALE_DAYS = 30
ADULT_NOTICE_DAYS = 90
BUREAU_REPORT_DAYS = 3
RUN_EVERY = dt.timedelta(hours=1)
_CHUNK = 500
_INSERT_BATCH = 5000


@dataclass(frozen=True, slots=True)
class Condition:
    """One condition holding on the day of a run, identified by ``key``."""

    key: str
    severity: str
    village_id: int
    child_id: int | None
    detail: str
    report_id: int | None = None
    case_id: int | None = None


# A rule checks every child, or only the children ``only`` names (the run after one child's change).
RuleCheck = Callable[[dt.date, dt.datetime, Sequence[int] | None], list[Condition]]
RULES: dict[AlertRule, RuleCheck] = {}


def rule(name: AlertRule):
    def register(fn: RuleCheck) -> RuleCheck:
        RULES[name] = fn
        return fn

    return register


def end_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(23, 59, 59))


def severity_for_level(level: str | None) -> str:
    if level == Level.RED:
        return Severity.RED.value
    if level == Level.ORANGE:
        return Severity.ORANGE.value
    return Severity.YELLOW.value


_DEADLINE_HOURS = "alert deadline hours"


def deadline_hours() -> dict[str, int]:
    """Hours to handle an alert per severity: town settings, else SPEC.md's 24 h / 72 h / 7 days.

    Read once per transaction (a queue of 200 visits raising 200 alerts read them 200 times); a
    setting saved in the transaction is read again."""
    known = db.session.info.get(_DEADLINE_HOURS)
    if known is not None:
        return dict(known)
    hours = {severity.value: n for severity, n in DEFAULT_DEADLINE_HOURS.items()}
    keys = {f"alert_deadline_hours_{s}": s for s in hours}
    for key, value in db.session.execute(select(Setting.key, Setting.value).where(Setting.key.in_(keys))):
        if value.strip().isdigit():
            hours[keys[key]] = int(value)
    db.session.info[_DEADLINE_HOURS] = dict(hours)
    return hours


@event.listens_for(Session, "after_flush")
def _settings_written(session, flush_context):
    if any(isinstance(obj, Setting) for obj in (*session.new, *session.dirty, *session.deleted)):
        session.info.pop(_DEADLINE_HOURS, None)


@event.listens_for(Session, "after_transaction_end")
def _transaction_over(session, transaction):
    if transaction.parent is None:  # the transaction itself, not one of its savepoints
        session.info.pop(_DEADLINE_HOURS, None)


def deadline_for(severity: str, raised_at: dt.datetime, hours: dict[str, int] | None = None) -> dt.datetime:
    hours = hours or deadline_hours()
    return raised_at + dt.timedelta(hours=hours[severity])


def is_overdue(alert: Alert, now: dt.datetime) -> bool:
    """逾期: still not done when its deadline has passed."""
    return alert.status != AlertStatus.DONE and alert.deadline < now


def _active_child():
    return Child.archived_at.is_(None)


def _only(column, only: Sequence[int] | None):
    """The rule's subject limited to the children ``only`` names (no limit when None)."""
    return true() if only is None else column.in_(list(only))


def _approved(assessment, today):
    return and_(assessment.status == AssessmentStatus.APPROVED.value, assessment.assessed_on <= today)


# --------------------------------------------------------------------------- the rules


@rule(AlertRule.VISIT_OVERDUE)
def visit_overdue(
    today: dt.date, now: dt.datetime | None = None, only: Sequence[int] | None = None
) -> list[Condition]:
    """A registered child whose 下次走访 (services/visits.py: the latest contact, a visit or an approved
    assessment, plus the level's interval) is before today: the 工作台 and the reports read the same date."""
    last_visit = (
        select(func.max(Visit.visited_on))
        .where(Visit.child_id == Child.id)
        .correlate(Child)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(Child.id, Child.village_id, Child.current_level, Child.next_visit_due, last_visit).where(
            _active_child(), Child.registered_on <= today, Child.next_visit_due < today, _only(Child.id, only)
        )
    )
    return [
        Condition(
            key=f"{AlertRule.VISIT_OVERDUE.value}:child:{child_id}",
            severity=severity_for_level(level),
            village_id=village_id,
            child_id=child_id,
            detail=f"应于 {due:%Y-%m-%d} 前巡查走访，已逾期 {(today - due).days} 天"
            + (f"（上次走访 {last:%Y-%m-%d}）" if last else "（尚无走访记录）"),
        )
        for child_id, village_id, level, due, last in rows
    ]


@rule(AlertRule.REASSESSMENT_OVERDUE)
def reassessment_overdue(
    today: dt.date, now: dt.datetime | None = None, only: Sequence[int] | None = None
) -> list[Condition]:
    rows = db.session.execute(
        select(Child.id, Child.village_id, Child.current_level, Child.next_assessment_due).where(
            _active_child(), Child.next_assessment_due < today, _only(Child.id, only)
        )
    )
    return [
        Condition(
            key=f"{AlertRule.REASSESSMENT_OVERDUE.value}:child:{child_id}",
            severity=severity_for_level(level),
            village_id=village_id,
            child_id=child_id,
            detail=f"应于 {due:%Y-%m-%d} 前复评，已逾期 {(today - due).days} 天",
        )
        for child_id, village_id, level, due in rows
    ]


@rule(AlertRule.RED_WITHOUT_SAFETY_NET)
def red_without_safety_net(
    today: dt.date, now: dt.datetime | None = None, only: Sequence[int] | None = None
) -> list[Condition]:
    """A red child with no delivered 兜底保障 service more than the red level's measure days (3) after
    turning red."""
    delivered = exists().where(
        SupportService.child_id == Child.id,
        SupportService.kind == ServiceKind.SAFETY_NET.value,
        SupportService.status == ServiceStatus.DELIVERED.value,
        or_(SupportService.delivered_on.is_(None), SupportService.delivered_on <= today),
    )
    red = db.session.execute(
        select(Child.id, Child.village_id, Child.level_assessed_on).where(
            _active_child(), Child.current_level == Level.RED.value, ~delivered, _only(Child.id, only)
        )
    ).all()
    if not red:
        return []
    red_since = _red_since([child_id for child_id, _, _ in red], today)
    days = (
        db.session.scalar(select(LevelRule.measure_days).where(LevelRule.level == Level.RED.value))
        or SAFETY_NET_DAYS
    )
    found = []
    for child_id, village_id, assessed_on in red:
        since = red_since.get(child_id, assessed_on)
        if since is None or today <= since + dt.timedelta(days=days):
            continue
        found.append(
            Condition(
                key=f"{AlertRule.RED_WITHOUT_SAFETY_NET.value}:child:{child_id}",
                severity=Severity.RED.value,
                village_id=village_id,
                child_id=child_id,
                detail=f"{since:%Y-%m-%d} 评估为红色，{days}日内应落实兜底保障政策对接，"
                f"至今未落实（{(today - since).days} 天）",
            )
        )
    return found


# Aliases of the assessment table built once: building one adapts every column of the model, which
# cost more than the query itself in a one-child rule run.
_ASSESSMENT_A = aliased(Assessment, name="assessment_a")
_ASSESSMENT_B = aliased(Assessment, name="assessment_b")
_ASSESSMENT_C = aliased(Assessment, name="assessment_c")


def _red_since(child_ids: list[int], today: dt.date) -> dict[int, dt.date]:
    """The first day of each child's current run of red approved assessments."""
    a, b = _ASSESSMENT_A, _ASSESSMENT_B
    last_not_red = (
        select(func.max(b.assessed_on))
        .where(b.child_id == a.child_id, _approved(b, today), b.level != Level.RED.value)
        .scalar_subquery()
    )
    since = {}
    for start in range(0, len(child_ids), _CHUNK):
        chunk = child_ids[start : start + _CHUNK]
        since.update(
            db.session.execute(
                select(a.child_id, func.min(a.assessed_on))
                .where(
                    a.child_id.in_(chunk),
                    _approved(a, today),
                    a.level == Level.RED.value,
                    or_(last_not_red.is_(None), a.assessed_on > last_not_red),
                )
                .group_by(a.child_id)
            ).all()
        )
    return since


@rule(AlertRule.LEVEL_WORSENED)
def level_worsened(
    today: dt.date, now: dt.datetime | None = None, only: Sequence[int] | None = None
) -> list[Condition]:
    """The child's latest approved assessment (the one behind Child.level_assessed_on) is marked worse."""
    a, later, prev = _ASSESSMENT_A, _ASSESSMENT_B, _ASSESSMENT_C
    same_day_later = exists().where(
        later.child_id == a.child_id,
        later.status == AssessmentStatus.APPROVED.value,
        later.assessed_on == a.assessed_on,
        later.id > a.id,
    )
    previous_level = (
        select(prev.level)
        .where(
            prev.child_id == a.child_id,
            _approved(prev, today),
            or_(prev.assessed_on < a.assessed_on, and_(prev.assessed_on == a.assessed_on, prev.id < a.id)),
        )
        .order_by(prev.assessed_on.desc(), prev.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(a.id, a.child_id, Child.village_id, a.level, a.assessed_on, previous_level)
        .select_from(Child)
        .join(
            a,
            (a.child_id == Child.id)
            & (a.status == AssessmentStatus.APPROVED.value)
            & (a.assessed_on == Child.level_assessed_on),
        )
        .where(_active_child(), a.worsened.is_(True), ~same_day_later, _only(Child.id, only))
    )
    return [
        Condition(
            key=f"{AlertRule.LEVEL_WORSENED.value}:assessment:{assessment_id}",
            severity=severity_for_level(level),
            village_id=village_id,
            child_id=child_id,
            detail=f"{assessed_on:%Y-%m-%d} 评估等级由{Level.label_of(before) or '—'}升为{Level.label_of(level)}",
        )
        for assessment_id, child_id, village_id, level, assessed_on, before in rows
        if assessed_on <= today  # filtered here: in SQL it would steer SQLite onto the date index
    ]


@rule(AlertRule.REPORT_UNANSWERED)
def report_unanswered(
    today: dt.date, now: dt.datetime | None = None, only: Sequence[int] | None = None
) -> list[Condition]:
    now = now or end_of(today)
    limit = now - dt.timedelta(hours=REPORT_RESPONSE_HOURS)
    rows = db.session.execute(
        select(
            MandatoryReport.id,
            MandatoryReport.village_id,
            MandatoryReport.child_id,
            MandatoryReport.received_at,
        ).where(
            MandatoryReport.first_response_at.is_(None),
            MandatoryReport.received_at <= limit,
            _only(MandatoryReport.child_id, only),
        )
    )
    return [
        Condition(
            key=f"{AlertRule.REPORT_UNANSWERED.value}:report:{report_id}",
            severity=Severity.RED.value,
            village_id=village_id,
            child_id=child_id,
            report_id=report_id,
            detail=f"{received:%Y-%m-%d %H:%M} 接报，超过{REPORT_RESPONSE_HOURS}小时仍未首次响应",
        )
        for report_id, village_id, child_id, received in rows
    ]


@rule(AlertRule.CASE_STAGE_STALE)
def case_stage_stale(
    today: dt.date, now: dt.datetime | None = None, only: Sequence[int] | None = None
) -> list[Condition]:
    """An open case whose stage has not changed for 30 days (counted in calendar days)."""
    before = dt.datetime.combine(today - dt.timedelta(days=CASE_STALE_DAYS - 1), dt.time.min)
    rows = db.session.execute(
        select(Case.id, Case.child_id, Child.village_id, Case.stage, Case.stage_changed_at)
        .join(Child, Child.id == Case.child_id)
        .where(
            Case.stage != CaseStage.CLOSED.value, Case.stage_changed_at < before, _only(Case.child_id, only)
        )
    )
    return [
        Condition(
            key=f"{AlertRule.CASE_STAGE_STALE.value}:case:{case_id}",
            severity=Severity.ORANGE.value,
            village_id=village_id,
            child_id=child_id,
            case_id=case_id,
            detail=f"个案自 {changed:%Y-%m-%d} 起停留在「{CaseStage.label_of(stage)}」阶段已 "
            f"{(today - changed.date()).days} 天",
        )
        for case_id, child_id, village_id, stage, changed in rows
    ]


@rule(AlertRule.GUARDIAN_STATUS_CHANGED)
def guardian_status_changed(
    today: dt.date, now: dt.datetime | None = None, only: Sequence[int] | None = None
) -> list[Condition]:
    """A guardian became 服刑/失联/死亡/重病 and the child has not been reassessed since."""
    reassessed = exists().where(
        Assessment.child_id == ChildGuardian.child_id,
        _approved(Assessment, today),
        Assessment.assessed_on >= Guardian.status_changed_on,
    )
    rows = db.session.execute(
        select(
            ChildGuardian.child_id,
            Child.village_id,
            Guardian.id,
            Guardian.name,
            Guardian.status,
            Guardian.status_changed_on,
        )
        .join(Guardian, Guardian.id == ChildGuardian.guardian_id)
        .join(Child, Child.id == ChildGuardian.child_id)
        .where(
            Guardian.status.in_([s.value for s in GUARDIAN_STATUSES_NEEDING_REASSESSMENT]),
            Guardian.status_changed_on <= today,
            _active_child(),
            ~reassessed,
            _only(ChildGuardian.child_id, only),
        )
    )
    grave = {GuardianStatus.MISSING.value, GuardianStatus.DECEASED.value}
    return [
        Condition(
            key=f"{AlertRule.GUARDIAN_STATUS_CHANGED.value}:child:{child_id}:guardian:{guardian_id}:{status}",
            severity=Severity.RED.value if status in grave else Severity.ORANGE.value,
            village_id=village_id,
            child_id=child_id,
            detail=f"监护人{name}于 {changed:%Y-%m-%d} 状态变为「{GuardianStatus.label_of(status)}」，"
            "请重新评估监护能力",
        )
        for child_id, village_id, guardian_id, name, status, changed in rows
    ]


def eighteenth_birthday(birth: dt.date) -> dt.date:
    try:
        return birth.replace(year=birth.year + 18)
    except ValueError:  # born on 29 February
        return dt.date(birth.year + 18, 3, 1)


@rule(AlertRule.TURNING_18)
def turning_18(
    today: dt.date, now: dt.datetime | None = None, only: Sequence[int] | None = None
) -> list[Condition]:
    """The 18th birthday falls within the next 90 days (today excluded, the 90th day included)."""
    earliest = _years_before(today, 18) - dt.timedelta(days=2)
    latest = _years_before(today + dt.timedelta(days=ADULT_NOTICE_DAYS), 18) + dt.timedelta(days=2)
    rows = db.session.execute(
        select(Child.id, Child.village_id, Child.birth_date).where(
            _active_child(), Child.birth_date.between(earliest, latest), _only(Child.id, only)
        )
    )
    found = []
    for child_id, village_id, birth in rows:
        adult_on = eighteenth_birthday(birth)
        if today < adult_on <= today + dt.timedelta(days=ADULT_NOTICE_DAYS):
            found.append(
                Condition(
                    key=f"{AlertRule.TURNING_18.value}:child:{child_id}",
                    severity=Severity.YELLOW.value,
                    village_id=village_id,
                    child_id=child_id,
                    detail=f"将于 {adult_on:%Y-%m-%d} 年满18周岁（{(adult_on - today).days} 天后），"
                    "请制定过渡衔接计划",
                )
            )
    return found


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return dt.date(day.year - years, 2, 28)


@rule(AlertRule.NEVER_ASSESSED)
def never_assessed(
    today: dt.date, now: dt.datetime | None = None, only: Sequence[int] | None = None
) -> list[Condition]:
    """A registered child with no approved assessment (counts from the day of registration)."""
    assessed = exists().where(Assessment.child_id == Child.id, _approved(Assessment, today))
    rows = db.session.execute(
        select(Child.id, Child.village_id).where(
            _active_child(), Child.registered_on <= today, ~assessed, _only(Child.id, only)
        )
    )
    return [
        Condition(
            key=f"{AlertRule.NEVER_ASSESSED.value}:child:{child_id}",
            severity=Severity.YELLOW.value,
            village_id=village_id,
            child_id=child_id,
            detail="已建档但尚无审核通过的监护能力评估，请安排评估",
        )
        for child_id, village_id in rows
    ]


@rule(AlertRule.CASE_UNREPORTED)
def case_unreported(
    today: dt.date, now: dt.datetime | None = None, only: Sequence[int] | None = None
) -> list[Condition]:
    """A case not reported to the district bureau within 3 days of opening."""
    rows = db.session.execute(
        select(Case.id, Case.child_id, Child.village_id, Case.opened_on)
        .join(Child, Child.id == Case.child_id)
        .where(
            Case.reported_to_bureau_on.is_(None),
            Case.opened_on < today - dt.timedelta(days=BUREAU_REPORT_DAYS),
            _only(Case.child_id, only),
        )
    )
    return [
        Condition(
            key=f"{AlertRule.CASE_UNREPORTED.value}:case:{case_id}",
            severity=Severity.RED.value,
            village_id=village_id,
            child_id=child_id,
            case_id=case_id,
            detail=f"个案于 {opened:%Y-%m-%d} 立案，应在{BUREAU_REPORT_DAYS}日内上报区民政局，至今未报",
        )
        for case_id, child_id, village_id, opened in rows
    ]


# --------------------------------------------------------------------------- the run


@dataclass
class RunSummary:
    raised: int = 0
    cleared: int = 0
    recurred: int = 0
    holding: int = 0


def run_rules(today: dt.date, now: dt.datetime | None = None) -> RunSummary:
    """Run every rule for ``today`` and reconcile alerts; commits. Safe to repeat."""
    now = now or end_of(today)
    try:
        summary = _run(today, now)
    except IntegrityError:  # another process raised the same alert a moment ago: reconcile again
        db.session.rollback()
        summary = _run(today, now)
    db.session.add(RuleRun(as_of=today, raised=summary.raised, cleared=summary.cleared))
    db.session.commit()
    return summary


def _run(today, now) -> RunSummary:
    summary = RunSummary()
    hours = deadline_hours()
    for name, check in RULES.items():
        conditions = check(today, now, None)
        summary.holding += len(conditions)
        _reconcile(name, conditions, now, summary, hours)
        del conditions
    db.session.flush()
    return summary


def run_rules_for_children(child_ids: Sequence[int], today: dt.date, now: dt.datetime) -> RunSummary:
    """Every rule, for these children only, at once (after an approval, a visit, a case move): a
    condition that no longer holds is marked cleared now, a new one raises its alert now. Alerts of
    other children are not touched. Runs in the caller's transaction (no commit, no RuleRun row: the
    hourly full run still runs); a concurrent run that raised the same alert first wins quietly."""
    ids = sorted({i for i in child_ids if i is not None})
    summary = RunSummary()
    if not ids:
        return summary
    hours = deadline_hours()
    try:
        with db.session.begin_nested():
            live = {name.value: [] for name in RULES}
            for row in db.session.execute(_live_alerts(ids)):  # one read for every rule
                live.setdefault(row.rule, []).append(row)
            for name, check in RULES.items():
                conditions = check(today, now, ids)
                summary.holding += len(conditions)
                _reconcile(name, conditions, now, summary, hours, only=ids, live_rows=live[name.value])
    except IntegrityError:
        return RunSummary()
    for obj in list(db.session.identity_map.values()):  # their rows were written without the ORM
        if isinstance(obj, Alert) and obj.__dict__.get("child_id") in ids:
            db.session.expire(obj)
    return summary


def _live_alerts(only: Sequence[int] | None):
    """Alerts a rule run may still change: not closed, or closed while their condition held."""
    return select(Alert.id, Alert.rule, Alert.condition_key, Alert.status, Alert.condition_cleared_at).where(
        or_(Alert.status != AlertStatus.DONE.value, Alert.condition_cleared_at.is_(None)),
        _only(Alert.child_id, only),
    )


def _reconcile(
    name: AlertRule,
    conditions: list[Condition],
    now: dt.datetime,
    summary: RunSummary,
    hours: dict[str, int],
    only: Sequence[int] | None = None,
    live_rows: list | None = None,
) -> None:
    """``live_rows``: the rule's live alerts when the caller read them already (the child run)."""
    if live_rows is None:
        live_rows = db.session.execute(_live_alerts(only).where(Alert.rule == name.value))
    live: dict[str, list] = {}
    for row in live_rows:
        live.setdefault(row.condition_key, []).append(row)
    holding = set()
    new_rows, recurred_ids = [], []
    raised = 0
    for cond in conditions:
        if cond.key in holding:
            continue
        holding.add(cond.key)
        alerts = live.get(cond.key)
        if not alerts:
            new_rows.append(_alert_row(name, cond, now, hours))
            if len(new_rows) == _INSERT_BATCH:  # bounded memory on a first run over a big town
                db.session.execute(insert(Alert.__table__), new_rows)
                raised += len(new_rows)
                new_rows = []
        elif all(a.condition_cleared_at is not None for a in alerts):
            # Cleared, not yet closed, and holding again: the same open alert carries on.
            recurred_ids.extend(a.id for a in alerts if a.status != AlertStatus.DONE.value)
    cleared_ids = [
        a.id
        for key, alerts in live.items()
        if key not in holding
        for a in alerts
        if a.condition_cleared_at is None
    ]
    if new_rows:
        db.session.execute(insert(Alert.__table__), new_rows)
    _update(cleared_ids, condition_cleared_at=now)
    _update(recurred_ids, condition_cleared_at=None)
    summary.raised += raised + len(new_rows)
    summary.cleared += len(cleared_ids)
    summary.recurred += len(recurred_ids)


def _alert_row(name: AlertRule, cond: Condition, now: dt.datetime, hours: dict[str, int]) -> dict:
    return {
        "source": AlertSource.RULE.value,
        "rule": name.value,
        "condition_key": cond.key,
        "severity": cond.severity,
        "child_id": cond.child_id,
        "village_id": cond.village_id,
        "title": name.label,
        "detail": cond.detail,
        "raised_at": now,
        "deadline": deadline_for(cond.severity, now, hours),
        "status": AlertStatus.OPEN.value,
        "report_id": cond.report_id,
        "case_id": cond.case_id,
        "version": 1,
    }


def _update(ids: list[int], **values) -> None:
    for start in range(0, len(ids), _CHUNK):
        db.session.execute(
            update(Alert.__table__)
            .where(Alert.__table__.c.id.in_(ids[start : start + _CHUNK]))
            .values(version=Alert.__table__.c.version + 1, updated_at=localnow(), **values)
        )


def last_run_at() -> dt.datetime | None:
    return db.session.scalar(select(func.max(RuleRun.started_at)))


# One run at a time, whoever starts it (the hourly CLI, the alert centre, its 立即运行 button, any
# app process): the run holds this lease; a crashed run's lease lapses after RUN_LEASE_TTL.
RUN_LEASE = "alert_rules"
RUN_LEASE_TTL = dt.timedelta(minutes=10)


def run_in_progress() -> bool:
    return lease.held(RUN_LEASE)


def _stale() -> bool:
    # On a connection of its own: the caller's session may hold an older snapshot.
    with db.engine.connect() as conn:
        last = conn.scalar(select(func.max(RuleRun.started_at)))
    return last is None or utcnow() - last >= RUN_EVERY


def run_rules_exclusively(today: dt.date, now: dt.datetime | None = None) -> RunSummary | None:
    """``run_rules`` unless another run is in progress (then None, at once)."""
    holder = lease.acquire(RUN_LEASE, RUN_LEASE_TTL)
    if holder is None:
        return None
    try:
        return run_rules(today, now)
    finally:
        db.session.rollback()  # a failed run leaves nothing half-written in this session
        lease.release(RUN_LEASE, holder)


def _take_lease_if_stale() -> str | None:
    """The lease, when the last run is over an hour old and nobody is running. Reading first keeps a
    page from queueing behind a run's write lock on SQLite; re-reading under the lease stops a second
    run by someone who checked just before the first one finished."""
    if not _stale() or run_in_progress():
        return None
    holder = lease.acquire(RUN_LEASE, RUN_LEASE_TTL)
    if holder is not None and not _stale():
        lease.release(RUN_LEASE, holder)
        return None
    return holder


def run_if_stale(today: dt.date, now: dt.datetime) -> RunSummary | None:
    """Run the rules here when the last run is over an hour old and none is in progress."""
    holder = _take_lease_if_stale()
    if holder is None:
        return None
    try:
        return run_rules(today, now)
    finally:
        db.session.rollback()
        lease.release(RUN_LEASE, holder)


def start_if_stale(app, today: dt.date, now: dt.datetime) -> bool:
    """The alert centre's trigger: like ``run_if_stale`` but in a background thread, so the page that
    finds the rules stale answers at once and no page ever waits for a run. True if it started one."""
    holder = _take_lease_if_stale()
    if holder is None:
        return False
    thread = threading.Thread(
        target=_background_run, args=(app, holder, today, now), name="alert-rules", daemon=True
    )
    app.extensions.setdefault("tonghu_background_runs", []).append(thread)
    thread.start()
    return True


def _background_run(app, holder: str, today: dt.date, now: dt.datetime) -> None:
    with app.app_context():
        try:
            run_rules(today, now)
        except Exception:
            db.session.rollback()
            app.logger.exception("alert rule run in the background failed")
        finally:
            lease.release(RUN_LEASE, holder)
            db.session.remove()


def wait_for_background_runs(app, timeout: float = 120) -> None:
    """Join the runs this app started (tests; a clean shutdown)."""
    runs = app.extensions.get("tonghu_background_runs", [])
    while runs:
        runs.pop().join(timeout)


# --------------------------------------------------------------------------- handling


def raise_alert(
    *,
    source: str,
    severity: str,
    village_id: int,
    title: str,
    now: dt.datetime,
    child_id: int | None = None,
    detail: str | None = None,
    condition_key: str | None = None,
    report_id: int | None = None,
    flush: bool = True,
) -> Alert:
    """An alert raised by a person's finding (a visit's 发现风险, a triaged report).

    ``flush`` False: the new alert is only added to the session and written (and given its id) by
    the caller's next flush — a queue of visits writes each visit's alert with its sync receipt."""
    if condition_key:
        existing = db.session.scalar(
            select(Alert).where(Alert.condition_key == condition_key, Alert.status != AlertStatus.DONE.value)
        )
        if existing is not None:
            return existing
    alert = Alert(
        source=source,
        severity=severity,
        village_id=village_id,
        child_id=child_id,
        title=title[:200],
        detail=detail,
        condition_key=condition_key,
        raised_at=now,
        deadline=deadline_for(severity, now),
        status=AlertStatus.OPEN.value,
        report_id=report_id,
    )
    db.session.add(alert)
    if flush:
        db.session.flush()
    return alert


def _require_open(alert: Alert) -> None:
    if alert.status == AlertStatus.DONE:
        raise InvalidInput("该预警已办结，不能再修改")


# The roles that can act in a village, in the order the handler list shows them.
HANDLER_ROLES = (Role.DIRECTOR, Role.SOCIAL, Role.SUPERVISOR, Role.CLERK)


def handler_candidates(alert: Alert) -> list[User]:
    """The people who can act in the alert's village (the page offers exactly these): its 儿童主任,
    the 社工 assigned to it, and the town's 督导员 and 经办人 — active accounts only."""
    assigned = select(user_village.c.user_id).where(user_village.c.village_id == alert.village_id)
    users = db.session.scalars(
        select(User).where(
            User.active.is_(True),
            or_(
                (User.role == Role.DIRECTOR.value) & (User.village_id == alert.village_id),
                (User.role == Role.SOCIAL.value) & User.id.in_(assigned),
                User.role.in_([Role.SUPERVISOR.value, Role.CLERK.value]),
            ),
        )
    )
    rank = {role.value: n for n, role in enumerate(HANDLER_ROLES)}
    return sorted(users, key=lambda u: (rank.get(u.role, 99), u.id))


def assign_handler(alert: Alert, handler_id: int | None, *, user_id: int | None, now: dt.datetime) -> None:
    _require_open(alert)
    if not handler_id:
        raise InvalidInput("请选择处置人")
    handler = next((u for u in handler_candidates(alert) if u.id == handler_id), None)
    if handler is None:
        raise InvalidInput(
            "所选的处置人不在可指派的名单中（须为本村儿童主任、服务本村的社工或镇级督导员、经办人），未保存"
        )
    alert.handler_id = handler.id
    if alert.status == AlertStatus.OPEN:
        alert.status = AlertStatus.IN_PROGRESS.value
    db.session.add(
        AlertStep(
            alert_id=alert.id,
            at=now,
            user_id=user_id,
            note=f"指派处置人：{handler}（{Role.label_of(handler.role)}）",
        )
    )


# What the assignee may do with an alert assigned to them, when their role only reads alerts (社工).
ASSIGNEE_ACTIONS = frozenset({"step", "ticket", "close", "to_case"})


def may_act(alert: Alert, action: str, *, role: str | None, user_id: int | None, writes_alerts: bool) -> bool:
    """Whether this person may take ``action`` on the alert: everyone who writes alerts; and a 社工
    (who only reads alerts) on an alert assigned to them — handling it, not reassigning it."""
    if writes_alerts:
        return True
    return role == Role.SOCIAL.value and alert.handler_id == user_id and action in ASSIGNEE_ACTIONS


@dataclass
class AssignedAlerts:
    total: int
    overdue: int
    rows: list[dict]


def assigned_to(user_id: int, village_ids, now: dt.datetime, limit: int = 20) -> AssignedAlerts:
    """我的预警: the open alerts assigned to this person, most urgent deadline first, as plain rows,
    with how many there are and how many are past their deadline (the 工作台 and 今日 read it)."""
    base = scope(
        select(Alert).where(Alert.handler_id == user_id, Alert.status != AlertStatus.DONE.value),
        Alert,
        village_ids,
    )
    total, overdue = db.session.execute(
        base.with_only_columns(
            func.count(Alert.id), func.count(case((Alert.deadline < now, Alert.id)))
        ).order_by(None)
    ).one()
    rows = db.session.execute(
        base.with_only_columns(
            Alert.id,
            Alert.title,
            Alert.severity,
            Alert.status,
            Alert.deadline,
            Alert.condition_cleared_at,
            Child.name.label("child_name"),
            Village.name.label("village_name"),
        )
        .outerjoin(Child, Child.id == Alert.child_id)
        .join(Village, Village.id == Alert.village_id)
        .order_by(Alert.deadline, Alert.id)
        .limit(limit)
    ).all()
    return AssignedAlerts(
        total or 0,
        overdue or 0,
        [
            {
                "id": r.id,
                "title": r.title,
                "severity": r.severity,
                "status": r.status,
                "deadline": r.deadline,
                "overdue": r.deadline < now,
                "cleared": r.condition_cleared_at is not None,
                "child": r.child_name,
                "village": r.village_name,
            }
            for r in rows
        ],
    )


def add_step(alert: Alert, note: str, *, user_id: int | None, now: dt.datetime) -> AlertStep:
    _require_open(alert)
    note = (note or "").strip()
    if not note:
        raise InvalidInput("请填写处置情况")
    if alert.status == AlertStatus.OPEN:
        alert.status = AlertStatus.IN_PROGRESS.value
    step = AlertStep(alert_id=alert.id, at=now, user_id=user_id, note=note)
    db.session.add(step)
    return step


def set_ticket(alert: Alert, ticket: str) -> None:
    ticket = (ticket or "").strip()
    if len(ticket) > 50:
        raise InvalidInput("141平台工单号不能超过50个字符")
    alert.ticket_141 = ticket or None


def close_alert(alert: Alert, result: str, *, user_id: int | None, now: dt.datetime) -> None:
    _require_open(alert)
    result = (result or "").strip()
    if not result:
        raise InvalidInput("办结时请填写处置结果")
    alert.status = AlertStatus.DONE.value
    alert.closure = AlertClosure.HANDLED.value
    alert.result = result
    alert.closed_at = now
    db.session.add(AlertStep(alert_id=alert.id, at=now, user_id=user_id, note=f"办结：{result}"))


# --------------------------------------------------------------------------- the 141 feed


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(name: str, user_id: int) -> tuple[ApiToken, str]:
    """A new token for the 141 platform; only its hash is stored, the token is shown once."""
    name = (name or "").strip()
    if not name:
        raise InvalidInput("请填写令牌名称（如 141基层智治平台）")
    user = db.session.get(User, user_id) if user_id else None
    if user is None:
        raise InvalidInput("请选择令牌代表的账号（决定可见范围）")
    plain = "th_" + secrets.token_urlsafe(32)
    token = ApiToken(name=name, user_id=user.id, token_hash=hash_token(plain), active=True)
    db.session.add(token)
    db.session.flush()
    return token, plain


def user_for_token(plain: str | None, now: dt.datetime) -> User | None:
    if not plain:
        return None
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(plain.strip())))
    if token is None or not token.active or not token.user.active:
        return None
    token.last_used_at = now
    return token.user


FEED_PER_PAGE = 200
FEED_MAX_PER_PAGE = 1000
# ``next_since`` lies this far before the query: a change being committed while the feed was read
# comes again in the next poll (the platform keys alerts by id, so a repeat is harmless).
FEED_OVERLAP = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class FeedPage:
    alerts: list[dict]
    total: int
    page: int
    per_page: int
    next_since: dt.datetime

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_more(self) -> bool:
        return self.page < self.pages


def feed_page(
    village_ids,
    now: dt.datetime,
    *,
    page: int = 1,
    per_page: int = FEED_PER_PAGE,
    since: dt.datetime | None = None,
) -> FeedPage:
    """One page of the 141 platform's feed, with the total: never cut short in silence.

    Without ``since``: the open alerts in the scope, most urgent deadline first. With ``since`` (a time
    on the server's clock, as ``next_since`` gives it): every alert in the scope changed after it, open
    or closed (closed and withdrawn ones too, so the platform can close its tickets), oldest change first.
    """
    if page < 1 or not 1 <= per_page <= FEED_MAX_PER_PAGE:
        raise InvalidInput(f"分页参数无效：page 从1开始，per_page 为1—{FEED_MAX_PER_PAGE}")
    from services import indicators

    started = localnow()
    if since is None:
        # the open alerts as services/indicators.py counts them (未办结预警数): the total is that figure
        condition, order = indicators.alert_open_at(now), (Alert.deadline, Alert.id)
        total = indicators.compute("alerts_open", indicators.Frame.as_of(None, village_ids, now)).value
    else:
        condition, order = Alert.updated_at > since, (Alert.updated_at, Alert.id)
        total = db.session.scalar(
            scope(select(func.count()).select_from(Alert).where(condition), Alert, village_ids)
        )
    # plain columns, not Alert objects: a page of 1,000 is read without building 1,000 ORM instances
    stmt = scope(
        select(*FEED_COLUMNS, Child.name.label("child_name"), Village.name.label("village_name"))
        .join(Village, Village.id == Alert.village_id)
        .outerjoin(Child, Child.id == Alert.child_id)
        .where(condition)
        .order_by(*order)
        .limit(per_page)
        .offset((page - 1) * per_page),
        Alert,
        village_ids,
    )
    labels = {kind: dict(kind.choices()) for kind in (AlertSource, Severity, AlertStatus, AlertClosure)}
    rows = [_feed_row(alert, now, labels) for alert in db.session.execute(stmt)]
    return FeedPage(rows, total or 0, page, per_page, started - FEED_OVERLAP)


FEED_COLUMNS = (
    Alert.id,
    Alert.title,
    Alert.detail,
    Alert.source,
    Alert.rule,
    Alert.severity,
    Alert.status,
    Alert.closure,
    Alert.raised_at,
    Alert.deadline,
    Alert.closed_at,
    Alert.ticket_141,
    Alert.condition_cleared_at,
    Alert.updated_at,
)


def _feed_row(alert, now: dt.datetime, labels: dict) -> dict:
    """One alert of the feed from its row (the FEED_COLUMNS, child_name, village_name)."""

    def label(kind, value):  # Choice.label_of, from the page's one table of labels
        return "" if value is None or value == "" else labels[kind].get(value, str(value))

    return {
        "id": alert.id,
        "title": alert.title,
        "detail": alert.detail,
        "source": label(AlertSource, alert.source),
        "rule": alert.rule,
        "severity": alert.severity,
        "severity_label": label(Severity, alert.severity),
        "status": alert.status,
        "status_label": label(AlertStatus, alert.status),
        "closure": alert.closure,
        "closure_label": label(AlertClosure, alert.closure),
        "village": alert.village_name,
        "child": alert.child_name,
        "raised_at": alert.raised_at.isoformat(timespec="minutes"),
        "deadline": alert.deadline.isoformat(timespec="minutes"),
        "closed_at": alert.closed_at.isoformat(timespec="minutes") if alert.closed_at else None,
        "overdue": is_overdue(alert, now),
        "ticket_141": alert.ticket_141,
        "condition_cleared": alert.condition_cleared_at is not None,
        "updated_at": alert.updated_at.isoformat(timespec="microseconds"),
    }


# --------------------------------------------------------------------------- mandatory reports

URGENCY_SEVERITY = {
    Urgency.CRITICAL.value: Severity.RED.value,
    Urgency.URGENT.value: Severity.ORANGE.value,
    Urgency.NORMAL.value: Severity.YELLOW.value,
}


def check_report(report: MandatoryReport, now: dt.datetime) -> dict[str, str]:
    """Field → Chinese error for a mandatory report's intake; empty when all is well."""
    errors = {}
    if report.received_at is None:
        errors["received_at"] = "请填写接报时间"
    elif report.received_at > now + dt.timedelta(minutes=5):
        errors["received_at"] = "接报时间不能晚于现在"
    if not report.child_id and not (report.child_description or "").strip():
        errors["child_description"] = "请从名册中选择儿童，或描述儿童情况（姓名、年龄、住址等）"
    if not (report.situation or "").strip():
        errors["situation"] = "请填写报告的情况"
    if not report.village_id:
        errors["village"] = "请选择村（社区）"
    if report.first_response_at and report.received_at and report.first_response_at < report.received_at:
        errors["first_response_at"] = "首次响应时间不能早于接报时间"
    return errors


def response_time(report: MandatoryReport, now: dt.datetime) -> tuple[dt.timedelta, bool]:
    """Time from receipt to the first response (or to now while unanswered), and whether over 24 h."""
    end = report.first_response_at or now
    elapsed = end - report.received_at
    return elapsed, elapsed > dt.timedelta(hours=REPORT_RESPONSE_HOURS)


def format_elapsed(elapsed: dt.timedelta) -> str:
    minutes = max(int(elapsed.total_seconds() // 60), 0)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}小时{minutes:02d}分"


def record_first_response(
    report: MandatoryReport, at: dt.datetime | None, note: str, now: dt.datetime
) -> None:
    if report.first_response_at is not None:
        raise InvalidInput("已记录首次响应")
    at = at or now
    if at < report.received_at:
        raise InvalidInput("首次响应时间不能早于接报时间")
    if at > now + dt.timedelta(minutes=5):
        raise InvalidInput("首次响应时间不能晚于现在")
    note = (note or "").strip()
    if not note:
        raise InvalidInput("请填写首次响应情况（如 电话联系监护人、上门核实）")
    report.first_response_at = at
    report.first_response_note = note


def triage_report(
    report: MandatoryReport, outcome: str, note: str, *, user_id: int | None, now: dt.datetime
) -> Alert | None:
    """分流: 转预警 raises an alert, 核实无风险 closes the matter; 转个案 is opened by services.cases."""
    if report.outcome:
        raise InvalidInput("该报告已分流处理")
    try:
        outcome = ReportOutcome(outcome)
    except ValueError:
        raise InvalidInput("请选择分流结果（转预警/转个案/核实无风险）") from None
    note = (note or "").strip()
    if not note:
        raise InvalidInput("请填写分流说明")
    if report.first_response_at is None:
        report.first_response_at = now
        report.first_response_note = note
    report.outcome = outcome.value
    report.outcome_note = note
    if outcome != ReportOutcome.TO_ALERT:
        return None
    alert = raise_alert(
        source=AlertSource.REPORT.value,
        severity=URGENCY_SEVERITY.get(report.urgency, Severity.ORANGE.value),
        village_id=report.village_id,
        child_id=report.child_id,
        title=f"强制报告：{ReporterKind.label_of(report.reporter_kind)}报告",
        detail=f"{report.situation.strip()[:500]}\n分流说明：{note}",
        condition_key=f"report:{report.id}",
        report_id=report.id,
        now=now,
    )
    db.session.add(AlertStep(alert_id=alert.id, at=now, user_id=user_id, note=f"由强制报告转入：{note}"))
    return alert
