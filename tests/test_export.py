"""Excel exports read back with openpyxl: the ledger, and the streamed export of a list."""

import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest

from models import AuditLog, Child, Expense, User, Village, db
from services.funds import cents, from_cents
from services.validation import mask_id_number
from tests.conftest import csrf_token
from tests.test_funds import NOW, make_expense, make_source, no_demo_funds, user_id
from views.export import XlsxExportMixin
from views.funds import ExpenseView

assert no_demo_funds  # autouse: every test starts without the demo quarter

INJECTIONS = ['=HYPERLINK("http://x","y")', "+86-138", "-2+3", "@SUM(A1)"]


def read(response, data_only=True):
    assert response.status_code == 200, response.status_code
    assert response.mimetype.endswith("spreadsheetml.sheet")
    return openpyxl.load_workbook(io.BytesIO(response.data), data_only=data_only)


def rows_of(sheet, header_row: int):
    rows = list(sheet.iter_rows(min_row=header_row, values_only=True))
    return list(rows[0]), rows[1:]


@pytest.fixture
def quarter(app):
    """A quarter of spending: two sources, ~30 expenses in all states, one counter-entry."""
    district = make_source(
        "200000.00", name="区级试点专项资金", allowed_categories=["professional", "training"]
    )
    charity = make_source("50000.00", name="慈善捐赠", kind="charity", received_on=dt.date(2026, 2, 1))
    admin = user_id("admin")
    for i in range(30):
        source = district if i % 3 else charity
        status = ("paid", "approved", "draft")[i % 3]
        extra = {"approver_id": admin, "approved_at": NOW} if status != "draft" else {}
        make_expense(
            source,
            f"{1000 + i * 37.33:.2f}",
            spent_on=dt.date(2026, 1 + i % 3, 1 + i % 28),
            payee=INJECTIONS[i % 4] if i < 4 else f"收款方{i}",
            voucher_no=f"PZ-{i:03d}",
            invoice_attached=True,
            category=("professional", "training", "activity")[i % 3],
            status=status,
            **extra,
        )
    first_paid = db.session.scalar(db.select(Expense).where(Expense.status == "paid").order_by(Expense.id))
    make_expense(
        first_paid.source,
        str(-first_paid.amount),
        reverses_id=first_paid.id,
        spent_on=dt.date(2026, 3, 31),
        status="paid",
        approver_id=admin,
        approved_at=NOW,
        voucher_no="PZ-R1",
    )
    make_expense(district, "99.00", spent_on=dt.date(2025, 12, 31))  # outside the period
    db.session.commit()
    return district, charity


def db_sum(*where) -> Decimal:
    return from_cents(db.session.scalar(db.select(cents(Expense.amount)).where(*where)))


PERIOD = (Expense.spent_on >= dt.date(2026, 1, 1), Expense.spent_on <= dt.date(2026, 3, 31))


