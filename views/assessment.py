"""评估与赋能: the assessment form and review, the assessment list, the rule tables,
support services (with the bulk 线上知识推送), a child's level history, and the risk map."""

from __future__ import annotations

import datetime as dt
import json

from flask import abort, current_app, flash, jsonify, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.sqla.filters import DateBetweenFilter, FilterEqual
from flask_admin.model.template import EndpointLinkRowAction
from flask_login import current_user
from markupsafe import Markup
from wtforms.validators import NumberRange, Optional

from choices import (
    LEVEL_COLOURS,
    AssessmentMethod,
    AssessmentStatus,
    Level,
    ServiceKind,
    ServiceStatus,
    StaffKind,
)
from models import (
    Assessment,
    Category,
    Child,
    Indicator,
    IndicatorGroup,
    LevelRule,
    RuleVersion,
    Staff,
    SupportService,
    VetoItem,
    Village,
    db,
)
from services import clock, riskmap
from services.assessment import (
    SCORE_WORDS,
    AssessmentInput,
    AssessmentRefused,
    approve,
    check_level_rules,
    check_service,
    compare_with_previous,
    level_history,
    may_review,
    new_rule_code,
    record_online_push,
    return_assessment,
    rules_snapshot,
    save_assessment,
)
from services.errors import Refused
from services.permissions import can_read, can_write
from services.search import child_search_clause
from services.validation import InvalidInput, parse_id
from views.base import (
    ChoiceFilter,
    ReadOnlyModelView,
    ScopedModelView,
    SecureView,
    VillageFilter,
    arg_id,
    arg_ids,
    current_role,
    current_scope,
    level_badge,
    scoped_query,
    village_options,
)
from views.errors import returns_json
from views.labels import LABELS

MENU_ASSESS = "评估与赋能"
MENU_RULES = "评估规则"

ASSESSMENT_LABELS = {
    **LABELS,
    "assessed_on": "评估日期",
    "total_score": "总分",
    "computed_level": "计算等级",
    "override_level": "调整后等级",
    "override_reason": "调整理由",
    "level": "等级",
    "worsened": "等级恶化",
    "status": "状态",
    "created_by": "填写人",
    "reviewed_by": "审核人",
    "reviewed_at": "审核时间",
    "review_note": "退回意见",
    "next_reassess_on": "下次评估",
    "methods": "评估方式",
    "team": "评估工作组",
    "rule_version": "规则版本",
    "child.village": "村（社区）",
    "tier": "分层",
    "due_on": "应完成日期",
    "delivered_on": "落实日期",
    "cancelled_at": "取消时间",
    "cancel_reason": "取消原因",
    "provider": "服务提供人",
    "duration_minutes": "时长（分钟）",
    "content": "服务内容",
    "outcome": "服务成效",
    "assessment": "来源评估",
    "group": "指标分组",
    "label_3": "3分（良好）",
    "label_2": "2分（一般）",
    "label_1": "1分（较差）",
    "label_0": "0分（严重问题）",
    "min_score": "最低总分",
    "visit_days": "走访间隔（天）",
    "reassess_days": "复评间隔（天）",
    "measure_days": "分层措施期限（天）",
    "fingerprint": "指纹",
    "snapshot": "规则内容",
    "indicators": "指标",
}


class ChildVillageFilter(VillageFilter):
    """Village of a row that belongs to a child (assessments, services)."""

    def __init__(self, model):
        super().__init__(model.child_id)
        self.model = model

    def apply(self, query, value, alias=None):
        return query.filter(
            self.model.child_id.in_(db.select(Child.id).where(Child.village_id == int(value)))
        )


def _level_formatter(view, context, model, name):
    return level_badge(getattr(model, name))


def _child_link(view, context, model, name):
    child = model.child
    return Markup('<a href="{}">{}</a>').format(
        url_for("assessment_form.child_history", id=child.id), child.name
    )


# --------------------------------------------------------------------------- assessments list


