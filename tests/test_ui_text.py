"""Every page as every role: no English library string, no "__None", no raw code where a label
belongs (tests/ui_crawl.py says what is looked for and where)."""

import pytest

from models import User, db
from tests.conftest import AuthActions
from tests.ui_crawl import Checker, crawl_urls, visible_text

ROLES = ["admin", "clerk", "supervisor", "director1", "social", "finance", "inspector"]


@pytest.mark.parametrize("username", ROLES)
def test_every_page_reads_in_chinese(app, client, username):
    checker = Checker()
    user = db.session.scalar(db.select(User).where(User.username == username))
    AuthActions(client).login(username)
    problems, pages = [], 0
    for url in crawl_urls(app, user):
        response = client.get(url)
        if response.status_code >= 500:
            problems.append(f"{url}: answered {response.status_code}")
            continue
        # Redirects and files are not pages; 4xx pages (403 for a role, 404) are read like any other.
        if response.mimetype != "text/html" or 300 <= response.status_code < 400:
            continue
        pages += 1
        for finding in checker.findings(response.get_data(as_text=True)):
            problems.append(f"{url} ({response.status_code}): {finding}")
    assert pages > 5
    assert not problems, f"{username}: {len(problems)} findings\n" + "\n".join(problems[:60])


def test_the_crawl_finds_what_it_looks_for(app):
    checker = Checker()
    page = (
        '<html><body><select><option value="__None">__None</option></select>'
        '<div class="alert">Failed to create record.</div>'
        "<td>professional</td><td>caring_mother_id</td>"
        '<input type="text" placeholder="Please select model"><button>选中的</button>'
        '<input data-placeholder="请选择模型">'
        '<input type="hidden" value="training"><script>var x = "No matches found";</script></body></html>'
    )
    found = "\n".join(checker.findings(page))
    assert "__None" in found
    assert "Failed to create record" in found
    assert "professional" in found and "ExpenseCategory" in found
    assert "caring_mother_id" in found
    assert "Please select model" in found and "请选择模型" in found
    assert "“选中的” as a line" in found
    assert not checker.findings("<html><body><p>对选中的记录</p></body></html>")  # words in a sentence
    assert "training" not in found  # a hidden input is not read by anybody
    assert "No matches found" not in found  # nor is a script
    assert visible_text('<p>甲<span title="说明">乙</span></p>') == "甲\n说明\n乙"
