"""报表: every figure equals a count made independently over the rows; xlsx layout; scope; empty tables."""

import datetime as dt
import io
import random
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from models import (
    Activity,
    Alert,
    Assessment,
    Attendance,
    AuditLog,
    Case,
    Child,
    Expense,
    FundSource,
    RuleVersion,
    SupportService,
    Village,
    Visit,
    db,
)
from services import reports

MARCH = reports.month_period(2026, 3)


@pytest.fixture
def work(app):
    """Records of every kind in and around March 2026, spread over villages; deterministic."""
    rng = random.Random(7)
    children = db.session.scalars(db.select(Child).order_by(Child.id)).all()
    rules = RuleVersion(snapshot={}, fingerprint="reports-test")
    db.session.add(rules)
    db.session.flush()
    days = [dt.date(2026, 2, 20) + dt.timedelta(days=i) for i in range(45)]  # Feb 20 – Apr 5
    levels = ["red", "orange", "yellow", "green"]
    for child in children[:80]:
        level = rng.choice(levels)
        child.current_level = level
        for _ in range(rng.randint(0, 2)):
            db.session.add(
                Assessment(
                    child_id=child.id,
                    assessed_on=rng.choice(days),
                    total_score=20,
                    computed_level=level,
                    level=level,
                    rule_version_id=rules.id,
                    status=rng.choice(["approved", "approved", "submitted"]),
                )
            )
        due = rng.choice(days)
        delivered = rng.random() < 0.6
        db.session.add(
            SupportService(
                child_id=child.id,
                tier=level,
                kind=rng.choice(["safety_net", "counselling", "lecture"]),
                status=rng.choice(["delivered"] if delivered else ["planned", "cancelled"]),
                due_on=due,
                delivered_on=due + dt.timedelta(days=rng.randint(-3, 3)) if delivered else None,
            )
        )
        visited = sorted(rng.sample(days, rng.randint(0, 3)))
        for day in visited:
            db.session.add(
                Visit(
                    child_id=child.id,
                    visited_on=day,
                    kind="home",
                    next_due=day + dt.timedelta(days=rng.choice([7, 15, 30])),
                )
            )
        if rng.random() < 0.3:
            raised = dt.datetime.combine(rng.choice(days), dt.time(9))
            deadline = raised + dt.timedelta(hours=rng.choice([24, 72, 168]))
            closed = raised + dt.timedelta(hours=rng.randint(1, 200)) if rng.random() < 0.6 else None
            db.session.add(
                Alert(
                    source="rule",
                    severity=rng.choice(["red", "orange", "yellow"]),
                    child_id=child.id,
                    village_id=child.village_id,
                    title="测试预警",
                    raised_at=raised,
                    deadline=deadline,
                    status="done" if closed else rng.choice(["open", "in_progress"]),
                    closed_at=closed,
                )
            )
        if rng.random() < 0.15:
            opened = rng.choice(days)
            closed_on = opened + dt.timedelta(days=rng.randint(1, 20)) if rng.random() < 0.4 else None
            db.session.add(
                Case(
                    child_id=child.id,
                    case_type="absence",
                    opened_on=opened,
                    stage="closed" if closed_on else rng.choice(["identify", "assess", "intervene", "track"]),
                    closed_on=closed_on,
                )
            )
    villages = db.session.scalars(db.select(Village).order_by(Village.sort_order)).all()
    activities = []
    for i in range(6):
        activity = Activity(title=f"测试活动{i}", starts_at=dt.datetime.combine(days[i * 7], dt.time(9)))
        if i % 2:
            activity.villages = [villages[i % len(villages)]]
        activities.append(activity)
    db.session.add_all(activities)
    db.session.flush()
    for activity in activities:
        for child in rng.sample(children, 5):
            db.session.add(Attendance(activity_id=activity.id, child_id=child.id))
        db.session.add(Attendance(activity_id=activity.id, walk_in_name="现场家长"))
    source = FundSource(
        name="区级专项", kind="district", amount=Decimal("50000"), received_on=dt.date(2026, 1, 5)
    )
    late_source = FundSource(
        name="四月到账", kind="town", amount=Decimal("9000"), received_on=dt.date(2026, 4, 2)
    )
    db.session.add_all([source, late_source])
    db.session.flush()
    for i in range(12):
        db.session.add(
            Expense(
                spent_on=days[i * 3],
                amount=Decimal("100.25") * (i + 1),
                source_id=source.id,
                category="professional",
                payee=f"收款方{i}",
                child_id=children[i].id if i % 2 else None,
                status=["draft", "approved", "paid"][i % 3],
            )
        )
    db.session.commit()
    return children


def in_march(day) -> bool:
    if isinstance(day, dt.datetime):
        day = day.date()
    return day is not None and MARCH.start <= day <= MARCH.end


def all_rows(model):
    return db.session.scalars(db.select(model)).all()


