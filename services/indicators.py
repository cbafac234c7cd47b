"""Every figure 童护 shows, declared once: its name, its Chinese definition, what it counts and in what unit.

The 工作台, the monthly and phase reports (and their 指标说明 sheet), the risk map, the 141 feed and
the acceptance pack all read their figures from here, so one name has exactly one meaning. Where two
readings of a figure are both useful they are two indicators with two names (评估覆盖率（周期内） and
累计评估率).

An indicator is computed over a ``Frame``: the villages in scope, a period (first and last day) and
the moment of computing. Two kinds:

- 时点指标 (``STATE``): how things stood at the frame's moment, the end of the period or now,
  whichever is earlier (levels, stages and 在册 reconstructed from history for a past moment).
- 期间指标 (``PERIOD``): work dated within the period, up to the moment (a report made before its
  period ends counts what has happened so far).

Numerator and denominator are functions ``fn(frame) -> Parts``: the count (or sum of money) per
village id, so one computation serves the town total and every village's row. Sub-results shared by
several indicators are kept in ``frame.memo`` for the frame's lifetime.

Adding a figure: write its numerator (and denominator) as such functions and ``declare`` it below,
next to the figures of its area; ``flask --app app indicators-readme`` then rewrites the README table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import and_, case, distinct, func, literal, null, or_, select, union_all

from choices import (
    AlertClosure,
    AlertStatus,
    AssessmentStatus,
    CaseStage,
    ChildStatus,
    ExpenseStatus,
    Level,
    ServiceStatus,
    Severity,
)
from models import (
    Activity,
    Alert,
    Assessment,
    Attendance,
    Case,
    CaseEvent,
    Category,
    Child,
    ChildStatusChange,
    Expense,
    FundSource,
    SupportService,
    Visit,
    child_category,
    db,
)
from services import clock, visits
from services.funds import cents, from_cents, in_cents
from services.scoping import scope

STATE = "state"
PERIOD = "period"
BASIS_LABELS = {STATE: "时点", PERIOD: "期间"}

# Units: a rate is numerator ÷ denominator; the others are counts or sums of money.
PERCENT = "%"
PEOPLE = "人"
TIMES = "次"
ITEMS = "项"
ALERTS = "条"
CASES = "件"
SESSIONS = "场"
YUAN = "元"

Number = int | Decimal
Parts = dict  # {village id (None: not split by village): number}
NONE = "none"  # no level: not assessed (yet, or by that date)


# --------------------------------------------------------------------------- frames


@dataclass
class Frame:
    """What a figure is computed over: the villages in scope, a period, and the moment of computing.

    ``moment`` is when state figures are read: the first instant after the period's last day, or
    ``now`` when that comes first. ``day`` is the as-of date (the period's last day or today).
    """

    village_ids: tuple[int, ...] | None
    start: dt.date
    end: dt.date
    now: dt.datetime
    # True: read the state from the history even now (the tests' check that both readings agree).
    from_history: bool = False
    memo_store: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of_period(
        cls, start: dt.date, end: dt.date, village_ids=None, now: dt.datetime | None = None
    ) -> Frame:
        if end < start:
            raise ValueError("period ends before it starts")
        return cls(_ids(village_ids), start, end, now or clock.now())

    @classmethod
    def as_of(cls, day: dt.date | None = None, village_ids=None, now: dt.datetime | None = None) -> Frame:
        """A frame for state figures on ``day`` (today when None); its period is that day's year so far."""
        now = now or clock.now()
        day = day or now.date()
        return cls(_ids(village_ids), dt.date(day.year, 1, 1), day, now)

    @classmethod
    def year_to_date(cls, village_ids=None, now: dt.datetime | None = None) -> Frame:
        """The plan year so far: the 工作台's frame."""
        now = now or clock.now()
        return cls(_ids(village_ids), dt.date(now.year, 1, 1), now.date(), now)

    @property
    def moment(self) -> dt.datetime:
        return min(dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time.min), self.now)

    @property
    def day(self) -> dt.date:
        """The as-of date: the period's last day, or today when the period has not ended yet."""
        return min(self.end, self.now.date())

    @property
    def is_current(self) -> bool:
        """The moment is now: state can be read from the derived columns kept on the rows."""
        return self.end >= self.now.date() and not self.from_history

    @property
    def start_dt(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time.min)

    @property
    def last_full_day(self) -> dt.date:
        """The last day of the period that is wholly over at the moment (deadlines by date)."""
        return min(self.end, self.now.date() - dt.timedelta(days=1))

    def for_villages(self, village_ids) -> Frame:
        return Frame(_ids(village_ids), self.start, self.end, self.now, self.from_history)

    def reconstructed(self) -> Frame:
        """The same frame, its state read back from the history (as for a past moment)."""
        return Frame(self.village_ids, self.start, self.end, self.now, True)

    def memo(self, key, compute: Callable[[], object]):
        """A sub-result shared by the indicators computed over this frame (one scan, several figures)."""
        if key not in self.memo_store:
            self.memo_store[key] = compute()
        return self.memo_store[key]

    def describe(self) -> str:
        if self.start == dt.date(self.end.year, 1, 1) and self.is_current:
            return f"{self.start:%Y-%m-%d} 至今天（{self.now:%Y-%m-%d}）"
        return f"{self.start:%Y-%m-%d} 至 {self.end:%Y-%m-%d}"


def _ids(village_ids) -> tuple[int, ...] | None:
    return None if village_ids is None else tuple(village_ids)


def scoped(stmt, model, frame: Frame):
    """``stmt`` limited to the frame's villages (the one scoping rule, services/scoping.py)."""
    return scope(stmt, model, None if frame.village_ids is None else list(frame.village_ids))


# --------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Indicator:
    key: str
    name: str
    definition: str
    unit: str
    basis: str
    numerator: Callable[[Frame], Parts]
    denominator: Callable[[Frame], Parts] | None = None
    numerator_label: str = ""
    denominator_label: str = ""
    # The permission area (services/permissions.py) a user needs to see the figure.
    area: str = "children"
    # False: no history is kept for it, so it exists only as of now.
    history: bool = True
    # True: town-wide money, not split by village (a village scope gets no value).
    town_only: bool = False

    @property
    def is_rate(self) -> bool:
        return self.denominator is not None

    @property
    def basis_label(self) -> str:
        return BASIS_LABELS[self.basis]


INDICATORS: dict[str, Indicator] = {}


def declare(**fields) -> Indicator:
    indicator = Indicator(**fields)
    if indicator.key in INDICATORS:
        raise ValueError(f"indicator {indicator.key} declared twice")
    if any(other.name == indicator.name for other in INDICATORS.values()):
        raise ValueError(f"indicator name {indicator.name} declared twice")
    if (indicator.unit == PERCENT) != indicator.is_rate:
        raise ValueError(f"indicator {indicator.key}: a rate has a denominator and the unit %")
    INDICATORS[indicator.key] = indicator
    return indicator


def get(key: str) -> Indicator:
    return INDICATORS[key]


