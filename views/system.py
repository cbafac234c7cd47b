"""System management: accounts, the audit log (read-only), town settings."""

from flask import flash, request
from flask_admin.actions import action
from flask_admin.contrib.sqla.filters import DateBetweenFilter, FilterLike
from markupsafe import Markup
from wtforms import PasswordField
from wtforms.validators import Optional

from choices import AuditAction, Role
from models import AuditLog, Setting, User, Village, db
from services import clock
from services.accounts import PASSWORD_RULES, check_password_policy, end_sessions, set_password
from services.validation import InvalidInput
from views.auth import PasswordView
from views.base import ChoiceFilter, ReadOnlyModelView, ScopedModelView
from views.labels import LABELS

MENU_SYSTEM = "系统管理"


class UserView(ScopedModelView):
    area = "users"
    menu_category = MENU_SYSTEM
    column_list = (
        "username",
        "display_name",
        "role",
        "village",
        "assigned_villages",
        "active",
        "locked_until",
        "last_locked_at",
        "last_login_at",
    )
    column_labels = LABELS
    column_searchable_list = ("username", "display_name")
    column_filters = (ChoiceFilter(User.role, "角色", Role),)
    choice_columns = {"role": Role}
    column_formatters = {
        name: (lambda view, context, model, name: clock.local_text(getattr(model, name)))
        for name in ("locked_until", "last_locked_at", "last_login_at")
    }
    form_columns = (
        "username",
        "display_name",
        "new_password",
        "role",
        "village",
        "assigned_villages",
        "staff",
        "active",
    )
    form_extra_fields = {
        "new_password": PasswordField(
            "密码",
            validators=[Optional()],
            description=PASSWORD_RULES + "；编辑时留空表示不修改",
        )
    }
    form_args = {
        "village": {"description": "儿童主任必须指定所属村（社区）"},
        "assigned_villages": {"description": "社工负责的村（社区），可多选"},
        "active": {"description": "取消勾选即停用账号，已登录的会话立即失效"},
    }
    allow_delete = False
    column_details_exclude_list = ("password_hash",)

    def validate_form(self, form):
        ok = super().validate_form(form)
        if request.method != "POST" or not hasattr(form, "role"):
            return ok
        is_create = request.endpoint.endswith("create_view")
        if is_create and not form.new_password.data:
            form.new_password.errors = list(form.new_password.errors) + ["请设置初始密码"]
        if form.role.data == Role.DIRECTOR.value and not form.village.data:
            form.village.errors = list(form.village.errors) + ["儿童主任账号必须指定所属村（社区）"]
        if form.role.data == Role.SOCIAL.value and not form.assigned_villages.data:
            form.assigned_villages.errors = list(form.assigned_villages.errors) + [
                "请为社工指定负责的村（社区）"
            ]
        if form.new_password.data:
            try:
                personal = (form.display_name.data or "",)
                check_password_policy(form.new_password.data, form.username.data, personal=personal)
            except InvalidInput as bad:
                form.new_password.errors = list(form.new_password.errors) + [str(bad)]
        return ok and not any(f.errors for f in form)

    def on_model_change(self, form, model, is_created):
        if form.new_password.data:
            set_password(model, form.new_password.data)
        if model.role != Role.DIRECTOR.value:
            model.village_id = None
        if not model.active:
            model.session_epoch = (model.session_epoch or 0) + 1
            if model.id:
                end_sessions(model.id)

    @action("unlock", "解除锁定", "确定解除所选账号的锁定吗？")
    def action_unlock(self, ids):
        users = db.session.scalars(db.select(User).where(User.id.in_([int(i) for i in ids]))).all()
        for user in users:
            user.locked_until = None
            user.failed_logins = 0
        db.session.commit()
        flash(f"已解除 {len(users)} 个账号的锁定", "success")

    @action("disable", "停用账号", "确定停用所选账号吗？停用后立即退出登录。")
    def action_disable(self, ids):
        users = db.session.scalars(db.select(User).where(User.id.in_([int(i) for i in ids]))).all()
        for user in users:
            user.active = False
            user.session_epoch = (user.session_epoch or 0) + 1
            end_sessions(user.id)
        db.session.commit()
        flash(f"已停用 {len(users)} 个账号", "success")


def _changes_html(view, context, model, name):
    if not model.changes:
        return ""
    items = [
        Markup("<li><b>{}</b>：{} → {}</li>").format(LABELS.get(k, k), _v(v[0]), _v(v[1]))
        if isinstance(v, list) and len(v) == 2
        else Markup("<li>{}：{}</li>").format(LABELS.get(k, k), v)
        for k, v in model.changes.items()
    ]
    return Markup("<ul class='mb-0 pl-3 small'>") + Markup("").join(items) + Markup("</ul>")


def _v(value):
    if value in (None, "", []):
        return "（空）"
    return "、".join(map(str, value)) if isinstance(value, list) else str(value)


class AuditLogView(ReadOnlyModelView):
    """Read-only for admins and inspectors; nobody edits or deletes the log through the UI."""

    area = "audit"
    menu_category = MENU_SYSTEM
    can_view_details = True
    column_list = ("at", "username", "ip", "action", "table_name", "record_id", "summary", "changes")
    column_labels = LABELS
    column_default_sort = ("id", True)
    column_searchable_list = ("username", "summary")
    column_filters = (
        ChoiceFilter(AuditLog.action, "操作", AuditAction),
        FilterLike(AuditLog.table_name, "数据表"),
        DateBetweenFilter(AuditLog.at, "时间"),
    )
    choice_columns = {"action": AuditAction}
    column_formatters = {"changes": _changes_html}
    page_size = 50


class SettingView(ScopedModelView):
    area = "settings"
    menu_category = MENU_SYSTEM
    column_list = ("label", "key", "value")
    column_labels = LABELS
    form_columns = ("value",)
    allow_create = False
    allow_delete = False

    def validate_form(self, form):
        """Settings with a rule check their new value (e.g. 档案保存年限 is 1–30 years)."""
        ok = super().validate_form(form)
        model = self.get_one(request.args.get("id")) if request.method == "POST" else None
        check = SETTING_CHECKS.get(model.key) if model is not None else None
        if ok and check is not None and hasattr(form, "value"):
            try:
                form.value.data = check(form.value.data)
            except InvalidInput as bad:
                form.value.errors = list(form.value.errors or []) + [str(bad)]
                return False
        return ok


def _retention_check(value):
    from services.retention import check_setting

    return check_setting(value)


SETTING_CHECKS = {"retention_years": _retention_check}


def register(admin):
    admin.add_view(UserView(User, name="账号", endpoint="user"))
    admin.add_view(AuditLogView(AuditLog, name="操作日志", endpoint="auditlog"))
    admin.add_view(SettingView(Setting, name="系统设置", endpoint="setting"))
    admin.add_view(PasswordView(name="修改密码", endpoint="password", url="/admin/account/password"))


__all__ = ["register", "Village"]
