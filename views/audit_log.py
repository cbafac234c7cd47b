"""操作日志: the audit log read as a person would tell it.

Who (the person's name and role, not the login name), when (local time, to the second), what
(新增/修改/查看完整身份证号 …), on which record (the table by its Chinese name) and which fields
changed, old → new, under the labels and choice labels the forms use: 开始时间, 参与对象：儿童、家长,
是/否, the name a foreign key points at, the people of an attendance list. Presets (今天, 本周, 上周,
本月, 上月) and one-click filters (查看完整身份证号, 导出, 登录) sit above the list, so "who revealed
an ID number last week" is one click from the log, and one from the inspector's 工作台.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app, has_request_context
from flask_admin.contrib.sqla.filters import BaseSQLAFilter, FilterEqual
from markupsafe import Markup

from choices import (
    ActivityKind,
    AlertClosure,
    AlertSource,
    AlertStatus,
    AssessmentMethod,
    AssessmentStatus,
    AttachmentKind,
    Audience,
    AuditAction,
    CaseStage,
    CaseStudyStatus,
    CaseType,
    ChildStatus,
    Choice,
    ConsentMethod,
    ConsentScope,
    Department,
    ExpenseCategory,
    ExpenseStatus,
    FeedbackChannel,
    FeedbackSource,
    FollowUpMethod,
    FundKind,
    Gender,
    GuardianStatus,
    InspectionLevel,
    Level,
    PublicityForm,
    RectificationSource,
    RectificationStatus,
    Relation,
    ReporterKind,
    ReportOutcome,
    Role,
    ServiceKind,
    ServiceStatus,
    Severity,
    StaffKind,
    TransferKind,
    TransferStatus,
    Urgency,
    VillageKind,
    VisitKind,
)
from models import AuditLog, Child, Guardian, Indicator, Staff, User, VetoItem, db
from services import clock
from views.base import ChoiceFilter, ReadOnlyModelView
from views.labels import LABELS, TABLE_LABELS

# Choices read by column name wherever no view declares them for the table.
COLUMN_CHOICES: dict[str, type[Choice]] = {
    "level": Level,
    "current_level": Level,
    "computed_level": Level,
    "override_level": Level,
    "tier": Level,
    "severity": Severity,
    "audience": Audience,
    "allowed_categories": ExpenseCategory,
    "methods": AssessmentMethod,
    "departments": Department,
    "relation": Relation,
    "role": Role,
    "gender": Gender,
    "action": AuditAction,
}
TABLE_CHOICES: dict[tuple[str, str], type[Choice]] = {
    ("activity", "kind"): ActivityKind,
    ("child", "status"): ChildStatus,
    ("child_status_change", "status"): ChildStatus,
    ("assessment", "status"): AssessmentStatus,
    ("support_service", "kind"): ServiceKind,
    ("support_service", "status"): ServiceStatus,
    ("visit", "kind"): VisitKind,
    ("mandatory_report", "outcome"): ReportOutcome,
    ("mandatory_report", "urgency"): Urgency,
    ("mandatory_report", "reporter_kind"): ReporterKind,
    ("alert", "status"): AlertStatus,
    ("alert", "source"): AlertSource,
    ("alert", "closure"): AlertClosure,
    ("case_file", "stage"): CaseStage,
    ("case_file", "case_type"): CaseType,
    ("case_follow_up", "method"): FollowUpMethod,
    ("case_follow_up", "stage"): CaseStage,
    ("case_type_rule", "case_type"): CaseType,
    ("fund_source", "kind"): FundKind,
    ("expense", "status"): ExpenseStatus,
    ("expense", "category"): ExpenseCategory,
    ("staff", "kind"): StaffKind,
    ("village", "kind"): VillageKind,
    ("guardian", "status"): GuardianStatus,
    ("inspection", "level"): InspectionLevel,
    ("rectification", "status"): RectificationStatus,
    ("rectification", "source"): RectificationSource,
    ("transfer", "kind"): TransferKind,
    ("transfer", "status"): TransferStatus,
    ("consent", "scope"): ConsentScope,
    ("consent", "method"): ConsentMethod,
    ("attachment", "kind"): AttachmentKind,
    ("feedback", "source_kind"): FeedbackSource,
    ("feedback", "channel"): FeedbackChannel,
    ("publicity_event", "form"): PublicityForm,
    ("case_study", "status"): CaseStudyStatus,
}

# The audit log's own columns, by what they mean in a sentence.
AUDIT_LABELS = {
    **LABELS,
    "at": "时间",
    "user_id": "操作人",
    "ip": "来源地址",
    "action": "操作",
    "table_name": "对象",
    "record_id": "记录编号",
    "summary": "摘要",
    "changes": "变更内容",
}

# Keys of the changes that events (not row updates) record.
EVENT_LABELS = {
    ("attendance", "added"): "新增签到",
    ("attendance", "removed"): "取消签到",
    ("child", "merged_from"): "并入的儿童编号",
    ("child", "moved"): "转移的记录",
    ("child", "created"): "新增儿童",
    ("child", "updated"): "更新儿童",
    ("child", "skipped"): "跳过",
    ("child", "guardians_created"): "新增监护人",
}

# Attendance lists are stored as keys (c:12 child, g:3 guardian, s:7 staff).
_ATTENDEE_MODELS = {"c": Child, "g": Guardian, "s": Staff}


# --------------------------------------------------------------------------- local time


def local(utc: dt.datetime | None) -> dt.datetime | None:
    """A stored UTC time (``models.utcnow``) on the server's clock, like the other times shown."""
    if utc is None:
        return None
    return utc.replace(tzinfo=dt.UTC).astimezone().replace(tzinfo=None)


