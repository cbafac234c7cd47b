"""Cases (个案): the stage machine 识别 → 评估 → 介入 → 跟踪 → 结案, its gates and its records.

Stages move one step at a time; 跟踪 may go back to 介入; a closed case is reopened with a reason.
What a case must hold before each move (``unmet``), as a social-work supervisor would check it:

- into 介入: the 需求评估 (problems by domain, the risk, the child's and the family's strengths), a
  会商 with its decisions when the case type requires one (``CaseTypeRule``, rule data), and the
  plan (goals, at least one measure, the responsible professional);
- into 跟踪: at least one 服务记录 of a plan measure since the case was last (re)opened;
- into 结案: at least one 跟进记录 made in 跟踪 since the case was last (re)opened, a closure reason
  and the closing evaluation.

So a case cannot be opened and closed with nothing in it. Every move is a CaseEvent, and after
every move the alert rules run for the child at once (a stale-case alert clears now).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select, true
from sqlalchemy.orm import selectinload

from choices import (
    AlertStatus,
    AssessmentStatus,
    CaseStage,
    CaseType,
    ClosureReason,
    Department,
    FollowUpMethod,
    MeasureSource,
    NeedDomain,
    RiskRating,
    StaffKind,
)
from models import (
    Alert,
    AlertStep,
    Assessment,
    Case,
    CaseConference,
    CaseEvent,
    CaseFollowUp,
    CaseMeasure,
    CaseNeeds,
    CaseService,
    CaseTypeRule,
    Child,
    Staff,
    db,
)
from services.validation import InvalidInput

S = CaseStage
ORDER = [S.IDENTIFY, S.ASSESS, S.INTERVENE, S.TRACK, S.CLOSED]
ALLOWED_MOVES: dict[CaseStage, list[CaseStage]] = {
    S.IDENTIFY: [S.ASSESS],
    S.ASSESS: [S.INTERVENE],
    S.INTERVENE: [S.TRACK],
    S.TRACK: [S.CLOSED, S.INTERVENE],  # the usual next step first
    S.CLOSED: [],
}
REOPEN_TO = S.INTERVENE
# Stages in which the work of the plan is recorded (services delivered, follow-ups).
WORKING_STAGES = (S.INTERVENE, S.TRACK)
# Staff who may be the case's “一对一” professional.
PROFESSIONAL_KINDS = (StaffKind.SOCIAL, StaffKind.SUPERVISOR, StaffKind.EDUCATION_EXPERT, StaffKind.DIRECTOR)
# Used when the case type has no row in the rule table.
CONFERENCE_REQUIRED_BY_DEFAULT = {CaseType.ABUSE.value, CaseType.ABSENCE.value}


class EventKind:
    OPEN = "open"
    STAGE = "stage"
    TRACK = "track"  # 跟踪 notes of cases recorded before follow-ups had their own records
    NOTE = "note"
    REOPEN = "reopen"


EVENT_LABELS = {
    EventKind.OPEN: "立案",
    EventKind.STAGE: "阶段变更",
    EventKind.TRACK: "跟踪记录",
    EventKind.NOTE: "备注",
    EventKind.REOPEN: "重新开启",
}


def _stage(value) -> CaseStage:
    try:
        return CaseStage(value)
    except ValueError:
        raise InvalidInput("未知的个案阶段") from None


def _text(value) -> str:
    return (value or "").strip()


def allowed_moves(case: Case) -> list[CaseStage]:
    """The stages the case may move to now, the usual next step first (the stage control offers these)."""
    return list(ALLOWED_MOVES[_stage(case.stage)])


# --------------------------------------------------------------------------- opening


def open_case(
    child_id: int,
    case_type: str,
    *,
    opened_on: dt.date,
    user_id: int | None,
    now: dt.datetime,
    note: str | None = None,
    reported_to_bureau_on: dt.date | None = None,
    report_id: int | None = None,
) -> Case:
    child = db.session.get(Child, child_id) if child_id else None
    if child is None:
        raise InvalidInput("请选择儿童")
    try:
        CaseType(case_type)
    except ValueError:
        raise InvalidInput("请选择个案类型（监护侵害/监护缺失/监护不当）") from None
    case = Case(
        child_id=child.id,
        case_type=case_type,
        opened_on=opened_on,
        reported_to_bureau_on=reported_to_bureau_on,
        report_id=report_id,
        stage=S.IDENTIFY.value,
        stage_changed_at=now,
        opened_by_id=user_id,
    )
    db.session.add(case)
    db.session.flush()
    record_opening(case, user_id=user_id, now=now, note=note)
    return case


def record_opening(case: Case, *, user_id: int | None, now: dt.datetime, note: str | None = None) -> None:
    case.stage = S.IDENTIFY.value
    case.stage_changed_at = now
    case.events.append(
        CaseEvent(
            at=now, user_id=user_id, kind=EventKind.OPEN, to_stage=S.IDENTIFY.value, note=note or "立案"
        )
    )


# --------------------------------------------------------------------------- the gates


def conference_required(case_type: str) -> bool:
    """Whether a case of this type needs a 会商 before 介入 (the rule table; the work plan's default)."""
    rule = db.session.get(CaseTypeRule, case_type)
    if rule is None:
        return case_type in CONFERENCE_REQUIRED_BY_DEFAULT
    return bool(rule.conference_required)


def needs_missing(case: Case) -> list[str]:
    needs = case.needs
    if needs is None:
        return ["需求评估记录"]
    missing = []
    if not any(_text(v) for v in (needs.problems or {}).values()):
        missing.append("存在的问题")
    if not needs.risk_rating or not _text(needs.risk):
        missing.append("风险判断")
    if not _text(needs.child_strengths):
        missing.append("儿童的优势")
    if not _text(needs.family_strengths):
        missing.append("家庭的优势")
    return missing


def plan_missing(case: Case) -> list[str]:
    missing = []
    if not _text(case.plan_goals):
        missing.append("帮扶目标")
    if not case.measures:
        missing.append("帮扶措施")
    if not case.professional_id:
        missing.append("“一对一”服务的负责专业人员")
    return missing


def _reopened_at(case: Case) -> dt.datetime | None:
    return db.session.scalar(
        select(func.max(CaseEvent.at)).where(CaseEvent.case_id == case.id, CaseEvent.kind == EventKind.REOPEN)
    )


def services_since_opening(case: Case) -> int:
    """服务记录 made since the case was last reopened (all of them if it never was)."""
    query = select(func.count()).where(CaseService.case_id == case.id)
    reopened = _reopened_at(case)
    if reopened is not None:
        query = query.where(CaseService.recorded_at >= reopened)
    return db.session.scalar(query) or 0


def track_count_since_opening(case: Case) -> int:
    """跟进记录 made in 跟踪 since the case was last reopened (all of them if it never was)."""
    query = select(func.count()).where(CaseFollowUp.case_id == case.id, CaseFollowUp.stage == S.TRACK.value)
    reopened = _reopened_at(case)
    if reopened is not None:
        query = query.where(CaseFollowUp.recorded_at >= reopened)
    return db.session.scalar(query) or 0


def unmet(case: Case, target: CaseStage) -> list[str]:
    """What the case still lacks to enter ``target``, one Chinese sentence each (empty: it may)."""
    missing = []
    if target == S.INTERVENE:
        needs = needs_missing(case)
        if needs:
            missing.append("进入「介入」前须完成需求评估，尚缺：" + "、".join(needs))
        if conference_required(case.case_type) and not case.conferences:
            missing.append(
                f"「{CaseType.label_of(case.case_type)}」个案进入「介入」前须召开会商并记录会商决定"
            )
        plan = plan_missing(case)
        if plan:
            missing.append("进入「介入」前须制定个性化帮扶方案，尚缺：" + "、".join(plan))
    elif target == S.TRACK:
        if services_since_opening(case) == 0:
            missing.append("进入「跟踪」前须至少记录一次帮扶措施的落实服务")
    elif target == S.CLOSED:
        if track_count_since_opening(case) == 0:
            missing.append("结案前须至少有一条「跟踪」阶段的跟进记录")
        if case.closure_reason not in {r.value for r in ClosureReason}:
            missing.append("结案前须选择结案原因")
        if not _text(case.closing_evaluation):
            missing.append("结案前须填写结案评估")
    return missing


def earliest_record_day(case: Case) -> dt.date | None:
    """The first day anything was done in the case (需求评估, 会商, 服务, 跟进)."""
    days = [case.needs.assessed_on] if case.needs is not None else []
    days += [m.held_on for m in case.conferences]
    days += [s.delivered_on for s in case.services]
    days += [f.followed_on for f in case.follow_ups]
    return min(days, default=None)


def edit_errors(case: Case, *, case_type: str | None, opened_on: dt.date | None) -> dict[str, str]:
    """Field → Chinese message for an edit of a case's facts that would undo what the gates checked:
    an opening date after the case's own records, or a type needing a 会商 the case went past
    「评估」 without."""
    errors = {}
    first = earliest_record_day(case)
    if opened_on and first and opened_on > first:
        errors["opened_on"] = f"立案日期不能晚于个案中已有记录的最早日期（{first:%Y-%m-%d}）"
    past_assess = ORDER.index(_stage(case.stage)) > ORDER.index(S.ASSESS)
    if (
        case_type
        and case_type != case.case_type
        and past_assess
        and conference_required(case_type)
        and not case.conferences
    ):
        errors["case_type"] = (
            f"「{CaseType.label_of(case_type)}」个案须召开会商才能进入「介入」，本个案尚无会商记录："
            "请先记录会商，再更改个案类型"
        )
    return errors


def check_move(case: Case, to_stage) -> None:
    """Raise InvalidInput with the reason a move is refused; return quietly when it is allowed."""
    current, target = _stage(case.stage), _stage(to_stage)
    if target == current:
        raise InvalidInput(f"个案已处于「{current.label}」阶段")
    if current == S.CLOSED:
        raise InvalidInput("个案已结案；如需继续处置，请填写原因后“重新开启”")
    if target not in ALLOWED_MOVES[current]:
        if ORDER.index(target) > ORDER.index(current):
            step = ORDER[ORDER.index(current) + 1]
            raise InvalidInput(
                f"不能从「{current.label}」直接进入「{target.label}」：须按 识别→评估→介入→跟踪→结案 "
                f"逐步推进，下一步应为「{step.label}」"
            )
        raise InvalidInput(
            f"不能从「{current.label}」退回「{target.label}」：只有「跟踪」阶段可以退回「介入」"
        )
    missing = unmet(case, target)
    if missing:
        raise InvalidInput("；".join(missing))


def move_stage(
    case: Case,
    to_stage,
    *,
    user_id: int | None,
    now: dt.datetime,
    note: str | None = None,
    closing_evaluation: str | None = None,
    closure_reason: str | None = None,
    run_alert_rules: bool = True,
) -> CaseEvent:
    """Move the case one stage; refused moves raise InvalidInput with the Chinese reason.

    ``run_alert_rules=False`` only for history written after the fact (the demo data), whose rules
    run once at the end as of today."""
    target = _stage(to_stage)
    before = case.closing_evaluation, case.closure_reason
    if target == S.CLOSED:
        if _text(closing_evaluation):
            case.closing_evaluation = _text(closing_evaluation)
        if _text(closure_reason):
            case.closure_reason = _text(closure_reason)
    try:
        check_move(case, target)
    except InvalidInput:
        case.closing_evaluation, case.closure_reason = before  # a refused move changes nothing
        raise
    current = case.stage
    case.stage = target.value
    case.stage_changed_at = now
    if target == S.CLOSED:
        case.closed_on = now.date()
    event = CaseEvent(
        at=now,
        user_id=user_id,
        kind=EventKind.STAGE,
        from_stage=current,
        to_stage=target.value,
        note=_text(note) or None,
    )
    case.events.append(event)
    if run_alert_rules:
        _refresh_alerts(case, now)
    return event


def reopen(case: Case, reason: str, *, user_id: int | None, now: dt.datetime) -> CaseEvent:
    if case.stage != S.CLOSED:
        raise InvalidInput("只有已结案的个案可以重新开启")
    reason = _text(reason)
    if not reason:
        raise InvalidInput("重新开启须填写原因")
    # The closing fields are emptied for the next closure; the story keeps how the case ended before.
    if case.closed_on or _text(case.closing_evaluation):
        ended = ClosureReason.label_of(case.closure_reason) or "未填写原因"
        case.events.append(
            CaseEvent(
                at=now,
                user_id=user_id,
                kind=EventKind.NOTE,
                note=f"此前结案（{case.closed_on or '日期未记'}，{ended}）的结案评估："
                f"{_text(case.closing_evaluation) or '未填写'}",
            )
        )
    event = CaseEvent(
        at=now,
        user_id=user_id,
        kind=EventKind.REOPEN,
        from_stage=S.CLOSED.value,
        to_stage=REOPEN_TO.value,
        note=reason,
    )
    case.events.append(event)
    case.stage = REOPEN_TO.value
    case.stage_changed_at = now
    case.closed_on = None
    case.closing_evaluation = None
    case.closure_reason = None
    _refresh_alerts(case, now)
    return event


def _refresh_alerts(case: Case, now: dt.datetime) -> None:
    from services.alerts import run_rules_for_children

    run_rules_for_children([case.child_id], now.date(), now)


# --------------------------------------------------------------------------- the records


def _require_open(case: Case) -> None:
    if case.stage == S.CLOSED:
        raise InvalidInput("个案已结案，不能再修改；如需继续处置，请先“重新开启”")


def _require_working(case: Case, what: str) -> None:
    if _stage(case.stage) not in WORKING_STAGES:
        raise InvalidInput(f"只有处于「介入」或「跟踪」阶段的个案可以{what}")


def _check_day(day: dt.date | None, case: Case, today: dt.date, what: str) -> dt.date:
    if day is None:
        raise InvalidInput(f"请填写{what}")
    if day > today:
        raise InvalidInput(f"{what}不能晚于今天")
    if day < case.opened_on:
        raise InvalidInput(f"{what}不能早于立案日期（{case.opened_on:%Y-%m-%d}）")
    return day


def latest_assessment_by(child_id: int, day: dt.date) -> Assessment | None:
    """The child's four-colour assessment in force on ``day`` (the latest approved one by then)."""
    return db.session.scalar(
        select(Assessment)
        .where(
            Assessment.child_id == child_id,
            Assessment.status == AssessmentStatus.APPROVED.value,
            Assessment.assessed_on <= day,
        )
        .order_by(Assessment.assessed_on.desc(), Assessment.id.desc())
        .limit(1)
    )


def save_needs(
    case: Case,
    *,
    assessed_on: dt.date | None,
    problems: dict[str, str],
    risk_rating: str | None,
    risk: str | None,
    child_strengths: str | None,
    family_strengths: str | None,
    user_id: int | None,
    now: dt.datetime,
) -> CaseNeeds:
    """Record (or revise) the case's 需求评估; links the four-colour assessment in force that day."""
    _require_open(case)
    if case.stage == S.IDENTIFY.value:
        raise InvalidInput("需求评估在「评估」阶段填写：请先将个案推进到「评估」阶段")
    errors = []
    try:
        assessed_on = _check_day(assessed_on, case, now.date(), "评估日期")
    except InvalidInput as bad:
        errors.append(str(bad))
    found = {d.value: _text(problems.get(d.value)) for d in NeedDomain}
    found = {k: v for k, v in found.items() if v}
    if not found:
        errors.append("请至少写明一个方面存在的问题")
    if risk_rating not in {r.value for r in RiskRating}:
        errors.append("请选择风险程度（高/中/低）")
    if not _text(risk):
        errors.append("请写明风险判断（儿童面临的主要风险）")
    if not _text(child_strengths):
        errors.append("请写明儿童的优势（如性格、能力、兴趣）")
    if not _text(family_strengths):
        errors.append("请写明家庭的优势与可用资源（如亲属支持、邻里帮助）")
    if errors:
        raise InvalidInput("；".join(errors))
    assessment = latest_assessment_by(case.child_id, assessed_on)
    needs = case.needs
    if needs is None:
        needs = CaseNeeds()
        db.session.add(needs)
        needs.case = case
    needs.assessed_on = assessed_on
    needs.problems = found
    needs.risk_rating = risk_rating
    needs.risk = _text(risk)
    needs.child_strengths = _text(child_strengths)
    needs.family_strengths = _text(family_strengths)
    needs.assessment_id = assessment.id if assessment else None
    needs.recorded_by_id = user_id
    needs.recorded_at = now
    return needs


@dataclass
class MeasureInput:
    """One row of the plan page: an existing measure (``id``) or a new one, or one to delete."""

    id: int | None
    content: str
    responsible: str
    due_on: dt.date | None
    delete: bool = False


def save_plan(
    case: Case,
    *,
    goals: str | None,
    professional_id: int | None,
    measures: list[MeasureInput],
    candidates: list[Staff],
) -> None:
    """The 个性化帮扶方案: goals, the responsible professional and the plan's own measures (those
    decided by a 会商 stay as the 会商 recorded them)."""
    _require_open(case)
    errors = []
    if professional_id and professional_id not in {s.id for s in candidates}:
        errors.append(
            "所选的负责专业人员不在可选名单中（须为本村或镇级的社工、督导员、家庭教育专家或儿童主任）"
        )
    own = {m.id: m for m in case.measures if m.source == MeasureSource.PLAN.value}
    for row, item in enumerate(measures, start=1):
        if item.id is not None and item.id not in own:
            errors.append(f"第{row}项措施不属于本个案的帮扶方案")
            continue
        if item.delete:
            if item.id is not None and own[item.id].services:
                errors.append(f"措施「{own[item.id].content[:20]}」已有服务记录，不能删除")
            continue
        if not _text(item.content) and (_text(item.responsible) or item.due_on):
            errors.append(f"第{row}项措施请写明具体内容")
    if errors:
        raise InvalidInput("；".join(errors))
    case.plan_goals = _text(goals) or None
    case.professional_id = professional_id or None
    for item in measures:
        measure = own.get(item.id) if item.id is not None else None
        if item.delete or (measure is None and not _text(item.content)):
            if measure is not None:
                case.measures.remove(measure)
            continue
        if measure is None:
            measure = CaseMeasure(source=MeasureSource.PLAN.value)
            case.measures.append(measure)
        if _text(item.content):
            measure.content = _text(item.content)
        measure.responsible = _text(item.responsible) or None
        measure.due_on = item.due_on


@dataclass
class ActionInput:
    """会商 分工: who does what by when."""

    responsible: str
    content: str
    due_on: dt.date | None


def add_conference(
    case: Case,
    *,
    held_on: dt.date | None,
    departments: list[str],
    attendees: str | None,
    problem: str | None,
    decisions: str | None,
    actions: list[ActionInput],
    today: dt.date,
    user_id: int | None = None,
) -> CaseConference:
    """A 会商 with its decisions; its 分工 (who does what by when) join the case's plan as measures."""
    _require_open(case)
    errors = []
    if held_on is None:
        errors.append("请填写会商日期")
    elif held_on > today:
        errors.append("会商日期不能晚于今天")
    elif held_on < case.opened_on:
        errors.append(f"会商日期不能早于立案日期（{case.opened_on:%Y-%m-%d}）")
    valid = {d.value for d in Department}
    chosen = [d for d in departments if d in valid]
    if not chosen:
        errors.append("请至少选择一个参与会商的部门")
    if not _text(attendees):
        errors.append("请填写参会人员")
    if not _text(problem):
        errors.append("请写明会商研究的问题")
    if not _text(decisions):
        errors.append("请填写会商决定")
    filled = [a for a in actions if _text(a.responsible) or _text(a.content) or a.due_on]
    if not filled:
        errors.append("请至少写明一项分工：由谁、做什么、何时完成")
    for row, action in enumerate(filled, start=1):
        if not (_text(action.responsible) and _text(action.content) and action.due_on):
            errors.append(f"第{row}项分工须写明责任人、工作内容和完成期限")
        elif held_on is not None and action.due_on < held_on:
            errors.append(f"第{row}项分工的完成期限不能早于会商日期")
    if errors:
        raise InvalidInput("；".join(errors))
    conference = CaseConference(
        held_on=held_on,
        departments=chosen,
        attendees=_text(attendees),
        problem=_text(problem),
        decisions=_text(decisions),
        recorded_by_id=user_id,
    )
    case.conferences.append(conference)
    for action in filled:
        case.measures.append(
            CaseMeasure(
                content=_text(action.content),
                responsible=_text(action.responsible),
                due_on=action.due_on,
                source=MeasureSource.CONFERENCE.value,
                conference=conference,
            )
        )
    return conference


def add_service(
    case: Case,
    *,
    measure_id: int | None,
    delivered_on: dt.date | None,
    provider: str | None,
    content: str | None,
    outcome: str | None = None,
    duration_minutes: int | None = None,
    user_id: int | None,
    now: dt.datetime,
) -> CaseService:
    """服务记录: one delivery of one of the plan's measures."""
    _require_working(case, "记录服务")
    measure = next((m for m in case.measures if m.id == measure_id), None) if measure_id else None
    errors = []
    if measure is None:
        errors.append("请选择所落实的帮扶措施")
    try:
        delivered_on = _check_day(delivered_on, case, now.date(), "服务日期")
    except InvalidInput as bad:
        errors.append(str(bad))
    if not _text(provider):
        errors.append("请填写服务提供者")
    if not _text(content):
        errors.append("请写明服务内容")
    if duration_minutes is not None and not (0 < duration_minutes <= 24 * 60):
        errors.append("服务时长应在1至1440分钟之间")
    if errors:
        raise InvalidInput("；".join(errors))
    service = CaseService(
        delivered_on=delivered_on,
        provider=_text(provider)[:100],
        content=_text(content),
        outcome=_text(outcome) or None,
        duration_minutes=duration_minutes,
        recorded_by_id=user_id,
        recorded_at=now,
    )
    db.session.add(service)
    service.case = case
    service.measure = measure
    return service


def add_follow_up(
    case: Case,
    *,
    followed_on: dt.date | None,
    method: str | None,
    followed_by: str | None,
    change: str | None,
    user_id: int | None,
    now: dt.datetime,
) -> CaseFollowUp:
    """跟进记录: when, how, by whom and what changed; made in 介入 or 跟踪."""
    _require_working(case, "添加跟进记录")
    errors = []
    try:
        followed_on = _check_day(followed_on, case, now.date(), "跟进日期")
    except InvalidInput as bad:
        errors.append(str(bad))
    if method not in {m.value for m in FollowUpMethod}:
        errors.append("请选择跟进方式")
    if not _text(followed_by):
        errors.append("请填写跟进人")
    if not _text(change):
        errors.append("请写明儿童和家庭的变化情况")
    if errors:
        raise InvalidInput("；".join(errors))
    follow_up = CaseFollowUp(
        followed_on=followed_on,
        method=method,
        followed_by=_text(followed_by)[:100],
        change=_text(change),
        stage=case.stage,
        recorded_by_id=user_id,
        recorded_at=now,
    )
    db.session.add(follow_up)
    follow_up.case = case
    return follow_up


# --------------------------------------------------------------------------- reading


def professional_candidates(village_id: int, also: list[int] = ()) -> list[Staff]:
    """Who may be the case's “一对一” professional: active 社工, 督导员, 家庭教育专家 and 儿童主任 of
    the child's village or of the town, and the staff records in ``also`` (the person logged in,
    the current choice) whoever they are."""
    kinds = [k.value for k in PROFESSIONAL_KINDS]
    stmt = select(Staff).where(
        (
            Staff.active.is_(True)
            & Staff.kind.in_(kinds)
            & ((Staff.village_id == village_id) | Staff.village_id.is_(None))
        )
        | Staff.id.in_([i for i in also if i])
    )
    rank = {kind: n for n, kind in enumerate(kinds)}
    return sorted(
        db.session.scalars(stmt), key=lambda s: (rank.get(s.kind, 99), s.village_id is None, s.name)
    )


def load_case(case_id: int) -> Case | None:
    """A case with every record its page shows, in a fixed number of queries."""
    return db.session.scalar(
        select(Case)
        .where(Case.id == case_id)
        .options(
            selectinload(Case.events).joinedload(CaseEvent.user),
            selectinload(Case.conferences).selectinload(CaseConference.actions),
            selectinload(Case.measures).selectinload(CaseMeasure.services),
            selectinload(Case.services),
            selectinload(Case.follow_ups),
            selectinload(Case.needs).joinedload(CaseNeeds.assessment),
        )
    )


def source_alerts(case_id: int) -> list[Alert]:
    return list(db.session.scalars(select(Alert).where(Alert.case_id == case_id).order_by(Alert.id)))


# --------------------------------------------------------------------------- from alerts and reports


def open_case_from_alert(
    alert: Alert, case_type: str, *, user_id: int | None, now: dt.datetime, child_id: int | None = None
) -> Case:
    """转个案: open a case for the alert's child and link them; the alert moves to 处置中."""
    if alert.case_id:
        raise InvalidInput("该预警已转为个案")
    child_id = alert.child_id or child_id
    if not child_id:
        raise InvalidInput("该预警未关联儿童，请先在名册中登记或选择儿童后再转个案")
    case = open_case(
        child_id,
        case_type,
        opened_on=now.date(),
        user_id=user_id,
        now=now,
        note=f"由预警转入：{alert.title}",
        report_id=alert.report_id,
    )
    alert.case_id = case.id
    if alert.child_id is None:
        alert.child_id = child_id
    if alert.status == AlertStatus.OPEN:
        alert.status = AlertStatus.IN_PROGRESS.value
    db.session.add(AlertStep(alert_id=alert.id, at=now, user_id=user_id, note=f"转为个案（编号 {case.id}）"))
    return case


def board(village_ids, per_stage: int = 30, search: str | None = None) -> dict[str, dict]:
    """The case board: per stage the count and the cases waiting longest (closed: the latest) as plain rows.
    ``search``: only the cases of the children the register's search box finds (services/search.py)."""
    from services.scoping import scope
    from services.search import child_search_clause

    found = child_search_clause(search or "")

    # Scoped through the joined child (the same village clause), so no list of child ids is built.
    counts = dict(
        db.session.execute(
            scope(
                select(Case.stage, func.count())
                .join(Child, Child.id == Case.child_id)
                .where(found if found is not None else true())
                .group_by(Case.stage),
                Child,
                village_ids,
            )
        ).all()
    )
    columns = {}
    for stage in ORDER:
        order = Case.stage_changed_at.desc() if stage == S.CLOSED else Case.stage_changed_at
        rows = db.session.execute(
            scope(
                select(
                    Case.id,
                    Case.case_type,
                    Case.stage_changed_at,
                    Case.reported_to_bureau_on,
                    Case.professional_id,
                    Child.name,
                    Child.village_id,
                )
                .join(Child, Child.id == Case.child_id)
                .where(Case.stage == stage.value, found if found is not None else true())
                .order_by(order, Case.id)
                .limit(per_stage),
                Child,
                village_ids,
            )
        ).all()
        columns[stage.value] = {"stage": stage, "count": counts.get(stage.value, 0), "cases": rows}
    return columns


def open_case_from_report(
    report, case_type: str, note: str, *, user_id: int | None, now: dt.datetime
) -> Case:
    """强制报告 分流 转个案: the report's child gets a case opened today, linked to the report."""
    from services.alerts import triage_report

    if not report.child_id:
        raise InvalidInput("报告中的儿童尚未确认：请先在名册中登记并在报告中选择该儿童，再转个案")
    try:
        CaseType(case_type)
    except ValueError:
        raise InvalidInput("转个案时请选择个案类型（监护侵害/监护缺失/监护不当）") from None
    triage_report(report, "to_case", note, user_id=user_id, now=now)
    return open_case(
        report.child_id,
        case_type,
        opened_on=now.date(),
        user_id=user_id,
        now=now,
        note=f"由强制报告转入：{_text(note)}",
        report_id=report.id,
    )
