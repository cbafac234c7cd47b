"""The plan's own process (work plan 四, 五): 领导小组, 督查与整改, 反馈意见, 政策宣传, 长效机制, 典型案例
and the 验收材料包. Views are declarations; the rules are in services/inspections.py, feedback.py,
case_studies.py, leading_group.py and acceptance_pack.py.
"""

from __future__ import annotations

import datetime as dt
import io

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask_admin import expose
from flask_admin.contrib.sqla.filters import DateBetweenFilter, FilterEqual
from flask_admin.model.form import InlineFormAdmin
from flask_login import current_user
from markupsafe import Markup
from wtforms import DateField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import Optional

from choices import (
    ACTIVITY_ITEMS,
    SATISFACTION,
    CaseStudyStatus,
    FeedbackChannel,
    FeedbackItem,
    FeedbackSource,
    InspectionArea,
    InspectionLevel,
    InspectionMethod,
    LeadingGroupRole,
    PublicityForm,
    RectificationSource,
    RectificationStatus,
)
from models import (
    Activity,
    Case,
    CaseStudy,
    Feedback,
    Inspection,
    LeadingGroupMeeting,
    LeadingGroupMember,
    PublicityEvent,
    Rectification,
    User,
    db,
)
from services import (
    acceptance_pack,
    audit,
    case_studies,
    clock,
    documents,
    feedback,
    indicators,
    inspections,
    leading_group,
    publicity,
)
from services.validation import InvalidInput
from services.xlsx_export import XLSX_MIMETYPE
from views.base import (
    ChoiceFilter,
    ScopedModelView,
    SecureView,
    VillageFilter,
    current_role,
    current_scope,
    scoped_query,
)
from views.labels import LABELS

MENU_GROUP = "组织与督查"
MENU_ACCEPT = "宣传与验收"

STATUS_BADGE = {"open": "secondary", "in_progress": "primary", "done": "success"}

PROCESS_LABELS = {
    **LABELS,
    "post": "职务",
    "department": "单位/部门",
    "group_role": "组内职务",
    "duties": "职责分工",
    "staff": "关联工作人员",
    "sort_order": "排序",
    "active": "在任",
    "held_on": "日期",
    "title": "名称/议题",
    "place": "地点",
    "attendees": "出席成员",
    "other_attendees": "列席人员",
    "decisions": "会议决定",
    "level": "督查级别",
    "inspected_on": "督查日期",
    "inspectors": "督查人员",
    "villages": "督查村（社区）",
    "areas": "督查内容",
    "methods": "督查方式",
    "summary": "总体情况",
    "rectifications": "发现的问题",
    "source": "来源",
    "inspection": "所属督查",
    "area": "问题方面",
    "finding": "发现的问题",
    "requirement": "整改要求",
    "found_on": "发现日期",
    "owner": "整改责任人",
    "deadline": "整改期限",
    "status": "整改状态",
    "completed_on": "完成日期",
    "completion_note": "整改情况",
    "reviewed_by": "复核人",
    "reviewed_at": "复核时间",
    "review_note": "复核意见",
    "finding_count": "问题数",
    "done_count": "已整改",
}


def _town_name() -> str:
    from app import setting

    return setting("town_name", current_app.config.get("TOWN_NAME", "")) or ""


def _now() -> dt.datetime:
    return clock.now().replace(microsecond=0)


def _add_errors(form, errors: dict[str, str]) -> bool:
    """Put service messages next to their fields; False when there were any."""
    for name, message in errors.items():
        field = getattr(form, name, None)
        if field is None:
            flash(message, "error")
        else:
            field.errors = list(field.errors or []) + [message]
    return not errors


def _labels(choice, values) -> str:
    return "、".join(choice.label_of(v) for v in values or [])


def _xlsx(content: bytes | io.IOBase, name: str):
    data = io.BytesIO(content) if isinstance(content, bytes) else content
    return send_file(data, mimetype=XLSX_MIMETYPE, as_attachment=True, download_name=name)


# --------------------------------------------------------------------------- 领导小组


class LeadingGroupMemberView(ScopedModelView):
    area = "leading_group"
    menu_category = MENU_GROUP
    column_list = ("group_role", "name", "post", "department", "duties", "phone", "active")
    column_labels = PROCESS_LABELS
    column_default_sort = [("sort_order", False), ("id", False)]
    column_sortable_list = ("name", "sort_order")
    column_searchable_list = ("name", "post", "department")
    column_filters = (
        ChoiceFilter(LeadingGroupMember.group_role, "组内职务", LeadingGroupRole),
        FilterEqual(LeadingGroupMember.active, "在任", options=[("1", "是"), ("0", "否")]),
    )
    choice_columns = {"group_role": LeadingGroupRole}
    form_columns = (
        "name",
        "post",
        "department",
        "group_role",
        "duties",
        "phone",
        "staff",
        "sort_order",
        "active",
    )
    form_overrides = {"duties": TextAreaField}
    form_args = {
        "post": {"description": "如：镇党委副书记、镇长；民生服务办主任；云岭村党支部书记"},
        "department": {"description": "如：镇人民政府、民生服务办、平安法治办、罗云小学、镇卫生院、云岭村"},
        "duties": {"description": "本人在领导小组中的职责分工"},
        "staff": {"description": "本人同时是项目工作人员时可关联（多数成员不是）"},
        "sort_order": {"description": "同一职务内的排列顺序，小的在前", "default": 0},
        "active": {"default": True},
    }
    form_widget_args = {"duties": {"rows": 3}}
    column_formatters = {"duties": lambda v, c, m, n: (m.duties or "")[:60]}

    def list_extra_links(self):
        return [
            ("打印名单", url_for("leadinggroup_print.index")),
            ("导出名单（Excel）", url_for("leadinggroup_print.xlsx")),
        ]

    def on_model_change(self, form, model, is_created):
        errors = leading_group.check_member(model)
        if errors:
            raise InvalidInput(next(iter(errors.values())))

    def validate_form(self, form):
        ok = super().validate_form(form)
        if request.method != "POST" or not hasattr(form, "name"):
            return ok
        probe = LeadingGroupMember(
            name=form.name.data,
            post=form.post.data,
            department=form.department.data,
            group_role=form.group_role.data,
            duties=form.duties.data,
            phone=form.phone.data,
        )
        errors = leading_group.check_member(probe)
        return _add_errors(form, errors) and ok