def test_ledger_read_back(client, auth, quarter):
    auth.login("finance")
    response = client.get("/admin/fund-check/ledger.xlsx?start=2026-01-01&end=2026-03-31")
    assert "filename*=UTF-8''%E8%B5%84%E9%87%91" in response.headers["Content-Disposition"]
    book = read(response)
    assert book.sheetnames == ["汇总", "资金来源", "支出明细", "问题清单"]

    details = book["支出明细"]
    assert "重庆市涪陵区罗云镇" in details["A1"].value and "2026-01-01 至 2026-03-31" in details["A1"].value
    header, rows = rows_of(details, 3)
    assert header[:8] == [
        "编号",
        "支出日期",
        "资金来源",
        "支出类别",
        "收款方",
        "用途",
        "金额",
        "状态",
    ]
    assert (
        len(rows) == db.session.scalar(db.select(db.func.count()).select_from(Expense).where(*PERIOD)) == 31
    )
    assert details.freeze_panes == "C4" and details.auto_filter.ref.startswith("A3:")
    assert Decimal(str(details["G2"].value)).quantize(Decimal("0.01")) == db_sum(*PERIOD)
    assert (
        details.cell(4, 7).number_format == "¥#,##0.00" and details.cell(4, 2).number_format == "yyyy-mm-dd"
    )
    assert isinstance(details.cell(4, 2).value, dt.datetime)
    payees = {row[4] for row in rows}
    assert set(INJECTIONS) <= payees  # formula-like text stays text

    summary = book["汇总"]
    header, rows = rows_of(summary, 4)
    assert header == [
        "来源编号",
        "资金来源",
        "资金类型",
        "预算金额",
        "已支付",
        "已审批待付",
        "草稿",
        "余额",
        "支付进度",
    ]
    by_name = {row[1]: row for row in rows if row[1]}
    district, charity = quarter
    for source in (district, charity):
        row = by_name[source.name]
        paid = db_sum(*PERIOD, Expense.source_id == source.id, Expense.status == "paid")
        assert Decimal(str(row[4])).quantize(Decimal("0.01")) == paid
    total_row = next(row for row in rows if row[0] == "合计")
    assert Decimal(str(total_row[4])).quantize(Decimal("0.01")) == db_sum(*PERIOD, Expense.status == "paid")
    assert Decimal(str(total_row[3])) == Decimal("250000")

    formulas = openpyxl.load_workbook(io.BytesIO(response.data))
    assert formulas["汇总"]["E5"].value.startswith("=SUMIFS('支出明细'!")
    assert formulas["支出明细"]["G2"].value.startswith("=SUBTOTAL(9,G4:G")

    sources = book["资金来源"]
    header, rows = rows_of(sources, 3)
    assert header[:4] == ["编号", "资金来源", "资金类型", "金额"] and len(rows) == 2
    assert Decimal(str(sources["D2"].value)) == Decimal("250000")

    findings = book["问题清单"]
    header, rows = rows_of(findings, 3)
    assert header[:4] == ["序号", "严重程度", "问题类型", "说明"]
    assert any(row[2] == "支出类别不在资金用途范围内" for row in rows)
    log = db.session.scalar(db.select(AuditLog).where(AuditLog.action == "export"))
    assert "资金使用台账" in log.summary and log.username == "finance"


def test_expense_list_export_keeps_filters_sort_and_text(client, auth, quarter):
    auth.login("inspector")
    view = next(v for v in client.application.extensions["admin"][0]._views if isinstance(v, ExpenseView))
    status_filter = next(i for i, f in enumerate(view._filters) if f.name == "状态")
    arg = view.get_filter_arg(status_filter, view._filters[status_filter])
    page = client.get(f"/admin/expense/?flt0_{arg}=paid&sort=2&desc=1").get_data(as_text=True)
    assert "导出Excel" in page and f"/admin/expense/export.xlsx?flt0_{arg}=paid&amp;sort=2&amp;desc=1" in page

    book = read(client.get(f"/admin/expense/export.xlsx?flt0_{arg}=paid&sort=2&desc=1"))
    assert book.sheetnames == ["资金支出", "导出说明"]
    sheet = book["资金支出"]
    header, rows = rows_of(sheet, 1)
    assert header[:5] == ["编号", "支出日期", "金额（元）", "资金来源", "支出类别"]
    paid_count = db.session.scalar(
        db.select(db.func.count()).select_from(Expense).where(Expense.status == "paid")
    )
    assert len(rows) == paid_count
    amounts = [Decimal(str(r[2])).quantize(Decimal("0.01")) for r in rows]
    assert amounts == sorted(amounts, reverse=True)
    assert sum(amounts) == db_sum(Expense.status == "paid")
    assert {r[header.index("状态")] for r in rows} == {"已支付"}
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == f"A1:Q{len(rows) + 1}"
    assert sheet.cell(2, 3).number_format == "¥#,##0.00"
    assert "状态 等于 已支付" in book["导出说明"]["B4"].value

    everything = read(client.get("/admin/expense/export.xlsx?search=%2B86"))["资金支出"]
    _, rows = rows_of(everything, 1)
    assert [r[5] for r in rows] == ["+86-138"]
    injected = read(client.get("/admin/expense/export.xlsx"), data_only=False)["资金支出"]
    cells = [c for c in injected["F"] if c.value in INJECTIONS]
    assert len(cells) == 4 and all(c.data_type == "s" for c in cells)
    log = db.session.scalars(db.select(AuditLog).where(AuditLog.action == "export")).all()
    assert len(log) == 3 and "导出Excel：资金支出" in log[0].summary and "状态 等于 已支付" in log[0].summary


