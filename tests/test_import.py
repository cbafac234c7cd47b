"""台账导入: template, dry run with every kind of problem, all-or-nothing import, skip/update, refusals."""

import datetime as dt
import io
import re

import pytest
from openpyxl import Workbook, load_workbook

from models import AuditLog, Child, Guardian, Village, db
from seeds.demo import id_number
from services import ledger_import
from services.ledger_import import COLUMNS, check_ledger, import_ledger
from tests.conftest import a_child, form_fields

HEADERS = [c.header + ("*" if c.required else "") for c in COLUMNS]
KEY_INDEX = {c.key: i for i, c in enumerate(COLUMNS)}


def new_id(n: int, male: bool = True, born: dt.date = dt.date(2015, 3, 4)) -> str:
    """A valid ID number no demo child or guardian uses (sequence numbers 600-999)."""
    return id_number(born + dt.timedelta(days=n // 200), 300 + n % 200, male)


def row(n: int, **values) -> dict:
    base = {
        "name": f"测试儿童{n}",
        "id_number": new_id(n),
        "village": "云岭村",
        "category1": "低保儿童",
        "g1_name": f"测试家长{n}",
        "g1_relation": "母",
        "g1_phone": f"139{n:08d}",
    }
    base.update(values)
    return {k: v for k, v in base.items() if v is not None}


def ledger(rows: list[dict], headers=None, sheet_title="儿童名单") -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = sheet_title
    sheet.append(headers or HEADERS)
    for values in rows:
        line = [None] * len(COLUMNS)
        for key, value in values.items():
            line[KEY_INDEX[key]] = value
        sheet.append(line)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def save(tmp_path, content: bytes, name="ledger.xlsx"):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def upload(client, content: bytes, mode="skip", filename="台账.xlsx"):
    fields = form_fields(client, "/admin/import/")
    return client.post(
        "/admin/import/check/",
        data={**fields, "mode": mode, "file": (io.BytesIO(content), filename)},
        content_type="multipart/form-data",
    )


def run(client, page: str, mode="skip"):
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post("/admin/import/run/", data={"csrf_token": csrf, "token": token, "mode": mode})


@pytest.fixture(autouse=True)
def upload_folder(app, tmp_path):
    app.config["IMPORT_FOLDER"] = str(tmp_path / "imports")
    return tmp_path / "imports"


def children_count() -> int:
    db.session.expire_all()
    return db.session.scalar(db.select(db.func.count()).select_from(Child))


def existing_child() -> Child:
    return db.session.scalar(db.select(Child).order_by(Child.id))


# --------------------------------------------------------------------------- template


def test_template_has_dropdowns_and_instructions(client, auth):
    auth.login("clerk")
    response = client.get("/admin/import/template/")
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.data))
    assert "儿童名单" in book.sheetnames and "填写说明" in book.sheetnames
    sheet = book["儿童名单"]
    assert [c.value for c in sheet[1]] == HEADERS
    letters = {c.key: sheet.cell(1, i + 1).column_letter for i, c in enumerate(COLUMNS)}
    validated = {}
    for validation in sheet.data_validations.dataValidation:
        for cell_range in str(validation.sqref).split():
            validated[re.match(r"[A-Z]+", cell_range).group(0)] = validation
    for key in ("gender", "village", "category1", "g1_relation", "g1_status"):
        assert letters[key] in validated, key
        assert validated[letters[key]].type == "list"
    options = book["选项"]
    villages = [c.value for c in options["B"][1:] if c.value]
    assert "云岭村" in villages and len(villages) == 12
    guide = "\n".join(str(c.value) for r in book["填写说明"].iter_rows() for c in r if c.value)
    assert "身份证号" in guide and "合并单元格" in guide


def test_downloaded_template_filled_in_imports(client, auth):
    auth.login("clerk")
    book = load_workbook(io.BytesIO(client.get("/admin/import/template/").data))
    sheet = book["儿童名单"]
    values = row(1, gender="男", birth_date=dt.datetime(2015, 3, 4), g1_status="外出务工")
    sheet.append([values.get(c.key) for c in COLUMNS])
    buffer = io.BytesIO()
    book.save(buffer)
    before = children_count()
    page = upload(client, buffer.getvalue()).get_data(as_text=True)
    assert "未发现问题" in page
    assert "已导入" not in page
    assert run(client, page).status_code == 200
    assert children_count() == before + 1


