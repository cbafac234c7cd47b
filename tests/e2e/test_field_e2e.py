"""The 儿童主任's phone in real Chromium at 390×844: a day offline (3 visits, one with 伤害迹象 and a
photo, and 10 attendance ticks), synced once on the way back; a forged queue item refused; logout
leaving nothing on the phone; the visit form refusing an unanswered 是/否."""

import datetime as dt
import io
import re
import time

import pytest
from PIL import Image
from playwright.sync_api import expect

from app import create_app
from models import Activity, Alert, Attendance, Child, LevelRule, SyncReceipt, User, Village, Visit, db
from tests.conftest import PASSWORD
from tests.e2e.conftest import ARTIFACTS, screenshot

PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Mobile Safari/537.36"
)


def _app(database_url):
    return create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "facts"})


def _facts(database_url, with_activity=False):
    """director1's children (three for visits), another village's child, and an activity tomorrow."""
    app = _app(database_url)
    with app.app_context():
        director = db.session.scalar(db.select(User).where(User.username == "director1"))
        children = db.session.scalars(
            db.select(Child)
            .where(Child.village_id == director.village_id, Child.archived_at.is_(None))
            .order_by(Child.id)
        ).all()
        stranger = db.session.scalar(
            db.select(Child).where(Child.village_id != director.village_id).order_by(Child.id)
        )
        facts = {
            "user_id": director.id,
            "village_id": director.village_id,
            "children": [(c.id, c.name) for c in children[:3]],
            "stranger": stranger.id,
        }
        if with_activity:
            # the intervals change after the children's assessments, which keep the ones they were
            # scored under: the phone's 下次走访 must follow those, as the server does
            for rule in db.session.scalars(db.select(LevelRule)):
                rule.visit_days += 3
            activity = Activity(
                title="红色监护课堂·云岭村",
                kind="other",
                starts_at=dt.datetime.combine(dt.date.today() + dt.timedelta(days=1), dt.time(9, 0)),
                audience=["children"],
                place="村（社区）儿童之家",
            )
            activity.villages = [db.session.get(Village, director.village_id)]
            db.session.add(activity)
            db.session.commit()
            facts["activity"] = activity.id
        db.session.remove()
        db.engine.dispose()
    return facts