@dataclass(frozen=True)
class Value:
    """An indicator over a frame: numerator and denominator per village and in total."""

    indicator: Indicator
    frame: Frame
    numerator_parts: Parts | None
    denominator_parts: Parts | None = None
    unavailable: str | None = None  # why there is no value (no history kept, town-wide only …)

    @property
    def available(self) -> bool:
        return self.unavailable is None

    @property
    def numerator(self) -> Number | None:
        return None if self.numerator_parts is None else _total(self.numerator_parts, self.indicator.unit)

    @property
    def denominator(self) -> Number | None:
        return None if self.denominator_parts is None else _total(self.denominator_parts, self.indicator.unit)

    @property
    def value(self) -> Number | Decimal | None:
        """A rate as a fraction with 4 places (0.8083); a count or sum as itself; None when undefined."""
        if not self.available:
            return None
        if not self.indicator.is_rate:
            return self.numerator
        if not self.denominator:
            return None
        return (Decimal(self.numerator) / Decimal(self.denominator)).quantize(
            Decimal("0.0001"), rounding=ROUND_HALF_UP
        )

    @property
    def percent(self) -> Decimal | None:
        """A rate in per cent with one place (80.8), as the screens show it."""
        value = self.value if self.indicator.is_rate else None
        return None if value is None else (value * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)

    @property
    def text(self) -> str:
        """The value as a person reads it: 80.8%, 240, 12,345.00; — when there is none."""
        value = self.value
        if value is None:
            return "—"
        if self.indicator.is_rate:
            return f"{self.percent}%"
        if self.indicator.unit == YUAN:
            return f"{value:,.2f}"
        return str(value)

    def for_village(self, village_id: int) -> Value:
        """The same figure restricted to one village's part."""
        return Value(
            self.indicator,
            self.frame,
            None if self.numerator_parts is None else {village_id: self.numerator_parts.get(village_id, 0)},
            None
            if self.denominator_parts is None
            else {village_id: self.denominator_parts.get(village_id, 0)},
            self.unavailable,
        )


def _total(parts: Parts, unit: str) -> Number:
    total = sum(parts.values(), Decimal("0.00") if unit == YUAN else 0)
    return total


def compute(indicator: Indicator | str, frame: Frame) -> Value:
    indicator = get(indicator) if isinstance(indicator, str) else indicator
    if not indicator.history and not frame.is_current:
        return Value(indicator, frame, None, None, "系统不保存该指标的历史，只能统计当前情况")
    if indicator.town_only and frame.village_ids is not None:
        return Value(indicator, frame, None, None, "全镇统计的资金指标，按村（社区）统计时不适用")
    numerator = indicator.numerator(frame)
    denominator = indicator.denominator(frame) if indicator.denominator else None
    return Value(indicator, frame, numerator, denominator)


NOT_PERMITTED = "您的角色无权查看该指标"


def compute_many(
    keys: Iterable[str], frame: Frame, may_read: Callable[[str], bool] | None = None
) -> dict[str, Value]:
    """Several indicators over one frame, sharing its sub-results. ``may_read(area)`` (the reader's
    role, services/permissions.py) leaves the figures of areas it may not read without a value."""
    values = {}
    for key in keys:
        indicator = get(key)
        if may_read is not None and not may_read(indicator.area):
            values[key] = Value(indicator, frame, None, None, NOT_PERMITTED)
        else:
            values[key] = compute(indicator, frame)
    return values


def measure(
    key: str,
    village_ids=None,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    as_of: dt.date | None = None,
    now: dt.datetime | None = None,
) -> Value:
    """One indicator without building a frame first: over a period (``start``–``end``), or as of a
    day (``as_of``; today when neither is given). For callers outside the screens (the acceptance pack)."""
    if start is not None or end is not None:
        if start is None or end is None:
            raise ValueError("a period needs both its first and its last day")
        return compute(key, Frame.of_period(start, end, village_ids, now))
    return compute(key, Frame.as_of(as_of, village_ids, now))


def table(frame: Frame, keys: Iterable[str] | None = None) -> list[dict]:
    """Every indicator (or ``keys``) over ``frame`` as plain rows, for a sheet or a page: name, kind,
    unit, value (a rate as a fraction), its text, numerator, denominator and definition."""
    rows = []
    for key, v in compute_many(keys if keys is not None else INDICATORS, frame).items():
        ind = v.indicator
        rows.append(
            {
                "key": key,
                "name": ind.name,
                "basis": ind.basis_label,
                "unit": ind.unit,
                "value": v.value,
                "text": v.text,
                "numerator": v.numerator if ind.is_rate else None,
                "denominator": v.denominator if ind.is_rate else None,
                "numerator_label": ind.numerator_label,
                "denominator_label": ind.denominator_label,
                "definition": v.unavailable or ind.definition,
            }
        )
    return rows


def by_rows(rows) -> Parts:
    """Parts from (village id, number) rows."""
    parts: Parts = {}
    for village_id, n in rows:
        parts[village_id] = parts.get(village_id, 0) + (n or 0)
    return parts


# --------------------------------------------------------------------------- history, read back


def tally(condition):
    """Rows meeting ``condition``, counted in the same scan (``count(*) FILTER (WHERE …)``)."""
    return func.count().filter(condition)


def in_register(frame: Frame):
    """SQL condition on Child: registered by the frame's day and not archived at its moment.

    Now, that is the child row itself; for a past moment the archive/restore history is read, but
    only for children whose status changed since (``Child.status_changed_at``)."""
    registered = Child.registered_on <= frame.day
    if frame.is_current:
        return and_(registered, Child.archived_at.is_(None))
    moment = frame.moment
    status_then = (
        select(ChildStatusChange.status)
        .where(ChildStatusChange.child_id == Child.id, ChildStatusChange.at < moment)
        .order_by(ChildStatusChange.at.desc(), ChildStatusChange.id.desc())
        .limit(1)
        .correlate(Child)
        .scalar_subquery()
    )
    unchanged_since = or_(Child.status_changed_at.is_(None), Child.status_changed_at < moment)
    return and_(
        registered,
        or_(
            and_(unchanged_since, Child.archived_at.is_(None)),
            and_(
                ~unchanged_since,
                func.coalesce(status_then, ChildStatus.ACTIVE.value) == ChildStatus.ACTIVE.value,
            ),
        ),
    )


def out_of_register_now(day: dt.date):
    """Select of the ids of the children not in register now (``in_register`` of a current frame,
    negated): the archived ones and those registered after ``day``. Two narrow ranges
    (ix_child_archived_at; ix_child_reassess_due, read by SQLite's skip-scan), not a read of every
    child, which the negated condition would need."""
    return union_all(
        select(Child.id).where(Child.archived_at.is_not(None)),
        select(Child.id).where(Child.archived_at.is_(None), Child.registered_on > day),
    )


def registered_children(frame: Frame):
    """Select of the ids of the children in register at the frame's moment, within its villages."""
    return scoped(select(Child.id).where(in_register(frame)), Child, frame)


def _latest_approved(column, day: dt.date):
    """Correlated scalar: ``column`` of the outer Child's latest approved assessment on or before ``day``."""
    return (
        select(column)
        .where(
            Assessment.child_id == Child.id,
            Assessment.status == AssessmentStatus.APPROVED.value,
            Assessment.assessed_on <= day,
        )
        .order_by(Assessment.assessed_on.desc(), Assessment.id.desc())
        .limit(1)
        .correlate(Child)
        .scalar_subquery()
    )


def level_on(day: dt.date):
    """The outer Child's level on ``day``: its current level when assessed by then (no lookup), else
    that of its latest approved assessment by then (ix_assessment_level_history), else NULL."""
    return case(
        (Child.level_assessed_on.is_(None), None),
        (Child.level_assessed_on <= day, Child.current_level),
        else_=_latest_approved(Assessment.level, day),
    )


def _reassessment_due_on(day: dt.date):
    """The outer Child's 下次评估 as it stood on ``day`` (that of its latest approved assessment by then)."""
    return case(
        (Child.level_assessed_on.is_(None), None),
        (Child.level_assessed_on <= day, Child.next_assessment_due),
        else_=_latest_approved(Assessment.next_reassess_on, day),
    )


@dataclass(frozen=True)
class ChildTally:
    """Children in register of one village and level, and how many of them meet each condition."""

    children: int
    in_cycle: int  # 下次评估 on or after the day
    complete: int  # file complete (now only)
    visit_on_time: int | None = None  # 下次走访 on or after the day (now only; the past: _patrol)
    # a standing 建档与评估 consent, and under 14 on the day without one (now only, from the state kept
    # on the child; the past: _filing_consent reads the consent rows)
    consented: int | None = None
    young_unconsented: int | None = None


