"""Errors to words (services/errors.py): every failure becomes a Chinese message and a status, in
CRUD forms, custom endpoints and the app's handlers alike; no SQL, traceback or English text."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shutil
import sqlite3
import threading
import time
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import create_app
from choices import ExpenseStatus
from models import Child, Expense, FundSource, Guardian, User, db
from services.errors import describe
from tests.conftest import AuthActions, FreshContextClient, csrf_token, form_fields
from tests.hostile import english_phrases, leaks, visible_text
from tests.tcp_proxy import TcpProxy

ID_A = "500102201001010014"


def user_id(name: str) -> int:
    return db.session.scalar(db.select(User.id).where(User.username == name))


def assert_clean(response, *, ignore=()):
    body = response.get_data(as_text=True)
    assert not leaks(body), leaks(body)
    assert not english_phrases(body, ignore), english_phrases(body, ignore)
    return body


def message_of(response) -> str:
    match = re.search(r'id="error-message">(.*?)<', response.get_data(as_text=True), re.S)
    return visible_text(match.group(1)).strip() if match else ""


# --------------------------------------------------------------------------- the mapping itself


def test_unique_violation_names_the_field_never_the_sql(app):
    db.session.add(Guardian(name="甲", id_number=ID_A, village_id=1))
    db.session.commit()
    db.session.add(Guardian(name="乙", id_number=ID_A, village_id=1))
    with pytest.raises(IntegrityError) as caught:
        db.session.flush()
    db.session.rollback()
    answer = describe(caught.value)
    assert (answer.status, answer.field) == (409, "id_number")
    assert answer.message == "该身份证号的监护人已登记，请在儿童表单中直接选择"
    assert ID_A not in answer.message and "INSERT" not in answer.message


def test_unique_column_without_its_own_message_uses_the_views_label(app):
    from models import Category

    db.session.add(Category(code="orphan_x", name=db.session.scalars(db.select(Category.name)).first()))
    with pytest.raises(IntegrityError) as caught:
        db.session.flush()
    db.session.rollback()
    answer = describe(caught.value, labels={"name": "困境类别名称"})
    assert answer.message == "困境类别名称已存在，不能重复" and answer.field == "name"


def test_stale_version_is_a_409_naming_the_record(app):
    from sqlalchemy.orm.exc import StaleDataError

    expense = _expense()
    db.session.commit()
    with Session(db.engine) as other:
        other.execute(text("UPDATE expense SET version = version + 1 WHERE id = :id"), {"id": expense.id})
        other.commit()
    expense.payee = "改"
    with pytest.raises(StaleDataError) as caught:
        db.session.flush()
    db.session.rollback()
    answer = describe(caught.value, verb="处理")
    assert answer.status == 409 and answer.message == "该支出刚被他人处理，请刷新后重试"


def test_unforeseen_error_gets_a_reference_that_is_in_the_log(app, caplog):
    with caplog.at_level(logging.ERROR, logger="tonghu.errors"):
        answer = describe(RuntimeError("secret detail SELECT * FROM child"))
    assert answer.status == 500 and answer.reference and answer.reference in answer.message
    assert "secret" not in answer.message and "SELECT" not in answer.message
    logged = caplog.records[-1]
    assert answer.reference in logged.getMessage() and logged.exc_info[1].args[0].startswith("secret detail")


# --------------------------------------------------------------------------- CRUD forms


def _expense(**kw) -> Expense:
    source = FundSource(
        name="错误测试资金", kind="district", amount=Decimal("100000"), received_on=dt.date(2026, 1, 5)
    )
    db.session.add(source)
    db.session.flush()
    expense = Expense(
        spent_on=dt.date(2026, 2, 1),
        amount=Decimal("1000.00"),
        source_id=source.id,
        category="training",
        payee="某培训机构（虚构）",
        voucher_no=kw.pop("voucher_no", "CW-1"),
        invoice_attached=True,
        handler_id=user_id("finance"),
        status=kw.pop("status", ExpenseStatus.DRAFT.value),
        **kw,
    )
    db.session.add(expense)
    db.session.flush()
    return expense


class Meanwhile:
    """Runs ``change`` on its own connection just before the request's session flushes: the other
    person who saved a moment earlier. Removed again on exit."""

    def __init__(self, change):
        self.change = change
        self.done = False

    def _before_flush(self, session, context, instances):
        if self.done:
            return
        self.done = True
        with Session(db.engine) as other:
            self.change(other)
            other.commit()

    def __enter__(self):
        event.listen(Session, "before_flush", self._before_flush)
        return self

    def __exit__(self, *exc):
        event.remove(Session, "before_flush", self._before_flush)


def test_a_duplicate_saved_meanwhile_is_shown_next_to_the_field(client, auth, monkeypatch):
    """Another clerk saves the same guardian after this form was checked and before it is saved."""
    from services import form_tokens

    claim = form_tokens.claim

    def other_saves_first(session, *args, **kwargs):
        with Session(db.engine) as other:
            other.add(Guardian(name="先保存者", id_number=ID_A, village_id=1, status="normal"))
            other.commit()
        return claim(session, *args, **kwargs)

    monkeypatch.setattr(form_tokens, "claim", other_saves_first)
    auth.login("clerk")
    form = {
        **form_fields(client, "/admin/guardian/new/"),
        "name": "后保存者",
        "status": "normal",
        "village": "1",
        "id_number": ID_A,
    }
    response = client.post("/admin/guardian/new/", data=form)
    body = assert_clean(response, ignore=(ID_A,))
    assert response.status_code == 200
    assert "该身份证号的监护人已登记，请在儿童表单中直接选择" in body
    assert "Failed to create" not in body and "完整性错误" not in body
    assert db.session.scalar(db.select(db.func.count()).where(Guardian.id_number == ID_A)) == 1


def test_unforeseen_error_while_saving_says_save_failed_with_reference(client, auth, monkeypatch, caplog):
    import views.registry

    def broken(child):
        raise RuntimeError("boom with SQL: SELECT id_number FROM child")

    monkeypatch.setattr(views.registry, "fill_from_id_number", broken)
    auth.login("clerk")
    fields = form_fields(client, "/admin/child/new/")
    with caplog.at_level(logging.ERROR, logger="tonghu.errors"):
        response = client.post(
            "/admin/child/new/",
            data={**fields, "name": "出错测试", "id_number": ID_A, "village": "1"},
        )
    body = assert_clean(response, ignore=(ID_A,))
    reference = re.search(r"错误编号：([0-9A-F]{8})", body).group(1)
    assert "保存失败" in body and "boom" not in body
    assert any(reference in r.getMessage() and r.exc_info for r in caplog.records)
    assert db.session.scalar(db.select(Child.id).where(Child.name == "出错测试")) is None


# --------------------------------------------------------------------------- custom endpoints


def test_expense_approved_meanwhile_answers_409_in_words(client, auth):
    expense = _expense()
    db.session.commit()
    auth.login("admin")
    token = csrf_token(client, f"/admin/expense/details/?id={expense.id}")
    bump = text("UPDATE expense SET version = version + 1 WHERE id = :id")
    with Meanwhile(lambda other: other.execute(bump, {"id": expense.id})):
        response = client.post(f"/admin/expense/approve/?id={expense.id}", data={"csrf_token": token})
    assert response.status_code == 409
    assert_clean(response)
    assert message_of(response) == "该支出刚被他人处理，请刷新后重试"
    assert "回到工作台" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Expense, expense.id).status == ExpenseStatus.DRAFT.value


def test_json_endpoint_answers_json_in_chinese(client, auth, monkeypatch):
    import services.riskmap

    def broken(*a, **k):
        raise RuntimeError("internal detail")

    monkeypatch.setattr(services.riskmap, "village_levels", broken)
    auth.login("clerk")
    response = client.get("/admin/risk-map/data/")
    assert response.status_code == 500 and response.is_json
    payload = response.get_json()
    assert payload["reference"] in payload["error"] and "系统出错" in payload["error"]
    assert "internal" not in payload["error"]
    missing = client.post(
        "/admin/child/reveal/?id=99999999999999999999", headers={"X-CSRFToken": csrf_token(client, "/admin/")}
    )
    assert missing.status_code == 404 and missing.get_json()["error"] == "记录不存在"


def test_every_wtforms_message_reads_in_chinese(app):
    """Every message WTForms can put next to a field (its own catalogue template lists them) reads in
    Chinese through the translations Flask-Admin's forms use: a refused choice of a multiple
    dropdown printed "'NaN' is not a valid choice for this field"."""
    import flask_admin
    from babel.messages.pofile import read_po
    from flask_admin.babel import Translations
    from wtforms.i18n import messages_path

    with open(os.path.join(messages_path(), "wtforms.pot"), "rb") as pot:
        messages = [m.id for m in read_po(pot) if m.id]
    # Flask-Admin's own fields ask the form's translations too (``self.gettext("Not a valid choice")``)
    for folder, _, files in os.walk(os.path.dirname(flask_admin.__file__)):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name), encoding="utf-8") as source:
                    messages += re.findall(r'(?:self|field)\.gettext\(\s*"([^"]+)"', source.read())
    translations = Translations()
    with app.test_request_context("/admin/"):
        for message in messages:
            if isinstance(message, tuple):
                text = translations.ngettext(message[0], message[1], 1)
            else:
                text = translations.gettext(message)
            assert re.search(r"[\u4e00-\u9fff]", text), message
    assert len(messages) > 40 and "Not a valid choice" in messages


# --------------------------------------------------------------------------- HTTP errors as pages

HUGE = str(2**64)


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/admin/training/?year=9999", 400),
        ("/admin/training/?year=-5", 400),
        ("/admin/training/?year=abc", 400),
        ("/admin/activity/signin-sheet/?id=1&village=99999", 404),
        (f"/admin/dossier/?id={HUGE}", 404),
        (f"/admin/alerts/{HUGE}/", 404),
        (f"/admin/participation/?child={HUGE}", 404),
        ("/admin/participation/?child=abc", 404),
        (f"/admin/assessment-form/new/?child_id={HUGE}", 404),
        (f"/admin/support_service/online-push/?village={HUGE}", 404),
        ("/admin/reports/?year=99999", 400),
        ("/admin/no-such-page/", 404),
        ("/admin/expense/approve/", 405),
    ],
)
def test_bad_numbers_in_urls_are_chinese_4xx_pages(client, auth, url, status):
    auth.login("clerk")
    response = client.get(url)
    assert response.status_code == status, url
    assert_clean(response)
    page = response.get_data(as_text=True)
    assert "儿童名册" in page  # inside the layout, with its menu
    assert (message_of(response) and "回到工作台" in page) or "记录不存在" in page


@pytest.mark.parametrize(
    "url", [f"/admin/child/details/?id={HUGE}", f"/admin/duplicates/merge/?keep={HUGE}&other=1"]
)
def test_bad_ids_on_pages_that_redirect_say_record_missing(client, auth, url):
    auth.login("clerk")
    response = client.get(url, follow_redirects=True)
    assert response.status_code == 200 and "不存在" in assert_clean(response)


def test_list_arguments_out_of_range_are_ignored_not_500(client, auth):
    auth.login("clerk")
    for query in (f"page={HUGE}", "page=-3", "sort=999", "page_size=100000", f"flt0_7={2**70}", "flt0_7=abc"):
        response = client.get(f"/admin/expense/?{query}")
        assert response.status_code == 200, query
        assert_clean(response)


def test_bulk_action_with_bad_or_foreign_row_ids_touches_nothing(client, auth):
    expense = _expense()
    db.session.commit()
    auth.login("admin")
    token = csrf_token(client, "/admin/expense/")
    for rowids in (["abc"], [HUGE], [str(expense.id), "abc"]):
        response = client.post(
            "/admin/expense/action/",
            data={"csrf_token": token, "action": "approve", "rowid": rowids},
            follow_redirects=True,
        )
        assert response.status_code == 200 and "所选记录无效" in assert_clean(response)
    db.session.expire_all()
    assert db.session.get(Expense, expense.id).status == ExpenseStatus.DRAFT.value


def test_forbidden_page_names_the_roles_that_may(client, auth):
    auth.login("finance")
    response = client.get("/admin/child/new/")
    assert response.status_code == 403
    assert message_of(response) == (
        "您的角色（财务）无权进行此操作。可以进行此操作的角色：系统管理员、民生服务办经办人、儿童主任。"
    )
    response = client.get("/admin/user/")
    assert response.status_code == 403 and "可以查看此页面的角色：系统管理员。" in message_of(response)


def test_missing_csrf_token_is_a_chinese_400(client, auth):
    auth.login("clerk")
    response = client.post("/admin/guardian/new/", data={"name": "x"})
    assert response.status_code == 400
    assert message_of(response) == "页面已过期或缺少安全令牌，请刷新页面后重新提交。"


def test_nul_anywhere_in_a_request_is_refused(client, auth):
    auth.login("clerk")
    response = client.get("/admin/child/?search=a%00b")
    assert response.status_code == 400 and "空字符" in message_of(response)


# --------------------------------------------------------------------------- the database away


def _is_pg(app) -> bool:
    return app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")


def test_sqlite_locked_by_a_writer_is_503_then_recovers(database_url, tmp_path):
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's writer lock")
    app = _app(database_url, {"connect_args": {"timeout": 0.2}})
    client = app.test_client()
    with app.app_context():
        AuthActions(client).login("clerk")
        fields = form_fields(client, "/admin/guardian/new/")
    path = make_url(database_url).database
    holder = sqlite3.connect(path, timeout=5)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE setting SET value = value")
    try:
        response = client.post(
            "/admin/guardian/new/",
            data={**fields, "name": "锁测试", "status": "normal", "village": "1"},
        )
    finally:
        holder.rollback()
        holder.close()
    assert response.status_code in (200, 503)
    body = assert_clean(response)
    assert "数据库正忙" in body
    response = client.get("/admin/guardian/")
    assert response.status_code == 200


def test_a_savepoint_waits_for_another_writer_instead_of_failing(app, database_url):
    """A savepoint's reads must not pin a snapshot that a writer committing meanwhile makes stale:
    the savepoint waits for the writer, then reads and writes (the offline sync's items)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's writer lock")
    db.session.execute(text("SELECT count(*) FROM setting")).scalar()  # connected (and analysed)
    db.session.rollback()
    holder = sqlite3.connect(
        make_url(database_url).database, timeout=5, isolation_level=None, check_same_thread=False
    )
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE setting SET value = value")
    threading.Timer(0.5, holder.execute, ("COMMIT",)).start()
    try:
        with db.session.begin_nested():
            db.session.execute(text("SELECT count(*) FROM setting")).scalar()
            db.session.execute(text("UPDATE setting SET value = value"))
        db.session.commit()
    finally:
        time.sleep(0.6)
        holder.close()


def test_every_sqlite_connection_gets_the_apps_pragmas(app, database_url):
    """Each new connection of the pool, not only the first: foreign keys, WAL, the memory map."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's pragmas")
    from app import SQLITE_MMAP_BYTES

    db.engine.dispose()
    for _ in range(2):
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA mmap_size").scalar() == SQLITE_MMAP_BYTES > 0
        db.engine.dispose()


def test_sqlite_file_unreachable_is_503_and_logged(tmp_path, caplog):
    app = _app(f"sqlite:///{tmp_path / 'gone' / 'x.db'}")
    with caplog.at_level(logging.WARNING, logger="tonghu.errors"):
        response = app.test_client().get("/api/alerts", headers={"Authorization": "Bearer x" * 2})
    assert response.status_code == 503
    assert response.get_json() == {"error": "数据库暂时不可用，请稍后重试。", "status": 503}
    # the operator finds the driver's reason in the log; the user sees none of it
    assert any("unable to open database file" in r.getMessage() for r in caplog.records)
    assert "unable" not in response.get_data(as_text=True)


def test_postgresql_restart_is_503_and_recovers_by_itself(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL server to take away")
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    app = _app(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    client = app.test_client()
    try:
        with app.app_context():
            AuthActions(client).login("clerk")
        assert client.get("/admin/child/").status_code == 200
        port = proxy.port
        proxy.stop()
        down = client.get("/admin/child/")
        assert down.status_code == 503
        assert message_of(down) == "数据库暂时不可用，请稍后重试。"
        assert_clean(down)
        proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432, listen_port=port).start()
        assert client.get("/admin/child/").status_code == 200
    finally:
        proxy.stop()
        with app.app_context():
            db.engine.dispose()


def _app(url: str, engine_options: dict | None = None):
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, **(engine_options or {})},
        }
    )
    app.test_client_class = FreshContextClient
    return app


# Keep the imports used by helpers that later tests of this module share.
_ = (os, shutil, threading, create_engine)


def test_an_error_page_has_one_heading_saying_what_went_wrong(client, auth):
    auth.login("finance")
    for url, title in (("/admin/child/new/", "没有权限"), ("/admin/no-such-page/", "未找到")):
        page = client.get(url).get_data(as_text=True)
        headings = re.findall(r"<h1[^>]*>\s*([^<]*?)\s*</h1>", page)
        assert headings == [title], (url, headings)


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "plain"])
def test_the_error_log_rotates_safely_under_several_worker_processes(tmp_path, shared):
    """serve.py runs one process per core, each with its own handler on errors.log: after one
    rotates the file, another's records go to the new errors.log, not into the renamed one."""
    import logging
    from logging.handlers import RotatingFileHandler

    from views.errors import SharedRotatingFileHandler

    path = tmp_path / "errors.log"
    kind = SharedRotatingFileHandler if shared else RotatingFileHandler
    # one handler per "process": each has its own open file, as the workers do
    first, second = (kind(path, maxBytes=400, backupCount=5, encoding="utf-8") for _ in range(2))

    def write(handler, message):
        handler.handle(logging.makeLogRecord({"msg": message, "levelno": logging.ERROR}))

    write(second, "second worker starts")
    n = 0
    while not (tmp_path / "errors.log.1").exists():
        write(first, f"first worker {n:03d} " + "x" * 40)
        n += 1
    write(second, "second worker after the rotation")
    write(first, "first worker after the rotation")
    first.close()
    second.close()
    current = path.read_text("utf-8")
    everything = "".join(p.read_text("utf-8") for p in tmp_path.glob("errors.log*") if p.suffix != ".lock")
    after = ("second worker after the rotation", "first worker after the rotation")
    assert all(everything.count(line) == 1 for line in after)
    # the plain handler: the second worker, its file renamed under it, rotated the first one's fresh
    # file away, and the first then wrote into the renamed file
    assert all(line in current for line in after) is shared
