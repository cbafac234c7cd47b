"""童护: create_app wires extensions, Babel, Flask-Admin, views and CLI commands. Nothing else."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask, flash, g, redirect, request, session, url_for
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from flask_babel import Babel
from flask_login import LoginManager, current_user
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect
from markupsafe import Markup

from models import Setting, User, db
from services import (
    accounts,
    audit,
    consent,  # noqa: F401 (its flush listener keeps Child.filing_consent)
    file_numbers,  # noqa: F401 (its flush listener numbers each new child)
    filing,  # noqa: F401 (its flush listener keeps Child.file_complete)
    follow_child,  # noqa: F401 (its flush listeners keep a child's rows in the child's village)
    register,  # noqa: F401 (a child entered without a registration date is registered today)
    visits,  # noqa: F401 (its flush listener keeps Child.next_visit_due)
)

BASE_DIR = Path(__file__).resolve().parent

migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()


def _default_config(instance_path: Path) -> dict:
    return {
        "SQLALCHEMY_DATABASE_URI": _database_url(instance_path),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "SECRET_KEY": os.environ.get("SECRET_KEY") or _instance_secret(instance_path),
        "BABEL_DEFAULT_LOCALE": "zh_CN",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
        # The session cookie is written only when the session changes (a login, a flash), never to
        # refresh it: a background request (the 工作台's fund count) answered after a save re-sent the
        # cookie it had read before, and the save's "已保存" message was lost. It is a browser-session
        # cookie; the 30-minute idle limit is kept on the server (services/accounts.py).
        "SESSION_REFRESH_EACH_REQUEST": False,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": os.environ.get("SESSION_COOKIE_SECURE", "0") == "1",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "WTF_CSRF_TIME_LIMIT": None,
        # one attachment of 20 MB (services/attachments.py) and its form fields; above it: a Chinese 413
        "MAX_CONTENT_LENGTH": 21 * 1024 * 1024,
        "ATTACHMENT_STORAGE": os.environ.get("ATTACHMENT_STORAGE", "local"),
        "ATTACHMENT_DIR": os.environ.get("ATTACHMENT_DIR") or str(instance_path / "attachments"),
        "S3_ENDPOINT_URL": os.environ.get("S3_ENDPOINT_URL"),
        "S3_BUCKET": os.environ.get("S3_BUCKET"),
        "S3_REGION": os.environ.get("S3_REGION"),
        "S3_ACCESS_KEY_ID": os.environ.get("S3_ACCESS_KEY_ID"),
        "S3_SECRET_ACCESS_KEY": os.environ.get("S3_SECRET_ACCESS_KEY"),
        "S3_PREFIX": os.environ.get("S3_PREFIX", ""),
        "TOWN_NAME": os.environ.get("TOWN_NAME", "重庆市涪陵区罗云镇"),
        "FLASK_ADMIN_SWATCH": "default",
    }


def _database_url(instance_path: Path) -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url.replace("postgres://", "postgresql://", 1)
    return f"sqlite:///{instance_path / 'tonghu.db'}"


def _instance_secret(instance_path: Path) -> str:
    """A random key kept in the instance folder, so sessions survive restarts of one PC install."""
    path = instance_path / "secret_key"
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(_default_config(Path(app.instance_path)))
    if config:
        app.config.update(config)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(BASE_DIR / "migrations"))
    csrf.init_app(app)
    babel.init_app(app, locale_selector=lambda: "zh_CN")
    _init_login(app)
    _init_sqlite(app)

    from views import register_views
    from views.auth import bp as auth_bp
    from views.dashboard import DashboardView

    app.register_blueprint(auth_bp)
    admin = Admin(
        app,
        name="童护",
        url="/admin",
        theme=Bootstrap4Theme(base_template="layout.html", fluid=True),
        index_view=DashboardView(name="工作台", url="/admin"),
        translations_path=str(BASE_DIR / "translations"),
        csp_nonce_generator=csp_nonce,
    )
    register_views(admin, app)
    _admin_translations_ours_last(app)

    from views import errors, fields

    errors.init_app(app)
    fields.init_app(app)

    _init_request_hooks(app)
    _init_cli(app)

    @app.route("/")
    def root():
        return redirect(url_for("admin.index"))

    @app.route("/favicon.ico")
    def favicon():
        return app.send_static_file("favicon.svg"), 200, {"Content-Type": "image/svg+xml"}

    return app


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def _init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "请先登录"
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(token: str):
        """The account of this cookie, while its server-side session is open and the account's epoch
        (moved by a password change or disabling) is the one it logged in under."""
        try:
            user_id, epoch = (int(part) for part in token.split(":"))
        except ValueError:
            return None
        user = db.session.get(User, user_id)
        if user is None or not user.active or user.session_epoch != epoch:
            return None
        state = accounts.live_session(user.id, session.get("sid"))
        if state.timed_out:
            g.session_timed_out = True
        if state.row is None:
            return None
        return user


def _init_sqlite(app: Flask) -> None:
    """SQLite's connection settings and savepoint rule, registered once per process: the listeners
    are on the Engine class, so registering them per app (the tests make hundreds) ran the pragmas
    once per app on every new connection."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    for name, listener in (("connect", _pragmas), ("savepoint", _savepoint_opens_for_writing)):
        if not event.contains(Engine, name, listener):
            event.listen(Engine, name, listener)


SQLITE_MMAP_BYTES = int(os.environ.get("SQLITE_MMAP_MB", "1024")) * 2**20


def _pragmas(dbapi_connection, connection_record):
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Pages are read through a memory map, not a read() call each: a scan of the register spent
        # more time in the kernel copying pages than in SQLite (a 3,000-child read: 0.27 s of system
        # time, 0.006 s mapped). Only the address space is reserved; the pages are the page cache's.
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        _analyze_once(cursor)
        cursor.close()