def child_states(frame: Frame, category_id: int | None = None) -> dict:
    """{(village id, level or NONE): ChildTally} for the children in register at the frame's moment,
    each at its level of the frame's day: the 工作台's counts, the map's matrix, the report's tables."""

    def compute():
        from services.consent import under_14_born_after

        day = frame.day
        if frame.is_current:  # one scan of the covering index ix_child_level_dues
            stmt = select(
                Child.village_id,
                Child.current_level,
                func.count(),
                tally(Child.next_assessment_due >= day),
                tally(Child.file_complete.is_(True)),
                tally(Child.next_visit_due >= day),
                tally(Child.filing_consent.is_(True)),
                tally(and_(Child.birth_date > under_14_born_after(day), Child.filing_consent.is_(False))),
            ).where(in_register(frame))
            stmt = _in_category(scoped(stmt, Child, frame), category_id).group_by(
                Child.village_id, Child.current_level
            )
        else:
            then = _in_category(
                scoped(
                    select(
                        Child.village_id.label("village_id"),
                        level_on(day).label("level"),
                        _reassessment_due_on(day).label("due"),
                    ).where(in_register(frame)),
                    Child,
                    frame,
                ),
                category_id,
            )
            then = then.offset(0).subquery()  # OFFSET 0: each lookup made once per child
            stmt = select(
                then.c.village_id,
                then.c.level,
                func.count(),
                tally(then.c.due >= day),
                literal(0),
                literal(None),
            ).group_by(then.c.village_id, then.c.level)
        return {
            (village_id, level or NONE): ChildTally(*counts)
            for village_id, level, *counts in db.session.execute(stmt)
        }

    return frame.memo(("child_states", category_id), compute)


def _in_category(stmt, category_id):
    if not category_id:
        return stmt
    return stmt.where(
        Child.id.in_(select(child_category.c.child_id).where(child_category.c.category_id == category_id))
    )


def _sum_states(frame: Frame, field_name: str, levels=None) -> Parts:
    parts: Parts = {}
    for (village_id, level), row in child_states(frame).items():
        if levels is None or level in levels:
            parts[village_id] = parts.get(village_id, 0) + getattr(row, field_name)
    return parts


ASSESSED = tuple(level.value for level in Level)


def registered(frame: Frame) -> Parts:
    return _sum_states(frame, "children")


def level_distribution(frame: Frame, category_id: int | None = None) -> dict:
    """{(village id, level or "none"): children in register}: the map's matrix and the level counts."""
    return {key: row.children for key, row in child_states(frame, category_id).items()}


def category_distribution(frame: Frame) -> list[tuple[int, str, int]]:
    """(category id, name, children in register) in category order; a child may be in several
    categories. Categories are read as recorded now (their history is not kept)."""
    links = select(child_category.c.category_id, func.count()).group_by(child_category.c.category_id)
    if frame.is_current and frame.village_ids is None:
        # The whole town now: every link less those of the few children out of register (archived,
        # or registered later): index ranges, not a lookup of every child in register.
        outside = out_of_register_now(frame.day)
        counts = dict(db.session.execute(links).all())
        for category_id, n in db.session.execute(links.where(child_category.c.child_id.in_(outside))):
            counts[category_id] -= n
    else:
        counts = dict(
            db.session.execute(links.where(child_category.c.child_id.in_(registered_children(frame)))).all()
        )
    categories = db.session.execute(select(Category.id, Category.name).order_by(Category.sort_order)).all()
    return [(category_id, name, counts.get(category_id, 0)) for category_id, name in categories]


# --------------------------------------------------------------------------- 巡查走访: 下次走访 on a day


def _patrol(frame: Frame) -> dict[int, tuple[int, int]]:
    """{village id: (children in register, children whose 下次走访 is on or after the day)}."""

    def compute():
        if frame.is_current:  # the date services/visits.py keeps on the child, in the one child scan
            result: dict[int, tuple[int, int]] = {}
            for (village_id, _), row in child_states(frame).items():
                n, on_time = result.get(village_id, (0, 0))
                result[village_id] = (n + row.children, on_time + row.visit_on_time)
            return result
        return {
            village_id: (n, on_time) for village_id, n, on_time in db.session.execute(_patrol_then(frame))
        }

    return frame.memo("patrol", compute)


def _contacts_then(frame: Frame):
    """Per child in register: its registration date, last visit by the day and latest approved
    assessment by the day (services/visits.py's contacts, as they stood)."""
    day = frame.day
    return (
        scoped(
            select(
                Child.id.label("child_id"),
                Child.village_id.label("village_id"),
                Child.registered_on.label("registered_on"),
                visits.last_visit_on(day).label("last_visit"),
                visits.latest_approved_id(day).label("assessment_id"),
            ).where(in_register(frame)),
            Child,
            frame,
        )
        .offset(0)
        .subquery()
    )


def _on_time_then(frame: Frame, contacts):
    """The condition, over ``_contacts_then`` joined to the assessment, that 下次走访 (latest contact +
    the level's interval under its rule version) is on or after the day: some contact on or after the
    day less the interval."""
    day = frame.day
    intervals = visits.visit_intervals()
    cutoff = case(
        *(
            (
                and_(Assessment.rule_version_id == version_id, Assessment.level == level),
                day - dt.timedelta(days=n),
            )
            for (version_id, level), n in intervals.items()
        ),
        *(
            (Assessment.level == level, day - dt.timedelta(days=n))
            for level, n in visits.DEFAULT_VISIT_DAYS.items()
        ),
        else_=day - dt.timedelta(days=visits.UNASSESSED_VISIT_DAYS),
    )
    registered_on = contacts.c.registered_on
    # coalesce: never NULL, so the negation (巡查逾期) is exact too
    return or_(
        registered_on >= cutoff,
        func.coalesce(contacts.c.last_visit, registered_on) >= cutoff,
        func.coalesce(Assessment.assessed_on, registered_on) >= cutoff,
    )


def _patrol_then(frame: Frame):
    contacts = _contacts_then(frame)
    return (
        select(contacts.c.village_id, func.count(), tally(_on_time_then(frame, contacts)))
        .select_from(contacts)
        .outerjoin(Assessment, Assessment.id == contacts.c.assessment_id)
        .group_by(contacts.c.village_id)
    )


def patrol_overdue_children(frame: Frame) -> list[int]:
    """Ids of the children in register whose 下次走访 is before the frame's day (巡查逾期)."""
    if frame.is_current:
        stmt = scoped(
            select(Child.id).where(in_register(frame), Child.next_visit_due < frame.day), Child, frame
        )
    else:
        contacts = _contacts_then(frame)
        stmt = (
            select(contacts.c.child_id)
            .select_from(contacts)
            .outerjoin(Assessment, Assessment.id == contacts.c.assessment_id)
            .where(~_on_time_then(frame, contacts))
        )
    return sorted(db.session.scalars(stmt))


def _patrol_on_time(frame: Frame) -> Parts:
    return {village_id: on_time for village_id, (_, on_time) in _patrol(frame).items()}


def _patrol_overdue(frame: Frame) -> Parts:
    return {village_id: n - on_time for village_id, (n, on_time) in _patrol(frame).items()}


# --------------------------------------------------------------------------- the register's figures

