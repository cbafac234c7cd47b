"""The desk's frame and screens in Chromium (issue 13): the main menu on one row at 1366 and 1024 px
with 系统管理 last, list tables that scroll sideways at 1024 px instead of breaking words one
character per line, and the screens the issue's note shows (child form after typing an ID, the
ambiguous-match chooser, 待我审批, the Chinese 404 and 403 pages, the audit log)."""

import datetime as dt
from decimal import Decimal

import pytest

from app import create_app
from models import Activity, Expense, FundSource, User, Village, db
from services import clock
from services.funds import awaiting_count
from tests.e2e.clerks_day import prepare
from tests.e2e.conftest import ARTIFACTS, login, logout

GROUP_TOPS = """() => {
    const more = document.getElementById('menu-more');
    const items = Array.from(document.querySelectorAll('#main-menu > li'))
        .filter(li => li !== more || !more.hidden);
    const names = Array.from(document.querySelectorAll(
        '#main-menu > li:not(#menu-more) > a, #menu-more-items > li > a')).map(a => a.textContent.trim());
    return {tops: items.map(li => li.offsetTop), names: names,
            navbar: document.querySelector('.app-navbar').offsetHeight,
            link: items[0].offsetHeight};
}"""

# Cells of a list whose text is laid out narrower than two characters: a word broken one
# character per line.
NARROW_CELLS = """() => Array.from(document.querySelectorAll('table.model-list td, table.model-list th'))
    .filter(td => td.offsetParent !== null && td.innerText.trim().length >= 2)
    .filter(td => {
        const size = parseFloat(getComputedStyle(td).fontSize);
        const style = getComputedStyle(td);
        const inner = td.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
        return inner < 2 * size;
    }).map(td => td.innerText.trim().slice(0, 20))"""