def _child_export_url(app) -> str:
    """The child list's export: ChildView's own once ScopedModelView carries the mixin, else a test subclass."""
    from views.registry import ChildView

    if hasattr(ChildView, "export_xlsx"):
        return "/admin/child/export.xlsx"

    class ChildExportView(ChildView, XlsxExportMixin):
        pass

    admin = app.extensions["admin"][0]
    admin.add_view(ChildExportView(Child, name="儿童名册", endpoint="child_export", url="child-export"))
    return "/admin/child-export/export.xlsx"


def test_child_export_is_scoped_masked_and_audited(app, client, auth):
    url = _child_export_url(app)
    village = db.session.scalar(db.select(Village).order_by(Village.sort_order))
    child = db.session.scalar(db.select(Child).where(Child.village_id == village.id).order_by(Child.id))
    child.name = "=1+2"
    db.session.commit()
    own = db.session.scalar(
        db.select(db.func.count())
        .select_from(Child)
        .where(Child.village_id == village.id, Child.archived_at.is_(None))
    )

    auth.login("director1")
    book = read(client.get(url), data_only=False)
    header, rows = rows_of(book.worksheets[0], 1)
    assert header[:3] == ["姓名", "性别", "身份证号"]
    assert len(rows) == own and {r[header.index("村（社区）")] for r in rows} == {village.name}
    # masked by default, for every role (the minimum the Personal Information Protection Law asks)
    assert mask_id_number(child.id_number) in {r[2] for r in rows} and child.id_number not in {
        r[2] for r in rows
    }
    name_cell = next(c for c in book.worksheets[0]["A"] if c.value == "=1+2")
    assert name_cell.data_type == "s"
    log = db.session.scalar(db.select(AuditLog).where(AuditLog.action == "export"))
    assert log.username == "director1" and f"{own}行" in log.summary and "含完整身份证号" not in log.summary
    # full numbers only when ticked and given a purpose, which goes into the export's audit row
    token = csrf_token(client, "/admin/child/")
    refused = client.post(url, data={"csrf_token": token, "full_ids": "1", "purpose": ""})
    assert refused.status_code == 400 and "须填写用途" in refused.get_data(as_text=True)
    book = read(client.post(url, data={"csrf_token": token, "full_ids": "1", "purpose": "报送区民政局复核"}))
    assert child.id_number in {r[2] for r in rows_of(book.worksheets[0], 1)[1]}
    assert "报送区民政局复核" in book["导出说明"]["B5"].value
    log = db.session.scalar(
        db.select(AuditLog).where(AuditLog.action == "export").order_by(AuditLog.id.desc())
    )
    assert log.summary.endswith("；含完整身份证号；用途：报送区民政局复核")
    auth.logout()

    auth.login("inspector")
    book = read(client.get(url + "?search=" + child.id_number[-4:]))
    header, rows = rows_of(book.worksheets[0], 1)
    assert rows and all("*" in r[2] for r in rows)
    assert mask_id_number(child.id_number) in {r[2] for r in rows}
    assert book["导出说明"]["B5"].value.startswith("已脱敏")
    token = csrf_token(client, "/admin/child/")
    response = client.post(url, data={"csrf_token": token, "full_ids": "1", "purpose": "想看看"})
    assert response.status_code == 403 and child.id_number not in response.get_data(as_text=True)
    total = db.session.scalar(
        db.select(db.func.count()).select_from(Child).where(Child.archived_at.is_(None))
    )
    _, everything = rows_of(read(client.get(url)).worksheets[0], 1)
    assert len(everything) == total


