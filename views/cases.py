"""Cases (个案): the case page with its stage control, 需求评估, 帮扶方案, 会商, 服务记录 and 跟进记录,
and the case board. Every rule lives in services/cases.py; these views read forms and show pages."""

from __future__ import annotations

import datetime as dt

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.sqla.filters import DateBetweenFilter
from flask_login import current_user
from markupsafe import Markup
from wtforms import DateField

from choices import (
    CaseStage,
    CaseType,
    ClosureReason,
    Department,
    FollowUpMethod,
    Level,
    MeasureSource,
    NeedDomain,
    RiskRating,
    StaffKind,
)
from models import Case, CaseTypeRule, Child, Staff, db
from services import cases as case_service
from services import clock
from services.validation import InvalidInput
from views.base import (
    Card,
    ChoiceFilter,
    ScopedModelView,
    SecureView,
    current_scope,
    level_badge,
    village_options,
)
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
    "professional": "“一对一”负责专业人员",
    "closure_reason": "结案原因",
    "closing_evaluation": "结案评估",
    "closed_on": "结案日期",
    "conference_required": "进入「介入」前须召开会商",
}
# Blank rows the plan page offers for new measures, and the conference page for its 分工.
NEW_MEASURE_ROWS = 3
ACTION_ROWS = 3


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


def _date(value) -> dt.date | None:
    try:
        return dt.date.fromisoformat((value or "").strip()) if (value or "").strip() else None
    except ValueError:
        return None


def _int(value) -> int | None:
    try:
        return int((value or "").strip())
    except (TypeError, ValueError, AttributeError):
        return None


