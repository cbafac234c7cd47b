"""Accounts: admins create and disable them; the CLI creates the first admin."""

from models import User, Village, db
from tests.conftest import csrf_token


def _user_form(client, **overrides):
    data = {
        "username": "newclerk",
        "display_name": "新经办人",
        "role": "clerk",
        "new_password": "a-good-password",
        "active": "y",
        "csrf_token": csrf_token(client, "/admin/user/new/"),
    }
    data.update(overrides)
    return data


def test_admin_creates_an_account_with_a_hashed_password(app, client, auth):
    auth.login("admin")
    response = client.post("/admin/user/new/", data=_user_form(client))
    assert response.status_code == 302
    user = db.session.scalar(db.select(User).where(User.username == "newclerk"))
    assert user.password_hash.startswith("scrypt:")
    auth.logout()
    assert auth.login("newclerk", "a-good-password").status_code == 302


def test_password_rules_on_account_form(app, client, auth):
    auth.login("admin")
    page = client.post("/admin/user/new/", data=_user_form(client, new_password="short")).get_data(
        as_text=True
    )
    assert "密码至少10个字符" in page
    page = client.post(
        "/admin/user/new/", data=_user_form(client, username="samesame12", new_password="samesame12")
    ).get_data(as_text=True)
    assert "密码不能与登录名相同" in page
    assert db.session.scalar(db.select(User).where(User.username.in_(["newclerk", "samesame12"]))) is None


def test_director_account_needs_a_village(app, client, auth):
    auth.login("admin")
    page = client.post("/admin/user/new/", data=_user_form(client, role="director")).get_data(as_text=True)
    assert "儿童主任账号必须指定所属村（社区）" in page
    village = db.session.scalar(db.select(Village).order_by(Village.sort_order))
    response = client.post(
        "/admin/user/new/", data=_user_form(client, role="director", village=str(village.id))
    )
    assert response.status_code == 302
    user = db.session.scalar(db.select(User).where(User.username == "newclerk"))
    assert user.village_scope() == [village.id]


def test_admin_disables_an_account_and_its_session_ends(app, client, auth):
    other = app.test_client()
    from tests.conftest import AuthActions

    AuthActions(other).login("clerk")
    assert other.get("/admin/child/").status_code == 200
    auth.login("admin")
    clerk = db.session.scalar(db.select(User).where(User.username == "clerk"))
    token = csrf_token(client, "/admin/user/")
    client.post(
        "/admin/user/action/", data={"action": "disable", "rowid": [str(clerk.id)], "csrf_token": token}
    )
    db.session.expire_all()
    assert db.session.get(User, clerk.id).active is False
    assert other.get("/admin/child/").status_code == 302
    page = AuthActions(other).login("clerk").get_data(as_text=True)
    assert "登录名或密码错误" in page and "停用" not in page


def test_only_admin_manages_accounts(app, client, auth):
    auth.login("clerk")
    assert client.get("/admin/user/").status_code == 403
    assert client.get("/admin/user/new/").status_code == 403


def test_cli_create_user(app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["create-user", "--username", "chief", "--role", "admin", "--password", "a-long-password"]
    )
    assert result.exit_code == 0, result.output
    assert "已创建账号 chief" in result.output
    result = runner.invoke(
        args=["create-user", "--username", "chief2", "--role", "admin", "--password", "short"]
    )
    assert result.exit_code != 0 and "密码至少10个字符" in result.output
    result = runner.invoke(
        args=["create-user", "--username", "d9", "--role", "director", "--password", "a-long-password"]
    )
    assert result.exit_code != 0 and "必须指定所属村" in result.output


def test_seed_demo_if_empty_skips_a_used_database(app):
    result = app.test_cli_runner().invoke(args=["seed-demo", "--if-empty"])
    assert "跳过" in result.output
