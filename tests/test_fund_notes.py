"""核查说明: a fund-use finding explained by the fund officer stays listed, counts as explained, and is
open again when the finding changes; the note is audited and goes into the ledger's 问题清单."""

import datetime as dt
import io
import re

import openpyxl

from models import AuditLog, FindingNote, User, db
from services import clock, fund_checks
from tests.conftest import csrf_token
from tests.test_funds import NOW, make_expense, make_source, no_demo_funds, user_id  # noqa: F401 (fixture)

NOTE = "经镇党委会2026年第3次会议研究同意追加，追加文件待下达"


def open_count() -> int:
    """Findings of this year without a standing note: what the fund check's header counts by default."""
    year = clock.today().year
    found = fund_checks.filter_findings(
        fund_checks.run_all(), start=dt.date(year, 1, 1), end=dt.date(year, 12, 31)
    )
    return len(fund_checks.unexplained(found, fund_checks.notes_for(found)))


def overspent(amount="1500.00"):
    """A source of ¥1,000 with a paid ¥1,500 expense: one over-spend finding, nothing else."""
    source = make_source("1000.00")
    pay(source, amount, "记-2026-001")
    return source, _overspend()


def pay(source, amount, voucher):
    """A paid expense in order: approved by another person, with its voucher and invoice."""
    make_expense(
        source,
        amount,
        status="paid",
        approver_id=user_id("admin"),
        approved_at=NOW,
        paid_at=NOW,
        voucher_no=voucher,
        invoice_attached=True,
    )
    db.session.commit()


def _overspend():
    return next(f for f in fund_checks.run_all() if f.rule == "overspend")


def post_note(client, finding, text, back="/admin/fund-check/?state=open", token_from="/admin/fund-check/"):
    return client.post(
        "/admin/fund-check/note/",
        data={
            "csrf_token": csrf_token(client, token_from),
            "rule": finding.rule,
            "target": finding.target,
            "target_id": finding.target_id,
            "note": text,
            "back": back,
        },
    )


def test_an_explained_finding_stays_listed_and_counts_as_explained(client, auth):
    _, finding = overspent()
    before = open_count()
    auth.login("finance")
    response = post_note(client, finding, NOTE)
    assert response.status_code == 302 and response.headers["Location"].endswith(
        "/admin/fund-check/?state=open"
    )
    note = db.session.scalar(db.select(FindingNote))
    assert (note.rule, note.target, note.target_id, note.note) == (*finding.key, NOTE)
    assert note.by_id == user_id("finance")
    assert open_count() == before - 1
    page = client.get("/admin/fund-check/").get_data(as_text=True)
    assert finding.message in page and f"已说明：{NOTE}" in page
    assert f"其中待核查 {before - 1} 条，已说明 1 条" in page
    explained = client.get("/admin/fund-check/?state=explained").get_data(as_text=True)
    waiting = client.get("/admin/fund-check/?state=open").get_data(as_text=True)
    assert finding.message in explained and finding.message not in waiting
    assert client.get("/admin/fund-findings/").get_json() == {"open_findings": before - 1}
    log = db.session.scalar(db.select(AuditLog).where(AuditLog.table_name == "finding_note"))
    assert log is not None and log.user_id == user_id("finance") and log.action == "create"


def test_a_finding_that_changed_is_open_again(client, auth):
    source, finding = overspent()
    auth.login("finance")
    post_note(client, finding, NOTE)
    assert fund_checks.stands(finding, fund_checks.notes_for([finding]))
    # More is spent from the source: the over-spend grows, so the old explanation no longer covers it.
    pay(source, "200.00", "记-2026-002")
    grown = _overspend()
    assert grown.key == finding.key and grown.message != finding.message
    assert not fund_checks.stands(grown, fund_checks.notes_for([grown]))
    page = client.get("/admin/fund-check/").get_data(as_text=True)
    assert "此前的说明（问题情况已变化，请重新核查）" in page
    assert grown.message in client.get("/admin/fund-check/?state=open").get_data(as_text=True)


def test_a_note_must_say_something_and_concern_a_finding_that_exists(client, auth):
    _, finding = overspent()
    auth.login("finance")
    page = client.get(post_note(client, finding, "  好 ").headers["Location"]).get_data(as_text=True)
    assert "请填写核查说明（5–500字）" in page
    assert re.search(r"<details[^>]*open[^>]*>.*?>  好 </textarea>", page, re.S)  # what was typed is kept
    page = client.get(post_note(client, finding, "说" * 501).headers["Location"]).get_data(as_text=True)
    assert "请填写核查说明（5–500字）" in page
    gone = fund_checks.Finding(finding.rule, finding.severity, finding.message, "source", 999999)
    page = client.get(post_note(client, gone, NOTE).headers["Location"]).get_data(as_text=True)
    assert "该问题已不存在" in page
    assert db.session.scalar(db.select(db.func.count()).select_from(FindingNote)) == 0


def test_only_those_who_keep_the_funds_may_explain(client, auth):
    _, finding = overspent()
    auth.login("clerk")  # reads the fund check, may not write
    assert client.get("/admin/fund-check/").status_code == 200
    assert "填写核查说明" not in client.get("/admin/fund-check/").get_data(as_text=True)
    response = post_note(client, finding, NOTE, token_from="/admin/")  # no note form to take it from
    assert response.status_code == 403
    assert db.session.scalar(db.select(db.func.count()).select_from(FindingNote)) == 0


def test_the_back_link_stays_on_the_fund_check(client, auth):
    _, finding = overspent()
    auth.login("finance")
    response = post_note(client, finding, NOTE, back="https://example.org/admin/fund-check/")
    assert response.headers["Location"].endswith("/admin/fund-check/")
    assert "example.org" not in response.headers["Location"]


def test_the_ledger_lists_the_notes(client, auth):
    _, finding = overspent()
    auth.login("finance")
    post_note(client, finding, NOTE)
    data = client.get("/admin/fund-check/ledger.xlsx?start=2026-01-01&end=2026-12-31").data
    sheet = openpyxl.load_workbook(io.BytesIO(data))["问题清单"]
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[2]
    assert header[9:13] == ("核查状态", "核查说明", "说明人", "说明时间")
    listed = [r for r in rows[3:] if r[3]]
    row = next(r for r in listed if r[3] == finding.message)
    assert row[9:12] == ("已说明", NOTE, str(db.session.get(User, user_id("finance"))))
    assert rows[1][0].startswith(f"共{len(listed)}条，其中待核查{len(listed) - 1}条")
    assert all(r[9] == "待核查" and r[10] is None for r in listed if r is not row)