def staff_label(staff: Staff, me: int | None = None) -> str:
    """张三（社工 · 镇级）: the name with the kind and the village, as every staff picker shows it."""
    where = staff.village.name if staff.village_id and staff.village else "镇级"
    mine = " · 本人" if me is not None and staff.id == me else ""
    return f"{staff.name}（{StaffKind.label_of(staff.kind)} · {where}{mine}）"


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
    # The plan, the 需求评估 and the records have pages of their own (linked from the case page).
    form_columns = ("child", "case_type", "opened_on", "reported_to_bureau_on")
    form_overrides = {"opened_on": DateField, "reported_to_bureau_on": DateField}
    form_ajax_refs = {"child": CHILD_LOOKUP}
    form_args = {
        "opened_on": {"default": lambda: clock.today()},
        "reported_to_bureau_on": {"description": "立案后3日内须上报区民政局；未上报会生成预警"},
    }
    allow_delete = False
    extra_write_endpoints = frozenset(
        {
            "move_view",
            "needs_view",
            "plan_view",
            "conference_view",
            "service_view",
            "follow_up_view",
            "reopen_view",
        }
    )
    create_endpoints = frozenset({"service_view", "follow_up_view", "conference_view"})

    def get_query(self):
        return super().get_query().options(db.joinedload(Case.child).joinedload(Child.village))

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        del form.child
        form.case_being_edited = obj  # the edit rules (services/cases.edit_errors) read its records
        return form

    def get_save_return_url(self, model, is_created=False):
        return self.get_url(".details_view", id=model.id)

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
        case = getattr(form, "case_being_edited", None)
        if case is not None:
            rules = case_service.edit_errors(
                case, case_type=form.case_type.data, opened_on=form.opened_on.data
            )
            for name, message in rules.items():
                field = getattr(form, name)
                field.errors = list(field.errors or []) + [message]
        return ok and not any(f.errors for f in form)

    def on_model_change(self, form, model, is_created):
        if is_created:
            model.opened_by_id = current_user.id
            case_service.record_opening(model, user_id=current_user.id, now=_now())

    def after_model_change(self, form, model, is_created):
        if not is_created:  # a report date entered clears the 未报区民政局 alert now
            from services.alerts import run_rules_for_children

            now = _now()
            run_rules_for_children([model.child_id], now.date(), now)
            db.session.commit()

    # --- the case page -----------------------------------------------------------------------

    def render(self, template, **kwargs):
        if template == self.details_template and kwargs.get("model") is not None and "moves" not in kwargs:
            kwargs.update(self._page_context(kwargs["model"]))
        return super().render(template, **kwargs)

    def _page_context(self, case: Case, posted: dict | None = None, errors: dict | None = None) -> dict:
        case = case_service.load_case(case.id)
        moves = case_service.allowed_moves(case) if case.stage != CaseStage.CLOSED.value else []
        chosen = (posted or {}).get("move", {}).get("to_stage") or (moves[0].value if moves else "")
        return {
            "model": case,
            "stages": case_service.ORDER,
            "moves": moves,
            "chosen_move": chosen,
            "unmet": {m.value: case_service.unmet(case, m) for m in moves},
            "stage_badge": stage_badge,
            "event_labels": case_service.EVENT_LABELS,
            "department_label": Department.label_of,
            "stage_label": CaseStage.label_of,
            "domain_label": NeedDomain.label_of,
            "domains": list(NeedDomain),
            "risk_label": RiskRating.label_of,
            "method_label": FollowUpMethod.label_of,
            "methods": FollowUpMethod.choices(),
            "closure_label": ClosureReason.label_of,
            "closure_reasons": ClosureReason.choices(),
            "source_label": MeasureSource.label_of,
            "level_label": Level.label_of,
            "level_badge": level_badge,
            "type_label": CaseType.label_of(case.case_type),
            "conference_required": case_service.conference_required(case.case_type),
            "plan_missing": case_service.plan_missing(case),
            "needs_missing": case_service.needs_missing(case),
            "working": case.stage in {s.value for s in case_service.WORKING_STAGES},
            "source_alerts": case_service.source_alerts(case.id),
            "may_write": self.may_write,
            "today": clock.today().isoformat(),
            "me": self._my_name(),
            "posted": posted or {},
            "errors": errors or {},
        }

    def _my_name(self) -> str:
        staff = current_user.staff
        return staff.name if staff is not None else str(current_user)

    def _extra_details_args(self) -> dict:
        return {
            "details_columns": self._details_columns,
            "get_value": self.get_detail_value,
            "return_url": self.get_url(".index_view"),
        }

    def _writable_case(self) -> Case:
        if not self.may_write:
            abort(403)
        case = self.get_one(request.args.get("id"))
        if case is None:
            abort(404)
        return case

    def _done(self, case, message):
        db.session.commit()
        flash(message, "success")
        return redirect(self.get_url(".details_view", id=case.id))

    def _refused(self, case, form_name: str, bad: InvalidInput):
        db.session.rollback()
        case = self.get_one(str(case.id))
        context = self._page_context(case, {form_name: request.form}, {form_name: str(bad)})
        return self.render(self.details_template, **context, **self._extra_details_args()), 400

    @expose("/move/", methods=("POST",))
    def move_view(self):
        case = self._writable_case()
        form = request.form
        try:
            target = CaseStage(form.get("to_stage", ""))
        except ValueError:
            return self._refused(case, "move", InvalidInput("请选择目标阶段"))
        try:
            case_service.move_stage(
                case,
                target,
                user_id=current_user.id,
                now=_now(),
                note=form.get("note"),
                closing_evaluation=form.get("closing_evaluation") if target == CaseStage.CLOSED else None,
                closure_reason=form.get("closure_reason") if target == CaseStage.CLOSED else None,
            )
        except InvalidInput as bad:
            return self._refused(case, "move", bad)
        return self._done(case, f"个案已进入「{target.label}」阶段")

    @expose("/service/", methods=("POST",))
    def service_view(self):
        case = self._writable_case()
        form = request.form
        try:
            case_service.add_service(
                case,
                measure_id=_int(form.get("measure_id")),
                delivered_on=_date(form.get("delivered_on")),
                provider=form.get("provider"),
                content=form.get("content"),
                outcome=form.get("outcome"),
                duration_minutes=_int(form.get("duration_minutes")),
                user_id=current_user.id,
                now=_now(),
            )
        except InvalidInput as bad:
            return self._refused(case, "service", bad)
        return self._done(case, "已记录服务")

    @expose("/follow-up/", methods=("POST",))
    def follow_up_view(self):
        case = self._writable_case()
        form = request.form
        try:
            case_service.add_follow_up(
                case,
                followed_on=_date(form.get("followed_on")),
                method=form.get("method"),
                followed_by=form.get("followed_by"),
                change=form.get("change"),
                user_id=current_user.id,
                now=_now(),
            )
        except InvalidInput as bad:
            return self._refused(case, "follow_up", bad)
        return self._done(case, "已添加跟进记录")

    @expose("/reopen/", methods=("POST",))
    def reopen_view(self):
        case = self._writable_case()
        try:
            case_service.reopen(case, request.form.get("reason", ""), user_id=current_user.id, now=_now())
        except InvalidInput as bad:
            return self._refused(case, "reopen", bad)
        return self._done(case, "个案已重新开启，回到「介入」阶段")

    # --- the pages of their own ----------------------------------------------------------------

    @expose("/needs/", methods=("GET", "POST"))
    def needs_view(self):
        case = self._writable_case()
        error = None
        if request.method == "POST":
            form = request.form
            try:
                case_service.save_needs(
                    case,
                    assessed_on=_date(form.get("assessed_on")),
                    problems={d.value: form.get(f"problem_{d.value}", "") for d in NeedDomain},
                    risk_rating=form.get("risk_rating"),
                    risk=form.get("risk"),
                    child_strengths=form.get("child_strengths"),
                    family_strengths=form.get("family_strengths"),
                    user_id=current_user.id,
                    now=_now(),
                )
            except InvalidInput as bad:
                db.session.rollback()
                case = self.get_one(str(case.id))
                error = str(bad)
            else:
                return self._done(case, "需求评估已保存")
            values = request.form
        else:
            values = _needs_values(case)
        assessment = case_service.latest_assessment_by(case.child_id, clock.today())
        return self.render(
            "cases/needs_form.html",
            case=case,
            values=values,
            error=error,
            domains=list(NeedDomain),
            risk_ratings=RiskRating.choices(),
            assessment=assessment,
            level_badge=level_badge,
            type_label=CaseType.label_of(case.case_type),
        ), (400 if error else 200)

    @expose("/plan/", methods=("GET", "POST"))
    def plan_view(self):
        case = self._writable_case()
        me = current_user.staff_id
        candidates = case_service.professional_candidates(
            case.child.village_id, also=[me, case.professional_id]
        )
        error = None
        if request.method == "POST":
            form = request.form
            try:
                case_service.save_plan(
                    case,
                    goals=form.get("plan_goals"),
                    professional_id=_int(form.get("professional_id")),
                    measures=_posted_measures(form),
                    candidates=candidates,
                )
            except InvalidInput as bad:
                db.session.rollback()
                case = self.get_one(str(case.id))
                error = str(bad)
            else:
                return self._done(case, "帮扶方案已保存")
        own = [m for m in case.measures if m.source == MeasureSource.PLAN.value]
        chosen = case.professional_id or (me if me in {s.id for s in candidates} else None)
        if request.method == "POST":
            chosen = _int(request.form.get("professional_id"))
        return self.render(
            "cases/plan_form.html",
            case=case,
            error=error,
            posted=request.form if request.method == "POST" else None,
            own=own,
            decided=[m for m in case.measures if m.source == MeasureSource.CONFERENCE.value],
            new_rows=NEW_MEASURE_ROWS,
            candidates=[(s.id, staff_label(s, me)) for s in candidates],
            chosen=chosen,
            type_label=CaseType.label_of(case.case_type),
        ), (400 if error else 200)

    @expose("/conference/", methods=("GET", "POST"))
    def conference_view(self):
        case = self._writable_case()
        error = None
        if request.method == "POST":
            form = request.form
            actions = [
                case_service.ActionInput(
                    form.get(f"action_who_{i}", ""),
                    form.get(f"action_what_{i}", ""),
                    _date(form.get(f"action_due_{i}")),
                )
                for i in range(_action_rows(form))
            ]
            try:
                case_service.add_conference(
                    case,
                    held_on=_date(form.get("held_on")),
                    departments=form.getlist("departments"),
                    attendees=form.get("attendees"),
                    problem=form.get("problem"),
                    decisions=form.get("decisions"),
                    actions=actions,
                    today=clock.today(),
                    user_id=current_user.id,
                )
            except InvalidInput as bad:
                db.session.rollback()
                case = self.get_one(str(case.id))
                error = str(bad)
            else:
                return self._done(case, "已记录会商，分工已列入帮扶方案")
        return self.render(
            "cases/conference_form.html",
            case=case,
            error=error,
            values=request.form if request.method == "POST" else {"held_on": clock.today().isoformat()},
            rows=_action_rows(request.form) if request.method == "POST" else ACTION_ROWS,
            departments=Department.choices(),
            today_iso=clock.today().isoformat(),
            type_label=CaseType.label_of(case.case_type),
        ), (400 if error else 200)


