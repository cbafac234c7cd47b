"""The attendance roll and saving it: who is on it, filters, set semantics, capacity, scoping."""

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from choices import ActivityKind, Audience, ChildStatus
from models import Activity, Attendance, Category, Child, ChildGuardian, Guardian, Staff, User, Village, db
from seeds.demo_activities import RED_WALK_TITLE
from services.attendance import RollFilter, build_roll, find, save_attendance
from tests.conftest import a_child, form_fields


def _villages():
    return db.session.scalars(select(Village).order_by(Village.sort_order, Village.id)).all()


def _activity(audience, villages=(), capacity=None, kind=ActivityKind.OTHER.value):
    activity = Activity(
        kind=kind,
        title="测试活动",
        starts_at=dt.datetime(2026, 6, 1, 9, 0),
        ends_at=dt.datetime(2026, 6, 1, 11, 0),
        audience=[a.value for a in audience],
        capacity=capacity,
    )
    activity.villages = list(villages)
    db.session.add(activity)
    db.session.commit()
    return activity


def _active_children(village_id=None):
    stmt = select(Child.id).where(Child.archived_at.is_(None), Child.status == ChildStatus.ACTIVE.value)
    if village_id is not None:
        stmt = stmt.where(Child.village_id == village_id)
    return {f"c:{i}" for i in db.session.scalars(stmt)}


def _keys(roll, kind=None):
    return {e.key for e in roll.entries if kind is None or e.kind == kind}


def _signed(activity):
    db.session.expire_all()
    return db.session.scalar(select(func.count()).where(Attendance.activity_id == activity.id))


def test_children_audience_lists_the_activity_villages_children_only(app):
    village = _villages()[1]
    activity = _activity([Audience.CHILDREN], [village])
    roll = build_roll(db.session, activity, None)
    assert _keys(roll) == _active_children(village.id)
    assert _keys(roll)  # the demo village has children
    assert all(e.kind == "child" and e.village == village.name for e in roll.entries)


def test_archived_child_is_not_on_the_roll(app):
    village = _villages()[1]
    activity = _activity([Audience.CHILDREN], [village])
    child = a_child(Child.village_id == village.id)
    child.archived_at = dt.datetime(2026, 5, 1)
    child.status = ChildStatus.MOVED.value
    db.session.commit()
    assert f"c:{child.id}" not in _keys(build_roll(db.session, activity, None))


def test_parents_audience_lists_guardians_linked_to_the_villages_children(app):
    village = _villages()[1]
    activity = _activity([Audience.PARENTS], [village])
    roll = build_roll(db.session, activity, None)
    expected = {
        f"g:{gid}"
        for gid in db.session.scalars(
            select(ChildGuardian.guardian_id)
            .join(Child, Child.id == ChildGuardian.child_id)
            .where(Child.village_id == village.id, Child.archived_at.is_(None))
        )
    }
    assert _keys(roll) == expected and expected
    guardian = next(e for e in roll.entries)
    assert "的" in guardian.role  # e.g. 王小明的母
    assert guardian.pinyin and guardian.initials


def test_staff_audience_lists_village_and_town_staff(app):
    village = _villages()[1]
    activity = _activity([Audience.STAFF], [village])
    roll = build_roll(db.session, activity, None)
    expected = {
        f"s:{sid}"
        for sid in db.session.scalars(
            select(Staff.id).where(
                Staff.active.is_(True), (Staff.village_id == village.id) | Staff.village_id.is_(None)
            )
        )
    }
    assert _keys(roll) == expected
    assert any(e.village == "镇级" for e in roll.entries)


def test_town_wide_activity_lists_every_village(app):
    activity = _activity([Audience.CHILDREN])
    assert _keys(build_roll(db.session, activity, None)) == _active_children()


def test_filters_by_village_category_and_level(app):
    villages = _villages()
    activity = _activity([Audience.CHILDREN, Audience.PARENTS, Audience.STAFF])
    roll = build_roll(db.session, activity, None, RollFilter(village_id=villages[2].id))
    assert {e.village for e in roll.entries} <= {villages[2].name}
    assert _keys(roll, "child") == _active_children(villages[2].id)

    category = db.session.scalar(select(Category).where(Category.code == "disabled"))
    roll = build_roll(db.session, activity, None, RollFilter(category_id=category.id))
    disabled = {f"c:{c.id}" for c in db.session.scalars(select(Child)) if category in c.categories}
    assert _keys(roll, "child") == disabled & _active_children()
    assert not _keys(roll, "staff")  # a category narrows the roll to children and their families

    child = a_child(Child.village_id == villages[3].id)
    child.current_level = "red"
    db.session.commit()
    roll = build_roll(db.session, activity, None, RollFilter(level="red"))
    red = {f"c:{i}" for i in db.session.scalars(select(Child.id).where(Child.current_level == "red"))}
    assert f"c:{child.id}" in _keys(roll, "child") and _keys(roll, "child") == red
    linked = {f"g:{link.guardian_id}" for link in child.guardian_links}
    assert linked <= _keys(roll, "guardian")


