"""工作领导小组 (work plan 五(一) 强化组织领导): members with their duties, and the group's meetings.

The plan names the group's make-up: the town's principal leader as 组长, the leaders in charge of
民生服务、政法、宣传、团委、妇联 as 副组长, the heads of 民生服务办、平安法治办、宣传、团委、妇联、学校、卫生院
and every village's party secretary as 成员, and an 办公室 in 民生服务办. Most of them are not staff of
the programme, so a member is a row of its own (``LeadingGroupMember``), linked to a Staff row only
when they are also staff.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from choices import AttachmentKind as K
from choices import LeadingGroupRole
from models import LeadingGroupMeeting, LeadingGroupMember, db
from services import attachments
from services.validation import InvalidInput, clean_name, clean_phone

# The minutes (会议纪要) of a meeting, and its photos, are attachments of the meeting.
attachments.register_owner("meeting", "leading_group", (K.MINUTES, K.SCENE_PHOTO, K.OTHER))

ROLE_ORDER = {role.value: i for i, role in enumerate(LeadingGroupRole)}
DUTIES_MAX = 1000


def check_member(member: LeadingGroupMember) -> dict[str, str]:
    errors = {}
    try:
        member.name = clean_name(member.name)
    except InvalidInput as bad:
        errors["name"] = str(bad)
    if member.group_role not in ROLE_ORDER:
        errors["group_role"] = "请选择在领导小组中的职务（组长/副组长/成员/办公室）"
    try:
        member.phone = clean_phone(member.phone)
    except InvalidInput as bad:
        errors["phone"] = str(bad)
    if member.duties and len(member.duties) > DUTIES_MAX:
        errors["duties"] = f"职责分工不能超过{DUTIES_MAX}字"
    if not (member.post or "").strip() and not (member.department or "").strip():
        errors["post"] = "请填写职务或所在单位/部门"
    return errors


def check_meeting(meeting: LeadingGroupMeeting, today: dt.date) -> dict[str, str]:
    errors = {}
    if meeting.held_on is None:
        errors["held_on"] = "请填写会议日期"
    elif meeting.held_on > today:
        errors["held_on"] = "会议日期不能晚于今天（计划召开的会议请在召开后登记）"
    if not (meeting.title or "").strip():
        errors["title"] = "请填写会议名称或议题"
    return errors


def members(active_only: bool = True) -> list[LeadingGroupMember]:
    """The group in the order a list is printed: 组长, 副组长, 成员, 办公室; then the set order."""
    stmt = select(LeadingGroupMember)
    if active_only:
        stmt = stmt.where(LeadingGroupMember.active.is_(True))
    rows = list(db.session.scalars(stmt))
    rows.sort(key=lambda m: (ROLE_ORDER.get(m.group_role, 99), m.sort_order, m.id))
    return rows


def meetings(start: dt.date | None = None, end: dt.date | None = None) -> list[LeadingGroupMeeting]:
    stmt = select(LeadingGroupMeeting).options(selectinload(LeadingGroupMeeting.attendees))
    if start:
        stmt = stmt.where(LeadingGroupMeeting.held_on >= start)
    if end:
        stmt = stmt.where(LeadingGroupMeeting.held_on <= end)
    return list(db.session.scalars(stmt.order_by(LeadingGroupMeeting.held_on, LeadingGroupMeeting.id)))


LIST_COLUMNS = ("序号", "姓名", "职务", "单位/部门", "组内职务", "职责分工")


def list_rows(rows: list[LeadingGroupMember]):
    for i, m in enumerate(rows, 1):
        yield (
            i,
            m.name,
            m.post or "",
            m.department or "",
            LeadingGroupRole.label_of(m.group_role),
            m.duties or "",
        )


MEETING_COLUMNS = ("日期", "会议名称/议题", "地点", "出席成员", "列席人员", "会议决定")


def meeting_rows(rows: list[LeadingGroupMeeting]):
    for m in rows:
        yield (
            m.held_on,
            m.title,
            m.place or "",
            "、".join(a.name for a in m.attendees),
            m.other_attendees or "",
            m.decisions or "",
        )
