"""The 工作台: its figures (read from services/indicators.py), the plan's phases, the user's own work."""

import calendar
import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from choices import AssessmentStatus, ServiceStatus
from models import Assessment, Child, SupportService, Village, db
from services import indicators
from services.indicators import NONE
from services.parallel_reads import side_by_side
from services.scoping import scope

# The 工作台's figures, all read from services/indicators.py over one frame: the plan year so far
# (state figures as of now, work figures since 1 January).
STATE_RATES = (
    "file_complete_rate",
    "assessment_cycle_rate",
    "assessed_ever_rate",
    "patrol_on_time_rate",
    "cases_closed_rate",
)
PERIOD_RATES = ("measures_on_time_rate", "measures_delivered_rate", "alerts_on_time_rate")
STATE_COUNTS = (
    "patrol_overdue",
    "reassessment_overdue",
    "never_assessed",
    "alerts_open",
    "alerts_overdue_open",
    "cases_open",
)
FUND_FIGURES = ("funds_execution_rate", "funds_commitment_rate")
# Those of the figures above that read the register's one scan (indicators.child_states): the page
# reads them beside the others (cases, alerts, measures, funds). Which group a figure is in only
# decides what runs at once; each figure is the same in either.
FROM_REGISTER = (
    "file_complete_rate",
    "assessment_cycle_rate",
    "assessed_ever_rate",
    "patrol_on_time_rate",
    "patrol_overdue",
    "reassessment_overdue",
    "never_assessed",
)


def frame_for(village_ids, now: dt.datetime) -> indicators.Frame:
    return indicators.Frame.year_to_date(village_ids, now)


def figures(frame: indicators.Frame, keys) -> dict[str, indicators.Value]:
    return indicators.compute_many(keys, frame)


def all_figures(frame: indicators.Frame, *, children: bool, funds: bool) -> dict:
    """What the 工作台 shows of the frame: ``counts`` (register_counts), ``state``, ``period`` and
    ``tallies`` (the figures above, in their order) when the user may read children, ``funds`` (the
    town's, whatever the frame's villages) when they may read funds; None for what they may not.

    The figures of the register's one scan (FROM_REGISTER, with the category counts) are read beside
    the others (cases, alerts, measures, funds), each half on its own connection
    (services/parallel_reads.py)."""
    keys = STATE_RATES + PERIOD_RATES + STATE_COUNTS
    result = dict.fromkeys(("counts", "state", "period", "tallies", "funds"))

    def money():
        # Funds are the town's (not split by village); the findings count runs every fund check, so
        # the page asks for it separately (views/dashboard.py's fund_findings).
        return figures(frame.for_villages(None), FUND_FIGURES) if funds else None

    if not children:
        result["funds"] = money()
        return result

    def from_register():
        return register_counts(frame), figures(frame, [key for key in keys if key in FROM_REGISTER])

    def the_others():
        return figures(frame, [key for key in keys if key not in FROM_REGISTER]), money()

    (result["counts"], registered), (others, result["funds"]) = side_by_side(from_register, the_others)
    values = registered | others
    for name, group in (("state", STATE_RATES), ("period", PERIOD_RATES), ("tallies", STATE_COUNTS)):
        result[name] = {key: values[key] for key in group}
    return result


def register_counts(frame: indicators.Frame) -> dict:
    """Children in register: total, by category, by level, by village (the map's counts, summed)."""
    by_level: dict = {}
    per_village: dict = {}
    for (village_id, level), n in indicators.level_distribution(frame).items():
        key = None if level == NONE else level
        by_level[key] = by_level.get(key, 0) + n
        per_village[village_id] = per_village.get(village_id, 0) + n
    villages = db.session.execute(
        indicators.scoped(select(Village.id, Village.name), Village, frame).order_by(
            Village.sort_order, Village.id
        )
    ).all()
    return {
        "total": sum(per_village.values()),
        "by_category": [(name, n) for _, name, n in indicators.category_distribution(frame) if n],
        "by_level": by_level,
        "by_village": [(name, per_village.get(village_id, 0)) for village_id, name in villages],
    }


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


# --------------------------------------------------------------------------- the user's own work

LIST_LIMIT = 8


def _count(stmt) -> int:
    """Rows of a select, counted without reading its columns (so an index can answer)."""
    return db.session.scalar(stmt.with_only_columns(func.count()).order_by(None)) or 0


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
            select(Child).where(
                Child.archived_at.is_(None), Child.registered_on <= today, Child.next_assessment_due < today
            ),
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
