"""The supervision network: patrol visits, mandatory reports, the alert centre and the 141 feed."""

from __future__ import annotations

import datetime as dt
import math

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.sqla.filters import BooleanEqualFilter, DateBetweenFilter
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import func, select
from wtforms import DateField, DateTimeLocalField, RadioField

from choices import (
    AlertRule,
    AlertSource,
    AlertStatus,
    CaseType,
    ReporterKind,
    ReportOutcome,
    Role,
    Severity,
    Urgency,
    VisitKind,
)
from models import Alert, AlertStep, ApiToken, Child, MandatoryReport, User, Village, Visit, db
from services import alerts as alert_service
from services import clock
from services.permissions import can_read, can_write
from services.scoping import scope
from services.search import child_search_clause
from services.validation import InvalidInput, clean_phone, parse_id, parse_int
from services.visits import (
    ANSWERS,
    after_save,
    answer,
    check_answers,
    check_visit,
    format_delay,
    offline_delay,
)
from views.base import (
    Card,
    ChoiceFilter,
    ScopedModelView,
    SecureView,
    VillageFilter,
    arg_id,
    current_role,
    current_scope,
    scoped_query,
    village_options,
)
from views.labels import LABELS

MENU = "监护监督"
CHILD_LOOKUP = {"fields": ("name", "name_pinyin", "name_initials", "id_last4"), "page_size": 10}

SEVERITY_BADGE = {"red": "danger", "orange": "warning", "yellow": "info"}
STATUS_BADGE = {"open": "secondary", "in_progress": "primary", "done": "success"}

SUPERVISION_LABELS = {
    **LABELS,
    "child": "儿童",
    "visited_on": "走访日期",
    "kind": "走访方式",
    "visitors": "走访人员",
    "child_seen": "见到儿童本人",
    "guardian_present": "监护人在场",
    "living_ok": "居住生活条件正常",
    "school_ok": "正常上学",
    "harm_signs": "发现伤害迹象",
    "risk_found": "发现风险",
    "risk_note": "风险情况",
    "notes": "走访记录",
    "recorded_at": "记录时间",
    "next_due": "下次走访",
    "reporter_kind": "报告人类型",
    "reporter_name": "报告人姓名",
    "reporter_phone": "报告人电话",
    "anonymous": "匿名",
    "received_at": "接报时间",
    "child_description": "儿童情况描述",
    "situation": "报告情况",
    "urgency": "紧急程度",
    "first_response_at": "首次响应时间",
    "first_response_note": "首次响应情况",
    "response": "响应用时（时限24小时）",
    "outcome": "分流结果",
    "outcome_note": "分流说明",
    "name": "名称",
    "user": "代表的账号",
    "active": "启用",
    "created_at": "创建时间",
    "last_used_at": "最近使用",
}


def badge(kind: str, text: str) -> Markup:
    return Markup('<span class="badge badge-{}">{}</span>').format(kind, text)


class ChildVillageFilter(VillageFilter):
    """Filter rows owned through their child by the child's village."""

    def __init__(self, model):
        self.model = model
        super().__init__(model.child_id)

    def apply(self, query, value, alias=None):
        return query.filter(self.model.child_id.in_(select(Child.id).where(Child.village_id == int(value))))


def _now() -> dt.datetime:
    return clock.now().replace(microsecond=0)


def _local(utc: dt.datetime | None) -> dt.datetime | None:
    """A stored UTC time (RuleRun.started_at) on the same local clock as the other times shown."""
    if utc is None:
        return None
    return utc.replace(tzinfo=dt.UTC).astimezone().replace(tzinfo=None)


# --------------------------------------------------------------------------- visits


class YesNoField(RadioField):
    """A 是/否 answer with nothing preselected: saving without choosing is refused, never defaulted."""

    def __init__(self, label=None, validators=None, **kwargs):
        kwargs.pop("default", None)
        kwargs.pop("choices", None)
        super().__init__(label, validators=[], choices=[("1", "是"), ("0", "否")], **kwargs)

    def process_data(self, value):
        self.data = None if value is None else bool(value)

    def process_formdata(self, valuelist):
        self.data = answer(valuelist[0]) if valuelist else None

    def _value(self):
        return "" if self.data is None else ("1" if self.data else "0")

    def iter_choices(self):
        current = self._value()
        for value, label in self.choices:
            yield (value, label, value == current, {})

    def pre_validate(self, form):
        pass


