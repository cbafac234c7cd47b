"""The one place where roles and village scoping meet Flask-Admin.

Every view of the panel derives from ``SecureView`` (custom pages) or ``ScopedModelView`` (CRUD).
``ScopedModelView`` scopes every path Flask-Admin offers: list, count, details, edit GET/POST,
delete, bulk actions, relation dropdowns, AJAX lookups, filter options and inline rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, flash, has_request_context, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla.ajax import QueryAjaxModelLoader
from flask_admin.contrib.sqla.filters import BaseSQLAFilter, FilterEqual
from flask_admin.form import BaseForm
from flask_login import current_user
from markupsafe import Markup
from wtforms import HiddenField

from choices import Choice
from models import AuditLog, Village, db
from services.permissions import can_read, can_write
from services.scoping import scope
from views.export import XlsxExportMixin
from views.labels import LABELS

WRITE_ENDPOINTS = {"create_view", "edit_view", "delete_view", "action_view", "ajax_update"}


def current_scope():
    """Village ids the logged-in user may see (None: all)."""
    if not current_user.is_authenticated:
        return []
    return current_user.village_scope()


def current_role():
    return current_user.role if current_user.is_authenticated else None


def scoped_query(model):
    return scope(db.session.query(model), model, current_scope())


def village_options():
    """(id, name) of the villages in the user's scope, for filters and dropdowns."""
    if not has_request_context():
        return []  # Flask-Admin asks once at start-up; the real options come per request.
    query = scoped_query(Village).order_by(Village.sort_order, Village.id)
    return [(v.id, v.name) for v in query]


class ChoiceFilter(FilterEqual):
    """Equality filter on a Choice column, offering the Chinese labels."""

    def __init__(self, column, name, choice: type[Choice]):
        super().__init__(column, name, options=choice.choices())


class VillageFilter(BaseSQLAFilter):
    """Filter by village; its options list only the villages in the user's scope."""

    def __init__(self, column, name="村（社区）"):
        super().__init__(column, name, options=village_options)

    def apply(self, query, value, alias=None):
        return query.filter(self.get_column(alias) == int(value))

    def operation(self):
        return "等于"

    def validate(self, value):
        try:
            return int(value) in {vid for vid, _ in village_options()}
        except (TypeError, ValueError):
            return False

    def clean(self, value):
        return int(value)


class ScopedAjaxLoader(QueryAjaxModelLoader):
    """AJAX lookups that only ever find rows in the user's villages."""

    def get_query(self):
        query = scoped_query(self.model)
        if hasattr(self.model, "archived_at"):
            query = query.filter(self.model.archived_at.is_(None))
        return query

    def get_one(self, pk):
        pk_col = self.model.__mapper__.primary_key[0]
        try:
            key = pk_col.type.python_type(pk)  # posted ids are strings; PostgreSQL will not compare them
        except (TypeError, ValueError):
            return None
        return self.get_query().filter(pk_col == key).first()


def choice_formatter(choice: type[Choice]):
    def fmt(view, context, model, name):
        return choice.label_of(getattr(model, name))

    return fmt


def level_badge(value) -> Markup:
    from choices import LEVEL_COLOURS, Level

    if not value:
        return Markup('<span class="badge badge-light">未评估</span>')
    level = Level(value)
    return Markup('<span class="badge level-badge" style="background:{};color:#fff">{}</span>').format(
        LEVEL_COLOURS[level], level.label
    )


@dataclass(frozen=True)
class Card:
    """How a list's row reads as a card on a phone (under 576 px): the name, its village and level
    badge on top, the one or two facts that matter (columns of the list, with their labels), and
    the row's actions. Each part is an attribute name, a path of them, or a function of the row.

    One declaration per view (``ScopedModelView.card``); templates/admin/scoped_list.html draws it.
    """

    title: object
    village: object = None
    level: object = None
    facts: tuple[str, ...] = ()

    @staticmethod
    def _read(row, part):
        if part is None:
            return None
        if callable(part):
            return part(row)
        for name in (part,) if isinstance(part, str) else part:
            row = getattr(row, name, None)
            if row is None:
                return None
        return row

    def head(self, row) -> Markup:
        title = self._read(row, self.title)
        village = self._read(row, self.village)
        html = Markup('<span class="card-title">{}</span>').format(title if title is not None else "")
        if self.level is not None:
            html += Markup(" ") + level_badge(self._read(row, self.level))
        if village:
            html += Markup(' <span class="card-village">{}</span>').format(village)
        return html


