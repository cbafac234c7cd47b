"""The one xlsx factory: every workbook the app writes is made here (list exports, the 资金使用台账,
签到表, the import template, the monthly and phase reports, and whatever comes next).

What it guarantees, in one place:

- Text is never a formula. XlsxWriter is opened with ``strings_to_formulas``, ``strings_to_numbers``
  and ``strings_to_urls`` off, and a ``Sheet`` writes every string with ``write_string`` — titles,
  village names, headers built from user text and merged cells included. ``=HYPERLINK(...)``,
  ``=cmd|' /C calc'!A0``, ``+1`` or ``@SUM(1)`` typed by someone stays text in every sheet. The only
  formulas are the ones our code builds (``Sheet.formula``) from cell references.
- Data validations take their choices from a range of text cells, never an inline list, so a
  village name with a comma or a quote stays one choice and never becomes part of a formula.
- ID numbers are masked (``5001**********1234``) unless the workbook was opened with
  ``reveal_ids`` — which the caller may only do when the user asked for them and gave a purpose.
- Print setup is applied by ``apply_print_setup`` (orientation, paper, fit to width, repeated
  header rows, footer with page numbers and town). A sheet given no setup prints by
  ``default_print_setup``: A4, one page wide, landscape when its columns are wide, the header row
  its writer named (``Sheet.print_header``) repeated, and 第 x 页，共 y 页 with the town.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import xlsxwriter
from xlsxwriter.utility import xl_col_to_name

from services.validation import mask_id_number

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MONEY_FORMAT = "¥#,##0.00"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
MAX_CELL = 32767  # Excel's limit on the characters of one cell
OPTIONS_SHEET = "选项"

OPTIONS = {"strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False}


@dataclass(frozen=True)
class PrintSetup:
    """How a sheet prints. ``footer_town`` puts the town and page numbers in the footer."""

    landscape: bool = False
    paper: int = 9  # A4
    fit_to_width: bool = False
    repeat_rows: tuple[int, int] | None = None
    footer_town: str | None = None
    page_numbers: bool = False
    margins: dict = field(default_factory=dict)


def apply_print_setup(worksheet, setup: PrintSetup | None) -> None:
    """The print setup of one sheet: every workbook's printing goes through here."""
    if setup is None:
        return
    if setup.landscape:
        worksheet.set_landscape()
    worksheet.set_paper(setup.paper)
    if setup.margins:
        worksheet.set_margins(**setup.margins)
    if setup.repeat_rows is not None:
        worksheet.repeat_rows(*setup.repeat_rows)
    if setup.fit_to_width:
        worksheet.fit_to_pages(1, 0)
    parts = []
    if setup.footer_town:
        parts.append(_header_text(setup.footer_town))
    if setup.page_numbers:
        parts.append("第 &P 页，共 &N 页")
    if parts:
        worksheet.set_footer("&C" + "　".join(parts))


LANDSCAPE_WIDTH = 100  # characters of column width beyond which a sheet prints landscape
DEFAULT_WIDTH = 8.43  # a column nobody sized


def default_print_setup(sheet: Sheet, town: str | None) -> PrintSetup:
    """How a sheet prints when its writer gave no setup: every sheet prints as a document."""
    return PrintSetup(
        landscape=sheet.width() > LANDSCAPE_WIDTH,
        fit_to_width=True,
        repeat_rows=sheet.header_rows,
        footer_town=town,
        page_numbers=True,
        margins={"left": 0.4, "right": 0.4, "top": 0.6, "bottom": 0.7},
    )


def _header_text(text: str) -> str:
    """Text for a header or footer: ``&`` starts a control code there, so it is doubled."""
    return text.replace("&", "&&")[:200]


def shown_id(value: str | None, reveal: bool) -> str:
    """An ID number as a workbook shows it: masked unless the export asked for full numbers."""
    if not value:
        return ""
    return value if reveal else mask_id_number(value)


def display_width(text: str) -> int:
    """Characters as a spreadsheet shows them: a Chinese character is two columns wide."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def cell_text(value) -> str:
    """A cell read back with openpyxl, as the text a person typed: 2015.0 → "2015", None → ""."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def sheet_name(name: str) -> str:
    for ch in "[]:*?/\\":
        name = name.replace(ch, "_")
    name = name.strip("'") or "Sheet1"
    return name[:31]


