"""督查与整改 (work plan 五(三) 严格过程督导): inspections and the rectification of what they find.

An inspection (镇级督查 or 区级督导) records when, who, where (villages), which areas (评估, 走访, 个案,
活动, 资金) and how; each finding is a ``Rectification`` with an owner and a deadline, moving
待整改 → 整改中 → 已整改. Marking it 已整改 needs a note of what was done and at least one evidence
attachment; a manager other than the owner then signs it off (复核通过) or sends it back (退回, to
整改中). Not 已整改 by its deadline is 逾期. A fund-use finding (services/fund_checks.py) becomes a
rectification in one step, once.

Who does what: managers (services/permissions.RECTIFICATION_MANAGERS) record, assign and sign off;
the owner reports progress on their own. A rectification about a village belongs to that village
(scoping), and its owner must be able to see that village, so a 儿童主任 sees what they must fix.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from choices import AttachmentKind as K
from choices import (
    InspectionArea,
    InspectionLevel,
    InspectionMethod,
    RectificationSource,
    RectificationStatus,
    Role,
)
from models import Rectification, RectificationStep, User, Village, db, user_village
from services import attachments, clock
from services.permissions import RECTIFICATION_MANAGERS
from services.scoping import scope
from services.validation import InvalidInput

OPEN, IN_PROGRESS, DONE = (s.value for s in RectificationStatus)
FINDING_MAX = 2000
NOTE_MIN, NOTE_MAX = 2, 2000
# The deadline a fund-use finding's rectification gets when turned into one (the manager may change it).
FUND_FINDING_DAYS = 15
# Roles that may own a rectification: they can see it and report on it (finance sees no village rows).
OWNER_ROLES = (Role.ADMIN, Role.CLERK, Role.SUPERVISOR, Role.DIRECTOR, Role.SOCIAL)


# Attachments: an inspection's papers and photos; a rectification's evidence, uploaded by its owner
# (area "rectifications", which a village's 儿童主任 may write).
attachments.register_owner("inspection", "inspections", (K.INSPECTION_DOC, K.SCENE_PHOTO, K.OTHER))
attachments.register_owner("rectification", "rectifications", (K.EVIDENCE, K.OTHER))


def evidence(rect: Rectification) -> list:
    """The rectification's evidence attachments still kept (not deleted)."""
    return attachments.listed("rectification", [rect.id])


class StepAction:
    CREATE = "create"
    START = "start"
    PROGRESS = "progress"
    DONE = "done"
    SIGN_OFF = "sign_off"
    RETURN = "return"


STEP_LABELS = {
    StepAction.CREATE: "登记问题",
    StepAction.START: "开始整改",
    StepAction.PROGRESS: "整改进展",
    StepAction.DONE: "标记已整改",
    StepAction.SIGN_OFF: "复核通过",
    StepAction.RETURN: "复核退回",
}


# --------------------------------------------------------------------------- who may do what


def is_manager(role) -> bool:
    return role in {r.value for r in RECTIFICATION_MANAGERS}


def may_report(role, user_id: int | None, rect: Rectification) -> bool:
    """Start, note progress, mark 已整改: the owner, or a manager on the owner's behalf."""
    return is_manager(role) or (user_id is not None and rect.owner_id == user_id)


def may_sign_off(role, user_id: int | None, rect: Rectification) -> bool:
    """复核: a manager who is not the owner (nobody signs off their own work)."""
    return is_manager(role) and rect.owner_id != user_id


def owner_sees(owner: User, village_id: int | None) -> bool:
    """Whether the owner can see a rectification of this village (None: town-level)."""
    if owner.role not in {r.value for r in OWNER_ROLES} or not owner.active:
        return False
    villages = owner.village_scope()
    if villages is None:
        return True
    return village_id is not None and village_id in villages


def owner_candidates(village_id: int | None = None):
    """A query of the accounts that may own a rectification of this village (any village when None
    is not meant: pass the village; the town's roles are always candidates)."""
    roles = [r.value for r in OWNER_ROLES]
    query = db.session.query(User).filter(User.active.is_(True), User.role.in_(roles))
    if village_id is None:
        return query.order_by(User.role, User.username)
    assigned = select(user_village.c.user_id).where(user_village.c.village_id == village_id)
    return query.filter(
        or_(
            User.role.in_([Role.ADMIN.value, Role.CLERK.value, Role.SUPERVISOR.value]),
            (User.role == Role.DIRECTOR.value) & (User.village_id == village_id),
            (User.role == Role.SOCIAL.value) & User.id.in_(assigned),
        )
    ).order_by(User.role, User.username)


# --------------------------------------------------------------------------- checks


