"""一人一档: a child with records of every kind shows them all; scoping; audit; print layout."""

import datetime as dt
import re
from decimal import Decimal

import pytest

from choices import AlertStatus, AssessmentStatus, ExpenseStatus, ServiceStatus
from models import (
    Activity,
    Alert,
    Assessment,
    Attendance,
    AuditLog,
    Case,
    CaseConference,
    CaseEvent,
    CaseFollowUp,
    CaseMeasure,
    CaseNeeds,
    CaseService,
    Child,
    Expense,
    FundSource,
    MandatoryReport,
    MentorPairing,
    RuleVersion,
    Staff,
    SupportService,
    User,
    Village,
    Visit,
    db,
)


def _village(name):
    return db.session.scalar(db.select(Village).where(Village.name == name))


def _child_in(village_name) -> Child:
    village = _village(village_name)
    return db.session.scalar(
        db.select(Child).where(Child.village_id == village.id, Child.archived_at.is_(None)).order_by(Child.id)
    )


def add_records_of_every_kind(child: Child) -> dict:
    """One (or two) records of every kind the dossier shows, with distinctive texts."""
    staff = db.session.scalar(db.select(Staff).order_by(Staff.id))
    clerk = db.session.scalar(db.select(User).where(User.username == "clerk"))
    rules = RuleVersion(snapshot={}, fingerprint=f"test-{child.id}")
    db.session.add(rules)
    db.session.flush()
    first = Assessment(
        child_id=child.id,
        assessed_on=dt.date(2026, 1, 10),
        total_score=24,
        computed_level="yellow",
        level="yellow",
        rule_version_id=rules.id,
        status=AssessmentStatus.APPROVED.value,
    )
    second = Assessment(
        child_id=child.id,
        assessed_on=dt.date(2026, 3, 5),
        total_score=10,
        computed_level="red",
        level="red",
        worsened=True,
        rule_version_id=rules.id,
        status=AssessmentStatus.APPROVED.value,
    )
    service = SupportService(
        child_id=child.id,
        tier="red",
        kind="safety_net",
        status=ServiceStatus.DELIVERED.value,
        due_on=dt.date(2026, 3, 8),
        delivered_on=dt.date(2026, 3, 7),
        content="对接低保政策-测试内容",
    )
    visit = Visit(
        child_id=child.id,
        visited_on=dt.date(2026, 3, 20),
        kind="home",
        notes="入户走访-测试记录",
        visitors=[staff],
    )
    report = MandatoryReport(
        reporter_kind="teacher",
        received_at=dt.datetime(2026, 2, 1, 9, 0),
        child_id=child.id,
        village_id=child.village_id,
        situation="强制报告-测试情况",
        urgency="urgent",
    )
    alert = Alert(
        source="rule",
        severity="red",
        child_id=child.id,
        village_id=child.village_id,
        title="预警-测试标题",
        deadline=dt.datetime(2026, 3, 6, 9, 0),
        status=AlertStatus.OPEN.value,
    )
    case = Case(child_id=child.id, case_type="absence", opened_on=dt.date(2026, 3, 6), stage="intervene")
    case.events = [CaseEvent(kind="stage", from_stage="assess", to_stage="intervene", note="个案-测试进展")]
    activity = Activity(title="红色监护课堂-测试活动", starts_at=dt.datetime(2026, 4, 1, 9, 0))
    db.session.add_all([first, second, service, visit, report, alert, case, activity])
    db.session.flush()
    attendance = Attendance(activity_id=activity.id, child_id=child.id, recorded_by_id=clerk.id)
    pairing = MentorPairing(staff_id=staff.id, child_id=child.id, start_on=dt.date(2026, 2, 1))
    source = FundSource(
        name="区级试点专项资金-测试",
        kind="district",
        amount=Decimal("10000"),
        received_on=dt.date(2026, 1, 1),
    )
    db.session.add_all([attendance, pairing, source])
    db.session.flush()
    expenses = [
        Expense(
            spent_on=dt.date(2026, 3, 10),
            amount=Decimal("120.50"),
            source_id=source.id,
            category="professional",
            payee="心理咨询-测试收款方",
            child_id=child.id,
            service_id=service.id,
            status=ExpenseStatus.PAID.value,
        ),
        Expense(
            spent_on=dt.date(2026, 3, 11),
            amount=Decimal("80.00"),
            source_id=source.id,
            category="other",
            payee="草稿收款方",
            child_id=child.id,
            status=ExpenseStatus.DRAFT.value,
        ),
    ]
    db.session.add_all(expenses)
    db.session.commit()
    return {
        "assessments": [first.id, second.id],
        "texts": [
            "对接低保政策-测试内容",
            "入户走访-测试记录",
            "强制报告-测试情况",
            "预警-测试标题",
            "个案-测试进展",
            "红色监护课堂-测试活动",
            staff.name,
            "心理咨询-测试收款方",
        ],
    }


