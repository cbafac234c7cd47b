"""The one place where roles and village scoping meet Flask-Admin.

Every view of the panel derives from ``SecureView`` (custom pages) or ``ScopedModelView`` (CRUD).
``ScopedModelView`` scopes every path Flask-Admin offers: list, count, details, edit GET/POST,
delete, bulk actions, relation dropdowns, AJAX lookups, filter options and inline rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import quote

from flask import abort, flash, g, has_request_context, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_admin.babel import gettext as admin_gettext
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla.ajax import QueryAjaxModelLoader
from flask_admin.contrib.sqla.filters import BaseSQLAFilter, BooleanEqualFilter, FilterEqual
from flask_admin.form import BaseForm
from flask_admin.menu import MenuLink
from flask_admin.model import template as row_template
from flask_admin.model.template import BaseListRowAction
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from jinja2 import pass_context
from markupsafe import Markup, escape
from sqlalchemy import Boolean
from werkzeug.exceptions import HTTPException
from wtforms import HiddenField

from choices import Choice
from models import AuditLog, Village, db
from services import form_tokens
from services.errors import Refused, describe
from services.permissions import can_read, can_write
from services.scoping import scope
from services.validation import ID_MAX, parse_id, parse_int
from views.dates import NativeDateConverter, check_periods
from views.errors import error_response, request_context, returns_json, rollback_quietly
from views.export import XlsxExportMixin
from views.fields import apply_field_types
from views.labels import LABELS
from views.staff_picker import apply_staff_picker

# The empty choice of a relation dropdown (儿童主任, 爱心妈妈 …).
BLANK_CHOICE = "（不选）"

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


# --------------------------------------------------------------------------- numbers in requests


def arg_id(name: str = "id", source=None) -> int | None:
    """A record id from the query string (or ``source``): None when absent, not a number or out of
    range (above 2^31 − 1, zero, negative) — the caller answers 记录不存在 as for any unknown id."""
    return parse_id((request.args if source is None else source).get(name))


def arg_int(name: str, *, lo: int, hi: int, default: int | None = None, label: str = "参数", source=None):
    """A bounded whole number from the query string (or ``source``): ``default`` when absent or
    empty, a 400 with a Chinese message when present but not a whole number in [lo, hi]."""
    raw = (request.args if source is None else source).get(name)
    if raw is None or not str(raw).strip():
        return default
    value = parse_int(raw, lo=lo, hi=hi)
    if value is None:
        raise Refused(f"{label}应为{lo}至{hi}之间的整数（收到“{str(raw)[:20]}”）")
    return value


def arg_ids(name: str, source=None) -> list[int]:
    """Every id posted under ``name``; a 400 if any is not a valid id (a list is refused whole)."""
    values = (request.form if source is None else source).getlist(name)
    ids = [parse_id(v) for v in values if str(v).strip()]
    if any(i is None for i in ids):
        raise Refused("所选记录的编号无效，请刷新页面后重新选择。")
    return ids


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
    """AJAX lookups that only ever find rows in the user's villages. The box says what it searches
    (输入姓名或电话查找), instead of Flask-Admin's "Please select model"."""

    def __init__(self, name, session, model, **options):
        fields = options.get("fields") or ()
        searched = [LABELS.get(getattr(f, "key", f), "") for f in fields]
        searched = [label for label in dict.fromkeys(searched) if label]
        options.setdefault("placeholder", f"输入{'或'.join(searched) or '关键字'}查找")
        super().__init__(name, session, model, **options)

    def get_query(self):
        query = scoped_query(self.model)
        if hasattr(self.model, "archived_at"):
            query = query.filter(self.model.archived_at.is_(None))
        return query

    def get_one(self, pk):
        pk_col = self.model.__mapper__.primary_key[0]
        key = primary_key_value(pk_col, pk)  # posted ids are strings; PostgreSQL will not compare them
        if key is None:
            return None
        return self.get_query().filter(pk_col == key).first()


def choice_formatter(choice: type[Choice]):
    def fmt(view, context, model, name):
        return choice.label_of(getattr(model, name))

    return fmt


def level_badge(value) -> Markup:
    from choices import Level

    if not value:
        return Markup('<span class="badge badge-light">未评估</span>')
    level = Level(value)
    return Markup('<span class="badge level-badge level-{}">{}</span>').format(level.value, level.label)


