"""director1 files a mandatory report; supervisor sees the alert, opens a case and walks it to 结案,
with the forbidden shortcuts refused on the way."""

import re

from playwright.sync_api import expect

from app import create_app
from models import Child, User, db
from tests.e2e.conftest import login, logout, screenshot


def _facts(database_url):
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "facts"})
    with app.app_context():
        director = db.session.scalar(db.select(User).where(User.username == "director1"))
        child = db.session.scalar(
            db.select(Child)
            .where(Child.village_id == director.village_id, Child.archived_at.is_(None))
            .order_by(Child.id.desc())
        )
        social = db.session.scalar(db.select(User.staff_id).where(User.username == "social"))
        facts = {"child": child.name, "last4": child.id_number[-4:], "social": str(social)}
        db.session.remove()
        db.engine.dispose()
    return facts


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
    logout(page)

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

    # the stage control offers only the next move, preselected; no closing box yet
    expect(page.locator("#to_stage option")).to_have_count(1)
    expect(page.locator("#to_stage")).to_have_value("assess")
    expect(page.locator("#closing-box")).to_be_hidden()
    expect(page.locator("#case-dossier-link")).to_be_visible()
    expect(page.locator(".case-alert-link")).to_contain_text("强制报告")
    _move(page, "评估")
    expect(page.locator("#case-stage")).to_contain_text("评估")
    expect(page.locator("#to_stage")).to_have_value("intervene")
    expect(page.locator("#move-form .gate:not([hidden])")).to_contain_text("须完成需求评估")
    _move(page, "介入")
    expect(page.locator(".form-error")).to_contain_text("进入「介入」前须完成需求评估")
    expect(page.locator(".form-error")).to_contain_text("「监护侵害」个案进入「介入」前须召开会商")
    expect(page.locator("#case-stage")).to_contain_text("评估")

    # the needs assessment, a 会商 with its 分工, the plan
    case_id = re.search(r"id=(\d+)", page.url).group(1)
    case_url = base + f"/admin/case/details/?id={case_id}"
    page.goto(case_url)
    page.click("#needs-link")
    page.fill("#problem_safety", "手臂多处淤青，称被父亲打伤")
    page.fill("#problem_emotion", "害怕回家，上课注意力不集中")
    page.check("input[name=risk_rating][value=high]")
    page.fill("#risk", "继续遭受家庭暴力的风险高")
    page.fill("#child_strengths", "愿意向班主任求助")
    page.fill("#family_strengths", "外婆愿意临时照料")
    page.click("#needs-save")
    expect(page.locator("#needs-table")).to_contain_text("手臂多处淤青")
    page.click("#conference-link")
    for department in ("civil", "police", "school"):
        page.check(f"input[name=departments][value={department}]")
    page.fill("#attendees", "镇民生服务办、派出所、学校")
    page.fill("#problem", "儿童遭受家庭暴力，如何保护并教育监护人")
    page.fill("#decisions", "派出所训诫父亲；外婆临时照料；社工每周入户")
    page.fill("#action_who_0", "派出所")
    page.fill("#action_what_0", "对父亲进行训诫并出具告诫书")
    page.fill("#action_due_0", "2026-12-05")
    page.click("#add-action-row")
    expect(page.locator(".action-row")).to_have_count(4)
    page.click("#conference-save")
    expect(page.locator("#case-conferences")).to_contain_text("派出所：对父亲进行训诫并出具告诫书")
    page.click("#plan-link")
    page.fill("#plan_goals", "恢复安全稳定的监护")
    options = page.locator("#professional_id option").all_inner_texts()
    assert "__None" not in " ".join(options) and all("（" in o for o in options[1:])
    page.select_option("#professional_id", facts["social"])
    page.fill("textarea[name=measure_content_0]", "社工每周入户一次，开展家庭教育指导")
    page.fill("input[name=measure_who_0]", "社工")
    page.click("#plan-save")
    page.wait_for_url("**/admin/case/details/**")  # saving the plan returns to the case
    expect(page.locator("#plan-measures")).to_contain_text("对父亲进行训诫")
    expect(page.locator("#plan-measures")).to_contain_text("社工每周入户一次")
    _move(page, "介入")
    expect(page.locator("#case-stage")).to_contain_text("介入")

    # 介入 → 跟踪 needs a service against a measure
    _move(page, "跟踪")
    expect(page.locator(".form-error")).to_contain_text("须至少记录一次帮扶措施的落实服务")
    page.select_option("#measure_id", index=1)
    page.fill("#service-content", "派出所上门训诫，父亲签署保证书")
    page.click("#service-button")
    expect(page.locator("#case-services")).to_contain_text("父亲签署保证书")
    _move(page, "跟踪")
    expect(page.locator("#case-stage")).to_contain_text("跟踪")

    # 结案 needs a 跟踪 follow-up, a reason and the closing evaluation; the box shows only for 结案
    expect(page.locator("#to_stage")).to_have_value("closed")
    expect(page.locator("#closing-box")).to_be_visible()
    page.select_option("#to_stage", "intervene")
    expect(page.locator("#closing-box")).to_be_hidden()
    page.select_option("#to_stage", "closed")
    page.select_option("#closure_reason", "goals_met")
    _move(page, "结案", evaluation="监护恢复")
    expect(page.locator(".form-error")).to_contain_text("结案前须至少有一条「跟踪」阶段的跟进记录")
    expect(page.locator("#closing_evaluation")).to_have_value("监护恢复")  # what was typed is kept
    page.select_option("#method", "home")
    page.fill("#change", "回访：伤情痊愈，监护人接受家庭教育指导")
    page.click("#follow-up-button")
    expect(page.locator("#case-follow-ups")).to_contain_text("伤情痊愈")
    page.select_option("#closure_reason", "goals_met")
    _move(page, "结案", evaluation="监护能力恢复，帮扶目标达成")
    expect(page.locator("#case-stage")).to_contain_text("结案")
    expect(page.locator("#case-closing-evaluation")).to_contain_text("监护能力恢复，帮扶目标达成")
    expect(page.locator("#reopen-form")).to_be_visible()
    screenshot(page, "supervision-case-closed")

    # the case board shows it in the 结案 column
    page.goto(base + "/admin/caseboard/")
    expect(page.locator(".case-column[data-stage=closed]")).to_contain_text(facts["child"])
