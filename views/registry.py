"""The register: villages, staff, children (一人一档) and guardians, with archive and restore."""

import re

from flask import current_app, flash, has_request_context, jsonify, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.sqla.filters import DateBetweenFilter, FilterEqual
from flask_admin.model.form import InlineFormAdmin
from flask_admin.model.template import EndpointLinkRowAction as RowLink
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from wtforms import RadioField, StringField, TextAreaField
from wtforms.validators import Optional

from choices import (
    ARCHIVE_STATUSES,
    ChildStatus,
    Gender,
    GuardianStatus,
    IdentificationSource,
    Level,
    Relation,
    StaffKind,
    VillageKind,
)
from models import Category, Child, ChildGuardian, Guardian, Staff, Village, db
from services import audit, clock, filing, transfers
from services.permissions import can_read, may_reveal_id
from services.register import (
    archive_child,
    check_child_identity,
    check_registered_on,
    fill_from_id_number,
    last_archive,
    note_guardian_status,
    read_id_number,
    restore_child,
)
from services.search import child_search_clause
from services.staff import village_director_id
from services.validation import InvalidInput, clean_id_number, clean_name, clean_phone, mask_id_number
from views.base import (
    Card,
    ChoiceFilter,
    ScopedAjaxLoader,
    ScopedModelView,
    TaskLink,
    VillageFilter,
    arg_id,
    current_role,
    current_scope,
    level_badge,
    scoped_query,
)
from views.errors import returns_json
from views.labels import LABELS
from views.staff_picker import StaffPicker

MENU_REGISTER = "儿童档案"
MENU_BASE = "基础信息"


def masked_id(view, context, model, name):
    return mask_id_number(getattr(model, name))


def _field_errors(form, errors: dict[str, str]) -> bool:
    for field, message in errors.items():
        target = getattr(form, field, None)
        if target is None:
            continue
        target.errors = list(target.errors or []) + [message]
    return not errors


def _check(form, field_name, cleaner) -> None:
    """Run a services.validation cleaner on a form field, putting its message next to the field."""
    field = getattr(form, field_name, None)
    if field is None:
        return
    try:
        field.data = cleaner(field.data)
    except InvalidInput as bad:
        field.errors = list(field.errors or []) + [str(bad)]


class CategoryFilter(FilterEqual):
    def __init__(self):
        super().__init__(Child.id, "困境类别", options=self._options)

    @staticmethod
    def _options():
        if not has_request_context():
            return []
        return [(c.id, c.name) for c in db.session.scalars(db.select(Category).order_by(Category.sort_order))]

    def apply(self, query, value, alias=None):
        return query.filter(Child.categories.any(Category.id == int(value)))

    def clean(self, value):
        return int(value)


class LevelFilter(FilterEqual):
    def __init__(self):
        super().__init__(Child.current_level, "风险等级", options=Level.choices() + [("none", "未评估")])

    def apply(self, query, value, alias=None):
        if value == "none":
            return query.filter(Child.current_level.is_(None))
        return query.filter(Child.current_level == value)


class FileCompleteFilter(FilterEqual):
    """建档情况: whether the file has an address, a guardian and a category (the 建档完成率 on the 工作台)."""

    def __init__(self):
        super().__init__(Child.file_complete, "建档情况", options=[("0", "档案不全"), ("1", "档案齐全")])

    def apply(self, query, value, alias=None):
        return query.filter(Child.file_complete.is_(value == "1"))

    def validate(self, value):
        return value in ("0", "1")


class VillageView(ScopedModelView):
    area = "villages"
    menu_category = MENU_BASE
    column_list = ("sort_order", "name", "kind", "code", "lon", "lat")
    column_labels = LABELS
    column_default_sort = ("sort_order", False)
    column_searchable_list = ("name", "code")
    form_columns = ("name", "kind", "code", "lon", "lat", "boundary", "sort_order")
    form_overrides = {"boundary": TextAreaField}
    form_args = {
        "lon": {"description": "地图上的位置（经度），如 107.39"},
        "lat": {"description": "地图上的位置（纬度），如 29.70"},
        "boundary": {"description": "可选：村界的 GeoJSON 几何（Polygon 或 MultiPolygon）"},
    }
    choice_columns = {"kind": VillageKind}
    allow_delete = False

    def validate_form(self, form):
        ok = super().validate_form(form)
        if not ok or not hasattr(form, "name"):
            return ok
        _check(form, "name", lambda v: clean_name(v).replace(" ", ""))
        return not any(f.errors for f in form)