class SecureView(BaseView):
    """A custom page: open to the roles that may read ``area``; ``extra_write_endpoints`` (exposed
    methods that change data) only to those that may write it."""

    area: str = "dashboard"
    extra_write_endpoints: frozenset[str] = frozenset()

    def _handle_view(self, name, **kwargs):
        refused = super()._handle_view(name, **kwargs)
        if refused is not None:
            return refused
        if name in self.extra_write_endpoints and not self.may_write:
            abort(403)
        return None

    def is_accessible(self):
        return current_user.is_authenticated and can_read(current_role(), self.area)

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path))
        abort(403)

    @property
    def may_write(self) -> bool:
        return can_write(current_role(), self.area)


class ScopedModelView(ModelView, XlsxExportMixin):
    """CRUD over a model, limited to the user's role (``area``) and villages (``village_clause``)."""

    area: str = ""
    form_base_class = BaseForm
    page_size = 20
    can_set_page_size = True
    can_view_details = True
    can_export = False  # Flask-Admin's export loads every row into memory; ours streams.
    details_modal = False
    edit_modal = False
    create_modal = False
    list_template = "admin/scoped_list.html"
    # {column: Choice} — labels in lists, details and forms all come from the Choice.
    choice_columns: dict[str, type[Choice]] = {}
    # The row as a card on a phone; None: the table stays a table (scrolling sideways).
    card: Card | None = None

    def __init__(self, model, session=None, **kwargs):
        kwargs.setdefault("category", getattr(self, "menu_category", None))
        super().__init__(model, session or db.session, **kwargs)

    # --- access --------------------------------------------------------------------------

    def is_accessible(self):
        return current_user.is_authenticated and can_read(current_role(), self.area)

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path))
        abort(403)

    def _handle_view(self, name, **kwargs):
        refused = super()._handle_view(name, **kwargs)
        if refused is not None:
            return refused
        if name in self.extra_write_endpoints and not self.may_write:
            abort(403)
        if name in WRITE_ENDPOINTS and not self._allowed(name):
            abort(403)
        return None

    # Custom @expose methods of a view that change data: only roles that may write reach them.
    extra_write_endpoints: frozenset[str] = frozenset()

    def _allowed(self, name) -> bool:
        return {
            "create_view": self.can_create,
            "edit_view": self.can_edit,
            "delete_view": self.can_delete,
            "ajax_update": self.can_edit,
            "action_view": bool(self._actions),
        }[name]

    @property
    def may_write(self) -> bool:
        return can_write(current_role(), self.area)

    @property
    def can_create(self):
        return self.may_write and self.allow_create

    @property
    def can_edit(self):
        return self.may_write and self.allow_edit

    @property
    def can_delete(self):
        return self.may_write and self.allow_delete

    allow_create = True
    allow_edit = True
    allow_delete = True

    def is_action_allowed(self, name):
        if not self.may_write:
            return False
        return super().is_action_allowed(name)

    # --- scoping: every read goes through get_query --------------------------------------

    def get_query(self):
        return scope(super().get_query(), self.model, current_scope())

    def get_count_query(self):
        return scope(super().get_count_query(), self.model, current_scope())

    def get_one(self, id):
        pk = self.model.__mapper__.primary_key[0]
        try:
            key = pk.type.python_type(id)
        except (TypeError, ValueError):
            return None
        return self.get_query().filter(pk == key).one_or_none()

    def _get_filter_groups(self):
        """Filter options are computed per request (Flask-Admin caches them at start-up, unscoped)."""
        groups = super()._get_filter_groups()
        for items in (groups or {}).values():
            for item in items:
                flt = self._filters[item["index"]]
                if callable(flt.options):
                    options = flt.get_options(self)
                    item["options"] = [(k, str(v)) for k, v in options] if options else None
        return groups

    def _create_ajax_loader(self, name, options):
        remote = self.model.__mapper__.relationships[name].mapper.class_
        return ScopedAjaxLoader(name, self.session, remote, **options)

    def _scope_form(self, form):
        """Limit every relation dropdown of the form (and its inline rows) to the user's villages."""
        for field in form:
            self._scope_field(field)
        return form

    def _scope_field(self, field):
        factory = getattr(field, "query_factory", None)
        if factory is not None and getattr(field, "_scoped", False) is False:
            query = factory()
            model = query.column_descriptions[0]["entity"]
            scoped = scope(query, model, current_scope())
            if hasattr(model, "archived_at"):
                scoped = scoped.filter(model.archived_at.is_(None))
            field.query = scoped
            field.query_factory = lambda scoped=scoped: scoped
            field._scoped = True
        for sub in getattr(field, "entries", []) or []:
            self._scope_field(sub)
        inner = getattr(field, "form", None)
        if inner is not None and hasattr(inner, "_fields"):
            for sub in inner:
                self._scope_field(sub)

    def create_form(self, obj=None):
        return self._scope_form(super().create_form(obj))

    def edit_form(self, obj=None):
        return self._scope_form(super().edit_form(obj))

    # --- choice labels -------------------------------------------------------------------

    def _refresh_cache(self):
        formatters = dict(self.column_formatters or {})
        detail_formatters = dict(self.column_formatters_detail or formatters)
        form_choices = dict(self.form_choices or {})
        for column, choice in self.choice_columns.items():
            formatters.setdefault(column, choice_formatter(choice))
            detail_formatters.setdefault(column, choice_formatter(choice))
            form_choices.setdefault(column, choice.choices())
        self.column_formatters = formatters
        self.column_formatters_detail = detail_formatters
        self.form_choices = form_choices
        super()._refresh_cache()

    # --- two people editing one record ---------------------------------------------------

    # Unique columns whose duplicates the view reports itself (scoped, with a better message).
    uniqueness_checked_by_view: tuple[str, ...] = ()

    def scaffold_form(self):
        from flask_admin.contrib.sqla.validators import Unique

        form_class = super().scaffold_form()
        for name in self.uniqueness_checked_by_view:
            unbound = getattr(form_class, name)
            validators = unbound.kwargs.get("validators") or []
            unbound.kwargs["validators"] = [v for v in validators if not isinstance(v, Unique)]
        if hasattr(self.model, "version"):
            form_class.version_seen = HiddenField()
        return form_class

    def on_form_prefill(self, form, id):
        if hasattr(form, "version_seen"):
            model = self.get_one(id)
            form.version_seen.data = model.version if model else ""
        super().on_form_prefill(form, id)

    def update_model(self, form, model):
        seen = getattr(form, "version_seen", None)
        if seen is not None and seen.data and str(model.version) != str(seen.data):
            flash(conflict_message(model, int(seen.data)), "error")
            return False
        ok = super().update_model(form, model)
        if ok and seen is not None:
            seen.data = model.version
        return ok

    def handle_view_exception(self, exc):
        from sqlalchemy.orm.exc import StaleDataError

        if isinstance(exc, StaleDataError):
            db.session.rollback()
            flash("保存冲突：该记录刚被其他人修改，请刷新后重新编辑。", "error")
            return True
        return super().handle_view_exception(exc)