class VisitView(ScopedModelView):
    """巡查走访: the list and the edit form; a new visit is recorded on the phone's form (/field/visit),
    online or offline, through services/visits.record_visit."""

    area = "visits"
    menu_category = MENU
    edit_template = "supervision/visit_form.html"
    details_template = "supervision/visit_details.html"
    column_list = ("visited_on", "child", "child.village", "kind", "visitors", "risk_found", "next_due")
    column_labels = {**SUPERVISION_LABELS, "child.village": "村（社区）"}
    column_default_sort = ("visited_on", True)
    column_sortable_list = ("visited_on", "next_due")
    column_filters = (
        ChildVillageFilter(Visit),
        ChoiceFilter(Visit.kind, "走访方式", VisitKind),
        BooleanEqualFilter(Visit.risk_found, "发现风险"),
        DateBetweenFilter(Visit.visited_on, "走访日期"),
    )
    column_formatters = {
        "visitors": lambda v, c, m, n: "、".join(s.name for s in m.visitors),
        "risk_found": lambda v, c, m, n: (
            badge("danger", "发现风险") if m.risk_found else _yes_no(m.risk_found)
        ),
        "recorded_at": lambda v, c, m, n: _visit_times(m),
    }
    column_formatters_detail = {
        **{name: (lambda v, c, m, n: _yes_no(getattr(m, n))) for name in ANSWERS},
        "visitors": lambda v, c, m, n: "、".join(s.name for s in m.visitors),
        "recorded_at": lambda v, c, m, n: _visit_times(m),
    }
    choice_columns = {"kind": VisitKind}
    card = Card(
        title="child",
        village=("child", "village"),
        level=("child", "current_level"),
        facts=("visited_on", "risk_found"),
    )
    form_columns = (
        "child",
        "visited_on",
        "kind",
        "visitors",
        *ANSWERS,
        "risk_note",
        "notes",
    )
    form_ajax_refs = {"child": CHILD_LOOKUP}
    form_overrides = {"visited_on": DateField, **dict.fromkeys(ANSWERS, YesNoField)}
    form_args = {
        "child": {"description": "输入姓名、拼音首字母或身份证后4位查找"},
        "risk_found": {"description": "选“是”并保存即生成风险预警，推送预警中心"},
        "risk_note": {"description": "发现风险时必填：看到了什么、儿童现在何处、已采取什么措施"},
    }
    form_widget_args = {"notes": {"rows": 3}, "risk_note": {"rows": 2}}
    column_details_list = (*form_columns, "next_due", "recorded_at", "created_at")
    column_details_exclude_list = ()

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        """One form records a visit: the phone's, which also works offline."""
        if not self.can_create:
            abort(403)
        child_id = request.args.get("child_id", type=int)
        return redirect(url_for("field.visit", child=child_id) if child_id else url_for("field.visit"))

    def validate_form(self, form):
        ok = super().validate_form(form)
        if request.method != "POST" or not hasattr(form, "visited_on"):
            return ok
        try:
            check_visit(form.visited_on.data, clock.today())
        except InvalidInput as bad:
            form.visited_on.errors = list(form.visited_on.errors or []) + [str(bad)]
        if not form.child.data:
            form.child.errors = list(form.child.errors or []) + ["请选择走访的儿童"]
        answers = {name: getattr(form, name).data for name in ANSWERS}
        for name, message in check_answers(answers, form.risk_note.data).items():
            target = getattr(form, name)
            target.errors = list(target.errors or []) + [message]
        return ok and not any(f.errors for f in form)

    def on_model_change(self, form, model, is_created):
        alert = after_save(model, now=_now())
        if alert is not None:
            flash(
                f"已生成风险预警（{Severity.label_of(alert.severity)}色），请在预警中心跟进处置。", "warning"
            )


def _yes_no(value) -> str:
    return "未回答" if value is None else ("是" if value else "否")


def _visit_times(visit: Visit) -> str:
    if visit.recorded_at is None:
        return ""
    text = f"{visit.recorded_at:%Y-%m-%d %H:%M}"
    delay = offline_delay(visit)
    if delay is not None:
        text += f"（离线录入，{visit.received_at:%m-%d %H:%M} 同步送达，延迟 {format_delay(delay)}）"
    return text


