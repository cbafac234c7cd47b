"""Input at the boundary (views/fields.py, services/validation.py), what the user cannot see the user
cannot change, and a form posted twice writes once (services/form_tokens.py)."""

from __future__ import annotations

import datetime as dt
import re
import threading
from decimal import Decimal

import pytest
from stdnum.cn import ric
from werkzeug.datastructures import MultiDict

from models import (
    Activity,
    Alert,
    AuditLog,
    Child,
    Expense,
    FormToken,
    FundSource,
    Guardian,
    MandatoryReport,
    Staff,
    User,
    Village,
    Visit,
    db,
)
from services import clock
from services.register import DUPLICATE_ELSEWHERE
from services.validation import (
    InvalidInput,
    clean_id_number,
    clean_money,
    clean_name,
    clean_phone,
    mask_id_number,
    normalize_identifier,
    parse_id,
)
from tests.conftest import AuthActions, a_child, csrf_token, form_fields
from tests.formparse import form_with

FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def valid_id(body17: str) -> str:
    return body17 + ric.calc_check_digit(body17 + "0")


ID_NEW = valid_id("50010220170304001")  # a boy born 2017-03-04


def user(name: str) -> User:
    return db.session.scalar(db.select(User).where(User.username == name))


def villages() -> list[Village]:
    return db.session.scalars(db.select(Village).order_by(Village.sort_order, Village.id)).all()


def field_errors(page: str) -> list[str]:
    return re.findall(r"<li>(.*?)</li>", page)


def post_as_drawn(client, url: str, field: str, **changes):
    """Post the page's form with every field as the browser drew it, except ``changes``."""
    page = client.get(url).get_data(as_text=True)
    pairs = [(k, v) for k, v in form_with(page, field).submitted() if k not in changes]
    for key, value in changes.items():
        for v in value if isinstance(value, list) else [value]:
            pairs.append((key, v))
    return client.post(url, data=MultiDict(pairs))


# --------------------------------------------------------------------------- the plain functions


@pytest.mark.parametrize(
    "typed",
    [
        ID_NEW,
        ID_NEW.translate(FULL_WIDTH),
        ID_NEW.translate(ARABIC_INDIC),
        " " + ID_NEW[:6] + "\u3000" + ID_NEW[6:],
        ID_NEW[:9] + "\u200b" + ID_NEW[9:],
    ],
)
def test_id_numbers_are_ascii_before_they_are_checked(typed):
    assert clean_id_number(typed) == ID_NEW
    assert normalize_identifier(typed) == ID_NEW


def test_x_is_upper_case_whatever_its_width():
    number = valid_id("11010519491231002")
    assert number.endswith("X")
    assert clean_id_number(number[:-1] + "ｘ") == number


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("１３８００００００００", "13800000000"),
        ("١٣٨٠٠٠٠٠٠٠٠", "13800000000"),
        ("023－72345678", "023-72345678"),
    ],
)
def test_phones_are_ascii(typed, stored):
    assert clean_phone(typed) == stored


@pytest.mark.parametrize(
    "name", ["张\x00三", "张\u200b三", "张\u202e三", "张\u2066三", "张\x07三", "张\ufeff三", "张\n三"]
)
def test_names_refuse_invisible_and_control_characters(name):
    with pytest.raises(InvalidInput, match="姓名中含有"):
        clean_name(name)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("1280", Decimal("1280.00")),
        ("1,280.00", Decimal("1280.00")),
        ("1,234,567.5", Decimal("1234567.50")),
        ("¥１，２８０．５", Decimal("1280.50")),
        ("0.01", Decimal("0.01")),
    ],
)
def test_money_accepts_the_usual_forms(typed, expected):
    assert clean_money(typed) == expected


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("1,2,3", "格式不正确"),
        ("12,34.00", "格式不正确"),
        ("1e30", "格式不正确"),
        ("1e400", "格式不正确"),
        ("NaN", "格式不正确"),
        ("Infinity", "格式不正确"),
        ("-Infinity", "格式不正确"),
        ("12.345", "最多保留两位小数"),
        ("-1", "不能为负数"),
        ("10000000.01", "不能超过10,000,000.00元"),
        ("一千", "格式不正确"),
    ],
)
def test_money_refuses_what_is_not_money(typed, message):
    with pytest.raises(InvalidInput, match=message):
        clean_money(typed)


