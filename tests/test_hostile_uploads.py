"""Hostile workbooks through both imports (台账导入, 签到表导入): each is built for real, refused in
Chinese before openpyxl reads it whole, and nothing is written. (Their time and memory are in
`make bench`: bench/uploads.py.)"""

import io
import re

import openpyxl
import pytest

from models import Child, db
from services import xlsx_input
from services.ledger_import import LedgerRejected, read_ledger
from services.signin_sheet import read_sheet
from tests.conftest import csrf_token
from tests.hostile_files import HOSTILE, many_rows, plain_xlsx


@pytest.mark.parametrize("what", HOSTILE)
def test_ledger_import_refuses(what, tmp_path):
    build, words = HOSTILE[what]
    path = tmp_path / "台账.xlsx"
    path.write_bytes(build())
    with pytest.raises(LedgerRejected) as refused:
        read_ledger(path)
    assert words in str(refused.value), str(refused.value)
    assert not re.search(r"[A-Za-z]{4,} [a-z]{3,} [a-z]{3,}", str(refused.value))  # no English sentence


@pytest.mark.parametrize("what", HOSTILE)
def test_signin_sheet_import_refuses(what):
    build, words = HOSTILE[what]
    with pytest.raises(xlsx_input.UnsafeWorkbook, match=words):
        read_sheet(build(), [])


def test_a_hundred_thousand_rows_are_refused_at_the_limit(tmp_path):
    path = tmp_path / "台账.xlsx"
    path.write_bytes(many_rows())
    with pytest.raises(LedgerRejected, match="超过 20000 行的上限"):
        read_ledger(path)
    with pytest.raises(xlsx_input.UnsafeWorkbook, match="超过 20000 行的上限"):
        read_sheet(path.read_bytes(), [])


def test_ordinary_workbooks_still_pass():
    """The checks refuse hostile files only: a plain workbook, one with a web hyperlink in a cell."""
    xlsx_input.check_xlsx(plain_xlsx())
    book = openpyxl.Workbook()
    book.active["A1"] = "说明"
    book.active["A1"].hyperlink = "https://example.org/"
    out = io.BytesIO()
    book.save(out)
    xlsx_input.check_xlsx(out.getvalue())


def test_hostile_files_through_the_pages_change_nothing(app, client, auth):
    auth.login("clerk")
    children = db.session.scalar(db.select(db.func.count()).select_from(Child))
    for what in ("zip bomb (ratio)", "external link", "xlsm renamed", "renamed PDF"):
        build, words = HOSTILE[what]
        response = client.post(
            "/admin/import/check/",
            data={
                "file": (io.BytesIO(build()), "台账.xlsx"),
                "csrf_token": csrf_token(client, "/admin/import/"),
            },
            content_type="multipart/form-data",
        )
        assert response.status_code == 400 and words in response.get_data(as_text=True), what
    from models import Activity

    activity = db.session.scalar(db.select(Activity).order_by(Activity.id).limit(1))
    url = f"/admin/activity/signin-import/?id={activity.id}"
    for what in ("path traversal ../", "DTD entity expansion", "renamed HTML"):
        build, words = HOSTILE[what]
        response = client.post(
            url,
            data={"sheet": (io.BytesIO(build()), "签到表.xlsx"), "csrf_token": csrf_token(client, url)},
            content_type="multipart/form-data",
        )
        page = response.get_data(as_text=True)
        assert response.status_code == 400 and words in page, what
        assert "Traceback" not in page
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count()).select_from(Child)) == children
