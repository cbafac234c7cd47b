"""今日 and the phone's pages (visit form, attendance roll), their data, and the offline queue's sync.

The three pages are the same static shells online and offline (static/field/*.html, precached by the
service worker, with no personal data in them); they render what the JSON endpoints below return,
or the offline copy the phone keeps in IndexedDB when there is no signal. Rules live in
services/field.py and services/sync.py.

Public (no login): the service worker, the web app manifest, and the session probe the phone asks
before syncing (a session that ended while offline asks for the password again).
"""

from __future__ import annotations

import gzip
import json
import re

from flask import Blueprint, Response, current_app, jsonify, request, send_from_directory
from flask_admin import expose
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from choices import Role
from models import db
from services import clock, field, sync
from services.permissions import can_read, can_write
from views.base import SecureView, current_role, current_scope

SHELLS = {"today": "today.html", "visit": "visit.html", "roll": "roll.html"}
_PHONE = re.compile(r"Mobi|Android|iPhone|iPod|HarmonyOS", re.I)


def is_phone() -> bool:
    return bool(_PHONE.search(request.headers.get("User-Agent", "")))


def shell(name: str) -> Response:
    response = send_from_directory(current_app.static_folder, f"field/{SHELLS[name]}", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


def user_facts() -> dict:
    user = current_user
    return {
        "id": user.id,
        "username": user.username,
        "name": str(user),
        "role": Role.label_of(user.role),
        "village": user.village.name if user.village else "",
        "staff_id": user.staff_id,
        "may_visit": can_write(user.role, "visits"),
        "may_sign": can_write(user.role, "activities"),
        "may_handle": can_read(user.role, "alerts"),
        "may_services": can_read(user.role, "services"),
    }


class FieldView(SecureView):
    """今日: the phone-first home of directors, social workers and supervisors."""

    area = "field"

    def inaccessible_callback(self, name, **kwargs):
        if request.path.startswith("/field/api/"):
            if not current_user.is_authenticated:
                return jsonify(login=True, error="登录已过期，请重新登录后再同步"), 401
            return jsonify(error="您的角色不能使用此功能"), 403
        return super().inaccessible_callback(name, **kwargs)

    @expose("/")
    def index(self):
        return shell("today")

    @expose("/visit")
    def visit(self):
        return shell("visit")

    @expose("/roll")
    def roll(self):
        return shell("roll")

    @expose("/api/today")
    def api_today(self):
        data = field.today_work(
            current_scope(), user_id=current_user.id, now=clock.now().replace(microsecond=0)
        )
        data["user"] = user_facts()
        return jsonify(data)

    @expose("/api/children")
    def api_children(self):
        child_id = request.args.get("id", type=int)
        if child_id is not None:
            return jsonify(children=field.children_by_id(current_scope(), [child_id]))
        return jsonify(children=field.find_children(current_scope(), request.args.get("q", "")))

    @expose("/api/copy")
    def api_copy(self):
        data = field.offline_copy(current_scope(), user=user_facts(), now=clock.now().replace(microsecond=0))
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        response = Response(body, mimetype="application/json")
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            response.set_data(gzip.compress(body, 6))
            response.headers["Content-Encoding"] = "gzip"
        response.headers["Vary"] = "Accept-Encoding"
        return response

    @expose("/api/sync", methods=("POST",))
    def api_sync(self):
        try:
            payload, photos = _read_queue()
        except sync.Refused as refused:
            return jsonify(error=str(refused)), 400
        sender = sync.Sender(
            user_id=current_user.id,
            role=current_role(),
            village_ids=current_scope(),
            staff_id=current_user.staff_id,
        )
        try:
            sync.check_owner(payload.get("user_id"), sender)
            results = sync.sync(
                payload.get("items"), sender, now=clock.now().replace(microsecond=0), photos=photos
            )
        except sync.Refused as refused:
            db.session.rollback()
            return jsonify(error=str(refused)), 409
        return jsonify(results=[r.as_json() for r in results])


def _read_queue() -> tuple[dict, dict]:
    """The queue as JSON (``application/json``), or as a multipart form whose ``payload`` field is the
    JSON and whose files are the photos, named ``photo:<item uuid>``."""
    if request.mimetype == "multipart/form-data":
        try:
            payload = json.loads(request.form.get("payload") or "{}")
        except ValueError:
            raise sync.Refused("同步数据格式不正确") from None
        photos: dict[str, list[sync.Photo]] = {}
        for name, file in request.files.items(multi=True):
            if name.startswith("photo:"):
                photos.setdefault(name[6:].lower(), []).append(sync.Photo(file.read(), file.filename or ""))
    else:
        payload = request.get_json(silent=True)
        photos = {}
    if not isinstance(payload, dict):
        raise sync.Refused("同步数据格式不正确")
    return payload, photos


public = Blueprint("field_app", __name__)


@public.get("/field/sw.js")
def service_worker():
    response = send_from_directory(current_app.static_folder, "field/sw.js", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/field/"
    return response


@public.get("/field/manifest.webmanifest")
def manifest():
    response = send_from_directory(current_app.static_folder, "field/manifest.webmanifest", max_age=0)
    response.headers["Content-Type"] = "application/manifest+json"
    return response


@public.get("/field/api/session")
def session_probe():
    """Who is logged in on this browser (and a CSRF token for the sync); 401 when nobody is."""
    if not current_user.is_authenticated:
        return jsonify(authenticated=False, csrf_token=generate_csrf()), 401
    return jsonify(authenticated=True, user=user_facts(), csrf_token=generate_csrf())


@public.post("/field/api/login")
def relogin():
    """The password again, before a sync, when the session ended while the phone was offline. Only the
    account that recorded the queue logs in here; anyone else uses the login page."""
    from services.accounts import LoginRefused, authenticate
    from views.auth import complete_login, refuse_login

    data = request.get_json(silent=True) or {}
    username = str(data.get("username") or "")
    try:
        user, lock_notice = authenticate(username, str(data.get("password") or ""))
    except LoginRefused as refused:
        refuse_login(username)
        return jsonify(error=str(refused)), 401
    if str(user.id) != str(data.get("user_id")):
        return jsonify(error="待同步的记录不是这个账号录入的"), 409
    if not can_read(user.role, "field"):
        return jsonify(error="您的角色不能使用此功能"), 403
    complete_login(user)
    return jsonify(user=user_facts(), csrf_token=generate_csrf(), notice=lock_notice or "")


def init_app(app):
    app.register_blueprint(public)

    @app.context_processor
    def field_flags():
        return {"field_app": current_user.is_authenticated and can_read(current_user.role, "field")}

    @app.after_request
    def wipe_on_logout(response):
        # Logging out leaves nothing of the offline copy on the device: the page's script deletes
        # IndexedDB and the caches first, and this asks the browser to do the same.
        if request.endpoint == "auth.logout":
            response.headers["Clear-Site-Data"] = '"cache", "storage"'
        return response


def register(admin):
    admin.add_view(FieldView(name="今日", endpoint="field", url="/field"))
