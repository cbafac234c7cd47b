"""Figures of the 工作台, computed for a village scope."""

import calendar
import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.orm import joinedload

from choices import AlertStatus, AssessmentStatus, CaseStage, ServiceStatus
from models import (
    Alert,
    Assessment,
    Case,
    Category,
    Child,
    ChildGuardian,
    SupportService,
    Village,
    child_category,
    db,
)
from services.riskmap import NONE, level_counts
from services.scoping import scope


def _active_children(village_ids):
    return scope(select(Child.id).where(Child.archived_at.is_(None)), Child, village_ids)


def register_counts(village_ids) -> dict:
    """Active children in scope: total, by category, by level, by village (the map's counts, summed)."""
    per_village_level = level_counts(village_ids)
    by_level: dict = {}
    per_village: dict = {}
    for (village_id, level), n in per_village_level.items():
        key = None if level == NONE else level
        by_level[key] = by_level.get(key, 0) + n
        per_village[village_id] = per_village.get(village_id, 0) + n
    villages = db.session.execute(
        scope(select(Village.id, Village.name), Village, village_ids).order_by(Village.sort_order, Village.id)
    ).all()
    return {
        "total": sum(per_village.values()),
        "by_category": category_counts(village_ids),
        "by_level": by_level,
        "by_village": [(name, per_village.get(village_id, 0)) for village_id, name in villages],
    }


def category_counts(village_ids) -> list[tuple[str, int]]:
    """(category, active children) in category order: every link in scope minus the archived
    children's links, which reads the link table's index rather than every child."""
    link = child_category.c
    if village_ids is None:
        linked = select(link.category_id, func.count()).group_by(link.category_id)
    else:
        in_scope = scope(select(Child.id), Child, village_ids)
        linked = (
            select(link.category_id, func.count())
            .where(link.child_id.in_(in_scope))
            .group_by(link.category_id)
        )
    archived_children = scope(select(Child.id).where(Child.archived_at.is_not(None)), Child, village_ids)
    archived = (
        select(link.category_id, func.count())
        .where(link.child_id.in_(archived_children))
        .group_by(link.category_id)
    )
    counts = dict(db.session.execute(linked).all())
    for category_id, n in db.session.execute(archived):
        counts[category_id] -= n
    categories = db.session.execute(select(Category.id, Category.name).order_by(Category.sort_order)).all()
    return [(name, counts[category_id]) for category_id, name in categories if counts.get(category_id)]


# --------------------------------------------------------------------------- plan progress

# Work plan 四: the three phases, as (month, day) spans of the plan year. They overlap by design
# (February and November belong to two phases each), so a day may lie in two phases.
PHASES = [
    ("部署启动", (1, 1), (2, 28), "成立领导小组、业务培训、全面摸排、完成信息建档"),
    ("重点推进", (2, 1), (11, 30), "识别评估、风险分级、分层赋能、监督巡查、个案帮扶"),
    ("总结提升", (11, 1), (12, 31), "梳理成效、总结典型案例、迎接区级评估验收"),
]


def plan_phases(today: dt.date) -> list[dict]:
    phases = []
    for name, (m1, d1), (m2, d2), work in PHASES:
        start = dt.date(today.year, m1, d1)
        end = dt.date(today.year, m2, d2)
        if (m2, d2) == (2, 28) and calendar.isleap(today.year):
            end = dt.date(today.year, 2, 29)
        phases.append(
            {"name": name, "start": start, "end": end, "work": work, "current": start <= today <= end}
        )
    return phases


@dataclass(frozen=True)
class Rate:
    key: str
    name: str
    numerator: int
    denominator: int
    definition: str

    @property
    def percent(self) -> float | None:
        return round(100 * self.numerator / self.denominator, 1) if self.denominator else None


RATE_DEFINITIONS = {
    "filing": (
        "建档完成率",
        "在册儿童中档案要素齐全（至少一名监护人、至少一个困境类别、已填住址）的人数 ÷ 在册儿童人数",
    ),
    "coverage": (
        "评估覆盖率",
        "在册儿童中在复评周期内（有已审核评估且“下次评估”日期不早于今天）的人数 ÷ 在册儿童人数",
    ),
    "measures": (
        "分层赋能落实率",
        "应完成日期已过（早于今天）且未取消的分层赋能服务中，在应完成日期当天或之前落实的项数 ÷ 这些服务的项数",
    ),
    "patrol": (
        "巡查按期率",
        "已评定等级的在册儿童中“下次走访”日期未逾期（不早于今天）的人数 ÷ 已评定等级的在册儿童人数",
    ),
    "alerts": (
        "预警按期处置率",
        "处置期限已到或已办结的预警中，在处置期限之前办结的条数 ÷ 这些预警的条数（期限：红24小时、橙72小时、黄7天）",
    ),
    "cases": (
        "个案结案率",
        "个案中当前阶段为“结案”的件数 ÷ 全部个案件数",
    ),
}