# --------------------------------------------------------------------------- dry run


def test_dry_run_lists_every_kind_of_problem_and_writes_nothing(client, auth):
    registered = existing_child()
    rows = [
        row(1),  # row 2: good
        row(2, id_number=new_id(2)[:-1] + ("0" if new_id(2)[-1] != "0" else "1")),  # row 3: bad check digit
        row(3, birth_date="2014-01-01"),  # row 4: birth date does not match
        row(4, village="不存在村"),  # row 5: unknown village
        row(5, name=None),  # row 6: missing required field
        row(6, id_number=new_id(1)),  # row 7: duplicate of row 2 inside the file
        row(7, id_number=registered.id_number),  # row 8: already registered
        row(8, category1="外星儿童"),  # row 9: unknown category
        row(9, g1_relation=None),  # row 10: guardian without relation
        row(10, id_number=int(new_id(10)[:-1] + "0")),  # row 11: ID stored as a number
    ]
    before = children_count()
    auth.login("clerk")
    response = upload(client, ledger(rows))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    table = page.split('id="import-errors"')[1]
    found = re.findall(
        r"<tr><td>第(\d+)行</td><td>([^<]+)<small[^>]*>（([A-Z]+)列）</small></td><td>([^<]+)</td></tr>",
        table,
    )
    assert ("3", "身份证号", "B", "身份证号校验位不正确，请核对最后一位") in found
    found = [(number, column, message) for number, column, _, message in found]
    by_row = {}
    for number, column, message in found:
        by_row.setdefault(int(number), []).append((column, message))
    assert 2 not in by_row
    assert by_row[3] == [("身份证号", "身份证号校验位不正确，请核对最后一位")]
    assert by_row[4][0][0] == "出生日期" and "不一致" in by_row[4][0][1]
    assert by_row[5] == [("村（社区）", "村（社区）“不存在村”不存在，请从下拉列表选择")]
    assert by_row[6] == [("姓名", "必填项为空")]
    assert by_row[7] == [("身份证号", "与第2行的身份证号重复（同一文件内重复）")]
    assert 8 not in by_row  # already registered is a notice, decided by skip/update
    assert by_row[9][0][0] == "困境类别" and "外星儿童" in by_row[9][0][1]
    assert by_row[10][0][0] == "监护人关系"
    assert by_row[11][0][0] == "身份证号" and "数字" in by_row[11][0][1]
    assert 'id="run-button"' not in page
    assert children_count() == before


def test_already_registered_is_listed_as_a_notice(tmp_path):
    registered = existing_child()
    path = save(tmp_path, ledger([row(1), row(2, id_number=registered.id_number.lower())]))
    result = check_ledger(path, None)
    assert result.ok
    assert result.new_count == 1 and result.existing_count == 1
    assert result.notices[0].row == 3
    assert f"档案编号 {registered.file_no}" in result.notices[0].message


def test_registered_in_another_village_is_an_error_for_a_scoped_user(tmp_path):
    other_village = db.session.scalar(db.select(Village).where(Village.name == "桃源村"))
    registered = a_child(Child.village_id == other_village.id)
    own = db.session.scalar(db.select(Village).where(Village.name == "云岭村"))
    path = save(tmp_path, ledger([row(1, id_number=registered.id_number), row(2, village="桃源村")]))
    result = check_ledger(path, [own.id])
    messages = {(p.row, p.column): p.message for p in result.errors}
    assert "其他村（社区）登记" in messages[(2, "身份证号")]
    assert "不在您的管理范围" in messages[(3, "村（社区）")]


# --------------------------------------------------------------------------- import


