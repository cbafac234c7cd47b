"""督查与整改: the rectification life cycle with its overdue day, sign-off rules, a fund-use finding
turned into a rectification in one step, scoping by village, the 工作台's 整改完成率, and the ledger."""

import datetime as dt
import io
import re

import openpyxl
import pytest

from models import Expense, FundSource, Inspection, Rectification, RectificationStep, User, Village, db
from services import clock, fund_checks, indicators, inspections
from services.validation import InvalidInput
from tests.conftest import csrf_token
from tests.test_attachments import phone_jpeg, upload

FOUND = dt.date(2026, 6, 1)
NOW = dt.datetime(2026, 6, 2, 9, 0)


def user(name) -> User:
    return db.session.scalar(db.select(User).where(User.username == name))


def village_of(name) -> Village:
    return user(name).village


def make_rect(
    owner="director1", village=None, deadline=dt.date(2026, 6, 15), area="visit", **fields
) -> Rectification:
    owner_user = user(owner)
    village = village if village is not None else owner_user.village
    rect = Rectification(
        source="inspection",
        area=area,
        village_id=village.id if village else None,
        finding=fields.pop("finding", "走访记录缺少儿童在校情况"),
        found_on=fields.pop("found_on", FOUND),
        owner=owner_user,
        deadline=deadline,
        status="open",
        **fields,
    )
    inspections.raise_first(inspections.check_rectification(rect))
    inspections.record_creation(rect, user("clerk").id, NOW)
    db.session.add(rect)
    db.session.commit()
    return rect


def test_life_cycle_from_open_to_signed_off(app):
    rect = make_rect()
    director, clerk = user("director1"), user("clerk")
    assert rect.status == "open"
    inspections.start(rect, role="director", user_id=director.id, now=NOW, note="已安排补录")
    assert rect.status == "in_progress" and rect.started_at == NOW
    inspections.add_progress(rect, "已补录5条走访记录", role="director", user_id=director.id, now=NOW)
    with pytest.raises(InvalidInput, match="佐证"):
        inspections.mark_done(
            rect, "已全部补录完毕", evidence_count=0, role="director", user_id=director.id, now=NOW
        )
    with pytest.raises(InvalidInput, match="整改情况说明"):
        inspections.mark_done(rect, "好", evidence_count=1, role="director", user_id=director.id, now=NOW)
    done_at = dt.datetime(2026, 6, 10, 16, 0)
    inspections.mark_done(
        rect, "已全部补录完毕", evidence_count=1, role="director", user_id=director.id, now=done_at
    )
    assert rect.status == "done" and rect.completed_on == dt.date(2026, 6, 10)
    # The owner may not sign off their own work; a director is no manager at all.
    with pytest.raises(InvalidInput):
        inspections.sign_off(rect, role="director", user_id=director.id, now=done_at)
    inspections.sign_off(
        rect, role="clerk", user_id=clerk.id, now=done_at + dt.timedelta(days=1), note="已核实"
    )
    assert rect.reviewed_by_id == clerk.id
    with pytest.raises(InvalidInput, match="已复核"):
        inspections.sign_off(rect, role="supervisor", user_id=user("supervisor").id, now=done_at)
    db.session.commit()
    actions = [
        s.action
        for s in db.session.scalars(
            db.select(RectificationStep)
            .where(RectificationStep.rectification_id == rect.id)
            .order_by(RectificationStep.id)
        )
    ]
    assert actions == ["create", "start", "progress", "done", "sign_off"]


def test_overdue_is_the_day_after_the_deadline_and_ends_when_done(app):
    rect = make_rect(deadline=dt.date(2026, 6, 15))
    assert not inspections.is_overdue(rect, dt.date(2026, 6, 15))
    assert inspections.is_overdue(rect, dt.date(2026, 6, 16))
    assert "逾期1天" in inspections.status_text(rect, dt.date(2026, 6, 16))
    overdue_ids = {r.id for r in inspections.overdue(None, dt.date(2026, 6, 16), limit=100)}
    assert rect.id in overdue_ids
    assert rect.id not in {r.id for r in inspections.overdue(None, dt.date(2026, 6, 15), limit=100)}
    late = dt.datetime(2026, 6, 20, 10, 0)
    inspections.mark_done(
        rect, "已整改完毕", evidence_count=2, role="director", user_id=user("director1").id, now=late
    )
    assert not inspections.is_overdue(rect, dt.date(2026, 6, 21))
    assert inspections.done_late(rect)
    assert "逾期完成" in inspections.status_text(rect, dt.date(2026, 6, 21))
    # Sent back after the deadline: overdue again.
    inspections.send_back(
        rect, "佐证照片看不清，请重新上传", role="clerk", user_id=user("clerk").id, now=late
    )
    assert rect.status == "in_progress" and rect.completed_on is None
    assert inspections.is_overdue(rect, dt.date(2026, 6, 21))