class LeadingGroupMeetingView(ScopedModelView):
    area = "leading_group"
    menu_category = MENU_GROUP
    details_template = "process/meeting_details.html"
    column_list = ("held_on", "title", "place", "attendees", "decisions")
    column_labels = {**PROCESS_LABELS, "title": "会议名称/议题", "held_on": "会议日期"}
    column_default_sort = ("held_on", True)
    column_searchable_list = ("title", "decisions")
    column_filters = (DateBetweenFilter(LeadingGroupMeeting.held_on, "会议日期"),)
    column_formatters = {
        "attendees": lambda v, c, m, n: "、".join(a.name for a in m.attendees),
        "decisions": lambda v, c, m, n: (m.decisions or "")[:60],
    }
    form_columns = ("held_on", "title", "place", "attendees", "other_attendees", "decisions")
    form_overrides = {"held_on": DateField, "decisions": TextAreaField}
    form_args = {
        "held_on": {"default": lambda: clock.today()},
        "title": {"description": "如：困境儿童监护赋能关爱服务工作领导小组第一次会议"},
        "attendees": {"description": "出席会议的领导小组成员"},
        "other_attendees": {"description": "列席的其他人员（可不填）"},
        "decisions": {"description": "会议研究决定的事项；会议纪要扫描件在保存后上传"},
    }
    form_widget_args = {"decisions": {"rows": 5}}

    def validate_form(self, form):
        ok = super().validate_form(form)
        if request.method != "POST" or not hasattr(form, "held_on"):
            return ok
        probe = LeadingGroupMeeting(held_on=form.held_on.data, title=form.title.data)
        return _add_errors(form, leading_group.check_meeting(probe, clock.today())) and ok

    def on_model_change(self, form, model, is_created):
        if is_created:
            model.recorded_by_id = current_user.id


class LeadingGroupPrintView(SecureView):
    """The printable list of the leading group (HTML print layout and the xlsx of the same)."""

    area = "leading_group"

    @expose("/")
    def index(self):
        members = leading_group.members()
        return self.render(
            "process/leading_group_print.html",
            members=members,
            role_label=LeadingGroupRole.label_of,
            meetings=leading_group.meetings(dt.date(clock.today().year, 1, 1), clock.today()),
            today=clock.today(),
        )

    @expose("/list.xlsx")
    def xlsx(self):
        content = documents.leading_group_book(town=_town_name(), today=clock.today())
        audit.record(db.session, "export", table="leading_group_member", summary="导出领导小组名单")
        db.session.commit()
        return _xlsx(content, "领导小组名单.xlsx")


# --------------------------------------------------------------------------- 督查与整改


def _owner_query():
    return inspections.owner_candidates()


def _owner_label(user: User) -> str:
    from choices import Role

    where = f" · {user.village.name}" if user.village else ""
    return f"{user}（{Role.label_of(user.role)}{where}）"


class RectificationInline(InlineFormAdmin):
    """A finding typed into the inspection's form: it becomes a rectification when the form is saved."""

    form_columns = ("id", "area", "village", "finding", "requirement", "owner", "deadline")
    form_label = "发现的问题"
    column_labels = {
        "area": "问题方面",
        "village": "村（社区）",
        "finding": "发现的问题",
        "requirement": "整改要求",
        "owner": "整改责任人",
        "deadline": "整改期限",
    }
    form_overrides = {"deadline": DateField, "finding": TextAreaField, "requirement": TextAreaField}
    form_choices = {"area": InspectionArea.choices()}
    form_args = {
        "village": {"description": "问题属于某村（社区）时选择；镇级问题不选"},
        "owner": {"query_factory": _owner_query, "get_label": _owner_label, "allow_blank": True},
        "deadline": {"validators": [Optional()]},
        "finding": {"validators": [Optional()]},
    }
    form_widget_args = {"finding": {"rows": 2}, "requirement": {"rows": 2}}

    def __init__(self):
        super().__init__(Rectification)