def test_dossier_shows_every_kind_of_record(client, auth):
    child = _child_in("云岭村")
    made = add_records_of_every_kind(child)
    guardians = [link.guardian.name for link in child.guardian_links]
    auth.login("clerk")
    response = client.get(f"/admin/dossier/?id={child.id}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert child.name in page
    for category in child.categories:
        assert category.name in page
    for name in guardians:
        assert name in page
    for text in made["texts"]:
        assert text in page, text
    # the level history is drawn as a timeline: yellow then red
    timeline = page.split('id="level-timeline"')[1].split("</ol>")[0]
    assert timeline.index("2026-01-10") < timeline.index("2026-03-05")
    assert "level-yellow" in timeline and "level-red" in timeline
    # the money spent counts approved or paid expenses, not drafts
    spent = db.session.scalars(db.select(Expense).where(Expense.child_id == child.id)).all()
    total = sum((e.amount for e in spent if e.status != ExpenseStatus.DRAFT.value), Decimal("0"))
    assert any(e.status == ExpenseStatus.DRAFT.value for e in spent)
    assert f'id="dossier-expense-total">{total:.2f}<' in page
    # the ID number is masked; the reveal button is offered to a clerk
    assert child.id_number not in page
    assert child.id_number[:4] + "**********" + child.id_number[-4:] in page
    assert 'id="reveal-id"' in page


def test_dossier_of_a_child_without_records_has_every_section(client, auth):
    from seeds.demo import id_number

    child = Child(
        name="新登记儿童",
        gender="M",
        id_number=id_number(dt.date(2016, 1, 2), 900, True),
        birth_date=dt.date(2016, 1, 2),
        village_id=_village("桃源村").id,
    )
    db.session.add(child)
    db.session.commit()
    auth.login("clerk")
    page = client.get(f"/admin/dossier/?id={child.id}").get_data(as_text=True)
    for section in ("basic", "guardians", "levels", "assessments", "services", "visits", "alerts", "cases"):
        assert f'id="sec-{section}"' in page
    for section in ("activities", "pairing", "funds"):
        assert f'id="sec-{section}"' in page
    assert "尚无已审核的评估" in page and "未登记监护人" in page
    assert page.count("暂无记录") == 8


def test_dossier_is_audited(client, auth):
    child = _child_in("云岭村")
    auth.login("clerk")
    before = db.session.scalar(
        db.select(db.func.count()).select_from(AuditLog).where(AuditLog.action == "view")
    )
    client.get(f"/admin/dossier/?id={child.id}")
    client.get(f"/admin/dossier/print/?id={child.id}")
    db.session.expire_all()
    rows = db.session.scalars(
        db.select(AuditLog).where(AuditLog.action == "view", AuditLog.table_name == "child")
    ).all()
    assert len(rows) == before + 2
    assert {r.record_id for r in rows[-2:]} == {child.id}
    assert rows[-1].username == "clerk"


def test_director_sees_only_own_village_dossier(client, auth):
    own = _child_in("云岭村")
    other = _child_in("桃源村")
    auth.login("director1")
    assert client.get(f"/admin/dossier/?id={own.id}").status_code == 200
    response = client.get(f"/admin/dossier/?id={other.id}")
    assert response.status_code == 404
    assert "记录不存在" in response.get_data(as_text=True)
    assert other.name not in response.get_data(as_text=True)
    assert client.get(f"/admin/dossier/print/?id={other.id}").status_code == 404
    # the finder lists only the own village's children
    page = client.get(f"/admin/dossier/?q={other.id_number}").get_data(as_text=True)
    assert "没有找到" in page


def test_inspector_sees_masked_id_without_reveal(client, auth):
    child = _child_in("云岭村")
    auth.login("inspector")
    page = client.get(f"/admin/dossier/?id={child.id}").get_data(as_text=True)
    assert child.id_number not in page
    assert 'id="reveal-id"' not in page


@pytest.mark.parametrize("username", ["finance"])
def test_roles_without_dossier_are_refused(client, auth, username):
    child = _child_in("云岭村")
    auth.login(username)
    assert client.get(f"/admin/dossier/?id={child.id}").status_code == 403


def test_unknown_or_bad_id_is_not_found(client, auth):
    auth.login("clerk")
    assert client.get("/admin/dossier/?id=999999").status_code == 404
    assert client.get("/admin/dossier/?id=abc").status_code == 404


def test_print_layout_has_no_navigation_and_breaks_pages(client, auth):
    child = _child_in("云岭村")
    add_records_of_every_kind(child)
    auth.login("clerk")
    page = client.get(f"/admin/dossier/print/?id={child.id}").get_data(as_text=True)
    assert "navbar" not in page
    assert "css/print.css" in page
    assert "dossier-print-button" in page
    assert page.count('class="dossier-section') >= 10
    css = "".join(client.get("/static/css/print.css").get_data(as_text=True).split())
    assert "@page{size:A4" in css
    assert '@bottom-center{content:"第"counter(page)"页共"counter(pages)"页"' in css
    # only long sections start a new page; a small file flows on
    assert ".dossier-section.large:not(.is-empty){break-before:page" in css
    assert "large" not in re.findall(r'class="dossier-section([^"]*)"', page)[0]


def test_child_list_links_to_the_dossier(client, auth):
    child = _child_in("云岭村")
    auth.login("clerk")
    page = client.get("/admin/child/?search=" + child.id_number).get_data(as_text=True)
    assert f"/admin/dossier/?id={child.id}" in page


def _dossier_statements(client, child_id: int) -> list[str]:
    from sqlalchemy import event

    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert client.get(f"/admin/dossier/?id={child_id}").status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    return statements


def _add_whole_case(child, n: int) -> None:
    """A closed case with every record a case holds (需求评估, 会商 with 分工, measures, services,
    follow-ups, moves), so the dossier's case section loads each of its relations."""
    day = dt.date(2026, 4, 1) + dt.timedelta(days=10 * n)
    case = Case(child_id=child.id, case_type="abuse", opened_on=day, stage="closed", closed_on=day)
    case.closure_reason, case.closing_evaluation = "goals_met", f"第{n}个案结案评估"
    case.events = [CaseEvent(kind="stage", from_stage="track", to_stage="closed", note=f"第{n}次结案")]
    case.needs = CaseNeeds(
        assessed_on=day,
        problems={"care": "照料不足"},
        risk_rating="high",
        risk="独自在家",
        child_strengths="懂事",
        family_strengths="亲属愿意照料",
    )
    conference = CaseConference(
        held_on=day, departments=["civil"], attendees="民政办", problem="问题", decisions=f"第{n}次会商决定"
    )
    case.conferences = [conference]
    decided = CaseMeasure(content="会商分工", responsible="村委会", due_on=day, source="conference")
    decided.conference = conference
    own = CaseMeasure(content="方案措施", responsible="社工", due_on=day, source="plan")
    case.measures = [decided, own]
    db.session.add(case)
    db.session.flush()
    for measure in (decided, own):
        db.session.add(
            CaseService(
                case_id=case.id,
                measure_id=measure.id,
                delivered_on=day,
                provider="社工",
                content="服务",
                recorded_at=dt.datetime.combine(day, dt.time(9)),
            )
        )
    db.session.add(
        CaseFollowUp(
            case_id=case.id,
            followed_on=day,
            method="phone",
            followed_by="社工",
            change="情况稳定",
            stage="track",
            recorded_at=dt.datetime.combine(day, dt.time(10)),
        )
    )
    db.session.commit()


def test_dossier_query_count_is_bounded(app, client, auth):
    """The page reads each kind of record in a fixed number of queries: a child with one whole case
    and one with three take the same number of statements."""
    child = _child_in("云岭村")
    add_records_of_every_kind(child)
    _add_whole_case(child, 1)
    auth.login("clerk")
    child_id = child.id
    client.get(f"/admin/dossier/?id={child_id}")
    first = _dossier_statements(client, child_id)
    _add_whole_case(child, 2)
    _add_whole_case(child, 3)
    again = _dossier_statements(client, child_id)
    assert len(again) == len(first), "\n".join(s[:150] for s in again)
    assert len(first) <= 32, "\n".join(s[:150] for s in first)


def test_the_closed_case_tells_its_whole_story_on_screen_and_in_print(client, auth):
    """The demo's closed case: its 需求评估, every 会商 with departments, attendees and decisions, the
    plan's goals and measures labelled, the services, the follow-ups and the closing evaluation, and
    the child's 档案编号 — on the page and in its print layout."""
    case = db.session.scalar(db.select(Case).where(Case.stage == "closed").order_by(Case.id))
    child = case.child
    assert case.closing_evaluation and case.conferences and case.needs and case.services and case.follow_ups
    auth.login("supervisor")
    for url in (f"/admin/dossier/?id={child.id}", f"/admin/dossier/print/?id={child.id}"):
        html = client.get(url).get_data(as_text=True)
        assert child.file_no in html
        assert f"结案评估：</b>{case.closing_evaluation}" in html
        assert "结案原因：</b>帮扶目标达成" in html
        for conference in case.conferences:
            assert f"会商决定：{conference.decisions}" in html
            assert conference.attendees in html and conference.problem in html
            for action in conference.actions:
                assert f"{action.responsible}——{action.content}" in html
        assert f"<b>帮扶目标：</b>{case.plan_goals}" in html and "<b>帮扶措施：</b>" in html
        for measure in case.measures:
            assert measure.content in html
        assert case.needs.risk in html and case.needs.child_strengths in html
        for follow_up in case.follow_ups:
            assert follow_up.change in html
    printed = client.get(f"/admin/dossier/print/?id={child.id}").get_data(as_text=True)
    assert 'id="running-header"' in printed and printed.index("running-header") < printed.index("sec-basic")