def _savepoint_opens_for_writing(conn, name):
    """A SAVEPOINT outside a transaction opens a deferred one: its reads fix a snapshot, and its
    first write then fails at once ("database is locked") when another writer committed since,
    because SQLite's busy wait does not cover that upgrade. The app's savepoints always lead to
    writes (an offline queue's items, a rule run, a review), so the transaction is opened for
    writing first and waits its turn like any other write (the offline sync answered 503 to
    half its visits under the load test)."""
    dbapi = conn.connection.dbapi_connection
    if type(dbapi).__module__.startswith("sqlite3") and not dbapi.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _analyze_once(cursor) -> None:
    """Give SQLite's planner statistics once the register has children (PostgreSQL's autovacuum does
    this by itself). Without them it reads ``archived_at IS NULL`` as selective and scans every child
    for a name search instead of using the name indexes."""
    has_children = cursor.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'child'"
    ).fetchone()
    if not has_children:
        return
    has_stats = cursor.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone()
    if has_stats and cursor.execute("SELECT 1 FROM sqlite_stat1 WHERE tbl = 'child' LIMIT 1").fetchone():
        return
    if cursor.execute("SELECT 1 FROM child LIMIT 1").fetchone():
        cursor.execute("ANALYZE")


def _admin_translations_ours_last(app: Flask) -> None:
    """Flask-Admin reads our catalogue (translations/) first and merges its own over it, so where
    both translate a text its words win: the page-size button read "20 项目". Merged the other way
    round once, into the cache flask-babel reads Flask-Admin's texts from."""
    from babel import support
    from flask_admin import babel as admin_babel
    from flask_admin import translations as admin_catalogues
    from flask_babel import get_locale
    from wtforms import i18n as wtforms_i18n

    with app.test_request_context():
        locale = get_locale()
    merged = support.Translations.load(admin_catalogues.__path__[0], [locale], "admin")
    merged.merge(support.Translations.load(str(BASE_DIR / "translations"), [locale], "admin"))
    admin_babel.domain.get_translations_cache(None)[str(locale), "admin"] = merged
    # Form messages come from WTForms' catalogue, whose zh lacks a few (a refused multiple choice)
    forms = support.Translations.load(wtforms_i18n.messages_path(), [locale, "zh"], "wtforms")
    forms.merge(support.Translations.load(str(BASE_DIR / "translations"), [locale], "wtforms"))
    admin_babel.wtforms_domain.get_translations_cache(None)[str(locale), "wtforms"] = forms


def _init_request_hooks(app: Flask) -> None:
    @app.before_request
    def session_and_actor():
        if _is_static():
            return None
        if current_user.is_authenticated:  # load_user checked the server-side session
            if db.session.dirty:  # its last_seen_at moved (at most once a minute)
                db.session.commit()
            audit.set_actor(audit.Actor(current_user.id, current_user.username, request.remote_addr))
            return None
        audit.set_actor(audit.Actor(None, None, request.remote_addr))
        if g.get("session_timed_out"):
            db.session.commit()  # the idle session's end
            session.clear()
            if request.path.startswith("/field/api/"):
                return None  # the phone's API answers 401 in JSON and asks for the password itself
            flash("登录已超时（30分钟无操作），请重新登录", "info")
            return redirect(url_for("auth.login", next=request.full_path))
        return None

    @app.after_request
    def security_headers(response):
        nonce = csp_nonce()
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; "
            f"script-src 'self' 'nonce-{nonce}'; "
            "style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        if not _is_static():
            # Pages, JSON and downloads may carry minors' personal data: no browser or proxy keeps them.
            response.headers["Cache-Control"] = "no-store"
            response.headers.pop("Expires", None)
            response.headers.pop("ETag", None)
            response.headers.pop("Last-Modified", None)
        return response

    @app.context_processor
    def globals_for_templates():
        from services.permissions import may_reveal_id

        return {
            "town_name": setting("town_name", app.config["TOWN_NAME"]),
            "is_demo_data": setting("demo_data", "0") == "1",
            "csp_nonce": csp_nonce,
            "may_reveal": current_user.is_authenticated and may_reveal_id(current_user.role),
            "menu_for_role": menu_for_role,
        }

    menus: dict[tuple, Markup] = app.extensions.setdefault("tonghu_menus", {})

    def menu_for_role(render) -> Markup:
        """The main menu, rendered once per role and page: which entries show depends on the role alone
        (every view's is_accessible/is_visible reads the role's permissions), the marked entry on the
        page. Rendering it asked every view of the app on every request."""
        role = current_user.role if current_user.is_authenticated else None
        key = (role, request.blueprint, request.script_root)
        if key not in menus:
            menus[key] = Markup(render())
        return menus[key]

    from choices import CaseStage, ChildStatus, Role
    from services import clock

    app.add_template_filter(Role.label_of, "role_label")
    app.add_template_filter(ChildStatus.label_of, "status_label")
    app.add_template_filter(CaseStage.label_of, "case_stage_label")
    app.add_template_filter(clock.local_text, "local_time")


def _is_static() -> bool:
    """Our static files and Flask-Admin's: the only answers that carry no personal data."""
    endpoint = request.endpoint or ""
    return endpoint == "static" or endpoint.endswith(".static")


def setting(key: str, default: str | None = None) -> str | None:
    cache = g.setdefault("settings", {})
    if key not in cache:
        try:
            row = db.session.get(Setting, key)
        except Exception:  # the table may not exist yet on a database still being migrated
            db.session.rollback()
            row = None
        cache[key] = row.value if row else default
    return cache[key]


def _init_cli(app: Flask) -> None:
    from cli import register_cli

    register_cli(app)
