"""director1 in Chromium: opens the red walk, ticks 30 children and guardians by typing and Enter, saves once."""

from tests.e2e.conftest import login, screenshot

RED_WALK = "重走微长征·童心向未来"


def _search_term(row: dict, i: int) -> str:
    """Alternate the three ways people are found: ID last 4, pinyin initials, Chinese name."""
    if i % 3 == 0 and row["d"]:
        return row["d"]
    if i % 3 == 1 and row["i"]:
        return row["i"]
    return row["n"]


def test_director_ticks_thirty_with_the_keyboard_and_saves_once(page):
    login(page, "director1")
    page.goto(page.base_url + "/admin/activity/")
    row = page.locator("table.model-list tr", has_text=RED_WALK)
    row.locator("a[title='活动签到']").click()
    page.wait_for_url("**/admin/activity/attendance/**")
    page.locator("#roll-search").wait_for()

    roll = page.eval_on_selector_all(
        "#roll tbody tr",
        "rows => rows.map(r => ({k: r.dataset.k, n: r.cells[1].textContent, i: r.dataset.i, d: r.dataset.d,"
        " key: r.querySelector('input').value, checked: r.querySelector('input').checked}))",
    )
    people = [r for r in roll if r["k"] in ("child", "guardian") and not r["checked"]]
    assert len(people) >= 30, f"the roll of director1's village has only {len(people)} people"
    assert {r["k"] for r in people[:30]} <= {"child", "guardian"}
    # Pick 30 of both kinds: children first in the roll, so take from each end.
    children = [r for r in people if r["k"] == "child"]
    guardians = [r for r in people if r["k"] == "guardian"]
    chosen = children[:15] + guardians[:15]
    chosen += [r for r in people if r not in chosen][: 30 - len(chosen)]

    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    search = page.locator("#roll-search")
    asked = 0
    for i, person in enumerate(chosen):
        search.fill("")
        search.type(_search_term(person, i))
        page.keyboard.press("Enter")
        chooser = page.locator("#match-chooser")
        if chooser.is_visible():
            # Several people match: the list waits for the choice (the first is never taken by itself).
            asked += 1
            assert page.locator(f"#roll tbody input[value='{person['key']}']").is_checked() is False
            choice = chooser.locator(".match-choice", has_text=person["n"])
            if choice.count() > 1:
                choice = choice.filter(has_text=person["d"])
            choice.first.click()
        assert page.locator(f"#roll tbody input[value='{person['key']}']").is_checked(), person
    assert page.locator("#att-ticked").inner_text() == "30"
    assert page.locator("#roll tbody input[name=present]:checked").count() == 30
    assert "已勾选" in page.locator("#last-ticked").inner_text()

    page.keyboard.press("Control+s")
    page.wait_for_load_state("load")
    page.locator(".alert-success", has_text="签到已保存").wait_for()
    assert len(posts) == 1

    page.reload()
    page.locator("#roll-search").wait_for()
    assert page.locator("#roll tbody input[name=present]:checked").count() == 30
    assert page.locator("#att-ticked").inner_text() == "30"
    page.select_option("#f-state", "on")
    screenshot(page, "attendance")


def test_clerk_filters_ticks_a_village_adds_a_walk_in_and_unticks(page):
    login(page, "clerk")
    page.goto(page.base_url + "/admin/activity/")
    page.locator("table.model-list tr", has_text="业务培训").locator("a[title='活动签到']").click()
    page.locator("#roll-search").wait_for()
    before = int(page.locator("#att-ticked").inner_text())
    village = page.locator("#f-village option").nth(2)
    page.select_option("#f-village", village.get_attribute("value"))
    page.select_option("#f-state", "off")
    shown = int(page.locator("#match-count").inner_text())
    assert shown > 0
    page.click("#tick-shown")
    page.fill("#walkin-name", "外单位观摩员")
    page.keyboard.press("Enter")
    assert int(page.locator("#att-ticked").inner_text()) == before + shown + 1
    # Unticking one of those again before saving.
    page.select_option("#f-state", "")
    page.locator("#roll tbody tr:not([hidden]) input[name=present]:checked").first.uncheck()
    page.click("#save-attendance")
    page.locator(".alert-success", has_text="签到已保存").wait_for()
    assert int(page.locator("#att-ticked").inner_text()) == before + shown
    assert page.locator("#roll tbody tr", has_text="外单位观摩员").count() == 1


def _training(database_url):
    import datetime as dt

    from app import create_app
    from choices import ActivityKind, Audience, StaffKind
    from models import Activity, Staff, Village, db

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "facts"})
    with app.app_context():
        activity = Activity(
            kind=ActivityKind.TRAINING.value,
            title="儿童主任、网格员业务培训（浏览器）",
            starts_at=dt.datetime(2026, 6, 6, 9, 0),
            ends_at=dt.datetime(2026, 6, 6, 12, 30),
            audience=[Audience.STAFF.value],
            staff_kinds=[StaffKind.DIRECTOR.value, StaffKind.GRID.value],
            version=1,
        )
        db.session.add(activity)
        db.session.commit()
        first, second = db.session.scalars(db.select(Village).order_by(Village.sort_order).limit(2)).all()
        directors = db.session.scalars(
            db.select(Staff.id).where(Staff.kind == "director", Staff.village_id.in_([first.id, second.id]))
        ).all()
        facts = {"id": activity.id, "villages": [str(first.id), str(second.id)], "directors": set(directors)}
        db.session.remove()
        db.engine.dispose()
    return app, facts


def test_clerk_signs_in_the_directors_of_two_villages_with_two_clicks(page, database_url):
    app, facts = _training(database_url)
    login(page, "clerk")
    page.goto(page.base_url + f"/admin/activity/attendance/?id={facts['id']}")
    page.locator("#roll-search").wait_for()
    kinds = set(page.eval_on_selector_all("#roll tbody tr", "rows => rows.map(r => r.dataset.s)"))
    assert kinds == {"director", "grid"}  # the training is for these two kinds only
    page.select_option("#f-staff-kind", "director")
    for village in facts["villages"]:
        page.select_option("#f-village", village)
        assert page.locator("#match-count").inner_text() == "1"
        page.click("#tick-shown")
    assert page.locator("#att-ticked").inner_text() == "2"
    screenshot(page, "training-roll")
    page.click("#save-attendance")
    page.locator(".alert-success", has_text="签到已保存").wait_for()

    from models import Attendance, db
    from services.activities import training_hours

    with app.app_context():
        signed = set(
            db.session.scalars(db.select(Attendance.staff_id).where(Attendance.activity_id == facts["id"]))
        )
        hours = {r.staff.id: r for r in training_hours(db.session, 2026)}
        db.session.remove()
        db.engine.dispose()
    assert signed == facts["directors"]
    for staff_id in signed:  # the demo's first training (7.5 h) and this one (3.5 h)
        assert hours[staff_id].sessions == 2 and str(hours[staff_id].hours) == "11.0"