class InspectionView(ScopedModelView):
    area = "inspections"
    menu_category = MENU_GROUP
    details_template = "process/inspection_details.html"
    column_list = ("inspected_on", "level", "inspectors", "villages", "areas", "finding_count", "done_count")
    column_labels = PROCESS_LABELS
    column_default_sort = ("inspected_on", True)
    column_sortable_list = ("inspected_on", "level")
    column_searchable_list = ("inspectors", "summary")
    column_filters = (
        ChoiceFilter(Inspection.level, "督查级别", InspectionLevel),
        DateBetweenFilter(Inspection.inspected_on, "督查日期"),
    )
    choice_columns = {"level": InspectionLevel}
    column_formatters = {
        "villages": lambda v, c, m, n: "、".join(x.name for x in m.villages) or "全镇",
        "areas": lambda v, c, m, n: _labels(InspectionArea, m.areas),
        "methods": lambda v, c, m, n: _labels(InspectionMethod, m.methods),
        "finding_count": lambda v, c, m, n: len(m.rectifications),
        "done_count": lambda v, c, m, n: sum(1 for r in m.rectifications if r.status == inspections.DONE),
    }
    column_details_list = ("inspected_on", "level", "inspectors", "villages", "areas", "methods", "summary")
    form_columns = (
        "level",
        "inspected_on",
        "inspectors",
        "villages",
        "areas",
        "methods",
        "summary",
        "rectifications",
    )
    form_overrides = {
        "inspected_on": DateField,
        "areas": SelectMultipleField,
        "methods": SelectMultipleField,
        "summary": TextAreaField,
        "inspectors": StringField,
    }
    form_args = {
        "inspected_on": {"default": lambda: clock.today()},
        "inspectors": {"description": "如：区民政局 王某、李某；镇民生服务办 张某"},
        "villages": {"description": "督查到的村（社区）；全镇性督查可不选"},
        "areas": {"choices": InspectionArea.choices(), "description": "可多选"},
        "methods": {
            "choices": InspectionMethod.choices(),
            "description": "可多选",
            "validators": [Optional()],
        },
        "summary": {"description": "督查的总体情况；每个问题在下方“发现的问题”中逐条登记"},
    }
    form_widget_args = {
        "areas": {"data-role": "select2"},
        "methods": {"data-role": "select2"},
        "summary": {"rows": 4},
    }
    inline_models = (RectificationInline(),)
    allow_delete = False

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        # Findings already registered are changed on their own page (they may be under way).
        del form.rectifications
        return form

    def validate_form(self, form):
        ok = super().validate_form(form)
        if request.method != "POST" or not hasattr(form, "level"):
            return ok
        probe = Inspection(
            level=form.level.data,
            inspected_on=form.inspected_on.data,
            inspectors=form.inspectors.data,
            areas=form.areas.data,
            methods=form.methods.data,
        )
        good = _add_errors(form, inspections.check_inspection(probe, clock.today()))
        for entry in getattr(form, "rectifications", None) or []:
            if form.rectifications.should_delete(entry):
                continue
            sub = entry.form
            if not any((sub.finding.data, sub.owner.data, sub.deadline.data, sub.requirement.data)):
                continue  # an empty row left on the form
            rect = Rectification(
                finding=sub.finding.data,
                area=sub.area.data,
                village_id=sub.village.data.id if sub.village.data else None,
                owner=sub.owner.data,
                deadline=sub.deadline.data,
                found_on=form.inspected_on.data,
            )
            good = _add_errors(sub, inspections.check_rectification(rect)) and good
        if not good:
            flash("请按提示修改后再保存。", "error")
        return ok and good

    def on_model_change(self, form, model, is_created):
        now = _now()
        if is_created:
            model.recorded_by_id = current_user.id
        # Empty inline rows are dropped; new findings start 待整改 on the inspection's date.
        for rect in list(model.rectifications):
            if rect.id is None and not (rect.finding or "").strip():
                model.rectifications.remove(rect)
                db.session.expunge(rect) if rect in db.session else None
                continue
            if rect.id is None:
                rect.source = RectificationSource.INSPECTION.value
                rect.found_on = model.inspected_on
                rect.status = inspections.OPEN
                inspections.record_creation(rect, current_user.id, now)
            rect.found_on = rect.found_on or model.inspected_on

    def render(self, template, **kwargs):
        if template == self.details_template and kwargs.get("model") is not None:
            kwargs.update(self._details_context(kwargs["model"]))
        return super().render(template, **kwargs)

    def _details_context(self, inspection):
        from services.scoping import in_scope

        scope = current_scope()
        visible = [r for r in inspection.rectifications if in_scope(r, scope)]
        return {
            "rects": visible,
            "hidden_count": len(inspection.rectifications) - len(visible),
            "level_label": InspectionLevel.label_of(inspection.level),
            "area_labels": _labels(InspectionArea, inspection.areas),
            "method_labels": _labels(InspectionMethod, inspection.methods),
            "status_text": lambda r: inspections.status_text(r, clock.today()),
            "area_label": InspectionArea.label_of,
            "badge": STATUS_BADGE,
            "may_add": inspections.is_manager(current_role()),
        }


class OverdueRectFilter(FilterEqual):
    def __init__(self):
        super().__init__(Rectification.deadline, "逾期", options=[("1", "逾期未整改")])

    def apply(self, query, value, alias=None):
        return query.filter(inspections.overdue_clause(clock.today()))

    def validate(self, value):
        return value == "1"


class MineRectFilter(FilterEqual):
    def __init__(self):
        super().__init__(Rectification.owner_id, "责任人", options=[("me", "我负责的")])

    def apply(self, query, value, alias=None):
        return query.filter(Rectification.owner_id == current_user.id)

    def validate(self, value):
        return value == "me"


class ReviewRectFilter(FilterEqual):
    def __init__(self):
        super().__init__(Rectification.reviewed_at, "复核", options=[("0", "待复核"), ("1", "已复核")])

    def apply(self, query, value, alias=None):
        if value == "1":
            return query.filter(Rectification.reviewed_at.is_not(None))
        return query.filter(Rectification.status == inspections.DONE, Rectification.reviewed_at.is_(None))

    def validate(self, value):
        return value in ("0", "1")


def _status_cell(view, context, model, name):
    text = inspections.status_text(model, clock.today())
    badge = (
        "danger" if inspections.is_overdue(model, clock.today()) else STATUS_BADGE.get(model.status, "light")
    )
    return Markup('<span class="badge badge-{}">{}</span>').format(badge, text)


