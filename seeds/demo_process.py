"""Demo data of the plan's own process: the leading group and its meetings, town and district
inspections with their rectifications (some done and signed off, some under way, some overdue),
feedback from schools, villages and families, and policy publicity events.

Fixed dates in the plan year (the year of ``clock.today()``), deadlines counted from today so that
the 工作台 always has overdue and pending work to show. Fictional names throughout.
"""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import select

from choices import (
    FeedbackChannel,
    FeedbackItem,
    FeedbackSource,
    InspectionArea,
    InspectionLevel,
    InspectionMethod,
    LeadingGroupRole,
    PublicityForm,
    RectificationSource,
    StaffKind,
)
from models import (
    Activity,
    Feedback,
    Inspection,
    LeadingGroupMeeting,
    LeadingGroupMember,
    PublicityEvent,
    Rectification,
    RectificationStep,
    Staff,
    User,
    Village,
)
from seeds import moments
from services import clock

SEED = 1717

# (group role, post, department, duties) — the make-up the work plan's 五(一) names.
GROUP = [
    (
        LeadingGroupRole.LEADER,
        "镇党委副书记、镇长",
        "罗云镇人民政府",
        "全面负责困境儿童监护赋能关爱服务工作，统筹部署、研究解决重大问题。",
    ),
    (
        LeadingGroupRole.DEPUTY,
        "镇党委委员、副镇长（分管民生服务）",
        "罗云镇人民政府",
        "协助组长抓好方案落实，分管筛查评估、分层赋能、资金使用。",
    ),
    (
        LeadingGroupRole.DEPUTY,
        "镇党委委员、政法委员",
        "罗云镇党委",
        "负责监护侵害个案的联动处置和强制报告机制落实。",
    ),
    (LeadingGroupRole.DEPUTY, "镇党委宣传委员", "罗云镇党委", "负责政策宣传和试点成果宣传。"),
    (LeadingGroupRole.DEPUTY, "镇团委书记", "共青团罗云镇委员会", "负责志愿者队伍组织和红色实践活动。"),
    (LeadingGroupRole.DEPUTY, "镇妇联主席", "罗云镇妇联", "负责爱心妈妈队伍和家庭教育指导。"),
    (
        LeadingGroupRole.MEMBER,
        "民生服务办主任",
        "罗云镇民生服务办",
        "牵头日常工作，负责台账、资金和督查整改。",
    ),
    (LeadingGroupRole.MEMBER, "平安法治办主任", "罗云镇平安法治办", "负责监护风险排查和“141”平台协同。"),
    (LeadingGroupRole.MEMBER, "校长", "罗云镇中心小学", "负责在校困境儿童的发现报告和学校走访配合。"),
    (LeadingGroupRole.MEMBER, "院长", "罗云镇卫生院", "负责医疗救助衔接和医务人员强制报告。"),
    (
        LeadingGroupRole.OFFICE,
        "办公室主任（民生服务办副主任）",
        "罗云镇民生服务办",
        "承担领导小组办公室日常工作，统筹协调、督导推进。",
    ),
]
NAMES = [
    "王建国",
    "李德明",
    "张光辉",
    "刘红梅",
    "陈志强",
    "杨丽华",
    "黄永刚",
    "赵秀英",
    "周文斌",
    "吴春燕",
    "徐海波",
    "孙玉兰",
    "马俊杰",
    "胡晓燕",
    "朱国庆",
    "郭淑芬",
    "何家强",
    "罗素琴",
    "高明远",
    "林志华",
    "谭永红",
    "冉光荣",
    "秦德胜",
]