class AssessmentView(ReadOnlyModelView):
    area = "assessments"
    menu_category = MENU_ASSESS
    column_details_list = (
        "child",
        "assessed_on",
        "methods",
        "team",
        "total_score",
        "computed_level",
        "override_level",
        "override_reason",
        "level",
        "worsened",
        "status",
        "created_by",
        "reviewed_by",
        "reviewed_at",
        "review_note",
        "next_reassess_on",
        "rule_version",
        "notes",
    )
    column_list = (
        "child",
        "child.village",
        "assessed_on",
        "total_score",
        "level",
        "worsened",
        "status",
        "created_by",
        "reviewed_by",
    )
    column_labels = ASSESSMENT_LABELS
    column_default_sort = ("assessed_on", True)
    column_sortable_list = ("assessed_on", "total_score", "level", "status")
    column_searchable_list = ("child.name",)
    column_filters = (
        ChildVillageFilter(Assessment),
        ChoiceFilter(Assessment.level, "等级", Level),
        ChoiceFilter(Assessment.status, "状态", AssessmentStatus),
        DateBetweenFilter(Assessment.assessed_on, "评估日期"),
        FilterEqual(Assessment.worsened, "等级恶化", options=[("1", "是"), ("0", "否")]),
    )
    column_formatters = {
        "child": _child_link,
        "level": lambda v, c, m, n: (
            level_badge(m.level)
            + (Markup(' <small class="text-muted">（调整）</small>') if m.override_level else "")
        ),
        "worsened": lambda v, c, m, n: Markup('<span class="text-danger">恶化</span>') if m.worsened else "",
    }
    column_formatters_detail = {
        **column_formatters,
        "computed_level": _level_formatter,
        "override_level": _level_formatter,
        "methods": lambda v, c, m, n: "、".join(AssessmentMethod.label_of(x) for x in m.methods or []),
        "team": lambda v, c, m, n: "、".join(str(s) for s in m.team),
        "rule_version": lambda v, c, m, n: f"#{m.rule_version_id}",
    }
    choice_columns = {"status": AssessmentStatus}
    column_extra_row_actions = [EndpointLinkRowAction("fa fa-pencil", "assessment_form.edit", title="打开")]

    def search_placeholder(self):
        return "儿童姓名"

    def list_extra_links(self):
        if can_write(current_role(), "assessments"):
            return [("＋ 新建评估", url_for("assessment_form.new"))]
        return []


# --------------------------------------------------------------------------- the form


def _team_options(child: Child):
    """Staff of the child's village and town-level staff, in the user's scope."""
    query = scoped_query(Staff).filter(
        Staff.active.is_(True), (Staff.village_id == child.village_id) | Staff.village_id.is_(None)
    )
    return query.order_by(Staff.village_id.is_(None), Staff.kind, Staff.id).all()


def _form_values(assessment: Assessment | None) -> dict:
    if assessment is None:
        return {
            "assessed_on": clock.today().isoformat(),
            "scores": {},
            "vetoes": [],
            "methods": [],
            "team": [],
            "notes": "",
            "override_level": "",
            "override_reason": "",
        }
    return {
        "assessed_on": assessment.assessed_on.isoformat(),
        "scores": {k: str(v) for k, v in (assessment.scores or {}).items()},
        "vetoes": list(assessment.vetoes or []),
        "methods": list(assessment.methods or []),
        "team": [s.id for s in assessment.team],
        "notes": assessment.notes or "",
        "override_level": assessment.override_level or "",
        "override_reason": assessment.override_reason or "",
    }


def _posted_input() -> AssessmentInput:
    form = request.form
    return AssessmentInput(
        child_id=arg_id("child_id", source=form),
        assessed_on=form.get("assessed_on", ""),
        scores={k[len("score_") :]: v for k, v in form.items() if k.startswith("score_")},
        vetoes=form.getlist("vetoes"),
        methods=form.getlist("methods"),
        team_ids=arg_ids("team"),
        notes=form.get("notes", ""),
        override_level=form.get("override_level", ""),
        override_reason=form.get("override_reason", ""),
    )


