"""One workbook factory (services/workbook.py): every xlsx the app can produce, made with hostile
user text in titles, names, notes and village names, holds that text as text — no formula cell in
any sheet came from what someone typed."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest

from models import Activity, Child, Expense, FundSource, Guardian, Setting, Staff, User, Village, db
from services.workbook import Book, PrintSetup
from tests.conftest import AuthActions, a_child

HOSTILE = [
    '=HYPERLINK("http://x","y")',
    "=cmd|' /C calc'!A0",
    "+1",
    "@SUM(1)",
    "-2+3",
]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The ledger's own formulas: sums and rates over its cells, built by our code.
OWN_FORMULA_FUNCTIONS = ("SUBTOTAL(", "SUMIFS(", "SUM(", "IF(")


def plant_hostile_text() -> dict:
    """Put hostile text wherever a workbook shows user text; returns what was planted where."""
    village = db.session.scalars(db.select(Village).order_by(Village.sort_order)).first()
    village.name = HOSTILE[0]
    town = db.session.get(Setting, "town_name")
    if town is not None:
        town.value = HOSTILE[1]
    else:
        db.session.add(Setting(key="town_name", value=HOSTILE[1], label="镇名"))
    activity = db.session.scalars(db.select(Activity).order_by(Activity.id)).first()
    activity.title = HOSTILE[2]
    activity.place = HOSTILE[3]
    child = a_child(Child.village_id == village.id)
    child.name = HOSTILE[4]
    child.address = HOSTILE[0]
    guardian = db.session.scalars(db.select(Guardian)).first()
    guardian.name = HOSTILE[1]
    staff = db.session.scalars(db.select(Staff)).first()
    staff.organisation = HOSTILE[2]
    source = FundSource(
        name=HOSTILE[3],
        kind="district",
        amount=Decimal("1000"),
        received_on=dt.date(2026, 1, 5),
        notes=HOSTILE[4],
    )
    db.session.add(source)
    db.session.flush()
    finance = db.session.scalar(db.select(User).where(User.username == "finance"))
    finance.display_name = HOSTILE[0]
    db.session.add(
        Expense(
            spent_on=dt.date(2026, 2, 1),
            amount=Decimal("1500.00"),
            source_id=source.id,
            category="training",
            payee=HOSTILE[0],
            purpose=HOSTILE[1],
            voucher_no=HOSTILE[2],
            collective_decision_ref=HOSTILE[3],
            handler_id=finance.id,
            status="draft",
        )
    )
    admin = db.session.scalar(db.select(User).where(User.username == "admin"))
    admin.display_name = HOSTILE[4]
    db.session.commit()
    return {"activity": activity.id, "village": village.id}


def xlsx_responses(app, client, planted) -> dict[str, bytes]:
    """Every workbook the app answers with, found by walking its GET rules as an admin: each rule
    as is, with the id of a row of its view's model, and the reports' variants."""
    from tests.test_access import view_for_endpoint, walkable_rules

    found: dict[str, bytes] = {}
    for rule in walkable_rules(app):
        attempts = [rule.rule]
        view = view_for_endpoint(app, rule.endpoint)
        model = getattr(view, "model", None)
        if model is not None:
            pk = model.__mapper__.primary_key[0]
            first = db.session.execute(db.select(pk).order_by(pk).limit(1)).scalar()
            if model is Activity:
                first = planted["activity"]
            if first is not None:
                attempts.append(f"{rule.rule}?id={first}")
        if rule.endpoint == "reports.download_view":
            attempts += [f"{rule.rule}?kind=phase&phase=advance", f"{rule.rule}?village={planted['village']}"]
        for url in attempts:
            response = client.get(url)
            if response.status_code == 200 and response.mimetype == XLSX:
                found[url] = response.data
    return found


def formula_cells(data: bytes):
    book = openpyxl.load_workbook(io.BytesIO(data))
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if cell.data_type == "f":
                    yield sheet.title, cell.coordinate, str(cell.value)


def text_cells(data: bytes) -> set[str]:
    book = openpyxl.load_workbook(io.BytesIO(data))
    return {
        str(cell.value)
        for sheet in book.worksheets
        for row in sheet.iter_rows()
        for cell in row
        if cell.data_type in ("s", "inlineStr") and cell.value is not None
    }


def test_every_workbook_keeps_hostile_text_as_text(app, client):
    planted = plant_hostile_text()
    AuthActions(client).login("admin")
    workbooks = xlsx_responses(app, client, planted)
    # list exports, the ledger, the sign-in sheet, the import template and both reports
    kinds = {url.split("?")[0] for url in workbooks}
    assert (
        any(u.endswith("/export.xlsx") for u in kinds)
        and len([u for u in kinds if u.endswith("/export.xlsx")]) >= 10
    )
    for expected in (
        "/admin/fund-check/ledger.xlsx",
        "/admin/activity/signin-sheet/",
        "/admin/import/template/",
    ):
        assert expected in kinds, f"{expected} not produced"
    assert any("kind=phase" in url for url in workbooks) and "/admin/reports/download/" in kinds
    seen = set()
    for url, data in workbooks.items():
        for sheet, coordinate, formula in formula_cells(data):
            assert url.startswith("/admin/fund-check/ledger.xlsx"), f"{url} {sheet}!{coordinate}: {formula}"
            own = (
                formula.startswith(tuple("=" + f for f in OWN_FORMULA_FUNCTIONS))
                or formula[1:2] in "ABCDEFGHI"
            )
            assert own, f"{url} {sheet}!{coordinate}: {formula}"
            for fragment in ("HYPERLINK", "cmd", "calc", "@"):
                assert fragment not in formula, f"{url} {sheet}!{coordinate}: {formula}"
        # anything containing hostile text is text: found whole or inside a longer text cell
        texts = text_cells(data)
        seen |= {h for h in HOSTILE for t in texts if h in t}
    assert seen == set(HOSTILE), f"hostile texts never written: {set(HOSTILE) - seen}"


def test_import_template_dropdowns_take_their_choices_from_text_cells(app, client):
    village = db.session.scalars(db.select(Village).order_by(Village.sort_order)).first()
    village.name = '云岭,"村"=1'
    db.session.commit()
    AuthActions(client).login("clerk")
    data = client.get("/admin/import/template/").data
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book.worksheets[0]
    sources = [dv.formula1 for dv in sheet.data_validations.dataValidation]
    assert sources and all(s.startswith("'选项'!$") for s in sources), sources
    options = book["选项"]
    assert options.sheet_state == "hidden"
    assert '云岭,"村"=1' in {c.value for row in options.iter_rows() for c in row}


@pytest.mark.parametrize("value", HOSTILE)
def test_the_factory_writes_text_as_text_whatever_it_starts_with(value):
    book = Book()
    sheet = book.sheet(value)
    sheet.title(0, 0, 0, 3, value)
    sheet.text(1, 0, value)
    sheet.value(2, 0, value)
    sheet.row(3, 0, [value, value])
    data = book.close()
    assert list(formula_cells(data)) == []
    assert value in text_cells(data)


def test_sheets_offer_no_generic_write():
    sheet = Book().sheet("x")
    for name in ("write", "write_row", "write_column", "merge_range"):
        with pytest.raises(AttributeError):
            getattr(sheet, name)


def test_print_setup_is_applied_in_one_place():
    book = Book(
        print_setup=PrintSetup(
            landscape=True,
            fit_to_width=True,
            repeat_rows=(0, 0),
            page_numbers=True,
            footer_town="罗云镇 & 测试",
        )
    )
    sheet = book.sheet("签到表")
    sheet.text(0, 0, "标题")
    data = book.close()
    ws = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
    assert ws.page_setup.orientation == "landscape" and ws.page_setup.paperSize == 9
    assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth in (None, 1)
    assert ws.page_setup.fitToHeight in (0, "0")
    assert ws.print_title_rows.replace("$", "") == "1:1"
    assert "罗云镇 && 测试" in ws.oddFooter.center.text and "&P" in ws.oddFooter.center.text


def test_id_numbers_are_masked_unless_revealed():
    assert Book().id_text("500102201603150021") == "5001**********0021"
    assert Book(reveal_ids=True).id_text("500102201603150021") == "500102201603150021"
