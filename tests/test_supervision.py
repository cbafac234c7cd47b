"""Visits, mandatory reports, the alert centre, the 141 feed and the case pages, through HTTP."""

import datetime as dt
import re
import uuid

import pytest

from choices import AlertStatus
from models import (
    Alert,
    ApiToken,
    Assessment,
    Case,
    Child,
    MandatoryReport,
    RuleRun,
    User,
    Village,
    Visit,
    db,
)
from models import localnow as models_localnow
from services import alerts, clock
from services.assessment import current_rules
from tests.conftest import form_fields

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


def _sync_visit(client, director, child, visited_on, **answers):
    """A visit as the phone's form sends it (static/js/field/pages.js → /field/api/sync)."""
    token = client.get("/field/api/session").get_json()["csrf_token"]
    item = {
        "uuid": str(uuid.uuid4()),
        "kind": "visit",
        # recorded just now (a fixed hour of TODAY is "later than the server's clock" before that hour)
        "recorded_at": clock.now().replace(microsecond=0).isoformat(),
        "data": {
            "child_id": child.id,
            "visited_on": visited_on,
            "kind": "home",
            "answers": {
                "child_seen": "1",
                "guardian_present": "1",
                "living_ok": "1",
                "school_ok": "1",
                "harm_signs": "0",
                "risk_found": "0",
                **answers,
            },
            "risk_note": "手臂有淤青" if answers.get("risk_found") == "1" else "",
            "notes": "入户查看",
        },
    }
    response = client.post(
        "/field/api/sync",
        json={"user_id": director.id, "items": [item]},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 200
    return response.get_json()["results"][0]


def test_director_records_a_visit_with_risk_and_an_alert_is_raised_at_once(client, auth):
    auth.login("director1")
    director = user("director1")
    child = first_child(director.village_id)
    rules = current_rules()  # orange on the day of the visit: the visit interval is orange's
    db.session.add(
        Assessment(
            child_id=child.id,
            assessed_on=dt.date(2026, 6, 9),
            computed_level="orange",
            level="orange",
            status="approved",
            rule_version_id=rules.id,
        )
    )
    db.session.commit()
    result = _sync_visit(client, director, child, "2026-06-09", harm_signs="1", risk_found="1")
    assert result["ok"] and result["alert_id"], result
    db.session.expire_all()
    visit = db.session.scalar(
        db.select(Visit).where(Visit.child_id == child.id, Visit.recorded_by_id == director.id)
    )
    assert visit.visited_on == dt.date(2026, 6, 9)
    assert visit.next_due == dt.date(2026, 6, 24)  # orange: every 15 days
    assert visit.recorded_by_id == director.id
    assert [s.id for s in visit.visitors] == [director.staff_id]  # the director's own staff record
    alert = db.session.scalar(db.select(Alert).where(Alert.condition_key == f"visit_risk:visit:{visit.id}"))
    assert alert.source == "patrol" and alert.severity == "red" and "发现伤害迹象" in alert.detail
    assert alert.village_id == director.village_id
    # the alert centre shows it to the director
    assert "巡查发现风险" in client.get("/admin/alerts/").get_data(as_text=True)


def test_visit_date_in_the_future_or_other_village_child_is_refused(client, auth):
    auth.login("director1")
    director = user("director1")
    other = first_child(villages()[1].id)
    result = _sync_visit(client, director, first_child(director.village_id), "2026-06-11")
    assert result["ok"] is False and result["errors"]["visited_on"] == "走访日期不能晚于今天"
    result = _sync_visit(client, director, other, "2026-06-09")
    assert result["ok"] is False and "不在您负责的村" in result["errors"]["child"]
    assert (
        db.session.scalar(db.select(Visit).where(Visit.child_id == other.id, Visit.recorded_at.is_not(None)))
        is None
    )


def test_the_visit_form_is_phone_sized_and_one(client, auth):
    auth.login("director1")
    child = first_child(user("director1").village_id)
    response = client.get(f"/admin/visit/new/?child_id={child.id}")
    assert response.status_code == 302 and response.headers["Location"].endswith(
        f"/field/visit?child={child.id}"
    )
    page = client.get("/field/visit").get_data(as_text=True)
    assert 'name="viewport"' in page and 'type="date"' in page
    assert 'accept="image/*" capture="environment"' in page


def test_editing_a_visit_keeps_every_check_a_required_yes_or_no(client, auth):
    auth.login("director1")
    director = user("director1")
    child = first_child(director.village_id)
    assert _sync_visit(client, director, child, "2026-06-09")["ok"]
    visit = db.session.scalar(
        db.select(Visit).where(Visit.child_id == child.id, Visit.recorded_at.is_not(None))
    )
    form = client.get(f"/admin/visit/edit/?id={visit.id}").get_data(as_text=True)
    assert 'type="radio"' in form and 'name="harm_signs"' in form
    fields = form_fields(client, f"/admin/visit/edit/?id={visit.id}")
    body = client.post(
        f"/admin/visit/edit/?id={visit.id}",
        data={
            **fields,
            "child": str(child.id),
            "visited_on": "2026-06-09",
            "kind": "home",
            "visitors": [str(director.staff_id)],
            "child_seen": "1",
            "guardian_present": "1",
            "living_ok": "1",
            "school_ok": "1",
            "harm_signs": "1",
            "version_seen": str(visit.version),
        },
    ).get_data(as_text=True)
    assert "请选择“发现风险”：是 或 否" in body
    db.session.expire_all()
    assert db.session.get(Visit, visit.id).harm_signs is False


# --------------------------------------------------------------------------- mandatory reports


def _file_report(client, **fields):
    data = {
        **form_fields(client, "/admin/mandatoryreport/new/"),
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
    fields = form_fields(client, details)
    client.post(
        f"/admin/mandatoryreport/respond/?id={report.id}",
        data={**fields, "first_response_at": "2026-06-10T00:10", "note": "已电话联系村干部上门"},
    )
    page = client.get(details).get_data(as_text=True)
    assert "用时 0小时40分" in page and "在24小时时限内" in page
    response = client.post(
        f"/admin/mandatoryreport/triage/?id={report.id}",
        data={**fields, "outcome": "to_alert", "note": "核实属实，需督导介入"},
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
        data={**fields, "outcome": "no_risk", "note": "x"},
    )
    db.session.expire_all()
    assert db.session.get(MandatoryReport, report.id).outcome == "to_alert"


def test_triage_no_risk_needs_a_note(client, auth):
    auth.login("clerk")
    _file_report(client, village=str(villages()[2].id))
    report = db.session.scalar(db.select(MandatoryReport).order_by(MandatoryReport.id.desc()))
    fields = form_fields(client, f"/admin/mandatoryreport/details/?id={report.id}")
    url = f"/admin/mandatoryreport/triage/?id={report.id}"
    body = client.post(url, data={**fields, "outcome": "no_risk", "note": ""}, follow_redirects=True)
    assert "请填写分流说明" in body.get_data(as_text=True)
    client.post(url, data={**fields, "outcome": "no_risk", "note": "上门核实，孩子由外婆照看"})
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
        now=dt.datetime(2026, 6, 10, 0, 0),  # before any moment of the fixed day
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
    assert overdue_mark not in page  # orange, raised 06-10 00:00: due 06-13 00:00
    assert client.get(f"/admin/alerts/{theirs.id}/").status_code == 404
    assert client.get(f"/admin/alerts/{mine.id}/").status_code == 200
    auth.logout()
    auth.login("supervisor")
    page = client.get("/admin/alerts/?severity=red").get_data(as_text=True)
    assert "他村预警" in page and "本村预警" not in page
    assert overdue_mark in page  # red, raised 06-10 00:00: due 06-11 00:00
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

    def act(**data):  # each form on the page carries its own one-time token
        fields = form_fields(client, f"/admin/alerts/{alert.id}/")
        return client.post(url, data={**fields, **data}, follow_redirects=True)

    act(action="assign", handler_id=user("director1").id)
    act(action="step", note="已入户核实")
    act(action="ticket", ticket_141="141-2026-0001")
    assert "办结时请填写处置结果" in act(action="close", result="").get_data(as_text=True)
    act(action="close", result="监护人已返家")
    db.session.expire_all()
    alert = db.session.get(Alert, alert.id)
    assert alert.status == AlertStatus.DONE.value and alert.ticket_141 == "141-2026-0001"
    assert alert.handler.username == "director1" and alert.result == "监护人已返家"


def test_read_only_roles_cannot_handle(client, auth):
    alert = _raise(villages()[0])
    auth.login("inspector")
    fields = form_fields(client, f"/admin/alerts/{alert.id}/")
    response = client.post(f"/admin/alerts/{alert.id}/act/", data={**fields, "action": "step", "note": "x"})
    assert response.status_code == 403


def test_convert_an_alert_to_a_case_and_refuse_a_shortcut(client, auth):
    child = first_child(villages()[0].id)
    alert = _raise(villages()[0], child=child)
    auth.login("supervisor")
    fields = form_fields(client, f"/admin/alerts/{alert.id}/")
    response = client.post(
        f"/admin/alerts/{alert.id}/act/",
        data={**fields, "action": "to_case", "case_type": "absence"},
    )
    db.session.expire_all()
    case = db.session.get(Alert, alert.id).case_id and db.session.get(
        Case, db.session.get(Alert, alert.id).case_id
    )
    assert case is not None and case.child_id == child.id and case.stage == "identify"
    assert response.headers["Location"].endswith(f"/admin/case/details/?id={case.id}")
    body = client.post(
        f"/admin/case/move/?id={case.id}",
        data={**fields, "to_stage": "intervene"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "不能从「识别」直接进入「介入」" in body
    client.post(
        f"/admin/case/move/?id={case.id}",
        data={**fields, "to_stage": "assess", "note": "开始评估"},
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
    fields = form_fields(client, "/admin/alerts/")
    assert (
        client.post(f"/admin/case/move/?id={case.id}", data={**fields, "to_stage": "assess"}).status_code
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
    fields = form_fields(client, f"/admin/case/details/?id={case.id}")
    client.post(
        f"/admin/case/conference/?id={case.id}",
        data={
            **fields,
            "held_on": "2026-06-10",
            "departments": ["civil", "police", "school"],
            "attendees": "民政办、派出所、学校",
            "problem": "儿童无人照料",
            "decisions": "由村委会临时照料",
            "action_rows": "2",
            "action_who_0": "村委会",
            "action_what_0": "安排临时照料",
            "action_due_0": "2026-06-12",
        },
    )
    page = client.get(f"/admin/case/details/?id={case.id}").get_data(as_text=True)
    assert "民政、公安、学校" in page and "由村委会临时照料" in page
    assert "村委会：安排临时照料（2026-06-12前）" in page


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
    alerts.close_alert(done, "已处置", user_id=None, now=dt.datetime(2026, 6, 10, 0, 0))
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


def _many_alerts(village, n, severity="yellow") -> list[int]:
    """``n`` open alerts in one village, written in bulk (as a rule run writes them)."""
    raised = dt.datetime(2026, 6, 9, 8, 0)
    rows = [
        {
            "source": "rule",
            "rule": "visit_overdue",
            "condition_key": f"feed-test:{village.id}:{k}",
            "severity": severity,
            "village_id": village.id,
            "title": f"批量预警{k}",
            "raised_at": raised,
            "deadline": raised + dt.timedelta(hours=168, minutes=k % 600),
            "status": "open",
            "version": 1,
        }
        for k in range(n)
    ]
    db.session.execute(db.insert(Alert), rows)
    db.session.commit()
    return db.session.scalars(
        db.select(Alert.id).where(Alert.condition_key.like(f"feed-test:{village.id}:%"))
    ).all()


def _pages(client, plain, **params):
    """Every page of the feed, following next_page; (alerts, the first page's envelope)."""
    url = "/api/alerts?" + "&".join(f"{k}={v}" for k, v in params.items())
    seen, first = [], None
    while url:
        body = client.get(url, headers={"Authorization": f"Bearer {plain}"}).get_json()
        first = first or body
        assert body["count"] == len(body["alerts"]) <= body["per_page"]
        seen.extend(body["alerts"])
        url = body["next_page"]
        assert body["has_more"] == (url is not None)
    return seen, first


def test_feed_pages_through_every_open_alert_of_a_1500_alert_scope(client):
    own = villages()[0]
    made = _many_alerts(own, 1500)
    _, plain = _token_for("director1")
    # open at the feed's moment: raised by then (the demo's later alerts do not exist yet on TODAY)
    open_in_scope = set(
        db.session.scalars(
            db.select(Alert.id).where(
                Alert.village_id == own.id,
                Alert.status != AlertStatus.DONE.value,
                Alert.raised_at < clock.now().replace(microsecond=0),
            )
        )
    )
    assert len(open_in_scope) >= 1500
    for per_page in (200, 1000):
        seen, first = _pages(client, plain, per_page=per_page)
        ids = [a["id"] for a in seen]
        assert len(ids) == len(set(ids)) == first["total"] == len(open_in_scope)
        assert set(ids) == open_in_scope and set(made) <= set(ids)
        assert first["pages"] == -(-len(open_in_scope) // per_page)
        deadlines = [a["deadline"] for a in seen]
        assert deadlines == sorted(deadlines)  # most urgent first, across pages
    # nothing of another village, and no silent cut: a page past the end is empty with the same total
    last = client.get(
        "/api/alerts?per_page=1000&page=9", headers={"Authorization": f"Bearer {plain}"}
    ).get_json()
    assert last["alerts"] == [] and last["total"] == len(open_in_scope) and not last["has_more"]
    bad = client.get("/api/alerts?per_page=5000", headers={"Authorization": f"Bearer {plain}"})
    assert bad.status_code == 400 and "per_page" in bad.get_json()["error"]
    assert client.get("/api/alerts?page=x", headers={"Authorization": f"Bearer {plain}"}).status_code == 400
    assert (
        client.get("/api/alerts?since=昨天", headers={"Authorization": f"Bearer {plain}"}).status_code == 400
    )


def test_feed_since_returns_exactly_the_alerts_changed_after_it(client):
    own, other = villages()[:2]
    made = _many_alerts(own, 40)
    theirs = _many_alerts(other, 3)
    _, plain = _token_for("director1")
    _, body = _pages(client, plain, per_page=50)
    since = body["next_since"]
    marker = models_localnow()
    assert dt.datetime.fromisoformat(since) <= marker
    # nothing changed yet since the marker
    quiet, _ = _pages(client, plain, since=marker.isoformat())
    assert quiet == []
    changed = [db.session.get(Alert, i) for i in made[:5]]
    changed[0].ticket_141 = "141-0001"
    alerts.close_alert(changed[1], "已处置", user_id=None, now=dt.datetime(2026, 6, 10, 9))
    alerts.add_step(changed[2], "已电话联系", user_id=None, now=dt.datetime(2026, 6, 10, 9))
    db.session.commit()
    alerts._update(
        [changed[3].id, changed[4].id], condition_cleared_at=dt.datetime(2026, 6, 10, 9)
    )  # a rule run
    db.session.get(Alert, theirs[0]).ticket_141 = "141-0002"  # another village's change stays out
    db.session.commit()
    seen, first = _pages(client, plain, since=marker.isoformat(), per_page=2)
    assert sorted(a["id"] for a in seen) == sorted(a.id for a in changed) and first["total"] == 5
    closed = next(a for a in seen if a["id"] == changed[1].id)
    assert closed["status"] == "done" and closed["closure"] == "handled"
    stamps = [a["updated_at"] for a in seen]
    assert stamps == sorted(stamps)  # oldest change first, across pages
    # a time with a UTC offset is read on the server's clock
    utc = marker.astimezone().astimezone(dt.UTC).isoformat()
    assert sorted(a["id"] for a in _pages(client, plain, since=utc.replace("+", "%2B"))[0]) == sorted(
        a.id for a in changed
    )


def test_admin_issues_a_token_shown_once(client, auth):
    auth.login("admin")
    fields = form_fields(client, "/admin/apitoken/new/")
    response = client.post(
        "/admin/apitoken/new/",
        data={**fields, "name": "141平台", "user": str(user("director1").id), "active": "y"},
        follow_redirects=True,
    )
    plain = re.search(r"<code id='new-token'>([^<]+)</code>", response.get_data(as_text=True)).group(1)
    stored = db.session.scalar(db.select(ApiToken).where(ApiToken.name == "141平台"))
    assert stored.token_hash == alerts.hash_token(plain)
    assert client.get("/api/alerts", headers={"Authorization": f"Bearer {plain}"}).status_code == 200
    auth.logout()
    auth.login("clerk")
    assert client.get("/admin/apitoken/").status_code == 403