@pytest.mark.parametrize(
    "typed", ["0", "-1", "abc", "1.5", "1e3", str(2**31), str(2**63), str(2**64), "", None]
)
def test_record_ids_outside_the_database_range_are_none(typed):
    assert parse_id(typed) is None


def test_record_ids_in_any_digits():
    assert parse_id("٤٢") == 42 and parse_id("４２") == 42 and parse_id(str(2**31 - 1)) == 2**31 - 1


# --------------------------------------------------------------------------- through the forms


def _child_form(client, **overrides):
    data = {
        **form_fields(client, "/admin/child/new/"),
        "name": "边界测试",
        "id_number": ID_NEW,
        "village": str(villages()[0].id),
        "address": "云岭村3组",
    }
    data.update(overrides)
    return data


def test_full_width_id_is_stored_ascii_and_found_by_every_check(client, auth):
    auth.login("clerk")
    response = client.post(
        "/admin/child/new/", data=_child_form(client, id_number=ID_NEW.translate(FULL_WIDTH))
    )
    assert response.status_code == 302
    child = db.session.scalar(db.select(Child).where(Child.name == "边界测试"))
    assert child.id_number == ID_NEW and child.id_last4 == ID_NEW[-4:]
    # the last-4 search, typed with Arabic-Indic digits
    listing = client.get("/admin/child/?search=" + ID_NEW[-4:].translate(ARABIC_INDIC)).get_data(as_text=True)
    assert "边界测试" in listing
    # the same number typed another way for another village is the same number
    auth.logout()
    auth.login("director2")
    page = client.post(
        "/admin/child/new/",
        data=_child_form(
            client, name="重复者", id_number=ID_NEW.translate(ARABIC_INDIC), village=str(villages()[1].id)
        ),
    ).get_data(as_text=True)
    assert DUPLICATE_ELSEWHERE in page
    assert db.session.scalar(db.select(db.func.count()).where(Child.id_number == ID_NEW)) == 1


def test_duplicate_finder_matches_a_number_stored_before_normalising(client, auth):
    first = db.session.scalar(db.select(Child).order_by(Child.id).limit(1))
    legacy = Child(
        name="旧录入",
        id_number=first.id_number.translate(FULL_WIDTH),
        birth_date=first.birth_date,
        gender=first.gender,
        village_id=first.village_id,
    )
    db.session.add(legacy)
    db.session.commit()
    auth.login("clerk")
    page = client.get("/admin/duplicates/").get_data(as_text=True)
    assert f"merge/?keep={first.id}&amp;other={legacy.id}" in page or f"other={legacy.id}" in page


def test_invisible_characters_in_a_name_are_refused_next_to_the_field(client, auth):
    auth.login("clerk")
    before = db.session.scalar(db.select(db.func.count()).select_from(Guardian))
    data = {
        **form_fields(client, "/admin/guardian/new/"),
        "name": "李\u202e四",
        "status": "normal",
        "village": "1",
    }
    page = client.post("/admin/guardian/new/", data=data).get_data(as_text=True)
    assert "姓名中含有不可见字符（零宽字符或文字方向控制符），请删除后重新填写" in field_errors(page)
    data["name"] = "李\x00四"
    assert client.post("/admin/guardian/new/", data=data).status_code == 400
    assert db.session.scalar(db.select(db.func.count()).select_from(Guardian)) == before


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ("Infinity", "预算格式不正确"),
        ("NaN", "预算格式不正确"),
        ("1e30", "预算格式不正确"),
        ("12.345", "预算最多保留两位小数"),
        ("1,2,3", "预算格式不正确"),
        ("99999999999", "预算不能超过"),
    ],
)
def test_activity_budget_refuses_what_is_not_money(client, auth, budget, message):
    auth.login("clerk")
    data = _activity_form(client, budget=budget)
    page = client.post("/admin/activity/new/", data=data).get_data(as_text=True)
    assert any(e.startswith(message) for e in field_errors(page)), field_errors(page)
    assert db.session.scalar(db.select(Activity.id).where(Activity.title == "边界活动")) is None