def test_import_writes_children_guardians_and_links(client, auth):
    shared = new_id(50, male=False, born=dt.date(1998, 5, 5))
    rows = [
        row(
            1,
            g1_id_number=shared,
            g1_name="共同妈妈",
            g2_name="爸爸一",
            g2_relation="父",
            g2_status="外出务工",
        ),
        row(2, g1_id_number=shared, g1_name="共同妈妈", category2="残疾儿童", disability_kind="肢体"),
        row(3, village="罗云社区", g1_name=None, g1_relation=None, g1_phone=None),
    ]
    before = children_count()
    auth.login("clerk")
    page = upload(client, ledger(rows)).get_data(as_text=True)
    assert "未发现问题" in page
    done = run(client, page).get_data(as_text=True)
    assert "新增儿童 3 名" in done
    assert children_count() == before + 3
    first = db.session.scalar(db.select(Child).where(Child.id_number == new_id(1)))
    second = db.session.scalar(db.select(Child).where(Child.id_number == new_id(2)))
    third = db.session.scalar(db.select(Child).where(Child.id_number == new_id(3)))
    assert first.birth_date == dt.date(2015, 3, 4) and first.gender == "M"
    assert first.name_pinyin.startswith("ceshi")
    assert sorted(c.name for c in second.categories) == ["低保儿童", "残疾儿童"]
    assert second.disability_kind == "肢体"
    assert third.village.name == "罗云社区" and third.guardian_links == []
    mother = db.session.scalar(db.select(Guardian).where(Guardian.id_number == shared))
    assert {link.child_id for link in mother.child_links} == {first.id, second.id}
    links = {link.guardian.name: link for link in first.guardian_links}
    assert links["共同妈妈"].is_primary and not links["爸爸一"].is_primary
    assert links["爸爸一"].relation == "father" and links["爸爸一"].guardian.status == "migrant"
    log = db.session.scalar(
        db.select(AuditLog).where(AuditLog.action == "import").order_by(AuditLog.id.desc())
    )
    assert "新增3名" in log.summary


def test_a_registered_guardian_is_linked_not_copied(client, auth):
    village = db.session.scalar(db.select(Village).where(Village.name == "云岭村"))
    guardian = Guardian(
        name="已登记家长", id_number=new_id(7, born=dt.date(1998, 5, 5)), village_id=village.id
    )
    db.session.add(guardian)
    db.session.commit()
    guardians_before = db.session.scalar(db.select(db.func.count()).select_from(Guardian))
    auth.login("clerk")
    rows = [row(1, g1_name=guardian.name, g1_id_number=guardian.id_number, g1_relation="父")]
    page = upload(client, ledger(rows)).get_data(as_text=True)
    assert "新增监护人 0 名" in run(client, page).get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count()).select_from(Guardian)) == guardians_before
    child = db.session.scalar(db.select(Child).where(Child.id_number == new_id(1)))
    assert [link.guardian_id for link in child.guardian_links] == [guardian.id]


def test_error_in_row_999_of_1000_writes_nothing(client, auth, tmp_path):
    rows = [row(n) for n in range(1, 1001)]
    rows[998] = row(999, village="查无此村")
    content = ledger(rows)
    before = children_count()
    guardians_before = db.session.scalar(db.select(db.func.count()).select_from(Guardian))
    path = save(tmp_path, content)
    result = check_ledger(path, None)
    assert [(p.row, p.column) for p in result.errors] == [(1000, "村（社区）")]
    with pytest.raises(ledger_import.LedgerHasErrors):
        import_ledger(path, None, "skip")
    db.session.rollback()
    auth.login("clerk")
    page = upload(client, content).get_data(as_text=True)
    assert "第1000行" in page and 'id="run-button"' not in page
    assert children_count() == before
    assert db.session.scalar(db.select(db.func.count()).select_from(Guardian)) == guardians_before


def test_failure_during_import_rolls_back_everything(client, auth, monkeypatch):
    before = children_count()
    auth.login("clerk")
    page = upload(client, ledger([row(n) for n in range(1, 21)])).get_data(as_text=True)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    # children and guardians are already inserted when the links fail
    monkeypatch.setattr(ledger_import, "_existing_links", boom)
    response = run(client, page)
    assert response.status_code == 302
    assert children_count() == before
    assert db.session.scalar(db.select(Child.id).where(Child.id_number == new_id(1))) is None


