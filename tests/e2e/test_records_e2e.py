"""In Chromium: director1 attaches a 户口本 scan and a phone photo to a child, sees the thumbnails in the
dossier, transfers the child to 桃源村; director2 accepts it; director1 no longer finds the child."""

import io

from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import create_engine, text

from tests.e2e.conftest import login, logout, screenshot


def _first_child_of_yunling(database_url) -> tuple[int, str]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "select c.id, c.name from child c join village v on v.id = c.village_id "
                "where v.name = '云岭村' and c.archived_at is null order by c.id limit 1"
            )
        ).one()
    engine.dispose()
    return row[0], row[1]


def _files(tmp_path):
    """A scanned 户口本 page (drawn: a title band and the table's lines) and a phone photo with EXIF/GPS."""
    from PIL import ImageDraw, ImageFont

    scan = Image.new("RGB", (1240, 1754), (250, 248, 240))
    draw = ImageDraw.Draw(scan)
    draw.rectangle((80, 80, 1160, 220), fill=(196, 48, 43))
    try:
        font = ImageFont.truetype("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 72)
        draw.text((430, 105), "常住人口登记卡", fill=(255, 240, 200), font=font)
    except OSError:
        pass  # without the Chinese font the page is drawn without its title
    for y in range(300, 1600, 110):
        draw.line((80, y, 1160, y), fill=(60, 60, 60), width=3)
    for x in (80, 360, 760, 1160):
        draw.line((x, 300, x, 1510), fill=(60, 60, 60), width=3)
    scan_path = tmp_path / "户口本首页.png"
    scan.save(scan_path, "PNG")
    sky = Image.linear_gradient("L").resize((1600, 1200))
    photo = Image.merge(
        "RGB",
        [
            sky.point(lambda v: 90 + v // 3),
            sky.point(lambda v: 140 + v // 4),
            sky.point(lambda v: 220 - v // 2),
        ],
    )
    ImageDraw.Draw(photo).rectangle((500, 700, 1100, 1200), fill=(150, 110, 70))  # a house
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x8825] = {1: "N", 2: (29.0, 42.0, 7.5), 3: "E", 4: (107.0, 23.0, 12.0)}
    out = io.BytesIO()
    photo.save(out, "JPEG", exif=exif.tobytes())
    photo_path = tmp_path / "IMG_2041.JPG"
    photo_path.write_bytes(out.getvalue())
    return scan_path, photo_path


_MIME = {".png": "image/png", ".jpg": "image/jpeg"}


def _upload(page, kind, path):
    form = page.locator("#sec-attachments form.attachment-upload")
    form.locator("select[name=kind]").select_option(kind)
    # as bytes with the file's own (Chinese) name: Chromium under a locale the machine lacks
    # (LANG=zh_CN.UTF-8, tests/e2e/conftest.py) refuses a non-ASCII path on disk
    files = [{"name": path.name, "mimeType": _MIME[path.suffix.lower()], "buffer": path.read_bytes()}]
    form.locator("input[type=file]").set_input_files(files=files)
    expect(form.locator(".attachment-chosen")).to_have_text(path.name)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()


def test_attach_see_thumbnails_transfer_accept(page, database_url, tmp_path):
    child_id, name = _first_child_of_yunling(database_url)
    scan, photo = _files(tmp_path)
    login(page, "director1")
    page.goto(f"{page.base_url}/admin/dossier/?id={child_id}")
    _upload(page, "hukou", scan)
    _upload(page, "photo", photo)
    tiles = page.locator("#dossier-attachments .attachment-tile")
    assert tiles.count() == 2
    images = page.locator("#dossier-attachments img")
    images.first.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#dossier-attachments img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    # the phone photo stands upright (orientation applied) and its thumbnail is small
    sizes = images.evaluate_all("imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
    assert [240, 320] in sizes and all(max(s) <= 320 for s in sizes)
    page.locator("#sec-attachments").scroll_into_view_if_needed()
    screenshot(page, "records-dossier-thumbnails")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.locator("#sec-attachments").scroll_into_view_if_needed()
    screenshot(page, "records-dossier-thumbnails-phone")
    page.set_viewport_size({"width": 1366, "height": 768})

    # the print view shows the thumbnails too
    page.goto(f"{page.base_url}/admin/dossier/print/?id={child_id}")
    assert page.locator("#dossier-attachments img").count() == 2

    # transfer to 桃源村
    page.goto(f"{page.base_url}/admin/dossier/?id={child_id}")
    page.click("#dossier-transfer-link")
    page.select_option("#to_village", label="桃源村")
    page.fill("#reason", "随母亲搬迁至桃源村")
    page.fill("#handover_note", "母亲电话不变，请尽快入户")
    if page.locator("#acknowledged").count():
        page.check("#acknowledged")
    page.click("#transfer-submit")
    page.locator("#transfer-status", has_text="待接收").wait_for()
    page.goto(f"{page.base_url}/admin/dossier/?id={child_id}")
    assert page.locator("#dossier-pending-transfer").is_visible()  # still ours until accepted
    logout(page)

    login(page, "director2")
    page.locator("#incoming-transfers").wait_for()
    page.click("#incoming-transfers a")
    card = page.locator(".transfer-card", has_text=name)
    card.wait_for()
    screenshot(page, "records-transfer-inbox")
    card.locator(".transfer-accept").click()
    page.wait_for_url(f"**/admin/dossier/?id={child_id}")
    assert page.locator("#dossier-name").inner_text() == name
    assert page.locator("#dossier-attachments .attachment-tile").count() == 2  # the scans came along
    assert page.locator("#dossier-transfers .transfer-event").count() == 2
    logout(page)

    login(page, "director1")
    page.goto(f"{page.base_url}/admin/child/?search={name}")
    assert page.locator("table.model-list td", has_text=name).count() == 0
    page.goto(f"{page.base_url}/admin/dossier/?id={child_id}")
    assert page.locator("#dossier-missing").is_visible()


def test_a_visit_photo_is_scaled_down_in_the_browser_before_it_is_sent(page, database_url, tmp_path):
    engine = create_engine(database_url)
    with engine.connect() as conn:
        visit_id = conn.execute(
            text(
                "select vi.id from visit vi join child c on c.id = vi.child_id join village v on v.id = c.village_id "
                "where v.name = '云岭村' order by vi.id limit 1"
            )
        ).scalar()
    photo = Image.new("RGB", (3200, 2400), (120, 90, 60))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    photo.save(out, "JPEG", exif=exif.tobytes())
    path = tmp_path / "visit.jpg"
    path.write_bytes(out.getvalue())
    login(page, "director1")
    page.goto(f"{page.base_url}/admin/visit/details/?id={visit_id}")
    form = page.locator("form.attachment-upload[data-resize='2560']")
    form.locator("input[type=file]").set_input_files(str(path))
    assert form.locator(".attachment-chosen").inner_text() == "visit.jpg"
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    with engine.connect() as conn:
        width, height = conn.execute(
            text("select width, height from attachment where owner_kind = 'visit' and owner_id = :v"),
            {"v": visit_id},
        ).one()
    engine.dispose()
    assert (width, height) == (1920, 2560)  # turned upright by the browser, scaled to 2560, kept so
