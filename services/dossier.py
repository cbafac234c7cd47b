"""一人一档: everything recorded about one child, read in a handful of queries (no N+1).

``load_dossier`` returns None when the child does not exist or lies outside ``village_ids``;
the caller then answers "记录不存在". Every section is a plain list, empty when an area has no data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from choices import AlertStatus, AssessmentStatus, CaseStage, ExpenseStatus, ServiceStatus
from models import (
    Alert,
    Assessment,
    Attendance,
    Case,
    Child,
    ChildGuardian,
    Expense,
    MandatoryReport,
    MentorPairing,
    SupportService,
    Visit,
    db,
)
from services.scoping import scope

# The order cases move through; the dossier draws each case's path along it.
CASE_PATH = [CaseStage.IDENTIFY, CaseStage.ASSESS, CaseStage.INTERVENE, CaseStage.TRACK, CaseStage.CLOSED]


@dataclass
class LevelPoint:
    """One point of the level history: an approved assessment."""

    on: dt.date
    level: str
    total_score: int
    worsened: bool
    overridden: bool
    assessment_id: int


@dataclass
class Dossier:
    child: Child
    guardian_links: list = field(default_factory=list)
    assessments: list = field(default_factory=list)
    level_history: list[LevelPoint] = field(default_factory=list)
    services: list = field(default_factory=list)
    visits: list = field(default_factory=list)
    reports: list = field(default_factory=list)
    alerts: list = field(default_factory=list)
    cases: list = field(default_factory=list)
    attendance: list = field(default_factory=list)
    pairings: list = field(default_factory=list)
    expenses: list = field(default_factory=list)
    today: dt.date | None = None

    @property
    def expense_total(self) -> Decimal:
        """Money spent on the child: approved or paid expenses (drafts are not yet spending)."""
        return sum(
            (e.amount or Decimal("0") for e in self.expenses if e.status != ExpenseStatus.DRAFT.value),
            Decimal("0"),
        )

    @property
    def services_delivered(self) -> int:
        return sum(1 for s in self.services if s.status == ServiceStatus.DELIVERED.value)

    @property
    def services_planned(self) -> int:
        return sum(1 for s in self.services if s.status == ServiceStatus.PLANNED.value)

    @property
    def open_alerts(self) -> int:
        return sum(1 for a in self.alerts if a.status != AlertStatus.DONE.value)

    @property
    def record_count(self) -> int:
        return sum(
            len(items)
            for items in (
                self.assessments,
                self.services,
                self.visits,
                self.reports,
                self.alerts,
                self.cases,
                self.attendance,
                self.pairings,
                self.expenses,
            )
        )

    def service_state(self, service) -> str:
        """按期落实 / 逾期落实 / 待落实 / 逾期未落实 / 已取消 for one measure."""
        if service.status == ServiceStatus.CANCELLED.value:
            return "已取消"
        if service.status == ServiceStatus.DELIVERED.value:
            if service.due_on and service.delivered_on and service.delivered_on > service.due_on:
                return "逾期落实"
            return "按期落实"
        if service.due_on and self.today and service.due_on < self.today:
            return "逾期未落实"
        return "待落实"

    def alert_overdue(self, alert) -> bool:
        if alert.status == AlertStatus.DONE.value:
            return bool(alert.closed_at and alert.closed_at > alert.deadline)
        return bool(self.today and alert.deadline.date() < self.today)


def find_child(child_id, village_ids) -> Child | None:
    """The child with this id if it lies in scope (archived children included)."""
    try:
        key = int(child_id)
    except (TypeError, ValueError):
        return None
    stmt = (
        select(Child)
        .where(Child.id == key)
        .options(
            selectinload(Child.categories),
            joinedload(Child.village),
            joinedload(Child.director),
            joinedload(Child.caring_mother),
        )
    )
    return db.session.scalars(scope(stmt, Child, village_ids)).unique().one_or_none()


def load_dossier(child_id, village_ids, today: dt.date) -> Dossier | None:
    child = find_child(child_id, village_ids)
    if child is None:
        return None
    cid = child.id
    session = db.session

    def rows(stmt):
        return list(session.scalars(stmt).unique())

    dossier = Dossier(child=child, today=today)
    dossier.guardian_links = rows(
        select(ChildGuardian)
        .where(ChildGuardian.child_id == cid)
        .options(joinedload(ChildGuardian.guardian))
        .order_by(ChildGuardian.is_primary.desc(), ChildGuardian.id)
    )
    dossier.assessments = rows(
        select(Assessment)
        .where(Assessment.child_id == cid)
        .options(joinedload(Assessment.reviewed_by))
        .order_by(Assessment.assessed_on.desc(), Assessment.id.desc())
    )
    dossier.level_history = [
        LevelPoint(
            on=a.assessed_on,
            level=a.level,
            total_score=a.total_score,
            worsened=bool(a.worsened),
            overridden=bool(a.override_level),
            assessment_id=a.id,
        )
        for a in reversed(dossier.assessments)
        if a.status == AssessmentStatus.APPROVED.value and a.level
    ]
    dossier.services = rows(
        select(SupportService)
        .where(SupportService.child_id == cid)
        .options(joinedload(SupportService.provider))
        .order_by(SupportService.due_on.desc().nulls_last(), SupportService.id.desc())
    )
    dossier.visits = rows(
        select(Visit)
        .where(Visit.child_id == cid)
        .options(selectinload(Visit.visitors))
        .order_by(Visit.visited_on.desc(), Visit.id.desc())
    )
    dossier.reports = rows(
        select(MandatoryReport)
        .where(MandatoryReport.child_id == cid)
        .order_by(MandatoryReport.received_at.desc())
    )
    dossier.alerts = rows(
        select(Alert)
        .where(Alert.child_id == cid)
        .options(joinedload(Alert.handler))
        .order_by(Alert.raised_at.desc(), Alert.id.desc())
    )
    dossier.cases = rows(
        select(Case)
        .where(Case.child_id == cid)
        .options(
            joinedload(Case.professional),
            selectinload(Case.events),
            selectinload(Case.conferences),
        )
        .order_by(Case.opened_on.desc(), Case.id.desc())
    )
    dossier.attendance = rows(
        select(Attendance)
        .where(Attendance.child_id == cid)
        .options(joinedload(Attendance.activity))
        .order_by(Attendance.signed_at.desc())
    )
    dossier.pairings = rows(
        select(MentorPairing)
        .where(MentorPairing.child_id == cid)
        .options(joinedload(MentorPairing.staff))
        .order_by(MentorPairing.start_on.desc())
    )
    dossier.expenses = rows(
        select(Expense)
        .where(Expense.child_id == cid)
        .options(joinedload(Expense.source))
        .order_by(Expense.spent_on.desc(), Expense.id.desc())
    )
    return dossier


def case_path(case) -> list[tuple[CaseStage, str]]:
    """Each stage of the case path with its state: done, current or todo."""
    try:
        current = CASE_PATH.index(CaseStage(case.stage))
    except ValueError:
        current = -1
    states = []
    for index, stage in enumerate(CASE_PATH):
        if index < current:
            states.append((stage, "done"))
        elif index == current:
            states.append((stage, "current"))
        else:
            states.append((stage, "todo"))
    return states


__all__ = ["CASE_PATH", "Dossier", "LevelPoint", "case_path", "find_child", "load_dossier"]
