"""The printable 签到表 of an activity (xlsx) and reading a filled-in one back.

The sheet lists the roll; people sign on paper (or a clerk types √ or the name in the 签名 column).
Reading matches each marked row to the roll by its hidden key, the ID number, or name + village,
and lists every row it cannot match with a Chinese reason. It writes nothing: the caller confirms.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

import xlsxwriter

from services import xlsx_input
from services.attendance import RollEntry, parse_keys
from services.xlsx_export import cell_text

HEADERS = ("序号", "姓名", "类别", "村（社区）", "关系/身份", "身份证后四位", "签到（√）", "签名", "编号")
MARKS = {"√", "✓", "✔", "v", "V", "1", "是", "到", "y", "Y", "yes", "已到", "已签", "○", "o", "x", "X", "×"}
_ID_FULL = re.compile(r"^\d{17}[\dX]$")
MAX_ROWS = 20_000  # a roll is a few thousand people at most; rows beyond are refused unread


def write_sheet(activity, entries: list[RollEntry], *, town_name: str = "", subtitle: str = "") -> bytes:
    """The xlsx bytes of the sign-in sheet: a title row, the header, one row per person."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    sheet = book.add_worksheet("签到表")
    title = book.add_format({"bold": True, "font_size": 16, "align": "center", "valign": "vcenter"})
    sub = book.add_format({"font_size": 10, "align": "center", "valign": "vcenter"})
    head = book.add_format(
        {"bold": True, "border": 1, "align": "center", "valign": "vcenter", "bg_color": "#EEEEEE"}
    )
    cell = book.add_format({"border": 1, "valign": "vcenter"})
    centre = book.add_format({"border": 1, "align": "center", "valign": "vcenter"})
    small = book.add_format({"border": 1, "font_color": "#999999", "font_size": 8, "valign": "vcenter"})
    widths = (6, 12, 9, 12, 24, 12, 9, 18, 9)
    for col, width in enumerate(widths):
        sheet.set_column(col, col, width)
    sheet.merge_range(0, 0, 0, len(HEADERS) - 1, f"{activity.title} 签到表", title)
    when = activity.starts_at.strftime("%Y年%m月%d日 %H:%M") if activity.starts_at else ""
    line = "　".join(p for p in (town_name, when, activity.place or "", subtitle) if p)
    sheet.merge_range(1, 0, 1, len(HEADERS) - 1, line, sub)
    sheet.set_row(0, 30)
    sheet.write_row(2, 0, HEADERS, head)
    for i, entry in enumerate(entries):
        row = 3 + i
        sheet.set_row(row, 24)
        sheet.write_number(row, 0, i + 1, centre)
        sheet.write_string(row, 1, entry.name, cell)
        sheet.write_string(row, 2, entry.kind_label, centre)
        sheet.write_string(row, 3, entry.village or "", cell)
        sheet.write_string(row, 4, entry.role or "", cell)
        sheet.write_string(row, 5, entry.id_last4 or "", centre)
        sheet.write_string(row, 6, "√" if entry.present else "", centre)
        sheet.write_blank(row, 7, None, cell)
        sheet.write_string(row, 8, entry.key, small)
    last = 3 + len(entries)
    sheet.write_string(
        last + 1, 0, "说明：到场请在“签到”栏打√或在“签名”栏签名；临时到场人员请写在表末空行（姓名、村社区）。"
    )
    for extra in range(10):
        row = last + 3 + extra
        for col in range(len(HEADERS) - 1):
            sheet.write_blank(row, col, None, cell)
    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.6)
    sheet.repeat_rows(2)
    sheet.fit_to_pages(1, 0)
    sheet.set_footer("&C第 &P 页，共 &N 页")
    sheet.freeze_panes(3, 0)
    book.close()
    return out.getvalue()


@dataclass
class SheetMatch:
    row: int
    entry: RollEntry
    how: str


@dataclass
class SheetReading:
    matched: list[SheetMatch] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    unmarked: int = 0
    # Marked rows naming someone not on the roll: (row, name, village) — candidates for walk-ins.
    strangers: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        return [m.entry.key for m in self.matched]