def test_only_the_owner_or_a_manager_reports_progress(app):
    rect = make_rect(owner="director1")
    with pytest.raises(InvalidInput, match="责任人"):
        inspections.start(rect, role="director", user_id=user("director2").id, now=NOW)
    with pytest.raises(InvalidInput, match="责任人"):
        inspections.start(rect, role="social", user_id=user("social").id, now=NOW)
    inspections.start(rect, role="supervisor", user_id=user("supervisor").id, now=NOW)
    assert rect.status == "in_progress"


def test_the_owner_must_see_the_village(app):
    other = village_of("director2")
    rect = Rectification(
        area="visit",
        village_id=other.id,
        finding="问题",
        found_on=FOUND,
        owner=user("director1"),
        deadline=FOUND,
    )
    assert "看不到" in inspections.check_rectification(rect)["owner"]
    rect.owner = user("finance")
    assert "owner" in inspections.check_rectification(rect)
    rect.owner = user("director2")
    assert inspections.check_rectification(rect) == {}
    rect.village_id = None  # town-level: a director cannot see it
    assert "owner" in inspections.check_rectification(rect)
    rect.deadline = FOUND - dt.timedelta(days=1)
    assert "deadline" in inspections.check_rectification(rect)
    candidates = {u.username for u in inspections.owner_candidates(other.id)}
    assert {"director2", "clerk", "supervisor", "admin"} <= candidates
    assert "director1" not in candidates and "finance" not in candidates


# --------------------------------------------------------------------------- fund findings


def _paid_without_approval():
    source = db.session.scalar(db.select(FundSource).order_by(FundSource.id))
    expense = Expense(
        spent_on=dt.date(2026, 5, 6),
        amount=300,
        source_id=source.id,
        category="activity",
        payee="罗云镇某印刷店",
        status="paid",
        paid_at=dt.datetime(2026, 5, 6, 10, 0),
        voucher_no="记-TEST-1",
        invoice_attached=True,
        version=1,
    )
    db.session.add(expense)
    db.session.commit()
    return next(
        f for f in fund_checks.run_all() if f.rule == "paid_without_approval" and f.target_id == expense.id
    )


def test_a_fund_finding_becomes_a_rectification_once(app):
    finding = _paid_without_approval()
    clerk = user("clerk")
    rect, created = inspections.from_fund_finding(finding.key, owner_id=clerk.id, user_id=clerk.id, now=NOW)
    db.session.commit()
    assert created and rect.area == "funds" and rect.village_id is None and rect.source == "fund_check"
    assert finding.message in rect.finding and rect.deadline == NOW.date() + dt.timedelta(days=15)
    again, created_again = inspections.from_fund_finding(
        finding.key, owner_id=clerk.id, user_id=clerk.id, now=NOW
    )
    assert again.id == rect.id and not created_again
    assert inspections.for_fund_findings([finding.key])[finding.key].id == rect.id
    with pytest.raises(InvalidInput, match="已不存在"):
        inspections.from_fund_finding(
            ("overspend", "source", 999999), owner_id=clerk.id, user_id=clerk.id, now=NOW
        )


def test_fund_check_screen_turns_a_finding_into_a_rectification(client, auth):
    finding = _paid_without_approval()
    auth.login("clerk")
    page = client.get("/admin/fund-check/").get_data(as_text=True)
    assert "转为整改" in page
    response = client.post(
        "/admin/rectification/from-finding/",
        data={
            "csrf_token": csrf_token(client, "/admin/fund-check/"),
            "rule": finding.rule,
            "target": finding.target,
            "target_id": finding.target_id,
        },
    )
    assert response.status_code == 302 and "/admin/rectification/details/" in response.location
    rect = db.session.scalar(
        db.select(Rectification).where(Rectification.fund_target_id == finding.target_id)
    )
    assert rect is not None and rect.owner.username == "clerk"
    page = client.get("/admin/fund-check/").get_data(as_text=True)
    assert f"整改 {rect.id}" in page
    # The fund officer sees the fund check but cannot make rectifications.
    auth.logout()
    auth.login("finance")
    assert "转为整改" not in client.get("/admin/fund-check/").get_data(as_text=True)
    token = csrf_token(client, "/admin/fund-check/")
    refused = client.post("/admin/rectification/from-finding/", data={"csrf_token": token, "rule": "x"})
    assert refused.status_code == 403


