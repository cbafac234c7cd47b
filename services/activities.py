"""Rules around activities: checks of an activity, 爱心妈妈 pairings, training hours, participation."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select

from choices import ActivityKind, Audience, ChildStatus, Level, ServiceKind, ServiceStatus, StaffKind
from models import Activity, Attendance, Child, MentorPairing, Staff, SupportService
from services.periods import period_error
from services.scoping import scope_clause
from services.validation import InvalidInput

# The work plan's places, offered as suggestions in the activity form.
PLACE_SUGGESTIONS = (
    "二路红军微长征步道",
    "四川二路红军纪念碑",
    "罗云镇新时代文明实践所",
    "村（社区）儿童之家",
)
# Staff who must be trained in the start-up phase (work plan 四).
TRAINED_KINDS = (StaffKind.DIRECTOR, StaffKind.SOCIAL, StaffKind.GRID, StaffKind.VOLUNTEER)
# Children who need an 爱心妈妈 most.
PAIRING_LEVELS = (Level.ORANGE.value, Level.RED.value)


def check_activity(
    starts_at: dt.datetime | None,
    ends_at: dt.datetime | None,
    audience: list[str] | None,
    capacity: int | None,
    budget: Decimal | None,
    kind: str | None = None,
    *,
    staff_kinds: list[str] | None = None,
) -> dict[str, str]:
    """Field → Chinese message for what is wrong with an activity's form."""
    errors = {}
    if staff_kinds:
        if any(k not in {m.value for m in StaffKind} for k in staff_kinds):
            errors["staff_kinds"] = "工作人员类别无效"
        elif Audience.STAFF.value not in (audience or []):
            errors["staff_kinds"] = "选择了工作人员类别时，参与对象须包含“工作人员”"
    if kind == ActivityKind.TRAINING.value and starts_at and not ends_at:
        errors["ends_at"] = "业务培训须填写结束时间（按起止时间计算培训学时）"
    period = period_error(starts_at, ends_at, "开始时间", "结束时间")
    if period:
        errors["ends_at"] = period
    elif starts_at and ends_at and ends_at - starts_at > dt.timedelta(days=31):
        errors["ends_at"] = "活动时长超过31天，请核对结束时间"
    if not audience:
        errors["audience"] = "请至少选择一类参与对象（儿童/家长/工作人员）"
    elif any(a not in {m.value for m in Audience} for a in audience):
        errors["audience"] = "参与对象无效"
    if capacity is not None and capacity < 0:
        errors["capacity"] = "人数上限不能为负数"
    if budget is not None and budget < 0:
        errors["budget"] = "预算不能为负数"
    return errors


def copy_of(source: Activity, day: dt.date) -> Activity:
    """复制上次活动: a new, unsaved activity like ``source`` (kind, title, place, organiser, audience,
    villages, lecturers, capacity, budget, content) on ``day`` at the same hours."""
    starts = dt.datetime.combine(day, source.starts_at.time())
    ends = starts + (source.ends_at - source.starts_at) if source.ends_at else None
    return Activity(
        kind=source.kind,
        title=source.title,
        starts_at=starts,
        ends_at=ends,
        place=source.place,
        organiser=source.organiser,
        audience=list(source.audience or []),
        villages=list(source.villages),
        lecturers=list(source.lecturers),
        capacity=source.capacity,
        budget=source.budget,
        description=source.description,
    )


def duration_hours(starts_at: dt.datetime | None, ends_at: dt.datetime | None) -> Decimal:
    """An activity's length in hours (one decimal); no end time counts as no hours."""
    if not starts_at or not ends_at or ends_at <= starts_at:
        return Decimal("0")
    seconds = Decimal(int((ends_at - starts_at).total_seconds()))
    return (seconds / Decimal(3600)).quantize(Decimal("0.1"))


# --------------------------------------------------------------------------- training


@dataclass
class TrainingRow:
    staff: Staff
    sessions: int
    hours: Decimal


def _year_bounds(year: int) -> tuple[dt.datetime, dt.datetime]:
    return dt.datetime(year, 1, 1), dt.datetime(year + 1, 1, 1)


def training_hours(session, year: int, village_ids=None) -> list[TrainingRow]:
    """Per staff member: 业务培训 sessions attended in ``year`` and their hours, most hours first."""
    start, end = _year_bounds(year)
    stmt = (
        select(Staff, Activity.starts_at, Activity.ends_at)
        .join(Attendance, Attendance.staff_id == Staff.id)
        .join(Activity, Activity.id == Attendance.activity_id)
        .where(
            Activity.kind == ActivityKind.TRAINING.value,
            Activity.starts_at >= start,
            Activity.starts_at < end,
        )
    )
    limit = scope_clause(Staff, village_ids)
    if limit is not None:
        stmt = stmt.where(limit)
    rows: dict[int, TrainingRow] = {}
    for staff, starts_at, ends_at in session.execute(stmt):
        row = rows.setdefault(staff.id, TrainingRow(staff, 0, Decimal("0")))
        row.sessions += 1
        row.hours += duration_hours(starts_at, ends_at)
    return sorted(rows.values(), key=lambda r: (-r.hours, r.staff.id))


def untrained_staff(session, year: int, village_ids=None) -> list[Staff]:
    """Active 儿童主任, 社工, 网格员 and 志愿者 who attended no 业务培训 in ``year``."""
    start, end = _year_bounds(year)
    trained = (
        select(Attendance.staff_id)
        .join(Activity, Activity.id == Attendance.activity_id)
        .where(
            Attendance.staff_id.is_not(None),
            Activity.kind == ActivityKind.TRAINING.value,
            Activity.starts_at >= start,
            Activity.starts_at < end,
        )
    )
    stmt = (
        select(Staff)
        .where(
            Staff.active.is_(True),
            Staff.kind.in_([k.value for k in TRAINED_KINDS]),
            Staff.id.not_in(trained),
        )
        .order_by(Staff.kind, Staff.village_id, Staff.id)
    )
    limit = scope_clause(Staff, village_ids)
    if limit is not None:
        stmt = stmt.where(limit)
    return list(session.scalars(stmt))


