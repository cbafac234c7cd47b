"""The process area's workbooks as printable documents: 领导小组名单, 督查与整改台账, 反馈意见汇总,
长效机制 counts. Each is a title, a header row and rows, laid out to print (see ``table_sheet``).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import xlsxwriter

from services.xlsx_export import MAX_CELL, display_width


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


def write_book(target, tables: Sequence[Table], *, town: str) -> None:
    book = xlsxwriter.Workbook(
        target, {"in_memory": True, "strings_to_numbers": False, "strings_to_formulas": False}
    )
    try:
        formats = _formats(book)
        for table in tables:
            table_sheet(book, formats, table, town=town)
    finally:
        book.close()


def book_bytes(tables: Sequence[Table], *, town: str) -> bytes:
    out = io.BytesIO()
    write_book(out, tables, town=town)
    return out.getvalue()


def _formats(book) -> dict:
    return {
        "title": book.add_format({"bold": True, "font_size": 16, "align": "center", "valign": "vcenter"}),
        "sub": book.add_format({"font_size": 10, "align": "center", "valign": "vcenter"}),
        "head": book.add_format(
            {
                "bold": True,
                "border": 1,
                "align": "center",
                "valign": "vcenter",
                "bg_color": "#EEEEEE",
                "text_wrap": True,
            }
        ),
        "cell": book.add_format({"border": 1, "valign": "top", "text_wrap": True}),
        "number": book.add_format({"border": 1, "valign": "top"}),
        "money": book.add_format({"border": 1, "valign": "top", "num_format": "#,##0.00"}),
        "percent": book.add_format({"border": 1, "valign": "top", "num_format": "0.0%"}),
        "date": book.add_format({"border": 1, "valign": "top", "num_format": "yyyy-mm-dd"}),
        "datetime": book.add_format({"border": 1, "valign": "top", "num_format": "yyyy-mm-dd hh:mm"}),
        "note": book.add_format({"font_size": 9, "text_wrap": True, "valign": "top"}),
    }


def table_sheet(book, formats, table: Table, *, town: str):
    ws = book.add_worksheet(table.name[:31])
    ncols = len(table.headers)
    widths = list(table.widths or [display_width(h) + 4 for h in table.headers])
    ws.merge_range(
        0, 0, 0, max(ncols - 1, 0), table.title, formats["title"]
    ) if ncols > 1 else ws.write_string(0, 0, table.title, formats["title"])
    ws.set_row(0, 30)
    sub = "　".join(p for p in (town, table.subtitle) if p)
    if ncols > 1:
        ws.merge_range(1, 0, 1, ncols - 1, sub, formats["sub"])
    else:
        ws.write_string(1, 0, sub, formats["sub"])
    for col, head in enumerate(table.headers):
        ws.write_string(2, col, head, formats["head"])
    row = 3
    for values in table.rows:
        for col, value in enumerate(values):
            fmt = formats["percent"] if col in table.percent_columns else None
            _write(ws, formats, row, col, value, fmt)
            if table.widths is None and value is not None and col < len(widths):
                widths[col] = min(max(widths[col], _width(value)), 50)
        row += 1
    for note in table.notes:
        row += 1
        ws.merge_range(
            row, 0, row, max(ncols - 1, 1), note, formats["note"]
        ) if ncols > 1 else ws.write_string(row, 0, note, formats["note"])
    for col, width in enumerate(widths):
        ws.set_column(col, col, width)
    ws.set_paper(9)
    if table.landscape:
        ws.set_landscape()
    else:
        ws.set_portrait()
    ws.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.7)
    ws.repeat_rows(2)
    ws.fit_to_pages(1, 0)
    ws.set_footer(f"&L{_footer_text(town)}&C第 &P 页，共 &N 页")
    ws.freeze_panes(3, 0)
    return ws


def _footer_text(town: str) -> str:
    return town.replace("&", "&&")


def _width(value) -> int:
    if isinstance(value, dt.datetime):
        return 17
    if isinstance(value, dt.date):
        return 12
    return display_width(str(value)[:50]) + 2


def _write(ws, formats, row, col, value, fmt=None):
    if value is None or value == "":
        ws.write_blank(row, col, None, formats["cell"])
    elif isinstance(value, bool):
        ws.write_string(row, col, "是" if value else "否", formats["cell"])
    elif isinstance(value, Decimal):
        ws.write_number(row, col, float(value), fmt or formats["money"])
    elif isinstance(value, int | float):
        ws.write_number(row, col, value, fmt or formats["number"])
    elif isinstance(value, dt.datetime):
        ws.write_datetime(row, col, value.replace(tzinfo=None), formats["datetime"])
    elif isinstance(value, dt.date):
        ws.write_datetime(row, col, dt.datetime(value.year, value.month, value.day), formats["date"])
    else:
        text = str(value)
        ws.write_string(row, col, text[:MAX_CELL], formats["cell"])


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
