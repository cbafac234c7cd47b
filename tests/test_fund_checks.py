"""Each fund-use check fires at its edge and stays silent just below it."""

import datetime as dt
from decimal import Decimal

from models import Activity, db
from services import fund_checks
from services.funds import Thresholds
from tests.test_funds import NOW, make_expense, make_source, no_demo_funds, user_id

assert no_demo_funds  # autouse: every test starts without the demo quarter

TH = Thresholds(approval=Decimal("5000.00"), collective=Decimal("30000.00"), split_days=7)


def paid(**kw):
    return {
        "status": "paid",
        "approver_id": user_id("admin"),
        "approved_at": NOW,
        "voucher_no": kw.pop("voucher_no", None),
        "invoice_attached": kw.pop("invoice_attached", True),
        **kw,
    }


_vouchers = iter(range(1, 10_000))


def ok(**kw):
    """A clean paid expense with its own voucher number."""
    return paid(voucher_no=f"PZ-{next(_vouchers)}", **kw)


def rules(check) -> list[str]:
    return [f.rule for f in check(TH)]


def test_overspend_at_the_budget_edge(app):
    source = make_source("10000.00")
    make_expense(source, "6000.00", **ok())
    make_expense(source, "4000.00", **ok())
    assert fund_checks.overspend(TH) == []
    make_expense(source, "0.01")  # a draft counts as planned spending
    [finding] = fund_checks.overspend(TH)
    assert finding.target == "source" and finding.target_id == source.id
    assert finding.severity == "low"  # only the draft takes it over
    assert "金额10,000.00元" in finding.message and "超支0.01元" in finding.message
    make_expense(source, "1.00", **ok())
    assert fund_checks.overspend(TH)[0].severity == "high"


def test_category_not_allowed(app):
    limited = make_source(allowed_categories=["training", "activity"])
    open_source = make_source(name="慈善捐赠", kind="charity", allowed_categories=[])
    make_expense(limited, category="training", **ok())
    make_expense(open_source, category="professional", **ok())
    assert fund_checks.category_not_allowed(TH) == []
    wrong = make_expense(limited, category="other", **ok())
    [finding] = fund_checks.category_not_allowed(TH)
    assert (
        finding.target_id == wrong.id
        and "「其他」" in finding.message
        and "人员培训、活动开展" in finding.message
    )


def test_outside_received_date_and_valid_period(app):
    source = make_source(
        received_on=dt.date(2026, 1, 10), valid_from=dt.date(2026, 1, 15), valid_to=dt.date(2026, 6, 30)
    )
    make_expense(source, spent_on=dt.date(2026, 1, 15), **ok())
    make_expense(source, spent_on=dt.date(2026, 6, 30), **ok())
    assert fund_checks.outside_period(TH) == []
    early = make_expense(source, spent_on=dt.date(2026, 1, 14), **ok())
    late = make_expense(source, spent_on=dt.date(2026, 7, 1), **ok())
    before_received = make_expense(source, spent_on=dt.date(2026, 1, 9), **ok())
    found = {f.target_id: f.message for f in fund_checks.outside_period(TH)}
    assert set(found) == {early.id, late.id, before_received.id}
    assert "晚于资金有效期截止日2026-06-30" in found[late.id]
    assert "早于资金到账日期2026-01-10" in found[before_received.id]


def test_missing_voucher_or_invoice(app):
    source = make_source()
    make_expense(source, **ok())
    make_expense(source)  # a draft need not have its documents yet
    assert fund_checks.missing_documents(TH) == []
    no_invoice = make_expense(source, **ok(invoice_attached=False))
    no_voucher = make_expense(source, "1234.56", **paid())
    found = {f.target_id: f.message for f in fund_checks.missing_documents(TH)}
    assert set(found) == {no_invoice.id, no_voucher.id}
    assert "缺少发票" in found[no_invoice.id] and "1,234.56元" in found[no_voucher.id]


def test_duplicate_voucher(app):
    source = make_source()
    make_expense(source, **paid(voucher_no="PZ-001"))
    make_expense(source, **paid(voucher_no="PZ-002"))
    assert fund_checks.duplicate_voucher(TH) == []
    dup = make_expense(source, "500.00", voucher_no="PZ-001")
    [finding] = fund_checks.duplicate_voucher(TH)
    assert finding.target_id == dup.id and len(finding.expense_ids) == 2
    assert "凭证号「PZ-001」被2笔支出重复使用" in finding.message and "1,500.00元" in finding.message


def test_paid_without_approval(app):
    source = make_source()
    make_expense(source, **ok())
    make_expense(source, status="approved", approver_id=user_id("admin"), approved_at=NOW)
    assert fund_checks.paid_without_approval(TH) == []
    bad = make_expense(source, status="paid", voucher_no="X", invoice_attached=True)
    [finding] = fund_checks.paid_without_approval(TH)
    assert finding.target_id == bad.id and "没有审批记录" in finding.message


