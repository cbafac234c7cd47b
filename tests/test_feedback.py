"""反馈意见: the staff-entered form, the anonymous QR link of an activity (no login, nothing personal,
escaped plain text, closed 7 days after the activity, rate-limited per address and per activity in
the database) and the per-phase summary."""

import datetime as dt
import io
import re

import openpyxl
import pytest
import zxingcpp
from PIL import Image

from models import Activity, Feedback, FeedbackHit, FeedbackLink, User, Village, db
from services import clock, feedback
from tests.conftest import csrf_token

SCRIPT = '<script>alert("x")</script>&<b>好</b>'


@pytest.fixture
def activity(app):
    """A town-wide activity held on 2026-06-06 (its link closes after 2026-06-13)."""
    found = Activity(
        kind="red_class",
        title="红色监护课堂·反馈测试",
        starts_at=dt.datetime(2026, 6, 6, 14, 0),
        ends_at=dt.datetime(2026, 6, 6, 16, 0),
        place="镇文化站",
        audience=["parents"],
        version=1,
    )
    db.session.add(found)
    db.session.commit()
    clock.set_today(dt.date(2026, 6, 8))
    return found


def make_link(client, auth, activity) -> str:
    auth.login("clerk")
    page_url = f"/admin/feedback-link/?activity={activity.id}"
    assert "生成反馈二维码" in client.get(page_url).get_data(as_text=True)
    client.post(
        f"/admin/feedback-link/create/?activity={activity.id}",
        data={"csrf_token": csrf_token(client, page_url)},
    )
    link = db.session.scalar(db.select(FeedbackLink).where(FeedbackLink.activity_id == activity.id))
    assert link is not None
    auth.logout()
    return f"/feedback/{link.token}"


def answer(client, url, address="10.0.0.1", **fields):
    page = client.get(url)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    data = {"csrf_token": token.group(1) if token else "", "score_activities": "5", "score_overall": "4"}
    data.update(fields)
    return client.post(url, data=data, environ_base={"REMOTE_ADDR": address})


def test_the_qr_code_reads_back_as_the_link(client, auth, activity):
    url = make_link(client, auth, activity)
    auth.login("clerk")
    page = client.get(f"/admin/feedback-link/?activity={activity.id}").get_data(as_text=True)
    assert url in page
    png = client.get(f"/admin/feedback-link/qr.png?activity={activity.id}")
    assert png.status_code == 200 and png.mimetype == "image/png"
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.data)))
    assert [d.text for d in decoded] == ["http://localhost" + url]


def test_the_form_needs_no_login_and_asks_nothing_personal(client, auth, activity):
    url = make_link(client, auth, activity)
    page = client.get(url)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "红色监护课堂·反馈测试" in body and "请不要填写姓名、电话" in body
    form = body[body.index('id="feedback-form"') :]
    names = set(re.findall(r'<(?:input|textarea|select)[^>]*name="([^"]+)"', form))
    assert names == {"csrf_token", "score_activities", "score_overall", "suggestions"}
    for personal in ("姓名</label", "电话</label", "身份证", 'type="tel"', 'type="email"'):
        assert personal not in body
    # CSRF still applies to the anonymous form.
    refused = client.post(url, data={"score_overall": "5"})
    assert refused.status_code == 400
    assert db.session.scalar(db.select(db.func.count()).where(Feedback.activity_id == activity.id)) == 0


def test_an_answer_is_stored_as_plain_text_and_shown_escaped(client, auth, activity):
    url = make_link(client, auth, activity)
    typed = SCRIPT + " 请联系13812345678，孩子身份证500102201501010019"
    response = answer(client, url, suggestions=typed)
    assert response.status_code == 200 and "提交成功" in response.get_data(as_text=True)
    stored = db.session.scalar(db.select(Feedback).where(Feedback.activity_id == activity.id))
    assert stored.channel == "qr" and stored.source_kind == "family" and stored.unit is None
    assert stored.suggestions.startswith(SCRIPT)
    assert "13812345678" not in stored.suggestions and "500102201501010019" not in stored.suggestions
    assert "[电话已隐去]" in stored.suggestions and "[身份证号已隐去]" in stored.suggestions
    assert stored.scores == {"activities": 5, "overall": 4}
    hits = db.session.scalars(db.select(FeedbackHit).where(FeedbackHit.activity_id == activity.id)).all()
    assert len(hits) == 1 and "10.0.0.1" not in hits[0].address_hash and len(hits[0].address_hash) == 64
    auth.login("clerk")
    page = client.get("/admin/feedback-summary/?year=2026&phase=advance").get_data(as_text=True)
    assert "&lt;script&gt;alert(" in page and "<script>alert(" not in page
    book = openpyxl.load_workbook(
        io.BytesIO(client.get("/admin/feedback-summary/summary.xlsx?year=2026&phase=advance").data)
    )
    texts = [c.value for row in book["意见建议"].iter_rows() for c in row]
    assert any(isinstance(t, str) and t.startswith(SCRIPT) for t in texts)


def test_bad_answers_are_refused_in_chinese_and_keep_what_was_typed(client, auth, activity):
    url = make_link(client, auth, activity)
    response = answer(client, url, score_activities="", score_overall="", suggestions="还不错")
    assert response.status_code == 400 and "请至少对一个项目打分" in response.get_data(as_text=True)
    assert "还不错" in response.get_data(as_text=True)
    response = answer(client, url, score_overall="9")
    assert "1到5分" in response.get_data(as_text=True)
    too_long = "好" * (feedback.SUGGESTION_MAX + 1)
    response = answer(client, url, suggestions=too_long)
    assert response.status_code == 400 and "不能超过500字" in response.get_data(as_text=True)
    response = answer(client, url, score_assessment="5")
    assert response.status_code == 400
    assert db.session.scalar(db.select(db.func.count()).where(Feedback.activity_id == activity.id)) == 0