def test_skip_leaves_registered_children_as_they_were(client, auth):
    registered = existing_child()
    address, categories = registered.address, sorted(c.name for c in registered.categories)
    rows = [row(1), row(2, id_number=registered.id_number, name=registered.name, address="新地址1号")]
    auth.login("clerk")
    page = upload(client, ledger(rows)).get_data(as_text=True)
    assert "已登记" in page
    done = run(client, page, mode="skip").get_data(as_text=True)
    assert "新增儿童 1 名，更新 0 名，跳过 1 名" in done
    db.session.expire_all()
    registered = db.session.get(Child, registered.id)
    assert registered.address == address
    assert sorted(c.name for c in registered.categories) == categories


def test_update_rewrites_registered_children(client, auth):
    registered = existing_child()
    links_before = len(registered.guardian_links)
    version = registered.version
    rows = [
        row(
            2,
            id_number=registered.id_number,
            name=registered.name,
            village=registered.village.name,
            address="新地址1号",
            category1="孤独症儿童",
            g1_name="新增监护人",
            g1_relation="祖父母",
        )
    ]
    auth.login("clerk")
    page = upload(client, ledger(rows), mode="update").get_data(as_text=True)
    done = run(client, page, mode="update").get_data(as_text=True)
    assert "更新 1 名" in done
    db.session.expire_all()
    registered = db.session.get(Child, registered.id)
    assert registered.address == "新地址1号"
    assert [c.name for c in registered.categories] == ["孤独症儿童"]
    assert registered.version == version + 1
    names = [link.guardian.name for link in registered.guardian_links]
    assert len(names) == links_before + 1 and "新增监护人" in names
    assert sum(1 for link in registered.guardian_links if link.is_primary) == 1


# --------------------------------------------------------------------------- refusals


def _refused(client, content, filename="台账.xlsx", status=400) -> str:
    before = children_count()
    response = upload(client, content, filename=filename)
    assert response.status_code == status
    assert children_count() == before
    page = response.get_data(as_text=True)
    assert 'id="import-refused"' in page
    return page


def test_refuses_a_file_that_is_not_xlsx(client, auth):
    auth.login("clerk")
    assert "不是 Excel 工作簿" in _refused(client, "姓名,身份证号\n张三,1".encode(), "台账.csv")
    assert "旧版 Excel" in _refused(client, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "台账.xls")
    assert "无法读取" in _refused(client, b"PK\x03\x04 broken zip", "台账.xlsx")


def test_refuses_wrong_headers(client, auth):
    auth.login("clerk")
    headers = ["姓名", "身份证", "村（社区）", "类别"]
    page = _refused(client, ledger([], headers=headers))
    assert "表头与导入模板不一致" in page and "身份证号" in page and "身份证" in page


def test_refuses_more_than_10_mb(client, auth):
    auth.login("clerk")
    page = _refused(client, b"PK\x03\x04" + b"\0" * (10 * 1024 * 1024 + 10))
    assert "10 MB" in page
    # above the app's request limit the upload is refused before the view runs
    page = _refused(client, b"PK\x03\x04" + b"\0" * (22 * 1024 * 1024), status=413)
    assert "10 MB" in page


def test_refuses_more_than_20000_rows(client, auth):
    book = Workbook(write_only=True)
    sheet = book.create_sheet("儿童名单")
    sheet.append(HEADERS)
    for n in range(20_001):
        sheet.append([f"儿童{n}"])
    buffer = io.BytesIO()
    book.save(buffer)
    auth.login("clerk")
    assert "20000 行" in _refused(client, buffer.getvalue())


def test_refuses_merged_cells(client, auth):
    book = load_workbook(io.BytesIO(ledger([row(1), row(2)])))
    book.active.merge_cells("E2:E3")
    buffer = io.BytesIO()
    book.save(buffer)
    auth.login("clerk")
    assert "合并单元格（E2:E3）" in _refused(client, buffer.getvalue())


