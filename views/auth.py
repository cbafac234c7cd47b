"""Login, logout and changing one's own password (outside Flask-Admin, in Chinese)."""

import re
from urllib.parse import unquote, urlsplit

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask_admin import BaseView, expose
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf
from werkzeug.security import check_password_hash
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo

from models import db
from seeds.demo import DEMO_PASSWORD
from services import audit
from services.accounts import (
    PASSWORD_RULES,
    LoginRefused,
    authenticate,
    check_password_policy,
    end_session,
    end_sessions,
    set_password,
    start_session,
)
from services.validation import InvalidInput

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    username = StringField("登录名", validators=[DataRequired("请填写登录名")])
    password = PasswordField("密码", validators=[DataRequired("请填写密码")])


class PasswordForm(FlaskForm):
    current = PasswordField("当前密码", validators=[DataRequired("请填写当前密码")])
    new = PasswordField("新密码", validators=[DataRequired("请填写新密码")])
    confirm = PasswordField("再次输入新密码", validators=[EqualTo("new", "两次输入的新密码不一致")])


# What a browser strips from a URL or reads as "/": control characters (tab, newline …), backslash.
_UNSAFE_IN_PATH = re.compile(r"[\x00-\x1f\x7f\\]")


def safe_next(target: str | None) -> str:
    """Where to go after login: a path on this site, whatever ``next`` says; else the 工作台.

    Browsers drop tabs and newlines inside a URL and read a backslash as a slash, so "/", tab,
    "/evil.example" becomes "//evil.example": only a plain path that starts with one "/" is kept, and
    it is checked again once percent-decoded, so an encoded variant cannot turn into a host either."""
    fallback = url_for("admin.index")
    if not target or not isinstance(target, str) or len(target) > 2000:
        return fallback
    for candidate in (target, unquote(target)):
        if _UNSAFE_IN_PATH.search(candidate) or not candidate.startswith("/") or candidate.startswith("//"):
            return fallback
        parts = urlsplit(candidate)
        if parts.scheme or parts.netloc:
            return fallback
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("admin.index"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user, lock_notice = authenticate(form.username.data, form.password.data)
        except LoginRefused as refused:
            refuse_login(form.username.data)
            form.password.errors.append(str(refused))
        else:
            complete_login(user)
            if lock_notice:
                flash(lock_notice, "warning")
            return redirect(safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form, demo_password=DEMO_PASSWORD)


def complete_login(user) -> None:
    """Log ``user`` in on this browser (the login form, and the phone's password prompt before a sync)."""
    # A fresh session on login: nothing from before survives (no fixation).
    session.clear()
    session["sid"] = start_session(user, request.remote_addr)
    # The CSRF secret is made now, with the login's own cookie: made by the first page instead, two
    # pages opened at once after a login each made one, and the forms of the one whose cookie lost
    # were refused.
    g.pop("csrf_token", None)  # a token drawn earlier in this request belongs to the cleared session
    generate_csrf()
    login_user(user)
    audit.set_actor(audit.Actor(user.id, user.username, request.remote_addr))
    audit.record(db.session, "login", table="user_account", record_id=user.id, summary=user.username)
    db.session.commit()


def refuse_login(username: str) -> None:
    audit.record(db.session, "login_failed", table="user_account", summary=(username or "")[:50])
    db.session.commit()


@bp.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated:
        audit.record(db.session, "logout", table="user_account", record_id=current_user.id)
    end_session(session.get("sid"))  # this device only: a replay of its cookie is no longer logged in
    db.session.commit()
    logout_user()
    session.clear()
    flash("您已安全退出", "info")
    return redirect(url_for("auth.login"))


@bp.route("/password")
@login_required
def change_password():
    return redirect(url_for("password.index"))


class PasswordView(BaseView):
    """修改密码: every logged-in account, whatever its role; not in the menu (it is in the user menu)."""

    def is_accessible(self):
        return current_user.is_authenticated

    def is_visible(self):
        return False

    def inaccessible_callback(self, name, **kwargs):
        return redirect(url_for("auth.login", next=request.full_path))

    @expose("/", methods=("GET", "POST"))
    def index(self):
        form = PasswordForm()
        if form.validate_on_submit():
            if not check_password_hash(current_user.password_hash, form.current.data):
                form.current.errors.append("当前密码不正确")
            else:
                user = current_user._get_current_object()
                try:
                    check_password_policy(form.new.data, user.username, personal=(user.display_name or "",))
                except InvalidInput as bad:
                    form.new.errors.append(str(bad))
                else:
                    set_password(user, form.new.data)
                    end_sessions(user.id, keep=session.get("sid"))
                    db.session.commit()
                    # The epoch moved, so re-login this session under the new id; others are ended.
                    login_user(user)
                    flash("密码已修改，其他设备上的登录已失效", "success")
                    return redirect(url_for("admin.index"))
        return self.render("auth/password.html", form=form, password_rules=PASSWORD_RULES)
