"""Sessions and accounts against an attacker: where ``next`` may send a browser, what a replayed cookie
gets after logout, what a failed login tells, which passwords are refused, what may be cached."""

import datetime as dt
import re
from urllib.parse import urljoin, urlsplit

import pytest

from models import AuditLog, User, UserSession, db, utcnow
from seeds.demo import DEMO_PASSWORD
from services import accounts, alerts
from services.validation import InvalidInput
from tests.conftest import AuthActions, csrf_token

# Values of ?next= as they appear in the query string (percent-encoded as a browser would send them).
OPEN_REDIRECT_CORPUS = [
    "/%09/evil.example",
    "/%0A/x",
    "/%0D/evil.example",
    "%09//evil.example",
    "/%00/evil.example",
    "//evil.example",
    "///evil.example",
    "%2F%2Fevil.example",
    "/%2F/evil.example",
    "/%252F%252Fevil.example",
    "/%5Cevil.example",
    "%5C%5Cevil.example",
    "/%5C/evil.example",
    "http://evil.example/",
    "https:evil.example",
    "http:/evil.example",
    "HTTP://evil.example",
    "javascript:alert(1)",
    "%20//evil.example",
    "evil.example",
    "@evil.example",
    "/%E3%80%80/evil.example",
    "/" + "a" * 5000,
]


def _login_with_next(client, raw_next):
    token = csrf_token(client)
    return client.post(
        f"/login?next={raw_next}",
        data={"username": "clerk", "password": DEMO_PASSWORD, "csrf_token": token},
    )


@pytest.mark.parametrize("raw_next", OPEN_REDIRECT_CORPUS)
def test_next_never_leaves_the_site(client, raw_next):
    response = _login_with_next(client, raw_next)
    if "%00" in raw_next:
        # a NUL anywhere in a request is refused whole, in Chinese, before anything runs (views/errors.py)
        assert response.status_code == 400 and "Location" not in response.headers
        assert "空字符" in response.get_data(as_text=True)
        return
    assert response.status_code == 302
    location = response.headers["Location"]
    # What a browser would do with it: drop tabs/newlines, read "\" as "/", then resolve.
    assert not re.search(r"[\x00-\x1f\x7f\\]", location), location
    assert not location.lstrip().startswith("//"), location
    resolved = urlsplit(urljoin("http://localhost/login", location))
    assert resolved.scheme == "http" and resolved.netloc == "localhost", location
    assert "evil.example" not in resolved.netloc


def test_next_keeps_a_path_of_the_site(client):
    response = _login_with_next(client, "/admin/child/%3Fsearch%3D%E5%BC%A0")
    assert response.headers["Location"] == "/admin/child/?search=%E5%BC%A0"


# --------------------------------------------------------------------------- logout, devices


def test_logout_ends_the_session_on_the_server(client, auth):
    auth.login("clerk")
    stolen = client.get_cookie("session").value
    assert client.get("/admin/child/").status_code == 200
    auth.logout()
    client.set_cookie("session", stolen)  # the old cookie replayed, as a thief who copied it would
    response = client.get("/admin/child/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert (
        db.session.scalar(
            db.select(db.func.count()).select_from(UserSession).where(UserSession.ended_at.is_(None))
        )
        == 0
    )


def test_logout_on_one_device_keeps_the_others(app, client, auth):
    phone = app.test_client()
    AuthActions(phone).login("clerk")
    auth.login("clerk")
    auth.logout()
    assert phone.get("/admin/child/").status_code == 200
    assert client.get("/admin/child/").status_code == 302


def test_password_change_ends_the_other_devices_only(app, client, auth):
    phone = app.test_client()
    AuthActions(phone).login("clerk")
    auth.login("clerk")
    url = "/admin/account/password/"
    new = "lantern-river-2026"
    response = client.post(
        url,
        data={"current": DEMO_PASSWORD, "new": new, "confirm": new, "csrf_token": csrf_token(client, url)},
    )
    assert response.status_code == 302
    assert client.get("/admin/child/").status_code == 200
    assert phone.get("/admin/child/").status_code == 302


def test_a_cookie_without_a_server_session_is_not_logged_in(app, client, auth):
    auth.login("clerk")
    with client.session_transaction() as sess:
        sess["sid"] = "forged-or-from-an-old-version"
    assert client.get("/admin/child/").status_code == 302


# --------------------------------------------------------------------------- enumeration


def _lock(username):
    user = db.session.scalar(db.select(User).where(User.username == username))
    user.locked_until = utcnow() + dt.timedelta(minutes=15)
    db.session.commit()


def _disable(username):
    user = db.session.scalar(db.select(User).where(User.username == username))
    user.active = False
    db.session.commit()


def _feedback(page: str) -> list[str]:
    return re.findall(r'<div class="invalid-feedback d-block">([^<]*)</div>', page)


def test_every_refused_login_reads_the_same_and_does_the_same_work(app, client, monkeypatch):
    _lock("supervisor")
    _disable("social")
    checks = []
    real_check = accounts.check_password_hash

    def counted(pwhash, password):
        checks.append(pwhash)
        return real_check(pwhash, password)

    monkeypatch.setattr(accounts, "check_password_hash", counted)
    attempts = {
        "unknown login name": ("nobody-here", DEMO_PASSWORD),
        "wrong password": ("clerk", "wrong-password-1"),
        "locked, right password": ("supervisor", DEMO_PASSWORD),
        "locked, wrong password": ("supervisor", "wrong-password-1"),
        "disabled, right password": ("social", DEMO_PASSWORD),
    }
    answers = {}
    for what, (username, password) in attempts.items():
        before = len(checks)
        page = AuthActions(client).login(username, password).get_data(as_text=True)
        answers[what] = _feedback(page)
        assert len(checks) - before == 1, f"{what}: {len(checks) - before} password checks"
        assert checks[-1].startswith("scrypt:"), what
        for word in ("锁定", "停用", "再错", "不存在"):
            assert word not in page, f"{what} tells: {word}"
    assert all(a == [accounts.LOGIN_REFUSED] for a in answers.values()), answers
    assert db.session.scalar(
        db.select(db.func.count()).select_from(AuditLog).where(AuditLog.action == "login_failed")
    ) == len(attempts)


