"""政策宣传 and the four mechanisms (强制报告, 快速介入, 多元联动, 政策宣传) counted per phase of the plan."""

import datetime as dt
import re

from models import Alert, Case, CaseConference, MandatoryReport, PublicityEvent, User, Village, db
from services import clock, indicators, publicity
from tests.conftest import csrf_token


def _event(client, **fields):
    data = {
        "csrf_token": csrf_token(client, "/admin/publicity/new/"),
        "held_on": "2026-06-20",
        "form": "door",
        "title": "入户宣传家庭监护责任",
        "place": "云岭村3组",
        "organiser": "云岭村村委会",
        "audience_count": "42",
        "materials": "明白卡50份",
        "content": "讲解监护责任",
    }
    data.update(fields)
    return client.post("/admin/publicity/new/", data=data)


def test_publicity_events_are_checked_and_scoped(client, auth):
    clock.set_today(dt.date(2026, 6, 30))
    auth.login("clerk")
    page = _event(client, held_on="2026-07-30", audience_count="-3", form="").get_data(as_text=True)
    assert "不能晚于今天" in page and "请选择宣传形式" in page
    assert _event(client, title="全镇推送测试", form="online", audience_count="900").status_code == 302
    auth.logout()
    auth.login("director1")
    director = db.session.scalar(db.select(User).where(User.username == "director1"))
    # a director's event is their village's (the form fixes it: views/base.py _settle_villages)
    assert _event(client, title="本村入户测试").status_code == 302
    other = db.session.scalar(db.select(Village.id).where(Village.id != director.village_id).limit(1))
    assert _event(client, title="他村测试", village=str(other)).status_code != 302
    listing = client.get("/admin/publicity/").get_data(as_text=True)
    assert "本村入户测试" in listing and "全镇推送测试" not in listing
    event = db.session.scalar(db.select(PublicityEvent).where(PublicityEvent.title == "本村入户测试"))
    assert event.village_id == director.village_id
    assert db.session.scalar(db.select(PublicityEvent).where(PublicityEvent.title == "他村测试")) is None
    page = client.get(f"/admin/publicity/edit/?id={event.id}").get_data(as_text=True)
    assert "宣传现场照片" in page


def _count(key, start, end, village_ids=None):
    frame = indicators.Frame.of_period(start, end, village_ids, now=dt.datetime(2026, 12, 31, 23, 0))
    return indicators.compute(key, frame).value


def test_each_mechanism_counts_its_own_records_in_the_phase(app):
    june = (dt.date(2026, 6, 1), dt.date(2026, 6, 30))
    before = {key: _count(key, *june) for key in publicity.MECHANISM_KEYS}
    village = db.session.scalar(db.select(Village).order_by(Village.sort_order))
    db.session.add(
        MandatoryReport(
            reporter_kind="teacher",
            received_at=dt.datetime(2026, 6, 3, 10),
            village_id=village.id,
            situation="测试",
            urgency="normal",
            version=1,
        )
    )
    raised = dt.datetime(2026, 6, 5, 9)
    for closed_at, deadline in (
        (raised + dt.timedelta(hours=20), raised + dt.timedelta(hours=24)),
        (raised + dt.timedelta(hours=30), raised + dt.timedelta(hours=24)),
    ):
        db.session.add(
            Alert(
                source="patrol",
                severity="red",
                village_id=village.id,
                title="测试预警",
                raised_at=raised,
                deadline=deadline,
                status="done",
                closed_at=closed_at,
                version=1,
            )
        )
    case = db.session.scalar(db.select(Case).order_by(Case.id))
    db.session.add(
        CaseConference(case_id=case.id, held_on=dt.date(2026, 6, 9), departments=["civil", "police"])
    )
    db.session.add(
        PublicityEvent(
            held_on=dt.date(2026, 6, 12), title="测试宣讲", form="lecture", audience_count=55, version=1
        )
    )
    db.session.commit()
    after = {key: _count(key, *june) for key in publicity.MECHANISM_KEYS}
    assert after["mechanism_mandatory_reports"] == before["mechanism_mandatory_reports"] + 1
    assert after["mechanism_rapid_response"] == before["mechanism_rapid_response"] + 1  # the late one is not
    assert after["mechanism_linkage"] == before["mechanism_linkage"] + 1
    assert after["mechanism_publicity"] == before["mechanism_publicity"] + 1
    assert after["publicity_audience"] == before["publicity_audience"] + 55
    # The town-wide event is not in a village's count; the report and alert of the village are.
    scoped = {key: _count(key, *june, [village.id]) for key in publicity.MECHANISM_KEYS}
    assert (
        scoped["mechanism_mandatory_reports"] >= 1
        and scoped["mechanism_publicity"] <= after["mechanism_publicity"] - 1
    )


def test_mechanism_page_shows_each_phase(client, auth):
    clock.set_today(dt.date(2026, 11, 29))
    auth.login("supervisor")
    page = client.get("/admin/mechanisms/?year=2026").get_data(as_text=True)
    for phase in ("deploy", "advance", "summary", "year"):
        assert f'data-phase="{phase}"' in page
    rows = publicity.mechanism_table(2026, None)
    year_row = next(r for r in rows if r.key == "year")
    cell = re.search(r'data-phase="year".*?data-key="mechanism_publicity">([^<]+)<', page, re.S).group(1)
    assert cell == year_row.values["mechanism_publicity"].text
    assert "强制报告受理数" in page and "多元联动会商数" in page
