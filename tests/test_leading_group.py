"""领导小组: members as rows of their own (moved out of staff by the migration), validation, meetings,
and the printable list in the plan's order (组长, 副组长, 成员, 办公室), as a page and as xlsx."""

import datetime as dt
import io

import openpyxl
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from app import create_app
from models import AuditLog, LeadingGroupMeeting, LeadingGroupMember, db
from services import clock
from tests.conftest import csrf_token
from tests.test_migrations import _empty_database

BEFORE = "c49782f6365b"  # the schema in which the group was a field of staff


def test_migration_moves_staff_roles_into_members_and_back(database_url, tmp_path):
    url = _empty_database(database_url, tmp_path)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        upgrade(revision=BEFORE)
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO village (id, name, kind, code, sort_order) VALUES (1, '云岭村', 'village', 'V1', 1)"
                )
            )
            for staff_id, name, role, org in (
                (1, "甲组长", "leader", "镇人民政府"),
                (2, "乙成员", "member", "民生服务办"),
                (3, "丙网格员", None, None),
            ):
                conn.execute(
                    text(
                        "INSERT INTO staff (id, name, kind, phone, village_id, organisation, leading_group_role, active,"
                        " name_pinyin, name_initials, version) VALUES (:id, :name, 'cadre', '13900000000', NULL, :org,"
                        " :role, TRUE, '', '', 1)"
                    ),
                    {"id": staff_id, "name": name, "role": role, "org": org},
                )
        upgrade()
        with db.engine.connect() as conn:
            members = conn.execute(
                text(
                    "SELECT name, group_role, department, staff_id FROM leading_group_member ORDER BY sort_order, id"
                )
            ).all()
            columns = [c["name"] for c in db.inspect(conn).get_columns("staff")]
        downgrade(revision=BEFORE)
        with db.engine.connect() as conn:
            back = dict(conn.execute(text("SELECT name, leading_group_role FROM staff")).all())
        db.engine.dispose()
    assert [tuple(m) for m in members] == [
        ("甲组长", "leader", "镇人民政府", 1),
        ("乙成员", "member", "民生服务办", 2),
    ]
    assert "leading_group_role" not in columns
    assert back == {"甲组长": "leader", "乙成员": "member", "丙网格员": None}


def _member_form(client, **fields):
    data = {
        "csrf_token": csrf_token(client, "/admin/leadinggroup/new/"),
        "name": "测试成员",
        "post": "镇卫生院院长",
        "department": "罗云镇卫生院",
        "group_role": "member",
        "duties": "负责医务人员强制报告",
        "phone": "",
        "sort_order": "5",
        "active": "y",
    }
    data.update(fields)
    return client.post("/admin/leadinggroup/new/", data=data)


def test_members_are_checked_and_listed_in_the_plans_order(client, auth):
    auth.login("clerk")
    page = _member_form(client, name=" ", phone="12345").get_data(as_text=True)
    assert "请填写姓名" in page and "电话号码格式不正确" in page
    page = _member_form(client, post="", department="").get_data(as_text=True)
    assert "请填写职务或所在单位" in page
    assert db.session.scalar(db.select(db.func.count()).where(LeadingGroupMember.name == "测试成员")) == 0
    assert _member_form(client, name="测试办公室", group_role="office").status_code == 302
    assert _member_form(client, name="测试组长", group_role="leader", sort_order="99").status_code == 302
    page = client.get("/admin/leading-group-list/").get_data(as_text=True)
    table = page[page.index('id="leading-group-table"') :]
    assert table.index("测试组长") < table.index("测试办公室")
    roles = [
        m.group_role
        for m in db.session.scalars(db.select(LeadingGroupMember).where(LeadingGroupMember.active))
    ]
    # the printed order: every leader before every deputy, member and office
    from services import leading_group

    printed = [m.group_role for m in leading_group.members()]
    assert sorted(roles, key=leading_group.ROLE_ORDER.get) == printed
    response = client.get("/admin/leading-group-list/list.xlsx")
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    sheet = book["领导小组名单"]
    rows = [r for r in sheet.iter_rows(min_row=4, values_only=True) if r[1]]
    assert len(rows) == len(printed)
    assert rows[0][4] == "组长" and rows[-1][4] == "办公室"
    assert any(r[1] == "测试组长" for r in rows)
    assert db.session.scalar(db.select(db.func.count()).where(AuditLog.summary == "导出领导小组名单")) == 1


def test_meetings_with_attendees(client, auth):
    auth.login("clerk")
    members = db.session.scalars(db.select(LeadingGroupMember).order_by(LeadingGroupMember.id).limit(3)).all()
    token = csrf_token(client, "/admin/leadingmeeting/new/")
    future = (clock.today() + dt.timedelta(days=3)).isoformat()
    data = {
        "csrf_token": token,
        "held_on": future,
        "title": "第三次会议",
        "place": "镇政府会议室",
        "attendees": [str(m.id) for m in members],
        "decisions": "研究迎接区级评估验收工作",
    }
    assert "不能晚于今天" in client.post("/admin/leadingmeeting/new/", data=data).get_data(as_text=True)
    data["held_on"] = clock.today().isoformat()
    assert client.post("/admin/leadingmeeting/new/", data=data).status_code == 302
    meeting = db.session.scalar(
        db.select(LeadingGroupMeeting).where(LeadingGroupMeeting.title == "第三次会议")
    )
    assert {a.id for a in meeting.attendees} == {m.id for m in members}
    page = client.get(f"/admin/leadingmeeting/details/?id={meeting.id}").get_data(as_text=True)
    assert "研究迎接区级评估验收工作" in page
    # a director reads the group but does not change it
    auth.logout()
    auth.login("director1")
    assert client.get("/admin/leading-group-list/").status_code == 200
    assert client.get("/admin/leadingmeeting/new/").status_code == 403