# --------------------------------------------------------------------------- over HTTP, scoped


def _post(client, url, data, token_url):
    return client.post(url, data={"csrf_token": csrf_token(client, token_url), **data})


def test_a_director_sees_and_reports_on_own_village_only(client, auth):
    mine = make_rect(owner="director1", finding="本村问题：复评超期")
    theirs = make_rect(owner="director2", finding="他村问题：签到表缺签名")
    town = make_rect(owner="clerk", village=None, area="funds", finding="镇级问题：发票缺失")
    auth.login("director1")
    listing = client.get("/admin/rectification/").get_data(as_text=True)
    assert "本村问题" in listing and "他村问题" not in listing and "镇级问题" not in listing
    details = client.get(f"/admin/rectification/details/?id={theirs.id}", follow_redirects=True)
    assert "他村问题" not in details.get_data(as_text=True)
    url = f"/admin/rectification/details/?id={mine.id}"
    page = client.get(url).get_data(as_text=True)
    assert "开始整改" in page and "复核通过" not in page
    # Another village's rectification cannot be moved by a hand-made post.
    _post(client, f"/admin/rectification/start/?id={theirs.id}", {"note": ""}, url)
    _post(client, f"/admin/rectification/start/?id={town.id}", {"note": ""}, url)
    response = _post(
        client, f"/admin/rectification/progress/?id={mine.id}", {"note": "已补录本月走访记录"}, url
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Rectification, mine.id).status == "in_progress"
    assert db.session.get(Rectification, theirs.id).status == "open"
    assert db.session.get(Rectification, town.id).status == "open"
    # Marking done without evidence is refused in Chinese and changes nothing.
    page = client.post(
        f"/admin/rectification/done/?id={mine.id}",
        data={"csrf_token": csrf_token(client, url), "note": "已全部整改"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "佐证" in page
    db.session.expire_all()
    assert db.session.get(Rectification, mine.id).status == "in_progress"
    # The owner uploads a photo as evidence, then marks it done; the clerk signs it off.
    uploaded = upload(client, "rectification", mine.id, phone_jpeg(), kind="evidence", page=url)
    assert uploaded.status_code == 200, uploaded.get_json()
    assert (
        upload(client, "rectification", theirs.id, phone_jpeg(), kind="evidence", page=url).status_code == 404
    )
    response = _post(client, f"/admin/rectification/done/?id={mine.id}", {"note": "已补录全部走访记录"}, url)
    db.session.expire_all()
    assert db.session.get(Rectification, mine.id).status == "done"
    auth.logout()
    auth.login("clerk")
    _post(client, f"/admin/rectification/sign-off/?id={mine.id}", {"note": ""}, url)
    db.session.expire_all()
    assert db.session.get(Rectification, mine.id).reviewed_by.username == "clerk"
    auth.logout()
    auth.login("director1")
    # A director may not create or edit findings.
    assert client.get("/admin/rectification/new/").status_code == 403
    assert client.get(f"/admin/rectification/edit/?id={mine.id}").status_code == 403


def test_clerk_records_an_inspection_with_two_findings(client, auth):
    d1, d2 = village_of("director1"), village_of("director2")
    auth.login("clerk")
    token = csrf_token(client, "/admin/inspection/new/")
    today = clock.today()
    data = {
        "csrf_token": token,
        "level": "district",
        "inspected_on": today.isoformat(),
        "inspectors": "区民政局 王某、李某",
        "villages": [str(d1.id), str(d2.id)],
        "areas": ["assessment", "visit"],
        "methods": ["records"],
        "summary": "抽查档案",
        "rectifications-0-area": "assessment",
        "rectifications-0-village": str(d1.id),
        "rectifications-0-finding": "复评超期三人",
        "rectifications-0-owner": str(user("director1").id),
        "rectifications-0-deadline": (today + dt.timedelta(days=10)).isoformat(),
        "rectifications-1-area": "visit",
        "rectifications-1-village": str(d2.id),
        "rectifications-1-finding": "走访记录不全",
        "rectifications-1-owner": str(user("director2").id),
        "rectifications-1-deadline": (today + dt.timedelta(days=10)).isoformat(),
    }
    # An owner who cannot see the village is refused next to the field, and nothing is saved.
    bad = dict(data, **{"rectifications-1-owner": str(user("director1").id)})
    page = client.post("/admin/inspection/new/", data=bad).get_data(as_text=True)
    assert "看不到" in page
    assert (
        db.session.scalar(
            db.select(db.func.count())
            .select_from(Inspection)
            .where(Inspection.inspectors == "区民政局 王某、李某")
        )
        == 0
    )
    response = client.post("/admin/inspection/new/", data=data)
    assert response.status_code == 302
    inspection = db.session.scalar(
        db.select(Inspection).where(Inspection.inspectors == "区民政局 王某、李某")
    )
    rects = sorted(inspection.rectifications, key=lambda r: r.id)
    assert [r.finding for r in rects] == ["复评超期三人", "走访记录不全"]
    assert all(r.status == "open" and r.found_on == today and r.source == "inspection" for r in rects)
    assert [r.steps[0].action for r in rects] == ["create", "create"]
    auth.logout()
    auth.login("director2")
    page = client.get(f"/admin/inspection/details/?id={inspection.id}").get_data(as_text=True)
    assert "走访记录不全" in page and "复评超期三人" not in page and "另有 1 个问题" in page


def test_dashboard_shows_the_rate_and_the_overdue(client, auth):
    clock.set_today(dt.date(2026, 6, 20))
    before = indicators.compute("rectification_rate", indicators.Frame.year_to_date(None))
    late = make_rect(deadline=dt.date(2026, 6, 10), finding="逾期的问题甲")
    done = make_rect(deadline=dt.date(2026, 6, 30), finding="已整改的问题乙")
    inspections.mark_done(
        done, "整改完毕", evidence_count=1, role="director", user_id=user("director1").id, now=NOW
    )
    inspections.sign_off(done, role="clerk", user_id=user("clerk").id, now=NOW)
    db.session.commit()
    after = indicators.compute("rectification_rate", indicators.Frame.year_to_date(None))
    assert after.denominator == before.denominator + 2
    assert after.numerator == before.numerator + 1
    auth.login("clerk")
    page = client.get("/admin/").get_data(as_text=True)
    assert "整改完成率" in page and "逾期的问题甲" in page and "已整改的问题乙" not in page
    counts = re.search(
        r'id="rate-rectification".*?class="numerator">(\d+)</span> / <span class="denominator">(\d+)',
        page,
        re.S,
    )
    assert (int(counts.group(1)), int(counts.group(2))) == (after.numerator, after.denominator)
    # director2 sees neither (both are director1's village's).
    auth.logout()
    auth.login("director2")
    assert "逾期的问题甲" not in client.get("/admin/").get_data(as_text=True)
    assert late.id


def test_the_rate_counts_a_sign_off_only_once_it_happened(app):
    now = dt.datetime(2026, 6, 1)
    march = indicators.Frame.of_period(dt.date(2026, 3, 1), dt.date(2026, 3, 31), now=now)
    april = indicators.Frame.of_period(dt.date(2026, 3, 1), dt.date(2026, 4, 30), now=now)

    def counts():
        values = [
            indicators.compute("rectification_rate", frame.for_villages(None)) for frame in (march, april)
        ]
        return [(v.numerator, v.denominator) for v in values]

    before = counts()
    rect = make_rect(found_on=dt.date(2026, 3, 2), deadline=dt.date(2026, 3, 20), finding="三月的问题")
    director = user("director1").id
    inspections.mark_done(
        rect, "整改完毕", evidence_count=1, role="director", user_id=director, now=dt.datetime(2026, 3, 10, 9)
    )
    inspections.sign_off(rect, role="clerk", user_id=user("clerk").id, now=dt.datetime(2026, 4, 2, 9))
    db.session.commit()
    (m_num, m_den), (a_num, a_den) = counts()
    assert (m_num - before[0][0], m_den - before[0][1]) == (0, 1)  # found in March, signed off in April
    assert (a_num - before[1][0], a_den - before[1][1]) == (1, 1)


def test_the_ledger_lists_the_period_in_scope(client, auth):
    mine = make_rect(finding="台账里的问题丙", deadline=dt.date(2026, 6, 5))
    make_rect(owner="director2", finding="他村的问题丁")
    auth.login("director1")
    response = client.get("/admin/rectification/ledger.xlsx?start=2026-01-01&end=2026-12-31")
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    sheet = book["督查与整改台账"]
    texts = [c.value for row in sheet.iter_rows() for c in row if isinstance(c.value, str)]
    assert "台账里的问题丙" in texts and "他村的问题丁" not in texts
    row = next(r for r in sheet.iter_rows(values_only=True) if r[0] == mine.id)
    assert "逾期" in row[10]
