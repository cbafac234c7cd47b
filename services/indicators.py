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
    from models import Alert

    stmt = select(Alert.village_id, func.count()).where(
        Alert.raised_at >= frame.start_dt,
        Alert.raised_at < frame.moment,
        Alert.status == "done",
        Alert.closed_at <= Alert.deadline,
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
    definition="长效机制·快速介入：期间内发出、并在处置时限内办结的风险预警条数（时限：红24小时、橙72小时、黄7天）。",
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
