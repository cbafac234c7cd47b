"""Visits, mandatory reports, the alert centre, the 141 feed and the case pages, through HTTP."""

import datetime as dt
import re

import pytest

from choices import AlertStatus
from models import Alert, ApiToken, Case, Child, MandatoryReport, RuleRun, Staff, User, Village, Visit, db
from services import alerts, clock
from tests.conftest import csrf_token

TODAY = dt.date(2026, 6, 10)


@pytest.fixture(autouse=True)
def fixed_today(app):
    clock.set_today(TODAY)
    yield
    clock.set_today(None)


def user(username) -> User:
    return db.session.scalar(db.select(User).where(User.username == username))


def first_child(village_id) -> Child:
    return db.session.scalar(
        db.select(Child).where(Child.village_id == village_id, Child.archived_at.is_(None)).order_by(Child.id)
    )


def villages():
    return db.session.scalars(db.select(Village).order_by(Village.sort_order)).all()


def flashes(body: str) -> str:
    return " ".join(re.findall(r'class="alert[^"]*"[^>]*>(.*?)</div>', body, re.S))


# --------------------------------------------------------------------------- visits


def test_director_records_a_visit_with_risk_and_an_alert_is_raised_at_once(client, auth):
    auth.login("director1")
    director = user("director1")
    child = first_child(director.village_id)
    child.current_level = "orange"
    db.session.commit()
    token = csrf_token(client, "/admin/visit/new/")
    response = client.post(
        "/admin/visit/new/",
        data={
            "csrf_token": token,
            "child": str(child.id),
            "visited_on": "2026-06-09",
            "kind": "home",
            "visitors": [str(director.staff_id)],
            "child_seen": "y",
            "harm_signs": "y",
            "risk_found": "y",
            "notes": "手臂有淤青",
        },
    )
    assert response.status_code == 302
    db.session.expire_all()
    visit = db.session.scalar(
        db.select(Visit).where(Visit.child_id == child.id, Visit.recorded_by_id == director.id)
    )
    assert visit.visited_on == dt.date(2026, 6, 9)
    assert visit.next_due == dt.date(2026, 6, 24)  # orange: every 15 days
    assert visit.recorded_by_id == director.id
    alert = db.session.scalar(db.select(Alert).where(Alert.condition_key == f"visit_risk:visit:{visit.id}"))
    assert alert.source == "patrol" and alert.severity == "red" and "发现伤害迹象" in alert.detail
    assert alert.village_id == director.village_id
    # the alert centre shows it to the director
    assert "巡查发现风险" in client.get("/admin/alerts/").get_data(as_text=True)


def test_visit_date_in_the_future_or_other_village_child_is_refused(client, auth):
    auth.login("director1")
    other = first_child(villages()[1].id)
    token = csrf_token(client, "/admin/visit/new/")
    body = client.post(
        "/admin/visit/new/",
        data={"csrf_token": token, "child": str(other.id), "visited_on": "2026-06-11", "kind": "home"},
    ).get_data(as_text=True)
    assert "走访日期不能晚于今天" in body
    assert (
        db.session.scalar(
            db.select(Visit).where(Visit.child_id == other.id, Visit.visited_on == dt.date(2026, 6, 11))
        )
        is None
    )


def test_the_visit_form_is_phone_sized(client, auth):
    auth.login("director1")
    page = client.get("/admin/visit/new/").get_data(as_text=True)
    assert 'class="mobile-form"' in page and 'type="date"' in page and 'name="viewport"' in page


# --------------------------------------------------------------------------- mandatory reports


def _file_report(client, **fields):
    token = csrf_token(client, "/admin/mandatoryreport/new/")
    data = {
        "csrf_token": token,
        "reporter_kind": "neighbour",
        "anonymous": "y",
        "received_at": "2026-06-09T23:30",
        "child_description": "约8岁男孩，独自在家多日",
        "situation": "邻居反映孩子多日无人照看",
        "urgency": "critical",
        **fields,
    }
    return client.post("/admin/mandatoryreport/new/", data=data)


def test_any_staff_role_files_a_report_anonymous_and_undescribed_refused(client, auth):
    auth.login("director1")
    director = user("director1")
    body = _file_report(client, child_description="", village=str(director.village_id)).get_data(as_text=True)
    assert "请从名册中选择儿童，或描述儿童情况" in body
    assert _file_report(client, village=str(director.village_id), reporter_name="王某").status_code == 302
    report = db.session.scalar(db.select(MandatoryReport).order_by(MandatoryReport.id.desc()))
    assert report.anonymous and report.reporter_name is None
    assert report.village_id == director.village_id and report.recorded_by_id == director.id