# --------------------------------------------------------------------------- 爱心妈妈


def active_pairing_clause(today: dt.date):
    return (MentorPairing.start_on <= today) & (
        MentorPairing.end_on.is_(None) | (MentorPairing.end_on >= today)
    )


def check_pairing(
    session,
    *,
    staff: Staff | None,
    child: Child | None,
    start_on: dt.date | None,
    end_on: dt.date | None,
    pairing_id: int | None = None,
) -> dict[str, str]:
    """Field → Chinese message for a pairing form."""
    errors = {}
    if staff is None:
        errors["staff"] = "请选择爱心妈妈"
    elif staff.kind != StaffKind.CARING_MOTHER.value:
        errors["staff"] = f"{staff.name}不是爱心妈妈（类型：{StaffKind.label_of(staff.kind)}）"
    elif not staff.active:
        errors["staff"] = f"{staff.name}已不在岗"
    if child is None:
        errors["child"] = "请选择儿童"
    period = period_error(start_on, end_on, "结对开始", "结对结束")
    if period:
        errors["end_on"] = period
    if child is not None and start_on and "end_on" not in errors:
        overlap = select(MentorPairing.id).where(
            MentorPairing.child_id == child.id,
            MentorPairing.id != (pairing_id or 0),
            MentorPairing.end_on.is_(None) | (MentorPairing.end_on >= start_on),
        )
        if end_on:
            overlap = overlap.where(MentorPairing.start_on <= end_on)
        if session.scalar(overlap.limit(1)):
            errors["child"] = f"{child.name}在该期间已有结对的爱心妈妈，请先结束原结对"
    return errors


def unpaired_children(session, today: dt.date, village_ids=None) -> list[Child]:
    """Orange and red children on the register with no active 爱心妈妈 pairing today."""
    paired = select(MentorPairing.child_id).where(active_pairing_clause(today))
    stmt = (
        select(Child)
        .where(
            Child.archived_at.is_(None),
            Child.status == ChildStatus.ACTIVE.value,
            Child.current_level.in_(PAIRING_LEVELS),
            Child.id.not_in(paired),
        )
        .order_by(Child.current_level.desc(), Child.village_id, Child.id)
    )
    limit = scope_clause(Child, village_ids)
    if limit is not None:
        stmt = stmt.where(limit)
    # "red" sorts after "orange": list the red children first.
    return sorted(
        session.scalars(stmt), key=lambda c: (c.current_level != Level.RED.value, c.village_id, c.id)
    )


def record_session(
    session,
    pairing: MentorPairing,
    *,
    delivered_on: dt.date | None,
    duration_minutes: int | None,
    content: str,
    outcome: str | None = None,
) -> SupportService:
    """A one-on-one 爱心妈妈 session, kept as a support service of the child."""
    if delivered_on is None:
        raise InvalidInput("请填写帮扶日期")
    if delivered_on < pairing.start_on or (pairing.end_on and delivered_on > pairing.end_on):
        raise InvalidInput("帮扶日期不在结对期间内")
    if duration_minutes is not None and not 0 < duration_minutes <= 24 * 60:
        raise InvalidInput("时长应在1至1440分钟之间")
    if not (content or "").strip():
        raise InvalidInput("请填写帮扶内容")
    service = SupportService(
        child_id=pairing.child_id,
        kind=ServiceKind.CARING_MOTHER.value,
        status=ServiceStatus.DELIVERED.value,
        delivered_on=delivered_on,
        provider_id=pairing.staff_id,
        duration_minutes=duration_minutes,
        content=content.strip(),
        outcome=(outcome or "").strip() or None,
    )
    session.add(service)
    return service


def pairing_sessions(session, pairing: MentorPairing) -> list[SupportService]:
    stmt = (
        select(SupportService)
        .where(
            SupportService.child_id == pairing.child_id,
            SupportService.provider_id == pairing.staff_id,
            SupportService.kind == ServiceKind.CARING_MOTHER.value,
        )
        .order_by(SupportService.delivered_on.desc(), SupportService.id.desc())
    )
    return list(session.scalars(stmt))


# --------------------------------------------------------------------------- participation


@dataclass
class Participation:
    activity: Activity
    signed_at: dt.datetime
    hours: Decimal


def participation(session, *, child_id=None, guardian_id=None, staff_id=None) -> list[Participation]:
    """The activities one person attended, newest first."""
    column, value = next(
        (c, v)
        for c, v in (
            (Attendance.child_id, child_id),
            (Attendance.guardian_id, guardian_id),
            (Attendance.staff_id, staff_id),
        )
        if v is not None
    )
    stmt = (
        select(Activity, Attendance.signed_at)
        .join(Attendance, Attendance.activity_id == Activity.id)
        .where(column == value)
        .order_by(Activity.starts_at.desc())
    )
    return [
        Participation(a, signed, duration_hours(a.starts_at, a.ends_at))
        for a, signed in session.execute(stmt)
    ]


def attendance_counts(session, activity_ids) -> dict[int, int]:
    if not activity_ids:
        return {}
    stmt = (
        select(Attendance.activity_id, func.count())
        .where(Attendance.activity_id.in_(list(activity_ids)))
        .group_by(Attendance.activity_id)
    )
    return dict(session.execute(stmt).all())