class StaffView(ScopedModelView):
    area = "staff"
    menu_category = MENU_BASE
    column_list = ("name", "kind", "phone", "village", "organisation", "active")
    column_labels = LABELS
    column_searchable_list = ("name", "phone")
    column_filters = (
        ChoiceFilter(Staff.kind, "类型", StaffKind),
        VillageFilter(Staff.village_id),
        FilterEqual(Staff.active, "在岗", options=[("1", "是"), ("0", "否")]),
    )
    form_columns = ("name", "kind", "phone", "village", "organisation", "active")
    form_args = {
        "village": {"description": "镇级人员可不选"},
        "organisation": {"description": "工作领导小组成员在“领导小组”中登记"},
    }
    choice_columns = {"kind": StaffKind}
    column_extra_row_actions = [
        RowLink("fa fa-flag", "participation.index", title="培训与活动参与", id_arg="staff")
    ]
    allow_delete = False

    def validate_form(self, form):
        ok = super().validate_form(form)
        if not hasattr(form, "name") or request.method != "POST":
            return ok
        _check(form, "name", clean_name)
        _check(form, "phone", clean_phone)
        return ok and not any(f.errors for f in form)


class GuardianLinkInline(InlineFormAdmin):
    """A guardian row in the child's form: type a new guardian (name, relation, status, phone), or
    pick by name the guardian a sibling already has. The create form opens with one row."""

    form_columns = ("id", "guardian", "relation", "is_primary")
    form_label = "监护人"
    column_labels = {
        "guardian": "或选择已登记的监护人（兄弟姐妹共用）",
        "relation": "关系",
        "is_primary": "主要监护人（主要照料人）",
    }
    form_args = {
        "guardian": {
            "description": "兄弟姐妹的监护人已登记时，输入其姓名或电话选择，不必再填上面的姓名和电话"
        },
        "relation": {"default": None, "choices": Relation.choices()},
    }
    form_overrides = {"relation": RadioField}
    # new_name first: a new guardian is the usual case; the sibling's guardian last.
    FIELD_ORDER = (
        "new_name",
        "relation",
        "new_status",
        "new_phone",
        "is_primary",
        "new_id_number",
        "guardian",
    )

    def __init__(self):
        super().__init__(
            ChildGuardian,
            form_ajax_refs={
                "guardian": ScopedAjaxLoader(
                    "guardian", db.session, Guardian, fields=("name", "phone"), page_size=10
                )
            },
        )

    def postprocess_form(self, form_class):
        # The guardian may be left empty when a new one is typed in (checked in on_model_change).
        form_class.guardian.kwargs["validators"] = [Optional()]
        form_class.relation.kwargs["validators"] = [Optional()]
        form_class.relation.kwargs["default"] = None  # chosen every time, never 母 by default
        form_class.new_name = StringField("姓名", validators=[Optional()], render_kw={"autocomplete": "off"})
        form_class.new_phone = StringField("电话", validators=[Optional()], render_kw={"inputmode": "tel"})
        form_class.new_id_number = StringField("身份证号（可不填）", validators=[Optional()])
        form_class.new_status = RadioField(
            "监护状态",
            choices=GuardianStatus.choices(),
            default=GuardianStatus.NORMAL.value,
            validators=[Optional()],
        )
        base = max(getattr(form_class, name).creation_counter for name in self.FIELD_ORDER)
        for offset, name in enumerate(self.FIELD_ORDER, start=1):
            getattr(form_class, name).creation_counter = base + offset
        return form_class

    def on_model_change(self, form, model, is_created):
        if model.guardian is None:
            name = (form.new_name.data or "").strip()
            typed = any((getattr(form, f).data or "").strip() for f in ("new_phone", "new_id_number"))
            if not name and not typed and is_created:
                # A row left empty (the create form opens with one): no guardian on file yet.
                model.child.guardian_links.remove(model)
                return
            if not name:
                raise InvalidInput("监护人：请选择已登记的监护人，或填写新监护人姓名")
            model.guardian = Guardian(
                name=clean_name(name),
                phone=clean_phone(form.new_phone.data),
                id_number=clean_id_number(form.new_id_number.data) if form.new_id_number.data else None,
                status=form.new_status.data or GuardianStatus.NORMAL.value,
                village=model.child.village,
            )
        if not form.relation.data:
            raise InvalidInput(f"监护人“{model.guardian.name}”：请选择与儿童的关系（父、母、祖父母……）")
        model.relation = form.relation.data