def check_inspection(inspection, today: dt.date) -> dict[str, str]:
    """Field → Chinese message for an inspection that cannot be saved as it is."""
    errors = {}
    if inspection.level not in {v.value for v in InspectionLevel}:
        errors["level"] = "请选择督查级别（镇级督查/区级督导）"
    if inspection.inspected_on is None:
        errors["inspected_on"] = "请填写督查日期"
    elif inspection.inspected_on > today:
        errors["inspected_on"] = "督查日期不能晚于今天"
    if not (inspection.inspectors or "").strip():
        errors["inspectors"] = "请填写督查人员"
    areas = inspection.areas or []
    if not areas:
        errors["areas"] = "请至少选择一个督查内容（评估、走访、个案、活动、资金）"
    elif any(a not in {v.value for v in InspectionArea} for a in areas):
        errors["areas"] = "督查内容无效"
    if any(m not in {v.value for v in InspectionMethod} for m in inspection.methods or []):
        errors["methods"] = "督查方式无效"
    return errors


def check_rectification(rect: Rectification) -> dict[str, str]:
    """Field → Chinese message for a rectification that cannot be saved as it is."""
    errors = {}
    finding = (rect.finding or "").strip()
    if not finding:
        errors["finding"] = "请填写发现的问题"
    elif len(finding) > FINDING_MAX:
        errors["finding"] = f"问题描述不能超过{FINDING_MAX}字"
    if rect.area not in {v.value for v in InspectionArea}:
        errors["area"] = "请选择问题所属方面"
    if rect.deadline is None:
        errors["deadline"] = "请填写整改期限"
    elif rect.found_on and rect.deadline < rect.found_on:
        errors["deadline"] = "整改期限不能早于发现问题的日期"
    owner = (
        rect.owner
        if rect.owner is not None
        else (db.session.get(User, rect.owner_id) if rect.owner_id else None)
    )
    if owner is None:
        errors["owner"] = "请选择整改责任人"
    elif not owner_sees(owner, rect.village_id):
        village = db.session.get(Village, rect.village_id) if rect.village_id else None
        where = f"“{village.name}”的" if village else "镇级"
        errors["owner"] = (
            f"责任人“{owner}”看不到{where}整改事项：请选择能查看该村（社区）的账号，或改选村（社区）"
        )
    return errors


def raise_first(errors: dict[str, str]) -> None:
    if errors:
        raise InvalidInput(next(iter(errors.values())))


# --------------------------------------------------------------------------- life cycle


def _note(text: str | None, what: str, required: bool = True) -> str | None:
    text = (text or "").strip()
    if not text and not required:
        return None
    if len(text) > NOTE_MAX:
        raise InvalidInput(f"{what}不能超过{NOTE_MAX}字")
    if required and len(text) < NOTE_MIN:
        raise InvalidInput(f"请填写{what}（至少{NOTE_MIN}个字）")
    return text


def _step(rect: Rectification, action: str, user_id: int | None, now: dt.datetime, note: str | None):
    rect.steps.append(RectificationStep(action=action, user_id=user_id, at=now, note=note))


def record_creation(rect: Rectification, user_id: int | None, now: dt.datetime) -> None:
    rect.status = rect.status or OPEN
    rect.created_by_id = user_id
    _step(rect, StepAction.CREATE, user_id, now, None)


def start(
    rect: Rectification, *, role, user_id: int | None, now: dt.datetime, note: str | None = None
) -> None:
    """待整改 → 整改中."""
    if not may_report(role, user_id, rect):
        raise InvalidInput("只有整改责任人或镇级管理人员可以更新整改进展")
    if rect.status != OPEN:
        raise InvalidInput(f"该问题当前为“{RectificationStatus.label_of(rect.status)}”，不能再开始整改")
    rect.status = IN_PROGRESS
    rect.started_at = now
    _step(rect, StepAction.START, user_id, now, _note(note, "整改措施", required=False))


def add_progress(rect: Rectification, note: str, *, role, user_id: int | None, now: dt.datetime) -> None:
    if not may_report(role, user_id, rect):
        raise InvalidInput("只有整改责任人或镇级管理人员可以更新整改进展")
    if rect.status == DONE:
        raise InvalidInput("该问题已整改，如需补充请先由复核人退回")
    text = _note(note, "整改进展")
    if rect.status == OPEN:
        rect.status = IN_PROGRESS
        rect.started_at = now
        _step(rect, StepAction.START, user_id, now, text)
    else:
        _step(rect, StepAction.PROGRESS, user_id, now, text)


