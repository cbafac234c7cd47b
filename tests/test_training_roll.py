"""Staff training attendance: a training is for some kinds of staff; its roll lists only those, can be
narrowed by kind and village, and a whole filtered roll is signed in with one save; the hours follow."""

import datetime as dt
from decimal import Decimal

from choices import ActivityKind, Audience, StaffKind
from models import Activity, Attendance, Staff, Village, db
from services.activities import check_activity, training_hours, untrained_staff
from services.attendance import RollFilter, build_roll
from tests.conftest import AuthActions, csrf_token
from tests.test_activities import _form


def villages():
    return db.session.scalars(db.select(Village).order_by(Village.sort_order)).all()


def training(kinds, village_list=()) -> Activity:
    activity = Activity(
        kind=ActivityKind.TRAINING.value,
        title="儿童主任业务培训",
        starts_at=dt.datetime(2026, 6, 6, 9, 0),
        ends_at=dt.datetime(2026, 6, 6, 12, 0),
        audience=[Audience.STAFF.value],
        staff_kinds=list(kinds),
        villages=list(village_list),
    )
    db.session.add(activity)
    db.session.commit()
    return activity


def test_the_roll_lists_only_the_kinds_the_training_is_for(app):
    activity = training([StaffKind.DIRECTOR.value, StaffKind.GRID.value])
    roll = build_roll(db.session, activity, None, RollFilter())
    kinds = {e.staff_kind for e in roll.entries}
    assert kinds == {StaffKind.DIRECTOR.value, StaffKind.GRID.value}
    everyone = training([])
    assert StaffKind.CARING_MOTHER.value in {
        e.staff_kind for e in build_roll(db.session, everyone, None).entries
    }


def test_staff_kinds_need_a_staff_audience_and_known_values(app):
    starts = dt.datetime(2026, 6, 6, 9)
    ends = starts + dt.timedelta(hours=2)
    errors = check_activity(starts, ends, [Audience.CHILDREN.value], None, None, staff_kinds=["director"])
    assert errors["staff_kinds"] == "选择了工作人员类别时，参与对象须包含“工作人员”"
    errors = check_activity(starts, ends, [Audience.STAFF.value], None, None, staff_kinds=["wizard"])
    assert errors["staff_kinds"] == "工作人员类别无效"
    assert check_activity(starts, ends, [Audience.STAFF.value], None, None, staff_kinds=["director"]) == {}


def test_a_training_for_directors_is_created_through_the_form(app, client, auth):
    auth.login("clerk")
    token = csrf_token(client, "/admin/activity/new/")
    data = _form(
        kind=ActivityKind.TRAINING.value,
        title="儿童主任培训（表单）",
        audience=[Audience.STAFF.value],
        staff_kinds=[StaffKind.DIRECTOR.value, StaffKind.GRID.value],
    )
    data["csrf_token"] = token
    client.post("/admin/activity/new/", data=data)
    saved = db.session.scalar(db.select(Activity).where(Activity.title == "儿童主任培训（表单）"))
    assert saved is not None and saved.staff_kinds == ["director", "grid"]
    page = client.get(f"/admin/activity/attendance/?id={saved.id}").get_data(as_text=True)
    assert 'id="f-staff-kind"' in page and 'data-s="director"' in page and 'data-s="mother"' not in page


def test_directors_of_two_villages_ticked_at_once_and_their_hours(app, client):
    first, second = villages()[:2]
    activity = training([StaffKind.DIRECTOR.value], [first, second])
    directors = db.session.scalars(
        db.select(Staff).where(Staff.kind == "director", Staff.village_id.in_([first.id, second.id]))
    ).all()
    assert len(directors) == 2
    before = {r.staff.id: r.hours for r in training_hours(db.session, 2026)}
    AuthActions(client).login("clerk")
    url = f"/admin/activity/attendance/?id={activity.id}"
    page = client.get(url).get_data(as_text=True)
    assert page.count('data-s="director"') == 2 and page.count('data-k="staff"') == 2
    keys = [f"s:{s.id}" for s in directors]
    response = client.post(
        url, data={"csrf_token": csrf_token(client, url), "shown": ",".join(keys), "present": keys}
    )
    assert response.status_code == 302
    signed = set(
        db.session.scalars(db.select(Attendance.staff_id).where(Attendance.activity_id == activity.id))
    )
    assert signed == {s.id for s in directors}
    hours = {r.staff.id: r.hours for r in training_hours(db.session, 2026)}
    for staff in directors:  # 09:00–12:00 counts 3 hours for each
        assert hours[staff.id] - before.get(staff.id, Decimal("0")) == Decimal("3.0")
    untrained = {s.id for s in untrained_staff(db.session, 2026)}
    assert not untrained & {s.id for s in directors}