declare(
    key="registered",
    name="在册儿童数",
    definition="统计时点在册的儿童人数：登记日期不晚于统计日，且统计时点未归档（按归档、恢复的历史记录判断）。"
    "以下时点指标均以此为范围。",
    unit=PEOPLE,
    basis=STATE,
    numerator=registered,
)
declare(
    key="file_complete_rate",
    name="建档完成率",
    definition="在册儿童中档案要素齐全（至少一名监护人、至少一个困境类别、已填住址）的人数 ÷ 在册儿童数。"
    "档案要素不保存历史，只统计当前情况。",
    unit=PERCENT,
    basis=STATE,
    numerator=lambda frame: _sum_states(frame, "complete"),
    denominator=registered,
    numerator_label="档案齐全",
    denominator_label="在册儿童",
    history=False,
)
declare(
    key="assessment_cycle_rate",
    name="评估覆盖率（周期内）",
    definition="在册儿童中处于复评周期内的人数 ÷ 在册儿童数。处于周期内：统计日前最近一次已审核评估的"
    "“下次评估”日期（评估日期 + 该等级的复评间隔，按该次评估所用规则版本）不早于统计日。",
    unit=PERCENT,
    basis=STATE,
    numerator=lambda frame: _sum_states(frame, "in_cycle"),
    denominator=registered,
    numerator_label="周期内",
    denominator_label="在册儿童",
)
declare(
    key="assessed_ever_rate",
    name="累计评估率",
    definition="在册儿童中，统计日前至少有一次已审核评估的人数 ÷ 在册儿童数（不论是否已到复评时间）。",
    unit=PERCENT,
    basis=STATE,
    numerator=lambda frame: _sum_states(frame, "children", ASSESSED),
    denominator=registered,
    numerator_label="已评估",
    denominator_label="在册儿童",
)
declare(
    key="never_assessed",
    name="未评估儿童数",
    definition="在册儿童中，统计日前没有任何已审核评估的人数。",
    unit=PEOPLE,
    basis=STATE,
    numerator=lambda frame: _sum_states(frame, "children", (NONE,)),
)
declare(
    key="reassessment_overdue",
    name="复评逾期儿童数",
    definition="在册儿童中，统计日前最近一次已审核评估的“下次评估”日期早于统计日的人数。",
    unit=PEOPLE,
    basis=STATE,
    numerator=lambda frame: {
        village_id: _sum_states(frame, "children", ASSESSED).get(village_id, 0) - n
        for village_id, n in _sum_states(frame, "in_cycle").items()
    },
)
declare(
    key="patrol_on_time_rate",
    name="巡查按期率",
    definition="在册儿童中“下次走访”日期不早于统计日的人数 ÷ 在册儿童数（含未评估儿童）。下次走访 = "
    "统计日前最近一次接触（巡查走访或已审核评估，取较晚者；从未接触的取登记日期）+ 当时等级的走访间隔"
    "（红7天、橙15天、黄30天、绿90天，按该次评估所用规则版本；未评估30天）。每次走访都使下次走访后移；"
    "预警规则“巡查走访逾期”按同一日期判断。",
    unit=PERCENT,
    basis=STATE,
    numerator=_patrol_on_time,
    denominator=registered,
    numerator_label="按期",
    denominator_label="在册儿童",
)
declare(
    key="patrol_overdue",
    name="巡查逾期儿童数",
    definition="在册儿童中“下次走访”日期早于统计日的人数（口径同巡查按期率；与预警规则“巡查走访逾期”为同一批儿童）。",
    unit=PEOPLE,
    basis=STATE,
    numerator=_patrol_overdue,
)


# --------------------------------------------------------------------------- cases


def case_stage_then(frame: Frame):
    """The outer Case's stage at the frame's moment: its stage when unchanged since, else the stage
    its events had reached by then (a case entered after the moment reads as just opened)."""
    moment = frame.moment
    if frame.is_current:
        return Case.stage
    from_events = (
        select(CaseEvent.to_stage)
        .where(
            CaseEvent.case_id == Case.id,
            CaseEvent.at < moment,
            CaseEvent.to_stage.is_not(None),
            CaseEvent.kind.in_(("open", "stage", "reopen")),
        )
        .order_by(CaseEvent.at.desc(), CaseEvent.id.desc())
        .limit(1)
        .correlate(Case)
        .scalar_subquery()
    )
    return case(
        (Case.stage_changed_at < moment, Case.stage),
        else_=func.coalesce(from_events, CaseStage.IDENTIFY.value),
    )


def cases_by_stage(frame: Frame) -> dict:
    """{(village id, stage): cases} opened by the frame's day, of children in register at its moment."""

    def compute():
        stage = case_stage_then(frame).label("stage")
        inner = scoped(
            select(Child.village_id.label("village_id"), stage)
            .join(Child, Child.id == Case.child_id)
            .where(Case.opened_on <= frame.day, in_register(frame)),
            Child,
            frame,
        )
        inner = inner.offset(0).subquery()
        return {
            (village_id, stage): n
            for village_id, stage, n in db.session.execute(
                select(inner.c.village_id, inner.c.stage, func.count()).group_by(
                    inner.c.village_id, inner.c.stage
                )
            )
        }

    return frame.memo("cases_by_stage", compute)


def _cases(frame: Frame, closed: bool | None) -> Parts:
    parts: Parts = {}
    for (village_id, stage), n in cases_by_stage(frame).items():
        if closed is None or (stage == CaseStage.CLOSED.value) == closed:
            parts[village_id] = parts.get(village_id, 0) + n
    return parts


declare(
    key="cases_open",
    name="在办个案数",
    definition="立案日期不晚于统计日、统计时点尚未结案的个案数（在册儿童的个案；阶段按个案阶段变更记录还原）。",
    unit=CASES,
    basis=STATE,
    numerator=lambda frame: _cases(frame, False),
)
declare(
    key="cases_closed_rate",
    name="个案结案率",
    definition="在册儿童的个案中（立案日期不晚于统计日），统计时点阶段为“结案”的件数 ÷ 这些个案的件数"
    "（重新开启的个案按统计时点的阶段计）。",
    unit=PERCENT,
    basis=STATE,
    numerator=lambda frame: _cases(frame, True),
    denominator=lambda frame: _cases(frame, None),
    numerator_label="已结案",
    denominator_label="个案",
)


# --------------------------------------------------------------------------- alerts


def _withdrawn():
    return Alert.closure == AlertClosure.WITHDRAWN.value


def _open_at(moment: dt.datetime):
    """An alert not closed at ``moment`` (an alert marked done without a closing time counts as closed)."""
    return or_(
        and_(Alert.status != AlertStatus.DONE.value, Alert.closed_at.is_(None)), Alert.closed_at >= moment
    )


def _alerts_by_village(frame: Frame, *conditions) -> Parts:
    stmt = scoped(select(Alert.village_id, func.count()).where(*conditions), Alert, frame)
    return by_rows(db.session.execute(stmt.group_by(Alert.village_id)))


def _handled_in_time():
    """Closed by handling strictly before the deadline (an alert closed at its deadline is late)."""
    return and_(
        Alert.closed_at.is_not(None),
        Alert.closed_at < Alert.deadline,
        or_(Alert.closure.is_(None), ~_withdrawn()),
    )


def _alert_decided(frame: Frame):
    """Alerts decided within the period: handled before the deadline (at the closing), or not (at the
    deadline, once it has passed: compared with the moment, not the end of the day). An alert withdrawn
    before its deadline because its child was archived is never decided."""
    decided_at = case(
        (and_(Alert.closed_at.is_not(None), Alert.closed_at < Alert.deadline), Alert.closed_at),
        else_=Alert.deadline,
    )
    withdrawn_early = and_(
        Alert.closure.is_not(None),
        _withdrawn(),
        Alert.closed_at.is_not(None),
        Alert.closed_at < Alert.deadline,
    )
    return and_(decided_at >= frame.start_dt, decided_at < frame.moment, ~withdrawn_early)


