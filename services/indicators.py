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

from sqlalchemy import func, select

from models import Child, db
from services import clock
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
        return self.end >= self.now.date()

    @property
    def start_dt(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time.min)

    @property
    def last_full_day(self) -> dt.date:
        """The last day of the period that is wholly over at the moment (deadlines by date)."""
        return min(self.end, self.now.date() - dt.timedelta(days=1))

    def for_villages(self, village_ids) -> Frame:
        return Frame(_ids(village_ids), self.start, self.end, self.now)

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


def compute_many(keys: Iterable[str], frame: Frame) -> dict[str, Value]:
    """Several indicators over one frame, sharing its sub-results."""
    return {key: compute(key, frame) for key in keys}


def by_rows(rows) -> Parts:
    """Parts from (village id, number) rows."""
    parts: Parts = {}
    for village_id, n in rows:
        parts[village_id] = parts.get(village_id, 0) + (n or 0)
    return parts


# --------------------------------------------------------------------------- the register


def _registered_now(frame: Frame):
    return scoped(select(Child.village_id, func.count()).where(Child.archived_at.is_(None)), Child, frame)


def registered(frame: Frame) -> Parts:
    return frame.memo(
        "registered", lambda: by_rows(db.session.execute(_registered_now(frame).group_by(Child.village_id)))
    )


def _file_complete(frame: Frame) -> Parts:
    stmt = _registered_now(frame).where(Child.file_complete.is_(True)).group_by(Child.village_id)
    return by_rows(db.session.execute(stmt))


declare(
    key="registered",
    name="在册儿童数",
    definition="统计时点在册（未归档）的儿童人数。",
    unit=PEOPLE,
    basis=STATE,
    numerator=registered,
)
declare(
    key="file_complete_rate",
    name="建档完成率",
    definition="在册儿童中档案要素齐全（至少一名监护人、至少一个困境类别、已填住址）的人数 ÷ 在册儿童人数。"
    "档案要素不保存历史，只统计当前情况。",
    unit=PERCENT,
    basis=STATE,
    numerator=_file_complete,
    denominator=registered,
    numerator_label="档案齐全",
    denominator_label="在册儿童",
    history=False,
)


# --------------------------------------------------------------------------- records: consent


def _filing_consented(frame: Frame) -> Parts:
    from services.consent import has_consent_clause

    stmt = _registered_now(frame).where(has_consent_clause("filing", frame.day)).group_by(Child.village_id)
    return by_rows(db.session.execute(stmt))


def _under_14_without_filing_consent(frame: Frame) -> Parts:
    from services.consent import has_consent_clause, under_14_born_after

    stmt = (
        _registered_now(frame)
        .where(Child.birth_date > under_14_born_after(frame.day), ~has_consent_clause("filing", frame.day))
        .group_by(Child.village_id)
    )
    return by_rows(db.session.execute(stmt))


declare(
    key="consent_coverage",
    name="告知同意覆盖率",
    definition="在册儿童中“建档与评估”告知同意有效（监护人已同意且未撤回；年满14周岁的可由本人同意）的人数 ÷ "
    "在册儿童人数。在册身份不保存历史，只统计当前情况。",
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
