"""附件: what goes in is checked by its content and stripped; what comes out is scoped, audited and
never cached. Every test here runs twice: on local disk and on S3 (moto's standalone server)."""

import io
import re

import pytest
from PIL import Image

from models import Attachment, AuditLog, Case, Child, User, Visit, db
from services import attachments
from services.duplicates import merge_children
from tests.conftest import AuthActions, csrf_token

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def phone_jpeg(size=(1200, 900), orientation=6) -> bytes:
    """A photo as a phone writes it: EXIF with the camera, the place (GPS) and the orientation."""
    image = Image.new("RGB", size, (30, 120, 200))
    image.paste((250, 20, 20), (0, 0, size[0] // 4, size[1] // 4))  # a red corner shows the turn
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "ExamplePhone"
    exif[0x0110] = "Model X"
    exif[GPS_IFD] = {1: "N", 2: (29.0, 42.0, 7.5), 3: "E", 4: (107.0, 23.0, 12.25)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), xmp=b"<x:xmpmeta>GPS 29.7,107.4</x:xmpmeta>", quality=90)
    return out.getvalue()


def user(username) -> User:
    return db.session.scalar(db.select(User).where(User.username == username))


def child_of(username) -> Child:
    village_id = user(username).village_id
    return db.session.scalar(
        db.select(Child).where(Child.village_id == village_id, Child.archived_at.is_(None)).order_by(Child.id)
    )


def upload(client, owner_kind, owner_id, data, name="photo.jpg", kind="photo", page="/admin/"):
    return client.post(
        "/admin/attachment/upload/",
        data={
            "csrf_token": csrf_token(client, page),
            "owner_kind": owner_kind,
            "owner_id": str(owner_id),
            "kind": kind,
            "file": (io.BytesIO(data), name),
        },
        headers={"Accept": "application/json"},
        content_type="multipart/form-data",
    )


def stored_keys(store) -> set[str]:
    return set(store.keys())


def test_phone_photo_comes_back_turned_and_without_exif_or_gps(app, client, store):
    child = child_of("director1")
    AuthActions(client).login("director1")
    response = upload(client, "child", child.id, phone_jpeg(), name="IMG_0001.JPG")
    assert response.status_code == 200, response.get_json()
    saved = response.get_json()["saved"][0]
    original = client.get(saved["url"])
    assert original.status_code == 200
    image = Image.open(io.BytesIO(original.data))
    assert image.format == "JPEG"
    assert image.size == (900, 1200)  # orientation 6 applied: the picture stands as it was taken
    assert image.getpixel((image.width - 10, 10))[0] > 200  # the red corner moved to the top right
    assert dict(image.getexif()) == {}
    assert "exif" not in image.info and "xmp" not in image.info
    assert b"ExamplePhone" not in original.data and b"GPS" not in original.data
    thumb = client.get(saved["thumb_url"])
    thumbnail = Image.open(io.BytesIO(thumb.data))
    assert max(thumbnail.size) == attachments.THUMB_SIDE and dict(thumbnail.getexif()) == {}
    # what the storage holds is the clean picture, under a random name
    row = db.session.get(Attachment, saved["id"])
    assert store.read(row.storage_key) == original.data
    assert "IMG" not in row.storage_key and not row.storage_key.endswith(".jpg")
    assert re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{32}", row.storage_key)
    assert row.original_name == "IMG_0001.jpg"


def test_heic_from_an_iphone_is_kept_as_jpeg(app, client, store):
    import pillow_heif

    child = child_of("director1")
    heif = pillow_heif.from_pillow(Image.new("RGB", (640, 480), (10, 200, 10)))
    out = io.BytesIO()
    heif.save(out, quality=80)
    AuthActions(client).login("director1")
    response = upload(client, "child", child.id, out.getvalue(), name="IMG_0002.HEIC")
    assert response.status_code == 200, response.get_json()
    saved = response.get_json()["saved"][0]
    assert saved["name"] == "IMG_0002.jpg"
    image = Image.open(io.BytesIO(client.get(saved["url"]).data))
    assert image.format == "JPEG" and image.size == (640, 480)


def test_png_text_chunks_are_dropped(app, client, store):
    from PIL import PngImagePlugin

    child = child_of("director1")
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "扫描于 张三家 13800000000")
    out = io.BytesIO()
    Image.new("RGB", (300, 200), (255, 255, 255)).save(out, "PNG", pnginfo=info)
    AuthActions(client).login("director1")
    saved = upload(client, "child", child.id, out.getvalue(), name="scan.png", kind="hukou").get_json()[
        "saved"
    ][0]
    body = client.get(saved["url"]).data
    assert Image.open(io.BytesIO(body)).format == "PNG"
    assert b"13800000000" not in body and b"Comment" not in body


