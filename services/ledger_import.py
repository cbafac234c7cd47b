"""台账导入: the xlsx template, the dry run with per-row Chinese problems, and the all-or-nothing import.

A ledger is refused whole (``LedgerRejected``) when it is not an xlsx, is too big, has wrong
headers, merged cells or formulas. Otherwise ``check_ledger`` lists every problem by row and
column; ``import_ledger`` writes nothing unless there are none, and then writes everything in the
caller's one transaction (the caller commits, or rolls back on any exception).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import from_excel
from sqlalchemy import bindparam, delete, func, insert, select, update

from choices import ChildStatus, Gender, GuardianStatus, IdentificationSource, Relation
from models import (
    Category,
    Child,
    ChildGuardian,
    Guardian,
    Village,
    child_category,
    db,
    given_name,
    pinyin_keys,
)
from services import audit, clock, file_numbers, filing, follow_child, visits, xlsx_input
from services.register import check_registered_on
from services.validation import (
    InvalidInput,
    birth_date_of,
    check_birth_date,
    check_gender,
    clean_id_number,
    clean_name,
    clean_phone,
    gender_of,
    normalize_identifier,
)
from services.workbook import Book, cell_text

MAX_BYTES = xlsx_input.MAX_BYTES
MAX_ROWS = 20_000
DATA_SHEET = "儿童名单"
HELP_SHEET = "填写说明"
OPTIONS_SHEET = "选项"
SKIP = "skip"
UPDATE = "update"
# Blank rows this many in a row end the data (Excel keeps formatting far below the last row).
_BLANK_RUN_END = 500
_CHUNK = 900


@dataclass(frozen=True)
class LedgerColumn:
    key: str
    header: str
    required: bool = False
    width: int = 12
    note: str = ""


GUARDIAN_FIELDS = ("name", "relation", "id_number", "phone", "status")

COLUMNS = [
    LedgerColumn("name", "姓名", True, 10, "儿童姓名，最多50个字"),
    LedgerColumn("id_number", "身份证号", True, 22, "18位，末位可为X；请保持文本格式，勿让 Excel 转为数字"),
    LedgerColumn("gender", "性别", False, 6, "男/女；可不填，按身份证号自动填写"),
    LedgerColumn("birth_date", "出生日期", False, 12, "如 2015-03-04；可不填，须与身份证号一致"),
    LedgerColumn("village", "村（社区）", True, 12, "从下拉列表选择"),
    LedgerColumn("address", "住址", False, 24),
    LedgerColumn("school", "学校", False, 18),
    LedgerColumn("grade", "年级", False, 8),
    LedgerColumn("category1", "困境类别", True, 16, "从下拉列表选择"),
    LedgerColumn("category2", "困境类别2", False, 16, "同时属于第二个类别时填写"),
    LedgerColumn("disability_kind", "残疾类别", False, 10, "残疾儿童填写，如 视力、肢体"),
    LedgerColumn("disability_grade", "残疾等级", False, 8, "如 一级"),
    LedgerColumn("source", "发现来源", False, 12, "从下拉列表选择"),
    LedgerColumn(
        "registered_on",
        "登记日期",
        False,
        12,
        "纳入名册（建档）的日期，如 2026-01-15；可不填，新登记的按导入当天",
    ),
    LedgerColumn("g1_name", "监护人姓名", False, 10, "主要监护人"),
    LedgerColumn("g1_relation", "监护人关系", False, 10, "从下拉列表选择；填写监护人时必填"),
    LedgerColumn("g1_id_number", "监护人身份证号", False, 22, "可不填；填写时须有效"),
    LedgerColumn("g1_phone", "监护人电话", False, 14, "手机11位或座机如 023-72345678"),
    LedgerColumn("g1_status", "监护状态", False, 10, "从下拉列表选择；不填为“正常”"),
    LedgerColumn("g2_name", "监护人2姓名", False, 10, "第二监护人，可不填"),
    LedgerColumn("g2_relation", "监护人2关系", False, 10),
    LedgerColumn("g2_id_number", "监护人2身份证号", False, 22),
    LedgerColumn("g2_phone", "监护人2电话", False, 14),
    LedgerColumn("g2_status", "监护人2监护状态", False, 10),
    LedgerColumn("notes", "备注", False, 24),
]
_BY_HEADER = {c.header: c for c in COLUMNS}
_BY_KEY = {c.key: c for c in COLUMNS}


class LedgerRejected(Exception):
    """The whole file is refused; the message is Chinese and shown as it is."""


@dataclass
class Problem:
    row: int
    column: str
    message: str
    letter: str = ""  # the spreadsheet column (B, C …) where the cell is


@dataclass
class GuardianPlan:
    key: str
    name: str
    relation: str
    id_number: str | None
    phone: str | None
    status: str


@dataclass
class ChildPlan:
    row: int
    values: dict
    categories: list[int]
    guardians: list[GuardianPlan]
    existing_id: int | None = None


@dataclass
class CheckResult:
    rows: list[ChildPlan] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    notices: list[Problem] = field(default_factory=list)
    total_rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def new_count(self) -> int:
        return sum(1 for r in self.rows if r.existing_id is None)

    @property
    def existing_count(self) -> int:
        return sum(1 for r in self.rows if r.existing_id is not None)


@dataclass
class ImportSummary:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    guardians_created: int = 0


# --------------------------------------------------------------------------- template


def build_template(village_names: list[str], category_names: list[str]) -> bytes:
    """The xlsx template: the data sheet with dropdowns, an instructions sheet, a hidden options sheet."""
    book = Book()
    head = book.format(bold=True, bg_color="#DDEBF7", border=1, text_wrap=True)
    head_required = book.format(bold=True, bg_color="#FCE4D6", border=1, text_wrap=True, font_color="#C00000")
    text = book.format(num_format="@")
    date = book.format(num_format="yyyy-mm-dd")

    sheet = book.sheet(DATA_SHEET)
    lists = {
        "gender": [g.label for g in Gender],
        "village": village_names or ["（请先在系统中添加村社区）"],
        "category": category_names,
        "relation": [r.label for r in Relation],
        "status": [s.label for s in GuardianStatus],
        "source": [s.label for s in IdentificationSource],
    }
    # The hidden sheet's header row is read by whoever opens it: the lists' Chinese names.
    titles = {
        "gender": "性别",
        "village": "村（社区）",
        "category": "困境类别",
        "relation": "与儿童关系",
        "status": "监护状态",
        "source": "发现来源",
    }
    ranges = {name: book.choices(titles[name], values) for name, values in lists.items()}

    last = MAX_ROWS
    for col, column in enumerate(COLUMNS):
        label = column.header + ("*" if column.required else "")
        sheet.text(0, col, label, head_required if column.required else head)
        fmt = date if column.key == "birth_date" else text
        sheet.set_column(col, col, column.width, fmt)
        if column.note:
            sheet.comment(0, col, column.note)
        source = {
            "gender": "gender",
            "village": "village",
            "category1": "category",
            "category2": "category",
            "source": "source",
            "g1_relation": "relation",
            "g2_relation": "relation",
            "g1_status": "status",
            "g2_status": "status",
        }.get(column.key)
        if source:
            sheet.dropdown(
                1,
                col,
                last,
                col,
                ranges[source],
                title="请从下拉列表选择",
                message=f"“{column.header}”请从下拉列表中选择。",
            )
    sheet.freeze_panes(1, 2)
    sheet.set_row(0, 30)

    guide = book.sheet(HELP_SHEET)
    bold = book.format(bold=True)
    wrap = book.format(text_wrap=True, valign="top")
    guide.set_column(0, 0, 18)
    guide.set_column(1, 1, 8)
    guide.set_column(2, 2, 70)
    lines = [
        "1. 在“儿童名单”工作表中每行填写一名儿童，第一行表头请勿修改、删除或调换名称。",
        "2. 带 * 的列为必填；村（社区）、困境类别、关系、监护状态等请从下拉列表选择。",
        "3. 身份证号请以文本格式填写（模板已设置），勿让 Excel 显示为 5.00102E+17 之类的数字。",
        "4. 出生日期、性别可不填，系统按身份证号自动填写；填写时须与身份证号一致。登记日期（纳入名册的日期）"
        "可不填，新登记的儿童按导入当天计；补录旧台账时请填写实际登记日期。",
        "5. 每名儿童最多填写两名监护人；兄弟姐妹可填写同一监护人（同一身份证号只登记一次）。",
        "6. 请勿合并单元格、勿使用公式；单个文件不超过 10 MB、不超过 20000 行。",
        "7. 上传后系统先“试导入”检查，逐行列出问题；全部无误后才会导入，导入要么全部成功、要么一条都不写入。",
        "8. 已登记的儿童（身份证号相同）可选择“跳过”或“用表中信息更新”。",
    ]
    guide.text(0, 0, "台账导入填写说明", bold)
    for i, line in enumerate(lines, start=1):
        guide.title(i, 0, i, 2, line, wrap)
    start = len(lines) + 2
    guide.row(start, 0, ["列名", "必填", "说明"], bold)
    for i, column in enumerate(COLUMNS, start=start + 1):
        guide.row(i, 0, [column.header, "是" if column.required else "", column.note], wrap)
    sheet.activate()
    return book.close()


# --------------------------------------------------------------------------- reading


# Header words of the clerks' own ledgers, read as the template's; a serial-number column is skipped.
HEADER_ALIASES = {
    "身份证号码": "身份证号",
    "公民身份号码": "身份证号",
    "村社区": "村（社区）",
    "所在村": "村（社区）",
    "所在村（社区）": "村（社区）",
    "村（居）": "村（社区）",
    "家庭住址": "住址",
    "就读学校": "学校",
    "儿童类别": "困境类别",
    "监护人身份证号码": "监护人身份证号",
    "监护人联系电话": "监护人电话",
    "联系电话": "监护人电话",
    "与儿童关系": "监护人关系",
    "建档日期": "登记日期",
    "登记时间": "登记日期",
}
IGNORED_HEADERS = {"序号", "编号"}


def _normalise_header(value) -> str:
    text = re.sub(r"[\s*＊]", "", str(value or "")).replace("(", "（").replace(")", "）")
    return HEADER_ALIASES.get(text, text)


def _merged_ranges(path: Path, sheet_name: str) -> list[str]:
    """Merged ranges of one sheet, read from the xlsx XML (openpyxl's read-only mode does not expose them)."""
    ns = {
        "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
        "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
        "rel": "http://schemas.openxmlformats.org/package/2006/relationships",
    }
    with zipfile.ZipFile(path) as archive:
        book = ElementTree.fromstring(archive.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
        targets = {r.get("Id"): r.get("Target") for r in rels.findall("rel:Relationship", ns)}
        rel_id = None
        for sheet in book.findall("m:sheets/m:sheet", ns):
            if sheet.get("name") == sheet_name:
                rel_id = sheet.get(f"{{{ns['r']}}}id")
        target = targets.get(rel_id)
        if not target:
            return []
        target = target.lstrip("/")
        member = target if target.startswith("xl/") else f"xl/{target}"
        data = archive.read(member)
    if b"mergeCell" not in data:
        return []
    return [m.decode() for m in re.findall(rb'<(?:\w+:)?mergeCell ref="([A-Z]+\d+(?::[A-Z]+\d+)?)"', data)]


def read_ledger(path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    """The keys of the columns present and the non-empty data rows as (Excel row number, {key: value})."""
    path = Path(path)
    try:
        book = xlsx_input.open_workbook(path, data_only=False, max_rows=MAX_ROWS)  # refuses hostile files
    except xlsx_input.UnsafeWorkbook as unsafe:
        raise LedgerRejected(str(unsafe)) from None
    try:
        sheet_name = DATA_SHEET if DATA_SHEET in book.sheetnames else book.sheetnames[0]
        sheet = book[sheet_name]
        # Rows as Excel numbers them, blank ones included: room for the data, the header and gaps.
        rows = xlsx_input.bounded_rows(sheet, max_rows=2 * MAX_ROWS + _BLANK_RUN_END)
        header_cells = next(rows, None)
        if not header_cells:
            raise LedgerRejected(f"工作表“{sheet_name}”是空的，没有表头。请使用导入模板。")
        keys = _header_keys(header_cells)
        merged = _merged_ranges(path, sheet_name)
        if merged:
            shown = "、".join(merged[:5]) + ("等" if len(merged) > 5 else "")
            raise LedgerRejected(f"表中有合并单元格（{shown}），请取消合并、每行填写完整后再上传。")
        data = []
        blank_run = 0
        for cells in rows:
            values = {}
            row_number = None
            for index, cell in enumerate(cells):
                if row_number is None and getattr(cell, "row", None):
                    row_number = cell.row
                key = keys[index] if index < len(keys) else None
                value = cell.value
                if value is None or (isinstance(value, str) and not value.strip()):
                    continue
                if cell.data_type == "f" or (isinstance(value, str) and value.startswith("=")):
                    raise LedgerRejected(
                        f"第{cell.row}行“{_header_of(key)}”列含有公式，请将公式转为数值（复制后“选择性粘贴 → 数值”）后再上传。"
                    )
                if key is None:
                    continue
                values[key] = value
            if not values:
                blank_run += 1
                if blank_run >= _BLANK_RUN_END:
                    break
                continue
            blank_run = 0
            data.append((row_number, values))
            if len(data) > MAX_ROWS:
                raise LedgerRejected(f"数据超过 {MAX_ROWS} 行，请拆分为多个文件分批导入。")
    except xlsx_input.UnsafeWorkbook as unsafe:
        raise LedgerRejected(str(unsafe)) from None
    finally:
        book.close()
    return keys, data


def _header_of(key) -> str:
    return _BY_KEY[key].header if key in _BY_KEY else "（无表头）"


def _header_keys(cells) -> list[str | None]:
    headers = [_normalise_header(c.value) for c in cells]
    while headers and not headers[-1]:
        headers.pop()
    keys, unknown, seen = [], [], set()
    for header in headers:
        column = _BY_HEADER.get(header)
        if column is None:
            if header and header not in IGNORED_HEADERS:
                unknown.append(header)
            keys.append(None)
            continue
        if column.key in seen:
            raise LedgerRejected(f"表头“{header}”出现了两次，请使用导入模板。")
        seen.add(column.key)
        keys.append(column.key)
    missing = [c.header for c in COLUMNS if c.required and c.key not in seen]
    if missing or unknown:
        parts = []
        if missing:
            parts.append("缺少必需的列：" + "、".join(missing))
        if unknown:
            parts.append("无法识别的列：" + "、".join(unknown))
        raise LedgerRejected(
            "表头与导入模板不一致（" + "；".join(parts) + "）。请下载最新模板，把数据粘贴进去后再上传。"
        )
    return keys


# --------------------------------------------------------------------------- checking


_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日")


def _date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, (int, float)) and 1 <= value < 100_000:
        return from_excel(value).date()  # a date cell whose format was lost: Excel's day number
    raw = _narrow(cell_text(value)).replace(" 00:00:00", "")
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(raw, fmt).date()
        except ValueError:
            continue
    raise InvalidInput(f"日期“{raw}”格式不正确，应如 2015-03-04")


def _id_text(value) -> str:
    if isinstance(value, (int, float)):
        raise InvalidInput("身份证号被 Excel 存成了数字（末几位可能已丢失），请把该列设为文本格式后重新填写")
    return normalize_identifier(cell_text(value))


def _narrow(text: str) -> str:
    """Full-width digits, letters and spaces (typed with a Chinese input method) as plain ones."""
    return unicodedata.normalize("NFKC", text)


# Words ledgers use for the template's choices.
ALIASES = {
    "男性": "男",
    "女性": "女",
    "父亲": "父",
    "爸爸": "父",
    "母亲": "母",
    "妈妈": "母",
    "祖父": "祖父母",
    "祖母": "祖父母",
    "爷爷": "祖父母",
    "奶奶": "祖父母",
    "外祖父": "外祖父母",
    "外祖母": "外祖父母",
    "外公": "外祖父母",
    "外婆": "外祖父母",
    "外出打工": "外出务工",
    "务工": "外出务工",
}


def _choice(enum, text: str):
    return enum.from_label(ALIASES.get(text, text))


def _unique_match(name: str, names) -> str | None:
    """A name typed short (云岭 for 云岭村, 低保 for 低保儿童): the one name containing it, if only one does."""
    if not name:
        return None
    found = [n for n in names if name in n]
    return found[0] if len(found) == 1 else None


_SPLIT = re.compile(r"[、,，;；/]+")


def clean_adult_id_number(value: str) -> str:
    """A guardian's ID number: the same check as a child's (validation accepts any known county code)."""
    return clean_id_number(value)


def check_ledger(path: Path, village_ids, today: dt.date | None = None) -> CheckResult:
    """The dry run: every problem of every row, nothing written. Raises LedgerRejected for a bad file."""
    today = today or clock.today()
    keys, data = read_ledger(path)
    result = CheckResult(total_rows=len(data))
    letters = {key: get_column_letter(i + 1) for i, key in enumerate(keys) if key}
    villages = {v.name: v for v in db.session.scalars(select(Village))}
    allowed_villages = None if village_ids is None else set(village_ids)
    categories = {c.name: c.id for c in db.session.scalars(select(Category))}
    seen_ids: dict[str, int] = {}
    guardian_names: dict[str, tuple[str, int]] = {}
    plans: list[ChildPlan] = []

    for row, raw in data:
        problems: list[Problem] = []

        def bad(key, message, row=row, problems=problems):
            problems.append(Problem(row, _header_of(key), message, letters.get(key, "")))

        values: dict = {}
        for column in COLUMNS:
            if column.required and not cell_text(raw.get(column.key)):
                bad(column.key, "必填项为空")
        try:
            if cell_text(raw.get("name")):
                values["name"] = clean_name(cell_text(raw.get("name")))
        except InvalidInput as error:
            bad("name", str(error))
        id_number = None
        if cell_text(raw.get("id_number")):
            try:
                id_number = clean_id_number(_id_text(raw.get("id_number")))
            except InvalidInput as error:
                bad("id_number", str(error))
        if id_number:
            values["id_number"] = id_number
            if id_number in seen_ids:
                bad("id_number", f"与第{seen_ids[id_number]}行的身份证号重复（同一文件内重复）")
            else:
                seen_ids[id_number] = row
        gender = cell_text(raw.get("gender"))
        if gender:
            member = _choice(Gender, gender)
            if member is None:
                bad("gender", f"“{gender}”不是有效的性别，请填写 男 或 女")
            else:
                values["gender"] = member.value
                if id_number:
                    try:
                        check_gender(member.value, id_number)
                    except InvalidInput as error:
                        bad("gender", str(error))
        if raw.get("birth_date") is not None:
            try:
                born = _date(raw.get("birth_date"))
                values["birth_date"] = born
                if id_number:
                    check_birth_date(born, id_number)
            except InvalidInput as error:
                bad("birth_date", str(error))
        if id_number:
            values.setdefault("birth_date", birth_date_of(id_number))
            values.setdefault("gender", gender_of(id_number))
        village_name = cell_text(raw.get("village")).replace(" ", "")
        if village_name:
            village = villages.get(village_name) or villages.get(_unique_match(village_name, villages))
            if village is None:
                bad("village", f"村（社区）“{village_name}”不存在，请从下拉列表选择")
            elif allowed_villages is not None and village.id not in allowed_villages:
                bad("village", f"村（社区）“{village_name}”不在您的管理范围内")
            else:
                values["village_id"] = village.id
        for key in ("address", "school", "grade", "disability_kind", "disability_grade", "notes"):
            text = cell_text(raw.get(key))
            values[key] = text or None
        limits = {"address": 200, "school": 100, "grade": 30, "disability_kind": 30, "disability_grade": 10}
        for key, limit in limits.items():
            if values[key] and len(values[key]) > limit:
                bad(key, f"内容过长（最多{limit}个字）")
        values["registered_on"] = None
        if cell_text(raw.get("registered_on")):
            try:
                values["registered_on"] = _date(raw.get("registered_on"))
                check_registered_on(values["registered_on"], values.get("birth_date"), today)
            except InvalidInput as error:
                bad("registered_on", str(error))
        source = cell_text(raw.get("source"))
        values["identification_source"] = None
        if source:
            member = IdentificationSource.from_label(source)
            if member is None:
                bad("source", f"“{source}”不是有效的发现来源，请从下拉列表选择")
            else:
                values["identification_source"] = member.value
        chosen: list[int] = []
        for key in ("category1", "category2"):
            for name in _SPLIT.split(cell_text(raw.get(key))):
                if not name:
                    continue
                name = name if name in categories else _unique_match(name, categories) or name
                if name not in categories:
                    bad(key, f"“{name}”不是有效的困境类别，请从下拉列表选择")
                elif categories[name] not in chosen:
                    chosen.append(categories[name])
        guardians = []
        for prefix in ("g1", "g2"):
            plan = _check_guardian(raw, prefix, row, bad, guardian_names)
            if plan is not None:
                guardians.append(plan)
        if problems:
            result.errors.extend(problems)
        else:
            plans.append(ChildPlan(row, values, chosen, guardians))

    _mark_existing(plans, result, village_ids, letters.get("id_number", ""))
    result.errors.sort(key=lambda p: p.row)
    result.rows = plans
    return result


def _check_guardian(raw, prefix, row, bad, guardian_names) -> GuardianPlan | None:
    fields = {f: raw.get(f"{prefix}_{f}") for f in GUARDIAN_FIELDS}
    if not any(cell_text(v) for v in fields.values()):
        return None
    name = cell_text(fields["name"])
    if not name:
        bad(f"{prefix}_name", "填写了监护人信息，但监护人姓名为空")
        return None
    try:
        name = clean_name(name)
    except InvalidInput as error:
        bad(f"{prefix}_name", str(error))
    relation_text = cell_text(fields["relation"])
    relation = _choice(Relation, relation_text) if relation_text else None
    if not relation_text:
        bad(f"{prefix}_relation", "必填项为空（填写监护人时须填写与儿童的关系）")
    elif relation is None:
        bad(f"{prefix}_relation", f"“{relation_text}”不是有效的关系，请从下拉列表选择")
    id_number = None
    if cell_text(fields["id_number"]):
        try:
            id_number = clean_adult_id_number(_id_text(fields["id_number"]))
        except InvalidInput as error:
            bad(f"{prefix}_id_number", str(error))
        if id_number:
            earlier = guardian_names.get(id_number)
            if earlier and earlier[0] != name:
                bad(
                    f"{prefix}_id_number",
                    f"与第{earlier[1]}行同一监护人身份证号的姓名（{earlier[0]}）不一致",
                )
            guardian_names.setdefault(id_number, (name, row))
    phone = None
    try:
        phone = clean_phone(_narrow(cell_text(fields["phone"])))
    except InvalidInput as error:
        bad(f"{prefix}_phone", str(error))
    status_text = cell_text(fields["status"])
    status = _choice(GuardianStatus, status_text) if status_text else GuardianStatus.NORMAL
    if status is None:
        bad(f"{prefix}_status", f"“{status_text}”不是有效的监护状态，请从下拉列表选择")
        status = GuardianStatus.NORMAL
    key = f"id:{id_number}" if id_number else f"np:{name}|{phone or ''}"
    return GuardianPlan(key, name, relation.value if relation else "", id_number, phone, status.value)


def _mark_existing(plans: list[ChildPlan], result: CheckResult, village_ids, letter: str) -> None:
    """Children already registered (same ID number): a notice in scope, an error outside it."""
    by_id = {p.values["id_number"]: p for p in plans}
    ids = list(by_id)
    allowed = None if village_ids is None else set(village_ids)
    village_names = dict(db.session.execute(select(Village.id, Village.name)).all())
    keep = []
    errors_rows = set()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        found = db.session.execute(
            select(
                Child.id, Child.id_number, Child.name, Child.village_id, Child.archived_at, Child.file_no
            ).where(Child.id_number.in_(chunk))
        ).all()
        for child_id, id_number, name, village_id, archived_at, file_no in found:
            plan = by_id[id_number]
            if allowed is not None and village_id not in allowed:
                result.errors.append(
                    Problem(
                        plan.row, "身份证号", "该身份证号已在其他村（社区）登记，请联系镇民生服务办", letter
                    )
                )
                errors_rows.add(plan.row)
                continue
            plan.existing_id = child_id
            state = "，已归档" if archived_at else ""
            result.notices.append(
                Problem(
                    plan.row,
                    "身份证号",
                    f"已登记：{name}（{village_names.get(village_id, '')}{state}，档案编号 {file_no}）",
                    letter,
                )
            )
    for plan in plans:
        if plan.row not in errors_rows:
            keep.append(plan)
    plans[:] = keep
    result.notices.sort(key=lambda p: p.row)


# --------------------------------------------------------------------------- importing


class LedgerHasErrors(Exception):
    def __init__(self, result: CheckResult):
        super().__init__(f"{len(result.errors)} problems")
        self.result = result


def import_ledger(path: Path, village_ids, mode: str, *, file_name: str = "") -> ImportSummary:
    """Check again, then write every row in the session's current transaction; the caller commits."""
    if mode not in (SKIP, UPDATE):
        raise ValueError(mode)
    result = check_ledger(path, village_ids)
    if not result.ok:
        raise LedgerHasErrors(result)
    session = db.session
    summary = ImportSummary()
    guardian_ids = _write_guardians(result.rows, mode, summary)

    new_plans = [p for p in result.rows if p.existing_id is None]
    update_plans = [p for p in result.rows if p.existing_id is not None and mode == UPDATE]
    summary.skipped = sum(1 for p in result.rows if p.existing_id is not None and mode == SKIP)

    pinyin_cache: dict[str, tuple[str, str]] = {}
    child_rows = []
    today = clock.today()
    for plan in new_plans:
        row = _child_columns(plan, pinyin_cache)
        row.update(
            {
                "status": ChildStatus.ACTIVE.value,
                "version": 1,
                "registered_on": plan.values["registered_on"] or today,
            }
        )
        child_rows.append(row)
    if child_rows:
        year = clock.today().year
        numbers = file_numbers.numbers_for(session, [(row["village_id"], year) for row in child_rows])
        for row, number in zip(child_rows, numbers, strict=True):
            row["file_no"] = number
        inserted = session.execute(
            insert(Child).returning(Child.id, sort_by_parameter_order=True), child_rows
        ).all()
        for plan, (child_id,) in zip(new_plans, inserted, strict=True):
            plan.existing_id = child_id
    summary.created = len(new_plans)

    if update_plans:
        table = Child.__table__
        params = []
        for plan in update_plans:
            row = _child_columns(plan, pinyin_cache)
            row["_id"] = plan.existing_id
            params.append(row)
        columns = [k for k in params[0] if k != "_id"]
        statement = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({c: bindparam(c) for c in columns} | {"version": table.c.version + 1})
        )
        session.execute(statement, params)
        # A registration date in the ledger corrects the register's; an empty cell keeps it.
        dated = [
            {"_id": p.existing_id, "day": p.values["registered_on"]}
            for p in update_plans
            if p.values["registered_on"]
        ]
        if dated:
            session.execute(
                update(table).where(table.c.id == bindparam("_id")).values(registered_on=bindparam("day")),
                dated,
            )
        updated_ids = [p.existing_id for p in update_plans]
        for start in range(0, len(updated_ids), _CHUNK):
            session.execute(
                delete(child_category).where(
                    child_category.c.child_id.in_(updated_ids[start : start + _CHUNK])
                )
            )
    summary.updated = len(update_plans)

    written = new_plans + update_plans
    category_rows = [{"child_id": p.existing_id, "category_id": c} for p in written for c in p.categories]
    if category_rows:
        session.execute(insert(child_category), category_rows)

    updated_ids = {p.existing_id for p in update_plans}
    linked = _existing_links(list(updated_ids))
    link_rows = []
    for plan in written:
        for index, guardian in enumerate(plan.guardians):
            guardian_id = guardian_ids[guardian.key]
            if (plan.existing_id, guardian_id) in linked:
                continue
            linked.add((plan.existing_id, guardian_id))
            link_rows.append(
                {
                    "child_id": plan.existing_id,
                    "guardian_id": guardian_id,
                    "relation": guardian.relation,
                    # An updated child keeps its primary guardian; a new child's first guardian is primary.
                    "is_primary": index == 0 and plan.existing_id not in updated_ids,
                }
            )
    if link_rows:
        session.execute(insert(ChildGuardian), link_rows)
    filing.refresh(session, [p.existing_id for p in written])
    visits.refresh(session.connection(), [p.existing_id for p in written])  # 下次走访 from the registration
    # a ledger that puts a child in another village moves its alerts, reports and measures with it
    follow_child.follow(session.connection(), [p.existing_id for p in update_plans])

    audit.record(
        session,
        "import",
        table="child",
        summary=(
            f"台账导入 {file_name}：新增{summary.created}名，更新{summary.updated}名，"
            f"跳过{summary.skipped}名，新增监护人{summary.guardians_created}名"
        ),
        changes={
            "created": summary.created,
            "updated": summary.updated,
            "skipped": summary.skipped,
            "guardians_created": summary.guardians_created,
        },
    )
    session.flush()
    return summary


def _child_columns(plan: ChildPlan, pinyin_cache) -> dict:
    values = plan.values
    name = values["name"]
    if name not in pinyin_cache:
        pinyin_cache[name] = pinyin_keys(name)
    full, initials = pinyin_cache[name]
    return {
        "name": name,
        "name_pinyin": full,
        "name_initials": initials,
        "name_given": given_name(name),
        "gender": values["gender"],
        "id_number": values["id_number"],
        "id_last4": values["id_number"][-4:],
        "birth_date": values["birth_date"],
        "village_id": values["village_id"],
        "address": values["address"],
        "school": values["school"],
        "grade": values["grade"],
        "disability_kind": values["disability_kind"],
        "disability_grade": values["disability_grade"],
        "identification_source": values["identification_source"],
        "notes": values["notes"],
    }


def _existing_links(child_ids: list[int]) -> set[tuple[int, int]]:
    links = set()
    for start in range(0, len(child_ids), _CHUNK):
        links.update(
            db.session.execute(
                select(ChildGuardian.child_id, ChildGuardian.guardian_id).where(
                    ChildGuardian.child_id.in_(child_ids[start : start + _CHUNK])
                )
            ).all()
        )
    return {tuple(x) for x in links}


def _write_guardians(plans: list[ChildPlan], mode: str, summary: ImportSummary) -> dict[str, int]:
    """Guardian key → id: existing guardians found by ID number, the others inserted once (siblings share)."""
    wanted: dict[str, tuple[GuardianPlan, int]] = {}
    for plan in plans:
        if plan.existing_id is not None and mode == SKIP:
            continue
        for guardian in plan.guardians:
            wanted.setdefault(guardian.key, (guardian, plan.values["village_id"]))
    ids: dict[str, int] = {}
    by_number = [g.id_number for g, _ in wanted.values() if g.id_number]
    for start in range(0, len(by_number), _CHUNK):
        for guardian_id, number in db.session.execute(
            select(Guardian.id, Guardian.id_number).where(
                Guardian.id_number.in_(by_number[start : start + _CHUNK])
            )
        ):
            ids[f"id:{number}"] = guardian_id
    if mode == UPDATE:
        changes = [
            {"_id": ids[key], "phone": g.phone, "status": g.status}
            for key, (g, _) in wanted.items()
            if key in ids
        ]
        if changes:
            table = Guardian.__table__
            db.session.execute(
                update(table)
                .where(table.c.id == bindparam("_id"))
                .values(
                    phone=func.coalesce(bindparam("phone"), table.c.phone),
                    status=bindparam("status"),
                    version=table.c.version + 1,
                ),
                changes,
            )
    new = [(key, g, village_id) for key, (g, village_id) in wanted.items() if key not in ids]
    if new:
        rows = [
            {
                "name": g.name,
                "id_number": g.id_number,
                "gender": gender_of(g.id_number) if g.id_number else None,
                "phone": g.phone,
                "status": g.status,
                "low_income": False,
                "village_id": village_id,
                "version": 1,
            }
            for _, g, village_id in new
        ]
        inserted = db.session.execute(
            insert(Guardian).returning(Guardian.id, sort_by_parameter_order=True), rows
        ).all()
        for (key, _, _), (guardian_id,) in zip(new, inserted, strict=True):
            ids[key] = guardian_id
    summary.guardians_created = len(new)
    return ids


__all__ = [
    "COLUMNS",
    "LedgerHasErrors",
    "LedgerRejected",
    "MAX_BYTES",
    "MAX_ROWS",
    "SKIP",
    "UPDATE",
    "build_template",
    "check_ledger",
    "import_ledger",
    "read_ledger",
]
