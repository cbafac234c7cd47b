"""List pages render faster than Flask-Admin's template would (views/base.py, admin/scoped_list.html):
row actions from one url_for per action and page, data cells joined in Python. On every list of the
app, each row must read exactly as Flask-Admin's own template and row actions write it."""

import re

from tests.conftest import AuthActions
from views import base

# The CSRF token differs between two renders of a page; everything else must be identical.
_CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="[^"]+"|value="[^"]+" name="csrf_token"')
STOCK = "admin/model/list.html"


def _rows(page: str) -> list[str]:
    body = page.split("</thead>", 1)[-1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    # Whitespace between and inside tags' edges is not part of what a browser shows.
    return [_CSRF.sub("", re.sub(r"\s+<", "<", re.sub(r">\s+", ">", r)).strip()) for r in rows]


def _without_card(row: str) -> str:
    """A row of ours less what only a phone shows (views/base.py Card): its card cell, the marks
    of the cells that are the card's facts, and their labels."""
    row = re.sub(r'<td class="card-head">.*?</td>', "", row, flags=re.S)
    row = row.replace('<td class="card-check">', "<td>").replace(" card-fact", "")
    return re.sub(r' data-label="[^"]*"', "", row)


def _cells(row: str) -> list[str]:
    return [c.strip() for c in re.findall(r'<td class="col-[^"]*">(.*?)</td>', row)]


def test_rows_of_every_list_read_as_flask_admin_writes_them(app, client, monkeypatch):
    AuthActions(client).login("admin")
    views = [v for v in app.extensions["admin"][0]._views if isinstance(v, base.ScopedModelView)]
    with app.test_request_context():
        urls = {v.endpoint: v.get_url(f"{v.endpoint}.index_view") for v in views}
    ours = {}
    for view in views:
        response = client.get(urls[view.endpoint])
        if response.status_code == 200:
            ours[view.endpoint] = [_without_card(r) for r in _rows(response.get_data(as_text=True))]
    monkeypatch.setattr(base, "fast_row_action", lambda action: action)
    for view in views:
        if view.list_template == "admin/scoped_list.html":
            monkeypatch.setattr(view, "list_template", STOCK)
    compared = 0
    for view in views:
        if view.endpoint not in ours:
            continue
        theirs = [_without_card(r) for r in _rows(client.get(urls[view.endpoint]).get_data(as_text=True))]
        if view.list_template == STOCK:
            assert ours[view.endpoint] == theirs, view.endpoint  # the whole row
        else:  # a template of its own (which icons a row shows): its data cells
            assert [_cells(r) for r in ours[view.endpoint]] == [_cells(r) for r in theirs], view.endpoint
        compared += bool(ours[view.endpoint] and _cells(ours[view.endpoint][0]))
    assert compared >= 15, f"only {compared} lists had rows"


def test_the_child_count_is_the_active_children_whatever_the_list_asks(app, client):
    """The whole register's count is taken as all children less the archived (a faster query): it must
    equal the active children, as do the counts of a search and a filter."""
    import datetime as dt

    from models import Child, db

    child = db.session.scalar(db.select(Child).order_by(Child.id).limit(1))
    child.archived_at = dt.datetime(2026, 5, 1)
    child.status = "moved"
    db.session.commit()
    AuthActions(client).login("clerk")

    def shown(url):
        page = client.get(url).get_data(as_text=True)
        return int(re.search(r'class="nav-link active">[^<(]*\((\d+)\)</a>', page).group(1))

    active = db.session.scalar(
        db.select(db.func.count()).select_from(Child).where(Child.archived_at.is_(None))
    )
    assert shown("/admin/child/") == active
    surname = db.session.scalar(db.select(Child.name).where(Child.id != child.id).limit(1))[0]
    by_name = db.session.scalar(
        db.select(db.func.count())
        .select_from(Child)
        .where(
            Child.archived_at.is_(None), Child.name.startswith(surname) | Child.name_given.startswith(surname)
        )
    )
    assert shown(f"/admin/child/?search={surname}") == by_name


def test_the_menu_kept_per_role_is_the_menu_each_user_would_get(app):
    """The menu is rendered once per role and page: for another user of the same role it must be what
    a fresh rendering gives."""
    menus = app.extensions["tonghu_menus"]
    pages = ["/admin/", "/admin/child/", "/admin/alerts/", "/admin/expense/", "/admin/user/"]

    def menu(username, url):
        client = app.test_client()
        AuthActions(client).login(username)
        response = client.get(url)
        page = response.get_data(as_text=True)
        found = re.search(
            r'<ul class="nav navbar-nav mr-auto" id="main-menu">(.*?)<ul class="nav navbar-nav navbar-right">',
            page,
            re.S,
        )
        return response.status_code, found.group(1) if found else None

    for first, second in (
        ("director1", "director2"),
        ("admin", "admin"),
        ("finance", "finance"),
        ("social", "social"),
    ):
        for url in pages:
            menus.clear()
            status, _ = menu(first, url)  # fills the cache for the role and page
            cached = menu(second, url)
            menus.clear()
            fresh = menu(second, url)
            assert cached == fresh, (first, second, url)
            assert status != 200 or fresh[1], f"no menu found on {url}"
