"""Cases (个案): CRUD, the stage buttons, track records, conferences (会商) and the case board."""

from __future__ import annotations

import datetime as dt

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.sqla.filters import DateBetweenFilter
from flask_login import current_user
from markupsafe import Markup
from wtforms import DateField

from choices import CaseStage, CaseType, Department
from models import Case, Child, Staff, db
from services import cases as case_service
from services import clock
from services.validation import InvalidInput
from views.base import Card, ChoiceFilter, ScopedModelView, SecureView, current_scope, village_options
from views.labels import LABELS
from views.supervision import CHILD_LOOKUP, ChildVillageFilter

MENU = "个案管理"

STAGE_BADGE = {
    "identify": "secondary",
    "assess": "info",
    "intervene": "warning",
    "track": "primary",
    "closed": "success",
}

CASE_LABELS = {
    **LABELS,
    "id": "个案编号",
    "child": "儿童",
    "child.village": "村（社区）",
    "case_type": "个案类型",
    "opened_on": "立案日期",
    "reported_to_bureau_on": "上报区民政局日期",
    "stage": "阶段",
    "stage_changed_at": "进入本阶段时间",
    "plan_goals": "帮扶目标",
    "plan_measures": "帮扶措施",
    "professional": "“一对一”负责专业人员",
    "closure_reason": "结案原因",
    "closing_evaluation": "结案评估",
    "closed_on": "结案日期",
}


def _now() -> dt.datetime:
    return clock.now().replace(microsecond=0)


def stage_badge(stage: str) -> Markup:
    return Markup('<span class="badge badge-{}">{}</span>').format(
        STAGE_BADGE.get(stage, "light"), CaseStage.label_of(stage)
    )


def _reported_cell(view, context, model, name):
    if model.reported_to_bureau_on:
        return model.reported_to_bureau_on.isoformat()
    return Markup('<span class="badge badge-danger">未上报</span>')


