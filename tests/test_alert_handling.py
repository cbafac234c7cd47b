"""Who handles an alert: the people who can act in its village, the 社工 assigned to it acting on it
(and on no other), 我的预警 on their 工作台, the 处置人 column; and the child's rules run at once after
an approval, so its cleared alerts clear now."""

import datetime as dt

import pytest

from choices import AlertRule, AlertStatus
from models import Alert, Child, User, Village, db
from services import alerts, clock
from services.assessment import approve, current_rules
from tests.conftest import AuthActions, csrf_token
from tests.test_assessment import TODAY, draft, first_child

NOW = dt.datetime(2026, 6, 15, 10, 0)


def user(name) -> User:
    return db.session.scalar(db.select(User).where(User.username == name))


def villages() -> list[Village]:
    return db.session.scalars(db.select(Village).order_by(Village.sort_order)).all()


def raise_in(village: Village, title="测试预警") -> Alert:
    child = db.session.scalar(db.select(Child).where(Child.village_id == village.id).order_by(Child.id))
    alert = alerts.raise_alert(
        source="patrol", severity="orange", village_id=village.id, child_id=child.id, title=title, now=NOW
    )
    db.session.commit()
    return alert


@pytest.fixture(autouse=True)
def today(app):
    clock.set_today(TODAY)


def test_candidates_are_the_people_who_can_act_in_the_village(app):
    first, fifth = villages()[0], villages()[4]
    names = [u.username for u in alerts.handler_candidates(raise_in(first))]
    assert names[:2] == ["director1", "social"]  # the village's own first: 儿童主任, then its 社工
    assert set(names) == {"director1", "social", "supervisor", "clerk"}
    elsewhere = {u.username for u in alerts.handler_candidates(raise_in(fifth))}
    assert elsewhere == {"supervisor", "clerk"}  # no account directs or serves the fifth village


def test_the_detail_page_offers_the_candidates_with_their_roles(app, client):
    alert = raise_in(villages()[0])
    AuthActions(client).login("supervisor")
    html = client.get(f"/admin/alerts/{alert.id}/").get_data(as_text=True)
    assert "演示社工（社工）" in html and "演示儿童主任一（儿童主任）" in html
    assert "演示儿童主任二" not in html and "演示管理员" not in html


