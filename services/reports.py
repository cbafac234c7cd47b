"""报表: the monthly and phase report for the district evaluation (区级评估验收), as xlsx.

``compute_figures`` counts everything for a period and a village scope with aggregate queries
(no row is loaded per child); ``write_report`` lays the figures out on sheets, each figure's
definition (口径) on the notes sheet. Every figure is 0 or empty when its area has no data yet.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import and_, case, distinct, func, or_, select

from choices import (
    ActivityKind,
    AlertStatus,
    AssessmentStatus,
    CaseStage,
    ExpenseStatus,
    Level,
    ServiceKind,
    ServiceStatus,
    Severity,
)
from models import (
    Activity,
    Alert,
    Assessment,
    Attendance,
    Case,
    Category,
    Child,
    Expense,
    FundSource,
    SupportService,
    Village,
    Visit,
    child_category,
    db,
)
from services.scoping import scope
from services.workbook import Book

MONTHLY = "monthly"
PHASE = "phase"
# The three phases of the work plan (部署启动 1–2月, 重点推进 2–11月, 总结提升 11–12月).
PHASES = {
    "deploy": ("部署启动阶段", 1, 2),
    "advance": ("重点推进阶段", 2, 11),
    "summary": ("总结提升阶段", 11, 12),
}
SPENT = (ExpenseStatus.APPROVED.value, ExpenseStatus.PAID.value)
UNASSESSED = "未评估"

# Each figure of the summary sheet: key, label, definition (口径), written once.
DEFINITIONS = [
    (
        "children",
        "在册儿童数",
        "名册中期末仍在册的儿童：未归档，或在期末之后才归档。下列各项均以此为范围（按村（社区）限定）。",
    ),
    ("children_new", "本期新建档儿童数", "在册儿童中，建档时间（系统登记时间）在本期内的人数。"),
    ("assessments_done", "本期完成评估次数", "评估日期在本期内、且已审核的监护能力评估次数。"),
    ("assessed_children", "本期评估儿童数", "本期内有已审核评估的儿童人数（同一儿童多次评估计一人）。"),
    ("assessment_coverage", "评估覆盖率", "期末前有至少一次已审核评估的在册儿童数 ÷ 在册儿童数。"),
    (
        "services_due",
        "本期应落实措施数",
        "应完成日期在本期内、未取消的赋能措施数（按风险层级分列见“措施分层”）。",
    ),
    ("services_on_time", "按期落实措施数", "本期应落实的措施中，落实日期不晚于应完成日期的项数。"),
    ("services_rate", "分层赋能落实率", "按期落实措施数 ÷ 本期应落实措施数。"),
    ("services_delivered", "本期落实措施数", "落实日期在本期内的措施数（不论是否按期）。"),
    ("visits", "本期走访次数", "走访日期在本期内的巡查走访次数。"),
    (
        "visits_on_time",
        "按期走访次数",
        "本期走访中，走访日期不晚于该儿童上一次走访所定“下次走访”日期的次数（首次走访计为按期）。",
    ),
    ("visits_rate", "巡查按期率", "按期走访次数 ÷ 本期走访次数。"),
    ("visited_children", "本期走访儿童数", "本期内至少被走访一次的儿童人数。"),
    ("alerts_raised", "本期发出预警数", "发出时间在本期内的风险预警数（按等级分列见“预警处置”）。"),
    ("alerts_done", "其中已办结", "本期发出的预警中，状态为已办结的数量。"),
    ("alerts_on_time", "其中按期办结", "本期发出的预警中，办结时间不晚于处置时限的数量。"),
    ("alerts_rate", "预警按期处置率", "其中按期办结 ÷ 本期发出预警数。"),
    ("alerts_overdue_open", "期末逾期未办结预警数", "期末仍未办结且处置时限已过的预警数（不限发出时间）。"),
    ("cases_open", "期末在办个案数", "立案日期不晚于期末、期末尚未结案的个案数（按阶段分列见“个案”）。"),
    ("cases_new", "本期新立个案数", "立案日期在本期内的个案数。"),
    ("cases_closed", "本期结案个案数", "结案日期在本期内的个案数。"),
    ("cases_rate", "个案结案率", "期末前已结案的个案数 ÷ 期末前立案的个案数。"),
    ("activities", "本期活动场次", "开始时间在本期内的活动数（含全镇活动和范围内村（社区）的活动）。"),
    ("attendance", "活动签到人次", "本期活动的签到人次（儿童、监护人、工作人员及现场登记）。"),
    ("attendance_children", "参加活动儿童数", "本期活动中签到的在册儿童人数（同一儿童计一人）。"),
    (
        "funds_received",
        "资金来源总额（元）",
        "到账日期不晚于期末的各项资金来源金额合计（全镇；按村（社区）统计时不适用）。",
    ),
    (
        "funds_spent",
        "本期支出（元）",
        "支出日期在本期内、已审批或已支付的支出合计；按村（社区）统计时只计关联到范围内儿童的支出。",
    ),
    ("funds_spent_total", "累计支出（元）", "支出日期不晚于期末、已审批或已支付的支出合计；口径同上。"),
    ("funds_rate", "资金执行率", "累计支出 ÷ 资金来源总额（全镇）。"),
]
LABELS = {key: label for key, label, _ in DEFINITIONS}
TABLE_NOTES = [
    ("按类别", "在册儿童按困境类别统计；一名儿童可属多个类别，故各类别之和可大于在册儿童数。"),
    ("按等级", "在册儿童按当前风险等级（最近一次已审核评估）统计；未评估单列。"),
    ("按村社区", "各村（社区）的在册儿童数、各等级人数及本期评估、走访、预警数，口径同汇总表。"),
    (
        "措施分层",
        "本期应落实的措施按风险层级（红/橙/黄/绿）和措施种类统计应落实、按期落实、逾期落实、未落实。",
    ),
    ("预警处置", "本期发出的预警按等级统计发出数、已办结、按期办结及按期处置率。"),
    ("个案", "期末各阶段个案数（识别→评估→介入→跟踪→结案），以及本期新立、本期结案。"),
    ("活动", "本期活动清单及每场签到人次。"),
    ("资金", "各资金来源的金额、本期支出、累计支出与执行率（全镇口径）。"),
    ("月度趋势", "阶段报表按月统计评估、走访、措施落实、预警、结案和活动，便于看推进情况。"),
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
    summary: dict = field(default_factory=dict)
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


def _rate(part, whole):
    return None if not whole else round(part / whole, 4)


def _children(period: Period, village_ids):
    """Ids of the children in register at the end of the period, within the scope."""
    stmt = select(Child.id).where(or_(Child.archived_at.is_(None), Child.archived_at >= period.end_dt))
    return scope(stmt, Child, village_ids)


def _scalar(stmt) -> int:
    return db.session.scalar(stmt) or 0


def compute_figures(
    period: Period, village_ids, scope_label: str = "全镇", with_months: bool = False
) -> Figures:
    figures = Figures(period, scope_label)
    s = figures.summary
    kids = _children(period, village_ids)
    start, end = period.start, period.end

    s["children"] = _scalar(select(func.count()).select_from(kids.subquery()))
    s["children_new"] = _scalar(
        select(func.count()).where(
            Child.id.in_(kids), Child.created_at >= period.start_dt, Child.created_at < period.end_dt
        )
    )

    approved = and_(Assessment.status == AssessmentStatus.APPROVED.value, Assessment.child_id.in_(kids))
    in_period = and_(Assessment.assessed_on >= start, Assessment.assessed_on <= end)
    s["assessments_done"] = _scalar(select(func.count()).where(approved, in_period))
    s["assessed_children"] = _scalar(
        select(func.count(distinct(Assessment.child_id))).where(approved, in_period)
    )
    covered = _scalar(
        select(func.count(distinct(Assessment.child_id))).where(approved, Assessment.assessed_on <= end)
    )
    s["assessment_coverage"] = _rate(covered, s["children"])

    _services(figures, kids)
    _visits(figures, kids)
    _alerts(figures, kids, village_ids)
    _cases(figures, kids)
    _activities(figures, kids, village_ids)
    _funds(figures, kids, village_ids)
    _registers(figures, kids, village_ids)
    if with_months:
        _months(figures, village_ids)
    return figures


def _services(figures: Figures, kids) -> None:
    s, p = figures.summary, figures.period
    due = and_(
        SupportService.child_id.in_(kids),
        SupportService.due_on >= p.start,
        SupportService.due_on <= p.end,
        SupportService.status != ServiceStatus.CANCELLED.value,
    )
    delivered = SupportService.status == ServiceStatus.DELIVERED.value
    on_time = and_(
        delivered,
        SupportService.delivered_on.is_not(None),
        SupportService.delivered_on <= SupportService.due_on,
    )
    late = and_(delivered, SupportService.delivered_on > SupportService.due_on)

    def counts(group_column):
        return db.session.execute(
            select(
                group_column,
                func.count(),
                func.sum(case((on_time, 1), else_=0)),
                func.sum(case((late, 1), else_=0)),
            )
            .where(due)
            .group_by(group_column)
        ).all()

    tiers = {tier: (n, int(ok or 0), int(lt or 0)) for tier, n, ok, lt in counts(SupportService.tier)}
    figures.services_by_tier = [
        (Level.label_of(tier) if tier else "未分层", n, ok, lt, n - ok - lt, _rate(ok, n))
        for tier, (n, ok, lt) in sorted(tiers.items(), key=lambda kv: _tier_order(kv[0]))
    ]
    kinds = counts(SupportService.kind)
    figures.services_by_kind = [
        (ServiceKind.label_of(kind), n, int(ok or 0), int(lt or 0), n - int(ok or 0) - int(lt or 0))
        for kind, n, ok, lt in sorted(kinds, key=lambda r: str(r[0]))
    ]
    s["services_due"] = sum(n for n, _, _ in tiers.values())
    s["services_on_time"] = sum(ok for _, ok, _ in tiers.values())
    s["services_rate"] = _rate(s["services_on_time"], s["services_due"])
    s["services_delivered"] = _scalar(
        select(func.count()).where(
            SupportService.child_id.in_(kids),
            delivered,
            SupportService.delivered_on >= p.start,
            SupportService.delivered_on <= p.end,
        )
    )


def _tier_order(tier) -> int:
    order = {Level.RED.value: 0, Level.ORANGE.value: 1, Level.YELLOW.value: 2, Level.GREEN.value: 3}
    return order.get(tier, 9)


def _visits(figures: Figures, kids) -> None:
    s, p = figures.summary, figures.period
    previous_due = (
        func.lag(Visit.next_due)
        .over(partition_by=Visit.child_id, order_by=(Visit.visited_on, Visit.id))
        .label("due")
    )
    ordered = (
        select(Visit.child_id, Visit.visited_on, previous_due).where(Visit.child_id.in_(kids)).subquery()
    )
    in_period = and_(ordered.c.visited_on >= p.start, ordered.c.visited_on <= p.end)
    total, on_time, children = db.session.execute(
        select(
            func.count(),
            func.sum(case((or_(ordered.c.due.is_(None), ordered.c.visited_on <= ordered.c.due), 1), else_=0)),
            func.count(distinct(ordered.c.child_id)),
        ).where(in_period)
    ).one()
    s["visits"] = total or 0
    s["visits_on_time"] = int(on_time or 0)
    s["visits_rate"] = _rate(s["visits_on_time"], s["visits"])
    s["visited_children"] = children or 0


def _alert_scope(kids, village_ids):
    """Alerts of children in register, and alerts on no child in the villages of the scope."""
    about_children = Alert.child_id.in_(kids)
    no_child = Alert.child_id.is_(None)
    if village_ids is not None:
        no_child = and_(no_child, Alert.village_id.in_(list(village_ids) or [-1]))
    return or_(about_children, no_child)


def _alerts(figures: Figures, kids, village_ids) -> None:
    s, p = figures.summary, figures.period
    raised = and_(_alert_scope(kids, village_ids), Alert.raised_at >= p.start_dt, Alert.raised_at < p.end_dt)
    done = Alert.status == AlertStatus.DONE.value
    on_time = and_(done, Alert.closed_at.is_not(None), Alert.closed_at <= Alert.deadline)
    rows = db.session.execute(
        select(
            Alert.severity,
            func.count(),
            func.sum(case((done, 1), else_=0)),
            func.sum(case((on_time, 1), else_=0)),
        )
        .where(raised)
        .group_by(Alert.severity)
    ).all()
    by = {sev: (n, int(d or 0), int(ok or 0)) for sev, n, d, ok in rows}
    figures.alerts_by_severity = []
    for severity in reversed(list(Severity)):
        n, n_done, n_on_time = by.get(severity.value, (0, 0, 0))
        figures.alerts_by_severity.append((severity.label, n, n_done, n_on_time, _rate(n_on_time, n)))
    s["alerts_raised"] = sum(v[0] for v in by.values())
    s["alerts_done"] = sum(v[1] for v in by.values())
    s["alerts_on_time"] = sum(v[2] for v in by.values())
    s["alerts_rate"] = _rate(s["alerts_on_time"], s["alerts_raised"])
    s["alerts_overdue_open"] = _scalar(
        select(func.count()).where(
            _alert_scope(kids, village_ids),
            Alert.raised_at < p.end_dt,
            Alert.deadline < p.end_dt,
            or_(Alert.closed_at.is_(None), Alert.closed_at >= p.end_dt),
        )
    )


def _cases(figures: Figures, kids) -> None:
    s, p = figures.summary, figures.period
    opened = and_(Case.child_id.in_(kids), Case.opened_on <= p.end)
    closed_by_end = and_(Case.closed_on.is_not(None), Case.closed_on <= p.end)
    stages = dict(
        db.session.execute(select(Case.stage, func.count()).where(opened).group_by(Case.stage)).all()
    )
    figures.cases_by_stage = [(stage.label, stages.get(stage.value, 0)) for stage in CaseStage]
    total = sum(stages.values())
    closed_total = _scalar(select(func.count()).where(opened, closed_by_end))
    s["cases_open"] = total - closed_total
    s["cases_new"] = _scalar(select(func.count()).where(opened, Case.opened_on >= p.start))
    s["cases_closed"] = _scalar(
        select(func.count()).where(
            Case.child_id.in_(kids), Case.closed_on >= p.start, Case.closed_on <= p.end
        )
    )
    s["cases_rate"] = _rate(closed_total, total)


def _activities(figures: Figures, kids, village_ids) -> None:
    s, p = figures.summary, figures.period
    held = scope(
        select(Activity.id).where(Activity.starts_at >= p.start_dt, Activity.starts_at < p.end_dt),
        Activity,
        village_ids,
    )
    rows = db.session.execute(
        select(
            Activity.id,
            Activity.title,
            Activity.kind,
            Activity.starts_at,
            Activity.place,
            func.count(Attendance.id),
            func.count(Attendance.child_id),
        )
        .outerjoin(Attendance, Attendance.activity_id == Activity.id)
        .where(Activity.id.in_(held))
        .group_by(Activity.id, Activity.title, Activity.kind, Activity.starts_at, Activity.place)
        .order_by(Activity.starts_at)
    ).all()
    figures.activities = [
        (title, ActivityKind.label_of(kind), starts.strftime("%Y-%m-%d"), place or "", n, n_children)
        for _, title, kind, starts, place, n, n_children in rows
    ]
    s["activities"] = len(rows)
    s["attendance"] = sum(r[5] for r in rows)
    s["attendance_children"] = _scalar(
        select(func.count(distinct(Attendance.child_id))).where(
            Attendance.activity_id.in_(held), Attendance.child_id.in_(kids)
        )
    )


def _funds(figures: Figures, kids, village_ids) -> None:
    s, p = figures.summary, figures.period
    spent = Expense.status.in_(SPENT)
    mine = spent if village_ids is None else and_(spent, Expense.child_id.in_(kids))
    s["funds_spent"] = _money(
        select(func.sum(Expense.amount)).where(mine, Expense.spent_on >= p.start, Expense.spent_on <= p.end)
    )
    s["funds_spent_total"] = _money(select(func.sum(Expense.amount)).where(mine, Expense.spent_on <= p.end))
    if village_ids is not None:
        s["funds_received"] = None
        s["funds_rate"] = None
        figures.funds = []
        return
    s["funds_received"] = _money(select(func.sum(FundSource.amount)).where(FundSource.received_on <= p.end))
    s["funds_rate"] = _rate(s["funds_spent_total"], s["funds_received"])
    rows = db.session.execute(
        select(
            FundSource.name,
            FundSource.amount,
            func.sum(
                case((and_(Expense.spent_on >= p.start, Expense.spent_on <= p.end), Expense.amount), else_=0)
            ),
            func.sum(Expense.amount),
        )
        .outerjoin(Expense, and_(Expense.source_id == FundSource.id, spent, Expense.spent_on <= p.end))
        .where(FundSource.received_on <= p.end)
        .group_by(FundSource.id, FundSource.name, FundSource.amount)
        .order_by(FundSource.received_on, FundSource.id)
    ).all()
    figures.funds = [
        (
            name,
            Decimal(amount or 0),
            Decimal(in_period or 0),
            Decimal(total or 0),
            _rate(Decimal(total or 0), amount),
        )
        for name, amount, in_period, total in rows
    ]


def _money(stmt) -> Decimal:
    value = db.session.scalar(stmt)
    return Decimal(value or 0).quantize(Decimal("0.01"))


def _registers(figures: Figures, kids, village_ids) -> None:
    """Children by category, level and village; per-village work figures."""
    p = figures.period
    figures.by_category = [
        tuple(r)
        for r in db.session.execute(
            select(Category.name, func.count(child_category.c.child_id))
            .select_from(Category)
            .outerjoin(
                child_category,
                and_(child_category.c.category_id == Category.id, child_category.c.child_id.in_(kids)),
            )
            .group_by(Category.id, Category.name, Category.sort_order)
            .order_by(Category.sort_order)
        )
    ]
    levels = dict(
        db.session.execute(
            select(Child.current_level, func.count()).where(Child.id.in_(kids)).group_by(Child.current_level)
        ).all()
    )
    figures.by_level = [(lv.label, levels.get(lv.value, 0)) for lv in reversed(list(Level))]
    figures.by_level.append((UNASSESSED, levels.get(None, 0)))

    villages = db.session.execute(
        scope(select(Village.id, Village.name).order_by(Village.sort_order, Village.id), Village, village_ids)
    ).all()
    per_level = {}
    for vid, level, n in db.session.execute(
        select(Child.village_id, Child.current_level, func.count())
        .where(Child.id.in_(kids))
        .group_by(Child.village_id, Child.current_level)
    ):
        per_level.setdefault(vid, {})[level] = n

    def per_village(stmt):
        return dict(db.session.execute(stmt).all())

    assessments = per_village(
        select(Child.village_id, func.count(Assessment.id))
        .join(Assessment, Assessment.child_id == Child.id)
        .where(
            Child.id.in_(kids),
            Assessment.status == AssessmentStatus.APPROVED.value,
            Assessment.assessed_on >= p.start,
            Assessment.assessed_on <= p.end,
        )
        .group_by(Child.village_id)
    )
    visits = per_village(
        select(Child.village_id, func.count(Visit.id))
        .join(Visit, Visit.child_id == Child.id)
        .where(Child.id.in_(kids), Visit.visited_on >= p.start, Visit.visited_on <= p.end)
        .group_by(Child.village_id)
    )
    alerts = per_village(
        select(Alert.village_id, func.count(Alert.id))
        .where(_alert_scope(kids, village_ids), Alert.raised_at >= p.start_dt, Alert.raised_at < p.end_dt)
        .group_by(Alert.village_id)
    )
    rows = []
    for vid, name in villages:
        counts = per_level.get(vid, {})
        rows.append(
            (
                name,
                sum(counts.values()),
                *(counts.get(lv.value, 0) for lv in reversed(list(Level))),
                counts.get(None, 0),
                assessments.get(vid, 0),
                visits.get(vid, 0),
                alerts.get(vid, 0),
            )
        )
    figures.by_village = rows


def _months(figures: Figures, village_ids) -> None:
    """Per month of a phase: the few counts of the trend sheet (same definitions as the summary)."""
    period = figures.period
    year, month = period.start.year, period.start.month
    while dt.date(year, month, 1) <= period.end:
        p = month_period(year, month)
        kids = _children(p, village_ids)
        held = scope(
            select(Activity.id).where(Activity.starts_at >= p.start_dt, Activity.starts_at < p.end_dt),
            Activity,
            village_ids,
        )
        raised = and_(
            _alert_scope(kids, village_ids), Alert.raised_at >= p.start_dt, Alert.raised_at < p.end_dt
        )
        alerts, alerts_on_time = db.session.execute(
            select(
                func.count(),
                func.sum(
                    case(
                        (
                            and_(
                                Alert.status == AlertStatus.DONE.value,
                                Alert.closed_at.is_not(None),
                                Alert.closed_at <= Alert.deadline,
                            ),
                            1,
                        ),
                        else_=0,
                    )
                ),
            ).where(raised)
        ).one()
        figures.months.append(
            (
                p.title,
                _scalar(
                    select(func.count()).where(
                        Assessment.status == AssessmentStatus.APPROVED.value,
                        Assessment.child_id.in_(kids),
                        Assessment.assessed_on >= p.start,
                        Assessment.assessed_on <= p.end,
                    )
                ),
                _scalar(
                    select(func.count()).where(
                        Visit.child_id.in_(kids), Visit.visited_on >= p.start, Visit.visited_on <= p.end
                    )
                ),
                _scalar(
                    select(func.count()).where(
                        SupportService.child_id.in_(kids),
                        SupportService.status == ServiceStatus.DELIVERED.value,
                        SupportService.delivered_on >= p.start,
                        SupportService.delivered_on <= p.end,
                    )
                ),
                alerts or 0,
                int(alerts_on_time or 0),
                _scalar(
                    select(func.count()).where(
                        Case.child_id.in_(kids), Case.closed_on >= p.start, Case.closed_on <= p.end
                    )
                ),
                _scalar(select(func.count()).select_from(held.subquery())),
                _scalar(select(func.count()).where(Attendance.activity_id.in_(held))),
            )
        )
        month += 1
        if month > 12:
            year, month = year + 1, 1


# --------------------------------------------------------------------------- xlsx


def write_report(
    figures: Figures, *, town: str, kind: str, generated_at: dt.datetime, generated_by: str
) -> bytes:
    book = Book()
    title = book.format(bold=True, font_size=14)
    head = book.format(bold=True, bg_color="#DDEBF7", border=1, text_wrap=True, valign="vcenter")
    cell = book.format(border=1)
    number = book.format(border=1, num_format="#,##0")
    money = book.format(border=1, num_format="#,##0.00")
    percent = book.format(border=1, num_format="0.0%")
    wrap = book.format(border=1, text_wrap=True, valign="top")
    muted = book.format(font_color="#666666")
    name = "月度报表" if kind == MONTHLY else "阶段报表"

    def fmt(value, key=""):
        if value is None:
            return cell
        if isinstance(value, Decimal) or key.startswith("funds_") and not key.endswith("rate"):
            return money
        if isinstance(value, float) or key.endswith("rate") or key.endswith("coverage"):
            return percent
        if isinstance(value, int):
            return number
        return cell

    def value_of(value):
        if value is None:
            return "—"
        if isinstance(value, Decimal):
            return float(value)
        return value

    def table(sheet, top, headers, rows, rate_columns=(), money_columns=()):
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
    summary.set_column(1, 1, 16)
    summary.set_column(2, 2, 80)
    summary.value(0, 0, f"{town}困境儿童监护赋能关爱服务{name}", title)
    summary.value(1, 0, f"统计期间：{figures.period.title}（{figures.period.start} 至 {figures.period.end}）")
    summary.value(2, 0, f"统计范围：{figures.scope_label}")
    summary.value(3, 0, f"生成时间：{generated_at:%Y-%m-%d %H:%M}　生成人：{generated_by}", muted)
    summary.row(5, 0, ["指标", "数值", "口径（详见“指标说明”）"], head)
    for r, (key, label, definition) in enumerate(DEFINITIONS, start=6):
        value = figures.summary.get(key)
        summary.value(r, 0, label, cell)
        summary.value(r, 1, value_of(value), fmt(value, key))
        summary.value(r, 2, definition, wrap)

    sheet = book.sheet("按类别")
    sheet.set_column(0, 0, 20)
    sheet.set_column(1, 1, 12)
    top = table(sheet, 0, ["困境类别", "在册儿童数"], figures.by_category)
    sheet = book.sheet("按等级")
    sheet.set_column(0, 1, 14)
    table(sheet, 0, ["风险等级", "在册儿童数"], figures.by_level)
    sheet = book.sheet("按村社区")
    sheet.set_column(0, 0, 14)
    sheet.set_column(1, 9, 10)
    table(
        sheet,
        0,
        ["村（社区）", "在册儿童", "红", "橙", "黄", "绿", "未评估", "本期评估", "本期走访", "本期预警"],
        figures.by_village,
    )
    sheet = book.sheet("措施分层")
    sheet.set_column(0, 0, 22)
    sheet.set_column(1, 5, 12)
    top = table(
        sheet,
        0,
        ["风险层级", "应落实", "按期落实", "逾期落实", "未落实", "落实率"],
        figures.services_by_tier,
        rate_columns=(5,),
    )
    table(sheet, top, ["措施种类", "应落实", "按期落实", "逾期落实", "未落实"], figures.services_by_kind)
    sheet = book.sheet("预警处置")
    sheet.set_column(0, 4, 12)
    table(
        sheet,
        0,
        ["预警等级", "发出", "已办结", "按期办结", "按期处置率"],
        figures.alerts_by_severity,
        rate_columns=(4,),
    )
    sheet = book.sheet("个案")
    sheet.set_column(0, 1, 14)
    top = table(sheet, 0, ["个案阶段", "个案数"], figures.cases_by_stage)
    table(
        sheet,
        top,
        ["本期新立", "本期结案", "结案率"],
        [(figures.summary["cases_new"], figures.summary["cases_closed"], figures.summary["cases_rate"])],
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
    if figures.summary.get("funds_received") is None:
        sheet.value(0, 0, "按村（社区）统计时不列资金来源；用于范围内儿童的支出见“汇总”。", muted)
    else:
        table(
            sheet,
            0,
            ["资金来源", "金额（元）", "本期支出（元）", "累计支出（元）", "执行率"],
            figures.funds,
            rate_columns=(4,),
            money_columns=(1, 2, 3),
        )
    if figures.months:
        sheet = book.sheet("月度趋势")
        sheet.set_column(0, 0, 14)
        sheet.set_column(1, 8, 11)
        table(
            sheet,
            0,
            [
                "月份",
                "完成评估",
                "走访",
                "落实措施",
                "发出预警",
                "按期办结预警",
                "结案",
                "活动场次",
                "签到人次",
            ],
            figures.months,
        )

    notes = book.sheet("指标说明")
    notes.set_column(0, 0, 24)
    notes.set_column(1, 1, 100)
    notes.value(0, 0, "指标说明（统计口径）", title)
    notes.row(2, 0, ["指标", "口径"], head)
    row = 3
    for _, label, definition in DEFINITIONS:
        notes.value(row, 0, label, cell)
        notes.value(row, 1, definition, wrap)
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


__all__ = [
    "DEFINITIONS",
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
