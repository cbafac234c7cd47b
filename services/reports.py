"""报表: the monthly and phase report for the district evaluation (区级评估验收), as xlsx.

Every figure comes from services/indicators.py over the report's frame (its villages, its period and
the moment it is made): the summary lists every declared indicator, the tables break the same
computations down (by village, level, tier, severity, stage), and the 指标说明 sheet prints the
declarations themselves. A report made before its period ends counts up to the moment it is made.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import case, func, or_, select

from choices import ActivityKind, CaseStage, Level, ServiceKind, Severity
from models import Activity, Attendance, Expense, FundSource, SupportService, Village, db
from services import clock, indicators
from services.funds import cents, from_cents, rate
from services.indicators import NONE, Frame, Value
from services.workbook import Book

MONTHLY = "monthly"
PHASE = "phase"
# The three phases of the work plan (部署启动 1–2月, 重点推进 2–11月, 总结提升 11–12月).
PHASES = {
    "deploy": ("部署启动阶段", 1, 2),
    "advance": ("重点推进阶段", 2, 11),
    "summary": ("总结提升阶段", 11, 12),
}
UNASSESSED = "未评估"
LEVELS_SEVERE_FIRST = list(reversed(list(Level)))
# The per-village table: children by level as of the moment, and the work of the period.
VILLAGE_COLUMNS = ("assessments_done", "visits_done", "alerts_raised", "patrol_on_time_rate")
# The phase report's trend: work of each month.
MONTH_COLUMNS = (
    "assessments_done",
    "visits_done",
    "measures_delivered",
    "measures_on_time_rate",
    "alerts_raised",
    "alerts_on_time_rate",
    "cases_closed",
    "activities_held",
    "attendance",
)
TABLE_NOTES = [
    (
        "按类别",
        "在册儿童按困境类别统计（类别按当前记录）；一名儿童可属多个类别，故各类别之和可大于在册儿童数。",
    ),
    ("按等级", "在册儿童按统计日的风险等级（统计日前最近一次已审核评估）统计；未评估单列。"),
    (
        "按村社区",
        "各村（社区）的在册儿童数、各等级人数（时点），及本期完成评估、巡查走访、发出预警（期间）和巡查按期率（时点）。",
    ),
    (
        "措施分层",
        "应落实措施按风险层级（红/橙/黄/绿）和措施种类统计应落实、按期落实、逾期落实、未落实；口径同分层赋能按期落实率。",
    ),
    ("预警处置", "按预警等级统计本期发出、办结、到期或办结及其中按期办结的条数；口径同预警按期处置率。"),
    ("个案", "统计时点各阶段个案数（识别→评估→介入→跟踪→结案），按个案阶段变更记录还原。"),
    ("活动", "本期活动清单及每场签到人次。"),
    ("资金", "各资金来源的金额、本期已支付和已审批金额及支付进度（本期已支付 ÷ 来源金额；全镇口径）。"),
    ("月度趋势", "阶段报表逐月列出期间指标，口径与汇总表相同。"),
]


@dataclass
class Period:
    start: dt.date
    end: dt.date
    title: str

    @property
    def start_dt(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time.min)

    @property
    def end_dt(self) -> dt.datetime:
        """The first moment after the period (exclusive bound for datetimes)."""
        return dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time.min)


def month_period(year: int, month: int) -> Period:
    start = dt.date(year, month, 1)
    following = dt.date(year + (month == 12), month % 12 + 1, 1)
    return Period(start, following - dt.timedelta(days=1), f"{year}年{month}月")


def phase_period(year: int, phase: str) -> Period:
    name, first, last = PHASES[phase]
    end = month_period(year, last).end
    return Period(dt.date(year, first, 1), end, f"{year}年{name}（{first}—{last}月）")


@dataclass
class Figures:
    period: Period
    scope_label: str
    frame: Frame
    values: dict[str, Value] = field(default_factory=dict)
    by_category: list = field(default_factory=list)
    by_level: list = field(default_factory=list)
    by_village: list = field(default_factory=list)
    services_by_tier: list = field(default_factory=list)
    services_by_kind: list = field(default_factory=list)
    alerts_by_severity: list = field(default_factory=list)
    cases_by_stage: list = field(default_factory=list)
    activities: list = field(default_factory=list)
    funds: list = field(default_factory=list)
    months: list = field(default_factory=list)

    @property
    def summary(self) -> dict:
        """{indicator key: value} (a rate as a fraction, money as Decimal; None when there is none)."""
        return {key: v.value for key, v in self.values.items()}


def compute_figures(
    period: Period,
    village_ids,
    scope_label: str = "全镇",
    with_months: bool = False,
    now: dt.datetime | None = None,
    may_read: Callable[[str], bool] | None = None,
) -> Figures:
    """``may_read(area)``: the reader's role may read that area (figures of the others have no value,
    the 资金 sheet stays empty without ``funds``); None for every figure."""
    frame = Frame.of_period(period.start, period.end, village_ids, now or clock.now())
    figures = Figures(period, scope_label, frame)
    figures.values = indicators.compute_many(indicators.INDICATORS, frame, may_read)
    _registers(figures)
    _measures(figures)
    _alerts(figures)
    figures.cases_by_stage = _stages(frame)
    figures.activities = _activities(frame)
    may_see_funds = may_read is None or may_read("funds")
    figures.funds = _funds(frame) if village_ids is None and may_see_funds else []
    if with_months:
        figures.months = _months(period, village_ids, frame.now, may_read)
    return figures


def _registers(figures: Figures) -> None:
    frame = figures.frame
    figures.by_category = [(name, n) for _, name, n in indicators.category_distribution(frame)]
    per_village: dict = {}
    for (village_id, level), n in indicators.level_distribution(frame).items():
        per_village.setdefault(village_id, {})[level] = n
    totals = {level: sum(counts.get(level, 0) for counts in per_village.values()) for level in _level_keys()}
    figures.by_level = [(lv.label, totals[lv.value]) for lv in LEVELS_SEVERE_FIRST] + [
        (UNASSESSED, totals[NONE])
    ]
    villages = db.session.execute(
        indicators.scoped(select(Village.id, Village.name), Village, frame).order_by(
            Village.sort_order, Village.id
        )
    ).all()
    rows = []
    for village_id, name in villages:
        counts = per_village.get(village_id, {})
        work = [figures.values[key].for_village(village_id) for key in VILLAGE_COLUMNS]
        rows.append(
            (
                name,
                sum(counts.values()),
                *(counts.get(key, 0) for key in _level_keys()),
                *(v.value for v in work),
            )
        )
    figures.by_village = rows


def _level_keys() -> list[str]:
    return [lv.value for lv in LEVELS_SEVERE_FIRST] + [NONE]


def _measures(figures: Figures) -> None:
    frame = figures.frame

    def rows(column, label_of, order):
        grouped: dict = {}
        for (_, value), (due, in_time, delivered) in indicators.measures_by(frame, column).items():
            n = grouped.setdefault(value, [0, 0, 0])
            n[0], n[1], n[2] = n[0] + due, n[1] + in_time, n[2] + delivered
        result = []
        for value in sorted(grouped, key=order):
            due, in_time, delivered = grouped[value]
            result.append(
                (
                    label_of(value),
                    due,
                    in_time,
                    delivered - in_time,
                    due - delivered,
                    _ratio(in_time, due),
                    _ratio(delivered, due),
                )
            )
        return result

    tier_order = {lv.value: i for i, lv in enumerate(LEVELS_SEVERE_FIRST)}
    figures.services_by_tier = rows(
        SupportService.tier, lambda v: Level.label_of(v) if v else "未分层", lambda v: tier_order.get(v, 9)
    )
    figures.services_by_kind = [
        row[:5] for row in rows(SupportService.kind, ServiceKind.label_of, lambda v: str(v))
    ]


def _ratio(part, whole):
    return None if not whole else round(part / whole, 4)


def _alerts(figures: Figures) -> None:
    by = indicators.alerts_by_severity(figures.frame)
    figures.alerts_by_severity = [
        (
            severity.label,
            by[severity.value]["raised"],
            by[severity.value]["handled"],
            by[severity.value]["decided"],
            by[severity.value]["on_time"],
            _ratio(by[severity.value]["on_time"], by[severity.value]["decided"]),
        )
        for severity in reversed(list(Severity))
    ]


def _stages(frame: Frame) -> list[tuple[str, int]]:
    totals: dict = {}
    for (_, stage), n in indicators.cases_by_stage(frame).items():
        totals[stage] = totals.get(stage, 0) + n
    return [(stage.label, totals.get(stage.value, 0)) for stage in CaseStage]


def _activities(frame: Frame) -> list[tuple]:
    rows = db.session.execute(
        select(
            Activity.title,
            Activity.kind,
            Activity.starts_at,
            Activity.place,
            func.count(Attendance.id),
            func.count(Attendance.child_id),
        )
        .outerjoin(Attendance, Attendance.activity_id == Activity.id)
        .where(Activity.id.in_(indicators.held_activities(frame)))
        .group_by(Activity.id, Activity.title, Activity.kind, Activity.starts_at, Activity.place)
        .order_by(Activity.starts_at, Activity.id)
    ).all()
    return [
        (title, ActivityKind.label_of(kind), starts.strftime("%Y-%m-%d"), place or "", n, n_children)
        for title, kind, starts, place, n, n_children in rows
    ]


def _funds(frame: Frame) -> list[tuple]:
    """Per source available in the period: amount, paid and approved in the period, paid ÷ amount."""
    # the conditions of 已支付金额 and 已审批金额, per source
    paid, committed = indicators.paid_in(frame), indicators.committed_in(frame)
    sums = {
        source_id: (from_cents(p), from_cents(c))
        for source_id, p, c in db.session.execute(
            select(
                Expense.source_id,
                cents(case((paid, Expense.amount), else_=0)),
                cents(case((committed, Expense.amount), else_=0)),
            )
            .where(or_(paid, committed))
            .group_by(Expense.source_id)
        )
    }
    zero = Decimal("0.00")
    rows = []
    for source in db.session.scalars(
        select(FundSource)
        .where(indicators.sources_available(frame))
        .order_by(FundSource.received_on, FundSource.id)
    ):
        amount = Decimal(source.amount).quantize(Decimal("0.01"))
        spent, approved = sums.get(source.id, (zero, zero))
        rows.append((source.name, amount, spent, approved, rate(spent, amount)))
    return rows


def _months(period: Period, village_ids, now: dt.datetime, may_read=None) -> list[tuple]:
    """Per month of a phase: the trend columns, each the indicator over that month's frame."""
    rows = []
    year, month = period.start.year, period.start.month
    while dt.date(year, month, 1) <= period.end:
        p = month_period(year, month)
        values = indicators.compute_many(
            MONTH_COLUMNS, Frame.of_period(p.start, p.end, village_ids, now), may_read
        )
        rows.append((p.title, *(values[key].value for key in MONTH_COLUMNS)))
        month += 1
        if month > 12:
            year, month = year + 1, 1
    return rows


