"""services/indicators.py: every indicator against an independent recomputation from the base tables.

The recomputation below reads the rows (children and their archive history, assessments, visits,
measures, alerts, cases and their events, activities, expenses) into Python and applies the written
definitions with plain loops; it never calls the indicator code. A generated history puts the edges
in: archived children (one exactly at a period's end, one a second before), a restored child, a late
registration, 红字冲销 paid and still a draft, alerts closed exactly at and just before their deadline,
measures cancelled before and after their due day, a case opened after the fact, and frames whose
moment falls on those edges. The 工作台, the report and the module agree with it and with each other.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import uuid
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from choices import AlertClosure, ChildStatus
from models import (
    Activity,
    Alert,
    Assessment,
    Attendance,
    Case,
    CaseConference,
    CaseEvent,
    Child,
    ChildGuardian,
    ChildStatusChange,
    Consent,
    Expense,
    Feedback,
    FundSource,
    MandatoryReport,
    PublicityEvent,
    Rectification,
    RuleVersion,
    SupportService,
    User,
    Village,
    Visit,
    child_category,
    db,
)
from seeds.demo import id_number
from services import alerts, clock, fund_checks, indicators, reports
from services.assessment import current_rules, refresh_level
from services.cases import (
    MeasureInput,
    add_follow_up,
    add_service,
    move_stage,
    open_case,
    professional_candidates,
    save_needs,
    save_plan,
)
from services.funds import approve, load_thresholds, pay, reverse
from services.indicators import Frame, compute
from services.register import archive_child, restore_child
from tests.conftest import ROOT
from tests.test_field import post_queue, visit_item

NOW = dt.datetime(2026, 11, 29, 10, 30)
DEFAULT_VISIT = {"red": 7, "orange": 15, "yellow": 30, "green": 90}


# --------------------------------------------------------------------------- the declarations


def test_readme_table_is_generated_from_the_declarations():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert indicators.readme_block() in text, (
        "README.md 的指标表已过时：运行 flask --app app indicators-readme"
    )
    assert indicators.rewrite_readme(text) == text
    for indicator in indicators.INDICATORS.values():
        assert f"| {indicator.name} |" in text


def test_a_name_is_declared_once():
    names = [i.name for i in indicators.INDICATORS.values()]
    assert len(names) == len(set(names))
    with pytest.raises(ValueError):
        indicators.declare(
            key="registered_again",
            name="在册儿童数",
            definition="重复",
            unit=indicators.PEOPLE,
            basis=indicators.STATE,
            numerator=indicators.registered,
        )


def test_every_indicator_has_a_recomputation_here():
    assert set(indicators.INDICATORS) == set(RECOMPUTE), "每个指标都须在本测试中有独立的复算"


def test_frame_moment_is_the_period_end_or_now():
    past = Frame.of_period(dt.date(2026, 10, 1), dt.date(2026, 10, 31), now=NOW)
    assert past.moment == dt.datetime(2026, 11, 1)
    assert past.day == dt.date(2026, 10, 31)
    assert past.last_full_day == dt.date(2026, 10, 31)
    assert not past.is_current
    running = Frame.of_period(dt.date(2026, 11, 1), dt.date(2026, 11, 30), now=NOW)
    assert running.moment == NOW
    assert running.day == dt.date(2026, 11, 29)
    assert running.last_full_day == dt.date(2026, 11, 28)
    assert running.is_current and not running.reconstructed().is_current
    ytd = Frame.year_to_date(now=NOW)
    assert (ytd.start, ytd.end) == (dt.date(2026, 1, 1), dt.date(2026, 11, 29))
    with pytest.raises(ValueError):
        Frame.of_period(dt.date(2026, 2, 1), dt.date(2026, 1, 31), now=NOW)


def test_value_of_a_rate_with_parts_per_village():
    rate = indicators.get("file_complete_rate")
    frame = Frame.as_of(now=NOW)
    value = indicators.Value(rate, frame, {1: 3, 2: 1}, {1: 4, 2: 2})
    assert (value.numerator, value.denominator) == (4, 6)
    assert value.value == Decimal("0.6667")
    assert value.percent == Decimal("66.7")
    assert value.text == "66.7%"
    assert value.for_village(2).text == "50.0%"
    assert indicators.Value(rate, frame, {}, {}).text == "—"


def test_a_figure_without_history_has_no_past_value(app):
    past = Frame.as_of(dt.date(2026, 3, 31), now=NOW)
    value = compute("file_complete_rate", past)
    assert not value.available and value.text == "—"
    assert compute("funds_paid", Frame.as_of(now=NOW).for_villages([1])).text == "—"  # town-wide money


# --------------------------------------------------------------------------- the recomputation


class Base:
    """The rows, read once, and each definition applied to them in Python."""

    def __init__(self):
        s = db.session
        s.expire_all()
        self.children = {c.id: c for c in s.scalars(db.select(Child))}
        self.changes: dict[int, list] = {}
        for ch in s.scalars(
            db.select(ChildStatusChange).order_by(ChildStatusChange.at, ChildStatusChange.id)
        ):
            self.changes.setdefault(ch.child_id, []).append(ch)
        self.approved: dict[int, list] = {}
        for a in s.scalars(db.select(Assessment).where(Assessment.status == "approved")):
            self.approved.setdefault(a.child_id, []).append(a)
        self.visits: dict[int, list] = {}
        self.all_visits = s.scalars(db.select(Visit)).all()
        for v in self.all_visits:
            self.visits.setdefault(v.child_id, []).append(v.visited_on)
        self.snapshots = {r.id: r.snapshot or {} for r in s.scalars(db.select(RuleVersion))}
        self.services = s.scalars(db.select(SupportService)).all()
        self.alerts = s.scalars(db.select(Alert)).all()
        self.cases = s.scalars(db.select(Case)).all()
        self.events: dict[int, list] = {}
        for e in s.scalars(db.select(CaseEvent).order_by(CaseEvent.at, CaseEvent.id)):
            self.events.setdefault(e.case_id, []).append(e)
        self.activities = s.scalars(db.select(Activity)).all()
        self.attendance = s.scalars(db.select(Attendance)).all()
        self.expenses = s.scalars(db.select(Expense)).all()
        self.sources = s.scalars(db.select(FundSource)).all()
        self.linked = set(s.scalars(db.select(ChildGuardian.child_id)))
        self.categorised = set(s.scalars(db.select(child_category.c.child_id)))
        self.rectifications = s.scalars(db.select(Rectification)).all()
        self.mandatory_reports = s.scalars(db.select(MandatoryReport)).all()
        self.conferences = s.scalars(db.select(CaseConference)).all()
        self.publicity = s.scalars(db.select(PublicityEvent)).all()
        self.feedback = s.scalars(db.select(Feedback)).all()
        self.consents = s.scalars(db.select(Consent)).all()

    # the frame's edges, written out again
    @staticmethod
    def edges(frame: Frame):
        moment = min(dt.datetime.combine(frame.end + dt.timedelta(days=1), dt.time()), frame.now)
        day = min(frame.end, frame.now.date())
        over = min(frame.end, frame.now.date() - dt.timedelta(days=1))
        return moment, day, over

    @staticmethod
    def in_scope(frame, village_id) -> bool:
        return frame.village_ids is None or village_id in frame.village_ids

    def status_at(self, child, moment) -> str:
        changes = self.changes.get(child.id, [])
        before = [c for c in changes if c.at < moment]
        if before:
            return before[-1].status
        if changes:
            return ChildStatus.ACTIVE.value  # the first change is an archive: active until then
        return ChildStatus.ACTIVE.value if child.archived_at is None else child.status

    def registered(self, frame) -> list:
        moment, day, _ = self.edges(frame)
        return [
            c
            for c in self.children.values()
            if self.in_scope(frame, c.village_id)
            and c.registered_on <= day
            and self.status_at(c, moment) == ChildStatus.ACTIVE.value
        ]

    def latest(self, child_id, day):
        found = [a for a in self.approved.get(child_id, []) if a.assessed_on <= day]
        return max(found, key=lambda a: (a.assessed_on, a.id)) if found else None

    def next_visit(self, child, day) -> dt.date:
        a = self.latest(child.id, day)
        contacts = [child.registered_on] + [v for v in self.visits.get(child.id, []) if v <= day]
        days = 30
        if a is not None:
            contacts.append(a.assessed_on)
            levels = self.snapshots.get(a.rule_version_id, {}).get("levels") or {}
            days = (levels.get(a.level) or {}).get("visit_days") or DEFAULT_VISIT[a.level]
        return max(contacts) + dt.timedelta(days=days)

    def stage_at(self, case, moment) -> str:
        events = [
            e
            for e in self.events.get(case.id, [])
            if e.at < moment and e.to_stage and e.kind in ("open", "stage", "reopen")
        ]
        return events[-1].to_stage if events else "identify"

    def child_village(self, child_id):
        return self.children[child_id].village_id

    # the indicators ------------------------------------------------------------------------

    def state(self, frame):
        _, day, _ = self.edges(frame)
        kids = self.registered(frame)
        latest = {c.id: self.latest(c.id, day) for c in kids}
        return kids, latest, day

    def cases_then(self, frame):
        moment, day, _ = self.edges(frame)
        kids = {c.id for c in self.registered(frame)}
        return [
            (c, self.stage_at(c, moment)) for c in self.cases if c.opened_on <= day and c.child_id in kids
        ]

    def open_alert_at(self, a, moment) -> bool:
        if a.closed_at is None:
            return a.status != "done"
        return a.closed_at >= moment

    def decided(self, frame):
        moment, _, _ = self.edges(frame)
        start = dt.datetime.combine(frame.start, dt.time())
        rows = []
        for a in self.alerts:
            if not self.in_scope(frame, a.village_id):
                continue
            early = a.closed_at is not None and a.closed_at < a.deadline
            withdrawn = a.closure == AlertClosure.WITHDRAWN.value
            if early and withdrawn:
                continue
            when = a.closed_at if early else a.deadline
            if start <= when < moment:
                rows.append((a, early))
        return rows

    def measures_due(self, frame):
        _, _, over = self.edges(frame)
        rows = []
        for s in self.services:
            if s.due_on is None or not self.in_scope(frame, self.child_village(s.child_id)):
                continue
            if not frame.start <= s.due_on <= over:
                continue
            if s.status == "cancelled" and (s.cancelled_at is None or s.cancelled_at.date() <= s.due_on):
                continue
            rows.append(s)
        return rows

    def held(self, frame):
        moment, _, _ = self.edges(frame)
        start = dt.datetime.combine(frame.start, dt.time())
        return [
            a
            for a in self.activities
            if start <= a.starts_at < moment
            and (
                frame.village_ids is None
                or not a.villages
                or {v.id for v in a.villages} & set(frame.village_ids)
            )
        ]

    def money(self, frame, statuses):
        _, day, _ = self.edges(frame)
        return sum(
            (e.amount for e in self.expenses if e.status in statuses and frame.start <= e.spent_on <= day),
            Decimal("0.00"),
        )

    def available(self, frame):
        _, day, _ = self.edges(frame)
        return sum(
            (
                s.amount
                for s in self.sources
                if s.received_on <= day
                and (s.valid_from is None or s.valid_from <= frame.end)
                and (s.valid_to is None or s.valid_to >= frame.start)
            ),
            Decimal("0.00"),
        )


def _rate(n, d):
    return (n, d)


def _in_period(frame, day, base):
    _, until, _ = base.edges(frame)
    return day is not None and frame.start <= day <= until


def _registered(b, f):
    return len(b.registered(f))


def _file_complete(b, f):
    kids = b.registered(f)
    return _rate(sum(1 for c in kids if c.address and c.id in b.linked and c.id in b.categorised), len(kids))


def _cycle(b, f):
    kids, latest, day = b.state(f)
    return _rate(sum(1 for c in kids if latest[c.id] and latest[c.id].next_reassess_on >= day), len(kids))


def _ever(b, f):
    kids, latest, _ = b.state(f)
    return _rate(sum(1 for c in kids if latest[c.id]), len(kids))


def _never(b, f):
    kids, latest, _ = b.state(f)
    return sum(1 for c in kids if latest[c.id] is None)


def _reassess_overdue(b, f):
    kids, latest, day = b.state(f)
    return sum(1 for c in kids if latest[c.id] and latest[c.id].next_reassess_on < day)


def overdue_set(b, f) -> list[int]:
    kids, _, day = b.state(f)
    return sorted(c.id for c in kids if b.next_visit(c, day) < day)


def _patrol_rate(b, f):
    kids = b.registered(f)
    return _rate(len(kids) - len(overdue_set(b, f)), len(kids))


def _cases_open(b, f):
    return sum(1 for _, stage in b.cases_then(f) if stage != "closed")


def _cases_rate(b, f):
    rows = b.cases_then(f)
    return _rate(sum(1 for _, stage in rows if stage == "closed"), len(rows))


def _alerts_overdue(b, f):
    moment, _, _ = b.edges(f)
    return sum(
        1
        for a in b.alerts
        if b.in_scope(f, a.village_id)
        and a.raised_at < moment
        and a.deadline < moment
        and b.open_alert_at(a, moment)
    )


def _alerts_raised(b, f):
    moment, _, _ = b.edges(f)
    start = dt.datetime.combine(f.start, dt.time())
    return sum(1 for a in b.alerts if b.in_scope(f, a.village_id) and start <= a.raised_at < moment)


def _alerts_handled(b, f):
    moment, _, _ = b.edges(f)
    start = dt.datetime.combine(f.start, dt.time())
    return sum(
        1
        for a in b.alerts
        if b.in_scope(f, a.village_id)
        and a.status == "done"
        and a.closed_at is not None
        and start <= a.closed_at < moment
        and a.closure != AlertClosure.WITHDRAWN.value
    )


def _alerts_rate(b, f):
    rows = b.decided(f)
    return _rate(sum(1 for _, early in rows if early), len(rows))


def _registered_new(b, f):
    return sum(
        1 for c in b.children.values() if b.in_scope(f, c.village_id) and _in_period(f, c.registered_on, b)
    )


def _approved_in(b, f):
    return [
        a
        for rows in b.approved.values()
        for a in rows
        if b.in_scope(f, b.child_village(a.child_id)) and _in_period(f, a.assessed_on, b)
    ]


def _visits_in(b, f):
    return [
        v
        for v in b.all_visits
        if b.in_scope(f, b.child_village(v.child_id)) and _in_period(f, v.visited_on, b)
    ]


def _on_time(s):
    return s.status == "delivered" and s.delivered_on is not None and s.delivered_on <= s.due_on


def _delivered_by(s, day):
    return s.status == "delivered" and s.delivered_on is not None and s.delivered_on <= day


def _measures_delivered_rate(b, f):
    _, day, _ = b.edges(f)
    due = b.measures_due(f)
    return _rate(sum(1 for s in due if _delivered_by(s, day)), len(due))


def _measures_delivered(b, f):
    return sum(
        1
        for s in b.services
        if s.status == "delivered"
        and b.in_scope(f, b.child_village(s.child_id))
        and _in_period(f, s.delivered_on, b)
    )


def _cases_closed(b, f):
    moment, _, _ = b.edges(f)
    start = dt.datetime.combine(f.start, dt.time())
    closed = {
        case_id
        for case_id, events in b.events.items()
        for e in events
        if e.kind == "stage" and e.to_stage == "closed" and start <= e.at < moment
    }
    return sum(1 for c in b.cases if c.id in closed and b.in_scope(f, b.child_village(c.child_id)))


def _attendance(b, f, children_only=False):
    held = {a.id for a in b.held(f)}
    rows = [x for x in b.attendance if x.activity_id in held]
    if children_only:
        return len({x.child_id for x in rows if x.child_id is not None})
    return len(rows)


def _open_findings(b, f):
    found = [x for x in fund_checks.run_all() if x.spent_on is None or f.start <= x.spent_on <= f.end]
    notes = fund_checks.notes_for(found)
    return sum(1 for x in found if x.key not in notes or notes[x.key].finding_message != x.message)


def _period_days(b, f, rows, day_of, village_of):
    """Rows dated (by day) within the period up to the frame's day, in scope."""
    return [r for r in rows if b.in_scope(f, village_of(r)) and _in_period(f, day_of(r), b)]


