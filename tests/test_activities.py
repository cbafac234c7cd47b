"""Activities CRUD and scoping, sign-in sheets, 爱心妈妈 pairing, training hours, participation."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from choices import ActivityKind, Audience, ServiceKind, StaffKind
from models import (
    Activity,
    Attendance,
    Child,
    Guardian,
    MentorPairing,
    Staff,
    SupportService,
    User,
    Village,
    db,
)
from seeds.demo_activities import RED_WALK_TITLE
from services.activities import (
    check_pairing,
    duration_hours,
    participation,
    record_session,
    training_hours,
    unpaired_children,
    untrained_staff,
)
from services.attendance import build_roll, save_attendance
from services.signin_sheet import HEADERS, read_sheet, write_sheet
from services.validation import InvalidInput
from services.xlsx_input import UnsafeWorkbook
from tests.conftest import csrf_token


def _villages():
    return db.session.scalars(select(Village).order_by(Village.sort_order, Village.id)).all()


def _by_title(title):
    return db.session.scalar(select(Activity).where(Activity.title == title))


def _form(**overrides):
    data = {
        "kind": ActivityKind.RED_CLASS.value,
        "title": "红色监护课堂·云岭村",
        "starts_at": "2026-06-06 14:00:00",
        "ends_at": "2026-06-06 16:00:00",
        "place": "四川二路红军纪念碑",
        "organiser": "云岭村村委会",
        "audience": [Audience.PARENTS.value],
        "capacity": "30",
        "budget": "1200.50",
        "description": "监护责任与亲子沟通",
    }
    data.update(overrides)
    return data


# --------------------------------------------------------------------------- CRUD and scoping


def test_clerk_creates_an_activity_with_budget_and_audience(app, client, auth):
    auth.login("clerk")
    village = _villages()[0]
    lecturer = db.session.scalar(select(Staff).where(Staff.kind == StaffKind.PARTY_LECTURER.value))
    page = client.get("/admin/activity/new/").get_data(as_text=True)
    assert "二路红军微长征步道" in page and 'list="place-suggestions"' in page
    token = csrf_token(client, "/admin/activity/new/")
    data = _form(csrf_token=token, villages=[str(village.id)], lecturers=[str(lecturer.id)])
    data["audience"] = [Audience.PARENTS.value, Audience.CHILDREN.value]
    response = client.post("/admin/activity/new/", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[-1500:]
    db.session.expire_all()
    activity = _by_title("红色监护课堂·云岭村")
    assert activity.budget == Decimal("1200.50")
    assert sorted(activity.audience) == ["children", "parents"]
    assert [v.id for v in activity.villages] == [village.id]
    assert [s.id for s in activity.lecturers] == [lecturer.id]


def test_activity_form_messages_in_chinese(app, client, auth):
    auth.login("clerk")
    token = csrf_token(client, "/admin/activity/new/")
    data = _form(csrf_token=token, ends_at="2026-06-06 10:00:00", budget="-5")
    data["audience"] = []
    page = client.post("/admin/activity/new/", data=data).get_data(as_text=True)
    assert "结束时间不能早于开始时间" in page
    assert "请至少选择一类参与对象" in page
    assert "预算不能为负数" in page
    assert "红色监护课堂·云岭村" in page  # what was typed is kept
    assert _by_title("红色监护课堂·云岭村") is None


def test_director_sees_town_wide_and_own_village_activities_only(app, client, auth):
    villages = _villages()
    red_class = _by_title(f"红色监护课堂·{villages[1].name}家长专场")
    auth.login("director1")
    page = client.get("/admin/activity/").get_data(as_text=True)
    assert RED_WALK_TITLE in page
    assert red_class.title not in page
    assert client.get(f"/admin/activity/attendance/?id={red_class.id}").status_code == 404
    assert client.get(f"/admin/activity/details/?id={red_class.id}").status_code in (302, 404)
    auth.logout()
    auth.login("director2")
    assert red_class.title in client.get("/admin/activity/").get_data(as_text=True)


def test_director_must_pick_own_village_and_cannot_edit_town_wide(app, client, auth):
    auth.login("director1")
    token = csrf_token(client, "/admin/activity/new/")
    page = client.post("/admin/activity/new/", data=_form(csrf_token=token)).get_data(as_text=True)
    assert "请选择本村（社区）" in page
    walk = _by_title(RED_WALK_TITLE)
    token = csrf_token(client, f"/admin/activity/edit/?id={walk.id}")
    data = _form(
        csrf_token=token, title="改名", villages=[str(_villages()[0].id)], version_seen=str(walk.version)
    )
    page = client.post(f"/admin/activity/edit/?id={walk.id}", data=data, follow_redirects=True).get_data(
        as_text=True
    )
    assert "全镇活动或其他村的活动只能由镇级人员修改" in page
    db.session.expire_all()
    assert _by_title(RED_WALK_TITLE) is not None


# --------------------------------------------------------------------------- sign-in sheets


def _sheet_for(activity, scope=None):
    roll = build_roll(db.session, activity, scope)
    return roll, write_sheet(activity, roll.entries, town_name="罗云镇")


def test_sign_in_sheet_is_written_with_title_header_and_every_person(app):
    walk = _by_title(RED_WALK_TITLE)
    roll, data = _sheet_for(walk, [_villages()[0].id])
    book = load_workbook(io.BytesIO(data))
    sheet = book.active
    assert sheet.title == "签到表"
    assert sheet["A1"].value == f"{RED_WALK_TITLE} 签到表"
    assert [c.value for c in sheet[3]] == list(HEADERS)
    names = [sheet.cell(row=4 + i, column=2).value for i in range(len(roll.entries))]
    assert names == [e.name for e in roll.entries]
    assert sheet.cell(row=4, column=4).value == _villages()[0].name
    assert sheet.print_title_rows == "$3:$3" or sheet.print_title_rows == "3:3"


def _fill(data, marks: dict[int, tuple], extra_rows=()):
    """Tick rows of a written sheet (row number → (签到, 签名)) and append typed-in rows."""
    book = load_workbook(io.BytesIO(data))
    sheet = book.active
    for row, (mark, signature) in marks.items():
        sheet.cell(row=row, column=7).value = mark
        sheet.cell(row=row, column=8).value = signature
    start = sheet.max_row + 1
    for i, values in enumerate(extra_rows):
        for col, value in enumerate(values, start=1):
            sheet.cell(row=start + i, column=col).value = value
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_filled_sheet_is_read_back_with_bad_rows_listed(app):
    villages = _villages()
    walk = _by_title(RED_WALK_TITLE)
    roll, data = _sheet_for(walk, [villages[0].id])
    entries = roll.entries
    child = next(e for e in entries if e.kind == "child")
    guardian = next(e for e in entries if e.kind == "guardian")
    marks = {4: ("√", None), 5: (None, "签名"), 6: (None, None), 7: ("√", None), 8: ("√", None)}
    extra = [
        (None, "查无此人", "儿童", villages[0].name, None, None, "√"),
        (None, child.name, "儿童", "不存在村", None, None, "√"),
        (None, guardian.name, "家长", guardian.village, None, "500102199001011234", "√"),
        (None, child.name, "儿童", child.village, None, child.id_number, "√"),
        (None, "未到者", "儿童", villages[0].name, None, None, None),
    ]
    filled = _fill(data, marks, extra)
    reading = read_sheet(filled, entries)
    matched_rows = {m.row for m in reading.matched}
    assert {4, 5, 7, 8} <= matched_rows and 6 not in matched_rows
    assert {m.entry.key for m in reading.matched if m.row == 4} == {entries[0].key}
    messages = " ".join(message for _, message in reading.problems)
    assert "查无此人" in messages and "名单中没有" in messages
    assert "不存在村" in messages
    assert "不在本活动名单中" in messages  # wrong ID number
    # The last matched row is the same child as an earlier row unless the child was row 4.
    assert all(isinstance(row, int) for row, _ in reading.problems)
    assert len(reading.keys) == len(set(reading.keys))


def test_sheet_that_is_not_a_workbook_is_refused_in_chinese(app):
    with pytest.raises(UnsafeWorkbook, match="不是 Excel 工作簿"):
        read_sheet(b"not a workbook", [])


def test_import_writes_nothing_until_confirmed(app, client, auth):
    auth.login("director1")
    walk = _by_title(RED_WALK_TITLE)
    own = _villages()[0].name
    before = db.session.scalar(select(func.count()).where(Attendance.activity_id == walk.id))
    response = client.get(f"/admin/activity/signin-sheet/?id={walk.id}")
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    extra = [(None, "查无此人", None, None, None, None, "√"), (None, "临时来客", None, own, None, None, "√")]
    filled = _fill(response.data, {4: ("√", None), 5: ("√", None), 6: (None, "某某")}, extra)
    url = f"/admin/activity/signin-import/?id={walk.id}"
    token = csrf_token(client, url)
    page = client.post(
        url,
        data={"csrf_token": token, "sheet": (io.BytesIO(filled), "签到表.xlsx")},
        content_type="multipart/form-data",
    ).get_data(as_text=True)
    assert "查无此人" in page and "确认写入 3 人" in page
    assert f'value="临时来客|{own}"' in page
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).where(Attendance.activity_id == walk.id)) == before
    keys = page.split('name="keys" value="')[1].split('"')[0]
    client.post(url, data={"csrf_token": token, "confirm": "1", "keys": keys, "stranger": f"临时来客|{own}"})
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).where(Attendance.activity_id == walk.id)) == before + 4
    walk_in = db.session.scalar(select(Attendance).where(Attendance.walk_in_name == "临时来客"))
    assert walk_in.walk_in_village_id == _villages()[0].id


def test_sign_in_sheet_needs_write_access_to_import(app, client, auth):
    auth.login("inspector")
    walk = _by_title(RED_WALK_TITLE)
    assert client.get(f"/admin/activity/signin-sheet/?id={walk.id}").status_code == 200
    assert client.get(f"/admin/activity/signin-import/?id={walk.id}").status_code == 403


# --------------------------------------------------------------------------- 爱心妈妈


def _mother(village_id=None):
    stmt = select(Staff).where(Staff.kind == StaffKind.CARING_MOTHER.value)
    if village_id:
        stmt = stmt.where(Staff.village_id == village_id)
    return db.session.scalar(stmt.order_by(Staff.id).limit(1))


def test_orange_and_red_children_without_active_pairing(app):
    today = dt.date(2026, 6, 1)
    village = _villages()[5]
    kids = db.session.scalars(
        select(Child).where(Child.village_id == village.id).order_by(Child.id).limit(4)
    ).all()
    red, orange, yellow, ended = kids
    red.current_level, orange.current_level, yellow.current_level, ended.current_level = (
        "red",
        "orange",
        "yellow",
        "red",
    )
    db.session.add(MentorPairing(staff_id=_mother().id, child_id=orange.id, start_on=dt.date(2026, 3, 1)))
    db.session.add(
        MentorPairing(
            staff_id=_mother().id, child_id=ended.id, start_on=dt.date(2026, 1, 1), end_on=dt.date(2026, 5, 1)
        )
    )
    db.session.commit()
    gaps = {c.id for c in unpaired_children(db.session, today, [village.id])}
    assert red.id in gaps and ended.id in gaps
    assert orange.id not in gaps and yellow.id not in gaps
    assert unpaired_children(db.session, today, [village.id])[0].current_level == "red"
    assert not unpaired_children(db.session, today, [_villages()[6].id]) or all(
        c.village_id == _villages()[6].id for c in unpaired_children(db.session, today, [_villages()[6].id])
    )


def test_pairing_checks(app):
    child = db.session.scalar(select(Child).order_by(Child.id).limit(1))
    mother = _mother()
    grid = db.session.scalar(select(Staff).where(Staff.kind == StaffKind.GRID.value).limit(1))
    errors = check_pairing(db.session, staff=grid, child=child, start_on=dt.date(2026, 3, 1), end_on=None)
    assert "不是爱心妈妈" in errors["staff"]
    errors = check_pairing(
        db.session, staff=mother, child=child, start_on=dt.date(2026, 3, 1), end_on=dt.date(2026, 2, 1)
    )
    assert errors["end_on"] == "结束日期不能早于开始日期"
    db.session.add(MentorPairing(staff_id=mother.id, child_id=child.id, start_on=dt.date(2026, 3, 1)))
    db.session.commit()
    errors = check_pairing(db.session, staff=mother, child=child, start_on=dt.date(2026, 4, 1), end_on=None)
    assert "已有结对" in errors["child"]


def test_one_on_one_session_is_a_caring_mother_service(app):
    child = db.session.scalar(select(Child).order_by(Child.id.desc()).limit(1))
    pairing = MentorPairing(staff_id=_mother().id, child_id=child.id, start_on=dt.date(2026, 3, 1))
    db.session.add(pairing)
    db.session.commit()
    try:
        record_session(
            db.session, pairing, delivered_on=dt.date(2026, 2, 1), duration_minutes=60, content="陪伴"
        )
    except InvalidInput as bad:
        assert "不在结对期间" in str(bad)
    else:
        raise AssertionError("a session before the pairing must be refused")
    record_session(
        db.session, pairing, delivered_on=dt.date(2026, 3, 9), duration_minutes=60, content="辅导作业"
    )
    db.session.commit()
    services = db.session.scalars(
        select(SupportService).where(
            SupportService.child_id == child.id, SupportService.kind == ServiceKind.CARING_MOTHER.value
        )
    ).all()
    assert [(s.provider_id, s.delivered_on, s.content) for s in services] == [
        (pairing.staff_id, dt.date(2026, 3, 9), "辅导作业")
    ]


def test_pairing_pages_for_director(app, client, auth):
    auth.login("director1")
    assert client.get("/admin/pairing/").status_code == 200
    assert client.get("/admin/pairing_gaps/").status_code == 200
    page = client.get("/admin/pairing/new/").get_data(as_text=True)
    director = db.session.scalar(select(User).where(User.username == "director1"))
    other_mother = db.session.scalar(
        select(Staff).where(
            Staff.kind == StaffKind.CARING_MOTHER.value, Staff.village_id != director.village_id
        )
    )
    assert f">{other_mother.name}<" not in page


# --------------------------------------------------------------------------- training


def test_training_hours_per_staff_and_the_untrained(app):
    seeded = db.session.scalar(select(Activity).where(Activity.kind == ActivityKind.TRAINING.value))
    assert duration_hours(seeded.starts_at, seeded.ends_at) == Decimal("7.5")
    director = db.session.scalar(
        select(Staff).where(Staff.kind == StaffKind.DIRECTOR.value).order_by(Staff.id)
    )
    short = Activity(
        kind=ActivityKind.TRAINING.value,
        title="强制报告制度专题培训",
        starts_at=dt.datetime(2026, 9, 1, 14, 0),
        ends_at=dt.datetime(2026, 9, 1, 16, 0),
        audience=[Audience.STAFF.value],
    )
    db.session.add(short)
    db.session.commit()
    save_attendance(db.session, short, {f"s:{director.id}"}, set(), None)
    rows = {r.staff.id: r for r in training_hours(db.session, 2026)}
    assert rows[director.id].hours == Decimal("9.5") and rows[director.id].sessions == 2
    assert training_hours(db.session, 2025) == []
    untrained = untrained_staff(db.session, 2026)
    kinds = {s.kind for s in untrained}
    assert StaffKind.GRID.value in kinds and StaffKind.VOLUNTEER.value in kinds
    assert StaffKind.DIRECTOR.value not in kinds and StaffKind.CARING_MOTHER.value not in kinds
    assert all(s.id not in rows for s in untrained)
    assert len(untrained_staff(db.session, 2027)) > len(untrained)


def test_training_page_scoped_for_director(app, client, auth):
    auth.login("director1")
    director = db.session.scalar(select(User).where(User.username == "director1"))
    page = client.get("/admin/training/?year=2026").get_data(as_text=True)
    assert "本年度尚未参加培训" in page
    other_grid = db.session.scalar(
        select(Staff).where(Staff.kind == StaffKind.GRID.value, Staff.village_id != director.village_id)
    )
    assert f"<td>{other_grid.name}</td>" not in page or other_grid.name in {
        s.name for s in db.session.scalars(select(Staff).where(Staff.village_id == director.village_id))
    }


# --------------------------------------------------------------------------- participation


def test_participation_history_of_child_guardian_and_staff(app, client, auth):
    walk = _by_title(RED_WALK_TITLE)
    attended = db.session.scalar(
        select(Attendance).where(Attendance.activity_id == walk.id, Attendance.child_id.is_not(None))
    )
    records = participation(db.session, child_id=attended.child_id)
    assert [r.activity.title for r in records] == [RED_WALK_TITLE]
    guardian_row = db.session.scalar(select(Attendance).where(Attendance.guardian_id.is_not(None)).limit(1))
    assert participation(db.session, guardian_id=guardian_row.guardian_id)
    auth.login("clerk")
    assert "/admin/participation/?child=" in client.get("/admin/child/").get_data(as_text=True)
    assert "/admin/participation/?staff=" in client.get("/admin/staff/").get_data(as_text=True)
    assert "/admin/participation/?guardian=" in client.get("/admin/guardian/").get_data(as_text=True)
    page = client.get(f"/admin/participation/?child={attended.child_id}").get_data(as_text=True)
    assert RED_WALK_TITLE in page
    guardian = db.session.get(Guardian, guardian_row.guardian_id)
    assert guardian.name in client.get(f"/admin/participation/?guardian={guardian.id}").get_data(as_text=True)
    auth.logout()
    auth.login("director1")
    assert client.get(f"/admin/participation/?child={attended.child_id}").status_code == 404


def test_clerk_pairs_a_child_through_the_form(app, client, auth):
    auth.login("clerk")
    child = db.session.scalar(
        select(Child).where(Child.caring_mother_id.is_(None)).order_by(Child.id).limit(1)
    )
    mother = _mother()
    grid = db.session.scalar(select(Staff).where(Staff.kind == StaffKind.GRID.value).limit(1))
    token = csrf_token(client, "/admin/pairing/new/")
    form = {"csrf_token": token, "child": str(child.id), "start_on": "2026-03-01", "notes": ""}
    page = client.post("/admin/pairing/new/", data={**form, "staff": str(grid.id)}).get_data(as_text=True)
    assert "请选择爱心妈妈" in page  # a grid worker is not even offered
    response = client.post("/admin/pairing/new/", data={**form, "staff": str(mother.id)})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Child, child.id).caring_mother_id == mother.id
    pairing = db.session.scalar(select(MentorPairing).where(MentorPairing.child_id == child.id))
    url = f"/admin/pairing/session/?id={pairing.id}"
    token = csrf_token(client, url)
    page = client.post(
        url, data={"csrf_token": token, "delivered_on": "2026-03-05", "duration_minutes": "60", "content": ""}
    ).get_data(as_text=True)
    assert "请填写帮扶内容" in page
    client.post(
        url,
        data={
            "csrf_token": token,
            "delivered_on": "2026-03-05",
            "duration_minutes": "60",
            "content": "陪伴阅读",
        },
    )
    page = client.get(f"/admin/pairing/details/?id={pairing.id}").get_data(as_text=True)
    assert "陪伴阅读" in page
