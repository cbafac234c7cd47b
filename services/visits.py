"""Patrol visits (巡查走访): the checklist of 是/否 answers, the next visit date from the child's level,
and 发现风险 → an alert at once.

``record_visit`` is the one way a visit is created: the phone's form (sent at once or through the
offline queue, services/sync.py) and any other caller pass it the same ``VisitEntry`` and get the same
checks, scoping, audit and alert.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select

from choices import AlertSource, Severity, VisitKind
from models import Alert, Child, Staff, Visit, db
from services.alerts import UNASSESSED_VISIT_DAYS, raise_alert, visit_days_by_level
from services.scoping import scope
from services.validation import InvalidInput

FINDINGS = {
    "child_seen": "见到儿童本人",
    "guardian_present": "监护人在场",
    "living_ok": "居住生活条件正常",
    "school_ok": "正常上学",
    "harm_signs": "发现伤害迹象",
}
# Every check is answered 是 or 否 by the visitor; none has a default.
ANSWERS = {**FINDINGS, "risk_found": "发现风险"}
# A phone's clock may run a little ahead of the server's.
CLOCK_SKEW = dt.timedelta(minutes=10)
# A visit that reached the server this long after it was recorded was entered offline.
OFFLINE_AFTER = dt.timedelta(minutes=10)
NOTE_MAX = 2000


def next_due_after(visited_on: dt.date, level: str | None) -> dt.date:
    """The next visit: 7/15/30/90 days for red/orange/yellow/green (LevelRule when the town set it)."""
    days = visit_days_by_level().get(level, UNASSESSED_VISIT_DAYS)
    return visited_on + dt.timedelta(days=days)


def check_visit(visited_on: dt.date | None, today: dt.date) -> None:
    if visited_on is None:
        raise InvalidInput("请填写走访日期")
    if visited_on > today:
        raise InvalidInput("走访日期不能晚于今天")


def concerns(visit: Visit) -> list[str]:
    """The findings of the checklist that call for attention, in words."""
    found = []
    if visit.child_seen is False:
        found.append("未见到儿童本人")
    if visit.guardian_present is False:
        found.append("监护人不在场")
    if visit.living_ok is False:
        found.append("居住生活条件差")
    if visit.school_ok is False:
        found.append("未正常上学")
    if visit.harm_signs:
        found.append("发现伤害迹象")
    return found


def after_save(visit: Visit, *, now: dt.datetime) -> Alert | None:
    """Fill the next due date; when 发现风险 is answered 是, raise the visit's alert (once).

    The alert counts from the time the visit was recorded (``visit.recorded_at``), not from when it
    reached the server: a visit queued offline raises its alert on arrival with the deadline already
    running since the visit, marked 离线录入 with the delay.
    """
    child = visit.child or db.session.get(Child, visit.child_id)
    visit.next_due = next_due_after(visit.visited_on, child.current_level)
    if not visit.risk_found:
        return None
    db.session.flush()
    found = concerns(visit)
    detail = f"{visit.visited_on:%Y-%m-%d} 巡查走访发现风险" + (f"：{'、'.join(found)}" if found else "")
    if visit.risk_note:
        detail += f"。风险情况：{visit.risk_note.strip()[:300]}"
    if visit.notes:
        detail += f"。走访记录：{visit.notes.strip()[:300]}"
    found_at = visit.recorded_at or now
    title = "巡查发现风险"
    delay = offline_delay(visit)
    if delay is not None:
        title += "（离线录入）"
        detail += (
            f"。离线录入：走访记录于 {visit.recorded_at:%Y-%m-%d %H:%M}，"
            f"{visit.received_at:%Y-%m-%d %H:%M} 同步送达，延迟 {format_delay(delay)}；处置期限从走访时起算"
        )
    return raise_alert(
        source=AlertSource.PATROL.value,
        severity=Severity.RED.value if visit.harm_signs else Severity.ORANGE.value,
        village_id=child.village_id,
        child_id=child.id,
        title=title,
        detail=detail,
        condition_key=f"visit_risk:visit:{visit.id}",
        now=found_at,
    )


def offline_delay(visit: Visit) -> dt.timedelta | None:
    """How long a visit recorded offline took to reach the server; None for one sent at once (one the
    phone queued without a signal, or that arrived long after it was recorded, counts as offline)."""
    if visit.recorded_at is None or visit.received_at is None:
        return None
    delay = max(visit.received_at - visit.recorded_at, dt.timedelta(0))
    return delay if visit.offline or delay >= OFFLINE_AFTER else None


def format_delay(delay: dt.timedelta) -> str:
    minutes = int(delay.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days}天"] if days else []
    if hours:
        parts.append(f"{hours}小时")
    if minutes or not parts:
        parts.append(f"{minutes}分钟")
    return "".join(parts)


# --------------------------------------------------------------------------- recording a visit


class VisitRefused(InvalidInput):
    """A visit the checks refuse: one Chinese message per field (``errors``)."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("；".join(errors.values()))


