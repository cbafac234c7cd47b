import pytest
from tests import test_access as ta
from tests.conftest import AuthActions
from models import User, db

MINE = ("assessment", "assessment_form", "support_service", "riskmap", "indicator_group", "indicator", "veto_item", "level_rule", "rule_version", "admin")

@pytest.mark.parametrize("username", ta.ROLES)
def test_walk_mine(app, client, username):
    marker = ta.plant_marker_in_second_village()
    AuthActions(client).login(username)
    role = ta.role_of(username)
    scope = db.session.scalar(db.select(User).where(User.username == username)).village_scope()
    visible = scope is None or marker.village_id in scope
    n = 0
    for rule in ta.walkable_rules(app):
        if rule.endpoint.split(".")[0] not in MINE:
            continue
        if rule.endpoint.split(".", 1)[-1] in ta.NEEDS_ID:
            continue
        r = client.get(rule.rule)
        exp = ta.expected_access(app, rule.endpoint, role)
        assert r.status_code != 500, rule.rule
        if exp is None:
            assert r.status_code == 403, (username, rule.rule, r.status_code)
        elif exp in ("read", "write"):
            assert r.status_code in (200, 302, 400, 404), (username, rule.rule, r.status_code)
        if r.status_code == 200 and not visible:
            assert ta.MARKER_CHILD not in r.get_data(as_text=True), rule.rule
        n += 1
    assert n > 10