def test_the_link_closes_seven_days_after_the_activity(client, auth, activity):
    url = make_link(client, auth, activity)
    clock.set_today(dt.date(2026, 6, 13))
    assert answer(client, url).status_code == 200
    clock.set_today(dt.date(2026, 6, 14))
    closed = client.get(url)
    assert closed.status_code == 410 and "已于 2026年06月13日 截止" in closed.get_data(as_text=True)
    assert 'id="feedback-form"' not in closed.get_data(as_text=True)
    assert client.post(url, data={"score_overall": "5"}).status_code in (400, 410)
    assert db.session.scalar(db.select(db.func.count()).where(Feedback.activity_id == activity.id)) == 1
    assert client.get("/feedback/no-such-token").status_code == 404


def test_rate_limited_per_address_and_per_activity(client, auth, activity, monkeypatch):
    url = make_link(client, auth, activity)
    for _ in range(feedback.PER_ADDRESS):
        assert answer(client, url, address="10.0.0.7").status_code == 200
    limited = answer(client, url, address="10.0.0.7")
    assert limited.status_code == 429 and "太频繁" in limited.get_data(as_text=True)
    assert answer(client, url, address="10.0.0.8").status_code == 200
    # The whole activity's limit, counted in the database (any process sees the same rows).
    monkeypatch.setattr(feedback, "PER_ACTIVITY", feedback.PER_ADDRESS + 1)
    limited = answer(client, url, address="10.0.0.9")
    assert limited.status_code == 429 and "较多" in limited.get_data(as_text=True)
    assert (
        db.session.scalar(db.select(db.func.count()).where(Feedback.activity_id == activity.id))
        == feedback.PER_ADDRESS + 1
    )
    # An hour later the address may answer again; day-old hits are cleared.
    link = db.session.scalar(db.select(FeedbackLink).where(FeedbackLink.activity_id == activity.id))
    later = clock.now() + dt.timedelta(days=2)
    monkeypatch.setattr(feedback, "PER_ACTIVITY", 300)
    feedback.submit_anonymous(
        link, {"score_overall": "5"}, address="10.0.0.7", secret="test-secret", now=later
    )
    db.session.commit()
    assert db.session.scalar(db.select(db.func.count()).where(FeedbackHit.activity_id == activity.id)) == 1


def _paper(client, **fields):
    data = {
        "csrf_token": csrf_token(client, "/admin/feedback/new/"),
        "source_kind": "school",
        "unit": "罗云镇中心小学",
        "received_on": "2026-06-05",
        "score_assessment": "4",
        "score_overall": "5",
        "suggestions": "建议增加心理辅导",
    }
    data.update(fields)
    return client.post("/admin/feedback/new/", data=data)


def test_staff_enter_paper_forms_and_the_summary_adds_them_up(client, auth, activity):
    auth.login("clerk")
    before = feedback.summary(None, dt.date(2026, 2, 1), dt.date(2026, 11, 30))
    page = _paper(client, score_assessment="", score_overall="").get_data(as_text=True)
    assert "请至少对一个项目打分" in page
    page = _paper(client, unit="").get_data(as_text=True)
    assert "请填写学校名称" in page
    assert _paper(client).status_code == 302
    assert (
        _paper(client, source_kind="family", unit="", score_assessment="2", score_overall="3").status_code
        == 302
    )
    after = feedback.summary(None, dt.date(2026, 2, 1), dt.date(2026, 11, 30))
    assert after.count == before.count + 2
    assert after.by_source["school"] == before.by_source.get("school", 0) + 1
    cell, old = after.cell("assessment", None), before.cell("assessment", None)
    assert (cell.total, cell.count) == (old.total + 6, old.count + 2)
    page = client.get("/admin/feedback-summary/?year=2026&phase=advance").get_data(as_text=True)
    assert f'id="feedback-count">{after.count}<' in page
    assert "建议增加心理辅导" in page
    # a director enters forms for their own village only
    auth.logout()
    auth.login("director1")
    director = db.session.scalar(db.select(User).where(User.username == "director1"))
    other = db.session.scalar(db.select(Village.id).where(Village.id != director.village_id).limit(1))
    # another village's id is refused whole; with none chosen the form is the director's own village's
    assert _paper(client, source_kind="village", unit="他村", village=str(other)).status_code != 302
    assert _paper(client, source_kind="village", unit="本村").status_code == 302
    saved = db.session.scalars(db.select(Feedback).where(Feedback.unit.in_(["他村", "本村"]))).all()
    assert [(f.unit, f.village_id) for f in saved] == [("本村", director.village_id)]


def test_a_paper_form_opens_for_editing_and_saves_the_correction(client, auth, activity):
    from werkzeug.datastructures import MultiDict

    from tests.formparse import form_with

    auth.login("clerk")
    assert _paper(client, suggestions="原来的意见").status_code == 302
    entered = db.session.scalar(db.select(Feedback).order_by(Feedback.id.desc()).limit(1))
    url = f"/admin/feedback/edit/?id={entered.id}"
    response = client.get(url)
    assert response.status_code == 200  # the create form's one-time token is not asked of an edit
    page = response.get_data(as_text=True)
    assert "原来的意见" in page and 'name="form_once"' not in page
    pairs = [(k, v) for k, v in form_with(page, "suggestions").submitted() if k != "suggestions"]
    response = client.post(url, data=MultiDict([*pairs, ("suggestions", "更正后的意见")]))
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Feedback, entered.id).suggestions == "更正后的意见"
    assert db.session.get(Feedback, entered.id).scores == entered.scores