class RectificationView(ScopedModelView):
    """整改台账: every finding with its owner, deadline and status; the life cycle on the details page.

    CRUD is for the town's managers (area ``inspections``); an owner's steps (start, progress, 已整改)
    are the POST endpoints below, allowed by services/inspections.py to the owner or a manager."""

    area = "inspections"
    menu_category = MENU_GROUP
    details_template = "process/rectification_details.html"
    extra_write_endpoints = frozenset({"from_finding"})
    column_list = ("id", "found_on", "source", "area", "village", "finding", "owner", "deadline", "status")
    column_labels = {**PROCESS_LABELS, "id": "编号", "village": "村（社区）"}
    column_default_sort = ("id", True)
    column_sortable_list = ("id", "found_on", "deadline", "status")
    column_searchable_list = ("finding",)
    column_filters = (
        ChoiceFilter(Rectification.status, "整改状态", RectificationStatus),
        OverdueRectFilter(),
        ReviewRectFilter(),
        MineRectFilter(),
        ChoiceFilter(Rectification.area, "问题方面", InspectionArea),
        ChoiceFilter(Rectification.source, "来源", RectificationSource),
        VillageFilter(Rectification.village_id),
        DateBetweenFilter(Rectification.deadline, "整改期限"),
    )
    choice_columns = {"area": InspectionArea, "source": RectificationSource}
    column_formatters = {
        "status": _status_cell,
        "village": lambda v, c, m, n: m.village.name if m.village else "镇级",
        "finding": lambda v, c, m, n: (m.finding or "")[:50] + ("…" if len(m.finding or "") > 50 else ""),
    }
    form_columns = (
        "inspection",
        "area",
        "village",
        "finding",
        "requirement",
        "found_on",
        "owner",
        "deadline",
    )
    form_overrides = {
        "found_on": DateField,
        "deadline": DateField,
        "finding": TextAreaField,
        "requirement": TextAreaField,
    }
    form_args = {
        "inspection": {"description": "问题来自哪次督查（在督查记录中登记的问题会自动关联）"},
        "village": {"description": "问题属于某村（社区）时选择；镇级问题不选"},
        "found_on": {"default": lambda: clock.today()},
        "owner": {"query_factory": _owner_query, "get_label": _owner_label},
        "deadline": {"description": "逾期未整改的问题在工作台和台账中标为“逾期”"},
    }
    form_widget_args = {"finding": {"rows": 3}, "requirement": {"rows": 2}}
    allow_delete = False

    def list_extra_links(self):
        return [("导出整改台账", url_for(".ledger_view"))]

    def get_query(self):
        return (
            super()
            .get_query()
            .options(db.joinedload(Rectification.owner), db.joinedload(Rectification.village))
        )

    def validate_form(self, form):
        ok = super().validate_form(form)
        if request.method != "POST" or not hasattr(form, "finding"):
            return ok
        rect = Rectification(
            finding=form.finding.data,
            area=form.area.data,
            village_id=form.village.data.id if form.village.data else None,
            owner=form.owner.data,
            deadline=form.deadline.data,
            found_on=form.found_on.data,
        )
        errors = inspections.check_rectification(rect)
        if form.found_on.data and form.found_on.data > clock.today():
            errors["found_on"] = "发现日期不能晚于今天"
        return _add_errors(form, errors) and ok

    def scaffold_form(self):
        form_class = super().scaffold_form()
        form_class.area.kwargs["choices"] = InspectionArea.choices()
        return form_class

    def on_model_change(self, form, model, is_created):
        if is_created:
            model.source = RectificationSource.INSPECTION.value
            model.status = inspections.OPEN
            inspections.record_creation(model, current_user.id, _now())

    def create_form(self, obj=None):
        form = super().create_form(obj)
        inspection_id = request.args.get("inspection", type=int)
        if request.method == "GET" and inspection_id:
            found = self._scoped_inspection(inspection_id)
            if found is not None:
                form.inspection.data = found
                form.found_on.data = found.inspected_on
        return form

    def _scoped_inspection(self, inspection_id):
        from views.base import scoped_query

        return scoped_query(Inspection).filter(Inspection.id == inspection_id).one_or_none()

    # --- details and the life cycle --------------------------------------------------------

    def render(self, template, **kwargs):
        if template == self.details_template and kwargs.get("model") is not None:
            rect = kwargs["model"]
            today = clock.today()
            role = current_role()
            kwargs.update(
                status_text=inspections.status_text(rect, today),
                overdue=inspections.is_overdue(rect, today),
                badge=STATUS_BADGE,
                area_label=InspectionArea.label_of(rect.area),
                source_label=RectificationSource.label_of(rect.source),
                step_labels=inspections.STEP_LABELS,
                may_report=inspections.may_report(role, current_user.id, rect),
                may_sign_off=inspections.may_sign_off(role, current_user.id, rect),
                evidence=self._evidence(rect),
            )
        return super().render(template, **kwargs)

    def _evidence(self, rect):
        return inspections.evidence(rect)

    def _writable(self) -> Rectification:
        rect = self.get_one(request.args.get("id"))
        if rect is None:
            abort(404)
        return rect

    def _back(self, rect, message=None):
        if message:
            db.session.commit()
            flash(message, "success")
        return redirect(self.get_url(".details_view", id=rect.id))

    def _step(self, rect, action, message):
        try:
            action()
        except InvalidInput as bad:
            db.session.rollback()
            flash(str(bad), "error")
            return self._back(rect)
        return self._back(rect, message)

    @expose("/start/", methods=("POST",))
    def start_view(self):
        rect = self._writable()
        return self._step(
            rect,
            lambda: inspections.start(
                rect, role=current_role(), user_id=current_user.id, now=_now(), note=request.form.get("note")
            ),
            "已开始整改",
        )

    @expose("/progress/", methods=("POST",))
    def progress_view(self):
        rect = self._writable()
        return self._step(
            rect,
            lambda: inspections.add_progress(
                rect, request.form.get("note", ""), role=current_role(), user_id=current_user.id, now=_now()
            ),
            "已记录整改进展",
        )

    @expose("/done/", methods=("POST",))
    def done_view(self):
        rect = self._writable()
        return self._step(
            rect,
            lambda: inspections.mark_done(
                rect,
                request.form.get("note", ""),
                evidence_count=len(self._evidence(rect)),
                role=current_role(),
                user_id=current_user.id,
                now=_now(),
            ),
            "已标记为已整改，等待复核",
        )

    @expose("/sign-off/", methods=("POST",))
    def sign_off_view(self):
        rect = self._writable()
        return self._step(
            rect,
            lambda: inspections.sign_off(
                rect, role=current_role(), user_id=current_user.id, now=_now(), note=request.form.get("note")
            ),
            "复核通过",
        )

    @expose("/send-back/", methods=("POST",))
    def send_back_view(self):
        rect = self._writable()
        return self._step(
            rect,
            lambda: inspections.send_back(
                rect, request.form.get("note", ""), role=current_role(), user_id=current_user.id, now=_now()
            ),
            "已退回，责任人需继续整改",
        )

    @expose("/from-finding/", methods=("POST",))
    def from_finding(self):
        """资金使用检查 → 整改 in one step: a town-level rectification of the finding, owned by the user."""
        form = request.form
        key = (form.get("rule", ""), form.get("target", ""), form.get("target_id", type=int))
        try:
            rect, created = inspections.from_fund_finding(
                key, owner_id=current_user.id, user_id=current_user.id, now=_now()
            )
            db.session.commit()
        except InvalidInput as bad:
            db.session.rollback()
            flash(str(bad), "error")
            return redirect(url_for("fundcheck.index"))
        flash("已转为整改事项，请确认责任人和整改期限。" if created else "该问题已有整改事项。", "success")
        return redirect(self.get_url(".details_view", id=rect.id))

    @expose("/ledger.xlsx")
    def ledger_view(self):
        today = clock.today()
        start = _date_arg("start") or dt.date(today.year, 1, 1)
        end = _date_arg("end") or dt.date(today.year, 12, 31)
        content = documents.rectification_book(current_scope(), start, end, town=_town_name(), today=today)
        audit.record(
            db.session, "export", table="rectification", summary=f"导出督查与整改台账（{start}至{end}）"
        )
        db.session.commit()
        return _xlsx(content, "督查与整改台账.xlsx")