def mark_done(
    rect: Rectification, note: str, *, evidence_count: int, role, user_id: int | None, now: dt.datetime
) -> None:
    """→ 已整改: what was done, and at least one evidence attachment (photo or scan)."""
    if not may_report(role, user_id, rect):
        raise InvalidInput("只有整改责任人或镇级管理人员可以标记已整改")
    if rect.status == DONE:
        raise InvalidInput("该问题已标记为已整改")
    text = _note(note, "整改情况说明")
    if evidence_count < 1:
        raise InvalidInput("请先上传至少一份整改佐证材料（照片或扫描件），再标记已整改")
    if rect.started_at is None:
        rect.started_at = now
    rect.status = DONE
    rect.completed_on = now.date()
    rect.completion_note = text
    rect.reviewed_by_id = rect.reviewed_at = rect.review_note = None
    _step(rect, StepAction.DONE, user_id, now, text)


def sign_off(
    rect: Rectification, *, role, user_id: int | None, now: dt.datetime, note: str | None = None
) -> None:
    """复核通过: the finding is fixed, as a manager other than the owner confirms."""
    if not is_manager(role):
        raise InvalidInput("只有镇级管理人员（经办人、督导员、管理员）可以复核")
    if rect.owner_id == user_id:
        raise InvalidInput("不能复核自己负责的整改事项，请由其他管理人员复核")
    if rect.status != DONE:
        raise InvalidInput("只有已整改的问题可以复核")
    if rect.reviewed_at is not None:
        raise InvalidInput("该问题已复核通过")
    rect.reviewed_by_id = user_id
    rect.reviewed_at = now
    rect.review_note = _note(note, "复核意见", required=False)
    _step(rect, StepAction.SIGN_OFF, user_id, now, rect.review_note)


def send_back(rect: Rectification, note: str, *, role, user_id: int | None, now: dt.datetime) -> None:
    """复核退回: not fixed yet; back to 整改中 (and 逾期 again when the deadline has passed)."""
    if not may_sign_off(role, user_id, rect):
        raise InvalidInput("只有责任人以外的镇级管理人员可以退回")
    if rect.status != DONE:
        raise InvalidInput("只有已整改的问题可以退回")
    text = _note(note, "退回原因")
    rect.status = IN_PROGRESS
    rect.completed_on = None
    rect.reviewed_by_id = rect.reviewed_at = None
    rect.review_note = text
    _step(rect, StepAction.RETURN, user_id, now, text)


def is_overdue(rect: Rectification, today: dt.date) -> bool:
    """逾期: not 已整改 and the deadline has passed (the deadline day itself is still in time)."""
    return rect.status != DONE and rect.deadline is not None and rect.deadline < today


def done_late(rect: Rectification) -> bool:
    return rect.status == DONE and rect.completed_on is not None and rect.completed_on > rect.deadline


def status_text(rect: Rectification, today: dt.date) -> str:
    """The status as the ledger and lists say it: 已整改（已复核）, 整改中（逾期） …"""
    label = RectificationStatus.label_of(rect.status)
    if rect.status == DONE:
        return f"{label}（{'已复核' if rect.reviewed_at else '待复核'}{'，逾期完成' if done_late(rect) else ''}）"
    if is_overdue(rect, today):
        return f"{label}（逾期{(today - rect.deadline).days}天）"
    return label


def overdue_clause(today: dt.date):
    return (Rectification.status != DONE) & (Rectification.deadline < today)


# --------------------------------------------------------------------------- fund-use findings


def fund_key(rect: Rectification) -> tuple[str, str, int] | None:
    if rect.fund_rule is None:
        return None
    return (rect.fund_rule, rect.fund_target, rect.fund_target_id)


def for_fund_findings(keys) -> dict[tuple, Rectification]:
    """Finding key → the rectification made of it, for the fund-check screen."""
    keys = set(keys)
    if not keys:
        return {}
    rows = db.session.scalars(select(Rectification).where(Rectification.fund_rule.is_not(None)))
    return {key: r for r in rows if (key := fund_key(r)) in keys}


