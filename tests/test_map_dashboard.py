"""The risk map and the dashboard: figures against counts made here by hand, as-of dates, scoping."""

import datetime as dt
import json
import re

from models import (
    Alert,
    Assessment,
    Category,
    Child,
    LevelRule,
    SupportService,
    User,
    Village,
    db,
)
from services import clock, dashboard, indicators
from services.assessment import AssessmentInput, approve, current_rules, save_assessment
from services.dashboard import LIST_LIMIT, overdue_work, plan_phases, register_counts
from services.indicators import Frame
from services.register import archive_child
from services.riskmap import village_levels
from tests.conftest import csrf_token
from tests.test_assessment import first_child, scores_for
from tests.test_indicators import Base, actual, expected

TODAY = dt.date(2026, 6, 15)


def villages():
    return db.session.scalars(db.select(Village).order_by(Village.sort_order)).all()


def user(name):
    return db.session.scalar(db.select(User).where(User.username == name))


def hand_counts(village_ids=None, category_id=None):
    """{(village_id, level or 'none'): n} of the children in register now, from the child rows."""
    counts = {}
    today = clock.today()
    for child in db.session.scalars(db.select(Child).where(Child.archived_at.is_(None))):
        if village_ids is not None and child.village_id not in village_ids:
            continue
        if category_id and category_id not in {c.id for c in child.categories}:
            continue
        if child.registered_on > today:
            continue
        key = (child.village_id, child.current_level or "none")
        counts[key] = counts.get(key, 0) + 1
    return counts


def hand_counts_on(day, village_ids=None):
    """The same, for the children in register on ``day`` at the level each had then (its latest
    approved assessment by then), recomputed from the rows (tests/test_indicators.py)."""
    base = Base()
    frame = Frame.as_of(day, village_ids)
    counts = {}
    for child in base.registered(frame):
        latest = base.latest(child.id, day)
        key = (child.village_id, latest.level if latest else "none")
        counts[key] = counts.get(key, 0) + 1
    return counts


def as_dict(rows):
    return {(r["village_id"], k): n for r in rows for k, n in r["counts"].items() if n}


def approved(child, total, on, vetoes=()):
    rules = current_rules().snapshot
    data = AssessmentInput(
        child_id=child.id,
        assessed_on=on,
        scores={k: str(v) for k, v in scores_for(total, rules).items()},
        vetoes=list(vetoes),
        methods=["home_visit"],
        team_ids=[db.session.scalar(db.select(db.func.min(Child.director_id)).where(Child.id == child.id))],
    )
    a = save_assessment(data, user_id=user("social").id, today=TODAY, village_ids=None, submit=True)
    approve(a, user_id=user("supervisor").id, role="supervisor", today=TODAY)
    db.session.commit()
    return a


# --------------------------------------------------------------------------- risk map


def test_map_counts_equal_hand_counts_with_and_without_category(app):
    assert as_dict(village_levels(None)) == hand_counts()
    category = db.session.scalar(db.select(Category).where(Category.code == "low_income"))
    assert as_dict(village_levels(None, category_id=category.id)) == hand_counts(category_id=category.id)
    assert sum(r["total"] for r in village_levels(None)) == db.session.scalar(
        db.select(db.func.count(Child.id)).where(Child.archived_at.is_(None))
    )


def test_as_of_map_on_a_date_between_two_assessments(app):
    child = first_child()
    village_id = child.village_id
    approved(child, 30, dt.date(2026, 3, 1))  # green
    approved(child, 15, dt.date(2026, 5, 1))  # orange
    for day in (dt.date(2026, 2, 28), dt.date(2026, 4, 1), dt.date(2026, 5, 1), dt.date(2026, 6, 1)):
        assert as_dict(village_levels(None, as_of=day)) == hand_counts_on(day), day
    # Between the two assessments the child counts as green; from the second on, as orange.
    between = as_dict(village_levels([village_id], as_of=dt.date(2026, 4, 1)))
    later = as_dict(village_levels([village_id], as_of=dt.date(2026, 5, 1)))
    assert later.get((village_id, "green"), 0) == between.get((village_id, "green"), 0) - 1
    assert later.get((village_id, "orange"), 0) == between.get((village_id, "orange"), 0) + 1


