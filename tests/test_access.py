"""Every URL of the app, walked as every role (CTFd's test_admin_access pattern).

New views are covered the day they are added: the walk reads the app's URL map and each view's
``area``, and checks the answer against services/permissions.py. A marked child of another village
must never show up for director1, on any page, nor through a hand-typed id.
"""

import datetime as dt
import re

import pytest

from choices import Role
from models import Child, ChildGuardian, Guardian, User, Village, db
from services.permissions import can_read, can_write
from services.scoping import scope_clause
from tests.conftest import AuthActions, a_child

ROLES = ["admin", "clerk", "supervisor", "director1", "director2", "social", "finance", "inspector"]
MARKER_CHILD = "泄露测试甲"
MARKER_GUARDIAN = "泄露测试监护人"
WRITE_METHODS = {"create_view", "edit_view", "delete_view", "action_view", "ajax_update"}
# Endpoints that need a query argument to do anything; walked separately below.
NEEDS_ID = {"details_view", "edit_view"}


def role_of(username: str) -> str:
    return db.session.scalar(db.select(User.role).where(User.username == username))


def plant_marker_in_second_village():
    second = db.session.scalars(db.select(Village).order_by(Village.sort_order)).all()[1]
    child = Child(
        name=MARKER_CHILD,
        id_number="500102201501010019",
        birth_date=dt.date(2015, 1, 1),
        gender="M",
        village_id=second.id,
    )
    guardian = Guardian(name=MARKER_GUARDIAN, village_id=second.id, phone="13800000000")
    child.guardian_links.append(ChildGuardian(guardian=guardian, relation="mother", is_primary=True))
    db.session.add(child)
    db.session.commit()
    return child


def admin_views(app):
    return [v for v in app.extensions["admin"][0]._views if getattr(v, "endpoint", None)]


def view_for_endpoint(app, endpoint):
    blueprint = endpoint.split(".", 1)[0]
    for view in admin_views(app):
        if view.endpoint == blueprint:
            return view
    return None


def walkable_rules(app):
    """GET rules without path arguments: every page a person can open by typing its address."""
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.arguments or rule.endpoint.endswith("static"):
            continue
        yield rule


def expected_access(app, endpoint, role):
    """'read', 'write' or None for an endpoint; None also for endpoints outside Flask-Admin."""
    view = view_for_endpoint(app, endpoint)
    if view is None or not hasattr(view, "area"):
        return "open"
    method = endpoint.split(".", 1)[1]
    if method in getattr(view, "extra_write_endpoints", ()):
        return "write" if can_write(role, view.area) else None
    if method in WRITE_METHODS:
        return "write" if can_write(role, view.area) and _view_allows(view, method) else None
    return "read" if can_read(role, view.area) else None


ALLOW_FLAGS = {"create_view": "allow_create", "edit_view": "allow_edit", "delete_view": "allow_delete"}


def _view_allows(view, method):
    return getattr(view, ALLOW_FLAGS.get(method, "may_write"), True)


@pytest.mark.parametrize("username", ROLES)
def test_every_url_as_every_role(app, client, username):
    marker = plant_marker_in_second_village()
    AuthActions(client).login(username)
    role = role_of(username)
    scope = db.session.get(
        User, db.session.scalar(db.select(User.id).where(User.username == username))
    ).village_scope()
    marker_visible = scope is None or marker.village_id in scope
    checked = 0
    for rule in walkable_rules(app):
        method = rule.endpoint.split(".", 1)[-1]
        if method in NEEDS_ID:
            continue
        response = client.get(rule.rule)
        expected = expected_access(app, rule.endpoint, role)
        status = response.status_code
        assert status != 500, f"{username} {rule.rule}: server error"
        # Pages, JSON and downloads of a logged-in user carry personal data: never cached.
        assert response.headers.get("Cache-Control") == "no-store", f"{username} {rule.rule}: cacheable"
        if expected is None:
            assert status == 403, f"{username} may not open {rule.rule} but got {status}"
        elif expected in ("read", "write"):
            assert status in (200, 302, 400, 404), f"{username} {rule.rule}: {status}"
        if status == 200 and not marker_visible and response.mimetype in ("text/html", "application/json"):
            body = response.get_data(as_text=True)
            assert MARKER_CHILD not in body, f"{username} sees another village's child on {rule.rule}"
            assert MARKER_GUARDIAN not in body, f"{username} sees another village's guardian on {rule.rule}"
        checked += 1
    assert checked > 20


def test_walk_would_catch_a_leak(app, client):
    """The marker is found where it may be seen: the absence checks above can fail."""
    plant_marker_in_second_village()
    AuthActions(client).login("clerk")
    assert MARKER_CHILD in client.get("/admin/child/").get_data(as_text=True)
    assert MARKER_GUARDIAN in client.get("/admin/guardian/").get_data(as_text=True)


