"""The case page as its users see it: the stage control, the gates' messages, the links, the plan page,
the responsible-person picker, and what a refused form keeps."""

import datetime as dt
import re

import pytest

from models import Case, Child, MandatoryReport, Staff, User, db
from services import cases
from tests.conftest import AuthActions, csrf_token, hidden_value

TODAY = dt.date(2026, 6, 10)


@pytest.fixture
def case(app):
    from services import clock

    clock.set_today(TODAY)
    social = db.session.scalar(db.select(User).where(User.username == "social"))
    child = db.session.scalar(
        db.select(Child).where(Child.village_id == social.assigned_villages[0].id).order_by(Child.id)
    )
    found = cases.open_case(child.id, "abuse", opened_on=TODAY, user_id=None, now=dt.datetime(2026, 6, 10, 9))
    db.session.commit()
    return found


def page(client, case) -> str:
    return client.get(f"/admin/case/details/?id={case.id}").get_data(as_text=True)


def options(html: str, select_id: str) -> list[tuple[str, str, bool]]:
    block = re.search(rf'<select[^>]*id="{select_id}"[^>]*>(.*?)</select>', html, re.S).group(1)
    return [
        (value, label.strip(), "selected" in attrs)
        for value, attrs, label in re.findall(r'<option value="([^"]*)"([^>]*)>([^<]*)</option>', block)
    ]


def test_the_stage_control_offers_only_the_allowed_moves_next_one_chosen(app, client, case):
    AuthActions(client).login("social")
    html = page(client, case)
    assert options(html, "to_stage") == [("assess", "评估", True)]
    assert re.search(r'<div id="closing-box" hidden>', html)
    client.post(
        f"/admin/case/move/?id={case.id}",
        data={"csrf_token": csrf_token(client, "/admin/"), "to_stage": "assess"},
    )
    html = page(client, case)
    assert options(html, "to_stage") == [("intervene", "介入", True)]
    assert "进入「介入」前须完成需求评估" in html  # the gate of the chosen move, before pressing


def test_in_track_the_closing_box_shows_for_the_preselected_close(app, client, case):
    from tests.test_cases import put_in

    put_in(case, cases.S.TRACK, db.session.scalar(db.select(User).where(User.username == "supervisor")))
    db.session.commit()
    AuthActions(client).login("social")
    html = page(client, case)
    assert options(html, "to_stage") == [("closed", "结案", True), ("intervene", "介入", False)]
    assert '<div id="closing-box">' in html