def test_self_approval(app):
    source = make_source()
    make_expense(source, **ok())
    assert fund_checks.self_approval(TH) == []
    own = make_expense(source, **ok(approver_id=user_id("finance")))
    [finding] = fund_checks.self_approval(TH)
    assert finding.target_id == own.id and "演示财务本人审批" in finding.message


def test_collective_decision_above_the_threshold(app):
    source = make_source("500000.00")
    make_expense(source, "30000.00", **ok())  # at the threshold: not above
    make_expense(source, "80000.00", **ok(collective_decision_ref="镇党委会纪要〔2026〕3号"))
    assert fund_checks.no_collective_decision(TH) == []
    big = make_expense(source, "30000.01", **ok())
    [finding] = fund_checks.no_collective_decision(TH)
    assert finding.target_id == big.id
    assert "30,000.01元" in finding.message and "集体决策限额30,000.00元" in finding.message


def test_split_payments_sum_edge(app):
    source = make_source()
    make_expense(source, "2500.00", payee="甲公司", spent_on=dt.date(2026, 3, 2), **ok())
    make_expense(source, "2500.00", payee="甲公司", spent_on=dt.date(2026, 3, 5), **ok())
    assert fund_checks.split_payments(TH) == []  # together 5,000.00: not above the threshold
    third = make_expense(source, "0.01", payee="甲公司", spent_on=dt.date(2026, 3, 8), **ok())
    [finding] = fund_checks.split_payments(TH)
    assert finding.target_id == third.id and len(finding.expense_ids) == 3
    assert "合计5,000.01元" in finding.message and "审批限额5,000.00元" in finding.message


def test_split_payments_window_edge(app):
    source = make_source()
    make_expense(source, "3000.00", payee="乙公司", spent_on=dt.date(2026, 4, 1), **ok())
    make_expense(source, "3000.00", payee="乙公司", spent_on=dt.date(2026, 4, 8), **ok())  # 7 days later
    make_expense(source, "3000.00", payee="丙公司", spent_on=dt.date(2026, 4, 8), **ok())  # another payee
    assert fund_checks.split_payments(TH) == []
    make_expense(source, "3000.00", payee="乙公司", spent_on=dt.date(2026, 4, 14), **ok())  # 6 days later
    [finding] = fund_checks.split_payments(TH)
    assert "2026-04-08至2026-04-14（7天）" in finding.message


def test_split_payments_need_each_below_the_threshold(app):
    source = make_source()
    make_expense(source, "5000.00", payee="丁公司", spent_on=dt.date(2026, 5, 1), **ok())
    make_expense(source, "4999.99", payee="丁公司", spent_on=dt.date(2026, 5, 2), **ok())
    assert fund_checks.split_payments(TH) == []
    make_expense(source, "0.02", payee="丁公司", spent_on=dt.date(2026, 5, 3), **ok())
    assert rules(fund_checks.split_payments) == ["split_payment"]


def test_activity_over_budget(app):
    activity = Activity(title="重走微长征", starts_at=dt.datetime(2026, 4, 1, 9), budget=Decimal("1000.00"))
    db.session.add(activity)
    db.session.flush()
    source = make_source()
    make_expense(source, "600.00", category="activity", activity_id=activity.id, **ok())
    make_expense(source, "400.00", category="activity", activity_id=activity.id, **ok())
    assert fund_checks.activity_over_budget(TH) == []
    make_expense(source, "0.01", category="activity", activity_id=activity.id, **ok())
    [finding] = fund_checks.activity_over_budget(TH)
    assert finding.target == "activity" and finding.target_id == activity.id
    assert "预算1,000.00元" in finding.message and "超出0.01元" in finding.message


def test_professional_service_linked_to_nothing(app):
    activity = Activity(title="红色监护课堂", starts_at=dt.datetime(2026, 4, 1, 9))
    db.session.add(activity)
    db.session.flush()
    source = make_source()
    make_expense(source, category="professional", activity_id=activity.id, **ok())
    make_expense(source, category="training", **ok())
    assert fund_checks.service_unlinked(TH) == []
    loose = make_expense(source, category="professional", **ok())
    [finding] = fund_checks.service_unlinked(TH)
    assert finding.target_id == loose.id


def test_run_all_orders_by_severity_and_reads_settings(app):
    source = make_source("1000.00")
    make_expense(source, "1500.00", **ok())
    make_expense(source, "10.00", category="professional", **ok())
    db.session.commit()
    findings = fund_checks.run_all()
    assert [f.severity for f in findings] == sorted(
        (f.severity for f in findings), key=fund_checks.SEVERITY_ORDER.get
    )
    assert {f.rule for f in findings} == {"overspend", "service_unlinked"}
    assert set(fund_checks.CHECKS) == {r.value for r in __import__("choices").FundRule}
