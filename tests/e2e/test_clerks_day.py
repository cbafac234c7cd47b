"""The clerk's day in Chromium (issue 13): five daily tasks done through menus and fields as a person
does them, each within its action budget (tests/e2e/clerks_day.py counts the actions)."""

import datetime as dt

import pytest

from app import create_app
from models import Activity, Attendance, Child, Expense, Guardian, db
from services import clock
from tests.e2e.clerks_day import (
    BUDGETS,
    Counter,
    approve_expense,
    enter_expense,
    find_new_alert,
    parent_class,
    prepare,
    register_child,
    table,
)
from tests.e2e.conftest import login, logout, screenshot


@pytest.fixture
def day(live_server, database_url):
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "e2e-secret"})
    with app.app_context():
        data = prepare(clock.today())
        yield app, data
        db.session.remove()
        db.engine.dispose()


def test_the_clerks_day_fits_its_budgets(page, day):
    app, data = day
    counters = []

    login(page, "clerk")
    c = Counter("register")
    register_child(page, c, data["child"])
    counters.append(c)
    logout(page)

    login(page, "director1")
    c = Counter("parent_class")
    happened = parent_class(page, c, data["names"], clock.today() + dt.timedelta(days=1))
    counters.append(c)
    logout(page)

    login(page, "finance")
    c = Counter("expense")
    enter_expense(page, c, data["expense"])
    counters.append(c)
    logout(page)

    login(page, "admin")
    c = Counter("approval")
    approve_expense(page, c, data["expense"]["payee"])
    counters.append(c)
    logout(page)

    login(page, "supervisor")
    c = Counter("new_alert")
    first_row = find_new_alert(page, c)
    counters.append(c)

    print("\n" + table(counters))
    with app.app_context():
        child = db.session.scalar(db.select(Child).where(Child.name == data["child"]["name"]))
        assert child is not None and child.village.name == data["village"]
        assert child.birth_date == dt.date(2016, 5, 5) and child.gender == "F"
        assert child.director is not None and child.director.village_id == child.village_id
        links = {link.guardian.name: link for link in child.guardian_links}
        assert links["测试建国"].relation == "father" and links["测试建国"].guardian.status == "migrant"
        assert links["测试秀英"].relation == "grandparent" and links["测试秀英"].is_primary
        assert (
            db.session.scalar(db.select(Guardian.phone).where(Guardian.name == "测试秀英")) == "13900000002"
        )
        new_class = db.session.scalar(db.select(Activity).order_by(Activity.id.desc()).limit(1))
        assert new_class.starts_at.date() == clock.today() + dt.timedelta(days=1)
        assert [v.name for v in new_class.villages] == [data["village"]] and new_class.audience == ["parents"]
        signed = set(
            db.session.scalars(
                db.select(Attendance.guardian_id).where(Attendance.activity_id == new_class.id)
            )
        )
        assert {f"g:{gid}" for gid in signed} == {key for _, key in data["names"]}
        expense = db.session.scalar(db.select(Expense).where(Expense.payee == data["expense"]["payee"]))
        assert str(expense.amount) == "1280.00" and expense.spent_on == clock.today()
        assert expense.status == "approved"
    assert "巡查发现：儿童独自在家" in first_row
    assert happened["chooser_shown"] >= 3, "5 of the 30 initials are shared: the chooser must have asked"
    for counter in counters:
        assert counter.budgeted <= BUDGETS[counter.task], (
            f"{counter.task}: {counter.budgeted} actions, budget {BUDGETS[counter.task]}\n"
            + "\n".join(counter.steps)
        )
    screenshot(page, "clerks-day-alert")