def conflict_message(model, seen_version: int) -> Markup:
    """The Chinese conflict message listing who changed what since the form was opened."""
    entries = db.session.scalars(
        db.select(AuditLog)
        .where(
            AuditLog.table_name == model.__tablename__,
            AuditLog.record_id == model.id,
            AuditLog.record_version > seen_version,
        )
        .order_by(AuditLog.id)
    ).all()
    lines = []
    for entry in entries:
        for field, (old, new) in (entry.changes or {}).items():
            label = LABELS.get(field, field)
            lines.append(
                Markup("<li>{}（{} {}）：{} → {}</li>").format(
                    label,
                    entry.username or "系统",
                    entry.at.strftime("%m-%d %H:%M"),
                    _show(old),
                    _show(new),
                )
            )
    head = Markup("保存冲突：您打开表单后，此记录已被他人修改，您的修改尚未保存。")
    tail = Markup("请核对上述变化后刷新页面重新编辑；您填写的内容仍保留在下方表单中。")
    if not lines:
        return head + tail
    return head + Markup("<ul class='mb-1'>") + Markup("").join(lines) + Markup("</ul>") + tail


def _show(value):
    if value in (None, "", []):
        return "（空）"
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return str(value)


class ReadOnlyModelView(ScopedModelView):
    allow_create = False
    allow_edit = False
    allow_delete = False


__all__ = [
    "Card",
    "ChoiceFilter",
    "ReadOnlyModelView",
    "ScopedModelView",
    "SecureView",
    "VillageFilter",
    "current_scope",
    "expose",
    "level_badge",
    "scoped_query",
    "village_options",
]