class CaseView(ScopedModelView):
    area = "cases"
    menu_category = MENU
    details_template = "cases/case_details.html"
    column_list = (
        "id",
        "child",
        "child.village",
        "case_type",
        "stage",
        "opened_on",
        "reported_to_bureau_on",
        "professional",
        "stage_changed_at",
    )
    column_labels = CASE_LABELS
    card = Card(
        title="child",
        village=("child", "village"),
        level=("child", "current_level"),
        facts=("stage", "case_type"),
    )
    column_default_sort = ("id", True)
    column_sortable_list = ("id", "opened_on", "stage_changed_at")
    column_filters = (
        ChildVillageFilter(Case),
        ChoiceFilter(Case.stage, "阶段", CaseStage),
        ChoiceFilter(Case.case_type, "个案类型", CaseType),
        DateBetweenFilter(Case.opened_on, "立案日期"),
    )
    column_formatters = {
        "stage": lambda v, c, m, n: stage_badge(m.stage),
        "reported_to_bureau_on": _reported_cell,
        "stage_changed_at": lambda v, c, m, n: m.stage_changed_at.strftime("%Y-%m-%d %H:%M"),
    }
    choice_columns = {"case_type": CaseType}
    form_columns = (
        "child",
        "case_type",
        "opened_on",
        "reported_to_bureau_on",
        "professional",
        "plan_goals",
        "plan_measures",
    )
    form_overrides = {"opened_on": DateField, "reported_to_bureau_on": DateField}
    form_ajax_refs = {"child": CHILD_LOOKUP}
    form_args = {
        "opened_on": {"default": lambda: clock.today()},
        "reported_to_bureau_on": {"description": "立案后3日内须上报区民政局；未上报会生成预警"},
        "plan_goals": {"description": "个性化帮扶方案：进入「介入」阶段前必填"},
        "plan_measures": {"description": "个性化帮扶方案：进入「介入」阶段前必填"},
        "professional": {"description": "提供“一对一”服务的社工或专业人员；进入「介入」前必填"},
    }
    form_widget_args = {"plan_goals": {"rows": 3}, "plan_measures": {"rows": 4}}
    allow_delete = False

    def get_query(self):
        return super().get_query().options(db.joinedload(Case.child).joinedload(Child.village))

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        del form.child
        return form

    def validate_form(self, form):
        ok = super().validate_form(form)
        if request.method != "POST" or not hasattr(form, "case_type"):
            return ok
        today = clock.today()
        if form.opened_on.data and form.opened_on.data > today:
            form.opened_on.errors = list(form.opened_on.errors or []) + ["立案日期不能晚于今天"]
        reported = form.reported_to_bureau_on.data
        if reported and form.opened_on.data and reported < form.opened_on.data:
            form.reported_to_bureau_on.errors = list(form.reported_to_bureau_on.errors or []) + [
                "上报日期不能早于立案日期"
            ]
        if reported and reported > today:
            form.reported_to_bureau_on.errors = list(form.reported_to_bureau_on.errors or []) + [
                "上报日期不能晚于今天"
            ]
        if getattr(form, "child", None) is not None and not form.child.data:
            form.child.errors = list(form.child.errors or []) + ["请选择儿童"]
        return ok and not any(f.errors for f in form)

    def on_model_change(self, form, model, is_created):
        if is_created:
            model.opened_by_id = current_user.id
            case_service.record_opening(model, user_id=current_user.id, now=_now())

    def render(self, template, **kwargs):
        if template == self.details_template and kwargs.get("model") is not None:
            case = kwargs["model"]
            kwargs.update(
                stages=case_service.ORDER,
                stage_badge=stage_badge,
                event_labels=case_service.EVENT_LABELS,
                departments=Department.choices(),
                department_label=Department.label_of,
                stage_label=CaseStage.label_of,
                type_label=CaseType.label_of(case.case_type),
                plan_missing=case_service.plan_missing(case),
                may_write=self.may_write,
                today=clock.today().isoformat(),
            )
        return super().render(template, **kwargs)

    def _writable_case(self) -> Case:
        if not self.may_write:
            abort(403)
        case = self.get_one(request.args.get("id"))
        if case is None:
            abort(404)
        return case

    def _done(self, case, message=None):
        if message:
            db.session.commit()
            flash(message, "success")
        return redirect(self.get_url(".details_view", id=case.id))

    @expose("/move/", methods=("POST",))
    def move_view(self):
        case = self._writable_case()
        form = request.form
        try:
            target = CaseStage(form.get("to_stage", ""))
        except ValueError:
            flash("请选择目标阶段", "error")
            return self._done(case)
        try:
            case_service.move_stage(
                case,
                target,
                user_id=current_user.id,
                now=_now(),
                note=form.get("note"),
                closing_evaluation=form.get("closing_evaluation"),
                closure_reason=form.get("closure_reason"),
            )
        except InvalidInput as bad:
            db.session.rollback()
            flash(str(bad), "error")
            return self._done(case)
        return self._done(case, f"个案已进入「{target.label}」阶段")

    @expose("/track/", methods=("POST",))
    def track_view(self):
        case = self._writable_case()
        try:
            case_service.add_track_record(
                case, request.form.get("note", ""), user_id=current_user.id, now=_now()
            )
        except InvalidInput as bad:
            flash(str(bad), "error")
            return self._done(case)
        return self._done(case, "已添加跟踪记录")

    @expose("/reopen/", methods=("POST",))
    def reopen_view(self):
        case = self._writable_case()
        try:
            case_service.reopen(case, request.form.get("reason", ""), user_id=current_user.id, now=_now())
        except InvalidInput as bad:
            db.session.rollback()
            flash(str(bad), "error")
            return self._done(case)
        return self._done(case, "个案已重新开启，回到「介入」阶段")

    @expose("/conference/", methods=("POST",))
    def conference_view(self):
        case = self._writable_case()
        form = request.form
        try:
            held_on = dt.date.fromisoformat(form.get("held_on", "")) if form.get("held_on") else None
        except ValueError:
            held_on = None
        try:
            case_service.add_conference(
                case,
                held_on=held_on,
                departments=form.getlist("departments"),
                attendees=form.get("attendees"),
                decisions=form.get("decisions"),
                today=clock.today(),
            )
        except InvalidInput as bad:
            flash(str(bad), "error")
            return self._done(case)
        return self._done(case, "已记录会商")


class CaseBoardView(SecureView):
    """个案看板: one column per stage, the cases waiting longest on top; scoped to the user."""

    area = "cases"

    @expose("/")
    def index(self):
        columns = case_service.board(current_scope())
        professionals = {
            s.id: s.name
            for s in db.session.scalars(
                db.select(Staff).where(
                    Staff.id.in_(
                        {row.professional_id for col in columns.values() for row in col["cases"]} - {None}
                    )
                )
            )
        }
        return self.render(
            "cases/board.html",
            columns=columns,
            professionals=professionals,
            type_label=CaseType.label_of,
            villages=dict(village_options()),
            details_url=url_for("case.details_view"),
            type_labels=dict(CaseType.choices()),
            now=_now(),
        )


def register(admin):
    admin.add_view(
        CaseBoardView(name="个案看板", endpoint="caseboard", url="/admin/caseboard", category=MENU)
    )
    admin.add_view(CaseView(Case, name="个案", endpoint="case"))