def test_as_of_map_counts_a_child_archived_later_but_not_one_archived_before(app):
    child = first_child()
    approved(child, 30, dt.date(2026, 3, 1))
    archive_child(child, "moved", "迁出", now=dt.datetime(2026, 4, 10, 9, 0))
    db.session.commit()
    april_9 = as_dict(village_levels([child.village_id], as_of=dt.date(2026, 4, 9)))
    april_10 = as_dict(village_levels([child.village_id], as_of=dt.date(2026, 4, 10)))
    assert april_9.get((child.village_id, "green"), 0) - 1 == april_10.get((child.village_id, "green"), 0)


def test_map_data_endpoint_is_scoped_for_director1(client, auth):
    auth.login("director1")
    own = user("director1").village_id
    data = json.loads(client.get("/admin/risk-map/data/").data)
    assert [v["village_id"] for v in data["villages"]] == [own]
    assert [f["properties"]["id"] for f in data["geojson"]["features"]] == [own]
    assert as_dict(data["villages"]) == hand_counts([own])
    page = client.get("/admin/risk-map/").get_data(as_text=True)
    assert "/static/vendor/echarts/echarts.min.js" in page
    assert not re.search(r'(src|href)="(https?:)?//', page), "the map page loads nothing from outside"


def test_map_link_opens_the_filtered_child_list(client, auth):
    auth.login("clerk")
    data = json.loads(client.get("/admin/risk-map/data/").data)
    row = next(v for v in data["villages"] if v["counts"]["red"])
    listing = client.get(row["links"]["red"]).get_data(as_text=True)
    reds = db.session.scalars(
        db.select(Child.name).where(
            Child.village_id == row["village_id"], Child.current_level == "red", Child.archived_at.is_(None)
        )
    ).all()
    others = db.session.scalars(
        db.select(Child.name).where(Child.village_id != row["village_id"], Child.archived_at.is_(None))
    ).all()
    assert all(name in listing for name in reds)
    assert not [name for name in set(others) - set(reds) if f">{name}<" in listing]


def test_map_data_as_of_through_the_panel(client, auth):
    clock.set_today(TODAY)
    child = first_child()
    approved(child, 30, dt.date(2026, 3, 1))
    approved(child, 5, dt.date(2026, 5, 1))
    auth.login("supervisor")
    data = json.loads(client.get("/admin/risk-map/data/?as_of=2026-04-01").data)
    assert data["as_of"] == "2026-04-01"
    assert as_dict(data["villages"]) == hand_counts_on(dt.date(2026, 4, 1))
    assert (
        "red" not in data["villages"][0]["links"]
    )  # history: the list shows today's levels, so no level link