def test_activity_budget_with_thousands_separators(client, auth):
    auth.login("clerk")
    assert (
        client.post("/admin/activity/new/", data=_activity_form(client, budget="1,280.00")).status_code == 302
    )
    assert db.session.scalar(db.select(Activity.budget).where(Activity.title == "边界活动")) == Decimal(
        "1280.00"
    )


def _activity_form(client, **overrides):
    data = MultiDict(
        {
            **form_fields(client, "/admin/activity/new/"),
            "kind": "red_class",
            "title": "边界活动",
            "starts_at": "2026-06-06 14:00:00",
            "ends_at": "2026-06-06 16:00:00",
            "audience": "parents",
        }
    )
    for key, value in overrides.items():
        data.setlist(key, value if isinstance(value, list) else [value])
    return data


def test_expense_of_1e400_is_a_message_not_an_error(client, auth):
    source = FundSource(
        name="边界资金", kind="district", amount=Decimal("1000"), received_on=dt.date(2026, 1, 5)
    )
    db.session.add(source)
    db.session.commit()
    auth.login("finance")
    data = {
        **form_fields(client, "/admin/expense/new/"),
        "spent_on": "2026-02-03",
        "amount": "1e400",
        "source": str(source.id),
        "category": "training",
        "payee": "某机构",
    }
    response = client.post("/admin/expense/new/", data=data)
    assert response.status_code == 200
    assert "金额格式不正确，请填写数字，如 1280.00 或 1,280.00" in field_errors(
        response.get_data(as_text=True)
    )


# --------------------------------------------------------------------------- what the user cannot see


def _foreign_mother(village_id) -> Staff:
    return db.session.scalar(
        db.select(Staff)
        .where(Staff.kind == "mother", Staff.village_id != village_id)
        .order_by(Staff.id)
        .limit(1)
    )


def test_director_editing_a_child_keeps_a_caring_mother_of_another_village(client, auth):
    director = user("director1")
    child = db.session.scalar(
        db.select(Child).where(Child.village_id == director.village_id, Child.archived_at.is_(None)).limit(1)
    )
    mother = _foreign_mother(director.village_id)
    child.caring_mother_id = mother.id
    db.session.commit()
    auth.login("director1")
    url = f"/admin/child/edit/?id={child.id}"
    page = client.get(url).get_data(as_text=True)
    assert "保持原值：不在您管理范围内的记录" in page and mother.name not in page
    assert post_as_drawn(client, url, "id_number", address="改了住址").status_code == 302
    db.session.expire_all()
    child = db.session.get(Child, child.id)
    assert child.caring_mother_id == mother.id and child.address == "改了住址"
    # another village's staff the dropdown never offered refuses the whole save
    other = db.session.scalar(
        db.select(Staff).where(Staff.village_id != director.village_id, Staff.id != mother.id).limit(1)
    )
    page = post_as_drawn(client, url, "id_number", caring_mother=str(other.id), address="不该保存").get_data(
        as_text=True
    )
    assert "所选的爱心妈妈不在您的管理范围内或已不存在，未保存。请刷新页面后重新选择。" in field_errors(page)
    db.session.expire_all()
    assert db.session.get(Child, child.id).address == "改了住址"


def test_mandatory_report_with_another_villages_child_is_refused_whole(client, auth):
    auth.login("director1")
    other = a_child(Child.village_id == villages()[1].id)
    data = {
        **form_fields(client, "/admin/mandatoryreport/new/"),
        "reporter_kind": "neighbour",
        "received_at": "2026-06-09T10:30",
        "child": str(other.id),
        "village": str(user("director1").village_id),
        "situation": "边界测试报告",
        "urgency": "urgent",
    }
    page = client.post("/admin/mandatoryreport/new/", data=data).get_data(as_text=True)
    assert any("不在您的管理范围内" in e for e in field_errors(page))
    assert (
        db.session.scalar(db.select(MandatoryReport.id).where(MandatoryReport.situation == "边界测试报告"))
        is None
    )


def test_activity_with_a_foreign_village_is_refused_whole(client, auth):
    auth.login("director1")
    own, foreign = user("director1").village_id, villages()[1].id
    page = client.post(
        "/admin/activity/new/", data=_activity_form(client, villages=[str(own), str(foreign)])
    ).get_data(as_text=True)
    assert "所选的村（社区）不在您的管理范围内或已不存在，未保存。请刷新页面后重新选择。" in field_errors(
        page
    )
    assert db.session.scalar(db.select(Activity.id).where(Activity.title == "边界活动")) is None