def test_figures_equal_independent_counts(work):
    figures = reports.compute_figures(MARCH, None)
    s = figures.summary
    kids = {c.id for c in all_rows(Child) if c.archived_at is None}
    assert s["children"] == len(kids)

    approved = [a for a in all_rows(Assessment) if a.status == "approved"]
    assert s["assessments_done"] == sum(1 for a in approved if in_march(a.assessed_on))
    assert s["assessed_children"] == len({a.child_id for a in approved if in_march(a.assessed_on)})
    covered = {a.child_id for a in approved if a.assessed_on <= MARCH.end}
    assert s["assessment_coverage"] == round(len(covered) / len(kids), 4)

    due = [x for x in all_rows(SupportService) if in_march(x.due_on) and x.status != "cancelled"]
    on_time = [x for x in due if x.status == "delivered" and x.delivered_on <= x.due_on]
    assert s["services_due"] == len(due) and s["services_on_time"] == len(on_time)
    red = next(row for row in figures.services_by_tier if row[0] == "红")
    red_due = [x for x in due if x.tier == "red"]
    assert red[1] == len(red_due)
    assert red[2] == sum(1 for x in red_due if x.status == "delivered" and x.delivered_on <= x.due_on)
    assert s["services_delivered"] == sum(
        1 for x in all_rows(SupportService) if x.status == "delivered" and in_march(x.delivered_on)
    )

    visits = sorted(all_rows(Visit), key=lambda v: (v.child_id, v.visited_on, v.id))
    previous, counted, on_schedule = {}, 0, 0
    for visit in visits:
        before = previous.get(visit.child_id)
        if in_march(visit.visited_on):
            counted += 1
            on_schedule += before is None or before.next_due is None or visit.visited_on <= before.next_due
        previous[visit.child_id] = visit
    assert s["visits"] == counted and s["visits_on_time"] == on_schedule
    assert s["visited_children"] == len({v.child_id for v in visits if in_march(v.visited_on)})

    raised = [a for a in all_rows(Alert) if in_march(a.raised_at)]
    assert s["alerts_raised"] == len(raised)
    assert s["alerts_done"] == sum(1 for a in raised if a.status == "done")
    assert s["alerts_on_time"] == sum(1 for a in raised if a.status == "done" and a.closed_at <= a.deadline)
    end = MARCH.end_dt
    assert s["alerts_overdue_open"] == sum(
        1
        for a in all_rows(Alert)
        if a.raised_at < end and a.deadline < end and (a.closed_at is None or a.closed_at >= end)
    )
    red_alerts = next(row for row in figures.alerts_by_severity if row[0] == "红")
    assert red_alerts[1] == sum(1 for a in raised if a.severity == "red")

    cases = [c for c in all_rows(Case) if c.opened_on <= MARCH.end]
    closed = [c for c in cases if c.closed_on and c.closed_on <= MARCH.end]
    assert s["cases_new"] == sum(1 for c in cases if in_march(c.opened_on))
    assert s["cases_closed"] == sum(1 for c in all_rows(Case) if in_march(c.closed_on))
    assert s["cases_open"] == len(cases) - len(closed)
    assert dict(figures.cases_by_stage)["介入"] == sum(1 for c in cases if c.stage == "intervene")

    held = [a for a in all_rows(Activity) if in_march(a.starts_at)]
    attendance = [x for x in all_rows(Attendance) if x.activity_id in {a.id for a in held}]
    assert s["activities"] == len(held)
    assert s["attendance"] == len(attendance)
    assert s["attendance_children"] == len({x.child_id for x in attendance if x.child_id in kids})

    spent = [e for e in all_rows(Expense) if e.status in ("approved", "paid")]
    assert s["funds_spent"] == sum((e.amount for e in spent if in_march(e.spent_on)), Decimal("0"))
    assert s["funds_spent_total"] == sum((e.amount for e in spent if e.spent_on <= MARCH.end), Decimal("0"))
    received = sum((f.amount for f in all_rows(FundSource) if f.received_on <= MARCH.end), Decimal("0"))
    assert "四月到账" not in {f.name for f in all_rows(FundSource) if f.received_on <= MARCH.end}
    assert s["funds_received"] == received
    assert s["funds_rate"] == round(s["funds_spent_total"] / received, 4)


def test_registers_by_category_level_and_village(work):
    figures = reports.compute_figures(MARCH, None)
    children = [c for c in all_rows(Child) if c.archived_at is None]
    by_category = dict(figures.by_category)
    for name, count in by_category.items():
        assert count == sum(1 for c in children if name in {cat.name for cat in c.categories})
    by_level = dict(figures.by_level)
    assert by_level["红"] == sum(1 for c in children if c.current_level == "red")
    assert by_level["未评估"] == sum(1 for c in children if c.current_level is None)
    assert sum(by_level.values()) == len(children)
    first = figures.by_village[0]
    village = db.session.scalar(db.select(Village).order_by(Village.sort_order))
    assert first[0] == village.name
    assert first[1] == sum(1 for c in children if c.village_id == village.id)


