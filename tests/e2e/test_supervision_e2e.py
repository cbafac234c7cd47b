"""director1 files a mandatory report; supervisor sees the alert, opens a case and walks it to 结案,
with the forbidden shortcuts refused on the way."""

import re

from playwright.sync_api import expect

from app import create_app
from models import Child, Staff, User, db
from tests.e2e.conftest import login, screenshot


def _facts(database_url):
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "facts"})
    with app.app_context():
        director = db.session.scalar(db.select(User).where(User.username == "director1"))
        child = db.session.scalar(
            db.select(Child)
            .where(Child.village_id == director.village_id, Child.archived_at.is_(None))
            .order_by(Child.id.desc())
        )
        social = db.session.scalar(db.select(Staff.id).where(Staff.kind == "social").order_by(Staff.id))
        facts = {"child": child.name, "last4": child.id_number[-4:], "social": str(social)}
        db.session.remove()
        db.engine.dispose()
    return facts


def _logout(page):
    page.click("#user-menu")
    page.click("#logout-button")
    page.wait_for_url("**/login**")


def _move(page, stage_label, evaluation=None):
    page.select_option("#to_stage", label=stage_label)
    if evaluation is not None:
        page.fill("#closing_evaluation", evaluation)
    page.click("#move-button")
    page.wait_for_load_state()


def test_report_to_alert_to_case_to_closed(page, database_url):
    facts = _facts(database_url)
    base = page.base_url

    # director1 files the report from the intake form, picking the child from the register
    login(page, "director1")
    page.goto(base + "/admin/mandatoryreport/new/")
    page.select_option("#reporter_kind", "teacher", force=True)
    page.fill("#reporter_name", "李老师")
    page.click("#s2id_child a.select2-choice")
    page.fill("#select2-drop input.select2-input", facts["last4"])
    page.locator(".select2-result-label", has_text=facts["child"]).first.click()
    page.fill("#situation", "学生手臂有多处淤青，称被家人打伤")
    page.select_option("#urgency", "critical", force=True)
    page.click("input[type=submit][value='保存']")
    page.wait_for_url("**/admin/mandatoryreport/**")
    page.goto(base + "/admin/mandatoryreport/")
    page.locator("#no-more-tables a[href*='details'], table a[href*='/details/']").first.click()
    expect(page.locator("#report-facts")).to_contain_text("学生手臂有多处淤青")
    expect(page.locator("#response-time")).to_contain_text("尚未响应")
    page.fill("#respond-note", "已电话联系学校，安排上门核实")
    page.click("#respond-form button[type=submit]")
    expect(page.locator("#response-time")).to_contain_text("在24小时时限内")
    page.check("#outcome-to_alert")
    page.fill("#triage-note", "核实属实，转督导员处置")
    page.click("#triage-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/alerts/\d+/$"))
    alert_url = page.url
    expect(page.locator("#alert-title")).to_contain_text("强制报告")
    screenshot(page, "supervision-report-alert")
    _logout(page)

    # supervisor finds it in the alert centre and converts it to a case
    login(page, "supervisor")
    page.goto(base + "/admin/alerts/?source=report")
    row = page.locator(".alert-row", has_text=facts["child"]).first
    expect(row).to_contain_text("强制报告")
    screenshot(page, "supervision-alert-centre")
    row.locator("a").first.click()
    assert page.url == alert_url
    page.select_option("#case_type", "abuse")
    page.click("#to-case")
    page.wait_for_url("**/admin/case/details/**")
    expect(page.locator("#case-stage")).to_contain_text("识别")

    # forbidden shortcuts are refused with the reason
    _move(page, "结案")
    expect(page.locator("body")).to_contain_text("不能从「识别」直接进入「结案」")
    _move(page, "评估")
    expect(page.locator("#case-stage")).to_contain_text("评估")
    _move(page, "介入")
    expect(page.locator("body")).to_contain_text("进入「介入」前须制定个性化帮扶方案")
    expect(page.locator("#case-stage")).to_contain_text("评估")

    # the plan, then 介入 → 跟踪
    case_url = page.url
    page.goto(case_url.replace("/details/", "/edit/"))
    page.fill("#plan_goals", "恢复安全稳定的监护")
    page.fill("#plan_measures", "派出所训诫；社工每周入户；亲属临时照料")
    page.select_option("#professional", facts["social"], force=True)
    page.click("input[type=submit][value='保存']")
    page.goto(case_url)
    _move(page, "介入")
    expect(page.locator("#case-stage")).to_contain_text("介入")
    _move(page, "跟踪")
    expect(page.locator("#case-stage")).to_contain_text("跟踪")

    # 结案 needs a 跟踪 record and a closing evaluation
    _move(page, "结案", evaluation="监护恢复")
    expect(page.locator("body")).to_contain_text("结案前须至少有一条「跟踪」记录")
    page.fill("#track-note", "回访：伤情痊愈，监护人接受家庭教育指导")
    page.click("#track-form button[type=submit]")
    expect(page.locator("#case-events")).to_contain_text("跟踪记录")
    _move(page, "结案")
    expect(page.locator("body")).to_contain_text("结案前须填写结案评估")
    _move(page, "结案", evaluation="监护能力恢复，帮扶目标达成")
    expect(page.locator("#case-stage")).to_contain_text("结案")
    expect(page.locator("#reopen-form")).to_be_visible()
    screenshot(page, "supervision-case-closed")

    # the case board shows it in the 结案 column
    page.goto(base + "/admin/caseboard/")
    expect(page.locator(".case-column[data-stage=closed]")).to_contain_text(facts["child"])