def test_response_time_across_midnight():
    report = MandatoryReport(received_at=dt.datetime(2026, 6, 9, 23, 30))
    report.first_response_at = dt.datetime(2026, 6, 10, 0, 10)
    elapsed, over = alerts.response_time(report, now=dt.datetime(2026, 6, 12))
    assert elapsed == dt.timedelta(minutes=40) and not over
    assert alerts.format_elapsed(elapsed) == "0小时40分"
    report.first_response_at = dt.datetime(2026, 6, 10, 23, 31)
    elapsed, over = alerts.response_time(report, now=dt.datetime(2026, 6, 12))
    assert alerts.format_elapsed(elapsed) == "24小时01分" and over
    report.first_response_at = None
    elapsed, over = alerts.response_time(report, now=dt.datetime(2026, 6, 10, 23, 30))
    assert elapsed == dt.timedelta(hours=24) and not over


def test_first_response_then_triage_to_alert(client, auth):
    auth.login("director1")
    director = user("director1")
    _file_report(client, village=str(director.village_id))
    report = db.session.scalar(db.select(MandatoryReport).order_by(MandatoryReport.id.desc()))
    details = f"/admin/mandatoryreport/details/?id={report.id}"
    token = csrf_token(client, details)
    client.post(
        f"/admin/mandatoryreport/respond/?id={report.id}",
        data={"csrf_token": token, "first_response_at": "2026-06-10T00:10", "note": "已电话联系村干部上门"},
    )
    page = client.get(details).get_data(as_text=True)
    assert "用时 0小时40分" in page and "在24小时时限内" in page
    response = client.post(
        f"/admin/mandatoryreport/triage/?id={report.id}",
        data={"csrf_token": token, "outcome": "to_alert", "note": "核实属实，需督导介入"},
    )
    db.session.expire_all()
    report = db.session.get(MandatoryReport, report.id)
    assert report.outcome == "to_alert"
    alert = db.session.scalar(db.select(Alert).where(Alert.report_id == report.id))
    assert response.headers["Location"].endswith(f"/admin/alerts/{alert.id}/")
    assert alert.source == "report" and alert.severity == "red"
    # a second triage is refused
    client.post(
        f"/admin/mandatoryreport/triage/?id={report.id}",
        data={"csrf_token": token, "outcome": "no_risk", "note": "x"},
    )
    db.session.expire_all()
    assert db.session.get(MandatoryReport, report.id).outcome == "to_alert"


def test_triage_no_risk_needs_a_note(client, auth):
    auth.login("clerk")
    _file_report(client, village=str(villages()[2].id))
    report = db.session.scalar(db.select(MandatoryReport).order_by(MandatoryReport.id.desc()))
    token = csrf_token(client, f"/admin/mandatoryreport/details/?id={report.id}")
    url = f"/admin/mandatoryreport/triage/?id={report.id}"
    body = client.post(
        url, data={"csrf_token": token, "outcome": "no_risk", "note": ""}, follow_redirects=True
    )
    assert "请填写分流说明" in body.get_data(as_text=True)
    client.post(url, data={"csrf_token": token, "outcome": "no_risk", "note": "上门核实，孩子由外婆照看"})
    db.session.expire_all()
    report = db.session.get(MandatoryReport, report.id)
    assert report.outcome == "no_risk" and report.first_response_at is not None


# --------------------------------------------------------------------------- alert centre


def _raise(village, title="测试预警", severity="orange", child=None):
    alert = alerts.raise_alert(
        source="patrol",
        severity=severity,
        village_id=village.id,
        child_id=child.id if child else None,
        title=title,
        now=dt.datetime(2026, 6, 10, 8, 0),
    )
    db.session.commit()
    return alert


def test_alert_centre_is_scoped_and_marks_overdue(client, auth):
    first, second = villages()[:2]
    mine = _raise(first, "本村预警")
    theirs = _raise(second, "他村预警", severity="red")
    db.session.add(RuleRun(as_of=TODAY))  # a fresh run: the page does not run the rules again
    db.session.commit()
    clock.set_today(dt.date(2026, 6, 12))
    auth.login("director1")
    page = client.get("/admin/alerts/").get_data(as_text=True)
    assert "本村预警" in page and "他村预警" not in page
    overdue_mark = '<span class="badge badge-danger">逾期</span>'
    assert overdue_mark not in page  # orange, raised 06-10 08:00: due 06-13 08:00
    assert client.get(f"/admin/alerts/{theirs.id}/").status_code == 404
    assert client.get(f"/admin/alerts/{mine.id}/").status_code == 200
    auth.logout()
    auth.login("supervisor")
    page = client.get("/admin/alerts/?severity=red").get_data(as_text=True)
    assert "他村预警" in page and "本村预警" not in page
    assert overdue_mark in page  # red, raised 06-10 08:00: due 06-11 08:00
    page = client.get("/admin/alerts/?due=overdue").get_data(as_text=True)
    assert "他村预警" in page and "本村预警" not in page


