"""Patrol visits (巡查走访): the checklist of 是/否 answers, the child's next visit (下次走访), and
发现风险 → an alert at once.

``record_visits`` (``record_visit`` for one) is the one way a visit is created: the phone's form
(sent at once or through the offline queue, services/sync.py) and any other caller pass it the same
``VisitEntry`` and get the same checks, scoping, audit and alert.

下次走访 is counted from the latest contact with the child: its last visit, or its latest approved
assessment, whichever is later (a child never contacted: its registration date), plus the visit
interval of its level (red 7, orange 15, yellow 30, green 90 days, as frozen in the rule version the
level was assessed under; a child not yet assessed: 30 days).

``Child.next_visit_due`` holds it and is written only here, by a set-based recomputation after every
flush that touched a visit, an assessment or the child's level or registration date (registered with
services/derived.py), and by the bulk writes that bypass the ORM (the demo data), which call
``refresh`` themselves.
The alert rule 巡查走访逾期, the 工作台's 巡查按期率 and the reports read this one date, so they agree
by construction; services/indicators.py reconstructs the same date for a past day from the history.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import bindparam, func, inspect, select, update

from choices import AlertSource, AssessmentStatus, Severity, VisitKind
from models import Alert, Assessment, Child, LevelRule, RuleVersion, Staff, Visit, db
from seeds.rules import LEVEL_RULES
from services.derived import derive
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
# A child not yet assessed is visited as often as a yellow one until the first assessment.
UNASSESSED_VISIT_DAYS = 30
# Rule versions frozen before the intervals were part of them: the seeded defaults apply.
DEFAULT_VISIT_DAYS = {level.value: visit_days for level, (_, visit_days, _) in LEVEL_RULES.items()}
_CHUNK = 500

_child = Child.__table__


def visit_days_by_level() -> dict[str, int]:
    """The current rules' visit interval per level (等级与频次; the seeded defaults where unset): what
    the phone uses to move a child's 下次走访 when it records a visit offline."""
    days = dict(DEFAULT_VISIT_DAYS)
    for level, n in db.session.execute(select(LevelRule.level, LevelRule.visit_days)):
        if n:
            days[level] = n
    return days


_INTERVALS = "visit intervals of rule versions"


def visit_intervals(version_ids=None, connection=None) -> dict[tuple[int, str], int]:
    """{(rule version id, level): visit interval in days} as frozen in the rule versions.

    A version never changes once written, so the session keeps what it read of one (a queue of
    visits asked for the same version once per visit)."""
    if version_ids is not None and not version_ids:
        return {}
    known = db.session.info.setdefault(_INTERVALS, {}) if connection is None else None
    if known is not None and version_ids is not None and all(v in known for v in version_ids):
        return {key: days for v in version_ids for key, days in known[v].items()}
    stmt = select(RuleVersion.id, RuleVersion.snapshot)
    if version_ids is not None:
        stmt = stmt.where(RuleVersion.id.in_(list(version_ids)))
    intervals = {}
    for version_id, snapshot in (connection or db.session).execute(stmt):
        levels = (snapshot or {}).get("levels") or {}
        for level, default in DEFAULT_VISIT_DAYS.items():
            intervals[(version_id, level)] = (levels.get(level) or {}).get("visit_days") or default
    if known is not None and version_ids is not None:
        for v in version_ids:
            known[v] = {key: days for key, days in intervals.items() if key[0] == v}
    return intervals


def visit_days_of(child_ids) -> dict[int, int]:
    """{child id: the interval its 下次走访 is counted with}: the level of its latest approved assessment
    as frozen in that assessment's rule version (never assessed: 30 days), as ``refresh`` counts it.

    The phone adds it to a visit it records offline: the server's date after that visit is
    max(the stored date, visit date + this interval), so the phone's copy agrees with the listener.
    """
    intervals = None
    days = {}
    for ids in _chunks(sorted({i for i in child_ids if i is not None})):
        latest = (
            select(Child.id.label("child_id"), latest_approved_id().label("assessment_id"))
            .where(Child.id.in_(ids))
            .offset(0)  # computed once per child
            .subquery()
        )
        rows = db.session.execute(
            select(latest.c.child_id, Assessment.level, Assessment.rule_version_id).outerjoin(
                Assessment, Assessment.id == latest.c.assessment_id
            )
        ).all()
        if intervals is None:
            intervals = visit_intervals()
        for child_id, level, version_id in rows:
            days[child_id] = interval_of(intervals, version_id, level)
    return days