def test_geojson_upload_by_admin_only(client, auth):
    name = villages()[2].name
    feature = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": name},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[107.4, 29.7], [107.42, 29.7], [107.42, 29.72], [107.4, 29.7]]],
                },
            },
            {
                "type": "Feature",
                "properties": {"name": "不存在村"},
                "geometry": {"type": "Polygon", "coordinates": [[[1, 1], [2, 1], [2, 2], [1, 1]]]},
            },
        ],
    }
    payload = json.dumps(feature, ensure_ascii=False).encode()
    auth.login("clerk")
    token = csrf_token(client, "/admin/risk-map/")
    from io import BytesIO

    refused = client.post(
        "/admin/risk-map/upload/", data={"csrf_token": token, "geojson": (BytesIO(payload), "town.geojson")}
    )
    assert refused.status_code == 403
    auth.logout()
    auth.login("admin")
    token = csrf_token(client, "/admin/risk-map/")
    page = client.post(
        "/admin/risk-map/upload/",
        data={"csrf_token": token, "geojson": (BytesIO(payload), "town.geojson")},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "不存在村" in page
    db.session.expire_all()
    stored = json.loads(db.session.scalar(db.select(Village.boundary).where(Village.name == name)))
    assert stored["coordinates"][0][1] == [107.42, 29.7]
    bad = client.post(
        "/admin/risk-map/upload/",
        data={"csrf_token": token, "geojson": (BytesIO(b"{not json"), "bad.geojson")},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "JSON 格式错误" in bad


# --------------------------------------------------------------------------- dashboard


def test_the_dashboard_rates_follow_every_change_for_the_town_and_one_village(app):
    own = [user("director1").village_id]
    first, second, third = db.session.scalars(
        db.select(Child).where(Child.village_id == own[0], Child.archived_at.is_(None)).limit(3)
    )
    # One alert of each village scope handled in time, one overdue and still open.
    today = clock.today()
    for scope_clause in (Alert.village_id == own[0], Alert.village_id != own[0]):
        handled, late = db.session.scalars(
            db.select(Alert).where(scope_clause, Alert.status != "done").limit(2)
        )
        handled.status, handled.closure = "done", "handled"
        handled.closed_at = handled.raised_at + dt.timedelta(minutes=1)
        late.deadline = dt.datetime.combine(today, dt.time()) - dt.timedelta(days=1)
    # An archived child, then an incomplete file without an address, then one whose categories were
    # all removed (as the child form does): the 建档 flag follows each (services/filing.py).
    keys = dashboard.STATE_RATES + dashboard.PERIOD_RATES + dashboard.STATE_COUNTS
    for step in ("archived", "no address", "no category"):
        if step == "archived":
            archive_child(third, "moved", "迁出")
        elif step == "no address":
            first.address = None
        else:
            second.categories = []
        db.session.commit()
        base = Base()
        for scope in (None, own):
            frame = Frame.year_to_date(scope)
            for key in keys:
                assert actual(indicators.compute(key, frame)) == expected(base, key, frame), (step, key)
    # The demo has work in every rate, so none of these comparisons is 0 == 0.
    frame = Frame.year_to_date(None)
    rates = [expected(base, key, frame) for key in dashboard.STATE_RATES + dashboard.PERIOD_RATES]
    assert all(d > 0 and 0 < n <= d for n, d in rates), rates


def test_counts_by_level_category_and_village_equal_hand_counts(app):
    own = [user("director1").village_id]
    for scope in (None, own):
        counts = register_counts(Frame.year_to_date(scope))
        by_level = {}
        for (_, level), n in hand_counts(scope).items():
            by_level[None if level == "none" else level] = (
                by_level.get(None if level == "none" else level, 0) + n
            )
        assert counts["by_level"] == by_level
        assert counts["total"] == sum(by_level.values())
        names = {v.id: v.name for v in villages()}
        by_village = {}
        for (village_id, _), n in hand_counts(scope).items():
            by_village[names[village_id]] = by_village.get(names[village_id], 0) + n
        assert dict(counts["by_village"]) == by_village


def test_phases_mark_today(app):
    def current(day):
        return [p["name"] for p in plan_phases(day) if p["current"]]

    assert current(dt.date(2026, 1, 15)) == ["部署启动"]
    assert current(dt.date(2026, 2, 15)) == ["部署启动", "重点推进"]
    assert current(dt.date(2026, 3, 1)) == ["重点推进"]
    assert current(dt.date(2026, 11, 30)) == ["重点推进", "总结提升"]
    assert current(dt.date(2026, 12, 1)) == ["总结提升"]


def test_overdue_work_is_the_users_own(app):
    today = clock.today()
    supervisor = user("supervisor")
    work = overdue_work(None, user_id=supervisor.id, may_review=True, today=today)
    pending = db.session.scalar(
        db.select(db.func.count(Assessment.id)).where(
            Assessment.status == "submitted", Assessment.created_by_id != supervisor.id
        )
    )
    assert work["to_review_count"] == pending > 0
    overdue = db.session.scalar(
        db.select(db.func.count(SupportService.id)).where(
            SupportService.status == "planned", SupportService.due_on < today
        )
    )
    assert work["measures_count"] == overdue
    # The author of the pending assessments does not see them as reviews of their own.
    author = db.session.scalar(db.select(Assessment.created_by_id).where(Assessment.status == "submitted"))
    own = db.session.scalar(
        db.select(db.func.count(Assessment.id)).where(
            Assessment.status == "submitted", Assessment.created_by_id == author
        )
    )
    submitted = db.session.scalar(
        db.select(db.func.count(Assessment.id)).where(Assessment.status == "submitted")
    )
    mine = overdue_work(None, user_id=author, may_review=True, today=today)
    assert own > 0 and mine["to_review_count"] == submitted - own


def test_overdue_work_of_one_village_equals_hand_counts(app):
    """The lists checked village by village (per row) hold exactly the village's rows, oldest first."""
    today = clock.today()
    own = user("director1").village_id
    reviewer = user("supervisor")
    # Work waiting in two villages: one village's rows must not reach the other's lists.
    for assessment in db.session.scalars(
        db.select(Assessment).where(Assessment.status == "approved").limit(40)
    ):
        assessment.status = "submitted"
    db.session.commit()
    work = overdue_work([own], user_id=reviewer.id, may_review=True, today=today)
    pending = sorted(
        (a.assessed_on, a.id)
        for a in db.session.scalars(db.select(Assessment).where(Assessment.status == "submitted"))
        if a.child.village_id == own and a.created_by_id != reviewer.id
    )
    overdue = sorted(
        (s.due_on, s.id)
        for s in db.session.scalars(db.select(SupportService).where(SupportService.status == "planned"))
        if s.child.village_id == own and s.due_on < today
    )
    assert 0 < work["to_review_count"] == len(pending)
    assert [a.id for a in work["to_review"]] == [i for _, i in pending][:LIST_LIMIT]
    assert 0 < work["measures_count"] == len(overdue)
    assert [s.id for s in work["measures"]] == [i for _, i in overdue][:LIST_LIMIT]
    assert all(s.child.village_id == own for s in work["measures"])
    others = db.session.scalar(
        db.select(db.func.count(Assessment.id)).where(
            Assessment.status == "submitted", Assessment.child.has(Child.village_id != own)
        )
    )
    assert others > 0  # there was other villages' work to keep out


def test_inspector_sees_the_whole_town_read_only(client, auth):
    auth.login("inspector")
    page = client.get("/admin/").get_data(as_text=True)
    total = sum(hand_counts().values())
    assert f'id="count-total">{total}<' in page
    assert client.get("/admin/assessment-form/new/").status_code == 403
    assert client.get("/admin/risk-map/data/").status_code == 200


def test_level_rule_edit_keeps_the_thresholds_in_order(client, auth):
    auth.login("admin")
    url = "/admin/level_rule/edit/?id=yellow"
    token = csrf_token(client, url)
    page = client.post(
        url, data={"csrf_token": token, "min_score": "28", "visit_days": "30", "reassess_days": "180"}
    ).get_data(as_text=True)
    assert "绿 &gt; 黄 &gt; 橙 &gt; 红" in page
    db.session.expire_all()
    assert db.session.get(LevelRule, "yellow").min_score == 20
    client.post(
        url, data={"csrf_token": token, "min_score": "21", "visit_days": "30", "reassess_days": "180"}
    )
    db.session.expire_all()
    assert db.session.get(LevelRule, "yellow").min_score == 21


def test_dashboard_links_open_the_filtered_lists(client, auth):
    auth.login("supervisor")
    page = client.get("/admin/").get_data(as_text=True)
    review = re.search(r'待我审核的评估：.*?href="([^"]+)"', page).group(1).replace("&amp;", "&")
    measures = re.search(r'赋能服务逾期未落实：.*?href="([^"]+)"', page).group(1).replace("&amp;", "&")
    pending = db.session.scalars(db.select(Assessment).where(Assessment.status == "submitted")).all()
    listing = client.get(review).get_data(as_text=True)
    assert pending and all(a.child.name in listing for a in pending)
    assert "已审核" not in listing.split("</thead>")[1]
    overdue = client.get(measures).get_data(as_text=True).split("</thead>")[1]
    assert overdue.count(" 逾期</span>") == min(
        20,
        overdue_work(None, user_id=user("supervisor").id, may_review=True, today=clock.today())[
            "measures_count"
        ],
    )
