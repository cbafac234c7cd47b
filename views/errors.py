"""Error answers as pages and JSON: the app's error handlers, and what views/base.py returns when a
view raises. The words come from services/errors.py; this module only lays them out.

Pages are Chinese and rendered inside the normal layout (menu, a way back to 工作台); a 503, or a
page whose layout cannot be drawn (the database is down), uses a standalone page that needs no
database. JSON endpoints (``/api/…``, AJAX lookups, ``fetch`` calls) get ``{"error": …}``.
"""

from __future__ import annotations

import contextlib
import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path
from urllib.parse import urlsplit

from flask import current_app, g, has_request_context, jsonify, request, url_for
from werkzeug.exceptions import HTTPException

from services.errors import HTTP_MESSAGES, TITLES, Answer, Refused, describe, log
from services.validation import unsafe_character

WRITE_METHODS = {"create_view", "edit_view", "delete_view", "action_view", "ajax_update"}


def returns_json(fn):
    """Marks an exposed view method whose callers expect JSON, errors included."""
    fn._returns_json = True
    return fn


def wants_json() -> bool:
    if g.get("wants_json"):
        return True
    path = request.path
    if path.startswith("/api/") or "/ajax/" in path:
        return True
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return True
    accept = request.accept_mimetypes
    return (
        accept.best_match(["text/html", "application/json"]) == "application/json" and not accept.accept_html
    )


def rollback_quietly() -> None:
    """Roll the request's transaction back; a broken connection must not hide the first error."""
    from models import db

    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection may be gone; the pool replaces it
        with contextlib.suppress(Exception):
            db.session.close()


def error_response(answer: Answer):
    """The response for an answer: JSON or a Chinese page, with the answer's status."""
    if wants_json():
        body = {"error": answer.message, "status": answer.status}
        if answer.reference:
            body["reference"] = answer.reference
        return jsonify(body), answer.status
    return _page(answer), answer.status


def _page(answer: Answer) -> str:
    context = {
        "status": answer.status,
        "title": TITLES.get(answer.status, "出错了"),
        "message": answer.message,
        "reference": answer.reference,
        "back_url": _back_url(),
        "home_url": _safe_url("admin.index", "/admin/"),
        "retry_url": request.full_path.rstrip("?") if request.method == "GET" else None,
    }
    if answer.status != 503:
        view = g.get("admin_view") or _index_view()
        if view is not None:
            try:
                return view.render("errors/page.html", **context)
            except Exception as exc:  # noqa: BLE001 - the layout needs the database; fall back
                rollback_quietly()
                log.warning("error page drawn without the layout: %s", type(exc).__name__)
    # straight from the Jinja environment: the app's context processors would load the user
    return current_app.jinja_env.get_template("errors/standalone.html").render(**context)


def _index_view():
    admins = current_app.extensions.get("admin") or []
    return admins[0].index_view if admins else None


def _safe_url(endpoint: str, fallback: str) -> str:
    try:
        return url_for(endpoint)
    except Exception:  # noqa: BLE001
        return fallback


def _back_url() -> str | None:
    """The page the user came from, if it is one of ours and not the page that failed."""
    referrer = request.referrer
    if not referrer:
        return None
    parts = urlsplit(referrer)
    if parts.netloc and parts.netloc != request.host:
        return None
    back = parts.path + (f"?{parts.query}" if parts.query else "")
    if not back.startswith("/") or back.startswith("//") or back == request.full_path.rstrip("?"):
        return None
    return back


# --------------------------------------------------------------------------- 403 in words


def forbidden_message() -> str:
    """Which roles may do what was refused, from services/permissions.py."""
    from flask_login import current_user

    from choices import Role
    from services.permissions import roles_allowed

    view = _view_of_endpoint(request.endpoint or "")
    area = getattr(view, "area", None)
    if view is None or not area:
        return HTTP_MESSAGES[403]
    method = (request.endpoint or "").split(".", 1)[-1]
    extra = set(getattr(view, "extra_write_endpoints", ()) or ())
    write = method in WRITE_METHODS or method in extra or request.method not in ("GET", "HEAD")
    allowed = "、".join(role.label for role in roles_allowed(area, write=write)) or "（无）"
    doing = "进行此操作" if write else "查看此页面"
    who = ""
    if current_user.is_authenticated:
        who = f"您的角色（{Role.label_of(current_user.role)}）"
    return f"{who or '您'}无权{doing}。可以{doing}的角色：{allowed}。"