# --------------------------------------------------------------------------- xlsx


def moment_text(frame: Frame) -> str:
    if frame.moment < dt.datetime.combine(frame.end + dt.timedelta(days=1), dt.time.min):
        return f"{frame.moment:%Y-%m-%d %H:%M}（报表生成时，统计期尚未结束：期间指标计至此刻，时点指标为此刻的情况）"
    return f"{frame.end:%Y-%m-%d} 24:00（期末）"


def write_report(
    figures: Figures, *, town: str, kind: str, generated_at: dt.datetime, generated_by: str
) -> bytes:
    book = Book(town=town)
    title = book.format(bold=True, font_size=14)
    head = book.format(bold=True, bg_color="#DDEBF7", border=1, text_wrap=True, valign="vcenter")
    cell = book.format(border=1)
    number = book.format(border=1, num_format="#,##0")
    money = book.format(border=1, num_format="#,##0.00")
    percent = book.format(border=1, num_format="0.0%")
    wrap = book.format(border=1, text_wrap=True, valign="top")
    muted = book.format(font_color="#666666")
    name = "月度报表" if kind == MONTHLY else "阶段报表"

    def value_of(value):
        if value is None:
            return "—"
        if isinstance(value, Decimal):
            return float(value)
        return value

    def fmt(value, unit=None):
        if value is None:
            return cell
        if unit == indicators.PERCENT:
            return percent
        if unit == indicators.YUAN or isinstance(value, Decimal):
            return money
        if isinstance(value, float):
            return percent
        if isinstance(value, int):
            return number
        return cell

    def table(sheet, top, headers, rows, rate_columns=(), money_columns=()):
        if sheet.header_rows is None:
            sheet.print_header(top)
        sheet.row(top, 0, headers, head)
        for r, row in enumerate(rows, start=top + 1):
            for c, value in enumerate(row):
                if c in rate_columns:
                    sheet.value(r, c, value_of(value), percent if value is not None else cell)
                elif c in money_columns:
                    sheet.value(r, c, value_of(value), money)
                else:
                    sheet.value(r, c, value_of(value), fmt(value))
        if not rows:
            sheet.value(top + 1, 0, "本期无数据", muted)
        return top + max(len(rows), 1) + 2

    summary = book.sheet("汇总")
    summary.set_column(0, 0, 26)
    summary.set_column(1, 1, 14)
    summary.set_column(2, 3, 6)
    summary.set_column(4, 4, 30)
    summary.set_column(5, 5, 80)
    summary.value(0, 0, f"{town}困境儿童监护赋能关爱服务{name}", title)
    summary.value(1, 0, f"统计期间：{figures.period.title}（{figures.period.start} 至 {figures.period.end}）")
    summary.value(2, 0, f"统计范围：{figures.scope_label}　统计时点：{moment_text(figures.frame)}")
    summary.value(3, 0, f"生成时间：{generated_at:%Y-%m-%d %H:%M}　生成人：{generated_by}", muted)
    summary.print_header(5)
    summary.row(5, 0, ["指标", "数值", "单位", "类型", "分子 / 分母", "定义（详见“指标说明”）"], head)
    for r, v in enumerate(figures.values.values(), start=6):
        ind = v.indicator
        summary.value(r, 0, ind.name, cell)
        summary.value(r, 1, value_of(v.value), fmt(v.value, ind.unit))
        summary.value(r, 2, ind.unit, cell)
        summary.value(r, 3, ind.basis_label, cell)
        summary.value(r, 4, _fraction(v), cell)
        summary.value(r, 5, v.unavailable or ind.definition, wrap)

    sheet = book.sheet("按类别")
    sheet.set_column(0, 0, 20)
    sheet.set_column(1, 1, 12)
    table(sheet, 0, ["困境类别", "在册儿童数"], figures.by_category)
    sheet = book.sheet("按等级")
    sheet.set_column(0, 1, 14)
    table(sheet, 0, ["风险等级", "在册儿童数"], figures.by_level)
    sheet = book.sheet("按村社区")
    sheet.set_column(0, 0, 14)
    sheet.set_column(1, 10, 10)
    table(
        sheet,
        0,
        [
            "村（社区）",
            "在册儿童",
            "红",
            "橙",
            "黄",
            "绿",
            "未评估",
            "本期评估",
            "本期走访",
            "本期预警",
            "巡查按期率",
        ],
        figures.by_village,
        rate_columns=(10,),
    )
    sheet = book.sheet("措施分层")
    sheet.set_column(0, 0, 22)
    sheet.set_column(1, 6, 12)
    top = table(
        sheet,
        0,
        ["风险层级", "应落实", "按期落实", "逾期落实", "未落实", "按期落实率", "落实率（含逾期）"],
        figures.services_by_tier,
        rate_columns=(5, 6),
    )
    table(sheet, top, ["措施种类", "应落实", "按期落实", "逾期落实", "未落实"], figures.services_by_kind)
    sheet = book.sheet("预警处置")
    sheet.set_column(0, 5, 12)
    table(
        sheet,
        0,
        ["预警等级", "本期发出", "本期办结", "到期或办结", "其中按期办结", "按期处置率"],
        figures.alerts_by_severity,
        rate_columns=(5,),
    )
    sheet = book.sheet("个案")
    sheet.set_column(0, 1, 14)
    top = table(sheet, 0, ["个案阶段", "个案数"], figures.cases_by_stage)
    values = figures.values
    table(
        sheet,
        top,
        ["本期新立", "本期结案", "个案结案率"],
        [(values["cases_new"].value, values["cases_closed"].value, values["cases_closed_rate"].value)],
        rate_columns=(2,),
    )
    sheet = book.sheet("活动")
    sheet.set_column(0, 0, 36)
    sheet.set_column(1, 1, 28)
    sheet.set_column(2, 5, 12)
    table(sheet, 0, ["活动", "类型", "日期", "地点", "签到人次", "其中儿童"], figures.activities)
    sheet = book.sheet("资金")
    sheet.set_column(0, 0, 30)
    sheet.set_column(1, 4, 14)
    if figures.frame.village_ids is not None:
        sheet.value(0, 0, "资金为全镇统计，按村（社区）统计时不列。", muted)
    elif figures.values["funds_paid"].unavailable == indicators.NOT_PERMITTED:
        sheet.value(0, 0, "您的角色无权查看资金情况，本表不列。", muted)
    else:
        table(
            sheet,
            0,
            ["资金来源", "金额（元）", "本期已支付（元）", "本期已审批（元）", "支付进度"],
            figures.funds,
            rate_columns=(4,),
            money_columns=(1, 2, 3),
        )
    if figures.months:
        sheet = book.sheet("月度趋势")
        sheet.set_column(0, 0, 14)
        sheet.set_column(1, len(MONTH_COLUMNS), 12)
        heads = ["月份", *(indicators.get(key).name for key in MONTH_COLUMNS)]
        rate_columns = tuple(i + 1 for i, key in enumerate(MONTH_COLUMNS) if indicators.get(key).is_rate)
        table(sheet, 0, heads, figures.months, rate_columns=rate_columns)

    notes = book.sheet("指标说明")
    notes.set_column(0, 0, 24)
    notes.set_column(1, 2, 6)
    notes.set_column(3, 4, 12)
    notes.set_column(5, 5, 100)
    notes.value(0, 0, "指标说明（统计口径）", title)
    notes.value(
        1,
        0,
        "时点指标：统计时点（期末，或报表生成时期间尚未结束则为生成时）的情况，等级、个案阶段和在册情况按历史记录还原；"
        "期间指标：统计期内（截至统计时点）按工作发生日期计入的工作量，儿童之后归档不影响。",
        muted,
    )
    notes.row(2, 0, ["指标", "类型", "单位", "分子", "分母", "定义"], head)
    row = 3
    for ind in indicators.INDICATORS.values():
        notes.row(
            row, 0, [ind.name, ind.basis_label, ind.unit, ind.numerator_label, ind.denominator_label], cell
        )
        notes.value(row, 5, ind.definition, wrap)
        row += 1
    row += 1
    notes.row(row, 0, ["工作表", "说明"], head)
    for sheet_name, definition in TABLE_NOTES:
        row += 1
        notes.value(row, 0, sheet_name, cell)
        notes.value(row, 1, definition, wrap)
    row += 2
    notes.value(
        row, 0, "比率的分母为0时显示“—”。金额单位为元，保留两位小数。数据来源为本系统登记的记录。", muted
    )
    summary.activate()
    return book.close()


def _fraction(v: Value) -> str:
    if not v.indicator.is_rate or not v.available:
        return ""
    return f"{v.indicator.numerator_label} {v.numerator} / {v.indicator.denominator_label} {v.denominator}"


__all__ = [
    "MONTHLY",
    "PHASE",
    "PHASES",
    "Figures",
    "Period",
    "compute_figures",
    "month_period",
    "phase_period",
    "write_report",
]