def test_alert_centre_runs_the_rules_when_the_last_run_is_over_an_hour_old(client, auth):
    db.session.execute(db.delete(RuleRun))
    db.session.add(RuleRun(as_of=TODAY, started_at=dt.datetime.utcnow() - dt.timedelta(minutes=59)))
    db.session.commit()
    auth.login("supervisor")
    client.get("/admin/alerts/")
    assert db.session.scalar(db.select(db.func.count()).select_from(RuleRun)) == 1
    db.session.execute(db.update(RuleRun).values(started_at=dt.datetime.utcnow() - dt.timedelta(minutes=61)))
    db.session.commit()
    page = client.get("/admin/alerts/").get_data(as_text=True)
    assert "已在后台开始运行" in page  # the page answered without waiting for the run
    alerts.wait_for_background_runs(client.application)
    assert db.session.scalar(db.select(db.func.count()).select_from(RuleRun)) == 2


def test_handle_an_alert_through_the_page(client, auth):
    alert = _raise(villages()[0])
    auth.login("supervisor")
    url = f"/admin/alerts/{alert.id}/act/"
    token = csrf_token(client, f"/admin/alerts/{alert.id}/")
    client.post(url, data={"csrf_token": token, "action": "assign", "handler_id": user("director1").id})
    client.post(url, data={"csrf_token": token, "action": "step", "note": "已入户核实"})
    client.post(url, data={"csrf_token": token, "action": "ticket", "ticket_141": "141-2026-0001"})
    body = client.post(
        url, data={"csrf_token": token, "action": "close", "result": ""}, follow_redirects=True
    )
    assert "办结时请填写处置结果" in body.get_data(as_text=True)
    client.post(url, data={"csrf_token": token, "action": "close", "result": "监护人已返家"})
    db.session.expire_all()
    alert = db.session.get(Alert, alert.id)
    assert alert.status == AlertStatus.DONE.value and alert.ticket_141 == "141-2026-0001"
    assert alert.handler.username == "director1" and alert.result == "监护人已返家"


def test_read_only_roles_cannot_handle(client, auth):
    alert = _raise(villages()[0])
    auth.login("inspector")
    token = csrf_token(client, f"/admin/alerts/{alert.id}/")
    response = client.post(
        f"/admin/alerts/{alert.id}/act/", data={"csrf_token": token, "action": "step", "note": "x"}
    )
    assert response.status_code == 403