def _view_of_endpoint(endpoint: str):
    blueprint = endpoint.split(".", 1)[0]
    for admin in current_app.extensions.get("admin") or []:
        for view in admin._views:
            if getattr(view, "endpoint", None) == blueprint:
                return view
    return None


# --------------------------------------------------------------------------- the app's handlers


def init_app(app) -> None:
    _init_log(app)

    @app.before_request
    def refuse_unsafe_characters():
        """NUL cannot be typed and PostgreSQL cannot store it: a request carrying one is refused
        before any view reads it. A hand-written form (not a Flask-Admin create or edit form, whose
        field types put the message next to the field) is refused whole for any other control,
        zero-width or bidi-control character."""
        crud_form = (request.endpoint or "").endswith((".create_view", ".edit_view"))
        posted = request.method == "POST"
        for values in [request.args] + ([request.form] if posted else []):
            for key, value in values.items(multi=True):
                if "\x00" in key or "\x00" in value:
                    raise Refused("提交的内容含有空字符（NUL），请删除后重新提交。")
                if posted and values is request.form and not crud_form:
                    problem = unsafe_character(value, multiline=True)
                    if problem:
                        raise Refused(f"提交的内容含有{problem}，请删除后重新提交。")
        return None

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code is None or exc.code < 400:
            return exc
        answer = describe(exc)
        if exc.code == 403 and answer.message == HTTP_MESSAGES[403]:
            answer = Answer(403, forbidden_message())
        if exc.code >= 500:
            rollback_quietly()
        return error_response(answer)

    @app.errorhandler(Exception)
    def any_error(exc: Exception):
        rollback_quietly()
        return error_response(describe(exc, context=request_context()))


def request_context() -> str:
    """Where an unforeseen error happened, for the log line beside its traceback."""
    if not has_request_context():
        return ""
    # the user already loaded, if any: loading it now may be what failed (the database is away)
    user = g.get("_login_user")
    who = user.get_id() if getattr(user, "is_authenticated", False) else "-"
    return f"{request.method} {request.path} endpoint={request.endpoint} user={who}"


class SharedRotatingFileHandler(RotatingFileHandler):
    """A size-rotated log that several processes write at once (serve.py's workers).

    The plain handler rotates by renaming the file: another process kept writing into the renamed
    file through its open handle, and could rotate it again over the first one's. Here each record is
    written under a lock file, and a process whose file was moved away by another's rotation opens the
    current one first."""

    def __init__(self, filename, **kwargs):
        super().__init__(filename, **kwargs)
        self._lock_path = self.baseFilename + ".lock"

    def emit(self, record):
        import fcntl

        try:
            with open(self._lock_path, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                self._reopen_if_moved()
                super().emit(record)
        except Exception:
            self.handleError(record)

    def _reopen_if_moved(self) -> None:
        import os

        if self.stream is None:
            return
        try:
            current = os.stat(self.baseFilename)
        except FileNotFoundError:
            current = None
        own = os.fstat(self.stream.fileno())
        if current is None or (current.st_dev, current.st_ino) != (own.st_dev, own.st_ino):
            self.stream.close()
            self.stream = self._open()


def _init_log(app) -> None:
    """Unforeseen errors (with their reference numbers and tracebacks) go to stderr and, outside
    tests, to instance/logs/errors.log (``ERROR_LOG`` to put it elsewhere)."""
    if app.testing:
        return
    import os

    configured = app.config.get("ERROR_LOG") or os.environ.get("ERROR_LOG")
    path = Path(configured or Path(app.instance_path) / "logs" / "errors.log")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not any(getattr(h, "baseFilename", None) == str(path) for h in log.handlers):
        handler = SharedRotatingFileHandler(path, maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
    if not any(type(h) is logging.StreamHandler for h in log.handlers):
        log.addHandler(logging.StreamHandler())
    log.setLevel(logging.INFO)


__all__ = [
    "error_response",
    "forbidden_message",
    "init_app",
    "returns_json",
    "rollback_quietly",
    "wants_json",
]
