"""List pages render their row actions from one url_for per action and page (views/base.py): on every
list of the app, the links and delete forms must be exactly those Flask-Admin's own actions render."""

import re

from tests.conftest import AuthActions
from views import base

# The CSRF token differs between two renders of a page; everything else must be identical.
_CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="[^"]+"|value="[^"]+" name="csrf_token"')


def _row_actions(page: str) -> list[str]:
    cells = re.findall(r'<td class="list-buttons-column">(.*?)</td>', page, re.S)
    return [_CSRF.sub("", re.sub(r"\s+", " ", c).replace("> <", "><").strip()) for c in cells]


def test_row_actions_of_every_list_are_those_flask_admin_renders(app, client, monkeypatch):
    AuthActions(client).login("admin")
    with app.test_request_context():
        lists = [
            view.get_url(f"{view.endpoint}.index_view")
            for view in app.extensions["admin"][0]._views
            if isinstance(view, base.ScopedModelView)
        ]
    ours = {}
    for url in lists:
        response = client.get(url)
        if response.status_code == 200:
            ours[url] = _row_actions(response.get_data(as_text=True))
    monkeypatch.setattr(base, "fast_row_action", lambda action: action)
    compared = 0
    for url, fast in ours.items():
        theirs = _row_actions(client.get(url).get_data(as_text=True))
        assert fast == theirs, url
        compared += bool(fast)
    assert compared >= 15, f"only {compared} lists had rows with actions"