class ChildSearch:
    """The register's one search box (name, pinyin, initials, ID number, last 4) for a Child view."""

    def search_placeholder(self):
        return "姓名 / 拼音 / 首字母 / 身份证号 / 后4位"

    def _apply_search(self, query, count_query, joins, count_joins, search):
        clause = child_search_clause(search)
        if clause is None:
            return query, count_query, joins, count_joins
        return query.filter(clause), count_query.filter(clause), joins, count_joins


def _narrowed() -> bool:
    """Whether the list request searches or filters (Flask-Admin's ``search`` and ``flt…`` arguments)."""
    return bool(request.args.get("search")) or any(re.match(r"^flt\d+_", key) for key in request.args)


class ChildView(ChildSearch, ScopedModelView):
    area = "children"
    menu_category = MENU_REGISTER
    name = "儿童名册"
    details_template = "registry/child_details.html"
    column_list = (
        "name",
        "gender",
        "id_number",
        "birth_date",
        "village",
        "categories",
        "current_level",
        "next_visit_due",
        "status",
    )
    column_labels = LABELS
    card = Card(
        title="name", village="village", level="current_level", facts=("next_visit_due", "categories")
    )
    column_default_sort = ("id", True)
    column_sortable_list = (
        "name",
        "birth_date",
        "current_level",
        "next_visit_due",
        ("village", "village.sort_order"),
    )
    column_searchable_list = ("name",)
    column_filters = (
        VillageFilter(Child.village_id),
        CategoryFilter(),
        LevelFilter(),
        FileCompleteFilter(),
        ChoiceFilter(Child.gender, "性别", Gender),
        ChoiceFilter(Child.identification_source, "发现来源", IdentificationSource),
        DateBetweenFilter(Child.next_visit_due, "下次走访"),
        DateBetweenFilter(Child.birth_date, "出生日期"),
    )
    column_formatters = {
        "id_number": masked_id,
        "current_level": lambda v, c, m, n: level_badge(m.current_level),
        "categories": lambda v, c, m, n: "、".join(cat.name for cat in m.categories),
    }
    column_details_list = (
        "name",
        "gender",
        "id_number",
        "birth_date",
        "age",
        "village",
        "address",
        "school",
        "grade",
        "categories",
        "disability_kind",
        "disability_grade",
        "identification_source",
        "status",
        "registered_on",
        "current_level",
        "level_assessed_on",
        "next_visit_due",
        "next_assessment_due",
        "file_complete",
        "director",
        "caring_mother",
        "guardian_links",
        "notes",
        "created_at",
        "updated_at",
    )
    column_formatters_detail = {
        **column_formatters,
        "file_complete": lambda v, c, m, n: filing.describe(m),
        "guardian_links": lambda v, c, m, n: Markup("<br>").join(
            Markup("{}（{}）{} {}").format(
                link.guardian.name,
                Relation.label_of(link.relation),
                GuardianStatus.label_of(link.guardian.status),
                "主要监护人" if link.is_primary else "",
            )
            for link in m.guardian_links
        ),
    }
    choice_columns = {
        "gender": Gender,
        "status": ChildStatus,
        "identification_source": IdentificationSource,
    }
    form_columns = (
        "name",
        "id_number",
        "gender",
        "birth_date",
        "village",
        "registered_on",
        "address",
        "school",
        "grade",
        "categories",
        "disability_kind",
        "disability_grade",
        "identification_source",
        "director",
        "caring_mother",
        "notes",
        "guardian_links",
        "transfer_in_from",
        "transfer_in_referral",
    )
    form_choices = {
        "gender": [("", "（按身份证号自动填写）")] + Gender.choices(),
        "identification_source": [("", "（未填）")] + IdentificationSource.choices(),
    }
    form_args = {
        "name": {"description": "最多50个字"},
        "id_number": {"description": "18位，末位可为X；输入时即校验地区码、出生日期与校验位"},
        "birth_date": {"description": "按身份证号自动填写"},
        "registered_on": {
            "description": "儿童纳入名册的日期（统计“在册”用），默认今天；补录时填实际登记日期",
            "default": lambda: clock.today(),
        },
        "gender": {"default": ""},
        "categories": {"description": "可多选"},
        "disability_kind": {"description": "残疾儿童填写，如 视力、听力、肢体、智力、精神"},
        "disability_grade": {"description": "残疾儿童填写，如 一级"},
    }
    form_widget_args = {
        "id_number": {
            "autocomplete": "off",
            "maxlength": 18,
            "inputmode": "numeric",
            "aria-describedby": "id-check",
        }
    }
    create_template = "registry/child_form.html"
    edit_template = "registry/child_form.html"
    staff_pickers = {
        "director": StaffPicker((StaffKind.DIRECTOR,), strict=True, default=True),
        "caring_mother": StaffPicker((StaffKind.CARING_MOTHER,)),
    }
    inline_models = (GuardianLinkInline(),)
    # Registering a child who comes from another town: where from, and the referral (create form only).
    form_extra_fields = {
        "transfer_in_from": StringField(
            "外镇迁入：原所在镇街",
            validators=[Optional()],
            description="从本镇以外迁入的儿童填写，如 重庆市涪陵区某某镇；本镇新发现的儿童不填",
        ),
        "transfer_in_referral": TextAreaField(
            "外镇迁入：转介情况",
            validators=[Optional()],
            description="对方转介函的函号、出具单位和主要情况；转介函扫描件可在保存后上传到“证件与照片”",
        ),
    }
    extra_write_endpoints = frozenset({"archive_view"})
    uniqueness_checked_by_view = ("id_number",)
    allow_delete = False

    # Categories by a second small query: joining the many-to-many into the paged query makes SQLite
    # materialise the whole link table.
    column_auto_select_related = False
    column_select_related_list = (Child.village,)

    def get_query(self):
        return super().get_query().filter(Child.archived_at.is_(None)).options(selectinload(Child.categories))

    def get_count_query(self):
        if current_scope() is None and not _narrowed():
            # The whole register: all children less the archived ones. SQLite counts the first from
            # its smallest index and the second from a few index entries (3 ms at 100,000 children),
            # where ``WHERE archived_at IS NULL`` walks an index entry per child (50 ms).
            total = select(func.count()).select_from(Child).scalar_subquery()
            archived = select(func.count()).select_from(Child).where(Child.archived_at.is_not(None))
            return self.session.query(total - archived.scalar_subquery())
        return super().get_count_query().filter(Child.archived_at.is_(None))

    def create_form(self, obj=None):
        form = super().create_form(obj)
        if request.method == "GET" and not form.guardian_links.entries:
            form.guardian_links.append_entry()  # one guardian block open: nearly every child has one
        return form

    @expose("/id-check/")
    def id_check_view(self):
        """What the form says while a 身份证号 is typed (services.register.read_id_number)."""
        return jsonify(
            read_id_number(
                request.args.get("id_number", "")[:40],
                clock.today(),
                child_id=request.args.get("child", type=int),
                village_ids=current_scope(),
            )
        )

    def scaffold_form(self):
        form_class = super().scaffold_form()
        # Birth date and gender may be left blank: they follow the ID number (checked against it).
        form_class.birth_date.kwargs["validators"] = [Optional()]
        form_class.gender.kwargs["validators"] = [Optional()]
        form_class.registered_on.kwargs["validators"] = [Optional()]
        return form_class

    def validate_form(self, form):
        ok = super().validate_form(form)
        if request.method != "POST" or not hasattr(form, "id_number"):
            return ok
        _check(form, "name", clean_name)
        errors = {}
        if not form.id_number.errors:
            errors = check_child_identity(
                form.id_number.data,
                form.birth_date.data,
                form.gender.data or None,
                child_id=arg_id(),
                village_ids=current_scope(),
            )
            if "id_number" not in errors:
                form.id_number.data = clean_id_number(form.id_number.data)
        if not form.registered_on.errors:
            try:
                check_registered_on(form.registered_on.data, form.birth_date.data, clock.today())
            except InvalidInput as bad:
                errors["registered_on"] = str(bad)
        return _field_errors(form, errors) and ok and not any(f.errors for f in form)

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        for name in self.form_extra_fields:
            if hasattr(form, name):
                delattr(form, name)
        return form

    def on_model_change(self, form, model, is_created):
        fill_from_id_number(model)
        if is_created and model.director is None:
            model.director_id = village_director_id(db.session, model.village.id)  # the village's 儿童主任
        model.identification_source = model.identification_source or None
        if model.guardian_links and not any(link.is_primary for link in model.guardian_links):
            model.guardian_links[0].is_primary = True
        if is_created and hasattr(form, "transfer_in_from"):
            transfers.record_in(model, form.transfer_in_from.data, form.transfer_in_referral.data)

    def handle_view_exception(self, exc):
        if isinstance(exc, InvalidInput):
            flash(str(exc), "error")
            return True
        return super().handle_view_exception(exc)

    @property
    def column_extra_row_actions(self):
        from flask_admin.model.template import EndpointLinkRowAction

        actions = []
        if can_dossier() and "dossier.index" in current_app.view_functions:
            actions.append(EndpointLinkRowAction("fa fa-folder-open", "dossier.index", title="一人一档"))
        if can_read(current_role(), "assessments"):
            actions.append(
                EndpointLinkRowAction("fa fa-line-chart", "assessment_form.child_history", title="评估与服务")
            )
        if can_read(current_role(), "activities"):
            actions.append(
                EndpointLinkRowAction("fa fa-flag", "participation.index", title="活动参与", id_arg="child")
            )
        if self.may_write:
            actions.append(EndpointLinkRowAction("fa fa-archive", ".archive_view", title="归档"))
        return actions

    @expose("/archive/", methods=("GET", "POST"))
    def archive_view(self):
        child = self.get_one(request.args.get("id"))
        if child is None:
            flash("记录不存在。", "error")
            return redirect(self.get_url(".index_view"))
        error = None
        if request.method == "POST":
            try:
                done = archive_child(
                    child,
                    request.form.get("status", ""),
                    request.form.get("reason", ""),
                    now=clock.now(),
                    user_id=current_user.id,
                )
            except (InvalidInput, ValueError) as bad:
                error = str(bad) if isinstance(bad, InvalidInput) else "请选择归档原因类别"
            else:
                db.session.commit()
                flash(
                    f"已归档：{child.name}。{archive_summary(done.measures_cancelled, done.alerts_closed)}"
                    "可在“已归档儿童”中恢复。",
                    "success",
                )
                return redirect(self.get_url(".index_view"))
        return self.render(
            "registry/archive.html",
            child=child,
            statuses=[(s.value, s.label) for s in ARCHIVE_STATUSES],
            error=error,
            form_values=request.form,
        )

    @expose("/reveal/", methods=("POST",))
    @returns_json
    def reveal_view(self):
        """The full ID number for roles that may see it; every reveal is logged."""
        if not may_reveal_id(current_role()):
            return jsonify(error="无权查看完整身份证号"), 403
        # Archived children too: the dossier of an archived child offers the same button.
        child_id = arg_id()
        child = scoped_query(Child).filter(Child.id == child_id).one_or_none() if child_id else None
        if child is None:
            return jsonify(error="记录不存在"), 404
        audit.record(db.session, "reveal", table="child", record_id=child.id, summary=child.name)
        db.session.commit()
        return jsonify(id_number=child.id_number)