def _lookup_child(child_id) -> Child | None:
    try:
        key = int(child_id)
    except (TypeError, ValueError):
        return None
    return scoped_query(Child).filter(Child.id == key, Child.archived_at.is_(None)).one_or_none()


# --------------------------------------------------------------------------- mandatory reports


def _response_cell(view, context, model, name):
    elapsed, over = alert_service.response_time(model, _now())
    text = alert_service.format_elapsed(elapsed)
    if model.first_response_at is None:
        return badge("danger" if over else "warning", f"未响应 {text}")
    return badge("danger" if over else "success", f"{text}{'（超时）' if over else ''}")


class MandatoryReportView(ScopedModelView):
    """强制报告: intake by any staff role; first response and triage on the report's page."""

    area = "mandatory_reports"
    menu_category = MENU
    details_template = "supervision/report_details.html"
    create_template = "supervision/report_form.html"
    edit_template = "supervision/report_form.html"
    column_list = ("received_at", "village", "child", "reporter_kind", "urgency", "response", "outcome")
    column_labels = SUPERVISION_LABELS
    column_default_sort = ("received_at", True)
    column_sortable_list = ("received_at",)
    column_filters = (
        VillageFilter(MandatoryReport.village_id),
        ChoiceFilter(MandatoryReport.urgency, "紧急程度", Urgency),
        ChoiceFilter(MandatoryReport.outcome, "分流结果", ReportOutcome),
        ChoiceFilter(MandatoryReport.reporter_kind, "报告人类型", ReporterKind),
        DateBetweenFilter(MandatoryReport.received_at, "接报时间"),
    )
    column_formatters = {
        "response": _response_cell,
        "child": lambda v, c, m, n: (
            m.child.name if m.child else (m.child_description or "")[:20] + "（未登记）"
        ),
        "reporter_name": lambda v, c, m, n: "（匿名）" if m.anonymous else (m.reporter_name or ""),
        "reporter_phone": lambda v, c, m, n: "" if m.anonymous else (m.reporter_phone or ""),
    }
    choice_columns = {"reporter_kind": ReporterKind, "urgency": Urgency, "outcome": ReportOutcome}
    form_columns = (
        "reporter_kind",
        "anonymous",
        "reporter_name",
        "reporter_phone",
        "received_at",
        "child",
        "child_description",
        "village",
        "situation",
        "urgency",
    )
    form_overrides = {"received_at": DateTimeLocalField}
    form_args = {
        "received_at": {"format": "%Y-%m-%dT%H:%M", "default": lambda: _now()},
        "anonymous": {"description": "匿名报告不记录报告人姓名和电话"},
        "child": {"description": "名册中已有的儿童：输入姓名、拼音首字母或身份证后4位查找"},
        "child_description": {"description": "儿童不在名册或身份不明时填写：姓名、大致年龄、住址等"},
        "village": {"description": "选择了儿童时，按儿童所在村（社区）自动填写"},
        "urgency": {"default": Urgency.URGENT.value},
    }
    form_ajax_refs = {"child": CHILD_LOOKUP}
    form_widget_args = {"situation": {"rows": 4}, "child_description": {"rows": 2}}
    allow_delete = False
    create_endpoints = frozenset({"triage_view"})

    def create_form(self, obj=None):
        form = super().create_form(obj)
        if request.method == "GET" and current_user.village_id and hasattr(form, "village"):
            form.village.data = db.session.get(Village, current_user.village_id)
        return form

    def validate_form(self, form):
        ok = super().validate_form(form)
        if request.method != "POST" or not hasattr(form, "situation"):
            return ok
        if form.anonymous.data:
            form.reporter_name.data = None
            form.reporter_phone.data = None
        else:
            try:
                form.reporter_phone.data = clean_phone(form.reporter_phone.data)
            except InvalidInput as bad:
                form.reporter_phone.errors = list(form.reporter_phone.errors or []) + [str(bad)]
        if form.child.data is not None:
            form.village.data = form.child.data.village
        probe = MandatoryReport(
            received_at=form.received_at.data,
            child_id=form.child.data.id if form.child.data else None,
            child_description=form.child_description.data,
            situation=form.situation.data,
            village_id=form.village.data.id if form.village.data else None,
        )
        for field, message in alert_service.check_report(probe, _now()).items():
            target = getattr(form, field)
            target.errors = list(target.errors or []) + [message]
        return ok and not any(f.errors for f in form)

    def on_model_change(self, form, model, is_created):
        if is_created:
            model.recorded_by_id = current_user.id
        model.child_description = (model.child_description or "").strip() or None

    @expose("/respond/", methods=("POST",))
    def respond_view(self):
        report = self._writable_report()
        at = _parse_local(request.form.get("first_response_at"))
        try:
            alert_service.record_first_response(report, at, request.form.get("note", ""), _now())
        except InvalidInput as bad:
            flash(str(bad), "error")
        else:
            db.session.commit()
            flash("已记录首次响应", "success")
        return redirect(self.get_url(".details_view", id=report.id))

    @expose("/triage/", methods=("POST",))
    def triage_view(self):
        report = self._writable_report()
        outcome = request.form.get("outcome", "")
        note = request.form.get("note", "")
        try:
            if outcome == ReportOutcome.TO_CASE.value:
                if not can_write(current_role(), "cases"):
                    raise InvalidInput("您的角色不能开立个案，请选择“转预警”，由督导员转个案")
                from services.cases import open_case_from_report

                case = open_case_from_report(
                    report, request.form.get("case_type", ""), note, user_id=current_user.id, now=_now()
                )
                db.session.commit()
                flash(f"已转为个案（编号 {case.id}）", "success")
                return redirect(url_for("case.details_view", id=case.id))
            alert = alert_service.triage_report(report, outcome, note, user_id=current_user.id, now=_now())
        except InvalidInput as bad:
            db.session.rollback()
            flash(str(bad), "error")
            return redirect(self.get_url(".details_view", id=report.id))
        db.session.commit()
        if alert is not None:
            flash("已转为预警，推送预警中心", "success")
            return redirect(url_for("alerts.detail_view", alert_id=alert.id))
        flash("已核实无风险，报告办结", "success")
        return redirect(self.get_url(".details_view", id=report.id))

    def _writable_report(self) -> MandatoryReport:
        if not self.may_write:
            abort(403)
        report = self.get_one(request.args.get("id"))
        if report is None:
            abort(404)
        return report

    def render(self, template, **kwargs):
        if template == self.details_template and kwargs.get("model") is not None:
            report = kwargs["model"]
            elapsed, over = alert_service.response_time(report, _now())
            kwargs.update(
                elapsed=alert_service.format_elapsed(elapsed),
                over_limit=over,
                outcomes=ReportOutcome.choices(),
                case_types=CaseType.choices(),
                may_write=self.may_write,
                may_open_case=can_write(current_role(), "cases"),
                labels={
                    "reporter_kind": ReporterKind.label_of(report.reporter_kind),
                    "urgency": Urgency.label_of(report.urgency),
                    "outcome": ReportOutcome.label_of(report.outcome),
                },
                alert_for_report=db.session.scalar(
                    select(Alert).where(Alert.report_id == report.id).limit(1)
                ),
                now_local=_now().strftime("%Y-%m-%dT%H:%M"),
            )
        return super().render(template, **kwargs)