def _date_arg(name: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


# --------------------------------------------------------------------------- 反馈意见


SCORE_CHOICES = [("", "未评价")] + [(str(n), f"{n}分 {SATISFACTION[n]}") for n in (5, 4, 3, 2, 1)]


def _score_cell(view, context, model, name):
    score = (model.scores or {}).get(FeedbackItem.OVERALL.value)
    return f"{score}分" if score else ""


class FeedbackView(ScopedModelView):
    """反馈意见 typed in by staff from paper; the anonymous answers of the activity links are listed
    here too, read-only."""

    area = "feedback"
    menu_category = MENU_ACCEPT
    column_list = ("received_on", "source_kind", "unit", "village", "channel", "overall", "suggestions")
    column_labels = {
        **PROCESS_LABELS,
        "received_on": "收到日期",
        "source_kind": "来源",
        "unit": "单位",
        "village": "村（社区）",
        "channel": "方式",
        "overall": "总体满意度",
        "suggestions": "意见建议",
        "activity": "相关活动",
    }
    column_default_sort = ("received_on", True)
    column_sortable_list = ("received_on", "source_kind")
    column_searchable_list = ("unit", "suggestions")
    column_filters = (
        ChoiceFilter(Feedback.source_kind, "来源", FeedbackSource),
        ChoiceFilter(Feedback.channel, "方式", FeedbackChannel),
        VillageFilter(Feedback.village_id),
        DateBetweenFilter(Feedback.received_on, "收到日期"),
    )
    choice_columns = {"source_kind": FeedbackSource, "channel": FeedbackChannel}
    column_formatters = {
        "overall": _score_cell,
        "suggestions": lambda v, c, m, n: (m.suggestions or "")[:60],
        "unit": lambda v, c, m, n: feedback.unit_of(m),
    }
    column_details_list = (
        "received_on",
        "source_kind",
        "unit",
        "village",
        "activity",
        "channel",
        "scores",
        "suggestions",
    )
    column_formatters_detail = {
        "scores": lambda v, c, m, n: Markup("<br>").join(
            f"{FeedbackItem.label_of(k)}：{s}分（{SATISFACTION.get(s, '')}）"
            for k, s in (m.scores or {}).items()
        ),
        "activity": lambda v, c, m, n: m.activity.title if m.activity else "",
    }
    form_columns = ("source_kind", "unit", "village", "activity", "received_on", "suggestions")
    form_overrides = {"received_on": DateField, "suggestions": TextAreaField, "unit": StringField}
    form_args = {
        "unit": {"description": "学校名称、村（社区）名称；家庭可不填（不要填写姓名）"},
        "village": {"description": "意见涉及的村（社区）；村（社区）账号须选择本村"},
        "activity": {"description": "针对某次活动的反馈可选择活动"},
        "received_on": {"default": lambda: clock.today()},
        "suggestions": {"description": f"意见和建议（不超过{feedback.SUGGESTION_MAX}字）"},
    }
    form_widget_args = {"suggestions": {"rows": 4, "maxlength": feedback.SUGGESTION_MAX}}

    def list_extra_links(self):
        return [("反馈意见汇总", url_for("feedbacksummary.index"))]

    def scaffold_form(self):
        form_class = super().scaffold_form()
        form_class.source_kind.kwargs["choices"] = FeedbackSource.choices()
        for item in FeedbackItem:
            setattr(
                form_class,
                f"score_{item.value}",
                SelectField(f"满意度：{item.label}", choices=SCORE_CHOICES, default=""),
            )
        return form_class

    @property
    def form_rules(self):
        return [
            "source_kind",
            "unit",
            "village",
            "activity",
            "received_on",
            *(f"score_{item.value}" for item in FeedbackItem),
            "suggestions",
        ]

    @property
    def form_edit_rules(self):
        # Only a create form carries the one-time token (an edit is guarded by its version).
        return [rule for rule in self.form_rules if rule != "form_once"]

    def _scores(self, form) -> dict:
        return {f"score_{i.value}": getattr(form, f"score_{i.value}").data for i in FeedbackItem}

    def on_form_prefill(self, form, id):
        super().on_form_prefill(form, id)
        model = self.get_one(id)
        for item, score in (model.scores or {}).items() if model else []:
            field = getattr(form, f"score_{item}", None)
            if field is not None:
                field.data = str(score)

    def validate_form(self, form):
        ok = super().validate_form(form)
        if request.method != "POST" or not hasattr(form, "source_kind"):
            return ok
        errors = {}
        try:
            scores = feedback.parse_scores(self._scores(form))
        except InvalidInput as bad:
            errors["score_overall"] = str(bad)
            scores = {1: 1}  # keeps check_feedback from saying it twice
        probe = Feedback(
            source_kind=form.source_kind.data,
            unit=form.unit.data,
            received_on=form.received_on.data,
            scores=scores,
            suggestions=form.suggestions.data,
        )
        errors.update(feedback.check_feedback(probe, clock.today()))
        if current_scope() is not None and not form.village.data:
            errors["village"] = "请选择本村（社区）"
        return _add_errors(form, errors) and ok

    def on_model_change(self, form, model, is_created):
        model.scores = feedback.parse_scores(self._scores(form))
        feedback.raise_first(feedback.check_feedback(model, clock.today()))
        if is_created:
            model.channel = FeedbackChannel.PAPER.value
            model.recorded_by_id = current_user.id

    def update_model(self, form, model):
        if model.channel == FeedbackChannel.QR.value:
            flash("扫码匿名提交的反馈不能修改（可删除明显无效的内容）。", "error")
            return False
        return super().update_model(form, model)


class FeedbackSummaryView(SecureView):
    """反馈意见汇总 for a phase (or a year, or any dates): averages per item and source, count, suggestions."""

    area = "feedback"

    def _period(self):
        return _period_choice()

    @expose("/")
    def index(self):
        choice = self._period()
        result = feedback.summary(current_scope(), choice["start"], choice["end"])
        return self.render(
            "process/feedback_summary.html",
            c=choice,
            s=result,
            items=list(FeedbackItem),
            sources=list(FeedbackSource),
            channel_label=FeedbackChannel.label_of,
            phases=_phase_choices(),
        )

    @expose("/summary.xlsx")
    def xlsx(self):
        choice = self._period()
        content = documents.feedback_book(
            current_scope(), choice["start"], choice["end"], town=_town_name(), title=choice["title"]
        )
        audit.record(db.session, "export", table="feedback", summary=f"导出反馈意见汇总（{choice['title']}）")
        db.session.commit()
        return _xlsx(content, f"反馈意见汇总-{choice['start']:%Y%m%d}-{choice['end']:%Y%m%d}.xlsx")


def _phase_choices():
    from services.reports import PHASES

    return [(key, name) for key, (name, _, _) in PHASES.items()]


def _period_choice(default_phase: str | None = None) -> dict:
    """A period from the request: ?year=&phase= (a plan phase, or "year"), or ?start=&end=."""
    from services.reports import PHASES, phase_period

    today = clock.today()
    year = request.args.get("year", type=int) or today.year
    year = min(max(year, 2000), today.year + 1)
    start, end = _date_arg("start"), _date_arg("end")
    if start and end and start <= end:
        return {
            "year": year,
            "phase": "custom",
            "start": start,
            "end": end,
            "title": f"{start:%Y-%m-%d}至{end:%Y-%m-%d}",
        }
    phase = request.args.get("phase") or default_phase or _current_phase(today)
    if phase in PHASES:
        period = phase_period(year, phase)
        return {"year": year, "phase": phase, "start": period.start, "end": period.end, "title": period.title}
    return {
        "year": year,
        "phase": "year",
        "start": dt.date(year, 1, 1),
        "end": dt.date(year, 12, 31),
        "title": f"{year}年全年",
    }


def _current_phase(today: dt.date) -> str:
    from services.reports import PHASES

    current = [key for key, (_, first, last) in PHASES.items() if first <= today.month <= last]
    return current[-1] if current else "year"


class FeedbackLinkView(SecureView):
    """An activity's anonymous feedback link as a QR code to print or show on a screen."""

    area = "feedback"
    extra_write_endpoints = frozenset({"create"})

    def is_visible(self):
        return False

    def _activity(self):
        from views.base import scoped_query

        found = (
            scoped_query(Activity).filter(Activity.id == request.args.get("activity", type=int)).one_or_none()
        )
        if found is None:
            abort(404)
        return found

    @expose("/")
    def index(self):
        activity = self._activity()
        link = feedback.link_of(activity)
        return self.render(
            "process/feedback_link.html",
            activity=activity,
            link=link,
            url=_public_url(link) if link else None,
            closes_on=feedback.closes_on(activity),
            is_open=feedback.is_open(activity, clock.today()),
            count=db.session.scalar(
                db.select(db.func.count()).where(
                    Feedback.activity_id == activity.id, Feedback.channel == FeedbackChannel.QR.value
                )
            ),
            may_write=self.may_write,
        )

    @expose("/create/", methods=("POST",))
    def create(self):
        activity = self._activity()
        feedback.ensure_link(activity, current_user.id)
        db.session.commit()
        flash("已生成反馈二维码", "success")
        return redirect(url_for(".index", activity=activity.id))

    @expose("/qr.png")
    def qr(self):
        activity = self._activity()
        link = feedback.link_of(activity)
        if link is None:
            abort(404)
        import segno

        out = io.BytesIO()
        segno.make(_public_url(link), error="m").save(out, kind="png", scale=10, border=3)
        response = send_file(io.BytesIO(out.getvalue()), mimetype="image/png")
        response.headers["Cache-Control"] = "no-store"
        return response


def _public_url(link) -> str:
    """The address parents' phones open: the town's public address when set (系统设置), else this host."""
    from app import setting

    base = (setting("public_base_url") or "").strip().rstrip("/")
    path = url_for("public_feedback.form", token=link.token)
    return base + path if base else url_for("public_feedback.form", token=link.token, _external=True)


# --------------------------------------------------------------------------- 政策宣传 and 长效机制


class PublicityView(ScopedModelView):
    area = "publicity"
    menu_category = MENU_ACCEPT
    details_template = "process/publicity_details.html"
    edit_template = "process/publicity_edit.html"
    column_list = ("held_on", "form", "title", "place", "village", "audience_count", "organiser")
    column_labels = {
        **PROCESS_LABELS,
        "held_on": "宣传日期",
        "form": "宣传形式",
        "title": "宣传主题",
        "village": "村（社区）",
        "audience_count": "受众人数",
        "organiser": "组织单位",
        "materials": "宣传资料",
        "content": "宣传内容",
    }
    column_default_sort = ("held_on", True)
    column_sortable_list = ("held_on", "form", "audience_count")
    column_searchable_list = ("title", "place", "content")
    column_filters = (
        ChoiceFilter(PublicityEvent.form, "宣传形式", PublicityForm),
        VillageFilter(PublicityEvent.village_id),
        DateBetweenFilter(PublicityEvent.held_on, "宣传日期"),
    )
    choice_columns = {"form": PublicityForm}
    column_formatters = {"village": lambda v, c, m, n: m.village.name if m.village else "全镇"}
    form_columns = (
        "held_on",
        "form",
        "title",
        "place",
        "village",
        "organiser",
        "audience_count",
        "materials",
        "content",
    )
    form_overrides = {
        "held_on": DateField,
        "materials": TextAreaField,
        "content": TextAreaField,
        "place": StringField,
    }
    form_args = {
        "held_on": {"default": lambda: clock.today()},
        "title": {"description": "如：困境儿童福利政策集中宣讲"},
        "village": {"description": "在某村（社区）开展时选择；全镇性的宣传不选"},
        "audience_count": {"description": "到场或入户人数；新媒体推送填阅读或送达人数", "default": 0},
        "materials": {"description": "发放的资料名称与份数，如：政策明白卡200份"},
        "content": {"description": "宣传内容；现场照片在保存后上传"},
    }
    form_widget_args = {"materials": {"rows": 2}, "content": {"rows": 3}}

    def list_extra_links(self):
        return [("长效机制统计", url_for("mechanisms.index"))]

    def validate_form(self, form):
        ok = super().validate_form(form)
        if request.method != "POST" or not hasattr(form, "held_on"):
            return ok
        probe = PublicityEvent(
            held_on=form.held_on.data,
            title=form.title.data,
            form=form.form.data,
            audience_count=form.audience_count.data,
            materials=form.materials.data,
            content=form.content.data,
        )
        errors = publicity.check_event(probe, clock.today())
        if current_scope() is not None and not form.village.data:
            errors["village"] = "请选择本村（社区）；全镇性的宣传由镇级经办人登记"
        return _add_errors(form, errors) and ok

    def on_model_change(self, form, model, is_created):
        publicity.raise_first(publicity.check_event(model, clock.today()))
        if is_created:
            model.recorded_by_id = current_user.id


class MechanismView(SecureView):
    """长效机制: 强制报告, 快速介入, 多元联动, 政策宣传 counted per phase of the plan year, in the user's scope."""

    area = "reports"

    @expose("/")
    def index(self):
        today = clock.today()
        year = request.args.get("year", type=int) or today.year
        year = min(max(year, 2000), today.year + 1)
        rows = publicity.mechanism_table(year, current_scope())
        keys = publicity.MECHANISM_KEYS
        return self.render(
            "process/mechanisms.html",
            year=year,
            years=range(today.year + 1, 2019, -1),
            rows=rows,
            indicators=[indicators.get(k) for k in keys],
            keys=keys,
        )


# --------------------------------------------------------------------------- 典型案例

DOCX_MIMETYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
STUDY_BADGE = {"draft": "secondary", "submitted": "warning", "approved": "success"}


class CaseStudyView(ScopedModelView):
    """典型案例: drafted from a closed case (anonymised), edited while a draft, submitted, approved by a
    supervisor other than the author, then downloaded as .docx. Rules: services/case_studies.py."""

    area = "case_studies"
    menu_category = MENU_ACCEPT
    allow_create = False  # a write-up starts from a closed case (draft_view), never from a blank form
    details_template = "process/case_study_details.html"
    create_endpoints = frozenset({"draft_view"})
    extra_write_endpoints = frozenset({"draft_view", "submit_view", "approve_view", "send_back_view"})
    column_list = ("title", "status", "drafted_at", "submitted_at", "reviewed_by", "reviewed_at")
    column_labels = {
        **PROCESS_LABELS,
        "title": "标题",
        "status": "状态",
        "drafted_at": "起草时间",
        "submitted_at": "提交时间",
        "reviewed_by": "审核人",
        "reviewed_at": "审核时间",
        "background": "一、基本情况",
        "assessment": "二、评估情况",
        "intervention": "三、介入服务",
        "outcome": "四、服务成效",
        "experience": "五、经验启示",
    }
    column_default_sort = ("drafted_at", True)
    column_searchable_list = ("title",)
    column_filters = (ChoiceFilter(CaseStudy.status, "状态", CaseStudyStatus),)
    choice_columns = {"status": CaseStudyStatus}
    form_columns = ("title", "background", "assessment", "intervention", "outcome", "experience")
    form_overrides = {key: TextAreaField for key in case_studies.SECTION_KEYS}
    form_widget_args = {key: {"rows": 6} for key in case_studies.SECTION_KEYS}
    form_args = {"title": {"description": "不得出现儿童、监护人姓名和村名；儿童称“小X”，村称“X村”"}}

    def list_extra_links(self):
        if not self.may_write:
            return []
        return [("从结案个案起草", self.get_url(".draft_view"))]

    def validate_form(self, form):
        ok = super().validate_form(form)
        if request.method != "POST" or not hasattr(form, "background"):
            return ok
        study = self.get_one(request.args.get("id"))
        if study is None:
            return ok
        if not case_studies.may_edit(study):
            flash("已提交审核或已审核的案例不能修改；如需修改请由审核人退回", "error")
            return False
        values = {name: getattr(form, name).data or "" for name in self.form_columns}
        return _add_errors(form, case_studies.check_texts(study, values)) and ok

    def on_model_change(self, form, model, is_created):
        if not case_studies.may_edit(model):
            raise InvalidInput("已提交审核或已审核的案例不能修改")

    def render(self, template, **kwargs):
        if template == self.details_template and kwargs.get("model") is not None:
            study = kwargs["model"]
            kwargs.update(
                sections=[(label, getattr(study, key)) for key, label in case_studies.SECTIONS],
                status_label=CaseStudyStatus.label_of(study.status),
                badge=STUDY_BADGE,
                may_write=self.may_write,
                may_review=case_studies.may_review(current_role(), current_user.id, study),
                photo_count=len(study.photo_ids or []),
            )
        return super().render(template, **kwargs)

    def _study(self) -> CaseStudy:
        study = self.get_one(request.args.get("id"))
        if study is None:
            abort(404)
        return study

    def _step(self, study, action, message):
        try:
            action()
        except InvalidInput as bad:
            db.session.rollback()
            flash(str(bad), "error")
            return redirect(self.get_url(".details_view", id=study.id))
        db.session.commit()
        flash(message, "success")
        return redirect(self.get_url(".details_view", id=study.id))

    @expose("/draft/", methods=("GET", "POST"))
    def draft_view(self):
        """Closed cases in the user's villages without a write-up; POST drafts one from the chosen case."""
        if request.method == "POST":
            case_id = request.form.get("case_id", type=int)
            case = scoped_query(Case).filter(Case.id == case_id).one_or_none() if case_id else None
            if case is None:
                flash("请选择一个已结案的个案", "error")
                return redirect(self.get_url(".draft_view"))
            try:
                study = case_studies.draft(case, user_id=current_user.id, now=_now())
            except InvalidInput as bad:
                db.session.rollback()
                flash(str(bad), "error")
                return redirect(self.get_url(".draft_view"))
            db.session.commit()
            flash("已根据个案记录起草并自动匿名化，请修改完善后提交审核。", "success")
            return redirect(self.get_url(".edit_view", id=study.id))
        cases = case_studies.closed_cases_without_study(scoped_query(Case))
        return self.render("process/case_study_draft.html", cases=cases)

    @expose("/submit/", methods=("POST",))
    def submit_view(self):
        study = self._study()
        return self._step(
            study,
            lambda: case_studies.submit(study, user_id=current_user.id, now=_now()),
            "已提交，等待督导审核",
        )

    @expose("/approve/", methods=("POST",))
    def approve_view(self):
        study = self._study()
        return self._step(
            study,
            lambda: case_studies.approve(
                study, role=current_role(), user_id=current_user.id, now=_now(), note=request.form.get("note")
            ),
            "已审核通过，可以下载Word文档",
        )

    @expose("/send-back/", methods=("POST",))
    def send_back_view(self):
        study = self._study()
        return self._step(
            study,
            lambda: case_studies.send_back(
                study, role=current_role(), user_id=current_user.id, note=request.form.get("note")
            ),
            "已退回起草人修改",
        )

    @expose("/case-study.docx")
    def docx_view(self):
        study = self._study()
        if study.status != CaseStudyStatus.APPROVED.value:
            flash("典型案例审核通过后才能下载Word文档", "error")
            return redirect(self.get_url(".details_view", id=study.id))
        content = case_studies.docx_bytes(study, town=_town_name())
        audit.record(
            db.session, "export", table="case_study", record_id=study.id, summary="下载典型案例Word文档"
        )
        db.session.commit()
        return send_file(
            io.BytesIO(content),
            mimetype=DOCX_MIMETYPE,
            as_attachment=True,
            download_name=case_studies.docx_name(study),
        )


# --------------------------------------------------------------------------- 验收材料包


class AcceptancePackView(SecureView):
    """验收材料包: one ZIP for a period and the whole town (services/acceptance_pack.py), streamed."""

    area = "acceptance"

    def _choice(self):
        today = clock.today()
        year = request.args.get("year", type=int) or today.year
        year = min(max(year, 2000), today.year + 1)
        period = request.args.get("period", "")
        if period not in acceptance_pack.PERIODS:
            period = acceptance_pack.YEAR
        return year, period

    @expose("/")
    def index(self):
        year, period = self._choice()
        today = clock.today()
        pack = acceptance_pack.plan(
            year, period, town=_town_name(), now=_now(), generated_by=str(current_user)
        )
        folders = [
            (acceptance_pack.folder_name(key), what, pack.count(key))
            for key, _, what in acceptance_pack.FOLDERS
        ]
        return self.render(
            "process/acceptance_pack.html",
            year=year,
            period=period,
            periods=acceptance_pack.PERIODS,
            years=range(today.year + 1, 2019, -1),
            pack=pack,
            folders=folders,
        )

    @expose("/pack.zip")
    def download(self):
        year, period = self._choice()
        pack = acceptance_pack.plan(
            year, period, town=_town_name(), now=_now(), generated_by=str(current_user)
        )
        audit.record(
            db.session,
            "export",
            table="acceptance_pack",
            summary=f"下载验收材料包（{pack.title}，全镇）：{len(pack.entries)}个文件",
        )
        db.session.commit()
        response = current_app.response_class(
            stream_with_context(acceptance_pack.stream(pack)), mimetype="application/zip"
        )
        name = f"{_town_name()}{pack.title}{acceptance_pack.FILENAME}"
        from urllib.parse import quote

        response.headers["Content-Disposition"] = (
            f"attachment; filename=acceptance-pack.zip; filename*=UTF-8''{quote(name)}"
        )
        return response


def register(admin):
    admin.add_view(LeadingGroupMemberView(LeadingGroupMember, name="领导小组成员", endpoint="leadinggroup"))
    admin.add_view(
        LeadingGroupMeetingView(LeadingGroupMeeting, name="领导小组会议", endpoint="leadingmeeting")
    )
    admin.add_view(
        LeadingGroupPrintView(
            name="领导小组名单（打印）",
            endpoint="leadinggroup_print",
            url="/admin/leading-group-list",
            category=MENU_GROUP,
        )
    )
    admin.add_view(InspectionView(Inspection, name="督查记录", endpoint="inspection"))
    admin.add_view(RectificationView(Rectification, name="整改台账", endpoint="rectification"))
    admin.add_view(FeedbackView(Feedback, name="反馈意见", endpoint="feedback"))
    admin.add_view(
        FeedbackSummaryView(
            name="反馈意见汇总",
            endpoint="feedbacksummary",
            url="/admin/feedback-summary",
            category=MENU_ACCEPT,
        )
    )
    admin.add_view(
        FeedbackLinkView(name="活动反馈二维码", endpoint="feedbacklink", url="/admin/feedback-link")
    )
    admin.add_view(PublicityView(PublicityEvent, name="政策宣传", endpoint="publicity"))
    admin.add_view(CaseStudyView(CaseStudy, name="典型案例", endpoint="casestudy"))
    admin.add_view(
        AcceptancePackView(
            name="验收材料包", endpoint="acceptancepack", url="/admin/acceptance-pack", category=MENU_ACCEPT
        )
    )
    admin.add_view(
        MechanismView(
            name="长效机制统计", endpoint="mechanisms", url="/admin/mechanisms", category=MENU_ACCEPT
        )
    )


def init_app(app):
    app.register_blueprint(public_feedback)


# --------------------------------------------------------------------------- the anonymous form

public_feedback = Blueprint("public_feedback", __name__)


@public_feedback.route("/feedback/<token>", methods=("GET", "POST"))
def form(token):
    """What a parent's phone opens from the QR code: no login, nothing personal asked. Answers are
    plain text (escaped on every page), rate-limited, and refused once the link has closed."""
    link = feedback.find_link(token)
    if link is None:
        return render_template("process/feedback_public.html", missing=True), 404
    activity = link.activity
    today = clock.today()
    context = {
        "activity": activity,
        "items": [i for i in FeedbackItem if i in ACTIVITY_ITEMS],
        "scores": SCORE_CHOICES[1:],
        "closes_on": feedback.closes_on(activity),
        "limit": feedback.SUGGESTION_MAX,
        "town": _town_name(),
        "typed": {},
    }
    if not feedback.is_open(activity, today):
        return render_template("process/feedback_public.html", closed=True, **context), 410
    if request.method == "POST":
        try:
            feedback.submit_anonymous(
                link,
                request.form.to_dict(),
                address=request.remote_addr,
                secret=current_app.config["SECRET_KEY"],
                now=clock.now(),
            )
        except feedback.RateLimited as limited:
            db.session.rollback()
            return render_template("process/feedback_public.html", error=str(limited), **context), 429
        except InvalidInput as bad:
            db.session.rollback()
            context["typed"] = request.form.to_dict()
            return render_template("process/feedback_public.html", error=str(bad), **context), 400
        db.session.commit()
        return render_template("process/feedback_public.html", thanks=True, **context)
    return render_template("process/feedback_public.html", **context)