def test_refuses_formulas(client, auth):
    book = load_workbook(io.BytesIO(ledger([row(1), row(2)])))
    book.active["A3"] = '=CONCATENATE("张","三")'
    buffer = io.BytesIO()
    book.save(buffer)
    auth.login("clerk")
    assert "第3行“姓名”列含有公式" in _refused(client, buffer.getvalue())


def test_only_admin_and_clerk_may_import(client, auth):
    auth.login("director1")
    assert client.get("/admin/import/").status_code == 403
    assert client.get("/admin/import/template/").status_code == 403


def test_a_token_serves_only_its_uploader(client, auth):
    auth.login("clerk")
    page = upload(client, ledger([row(1)])).get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    auth.logout()
    auth.login("admin")
    before = children_count()
    fields = form_fields(client, "/admin/import/")
    response = client.post("/admin/import/run/", data={**fields, "token": token, "mode": "skip"})
    assert response.status_code == 302
    assert children_count() == before
    response = client.post("/admin/import/run/", data={**fields, "token": "../../secret_key", "mode": "skip"})
    assert response.status_code == 302


def test_guardian_id_with_a_county_code_newer_than_the_birth_is_accepted():
    from services.ledger_import import clean_adult_id_number
    from services.validation import InvalidInput

    older = id_number(dt.date(1985, 5, 5), 300, True)  # 涪陵区 500102 exists since 1997
    assert clean_adult_id_number(older) == older
    with pytest.raises(InvalidInput, match="校验位"):
        clean_adult_id_number(older[:-1] + ("0" if older[-1] != "0" else "1"))
    with pytest.raises(InvalidInput, match="行政区划"):
        clean_adult_id_number("99" + older[2:])


def test_a_messy_ledger_is_understood(tmp_path):
    full_width = new_id(5).translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
    rows = [
        row(5, id_number=" " + full_width + " ", gender="男性", village="云岭", category1="低保、残疾"),
        row(
            6,
            birth_date="2015.3.4",
            g1_relation="外婆",
            g1_status="外出打工",
            g1_phone="１３９０００００００６",
        ),
        row(7, birth_date=42067.0),  # a date cell that lost its format: Excel's day number of 2015-03-04
    ]
    result = check_ledger(save(tmp_path, ledger(rows)), None)
    assert result.errors == []
    first, second, third = result.rows
    assert first.values["id_number"] == new_id(5) and first.values["gender"] == "M"
    assert len(first.categories) == 2
    assert second.values["birth_date"] == dt.date(2015, 3, 4)
    assert second.guardians[0].relation == "maternal" and second.guardians[0].status == "migrant"
    assert second.guardians[0].phone == "13900000006"
    assert third.values["birth_date"] == dt.date(2015, 3, 4)


def test_a_ledger_with_its_own_header_words_and_a_serial_column(tmp_path):
    headers = ["序号", "姓名", "身份证号码", "所在村", "儿童类别", "监护人姓名", "与儿童关系", "联系电话"]
    book = Workbook()
    sheet = book.active
    sheet.append(headers)
    sheet.append([1, "自有台账儿童", new_id(20), "云岭村", "低保儿童", "自有台账家长", "母亲", "13912345678"])
    path = tmp_path / "own.xlsx"
    book.save(path)
    result = check_ledger(path, None)
    assert result.errors == []
    plan = result.rows[0]
    assert plan.values["name"] == "自有台账儿童" and plan.values["id_number"] == new_id(20)
    assert plan.guardians[0].relation == "mother" and plan.guardians[0].phone == "13912345678"


def test_uploads_are_kept_only_while_an_import_may_follow(client, auth, upload_folder):
    auth.login("clerk")
    upload(client, ledger([row(1, village="查无此村")]))
    assert list(upload_folder.iterdir()) == []  # a file with problems is uploaded again once corrected
    page = upload(client, ledger([row(1)])).get_data(as_text=True)
    assert len(list(upload_folder.glob("*.xlsx"))) == 1
    run(client, page)
    assert list(upload_folder.iterdir()) == []