def test_find_by_name_pinyin_initials_and_id_last4(app):
    activity = _activity([Audience.CHILDREN, Audience.PARENTS])
    roll = build_roll(db.session, activity, None)
    child = next(e for e in roll.entries if e.kind == "child")
    guardian = next(e for e in roll.entries if e.kind == "guardian" and e.id_last4)
    assert child in find(roll.entries, child.name)
    assert child in find(roll.entries, child.initials.upper())
    assert child in find(roll.entries, child.pinyin)
    assert child in find(roll.entries, child.id_last4)
    assert guardian in find(roll.entries, guardian.initials)
    assert guardian in find(roll.entries, guardian.id_last4)
    assert all(e.id_last4 == child.id_last4 for e in find(roll.entries, child.id_last4))


def test_saving_is_a_set_tick_save_tick_again_save(app):
    village = _villages()[1]
    activity = _activity([Audience.CHILDREN, Audience.PARENTS], [village])
    roll = build_roll(db.session, activity, None)
    shown = _keys(roll)
    picked = set(sorted(shown)[:5])
    first = save_attendance(db.session, activity, picked, shown, None)
    assert len(first.added) == 5 and first.total == 5
    again = save_attendance(db.session, activity, picked | {sorted(picked)[0]}, shown, None)
    assert again.added == [] and again.removed == [] and _signed(activity) == 5
    fewer = set(sorted(picked)[:3])
    result = save_attendance(db.session, activity, fewer, shown, None)
    assert sorted(result.removed) == sorted(picked - fewer) and _signed(activity) == 3
    roll = build_roll(db.session, activity, None)
    assert {e.key for e in roll.entries if e.present} == fewer


def test_people_not_shown_are_not_removed(app):
    villages = _villages()
    activity = _activity([Audience.CHILDREN])
    everyone = _keys(build_roll(db.session, activity, None))
    save_attendance(db.session, activity, everyone, everyone, None)
    only_v2 = _keys(build_roll(db.session, activity, None, RollFilter(village_id=villages[1].id)))
    save_attendance(db.session, activity, set(), only_v2, None)
    assert _signed(activity) == len(everyone) - len(only_v2)


def test_capacity_warning(app):
    activity = _activity([Audience.CHILDREN], capacity=3)
    shown = _keys(build_roll(db.session, activity, None))
    result = save_attendance(db.session, activity, set(sorted(shown)[:4]), shown, None)
    assert result.over_capacity and result.total == 4
    roll = build_roll(db.session, activity, None)
    assert roll.over_capacity and roll.present == 4
    assert roll.rate == pytest.approx(4 / len(shown))


def test_walk_in_is_signed_in_once(app):
    village = _villages()[0]
    activity = _activity([Audience.CHILDREN], [village])
    save_attendance(db.session, activity, set(), set(), None, walk_ins=[("  张临时 ", village.id)])
    save_attendance(db.session, activity, set(), set(), None, walk_ins=[("张临时", village.id)])
    roll = build_roll(db.session, activity, None)
    walk_ins = [e for e in roll.entries if e.kind == "walk_in"]
    assert [(e.name, e.present) for e in walk_ins] == [("张临时", True)]
    save_attendance(db.session, activity, set(), {walk_ins[0].key}, None)
    assert _signed(activity) == 0


def test_director_roll_and_save_stay_in_own_village(app):
    villages = _villages()
    own = [villages[0].id]
    activity = _activity([Audience.CHILDREN, Audience.PARENTS])
    everyone = _keys(build_roll(db.session, activity, None))
    other_child = next(k for k in _active_children(villages[1].id))
    save_attendance(db.session, activity, {other_child}, everyone, None)
    roll = build_roll(db.session, activity, own)
    assert {e.village for e in roll.entries} == {villages[0].name}
    assert other_child not in _keys(roll) and roll.hidden_signed == 1
    # The director saves the roll, even claiming to have been shown another village's child.
    mine = set(sorted(_keys(roll))[:2])
    other_new = sorted(_active_children(villages[2].id))[0]
    result = save_attendance(db.session, activity, mine | {other_new}, _keys(roll) | {other_child}, own)
    assert result.refused == [other_new]
    assert _signed(activity) == 3  # the other village's child stays, nobody from outside was added