@pytest.fixture
def phone(browser, live_server):
    """A phone: 390×844, an Android browser, service workers allowed; nothing from outside."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        locale="zh-CN",
        user_agent=PHONE_UA,
        service_workers="allow",
        has_touch=True,
    )
    outside = []
    context.on(
        "request",
        lambda r: (
            None if r.url.startswith(live_server) or r.url.startswith("data:") else outside.append(r.url)
        ),
    )
    page = context.new_page()
    page.base_url = live_server
    page.set_default_timeout(20000)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not outside, f"the phone loaded something from outside the app: {outside}"
    assert not errors, f"script errors on the phone: {errors}"


def login(page, username="director1"):
    page.goto(page.base_url + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/field/")  # a phone lands on 今日


def wait_until(page, script, timeout=20.0):
    """Poll a script in the page (wait_for_function would need 'unsafe-eval', which the CSP forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(script):
        assert time.monotonic() < deadline, f"timed out waiting for: {script}"
        page.wait_for_timeout(200)


def ready_offline(page):
    """Wait until the service worker controls the page and the offline copy is on the phone."""
    wait_until(page, "() => !!(navigator.serviceWorker && navigator.serviceWorker.controller)")
    wait_until(page, "() => TonghuField.getCopy().then(c => !!c)")


def answer(page, name, yes):
    page.click(f"label:has(#{name}-{'yes' if yes else 'no'})")


def record_visit(page, child_name, *, harm=False, photo=None, note="入户查看，一切正常"):
    page.fill("#child-search", child_name)
    page.locator("#child-results .pick", has_text=child_name).first.click()
    expect(page.locator("#child-picked")).to_contain_text(child_name)
    page.click("label:has(#kind-home)")
    for name in ("child_seen", "guardian_present", "living_ok", "school_ok"):
        answer(page, name, True)
    answer(page, "harm_signs", harm)
    if harm:
        # 伤害迹象=是 marks 发现风险 and asks for the reason
        expect(page.locator("#risk_found-yes")).to_be_checked()
        expect(page.locator("#risk_found-no")).to_be_disabled()
        page.fill("#risk_note", "左臂有新鲜淤青，儿童称被继父打伤，已联系村委会")
    else:
        answer(page, "risk_found", False)
    page.fill("#notes", note)
    if photo is not None:
        page.set_input_files("#photo-input", files=[photo])
        expect(page.locator("#photo-list img")).to_have_count(1)
    page.click("#save")
    expect(page.locator("#saved")).to_be_visible()


def jpeg_photo():
    image = Image.new("RGB", (2400, 1800), (180, 120, 90))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return {"name": "伤情.jpg", "mimeType": "image/jpeg", "buffer": out.getvalue()}


def server_counts(database_url, activity_id):
    app = _app(database_url)
    with app.app_context():
        visits = db.session.scalars(db.select(Visit).where(Visit.client_uuid.is_not(None))).all()
        facts = {
            "visits": [
                (v.child_id, v.recorded_at, v.received_at, v.harm_signs, v.risk_found, v.offline)
                for v in visits
            ],
            "visit_ids": [v.id for v in visits],
            "attendance": db.session.scalar(
                db.select(db.func.count(Attendance.id)).where(Attendance.activity_id == activity_id)
            ),
            "alerts": [
                (a.title, a.detail, a.raised_at, a.deadline, a.severity)
                for a in db.session.scalars(
                    db.select(Alert).where(
                        Alert.condition_key.in_([f"visit_risk:visit:{v.id}" for v in visits])
                    )
                )
            ],
            "receipts": db.session.scalar(db.select(db.func.count(SyncReceipt.id))),
            "photos": _photo_count([v.id for v in visits]),
        }
        db.session.remove()
        db.engine.dispose()
    return facts


def next_visits(database_url, child_ids) -> dict[int, str]:
    """The server's 下次走访 of these children, as the phone's copy writes it."""
    app = _app(database_url)
    with app.app_context():
        rows = db.session.execute(db.select(Child.id, Child.next_visit_due).where(Child.id.in_(child_ids)))
        due = {child_id: day.isoformat() for child_id, day in rows}
        db.session.remove()
        db.engine.dispose()
    return due


def _photo_count(visit_ids):
    try:
        from models import Attachment
    except ImportError:  # the attachment store is not in this build
        return None
    return db.session.scalar(
        db.select(db.func.count(Attachment.id)).where(
            Attachment.owner_kind == "visit", Attachment.owner_id.in_(visit_ids or [0])
        )
    )


def test_a_day_in_the_villages_without_signal(phone, database_url):
    facts = _facts(database_url, with_activity=True)
    page = phone
    login(page)
    expect(page.locator("#today")).to_have_attribute("data-source", "server")
    ready_offline(page)
    screenshot(page, "field-today")

    # no signal: 今日 still opens, from the service worker and the offline copy
    page.context.set_offline(True)
    response = page.reload()
    assert response is None or response.from_service_worker
    expect(page.locator("#today")).to_have_attribute("data-source", "copy")
    expect(page.locator("#sync-bar")).to_contain_text("离线 · 0 条待同步")
    expect(page.locator("#visits-overdue, #visits-due").first).to_be_visible()

    # three visits, the second with 伤害迹象 and a photo
    started = dt.datetime.now().replace(microsecond=0)
    page.goto(page.base_url + "/field/visit")
    names = [name for _, name in facts["children"]]
    record_visit(page, names[0])
    expect(page.locator("#saved-detail")).to_contain_text("已保存在手机上")
    page.click("#again")
    record_visit(page, names[1], harm=True, photo=jpeg_photo(), note="发现伤情")
    page.click("#again")
    record_visit(page, names[2])

    # ten ticks on the activity's roll
    page.goto(page.base_url + f"/field/roll?id={facts['activity']}")
    ticks = page.locator("#roll-list input[type=checkbox]")
    expect(ticks.first).to_be_visible()
    assert ticks.count() >= 10
    for i in range(10):
        page.locator("#roll-list li label").nth(i).click()
    expect(page.locator("#roll-count")).to_contain_text("本次新增 10")
    page.click("#roll-save")
    expect(page.locator("#roll-saved")).to_be_visible()

    page.goto(page.base_url + "/field/")
    expect(page.locator("#sync-bar")).to_contain_text("离线 · 4 条待同步")
    for child_id, _ in facts["children"]:  # visited today: no longer due on the phone's 今日
        expect(page.locator(f"#visits-overdue li[data-child='{child_id}']")).to_have_count(0)
    expect(page.locator("#pending li")).to_have_count(4)
    phone_due = page.evaluate(
        """() => TonghuField.getCopy().then(c => {
            const f = c.child_fields;
            return c.children.map(r => [r[f.indexOf("id")], r[f.indexOf("next_visit_due")]]);
        })"""
    )
    phone_due = {child_id: due for child_id, due in phone_due if child_id in dict(facts["children"])}
    screenshot(page, "field-offline-bar")
    ended = dt.datetime.now().replace(microsecond=0) + dt.timedelta(seconds=1)
    # keep the queue as it was, to send it a second time later
    page.evaluate("TonghuField.queueItems().then(items => { window.keptQueue = items; })")
    assert server_counts(database_url, facts["activity"])["visits"] == []

    # back in signal: the queue syncs by itself
    page.context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    expect(page.locator("#sync-bar")).to_have_attribute("data-pending", "0", timeout=30000)
    expect(page.locator("#sync-bar")).to_contain_text("已同步 4 条")

    server = server_counts(database_url, facts["activity"])
    assert len(server["visits"]) == 3
    assert sorted(child for child, *_ in server["visits"]) == sorted(cid for cid, _ in facts["children"])
    for _, recorded, received, *_ in server["visits"]:
        assert started <= recorded <= ended and received >= recorded
    assert all(offline for *_, offline in server["visits"])
    assert server["attendance"] == 10
    assert phone_due == next_visits(database_url, [cid for cid, _ in facts["children"]])
    assert len(server["alerts"]) == 1
    title, detail, raised, deadline, severity = server["alerts"][0]
    harmed = next(v for v in server["visits"] if v[3])
    assert raised == harmed[1] and deadline == harmed[1] + dt.timedelta(hours=24) and severity == "red"
    assert "离线录入" in title and "离线录入" in detail
    if server["photos"] is not None:
        assert server["photos"] == 1

    # the same queue sent again writes nothing new
    results = page.evaluate(
        """async () => {
            for (const item of window.keptQueue) { await TonghuField.enqueue(item); }
            return (await TonghuField.syncNow()).results;
        }"""
    )
    assert len(results) == 4 and all(r["ok"] and r.get("duplicate") for r in results)
    again = server_counts(database_url, facts["activity"])
    assert (len(again["visits"]), again["attendance"], len(again["alerts"]), again["receipts"]) == (
        3,
        10,
        1,
        server["receipts"],
    )


def test_a_forged_item_is_refused_and_logout_leaves_nothing_on_the_phone(phone, database_url):
    facts = _facts(database_url)
    page = phone
    login(page)
    ready_offline(page)
    page.evaluate(
        """(f) => TonghuField.enqueue({
            uuid: TonghuField.uuid4(), kind: "visit", user_id: f.user_id, username: "director1",
            recorded_at: new Date().toISOString(), offline: true,
            data: {child_id: f.stranger, child_name: "外村儿童", visited_on: new Date().toISOString().slice(0, 10),
                   kind: "home", risk_note: "伪造", notes: "",
                   answers: {child_seen: true, guardian_present: true, living_ok: true, school_ok: true,
                             harm_signs: true, risk_found: true}}
        })""",
        facts,
    )
    page.reload()
    expect(page.locator("#refused li")).to_have_count(1, timeout=30000)
    expect(page.locator("#refused li .reason")).to_contain_text("不在您负责的村")
    expect(page.locator("#sync-bar")).to_contain_text("需处理 1 条")
    app = _app(database_url)
    with app.app_context():
        assert (
            db.session.scalar(
                db.select(Visit).where(Visit.child_id == facts["stranger"], Visit.client_uuid.is_not(None))
            )
            is None
        )
        assert db.session.scalar(db.select(db.func.count(SyncReceipt.id))) == 0
        db.session.remove()
        db.engine.dispose()

    # minimum data: a copy six days without a sync stays, one of eight days is deleted (the queue stays)
    aged = """(days) => TonghuField.getCopy().then(c => {
        c.synced_at = Date.now() - days * 86400000;
        return TonghuField.saveCopy(c);
    }).then(() => TonghuField.getCopy()).then(c => c ? c.children.length : null)"""
    assert page.evaluate(aged, 6) > 0
    assert page.evaluate(aged, 8) is None
    assert page.evaluate("TonghuField.queueItems().then(items => items.length)") == 1

    # logout: asked about the item still on the phone, then IndexedDB, caches and the worker are gone
    assert page.evaluate("caches.keys().then(k => k.length)") > 0
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#field-logout-button")
    page.wait_for_url("**/login**")
    expect(page.locator("body")).to_contain_text("您已安全退出")
    left = page.evaluate(
        """async () => ({
            databases: (await indexedDB.databases()).map(d => d.name),
            caches: await caches.keys(),
            workers: (await navigator.serviceWorker.getRegistrations()).length,
        })"""
    )
    assert "tonghu-field" not in left["databases"] and left["caches"] == [] and left["workers"] == 0


def test_the_visit_form_refuses_an_unanswered_check(phone, database_url):
    facts = _facts(database_url)
    page = phone
    login(page)
    child_id, name = facts["children"][0]
    page.goto(page.base_url + f"/field/visit?child={child_id}")
    expect(page.locator("#child-picked")).to_contain_text(name)
    expect(page.locator("#child-picked")).to_contain_text("走访")  # the last visit date, or none yet
    # nothing is preselected
    assert page.locator("#answers input:checked").count() == 0
    page.click("label:has(#kind-patrol)")
    for check in ("child_seen", "guardian_present", "living_ok"):
        answer(page, check, True)
    page.click("#save")
    errors = page.locator("#form-errors")
    expect(errors).to_be_visible()
    expect(errors).to_contain_text("请选择“正常上学”：是 或 否")
    expect(errors).to_contain_text("请选择“发现伤害迹象”：是 或 否")
    expect(errors).to_contain_text("请选择“发现风险”：是 或 否")
    expect(page.locator("#saved")).to_be_hidden()
    assert page.evaluate("TonghuField.queueItems().then(q => q.length)") == 0
    # 伤害迹象=是 marks 发现风险 and asks for the reason
    answer(page, "school_ok", True)
    answer(page, "harm_signs", True)
    expect(page.locator("#risk_found-yes")).to_be_checked()
    expect(page.locator("#risk-note-group")).to_be_visible()
    page.click("#save")
    expect(errors).to_contain_text("发现风险时请说明风险情况")
    screenshot(page, "field-visit-form")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    app = _app(database_url)
    with app.app_context():
        assert db.session.scalar(db.select(Visit).where(Visit.client_uuid.is_not(None))) is None
        db.session.remove()
        db.engine.dispose()


def test_lists_are_cards_on_a_phone(phone, database_url):
    page = phone
    login(page)
    page.goto(page.base_url + "/admin/child/")
    card = page.locator("table.model-list tbody tr").first
    expect(card.locator("td.card-head")).to_be_visible()
    expect(card.locator("td.card-fact").first).to_be_visible()
    expect(card.locator("td.card-fact[data-label='下次走访']")).to_be_visible()
    assert re.search(r"\d{4}-\d{2}-\d{2}", card.locator("td.card-fact[data-label='下次走访']").inner_text())
    expect(card.locator("td.col-id_number")).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "field-card-list")
    page.set_viewport_size({"width": 1366, "height": 900})
    expect(card.locator("td.card-head")).to_be_hidden()
    expect(card.locator("td.col-id_number")).to_be_visible()
    assert ARTIFACTS.exists()
