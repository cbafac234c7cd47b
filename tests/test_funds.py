"""Fund sources and expenses: money rules, the approval workflow, 红字冲销, exact sums, the screens."""

import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest

from choices import ExpenseStatus
from models import AuditLog, Expense, FundSource, User, db
from services import fund_checks, indicators
from services.accounts import create_user
from services.funds import (
    Thresholds,
    approve,
    clean_amount,
    load_thresholds,
    pay,
    return_to_draft,
    reverse,
    source_budgets,
    totals,
)
from services.validation import InvalidInput
from tests.conftest import PASSWORD, form_fields

NOW = dt.datetime(2026, 3, 10, 9, 0)


@pytest.fixture(autouse=True)
def no_demo_funds(app):
    """Start from empty fund tables (the template database carries the demo quarter)."""
    db.session.execute(db.update(Expense).values(reverses_id=None))
    db.session.execute(db.delete(Expense))
    db.session.execute(db.delete(FundSource))
    db.session.commit()


def user_id(username: str) -> int:
    return db.session.scalar(db.select(User.id).where(User.username == username))


def make_source(amount="100000.00", **kw) -> FundSource:
    source = FundSource(
        name=kw.pop("name", "区级试点专项资金"),
        kind=kw.pop("kind", "district"),
        amount=Decimal(amount),
        received_on=kw.pop("received_on", dt.date(2026, 1, 5)),
        allowed_categories=kw.pop("allowed_categories", []),
        **kw,
    )
    db.session.add(source)
    db.session.flush()
    return source


def make_expense(source, amount="1000.00", **kw) -> Expense:
    expense = Expense(
        spent_on=kw.pop("spent_on", dt.date(2026, 2, 1)),
        amount=Decimal(amount),
        source_id=source.id,
        category=kw.pop("category", "training"),
        payee=kw.pop("payee", "某培训机构（虚构）"),
        handler_id=kw.pop("handler_id", user_id("finance")),
        status=kw.pop("status", ExpenseStatus.DRAFT.value),
        **kw,
    )
    db.session.add(expense)
    db.session.flush()
    return expense


# --------------------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "请填写金额"),
        ("0", "金额必须大于0"),
        ("-5", "金额必须大于0"),
        ("10000000.01", "金额不能超过10,000,000.00元"),
        ("12.345", "金额最多保留两位小数"),
        ("十元", "金额格式不正确"),
    ],
)
def test_amount_refused_with_chinese_message(typed, message):
    with pytest.raises(InvalidInput) as refused:
        clean_amount(typed)
    assert message in str(refused.value)


def test_amount_edges_accepted():
    assert clean_amount("0.01") == Decimal("0.01")
    assert clean_amount("10000000") == Decimal("10000000.00")
    assert clean_amount("¥1,234.5") == Decimal("1234.50")


def test_thresholds_are_settings_rows(app):
    assert load_thresholds() == Thresholds(Decimal("5000.00"), Decimal("30000.00"), 7)
    from models import Setting

    db.session.get(Setting, "fund_approval_threshold").value = "8000"
    db.session.commit()
    assert load_thresholds().approval == Decimal("8000.00")


# --------------------------------------------------------------------------- workflow


def test_approver_is_never_the_handler(app):
    expense = make_expense(make_source())
    with pytest.raises(InvalidInput, match="审批人不能是经办人本人"):
        approve(expense, user_id("finance"), NOW, Thresholds())
    assert expense.status == "draft"
    approve(expense, user_id("admin"), NOW, Thresholds())
    assert expense.status == "approved" and expense.approver_id == user_id("admin")


def test_pay_only_after_approval_and_return_to_draft(app):
    expense = make_expense(make_source())
    with pytest.raises(InvalidInput, match="须先审批"):
        pay(expense, NOW)
    approve(expense, user_id("admin"), NOW, Thresholds())
    return_to_draft(expense)
    assert expense.status == "draft" and expense.approver_id is None
    approve(expense, user_id("admin"), NOW, Thresholds())
    warnings = pay(expense, NOW)
    assert expense.status == "paid" and "缺少凭证号和发票" in warnings[0]
    with pytest.raises(InvalidInput):
        return_to_draft(expense)