def _alert_decisions(frame: Frame) -> dict[int, tuple[int, int]]:
    """{village id: (alerts decided in the period, of them handled in time)}, in one scan of the alerts
    (the rate's numerator and denominator read it). Every decided alert's deadline is on or after
    the period's start (it is decided at its closing before the deadline, or at the deadline), which
    the scan uses to skip older alerts."""

    def compute():
        stmt = scoped(
            select(Alert.village_id, func.count(), tally(_handled_in_time())).where(
                Alert.deadline >= frame.start_dt, _alert_decided(frame)
            ),
            Alert,
            frame,
        ).group_by(Alert.village_id)
        return {village_id: (n, in_time) for village_id, n, in_time in db.session.execute(stmt)}

    return frame.memo("alert_decisions", compute)


def alert_open_at(moment: dt.datetime):
    """SQL condition on Alert: raised before ``moment`` and not closed then (the 141 feed lists these)."""
    return and_(Alert.raised_at < moment, _open_at(moment))


def _open_alerts(frame: Frame) -> dict[int, tuple[int, int]]:
    """{village id: (alerts open at the moment, of them past their deadline)}: one scan of
    ix_alert_village_open for both counts."""

    def compute():
        moment = frame.moment
        stmt = scoped(
            select(Alert.village_id, func.count(), tally(Alert.deadline < moment)).where(
                alert_open_at(moment)
            ),
            Alert,
            frame,
        ).group_by(Alert.village_id)
        return {village_id: (n, overdue) for village_id, n, overdue in db.session.execute(stmt)}

    return frame.memo("open_alerts", compute)


declare(
    key="alerts_open",
    name="未办结预警数",
    definition="统计时点已发出、尚未办结的预警条数（141平台接口“未办结预警”的总数即此数）。归档儿童的未办结预警在归档时撤销。",
    unit=ALERTS,
    basis=STATE,
    numerator=lambda frame: {v: n for v, (n, _) in _open_alerts(frame).items()},
)
declare(
    key="alerts_overdue_open",
    name="逾期未办结预警数",
    definition="统计时点已发出、处置期限已过（期限早于统计时点）且尚未办结的预警条数。归档儿童的未办结预警在归档时撤销。",
    unit=ALERTS,
    basis=STATE,
    numerator=lambda frame: {v: overdue for v, (_, overdue) in _open_alerts(frame).items()},
)
declare(
    key="alerts_raised",
    name="发出预警数",
    definition="发出时间在统计期内（截至统计时点）的风险预警条数。",
    unit=ALERTS,
    basis=PERIOD,
    numerator=lambda frame: _alerts_by_village(
        frame, Alert.raised_at >= frame.start_dt, Alert.raised_at < frame.moment
    ),
)
declare(
    key="alerts_handled",
    name="办结预警数",
    definition="办结时间在统计期内（截至统计时点）的预警条数，不含因儿童归档而撤销的预警。",
    unit=ALERTS,
    basis=PERIOD,
    numerator=lambda frame: _alerts_by_village(
        frame,
        Alert.status == AlertStatus.DONE.value,
        Alert.closed_at >= frame.start_dt,
        Alert.closed_at < frame.moment,
        or_(Alert.closure.is_(None), ~_withdrawn()),
    ),
)
declare(
    key="alerts_on_time_rate",
    name="预警按期处置率",
    definition="统计期内到期或办结的预警中，在处置期限之前（严格早于期限；期限：红24小时、橙72小时、黄7天）"
    "办结的条数 ÷ 这些预警的条数。每条预警只计入一个期间：期限前办结的计入办结时所在期间，否则计入期限届满时"
    "所在期间；期限与统计时点（而非当天结束）比较，尚未到期且未办结的不计；因儿童归档在期限前撤销的不计。",
    unit=PERCENT,
    basis=PERIOD,
    numerator=lambda frame: {v: in_time for v, (_, in_time) in _alert_decisions(frame).items()},
    denominator=lambda frame: {v: decided for v, (decided, _) in _alert_decisions(frame).items()},
    numerator_label="按期办结",
    denominator_label="到期或办结",
)


def alerts_by_severity(frame: Frame) -> dict[str, dict[str, int]]:
    """Per severity: raised, handled, decided and handled in time (the report's 预警处置 sheet)."""
    result = {s.value: {"raised": 0, "handled": 0, "decided": 0, "on_time": 0} for s in Severity}
    checks = {
        "raised": and_(Alert.raised_at >= frame.start_dt, Alert.raised_at < frame.moment),
        "handled": and_(
            Alert.status == AlertStatus.DONE.value,
            Alert.closed_at >= frame.start_dt,
            Alert.closed_at < frame.moment,
            or_(Alert.closure.is_(None), ~_withdrawn()),
        ),
        "decided": _alert_decided(frame),
        "on_time": and_(_alert_decided(frame), _handled_in_time()),
    }
    stmt = scoped(select(Alert.severity, *(tally(c) for c in checks.values())), Alert, frame).group_by(
        Alert.severity
    )
    for severity, *counts in db.session.execute(stmt):
        result.setdefault(severity, {}).update(zip(checks, counts, strict=True))
    return result


# --------------------------------------------------------------------------- work in a period


def _by_child_village(frame: Frame, model, *conditions, count=None) -> Parts:
    stmt = scoped(
        select(Child.village_id, count if count is not None else func.count())
        .select_from(model)
        .join(Child, Child.id == model.child_id)
        .where(*conditions),
        Child,
        frame,
    )
    return by_rows(db.session.execute(stmt.group_by(Child.village_id)))


def _work(frame: Frame, model, conditions, child_column, position: int) -> Parts:
    """Records of the period per village: (records, children with one), read in one scan for both."""

    def compute():
        stmt = scoped(
            select(Child.village_id, func.count(), func.count(distinct(child_column)))
            .select_from(model)
            .join(Child, Child.id == child_column)
            .where(*conditions),
            Child,
            frame,
        ).group_by(Child.village_id)
        return {village_id: (n, children) for village_id, n, children in db.session.execute(stmt)}

    return {
        village_id: row[position]
        for village_id, row in frame.memo(("work", model.__tablename__), compute).items()
    }


def _approved_in(frame: Frame):
    return (
        Assessment.status == AssessmentStatus.APPROVED.value,
        Assessment.assessed_on >= frame.start,
        Assessment.assessed_on <= frame.day,
    )


def _visits_in(frame: Frame):
    return (Visit.visited_on >= frame.start, Visit.visited_on <= frame.day)


declare(
    key="registered_new",
    name="新登记儿童数",
    definition="登记日期在统计期内的儿童人数（含之后归档的儿童）。",
    unit=PEOPLE,
    basis=PERIOD,
    numerator=lambda frame: by_rows(
        db.session.execute(
            scoped(
                select(Child.village_id, func.count()).where(
                    Child.registered_on >= frame.start, Child.registered_on <= frame.day
                ),
                Child,
                frame,
            ).group_by(Child.village_id)
        )
    ),
)
declare(
    key="assessments_done",
    name="完成评估次数",
    definition="评估日期在统计期内的已审核评估次数（按评估日期计入，不论儿童之后是否归档）。",
    unit=TIMES,
    basis=PERIOD,
    numerator=lambda frame: _work(frame, Assessment, _approved_in(frame), Assessment.child_id, 0),
)
declare(
    key="assessed_children",
    name="评估儿童数",
    definition="统计期内有已审核评估的儿童人数（同一儿童多次评估计一人）。",
    unit=PEOPLE,
    basis=PERIOD,
    numerator=lambda frame: _work(frame, Assessment, _approved_in(frame), Assessment.child_id, 1),
)
declare(
    key="visits_done",
    name="巡查走访次数",
    definition="走访日期在统计期内的巡查走访次数（按走访日期计入，不论儿童之后是否归档）。",
    unit=TIMES,
    basis=PERIOD,
    numerator=lambda frame: _work(frame, Visit, _visits_in(frame), Visit.child_id, 0),
)
declare(
    key="visited_children",
    name="走访儿童数",
    definition="统计期内至少被巡查走访一次的儿童人数。",
    unit=PEOPLE,
    basis=PERIOD,
    numerator=lambda frame: _work(frame, Visit, _visits_in(frame), Visit.child_id, 1),
)