def _roll_page(client, activity_id):
    page = client.get(f"/admin/activity/attendance/?id={activity_id}").get_data(as_text=True)
    shown = re.search(r'name="shown" value="([^"]*)"', page).group(1)
    boxes = re.findall(r'name="present" value="([^"]+)"[^>]*?( checked)?>', page)
    return page, shown, boxes


def test_director_ticks_many_and_saves_once_over_http(app, client, auth):
    auth.login("director1")
    walk = db.session.scalar(select(Activity).where(Activity.title == RED_WALK_TITLE))
    before = _signed(walk)
    page, shown, boxes = _roll_page(client, walk.id)
    director = db.session.scalar(select(User).where(User.username == "director1"))
    other = a_child(Child.village_id != director.village_id)
    assert f"c:{other.id}" not in shown.split(",")
    assert f'value="c:{other.id}"' not in page
    picked = [key for key, _ in boxes][:30]
    fields = form_fields(client, f"/admin/activity/attendance/?id={walk.id}")
    response = client.post(
        f"/admin/activity/attendance/?id={walk.id}",
        data={**fields, "shown": shown, "present": picked},
    )
    assert response.status_code == 302
    assert _signed(walk) == before + 30
    page, shown, boxes = _roll_page(client, walk.id)
    assert sorted(k for k, checked in boxes if checked) == sorted(picked)
    assert "签到已保存：新增30人" in page
    # Saving the same ticks again changes nothing.
    client.post(
        f"/admin/activity/attendance/?id={walk.id}",
        data={**fields, "shown": shown, "present": picked},
    )
    assert _signed(walk) == before + 30


def test_capacity_warning_on_the_page(app, client, auth):
    auth.login("clerk")
    activity = _activity([Audience.CHILDREN], [_villages()[1]], capacity=2)
    page, shown, boxes = _roll_page(client, activity.id)
    fields = form_fields(client, f"/admin/activity/attendance/?id={activity.id}")
    client.post(
        f"/admin/activity/attendance/?id={activity.id}",
        data={**fields, "shown": shown, "present": [k for k, _ in boxes][:3]},
    )
    page = client.get(f"/admin/activity/attendance/?id={activity.id}").get_data(as_text=True)
    assert "已超过人数上限2人" in page
    warning = page.split('id="capacity-warning"')[1].split(">")[0]
    assert "hidden" not in warning


def test_read_only_role_cannot_save(app, client, auth):
    auth.login("inspector")
    walk = db.session.scalar(select(Activity).where(Activity.title == RED_WALK_TITLE))
    assert client.get(f"/admin/activity/attendance/?id={walk.id}").status_code == 200
    fields = form_fields(client, f"/admin/activity/attendance/?id={walk.id}")
    response = client.post(
        f"/admin/activity/attendance/?id={walk.id}",
        data={**fields, "present": ["c:1"], "shown": "c:1"},
    )
    assert response.status_code == 403


def test_guardian_rows_found_by_stored_pinyin(app):
    guardian = db.session.scalar(select(Guardian).order_by(Guardian.id).limit(1))
    assert guardian.name_pinyin and guardian.name_initials  # filled by the demo step


def test_roll_rows_escape_what_people_typed(app):
    from services.attendance import RollEntry
    from views.activities import roll_rows

    entry = RollEntry(
        key="w:1",
        kind="walk_in",
        name='<script>alert("x")</script>',
        village_id=None,
        village="<b>村</b>",
        role="临时签到",
        pinyin='"><img>',
    )
    html = str(roll_rows([entry], {}, may_write=True))
    assert "<script>" not in html and "<b>" not in html and '"><img>' not in html
    assert "&lt;script&gt;" in html


def test_a_town_wide_roll_too_long_asks_for_a_village_first(app, client, auth, monkeypatch):
    import services.attendance as attendance

    monkeypatch.setattr(attendance, "ROLL_LIMIT", 50)
    auth.login("clerk")
    walk = db.session.scalar(select(Activity).where(Activity.title == RED_WALK_TITLE))
    page = client.get(f"/admin/activity/attendance/?id={walk.id}").get_data(as_text=True)
    assert "请先选择一个村（社区）" in page and 'name="present"' not in page
    village = _villages()[1]
    page = client.get(f"/admin/activity/attendance/?id={walk.id}&village={village.id}").get_data(as_text=True)
    shown = re.search(r'name="shown" value="([^"]*)"', page).group(1).split(",")
    assert set(k for k in shown if k.startswith("c:")) == _active_children(village.id)