def test_a_refused_move_says_why_and_keeps_the_closing_evaluation(app, client, case):
    from tests.test_cases import put_in

    user = db.session.scalar(db.select(User).where(User.username == "supervisor"))
    put_in(case, cases.S.TRACK, user)
    db.session.commit()
    AuthActions(client).login("supervisor")
    response = client.post(
        f"/admin/case/move/?id={case.id}",
        data={
            "csrf_token": csrf_token(client, "/admin/"),
            "to_stage": "closed",
            "closure_reason": "goals_met",
            "closing_evaluation": "目标达成，监护恢复稳定",
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "结案前须至少有一条「跟踪」阶段的跟进记录" in html
    assert "目标达成，监护恢复稳定</textarea>" in html
    db.session.expire_all()
    assert (
        db.session.get(Case, case.id).stage == "track"
        and db.session.get(Case, case.id).closing_evaluation is None
    )


def test_the_case_page_links_to_the_dossier_and_its_report(app, client):
    from services import clock
    from services.cases import open_case_from_report

    clock.set_today(TODAY)
    report = db.session.scalar(
        db.select(MandatoryReport).where(
            MandatoryReport.child_id.is_not(None), MandatoryReport.outcome.is_(None)
        )
    )
    case = open_case_from_report(report, "abuse", "核实属实", user_id=None, now=dt.datetime(2026, 6, 10, 9))
    db.session.commit()
    AuthActions(client).login("supervisor")
    html = page(client, case)
    assert f'href="/admin/dossier/?id={case.child_id}"' in html and case.child.file_no in html
    assert f'href="/admin/mandatoryreport/details/?id={report.id}"' in html


def test_the_plan_page_saves_and_returns_to_the_case(app, client, case):
    social = db.session.scalar(db.select(User).where(User.username == "social"))
    AuthActions(client).login("social")
    html = client.get(f"/admin/case/plan/?id={case.id}").get_data(as_text=True)
    choices = options(html, "professional_id")
    assert choices[0] == ("", "请选择负责人", False)
    assert "__None" not in html
    labels = dict((v, label) for v, label, _ in choices)
    me = str(social.staff_id)
    assert me in labels and "社工" in labels[me] and "本人" in labels[me]
    assert all("（" in label for v, label, _ in choices if v)
    assert dict((v, sel) for v, _, sel in choices)[me]  # the logged-in 社工 is preselected
    kinds = {db.session.get(Staff, int(v)).kind for v, _, _ in choices if v}
    assert kinds <= {"social", "supervisor", "expert", "director"}
    response = client.post(
        f"/admin/case/plan/?id={case.id}",
        data={
            "csrf_token": csrf_token(client, f"/admin/case/plan/?id={case.id}"),
            "plan_goals": "恢复稳定监护",
            "professional_id": me,
            "measure_rows": "2",
            "measure_content_0": "每周入户一次",
            "measure_who_0": "社工",
            "measure_due_0": "2026-07-10",
            "measure_content_1": "",
        },
    )
    assert response.status_code == 302 and response.headers["Location"].endswith(
        f"/admin/case/details/?id={case.id}"
    )
    db.session.expire_all()
    saved = db.session.get(Case, case.id)
    assert saved.plan_goals == "恢复稳定监护" and saved.professional_id == social.staff_id
    assert [(m.content, m.responsible, m.due_on) for m in saved.measures] == [
        ("每周入户一次", "社工", dt.date(2026, 7, 10))
    ]


def test_a_plan_with_an_unlisted_professional_is_refused_and_kept(app, client, case):
    AuthActions(client).login("social")
    grid = db.session.scalar(db.select(Staff).where(Staff.kind == "grid"))
    response = client.post(
        f"/admin/case/plan/?id={case.id}",
        data={
            "csrf_token": csrf_token(client, f"/admin/case/plan/?id={case.id}"),
            "plan_goals": "我写的目标",
            "professional_id": str(grid.id),
            "measure_rows": "1",
            "measure_content_0": "我写的措施",
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "不在可选名单中" in html
    assert "我写的目标" in html and "我写的措施" in html
    db.session.expire_all()
    assert db.session.get(Case, case.id).plan_goals is None


def test_needs_page_and_gate_through_http(app, client, case):
    AuthActions(client).login("social")
    token = csrf_token(client, "/admin/")
    client.post(f"/admin/case/move/?id={case.id}", data={"csrf_token": token, "to_stage": "assess"})
    response = client.post(
        f"/admin/case/needs/?id={case.id}",
        data={
            "csrf_token": token,
            "assessed_on": "2026-06-10",
            "problem_care": "无人照看",
            "risk_rating": "high",
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "请写明风险判断" in html and "无人照看" in html
    response = client.post(
        f"/admin/case/needs/?id={case.id}",
        data={
            "csrf_token": token,
            "assessed_on": "2026-06-10",
            "problem_care": "无人照看",
            "risk_rating": "high",
            "risk": "独自在家",
            "child_strengths": "懂事",
            "family_strengths": "姑姑可照料",
        },
    )
    assert response.status_code == 302
    html = page(client, case)
    assert "问题 · 生活照料" in html and "无人照看" in html and "姑姑可照料" in html


def test_record_pages_are_for_writers_only(app, client, case):
    AuthActions(client).login("director1")
    for path in ("needs", "plan", "conference"):
        assert client.get(f"/admin/case/{path}/?id={case.id}").status_code == 403
    AuthActions(client).logout()
    AuthActions(client).login("inspector")
    assert client.get(f"/admin/case/details/?id={case.id}").status_code == 200
    assert client.get(f"/admin/case/plan/?id={case.id}").status_code == 403


def test_service_and_follow_up_forms_keep_what_was_typed(app, client, case):
    from tests.test_cases import put_in

    put_in(case, cases.S.INTERVENE, db.session.scalar(db.select(User).where(User.username == "supervisor")))
    db.session.commit()
    AuthActions(client).login("social")
    token = csrf_token(client, "/admin/")
    response = client.post(
        f"/admin/case/service/?id={case.id}",
        data={
            "csrf_token": token,
            "measure_id": "",
            "delivered_on": "2026-06-10",
            "provider": "社工甲",
            "content": "入户疏导",
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "请选择所落实的帮扶措施" in html and "入户疏导</textarea>" in html
    response = client.post(
        f"/admin/case/follow-up/?id={case.id}",
        data={
            "csrf_token": token,
            "followed_on": "2026-06-10",
            "method": "phone",
            "followed_by": "社工甲",
            "change": "情绪稳定",
        },
    )
    assert response.status_code == 302
    assert "情绪稳定" in page(client, case)


def test_an_edit_moving_the_opening_after_the_records_is_refused_and_changes_nothing(app, client, case):
    from services import clock
    from tests.test_cases import put_in

    put_in(case, cases.S.INTERVENE, db.session.scalar(db.select(User).where(User.username == "supervisor")))
    db.session.commit()
    clock.set_today(TODAY + dt.timedelta(days=5))  # a later opening date that is not in the future
    AuthActions(client).login("social")
    url = f"/admin/case/edit/?id={case.id}"
    form = client.get(url).get_data(as_text=True)
    later = (TODAY + dt.timedelta(days=3)).isoformat()
    data = {
        "csrf_token": hidden_value(form, "csrf_token"),
        "version_seen": hidden_value(form, "version_seen"),
    }
    response = client.post(url, data={**data, "case_type": "abuse", "opened_on": later})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "立案日期不能晚于个案中已有记录的最早日期" in html
    assert "立案日期不能晚于今天" not in html
    db.session.expire_all()
    assert db.session.get(Case, case.id).opened_on == TODAY
