"""验收材料包: one streamed ZIP for a period and the whole town. Every folder present, 目录.xlsx's
counts equal the files, the reports' figures equal the reports page's, no photo without consent,
no full ID number in any file (every xlsx opened with openpyxl, every docx with python-docx)."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile

import docx
import openpyxl
import pytest
from PIL import Image

from models import Activity, Attendance, AuditLog, Child, Consent, Guardian, User, db
from services import acceptance_pack, attachments, case_studies, clock, consent
from tests.conftest import form_fields
from tests.test_case_studies import closed_case  # noqa: F401 - the fixture

_ID = re.compile(r"\d{17}[\dXx]")


def _jpeg(color) -> io.BytesIO:
    out = io.BytesIO()
    Image.new("RGB", (80, 60), color).save(out, "JPEG")
    out.seek(0)
    out.name = "scene.jpg"
    return out


def _user(name) -> User:
    return db.session.scalar(db.select(User).where(User.username == name))


@pytest.fixture
def planted(app, closed_case):  # noqa: F811 - the fixture imported above
    """Two activities of this year: one only a consented child attended, one a child without
    consent attended; a scene photo on each, a signed scan on the second; an approved case study."""
    db.session.query(Consent).delete()
    consent.refresh(db.session.connection())  # Child.filing_consent: the rows went without the ORM
    year_start = dt.datetime(clock.today().year, 1, 1)
    first, second = db.session.scalars(
        db.select(Activity).where(Activity.starts_at >= year_start).order_by(Activity.starts_at).limit(2)
    ).all()
    children = db.session.scalars(
        db.select(Child)
        .where(Child.archived_at.is_(None), Child.guardian_links.any())
        .order_by(Child.id)
        .limit(2)
    ).all()
    ok_child, refused = children
    db.session.query(Attendance).filter(
        Attendance.activity_id.in_([first.id, second.id]), Attendance.child_id.is_not(None)
    ).delete()
    db.session.add_all(
        [
            Attendance(activity_id=first.id, child_id=ok_child.id),
            Attendance(activity_id=second.id, child_id=refused.id),
        ]
    )
    guardian = ok_child.guardian_links[0].guardian_id
    consent.record(ok_child, ["photos"], f"g{guardian}", clock.today(), "written", today=clock.today())
    db.session.commit()
    with app.test_request_context():
        shown = attachments.save_upload(first, "scene_photo", _jpeg((10, 200, 10)))
        hidden = attachments.save_upload(second, "scene_photo", _jpeg((200, 10, 10)))
        scan = attachments.save_upload(second, "signin_scan", _jpeg((240, 240, 240)))
        db.session.commit()
    study = case_studies.draft(closed_case, user_id=_user("social").id, now=clock.now())
    study.status = "approved"
    study.reviewed_by_id = _user("supervisor").id
    study.reviewed_at = clock.now()
    db.session.commit()
    from services import storage

    store = storage.current()
    return {
        "shown": store.read(shown.storage_key),
        "hidden": store.read(hidden.storage_key),
        "scan": store.read(scan.storage_key),
        "study": study.id,
    }


def _download(client, year, period="year") -> zipfile.ZipFile:
    response = client.get(f"/admin/acceptance-pack/pack.zip?year={year}&period={period}", buffered=False)
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert response.is_streamed
    data = response.get_data()
    response.close()
    return zipfile.ZipFile(io.BytesIO(data))


def _cells(data: bytes):
    book = openpyxl.load_workbook(io.BytesIO(data))
    for sheet in book.worksheets:
        for row in sheet.iter_rows(values_only=True):
            yield from (v for v in row if v is not None)


def _docx_text(data: bytes) -> str:
    document = docx.Document(io.BytesIO(data))
    return "\n".join(p.text for p in document.paragraphs)


def test_the_pack_holds_every_folder_counted_consented_and_masked(app, client, auth, planted):
    year = clock.today().year
    auth.login("clerk")
    page = client.get(f"/admin/acceptance-pack/?year={year}").get_data(as_text=True)
    assert "验收材料包" in page and 'id="pack-download"' in page
    pack = _download(client, year)
    names = pack.namelist()
    files = [n for n in names if not n.endswith("/")]
    assert files[0] == acceptance_pack.INDEX_NAME

    # every folder present, and 目录.xlsx counts what is in each
    index = openpyxl.load_workbook(io.BytesIO(pack.read(acceptance_pack.INDEX_NAME)))["目录"]
    counted = {
        row[1]: row[3] for row in index.iter_rows(min_row=4, values_only=True) if row[1] and row[1] != "合计"
    }
    folders = [acceptance_pack.folder_name(key) for key, _, _ in acceptance_pack.FOLDERS]
    assert list(counted) == folders
    for folder in folders:
        in_zip = [n for n in files if n.startswith(folder + "/")]
        assert in_zip or f"{folder}/" in names, f"{folder} missing"
        assert counted[folder] == len(in_zip), folder
    total = next(row[3] for row in index.iter_rows(min_row=4, values_only=True) if row[1] == "合计")
    assert total == len(files) - 1
    for folder in ("01_", "02_", "03_", "06_", "07_", "08_", "09_", "10_", "11_"):
        assert any(n.startswith(folder) for n in files), f"no file under {folder}"

    # photos: the consented one is there, the other never; the signed scan (a paper record) is
    contents = {n: pack.read(n) for n in files}
    assert planted["shown"] in contents.values()
    assert planted["hidden"] not in contents.values()
    assert planted["scan"] in contents.values()
    photo_folder = acceptance_pack.folder_name("photos")
    assert all(n.endswith((".jpg", ".png")) for n in files if n.startswith(photo_folder))

    # every activity of the year has its sign-in sheet
    year_start = dt.datetime(year, 1, 1)
    n_activities = db.session.scalar(
        db.select(db.func.count())
        .select_from(Activity)
        .where(Activity.starts_at >= year_start, Activity.starts_at < dt.datetime(year + 1, 1, 1))
    )
    signin = acceptance_pack.folder_name("signin")
    assert sum(1 for n in files if n.startswith(signin) and n.endswith("_签到表.xlsx")) == n_activities

    # the approved case study, as a Word document that opens
    cases = [n for n in files if n.startswith(acceptance_pack.folder_name("cases"))]
    assert len(cases) == 1 and "一、基本情况" in _docx_text(contents[cases[0]])

    # no full ID number of anyone in any file
    ids = {i for (i,) in db.session.execute(db.select(Child.id_number))}
    ids |= {i for (i,) in db.session.execute(db.select(Guardian.id_number)) if i}
    for name, data in contents.items():
        if name.endswith(".xlsx"):
            text = "\n".join(str(v) for v in _cells(data))
        elif name.endswith(".docx"):
            text = _docx_text(data)
        else:
            continue
        leaked = {m for m in _ID.findall(text) if m in ids}
        assert not leaked, f"full ID number in {name}"

    # audited
    logged = db.session.scalars(db.select(AuditLog).where(AuditLog.table_name == "acceptance_pack")).all()
    assert len(logged) == 1 and logged[0].username == "clerk"


def test_the_reports_in_the_pack_equal_the_reports_page(app, client, auth):
    year = clock.today().year
    auth.login("inspector")
    pack = _download(client, year, "advance")
    reports_folder = acceptance_pack.folder_name("reports")
    phase = next(n for n in pack.namelist() if n.startswith(reports_folder) and "阶段报表" in n)
    month = next(n for n in pack.namelist() if n.startswith(reports_folder) and "月度报表_" in n)
    mm = int(month.rsplit("-", 1)[1].split(".")[0])
    for name, url in (
        (phase, f"/admin/reports/download/?kind=phase&phase=advance&year={year}"),
        (month, f"/admin/reports/download/?kind=monthly&month={mm}&year={year}"),
    ):
        page = client.get(url)
        assert page.status_code == 200
        numbers = [v for v in _cells(page.data) if isinstance(v, int | float)]
        assert numbers, "the report has figures"
        assert [v for v in _cells(pack.read(name)) if isinstance(v, int | float)] == numbers, name


@pytest.mark.parametrize("username", ["director1", "social", "finance", "supervisor"])
def test_only_admin_clerk_and_inspector_reach_the_pack(client, auth, username):
    auth.login(username)
    assert client.get("/admin/acceptance-pack/").status_code == 403
    assert client.get("/admin/acceptance-pack/pack.zip").status_code == 403
    assert (
        db.session.scalar(
            db.select(db.func.count()).select_from(AuditLog).where(AuditLog.table_name == "acceptance_pack")
        )
        == 0
    )


def test_a_bad_year_or_period_falls_back_and_changes_nothing(client, auth):
    auth.login("admin")
    page = client.get("/admin/acceptance-pack/?year=abc&period=<script>")
    assert page.status_code == 200 and "<script>" not in page.get_data(as_text=True)
    assert form_fields  # the same helpers as the other tests