def _period_moments(b, f, rows, moment_of, village_of):
    """Rows timed within the period up to the frame's moment, in scope."""
    moment, _, _ = b.edges(f)
    start = dt.datetime.combine(f.start, dt.time())
    return [r for r in rows if b.in_scope(f, village_of(r)) and start <= moment_of(r) < moment]


def _found(b, f):
    return _period_days(b, f, b.rectifications, lambda r: r.found_on, lambda r: r.village_id)


def _rectification_rate(b, f):
    moment, _, _ = b.edges(f)
    found = _found(b, f)
    signed = [r for r in found if r.status == "done" and r.reviewed_at is not None and r.reviewed_at < moment]
    return _rate(len(signed), len(found))


def _rectifications_overdue(b, f):
    _, day, _ = b.edges(f)
    return sum(
        1
        for r in b.rectifications
        if b.in_scope(f, r.village_id)
        and r.found_on <= day
        and r.deadline < day
        and not (r.status == "done" and r.completed_on is not None and r.completed_on <= day)
    )


def _rapid_response(b, f):
    moment, _, _ = b.edges(f)
    return sum(
        1
        for a in _period_moments(b, f, b.alerts, lambda a: a.raised_at, lambda a: a.village_id)
        if a.status == "done"
        and a.closed_at is not None
        and a.closed_at < a.deadline  # before the deadline: at it is late
        and a.closed_at < moment
        and a.closure != AlertClosure.WITHDRAWN.value
    )


