"""报表: every figure equals the independent recomputation (tests/test_indicators.py); the tables add up
to the summary; xlsx layout; scope; empty tables."""

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
    CaseEvent,
    Child,
    Expense,
    FundSource,
    RuleVersion,
    SupportService,
    Village,
    Visit,
    db,
)
from services import indicators, reports
from services.assessment import refresh_level
from services.indicators import Frame
from services.register import archive_child
from tests.test_indicators import Base, actual, expected

MARCH = reports.month_period(2026, 3)


@pytest.fixture
def work(app):
    """Records of every kind in and around March 2026, spread over villages; deterministic."""
    rng = random.Random(7)
    children = db.session.scalars(db.select(Child).order_by(Child.id)).all()
    rules = RuleVersion(
        snapshot={
            "levels": {
                lv: {"visit_days": 30, "reassess_days": 90} for lv in ("red", "orange", "yellow", "green")
            }
        },
        fingerprint="reports-test",
    )
    db.session.add(rules)
    db.session.flush()
    days = [dt.date(2026, 2, 20) + dt.timedelta(days=i) for i in range(45)]  # Feb 20 – Apr 5
    levels = ["red", "orange", "yellow", "green"]
    for child in children[:80]:
        level = rng.choice(levels)
        for _ in range(rng.randint(0, 2)):
            on = rng.choice(days)
            db.session.add(
                Assessment(
                    child_id=child.id,
                    assessed_on=on,
                    total_score=20,
                    computed_level=level,
                    level=level,
                    rule_version_id=rules.id,
                    status=rng.choice(["approved", "approved", "submitted"]),
                    next_reassess_on=on + dt.timedelta(days=90),
                )
            )
        db.session.flush()
        refresh_level(child)  # the child's level follows its approved assessments, as on approval
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
            stage = "closed" if closed_on else rng.choice(["identify", "assess", "intervene", "track"])
            case = Case(
                child_id=child.id,
                case_type="absence",
                opened_on=opened,
                stage=stage,
                closed_on=closed_on,
                stage_changed_at=dt.datetime.combine(closed_on or opened, dt.time(10)),
            )
            case.events.append(
                CaseEvent(at=dt.datetime.combine(opened, dt.time(9)), kind="open", to_stage="identify")
            )
            if stage != "identify":
                case.events.append(
                    CaseEvent(
                        at=dt.datetime.combine(closed_on or opened, dt.time(10)), kind="stage", to_stage=stage
                    )
                )
            db.session.add(case)
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


def march_frame(village_ids=None) -> Frame:
    return Frame.of_period(MARCH.start, MARCH.end, village_ids)


def test_figures_equal_the_recomputation(work):
    figures = reports.compute_figures(MARCH, None)
    base = Base()
    for key, value in figures.values.items():
        assert actual(value) == expected(base, key, figures.frame), key
    assert figures.values["visits_done"].value > 0 and figures.values["alerts_raised"].value > 0
    # the tables break down the same computations
    due = base.measures_due(figures.frame)
    red = next(row for row in figures.services_by_tier if row[0] == "红")
    red_due = [s for s in due if s.tier == "red"]
    assert red[1] == len(red_due)
    assert red[2] == sum(1 for s in red_due if s.status == "delivered" and s.delivered_on <= s.due_on)
    assert sum(row[1] for row in figures.services_by_kind) == len(due)
    red_alerts = next(row for row in figures.alerts_by_severity if row[0] == "红")
    assert red_alerts[1] == sum(
        1 for a in base.alerts if a.severity == "red" and MARCH.start_dt <= a.raised_at < MARCH.end_dt
    )
    stages = dict(figures.cases_by_stage)
    assert stages["介入"] == sum(1 for _, stage in base.cases_then(figures.frame) if stage == "intervene")
    assert sum(stages.values()) == figures.values["cases_closed_rate"].denominator