def _parse_local(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None


# --------------------------------------------------------------------------- alert centre

PAGE_SIZE = 30
ACTIVE_STATUSES = [AlertStatus.OPEN.value, AlertStatus.IN_PROGRESS.value]


NEW_WITHIN = dt.timedelta(hours=24)  # 新产生: raised within the last 24 hours


class AlertCenterView(SecureView):
    """预警中心: open alerts by status, severity, village and deadline; the handling loop."""

    area = "alerts"
    create_endpoints = frozenset({"act_view"})

    @expose("/")
    def index(self):
        if alert_service.start_if_stale(current_app._get_current_object(), clock.today(), _now()):
            flash("预警规则上次运行已超过1小时，已在后台开始运行；新预警稍后刷新本页即可看到。", "info")
        args = request.args
        status = args.get("status", "active")
        stmt = scope(select(Alert), Alert, current_scope())
        if status == "active":
            # "!=" steers the planner onto the deadline index: the first page is read in order, no sort.
            stmt = stmt.where(Alert.status != AlertStatus.DONE.value)
        elif status in {s.value for s in AlertStatus}:
            stmt = stmt.where(Alert.status == status)
        if args.get("severity") in {s.value for s in Severity}:
            stmt = stmt.where(Alert.severity == args["severity"])
        village_id = arg_id("village")
        if village_id:
            stmt = stmt.where(Alert.village_id == village_id)
        if args.get("rule") in {r.value for r in AlertRule}:
            stmt = stmt.where(Alert.rule == args["rule"])
        elif args.get("source") in {s.value for s in AlertSource}:
            stmt = stmt.where(Alert.source == args["source"])
        now = _now()
        due = args.get("due")
        if due == "overdue":
            stmt = stmt.where(Alert.deadline < now, Alert.status != AlertStatus.DONE.value)
        elif due == "24h":
            stmt = stmt.where(Alert.deadline.between(now, now + dt.timedelta(hours=24)))
        if args.get("cleared") == "1":
            stmt = stmt.where(Alert.condition_cleared_at.is_not(None))
        if args.get("new") == "1":
            stmt = stmt.where(Alert.raised_at >= now - NEW_WITHIN)
        if args.get("mine") == "1":  # 我的预警's full list: assigned to the person logged in
            stmt = stmt.where(Alert.handler_id == current_user.id)
        search = (args.get("q") or "").strip()[:50]
        clause = child_search_clause(search)
        if clause is not None:
            # One box as in the register: name, its start, pinyin, initials, ID number or its last 4.
            stmt = stmt.where(
                Alert.child_id.in_(scope(select(Child.id).where(clause), Child, current_scope()))
            )
        counts = self._counts(now)
        filtered = any(
            args.get(k)
            for k in ("severity", "village", "rule", "source", "due", "cleared", "new", "mine", "q")
        )
        if status == "active" and not filtered:
            total = counts["active"]
        else:
            total = db.session.scalar(stmt.with_only_columns(func.count(Alert.id)).order_by(None))
        pages = max(1, math.ceil(total / PAGE_SIZE))
        page = min(parse_int(args.get("page"), lo=1, hi=pages) or 1, pages)
        # The page first, then its names: a join here would make the database sort every alert.
        sort = args.get("sort")
        if sort == "raised" or args.get("new") == "1":
            order = (Alert.raised_at.desc(), Alert.id.desc())  # the newest first
        else:
            order = (Alert.deadline, Alert.id)
        page_alerts = db.session.scalars(
            stmt.order_by(*order).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
        ).all()
        child_names = dict(
            db.session.execute(
                select(Child.id, Child.name).where(
                    Child.id.in_({a.child_id for a in page_alerts if a.child_id})
                )
            ).all()
        )
        village_names = dict(db.session.execute(select(Village.id, Village.name)).all())
        handler_names = {
            u.id: f"{u}（{Role.label_of(u.role)}）"
            for u in db.session.scalars(
                select(User).where(User.id.in_({a.handler_id for a in page_alerts if a.handler_id}))
            )
        }
        alerts = [
            (a, child_names.get(a.child_id), village_names.get(a.village_id), handler_names.get(a.handler_id))
            for a in page_alerts
        ]
        return self.render(
            "supervision/alert_center.html",
            alerts=alerts,
            total=total,
            page=page,
            pages=pages,
            counts=counts,
            now=now,
            args=args,
            status=status,
            villages=village_options(),
            severities=list(Severity),
            statuses=list(AlertStatus),
            rules=list(AlertRule),
            sources=list(AlertSource),
            last_run=_local(alert_service.last_run_at()),
            run_in_progress=alert_service.run_in_progress(),
            severity_badge=SEVERITY_BADGE,
            status_badge=STATUS_BADGE,
            page_url=lambda p: url_for(".index", **{**args.to_dict(), "page": p}),
            search=search,
            new_count=self._new_count(now),
            sort="raised" if (sort == "raised" or args.get("new") == "1") else "deadline",
            url_with=lambda **changes: url_for(
                ".index", **{k: v for k, v in {**args.to_dict(), **changes, "page": None}.items() if v}
            ),
        )

    def _new_count(self, now):
        """Alerts raised in the last 24 hours and not yet closed (新产生)."""
        return db.session.scalar(
            scope(
                select(func.count()).where(
                    Alert.raised_at >= now - NEW_WITHIN, Alert.status != AlertStatus.DONE.value
                ),
                Alert,
                current_scope(),
            )
        )

    def _counts(self, now):
        # Grouped by (status, severity) so the database answers from the covering index alone.
        rows = db.session.execute(
            scope(
                select(Alert.status, Alert.severity, func.count())
                .where(Alert.status.in_(ACTIVE_STATUSES))
                .group_by(Alert.status, Alert.severity),
                Alert,
                current_scope(),
            )
        ).all()
        by_severity: dict[str, int] = {}
        for _, severity, n in rows:
            by_severity[severity] = by_severity.get(severity, 0) + n
        overdue = db.session.scalar(
            scope(
                select(func.count()).where(Alert.deadline < now, Alert.status != AlertStatus.DONE.value),
                Alert,
                current_scope(),
            )
        )
        return {"by_severity": by_severity, "overdue": overdue, "active": sum(by_severity.values())}

    @expose("/run/", methods=("POST",))
    def run_view(self):
        if not self.may_write:
            abort(403)
        summary = alert_service.run_rules_exclusively(clock.today(), _now())
        if summary is None:
            flash("预警规则正在运行中（由定时任务或其他用户启动），请稍后刷新本页查看结果。", "info")
            return redirect(url_for(".index"))
        flash(
            f"预警规则已运行：新增 {summary.raised} 条，条件已解除 {summary.cleared} 条，"
            f"当前成立 {summary.holding} 条",
            "success",
        )
        return redirect(url_for(".index"))

    def _alert(self, alert_id: int) -> Alert:
        alert_id = parse_id(alert_id)
        alert = scoped_query(Alert).filter(Alert.id == alert_id).one_or_none() if alert_id else None
        if alert is None:
            abort(404)
        return alert

    @expose("/<int:alert_id>/")
    def detail_view(self, alert_id):
        alert = self._alert(alert_id)
        steps = db.session.scalars(
            select(AlertStep).where(AlertStep.alert_id == alert.id).order_by(AlertStep.at, AlertStep.id)
        ).all()
        handlers = alert_service.handler_candidates(alert)
        may_handle = self._may_act(alert, "step")
        return self.render(
            "supervision/alert_detail.html",
            alert=alert,
            steps=steps,
            handlers=handlers,
            now=_now(),
            overdue=alert_service.is_overdue(alert, _now()),
            may_write=self.may_write,
            may_handle=may_handle,
            may_open_case=can_write(current_role(), "cases"),
            may_visit=can_write(current_role(), "visits"),
            case_types=CaseType.choices(),
            severity_badge=SEVERITY_BADGE,
            status_badge=STATUS_BADGE,
            labels={
                "severity": Severity.label_of(alert.severity),
                "status": AlertStatus.label_of(alert.status),
                "source": AlertSource.label_of(alert.source),
            },
        )

    def _may_act(self, alert: Alert, action: str) -> bool:
        return alert_service.may_act(
            alert, action, role=current_role(), user_id=current_user.id, writes_alerts=self.may_write
        )

    @expose("/<int:alert_id>/act/", methods=("POST",))
    def act_view(self, alert_id):
        alert = self._alert(alert_id)
        action = request.form.get("action")
        if not self._may_act(alert, action):
            abort(403)
        now = _now()
        try:
            if action == "assign":
                alert_service.assign_handler(
                    alert, arg_id("handler_id", source=request.form), user_id=current_user.id, now=now
                )
                message = "已指派处置人"
            elif action == "step":
                alert_service.add_step(alert, request.form.get("note", ""), user_id=current_user.id, now=now)
                message = "已记录处置情况"
            elif action == "ticket":
                alert_service.set_ticket(alert, request.form.get("ticket_141", ""))
                message = "已保存141平台工单号"
            elif action == "close":
                alert_service.close_alert(
                    alert, request.form.get("result", ""), user_id=current_user.id, now=now
                )
                message = "预警已办结"
            elif action == "to_case":
                if not can_write(current_role(), "cases"):
                    abort(403)
                from services.cases import open_case_from_alert

                case = open_case_from_alert(
                    alert, request.form.get("case_type", ""), user_id=current_user.id, now=now
                )
                db.session.commit()
                flash(f"已转为个案（编号 {case.id}）", "success")
                return redirect(url_for("case.details_view", id=case.id))
            else:
                abort(400)
        except InvalidInput as bad:
            db.session.rollback()
            flash(str(bad), "error")
        else:
            db.session.commit()
            flash(message, "success")
        return redirect(url_for(".detail_view", alert_id=alert_id))


# --------------------------------------------------------------------------- 141 platform tokens and feed


class ApiTokenView(ScopedModelView):
    """Admins issue tokens for the 141 platform's pull; the token is shown once, only its hash is kept."""

    area = "users"
    menu_category = "系统管理"
    column_list = ("name", "user", "active", "created_at", "last_used_at")
    column_labels = SUPERVISION_LABELS
    form_columns = ("name", "user", "active")
    form_args = {
        "user": {"description": "接口按此账号的可见范围返回预警（如 督导员 = 全镇，儿童主任 = 本村）"},
        "name": {"description": "如 141基层智治平台"},
    }
    column_details_exclude_list = ("token_hash",)
    allow_delete = False
    can_view_details = False

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        del form.user
        return form

    def create_model(self, form):
        try:
            token, plain = alert_service.issue_token(
                form.name.data, form.user.data.id if form.user.data else None
            )
            token.active = bool(form.active.data)
            db.session.commit()
        except InvalidInput as bad:
            db.session.rollback()
            flash(str(bad), "error")
            return False
        flash(
            Markup("令牌已生成，请立即复制，关闭后无法再次查看：<code id='new-token'>{}</code>").format(
                plain
            ),
            "success",
        )
        return token


api = Blueprint("alerts_api", __name__)


@api.get("/api/alerts")
def alerts_feed():
    """The 141 platform's pull: open alerts, scoped like the token's account. Read-only JSON."""
    header = request.headers.get("Authorization", "")
    plain = header[7:] if header.lower().startswith("bearer ") else request.headers.get("X-API-Token")
    now = _now()
    user = alert_service.user_for_token(plain, now)
    if user is None:
        return jsonify(error="缺少或无效的接口令牌（请在请求头 Authorization: Bearer <令牌> 中提供）"), 401
    if not can_read(user.role, "alerts"):
        db.session.commit()
        return jsonify(error="该令牌所代表的账号无权查看预警"), 403
    try:
        page = alert_service.feed_page(
            user.village_scope(),
            now,
            page=_int_arg("page", 1),
            per_page=_int_arg("per_page", alert_service.FEED_PER_PAGE),
            since=_since_arg(),
        )
    except InvalidInput as bad:
        db.session.commit()
        return jsonify(error=str(bad)), 400
    db.session.commit()
    following = (
        url_for("alerts_api.alerts_feed", **{**request.args.to_dict(), "page": page.page + 1})
        if page.has_more
        else None
    )
    return jsonify(
        generated_at=now.isoformat(timespec="seconds"),
        total=page.total,
        page=page.page,
        per_page=page.per_page,
        pages=page.pages,
        count=len(page.alerts),
        has_more=page.has_more,
        next_page=following,
        next_since=page.next_since.isoformat(timespec="microseconds"),
        alerts=page.alerts,
    )


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"参数 {name} 应为整数") from None