class AssessmentFormView(SecureView):
    """The purpose-built form: 11 indicators as 0–3 choices, vetoes, live total and level."""

    area = "assessments"
    extra_write_endpoints = frozenset({"new", "save"})
    create_endpoints = frozenset({"save"})

    def _assessment(self, assessment_id) -> Assessment:
        key = parse_id(assessment_id)
        if key is None:
            abort(404)
        found = scoped_query(Assessment).filter(Assessment.id == key).one_or_none()
        if found is None:
            abort(404)
        return found

    def _child(self, child_id) -> Child:
        key = parse_id(child_id)
        if key is None:
            abort(404)
        found = scoped_query(Child).filter(Child.id == key).one_or_none()
        if found is None:
            abort(404)
        return found

    def _render_form(self, child, assessment=None, values=None, errors=None, status=200):
        editable = self.may_write and (
            assessment is None or assessment.status == AssessmentStatus.DRAFT.value
        )
        # An open form shows the rules in force; a submitted one, the rules it was scored under.
        rules = rules_snapshot() if editable else assessment.rule_version.snapshot
        reviewable = (
            assessment is not None
            and assessment.status == AssessmentStatus.SUBMITTED.value
            and may_review(current_role())
        )
        # Beside the previous approved assessment once the scores are final (submitted or approved).
        comparison = (
            compare_with_previous(assessment)
            if assessment is not None and assessment.status != AssessmentStatus.DRAFT.value
            else None
        )
        levels_js = [
            {
                "value": level.value,
                "label": level.label,
                "meaning": level.meaning,
                "min": rules["levels"][level.value]["min_score"],
            }
            for level in Level
            if level.value in rules["levels"]
        ]
        return (
            self.render(
                "assessment/form.html",
                child=child,
                assessment=assessment,
                rules=rules,
                values=values or _form_values(assessment),
                errors=errors or {},
                editable=editable,
                reviewable=reviewable,
                comparison=comparison,
                changes={c.code: c for c in comparison.changes} if comparison else {},
                level_badge=level_badge,
                own=assessment is not None and assessment.created_by_id == current_user.id,
                team_options=_team_options(child),
                methods=AssessmentMethod.choices(),
                levels=list(Level),
                level_colours={level.value: colour for level, colour in LEVEL_COLOURS.items()},
                levels_json=json.dumps(levels_js, ensure_ascii=False),
                score_words=SCORE_WORDS,
                status_label=AssessmentStatus.label_of,
                level_label=Level.label_of,
                method_label=AssessmentMethod.label_of,
                staff_kind=StaffKind.label_of,
            ),
            status,
        )

    @expose("/")
    def index(self):
        return redirect(url_for(".new") if self.may_write else url_for("assessment.index_view"))

    @expose("/new/")
    def new(self):
        if not self.may_write:
            abort(403)
        child_id = request.args.get("child_id")
        if child_id:
            child = self._child(child_id)
            if child.is_archived:
                flash("该儿童已归档，不能新建评估。", "error")
                return redirect(url_for(".child_history", id=child.id))
            return self._render_form(child)
        term = request.args.get("q", "")
        found = []
        clause = child_search_clause(term)
        if clause is not None:
            found = (
                scoped_query(Child)
                .filter(clause, Child.archived_at.is_(None))
                .order_by(Child.name_pinyin, Child.id)
                .limit(30)
                .all()
            )
        return self.render("assessment/pick_child.html", term=term, found=found)

    @expose("/edit/")
    def edit(self):
        assessment = self._assessment(request.args.get("id"))
        return self._render_form(assessment.child, assessment)

    @expose("/save/", methods=("POST",))
    def save(self):
        if not self.may_write:
            abort(403)
        existing = None
        if request.form.get("assessment_id"):
            existing = self._assessment(request.form.get("assessment_id"))
        data = _posted_input()
        submit = request.form.get("action") == "submit"
        try:
            assessment = save_assessment(
                data,
                user_id=current_user.id,
                today=clock.today(),
                village_ids=current_scope(),
                assessment=existing,
                submit=submit,
            )
        except AssessmentRefused as refused:
            db.session.rollback()
            child = scoped_query(Child).filter(Child.id == (data.child_id or 0)).one_or_none()
            if child is None and existing is not None:
                child = existing.child
            if child is None:
                flash(str(refused), "error")
                return redirect(url_for(".new"))
            values = {
                "assessed_on": request.form.get("assessed_on", ""),
                "scores": data.scores,
                "vetoes": data.vetoes,
                "methods": data.methods,
                "team": data.team_ids,
                "notes": data.notes,
                "override_level": data.override_level,
                "override_reason": data.override_reason,
            }
            flash("评估未保存：请按提示修改后重新提交。", "error")
            return self._render_form(child, existing, values, refused.errors, status=400)
        db.session.commit()
        if submit:
            flash(
                f"已提交审核：{assessment.child.name}，总分 {assessment.total_score}，"
                f"{Level.label_of(assessment.level)}色。",
                "success",
            )
        else:
            flash("草稿已保存。", "success")
        return redirect(url_for(".edit", id=assessment.id))

    @expose("/approve/", methods=("POST",))
    def approve_view(self):
        assessment = self._assessment(request.args.get("id"))
        if not may_review(current_role()):
            abort(403)
        try:
            outcome = approve(
                assessment, user_id=current_user.id, role=current_role(), today=clock.today(), now=clock.now()
            )
        except InvalidInput as refused:
            db.session.rollback()
            flash(str(refused), "error")
            return redirect(url_for(".edit", id=assessment.id))
        db.session.commit()
        flash(f"已审核通过：{assessment.child.name}，{Level.label_of(assessment.level)}色。", "success")
        if outcome.services:
            flash(
                "已生成分层赋能计划：" + "、".join(ServiceKind.label_of(s.kind) for s in outcome.services),
                "info",
            )
        for message in outcome.messages:
            if assessment.level == Level.RED.value and "case.create_view" in current_app.view_functions:
                message = Markup('{} <a href="{}">开立个案</a>').format(message, url_for("case.create_view"))
            flash(message, "warning")
        return redirect(url_for(".child_history", id=assessment.child_id))

    @expose("/return/", methods=("POST",))
    def return_view(self):
        assessment = self._assessment(request.args.get("id"))
        if not may_review(current_role()):
            abort(403)
        try:
            return_assessment(
                assessment, user_id=current_user.id, role=current_role(), note=request.form.get("note", "")
            )
        except InvalidInput as refused:
            db.session.rollback()
            flash(str(refused), "error")
            return redirect(url_for(".edit", id=assessment.id))
        db.session.commit()
        flash("已退回填写人修改。", "success")
        return redirect(url_for("assessment.index_view"))

    @expose("/child/")
    def child_history(self):
        """A child's level history (timeline) and support services."""
        child = self._child(request.args.get("id"))
        history = level_history(child.id)
        services = None
        if can_read(current_role(), "services"):
            services = db.session.scalars(
                db.select(SupportService)
                .where(SupportService.child_id == child.id)
                .order_by(SupportService.due_on.desc().nulls_last(), SupportService.id.desc())
            ).all()
        return self.render(
            "assessment/child.html",
            child=child,
            history=history,
            approved=[a for a in history if a.status == AssessmentStatus.APPROVED.value],
            services=services,
            today=clock.today(),
            status_label=AssessmentStatus.label_of,
            service_kind=ServiceKind.label_of,
            service_status=ServiceStatus.label_of,
            level_badge=level_badge,
            level_colours={level.value: colour for level, colour in LEVEL_COLOURS.items()},
            level_label=Level.label_of,
        )

    def is_visible(self):
        return self.may_write