def test_visit_with_a_foreign_visitor_is_refused_whole(app):
    """A visit is recorded through services/visits.record_visit (the phone's form, online or queued;
    /admin/visit/new/ sends there): a visitor of another village refuses the whole visit."""
    from services.visits import VisitEntry, VisitRefused, record_visit

    director = user("director1")
    child = a_child(Child.village_id == director.village_id)
    foreign = db.session.scalar(db.select(Staff).where(Staff.village_id == villages()[1].id).limit(1))
    entry = VisitEntry(
        child_id=child.id,
        visited_on=dt.date(2026, 1, 9),
        kind="home",
        visitor_ids=(director.staff_id, foreign.id),
    )
    with pytest.raises(VisitRefused) as refused:
        record_visit(
            entry, village_ids=director.village_scope(), user_id=director.id, now=dt.datetime(2026, 1, 9, 12)
        )
    assert refused.value.errors["visitors"] == "走访人员中有不在您负责范围内或已停用的人员"
    db.session.rollback()
    assert (
        db.session.scalar(
            db.select(Visit.id).where(Visit.child_id == child.id, Visit.visited_on == dt.date(2026, 1, 9))
        )
        is None
    )


def test_alert_handler_must_be_one_of_the_candidates_the_page_offers(client, auth):
    from services.alerts import handler_candidates

    first, second = villages()[0], villages()[1]
    alert = Alert(
        source="patrol",
        severity="red",
        village_id=first.id,
        title="边界预警",
        deadline=dt.datetime(2026, 6, 10),
    )
    db.session.add(alert)
    db.session.commit()
    candidates = {u.username for u in handler_candidates(alert)}
    assert "director1" in candidates and "finance" not in candidates and "director2" not in candidates
    auth.login("supervisor")
    page = client.get(f"/admin/alerts/{alert.id}/").get_data(as_text=True)
    for name in ("finance", "director2"):
        assert f'value="{user(name).id}"' not in page
        fields = form_fields(client, f"/admin/alerts/{alert.id}/")
        body = client.post(
            f"/admin/alerts/{alert.id}/act/",
            data={**fields, "action": "assign", "handler_id": user(name).id},
            follow_redirects=True,
        ).get_data(as_text=True)
        assert "所选的处置人不在可指派的名单中" in body
        db.session.expire_all()
        assert db.session.get(Alert, alert.id).handler_id is None
    fields = form_fields(client, f"/admin/alerts/{alert.id}/")
    client.post(
        f"/admin/alerts/{alert.id}/act/",
        data={**fields, "action": "assign", "handler_id": user("director1").id},
    )
    db.session.expire_all()
    assert db.session.get(Alert, alert.id).handler_id == user("director1").id
    assert second.id != first.id


# --------------------------------------------------------------------------- ID numbers in forms


def test_edit_form_shows_the_id_number_masked_and_keeps_it(client, auth):
    child = db.session.scalar(db.select(Child).where(Child.archived_at.is_(None)).order_by(Child.id).limit(1))
    number = child.id_number
    auth.login("clerk")
    url = f"/admin/child/edit/?id={child.id}"
    page = client.get(url).get_data(as_text=True)
    assert number not in page and f'value="{mask_id_number(number)}"' in page and "显示完整号码" in page
    assert post_as_drawn(client, url, "id_number", school="边界小学").status_code == 302
    db.session.expire_all()
    child = db.session.get(Child, child.id)
    assert child.id_number == number and child.school == "边界小学"
    reveals = db.session.scalar(db.select(db.func.count()).where(AuditLog.action == "reveal"))
    revealed = client.post(
        f"/admin/child/reveal-id/?id={child.id}&field=id_number",
        headers={"X-CSRFToken": csrf_token(client, url)},
    )
    assert revealed.get_json() == {"value": number}
    assert db.session.scalar(db.select(db.func.count()).where(AuditLog.action == "reveal")) == reveals + 1