def test_village_scope_counts_only_that_village(work):
    village = db.session.scalar(db.select(Village).order_by(Village.sort_order))
    figures = reports.compute_figures(MARCH, [village.id], village.name)
    s = figures.summary
    kids = {c.id for c in all_rows(Child) if c.village_id == village.id and c.archived_at is None}
    assert s["children"] == len(kids)
    assert s["visits"] == sum(1 for v in all_rows(Visit) if v.child_id in kids and in_march(v.visited_on))
    assert s["alerts_raised"] == sum(
        1 for a in all_rows(Alert) if a.child_id in kids and in_march(a.raised_at)
    )
    held = [
        a
        for a in all_rows(Activity)
        if in_march(a.starts_at) and (not a.villages or village.id in {v.id for v in a.villages})
    ]
    assert s["activities"] == len(held)
    assert s["funds_received"] is None
    assert s["funds_spent"] == sum(
        (
            e.amount
            for e in all_rows(Expense)
            if e.child_id in kids and e.status != "draft" and in_march(e.spent_on)
        ),
        Decimal("0"),
    )
    assert [row[0] for row in figures.by_village] == [village.name]


def test_archived_children_leave_the_register(work):
    child = work[0]
    child.archived_at = dt.datetime(2026, 3, 15)
    db.session.commit()
    before_archiving = reports.compute_figures(reports.month_period(2026, 2), None).summary["children"]
    after = reports.compute_figures(MARCH, None).summary["children"]
    assert before_archiving == after + 1


def test_xlsx_has_every_sheet_and_definitions(work, client, auth):
    auth.login("inspector")
    response = client.get("/admin/reports/download/?kind=monthly&year=2026&month=3")
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.data))
    for name in (
        "汇总",
        "按类别",
        "按等级",
        "按村社区",
        "措施分层",
        "预警处置",
        "个案",
        "活动",
        "资金",
        "指标说明",
    ):
        assert name in book.sheetnames, name
    summary = {row[0]: row[1] for row in book["汇总"].iter_rows(min_row=7, values_only=True) if row[0]}
    expected = reports.compute_figures(MARCH, None).summary
    assert summary["在册儿童数"] == expected["children"]
    assert summary["本期走访次数"] == expected["visits"]
    assert summary["预警按期处置率"] == pytest.approx(expected["alerts_rate"])
    notes = [row[0] for row in book["指标说明"].iter_rows(min_row=4, values_only=True) if row[0]]
    for _, label, _ in reports.DEFINITIONS:
        assert label in notes
    db.session.expire_all()
    assert db.session.scalar(
        db.select(AuditLog).where(AuditLog.action == "export", AuditLog.table_name == "report")
    )


def test_phase_report_has_monthly_trend(work, client, auth):
    auth.login("clerk")
    response = client.get("/admin/reports/download/?kind=phase&year=2026&phase=deploy")
    book = load_workbook(io.BytesIO(response.data))
    rows = [row for row in book["月度趋势"].iter_rows(min_row=2, values_only=True)]
    assert [row[0] for row in rows] == ["2026年1月", "2026年2月"]
    february = reports.compute_figures(reports.month_period(2026, 2), None).summary
    keys = ("assessments_done", "visits", "services_delivered", "alerts_raised", "alerts_on_time")
    keys += ("cases_closed", "activities", "attendance")
    assert rows[1][1:] == tuple(february[key] for key in keys)
    assert february["visits"] > 0
    assert "部署启动阶段" in book["汇总"]["A2"].value


def test_empty_tables_make_a_report_of_zeros(client, auth):
    auth.login("clerk")
    response = client.get("/admin/reports/?preview=1&kind=monthly&year=2026&month=3")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-key="visits">0<' in page and 'data-key="visits_rate">—<' in page
    assert client.get("/admin/reports/download/?kind=phase&year=2026&phase=summary").status_code == 200


def test_director_report_is_limited_to_own_village(work, client, auth):
    own = db.session.scalar(db.select(Village).where(Village.name == "云岭村"))
    other = db.session.scalar(db.select(Village).where(Village.name == "桃源村"))
    own_children = db.session.scalar(
        db.select(db.func.count()).where(Child.village_id == own.id, Child.archived_at.is_(None))
    )
    auth.login("director1")
    page = client.get(f"/admin/reports/?preview=1&year=2026&month=3&village={other.id}").get_data(
        as_text=True
    )
    assert f'data-key="children">{own_children}<' in page
    assert "桃源村" not in page


def test_finance_has_no_report_page(client, auth):
    auth.login("finance")
    assert client.get("/admin/reports/").status_code == 403