def from_fund_finding(
    key: tuple[str, str, int],
    *,
    owner_id: int,
    user_id: int | None,
    now: dt.datetime,
    deadline: dt.date | None = None,
) -> tuple[Rectification, bool]:
    """A fund-use finding the checks find now, as a town-level rectification (area 资金), made once:
    a second request returns the one already made. (rectification, created); the caller commits."""
    from services import fund_checks

    existing = for_fund_findings([key]).get(key)
    if existing is not None:
        return existing, False
    finding = next((f for f in fund_checks.run_all() if f.key == key), None)
    if finding is None:
        raise InvalidInput("该资金使用问题已不存在（相关记录可能已更正），无需整改")
    owner = db.session.get(User, owner_id) if owner_id else None
    rect = Rectification(
        source=RectificationSource.FUND_CHECK.value,
        fund_rule=finding.rule,
        fund_target=finding.target,
        fund_target_id=finding.target_id,
        area=InspectionArea.FUNDS.value,
        village_id=None,
        finding=f"【资金使用检查·{finding.rule_label}】{finding.message}",
        requirement="核实情况，更正相关支出记录或补齐手续；整改后上传佐证材料。",
        found_on=now.date(),
        owner=owner,
        owner_id=owner_id,
        deadline=deadline or now.date() + dt.timedelta(days=FUND_FINDING_DAYS),
        status=OPEN,
    )
    raise_first(check_rectification(rect))
    record_creation(rect, user_id, now)
    db.session.add(rect)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:  # made a moment ago by someone else: the unique key says so
        return for_fund_findings([key])[key], False
    return rect, True


# --------------------------------------------------------------------------- lists and figures


@dataclass(frozen=True)
class Summary:
    total: int
    done: int
    signed_off: int
    overdue: int
    awaiting_review: int


def summary(village_ids, today: dt.date) -> Summary:
    """Counts over every rectification in scope, now (the 工作台's small print)."""
    stmt = scope(
        select(
            func.count(),
            func.count().filter(Rectification.status == DONE),
            func.count().filter(Rectification.reviewed_at.is_not(None)),
            func.count().filter(overdue_clause(today)),
            func.count().filter((Rectification.status == DONE) & Rectification.reviewed_at.is_(None)),
        ),
        Rectification,
        village_ids,
    )
    return Summary(*db.session.execute(stmt).one())


def overdue(village_ids, today: dt.date, limit: int = 8) -> list[Rectification]:
    stmt = scope(
        select(Rectification)
        .options(joinedload(Rectification.owner), joinedload(Rectification.village))
        .where(overdue_clause(today))
        .order_by(Rectification.deadline, Rectification.id)
        .limit(limit),
        Rectification,
        village_ids,
    )
    return list(db.session.scalars(stmt))


def awaiting_me(user_id: int, village_ids, limit: int = 8) -> list[Rectification]:
    """The user's own rectifications not yet 已整改, most urgent first."""
    stmt = scope(
        select(Rectification)
        .where(Rectification.owner_id == user_id, Rectification.status != DONE)
        .order_by(Rectification.deadline, Rectification.id)
        .limit(limit),
        Rectification,
        village_ids,
    )
    return list(db.session.scalars(stmt))


def ledger_rows(village_ids, start: dt.date, end: dt.date, today: dt.date | None = None):
    """The 督查与整改台账: every rectification found in the period, with its inspection, oldest first."""
    today = today or clock.today()
    stmt = scope(
        select(Rectification)
        .options(
            joinedload(Rectification.inspection),
            joinedload(Rectification.owner),
            joinedload(Rectification.village),
            joinedload(Rectification.reviewed_by),
        )
        .where(Rectification.found_on >= start, Rectification.found_on <= end)
        .order_by(Rectification.found_on, Rectification.id),
        Rectification,
        village_ids,
    )
    for rect in db.session.scalars(stmt):
        inspection = rect.inspection
        yield {
            "id": rect.id,
            "found_on": rect.found_on,
            "source": (
                InspectionLevel.label_of(inspection.level)
                if inspection is not None
                else RectificationSource.label_of(rect.source)
            ),
            "inspectors": inspection.inspectors if inspection is not None else "",
            "area": InspectionArea.label_of(rect.area),
            "village": rect.village.name if rect.village else "镇级",
            "finding": rect.finding,
            "requirement": rect.requirement or "",
            "owner": str(rect.owner) if rect.owner else "",
            "deadline": rect.deadline,
            "status": status_text(rect, today),
            "completed_on": rect.completed_on,
            "completion_note": rect.completion_note or "",
            "reviewed_by": str(rect.reviewed_by) if rect.reviewed_by else "",
            "reviewed_at": rect.reviewed_at,
            "overdue": is_overdue(rect, today),
        }


LEDGER_COLUMNS = (
    ("id", "编号"),
    ("found_on", "发现日期"),
    ("source", "来源"),
    ("inspectors", "督查人员"),
    ("area", "方面"),
    ("village", "村（社区）"),
    ("finding", "发现的问题"),
    ("requirement", "整改要求"),
    ("owner", "责任人"),
    ("deadline", "整改期限"),
    ("status", "状态"),
    ("completed_on", "完成日期"),
    ("completion_note", "整改情况"),
    ("reviewed_by", "复核人"),
    ("reviewed_at", "复核时间"),
)