def _yes_no(view, value, name):
    return "是" if value else "否"


def _joined(view, values, name):
    return "、".join(str(v) for v in values)


def _to_the_second(view, value, name):
    return value.strftime("%Y-%m-%d %H:%M:%S")


# How a value of each Python type reads in lists and details: 是/否 (Flask-Admin shows an icon
# titled "active: true" in lists and True/False in details), 、-joined lists, times to the second.
TYPE_FORMATTERS = {
    type(None): lambda view, value, name: "",
    bool: _yes_no,
    list: _joined,
    dt.datetime: _to_the_second,
}


# --------------------------------------------------------------------------- list row actions


class PageRowLink(BaseListRowAction):
    """A row's link from one ``url_for`` per page: the URL is built once with a placeholder for the
    id and every row fills in its own. Flask-Admin's actions call ``url_for`` for every action of
    every row (5 × 20 a page on the child list), most of a list page's rendering time."""

    PLACEHOLDER = "__row_id__"

    def __init__(
        self, endpoint, icon_class, title=None, *, id_arg="id", url_args=None, with_return_url=False
    ):
        BaseListRowAction.__init__(self, title=title)  # not the next class's: it takes no title
        self.endpoint, self.icon_class, self.id_arg = endpoint, icon_class, id_arg
        self.url_args = dict(url_args or {})
        self.with_return_url = with_return_url

    def _parts(self, context) -> tuple[str, str]:
        """The link's markup before and after the row id, made once per page and action."""
        return_url = context.resolve("return_url") if self.with_return_url else None
        key = (
            request.blueprint,
            self.endpoint,
            self.id_arg,
            return_url,
            tuple(sorted(self.url_args.items())),
        )
        cache = g.setdefault("row_url_templates", {})
        if key not in cache:
            kwargs = {**self.url_args, self.id_arg: self.PLACEHOLDER}
            if return_url:
                kwargs["url"] = return_url
            link = Markup('<a class="icon" href="{}" title="{}"><span class="{}"></span></a>').format(
                url_for(self.endpoint, **kwargs), self.title or "", self.icon_class
            )
            head, _, tail = str(link).partition(self.PLACEHOLDER)
            cache[key] = (head, tail)
        return cache[key]

    def render(self, context, row_id, row):
        head, tail = self._parts(context)
        return Markup(head + quote(str(row_id), safe="") + tail)


# Each is also the Flask-Admin action it replaces, for views that ask which kind a row action is.
class PageViewRow(PageRowLink, row_template.ViewRowAction):
    pass


class PageEditRow(PageRowLink, row_template.EditRowAction):
    pass


class PageEndpointRow(PageRowLink, row_template.EndpointLinkRowAction):
    pass


class PageDeleteRow(row_template.DeleteRowAction):
    """Flask-Admin's delete button, its form's fixed parts (action, return URL, CSRF token) rendered
    once per page."""

    def __init__(self, title=None):
        BaseListRowAction.__init__(self, title=title)

    def render(self, context, row_id, row):
        cache = g.setdefault("row_url_templates", {})
        key = ("delete", request.blueprint)
        if key not in cache:
            delete_form = context.resolve("delete_form")
            token = getattr(delete_form, "csrf_token", None)
            csrf = (
                Markup(token)
                if token
                else Markup('<input type="hidden" name="csrf_token" value="{}"/>').format(generate_csrf())
            )
            cache[key] = (
                Markup(
                    '<form class="icon" method="POST" action="{}"><input id="id" name="id" type="hidden" value="'
                ).format(url_for(".delete_view")),
                Markup(
                    '"><input id="url" name="url" type="hidden" value="{}">{}'
                    '<button onclick="return faHelpers.safeConfirm(\'{}\');" title="{}">'
                    '<span class="fa fa-trash glyphicon glyphicon-trash"></span></button></form>'
                ).format(
                    context.resolve("return_url"),
                    csrf,
                    admin_gettext("Are you sure you want to delete this record?"),
                    admin_gettext("Delete Record"),
                ),
            )
        head, tail = cache[key]
        return head + Markup.escape(str(row_id)) + tail