def test_roles_that_may_not_reveal_get_no_number(client, auth):
    child = db.session.scalar(db.select(Child).order_by(Child.id).limit(1))
    auth.login("inspector")
    token = csrf_token(client, "/admin/child/")
    response = client.post(
        f"/admin/child/reveal-id/?id={child.id}&field=id_number", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 403 and child.id_number not in response.get_data(as_text=True)
    auth.logout()
    auth.login("director1")
    other = a_child(Child.village_id == villages()[1].id)
    token = csrf_token(client, "/admin/child/")
    response = client.post(
        f"/admin/child/reveal-id/?id={other.id}&field=id_number", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 404 and other.id_number not in response.get_data(as_text=True)


# --------------------------------------------------------------------------- a form posted twice


def _guardian_form(client, name="双击监护人"):
    return {**form_fields(client, "/admin/guardian/new/"), "name": name, "status": "normal", "village": "1"}


def test_second_submission_of_a_create_form_shows_the_first_record(client, auth):
    auth.login("clerk")
    data = _guardian_form(client)
    first = client.post("/admin/guardian/new/", data=data)
    second = client.post("/admin/guardian/new/", data=data, follow_redirects=True)
    rows = db.session.scalars(db.select(Guardian).where(Guardian.name == "双击监护人")).all()
    assert first.status_code == 302 and len(rows) == 1
    body = second.get_data(as_text=True)
    assert "已保存，请勿重复提交" in body and "双击监护人" in body
    assert second.request.path == "/admin/guardian/details/"


def test_second_submission_of_a_custom_create_form_writes_nothing(client, auth):
    from models import Case, CaseFollowUp

    case = db.session.scalar(db.select(Case).where(Case.stage == "track").order_by(Case.id).limit(1))
    auth.login("supervisor")
    page = client.get(f"/admin/case/details/?id={case.id}").get_data(as_text=True)
    form = form_with(page, "followed_by")
    fields = {k: v for k, v in form.submitted() if k in ("csrf_token", "form_once")}
    assert "form_once" in fields  # the follow-up form carries its one-time token
    before = db.session.scalar(db.select(db.func.count()).where(CaseFollowUp.case_id == case.id))
    data = {
        **fields,
        "followed_on": clock.today().isoformat(),
        "method": "phone",
        "followed_by": "督导员",
        "change": "双击跟进：情况稳定",
    }
    for _ in range(2):
        response = client.post(f"/admin/case/follow-up/?id={case.id}", data=data)
        assert response.status_code == 302
    after = db.session.scalar(db.select(db.func.count()).where(CaseFollowUp.case_id == case.id))
    assert after == before + 1


def test_every_create_form_draws_its_token_once(app, client, auth):
    """Each CRUD create form carries exactly one one-time token, drawn as a hidden input only (a view
    with form_rules drew it a second time as a field labelled "Form Once")."""
    from services import form_tokens

    auth.login("admin")
    drawn = []
    for view in app.extensions["admin"][0]._views:
        if not getattr(view, "model", None):
            continue
        response = client.get(f"/admin/{view.endpoint}/new/")
        if response.status_code != 200:
            continue
        page = response.get_data(as_text=True)
        assert page.count(f'name="{form_tokens.FIELD}"') == 1, view.endpoint
        assert f'for="{form_tokens.FIELD}"' not in page and "Form Once" not in page, view.endpoint
        drawn.append(view.endpoint)
    assert {"feedback", "guardian", "child", "expense"} <= set(drawn), drawn


def test_forged_or_expired_tokens_are_refused(client, auth, app):
    from services import form_tokens

    auth.login("clerk")
    data = _guardian_form(client, "伪造令牌")
    data["form_once"] = "not-a-token"
    page = client.post("/admin/guardian/new/", data=data).get_data(as_text=True)
    assert "表单的防重复提交标记无效，请刷新页面后重新填写。" in page
    stamp = int((dt.datetime.now() - form_tokens.TTL - dt.timedelta(hours=1)).timestamp())
    data["form_once"] = _expired_token(app.secret_key, stamp)
    page = client.post("/admin/guardian/new/", data=data).get_data(as_text=True)
    assert "该表单已打开超过7天，请刷新页面后重新填写。" in page
    assert db.session.scalar(db.select(Guardian.id).where(Guardian.name == "伪造令牌")) is None


def _expired_token(secret, stamp: int) -> str:
    import time
    from unittest import mock

    from services import form_tokens

    with mock.patch.object(time, "time", return_value=stamp):
        return form_tokens.issue(secret)


@pytest.mark.parametrize("kind", ["guardian", "expense"])
def test_two_concurrent_posts_of_one_form_make_one_row(app, kind):
    """Two requests carrying the same form at the same moment, on real threads and connections."""
    username, url = (
        ("clerk", "/admin/guardian/new/") if kind == "guardian" else ("finance", "/admin/expense/new/")
    )
    source = FundSource(
        name="并发资金", kind="district", amount=Decimal("1000"), received_on=dt.date(2026, 1, 5)
    )
    db.session.add(source)
    db.session.commit()
    clients = [app.test_client() for _ in range(2)]
    AuthActions(clients[0]).login(username)
    fields = form_fields(clients[0], url)
    # the same browser session in two tabs: one session cookie, one CSRF token
    clients[1].set_cookie("session", clients[0].get_cookie("session").value)
    if kind == "guardian":
        data = {**fields, "name": "并发监护人", "status": "normal", "village": "1"}
    else:
        data = {
            **fields,
            "spent_on": "2026-02-03",
            "amount": "880.00",
            "source": str(source.id),
            "category": "training",
            "payee": "并发收款方",
        }
    start = threading.Barrier(2)
    answers: list = [None, None]

    def post(i):
        start.wait()
        answers[i] = clients[i].post(url, data=data)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    db.session.expire_all()
    if kind == "guardian":
        rows = db.session.scalar(db.select(db.func.count()).where(Guardian.name == "并发监护人"))
    else:
        rows = db.session.scalar(db.select(db.func.count()).where(Expense.payee == "并发收款方"))
    assert rows == 1
    assert sorted(a.status_code for a in answers) == [302, 302], [
        re.findall(r"error-message\">(.*?)<", a.get_data(as_text=True)) for a in answers
    ]
    assert db.session.scalar(db.select(db.func.count()).select_from(FormToken)) >= 1


# --------------------------------------------------------------------------- stored rows


def test_migration_normalises_stored_numbers(database_url, tmp_path):
    from flask_migrate import upgrade
    from sqlalchemy import text

    from app import create_app
    from tests.test_migrations import _empty_database

    url = _empty_database(database_url, tmp_path)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    taken = valid_id("50010220160315001")
    with app.app_context():
        upgrade(revision="c01c978d1054")
        rows = [
            "INSERT INTO village (id, name, kind, code, sort_order) VALUES (1, '云岭村', 'village', 'V1', 1)",
            "INSERT INTO guardian (id, name, name_pinyin, name_initials, status, low_income, village_id, version, phone)"
            " VALUES (1, '母', 'mu', 'm', 'normal', FALSE, 1, 1, '１３８００００００００')",
        ]
        child = (
            "INSERT INTO child (id, name, name_pinyin, name_initials, name_given, id_number, id_last4, gender,"
            " birth_date, village_id, status, created_at, updated_at, version, file_complete)"
            " VALUES (:id, '甲', 'jia', 'j', '甲', :n, :l4, 'F', '2016-03-15', 1, 'active',"
            " '2026-01-05', '2026-01-05', 1, FALSE)"
        )
        with db.engine.begin() as conn:
            for sql in rows:
                conn.execute(text(sql))
            conn.execute(text(child), {"id": 1, "n": taken.translate(FULL_WIDTH), "l4": "????"})
            conn.execute(text(child), {"id": 2, "n": ID_NEW.translate(ARABIC_INDIC), "l4": "????"})
            conn.execute(text(child), {"id": 3, "n": taken, "l4": taken[-4:]})
        upgrade()
        with db.engine.connect() as conn:
            children = dict(conn.execute(text("SELECT id, id_number FROM child ORDER BY id")).all())
            last4 = dict(conn.execute(text("SELECT id, id_last4 FROM child ORDER BY id")).all())
            phone = conn.execute(text("SELECT phone FROM guardian")).scalar_one()
        db.engine.dispose()
    assert children[2] == ID_NEW and last4[2] == ID_NEW[-4:]
    assert children[1] == taken.translate(
        FULL_WIDTH
    )  # normalised it would duplicate row 3: left for the finder
    assert phone == "13800000000"
