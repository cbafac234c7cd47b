"""Every workbook a user uploads (台账导入, 签到表导入) passes here before openpyxl reads it.

An .xlsx is a zip of XML files, so a hostile one can be a zip bomb, carry entries named
``../../x``, macros (an .xlsm renamed), links to other files, a DTD (entity expansion), or sheets of
100,000 rows or 1,000 columns. The checks below read only the zip's directory and the first bytes of
each member, refuse in Chinese with what is wrong and what to do, and bound what openpyxl is then
allowed to read: its time and memory follow the limits here, not the file.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from openpyxl import load_workbook
from openpyxl.utils import column_index_from_string

from services.validation import InvalidInput

MAX_BYTES = 10 * 1024 * 1024
MAX_MEMBERS = 500
MAX_UNCOMPRESSED = 120 * 1024 * 1024  # all members together, as the zip's directory declares them
MAX_RATIO = 200  # a member that inflates more than this (and past 2 MB) is a bomb, not a sheet
MAX_COLUMNS = 200
_PROLOG_SCAN = 64 * 1024

XLSX_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
MACRO_MAIN = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"


class UnsafeWorkbook(InvalidInput):
    """An uploaded file that is not a plain, bounded .xlsx; the message says why, in Chinese."""


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MB"


# --------------------------------------------------------------------------- what the file is


def _not_a_zip(head: bytes) -> str:
    """The Chinese refusal for a file that is not a zip, naming what it seems to be."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return (
            "这是旧版 Excel（.xls）文件或设置了打开密码的工作簿：请在 Excel 中取消密码，"
            "并“另存为” .xlsx 格式后再上传。"
        )
    if head.startswith(b"%PDF"):
        return "这是 PDF 文件，不是 Excel 工作簿：请上传 .xlsx 文件。"
    if text.startswith((b"<!doctype html", b"<html", b"<table", b"<meta", b"<head")):
        return (
            "这是网页（HTML）格式的文件（有些系统导出的“Excel”其实是网页）：请用 Excel 打开后"
            "“另存为” .xlsx 格式再上传。"
        )
    if text.startswith(b"<?xml"):
        return "这是 XML 格式的表格（如“XML 电子表格 2003”）：请用 Excel 打开后“另存为” .xlsx 格式再上传。"
    if head.startswith((b"Rar!", b"7z\xbc\xaf", b"\x1f\x8b")):
        return "这是压缩包，不是 Excel 工作簿：请解压后上传其中的 .xlsx 文件。"
    return "文件不是 Excel 工作簿（.xlsx）：请使用导入模板填写后上传。"


def _bad_name(name: str) -> bool:
    if not name or "\\" in name or "\x00" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return True
    return any(part in ("..", ".") for part in PurePosixPath(name).parts)


def check_xlsx(data: bytes, *, max_rows: int = 20_000, max_columns: int = MAX_COLUMNS) -> None:
    """Raise UnsafeWorkbook unless ``data`` is a plain .xlsx within every limit above, with at most
    ``max_rows`` rows and ``max_columns`` columns holding values in any sheet."""
    if len(data) > MAX_BYTES:
        raise UnsafeWorkbook(
            f"文件过大（{len(data) / 1024 / 1024:.1f} MB），单个文件不能超过 {_mb(MAX_BYTES)}，请拆分后分批上传。"
        )
    if not data:
        raise UnsafeWorkbook("文件是空的：请选择填好的 .xlsx 文件。")
    if not data.startswith(b"PK\x03\x04"):
        raise UnsafeWorkbook(_not_a_zip(data[:512]))
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError):
        raise UnsafeWorkbook(
            "无法读取该文件：文件已损坏或不是有效的 .xlsx 工作簿，请在 Excel 中重新保存后再上传。"
        ) from None
    with archive:
        _check_members(archive, members)
        _check_extent(archive, [m.filename for m in members], max_rows, max_columns)