def test_the_lock_is_told_to_the_owner_and_to_admins_not_to_the_typist(app, client):
    anonymous = client
    for _ in range(accounts.MAX_FAILURES + 2):
        page = AuthActions(anonymous).login("clerk", "guessing-1234").get_data(as_text=True)
        assert "锁定" not in page and _feedback(page) == [accounts.LOGIN_REFUSED]
    clerk = db.session.scalar(db.select(User).where(User.username == "clerk"))
    assert clerk.locked_until is not None and clerk.last_locked_at is not None

    admin = app.test_client()
    AuthActions(admin).login("admin")
    board = admin.get("/admin/").get_data(as_text=True)
    assert 'id="locked-accounts"' in board and "clerk" in board
    assert "最近因密码错误锁定" in admin.get("/admin/user/").get_data(as_text=True)
    other = app.test_client()
    AuthActions(other).login("supervisor")
    assert 'id="locked-accounts"' not in other.get("/admin/").get_data(as_text=True)

    clerk.locked_until = utcnow() - dt.timedelta(seconds=1)  # the 15 minutes are over
    db.session.commit()
    owner = app.test_client()
    response = AuthActions(owner).login("clerk")
    assert response.status_code == 302
    page = owner.get(response.headers["Location"]).get_data(as_text=True)
    assert "被锁定过15分钟" in page
    AuthActions(owner).logout()
    AuthActions(owner).login("clerk")
    assert "被锁定过15分钟" not in owner.get("/admin/").get_data(as_text=True)  # told once


# --------------------------------------------------------------------------- passwords

WEAK = {
    "1234567890": "常见密码",
    "aaaaaaaaaa": "重复的字符",
    "qwertyuiop": "常见密码",
    "abcdefghijk": "连续的字母或数字",
    "zxcvbnm,./": "键盘上相邻的按键",
    "password123": "常见密码",
}


@pytest.mark.parametrize(("password", "reason"), WEAK.items())
def test_weak_passwords_are_refused_with_a_chinese_reason(app, password, reason):
    with pytest.raises(InvalidInput) as refused:
        accounts.check_password_policy(password, "clerk")
    assert "密码太容易被猜到" in str(refused.value) and reason in str(refused.value)
    assert not re.search(r"[A-Za-z]{3,} [a-z]{3,}", str(refused.value))  # no English sentence


def test_the_account_name_and_display_name_count_as_guessable(app):
    with pytest.raises(InvalidInput, match="登录名、姓名"):
        accounts.check_password_policy("wangxiaohong1", "whong", personal=("wangxiaohong",))


def test_strong_passwords_and_the_demo_password_pass(app):
    for password in (DEMO_PASSWORD, "lantern-river-2026", "红军步道-yunling-47"):
        accounts.check_password_policy(password, "clerk")
    with pytest.raises(InvalidInput, match="不能超过128"):
        accounts.check_password_policy("x7-" * 50, "clerk")


def test_password_change_refuses_a_common_password(app, client, auth):
    auth.login("clerk")
    url = "/admin/account/password/"
    page = client.post(
        url,
        data={
            "current": DEMO_PASSWORD,
            "new": "1234567890",
            "confirm": "1234567890",
            "csrf_token": csrf_token(client, url),
        },
    ).get_data(as_text=True)
    assert "常见密码" in page
    auth.logout()
    assert auth.login("clerk", "1234567890").status_code == 200  # unchanged: still refused


def test_account_form_refuses_a_patterned_password(app, client, auth):
    auth.login("admin")
    data = {
        "username": "newclerk",
        "role": "clerk",
        "new_password": "aaaaaaaaaa",
        "active": "y",
        "csrf_token": csrf_token(client, "/admin/user/new/"),
    }
    page = client.post("/admin/user/new/", data=data).get_data(as_text=True)
    assert "重复的字符" in page
    assert db.session.scalar(db.select(User).where(User.username == "newclerk")) is None


def test_cli_refuses_a_common_password(app):
    result = app.test_cli_runner().invoke(
        args=["create-user", "--username", "chief", "--role", "admin", "--password", "1234567890"]
    )
    assert result.exit_code != 0 and "常见密码" in result.output
    assert db.session.scalar(db.select(User).where(User.username == "chief")) is None


# --------------------------------------------------------------------------- caching


def test_personal_answers_are_never_cached_and_static_files_are(app, client, auth):
    static = client.get("/static/css/app.css")
    assert static.status_code == 200 and "no-store" not in static.headers.get("Cache-Control", "")
    auth.login("clerk")
    for url in ("/admin/", "/admin/child/", "/admin/child/export.xlsx", "/admin/alerts/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == "no-store", url
    static = client.get("/static/css/app.css")
    assert "no-store" not in static.headers.get("Cache-Control", "")
    user_id = db.session.scalar(db.select(User.id).where(User.username == "supervisor"))
    _, plain = alerts.issue_token("141平台", user_id)
    db.session.commit()
    feed = app.test_client().get("/api/alerts", headers={"Authorization": f"Bearer {plain}"})
    assert feed.status_code == 200 and feed.headers["Cache-Control"] == "no-store"
