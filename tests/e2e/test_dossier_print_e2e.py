"""The 一人一档 of the demo child whose case is closed, printed to A4 PDF by Chromium as a user's own
print would (the page's CSS decides page size, margins and the footer): at most 4 pages, and every
page carries the child's name, the 档案编号 and 第 x 页 共 y 页. The PDF is read back with pdftotext."""

import shutil
import subprocess

import pytest

from app import create_app
from models import Case, Child, db
from tests.e2e.conftest import ARTIFACTS, login

PDFTOTEXT = shutil.which("pdftotext")


def _closed_case_child(database_url) -> dict:
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "facts"})
    with app.app_context():
        child = db.session.scalar(
            db.select(Child)
            .join(Case, Case.child_id == Child.id)
            .where(Case.stage == "closed")
            .order_by(Case.id)
        )
        case = db.session.scalar(db.select(Case).where(Case.child_id == child.id, Case.stage == "closed"))
        facts = {
            "id": child.id,
            "name": child.name,
            "file_no": child.file_no,
            "evaluation": case.closing_evaluation,
            "decisions": [m.decisions for m in case.conferences],
        }
        db.session.remove()
        db.engine.dispose()
    return facts


def pdf_pages(path) -> list[str]:
    """The text of each page of a PDF (pdftotext separates pages with a form feed)."""
    text = subprocess.run([PDFTOTEXT, "-layout", str(path), "-"], check=True, capture_output=True).stdout
    pages = text.decode("utf-8").split("\f")
    return [p for p in pages if p.strip()]


@pytest.mark.skipif(
    PDFTOTEXT is None, reason="pdftotext (Debian's poppler-utils) is not installed; CI installs it"
)
def test_the_printed_dossier_of_a_closed_case_fits_four_pages_with_the_name_on_each(page, database_url):
    facts = _closed_case_child(database_url)
    login(page, "supervisor")
    page.goto(page.base_url + f"/admin/dossier/print/?id={facts['id']}")
    body = page.locator("#dossier-print")
    assert facts["evaluation"] in body.inner_text()
    for decisions in facts["decisions"]:
        assert decisions in body.inner_text()
    page.emulate_media(media="print")
    # Printed, the body is laid out wide and shrunk to the page: a table reaching its very edge
    # loses the outer half of its right border, so every table ends inside it.
    overhang = page.evaluate(
        """() => [...document.querySelectorAll('#dossier-print table')]
            .filter(t => t.getBoundingClientRect().right > document.body.clientWidth - 1)
            .map(t => t.className)"""
    )
    assert overhang == [], f"tables printed to the edge of the page: {overhang}"
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "dossier-closed-case.pdf"
    # As the browser's own 打印 → 另存为PDF: the page's @page size, margins and footer apply.
    page.pdf(path=str(path), prefer_css_page_size=True, print_background=True)
    pages = pdf_pages(path)
    assert 1 <= len(pages) <= 4, f"the dossier printed on {len(pages)} pages"
    compact = [p.replace(" ", "") for p in pages]
    for number, text in enumerate(compact, start=1):
        assert facts["name"] in text, f"page {number} lacks the child's name"
        assert facts["file_no"] in text, f"page {number} lacks the 档案编号"
        assert f"第{number}页共{len(pages)}页" in text, f"page {number} lacks its page number"
    whole = "".join(compact)
    assert facts["evaluation"].replace(" ", "")[:40] in whole
    assert "会商决定" in whole and "结案评估" in whole and "帮扶措施" in whole