def _check_members(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo]) -> None:
    if len(members) > MAX_MEMBERS:
        raise UnsafeWorkbook(f"文件内部结构异常（含 {len(members)} 个部件），不像 Excel 工作簿，已拒绝。")
    names = [m.filename for m in members]
    if any(_bad_name(n) for n in names) or len(set(n.lower() for n in names)) != len(names):
        raise UnsafeWorkbook("文件内部含有异常的路径（如“../”），可能是恶意构造的文件，已拒绝。")
    if any(m.flag_bits & 0x1 for m in members):
        raise UnsafeWorkbook("工作簿设置了密码（已加密）：请在 Excel 中取消密码后再上传。")
    total = sum(m.file_size for m in members)
    if total > MAX_UNCOMPRESSED:
        raise UnsafeWorkbook(
            f"文件解压后达 {_mb(total)}，超过 {_mb(MAX_UNCOMPRESSED)} 的上限（可能是“压缩炸弹”或表格过大），已拒绝。"
        )
    for m in members:
        if m.file_size > 2 * 1024 * 1024 and m.file_size > MAX_RATIO * max(m.compress_size, 1):
            raise UnsafeWorkbook(
                f"文件中的部件压缩比异常（{m.file_size // max(m.compress_size, 1)} 倍），可能是“压缩炸弹”，已拒绝。"
            )
    lowered = {n.lower() for n in names}
    if "[content_types].xml" not in lowered or "xl/workbook.xml" not in lowered:
        if "word/document.xml" in lowered:
            raise UnsafeWorkbook("这是 Word 文档（.docx），不是 Excel 工作簿：请上传 .xlsx 文件。")
        if "ppt/presentation.xml" in lowered:
            raise UnsafeWorkbook("这是 PowerPoint 文件，不是 Excel 工作簿：请上传 .xlsx 文件。")
        raise UnsafeWorkbook("文件不是 Excel 工作簿（.xlsx）：请使用导入模板填写后上传。")
    content_types = _read_small(archive, "[Content_Types].xml")
    if any(n.endswith("vbaproject.bin") for n in lowered) or MACRO_MAIN.encode() in content_types:
        raise UnsafeWorkbook(
            "文件含有宏（.xlsm 或启用宏的工作簿）：请在 Excel 中“另存为”普通 .xlsx 格式（不含宏）后再上传。"
        )
    if any(n.startswith("xl/externallinks/") for n in lowered) or _has_external_relations(archive, names):
        raise UnsafeWorkbook(
            "文件含有指向其他文件或网址的外部链接：请在 Excel 中“数据 → 编辑链接 → 断开链接”后另存，再上传。"
        )
    if any(n.startswith(("xl/embeddings/", "xl/activex/")) for n in lowered):
        raise UnsafeWorkbook("文件含有嵌入的对象或控件：请删除后另存为普通 .xlsx 再上传。")
    for name in names:
        if name.lower().endswith((".xml", ".rels", ".vml")):
            _check_prolog(archive, name)


def _read_small(archive: zipfile.ZipFile, name: str, limit: int = 1024 * 1024) -> bytes:
    with archive.open(name) as handle:
        return handle.read(limit)


def _has_external_relations(archive: zipfile.ZipFile, names: list[str]) -> bool:
    for name in names:
        if name.endswith(".rels") and b'TargetMode="External"' in _read_small(archive, name):
            # Hyperlinks in cells are external relations too, and harmless; links to other workbooks
            # and data connections are not.
            rels = _read_small(archive, name)
            for match in re.finditer(rb"<Relationship\b[^>]*>", rels):
                tag = match.group(0)
                if b'TargetMode="External"' in tag and b"/hyperlink" not in tag:
                    return True
    return False


def _check_prolog(archive: zipfile.ZipFile, name: str) -> None:
    """No DTD (entity expansion, external entities) and no UTF-16 in any XML part of the file."""
    with archive.open(name) as handle:
        head = handle.read(_PROLOG_SCAN)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnsafeWorkbook("文件内部使用了 Excel 不会使用的编码，可能是恶意构造的文件，已拒绝。")
    upper = head.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise UnsafeWorkbook("文件内部含有文档类型声明（DTD），可能是恶意构造的文件，已拒绝。")


# A cell that holds something (a value, an inline string or a formula), with its reference.
_VALUE_CELL = re.compile(rb'<(?:\w+:)?c\b[^>]*?\br="([A-Z]{1,3})([0-9]{1,7})"[^>]*>\s*<(?:\w+:)?(?:v|is|f)\b')
_SHARED_STRING = re.compile(rb"<(?:\w+:)?si\b")
_CHUNK = 1024 * 1024