HOSTILE = {
    "shell.php.jpg": b"<?php system($_GET['c']); ?>",
    "page.jpg": b"<!doctype html><html><script>alert(document.cookie)</script></html>",
    "vector.jpg": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>',
    "fake.pdf": b"%PDF-1.7\n1 0 obj << /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>\n%%EOF\n",
    "escaped.pdf": b"%PDF-1.7\n1 0 obj << /S /J#61vaScript /JS (x) >>\n%%EOF\n",
    "cut.pdf": b"%PDF-1.7\n1 0 obj << >> stream\n",
    "broken.jpg": phone_jpeg()[:4000],
    "empty.jpg": b"",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_files_that_are_not_what_they_claim_are_refused(app, client, store, name):
    child = child_of("director1")
    before = stored_keys(store)
    AuthActions(client).login("director1")
    response = upload(client, "child", child.id, HOSTILE[name], name=name)
    assert response.status_code == 400
    message = "".join(response.get_json()["errors"])
    assert re.search(r"[\u4e00-\u9fff]", message), message
    assert "Traceback" not in message and "Error" not in message
    assert db.session.scalar(db.select(db.func.count()).select_from(Attachment)) == 0
    assert stored_keys(store) == before


def test_a_pdf_scan_is_kept_as_it_is(app, client, store):
    child = child_of("director1")
    pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    AuthActions(client).login("director1")
    saved = upload(client, "child", child.id, pdf, name="低保证明.pdf", kind="subsistence_cert").get_json()
    assert saved["saved"][0]["thumb_url"] is None
    response = client.get(saved["saved"][0]["url"])
    assert response.data == pdf and response.mimetype == "application/pdf"


def test_25_mb_is_refused_in_chinese(app, client, store):
    child = child_of("director1")
    AuthActions(client).login("director1")
    big = b"\xff\xd8\xff\xe0" + b"0" * (25 * 1024 * 1024)
    response = upload(client, "child", child.id, big, name="big.jpg")
    assert response.status_code == 413
    assert "不能超过20MB" in "".join(response.get_json()["errors"])
    page = client.post(
        "/admin/attachment/upload/",
        data={
            "csrf_token": "x",
            "owner_kind": "child",
            "owner_id": str(child.id),
            "file": (io.BytesIO(big), "a.jpg"),
        },
        content_type="multipart/form-data",
    )
    assert page.status_code == 413 and "不能超过20MB" in page.get_data(as_text=True)
    # just above 20 MB fits the request but not the attachment limit
    response = upload(client, "child", child.id, phone_jpeg() + b"0" * (20 * 1024 * 1024), name="b.jpg")
    assert response.status_code == 400 and "不能超过20MB" in "".join(response.get_json()["errors"])
    assert db.session.scalar(db.select(db.func.count()).select_from(Attachment)) == 0


def test_the_same_file_sent_twice_is_kept_once(app, client, store):
    child = child_of("director1")
    AuthActions(client).login("director1")
    photo = phone_jpeg()
    first = upload(client, "child", child.id, photo).get_json()["saved"][0]
    second = upload(client, "child", child.id, photo).get_json()["saved"][0]
    assert first["id"] == second["id"]
    assert len(stored_keys(store)) == 2  # the picture and its thumbnail, once


def test_another_villages_attachment_answers_record_missing(app, client, store):
    theirs = child_of("director2")
    AuthActions(client).login("director2")
    saved = upload(client, "child", theirs.id, phone_jpeg(), kind="hukou").get_json()["saved"][0]
    AuthActions(client).logout()
    AuthActions(client).login("director1")
    for url in (saved["url"], saved["thumb_url"], f"/admin/attachment/{saved['id']}/download/"):
        response = client.get(url)
        assert response.status_code == 404
        assert "记录不存在" in response.get_data(as_text=True)
        assert response.mimetype == "text/html"
    token = csrf_token(client, "/admin/")
    client.post(f"/admin/attachment/{saved['id']}/archive/", data={"csrf_token": token, "reason": "x"})
    assert db.session.get(Attachment, saved["id"]).archived_at is None
    # nor can director1 hang a file on director2's child
    response = upload(client, "child", theirs.id, phone_jpeg(size=(64, 64)))
    assert response.status_code == 404 and "记录不存在" in response.get_json()["errors"][0]
    # the fund officer reads no child's papers at all
    AuthActions(client).logout()
    AuthActions(client).login("finance")
    assert client.get(saved["url"]).status_code == 404


def test_roles_upload_only_where_they_write(app, client, store):
    child = child_of("director1")
    case = Case(child_id=child.id, case_type="absence", opened_on=child.birth_date)
    db.session.add(case)
    db.session.commit()
    AuthActions(client).login("director1")  # directors read cases, social workers write them
    response = upload(client, "case", case.id, phone_jpeg(), kind="case_doc")
    assert response.status_code == 403
    AuthActions(client).logout()
    AuthActions(client).login("inspector")
    assert upload(client, "child", child.id, phone_jpeg()).status_code == 403
    AuthActions(client).logout()
    AuthActions(client).login("social")
    response = upload(client, "case", case.id, phone_jpeg(), kind="case_doc")
    assert response.status_code == 200
    response = upload(client, "case", case.id, phone_jpeg(size=(50, 50)), kind="hukou")
    assert response.status_code == 400 and "个案不能上传“户口本”" in response.get_json()["errors"][0]


def test_every_view_and_download_is_audited_and_never_cached(app, client, store):
    child = child_of("director1")
    AuthActions(client).login("director1")
    saved = upload(client, "child", child.id, phone_jpeg(), name="户口本首页.jpg", kind="hukou").get_json()[
        "saved"
    ][0]
    shown = client.get(saved["url"])
    downloaded = client.get(f"/admin/attachment/{saved['id']}/download/")
    for response, disposition in ((shown, "inline"), (downloaded, "attachment")):
        assert response.headers["Content-Disposition"].startswith(disposition + ";")
        assert (
            "filename*=UTF-8''%E6%88%B7%E5%8F%A3%E6%9C%AC%E9%A6%96%E9%A1%B5.jpg"
            in response.headers["Content-Disposition"]
        )
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.mimetype == "image/jpeg"
    rows = db.session.scalars(
        db.select(AuditLog).where(AuditLog.table_name == "attachment", AuditLog.record_id == saved["id"])
    ).all()
    actions = [r.action for r in rows]
    assert actions.count("view") == 1 and actions.count("download") == 1
    read = [r for r in rows if r.action in ("view", "download")]
    assert all(r.username == "director1" and child.name in r.summary and "户口本" in r.summary for r in read)


def test_deleting_archives_and_restoring_brings_it_back(app, client, store):
    child = child_of("director1")
    AuthActions(client).login("director1")
    saved = upload(client, "child", child.id, phone_jpeg(), kind="photo").get_json()["saved"][0]
    keys = stored_keys(store)
    token = csrf_token(client, "/admin/")
    client.post(f"/admin/attachment/{saved['id']}/archive/", data={"csrf_token": token, "reason": "传错了"})
    row = db.session.get(Attachment, saved["id"])
    db.session.refresh(row)
    assert row.archived_at is not None and row.archive_reason == "传错了"
    assert stored_keys(store) == keys  # nothing is lost
    dossier = client.get(f"/admin/dossier/?id={child.id}").get_data(as_text=True)
    assert saved["thumb_url"] not in dossier
    details = client.get(f"/admin/child/details/?id={child.id}").get_data(as_text=True)
    assert "已删除的附件（1）" in details and "传错了" in details
    client.post(f"/admin/attachment/{saved['id']}/restore/", data={"csrf_token": token})
    db.session.refresh(row)
    assert row.archived_at is None
    assert saved["thumb_url"] in client.get(f"/admin/dossier/?id={child.id}").get_data(as_text=True)


def test_dossier_and_its_print_view_show_thumbnails(app, client, store):
    child = child_of("director1")
    visit = db.session.scalar(db.select(Visit).where(Visit.child_id == child.id))
    AuthActions(client).login("director1")
    hukou = upload(client, "child", child.id, phone_jpeg(size=(800, 600)), kind="hukou").get_json()["saved"][
        0
    ]
    assert visit is not None, "demo data gives director1's first child a visit"
    on_visit = upload(client, "visit", visit.id, phone_jpeg(size=(640, 480)), kind="visit_photo").get_json()
    on_visit = on_visit["saved"][0]
    for url in (f"/admin/dossier/?id={child.id}", f"/admin/dossier/print/?id={child.id}"):
        page = client.get(url).get_data(as_text=True)
        assert hukou["thumb_url"] in page and on_visit["thumb_url"] in page, url
    print_page = client.get(f"/admin/dossier/print/?id={child.id}").get_data(as_text=True)
    assert hukou["url"] + '"' not in print_page  # print shows thumbnails, not links to originals
    audit = db.session.scalars(
        db.select(AuditLog.summary).where(AuditLog.table_name == "child", AuditLog.record_id == child.id)
    ).all()
    assert any("含附件缩略图 2 张" in s for s in audit)


def test_panels_on_visit_case_activity_and_expense_pages(app, client, store):
    from models import Activity, Expense

    AuthActions(client).login("clerk")
    child = child_of("director1")
    visit = db.session.scalar(db.select(Visit).where(Visit.child_id == child.id))
    activity = db.session.scalar(db.select(Activity).order_by(Activity.id))
    expense = db.session.scalar(db.select(Expense).order_by(Expense.id))
    for kind, owner, page, file_kind in (
        ("visit", visit, f"/admin/visit/details/?id={visit.id}", "visit_photo"),
        ("activity", activity, f"/admin/activity/edit/?id={activity.id}", "scene_photo"),
    ):
        saved = upload(client, kind, owner.id, phone_jpeg(size=(300, 200)), kind=file_kind).get_json()[
            "saved"
        ][0]
        assert saved["thumb_url"] in client.get(page).get_data(as_text=True), page
    AuthActions(client).logout()
    AuthActions(client).login("finance")
    saved = upload(client, "expense", expense.id, phone_jpeg(size=(200, 300)), kind="voucher").get_json()
    page = client.get(f"/admin/expense/details/?id={expense.id}").get_data(as_text=True)
    assert saved["saved"][0]["thumb_url"] in page


def test_a_rolled_back_upload_leaves_nothing_in_storage(app, store):
    child = child_of("director1")
    before = stored_keys(store)
    with app.test_request_context():
        attachments.save_upload(child, "photo", phone_jpeg())
        assert len(stored_keys(store)) == len(before) + 2
        db.session.rollback()
    assert stored_keys(store) == before


def test_merging_duplicates_moves_the_scans(app, store):
    keep = child_of("director1")
    other = db.session.scalars(
        db.select(Child).where(Child.village_id == keep.village_id, Child.id != keep.id).order_by(Child.id)
    ).first()
    with app.test_request_context():
        moved_file = attachments.save_upload(other, "hukou", phone_jpeg())
        db.session.commit()
        merge_children(keep.id, other.id, None)
        db.session.commit()
    db.session.refresh(moved_file)
    assert (moved_file.owner_kind, moved_file.owner_id) == ("child", keep.id)
    assert moved_file in attachments.of_child(keep.id)


def test_attachments_backup_copies_new_files_and_verify_finds_missing_ones(app, store, tmp_path):
    child = child_of("director1")
    with app.test_request_context():
        first = attachments.save_upload(child, "hukou", phone_jpeg(size=(300, 200)))
        db.session.commit()
    runner = app.test_cli_runner()
    target = tmp_path / "attachment-backup"
    result = runner.invoke(args=["attachments-backup", "--to", str(target)])
    assert "新复制 2 个文件" in result.output, result.output
    assert (target / first.storage_key).read_bytes() == store.read(first.storage_key)
    with app.test_request_context():
        attachments.save_upload(child, "photo", phone_jpeg(size=(200, 300)))
        db.session.commit()
    result = runner.invoke(args=["attachments-backup", "--to", str(target)])
    assert "新复制 2 个文件，已有 2 个" in result.output
    assert "缺少文件 0 个" in runner.invoke(args=["attachments-verify"]).output
    store.delete(first.storage_key)  # a restored database whose files were not restored
    result = runner.invoke(args=["attachments-verify"])
    assert result.exit_code != 0 and f"附件编号 {first.id}" in result.output
