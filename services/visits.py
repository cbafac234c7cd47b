"""Patrol visits (巡查走访): the next visit date from the child's level, and 发现风险 → an alert at once."""

from __future__ import annotations

import datetime as dt

from choices import AlertSource, Severity
from models import Alert, Child, Visit, db
from services.alerts import UNASSESSED_VISIT_DAYS, raise_alert, run_rules_for_children, visit_days_by_level
from services.validation import InvalidInput

FINDINGS = {
    "child_seen": "见到儿童本人",
    "guardian_present": "监护人在场",
    "living_ok": "居住生活条件正常",
    "school_ok": "正常上学",
    "harm_signs": "发现伤害迹象",
}


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
    if not visit.child_seen:
        found.append("未见到儿童本人")
    if not visit.guardian_present:
        found.append("监护人不在场")
    if not visit.living_ok:
        found.append("居住生活条件差")
    if not visit.school_ok:
        found.append("未正常上学")
    if visit.harm_signs:
        found.append("发现伤害迹象")
    return found


def after_save(visit: Visit, *, now: dt.datetime) -> Alert | None:
    """Fill the next due date; when 发现风险 is ticked, raise the visit's alert (once); then run the
    alert rules for the child at once."""
    child = visit.child or db.session.get(Child, visit.child_id)
    visit.next_due = next_due_after(visit.visited_on, child.current_level)
    if not visit.risk_found:
        run_rules_for_children([child.id], now.date(), now)  # a visit-overdue alert clears now
        return None
    db.session.flush()
    found = concerns(visit)
    detail = f"{visit.visited_on:%Y-%m-%d} 巡查走访发现风险" + (f"：{'、'.join(found)}" if found else "")
    if visit.notes:
        detail += f"。走访记录：{visit.notes.strip()[:300]}"
    alert = raise_alert(
        source=AlertSource.PATROL.value,
        severity=Severity.RED.value if visit.harm_signs else Severity.ORANGE.value,
        village_id=child.village_id,
        child_id=child.id,
        title="巡查发现风险",
        detail=detail,
        condition_key=f"visit_risk:visit:{visit.id}",
        now=now,
    )
    run_rules_for_children([child.id], now.date(), now)
    return alert