def _scan(archive: zipfile.ZipFile, name: str, pattern: re.Pattern, boundary: bytes):
    """Matches of ``pattern`` in a member, read in chunks (never whole), cut at ``boundary``."""
    carry = b""
    with archive.open(name) as handle:
        while chunk := handle.read(_CHUNK):
            buffer = carry + chunk
            cut = buffer.rfind(boundary)
            if cut <= 0:
                carry = buffer[-4096:]  # no tag start in a megabyte: text only, keep a tail
                continue
            yield from pattern.finditer(buffer, 0, cut)
            carry = buffer[cut:]
    yield from pattern.finditer(carry)


def _check_extent(archive: zipfile.ZipFile, names: list[str], max_rows: int, max_columns: int) -> None:
    """Rows and columns holding values, counted from the sheets' XML before openpyxl parses anything:
    a sheet of 100,000 rows or 1,000 columns is refused in a second, not after loading it."""
    cells = 0
    for name in names:
        if not re.match(r"^xl/worksheets/[^/]+\.xml$", name, re.IGNORECASE):
            continue
        rows: set[int] = set()
        for match in _scan(archive, name, _VALUE_CELL, b"<c"):
            cells += 1
            if column_index_from_string(match.group(1).decode()) > max_columns:
                raise UnsafeWorkbook(f"工作表超过 {max_columns} 列的上限：请删除多余的列后再上传。")
            rows.add(int(match.group(2)))
            if len(rows) > max_rows + 1:  # the header row comes on top
                raise UnsafeWorkbook(
                    f"工作表超过 {max_rows} 行的上限：请删除多余的行，或拆分为多个文件分批上传。"
                )
    # Excel keeps only the strings its cells use: a table of many more is padding meant to be loaded.
    for name in names:
        if name.lower() == "xl/sharedstrings.xml":
            strings = sum(1 for _ in _scan(archive, name, _SHARED_STRING, b"<"))
            if strings > cells + 1000:
                raise UnsafeWorkbook("文件中的文字表远多于表格中的单元格，可能是恶意构造的文件，已拒绝。")


# --------------------------------------------------------------------------- reading it


def open_workbook(source: bytes | Path, *, data_only: bool, max_rows: int, max_columns: int = MAX_COLUMNS):
    """The workbook in openpyxl's read-only mode, after ``check_xlsx``."""
    data = Path(source).read_bytes() if isinstance(source, Path) else source
    check_xlsx(data, max_rows=max_rows, max_columns=max_columns)
    try:
        return load_workbook(io.BytesIO(data), read_only=True, data_only=data_only)
    except Exception:  # openpyxl raises many kinds on a damaged part
        raise UnsafeWorkbook("无法读取该文件：不是有效的 .xlsx 工作簿，或文件已损坏。") from None


def _declared_columns(sheet) -> int | None:
    """The sheet's width as its <dimension> declares it (None when it declares none)."""
    try:
        ref = sheet.calculate_dimension(force=False) if hasattr(sheet, "calculate_dimension") else None
    except Exception:
        return None
    match = re.match(r"^\$?[A-Z]+\$?\d+:\$?([A-Z]+)\$?\d+$", ref or "")
    return column_index_from_string(match.group(1)) if match else None


def bounded_rows(
    sheet, *, max_rows: int, max_columns: int = MAX_COLUMNS, values_only: bool = False
) -> Iterator:
    """The sheet's rows, refusing one with a value past ``max_columns`` and a sheet past
    ``max_rows`` rows (counted as Excel numbers them, so blank rows count too)."""
    declared = _declared_columns(sheet)
    if declared is not None and declared > max_columns:
        raise UnsafeWorkbook(f"工作表有 {declared} 列，超过 {max_columns} 列的上限：请删除多余的列后再上传。")
    for count, row in enumerate(sheet.iter_rows(values_only=values_only), start=1):
        if count > max_rows:
            raise UnsafeWorkbook(
                f"工作表超过 {max_rows} 行的上限：请删除多余的行，或拆分为多个文件分批上传。"
            )
        if len(row) > max_columns:
            extra = row[max_columns:] if values_only else [c.value for c in row[max_columns:]]
            if any(v not in (None, "") for v in extra):
                raise UnsafeWorkbook(f"工作表超过 {max_columns} 列的上限：请删除多余的列后再上传。")
            row = row[:max_columns]
        yield row