FINDINGS = [
    (InspectionArea.ASSESSMENT, "部分橙色儿童复评超期，评估签字页缺失", "7日内完成复评并补齐签字页"),
    (InspectionArea.VISIT, "走访记录过于简单，未记录儿童在校情况", "按走访清单逐项记录，补录近一月记录"),
    (InspectionArea.CASE, "个案帮扶方案未写明“一对一”责任人", "补充帮扶方案并报镇民生服务办备案"),
    (InspectionArea.ACTIVITY, "红色监护课堂签到表缺少家长签名", "补齐签到表并上传签字扫描件"),
    (InspectionArea.FUNDS, "活动支出缺少发票，凭证号未登记", "补交发票，登记凭证号"),
    (InspectionArea.VISIT, "红色等级儿童走访频次不足7日一次", "调整走访计划，确保按期走访"),
]


def seed_process(session, rng=None, *, today: dt.date | None = None) -> None:
    local = random.Random(SEED)
    today = today or clock.today()
    year = today.year
    villages = session.scalars(select(Village).order_by(Village.sort_order, Village.id)).all()
    if not villages:
        return
    users = {u.username: u for u in session.scalars(select(User))}
    members = _seed_group(session, villages)
    _seed_meetings(session, members, year, today)
    _seed_inspections(session, local, villages, users, year, today)
    _seed_publicity(session, local, villages, year, today)
    _seed_feedback(session, local, villages, users, year, today)
    session.flush()


def _seed_group(session, villages) -> list[LeadingGroupMember]:
    members = []
    supervisor = session.scalar(
        select(Staff).where(Staff.kind == StaffKind.SUPERVISOR.value).order_by(Staff.id).limit(1)
    )
    for i, (role, post, department, duties) in enumerate(GROUP):
        members.append(
            LeadingGroupMember(
                name=NAMES[i],
                post=post,
                department=department,
                group_role=role.value,
                duties=duties,
                sort_order=i,
                active=True,
                version=1,
            )
        )
    if supervisor is not None:
        members.append(
            LeadingGroupMember(
                name=supervisor.name,
                post="儿童督导员",
                department="罗云镇民生服务办",
                group_role=LeadingGroupRole.OFFICE.value,
                duties="负责评估审核、巡查督导和个案跟踪。",
                staff_id=supervisor.id,
                sort_order=len(GROUP),
                active=True,
                version=1,
            )
        )
    for i, village in enumerate(villages):
        members.append(
            LeadingGroupMember(
                name=NAMES[(len(GROUP) + i) % len(NAMES)],
                post=f"{village.name}党组织书记",
                department=village.name,
                group_role=LeadingGroupRole.MEMBER.value,
                duties="负责本村（社区）困境儿童摸排、走访和关爱服务落实。",
                sort_order=100 + i,
                active=True,
                version=1,
            )
        )
    session.add_all(members)
    session.flush()
    return members


def _seed_meetings(session, members, year, today) -> None:
    meetings = [
        (
            dt.date(year, 1, 20),
            "工作领导小组第一次会议（部署启动）",
            "成立工作领导小组，明确职责分工；部署全面摸排和业务培训。",
        ),
        (
            dt.date(year, 6, 18),
            "工作领导小组第二次会议（推进会）",
            "通报上半年评估、走访和个案进展；研究红色等级儿童兜底保障衔接问题。",
        ),
    ]
    for held_on, title, decisions in meetings:
        if held_on > today:
            continue
        session.add(
            LeadingGroupMeeting(
                held_on=held_on,
                title=title,
                place="罗云镇人民政府三楼会议室",
                attendees=[m for m in members if m.group_role in ("leader", "deputy", "office")][:8],
                other_attendees="各村（社区）儿童主任",
                decisions=decisions,
                version=1,
            )
        )


