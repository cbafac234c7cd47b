"""Hostile workbooks, built for real: the corpus of tests/test_hostile_uploads.py and bench/uploads.py."""

import io
import os
import re
import zipfile

import openpyxl
import xlsxwriter

from services.ledger_import import COLUMNS


def plain_xlsx(rows=(("姓名", "性别"), ("张三", "男"))) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def rezip(base: bytes, add: dict[str, bytes] = (), replace=None) -> bytes:
    """``base`` with members added or rewritten (``replace(name, data) -> data``)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(base)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            dst.writestr(item.filename, replace(item.filename, data) if replace else data)
        for name, data in dict(add).items():
            dst.writestr(zipfile.ZipInfo(name), data)
    return out.getvalue()


def zip_bomb() -> bytes:
    """A valid-looking xlsx whose sheet inflates 1,000-fold (60 MB of spaces in ~60 KB)."""

    def pad(name, data):
        if name == "xl/worksheets/sheet1.xml":
            return data.replace(b"<sheetData>", b"<sheetData>" + b" " * (60 * 1024 * 1024), 1)
        return data

    return rezip(plain_xlsx(), replace=pad)


def declared_bomb() -> bytes:
    """A zip whose directory declares a member of 4 GB (the bytes never need to exist to refuse it)."""
    data = bytearray(plain_xlsx())
    end = data.rfind(b"PK\x05\x06")
    central = int.from_bytes(data[end + 16 : end + 20], "little")
    # Each central entry: signature, ..., uncompressed size at offset 24.
    entry = central
    while data[entry : entry + 4] == b"PK\x01\x02":
        name_len = int.from_bytes(data[entry + 28 : entry + 30], "little")
        name = bytes(data[entry + 46 : entry + 46 + name_len])
        if name == b"xl/worksheets/sheet1.xml":
            data[entry + 24 : entry + 28] = (0xFFFFFFF0).to_bytes(4, "little")
        extra = int.from_bytes(data[entry + 30 : entry + 32], "little")
        comment = int.from_bytes(data[entry + 32 : entry + 34], "little")
        entry += 46 + name_len + extra + comment
    return bytes(data)


def with_external_link() -> bytes:
    def link(name, data):
        if name == "xl/_rels/workbook.xml.rels":
            return data.replace(
                b"</Relationships>",
                b'<Relationship Id="rIdX" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                b'relationships/externalLink" Target="externalLinks/externalLink1.xml"/></Relationships>',
            )
        return data

    external = (
        b'<?xml version="1.0" encoding="UTF-8"?><externalLink xmlns="http://schemas.openxmlformats.org/'
        b'spreadsheetml/2006/main"><externalBook r:id="rId1" xmlns:r="http://schemas.openxmlformats.org/'
        b'officeDocument/2006/relationships"/></externalLink>'
    )
    rels = (
        b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
        b'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
        b'officeDocument/2006/relationships/externalLinkPath" Target="file:///C:/secret/%E5%B7%A5%E8%B5%84.xlsx"'
        b' TargetMode="External"/></Relationships>'
    )
    return rezip(
        plain_xlsx(),
        add={
            "xl/externalLinks/externalLink1.xml": external,
            "xl/externalLinks/_rels/externalLink1.xml.rels": rels,
        },
        replace=link,
    )


def with_web_query_only() -> bytes:
    """A data connection to a web address, without the externalLinks folder."""

    def link(name, data):
        if name == "xl/_rels/workbook.xml.rels":
            return data.replace(
                b"</Relationships>",
                b'<Relationship Id="rIdQ" Type="http://example.invalid/queryTable" '
                b'Target="http://evil.example/q" TargetMode="External"/></Relationships>',
            )
        return data

    return rezip(plain_xlsx(), replace=link)


def macro_workbook_renamed() -> bytes:
    def macro(name, data):
        if name == "[Content_Types].xml":
            return data.replace(
                b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
                b"application/vnd.ms-excel.sheet.macroEnabled.main+xml",
            )
        return data

    return rezip(
        plain_xlsx(), add={"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0" + os.urandom(2000)}, replace=macro
    )


def traversal(name) -> bytes:
    return rezip(plain_xlsx(), add={name: b"owned"})


def with_dtd() -> bytes:
    dtd = (
        b'<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY x SYSTEM "file:///etc/passwd">]>'
    )

    def entity(name, data):
        if name == "xl/worksheets/sheet1.xml":
            return dtd + re.sub(rb"^<\?xml[^>]*\?>", b"", data)
        return data

    return rezip(plain_xlsx(), replace=entity)


def word_document() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as doc:
        doc.writestr("[Content_Types].xml", b"<Types/>")
        doc.writestr("word/document.xml", b"<w:document/>")
    return out.getvalue()


def ledger_header() -> list[str]:
    return [c.header + ("*" if c.required else "") for c in COLUMNS]


def many_rows(n=100_000) -> bytes:
    """The ledger's header and ``n`` rows of children, the sheet XML written directly (fast)."""
    cells = "".join(
        f'<c r="{letter}1" t="inlineStr"><is><t>{header}</t></is></c>'
        for letter, header in zip("ABC", ledger_header(), strict=False)
    )
    rows = [f'<row r="1">{cells}</row>']
    rows += [
        f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>儿童{r}</t></is></c>'
        f'<c r="B{r}" t="inlineStr"><is><t>男</t></is></c><c r="C{r}"><v>{r}</v></c></row>'
        for r in range(2, n + 2)
    ]
    sheet = (
        '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
        f'spreadsheetml/2006/main"><dimension ref="A1:C{n + 1}"/><sheetData>{"".join(rows)}</sheetData></worksheet>'
    ).encode()

    def swap(name, data):
        return sheet if name == "xl/worksheets/sheet1.xml" else data

    return rezip(plain_xlsx(), replace=swap)