# --------------------------------------------------------------------------- rule tables


class RuleTableView(ScopedModelView):
    area = "rules"
    menu_category = MENU_RULES
    column_labels = ASSESSMENT_LABELS
    can_view_details = False
    allow_delete = False

    def on_model_change(self, form, model, is_created):
        # Indicators and veto items are stored by a code nobody types: made once, from the name.
        if is_created and hasattr(model, "code") and not model.code:
            model.code = new_rule_code(db.session, type(model), model.name)
        super().on_model_change(form, model, is_created)


class IndicatorGroupView(RuleTableView):
    column_list = ("sort_order", "name")
    form_columns = ("name", "sort_order")
    column_default_sort = ("sort_order", False)
    column_labels = {**ASSESSMENT_LABELS, "name": "分组名称"}


class IndicatorView(RuleTableView):
    column_list = (
        "sort_order",
        "group",
        "name",
        "label_3",
        "label_2",
        "label_1",
        "label_0",
        "active",
    )
    form_columns = (
        "group",
        "name",
        "label_3",
        "label_2",
        "label_1",
        "label_0",
        "active",
        "sort_order",
    )
    column_default_sort = ("sort_order", False)
    column_labels = {**ASSESSMENT_LABELS, "name": "指标名称", "active": "启用"}
    form_args = {
        "active": {"description": "停用后新评估不再包含该指标；已有评估按当时的规则版本保存，不受影响"},
    }


