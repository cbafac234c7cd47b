"""一人一档: everything recorded about one child, read in a handful of queries (no N+1).

``load_dossier`` returns None when the child does not exist or lies outside ``village_ids``;
the caller then answers "记录不存在". Every section is a plain list, empty when an area has no data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import aliased, joinedload, selectinload

from choices import AlertStatus, AssessmentStatus, CaseStage, ExpenseStatus, ServiceStatus
from models import (
    Activity,
    Alert,
    Assessment,
    Attendance,
    Case,
    Child,
    ChildGuardian,
    Expense,
    FundSource,
    MandatoryReport,
    MentorPairing,
    Staff,
    SupportService,
    User,
    Visit,
    db,
    visit_staff,
)
from services import attachments, consent, transfers
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
    attachments: list = field(default_factory=list)
    consents: list = field(default_factory=list)  # consent.ScopeState per scope
    transfer_events: list = field(default_factory=list)
    pending_transfer: object = None
    visitors: dict = field(default_factory=dict)
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

    def table(stmt):
        return session.execute(stmt).all()

    dossier = Dossier(child=child, today=today)
    dossier.guardian_links = rows(
        select(ChildGuardian)
        .where(ChildGuardian.child_id == cid)
        .options(joinedload(ChildGuardian.guardian))
        .order_by(ChildGuardian.is_primary.desc(), ChildGuardian.id)
    )
    # The long lists are read as plain rows (no ORM identity map): a child may have hundreds.
    reviewer = aliased(User)
    dossier.assessments = table(
        select(
            Assessment.id,
            Assessment.assessed_on,
            Assessment.total_score,
            Assessment.level,
            Assessment.override_level,
            Assessment.override_reason,
            Assessment.worsened,
            Assessment.status,
            Assessment.reviewed_at,
            Assessment.next_reassess_on,
            func.coalesce(reviewer.display_name, reviewer.username).label("reviewer"),
        )
        .outerjoin(reviewer, reviewer.id == Assessment.reviewed_by_id)
        .where(Assessment.child_id == cid)
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
    dossier.services = table(
        select(
            SupportService.id,
            SupportService.tier,
            SupportService.kind,
            SupportService.status,
            SupportService.due_on,
            SupportService.delivered_on,
            SupportService.content,
            SupportService.outcome,
            Staff.name.label("provider_name"),
        )
        .outerjoin(Staff, Staff.id == SupportService.provider_id)
        .where(SupportService.child_id == cid)
        .order_by(SupportService.due_on.desc().nulls_last(), SupportService.id.desc())
    )
    dossier.visits = table(
        select(
            Visit.id,
            Visit.visited_on,
            Visit.kind,
            Visit.risk_found,
            Visit.harm_signs,
            Visit.next_due,
            Visit.notes,
        )
        .where(Visit.child_id == cid)
        .order_by(Visit.visited_on.desc(), Visit.id.desc())
    )
    for visit_id, name in session.execute(
        select(visit_staff.c.visit_id, Staff.name)
        .join(Staff, Staff.id == visit_staff.c.staff_id)
        .where(visit_staff.c.visit_id.in_(select(Visit.id).where(Visit.child_id == cid)))
        .order_by(visit_staff.c.visit_id, Staff.id)
    ):
        dossier.visitors.setdefault(visit_id, []).append(name)
    dossier.reports = table(
        select(
            MandatoryReport.id,
            MandatoryReport.received_at,
            MandatoryReport.reporter_kind,
            MandatoryReport.anonymous,
            MandatoryReport.situation,
            MandatoryReport.first_response_at,
            MandatoryReport.outcome,
        )
        .where(MandatoryReport.child_id == cid)
        .order_by(MandatoryReport.received_at.desc())
    )
    handler = aliased(User)
    dossier.alerts = table(
        select(
            Alert.id,
            Alert.title,
            Alert.severity,
            Alert.source,
            Alert.raised_at,
            Alert.deadline,
            Alert.status,
            Alert.closed_at,
            func.coalesce(handler.display_name, handler.username).label("handler_name"),
        )
        .outerjoin(handler, handler.id == Alert.handler_id)
        .where(Alert.child_id == cid)
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
    dossier.attendance = table(
        select(
            Attendance.activity_id,
            Attendance.signed_at,
            Activity.title,
            Activity.starts_at,
            Activity.place,
        )
        .join(Activity, Activity.id == Attendance.activity_id)
        .where(Attendance.child_id == cid)
        .order_by(Attendance.signed_at.desc())
    )
    dossier.pairings = table(
        select(
            MentorPairing.id,
            MentorPairing.start_on,
            MentorPairing.end_on,
            MentorPairing.notes,
            Staff.name.label("staff_name"),
        )
        .join(Staff, Staff.id == MentorPairing.staff_id)
        .where(MentorPairing.child_id == cid)
        .order_by(MentorPairing.start_on.desc())
    )
    dossier.expenses = table(
        select(
            Expense.id,
            Expense.spent_on,
            Expense.amount,
            Expense.category,
            Expense.payee,
            Expense.purpose,
            Expense.status,
            FundSource.name.label("source_name"),
        )
        .join(FundSource, FundSource.id == Expense.source_id)
        .where(Expense.child_id == cid)
        .order_by(Expense.spent_on.desc(), Expense.id.desc())
    )
    dossier.attachments = attachments.tiles_of_child(cid)
    dossier.consents = consent.states(cid)
    dossier.transfer_events = transfers.events_of(cid)
    dossier.pending_transfer = transfers.pending_of(cid)
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