def test_counter_entry_keeps_the_original(app):
    source = make_source()
    original = make_expense(source, "2500.00", voucher_no="V-1", invoice_attached=True)
    approve(original, user_id("admin"), NOW, Thresholds())
    pay(original, NOW)
    with pytest.raises(InvalidInput, match="冲销原因"):
        reverse(original, user_id("finance"), dt.date(2026, 3, 11), "", None)
    counter = reverse(original, user_id("finance"), dt.date(2026, 3, 11), "收款方退款", "V-2")
    db.session.flush()
    assert counter.amount == Decimal("-2500.00") and counter.reverses_id == original.id
    assert counter.status == "draft"
    assert original.status == "paid" and original.amount == Decimal("2500.00")
    with pytest.raises(InvalidInput, match="已有冲销记录"):
        reverse(original, user_id("finance"), dt.date(2026, 3, 11), "再次", None)
    with pytest.raises(InvalidInput, match="审批人不能是经办人本人"):
        approve(counter, user_id("finance"), NOW, Thresholds())
    approve(counter, user_id("admin"), NOW, Thresholds())
    pay(counter, NOW)
    budget = next(b for b in source_budgets() if b.key == source.id)
    assert budget.paid == Decimal("0.00")
    # A reversed expense is no longer live: no findings about its documents.
    assert not [f for f in fund_checks.run_all() if f.target_id in (original.id, counter.id)]


def test_decimal_sums_are_exact(app):
    source = make_source("1.00")
    for _ in range(10):
        make_expense(source, "0.10", status="paid", approver_id=user_id("admin"), approved_at=NOW)
    big = make_source("10000000.00", name="大额")
    make_expense(big, "9999999.99", status="paid", approver_id=user_id("admin"), approved_at=NOW)
    make_expense(big, "0.01", status="approved", approver_id=user_id("admin"), approved_at=NOW)
    db.session.commit()
    by_id = {b.key: b for b in source_budgets()}
    assert by_id[source.id].paid == Decimal("1.00")
    assert by_id[source.id].balance == Decimal("0.00")
    assert by_id[big.id].paid == Decimal("9999999.99")
    assert by_id[big.id].committed == Decimal("10000000.00")
    assert totals(list(by_id.values())).paid == Decimal("10000000.99")
    assert by_id[source.id].execution_rate == Decimal("1.0000")


# --------------------------------------------------------------------------- through the panel


def test_finance_enters_expense_and_cannot_approve_it(client, auth):
    source = make_source()
    db.session.commit()
    auth.login("finance")
    fields = form_fields(client, "/admin/expense/new/")
    form = {
        **fields,
        "spent_on": "2026-02-03",
        "amount": "abc",
        "source": str(source.id),
        "category": "training",
        "payee": "某培训机构（虚构）",
        "purpose": "儿童主任业务培训",
    }
    page = client.post("/admin/expense/new/", data=form).get_data(as_text=True)
    assert "金额格式不正确" in page and "儿童主任业务培训" in page  # message by the field, input kept
    form["amount"] = "3200.5"
    response = client.post("/admin/expense/new/", data=form)
    assert response.status_code == 302
    expense = db.session.scalar(db.select(Expense).order_by(Expense.id.desc()))
    assert expense.amount == Decimal("3200.50") and expense.handler_id == user_id("finance")
    assert expense.status == "draft"
    fields = form_fields(client, f"/admin/expense/details/?id={expense.id}")
    page = client.post(
        f"/admin/expense/approve/?id={expense.id}", data={**fields}, follow_redirects=True
    ).get_data(as_text=True)
    assert "审批人不能是经办人本人" in page
    db.session.expire_all()
    assert db.session.get(Expense, expense.id).status == "draft"