def test_a_handler_outside_the_list_is_refused(app, client):
    alert = raise_in(villages()[0])
    AuthActions(client).login("supervisor")
    token = csrf_token(client, f"/admin/alerts/{alert.id}/")
    html = client.post(
        f"/admin/alerts/{alert.id}/act/",
        data={"csrf_token": token, "action": "assign", "handler_id": str(user("director2").id)},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "不在可指派的名单中" in html
    db.session.expire_all()
    assert db.session.get(Alert, alert.id).handler_id is None


def test_the_assigned_social_worker_sees_and_handles_it_and_no_other(app, client):
    mine, theirs = raise_in(villages()[0], "指派给社工的预警"), raise_in(villages()[1], "未指派的预警")
    AuthActions(client).login("supervisor")
    token = csrf_token(client, f"/admin/alerts/{mine.id}/")
    client.post(
        f"/admin/alerts/{mine.id}/act/",
        data={"csrf_token": token, "action": "assign", "handler_id": str(user("social").id)},
    )
    listing = client.get("/admin/alerts/").get_data(as_text=True)
    assert "演示社工（社工）" in listing  # the 处置人 column
    AuthActions(client).logout()

    AuthActions(client).login("social")
    board = client.get("/admin/").get_data(as_text=True)
    assert 'id="my-alerts"' in board and "指派给社工的预警" in board
    assert mine.deadline.strftime("%Y-%m-%d %H:%M") in board
    assert "未指派的预警" not in board
    detail = client.get(f"/admin/alerts/{mine.id}/").get_data(as_text=True)
    assert 'id="step-form"' in detail and 'id="assign-form"' not in detail
    token = csrf_token(client, f"/admin/alerts/{mine.id}/")
    step = client.post(
        f"/admin/alerts/{mine.id}/act/", data={"csrf_token": token, "action": "step", "note": "已入户核实"}
    )
    assert step.status_code == 302
    assert (
        client.post(
            f"/admin/alerts/{mine.id}/act/",
            data={"csrf_token": token, "action": "assign", "handler_id": str(user("clerk").id)},
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/admin/alerts/{theirs.id}/act/", data={"csrf_token": token, "action": "step", "note": "越权"}
        ).status_code
        == 403
    )
    assert 'id="step-form"' not in client.get(f"/admin/alerts/{theirs.id}/").get_data(as_text=True)
    closed = client.post(
        f"/admin/alerts/{mine.id}/act/",
        data={"csrf_token": token, "action": "close", "result": "已落实临时照料"},
    )
    assert closed.status_code == 302
    db.session.expire_all()
    assert db.session.get(Alert, mine.id).status == AlertStatus.DONE.value
    assert db.session.get(Alert, theirs.id).status == AlertStatus.OPEN.value
    assert "指派给社工的预警" not in client.get("/admin/").get_data(as_text=True)


def test_assigned_to_counts_and_orders_by_deadline(app):
    social = user("social")
    first = raise_in(villages()[0], "甲")
    second = raise_in(villages()[1], "乙")
    for alert in (first, second):
        alerts.assign_handler(alert, social.id, user_id=None, now=NOW)
    first.deadline = NOW - dt.timedelta(hours=1)
    db.session.commit()
    mine = alerts.assigned_to(social.id, social.village_scope(), NOW)
    assert (mine.total, mine.overdue) == (2, 1)
    assert [r["title"] for r in mine.rows] == ["甲", "乙"] and mine.rows[0]["overdue"]
    assert alerts.assigned_to(social.id, [villages()[1].id], NOW).total == 1  # scoped


def test_my_alerts_beyond_the_first_twenty_are_one_click_away(app, client):
    """我的预警 lists 20; the rest are behind 查看全部, the alert center filtered to the person's own."""
    social = user("social")
    for n in range(23):
        alert = raise_in(villages()[n % 2], f"我的第{n}条")
        alerts.assign_handler(alert, social.id, user_id=None, now=NOW)
    other = raise_in(villages()[0], "不是我的")
    db.session.commit()
    AuthActions(client).login("social")
    board = client.get("/admin/").get_data(as_text=True)
    assert 'id="my-alerts-all"' in board and "查看全部 23 条" in board
    listing = client.get("/admin/alerts/?mine=1&status=all").get_data(as_text=True)
    assert "共 23 条" in listing and 'id="mine" checked' in listing
    assert other.title not in listing
    assert "共 23 条" not in client.get("/admin/alerts/?status=all").get_data(as_text=True)


def test_approving_an_assessment_clears_the_childs_red_and_overdue_alerts_at_once(app, client):
    """A red child, overdue for reassessment and without 兜底: approving a green reassessment clears
    those alerts now, through the child's own rule run; other children's alerts are untouched."""
    rules = current_rules().snapshot
    assert rules
    child = first_child()
    red = draft(child, 5, on=TODAY - dt.timedelta(days=200), by="social")
    approve(red, user_id=user("supervisor").id, role="supervisor", today=TODAY - dt.timedelta(days=198))
    db.session.commit()
    assert child.current_level == "red" and child.next_assessment_due < TODAY
    alerts.run_rules(TODAY, NOW)
    keys = [
        f"{AlertRule.REASSESSMENT_OVERDUE.value}:child:{child.id}",
        f"{AlertRule.RED_WITHOUT_SAFETY_NET.value}:child:{child.id}",
    ]
    held = {
        a.condition_key: a for a in db.session.scalars(db.select(Alert).where(Alert.condition_key.in_(keys)))
    }
    assert set(held) == set(keys) and all(a.condition_cleared_at is None for a in held.values())
    others = db.session.scalar(
        db.select(db.func.count()).where(
            Alert.child_id != child.id, Alert.condition_cleared_at.is_(None), Alert.status != "done"
        )
    )
    green = draft(child, 33, on=TODAY, by="social")
    AuthActions(client).login("supervisor")
    token = csrf_token(client, f"/admin/assessment-form/edit/?id={green.id}")
    response = client.post(f"/admin/assessment-form/approve/?id={green.id}", data={"csrf_token": token})
    assert response.status_code == 302
    db.session.expire_all()
    for key in keys:
        alert = db.session.scalar(db.select(Alert).where(Alert.condition_key == key))
        assert alert.condition_cleared_at is not None, f"{key} still holds after the approval"
    assert (
        db.session.scalar(
            db.select(db.func.count()).where(
                Alert.child_id != child.id, Alert.condition_cleared_at.is_(None), Alert.status != "done"
            )
        )
        == others
    )


def test_the_child_run_leaves_other_children_alone(app):
    child = first_child()
    other = first_child(1)
    for c in (child, other):
        c.next_assessment_due = TODAY - dt.timedelta(days=5)
    db.session.commit()
    alerts.run_rules(TODAY, NOW)
    child.next_assessment_due = TODAY + dt.timedelta(days=30)
    db.session.flush()
    summary = alerts.run_rules_for_children([child.id], TODAY, NOW)
    db.session.commit()
    assert summary.cleared >= 1
    states = {
        a.child_id: a.condition_cleared_at
        for a in db.session.scalars(
            db.select(Alert).where(Alert.rule == AlertRule.REASSESSMENT_OVERDUE.value)
        )
        if a.child_id in (child.id, other.id)
    }
    assert states[child.id] is not None and states[other.id] is None