class VetoItemView(RuleTableView):
    column_list = ("sort_order", "name", "active")
    form_columns = ("name", "active", "sort_order")
    column_default_sort = ("sort_order", False)
    column_labels = {**ASSESSMENT_LABELS, "name": "否决项", "active": "启用"}
    form_args = {"active": {"description": "任一启用的否决项成立，等级直接判为红色"}}


class LevelRuleView(RuleTableView):
    column_list = ("level", "min_score", "visit_days", "reassess_days", "measure_days")
    form_columns = ("min_score", "visit_days", "reassess_days", "measure_days")
    column_formatters = {"level": _level_formatter}
    allow_create = False
    form_args = {
        "min_score": {
            "description": "总分不低于此分数即为该等级（红色为 0）；修改后只影响之后的评估",
            "validators": [NumberRange(min=0, max=99)],
        },
        "visit_days": {"validators": [NumberRange(min=1, max=3650)]},
        "reassess_days": {"validators": [NumberRange(min=1, max=3650)]},
        "measure_days": {
            "description": "审核通过之日起，该等级的分层赋能措施须在多少天内落实（红色对接兜底保障、"
            "橙色一对一指导等、黄色线上推送和讲座；绿色无分层措施，可不填）；修改后只影响之后的评估",
            "validators": [Optional(), NumberRange(min=1, max=365)],
        },
    }

    def get_query(self):
        order = db.case({level.value: level.rank for level in Level}, value=LevelRule.level)
        return super().get_query().order_by(order)

    def validate_form(self, form):
        ok = super().validate_form(form)
        if request.method != "POST" or not ok or not hasattr(form, "min_score"):
            return ok
        edited = request.args.get("id")
        rows = {
            row.level: (row.min_score, row.visit_days, row.reassess_days, row.measure_days)
            for row in db.session.scalars(db.select(LevelRule))
        }
        rows[edited] = (
            form.min_score.data,
            form.visit_days.data,
            form.reassess_days.data,
            form.measure_days.data,
        )
        problem = check_level_rules(rows)
        if problem:
            form.min_score.errors = list(form.min_score.errors) + [problem]
            return False
        return True


class RuleVersionView(ReadOnlyModelView):
    area = "rules"
    menu_category = MENU_RULES
    column_list = ("id", "created_at", "fingerprint", "snapshot")
    column_labels = ASSESSMENT_LABELS
    column_default_sort = ("id", True)
    column_formatters = {
        "fingerprint": lambda v, c, m, n: m.fingerprint[:12],
        "snapshot": lambda v, c, m, n: (
            "；".join(
                f"{Level.label_of(k)}≥{r['min_score']}" for k, r in m.snapshot.get("levels", {}).items()
            )
            + f"；指标 {sum(len(g['indicators']) for g in m.snapshot.get('groups', []))} 项"
        ),
    }


# --------------------------------------------------------------------------- support services


class OverdueFilter(FilterEqual):
    def __init__(self):
        super().__init__(SupportService.due_on, "逾期未落实", options=[("1", "是")])

    def apply(self, query, value, alias=None):
        return query.filter(
            SupportService.status == ServiceStatus.PLANNED.value, SupportService.due_on < clock.today()
        )


def _due_formatter(view, context, model, name):
    if model.due_on is None:
        return ""
    if model.status == ServiceStatus.PLANNED.value and model.due_on < clock.today():
        return Markup('<span class="text-danger" title="逾期">{} 逾期</span>').format(model.due_on)
    return str(model.due_on)