def many_columns(n=1000) -> bytes:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    sheet = book.add_worksheet("儿童名单")
    sheet.write_row(0, 0, ledger_header() + [f"列{i}" for i in range(n - len(COLUMNS))])
    sheet.write_row(1, 0, ["张三"] + ["x"] * (n - 1))
    book.close()
    return out.getvalue()


def encrypted_flag() -> bytes:
    data = bytearray(plain_xlsx())
    data[6] |= 0x1  # general purpose flag of the first local header…
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 0x1  # …and of its central directory entry
    return bytes(data)


HOSTILE = {
    "zip bomb (ratio)": (zip_bomb, "压缩炸弹"),
    "zip bomb (declared 4 GB)": (declared_bomb, "压缩炸弹"),
    "external link": (with_external_link, "外部链接"),
    "external data connection": (with_web_query_only, "外部链接"),
    "xlsm renamed": (macro_workbook_renamed, "含有宏"),
    "path traversal ../": (lambda: traversal("../../evil.txt"), "异常的路径"),
    "path traversal absolute": (lambda: traversal("/etc/cron.d/evil"), "异常的路径"),
    "path traversal backslash": (lambda: traversal("xl\\..\\..\\evil.txt"), "异常的路径"),
    "DTD entity expansion": (with_dtd, "文档类型声明"),
    "1,000 columns": (many_columns, "列的上限"),
    "renamed PDF": (lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n" * 50, "PDF 文件"),
    "renamed HTML": (
        lambda: "<html><body><table><tr><td>张三</td></tr></table></body></html>".encode(),
        "网页",
    ),
    "renamed binary": (lambda: bytes(range(256)) * 40, "不是 Excel 工作簿"),
    "old xls / password": (lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 4000, "旧版 Excel"),
    "Word document": (word_document, "Word 文档"),
    "encrypted zip entries": (encrypted_flag, "密码"),
    "empty file": (lambda: b"", "空的"),
    "broken zip": (lambda: b"PK\x03\x04" + os.urandom(3000), "无法读取"),
}