def interval_of(intervals: dict, version_id: int | None, level: str | None) -> int:
    if level is None:
        return UNASSESSED_VISIT_DAYS
    return intervals.get((version_id, level)) or DEFAULT_VISIT_DAYS.get(level, UNASSESSED_VISIT_DAYS)


def latest_approved_id(day: dt.date | None = None):
    """Correlated scalar: the id of the outer Child's latest approved assessment (on or before ``day``)."""
    stmt = select(Assessment.id).where(
        Assessment.child_id == Child.id, Assessment.status == AssessmentStatus.APPROVED.value
    )
    if day is not None:
        stmt = stmt.where(Assessment.assessed_on <= day)
    return (
        stmt.order_by(Assessment.assessed_on.desc(), Assessment.id.desc())
        .limit(1)
        .correlate(Child)
        .scalar_subquery()
    )


def last_visit_on(day: dt.date | None = None):
    """Correlated scalar: the outer Child's latest visit date (on or before ``day``), from ix_visit_child_date."""
    stmt = select(func.max(Visit.visited_on)).where(Visit.child_id == Child.id)
    if day is not None:
        stmt = stmt.where(Visit.visited_on <= day)
    return stmt.correlate(Child).scalar_subquery()


def next_visit_due(registered_on, last_visit, assessed_on, level, version_id, intervals) -> dt.date:
    contact = max(d for d in (registered_on, last_visit, assessed_on) if d is not None)
    return contact + dt.timedelta(days=interval_of(intervals, version_id, level))


def _contacts(connection, ids):
    """(child id, stored due, registered on, last visit, latest approved assessment's date, level, version)."""
    latest = select(Child.id.label("child_id"), latest_approved_id().label("assessment_id"))
    if ids is not None:
        latest = latest.where(Child.id.in_(ids))
    latest = latest.offset(0).subquery()  # computed once per child
    stmt = (
        select(
            Child.id,
            Child.next_visit_due,
            Child.registered_on,
            last_visit_on(),
            Assessment.assessed_on,
            Assessment.level,
            Assessment.rule_version_id,
        )
        .join(latest, latest.c.child_id == Child.id)
        .outerjoin(Assessment, Assessment.id == latest.c.assessment_id)
    )
    return connection.execute(stmt).all()


def refresh(connection, child_ids=None) -> int:
    """Recompute 下次走访 for these children (all when None); only changed rows are written.

    Not an ORM update: the date is derived, so it neither bumps the child's version nor enters the
    audit log (as the 建档 flag, services/filing.py). Returns the number of rows changed.
    """
    chunks = [None] if child_ids is None else _chunks(sorted({i for i in child_ids if i is not None}))
    intervals = None
    changed = 0
    write = update(_child).where(_child.c.id == bindparam("cid")).values(next_visit_due=bindparam("due"))
    for ids in chunks:
        rows = _contacts(connection, ids)
        if intervals is None:
            intervals = visit_intervals(connection=connection)
        fresh = []
        for cid, stored, registered_on, last_visit, assessed_on, level, version_id in rows:
            if registered_on is None:
                continue  # written before its registration date is filled (same flush)
            due = next_visit_due(registered_on, last_visit, assessed_on, level, version_id, intervals)
            if due != stored:
                fresh.append({"cid": cid, "due": due})
        for start in range(0, len(fresh), 5000):
            connection.execute(write, fresh[start : start + 5000])
        changed += len(fresh)
    return changed


def _chunks(ids):
    return [ids[start : start + _CHUNK] for start in range(0, len(ids), _CHUNK)]


def stale_children(connection) -> list[int]:
    """Ids of children whose 下次走访 disagrees with their visits and assessments (empty when all is well)."""
    intervals = visit_intervals(connection=connection)
    return [
        cid
        for cid, stored, registered_on, last_visit, assessed_on, level, version_id in _contacts(
            connection, None
        )
        if stored != next_visit_due(registered_on, last_visit, assessed_on, level, version_id, intervals)
    ]


_CHILD_FIELDS = ("registered_on", "current_level", "level_assessed_on")