# --------------------------------------------------------------------------- 分层赋能


def _measure_due(frame: Frame):
    """Measures due within the period whose due date is over at the moment, unless cancelled before
    the end of their due day (a measure cancelled later, e.g. when its child was archived, stays due)."""
    S = SupportService
    return and_(
        S.due_on >= frame.start,
        S.due_on <= frame.last_full_day,
        or_(
            S.status != ServiceStatus.CANCELLED.value,
            and_(S.cancelled_at.is_not(None), func.date(S.cancelled_at) > S.due_on),
        ),
    )


def _delivered_by(frame: Frame):
    S = SupportService
    return and_(
        S.status == ServiceStatus.DELIVERED.value, S.delivered_on.is_not(None), S.delivered_on <= frame.day
    )


def _delivered_in_time():
    S = SupportService
    return and_(
        S.status == ServiceStatus.DELIVERED.value, S.delivered_on.is_not(None), S.delivered_on <= S.due_on
    )


def measures_by(frame: Frame, column=None) -> dict:
    """{(village id, group value): (due, delivered in time, delivered by the moment)} of the measures
    due in the period; ``column`` groups them further (SupportService.tier or .kind).

    Counted by the village kept on each measure (its child's, services/follow_child.py): a village's
    measures due in the period are one range of ix_support_service_village_due, read from the index
    alone, with no child read."""

    def compute():
        # no group: a plain NULL, not a bound one (grouping by a parameter sorted every row again)
        groups = [column] if column is not None else []
        stmt = scoped(
            select(
                SupportService.village_id,
                column if column is not None else null(),
                func.count(),
                tally(_delivered_in_time()),
                tally(_delivered_by(frame)),
            ).where(_measure_due(frame)),
            SupportService,
            frame,
        ).group_by(SupportService.village_id, *groups)
        return {
            (village_id, value): (n, in_time, delivered)
            for village_id, value, n, in_time, delivered in db.session.execute(stmt)
        }

    return frame.memo(("measures", None if column is None else column.key), compute)


def _measures(frame: Frame, position: int) -> Parts:
    parts: Parts = {}
    for (village_id, _), row in measures_by(frame).items():
        parts[village_id] = parts.get(village_id, 0) + row[position]
    return parts


declare(
    key="measures_due",
    name="应落实措施数",
    definition="应完成日期在统计期内且到统计时点已过（应完成日当天结束）的分层赋能措施项数；"
    "在应完成日结束前取消的不计，之后才取消的（如儿童归档时取消）仍计。",
    unit=ITEMS,
    basis=PERIOD,
    numerator=lambda frame: _measures(frame, 0),
)
declare(
    key="measures_on_time_rate",
    name="分层赋能按期落实率",
    definition="应落实措施中，在应完成日期当天或之前落实的项数 ÷ 应落实措施数（逾期落实的不算按期）。",
    unit=PERCENT,
    basis=PERIOD,
    numerator=lambda frame: _measures(frame, 1),
    denominator=lambda frame: _measures(frame, 0),
    numerator_label="按期落实",
    denominator_label="应落实",
)
declare(
    key="measures_delivered_rate",
    name="分层赋能落实率",
    definition="应落实措施中，到统计日已落实的项数（含逾期落实）÷ 应落实措施数。与按期落实率并列：差额即逾期落实。",
    unit=PERCENT,
    basis=PERIOD,
    numerator=lambda frame: _measures(frame, 2),
    denominator=lambda frame: _measures(frame, 0),
    numerator_label="已落实",
    denominator_label="应落实",
)
declare(
    key="measures_delivered",
    name="落实措施数",
    definition="落实日期在统计期内的分层赋能措施项数（不论应完成日期、是否按期）。",
    unit=ITEMS,
    basis=PERIOD,
    numerator=lambda frame: by_rows(
        db.session.execute(
            scoped(
                select(SupportService.village_id, func.count()).where(
                    SupportService.status == ServiceStatus.DELIVERED.value,
                    SupportService.delivered_on >= frame.start,
                    SupportService.delivered_on <= frame.day,
                ),
                SupportService,
                frame,
            ).group_by(SupportService.village_id)
        )
    ),
)


# --------------------------------------------------------------------------- cases in a period


declare(
    key="cases_new",
    name="新立个案数",
    definition="立案日期在统计期内的个案数（不论儿童之后是否归档）。",
    unit=CASES,
    basis=PERIOD,
    numerator=lambda frame: _by_child_village(
        frame, Case, Case.opened_on >= frame.start, Case.opened_on <= frame.day
    ),
)
declare(
    key="cases_closed",
    name="结案个案数",
    definition="统计期内（截至统计时点）有“结案”阶段变更记录的个案数（同一个案多次结案计一件）。",
    unit=CASES,
    basis=PERIOD,
    numerator=lambda frame: _by_child_village(
        frame,
        Case,
        Case.id.in_(
            select(CaseEvent.case_id).where(
                CaseEvent.kind == "stage",
                CaseEvent.to_stage == CaseStage.CLOSED.value,
                CaseEvent.at >= frame.start_dt,
                CaseEvent.at < frame.moment,
            )
        ),
    ),
)


# --------------------------------------------------------------------------- activities


def held_activities(frame: Frame):
    """Select of the ids of activities starting in the period (town-wide ones and the scope's)."""
    return scoped(
        select(Activity.id).where(Activity.starts_at >= frame.start_dt, Activity.starts_at < frame.moment),
        Activity,
        frame,
    )


def _town_wide(n) -> Parts:
    """Activities belong to several villages or to none: their figures are not split by village."""
    return {None: n or 0}


declare(
    key="activities_held",
    name="活动场次",
    definition="开始时间在统计期内（截至统计时点）的活动场次（全镇活动和范围内村（社区）的活动）；不按村拆分。",
    unit=SESSIONS,
    basis=PERIOD,
    numerator=lambda frame: _town_wide(
        db.session.scalar(select(func.count()).select_from(held_activities(frame).subquery()))
    ),
)
declare(
    key="attendance",
    name="活动签到人次",
    definition="统计期内活动的签到人次（儿童、监护人、工作人员及现场登记）。",
    unit=TIMES,
    basis=PERIOD,
    numerator=lambda frame: _town_wide(
        db.session.scalar(select(func.count()).where(Attendance.activity_id.in_(held_activities(frame))))
    ),
)
declare(
    key="attendance_children",
    name="参加活动儿童数",
    definition="统计期内活动中签到的儿童人数（同一儿童计一人，不论之后是否归档）。",
    unit=PEOPLE,
    basis=PERIOD,
    numerator=lambda frame: _town_wide(
        db.session.scalar(
            select(func.count(distinct(Attendance.child_id))).where(
                Attendance.activity_id.in_(held_activities(frame)), Attendance.child_id.is_not(None)
            )
        )
    ),
)


# --------------------------------------------------------------------------- funds (town-wide)


def sources_available(frame: Frame):
    return and_(
        FundSource.received_on <= frame.day,
        or_(FundSource.valid_from.is_(None), FundSource.valid_from <= frame.end),
        or_(FundSource.valid_to.is_(None), FundSource.valid_to >= frame.start),
    )


def paid_in(frame: Frame):
    """Paid entries dated within the period (a 红字冲销 is dated the day it is paid: services/funds.py)."""
    return and_(
        Expense.status == ExpenseStatus.PAID.value,
        Expense.spent_on >= frame.start,
        Expense.spent_on <= frame.day,
    )


