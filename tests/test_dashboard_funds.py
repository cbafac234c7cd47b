"""The 工作台's fund figures: shown to the roles that see funds, counted over the plan year so far."""

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from choices import ExpenseStatus
from models import Expense, FundSource, db
from services import clock


def test_finance_sees_the_execution_rate_and_the_director_does_not(app, client, auth):
    today = clock.today()
    start = dt.date(today.year, 1, 1)
    available = sum(
        (
            s.amount
            for s in db.session.scalars(db.select(FundSource))
            if s.received_on <= today and (s.valid_to is None or s.valid_to >= start)
        ),
        Decimal(0),
    )
    paid = sum(
        (
            e.amount
            for e in db.session.scalars(db.select(Expense).where(Expense.status == ExpenseStatus.PAID.value))
            if start <= e.spent_on <= today
        ),
        Decimal(0),
    )
    assert available > 0 and paid > 0
    auth.login("finance")
    page = client.get("/admin/").get_data(as_text=True)
    assert "资金执行率" in page
    rate = (paid / available * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    assert f'<div class="rate-value">{rate}%</div>' in page
    assert f"¥{paid:,.2f}" in page and f"¥{available:,.2f}" in page
    auth.logout()
    auth.login("director1")
    assert "资金执行率" not in client.get("/admin/").get_data(as_text=True)


def test_findings_count_is_fetched_by_roles_that_see_funds(app, client, auth):
    from services.fund_checks import run_all

    today = clock.today()
    start = dt.date(today.year, 1, 1)
    expected = sum(1 for f in run_all() if f.spent_on is None or start <= f.spent_on <= today)
    assert expected > 0
    auth.login("finance")
    assert client.get("/admin/fund-findings/").get_json() == {"open_findings": expected}
    page = client.get("/admin/").get_data(as_text=True)
    assert f"/admin/fund-check/?start={start}&amp;end={today}&amp;state=open" in page
    listed = client.get(f"/admin/fund-check/?start={start}&end={today}&state=open").get_data(as_text=True)
    assert f"其中待核查 {expected} 条" in listed
    auth.logout()
    auth.login("director1")
    assert client.get("/admin/fund-findings/").status_code == 403