def archive_summary(measures: int, alerts: int) -> str:
    """What an archive cancelled and closed, in words ("" when nothing)."""
    parts = []
    if measures:
        parts.append(f"取消了 {measures} 项计划中的赋能措施")
    if alerts:
        parts.append(f"撤销了 {alerts} 条未办结预警")
    return ("、".join(parts) + "（记录保留）。") if parts else ""


def can_dossier() -> bool:
    from services.permissions import can_read

    return can_read(current_role(), "dossier")


class ArchivedChildView(ChildSearch, ScopedModelView):
    """Archived children: nothing is lost, a clerk can restore; only an admin can hard-delete."""

    area = "archive"
    menu_category = MENU_REGISTER
    column_list = ("name", "gender", "id_number", "village", "status", "archive_reason", "archived_at")
    column_labels = LABELS
    column_formatters = {"id_number": masked_id}
    column_searchable_list = ("name",)
    column_filters = (VillageFilter(Child.village_id), ChoiceFilter(Child.status, "状态", ChildStatus))
    column_default_sort = ("archived_at", True)
    choice_columns = {
        "gender": Gender,
        "status": ChildStatus,
        "identification_source": IdentificationSource,
        "current_level": Level,
    }
    allow_create = False
    allow_edit = False
    extra_write_endpoints = frozenset({"restore_view"})

    @property
    def can_delete(self):
        return current_role() == "admin"

    def get_query(self):
        return super().get_query().filter(Child.archived_at.is_not(None))

    def get_count_query(self):
        return super().get_count_query().filter(Child.archived_at.is_not(None))

    @property
    def column_extra_row_actions(self):
        from flask_admin.model.template import EndpointLinkRowAction

        if not self.may_write:
            return []
        return [EndpointLinkRowAction("fa fa-undo", ".restore_view", title="恢复")]

    @expose("/restore/", methods=("GET", "POST"))
    def restore_view(self):
        child = self.get_one(request.args.get("id"))
        if child is None:
            flash("记录不存在。", "error")
            return redirect(self.get_url(".index_view"))
        archived = last_archive(child.id)
        if request.method == "POST":
            try:
                restore_child(child, now=clock.now(), user_id=current_user.id)
            except InvalidInput as bad:
                flash(str(bad), "error")
            else:
                db.session.commit()
                flash(f"已恢复：{child.name}", "success")
                if archived is not None and (archived.measures_cancelled or archived.alerts_closed):
                    flash(
                        f"归档时{archive_summary(archived.measures_cancelled, archived.alerts_closed)}"
                        "恢复后不会自动恢复，请按需重新安排措施；如仍有风险，请重新发起预警。",
                        "warning",
                    )
                return redirect(url_for("child.index_view"))
        return self.render("registry/restore.html", child=child, archived=archived)

    def delete_model(self, model):
        if current_role() != "admin":
            flash("只有系统管理员可以彻底删除", "error")
            return False
        try:
            db.session.delete(model)
            db.session.commit()
        except Exception:
            db.session.rollback()
            flash("该儿童仍有评估、走访等关联记录，不能彻底删除；请保留归档。", "error")
            return False
        return True