def _since_arg() -> dt.datetime | None:
    """``since``: an ISO 8601 time on the server's clock (as ``next_since`` gives it); one with a
    UTC offset is converted to the server's local time."""
    raw = (request.args.get("since") or "").strip()
    if not raw:
        return None
    try:
        since = dt.datetime.fromisoformat(raw.replace(" ", "T").replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput("参数 since 应为 ISO 8601 时间，如 2026-11-29T08:00:00") from None
    if since.tzinfo is not None:
        since = since.astimezone().replace(tzinfo=None)
    return since


def init_app(app):
    from app import csrf

    app.add_template_filter(Severity.label_of, "severity_label")
    app.add_template_filter(AlertStatus.label_of, "alert_status_label")
    app.add_template_filter(AlertSource.label_of, "alert_source_label")
    csrf.exempt(api)
    app.register_blueprint(api)


def register(admin):
    admin.add_view(AlertCenterView(name="预警中心", endpoint="alerts", url="/admin/alerts", category=MENU))
    admin.add_view(VisitView(Visit, name="巡查走访", endpoint="visit"))
    admin.add_view(MandatoryReportView(MandatoryReport, name="强制报告", endpoint="mandatoryreport"))
    admin.add_view(ApiTokenView(ApiToken, name="141平台接口令牌", endpoint="apitoken"))