def test_registers_by_category_level_and_village(work):
    figures = reports.compute_figures(MARCH, None)
    base = Base()
    kids = base.registered(figures.frame)
    by_category = dict(figures.by_category)
    for name, count in by_category.items():
        assert count == sum(1 for c in kids if name in {cat.name for cat in c.categories})
    by_level = dict(figures.by_level)
    levels = [base.latest(c.id, MARCH.end) for c in kids]
    assert by_level["红"] == sum(1 for a in levels if a and a.level == "red")
    assert by_level["未评估"] == sum(1 for a in levels if a is None)
    assert sum(by_level.values()) == len(kids)
    first = figures.by_village[0]
    village = db.session.scalar(db.select(Village).order_by(Village.sort_order))
    assert first[0] == village.name
    assert first[1] == sum(1 for c in kids if c.village_id == village.id)


def test_categories_of_the_whole_town_now_count_the_register_only(app):
    """The town's current counts are read as every link less the children out of register: an
    archived child and one registered after today leave their categories' counts."""
    children = db.session.scalars(db.select(Child).where(Child.categories.any()).order_by(Child.id)).all()
    archive_child(children[0], "moved", "迁出（测试）")
    children[1].registered_on = dt.date.today() + dt.timedelta(days=3)
    db.session.commit()
    frame = Frame.year_to_date(None)
    kids = Base().registered(frame)
    assert children[0] not in kids and children[1] not in kids
    counts = {name: n for _, name, n in indicators.category_distribution(frame)}
    for name, count in counts.items():
        assert count == sum(1 for c in kids if name in {cat.name for cat in c.categories}), name
    every_village = [v.id for v in db.session.scalars(db.select(Village))]
    assert indicators.category_distribution(
        frame.for_villages(every_village)
    ) == indicators.category_distribution(Frame.year_to_date(None))


def test_village_scope_counts_only_that_village(work):
    village = db.session.scalar(db.select(Village).order_by(Village.sort_order))
    figures = reports.compute_figures(MARCH, [village.id], village.name)
    base = Base()
    for key, value in figures.values.items():
        assert actual(value) == expected(base, key, figures.frame), key
    assert figures.values["funds_paid"].value is None  # town-wide money
    assert [row[0] for row in figures.by_village] == [village.name]
    assert figures.funds == []


def test_archived_children_leave_the_register(work):
    child = next(c for c in work if c.archived_at is None)
    archive_child(child, "moved", "迁出", now=dt.datetime(2026, 3, 15, 10))
    db.session.commit()
    before_archiving = reports.compute_figures(reports.month_period(2026, 2), None).summary["registered"]
    after = reports.compute_figures(MARCH, None).summary["registered"]
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
    expected_values = reports.compute_figures(MARCH, None).values
    assert summary["在册儿童数"] == expected_values["registered"].value
    assert summary["巡查走访次数"] == expected_values["visits_done"].value
    assert summary["预警按期处置率"] == pytest.approx(float(expected_values["alerts_on_time_rate"].value))
    notes = [row[0] for row in book["指标说明"].iter_rows(min_row=4, values_only=True) if row[0]]
    for indicator in indicators.INDICATORS.values():
        assert indicator.name in notes
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
    february = reports.compute_figures(reports.month_period(2026, 2), None).values
    want = tuple("—" if february[k].value is None else february[k].value for k in reports.MONTH_COLUMNS)
    got = tuple(rows[1][1:])
    assert got == pytest.approx(tuple(float(v) if not isinstance(v, str) else v for v in want))
    assert february["visits_done"].value > 0
    assert "部署启动阶段" in book["汇总"]["A2"].value


def test_empty_tables_make_a_report_of_zeros(client, auth):
    auth.login("clerk")
    response = client.get("/admin/reports/?preview=1&kind=monthly&year=2026&month=3")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-key="visits_done">0<' in page and 'data-key="alerts_on_time_rate">—<' in page
    assert client.get("/admin/reports/download/?kind=phase&year=2026&phase=summary").status_code == 200


def test_director_report_is_limited_to_own_village(work, client, auth):
    own = db.session.scalar(db.select(Village).where(Village.name == "云岭村"))
    other = db.session.scalar(db.select(Village).where(Village.name == "桃源村"))
    own_children = len(Base().registered(march_frame([own.id])))
    auth.login("director1")
    page = client.get(f"/admin/reports/?preview=1&year=2026&month=3&village={other.id}").get_data(
        as_text=True
    )
    assert f'data-key="registered">{own_children}<' in page
    assert "桃源村" not in page


def test_finance_has_no_report_page(client, auth):
    auth.login("finance")
    assert client.get("/admin/reports/").status_code == 403