class Book:
    """A workbook being written. ``target``: a path or binary file; None writes to memory and
    ``close()`` returns the bytes. ``constant_memory``: rows must be written in order (streaming)."""

    def __init__(
        self,
        target=None,
        *,
        constant_memory: bool = False,
        reveal_ids: bool = False,
        print_setup: PrintSetup | None = None,
        town: str | None = None,
    ):
        self._buffer = io.BytesIO() if target is None else None
        options = dict(OPTIONS, constant_memory=constant_memory)
        if target is None:
            options["in_memory"] = True
        self.workbook = xlsxwriter.Workbook(self._buffer if target is None else target, options)
        self.reveal_ids = reveal_ids
        self.print_setup = print_setup
        self.town = town or None
        self._formats: dict = {}
        self._sheets: list[Sheet] = []
        self._options: Sheet | None = None
        self._closed = False

    # --- sheets and formats ----------------------------------------------------------

    def sheet(self, name: str, *, print_setup: PrintSetup | None = None) -> Sheet:
        sheet = Sheet(self, self.workbook.add_worksheet(sheet_name(name)), print_setup or self.print_setup)
        self._sheets.append(sheet)
        return sheet

    def format(self, **props):
        """A cell format (one per distinct set of properties)."""
        key = tuple(sorted(props.items()))
        if key not in self._formats:
            self._formats[key] = self.workbook.add_format(props)
        return self._formats[key]

    @property
    def money(self):
        return self.format(num_format=MONEY_FORMAT)

    @property
    def date(self):
        return self.format(num_format=DATE_FORMAT)

    @property
    def datetime(self):
        return self.format(num_format=DATETIME_FORMAT)

    def id_text(self, value: str | None) -> str:
        return shown_id(value, self.reveal_ids)

    def choices(self, name: str, values: Sequence[str]) -> str:
        """The range of a hidden 选项 sheet holding ``values`` as text: the source of a dropdown."""
        if self._options is None:
            self._options = self.sheet(OPTIONS_SHEET)
            self._options.worksheet.hide()
            self._option_columns: list[str] = []
        col = len(self._option_columns)
        self._option_columns.append(name)
        self._options.text(0, col, name)
        for row, value in enumerate(values, start=1):
            self._options.text(row, col, value)
        letter = xl_col_to_name(col)
        return f"='{OPTIONS_SHEET}'!${letter}$2:${letter}${max(len(values), 1) + 1}"

    # --- closing -------------------------------------------------------------------

    def close(self) -> bytes | None:
        if self._closed:
            return None
        self._closed = True
        for sheet in self._sheets:
            apply_print_setup(sheet.worksheet, sheet.print_setup or default_print_setup(sheet, self.town))
        self.workbook.close()
        return self._buffer.getvalue() if self._buffer is not None else None

    def __enter__(self) -> Book:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Sheet:
    """One worksheet. Values go in through ``text``/``number``/``date``/``value``/``row``/``title``
    (every string with write_string); layout calls (``set_column``, ``freeze_panes``, …) pass
    through to XlsxWriter's worksheet. Its generic ``write``/``write_row``/``merge_range`` are not
    offered: they would decide by the value whether text becomes a formula."""

    LAYOUT = frozenset(
        {
            "set_row",
            "freeze_panes",
            "autofilter",
            "activate",
            "hide",
            "set_default_row",
            "write_blank",
            "set_landscape",
            "set_portrait",
            "set_paper",
            "set_margins",
            "repeat_rows",
            "fit_to_pages",
            "set_footer",
            "set_header",
            "hide_gridlines",
            "set_first_sheet",
            "select",
        }
    )

    def __init__(self, book: Book, worksheet, print_setup: PrintSetup | None):
        self.book = book
        self.worksheet = worksheet
        self.print_setup = print_setup
        self.header_rows: tuple[int, int] | None = None
        self._widths: dict[int, float] = {}
        (self._write_string, self._write_number, self._write_datetime) = _cell_writers(worksheet)

    def __getattr__(self, name):
        if name in self.LAYOUT:
            return getattr(self.worksheet, name)
        raise AttributeError(f"Sheet.{name}: write values with text/number/date/value/row/title")

    # --- layout --------------------------------------------------------------------

    def set_column(self, first_col: int, last_col: int, width=None, *args, **kwargs):
        for col in range(first_col, last_col + 1):
            self._widths[col] = DEFAULT_WIDTH if width is None else width
        return self.worksheet.set_column(first_col, last_col, width, *args, **kwargs)

    def print_header(self, first_row: int, last_row: int | None = None) -> None:
        """The header rows repeated on every printed page (when the sheet has no explicit setup)."""
        self.header_rows = (first_row, first_row if last_row is None else last_row)

    def width(self) -> float:
        """The sheet's printed width in characters: its sized columns and the others by default."""
        last = self.worksheet.dim_colmax
        if last is None:
            return 0
        return sum(self._widths.get(col, DEFAULT_WIDTH) for col in range(last + 1))

    # --- values --------------------------------------------------------------------

    def text(self, row: int, col: int, value, fmt=None) -> None:
        """Text, always as text (never a formula, number or link)."""
        if value is None:
            if fmt is not None:
                self.worksheet.write_blank(row, col, None, fmt)
            return
        text = value if type(value) is str else str(value)
        if not text:
            if fmt is not None:
                self.worksheet.write_blank(row, col, None, fmt)
            return
        self._write_string(row, col, text if len(text) <= MAX_CELL else text[:MAX_CELL], fmt)

    def number(self, row: int, col: int, value, fmt=None) -> None:
        if value is None:
            return
        self._write_number(row, col, float(value) if isinstance(value, Decimal) else value, fmt)

    def date(self, row: int, col: int, value, fmt=None) -> None:
        if value is None:
            return
        if isinstance(value, dt.datetime):
            self._write_datetime(row, col, value.replace(tzinfo=None), fmt or self.book.datetime)
        else:
            self._write_datetime(
                row, col, dt.datetime(value.year, value.month, value.day), fmt or self.book.date
            )

    def value(self, row: int, col: int, value, fmt=None) -> None:
        """Any cell value by its type: text as text, numbers, Decimal money, dates, yes/no."""
        if value is None:
            if fmt is not None:
                self.worksheet.write_blank(row, col, None, fmt)
        elif type(value) is str:
            self.text(row, col, value, fmt)
        elif isinstance(value, bool):
            self.text(row, col, "是" if value else "否", fmt)
        elif isinstance(value, Decimal):
            self.number(row, col, value, fmt or self.book.money)
        elif isinstance(value, int | float):
            self.number(row, col, value, fmt)
        elif isinstance(value, dt.date):
            self.date(row, col, value, fmt)
        else:
            self.text(row, col, str(value), fmt)

    def row(self, row: int, col: int, values: Iterable, fmt=None) -> None:
        for offset, value in enumerate(values):
            self.value(row, col + offset, value, fmt)

    def title(self, first_row: int, first_col: int, last_row: int, last_col: int, text, fmt=None) -> None:
        """Text across merged cells (a sheet's title): merged blank, then the text as text."""
        if (first_row, first_col) != (last_row, last_col):
            self.worksheet.merge_range(first_row, first_col, last_row, last_col, "", fmt)
        self.text(first_row, first_col, text, fmt)

    def formula(self, row: int, col: int, formula: str, fmt=None, cached=0) -> None:
        """A formula our code built from cell references and fixed labels — never from user text."""
        if not formula.startswith("="):
            raise ValueError("a formula starts with =")
        self.worksheet.write_formula(row, col, formula, fmt, cached)

    def comment(self, row: int, col: int, text: str) -> None:
        self.worksheet.write_comment(row, col, str(text))

    def dropdown(self, first_row, first_col, last_row, last_col, source: str, *, title: str, message: str):
        """A list validation whose choices are the text cells of ``source`` (``Book.choices``)."""
        self.worksheet.data_validation(
            first_row,
            first_col,
            last_row,
            last_col,
            {"validate": "list", "source": source, "error_title": title[:32], "error_message": message[:255]},
        )

    def fast_writers(self):
        """(write_string, write_number, write_datetime) taking (row, col, value, format), for the
        hot loop of a long sheet; strings still go through write_string."""
        return self._write_string, self._write_number, self._write_datetime


def _cell_writers(worksheet):
    """XlsxWriter's row/column writers under its public ones: the public ones also parse "A1"
    cell names, about a tenth of the time of writing a cell (requirements pin XlsxWriter); the
    public ones are used if the private ones ever go away."""
    names = ("_write_string", "_write_number", "_write_datetime")
    if all(hasattr(worksheet, name) for name in names):
        return tuple(getattr(worksheet, name) for name in names)
    return worksheet.write_string, worksheet.write_number, worksheet.write_datetime


__all__ = [
    "DATETIME_FORMAT",
    "DATE_FORMAT",
    "MONEY_FORMAT",
    "XLSX_MIMETYPE",
    "Book",
    "PrintSetup",
    "Sheet",
    "apply_print_setup",
    "cell_text",
    "display_width",
    "shown_id",
]