def _conferences(b, f):
    cases = {c.id: c for c in b.cases}
    return len(
        _period_days(
            b, f, b.conferences, lambda c: c.held_on, lambda c: b.child_village(cases[c.case_id].child_id)
        )
    )


def _publicity(b, f):
    return _period_days(b, f, b.publicity, lambda p: p.held_on, lambda p: p.village_id)


def _age_on(birth: dt.date, day: dt.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _filing_consented(b, f):
    _, day, _ = b.edges(f)
    consented = {
        c.child_id
        for c in b.consents
        if c.scope == "filing" and c.given_on <= day and (c.withdrawn_on is None or c.withdrawn_on > day)
    }
    return [c for c in b.registered(f) if c.id in consented], day


PAID = ("paid",)
COMMITTED = ("approved", "paid")
RECOMPUTE = {
    "registered": _registered,
    "file_complete_rate": _file_complete,
    "assessment_cycle_rate": _cycle,
    "assessed_ever_rate": _ever,
    "never_assessed": _never,
    "reassessment_overdue": _reassess_overdue,
    "patrol_on_time_rate": _patrol_rate,
    "patrol_overdue": lambda b, f: len(overdue_set(b, f)),
    "cases_open": _cases_open,
    "cases_closed_rate": _cases_rate,
    "alerts_open": lambda b, f: sum(
        1
        for a in b.alerts
        if b.in_scope(f, a.village_id) and a.raised_at < b.edges(f)[0] and b.open_alert_at(a, b.edges(f)[0])
    ),
    "alerts_overdue_open": _alerts_overdue,
    "alerts_raised": _alerts_raised,
    "alerts_handled": _alerts_handled,
    "alerts_on_time_rate": _alerts_rate,
    "registered_new": _registered_new,
    "assessments_done": lambda b, f: len(_approved_in(b, f)),
    "assessed_children": lambda b, f: len({a.child_id for a in _approved_in(b, f)}),
    "visits_done": lambda b, f: len(_visits_in(b, f)),
    "visited_children": lambda b, f: len({v.child_id for v in _visits_in(b, f)}),
    "measures_due": lambda b, f: len(b.measures_due(f)),
    "measures_on_time_rate": lambda b, f: _rate(
        sum(1 for s in b.measures_due(f) if _on_time(s)), len(b.measures_due(f))
    ),
    "measures_delivered_rate": _measures_delivered_rate,
    "measures_delivered": _measures_delivered,
    "cases_new": lambda b, f: sum(
        1 for c in b.cases if b.in_scope(f, b.child_village(c.child_id)) and _in_period(f, c.opened_on, b)
    ),
    "cases_closed": _cases_closed,
    "activities_held": lambda b, f: len(b.held(f)),
    "attendance": lambda b, f: _attendance(b, f),
    "attendance_children": lambda b, f: _attendance(b, f, children_only=True),
    "funds_available": lambda b, f: b.available(f),
    "funds_paid": lambda b, f: b.money(f, PAID),
    "funds_execution_rate": lambda b, f: _rate(b.money(f, PAID), b.available(f)),
    "funds_committed": lambda b, f: b.money(f, COMMITTED),
    "funds_commitment_rate": lambda b, f: _rate(b.money(f, COMMITTED), b.available(f)),
    "fund_findings_open": _open_findings,
    "rectifications_found": lambda b, f: len(_found(b, f)),
    "rectification_rate": _rectification_rate,
    "rectifications_overdue": _rectifications_overdue,
    "mechanism_mandatory_reports": lambda b, f: len(
        _period_moments(b, f, b.mandatory_reports, lambda r: r.received_at, lambda r: r.village_id)
    ),
    "mechanism_rapid_response": _rapid_response,
    "mechanism_linkage": _conferences,
    "mechanism_publicity": lambda b, f: len(_publicity(b, f)),
    "publicity_audience": lambda b, f: sum(p.audience_count or 0 for p in _publicity(b, f)),
    "feedback_count": lambda b, f: len(
        _period_days(b, f, b.feedback, lambda r: r.received_on, lambda r: r.village_id)
    ),
    "consent_coverage": lambda b, f: _rate(len(_filing_consented(b, f)[0]), len(b.registered(f))),
    "consent_missing_under_14": lambda b, f: sum(
        1
        for c in b.registered(f)
        if _age_on(c.birth_date, b.edges(f)[1]) < 14 and c not in _filing_consented(b, f)[0]
    ),
}


def expected(base: Base, key: str, frame: Frame):
    """(numerator, denominator) or the count, recomputed; None where the figure has no value."""
    indicator = indicators.get(key)
    if not indicator.history and not frame.is_current:
        return None
    if indicator.town_only and frame.village_ids is not None:
        return None
    return RECOMPUTE[key](base, frame)


def actual(value: indicators.Value):
    if not value.available:
        return None
    if value.indicator.is_rate:
        return (value.numerator, value.denominator)
    return value.numerator


# --------------------------------------------------------------------------- the generated history


def _month_edges(today: dt.date):
    this_month = today.replace(day=1)
    last_end = this_month - dt.timedelta(days=1)
    return last_end.replace(day=1), last_end, this_month


def _child(village_id, registered_on, serial) -> Child:
    child = Child(
        name="历史测试",
        gender="F",
        id_number=id_number(dt.date(2016, 5, 1), 900 + serial, False),
        birth_date=dt.date(2016, 5, 1),
        village_id=village_id,
        address="测试地址",
        registered_on=registered_on,
    )
    db.session.add(child)
    db.session.flush()
    return child


def _approved(child, level, on, version):
    a = Assessment(
        child_id=child.id,
        assessed_on=on,
        computed_level=level,
        level=level,
        status="approved",
        rule_version_id=version.id,
        next_reassess_on=on + dt.timedelta(days=version.snapshot["levels"][level]["reassess_days"]),
    )
    db.session.add(a)
    db.session.flush()
    refresh_level(child)
    return a


def _alert(child, raised, deadline, *, closed=None, closure=None, severity="red") -> Alert:
    a = Alert(
        source="rule",
        severity=severity,
        child_id=child.id,
        village_id=child.village_id,
        title="历史测试预警",
        raised_at=raised,
        deadline=deadline,
        status="done" if closed else "open",
        closed_at=closed,
        closure=closure or ("handled" if closed else None),
        condition_key=f"history:{uuid.uuid4().hex}",
    )
    db.session.add(a)
    return a


@pytest.fixture
def history(app):
    """The demo town plus the edges, dated around the last month and this one (now: the real clock,
    as the demo data is dated from it)."""
    now = clock.now().replace(microsecond=0)
    last_start, last_end, this_month = _month_edges(now.date())
    edge = dt.datetime.combine(this_month, dt.time())  # the last month's moment
    villages = db.session.scalars(db.select(Village).order_by(Village.sort_order)).all()
    home = villages[0].id
    clerk = db.session.scalar(db.select(User.id).where(User.username == "clerk"))
    supervisor = db.session.scalar(db.select(User.id).where(User.username == "supervisor"))
    version = current_rules()
    kids = [_child(villages[i % 3].id, last_start - dt.timedelta(days=60), i) for i in range(10)]
    for kid in kids:
        db.session.add(ChildGuardian(child_id=kid.id, guardian_id=_any_guardian(kid.village_id)))

    # a late registration (this month), visited since
    late = _child(home, this_month, 20)
    db.session.add(Visit(child_id=late.id, visited_on=this_month, kind="home"))
    # levels that change: orange last month, green this month
    _approved(kids[0], "orange", last_start + dt.timedelta(days=2), version)
    _approved(kids[0], "green", this_month, version)
    _approved(kids[1], "red", last_end - dt.timedelta(days=3), version)
    db.session.add(Visit(child_id=kids[1].id, visited_on=last_end - dt.timedelta(days=1), kind="phone"))
    # measures: due on the last day and delivered the day after (late); cancelled on / after the due day
    m_late = SupportService(
        child_id=kids[1].id,
        kind="safety_net",
        tier="red",
        status="delivered",
        due_on=last_end,
        delivered_on=this_month,
    )
    m_early = SupportService(
        child_id=kids[1].id,
        kind="counselling",
        tier="red",
        status="delivered",
        due_on=last_end,
        delivered_on=last_end,
    )
    m_cancel_on_day = SupportService(
        child_id=kids[2].id,
        kind="lecture",
        tier="yellow",
        status="cancelled",
        due_on=last_end - dt.timedelta(days=2),
        cancelled_at=dt.datetime.combine(last_end - dt.timedelta(days=2), dt.time(10)),
    )
    m_pending = SupportService(
        child_id=kids[3].id,
        kind="counselling",
        tier="orange",
        status="planned",
        due_on=last_end - dt.timedelta(days=5),
    )
    db.session.add_all([m_late, m_early, m_cancel_on_day, m_pending])
    # alerts: closed exactly at the deadline (late), a second before it (in time), due at the edge,
    # not yet due, due exactly now
    _alert(
        kids[4], edge - dt.timedelta(days=2), edge - dt.timedelta(days=1), closed=edge - dt.timedelta(days=1)
    )
    _alert(
        kids[4],
        edge - dt.timedelta(days=2),
        edge - dt.timedelta(hours=3),
        closed=edge - dt.timedelta(hours=3, seconds=1),
    )
    _alert(kids[5], edge - dt.timedelta(days=1), edge)  # deadline exactly at the last month's moment
    _alert(kids[5], now - dt.timedelta(hours=2), now + dt.timedelta(hours=20))
    _alert(kids[6], now - dt.timedelta(hours=24), now)  # due exactly now: not yet passed
    withdrawn = _alert(
        kids[7], edge - dt.timedelta(days=3), edge + dt.timedelta(days=3)
    )  # child archived below
    db.session.flush()
    # archives: at the very moment the last month ends (still in register then), a second before it
    # (not), one archived last month and restored this month; kids[3]'s planned measure is cancelled
    # after its due day (still due)
    archive_child(kids[7], "moved", "迁出（测试）", now=edge, user_id=clerk)
    archive_child(kids[8], "adult", "年满18周岁（测试）", now=edge - dt.timedelta(seconds=1), user_id=clerk)
    archive_child(
        kids[9],
        "moved",
        "暂离（测试）",
        now=dt.datetime.combine(last_start + dt.timedelta(days=9), dt.time(15)),
        user_id=clerk,
    )
    db.session.flush()
    restore_child(kids[9], now=edge + dt.timedelta(minutes=1), user_id=clerk)
    archive_child(kids[3], "closed", "结案（测试）", now=edge + dt.timedelta(minutes=2), user_id=clerk)
    # a case closed this month (open at the last month's end); one entered this month dated last month
    case = open_case(
        kids[2].id,
        "improper",
        opened_on=last_start + dt.timedelta(days=4),
        user_id=supervisor,
        now=dt.datetime.combine(last_start + dt.timedelta(days=4), dt.time(9)),
    )
    at = dt.datetime.combine(last_start + dt.timedelta(days=5), dt.time(9))
    _walk_to_track(case, supervisor, at)
    move_stage(
        case,
        "closed",
        user_id=supervisor,
        now=edge + dt.timedelta(minutes=3),
        closing_evaluation="达成",
        closure_reason="goals_met",
    )
    open_case(
        kids[6].id,
        "improper",
        opened_on=last_start + dt.timedelta(days=2),
        user_id=supervisor,
        now=edge + dt.timedelta(minutes=3),
    )
    # money: a payment of last month reversed this month; another whose reversal is a draft
    source = FundSource(
        name="历史测试资金", kind="district", amount=Decimal("10000.00"), received_on=last_start
    )
    db.session.add(source)
    db.session.flush()
    first = Expense(
        spent_on=last_end,
        amount=Decimal("1200.00"),
        source_id=source.id,
        category="activity",
        payee="测试收款方",
        status="paid",
        handler_id=clerk,
        approver_id=supervisor,
        approved_at=dt.datetime.combine(last_end, dt.time(9)),
        paid_at=dt.datetime.combine(last_end, dt.time(15)),
    )
    second = Expense(
        spent_on=last_end,
        amount=Decimal("300.00"),
        source_id=source.id,
        category="activity",
        payee="测试收款方二",
        status="paid",
        handler_id=clerk,
        approver_id=supervisor,
        approved_at=dt.datetime.combine(last_end, dt.time(9)),
        paid_at=dt.datetime.combine(last_end, dt.time(16)),
    )
    db.session.add_all([first, second])
    db.session.flush()
    counter = reverse(first, clerk, last_end, "重复支付（测试）", None)
    reverse(second, clerk, last_end, "待核实（测试）", None)
    db.session.flush()
    approve(counter, supervisor, edge + dt.timedelta(minutes=4), load_thresholds())
    pay(counter, edge + dt.timedelta(minutes=5))
    db.session.commit()
    assert withdrawn.closure == AlertClosure.WITHDRAWN.value and m_pending.status == "cancelled"
    return {
        "last": (last_start, last_end),
        "this_month": this_month,
        "edge": edge,
        "home": home,
        "kids": kids,
        "late": late,
        "now": now,
    }


def _walk_to_track(case, user_id, at: dt.datetime) -> None:
    """The casework gates, met through services/cases.py: 评估 → 需求评估 → 方案 → 介入 → 服务 → 跟踪 → 跟进."""
    move_stage(case, "assess", user_id=user_id, now=at)
    save_needs(
        case,
        assessed_on=at.date(),
        problems={"safety": "监护不当（测试）"},
        risk_rating="medium",
        risk="中等风险（测试）",
        child_strengths="乐观（测试）",
        family_strengths="亲属支持（测试）",
        user_id=user_id,
        now=at,
    )
    candidates = professional_candidates(case.child.village_id)
    save_plan(
        case,
        goals="目标",
        professional_id=candidates[0].id,
        measures=[
            MeasureInput(None, "每周家访（测试）", candidates[0].name, at.date() + dt.timedelta(days=7))
        ],
        candidates=candidates,
    )
    db.session.flush()
    move_stage(case, "intervene", user_id=user_id, now=at + dt.timedelta(hours=1))
    add_service(
        case,
        measure_id=case.measures[0].id,
        delivered_on=at.date(),
        provider=candidates[0].name,
        content="家访（测试）",
        user_id=user_id,
        now=at + dt.timedelta(hours=2),
    )
    move_stage(case, "track", user_id=user_id, now=at + dt.timedelta(hours=3))
    add_follow_up(
        case,
        followed_on=at.date(),
        method="home",
        followed_by=candidates[0].name,
        change="好转（测试）",
        user_id=user_id,
        now=at + dt.timedelta(hours=4),
    )


def _any_guardian(village_id):
    from models import Guardian

    return db.session.scalar(db.select(Guardian.id).where(Guardian.village_id == village_id).limit(1))


def _any_staff():
    from models import Staff

    return db.session.scalar(db.select(Staff.id).order_by(Staff.id).limit(1))


def frames(h) -> dict[str, Frame]:
    last_start, last_end = h["last"]
    this_month = h["this_month"]
    month_end = (this_month.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    home = [h["home"]]
    now = h["now"]
    out = {
        "year to date": Frame.year_to_date(None, now),
        "last month": Frame.of_period(last_start, last_end, None, now),
        "this month (running)": Frame.of_period(this_month, month_end, None, now),
        "as of the day before the last month's end": Frame.as_of(last_end - dt.timedelta(days=1), None, now),
        "last month, one village": Frame.of_period(last_start, last_end, home, now),
        "year to date, one village": Frame.year_to_date(home, now),
    }
    out["year to date, read from history"] = out["year to date"].reconstructed()
    return out


# --------------------------------------------------------------------------- agreement


def test_every_indicator_equals_its_recomputation_on_the_generated_history(history):
    base = Base()
    mismatches = []
    nonzero = set()
    for label, frame in frames(history).items():
        for key in indicators.INDICATORS:
            want, got = expected(base, key, frame), actual(compute(key, frame))
            if want != got:
                mismatches.append(f"{label} · {key}: recomputed {want}, indicator {got}")
            if want not in (None, 0, (0, 0)):
                nonzero.add(key)
    assert not mismatches, "\n".join(mismatches)
    # every figure is exercised by some frame (no comparison of 0 with 0 only)
    assert nonzero == set(indicators.INDICATORS), set(indicators.INDICATORS) - nonzero


def test_the_edges_land_where_the_definitions_say(history):
    last = Frame.of_period(*history["last"], None, history["now"])
    kids = history["kids"]
    registered = {
        c.id for c in db.session.scalars(indicators.registered_children(last).with_only_columns(Child))
    }
    assert kids[7].id in registered  # archived exactly at the moment the month ended: still in register
    assert kids[8].id not in registered  # a second before: out
    assert kids[9].id not in registered  # archived in the month, restored after it
    assert history["late"].id not in registered  # registered after the month
    now = Frame.year_to_date(None, history["now"])
    current = {c.id for c in db.session.scalars(indicators.registered_children(now).with_only_columns(Child))}
    assert kids[9].id in current and kids[7].id not in current and history["late"].id in current
    # the alert closed exactly at its deadline is late; a second before, in time
    on_time = compute("alerts_on_time_rate", last.for_villages([kids[4].village_id]))
    assert on_time.numerator >= 1 and on_time.denominator >= 2
    # the measure delivered the day after its due date: delivered, not on time
    base = Base()
    due_ids = {s.id for s in base.measures_due(last)}
    late_measure = next(s for s in base.services if s.child_id == kids[1].id and s.kind == "safety_net")
    assert late_measure.id in due_ids and not _on_time(late_measure)
    assert not _delivered_by(late_measure, history["last"][1])
    # the 红字冲销 paid this month counts this month, negative; the draft one nowhere
    month = Frame.of_period(history["this_month"], history["this_month"], None, history["now"])
    assert compute("funds_paid", month).value <= Decimal("-1200.00")


def test_the_dashboard_shows_the_indicators(history, client, auth):
    for username, scope in (("clerk", None), ("director1", "own")):
        auth.login(username)
        user = db.session.scalar(db.select(User).where(User.username == username))
        village_ids = None if scope is None else [user.village_id]
        frame = Frame.year_to_date(village_ids, clock.now())
        page = client.get("/admin/").get_data(as_text=True)
        base = Base()
        from services import dashboard

        for key in dashboard.STATE_RATES + dashboard.PERIOD_RATES:
            numerator, denominator = expected(base, key, frame)
            block = page.split(f'id="rate-{key}"')[1].split("</details>")[0]
            assert f'<span class="numerator">{numerator}</span>' in block, (username, key)
            assert f'<span class="denominator">{denominator}</span>' in block, (username, key)
        for key in dashboard.STATE_COUNTS:
            row = page.split(f'data-key="{key}"')[1].split("</div>")[0]
            assert f'<span class="font-weight-bold count">{expected(base, key, frame)}</span>' in row, key
        total = _registered(base, frame)
        assert f'<div class="display-4" id="count-total">{total}</div>' in page
        if scope is not None:
            other = db.session.scalars(db.select(Village.name).where(Village.id != user.village_id)).first()
            assert other not in page.split('id="by-village"')[1].split("</table>")[0]
        auth.logout()


def test_the_report_and_its_workbook_carry_the_same_values(history, client, auth):
    last_start, last_end = history["last"]
    period = reports.Period(last_start, last_end, "上月")
    figures = reports.compute_figures(period, None, now=history["now"])
    base = Base()
    frame = figures.frame
    for key, value in figures.values.items():
        assert actual(value) == expected(base, key, frame), key
    # the tables add up to the same figures
    assert sum(n for _, n in figures.by_level) == figures.values["registered"].value
    assert sum(row[1] for row in figures.by_village) == figures.values["registered"].value
    assert sum(row[7] for row in figures.by_village) == figures.values["assessments_done"].value
    assert sum(row[1] for row in figures.services_by_tier) == figures.values["measures_due"].value
    assert (
        sum(row[2] for row in figures.services_by_tier) == figures.values["measures_on_time_rate"].numerator
    )
    assert (
        sum(row[3] for row in figures.alerts_by_severity) == figures.values["alerts_on_time_rate"].denominator
    )
    stages = dict(figures.cases_by_stage)
    assert stages["结案"] == figures.values["cases_closed_rate"].numerator
    # the downloaded workbook: a past month reads the same whenever it is made
    auth.login("inspector")
    response = client.get(
        f"/admin/reports/download/?kind=monthly&year={last_start.year}&month={last_start.month}"
    )
    book = load_workbook(io.BytesIO(response.data))
    rows = {row[0]: row[1] for row in book["汇总"].iter_rows(min_row=7, values_only=True) if row[0]}
    for key, value in figures.values.items():
        cell = rows[value.indicator.name]
        if value.value is None:
            assert cell == "—", key
        elif value.indicator.is_rate:
            assert cell == pytest.approx(float(value.value)), key
        else:
            assert Decimal(str(cell)) == Decimal(value.value), key
    notes = [row[0] for row in book["指标说明"].iter_rows(min_row=4, values_only=True) if row[0]]
    assert all(i.name in notes for i in indicators.INDICATORS.values())


def test_a_report_shows_only_the_figures_of_areas_the_role_may_read(history, client, auth):
    """The supervisor (all villages, no 资金): the town's money figures and the 资金 sheet stay empty."""
    last_start, _ = history["last"]
    url = f"/admin/reports/download/?kind=monthly&year={last_start.year}&month={last_start.month}"
    money = [i for i in indicators.INDICATORS.values() if i.area == "funds"]
    books = {}
    for username in ("inspector", "supervisor"):
        auth.login(username)
        response = client.get(url)
        assert response.status_code == 200
        books[username] = load_workbook(io.BytesIO(response.data))
        auth.logout()

    def summary(book):
        return {row[0]: row for row in book["汇总"].iter_rows(min_row=7, values_only=True) if row[0]}

    def fund_rows(book):
        return [row for row in book["资金"].iter_rows(min_row=2, values_only=True) if row[0]]

    seen, hidden = summary(books["inspector"]), summary(books["supervisor"])
    assert seen["已支付金额"][1] != "—" and fund_rows(books["inspector"])[0][0] != "本期无数据"
    for indicator in money:
        assert hidden[indicator.name][1] == "—", indicator.name
        assert hidden[indicator.name][5] == indicators.NOT_PERMITTED, indicator.name
    assert [row[0] for row in fund_rows(books["supervisor"])] == []
    assert books["supervisor"]["资金"]["A1"].value == "您的角色无权查看资金情况，本表不列。"
    # the figures the supervisor may read are the inspector's
    for name, row in seen.items():
        if name not in {i.name for i in money}:
            assert hidden[name][1] == row[1], name
    auth.login("supervisor")
    preview = client.get(
        f"/admin/reports/?kind=monthly&year={last_start.year}&month={last_start.month}&preview=1"
    )
    assert preview.status_code == 200
    assert 'data-key="funds_paid">—</td>' in preview.get_data(as_text=True)


def test_the_fund_check_header_counts_the_period_the_list_shows(app, client, auth):
    """An entry without voucher dated last year is a finding of last year: this year's header and
    list leave it out, last year's have it; the header's 待核查 is 资金使用问题（待核查）."""
    year = clock.today().year
    finance, admin = (
        db.session.scalar(db.select(User.id).where(User.username == name)) for name in ("finance", "admin")
    )
    source = FundSource(
        name="跨年测试资金", kind="district", amount=Decimal("5000.00"), received_on=dt.date(year - 1, 1, 5)
    )
    db.session.add(source)
    db.session.flush()
    old = Expense(
        spent_on=dt.date(year - 1, 6, 1),
        amount=Decimal("100.00"),
        source_id=source.id,
        category="activity",
        payee="跨年测试收款方",
        status="approved",
        handler_id=finance,
        approver_id=admin,
        approved_at=dt.datetime(year - 1, 6, 1, 10),
    )
    db.session.add(old)
    db.session.commit()
    auth.login("inspector")
    link = re.compile(rf"第{old.id}号支出100.00元（已审批）缺少凭证号")
    counts = {}
    for label, first, last in (
        ("this", dt.date(year, 1, 1), dt.date(year, 12, 31)),
        ("last", dt.date(year - 1, 1, 1), dt.date(year - 1, 12, 31)),
    ):
        page = client.get(f"/admin/fund-check/?start={first}&end={last}").get_data(as_text=True)
        shown = int(re.search(r'id="finding-count">(\d+) 条', page).group(1))
        opened = int(re.search(r"其中待核查 (\d+) 条", page).group(1))
        rows = len(re.findall(r'<tr class="finding finding-', page))
        assert shown == rows, label  # the header counts what the list shows
        counts[label] = (shown, opened, bool(link.search(page)))
        if label == "this":
            assert opened == compute("fund_findings_open", Frame.of_period(first, last)).value
    assert counts["this"][2] is False and counts["last"][2] is True


def test_the_risk_map_reads_the_same_register(history, client, auth):
    from services.riskmap import village_levels

    base = Base()
    last_end = history["last"][1]
    for day in (last_end, last_end - dt.timedelta(days=1)):
        frame = Frame.as_of(day, None, clock.now())
        want: dict = {}
        for c in base.registered(frame):
            latest = base.latest(c.id, day)
            key = (c.village_id, latest.level if latest else "none")
            want[key] = want.get(key, 0) + 1
        got = {
            (r["village_id"], k): n
            for r in village_levels(None, as_of=day)
            for k, n in r["counts"].items()
            if n
        }
        assert got == want, day


# --------------------------------------------------------------------------- 巡查: one overdue set


def test_alert_rule_dashboard_and_report_give_the_same_overdue_set(history):
    today = history["now"].date()
    base = Base()
    frame = Frame.year_to_date(None, history["now"])
    rule = sorted(c.child_id for c in alerts.visit_overdue(today))
    assert rule == indicators.patrol_overdue_children(frame) == overdue_set(base, frame)
    assert indicators.patrol_overdue_children(frame.reconstructed()) == rule
    month = reports.compute_figures(reports.month_period(today.year, today.month), None, now=history["now"])
    assert month.values["patrol_overdue"].value == len(rule) > 0


def test_a_saved_visit_moves_the_next_visit_and_leaves_the_overdue_set(history, client, auth):
    today = history["now"].date()
    frame = Frame.year_to_date(None, history["now"])
    overdue = indicators.patrol_overdue_children(frame)
    # the one visit form (今日's checklist, saved through /field/api/sync and services/visits.py)
    auth.login("supervisor")
    child = db.session.get(Child, overdue[0])
    supervisor = db.session.scalar(db.select(User.id).where(User.username == "supervisor"))
    recorded = history["now"]  # the real clock (a fixed hour of today may be later than it)
    response = post_queue(client, supervisor, [visit_item(child.id, recorded_at=recorded)])
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [r["ok"] for r in response.get_json()["results"]] == [True]
    db.session.expire_all()
    child = db.session.get(Child, child.id)
    level = child.current_level
    assert child.next_visit_due == today + dt.timedelta(days=DEFAULT_VISIT[level] if level else 30)
    after = Frame.year_to_date(None, history["now"])
    assert child.id not in indicators.patrol_overdue_children(after)
    assert child.id not in {c.child_id for c in alerts.visit_overdue(today)}
    assert compute("patrol_overdue", after).value == len(overdue) - 1


# --------------------------------------------------------------------------- archiving


def test_archiving_cancels_planned_measures_and_withdraws_alerts_and_restoring_says_so(history, client, auth):
    child = history["kids"][2]
    planned = SupportService(
        child_id=child.id, kind="counselling", status="planned", due_on=history["now"].date()
    )
    delivered = SupportService(
        child_id=child.id,
        kind="lecture",
        status="delivered",
        due_on=history["now"].date(),
        delivered_on=history["now"].date(),
    )
    db.session.add_all([planned, delivered])
    alert = _alert(child, history["now"] - dt.timedelta(hours=1), history["now"] + dt.timedelta(hours=23))
    db.session.commit()
    # the rule runs of the case walk raised alerts of their own: all open ones are withdrawn
    open_ids = set(
        db.session.scalars(db.select(Alert.id).where(Alert.child_id == child.id, Alert.status != "done"))
    )
    planned_ids = set(
        db.session.scalars(
            db.select(SupportService.id).where(
                SupportService.child_id == child.id, SupportService.status == "planned"
            )
        )
    )
    assert alert.id in open_ids and planned.id in planned_ids
    auth.login("clerk")
    page = client.get(f"/admin/child/archive/?id={child.id}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    body = client.post(
        f"/admin/child/archive/?id={child.id}",
        data={"csrf_token": token, "status": "moved", "reason": "迁居外地"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert f"取消了 {len(planned_ids)} 项计划中的赋能措施、撤销了 {len(open_ids)} 条未办结预警" in body
    db.session.expire_all()
    assert {a.closure for a in db.session.scalars(db.select(Alert).where(Alert.id.in_(open_ids)))} == {
        "withdrawn"
    }
    assert db.session.get(SupportService, planned.id).status == "cancelled"
    assert db.session.get(SupportService, planned.id).cancel_reason.startswith("儿童已归档（迁出）")
    assert db.session.get(SupportService, delivered.id).status == "delivered"
    closed = db.session.get(Alert, alert.id)
    assert (closed.status, closed.closure) == ("done", "withdrawn") and "迁居外地" in closed.result
    feed_ids = {row["id"] for row in alerts.feed_page(None, clock.now(), per_page=1000).alerts}
    assert not open_ids & feed_ids
    # restoring brings the child back, not what the archive settled, and says so
    page = client.get(f"/admin/child_archive/restore/?id={child.id}").get_data(as_text=True)
    assert "恢复后它们不会自动恢复" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    body = client.post(
        f"/admin/child_archive/restore/?id={child.id}", data={"csrf_token": token}, follow_redirects=True
    ).get_data(as_text=True)
    assert "不会自动恢复" in body
    db.session.expire_all()
    assert db.session.get(Child, child.id).archived_at is None
    assert db.session.get(SupportService, planned.id).status == "cancelled"
    assert db.session.get(Alert, alert.id).status == "done"
    history_rows = db.session.scalars(
        db.select(ChildStatusChange.status)
        .where(ChildStatusChange.child_id == child.id)
        .order_by(ChildStatusChange.at)
    ).all()
    assert history_rows == ["moved", "active"]


# Columns that name a moment still to come by their nature (a deadline, a planned activity's times).
SCHEDULED = {"deadline", "starts_at", "ends_at", "expires_at"}


def test_no_demo_moment_lies_after_the_clock(app):
    """The demo is dated from today, its events at working hours (seeds/moments.at): loaded before those
    hours, none may lie in the future — every moment column of every table, scheduled ones apart."""
    from sqlalchemy import DateTime

    now = clock.now()
    later = {}
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, DateTime) and column.name not in SCHEDULED:
                latest = db.session.scalar(db.select(db.func.max(column)))
                if latest is not None and latest > now:
                    later[f"{table.name}.{column.name}"] = latest
    assert later == {}, later


def test_the_category_counts_leave_out_children_out_of_register_now(app):
    """The 工作台's categories (the whole town now subtracts the children out of register from every
    link): recomputed from the child rows, with one child archived and one registered after today."""
    today = clock.today()
    kids = db.session.scalars(
        db.select(Child).where(Child.archived_at.is_(None), Child.categories.any()).order_by(Child.id)
    ).all()
    archive_child(kids[0], ChildStatus.MOVED.value, "随父母迁居", now=clock.now(), user_id=None)
    kids[1].registered_on = today + dt.timedelta(days=3)  # entered ahead (the forms refuse it)
    db.session.commit()

    def by_hand(village_ids):
        counts: dict[int, int] = {}
        for child in db.session.scalars(db.select(Child)):
            in_scope = village_ids is None or child.village_id in village_ids
            if child.archived_at is None and child.registered_on <= today and in_scope:
                for category in child.categories:
                    counts[category.id] = counts.get(category.id, 0) + 1
        return counts

    for village_ids in (None, [kids[0].village_id], [kids[1].village_id]):
        frame = Frame.year_to_date(village_ids, clock.now())
        assert frame.is_current
        found = {cid: n for cid, _, n in indicators.category_distribution(frame) if n}
        assert found == by_hand(village_ids), village_ids
