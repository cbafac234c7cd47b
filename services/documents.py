"""The process area's workbooks as printable documents: 领导小组名单, 督查与整改台账, 反馈意见汇总,
长效机制 counts. Each is a title, a header row and rows, laid out to print (see ``table_sheet``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from services.workbook import Book, PrintSetup, display_width

MARGINS = {"left": 0.4, "right": 0.4, "top": 0.6, "bottom": 0.7}
HEADER_ROW = 2  # title, subtitle, then the header row repeated on every printed page


@dataclass
class Table:
    """One sheet: a title over a header row and rows; widths in characters (None: from the content)."""

    name: str
    title: str
    headers: Sequence[str]
    rows: Iterable[Sequence]
    widths: Sequence[int] | None = None
    subtitle: str = ""
    landscape: bool = True
    notes: Sequence[str] = field(default_factory=tuple)
    percent_columns: Sequence[int] = ()
    percent_cells: set = field(default_factory=set)  # (row index, column) of single rate cells


def print_setup(table: Table, town: str) -> PrintSetup:
    """How a document table prints: A4, landscape where wide, one page wide, the header row on every
    page, the town and 第 x 页，共 y 页 in the footer."""
    return PrintSetup(
        landscape=table.landscape,
        fit_to_width=True,
        repeat_rows=(HEADER_ROW, HEADER_ROW),
        footer_town=town,
        page_numbers=True,
        margins=MARGINS,
    )


def write_book(target, tables: Sequence[Table], *, town: str) -> bytes | None:
    """The tables as one workbook, written to ``target`` (None: returned as bytes)."""
    book = Book(target)
    try:
        formats = _formats(book)
        for table in tables:
            table_sheet(book, formats, table, town=town)
    finally:
        data = book.close()
    return data


def book_bytes(tables: Sequence[Table], *, town: str) -> bytes:
    return write_book(None, tables, town=town)


def _formats(book: Book) -> dict:
    return {
        "title": book.format(bold=True, font_size=16, align="center", valign="vcenter"),
        "sub": book.format(font_size=10, align="center", valign="vcenter"),
        "head": book.format(
            bold=True, border=1, align="center", valign="vcenter", bg_color="#EEEEEE", text_wrap=True
        ),
        "cell": book.format(border=1, valign="top", text_wrap=True),
        "number": book.format(border=1, valign="top"),
        "money": book.format(border=1, valign="top", num_format="#,##0.00"),
        "percent": book.format(border=1, valign="top", num_format="0.0%"),
        "date": book.format(border=1, valign="top", num_format="yyyy-mm-dd"),
        "datetime": book.format(border=1, valign="top", num_format="yyyy-mm-dd hh:mm"),
        "note": book.format(font_size=9, text_wrap=True, valign="top"),
    }


def table_sheet(book: Book, formats, table: Table, *, town: str):
    sheet = book.sheet(table.name, print_setup=print_setup(table, town))
    ncols = len(table.headers)
    last = max(ncols - 1, 0)
    widths = list(table.widths or [display_width(h) + 4 for h in table.headers])
    sheet.title(0, 0, 0, last, table.title, formats["title"])
    sheet.set_row(0, 30)
    sheet.title(1, 0, 1, last, "　".join(p for p in (town, table.subtitle) if p), formats["sub"])
    for col, head in enumerate(table.headers):
        sheet.text(HEADER_ROW, col, head, formats["head"])
    row = HEADER_ROW + 1
    for index, values in enumerate(table.rows):
        for col, value in enumerate(values):
            percent = col in table.percent_columns or (index, col) in table.percent_cells
            sheet.value(row, col, value, _format_of(formats, value, percent))
            if table.widths is None and value is not None and col < len(widths):
                widths[col] = min(max(widths[col], _width(value)), 50)
        row += 1
    for note in table.notes:
        row += 1
        sheet.title(row, 0, row, max(last, 1), note, formats["note"])
    for col, width in enumerate(widths):
        sheet.set_column(col, col, width)
    sheet.freeze_panes(HEADER_ROW + 1, 0)
    return sheet


def _format_of(formats, value, percent: bool):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return formats["cell"]
    if isinstance(value, Decimal):
        return formats["percent"] if percent else formats["money"]
    if isinstance(value, int | float):
        return formats["percent"] if percent else formats["number"]
    if isinstance(value, dt.datetime):
        return formats["datetime"]
    if isinstance(value, dt.date):
        return formats["date"]
    return formats["cell"]


def _width(value) -> int:
    if isinstance(value, dt.datetime):
        return 17
    if isinstance(value, dt.date):
        return 12
    return display_width(str(value)[:50]) + 2


# --------------------------------------------------------------------------- the books


def leading_group_book(*, town: str, today: dt.date) -> bytes:
    from services import leading_group as lg

    members = lg.members()
    meetings = lg.meetings(dt.date(today.year, 1, 1), today)
    return book_bytes(
        [
            Table(
                "领导小组名单",
                "困境儿童监护赋能关爱服务工作领导小组名单",
                lg.LIST_COLUMNS,
                lg.list_rows(members),
                widths=(6, 10, 22, 20, 10, 50),
                subtitle=f"截至{today:%Y年%m月%d日}",
            ),
            Table(
                "领导小组会议",
                "领导小组会议记录",
                lg.MEETING_COLUMNS,
                lg.meeting_rows(meetings),
                widths=(12, 30, 16, 30, 20, 50),
                subtitle=f"{today.year}年",
            ),
        ],
        town=town,
    )


def rectification_book(village_ids, start: dt.date, end: dt.date, *, town: str, today: dt.date) -> bytes:
    from services import inspections

    keys = [k for k, _ in inspections.LEDGER_COLUMNS]
    rows = [[row[k] for k in keys] for row in inspections.ledger_rows(village_ids, start, end, today)]
    done = sum(1 for r in rows if r[keys.index("status")].startswith("已整改"))
    overdue = sum(
        1
        for r in rows
        if "逾期" in r[keys.index("status")] and not r[keys.index("status")].startswith("已整改")
    )
    return book_bytes(
        [
            Table(
                "督查与整改台账",
                "督查与整改台账",
                [label for _, label in inspections.LEDGER_COLUMNS],
                rows,
                widths=(6, 11, 10, 14, 6, 9, 36, 24, 10, 11, 14, 11, 28, 8, 15),
                subtitle=f"{start:%Y-%m-%d} 至 {end:%Y-%m-%d}",
                notes=(
                    f"共{len(rows)}项问题，已整改{done}项，逾期未整改{overdue}项。"
                    "逾期：整改期限已过仍未标记已整改；已整改的问题由责任人以外的镇级管理人员复核。",
                ),
            )
        ],
        town=town,
    )


def feedback_tables(village_ids, start: dt.date, end: dt.date, *, title: str) -> list[Table]:
    from choices import FeedbackChannel, FeedbackItem, FeedbackSource
    from services import feedback

    result = feedback.summary(village_ids, start, end)
    sources = list(FeedbackSource)
    averages = []
    for item in FeedbackItem:
        row = [item.label]
        for source in [*sources, None]:
            cell = result.cell(item.value, source.value if source else None)
            row += [cell.average, cell.count]
        averages.append(row)
    counts = "，".join(f"{s.label}{result.by_source.get(s.value, 0)}份" for s in sources)
    channels = "，".join(f"{FeedbackChannel.label_of(c)}{n}份" for c, n in result.by_channel.items())
    headers = ["服务项目"]
    for source in [*sources, None]:
        label = source.label if source else "合计"
        headers += [f"{label}平均分", f"{label}份数"]
    return [
        Table(
            "满意度汇总",
            "反馈意见汇总（满意度）",
            headers,
            averages,
            widths=(16, *([9, 7] * (len(sources) + 1))),
            subtitle=title,
            notes=(
                f"共收到反馈{result.count}份：{counts}（{channels or '无'}）。",
                "满意度1–5分（5非常满意…1非常不满意）；平均分为该项目评分之和÷评分份数，未评价的不计入。",
            ),
        ),
        Table(
            "意见建议",
            "反馈意见汇总（意见建议）",
            ("收到日期", "来源", "单位/活动", "方式", "意见建议"),
            result.suggestions,
            widths=(12, 10, 26, 10, 70),
            subtitle=title,
        ),
        Table(
            "反馈明细",
            "反馈意见明细",
            ("收到日期", "来源", "单位/活动", "方式", *(i.label for i in FeedbackItem), "意见建议"),
            feedback.detail_rows(village_ids, start, end),
            widths=(12, 10, 24, 9, *([8] * len(FeedbackItem)), 40),
            subtitle=title,
        ),
    ]


def feedback_book(village_ids, start: dt.date, end: dt.date, *, town: str, title: str) -> bytes:
    return book_bytes(feedback_tables(village_ids, start, end, title=title), town=town)


def training_book(start: dt.date, end: dt.date, *, town: str) -> bytes:
    from sqlalchemy import func, select
    from sqlalchemy.orm import selectinload

    from choices import ActivityKind, StaffKind
    from models import Activity, Attendance, Staff, db
    from services.activities import duration_hours

    first = dt.datetime.combine(start, dt.time.min)
    after = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min)
    sessions = list(
        db.session.scalars(
            select(Activity)
            .options(selectinload(Activity.lecturers), selectinload(Activity.villages))
            .where(
                Activity.kind == ActivityKind.TRAINING.value,
                Activity.starts_at >= first,
                Activity.starts_at < after,
            )
            .order_by(Activity.starts_at, Activity.id)
        )
    )
    counts = dict(
        db.session.execute(
            select(Attendance.activity_id, func.count())
            .where(Attendance.activity_id.in_([a.id for a in sessions]))
            .group_by(Attendance.activity_id)
        ).all()
    )
    session_rows = [
        (
            a.starts_at,
            a.title,
            a.place or "",
            a.organiser or "",
            "、".join(s.name for s in a.lecturers),
            counts.get(a.id, 0),
            float(duration_hours(a.starts_at, a.ends_at)),
        )
        for a in sessions
    ]
    people: dict[int, list] = {}
    stmt = (
        select(Staff, Activity.starts_at, Activity.ends_at)
        .join(Attendance, Attendance.staff_id == Staff.id)
        .join(Activity, Activity.id == Attendance.activity_id)
        .options(selectinload(Staff.village))
        .where(
            Activity.kind == ActivityKind.TRAINING.value,
            Activity.starts_at >= first,
            Activity.starts_at < after,
        )
    )
    for staff, starts_at, ends_at in db.session.execute(stmt):
        row = people.setdefault(staff.id, [staff, 0, Decimal("0")])
        row[1] += 1
        row[2] += duration_hours(starts_at, ends_at)
    person_rows = [
        (
            staff.name,
            StaffKind.label_of(staff.kind),
            staff.village.name if staff.village else "镇级",
            n,
            float(hours),
        )
        for staff, n, hours in sorted(people.values(), key=lambda r: (-r[2], r[0].id))
    ]
    period = f"{start:%Y-%m-%d} 至 {end:%Y-%m-%d}"
    return book_bytes(
        [
            Table(
                "培训场次",
                "业务培训场次",
                ("开始时间", "培训名称", "地点", "组织单位", "授课人员", "签到人次", "学时（小时）"),
                session_rows,
                widths=(17, 36, 20, 18, 18, 9, 10),
                subtitle=period,
                notes=(f"共{len(session_rows)}场，签到{sum(r[5] for r in session_rows)}人次。",),
            ),
            Table(
                "参训人员学时",
                "参训人员及学时",
                ("姓名", "人员类别", "村（社区）", "参训场次", "学时（小时）"),
                person_rows,
                widths=(12, 14, 14, 10, 12),
                subtitle=period,
                landscape=False,
            ),
        ],
        town=town,
    )


def publicity_book(start: dt.date, end: dt.date, *, town: str, now: dt.datetime) -> bytes:
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from choices import PublicityForm
    from models import PublicityEvent, db
    from services import indicators, publicity, reports

    events = list(
        db.session.scalars(
            select(PublicityEvent)
            .options(selectinload(PublicityEvent.village))
            .where(PublicityEvent.held_on >= start, PublicityEvent.held_on <= end)
            .order_by(PublicityEvent.held_on, PublicityEvent.id)
        )
    )
    event_rows = [
        (
            e.held_on,
            PublicityForm.label_of(e.form),
            e.title,
            e.place or "",
            e.village.name if e.village else "全镇",
            e.organiser or "",
            e.audience_count,
            e.materials or "",
        )
        for e in events
    ]
    keys = publicity.MECHANISM_KEYS
    frames = []
    for year in range(start.year, end.year + 1):
        for key, (name, _, _) in reports.PHASES.items():
            period = reports.phase_period(year, key)
            first, last = max(start, period.start), min(end, period.end)
            if first <= last:
                frames.append((f"{year}年{name}", first, last))
    frames.append(("本期合计", start, end))
    mechanism_rows = []
    for label, first, last in frames:
        values = indicators.compute_many(keys, indicators.Frame.of_period(first, last, None, now=now))
        mechanism_rows.append((label, f"{first:%Y-%m-%d}至{last:%Y-%m-%d}", *(values[k].value for k in keys)))
    names = [indicators.get(k) for k in keys]
    period = f"{start:%Y-%m-%d} 至 {end:%Y-%m-%d}"
    return book_bytes(
        [
            Table(
                "政策宣传台账",
                "政策宣传台账",
                ("日期", "形式", "主题", "地点", "村（社区）", "组织单位", "受众人数", "宣传资料"),
                event_rows,
                widths=(11, 10, 30, 18, 10, 18, 9, 30),
                subtitle=period,
                notes=(f"共{len(event_rows)}次，受众{sum(r[6] for r in event_rows)}人次。",),
            ),
            Table(
                "长效机制",
                "四项长效机制分阶段统计",
                ("阶段", "期间", *(f"{i.name}（{i.unit}）" for i in names)),
                mechanism_rows,
                widths=(18, 22, *([12] * len(keys))),
                subtitle=period,
                notes=tuple(f"{i.name}：{i.definition}" for i in names)
                + ("各阶段首尾月份相连，相连月份的记录计入两个阶段。",),
            ),
        ],
        town=town,
    )


def indicator_rows(start: dt.date, end: dt.date, now: dt.datetime):
    """Every declared indicator over the whole town for the period: its words and its value."""
    from services import indicators

    frame = indicators.Frame.of_period(start, end, None, now=now)
    for indicator in indicators.INDICATORS.values():
        value = indicators.compute(indicator, frame)
        shown = value.value if value.available else value.unavailable
        yield (
            indicator.name,
            indicator.basis_label,
            indicator.unit,
            indicator.definition,
            indicator.numerator_label or "",
            indicator.denominator_label or "",
            value.numerator if value.available else None,
            value.denominator if value.available and indicator.is_rate else None,
            shown if shown is not None else "—",
        )


def indicator_book(start: dt.date, end: dt.date, *, town: str, now: dt.datetime) -> bytes:
    from services import indicators

    rows = list(indicator_rows(start, end, now))
    frame = indicators.Frame.of_period(start, end, None, now=now)
    rate_rows = {i for i, ind in enumerate(indicators.INDICATORS.values()) if ind.is_rate}
    return book_bytes(
        [
            Table(
                "指标说明",
                "指标说明",
                ("指标", "类型", "单位", "定义（口径）", "分子", "分母", "分子数值", "分母数值", "本期数值"),
                rows,
                widths=(18, 6, 5, 60, 12, 12, 10, 10, 12),
                subtitle=f"全镇　{frame.describe()}　时点指标按 {frame.moment:%Y-%m-%d %H:%M} 统计",
                notes=(
                    "类型：时点指标按统计时点（期末或当前，取较早者）的状况统计；期间指标统计期间内发生的工作。",
                    "比率指标的本期数值为分子÷分母，以百分比显示；分母为0时显示“—”。",
                ),
                percent_cells={(r, 8) for r in rate_rows},
            )
        ],
        town=town,
    )