def _count(stmt) -> int:
    """Rows of a select, counted without reading its columns (so an index can answer)."""
    return db.session.scalar(stmt.with_only_columns(func.count()).order_by(None)) or 0


def _tally(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def complete_files(village_ids) -> int:
    """Active children in scope whose file has an address, a guardian and a category (one scan)."""
    if village_ids is None:
        # The whole town: each link table read once into a set beats a probe per child.
        has_guardian = Child.id.in_(select(ChildGuardian.child_id))
        has_category = Child.id.in_(select(child_category.c.child_id))
    else:
        # A few villages: probe the link tables' indexes for just their children.
        has_guardian = exists().where(ChildGuardian.child_id == Child.id)
        has_category = exists().where(child_category.c.child_id == Child.id)
    return db.session.scalar(
        scope(
            select(func.count()).where(
                Child.archived_at.is_(None),
                Child.address.is_not(None),
                Child.address != "",
                has_guardian,
                has_category,
            ),
            Child,
            village_ids,
        )
    )


def plan_rates(village_ids, today: dt.date) -> list[Rate]:
    """The plan's progress rates for the villages in scope, each with its numerator and denominator."""
    levelled = Child.current_level.is_not(None)
    children = db.session.execute(
        scope(
            select(
                func.count(),
                _tally(Child.next_assessment_due >= today),
                _tally(levelled),
                _tally(and_(levelled, Child.next_visit_due >= today)),
            ).where(Child.archived_at.is_(None)),
            Child,
            village_ids,
        )
    ).one()
    registered, covered, levelled_count, on_schedule = (int(n) for n in children)
    complete = complete_files(village_ids)
    services = db.session.execute(
        scope(
            select(
                func.count(),
                _tally(
                    and_(
                        SupportService.status == ServiceStatus.DELIVERED.value,
                        SupportService.delivered_on <= SupportService.due_on,
                    )
                ),
            ).where(SupportService.due_on < today, SupportService.status != ServiceStatus.CANCELLED.value),
            SupportService,
            village_ids,
        )
    ).one()
    due_count, in_time = (int(n) for n in services)
    now = dt.datetime.combine(today, dt.time.max)
    done = Alert.status == AlertStatus.DONE.value
    alerts = db.session.execute(
        scope(
            select(func.count(), _tally(and_(done, Alert.closed_at <= Alert.deadline))).where(
                done | (Alert.deadline < now)
            ),
            Alert,
            village_ids,
        )
    ).one()
    cases = db.session.execute(
        scope(select(func.count(), _tally(Case.stage == CaseStage.CLOSED.value)), Case, village_ids)
    ).one()
    figures = {
        "filing": (complete, registered),
        "coverage": (covered, registered),
        "measures": (in_time, due_count),
        "patrol": (on_schedule, levelled_count),
        "alerts": (int(alerts[1]), int(alerts[0])),
        "cases": (int(cases[1]), int(cases[0])),
    }
    rates = []
    for key, (numerator, denominator) in figures.items():
        name, definition = RATE_DEFINITIONS[key]
        rates.append(Rate(key, name, numerator, denominator, definition))
    return rates


# --------------------------------------------------------------------------- the user's own work

LIST_LIMIT = 8


def overdue_work(village_ids, *, user_id: int, may_review: bool, today: dt.date) -> dict:
    """What waits for this user, in their villages: reviews, own drafts, overdue reassessments and measures.

    Each item is a count and the first few rows, oldest first.
    """
    scoped_assessments = scope(select(Assessment), Assessment, village_ids)
    pending = scoped_assessments.where(
        Assessment.status == AssessmentStatus.SUBMITTED.value, Assessment.created_by_id != user_id
    )
    drafts = scoped_assessments.where(
        Assessment.status == AssessmentStatus.DRAFT.value, Assessment.created_by_id == user_id
    )
    reassess = scope(
        select(Child).where(Child.archived_at.is_(None), Child.next_assessment_due < today),
        Child,
        village_ids,
    )
    measures = scope(
        select(SupportService).where(
            SupportService.status == ServiceStatus.PLANNED.value, SupportService.due_on < today
        ),
        SupportService,
        village_ids,
    )
    work = {}
    for key, stmt, order, load in (
        (
            "to_review",
            pending if may_review else None,
            Assessment.assessed_on,
            joinedload(Assessment.child).joinedload(Child.village),
        ),
        ("drafts", drafts, Assessment.assessed_on, joinedload(Assessment.child)),
        ("reassess", reassess, Child.next_assessment_due, joinedload(Child.village)),
        ("measures", measures, SupportService.due_on, joinedload(SupportService.child)),
    ):
        count = _count(stmt) if stmt is not None else 0
        work[f"{key}_count"] = count
        # Most users have nothing in most lists: the rows are read only when there are some.
        work[key] = (
            db.session.scalars(stmt.options(load).order_by(order).limit(LIST_LIMIT)).unique().all()
            if count
            else []
        )
    return work