def committed_in(frame: Frame):
    """Approved or paid entries dated within the period."""
    return and_(
        Expense.status.in_((ExpenseStatus.APPROVED.value, ExpenseStatus.PAID.value)),
        Expense.spent_on >= frame.start,
        Expense.spent_on <= frame.day,
    )


def _money(stmt) -> Parts:
    return {None: from_cents(db.session.scalar(stmt))}


def funds_available(frame: Frame) -> Parts:
    return _money(select(cents(FundSource.amount)).where(sources_available(frame)))


def _spent(frame: Frame) -> tuple[int, int]:
    """(paid, approved or paid) in the period, in cents: one scan of the period's entries."""

    def compute():
        return tuple(
            db.session.execute(
                select(
                    func.coalesce(func.sum(in_cents(Expense.amount)).filter(paid_in(frame)), 0),
                    func.coalesce(func.sum(in_cents(Expense.amount)), 0),
                ).where(committed_in(frame))  # paid entries are among the committed ones
            ).one()
        )

    return frame.memo("spent", compute)


def funds_paid(frame: Frame) -> Parts:
    return {None: from_cents(_spent(frame)[0])}


def funds_committed(frame: Frame) -> Parts:
    return {None: from_cents(_spent(frame)[1])}


declare(
    key="funds_available",
    name="可用资金",
    definition="到账日期不晚于统计日、有效期与统计期有交集（未定有效期的视为有交集）的资金来源金额合计（全镇）。",
    unit=YUAN,
    basis=PERIOD,
    numerator=funds_available,
    area="funds",
    town_only=True,
)
declare(
    key="funds_paid",
    name="已支付金额",
    definition="支出日期在统计期内（截至统计日）的已支付支出合计（全镇）。红字冲销以其支付日为支出日期、以负数计入，"
    "冲销仍为草稿或已审批时不计（原支出照常计入）。",
    unit=YUAN,
    basis=PERIOD,
    numerator=funds_paid,
    area="funds",
    town_only=True,
)
declare(
    key="funds_execution_rate",
    name="资金执行率",
    definition="已支付金额 ÷ 可用资金（同一统计期，全镇）。",
    unit=PERCENT,
    basis=PERIOD,
    numerator=funds_paid,
    denominator=funds_available,
    numerator_label="已支付",
    denominator_label="可用资金",
    area="funds",
    town_only=True,
)
declare(
    key="funds_committed",
    name="已审批金额",
    definition="支出日期在统计期内（截至统计日）、已审批或已支付的支出合计（全镇）。",
    unit=YUAN,
    basis=PERIOD,
    numerator=funds_committed,
    area="funds",
    town_only=True,
)
declare(
    key="funds_commitment_rate",
    name="资金审批使用率",
    definition="已审批金额（含已支付）÷ 可用资金（同一统计期，全镇）；与只计已支付的资金执行率并列。",
    unit=PERCENT,
    basis=PERIOD,
    numerator=funds_committed,
    denominator=funds_available,
    numerator_label="已审批",
    denominator_label="可用资金",
    area="funds",
    town_only=True,
)


def fund_findings(frame: Frame) -> tuple[list, dict]:
    """(findings of the period, their 核查说明): what the fund check lists for the same dates."""
    from services import fund_checks

    def compute():
        found = fund_checks.filter_findings(fund_checks.run_all(), start=frame.start, end=frame.end)
        return found, fund_checks.notes_for(found)

    return frame.memo("fund_findings", compute)


def _open_findings(frame: Frame) -> Parts:
    from services import fund_checks

    found, notes = fund_findings(frame)
    return {None: len(fund_checks.unexplained(found, notes))}


declare(
    key="fund_findings_open",
    name="资金使用问题（待核查）",
    definition="资金使用检查当前发现、尚无有效核查说明的问题条数；支出类问题按支出日期限于统计期，"
    "资金来源和活动类问题全部列入（与资金使用检查页同一期间的清单一致）。检查结果不保存历史，只统计当前情况。",
    unit=ALERTS,
    basis=PERIOD,
    numerator=_open_findings,
    area="funds",
    town_only=True,
    history=False,
)


# --------------------------------------------------------------------------- the plan's process
# 督查与整改, 长效机制 and 反馈意见 (work plan 三(六), 四, 五(三); services/inspections.py, feedback.py).


def _rectifications_found(frame: Frame):
    from models import Rectification

    last = min(frame.end, frame.now.date())
    stmt = select(Rectification.village_id, func.count()).where(
        Rectification.found_on >= frame.start, Rectification.found_on <= last
    )
    return scoped(stmt, Rectification, frame), Rectification


def rectifications_found(frame: Frame) -> Parts:
    def compute():
        stmt, model = _rectifications_found(frame)
        return by_rows(db.session.execute(stmt.group_by(model.village_id)))

    return frame.memo("rectifications_found", compute)


def _rectifications_signed_off(frame: Frame) -> Parts:
    stmt, model = _rectifications_found(frame)
    stmt = stmt.where(
        model.status == "done", model.reviewed_at.is_not(None), model.reviewed_at < frame.moment
    )
    return by_rows(db.session.execute(stmt.group_by(model.village_id)))


def _rectifications_overdue(frame: Frame) -> Parts:
    from models import Rectification

    day = frame.day
    done_by_then = (Rectification.status == "done") & (Rectification.completed_on <= day)
    stmt = select(Rectification.village_id, func.count()).where(
        Rectification.found_on <= day, Rectification.deadline < day, ~done_by_then
    )
    return by_rows(db.session.execute(scoped(stmt, Rectification, frame).group_by(Rectification.village_id)))


declare(
    key="rectifications_found",
    name="督查发现问题数",
    definition="期间内镇级督查、区级督导和资金使用检查发现并登记为整改事项的问题数（按发现日期）。",
    unit=ITEMS,
    basis=PERIOD,
    numerator=rectifications_found,
    area="inspections",
)
declare(
    key="rectification_rate",
    name="整改完成率",
    definition="期间内发现的问题中，已整改并经责任人以外的镇级管理人员复核通过（复核时间不晚于统计时点）的项数 "
    "÷ 期间内发现的问题数。",
    unit=PERCENT,
    basis=PERIOD,
    numerator=_rectifications_signed_off,
    denominator=rectifications_found,
    numerator_label="已整改并复核",
    denominator_label="发现问题",
    area="inspections",
)
declare(
    key="rectifications_overdue",
    name="逾期未整改问题数",
    definition="统计时点整改期限已过（期限当天仍在期限内）、仍未标记已整改的问题数，不限发现时间。",
    unit=ITEMS,
    basis=STATE,
    numerator=_rectifications_overdue,
    area="inspections",
)


def _mandatory_reports(frame: Frame) -> Parts:
    from models import MandatoryReport

    stmt = select(MandatoryReport.village_id, func.count()).where(
        MandatoryReport.received_at >= frame.start_dt, MandatoryReport.received_at < frame.moment
    )
    return by_rows(
        db.session.execute(scoped(stmt, MandatoryReport, frame).group_by(MandatoryReport.village_id))
    )


def _rapid_response(frame: Frame) -> Parts:
    # "within the limit" as 预警按期处置率 reads it: closed before the deadline, withdrawals not counted
    stmt = select(Alert.village_id, func.count()).where(
        Alert.raised_at >= frame.start_dt,
        Alert.raised_at < frame.moment,
        Alert.status == AlertStatus.DONE.value,
        _handled_in_time(),
        Alert.closed_at < frame.moment,
    )
    return by_rows(db.session.execute(scoped(stmt, Alert, frame).group_by(Alert.village_id)))