class GuardianView(ScopedModelView):
    area = "guardians"
    menu_category = MENU_REGISTER
    column_list = ("name", "phone", "id_number", "status", "low_income", "village", "child_links")
    column_labels = {**LABELS, "child_links": "监护的儿童", "status": "监护状态"}
    column_searchable_list = ("name", "phone")
    column_default_sort = ("id", True)
    uniqueness_checked_by_view = ("id_number",)
    column_filters = (
        VillageFilter(Guardian.village_id),
        ChoiceFilter(Guardian.status, "监护状态", GuardianStatus),
        FilterEqual(Guardian.low_income, "低保/低收入", options=[("1", "是"), ("0", "否")]),
    )
    column_formatters = {
        "id_number": masked_id,
        "child_links": lambda v, c, m, n: "、".join(
            f"{link.child.name}（{Relation.label_of(link.relation)}）" for link in m.child_links
        ),
    }
    choice_columns = {"status": GuardianStatus, "gender": Gender}
    form_columns = (
        "name",
        "gender",
        "id_number",
        "phone",
        "status",
        "low_income",
        "village",
        "address",
        "notes",
    )
    form_choices = {"gender": [("", "（未填）")] + Gender.choices()}
    form_args = {
        "status": {"label": "监护状态", "description": "改为服刑/失联/死亡/重病时，系统会提示重新评估"}
    }
    column_extra_row_actions = [
        RowLink("fa fa-flag", "participation.index", title="活动参与", id_arg="guardian")
    ]
    allow_delete = False

    def validate_form(self, form):
        ok = super().validate_form(form)
        if request.method != "POST" or not hasattr(form, "name"):
            return ok
        _check(form, "name", clean_name)
        _check(form, "phone", clean_phone)
        if form.id_number.data:
            _check(form, "id_number", clean_id_number)
            if not form.id_number.errors:
                other = db.session.scalar(
                    db.select(Guardian.id).where(
                        Guardian.id_number == form.id_number.data,
                        Guardian.id != (arg_id() or 0),
                    )
                )
                if other:
                    form.id_number.errors = list(form.id_number.errors) + [
                        "该身份证号的监护人已登记，请在儿童表单中直接选择"
                    ]
        else:
            form.id_number.data = None
        return ok and not any(f.errors for f in form)

    def update_model(self, form, model):
        old_status = model.status
        ok = super().update_model(form, model)
        if ok and old_status != model.status:
            note_guardian_status(model, old_status, clock.today())
            db.session.commit()
        return ok

    def on_model_change(self, form, model, is_created):
        model.gender = model.gender or None


def register(admin):
    admin.add_view(ChildView(Child, name="儿童名册", endpoint="child"))
    admin.add_link(TaskLink("登记儿童", "child.create_view", "children", MENU_REGISTER))
    admin.add_view(GuardianView(Guardian, name="监护人", endpoint="guardian"))
    admin.add_view(ArchivedChildView(Child, name="已归档儿童", endpoint="child_archive"))
    admin.add_view(VillageView(Village, name="村（社区）", endpoint="village"))
    admin.add_view(StaffView(Staff, name="工作人员", endpoint="staff"))
