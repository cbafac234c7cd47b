"""The clerk's day (issue 13): the five daily tasks done in Chromium as a person does them, with the
actions each needs and a keystroke-level estimate of the person's seconds (tests/e2e/clerks_day.py).

The tasks run on a fresh demo database of their own (they register, sign in and spend), served by
waitress on loopback; the big benchmark database is left as it is. Without Chromium the rows are
skipped with a note.
"""

import shutil
import tempfile
import time
from pathlib import Path

from bench.harness import Row


def run_day(base_url: str, prepared: dict, password: str) -> list:
    """The five tasks in one browser; returns their Counters (with the wall seconds they took)."""
    import datetime as dt
    import os

    from playwright.sync_api import sync_playwright

    from services import clock
    from tests.e2e.clerks_day import (
        Counter,
        approve_expense,
        enter_expense,
        find_new_alert,
        parent_class,
        register_child,
    )

    counters = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu"],
            env={**os.environ, "LANG": "zh_CN.UTF-8", "LANGUAGE": "zh_CN"},
        )
        context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        page = context.new_page()
        page.set_default_timeout(30000)

        def login(username):
            page.goto(base_url + "/login")
            page.fill("#username", username)
            page.fill("#password", password)
            page.click("button[type=submit]")
            page.wait_for_url("**/admin/**")

        def logout():
            page.wait_for_load_state("load")  # the menu's script is there, not only the page's text
            page.click("#user-menu")
            page.click("#logout-button")
            page.wait_for_url("**/login**")  # the logout's own navigation, before the next login's

        steps = [
            ("clerk", "register", lambda c: register_child(page, c, prepared["child"])),
            (
                "director1",
                "parent_class",
                lambda c: parent_class(page, c, prepared["names"], clock.today() + dt.timedelta(days=1)),
            ),
            ("finance", "expense", lambda c: enter_expense(page, c, prepared["expense"])),
            ("admin", "approval", lambda c: approve_expense(page, c, prepared["expense"]["payee"])),
            ("supervisor", "new_alert", lambda c: find_new_alert(page, c)),
        ]
        for username, task, do in steps:
            login(username)
            counter = Counter(task)
            start = time.perf_counter()
            do(counter)
            counter.wall = time.perf_counter() - start
            counters.append(counter)
            logout()
        browser.close()
    return counters


def measure(bench):
    from app import create_app
    from models import db
    from seeds.demo import DEMO_PASSWORD, seed_demo
    from services import clock
    from tests.e2e.clerks_day import BUDGETS, TITLES, prepare, table
    from tests.threaded_server import serve_in_thread

    if not shutil.which("chromium") and not Path("/usr/bin/chromium").exists():
        bench.rows.append(Row("clerk's day in the browser", 0, None, "skipped: Chromium is not installed"))
        return
    folder = Path(tempfile.mkdtemp(prefix="tonghu-desk-"))
    try:
        app = create_app(
            {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'desk.db'}", "SECRET_KEY": "bench-desk"}
        )
        with app.app_context():
            db.create_all()
            seed_demo(children=240)
            prepared = prepare(clock.today())
            db.session.remove()
        with serve_in_thread(app, threads=4) as url:
            counters = run_day(url, prepared, DEMO_PASSWORD)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(table(counters), flush=True)
    for c in counters:
        note = f"估计 {c.seconds:.0f} 秒（点击{c.clicks}、按键{c.keys}、输入{c.fields}项）；浏览器实测 {c.wall:.1f} 秒"
        bench.rows.append(Row(TITLES[c.task], c.budgeted, BUDGETS[c.task], note, unit="actions"))
