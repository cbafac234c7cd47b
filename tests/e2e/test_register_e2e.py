"""director1 in Chromium: a wrong check digit, the Chinese error, the fix, a pinyin search, logout."""

import re

from stdnum.cn import ric

from tests.e2e.conftest import login, logout, screenshot

BODY = "50010220170611004"  # a girl born 2017-06-11, Fuling
GOOD = BODY + ric.calc_check_digit(BODY + "0")
BAD = GOOD[:-1] + ("0" if GOOD[-1] != "0" else "1")


def test_director_registers_a_child_and_finds_it_by_initials(page):
    login(page, "director1")
    page.goto(page.base_url + "/admin/child/new/")
    page.fill("#name", "欧阳晓琳")
    page.fill("#id_number", BAD)
    page.fill("#address", "云岭村5组12号")
    page.click("input[type=submit][value='保存']")
    error = page.locator("text=身份证号校验位不正确")
    error.wait_for()
    screenshot(page, "register-id-error")
    # What was typed is still there.
    assert page.input_value("#address") == "云岭村5组12号"
    assert page.input_value("#id_number") == BAD

    page.fill("#id_number", GOOD)
    # A guardian typed in on the child's form: its block is open already; 关系 is required (chips).
    first = page.locator("#guardian_links .inline-field").nth(0)
    first.locator("input[name$='-new_name']").fill("欧阳母亲")
    first.locator("label", has_text=re.compile("^母$")).click()
    first.locator("input[name$='-new_phone']").fill("13987654321")
    page.click("input[type=submit][value='保存']")
    page.wait_for_url("**/admin/child/**")
    page.locator(".alert-success").first.wait_for()

    page.fill("input[name=search]", "oyxl")
    page.keyboard.press("Enter")
    page.wait_for_url("**search=oyxl**")
    assert page.locator("table.model-list td:not(.card-head)", has_text="欧阳晓琳").count() == 1
    assert GOOD not in page.content()  # the list shows the number masked
    page.goto(page.base_url + "/admin/guardian/?search=欧阳母亲")
    assert page.locator("table.model-list td:not(.card-head)", has_text="欧阳晓琳").count() == 1
    screenshot(page, "register-search")

    logout(page)
    assert "您已安全退出" in page.content()