def _needs_values(case: Case) -> dict:
    needs = case.needs
    if needs is None:
        return {"assessed_on": clock.today().isoformat()}
    values = {
        "assessed_on": needs.assessed_on.isoformat(),
        "risk_rating": needs.risk_rating,
        "risk": needs.risk,
        "child_strengths": needs.child_strengths,
        "family_strengths": needs.family_strengths,
    }
    values.update({f"problem_{k}": v for k, v in (needs.problems or {}).items()})
    return values


def _posted_measures(form) -> list[case_service.MeasureInput]:
    rows = []
    for i in range(_int(form.get("measure_rows")) or 0):
        if i > 200:
            break
        rows.append(
            case_service.MeasureInput(
                id=_int(form.get(f"measure_id_{i}")),
                content=form.get(f"measure_content_{i}", ""),
                responsible=form.get(f"measure_who_{i}", ""),
                due_on=_date(form.get(f"measure_due_{i}")),
                delete=form.get(f"measure_delete_{i}") == "1",
            )
        )
    return rows


def _action_rows(form) -> int:
    return min(max(_int(form.get("action_rows")) or ACTION_ROWS, 1), 30)


class CaseTypeRuleView(ScopedModelView):
    """个案会商规则: per case type, whether a 会商 is required before 介入 (admins edit)."""

    area = "rules"
    menu_category = MENU
    column_list = ("case_type", "conference_required")
    column_labels = CASE_LABELS
    form_columns = ("conference_required",)
    choice_columns = {"case_type": CaseType}
    column_descriptions = {"conference_required": "勾选后，该类个案须记录至少一次会商才能进入「介入」阶段"}
    allow_create = False
    allow_delete = False
    can_view_details = False


class CaseBoardView(SecureView):
    """个案看板: one column per stage, the cases waiting longest on top; scoped to the user."""

    area = "cases"

    @expose("/")
    def index(self):
        search = (request.args.get("q") or "").strip()[:50]
        columns = case_service.board(current_scope(), search=search)
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
            search=search,
        )


def register(admin):
    admin.add_view(
        CaseBoardView(name="个案看板", endpoint="caseboard", url="/admin/caseboard", category=MENU)
    )
    admin.add_view(CaseView(Case, name="个案", endpoint="case"))
    admin.add_view(CaseTypeRuleView(CaseTypeRule, name="个案会商规则", endpoint="casetyperule"))