def fast_row_action(action):
    """Flask-Admin's row action as one of the above, where there is an equivalent."""
    eye, pencil = "fa fa-eye glyphicon glyphicon-eye-open", "fa fa-pencil glyphicon glyphicon-pencil"
    if type(action) is row_template.ViewRowAction:
        return PageViewRow(".details_view", eye, action.title, with_return_url=True)
    if type(action) is row_template.EditRowAction:
        return PageEditRow(".edit_view", pencil, action.title, with_return_url=True)
    if type(action) is row_template.DeleteRowAction:
        return PageDeleteRow(action.title)
    if type(action) is row_template.EndpointLinkRowAction:
        return PageEndpointRow(
            action.endpoint, action.icon_class, action.title, id_arg=action.id_arg, url_args=action.url_args
        )
    return action


class AnsweredView:
    """Every exposed method of a view runs through ``_run_view``: whatever it raises becomes the
    answer of services/errors.py (a Chinese page or JSON with the right status), after the
    request's transaction is rolled back. HTTP errors (abort(404)) go to the app's handlers, which
    answer the same way."""

    # Custom @expose methods that create records: a POST to one claims the form's one-time token
    # (services/form_tokens.py) before the method runs, in the transaction it commits.
    create_endpoints: frozenset[str] = frozenset()

    def _run_view(self, fn, *args, **kwargs):
        g.admin_view = self
        if getattr(fn, "_returns_json", False):
            g.wants_json = True
        try:
            if (
                request.method == "POST"
                and fn.__name__ in self.create_endpoints
                and form_tokens.FIELD in request.form
                and getattr(self, "may_write", True)
            ):
                duplicate = claim_posted_token(request.form.get(form_tokens.FIELD))
                if duplicate is not None:
                    return duplicate
            # Flask-Admin retries a view that raised TypeError with other arguments; ours never
            # need that, and a retried POST would run twice.
            response = fn(self, *args, **kwargs)
            note_claim_result(response)
            return response
        except HTTPException:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure gets words and a status
            rollback_quietly()
            verb = "处理" if request.method == "POST" else "修改"
            answer = describe(
                exc, labels=getattr(self, "column_labels", None), verb=verb, context=request_context()
            )
            return error_response(answer)


def claim_posted_token(token: str | None):
    """Claim a posted one-time token for the current request; the response for a duplicate (or a
    refused token), None when the request may go on to write."""
    from flask import current_app
    from flask_login import current_user

    try:
        key = form_tokens.read(current_app.secret_key, token)
    except form_tokens.TokenRefused as refused:
        raise Refused(str(refused)) from None
    try:
        form_tokens.claim(
            db.session,
            key,
            user_id=current_user.get_id() and current_user.id,
            endpoint=request.endpoint or "",
            result_url=_same_site(request.referrer),
        )
    except form_tokens.AlreadySubmitted as done:
        flash("已保存，请勿重复提交。下面是第一次提交保存的结果。", "warning")
        first = done.claim
        target = first.result_url if first is not None and first.result_url else None
        return redirect(target or _same_site(request.referrer) or url_for("admin.index"))
    g.form_claim = key
    return None


def note_claim_result(response) -> None:
    """Remember where the claiming submission went (a second submission is sent there)."""
    key = g.pop("form_claim", None)
    location = (
        getattr(response, "location", None)
        if getattr(response, "status_code", 0) in (301, 302, 303)
        else None
    )
    if key is None or not location:
        return
    try:
        form_tokens.note_result(db.session, key, result_url=_same_site(location))
        db.session.commit()
    except Exception:  # noqa: BLE001 - the record is saved; only the pointer to it is lost
        rollback_quietly()


def _same_site(url: str | None) -> str | None:
    if not url:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.netloc and parts.netloc != request.host:
        return None
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return path if path.startswith("/") and not path.startswith("//") else None


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


class SecureView(AnsweredView, BaseView):
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