def shot(page, name: str) -> None:
    """What the window shows (not the full page): the note's screenshots stay small."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


@pytest.mark.parametrize("width", [1366, 1024])
@pytest.mark.parametrize("username", ["admin", "clerk", "inspector"])
def test_the_menu_fits_one_row_with_system_last(page, username, width):
    page.set_viewport_size({"width": width, "height": 768})
    login(page, username)
    page.goto(page.base_url + "/admin/")
    page.wait_for_load_state("load")
    menu = page.evaluate(GROUP_TOPS)
    assert len(set(menu["tops"])) == 1, f"{username} at {width}px: the menu wraps ({menu})"
    assert menu["navbar"] < 3 * menu["link"], f"{username} at {width}px: the bar is {menu['navbar']}px high"
    if username == "admin":
        assert menu["names"][-1] == "系统管理", menu["names"]


def test_list_tables_scroll_sideways_at_1024(page):
    page.set_viewport_size({"width": 1024, "height": 768})
    login(page, "admin")
    for url in ("/admin/child/", "/admin/expense/", "/admin/visit/", "/admin/auditlog/", "/admin/activity/"):
        page.goto(page.base_url + url)
        page.wait_for_load_state("load")
        assert page.locator("table.model-list td").count() > 0, url
        narrow = page.evaluate(NARROW_CELLS)
        assert not narrow, f"{url}: cells broken one character per line: {narrow[:10]}"
        # The page itself does not scroll sideways: the table's own wrapper does.
        assert page.evaluate("document.documentElement.scrollWidth") <= 1024 + 1, url


@pytest.fixture
def prepared(live_server, database_url):
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "e2e-secret"})
    with app.app_context():
        data = prepare(clock.today())
        finance = db.session.scalar(db.select(User).where(User.username == "finance"))
        source = db.session.scalar(db.select(FundSource).order_by(FundSource.id).limit(1))
        db.session.add(
            Expense(
                spent_on=clock.today(),
                amount=Decimal("1280.00"),
                source_id=source.id,
                category="activity",
                payee="罗云镇文印店",
                purpose="家长课堂资料印制",
                voucher_no="PZ-DESK-1",
                invoice_attached=True,
                status="draft",
                handler_id=finance.id,
                version=1,
            )
        )
        village = db.session.scalar(db.select(Village).where(Village.name == data["village"]))
        tomorrow = dt.datetime.combine(clock.today() + dt.timedelta(days=1), dt.time(9))
        db.session.add(
            Activity(
                kind="red_class",
                title="明天的家长课堂",
                starts_at=tomorrow,
                ends_at=tomorrow + dt.timedelta(hours=2),
                audience=["parents"],
                villages=[village],
            )
        )
        db.session.commit()
        yield app, data
        db.session.remove()
        db.engine.dispose()


def test_the_screens_of_the_note(page, prepared):
    app, data = prepared
    page.set_viewport_size({"width": 1366, "height": 768})

    # The child form after typing an ID number: region, birth date, gender and age at once.
    login(page, "clerk")
    page.goto(page.base_url + "/admin/child/new/")
    page.fill("#name", data["child"]["name"])
    page.locator("#id_number").type(data["child"]["id_number"])
    check = page.locator("#id-check.text-success-strong")
    check.wait_for()
    assert "出生 2016-05-05" in check.inner_text() and "女" in check.inner_text()
    assert page.input_value("#birth_date") == "2016-05-05"
    assert "岁" in page.locator("#age-note").inner_text()
    shot(page, "desk-child-form-id")
    logout(page)

    # The ambiguous-match chooser: two people with the same initials on director1's roll.
    login(page, "director1")
    page.goto(page.base_url + "/admin/signin")
    page.locator("#upcoming-activities tr", has_text="明天的家长课堂").locator("a.signin-link").first.click()
    page.locator("#roll-search").wait_for()
    unticked = page.eval_on_selector_all(
        "#roll tbody tr", "rows => rows.filter(r => !r.querySelector('input').checked).map(r => r.dataset.i)"
    )
    shared = [i for i, _ in data["names"] if unticked.count(i) > 1]
    assert shared, "prepare() gives some of the 30 a twin with the same initials"
    typed = shared[0]
    ticked = page.locator("#roll tbody input[name=present]:checked").count()
    page.locator("#roll-search").type(typed)
    page.keyboard.press("Enter")
    chooser = page.locator("#match-chooser")
    chooser.wait_for()
    assert chooser.locator(".match-choice").count() >= 2
    assert (
        page.locator("#roll tbody input[name=present]:checked").count() == ticked
    )  # nothing ticked by itself
    shot(page, "desk-match-chooser")
    logout(page)

    # 待我审批 as the administrator, with a draft that finance entered.
    with app.app_context():
        admin = db.session.scalar(db.select(User).where(User.username == "admin"))
        waiting = awaiting_count(admin.id)
    assert waiting >= 1
    login(page, "admin")
    card = page.locator("#awaiting-approval")
    assert str(waiting) in card.inner_text()
    card.locator("a").first.click()
    page.locator("#approval-table").wait_for()
    row = page.locator("#approval-table tr", has_text="罗云镇文印店")
    assert row.locator("button.approve-button").count() == 1 and "1,280.00" in row.inner_text()
    # The amount and the date read on one line each (a line box per line of text).
    lines = row.locator("td").evaluate_all(
        "cells => cells.slice(0, 3).map(td => { const r = document.createRange(); r.selectNodeContents(td);"
        " return new Set(Array.from(r.getClientRects()).map(b => Math.round(b.top))).size; })"
    )
    assert lines[1:3] == [1, 1], lines
    shot(page, "desk-awaiting-approval")

    # The audit log in people's words.
    page.goto(page.base_url + "/admin/auditlog/")
    assert page.locator("table.model-list td", has_text="系统管理员").count() > 0
    shot(page, "desk-audit-log")

    # The Chinese 404 page inside the layout, with a way back.
    response = page.goto(page.base_url + "/admin/no-such-page/")
    assert response.status == 404
    assert page.locator("#main-menu").is_visible()
    back = page.locator("a", has_text="回到工作台")
    assert back.count() == 1
    shot(page, "desk-404")
    back.click()
    page.wait_for_url("**/admin/")
    logout(page)

    # The 403 page names the roles that may.
    login(page, "finance")
    response = page.goto(page.base_url + "/admin/child/new/")
    assert response.status == 403
    assert "可以进行此操作的角色" in page.content() and page.locator("#main-menu").is_visible()
    assert page.locator("a", has_text="回到工作台").count() == 1
    shot(page, "desk-403")


def test_no_level_is_shown_until_every_indicator_is_scored(page, database_url):
    from tests.e2e.test_assessment_e2e import a_child_to_assess, choose

    child_id, _ = a_child_to_assess(database_url)
    page.set_viewport_size({"width": 1366, "height": 768})
    login(page, "director1")
    page.goto(page.base_url + f"/admin/assessment-form/new/?child_id={child_id}")
    codes = page.eval_on_selector_all(".indicator", "els => els.map(e => e.dataset.code)")
    assert len(codes) == 11
    assert page.inner_text("#live-level") == "未评分" and page.inner_text("#bar-level") == "未评分"
    choose(page, f"score_{codes[0]}-0")  # one 严重问题: no red "红" yet
    assert page.inner_text("#live-level") == "未评分"
    assert page.get_attribute("#live-level", "data-level") == ""
    assert page.inner_text("#live-answered") == "已评 1 / 11 项"
    assert "还有 10 项未评分" in page.inner_text("#live-meaning")
    for code in codes[1:-1]:
        choose(page, f"score_{code}-3")
    assert page.inner_text("#bar-level") == "未评分"
    choose(page, f"score_{codes[-1]}-3")  # 30 of 33: green once all 11 are scored
    assert page.get_attribute("#live-level", "data-level") == "green"
    assert page.inner_text("#bar-total") == "30"
    # The bar with the total and level stays in view at the bottom of a long form.
    page.mouse.wheel(0, 5000)
    assert page.locator(".live-bar").is_visible()
    box = page.locator(".live-bar").bounding_box()
    assert box["y"] + box["height"] <= 768 + 1
