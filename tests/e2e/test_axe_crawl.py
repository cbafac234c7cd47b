"""The browser part of the crawl (tests/ui_crawl.py): every page, with axe-core (vendored from npm for
the tests only, injected by Playwright), must show no serious or critical accessibility violation
(WCAG 2 AA, which the Chinese standard GB/T 37668 follows): contrast, lang="zh-CN", names of links,
buttons and form fields.

Every page of the URL map is opened as the system administrator (who reaches every template); the
工作台, which differs by role, is opened as every role; and the login page and the error pages.
"""

from pathlib import Path

import pytest

from models import User, db
from tests.e2e.conftest import CHROMIUM, login
from tests.test_access import ROLES
from tests.ui_crawl import crawl_urls

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")
# WCAG 2 A and AA rules (axe tags); best-practice rules are not part of the standard.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def violations(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
            return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' ' + (n.failureSummary || '').slice(0, 160))}));
        }""",
        TAGS,
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {'; '.join(v['nodes'])}"
        for v in found
        if v["impact"] in SERIOUS
    ]


@pytest.fixture
def axe_page(browser, live_server):
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed")
    # axe is injected as an inline script, which the app's Content-Security-Policy refuses by design
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN", bypass_csp=True)
    page = context.new_page()
    page.base_url = live_server
    page.set_default_timeout(20000)
    yield page
    context.close()


def _check(page, url, problems):
    from playwright.sync_api import Error

    try:
        response = page.goto(page.base_url + url)
    except Error as error:
        if "Download is starting" in str(error):
            return 0  # an xlsx or a GeoJSON file, not a page
        raise
    if response is None:
        return 0
    if response.status >= 500:
        problems.append(f"{url}: answered {response.status}")
        return 0
    if response.headers.get("content-type", "").split(";")[0] != "text/html":
        return 0
    # 403 and 404 pages are pages of the frame like any other: checked too.
    page.wait_for_load_state("load")
    assert page.evaluate("document.documentElement.lang") == "zh-CN", f"{url}: <html> without lang=zh-CN"
    problems.extend(f"{url}: {v}" for v in violations(page))
    return 1


def test_every_page_as_the_administrator(axe_page, app):
    admin = db.session.scalar(db.select(User).where(User.username == "admin"))
    urls = crawl_urls(app, admin)
    problems: list[str] = []
    checked = _check(axe_page, "/login", problems)
    login(axe_page, "admin")
    for url in urls:
        checked += _check(axe_page, url, problems)
    assert checked > 40
    assert not problems, f"{len(problems)} serious or critical violations:\n" + "\n".join(problems[:40])


@pytest.mark.parametrize("username", [r for r in ROLES if r != "admin"])
def test_the_workbench_of_every_role(axe_page, username):
    problems: list[str] = []
    login(axe_page, username)
    _check(axe_page, "/admin/", problems)
    _check(axe_page, "/admin/child/new/", problems)  # 403 for some roles: the error page is checked too
    assert not problems, "\n".join(problems)