def out_of_scope_ids(app, village_ids):
    """For each scoped model view: the id of one row director1 must not reach."""
    found = {}
    for view in admin_views(app):
        model = getattr(view, "model", None)
        if model is None:
            continue
        clause = scope_clause(model, village_ids)
        if clause is None:
            continue
        pk = model.__mapper__.primary_key[0]
        row = db.session.execute(db.select(pk).where(~clause).limit(1)).first()
        if row is not None:
            found[view.endpoint] = row[0]
    return found


@pytest.mark.parametrize("username", ["director1", "social"])
def test_hand_typed_ids_of_other_villages(app, client, username):
    marker = plant_marker_in_second_village()
    user = db.session.scalar(db.select(User).where(User.username == username))
    targets = out_of_scope_ids(app, user.village_scope())
    marker_visible = marker.village_id in user.village_scope()
    assert "child" in targets and "guardian" in targets
    AuthActions(client).login(username)
    for endpoint, record_id in targets.items():
        for action in ("details", "edit"):
            url = f"/admin/{endpoint}/{action}/?id={record_id}"
            response = client.get(url, follow_redirects=True)
            body = response.get_data(as_text=True)
            assert response.status_code in (200, 403), url
            if response.status_code == 200:
                assert "记录不存在" in body, f"{username} opened {url}"
                assert marker_visible or MARKER_CHILD not in body
        # A delete aimed at another village's record removes nothing.
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/").get_data(as_text=True))
        client.post(
            f"/admin/{endpoint}/delete/",
            data={"id": record_id, "csrf_token": token.group(1) if token else ""},
        )
    db.session.expire_all()
    for endpoint, record_id in targets.items():
        view = view_for_endpoint(app, f"{endpoint}.index_view")
        assert db.session.get(view.model, record_id) is not None, f"{endpoint} {record_id} was deleted"


def test_director_edit_post_to_other_village_changes_nothing(app, client):
    marker = plant_marker_in_second_village()
    AuthActions(client).login("director1")
    token = re.search(
        r'name="csrf_token" value="([^"]+)"', client.get("/admin/").get_data(as_text=True)
    ).group(1)
    client.post(
        f"/admin/child/edit/?id={marker.id}",
        data={
            "name": "改名",
            "id_number": marker.id_number,
            "village": str(marker.village_id),
            "csrf_token": token,
        },
    )
    db.session.expire_all()
    assert db.session.get(Child, marker.id).name == MARKER_CHILD


def test_read_only_roles_see_no_write_buttons_and_get_403(app, client):
    AuthActions(client).login("inspector")
    page = client.get("/admin/child/").get_data(as_text=True)
    assert "/admin/child/new/" not in page
    assert "/admin/child/edit/" not in page
    assert client.get("/admin/child/new/").status_code == 403
    child_id = a_child().id
    assert client.get(f"/admin/child/edit/?id={child_id}").status_code == 403


def test_menu_shows_only_what_the_role_may_use(app, client):
    AuthActions(client).login("finance")
    page = client.get("/admin/").get_data(as_text=True)
    assert "儿童名册" not in page
    assert "账号" not in page
    AuthActions(client).logout()
    AuthActions(client).login("admin")
    page = client.get("/admin/").get_data(as_text=True)
    assert "儿童名册" in page and "账号" in page and "操作日志" in page


def test_relation_dropdowns_and_filters_are_scoped(app, client):
    AuthActions(client).login("director1")
    director = db.session.scalar(db.select(User).where(User.username == "director1"))
    other_villages = db.session.scalars(
        db.select(Village.name).where(Village.id != director.village_id)
    ).all()
    form = client.get("/admin/child/new/").get_data(as_text=True)
    listing = client.get("/admin/child/").get_data(as_text=True)
    for name in other_villages:
        assert f">{name}<" not in form, f"village dropdown offers {name}"
        assert f'"{name}"' not in listing, f"village filter offers {name}"


def test_ajax_guardian_lookup_is_scoped(app, client):
    plant_marker_in_second_village()
    AuthActions(client).login("director1")
    response = client.get(f"/admin/child/ajax/lookup/?name=childguardian-guardian&query={MARKER_GUARDIAN}")
    assert response.status_code == 200
    assert MARKER_GUARDIAN not in [name for _, name in response.get_json()]
    AuthActions(client).logout()
    AuthActions(client).login("clerk")
    response = client.get(f"/admin/child/ajax/lookup/?name=childguardian-guardian&query={MARKER_GUARDIAN}")
    assert MARKER_GUARDIAN in [name for _, name in response.get_json()]


def test_roles_table_names_every_role():
    assert {r.value for r in Role} == {
        "admin",
        "clerk",
        "supervisor",
        "director",
        "social",
        "finance",
        "inspector",
    }