class SupportServiceView(ScopedModelView):
    area = "services"
    menu_category = MENU_ASSESS
    column_list = (
        "child",
        "child.village",
        "tier",
        "kind",
        "status",
        "due_on",
        "delivered_on",
        "provider",
        "duration_minutes",
        "outcome",
    )
    column_labels = ASSESSMENT_LABELS
    column_default_sort = ("id", True)
    column_sortable_list = ("due_on", "delivered_on", "kind", "status")
    column_searchable_list = ("child.name",)
    column_filters = (
        ChildVillageFilter(SupportService),
        ChoiceFilter(SupportService.kind, "服务类型", ServiceKind),
        ChoiceFilter(SupportService.status, "状态", ServiceStatus),
        ChoiceFilter(SupportService.tier, "分层", Level),
        OverdueFilter(),
        DateBetweenFilter(SupportService.due_on, "应完成日期"),
        DateBetweenFilter(SupportService.delivered_on, "落实日期"),
    )
    column_formatters = {
        "child": _child_link,
        "tier": lambda v, c, m, n: level_badge(m.tier) if m.tier else "",
        "due_on": _due_formatter,
    }
    choice_columns = {"kind": ServiceKind, "status": ServiceStatus, "tier": Level}
    form_columns = (
        "child",
        "tier",
        "kind",
        "status",
        "due_on",
        "delivered_on",
        "provider",
        "duration_minutes",
        "content",
        "outcome",
    )
    form_ajax_refs = {"child": {"fields": ("name", "name_pinyin", "name_initials"), "page_size": 10}}
    form_choices = {"tier": [("", "（不分层）")] + Level.choices()}
    form_args = {
        "child": {"description": "输入姓名或拼音查找"},
        "status": {"description": "计划 → 已落实：落实后填写落实日期、提供人、时长、内容与成效"},
        "duration_minutes": {"validators": [NumberRange(min=0, max=24 * 60)]},
    }
    allow_delete = False
    extra_write_endpoints = frozenset({"online_push"})
    create_endpoints = frozenset({"online_push"})

    def search_placeholder(self):
        return "儿童姓名"

    def list_extra_links(self):
        if self.may_write:
            return [("批量登记线上知识推送", url_for(".online_push"))]
        return []

    def validate_form(self, form):
        ok = super().validate_form(form)
        if request.method != "POST" or not hasattr(form, "status"):
            return ok
        for field, message in check_service(form.status.data, form.delivered_on.data, clock.today()).items():
            getattr(form, field).errors = list(getattr(form, field).errors) + [message]
        return ok and not any(f.errors for f in form)

    def on_model_change(self, form, model, is_created):
        model.tier = model.tier or None

    @expose("/online-push/", methods=("GET", "POST"))
    def online_push(self):
        """线上知识推送 for many families at once: pick a village (and level), tick the children."""
        villages = village_options()
        village_id = arg_id("village", source=request.values)
        if request.values.get("village") and village_id not in {vid for vid, _ in villages}:
            raise Refused("所选的村（社区）不存在或不在您的管理范围内。", 404)
        village_id = village_id or (villages[0][0] if villages else None)
        level = request.values.get("level", "")
        query = scoped_query(Child).filter(Child.archived_at.is_(None), Child.village_id == village_id)
        if level == "none":
            query = query.filter(Child.current_level.is_(None))
        elif level:
            query = query.filter(Child.current_level == level)
        error = None
        if request.method == "POST":
            if request.form.get("all_matching"):
                ids = [c.id for c in query.with_entities(Child.id)]
            else:
                ids = arg_ids("child_ids")
            try:
                delivered_on = dt.date.fromisoformat(request.form.get("delivered_on", ""))
                n = record_online_push(
                    ids,
                    delivered_on=delivered_on,
                    content=request.form.get("content", ""),
                    provider_id=arg_id("provider", source=request.form),
                    village_ids=current_scope(),
                    today=clock.today(),
                )
            except ValueError:
                error = "请填写推送日期（年-月-日）"
            except InvalidInput as bad:
                error = str(bad)
            else:
                db.session.commit()
                flash(f"已登记线上知识推送：{n} 户。", "success")
                return redirect(url_for(".index_view"))
        children = query.order_by(Child.name_pinyin, Child.id).limit(500).all()
        providers = scoped_query(Staff).filter(Staff.active.is_(True)).order_by(Staff.village_id, Staff.id)
        return self.render(
            "assessment/online_push.html",
            villages=villages,
            village_id=village_id,
            level=level,
            levels=Level.choices(),
            children=children,
            total=query.count(),
            providers=providers.all(),
            error=error,
            form=request.form,
            today=clock.today(),
            level_badge=level_badge,
        )


# --------------------------------------------------------------------------- risk map


