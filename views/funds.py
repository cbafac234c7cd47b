"""Funds: fund sources, expenses (草稿 → 已审批 → 已支付, 红字冲销), the 资金使用检查 screen and the ledger."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path

from flask import current_app, flash, redirect, request, send_file, session, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla.filters import DateBetweenFilter, FilterEqual, FilterLike
from flask_admin.model.template import DeleteRowAction, EditRowAction
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy.exc import IntegrityError
from wtforms import IntegerField, RadioField, SelectMultipleField, StringField
from wtforms.validators import Optional
from wtforms.widgets import CheckboxInput, ListWidget

from choices import ExpenseCategory, ExpenseStatus, FindingSeverity, FundKind, FundRule
from models import Activity, Expense, FundSource, SupportService, db
from services import audit, clock, fund_checks, indicators, ledger
from services.errors import Refused
from services.funds import (
    AMOUNT_MAX,
    approve,
    awaiting_approval,
    awaiting_count,
    category_budgets,
    check_expense,
    check_source,
    is_editable,
    load_thresholds,
    pay,
    refuse,
    resubmitted,
    return_to_draft,
    reversal_of,
    reverse,
    source_budgets,
    totals,
)
from services.validation import InvalidInput, parse_id
from services.xlsx_export import XLSX_MIMETYPE
from views.base import ChoiceFilter, ScopedModelView, SecureView, TaskLink, arg_id, current_scope
from views.chips import ChipsQuerySelectField
from views.labels import LABELS

MENU_FUNDS = "资金管理"

FUND_LABELS = {
    **LABELS,
    "id": "编号",
    "name": "资金来源",
    "kind": "资金类型",
    "amount": "金额（元）",
    "received_on": "到账日期",
    "document_no": "文号",
    "allowed_categories": "允许用途",
    "valid_from": "有效期起",
    "valid_to": "有效期止",
    "spent_on": "支出日期",
    "source": "资金来源",
    "category": "支出类别",
    "payee": "收款方",
    "purpose": "用途",
    "activity": "关联活动",
    "service": "关联服务",
    "service_ref": "关联服务编号",
    "service_id": "关联服务编号",
    "child": "关联儿童",
    "child_id": "关联儿童编号",
    "voucher_no": "凭证号",
    "invoice_attached": "发票已附",
    "status": "状态",
    "handler": "经办人",
    "approver": "审批人",
    "approved_at": "审批时间",
    "paid_at": "支付时间",
    "collective_decision_ref": "集体决策文号",
    "reverses_id": "冲销原支出",
    "created_at": "录入时间",
}

STATUS_BADGES = {
    ExpenseStatus.DRAFT.value: "badge-secondary",
    ExpenseStatus.APPROVED.value: "badge-info",
    ExpenseStatus.PAID.value: "badge-success",
}


def money(view, context, model, name):
    value = getattr(model, name)
    return "" if value is None else f"¥{value:,.2f}"


def category_labels(view, context, model, name):
    return "、".join(ExpenseCategory.label_of(c) for c in getattr(model, name) or []) or "不限"


def status_badge(view, context, model, name):
    return Markup('<span class="badge {}">{}</span>').format(
        STATUS_BADGES.get(model.status, "badge-light"), ExpenseStatus.label_of(model.status)
    )


def reverses_label(view, context, model, name):
    return f"冲销第{model.reverses_id}号" if model.reverses_id else ""


def _add_error(field, message: str) -> None:
    field.errors = list(field.errors or []) + [message]


def _source_options():
    from flask import has_request_context

    if not has_request_context():
        return []
    return [
        (s.id, s.name) for s in db.session.scalars(db.select(FundSource).order_by(FundSource.received_on))
    ]


class FundSourceView(ScopedModelView):
    area = "funds"
    list_template = "funds/list.html"
    menu_category = MENU_FUNDS
    column_list = (
        "id",
        "name",
        "kind",
        "amount",
        "received_on",
        "document_no",
        "allowed_categories",
        "valid_from",
        "valid_to",
    )
    column_labels = FUND_LABELS
    column_default_sort = ("received_on", True)
    column_sortable_list = (
        "id",
        "name",
        "kind",
        "amount",
        "received_on",
        "document_no",
        "valid_from",
        "valid_to",
    )
    column_searchable_list = ("name", "document_no")
    column_filters = (
        ChoiceFilter(FundSource.kind, "资金类型", FundKind),
        DateBetweenFilter(FundSource.received_on, "到账日期"),
    )
    column_formatters = {"amount": money, "allowed_categories": category_labels}
    column_formatters_export = {"allowed_categories": category_labels}
    column_details_list = (*column_list, "notes")
    choice_columns = {"kind": FundKind}
    form_columns = (
        "name",
        "kind",
        "amount",
        "received_on",
        "document_no",
        "allowed_categories",
        "valid_from",
        "valid_to",
        "notes",
    )
    form_overrides = {"amount": StringField, "allowed_categories": SelectMultipleField}
    form_args = {
        "amount": {
            "description": "单位：元，精确到分，如 200000.00；不超过10,000,000.00",
            "allow_zero": False,
            "hi": AMOUNT_MAX,
        },
        "allowed_categories": {
            "choices": ExpenseCategory.choices(),
            "widget": ListWidget(prefix_label=False),
            "option_widget": CheckboxInput(),
            "validators": [Optional()],
            "description": "专款专用：只能用于所选类别；不选表示不限",
        },
        "document_no": {"description": "拨付文件文号，如 涪民发〔2026〕12号"},
        "valid_from": {"description": "可不填：资金可使用的起始日期"},
        "valid_to": {"description": "可不填：资金须在此日期前使用完毕"},
    }

    def validate_form(self, form):
        ok = super().validate_form(form)
        if request.method != "POST" or not hasattr(form, "amount"):
            return ok
        if form.amount.data is None and not form.amount.errors:
            _add_error(form.amount, "请填写金额")
        if form.valid_from.data and form.valid_to.data and form.valid_to.data < form.valid_from.data:
            _add_error(form.valid_to, "有效期截止日期不能早于起始日期")
        return ok and not any(f.errors for f in form)

    def on_model_change(self, form, model, is_created):
        model.allowed_categories = list(model.allowed_categories or [])
        errors = check_source(model)
        if errors:
            raise InvalidInput("；".join(errors.values()))

    def row_action_shown(self, action, row) -> bool:
        return True

    def delete_model(self, model):
        used = db.session.scalar(db.select(Expense.id).where(Expense.source_id == model.id).limit(1))
        if used:
            flash(f"资金来源「{model.name}」已有支出记录，不能删除", "error")
            return False
        return super().delete_model(model)

    def handle_view_exception(self, exc):
        if isinstance(exc, InvalidInput):
            flash(str(exc), "error")
            return True
        return super().handle_view_exception(exc)


class ExpenseView(ScopedModelView):
    area = "funds"
    list_template = "funds/list.html"
    menu_category = MENU_FUNDS
    details_template = "funds/expense_details.html"
    column_list = (
        "id",
        "spent_on",
        "amount",
        "source",
        "category",
        "payee",
        "voucher_no",
        "invoice_attached",
        "status",
        "handler",
        "approver",
        "reverses_id",
    )
    column_export_list = (
        "id",
        "spent_on",
        "amount",
        "source",
        "category",
        "payee",
        "purpose",
        "activity",
        "voucher_no",
        "invoice_attached",
        "status",
        "handler",
        "approver",
        "approved_at",
        "paid_at",
        "collective_decision_ref",
        "reverses_id",
    )
    column_details_list = (
        "id",
        "spent_on",
        "amount",
        "source",
        "category",
        "payee",
        "purpose",
        "activity",
        "service_id",
        "child_id",
        "voucher_no",
        "invoice_attached",
        "collective_decision_ref",
        "status",
        "handler",
        "approver",
        "approved_at",
        "paid_at",
        "reverses_id",
        "return_note",
        "created_at",
    )
    column_labels = {**FUND_LABELS, "return_note": "退回原因"}
    column_default_sort = [("spent_on", True), ("id", True)]
    column_sortable_list = (
        "id",
        "spent_on",
        "amount",
        "payee",
        "voucher_no",
        "status",
        ("source", "source.name"),
    )
    column_searchable_list = ("payee", "voucher_no", "purpose")
    column_filters = (
        ChoiceFilter(Expense.status, "状态", ExpenseStatus),
        ChoiceFilter(Expense.category, "支出类别", ExpenseCategory),
        FilterEqual(Expense.source_id, "资金来源", options=_source_options),
        DateBetweenFilter(Expense.spent_on, "支出日期"),
        FilterLike(Expense.payee, "收款方"),
        FilterEqual(Expense.voucher_no, "凭证号"),
        FilterEqual(Expense.activity_id, "关联活动编号"),
        FilterEqual(Expense.id, "支出编号"),
    )
    column_formatters = {
        "amount": money,
        "status": status_badge,
        "reverses_id": reverses_label,
    }
    column_formatters_detail = {
        **column_formatters,
        "invoice_attached": lambda v, c, m, n: "是" if m.invoice_attached else "否",
        "created_at": lambda v, c, m, n: f"{m.created_at:%Y-%m-%d %H:%M}" if m.created_at else "",
        "approved_at": lambda v, c, m, n: f"{m.approved_at:%Y-%m-%d %H:%M}" if m.approved_at else "",
        "paid_at": lambda v, c, m, n: f"{m.paid_at:%Y-%m-%d %H:%M}" if m.paid_at else "",
    }
    column_formatters_export = {}
    choice_columns = {"category": ExpenseCategory, "status": ExpenseStatus}
    form_columns = (
        "spent_on",
        "amount",
        "source",
        "category",
        "payee",
        "purpose",
        "activity",
        "service_ref",
        "child",
        "voucher_no",
        "invoice_attached",
        "collective_decision_ref",
    )
    form_overrides = {"amount": StringField, "source": ChipsQuerySelectField, "category": RadioField}
    form_extra_fields = {
        "service_ref": IntegerField(
            "关联服务编号", validators=[Optional()], description="专业服务支出请填写对应赋能服务记录的编号"
        )
    }
    form_args = {
        "spent_on": {"default": clock.today},
        "amount": {
            "description": "单位：元，精确到分；大于0且不超过10,000,000.00",
            "allow_zero": False,
            "allow_negative": True,  # a 红字冲销 counter-entry; new expenses are checked below
            "hi": AMOUNT_MAX,
        },
        "source": {
            "description": "专款专用：支出类别须在该资金的允许用途内",
            "query_factory": lambda: db.session.query(FundSource).order_by(FundSource.received_on.desc()),
        },
        "category": {"choices": ExpenseCategory.choices()},
        "activity": {
            "description": "活动开展类支出请选择对应活动（按活动预算核对）",
            "blank_text": "（不关联活动）",
        },
        "voucher_no": {"description": "记账凭证号，不能与其他支出重复"},
        "collective_decision_ref": {"description": "单笔超过集体决策限额（默认30,000元）时必填：会议纪要号"},
    }
    form_ajax_refs = {"child": {"fields": ("name",), "page_size": 10}}
    extra_write_endpoints = frozenset(
        {"approve_view", "pay_view", "draft_view", "reverse_view", "refuse_view"}
    )
    create_endpoints = frozenset({"reverse_view"})

    # --- forms ---------------------------------------------------------------------------

    def _scope_form(self, form):
        activity = getattr(form, "activity", None)
        if activity is not None:
            # Fund officers see activity names (SPEC: funds only + activity names), whatever their villages.
            everything = db.session.query(Activity).order_by(Activity.starts_at.desc())
            activity.query = everything
            activity.query_factory = lambda: everything
            activity._scoped = True
        form = super()._scope_form(form)
        if current_scope() == [] and hasattr(form, "child"):
            del form["child"]
        return form

    def on_form_prefill(self, form, id):
        super().on_form_prefill(form, id)
        model = self.get_one(id)
        if model is not None and hasattr(form, "service_ref"):
            form.service_ref.data = model.service_id

    def validate_form(self, form):
        ok = super().validate_form(form)
        if request.method != "POST" or not hasattr(form, "amount"):
            return ok
        editing = arg_id()
        original = db.session.get(Expense, editing) if editing else None
        counter_entry = original is not None and original.reverses_id
        if form.amount.data is None and not form.amount.errors:
            _add_error(form.amount, "请填写金额")
        elif form.amount.data is not None and form.amount.data < 0 and not counter_entry:
            _add_error(form.amount, "金额必须大于0")
        if not (form.payee.data or "").strip():
            _add_error(form.payee, "请填写收款方")
        ref = form.service_ref.data
        if ref is not None and parse_id(ref) is None:
            _add_error(form.service_ref, "关联服务编号无效")
        elif ref and db.session.get(SupportService, ref) is None:
            # Only the number is checked: fund officers see no children's records (SPEC: funds only).
            _add_error(form.service_ref, f"找不到编号为{ref}的赋能服务记录")
        return ok and not any(f.errors for f in form)

    def on_model_change(self, form, model, is_created):
        if is_created:
            model.handler_id = current_user.id
            model.status = ExpenseStatus.DRAFT.value
        elif not is_editable(model):
            raise InvalidInput("只有草稿可以修改；已支付的支出只能红字冲销")
        elif model.returned_at is not None:
            resubmitted(model)  # corrected after 退回: it waits for approval again
        if hasattr(form, "service_ref"):
            model.service_id = form.service_ref.data or None
        errors = check_expense(model)
        if errors:
            raise InvalidInput("；".join(errors.values()))

    def handle_view_exception(self, exc):
        if isinstance(exc, InvalidInput):
            flash(str(exc), "error")
            return True
        return super().handle_view_exception(exc)

    def row_action_shown(self, action, row) -> bool:
        changes = isinstance(action, EditRowAction | DeleteRowAction)
        return not changes or is_editable(row)

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        model = self.get_one(request.args.get("id"))
        if model is not None and not is_editable(model):
            flash(_not_editable(model), "error")
            return redirect(self.get_url(".details_view", id=model.id))
        return super().edit_view()

    def delete_model(self, model):
        if not is_editable(model):
            flash(_not_editable(model), "error")
            return False
        return super().delete_model(model)

    # --- workflow: list actions and detail buttons ---------------------------------------

    def _each(self, ids, step, done: str):
        th = load_thresholds()
        count = 0
        for expense in db.session.scalars(db.select(Expense).where(Expense.id.in_([int(i) for i in ids]))):
            try:
                warnings = step(expense, th) or []
            except InvalidInput as bad:
                flash(str(bad), "error")
                continue
            count += 1
            for warning in warnings:
                flash(warning, "warning")
        db.session.commit()
        if count:
            flash(f"已{done} {count} 笔支出", "success")

    @action("approve", "审批通过", "确定审批通过所选支出吗？审批人不能是经办人本人。")
    def action_approve(self, ids):
        self._each(ids, lambda e, th: approve(e, current_user.id, clock.now(), th), "审批")

    @action("pay", "确认支付", "确定所选支出已支付吗？已支付的支出不能再修改，只能红字冲销。")
    def action_pay(self, ids):
        self._each(ids, lambda e, th: pay(e, clock.now()), "确认支付")

    @action("draft", "退回草稿", "确定将所选已审批支出退回草稿吗？")
    def action_draft(self, ids):
        self._each(ids, lambda e, th: return_to_draft(e), "退回")

    def _one_step(self, step, done: str):
        expense = self.get_one(request.args.get("id"))
        if expense is None:
            flash("记录不存在。", "error")
            return redirect(self.get_url(".index_view"))
        seen = request.form.get("version_seen")
        if seen and seen != str(expense.version):
            # the page was drawn before someone else approved, paid or returned it
            raise Refused("该支出刚被他人处理，请刷新后重试", 409)
        self._each([expense.id], step, done)
        return redirect(_back_to(request.form.get("back")) or self.get_url(".details_view", id=expense.id))

    @expose("/approve/", methods=("POST",))
    def approve_view(self):
        return self._one_step(lambda e, th: approve(e, current_user.id, clock.now(), th), "审批")

    @expose("/refuse/", methods=("POST",))
    def refuse_view(self):
        """退回经办人 with a reason (from the details page or the 待我审批 list)."""
        expense = self.get_one(request.args.get("id"))
        if expense is None:
            flash("记录不存在。", "error")
            return redirect(self.get_url(".index_view"))
        try:
            refuse(expense, current_user.id, clock.now(), request.form.get("note", ""))
        except InvalidInput as bad:
            flash(str(bad), "error")
        else:
            db.session.commit()
            flash(f"已退回第{expense.id}号支出，经办人修改后会重新出现在待审批中", "success")
        return redirect(_back_to(request.form.get("back")) or self.get_url(".details_view", id=expense.id))

    @expose("/pay/", methods=("POST",))
    def pay_view(self):
        return self._one_step(lambda e, th: pay(e, clock.now()), "确认支付")

    @expose("/draft/", methods=("POST",))
    def draft_view(self):
        return self._one_step(lambda e, th: return_to_draft(e), "退回")

    @expose("/reverse/", methods=("GET", "POST"))
    def reverse_view(self):
        expense = self.get_one(request.args.get("id"))
        if expense is None:
            flash("记录不存在。", "error")
            return redirect(self.get_url(".index_view"))
        error = None
        if request.method == "POST":
            try:
                counter = reverse(
                    expense,
                    current_user.id,
                    clock.today(),
                    request.form.get("reason", ""),
                    request.form.get("voucher_no"),
                )
            except InvalidInput as bad:
                error = str(bad)
            else:
                db.session.commit()
                flash(
                    f"已生成红字冲销记录第{counter.id}号（{counter.amount:,.2f}元），原支出第{expense.id}号保留；"
                    "冲销记录须经他人审批并确认后生效。",
                    "success",
                )
                return redirect(self.get_url(".details_view", id=counter.id))
        return self.render("funds/reverse.html", expense=expense, error=error, form_values=request.form)

    def render(self, template, **kwargs):
        if template == self.details_template and kwargs.get("model") is not None:
            model = kwargs["model"]
            kwargs["reversal"] = reversal_of(model.id)
            kwargs["handler_is_me"] = model.handler_id == current_user.id
            kwargs["status_label"] = ExpenseStatus.label_of
        return super().render(template, **kwargs)


def _back_to(path: str | None) -> str | None:
    """Where a workflow button was pressed (the 待我审批 list): a path of this site only."""
    if path and path.startswith("/admin/") and "//" not in path and "\\" not in path:
        return path
    return None


class ApprovalView(SecureView):
    """待我审批: the drafts someone else handled, with the facts an approver checks and the two
    buttons on each row (审批通过, 退回 with a reason)."""

    area = "funds"

    def is_visible(self):
        return self.may_write  # in the menu of those who approve; readers may open the list

    @expose("/")
    def index(self):
        # Readers (clerk, inspector) see every draft waiting; an approver, those others handled.
        who = current_user.id if self.may_write else 0
        expenses = db.session.scalars(awaiting_approval(who).limit(200)).all()
        th = load_thresholds()
        return self.render(
            "funds/approval.html",
            expenses=expenses,
            count=awaiting_count(who),
            may_write=self.may_write,
            thresholds=th,
            category_label=ExpenseCategory.label_of,
            back=url_for(".index"),
        )


def _not_editable(model) -> str:
    if model.status == ExpenseStatus.PAID.value:
        return f"第{model.id}号支出已支付，不能修改或删除；如需更正请使用“红字冲销”"
    return f"第{model.id}号支出已审批，不能直接修改；请先“退回草稿”"


# --------------------------------------------------------------------------- 资金使用检查


def _date_arg(name: str) -> dt.date | None:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        flash(f"日期格式不正确：{value}（应为 2026-01-31）", "error")
        return None


def echarts_available() -> bool:
    return (Path(current_app.static_folder) / "vendor" / "echarts" / "echarts.min.js").exists()


class FundCheckView(SecureView):
    area = "funds"
    extra_write_endpoints = frozenset({"note"})
    create_endpoints = frozenset({"note"})

    def _period(self):
        year = clock.today().year
        if "start" in request.args or "end" in request.args:
            return _date_arg("start"), _date_arg("end")
        return dt.date(year, 1, 1), dt.date(year, 12, 31)

    @expose("/")
    def index(self):
        start, end = self._period()
        th = load_thresholds()
        sources = source_budgets(start, end)
        categories = category_budgets(start, end, sources)
        # The header counts the findings of the period the list shows (the same dates, every filter off).
        period_findings = fund_checks.filter_findings(fund_checks.run_all(th), start=start, end=end)
        rule = request.args.get("rule") or None
        severity = request.args.get("severity") or None
        source_id = arg_id("source")
        findings = fund_checks.filter_findings(
            period_findings, rule=rule, severity=severity, source_id=source_id
        )
        notes = fund_checks.notes_for(period_findings)
        figures = None
        if start and end and start <= end:
            frame = indicators.Frame.of_period(start, end)
            figures = indicators.compute_many(
                ("funds_available", "funds_paid", "funds_execution_rate"), frame
            )
        state = request.args.get("state") or None
        if state in ("open", "explained"):
            findings = [f for f in findings if fund_checks.stands(f, notes) == (state == "explained")]
        chart = {
            "sources": {
                "names": [b.name for b in sources],
                "budget": [float(b.budget or 0) for b in sources],
                "paid": [float(b.paid) for b in sources],
                "approved": [float(b.approved) for b in sources],
            },
            "categories": {
                "names": [b.name for b in categories],
                "paid": [float(b.paid) for b in categories],
                "approved": [float(b.approved) for b in categories],
            },
        }
        return self.render(
            "funds/check.html",
            start=start,
            end=end,
            sources=sources,
            categories=categories,
            total=totals(sources),
            findings=findings,
            figures=figures,
            finding_count=len(period_findings),
            open_count=len(fund_checks.unexplained(period_findings, notes)),
            notes=notes,
            draft=session.pop("finding_note_draft", None),
            stands=fund_checks.stands,
            state=state,
            may_write=self.may_write,
            counts_by_rule=_count_by(period_findings, "rule"),
            counts_by_severity=_count_by(period_findings, "severity"),
            rules=list(FundRule),
            severities=list(FindingSeverity),
            rule=rule,
            severity=severity,
            source_id=source_id,
            thresholds=th,
            chart_json=Markup(json.dumps(chart, ensure_ascii=False).replace("</", "<\\/")),
            echarts=echarts_available(),
            link_for=_finding_link,
            related_for=_related_link,
            **_rectification_context(period_findings),
        )

    @expose("/note/", methods=("POST",))
    def note(self):
        """核查说明 of one finding: kept with the finding while it reads the same, and audited."""
        form = request.form
        key = (form.get("rule", ""), form.get("target", ""), arg_id("target_id", source=form))
        try:
            fund_checks.explain(key, form.get("note", ""), current_user.id)
        except InvalidInput as bad:
            db.session.rollback()
            flash(str(bad), "error")
            # what was typed comes back in the form it was typed into
            session["finding_note_draft"] = {"key": list(key), "text": form.get("note", "")[:500]}
        else:
            try:
                db.session.commit()
            except IntegrityError:  # someone explained the same finding a moment ago
                db.session.rollback()
                flash("另一位用户刚刚保存了这条问题的说明，请查看后再修改。", "error")
            else:
                flash("已保存核查说明。问题仍在清单中，直到相关记录被更正。", "success")
        back = form.get("back", "")
        return redirect(back if back.startswith(self.get_url(".index")) else self.get_url(".index"))

    @expose("/ledger.xlsx")
    def ledger_view(self):
        start, end = self._period()
        findings = fund_checks.filter_findings(fund_checks.run_all(), start=start, end=end)
        from app import setting

        out = tempfile.TemporaryFile()  # noqa: SIM115 - send_file closes it after the response
        written = ledger.write_ledger(
            out,
            town=setting("town_name", current_app.config["TOWN_NAME"]),
            start=start,
            end=end,
            findings=findings,
            notes=fund_checks.notes_for(findings),
            generated_at=clock.now(),
        )
        audit.record(
            db.session,
            "export",
            table="expense",
            summary=f"导出资金使用台账（{ledger.period_text(start, end)}）：支出{written['expenses']}笔，"
            f"资金来源{written['sources']}个，问题{written['findings']}条",
        )
        db.session.commit()
        out.seek(0)
        return send_file(out, mimetype=XLSX_MIMETYPE, as_attachment=True, download_name=ledger.FILENAME)


def _rectification_context(findings) -> dict:
    """整改 of each finding (shown to whoever may read inspections) and the 转为整改 button (managers)."""
    from services import inspections
    from services.permissions import can_read

    role = current_user.role
    if not can_read(role, "inspections"):
        return {"rectifications": {}, "may_rectify": False, "rect_status": None}
    return {
        "rectifications": inspections.for_fund_findings(f.key for f in findings),
        "may_rectify": inspections.is_manager(role),
        "rect_status": lambda r: inspections.status_text(r, clock.today()),
    }


def _count_by(findings, attr: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in findings:
        key = getattr(f, attr)
        counts[key] = counts.get(key, 0) + 1
    return counts


def _finding_link(finding) -> str:
    if finding.target == "source":
        return url_for("fundsource.details_view", id=finding.target_id)
    if finding.target == "activity":
        return _expense_filter_url(Expense.activity_id, finding.target_id)
    return url_for("expense.details_view", id=finding.target_id)


def _related_link(finding) -> str | None:
    """The expense list narrowed to the entries a finding is about (a source's or several expenses)."""
    if finding.target == "source":
        return _expense_filter_url(Expense.source_id, finding.target_id)
    if len(finding.expense_ids) > 1:
        return url_for("expense.index_view", search=_shared_search(finding))
    return None


def _shared_search(finding) -> str:
    expenses = db.session.scalars(db.select(Expense).where(Expense.id.in_(finding.expense_ids))).all()
    if finding.rule == FundRule.DUPLICATE_VOUCHER.value:
        return expenses[0].voucher_no or ""
    return expenses[0].payee or ""


_EXPENSE_VIEW: list[ExpenseView] = []


def _expense_filter_url(column, value) -> str:
    view = _EXPENSE_VIEW[0]
    for index, flt in enumerate(view._filters or []):
        if getattr(flt, "column", None) is column and isinstance(flt, FilterEqual):
            return url_for("expense.index_view", **{f"flt0_{view.get_filter_arg(index, flt)}": value})
    return url_for("expense.index_view")


def register(admin):
    expense_view = ExpenseView(Expense, name="资金支出", endpoint="expense")
    _EXPENSE_VIEW[:] = [expense_view]
    admin.add_view(FundSourceView(FundSource, name="资金来源", endpoint="fundsource"))
    admin.add_view(expense_view)
    admin.add_link(TaskLink("录入支出", "expense.create_view", "funds", MENU_FUNDS))
    admin.add_view(
        ApprovalView(
            name="待我审批", endpoint="expense_approval", url="/admin/expense-approval", category=MENU_FUNDS
        )
    )
    admin.add_view(
        FundCheckView(name="资金使用检查", endpoint="fundcheck", url="fund-check", category=MENU_FUNDS)
    )