def to_utc(moment: dt.datetime) -> dt.datetime:
    """A local wall-clock time as the UTC the log is stored in."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


PERIODS = {
    "today": "今天",
    "this_week": "本周",
    "last_week": "上周",
    "this_month": "本月",
    "last_month": "上月",
}


def period_bounds(name: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """[first day, day after the last) of a preset, in local dates: 上周 is last Monday to Sunday."""
    monday = today - dt.timedelta(days=today.weekday())
    first = today.replace(day=1)
    if name == "today":
        return today, today + dt.timedelta(days=1)
    if name == "this_week":
        return monday, monday + dt.timedelta(days=7)
    if name == "last_week":
        return monday - dt.timedelta(days=7), monday
    if name == "this_month":
        return first, (first + dt.timedelta(days=32)).replace(day=1)
    if name == "last_month":
        return (first - dt.timedelta(days=1)).replace(day=1), first
    raise ValueError(name)


def _utc_range(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    return to_utc(dt.datetime.combine(start, dt.time())), to_utc(dt.datetime.combine(end, dt.time()))


class PeriodFilter(BaseSQLAFilter):
    """时间段: the presets, in local days."""

    def __init__(self):
        super().__init__(AuditLog.at, "时间段", options=list(PERIODS.items()))

    def operation(self):
        return "为"

    def validate(self, value):
        return value in PERIODS

    def apply(self, query, value, alias=None):
        start, end = _utc_range(*period_bounds(value, clock.today()))
        return query.filter(AuditLog.at >= start, AuditLog.at < end)


class LocalDaysFilter(BaseSQLAFilter):
    """日期 介于: two local dates, both days included (the log's times are stored in UTC)."""

    def __init__(self):
        super().__init__(AuditLog.at, "日期", data_type="daterangepicker")

    def operation(self):
        return "介于"

    def clean(self, value):
        first, _, last = value.partition(" to ")
        start, end = dt.date.fromisoformat(first.strip()), dt.date.fromisoformat(last.strip())
        return start, end

    def validate(self, value):
        try:
            start, end = self.clean(value)
        except ValueError:
            return False
        return start <= end

    def apply(self, query, value, alias=None):
        start, end = value
        low, high = _utc_range(start, end + dt.timedelta(days=1))
        return query.filter(AuditLog.at >= low, AuditLog.at < high)


class TableFilter(FilterEqual):
    def __init__(self):
        super().__init__(
            AuditLog.table_name, "对象", options=sorted(TABLE_LABELS.items(), key=lambda kv: kv[1])
        )


class PersonFilter(FilterEqual):
    """操作人: by name and role, among the accounts."""

    def __init__(self):
        super().__init__(AuditLog.user_id, "操作人", options=self._options)

    @staticmethod
    def _options():
        if not has_request_context():
            return []
        users = db.session.scalars(db.select(User).order_by(User.role, User.id))
        return [(u.id, person_label(u)) for u in users]

    def clean(self, value):
        return int(value)


def person_label(user: User | None, username: str | None = None) -> str:
    if user is None:
        return username or "系统"
    return f"{user.display_name or user.username}（{Role.label_of(user.role)}）"


# --------------------------------------------------------------------------- reading the changes


def _view_labels() -> tuple[dict, dict]:
    """Per table: the field labels and choice columns its views use (the same words as the forms)."""
    cached = current_app.extensions.get("audit_labels")
    if cached is not None:
        return cached
    labels: dict[str, dict] = {}
    choices: dict[str, dict] = {}
    for view in current_app.extensions["admin"][0]._views:
        model = getattr(view, "model", None)
        if model is None or not hasattr(model, "__tablename__"):
            continue
        table = model.__tablename__
        labels.setdefault(table, {}).update(
            {k: str(v) for k, v in (view.column_labels or {}).items() if "." not in k}
        )
        choices.setdefault(table, {}).update(getattr(view, "choice_columns", None) or {})
    current_app.extensions["audit_labels"] = (labels, choices)
    return labels, choices


def field_label(table: str | None, name: str) -> str:
    labels, _ = _view_labels()
    own = labels.get(table or "", {})
    if name in own:
        return own[name]
    if name in LABELS:
        return LABELS[name]
    if (table, name) in EVENT_LABELS:
        return EVENT_LABELS[table, name]
    if name.endswith("_id") and (name[:-3] in own or name[:-3] in LABELS):
        return own.get(name[:-3]) or LABELS[name[:-3]]
    return name


def _choice_for(table: str | None, name: str) -> type[Choice] | None:
    _, choices = _view_labels()
    return (
        choices.get(table or "", {}).get(name) or TABLE_CHOICES.get((table, name)) or COLUMN_CHOICES.get(name)
    )


def _foreign_model(table: str | None, name: str):
    """The model a foreign-key column points at (caring_mother_id → Staff)."""
    if not table or table not in db.metadata.tables or name not in db.metadata.tables[table].c:
        return None
    for fk in db.metadata.tables[table].c[name].foreign_keys:
        target = fk.column.table.name
        for mapper in db.Model.registry.mappers:
            if getattr(mapper.class_, "__tablename__", None) == target:
                return mapper.class_
    return None


def _named(model, pk) -> str:
    obj = db.session.get(model, pk) if pk is not None else None
    if obj is None:
        return f"（编号{pk}，已不存在）"
    if model is User:
        return person_label(obj)
    return str(obj)


def _attendee(key: str) -> str:
    kind, _, pk = str(key).partition(":")
    model = _ATTENDEE_MODELS.get(kind)
    if model is None:
        return pk or str(key)  # 临时:姓名 (a walk-in) reads as it is
    try:
        return _named(model, int(pk))
    except ValueError:
        return str(key)


def _rule_name(model, code) -> str:
    name = db.session.scalar(db.select(model.name).where(model.code == code))
    return name or str(code)


def show_value(table: str | None, name: str, value) -> str:
    """One old or new value as the forms would show it."""
    if value in (None, "", [], {}):
        return "（空）"
    if isinstance(value, bool):
        return "是" if value else "否"
    if table == "attendance" and isinstance(value, list):
        return "、".join(_attendee(v) for v in value)
    if name == "vetoes" and isinstance(value, list):
        return "、".join(_rule_name(VetoItem, v) for v in value)
    if name == "scores" and isinstance(value, dict):
        return "；".join(f"{_rule_name(Indicator, k)} {v}分" for k, v in value.items())
    choice = _choice_for(table, name)
    if isinstance(value, list):
        return "、".join(choice.label_of(v) if choice else str(v) for v in value)
    if choice is not None:
        return choice.label_of(value)
    model = _foreign_model(table, name)
    if model is not None:
        return _named(model, value)
    if isinstance(value, str) and len(value) >= 16 and value[4:5] == "-" and value[10:11] == "T":
        return value.replace("T", " ")[:19]
    if isinstance(value, dict):
        return "；".join(
            f"{field_label(table, str(k))} {show_value(table, str(k), v)}" for k, v in value.items()
        )
    return str(value)


def changes_html(view, context, model, name):
    if not model.changes:
        return ""
    items = []
    for key, change in model.changes.items():
        label = field_label(model.table_name, key)
        if isinstance(change, list) and len(change) == 2 and model.table_name != "attendance":
            old, new = (show_value(model.table_name, key, v) for v in change)
            if model.action == "create":
                items.append(Markup("<li><b>{}</b>：{}</li>").format(label, new))
            else:
                items.append(Markup("<li><b>{}</b>：{} → {}</li>").format(label, old, new))
        else:
            items.append(
                Markup("<li><b>{}</b>：{}</li>").format(label, show_value(model.table_name, key, change))
            )
    return Markup("<ul class='mb-0 pl-3 small audit-changes'>") + Markup("").join(items) + Markup("</ul>")


def _who(view, context, model, name):
    users = getattr(view, "_users", None) or {}
    return person_label(
        users.get(model.user_id) or (db.session.get(User, model.user_id) if model.user_id else None),
        model.username,
    )


def _summary(view, context, model, name):
    if model.action in ("login", "logout") and model.table_name == "user_account":
        return ""  # the person is in 操作人
    if model.action == "login_failed":
        return f"尝试的登录名：{model.summary or ''}"
    return model.summary or ""


class AuditLogView(ReadOnlyModelView):
    """Read-only for admins and inspectors; nobody edits or deletes the log through the UI."""

    area = "audit"
    list_template = "audit/list.html"
    can_view_details = True
    column_list = ("at", "user_id", "action", "table_name", "record_id", "summary", "changes", "ip")
    column_details_list = column_list
    column_labels = AUDIT_LABELS
    column_default_sort = ("id", True)
    column_sortable_list = ("at",)
    column_searchable_list = ("username", "summary")
    column_filters = (
        PeriodFilter(),
        ChoiceFilter(AuditLog.action, "操作", AuditAction),
        TableFilter(),
        PersonFilter(),
        LocalDaysFilter(),
    )
    choice_columns = {"action": AuditAction}
    column_formatters = {
        "at": lambda v, c, m, n: f"{local(m.at):%Y-%m-%d %H:%M:%S}",
        "user_id": _who,
        "table_name": lambda v, c, m, n: TABLE_LABELS.get(m.table_name or "", m.table_name or ""),
        "changes": changes_html,
        "summary": _summary,
    }
    column_formatters_detail = column_formatters
    page_size = 50

    def search_placeholder(self):
        return "搜索：登录名、摘要（如儿童姓名）"

    def get_list(self, *args, **kwargs):
        count, rows = super().get_list(*args, **kwargs)
        ids = {r.user_id for r in rows if r.user_id}
        self._users = (
            {u.id: u for u in db.session.scalars(db.select(User).where(User.id.in_(ids)))} if ids else {}
        )
        return count, rows

    def quick_links(self):
        """The preset chips: period × kind, each keeping the other's choice."""
        period = kind = None
        for index, _name, value in self._get_list_filter_args() or ():
            flt = self._filters[index]
            if isinstance(flt, PeriodFilter) and value in PERIODS:
                period = value
            elif isinstance(flt, ChoiceFilter) and value in QUICK_KINDS:
                kind = value
        periods = [(label, self.quick_url(key, kind), key == period) for key, label in PERIODS.items()]
        periods.insert(0, ("全部时间", self.quick_url(None, kind), period is None))
        kinds = [(label, self.quick_url(period, key), key == kind) for key, label in QUICK_KINDS.items()]
        kinds.insert(0, ("全部操作", self.quick_url(period, None), kind is None))
        return periods, kinds

    def quick_url(self, period: str | None, kind: str | None) -> str:
        return quick_audit_url(period, kind)


# One-click kinds of entry (操作 filter values).
QUICK_KINDS = {
    AuditAction.REVEAL.value: "查看完整身份证号",
    AuditAction.EXPORT.value: "导出",
    AuditAction.VIEW.value: "查阅档案",
    AuditAction.LOGIN_FAILED.value: "登录失败",
}


def quick_audit_url(period: str | None = None, kind: str | None = None) -> str:
    """The audit log filtered to a preset period and one kind of entry (both optional)."""
    from views.assessment import filtered_url

    pairs = []
    if period:
        pairs.append((PeriodFilter, period))
    if kind:
        pairs.append(("操作", kind))
    return filtered_url("auditlog", pairs)


def reveal_count(period: str = "last_week") -> int:
    start, end = _utc_range(*period_bounds(period, clock.today()))
    return db.session.scalar(
        db.select(db.func.count(AuditLog.id)).where(
            AuditLog.action == AuditAction.REVEAL.value, AuditLog.at >= start, AuditLog.at < end
        )
    )


__all__ = ["AuditLogView", "quick_audit_url", "reveal_count"]