def _header_row(rows) -> tuple[int, dict[str, int]] | None:
    for index, row in enumerate(rows[:10]):
        cells = [cell_text(v) for v in row]
        if "姓名" in cells:
            columns = {}
            for col, name in enumerate(cells):
                for header in HEADERS:
                    if name and (name == header or name.startswith(header[:2])) and header not in columns:
                        columns[header] = col
                        break
                if "身份证" in name and "身份证号" not in columns and "身份证后四位" not in columns:
                    columns["身份证号"] = col
            return index, columns
    return None


def read_sheet(data: bytes, entries: list[RollEntry]) -> SheetReading:
    """Match the marked rows of a filled-in sheet to the roll; list what cannot be matched.
    A file that is not a plain, bounded .xlsx raises ``xlsx_input.UnsafeWorkbook`` (Chinese)."""
    reading = SheetReading()
    book = xlsx_input.open_workbook(data, data_only=True, max_rows=MAX_ROWS)  # UnsafeWorkbook if hostile
    try:
        rows = [
            tuple(r) for r in xlsx_input.bounded_rows(book.worksheets[0], max_rows=MAX_ROWS, values_only=True)
        ]
    finally:
        book.close()
    found = _header_row(rows)
    if found is None:
        reading.problems.append((0, "未找到表头：第1-10行中应有“姓名”列"))
        return reading
    header_index, columns = found
    by_key = {e.key: e for e in entries}
    by_id = {e.id_number.upper(): e for e in entries if e.id_number}
    by_name_village: dict[tuple[str, str], list[RollEntry]] = {}
    by_name: dict[str, list[RollEntry]] = {}
    for e in entries:
        by_name_village.setdefault((e.name, e.village), []).append(e)
        by_name.setdefault(e.name, []).append(e)
    villages = {e.village for e in entries}
    seen: dict[str, int] = {}

    def col(row, header):
        index = columns.get(header)
        return cell_text(row[index]) if index is not None and index < len(row) else ""

    for offset, row in enumerate(rows[header_index + 1 :]):
        number = header_index + 2 + offset  # as Excel numbers rows
        name = col(row, "姓名").replace(" ", "")
        if not name or name.startswith("说明"):
            continue
        mark = col(row, "签到（√）")
        signature = col(row, "签名")
        if not (mark in MARKS or signature):
            reading.unmarked += 1
            continue
        entry, how, problem = _match(row, col, name, by_key, by_id, by_name_village, by_name, villages)
        if entry is None:
            reading.problems.append((number, problem))
            village = col(row, "村（社区）").replace(" ", "")
            if "名单中没有" in problem and village:
                reading.strangers.append((number, name, village))
            continue
        if entry.key in seen:
            reading.problems.append((number, f"“{name}”与第{seen[entry.key]}行是同一人，已忽略重复行"))
            continue
        seen[entry.key] = number
        reading.matched.append(SheetMatch(number, entry, how))
    return reading


def _match(row, col, name, by_key, by_id, by_name_village, by_name, villages):
    key = next(iter(parse_keys([col(row, "编号")])), None)
    if key and key in by_key and by_key[key].name == name:
        return by_key[key], "编号", None
    id_value = (col(row, "身份证号") or col(row, "身份证后四位")).upper().replace(" ", "")
    if _ID_FULL.match(id_value):
        entry = by_id.get(id_value)
        if entry is None:
            return None, None, f"“{name}”：身份证号 {id_value[:4]}…{id_value[-4:]} 不在本活动名单中"
        if entry.name != name:
            return None, None, f"“{name}”：身份证号对应的是“{entry.name}”，姓名不一致，请核对"
        return entry, "身份证号", None
    village = col(row, "村（社区）").replace(" ", "")
    if village and village not in villages:
        return None, None, f"“{name}”：村（社区）“{village}”不在本活动名单范围内"
    candidates = by_name_village.get((name, village), []) if village else by_name.get(name, [])
    if id_value and len(candidates) > 1:
        candidates = [e for e in candidates if e.id_last4.upper() == id_value[-4:]]
    if len(candidates) == 1:
        return candidates[0], "姓名+村（社区）" if village else "姓名", None
    if not candidates:
        where = f"{village}的" if village else ""
        return None, None, f"“{name}”：名单中没有{where}这个人，请核对姓名或作为临时签到登记"
    return None, None, f"“{name}”：名单中有{len(candidates)}个同名的人，请填写村（社区）或身份证后四位以区分"