class ScopedModelView(AnsweredView, ModelView, XlsxExportMixin):
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
    column_type_formatters = TYPE_FORMATTERS
    column_type_formatters_detail = TYPE_FORMATTERS
    # Native date and date-time inputs for every Date/DateTime column (views/dates.py).
    model_form_converter = NativeDateConverter
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

    def get_list_row_actions(self):
        return [fast_row_action(action) for action in super().get_list_row_actions()]

    @pass_context
    def list_cells(self, context, row, list_columns) -> Markup:
        """A list row's data cells, as Flask-Admin's template writes them, in one join."""
        value = self.get_list_value
        facts = self.card.facts if self.card else ()
        return Markup(
            "".join(
                f'<td class="col-{escape(c)}{" card-fact" if c in facts else ""}" data-label="{escape(name)}">'
                f"{escape(value(context, row, c))}</td>"
                for c, name in list_columns
            )
        )

    def render(self, template, **kwargs):
        if "list_columns" in kwargs:  # the list page: words its rows would look up one by one
            kwargs.setdefault("select_record_title", admin_gettext("Select record"))
        return super().render(template, **kwargs)

    def search_placeholder(self):
        """搜索：姓名、电话 — the searched columns by their Chinese labels (Flask-Admin would print
        "child.name, staff.name")."""
        if not self.column_searchable_list:
            return None
        labels = dict(LABELS, **(self.column_labels or {}))
        names = []
        for column in self.column_searchable_list:
            key = getattr(column, "key", column)
            label = labels.get(key)
            if label is None and "." in key:
                relation, attr = key.rsplit(".", 1)
                label = labels.get(relation, "") + ("" if attr == "name" else labels.get(attr, ""))
            if label and label not in names:
                names.append(label)
        return "搜索：" + "、".join(names) if names else "搜索"

    # --- scoping: every read goes through get_query --------------------------------------

    def get_query(self):
        return scope(super().get_query(), self.model, current_scope())

    def get_count_query(self):
        return scope(super().get_count_query(), self.model, current_scope())

    def get_one(self, id):
        pk = self.model.__mapper__.primary_key[0]
        key = primary_key_value(pk, id)
        if key is None:
            return None
        return self.get_query().filter(pk == key).one_or_none()

    # --- list arguments: numbers bounded before Flask-Admin uses them --------------------

    MAX_PAGE = 100_000

    def _get_list_extra_args(self):
        args = super()._get_list_extra_args()
        args.page = parse_int(request.args.get("page"), lo=0, hi=self.MAX_PAGE) or 0
        sizes = set(self.page_size_options or ()) | {self.page_size}
        size = parse_int(request.args.get("page_size"), lo=1, hi=max(sizes))
        args.page_size = size if size in sizes else 0
        sort = parse_int(request.args.get("sort"), lo=0, hi=len(self._list_columns or ()) - 1)
        args.sort = sort if sort is not None and self._get_column_by_idx(sort) else None
        args.sort_desc = request.args.get("desc") == "1"
        if args.search is not None:
            args.search = args.search[:100]
        return args

    def _refresh_filters_cache(self):
        """An equality filter on a boolean column compares as a boolean: the plain one sends "1" as
        text, which SQLite takes and PostgreSQL refuses (a 500 on one database only)."""
        super()._refresh_filters_cache()
        for idx, flt in enumerate(self._filters or []):
            column = getattr(flt, "column", None)
            if type(flt) is FilterEqual and isinstance(getattr(column, "type", None), Boolean):
                self._filters[idx] = BooleanEqualFilter(column, flt.name, options=flt.options)

    def _get_list_filter_args(self):
        """Flask-Admin's filters, less any value the filter itself cannot turn into a query value
        (letters for a number, a number too large for the database): those are reported, not run."""
        filters = super()._get_list_filter_args()
        if not filters:
            return filters
        kept = []
        for idx, name, value in filters:
            if _filter_value_ok(self._filters[idx], value):
                kept.append((idx, name, value))
            else:
                flash(f"筛选条件“{name}”的值“{str(value)[:30]}”无效，已忽略", "error")
        return kept

    # --- bulk actions: every posted row id valid and in scope, or none is touched --------

    def handle_action(self, return_view=None):
        if request.method == "POST" and "rowid" in request.form:
            pk = self.model.__mapper__.primary_key[0]
            posted = request.form.getlist("rowid")
            keys = [primary_key_value(pk, value) for value in posted]
            visible = set()
            if keys and None not in keys:
                visible = {self.get_pk_value(row) for row in self.get_query().filter(pk.in_(keys))}
            if not keys or None in keys or len(visible) != len(set(keys)):
                flash("所选记录无效或不在您的管理范围内，未执行任何操作。请刷新页面后重新选择。", "error")
                return redirect(self.get_url(".index_view"))
        return super().handle_action(return_view)

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

    # {field name: StaffPicker}: which kind of staff a relation field offers (views/staff_picker.py).
    staff_pickers: dict = {}

    def _scope_form(self, form):
        """Limit every relation dropdown of the form (and its inline rows) to the user's villages;
        staff pickers then offer the declared kinds, the form's village first."""
        for field in form:
            self._scope_field(field)
        self._settle_villages(form)
        for name, picker in self.staff_pickers.items():
            apply_staff_picker(form, name, picker)
        return form

    def _settle_villages(self, form):
        """A new record's 村（社区）: fixed for a user of one village, chosen by a town user (never
        preset to the first village, where a clerk's entry would land unnoticed)."""
        if not (request.endpoint or "").endswith("create_view"):
            return
        for field in form:
            query = getattr(field, "query", None)
            if query is None or hasattr(field, "_get_object_list") is False or isinstance(field.data, list):
                continue
            descriptions = getattr(query, "column_descriptions", None) or [{}]
            if descriptions[0].get("entity") is not Village:
                continue
            options = query.all()
            if len(options) == 1:
                posted = [v for v in (getattr(field, "raw_data", None) or []) if v not in ("", "__None")]
                if field.data is None and not posted:  # an id posted but not offered is refused, not replaced
                    field.data = options[0]
            elif not field.allow_blank:
                field.allow_blank = True
                field.blank_text = "（请选择村（社区））"
                field.choice_required = True

    def _scope_field(self, field):
        if getattr(field, "allow_blank", False):
            if any(value == "" for value, *_ in getattr(field, "choices", None) or ()):
                field.allow_blank = False  # the view's own empty choice (（未填）) says it better
            elif not (getattr(field, "blank_text", None) or "").strip():
                field.blank_text = BLANK_CHOICE  # Flask-Admin's select otherwise reads "__None"
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
        note = getattr(field, "note", None)
        if callable(note) and note():
            field.description = Markup("{} {}").format(field.description or "", note())
        for sub in getattr(field, "entries", []) or []:
            self._scope_field(sub)
        inner = getattr(field, "form", None)
        if inner is not None and hasattr(inner, "_fields"):
            for sub in inner:
                self._scope_field(sub)

    def create_form(self, obj=None):
        return self._scope_form(super().create_form(obj))

    # --- a form posted twice writes once (services/form_tokens.py) -----------------------

    def get_create_form(self):
        return _with_form_token(super().get_create_form())

    def get_edit_form(self):
        form_class = super().get_edit_form()
        # Inline rows of an edit form create records too (a new guardian typed into a child's form).
        return _with_form_token(form_class) if self.inline_models else form_class

    # The token is drawn with the form's hidden inputs: a view's form_rules need not name it (named,
    # it was drawn a second time as a labelled field, "Form Once"); Flask-Admin drops what no rule names.
    def _remove_fields_from_form_class(self, field_names, form_class):
        keep = [name for name in field_names if name != form_tokens.FIELD]
        super()._remove_fields_from_form_class(keep, form_class)

    def _remove_fields_from_form_instance(self, field_names, form):
        keep = [name for name in field_names if name != form_tokens.FIELD]
        super()._remove_fields_from_form_instance(keep, form)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("create_model")
        if own is not None and not getattr(own, "_claims_form_token", False):
            cls.create_model = _claiming_form_token(own)

    def create_model(self, form):
        return super().create_model(form)

    def _claim_form_token(self, form) -> bool:
        """Claim the form's one-time token in the transaction about to write; False (with the
        message flashed) when the token is refused or was used before."""
        from flask import current_app
        from flask_login import current_user

        field = getattr(form, form_tokens.FIELD, None)
        if field is None or g.get("form_claim") is not None:
            return True
        if not field.raw_data:
            return True  # not posted by one of our forms (every form we draw carries one): nothing to claim
        try:
            key = form_tokens.read(current_app.secret_key, field.raw_data[0] if field.raw_data else None)
            form_tokens.claim(self.session, key, user_id=current_user.id, endpoint=request.endpoint or "")
        except form_tokens.TokenRefused as refused:
            flash(str(refused), "error")
            field.data = form_tokens.issue(current_app.secret_key)
            return False
        except form_tokens.AlreadySubmitted as done:
            # flashed once the form page Flask-Admin draws meanwhile is thrown away (it would eat it)
            g.duplicate_redirect = self._first_record_url(done.claim)
            return False
        g.form_claim = key
        return True

    def _first_record_url(self, claim) -> str:
        from flask_login import current_user

        record = None
        if claim is not None and claim.record_id and claim.user_id == current_user.id:
            record = self.get_one(claim.record_id)
        if record is None:
            return self.get_url(".index_view")
        pk = self.get_pk_value(record)
        if self.can_view_details:
            return self.get_url(".details_view", id=pk)
        if self.can_edit:
            return self.get_url(".edit_view", id=pk)
        return self.get_url(".index_view")

    def _on_model_change(self, form, model, is_created):
        super()._on_model_change(form, model, is_created)
        key = g.get("form_claim")
        if key is not None:
            self.session.flush()
            form_tokens.note_result(self.session, key, record_id=self.get_pk_value(model))

    # --- ID numbers in forms: masked, revealed in place (audited) -------------------------

    @expose("/reveal-id/", methods=("POST",))
    @returns_json
    def reveal_id_view(self):
        """The stored 身份证号 of a record's form field, for roles that may see it; each reveal is
        written to the audit log like 显示完整号码 on a details page."""
        from flask import jsonify

        from services import audit
        from services.permissions import may_reveal_id

        field = request.args.get("field", "")
        if not may_reveal_id(current_role()):
            return jsonify(error="您的角色不能查看完整身份证号"), 403
        if field not in self.model.__table__.columns or not (
            field == "id_number" or field.endswith("_id_number")
        ):
            return jsonify(error="该字段不是身份证号"), 400
        record = self.get_one(request.args.get("id"))
        if record is None:
            return jsonify(error="记录不存在"), 404
        audit.record(
            db.session,
            "reveal",
            table=self.model.__tablename__,
            record_id=self.get_pk_value(record),
            summary=f"在编辑表单中显示完整身份证号：{record}",
        )
        db.session.commit()
        return jsonify(value=getattr(record, field) or "")

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        return self._unless_submitted_before(super().create_view())

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        return self._unless_submitted_before(super().edit_view())

    def _unless_submitted_before(self, response):
        target = g.pop("duplicate_redirect", None)
        if target is None:
            return response
        flash("已保存，请勿重复提交。下面是第一次提交保存的记录。", "warning")
        return redirect(target)

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
        for flt in self._filters or ():
            _type_integer_filter(flt)

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
        apply_field_types(form_class, self.model)
        return form_class

    def scaffold_inline_form_models(self, form_class):
        form_class = super().scaffold_inline_form_models(form_class)
        apply_field_types(form_class, self.model)
        return form_class

    def on_form_prefill(self, form, id):
        if hasattr(form, "version_seen"):
            model = self.get_one(id)
            form.version_seen.data = model.version if model else ""
        super().on_form_prefill(form, id)

    def validate_form(self, form):
        g.form_in_flight = form  # a constraint failure on save is shown next to its field
        ok = super().validate_form(form)
        if request.method != "POST":
            return ok
        for field in form:
            if getattr(field, "choice_required", False) and field.data is None and not field.errors:
                field.errors = list(field.errors or []) + [f"请选择{field.label.text}"]
                ok = False
        return check_periods(form) and ok

    def update_model(self, form, model):
        seen = getattr(form, "version_seen", None)
        if seen is not None and seen.data and str(model.version) != str(seen.data):
            flash(conflict_message(model, parse_int(seen.data, lo=0, hi=ID_MAX) or 0), "error")
            return False
        if not self._claim_form_token(form):
            return False
        ok = super().update_model(form, model)
        if ok and seen is not None:
            seen.data = model.version
        return ok

    def handle_view_exception(self, exc):
        """A failure inside create/update/delete (Flask-Admin catches it and calls this): the one
        mapping of services/errors.py gives the Chinese message, next to its field if it has one.
        Flask-Admin's own "Failed to create record. (sqlite3.IntegrityError) …" never appears."""
        rollback_quietly()
        deleting = request.endpoint and request.endpoint.endswith(("delete_view", "action_view"))
        answer = describe(
            exc,
            labels=self.column_labels,
            verb="删除" if deleting else "修改",
            context=request_context(),
        )
        form = g.get("form_in_flight")
        field = getattr(form, answer.field, None) if form is not None and answer.field else None
        if field is not None and not deleting:
            field.errors = list(field.errors or []) + [answer.message]
        message = answer.message
        if answer.status >= 500 and not deleting:
            message = "保存失败：" + message
        flash(message, "error")
        return True