def test_convert_an_alert_to_a_case_and_refuse_a_shortcut(client, auth):
    child = first_child(villages()[0].id)
    alert = _raise(villages()[0], child=child)
    auth.login("supervisor")
    token = csrf_token(client, f"/admin/alerts/{alert.id}/")
    response = client.post(
        f"/admin/alerts/{alert.id}/act/",
        data={"csrf_token": token, "action": "to_case", "case_type": "absence"},
    )
    db.session.expire_all()
    case = db.session.get(Alert, alert.id).case_id and db.session.get(
        Case, db.session.get(Alert, alert.id).case_id
    )
    assert case is not None and case.child_id == child.id and case.stage == "identify"
    assert response.headers["Location"].endswith(f"/admin/case/details/?id={case.id}")
    body = client.post(
        f"/admin/case/move/?id={case.id}",
        data={"csrf_token": token, "to_stage": "intervene"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "不能从「识别」直接进入「介入」" in body
    client.post(
        f"/admin/case/move/?id={case.id}",
        data={"csrf_token": token, "to_stage": "assess", "note": "开始评估"},
    )
    db.session.expire_all()
    assert db.session.get(Case, case.id).stage == "assess"


def test_director_may_read_but_not_move_cases(client, auth):
    child = first_child(villages()[0].id)
    from services.cases import open_case

    case = open_case(child.id, "improper", opened_on=TODAY, user_id=None, now=dt.datetime(2026, 6, 10, 9))
    db.session.commit()
    auth.login("director1")
    assert client.get(f"/admin/case/details/?id={case.id}").status_code == 200
    assert client.get("/admin/caseboard/").status_code == 200
    token = csrf_token(client, "/admin/alerts/")
    assert (
        client.post(
            f"/admin/case/move/?id={case.id}", data={"csrf_token": token, "to_stage": "assess"}
        ).status_code
        == 403
    )


def test_case_board_columns_are_scoped(client, auth):
    from services.cases import open_case

    first, second = villages()[:2]
    mine = first_child(first.id)
    theirs = first_child(second.id)
    theirs.name = "看板他村儿童"
    mine.name = "看板本村儿童"
    for child in (mine, theirs):
        open_case(child.id, "absence", opened_on=TODAY, user_id=None, now=dt.datetime(2026, 6, 10, 9))
    db.session.commit()
    auth.login("director1")
    page = client.get("/admin/caseboard/").get_data(as_text=True)
    assert page.count('class="case-column"') == 5
    assert "看板本村儿童" in page and "看板他村儿童" not in page


def test_case_conference_through_the_page(client, auth):
    from services.cases import open_case

    case = open_case(
        first_child(villages()[0].id).id, "abuse", opened_on=TODAY, user_id=None, now=dt.datetime(2026, 6, 10)
    )
    db.session.commit()
    auth.login("social")
    token = csrf_token(client, f"/admin/case/details/?id={case.id}")
    client.post(
        f"/admin/case/conference/?id={case.id}",
        data={
            "csrf_token": token,
            "held_on": "2026-06-10",
            "departments": ["civil", "police", "school"],
            "attendees": "民政办、派出所、学校",
            "decisions": "由村委会临时照料",
        },
    )
    page = client.get(f"/admin/case/details/?id={case.id}").get_data(as_text=True)
    assert "民政、公安、学校" in page and "由村委会临时照料" in page


# --------------------------------------------------------------------------- the 141 feed


def _token_for(username):
    token, plain = alerts.issue_token("141基层智治平台", user(username).id)
    db.session.commit()
    return token, plain


def test_feed_needs_a_valid_token(client):
    assert client.get("/api/alerts").status_code == 401
    assert client.get("/api/alerts", headers={"Authorization": "Bearer nope"}).status_code == 401
    token, plain = _token_for("supervisor")
    assert token.token_hash != plain and plain not in token.token_hash
    assert client.get("/api/alerts", headers={"Authorization": f"Bearer {plain}"}).status_code == 200
    assert client.get("/api/alerts", headers={"X-API-Token": plain}).status_code == 200
    token.active = False
    db.session.commit()
    assert client.get("/api/alerts", headers={"Authorization": f"Bearer {plain}"}).status_code == 401
    _, finance = _token_for("finance")  # an account that may not read alerts gets none through a token
    assert client.get("/api/alerts", headers={"Authorization": f"Bearer {finance}"}).status_code == 403


def test_feed_is_scoped_like_the_tokens_account_and_lists_only_open_alerts(client):
    first, second = villages()[:2]
    mine = _raise(first, "一村预警")
    theirs = _raise(second, "二村预警")
    done = _raise(first, "已办结预警")
    alerts.close_alert(done, "已处置", user_id=None, now=dt.datetime(2026, 6, 10, 9))
    db.session.commit()
    _, director_token = _token_for("director1")
    feed = client.get("/api/alerts", headers={"Authorization": f"Bearer {director_token}"}).get_json()
    ids = {a["id"] for a in feed["alerts"]}
    assert mine.id in ids and theirs.id not in ids and done.id not in ids
    assert {a["village"] for a in feed["alerts"]} == {first.name}
    _, supervisor_token = _token_for("supervisor")
    feed = client.get("/api/alerts", headers={"Authorization": f"Bearer {supervisor_token}"}).get_json()
    ids = {a["id"] for a in feed["alerts"]}
    assert {mine.id, theirs.id} <= ids and done.id not in ids
    item = next(a for a in feed["alerts"] if a["id"] == mine.id)
    assert item["severity"] == "orange" and item["status_label"] == "待处置" and "deadline" in item


def test_admin_issues_a_token_shown_once(client, auth):
    auth.login("admin")
    token = csrf_token(client, "/admin/apitoken/new/")
    response = client.post(
        "/admin/apitoken/new/",
        data={"csrf_token": token, "name": "141平台", "user": str(user("director1").id), "active": "y"},
        follow_redirects=True,
    )
    plain = re.search(r"<code id='new-token'>([^<]+)</code>", response.get_data(as_text=True)).group(1)
    stored = db.session.scalar(db.select(ApiToken).where(ApiToken.name == "141平台"))
    assert stored.token_hash == alerts.hash_token(plain)
    assert client.get("/api/alerts", headers={"Authorization": f"Bearer {plain}"}).status_code == 200
    auth.logout()
    auth.login("clerk")
    assert client.get("/admin/apitoken/").status_code == 403


def test_staff_of_visit_default_is_the_directors_own(client, auth):
    auth.login("director1")
    staff = db.session.get(Staff, user("director1").staff_id)
    page = client.get("/admin/visit/new/").get_data(as_text=True)
    assert re.search(rf'<option selected value="{staff.id}">|<option value="{staff.id}" selected', page)