def test_export_needs_read_access(client, auth):
    auth.login("director1")
    assert client.get("/admin/expense/export.xlsx").status_code == 403
    auth.logout()
    response = client.get("/admin/expense/export.xlsx")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert User  # the model import documents who exports


def test_memoized_formatter_follows_every_branch():
    from views.export import ExportRow, Memoized

    def row(**values):
        r = ExportRow()
        r.__dict__.update(values)
        return r

    calls = []

    def badge(r):
        calls.append(1)
        return r.a if r.flag else r.b

    memo = Memoized(badge)
    rows = [
        row(flag=True, a=1, b=2),
        row(flag=True, a=1, b=3),
        row(flag=False, a=1, b=4),
        row(flag=False, a=1, b=5),
        row(flag=True, a=1, b=9),
        row(flag=False, a=1, b=4),
    ]
    assert [memo(r) for r in rows] == [1, 1, 4, 5, 1, 4]
    assert len(calls) == 4  # the repeats came from memory
    listed = Memoized(lambda r: "、".join(r.items))
    assert [listed(row(items=["甲", "乙"])), listed(row(items=["丙"]))] == ["甲、乙", "丙"]


def test_export_falls_back_to_orm_rows_for_properties(app):
    """A column the plain row cannot answer (a property such as 年龄) is exported from ORM rows."""
    from flask_login import login_user

    from views.registry import ChildView

    class AgeExport(ChildView, XlsxExportMixin):
        column_list = ("name", "age", "village")
        column_export_list = None

    view = AgeExport(Child, name="年龄", endpoint="child_age_export")
    with app.test_request_context("/"):
        login_user(db.session.scalar(db.select(User).where(User.username == "inspector")))
        response = view.export_xlsx()
        response.direct_passthrough = False
        book = openpyxl.load_workbook(io.BytesIO(response.get_data()))
    header, rows = rows_of(book.worksheets[0], 1)
    assert header == ["姓名", "年龄", "村（社区）"]
    children = db.session.scalars(db.select(Child).where(Child.archived_at.is_(None))).all()
    assert sorted((r[0], r[1]) for r in rows) == sorted((c.name, c.age) for c in children)


def test_a_late_branch_needing_the_orm_row_is_read_from_it(app):
    """A formatter that needs a property only for some rows (here the last) still gets it right."""
    from flask_login import login_user

    from views.registry import ChildView

    last = db.session.scalar(db.select(db.func.min(Child.id)).where(Child.archived_at.is_(None)))

    class LateBranch(ChildView, XlsxExportMixin):
        column_list = ("id", "name")
        column_export_list = ("id", "name")
        column_formatters_export = {
            "name": lambda v, c, m, n: f"{m.name}（{m.age}岁）" if m.id == last else m.name
        }
        export_batch_size = 7

    view = LateBranch(Child, name="分支", endpoint="child_branch_export")
    with app.test_request_context("/"):
        login_user(db.session.scalar(db.select(User).where(User.username == "clerk")))
        response = view.export_xlsx()
        response.direct_passthrough = False
        book = openpyxl.load_workbook(io.BytesIO(response.get_data()))
    _, rows = rows_of(book.worksheets[0], 1)
    child = db.session.get(Child, last)
    assert rows[-1] == (last, f"{child.name}（{child.age}岁）")
    assert len(rows) == db.session.scalar(
        db.select(db.func.count()).select_from(Child).where(Child.archived_at.is_(None))
    )