def _seed_inspections(session, rng, villages, users, year, today) -> None:
    clerk, supervisor = users.get("clerk"), users.get("supervisor")
    director1, director2 = users.get("director1"), users.get("director2")
    if not (clerk and supervisor):
        return
    plan = [
        (InspectionLevel.TOWN, dt.date(year, 3, 25), "镇民生服务办 演示督查组", villages[:3]),
        (
            InspectionLevel.TOWN,
            dt.date(year, 6, 26),
            "镇民生服务办、平安法治办 联合督查组",
            villages[:2] + villages[4:6],
        ),
        (InspectionLevel.DISTRICT, dt.date(year, 9, 15), "区民政局儿童福利科 演示督导组", villages[:4]),
        (InspectionLevel.TOWN, today - dt.timedelta(days=20), "镇民生服务办 演示督查组", villages[:2]),
    ]
    finding_no = 0
    for n, (level, on, who, covered) in enumerate(plan):
        if on > today:
            continue
        inspection = Inspection(
            level=level.value,
            inspected_on=on,
            inspectors=who,
            villages=list(covered),
            areas=[InspectionArea.ASSESSMENT.value, InspectionArea.VISIT.value, InspectionArea.CASE.value]
            + ([InspectionArea.FUNDS.value] if n % 2 else [InspectionArea.ACTIVITY.value]),
            methods=[InspectionMethod.RECORDS.value, InspectionMethod.HOME_VISIT.value],
            summary="抽查儿童档案、评估和走访记录，入户核实部分儿童情况；总体推进有序，发现问题如下。",
            recorded_by_id=clerk.id,
            version=1,
        )
        session.add(inspection)
        for k in range(2):
            area, finding, requirement = FINDINGS[finding_no % len(FINDINGS)]
            finding_no += 1
            village = covered[k % len(covered)]
            owner = {villages[0].id: director1, villages[1].id: director2}.get(village.id) or supervisor
            deadline = on + dt.timedelta(days=15)
            rect = Rectification(
                source=RectificationSource.INSPECTION.value,
                area=area.value,
                village=village if area is not InspectionArea.FUNDS else None,
                finding=f"{village.name}：{finding}" if area is not InspectionArea.FUNDS else finding,
                requirement=requirement,
                found_on=on,
                owner=owner if area is not InspectionArea.FUNDS else clerk,
                deadline=deadline,
                status="open",
                created_by_id=clerk.id,
                version=1,
            )
            rect.steps.append(RectificationStep(action="create", user_id=clerk.id, at=_at(on, 17)))
            inspection.rectifications.append(rect)
            # Earlier findings are fixed and signed off; the latest are under way or overdue.
            if n < 2 or (n == 2 and k == 0):
                done_on = min(on + dt.timedelta(days=rng.randint(5, 12 if k == 0 else 20)), today)
                rect.status = "in_progress"
                rect.started_at = _at(on + dt.timedelta(days=1), 9)
                rect.steps.append(
                    RectificationStep(
                        action="start", user_id=rect.owner.id, at=rect.started_at, note="已制定整改措施"
                    )
                )
                rect.status = "done"
                rect.completed_on = done_on
                rect.completion_note = "已按要求整改完毕，相关记录已补齐。"
                rect.steps.append(
                    RectificationStep(
                        action="done", user_id=rect.owner.id, at=_at(done_on, 16), note=rect.completion_note
                    )
                )
                reviewer = clerk if rect.owner.id != clerk.id else supervisor
                rect.reviewed_by_id = reviewer.id
                rect.reviewed_at = _at(min(done_on + dt.timedelta(days=2), today), 10)
                rect.steps.append(
                    RectificationStep(action="sign_off", user_id=reviewer.id, at=rect.reviewed_at)
                )
            elif n == 2:
                rect.status = "in_progress"
                rect.started_at = _at(on + dt.timedelta(days=2), 9)
                rect.steps.append(
                    RectificationStep(
                        action="start", user_id=rect.owner.id, at=rect.started_at, note="正在补录"
                    )
                )


def _at(day: dt.date, hour: int) -> dt.datetime:
    return moments.at(day, hour)