def test_a_late_background_answer_does_not_undo_the_approval_message(app, client, auth):
    """The 工作台 asks for its fund count in the background. When that answer arrived after an
    approval, it re-sent the session cookie it had read before the approval (a permanent session was
    refreshed on every answer), and the list drew no "已审批" (a clerk's-day test failed on it)."""
    expense = make_expense(make_source(), "1280.00", payee="罗云镇文印店")
    db.session.commit()
    auth.login("admin")
    before = client.get_cookie("session").value
    late = app.test_client()  # the fetch, sent with the cookie of the moment before the approval
    late.set_cookie("session", before)

    fields = form_fields(client, "/admin/expense-approval/")
    approved = client.post(
        f"/admin/expense/approve/?id={expense.id}", data={**fields, "back": "/admin/expense-approval/"}
    )
    assert approved.status_code == 302 and client.get_cookie("session").value != before  # the flash

    answer = late.get("/admin/fund-findings/")
    assert answer.status_code == 200 and "open_findings" in answer.get_json()
    assert not [h for h in answer.headers.getlist("Set-Cookie") if h.startswith("session=")]
    for page in ("/admin/", "/admin/child/"):  # pages that leave the session as it is write no cookie
        assert not [h for h in late.get(page).headers.getlist("Set-Cookie") if h.startswith("session=")]
    assert "已审批 1 笔支出" in client.get("/admin/expense-approval/").get_data(as_text=True)