class RiskMapView(SecureView):
    area = "map"

    def _filters(self):
        category_id = arg_id("category")
        as_of = None
        if request.args.get("as_of"):
            try:
                as_of = dt.date.fromisoformat(request.args["as_of"])
            except ValueError:
                as_of = None
        return category_id, as_of

    @expose("/")
    def index(self):
        category_id, as_of = self._filters()
        return self.render(
            "assessment/map.html",
            categories=db.session.scalars(db.select(Category).order_by(Category.sort_order)).all(),
            category_id=category_id,
            as_of=as_of,
            today=clock.today(),
            may_upload=can_write(current_role(), "settings"),
            levels=list(Level),
            level_colours={level.value: colour for level, colour in LEVEL_COLOURS.items()},
        )

    @expose("/data/")
    @returns_json
    def data(self):
        category_id, as_of = self._filters()
        if as_of is not None and as_of >= clock.today():
            as_of = None
        rows = riskmap.village_levels(current_scope(), category_id=category_id, as_of=as_of)
        links = child_list_links(category_id, with_level=as_of is None)
        for row in rows:
            row["links"] = {key: make(row["village_id"]) for key, make in links.items()}
        return jsonify(
            as_of=as_of.isoformat() if as_of else None,
            villages=rows,
            geojson=riskmap.village_geojson(current_scope()),
            levels=[
                {"value": level.value, "label": level.label, "colour": LEVEL_COLOURS[level]}
                for level in Level
            ],
        )

    @expose("/geojson/")
    @returns_json
    def download(self):
        response = jsonify(riskmap.village_geojson(current_scope()))
        response.headers["Content-Disposition"] = "attachment; filename=villages.geojson"
        return response

    @expose("/upload/", methods=("POST",))
    def upload(self):
        if not can_write(current_role(), "settings"):
            abort(403)
        upload = request.files.get("geojson")
        try:
            if upload is None or not upload.filename:
                raise InvalidInput("请选择 GeoJSON 文件")
            matched, unmatched = riskmap.import_boundaries(upload.read())
        except InvalidInput as bad:
            db.session.rollback()
            flash(str(bad), "error")
        else:
            db.session.commit()
            flash(f"已更新 {len(matched)} 个村（社区）的边界：{'、'.join(matched)}", "success")
            if unmatched:
                flash(f"以下名称未找到对应的村（社区），已跳过：{'、'.join(unmatched)}", "warning")
        return redirect(url_for(".index"))


def child_list_links(category_id: int | None, *, with_level: bool) -> dict:
    """URL makers (village id → URL) for the child list filtered by village, and level and category."""
    from views.registry import CategoryFilter, LevelFilter

    def make(level):
        def url(village_id):
            pairs = [(VillageFilter, village_id)]
            if category_id:
                pairs.append((CategoryFilter, category_id))
            if level:
                pairs.append((LevelFilter, level))
            return filtered_url("child", pairs)

        return url

    links = {"all": make(None)}
    if with_level:
        links.update({level.value: make(level.value) for level in Level})
        links["none"] = make("none")
    return links


def filtered_url(endpoint: str, pairs) -> str:
    """The list URL of a model view with its filters set, as Flask-Admin reads them (``flt<n>_<arg>``).

    ``pairs`` are (filter class or filter name, value); a filter the view lacks is left out.
    """
    view = next(
        (v for v in current_app.extensions["admin"][0]._views if getattr(v, "endpoint", None) == endpoint),
        None,
    )
    params = {}
    for position, (match, value) in enumerate(pairs):
        for index, flt in enumerate(getattr(view, "_filters", None) or []):
            if (type(flt) is match) if isinstance(match, type) else (str(flt.name) == match):
                params[f"flt{position}_{view.get_filter_arg(index, flt)}"] = value
                break
    return url_for(f"{endpoint}.index_view", **params)


def register(admin):
    admin.add_view(
        AssessmentFormView(
            name="新建评估", endpoint="assessment_form", url="assessment-form", category=MENU_ASSESS
        )
    )
    admin.add_view(AssessmentView(Assessment, name="评估记录", endpoint="assessment"))
    admin.add_view(SupportServiceView(SupportService, name="赋能服务", endpoint="support_service"))
    admin.add_view(RiskMapView(name="风险地图", endpoint="riskmap", url="risk-map", category=MENU_ASSESS))
    admin.add_view(IndicatorGroupView(IndicatorGroup, name="指标分组", endpoint="indicator_group"))
    admin.add_view(IndicatorView(Indicator, name="评估指标", endpoint="indicator"))
    admin.add_view(VetoItemView(VetoItem, name="否决项", endpoint="veto_item"))
    admin.add_view(LevelRuleView(LevelRule, name="等级与频次", endpoint="level_rule"))
    admin.add_view(RuleVersionView(RuleVersion, name="规则版本", endpoint="rule_version"))


__all__ = ["register", "Village"]