def _seed_publicity(session, rng, villages, year, today) -> None:
    events = [
        (
            dt.date(year, 2, 20),
            "困境儿童福利政策集中宣讲",
            PublicityForm.LECTURE,
            None,
            "罗云镇新时代文明实践所",
            120,
        ),
        (
            dt.date(year, 3, 12),
            "《未成年人保护法》强制报告制度宣传",
            PublicityForm.LEAFLET,
            0,
            "云岭村村委会",
            80,
        ),
        (
            dt.date(year, 4, 18),
            "“涪童守护”政策微信推送",
            PublicityForm.ONLINE,
            None,
            "罗云镇微信公众号",
            1350,
        ),
        (dt.date(year, 5, 9), "家庭监护责任入户宣传", PublicityForm.DOOR, 1, "桃源村", 36),
        (dt.date(year, 7, 22), "暑期防溺水与监护责任宣讲", PublicityForm.LECTURE, 2, "松林村文化室", 65),
        (dt.date(year, 9, 6), "儿童福利政策明白卡发放", PublicityForm.LEAFLET, 3, "石泉村", 140),
        (
            dt.date(year, 11, 12),
            "试点成果与典型经验推送",
            PublicityForm.ONLINE,
            None,
            "罗云镇微信公众号",
            980,
        ),
    ]
    for held_on, title, form, village_index, place, audience in events:
        if held_on > today:
            continue
        village = villages[village_index % len(villages)] if village_index is not None else None
        session.add(
            PublicityEvent(
                held_on=held_on,
                title=title,
                form=form.value,
                place=place,
                village=village,
                organiser="罗云镇民生服务办" if village is None else f"{village.name}村（居）委会",
                audience_count=audience,
                materials="宣传折页200份、政策明白卡150份" if form is PublicityForm.LEAFLET else "宣讲课件",
                content="宣讲困境儿童分类保障政策、家庭监护责任和强制报告义务。",
                version=1,
            )
        )


def _seed_feedback(session, rng, villages, users, year, today) -> None:
    clerk = users.get("clerk")
    items = [i.value for i in FeedbackItem]
    sources = [
        (FeedbackSource.SCHOOL, "罗云镇中心小学", None),
        (FeedbackSource.SCHOOL, "罗云镇初级中学", None),
        (FeedbackSource.VILLAGE, None, 0),
        (FeedbackSource.VILLAGE, None, 1),
        (FeedbackSource.VILLAGE, None, 2),
        (FeedbackSource.FAMILY, None, 0),
        (FeedbackSource.FAMILY, None, 1),
        (FeedbackSource.FAMILY, None, 3),
    ]
    suggestions = [
        "希望增加心理辅导的次数。",
        "走访时间尽量安排在周末，方便家长在家。",
        "活动很好，孩子很喜欢，希望多组织。",
        "建议在学校设立固定的联络老师。",
        "",
        "政策宣传资料通俗易懂，建议多发放。",
    ]
    for month in (3, 6, 9, 11):
        day = dt.date(year, month, 10)
        if day > today:
            continue
        for kind, unit, village_index in sources:
            village = villages[village_index % len(villages)] if village_index is not None else None
            rated = rng.sample(items, k=rng.randint(3, len(items)))
            scores = {item: rng.choice((3, 4, 4, 5, 5, 5)) for item in rated}
            scores.setdefault(FeedbackItem.OVERALL.value, rng.choice((4, 5)))
            session.add(
                Feedback(
                    channel=FeedbackChannel.PAPER.value,
                    source_kind=kind.value,
                    unit=unit or (village.name if village else None),
                    village=village,
                    received_on=day,
                    scores=scores,
                    suggestions=rng.choice(suggestions) or None,
                    recorded_by_id=clerk.id if clerk else None,
                )
            )
    walk = session.scalar(
        select(Activity).where(Activity.kind == "red_walk").order_by(Activity.starts_at).limit(1)
    )
    if walk is not None and walk.starts_at.date() <= today:
        for n in range(6):
            session.add(
                Feedback(
                    channel=FeedbackChannel.QR.value,
                    source_kind=FeedbackSource.FAMILY.value,
                    activity_id=walk.id,
                    received_on=walk.starts_at.date(),
                    scores={FeedbackItem.ACTIVITIES.value: rng.choice((4, 5)), FeedbackItem.OVERALL.value: 5},
                    suggestions=["孩子第一次走红军路，很受教育。", None, "希望明年再办。"][n % 3],
                )
            )