@dataclass
class VisitEntry:
    """What a visitor entered, as plain values (from a form, or an item of the offline queue)."""

    child_id: int | None
    visited_on: dt.date | None
    kind: str | None
    answers: dict[str, bool | None] = field(default_factory=dict)
    risk_note: str = ""
    notes: str = ""
    visitor_ids: tuple[int, ...] = ()
    recorded_at: dt.datetime | None = None  # on the phone; None: now
    client_uuid: str | None = None
    offline: bool = False  # queued on the phone without a signal


def answer(value) -> bool | None:
    """是/否 as sent by a form or a phone: True, False, or None when it was not answered."""
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "").strip().lower()
    if text in {"1", "true", "yes", "y", "是"}:
        return True
    if text in {"0", "false", "no", "n", "否"}:
        return False
    return None


def check_answers(answers: dict, risk_note: str | None) -> dict[str, str]:
    """The checklist's rules: every 是/否 answered; 未见到儿童 or 伤害迹象 means 发现风险, with its reason."""
    errors = {}
    for name, label in ANSWERS.items():
        if answers.get(name) is None:
            errors[name] = f"请选择“{label}”：是 或 否"
    must_flag = answers.get("child_seen") is False or answers.get("harm_signs") is True
    if must_flag and answers.get("risk_found") is False:
        errors["risk_found"] = "未见到儿童本人或发现伤害迹象时，必须标记“发现风险”"
    if answers.get("risk_found") and not (risk_note or "").strip():
        errors["risk_note"] = "发现风险时请说明风险情况（看到了什么、儿童现在何处、已采取什么措施）"
    return errors


def check_entry(entry: VisitEntry, *, today: dt.date, now: dt.datetime) -> dict[str, str]:
    errors = {}
    if entry.child_id is None:
        errors["child"] = "请选择走访的儿童"
    try:
        check_visit(entry.visited_on, today)
    except InvalidInput as bad:
        errors["visited_on"] = str(bad)
    if entry.kind not in {k.value for k in VisitKind}:
        errors["kind"] = "请选择走访方式"
    errors.update(check_answers(entry.answers, entry.risk_note))
    for name, text in (("risk_note", entry.risk_note), ("notes", entry.notes)):
        if len(text or "") > NOTE_MAX:
            errors[name] = f"不能超过{NOTE_MAX}个字"
    if entry.recorded_at is not None:
        if entry.recorded_at > now + CLOCK_SKEW:
            errors["recorded_at"] = "记录时间晚于服务器当前时间，请检查手机的日期和时间设置"
        elif "visited_on" not in errors and entry.visited_on and entry.visited_on > entry.recorded_at.date():
            errors["visited_on"] = "走访日期不能晚于记录时间"
    return errors


def record_visit(
    entry: VisitEntry, *, village_ids, user_id: int | None, now: dt.datetime
) -> tuple[Visit, Alert | None]:
    """Check and write one visit of a child in ``village_ids`` (None: all); flushes, never commits.

    Raises VisitRefused (nothing written) with a message per field. ``now`` is when it reached the
    server; the visit keeps ``entry.recorded_at`` as the time it was recorded.
    """
    errors = check_entry(entry, today=now.date(), now=now)
    child = None
    if entry.child_id is not None:
        child = db.session.scalar(scope(select(Child).where(Child.id == entry.child_id), Child, village_ids))
        if child is None:
            errors["child"] = "该儿童不在您负责的村（社区），不能为其记录走访"
        elif child.archived_at is not None:
            errors["child"] = "该儿童已归档，不能再记录走访"
    visitors = []
    if entry.visitor_ids:
        visitors = db.session.scalars(
            scope(
                select(Staff).where(Staff.id.in_(entry.visitor_ids), Staff.active.is_(True)),
                Staff,
                village_ids,
            )
        ).all()
        if len(visitors) != len(set(entry.visitor_ids)):
            errors["visitors"] = "走访人员中有不在您负责范围内或已停用的人员"
    if errors:
        raise VisitRefused(errors)
    visit = Visit(
        child_id=child.id,
        child=child,
        visited_on=entry.visited_on,
        kind=entry.kind,
        visitors=list(visitors),
        risk_note=(entry.risk_note or "").strip() or None,
        notes=(entry.notes or "").strip() or None,
        recorded_by_id=user_id,
        recorded_at=entry.recorded_at or now,
        received_at=now,
        client_uuid=entry.client_uuid,
        offline=entry.offline,
        **{name: entry.answers[name] for name in ANSWERS},
    )
    db.session.add(visit)
    db.session.flush()
    return visit, after_save(visit, now=now)
