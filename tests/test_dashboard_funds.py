"""The 工作台's fund figures: shown to the roles that see funds, equal to the ledger's own sums."""

from decimal import ROUND_HALF_UP, Decimal

from choices import ExpenseStatus
from models import Expense, FundSource, db


def test_finance_sees_the_execution_rate_and_the_director_does_not(app, client, auth):
    budget = sum((s.amount for s in db.session.scalars(db.select(FundSource))), Decimal(0))
    paid = sum(
        (
            e.amount
            for e in db.session.scalars(db.select(Expense).where(Expense.status == ExpenseStatus.PAID.value))
        ),
        Decimal(0),
    )
    assert budget > 0 and paid > 0
    auth.login("finance")
    page = client.get("/admin/").get_data(as_text=True)
    assert "资金执行率" in page
    assert f"{(paid / budget).quantize(Decimal('0.0001'), rounding=ROUND_HALF_UP) * 100:.2f}%" in page
    assert f"¥{paid:,.2f}" in page
    auth.logout()
    auth.login("director1")
    assert "资金执行率" not in client.get("/admin/").get_data(as_text=True)


def test_findings_count_is_fetched_by_roles_that_see_funds(app, client, auth):
    from services.fund_checks import run_all

    expected = len(run_all())
    assert expected > 0
    auth.login("finance")
    assert client.get("/admin/fund-findings/").get_json() == {"open_findings": expected}
    auth.logout()
    auth.login("director1")
    assert client.get("/admin/fund-findings/").status_code == 403
