"""Streamed xlsx writing for list exports, on the workbook factory (services/workbook.py) in its
constant-memory mode: rows arrive from an iterator (a ``yield_per`` query) and are written one at a
time, so memory stays flat however long the list. Every text cell is written with ``write_string``:
a value such as ``=HYPERLINK(...)`` or ``+86…`` stays text and never runs as a formula.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal

from services.workbook import MAX_CELL, XLSX_MIMETYPE, Book, cell_text, display_width

WIDTH_SAMPLE = 500  # rows looked at to size the columns
MAX_WIDTH = 60


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
    book = Book(target, constant_memory=True)
    try:
        sheet = book.sheet(sheet_name)
        sheet.print_header(0)
        header = book.format(bold=True, bg_color="#DDEBF7", border=1)
        write_string = sheet.fast_writers()[0]
        value = sheet.value
        widths = [display_width(h) + 2 for h in headers]
        for col, label in enumerate(headers):
            sheet.text(0, col, label, header)
        n = 0
        for values in rows:
            n += 1
            for col, cell in enumerate(values):
                # Text is the common case: written here directly, always as text, never a formula.
                if type(cell) is str:
                    if cell:
                        write_string(n, col, cell if len(cell) <= MAX_CELL else cell[:MAX_CELL], None)
                elif cell is not None:
                    value(n, col, cell)
            if n <= WIDTH_SAMPLE:
                _widen(widths, values)
        for col, width in enumerate(widths):
            sheet.set_column(col, col, min(width, MAX_WIDTH))
        sheet.freeze_panes(1, 0)
        if headers:
            sheet.autofilter(0, 0, max(n, 1), len(headers) - 1)
        if about:
            _about_sheet(book, about)
    finally:
        book.close()
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


def _about_sheet(book: Book, about) -> None:
    sheet = book.sheet("导出说明")
    bold = book.format(bold=True)
    sheet.set_column(0, 0, 14)
    sheet.set_column(1, 1, 80)
    for row, (label, text) in enumerate(about):
        sheet.text(row, 0, label, bold)
        sheet.text(row, 1, str(text))


__all__ = ["XLSX_MIMETYPE", "cell_text", "display_width", "write_list"]
