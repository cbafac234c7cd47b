"""Accounts in the browser: a guessed password locks the account without the login page saying so,
the admin's 工作台 says it, a weak new password is refused in Chinese, and logging out ends the session."""

from seeds.demo import DEMO_PASSWORD
from tests.e2e.conftest import login, screenshot


def _guess(page, username, password):
    page.goto(page.base_url + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("button[type=submit]")


def test_lock_is_told_to_admins_not_to_the_login_page(page, browser, live_server):
    for _ in range(6):
        _guess(page, "clerk", "guess-1234567")
        assert page.locator(".invalid-feedback").inner_text() == "登录名或密码错误"
    assert "锁定" not in page.content()
    screenshot(page, "login-refused")
    login(page, "admin")
    notice = page.locator("#locked-accounts")
    assert "clerk" in notice.inner_text() and "近7天" in notice.inner_text()
    screenshot(page, "dashboard-locked-accounts-1366")
    phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN").new_page()
    phone.base_url = live_server
    login(phone, "admin")
    assert phone.locator("#locked-accounts").is_visible()
    screenshot(phone, "dashboard-locked-accounts-390")
    phone.context.close()


def test_weak_password_refused_and_logout_ends_the_session(page):
    login(page, "director1")
    page.goto(page.base_url + "/admin/account/password/")
    page.fill("#current", DEMO_PASSWORD)
    page.fill("#new", "qwertyuiop")
    page.fill("#confirm", "qwertyuiop")
    page.click("button:has-text('保存')")
    assert "密码太容易被猜到" in page.locator(".invalid-feedback").inner_text()
    screenshot(page, "password-refused")
    page.goto(page.base_url + "/admin/child/")
    cookies = page.context.cookies()
    with page.expect_navigation():
        page.locator("#logout-button").evaluate("button => button.form.submit()")  # in the user menu
    assert "您已安全退出" in page.content()
    page.context.add_cookies(cookies)  # the old session cookie put back
    page.goto(page.base_url + "/admin/child/")
    assert "/login" in page.url
