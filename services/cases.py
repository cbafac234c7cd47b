"""Cases (个案): the stage machine 识别 → 评估 → 介入 → 跟踪 → 结案 with its gates.

Stages move one step at a time; 跟踪 may go back to 介入; a closed case is reopened with a reason.
Entering 介入 needs the plan (goals, measures, responsible professional); 结案 needs at least one
跟踪 record since the case was last (re)opened and a closing evaluation. Every move is a CaseEvent.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, true

from choices import AlertStatus, CaseStage, CaseType, Department
from models import Alert, AlertStep, Case, CaseConference, CaseEvent, Child, db
from services.validation import InvalidInput

S = CaseStage
ORDER = [S.IDENTIFY, S.ASSESS, S.INTERVENE, S.TRACK, S.CLOSED]
ALLOWED_MOVES: dict[CaseStage, set[CaseStage]] = {
    S.IDENTIFY: {S.ASSESS},
    S.ASSESS: {S.INTERVENE},
    S.INTERVENE: {S.TRACK},
    S.TRACK: {S.INTERVENE, S.CLOSED},
    S.CLOSED: set(),
}
REOPEN_TO = S.INTERVENE


class EventKind:
    OPEN = "open"
    STAGE = "stage"
    TRACK = "track"
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


def open_case(
    child_id: int,
    case_type: str,
    *,
    opened_on: dt.date,
    user_id: int | None,
    now: dt.datetime,
    note: str | None = None,
    reported_to_bureau_on: dt.date | None = None,
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
    if target == S.INTERVENE:
        missing = plan_missing(case)
        if missing:
            raise InvalidInput("进入「介入」前须制定个性化帮扶方案，尚缺：" + "、".join(missing))
    if target == S.CLOSED:
        if track_count_since_opening(case) == 0:
            raise InvalidInput("结案前须至少有一条「跟踪」记录")
        if not (case.closing_evaluation or "").strip():
            raise InvalidInput("结案前须填写结案评估")


def plan_missing(case: Case) -> list[str]:
    missing = []
    if not (case.plan_goals or "").strip():
        missing.append("帮扶目标")
    if not (case.plan_measures or "").strip():
        missing.append("帮扶措施")
    if not case.professional_id:
        missing.append("“一对一”服务的负责专业人员")
    return missing


def track_count_since_opening(case: Case) -> int:
    """跟踪 records made after the case was last reopened (all of them if it never was)."""
    reopened = db.session.scalar(
        select(func.max(CaseEvent.at)).where(CaseEvent.case_id == case.id, CaseEvent.kind == EventKind.REOPEN)
    )
    query = select(func.count()).where(CaseEvent.case_id == case.id, CaseEvent.kind == EventKind.TRACK)
    if reopened is not None:
        query = query.where(CaseEvent.at >= reopened)
    return db.session.scalar(query) or 0


def move_stage(
    case: Case,
    to_stage,
    *,
    user_id: int | None,
    now: dt.datetime,
    note: str | None = None,
    closing_evaluation: str | None = None,
    closure_reason: str | None = None,
) -> CaseEvent:
    """Move the case one stage; refused moves raise InvalidInput with the Chinese reason."""
    target = _stage(to_stage)
    if target == S.CLOSED:
        if closing_evaluation is not None and closing_evaluation.strip():
            case.closing_evaluation = closing_evaluation.strip()
        if closure_reason is not None and closure_reason.strip():
            case.closure_reason = closure_reason.strip()
    check_move(case, target)
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
        note=(note or "").strip() or None,
    )
    case.events.append(event)
    return event


def reopen(case: Case, reason: str, *, user_id: int | None, now: dt.datetime) -> CaseEvent:
    if case.stage != S.CLOSED:
        raise InvalidInput("只有已结案的个案可以重新开启")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("重新开启须填写原因")
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
    return event


def add_track_record(case: Case, note: str, *, user_id: int | None, now: dt.datetime) -> CaseEvent:
    if case.stage != S.TRACK:
        raise InvalidInput("只有处于「跟踪」阶段的个案可以添加跟踪记录")
    note = (note or "").strip()
    if not note:
        raise InvalidInput("请填写跟踪情况")
    event = CaseEvent(at=now, user_id=user_id, kind=EventKind.TRACK, note=note)
    case.events.append(event)
    return event


def add_conference(
    case: Case,
    *,
    held_on: dt.date | None,
    departments: list[str],
    attendees: str | None,
    decisions: str | None,
    today: dt.date,
) -> CaseConference:
    if held_on is None:
        raise InvalidInput("请填写会商日期")
    if held_on > today:
        raise InvalidInput("会商日期不能晚于今天")
    valid = {d.value for d in Department}
    chosen = [d for d in departments if d in valid]
    if not chosen:
        raise InvalidInput("请至少选择一个参与会商的部门")
    if not (decisions or "").strip():
        raise InvalidInput("请填写会商决定")
    conference = CaseConference(
        held_on=held_on,
        departments=chosen,
        attendees=(attendees or "").strip() or None,
        decisions=decisions.strip(),
    )
    case.conferences.append(conference)
    return conference


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
        child_id, case_type, opened_on=now.date(), user_id=user_id, now=now, note=f"由预警转入：{alert.title}"
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
    """强制报告 分流 转个案: the report's child gets a case opened today."""
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
        note=f"由强制报告转入：{(note or '').strip()}",
    )