def _touched_children(session) -> set[int]:
    ids: set[int] = set()
    for obj in session.new | session.dirty | session.deleted:
        if isinstance(obj, Visit) and obj in session.dirty and obj not in session.deleted:
            state = inspect(obj)
            if not any(state.attrs[name].history.has_changes() for name in ("child_id", "visited_on")):
                continue  # e.g. its own next_due filled in: the child's contacts are unchanged
        if isinstance(obj, Visit | Assessment):
            ids.add(obj.child_id)
            ids.update(inspect(obj).attrs.child_id.history.deleted or ())  # moved to another child
        elif isinstance(obj, Child):
            state = inspect(obj)
            if obj in session.new or any(state.attrs[name].history.has_changes() for name in _CHILD_FIELDS):
                ids.add(obj.id)
    return ids


derive("next_visit_due", _touched_children, refresh)


# --------------------------------------------------------------------------- the visit form


def next_due_after(visit: Visit, child: Child) -> dt.date:
    """The next visit this visit sets: its date plus the interval of the child's level then."""
    return next_dues([(child.id, visit.visited_on)])[0]


def next_dues(visits: list[tuple[int, dt.date]]) -> list[dt.date]:
    """The next visit each (child id, visit date) sets: the date plus the interval of the child's level
    then — its latest approved assessment on or before the visit, in that assessment's rule version
    (never assessed: 30 days). One query for all of them."""
    history: dict[int, list] = {}
    for ids in _chunks(sorted({child_id for child_id, _ in visits})):
        rows = db.session.execute(
            select(Assessment.child_id, Assessment.assessed_on, Assessment.level, Assessment.rule_version_id)
            .where(Assessment.child_id.in_(ids), Assessment.status == AssessmentStatus.APPROVED.value)
            .order_by(Assessment.child_id, Assessment.assessed_on.desc(), Assessment.id.desc())
        )
        for row in rows:
            history.setdefault(row.child_id, []).append(row)
    versions = sorted(
        {row.rule_version_id for rows in history.values() for row in rows if row.rule_version_id}
    )
    intervals = visit_intervals(versions)
    dues = []
    for child_id, visited_on in visits:
        latest = next((row for row in history.get(child_id, ()) if row.assessed_on <= visited_on), None)
        level, version_id = (latest.level, latest.rule_version_id) if latest else (None, None)
        dues.append(visited_on + dt.timedelta(days=interval_of(intervals, version_id, level)))
    return dues


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


def after_save(
    visit: Visit,
    *,
    now: dt.datetime,
    rules: bool = True,
    next_due_set: bool = False,
    flush_alert: bool = True,
) -> Alert | None:
    """Fill the visit's next due date; when 发现风险 is answered 是, raise the visit's alert (once); then
    run the alert rules for the child at once (``rules`` False: the caller runs them once for a batch,
    as the offline sync does). The child's 下次走访 moves with the flush (services/derived.py).

    The alert counts from the time the visit was recorded (``visit.recorded_at``), not from when it
    reached the server: a visit queued offline raises its alert on arrival with the deadline already
    running since the visit, marked 离线录入 with the delay. ``flush_alert`` False: the alert is
    written by the caller's next flush (see services/alerts.raise_alert).
    """
    from services.alerts import raise_alert, run_rules_for_children

    child = visit.child or db.session.get(Child, visit.child_id)
    if not next_due_set:  # record_visit wrote it with the row
        visit.next_due = next_due_after(visit, child)
    if not visit.risk_found:
        if rules:
            run_rules_for_children([child.id], now.date(), now)  # a visit-overdue alert clears now
        return None
    if visit.id is None:
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
    alert = raise_alert(
        source=AlertSource.PATROL.value,
        severity=Severity.RED.value if visit.harm_signs else Severity.ORANGE.value,
        village_id=child.village_id,
        child_id=child.id,
        title=title,
        detail=detail,
        condition_key=f"visit_risk:visit:{visit.id}",
        now=found_at,
        flush=flush_alert,
    )
    if rules:
        run_rules_for_children([child.id], now.date(), now)
    return alert


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


@dataclass
class Recorded:
    """One entry of ``record_visits``: its visit and alert, or why it was refused (nothing written)."""

    visit: Visit | None = None
    alert: Alert | None = None
    errors: dict[str, str] = field(default_factory=dict)