def _case_conferences(frame: Frame) -> Parts:
    from models import Case, CaseConference

    last = min(frame.end, frame.now.date())
    stmt = (
        select(Child.village_id, func.count())
        .select_from(CaseConference)
        .join(Case, Case.id == CaseConference.case_id)
        .join(Child, Child.id == Case.child_id)
        .where(CaseConference.held_on >= frame.start, CaseConference.held_on <= last)
    )
    return by_rows(db.session.execute(scoped(stmt, Child, frame).group_by(Child.village_id)))


def _publicity_events(frame: Frame) -> Parts:
    from models import PublicityEvent

    last = min(frame.end, frame.now.date())
    stmt = select(PublicityEvent.village_id, func.count()).where(
        PublicityEvent.held_on >= frame.start, PublicityEvent.held_on <= last
    )
    return by_rows(
        db.session.execute(scoped(stmt, PublicityEvent, frame).group_by(PublicityEvent.village_id))
    )


def _publicity_audience(frame: Frame) -> Parts:
    from models import PublicityEvent

    last = min(frame.end, frame.now.date())
    stmt = select(PublicityEvent.village_id, func.coalesce(func.sum(PublicityEvent.audience_count), 0)).where(
        PublicityEvent.held_on >= frame.start, PublicityEvent.held_on <= last
    )
    return by_rows(
        db.session.execute(scoped(stmt, PublicityEvent, frame).group_by(PublicityEvent.village_id))
    )


declare(
    key="mechanism_mandatory_reports",
    name="强制报告受理数",
    definition="长效机制·强制报告：期间内受理的强制报告件数（按受理时间）。",
    unit=CASES,
    basis=PERIOD,
    numerator=_mandatory_reports,
    area="mandatory_reports",
)
declare(
    key="mechanism_rapid_response",
    name="快速介入数",
    definition="长效机制·快速介入：期间内发出、并在处置期限之前（严格早于期限；期限：红24小时、橙72小时、黄7天）"
    "办结的风险预警条数，截至统计时点；因儿童归档而撤销的预警不计。",
    unit=ALERTS,
    basis=PERIOD,
    numerator=_rapid_response,
    area="alerts",
)
declare(
    key="mechanism_linkage",
    name="多元联动会商数",
    definition="长效机制·多元联动：期间内召开的个案多部门联动会商次数（按会商日期）。",
    unit=TIMES,
    basis=PERIOD,
    numerator=_case_conferences,
    area="cases",
)
declare(
    key="mechanism_publicity",
    name="政策宣传场次",
    definition="长效机制·政策宣传：期间内登记的政策宣传（集中宣讲、入户宣传、新媒体推送、发放资料）次数（按宣传日期）。",
    unit=TIMES,
    basis=PERIOD,
    numerator=_publicity_events,
    area="publicity",
)
declare(
    key="publicity_audience",
    name="政策宣传覆盖人次",
    definition="期间内各次政策宣传登记的受众人数之和（新媒体推送按阅读或送达人数登记）。",
    unit=PEOPLE,
    basis=PERIOD,
    numerator=_publicity_audience,
    area="publicity",
)


def _feedback_count(frame: Frame) -> Parts:
    from models import Feedback

    last = min(frame.end, frame.now.date())
    stmt = select(Feedback.village_id, func.count()).where(
        Feedback.received_on >= frame.start, Feedback.received_on <= last
    )
    return by_rows(db.session.execute(scoped(stmt, Feedback, frame).group_by(Feedback.village_id)))


declare(
    key="feedback_count",
    name="收集反馈意见数",
    definition="期间内收集的学校、村（社区）、家庭反馈意见份数（纸质录入和活动二维码匿名反馈，按收到日期）。",
    unit=ITEMS,
    basis=PERIOD,
    numerator=_feedback_count,
    area="feedback",
)

# The four mechanisms of work plan 三(六), in the plan's order: what the 长效机制 page and the pack count.
MECHANISM_INDICATORS = (
    "mechanism_mandatory_reports",
    "mechanism_rapid_response",
    "mechanism_linkage",
    "mechanism_publicity",
)


# --------------------------------------------------------------------------- records: consent


def _registered_now(frame: Frame):
    """Select (village id, count) of the children in register at the frame's moment."""
    return scoped(select(Child.village_id, func.count()).where(in_register(frame)), Child, frame)


def _filing_consent(frame: Frame) -> dict[int, tuple[int, int]]:
    """{village id: (children in register with a standing 建档与评估 consent, of those without one the
    children under 14)}: one scan of the register; for a past date each child's consent rows are
    looked up once, as of that date."""
    from services.consent import consented_ids, under_14_born_after

    def compute():
        if frame.is_current:
            # now: counted in the register's one scan (child_states), from the state kept on the child
            result: dict[int, tuple[int, int]] = {}
            for (village_id, _), counts in child_states(frame).items():
                given, missing = result.get(village_id, (0, 0))
                result[village_id] = (given + counts.consented, missing + counts.young_unconsented)
            return result
        young = Child.birth_date > under_14_born_after(frame.day)
        per_child = (
            scoped(
                select(
                    Child.village_id.label("village_id"),
                    young.label("young"),
                    # IN, not EXISTS: the consenting children are read once into a set, which each
                    # child is then looked up in (a probe of the consent index per child cost twice)
                    Child.id.in_(consented_ids("filing", frame.day)).label("consented"),
                ).where(in_register(frame)),
                Child,
                frame,
            )
            .offset(0)  # OFFSET 0: the subquery is not flattened, so the lookup is made once per child
            .subquery()
        )
        stmt = select(
            per_child.c.village_id,
            tally(per_child.c.consented),
            tally(and_(per_child.c.young, ~per_child.c.consented)),
        ).group_by(per_child.c.village_id)
        return {village_id: (given, missing) for village_id, given, missing in db.session.execute(stmt)}

    return frame.memo("filing_consent", compute)


def _filing_consented(frame: Frame) -> Parts:
    return {village_id: given for village_id, (given, _) in _filing_consent(frame).items() if given}


def _under_14_without_filing_consent(frame: Frame) -> Parts:
    return {village_id: missing for village_id, (_, missing) in _filing_consent(frame).items() if missing}


declare(
    key="consent_coverage",
    name="告知同意覆盖率",
    definition="在册儿童中“建档与评估”告知同意有效（监护人已同意且未撤回；年满14周岁的可由本人同意）的人数 ÷ "
    "在册儿童数。",
    unit=PERCENT,
    basis=STATE,
    numerator=_filing_consented,
    denominator=registered,
    numerator_label="已取得建档同意",
    denominator_label="在册儿童",
    history=False,
)
declare(
    key="consent_missing_under_14",
    name="14周岁以下未取得建档同意人数",
    definition="在册儿童中统计时点不满14周岁、且没有有效“建档与评估”告知同意的人数（个人信息保护法：须取得监护人同意）。",
    unit=PEOPLE,
    basis=STATE,
    numerator=_under_14_without_filing_consent,
    history=False,
)


# --------------------------------------------------------------------------- README


README_START = "<!-- indicators:start (generated by `flask --app app indicators-readme`; do not edit) -->"
README_END = "<!-- indicators:end -->"


def readme_table() -> str:
    """The README's table of every indicator, from the declarations."""
    lines = ["| 指标 | 类型 | 单位 | 定义 |", "|---|---|---|---|"]
    for indicator in INDICATORS.values():
        definition = indicator.definition.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {indicator.name} | {indicator.basis_label} | {indicator.unit} | {definition} |")
    return "\n".join(lines)


def readme_block() -> str:
    return f"{README_START}\n{readme_table()}\n{README_END}"


def rewrite_readme(text: str) -> str:
    """``text`` with its generated block replaced by the current declarations."""
    head, start, rest = text.partition(README_START)
    if not start:
        raise ValueError("README has no indicators block")
    _, end, tail = rest.partition(README_END)
    if not end:
        raise ValueError("README's indicators block is not closed")
    return head + readme_block() + tail
