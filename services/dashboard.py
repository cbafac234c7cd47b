"""Figures of the 工作台, computed for a village scope."""

import calendar
import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, func, select
from sqlalchemy.orm import joinedload

from choices import AlertStatus, AssessmentStatus, CaseStage, ServiceStatus
from models import (
    Alert,
    Assessment,
    Case,
    Category,
    Child,
    SupportService,
    Village,
    child_category,
    db,
)
from services import clock
from services.riskmap import NONE
from services.scoping import scope


@dataclass(frozen=True)
class ChildFigures:
    """Active children in scope, read in one scan of the covering index ix_child_level_dues."""

    by_village_level: dict  # {(village_id, level or NONE): children}, as the risk map counts them
    covered: int  # next reassessment due today or later
    on_schedule: int  # assessed, and next visit due today or later
    complete: int  # file complete: address, guardian and category (services/filing.py)

    @property
    def registered(self) -> int:
        return sum(self.by_village_level.values())

    @property
    def levelled(self) -> int:
        return sum(n for (_, level), n in self.by_village_level.items() if level != NONE)


def child_figures(village_ids, today: dt.date) -> ChildFigures:
    rows = db.session.execute(
        scope(
            select(
                Child.village_id,
                Child.current_level,
                func.count(),
                _tally(Child.next_assessment_due >= today),
                _tally(Child.next_visit_due >= today),
                _tally(Child.file_complete),
            ).where(Child.archived_at.is_(None)),
            Child,
            village_ids,
        ).group_by(Child.village_id, Child.current_level)
    )
    by_village_level, covered, on_schedule, complete = {}, 0, 0, 0
    for village_id, level, n, reassess_ok, visit_ok, filed in rows:
        by_village_level[(village_id, level or NONE)] = n
        covered += reassess_ok
        on_schedule += visit_ok if level is not None else 0
        complete += filed
    return ChildFigures(by_village_level, covered, on_schedule, complete)


def register_counts(village_ids, children: ChildFigures | None = None) -> dict:
    """Active children in scope: total, by category, by level, by village (the map's counts, summed)."""
    children = children or child_figures(village_ids, clock.today())
    by_level: dict = {}
    per_village: dict = {}
    for (village_id, level), n in children.by_village_level.items():
        key = None if level == NONE else level
        by_level[key] = by_level.get(key, 0) + n
        per_village[village_id] = per_village.get(village_id, 0) + n
    villages = db.session.execute(
        scope(select(Village.id, Village.name), Village, village_ids).order_by(Village.sort_order, Village.id)
    ).all()
    return {
        "total": children.registered,
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
    """Rows meeting ``condition``, counted in the same scan (``count(*) FILTER (WHERE …)``)."""
    return func.count().filter(condition)


def plan_rates(village_ids, today: dt.date, children: ChildFigures | None = None) -> list[Rate]:
    """The plan's progress rates for the villages in scope, each with its numerator and denominator."""
    children = children or child_figures(village_ids, today)
    registered = children.registered
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
        "filing": (children.complete, registered),
        "coverage": (children.covered, registered),
        "measures": (in_time, due_count),
        "patrol": (children.on_schedule, children.levelled),
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
    waiting = [
        (
            "to_review",
            Assessment,
            select(Assessment).where(
                Assessment.status == AssessmentStatus.SUBMITTED.value, Assessment.created_by_id != user_id
            )
            if may_review
            else None,
            Assessment.assessed_on,
            joinedload(Assessment.child).joinedload(Child.village),
        ),
        (
            "drafts",
            Assessment,
            select(Assessment).where(
                Assessment.status == AssessmentStatus.DRAFT.value, Assessment.created_by_id == user_id
            ),
            Assessment.assessed_on,
            joinedload(Assessment.child),
        ),
        (
            "reassess",
            Child,
            select(Child).where(Child.archived_at.is_(None), Child.next_assessment_due < today),
            Child.next_assessment_due,
            joinedload(Child.village),
        ),
        (
            "measures",
            SupportService,
            select(SupportService).where(
                SupportService.status == ServiceStatus.PLANNED.value, SupportService.due_on < today
            ),
            SupportService.due_on,
            joinedload(SupportService.child),
        ),
    ]
    work = {}
    for key, model, stmt, order, load in waiting:
        if stmt is None:
            work[f"{key}_count"], work[key] = 0, []
            continue
        # Assessments awaiting review or in draft are few in any village: each is checked for its
        # village (per row) rather than every child of the villages for its assessments.
        few = model is Assessment
        count = _count(scope(stmt, model, village_ids, per_row=few))
        work[f"{key}_count"] = count
        # Most users have nothing in most lists: the rows are read only when there are some. The
        # first rows in date order are read along the date index, each checked for its village.
        work[key] = (
            db.session.scalars(
                scope(stmt, model, village_ids, per_row=True)
                .options(load)
                .order_by(order, model.id)
                .limit(LIST_LIMIT)
            )
            .unique()
            .all()
            if count
            else []
        )
    return work
