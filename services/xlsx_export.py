"""Streamed xlsx writing for list exports: XlsxWriter in constant_memory mode, one row at a time.

Rows arrive from an iterator (a ``yield_per`` query), so memory stays flat however long the list.
Every text cell is written with ``write_string``: a value such as ``=HYPERLINK(...)`` or ``+86…``
stays text and can never run as a formula in the spreadsheet (formula injection).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal

import xlsxwriter

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MONEY_FORMAT = "¥#,##0.00"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
MAX_CELL = 32767  # Excel's limit on the characters of one cell
WIDTH_SAMPLE = 500  # rows looked at to size the columns
MAX_WIDTH = 60


def cell_writers(worksheet):
    """(write_string, write_number, write_datetime) taking (row, col, value, format).

    XlsxWriter's public methods also accept "A1" cell names, and that check costs about a tenth of
    the time of writing a cell; with hundreds of thousands of cells the row/column forms underneath
    are used (requirements pin XlsxWriter), falling back to the public ones if they ever go away."""
    names = ("_write_string", "_write_number", "_write_datetime")
    if all(hasattr(worksheet, name) for name in names):
        return tuple(getattr(worksheet, name) for name in names)
    return worksheet.write_string, worksheet.write_number, worksheet.write_datetime


def cell_text(value) -> str:
    """A cell read back with openpyxl, as the text a person typed: 2015.0 → "2015", None → ""."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def display_width(text: str) -> int:
    """Characters as a spreadsheet shows them: a Chinese character is two columns wide."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


class CellWriter:
    """Writes one Python value into a cell with the right type and format; text is always text."""

    def __init__(self, workbook, worksheet):
        self.ws = worksheet
        self.date = workbook.add_format({"num_format": DATE_FORMAT})
        self.datetime = workbook.add_format({"num_format": DATETIME_FORMAT})
        self.money = workbook.add_format({"num_format": MONEY_FORMAT})
        self.write_string, self.write_number, self.write_datetime = cell_writers(worksheet)
        self._by_type = {
            str: self._string,
            int: self.write_number,
            float: self.write_number,
            Decimal: self._money,
            bool: self._bool,
            dt.date: self._date,
            dt.datetime: self._datetime,
        }

    def write(self, row: int, col: int, value) -> None:
        if value is None:
            return
        writer = self._by_type.get(type(value))
        if writer is None:
            self._string(row, col, str(value))
        else:
            writer(row, col, value)

    def _string(self, row, col, value: str) -> None:
        if value:
            self.write_string(row, col, value if len(value) <= MAX_CELL else value[:MAX_CELL])

    def _money(self, row, col, value: Decimal) -> None:
        self.write_number(row, col, float(value), self.money)

    def _bool(self, row, col, value: bool) -> None:
        self.write_string(row, col, "是" if value else "否")

    def _date(self, row, col, value: dt.date) -> None:
        self.write_datetime(row, col, dt.datetime(value.year, value.month, value.day), self.date)

    def _datetime(self, row, col, value: dt.datetime) -> None:
        self.write_datetime(row, col, value.replace(tzinfo=None), self.datetime)


def write_list(
    target,
    sheet_name: str,
    headers: Sequence[str],
    rows: Iterable[Sequence],
    *,
    about: Sequence[tuple[str, str]] = (),
) -> int:
    """Write a list to ``target`` (a path or a binary file object): header row frozen with an
    autofilter, then one row per sequence of cell values from ``rows``, and an optional 导出说明
    sheet of (label, text) pairs. Returns the number of data rows written."""
    workbook = xlsxwriter.Workbook(
        target, {"constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False}
    )
    try:
        ws = workbook.add_worksheet(_sheet_name(sheet_name))
        header = workbook.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
        cells = CellWriter(workbook, ws)
        write, write_string = cells.write, cells.write_string
        widths = [display_width(h) + 2 for h in headers]
        for col, label in enumerate(headers):
            write_string(0, col, label, header)
        n = 0
        for values in rows:
            n += 1
            for col, value in enumerate(values):
                # Text is the common case: written here directly, always as text, never a formula.
                if type(value) is str:
                    if value:
                        write_string(n, col, value if len(value) <= MAX_CELL else value[:MAX_CELL], None)
                elif value is not None:
                    write(n, col, value)
            if n <= WIDTH_SAMPLE:
                _widen(widths, values)
        for col, width in enumerate(widths):
            ws.set_column(col, col, min(width, MAX_WIDTH))
        ws.freeze_panes(1, 0)
        if headers:
            ws.autofilter(0, 0, max(n, 1), len(headers) - 1)
        if about:
            _about_sheet(workbook, about)
    finally:
        workbook.close()
    return n


def _widen(widths: list[int], values: list) -> None:
    for col, value in enumerate(values):
        if value is None:
            continue
        if isinstance(value, dt.date):
            width = 12 if not isinstance(value, dt.datetime) else 17
        elif isinstance(value, Decimal):
            width = len(f"{value:,.2f}") + 3
        else:
            width = display_width(str(value)[:MAX_WIDTH]) + 2
        if width > widths[col]:
            widths[col] = width


def _about_sheet(workbook, about) -> None:
    ws = workbook.add_worksheet("导出说明")
    bold = workbook.add_format({"bold": True})
    ws.set_column(0, 0, 14)
    ws.set_column(1, 1, 80)
    for row, (label, text) in enumerate(about):
        ws.write_string(row, 0, label, bold)
        ws.write_string(row, 1, str(text))


def _sheet_name(name: str) -> str:
    for ch in "[]:*?/\\":
        name = name.replace(ch, "_")
    return (name or "Sheet1")[:31]


__all__ = ["XLSX_MIMETYPE", "CellWriter", "cell_writers", "display_width", "write_list"]
