import datetime as dt

from models import AuditLog, User, db
from services.accounts import LOGIN_REFUSED, LoginRefused, authenticate
from tests.conftest import PASSWORD


def test_login_page_is_chinese(client):
    page = client.get("/login").get_data(as_text=True)
    assert "登录名" in page and "密码" in page


def test_login_and_logout(client, auth):
    response = auth.login("clerk")
    assert response.status_code == 302
    assert client.get("/admin/child/").status_code == 200
    auth.logout()
    response = client.get("/admin/child/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_wrong_password_message(client, auth):
    page = auth.login("clerk", "wrong-password").get_data(as_text=True)
    assert "登录名或密码错误" in page


def _refusal(username, password, now):
    try:
        authenticate(username, password, now=now)
    except LoginRefused as refused:
        return str(refused)
    raise AssertionError(f"{username} logged in")


def test_lockout_on_fifth_failure_and_release_after_15_minutes(app):
    start = dt.datetime(2026, 5, 1, 9, 0)
    for _ in range(5):
        assert _refusal("clerk", "bad-password", start) == LOGIN_REFUSED
    clerk = db.session.scalar(db.select(User).where(User.username == "clerk"))
    assert clerk.locked_until == start + dt.timedelta(minutes=15) and clerk.last_locked_at == start
    # Locked: even the right password is refused within 15 minutes, with the same words.
    assert _refusal("clerk", PASSWORD, start + dt.timedelta(minutes=14, seconds=59)) == LOGIN_REFUSED
    user, notice = authenticate("clerk", PASSWORD, now=start + dt.timedelta(minutes=15, seconds=1))
    assert user.username == "clerk" and user.failed_logins == 0
    assert notice and "被锁定" in notice
    # Told once: the next login has nothing to tell.
    _, notice = authenticate("clerk", PASSWORD, now=start + dt.timedelta(minutes=20))
    assert notice is None


def test_failed_login_is_audited(client, auth):
    auth.login("clerk", "wrong-password")
    assert db.session.scalar(db.select(AuditLog).where(AuditLog.action == "login_failed")) is not None


def test_disabled_account_loses_its_session(client, auth):
    auth.login("clerk")
    assert client.get("/admin/child/").status_code == 200
    user = db.session.scalar(db.select(User).where(User.username == "clerk"))
    user.active = False
    user.session_epoch += 1
    db.session.commit()
    assert client.get("/admin/child/").status_code == 302
