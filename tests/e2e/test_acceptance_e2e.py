"""In Chromium: the clerk records a district inspection with two findings (one for each director's
village), director1 marks theirs 已整改 with a photo, the clerk downloads the 验收材料包 and the test
lists what is in it."""

import io
import zipfile
from pathlib import Path

from PIL import Image, ImageDraw
from sqlalchemy import create_engine, text

from tests.e2e.conftest import login, screenshot


def _ids(database_url) -> dict:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        users = dict(conn.execute(text("select username, id from user_account")).all())
        villages = dict(
            conn.execute(
                text(
                    "select u.username, u.village_id from user_account u where u.username in ('director1', 'director2')"
                )
            ).all()
        )
    engine.dispose()
    return {"users": users, "villages": villages}


def _photo(tmp_path):
    picture = Image.new("RGB", (800, 600), (230, 230, 220))
    ImageDraw.Draw(picture).rectangle((200, 150, 600, 450), fill=(60, 120, 180))  # a filed folder
    path = tmp_path / "evidence.jpg"
    picture.save(path, "JPEG")
    return path


def _set_select(page, selector, values):
    """Choose options of a <select> (select2 hides the element itself)."""
    page.eval_on_selector(
        selector,
        """(el, values) => {
            for (const o of el.options) o.selected = values.includes(o.value);
            el.dispatchEvent(new Event('change', {bubbles: true}));
        }""",
        [str(v) for v in values],
    )


def test_inspection_rectified_with_a_photo_then_the_pack(page, database_url, tmp_path):
    ids = _ids(database_url)
    d1, d2 = ids["villages"]["director1"], ids["villages"]["director2"]
    login(page, "clerk")
    page.goto(page.base_url + "/admin/inspection/new/")
    _set_select(page, "#level", ["district"])
    page.fill("#inspectors", "区民政局 王某、李某")
    _set_select(page, "#villages", [d1, d2])
    _set_select(page, "#areas", ["assessment", "visit"])
    _set_select(page, "#methods", ["records"])
    page.fill("#summary", "抽查评估和走访档案")
    findings = [
        (d1, ids["users"]["director1"], "assessment", "复评超期三人"),
        (d2, ids["users"]["director2"], "visit", "走访记录不全"),
    ]
    add = page.locator(".inline-field-list + .btn, a.btn:has-text('添加'), .inline-add-field").first
    for n, (village, owner, area, finding) in enumerate(findings):
        add.click()
        _set_select(page, f"#rectifications-{n}-area", [area])
        _set_select(page, f"#rectifications-{n}-village", [village])
        page.fill(f"#rectifications-{n}-finding", finding)
        _set_select(page, f"#rectifications-{n}-owner", [owner])
        deadline = page.locator(f"#rectifications-{n}-deadline")
        deadline.fill("2099-12-31")
    page.click("form.admin-form [type=submit], form [type=submit].btn-primary")
    page.wait_for_url("**/admin/inspection/**")
    assert "区民政局 王某、李某" in page.content(), "the inspection is listed"
    page.goto(page.base_url + "/admin/rectification/?search=复评超期三人")
    assert "复评超期三人" in page.content() and "走访记录不全" not in page.content()

    # director1 attaches a photo and marks the finding 已整改
    page.context.clear_cookies()
    login(page, "director1")
    page.goto(page.base_url + "/admin/rectification/?search=复评超期三人")
    page.locator("a[href*='/admin/rectification/details/']").first.click()
    page.wait_for_url("**/rectification/details/**")
    form = page.locator("form.attachment-upload").first
    form.locator("select[name=kind]").select_option("evidence")
    form.locator("input[type=file]").set_input_files(str(_photo(tmp_path)))
    form.locator("input[name=note]").fill("整改后档案柜")
    with page.expect_navigation():  # the upload script posts, then reloads the page
        form.locator("button[type=submit]").click()
    assert page.locator("img[src*='/attachment/']").count() >= 1, "the evidence photo's thumbnail is shown"
    page.fill("#done-note", "已完成三人复评并归档")
    page.click("#done-button")
    page.wait_for_selector("#rect-status")
    assert "已整改" in page.inner_text("#rect-status")
    screenshot(page, "rectification-done")

    # the clerk downloads the pack
    page.context.clear_cookies()
    login(page, "clerk")
    page.goto(page.base_url + "/admin/acceptance-pack/")
    screenshot(page, "acceptance-pack")
    with page.expect_download() as waiting:
        page.click("#pack-download")
    download = waiting.value
    data = Path(download.path()).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as pack:
        names = pack.namelist()
        ledger = next(n for n in names if n.endswith("督查与整改台账.xlsx"))
        import openpyxl

        cells = {
            str(v)
            for sheet in openpyxl.load_workbook(io.BytesIO(pack.read(ledger))).worksheets
            for row in sheet.iter_rows(values_only=True)
            for v in row
            if v is not None
        }
    print("\n".join(names))
    assert names[0] == "目录.xlsx"
    assert any(n.startswith("07_督查与整改台账/") for n in names)
    assert "复评超期三人" in cells and "走访记录不全" in cells
    assert any(c.startswith("已整改") for c in cells)