def test_paid_expense_cannot_be_edited_only_reversed(client, auth):
    source = make_source()
    expense = make_expense(source, "800.00", status="paid", approver_id=user_id("admin"), approved_at=NOW)
    db.session.commit()
    auth.login("finance")
    response = client.get(f"/admin/expense/edit/?id={expense.id}", follow_redirects=True)
    assert "不能修改" in response.get_data(as_text=True)
    fields = form_fields(client, f"/admin/expense/reverse/?id={expense.id}")
    response = client.post(
        f"/admin/expense/reverse/?id={expense.id}", data={**fields, "reason": "重复支付退回"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    counter = db.session.scalar(db.select(Expense).where(Expense.reverses_id == expense.id))
    assert counter.amount == Decimal("-800.00")
    assert db.session.get(Expense, expense.id).status == "paid"
    # Editing the counter-entry (still a draft) cannot change what it mirrors.
    fields = form_fields(client, f"/admin/expense/edit/?id={counter.id}")
    response = client.post(
        f"/admin/expense/edit/?id={counter.id}",
        data={
            **fields,
            "spent_on": "2026-03-12",
            "amount": "5",
            "source": str(source.id),
            "category": "other",
            "payee": counter.payee,
            "voucher_no": "HZ-1",
            "version_seen": str(counter.version),
        },
    )
    assert response.status_code == 302
    db.session.expire_all()
    counter = db.session.get(Expense, counter.id)
    assert (counter.amount, counter.category, counter.voucher_no) == (Decimal("-800.00"), "training", "HZ-1")


def test_second_officer_approves_and_pays_through_actions(client, auth):
    create_user("finance2", PASSWORD, "finance", display_name="第二财务")
    expense = make_expense(make_source(), voucher_no="PZ-1", invoice_attached=True)
    db.session.commit()
    auth.login("finance2")
    fields = form_fields(client, "/admin/expense/")
    client.post("/admin/expense/action/", data={**fields, "action": "approve", "rowid": [expense.id]})
    client.post("/admin/expense/action/", data={**fields, "action": "pay", "rowid": [expense.id]})
    db.session.expire_all()
    done = db.session.get(Expense, expense.id)
    assert done.status == "paid" and done.approver_id == user_id("finance2") and done.paid_at


def test_roles_on_funds(client, auth):
    expense = make_expense(make_source())
    db.session.commit()
    auth.login("clerk")
    assert client.get("/admin/expense/").status_code == 200
    assert client.get("/admin/fund-check/").status_code == 200
    assert client.get("/admin/expense/new/").status_code == 403
    fields = form_fields(client, f"/admin/expense/details/?id={expense.id}")
    assert client.post(f"/admin/expense/approve/?id={expense.id}", data={**fields}).status_code == 403
    assert client.get(f"/admin/expense/reverse/?id={expense.id}").status_code == 403
    db.session.expire_all()
    assert db.session.get(Expense, expense.id).status == "draft"
    auth.logout()
    auth.login("director1")
    assert client.get("/admin/expense/").status_code == 403
    assert client.get("/admin/fund-check/").status_code == 403


def test_fund_check_screen_and_ledger(client, auth):
    source = make_source("10000.00", name="镇级配套资金", allowed_categories=["training"])
    make_expense(
        source, "9000.00", status="paid", approver_id=user_id("admin"), approved_at=NOW, voucher_no="A1"
    )
    make_expense(source, "2000.00", category="activity", voucher_no="A1")
    db.session.commit()
    auth.login("inspector")
    page = client.get("/admin/fund-check/?start=2026-01-01&end=2026-12-31").get_data(as_text=True)
    assert "资金使用检查" in page and "镇级配套资金" in page
    assert "90.00%" in page  # 执行率 9,000 / 10,000
    assert "超支1,000.00元" in page and "凭证号「A1」被2笔支出重复使用" in page
    filtered = client.get("/admin/fund-check/?start=2026-01-01&end=2026-12-31&rule=duplicate_voucher")
    assert "超支1,000.00元" not in filtered.get_data(as_text=True)
    response = client.get("/admin/fund-check/ledger.xlsx?start=2026-01-01&end=2026-12-31")
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    assert book.sheetnames == ["汇总", "资金来源", "支出明细", "问题清单"]
    assert db.session.scalar(db.select(AuditLog).where(AuditLog.action == "export")) is not None


def test_execution_rate_counts_the_period_and_reversals_when_paid(app):
    """资金执行率 over a period: payments dated in it, a 红字冲销 the day it is paid, a draft one not at all."""
    source = make_source("20000.00")
    paid = make_expense(source, "5000.00", status="paid", approver_id=user_id("admin"), approved_at=NOW)
    make_expense(
        source, "800.00", status="paid", spent_on=dt.date(2025, 12, 31), approver_id=user_id("admin")
    )
    kept = make_expense(
        source, "300.00", status="paid", spent_on=dt.date(2026, 2, 3), approver_id=user_id("admin")
    )
    db.session.flush()
    counter = reverse(paid, user_id("finance"), dt.date(2026, 2, 20), "重复支付", None)
    reverse(kept, user_id("finance"), dt.date(2026, 2, 20), "待核实", None)  # stays a draft
    db.session.flush()
    approve(counter, user_id("admin"), dt.datetime(2026, 3, 2, 9), load_thresholds())
    pay(counter, dt.datetime(2026, 3, 3, 15))
    db.session.commit()
    assert counter.spent_on == dt.date(2026, 3, 3)  # dated the day it took effect

    def rate(start, end):
        value = indicators.compute("funds_execution_rate", indicators.Frame.of_period(start, end, now=NOW))
        return value.numerator, value.denominator

    february = rate(dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert february == (Decimal("5300.00"), Decimal("20000.00"))  # the draft reversal changes nothing
    assert rate(dt.date(2026, 3, 1), dt.date(2026, 3, 31)) == (Decimal("-5000.00"), Decimal("20000.00"))
    # the 2025-12-31 payment is not the plan year's
    assert rate(dt.date(2026, 1, 1), dt.date(2026, 12, 31))[0] == Decimal("300.00")


def test_finance_registers_a_source_with_allowed_categories(client, auth):
    auth.login("finance")
    fields = form_fields(client, "/admin/fundsource/new/")
    form = {
        **fields,
        "name": "2026年镇级配套资金（第二批）",
        "kind": "town",
        "amount": "10000000.01",
        "received_on": "2026-04-01",
        "allowed_categories": ["training", "activity"],
    }
    page = client.post("/admin/fundsource/new/", data=form).get_data(as_text=True)
    assert "金额不能超过10,000,000.00元" in page and "2026年镇级配套资金（第二批）" in page
    assert 'type="checkbox"' in page
    form["amount"] = "80000"
    assert client.post("/admin/fundsource/new/", data=form).status_code == 302
    source = db.session.scalar(db.select(FundSource).where(FundSource.name == form["name"]))
    assert source.amount == Decimal("80000.00") and source.allowed_categories == ["training", "activity"]
    assert "人员培训、活动开展" in client.get("/admin/fundsource/").get_data(as_text=True)
