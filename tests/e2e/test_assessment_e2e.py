"""In Chromium: an assessment is filled with the level following each click, submitted, approved by
the supervisor, and the risk map's figures for the village move. The map is kept as a screenshot."""

import re

from sqlalchemy import create_engine, text

from tests.e2e.conftest import login, logout, screenshot

VILLAGE = "云岭村"


def a_child_to_assess(database_url):
    """An unassessed-or-not-red child of the first village with no assessment awaiting review."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT c.id, c.name FROM child c JOIN village v ON v.id = c.village_id "
                "WHERE v.name = :village AND c.archived_at IS NULL "
                "AND (c.current_level IS NULL OR c.current_level <> 'red') "
                "AND NOT EXISTS (SELECT 1 FROM assessment a WHERE a.child_id = c.id AND a.status <> 'approved') "
                "ORDER BY c.id LIMIT 1"
            ),
            {"village": VILLAGE},
        ).one()
    engine.dispose()
    return row


def red_count_on_map(page) -> int:
    page.goto(page.base_url + "/admin/risk-map/")
    page.wait_for_selector("#risk-map[data-ready='1']")
    cell = page.locator(f"#village-matrix tr[data-village='{VILLAGE}'] td[data-level='red']")
    return int(cell.inner_text())


def choose(page, input_id: str):
    """Click an option's label, as a person does (the styled inputs themselves are hidden)."""
    page.click(f"label[for='{input_id}']")


def fill_scores(page, value: str):
    for code in page.eval_on_selector_all(".indicator", "els => els.map(e => e.dataset.code)"):
        choose(page, f"score_{code}-{value}")


def test_assess_live_level_approve_and_see_the_map_change(page, database_url):
    child_id, child_name = a_child_to_assess(database_url)

    login(page, "supervisor")
    before = red_count_on_map(page)
    # The supervisor sees the level follow the clicks on a form too (not saved).
    page.goto(page.base_url + f"/admin/assessment-form/new/?child_id={child_id}")
    fill_scores(page, "3")
    assert page.inner_text("#live-total") == "33"
    assert page.get_attribute("#live-level", "data-level") == "green"
    logout(page)

    # A village's 儿童主任 assesses the family; the level follows each click.
    login(page, "director1")
    page.goto(page.base_url + f"/admin/assessment-form/new/?child_id={child_id}")
    fill_scores(page, "3")
    assert page.get_attribute("#live-level", "data-level") == "green"
    codes = page.eval_on_selector_all(".indicator", "els => els.map(e => e.dataset.code)")
    for code in codes[:3]:  # 33 - 3*3 = 24: yellow
        choose(page, f"score_{code}-0")
    assert page.inner_text("#live-total") == "24"
    assert page.get_attribute("#live-level", "data-level") == "yellow"
    choose(page, "veto-living_alone")
    assert page.get_attribute("#live-level", "data-level") == "red"
    choose(page, "method-home_visit")
    page.locator(".team-list label").first.click()
    page.fill("#notes", "入户走访：儿童独自居住，祖母住院")
    screenshot(page, "assessment-form")
    page.click("#submit-review")
    page.wait_for_selector("#assessment-status")
    assert "待审核" in page.inner_text("#assessment-status")
    assert page.locator("#approve-button").count() == 0  # a 儿童主任 does not review
    logout(page)

    # The supervisor approves it; the child turns red and the 兜底 measure is planned.
    login(page, "supervisor")
    page.goto(page.base_url + "/admin/")
    screenshot(page, "dashboard")
    page.click(f"#work-review a:has-text('{child_name}')")
    page.click("#approve-button")
    page.wait_for_selector("#level-timeline")
    assert "红" in page.inner_text("#current-level")
    assert "兜底保障政策对接" in page.inner_text("#service-history")
    assert re.search("开立个案", page.content())

    after = red_count_on_map(page)
    assert after == before + 1
    page.locator(f"#village-matrix tr[data-village='{VILLAGE}'] td[data-level='red'] a").wait_for()
    screenshot(page, "risk-map")
    page.click(f"#village-matrix tr[data-village='{VILLAGE}'] td[data-level='red'] a")
    page.wait_for_url("**/admin/child/**")
    assert child_name in page.content()


def test_villages_without_a_boundary_are_drawn_as_points(page, database_url):
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE village SET boundary = NULL WHERE name <> :village"), {"village": VILLAGE})
    engine.dispose()
    login(page, "clerk")
    page.goto(page.base_url + "/admin/risk-map/?as_of=2026-06-30")
    page.wait_for_selector("#risk-map[data-ready='1']")
    assert page.locator("#village-matrix tbody tr").count() == 13  # 12 villages and the total
    assert "2026-06-30" in page.inner_text("#map-caption")
    screenshot(page, "risk-map-points")
