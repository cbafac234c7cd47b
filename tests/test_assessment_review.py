"""The reviewer's view of a submitted assessment: the previous approved level and score beside the new
ones, the indicators that changed, a warning when the level moves two steps or more, and the
approve/return bar at the top of the page (sticky), not at the bottom of a long page."""

import re

import pytest

from services import clock
from services.assessment import approve, compare_with_previous
from tests.conftest import AuthActions, csrf_token
from tests.test_assessment import TODAY, draft, first_child, user


@pytest.fixture(autouse=True)
def today(app):
    clock.set_today(TODAY)


def approved_red_then_submitted_green():
    child = first_child()
    red = draft(child, 7, on=TODAY.replace(day=1), by="social")
    approve(red, user_id=user("supervisor").id, role="supervisor", today=TODAY)
    green = draft(child, 30, on=TODAY, by="social")
    return red, green


def test_the_comparison_names_the_changes(app):
    red, green = approved_red_then_submitted_green()
    comparison = compare_with_previous(green)
    assert comparison.previous.id == red.id
    assert (comparison.previous.total_score, comparison.current_total, comparison.total_delta) == (7, 30, 23)
    assert comparison.level_steps == -3 and comparison.big_move
    assert sum(c.delta for c in comparison.changed) == 23
    assert all(c.before is not None and c.after is not None for c in comparison.changes)


def test_the_review_page_warns_of_a_big_move_and_keeps_the_bar_on_top(app, client):
    red, green = approved_red_then_submitted_green()
    AuthActions(client).login("supervisor")
    html = client.get(f"/admin/assessment-form/edit/?id={green.id}").get_data(as_text=True)
    bar = html.index('id="review-panel"')
    assert bar < html.index('id="assessment-form"')  # above the long form
    assert "review-bar" in html and "position: sticky" in html
    assert 'id="big-move-warning"' in html and "等级变化3级（红→绿）" in html
    previous = re.search(r'id="review-previous">(.*?)</span>\s*<span', html, re.S).group(1)
    assert "7分" in previous and str(red.assessed_on) in previous
    assert 'id="indicator-changes"' in html and "上次 " in html and "（+" in html
    assert 'id="approve-button"' in html and 'id="return-button"' in html


def test_a_one_step_move_has_no_warning_and_a_first_assessment_says_so(app, client):
    child = first_child()
    first = draft(child, 22, on=TODAY.replace(day=1), by="social")  # yellow
    AuthActions(client).login("supervisor")
    html = client.get(f"/admin/assessment-form/edit/?id={first.id}").get_data(as_text=True)
    assert "首次评估（无已审核的上次评估）" in html and "big-move-warning" not in html
    token = csrf_token(client, f"/admin/assessment-form/edit/?id={first.id}")
    client.post(f"/admin/assessment-form/approve/?id={first.id}", data={"csrf_token": token})
    orange = draft(child, 15, on=TODAY, by="social")
    html = client.get(f"/admin/assessment-form/edit/?id={orange.id}").get_data(as_text=True)
    assert "big-move-warning" not in html and "22分" in html
