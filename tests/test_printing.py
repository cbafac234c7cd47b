"""Every xlsx the app can produce prints as a document: converted to PDF by LibreOffice headless (as
a clerk's WPS or Excel would print it), no sheet is wider than one page — its header row's first
and last cells are printed on the same page — and every page carries 第 x 页. The acceptance pack's
workbooks are included. All files go through one soffice call."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import zipfile

import openpyxl
import pytest

from services import clock
from tests.test_workbook import xlsx_responses

pytestmark = pytest.mark.skipif(
    not (shutil.which("soffice") and shutil.which("pdftotext")),
    reason="LibreOffice and poppler-utils are installed by .ci/run",
)
PAGE_NUMBER = re.compile(r"第\s*\d+\s*页")


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def header_ends(data: bytes) -> list[tuple[str, str, str]]:
    """(sheet, first cell, last cell) of each printed sheet's header: the row of the first ten with
    the most text cells."""
    book = openpyxl.load_workbook(io.BytesIO(data))
    found = []
    for sheet in book.worksheets:
        if sheet.sheet_state != "visible":
            continue
        best: list[str] = []
        for row in sheet.iter_rows(min_row=1, max_row=10, values_only=True):
            texts = [str(v) for v in row if isinstance(v, str) and v.strip()]
            if len(texts) > len(best):
                best = texts
        if len(best) >= 2:
            # a header's first characters: a narrow column wraps its header over lines, which the
            # PDF's text may not keep together
            found.append((sheet.title, _squash(best[0])[:3], _squash(best[-1])[:3]))
    return found


def pdf_pages(path) -> list[str]:
    text = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout
    return [page for page in text.split("\f") if page.strip()]


def test_every_workbook_prints_one_page_wide_with_page_numbers(app, client, auth, tmp_path):
    from tests.test_workbook import plant_hostile_text

    planted = plant_hostile_text()
    auth.login("admin")
    books = {}
    for url, data in xlsx_responses(app, client, planted).items():
        # one of each list export (?id=… gives the same list); every variant of the reports
        key = url if url.startswith("/admin/reports/") else url.split("?")[0]
        books.setdefault(key, data)
    response = client.get(f"/admin/acceptance-pack/pack.zip?year={clock.today().year}&period=summary")
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.get_data())) as pack:
        for name in pack.namelist():
            if name.endswith(".xlsx"):
                books[f"pack:{name}"] = pack.read(name)
    assert len(books) >= 15, sorted(books)
    source = tmp_path / "xlsx"
    source.mkdir()
    named = {}
    for n, (url, data) in enumerate(sorted(books.items())):
        path = source / f"book{n:03d}.xlsx"
        path.write_bytes(data)
        named[path.stem] = (url, data)
    out = tmp_path / "pdf"
    subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation=file://{tmp_path}/lo-profile",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(out),
            *sorted(str(p) for p in source.iterdir()),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    problems = []
    for stem, (url, data) in named.items():
        pdf = out / f"{stem}.pdf"
        if not pdf.exists():
            problems.append(f"{url}: not converted")
            continue
        pages = pdf_pages(pdf)
        unnumbered = [n for n, page in enumerate(pages, 1) if not PAGE_NUMBER.search(page)]
        if unnumbered:
            problems.append(f"{url}: pages {unnumbered[:5]} without 第 x 页")
        squashed = [_squash(page) for page in pages]
        for sheet, first, last in header_ends(data):
            if not any(first in page and last in page for page in squashed):
                problems.append(f"{url} [{sheet}]: “{first}” and “{last}” never on one page")
    assert not problems, "\n".join(problems)