def _with_form_token(form_class):
    """The form class with a one-time token (a fresh one each time the form is drawn)."""
    from flask import current_app

    if hasattr(form_class, form_tokens.FIELD):
        return form_class
    field = HiddenField(default=lambda: form_tokens.issue(current_app.secret_key))
    return type(form_class.__name__, (form_class,), {form_tokens.FIELD: field})


def _claiming_form_token(create_model):
    """A view's create_model, run only once its form's token is claimed (see ScopedModelView)."""
    import functools

    @functools.wraps(create_model)
    def create_once(self, form):
        if not self._claim_form_token(form):
            return False
        return create_model(self, form)

    create_once._claims_form_token = True
    return create_once


def primary_key_value(pk_column, value):
    """A posted or typed primary key as the column's type; None when it cannot name a row."""
    try:
        python_type = pk_column.type.python_type
    except NotImplementedError:
        python_type = str
    if python_type is int:
        return parse_id(value)
    if value is None or "\x00" in str(value) or len(str(value)) > 200:
        return None
    return str(value)


def _type_integer_filter(flt) -> None:
    """A plain equality filter on an integer column compares a number, not the typed text
    (PostgreSQL refuses integer = varchar): its value is read as a bounded whole number."""
    from flask_admin.model.filters import BaseFilter

    column = getattr(flt, "column", None)
    try:
        is_int = column is not None and column.type.python_type is int
    except (AttributeError, NotImplementedError):
        is_int = False
    if not is_int or type(flt).clean is not BaseFilter.clean:
        return

    def clean(value):
        number = parse_int(value, lo=-ID_MAX, hi=ID_MAX)
        if number is None:
            raise ValueError(value)
        return number

    flt.clean = clean
    flt.validate = lambda value: parse_int(value, lo=-ID_MAX, hi=ID_MAX) is not None