def record_visit(
    entry: VisitEntry, *, village_ids, user_id: int | None, now: dt.datetime, rules: bool = True
) -> tuple[Visit, Alert | None]:
    """Check and write one visit (see ``record_visits``); raises VisitRefused (nothing written)."""
    [done] = record_visits([entry], village_ids=village_ids, user_id=user_id, now=now, rules=rules)
    if done.errors:
        raise VisitRefused(done.errors)
    return done.visit, done.alert


def record_visits(
    entries: list[VisitEntry], *, village_ids, user_id: int | None, now: dt.datetime, rules: bool = True
) -> list[Recorded]:
    """Check and write visits of children in ``village_ids`` (None: all); flushes, never commits.

    Each entry is checked on its own and a refused one writes nothing (its ``errors``: a message per
    field); the others are written together — one query for their children, one for their visitors,
    one for their assessments, one flush — so a queue of 200 costs little more than one visit. ``now``
    is when they reached the server; a visit keeps ``entry.recorded_at`` as the time it was recorded.
    The visits are flushed (their ids are known); their alerts are written by the caller's next flush.
    ``rules`` False: the caller runs the alert rules of the children itself.
    """
    done = [Recorded(errors=check_entry(entry, today=now.date(), now=now)) for entry in entries]
    children: dict[int, Child] = {}
    for ids in _chunks(sorted({e.child_id for e in entries if e.child_id is not None})):
        for child in db.session.scalars(scope(select(Child).where(Child.id.in_(ids)), Child, village_ids)):
            children[child.id] = child
    staff: dict[int, Staff] = {}
    for ids in _chunks(sorted({i for e in entries for i in e.visitor_ids})):
        stmt = select(Staff).where(Staff.id.in_(ids), Staff.active.is_(True))
        for person in db.session.scalars(scope(stmt, Staff, village_ids)):
            staff[person.id] = person
    for entry, result in zip(entries, done, strict=True):
        if entry.child_id is not None:
            child = children.get(entry.child_id)
            if child is None:
                result.errors["child"] = "该儿童不在您负责的村（社区），不能为其记录走访"
            elif child.archived_at is not None:
                result.errors["child"] = "该儿童已归档，不能再记录走访"
        if any(i not in staff for i in entry.visitor_ids):
            result.errors["visitors"] = "走访人员中有不在您负责范围内或已停用的人员"
    taken = [(entry, result) for entry, result in zip(entries, done, strict=True) if not result.errors]
    if not taken:
        return done
    # each visit is written with its 下次走访 (filled in after the insert, it was a second write of the
    # row and of its audit entry); no_autoflush: a visit may be in the session already, through its child
    with db.session.no_autoflush:
        dues = next_dues([(entry.child_id, entry.visited_on) for entry, _ in taken])
        for (entry, result), due in zip(taken, dues, strict=True):
            child = children[entry.child_id]
            result.visit = Visit(
                child_id=child.id,
                child=child,
                visited_on=entry.visited_on,
                kind=entry.kind,
                visitors=[staff[i] for i in dict.fromkeys(entry.visitor_ids)],
                risk_note=(entry.risk_note or "").strip() or None,
                notes=(entry.notes or "").strip() or None,
                recorded_by_id=user_id,
                recorded_at=entry.recorded_at or now,
                received_at=now,
                client_uuid=entry.client_uuid,
                offline=entry.offline,
                next_due=due,
                **{name: entry.answers[name] for name in ANSWERS},
            )
            db.session.add(result.visit)
    db.session.flush()
    with db.session.no_autoflush:  # the alerts are written together by the caller's next flush
        for _, result in taken:
            result.alert = after_save(
                result.visit, now=now, rules=False, next_due_set=True, flush_alert=False
            )
    if rules:
        from services.alerts import run_rules_for_children

        run_rules_for_children(sorted({entry.child_id for entry, _ in taken}), now.date(), now)
    return done


__all__ = [
    "visit_days_by_level",
    "visit_days_of",
    "ANSWERS",
    "VisitEntry",
    "VisitRefused",
    "answer",
    "check_answers",
    "check_entry",
    "format_delay",
    "offline_delay",
    "record_visit",
    "record_visits",
    "Recorded",
    "next_dues",
    "UNASSESSED_VISIT_DAYS",
    "after_save",
    "check_visit",
    "concerns",
    "interval_of",
    "last_visit_on",
    "latest_approved_id",
    "next_due_after",
    "refresh",
    "stale_children",
    "visit_intervals",
]