def _filter_value_ok(flt, value) -> bool:
    # a filter with a fixed list of options takes only those (PostgreSQL refuses "'0'" for a boolean)
    options = flt.options if isinstance(flt.options, list | tuple) else None
    if options and str(value) not in {str(key) for key, _ in options}:
        return False
    try:
        cleaned = flt.clean(value)
    except (TypeError, ValueError, ArithmeticError):
        return False
    values = cleaned if isinstance(cleaned, list | tuple) else [cleaned]
    return all(not isinstance(v, int) or isinstance(v, bool) or -ID_MAX <= v <= ID_MAX for v in values)


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
    # The audit log's own words for fields and values (labels, choice labels, names), never codes.
    from views.audit_log import field_label, show_value

    table = model.__tablename__
    lines = []
    for entry in entries:
        for field, (old, new) in (entry.changes or {}).items():
            lines.append(
                Markup("<li>{}（{} {}）：{} → {}</li>").format(
                    field_label(table, field),
                    entry.username or "系统",
                    entry.at.strftime("%m-%d %H:%M"),
                    show_value(table, field, old),
                    show_value(table, field, new),
                )
            )
    head = Markup("保存冲突：您打开表单后，此记录已被他人修改，您的修改尚未保存。")
    tail = Markup("请核对上述变化后刷新页面重新编辑；您填写的内容仍保留在下方表单中。")
    if not lines:
        return head + tail
    return head + Markup("<ul class='mb-1'>") + Markup("").join(lines) + Markup("</ul>") + tail


ScopedModelView.create_model = _claiming_form_token(ScopedModelView.create_model)


class TaskLink(MenuLink):
    """A menu entry straight to a daily task's form (登记儿童, 录入支出), for the roles that may do it."""

    def __init__(self, name: str, endpoint: str, area: str, category: str):
        super().__init__(name, endpoint=endpoint, category=category)
        self.area = area

    def is_accessible(self):
        return current_user.is_authenticated and can_write(current_role(), self.area)

    def get_url(self):
        return url_for(self.endpoint)


class ReadOnlyModelView(ScopedModelView):
    allow_create = False
    allow_edit = False
    allow_delete = False


__all__ = [
    "AnsweredView",
    "Card",
    "ChoiceFilter",
    "arg_id",
    "arg_ids",
    "arg_int",
    "ReadOnlyModelView",
    "ScopedModelView",
    "SecureView",
    "TaskLink",
    "VillageFilter",
    "current_scope",
    "expose",
    "level_badge",
    "scoped_query",
    "village_options",
]
