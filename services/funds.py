"""Fund sources and expenses: money rules, the 草稿 → 已审批 → 已支付 workflow, 红字冲销, and the sums.

Money is Decimal with two places. Sums are taken in whole cents in SQL, so they are exact on SQLite
(which stores NUMERIC as REAL) as well as on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import Integer, cast, func, select

from choices import ExpenseCategory, ExpenseStatus, FundKind
from models import Expense, FundSource, Setting, db
from services.periods import period_error
from services.validation import InvalidInput, clean_money

CENT = Decimal("0.01")
AMOUNT_MAX = Decimal("10000000")

APPROVAL_THRESHOLD = "fund_approval_threshold"
COLLECTIVE_THRESHOLD = "fund_collective_threshold"
SPLIT_WINDOW_DAYS = "fund_split_window_days"

# (key, default, label): seeded into the settings table, where an admin can change them.
SETTINGS = [
    (APPROVAL_THRESHOLD, "5000", "资金支出审批限额（元）：拆分支付按此金额识别"),
    (COLLECTIVE_THRESHOLD, "30000", "集体决策限额（元）：单笔超过此金额须有集体决策文号"),
    (SPLIT_WINDOW_DAYS, "7", "拆分支付识别时间窗（天）：同一收款方在此天数内的多笔支出合并计算"),
]


def seed_settings() -> None:
    for key, value, label in SETTINGS:
        if db.session.get(Setting, key) is None:
            db.session.add(Setting(key=key, value=value, label=label))


@dataclass(frozen=True)
class Thresholds:
    approval: Decimal = Decimal("5000")
    collective: Decimal = Decimal("30000")
    split_days: int = 7


def load_thresholds() -> Thresholds:
    """The thresholds from the settings table; a missing or unreadable row keeps the default."""
    rows = dict(
        db.session.execute(
            select(Setting.key, Setting.value).where(Setting.key.in_([k for k, _, _ in SETTINGS]))
        ).all()
    )
    default = Thresholds()
    try:
        approval = clean_amount(rows.get(APPROVAL_THRESHOLD, default.approval))
    except InvalidInput:
        approval = default.approval
    try:
        collective = clean_amount(rows.get(COLLECTIVE_THRESHOLD, default.collective))
    except InvalidInput:
        collective = default.collective
    try:
        split_days = max(1, int(rows.get(SPLIT_WINDOW_DAYS, default.split_days)))
    except (TypeError, ValueError):
        split_days = default.split_days
    return Thresholds(approval, collective, split_days)


# --------------------------------------------------------------------------- money


def clean_amount(value, *, allow_negative: bool = False) -> Decimal:
    """A money amount typed by a person: Decimal, two places, > 0 and ≤ 10,000,000 (a 红字冲销
    amount may be negative, never 0). Raises InvalidInput."""
    if isinstance(value, float):
        value = repr(value)
    amount = clean_money(value, lo=0, hi=AMOUNT_MAX, allow_zero=False, allow_negative=allow_negative)
    if amount is None:
        raise InvalidInput("请填写金额")
    return amount


def yuan(amount) -> str:
    """12345.6 → "12,345.60" (for messages)."""
    return f"{Decimal(amount or 0).quantize(CENT):,}"


def in_cents(column):
    """A money column as whole cents (an integer): sums of it are exact on every database."""
    return cast(func.round(column * 100), Integer)


def cents(column):
    """The SQL sum of a money column in whole cents: exact on every database."""
    return func.coalesce(func.sum(in_cents(column)), 0)


def from_cents(value) -> Decimal:
    return (Decimal(int(value or 0)) / 100).quantize(CENT)


def rate(part: Decimal, whole: Decimal) -> Decimal | None:
    """part / whole as a fraction with 4 places (0.1234 = 12.34 %); None when there is no whole."""
    if not whole:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


# --------------------------------------------------------------------------- workflow


def is_editable(expense: Expense) -> bool:
    """Only a draft can be edited or deleted; an approved one goes back to draft first."""
    return expense.status == ExpenseStatus.DRAFT.value


def check_source(source: FundSource) -> dict[str, str]:
    """Field → Chinese error for a fund source."""
    errors: dict[str, str] = {}
    try:
        source.amount = clean_amount(source.amount)
    except InvalidInput as bad:
        errors["amount"] = str(bad)
    period = period_error(source.valid_from, source.valid_to, "有效期起", "有效期止")
    if period:
        errors["valid_to"] = period
    unknown = [c for c in (source.allowed_categories or []) if c not in ExpenseCategory._value2member_map_]
    if unknown:
        errors["allowed_categories"] = "用途类别无效：" + "、".join(map(str, unknown))
    if source.kind and source.kind not in FundKind._value2member_map_:
        errors["kind"] = "资金类型无效"
    return errors


def check_expense(expense: Expense) -> dict[str, str]:
    """Field → Chinese error for an expense being saved."""
    errors: dict[str, str] = {}
    if expense.reverses_id:
        # A counter-entry mirrors its original: same source and category, the opposite amount.
        original = db.session.get(Expense, expense.reverses_id)
        expense.amount = -original.amount
        expense.source = original.source
        expense.category = original.category
    else:
        try:
            expense.amount = clean_amount(expense.amount)
        except InvalidInput as bad:
            errors["amount"] = str(bad)
    if not (expense.payee or "").strip():
        errors["payee"] = "请填写收款方"
    if expense.category and expense.category not in ExpenseCategory._value2member_map_:
        errors["category"] = "支出类别无效"
    expense.voucher_no = (expense.voucher_no or "").strip() or None
    expense.collective_decision_ref = (expense.collective_decision_ref or "").strip() or None
    return errors


def approve(expense: Expense, approver_id: int, now: dt.datetime, thresholds: Thresholds) -> list[str]:
    """草稿 → 已审批. The approver is never the handler. Returns warnings (the checks will list them)."""
    if expense.status != ExpenseStatus.DRAFT.value:
        raise InvalidInput(
            f"第{expense.id}号支出当前为“{ExpenseStatus.label_of(expense.status)}”，只有草稿可以审批"
        )
    if expense.handler_id is not None and expense.handler_id == approver_id:
        raise InvalidInput(f"第{expense.id}号支出：审批人不能是经办人本人，请由其他有权限的人员审批")
    expense.status = ExpenseStatus.APPROVED.value
    expense.approver_id = approver_id
    expense.approved_at = now
    expense.returned_at = expense.returned_by_id = expense.return_note = None
    warnings = []
    if abs(expense.amount) > thresholds.collective and not expense.collective_decision_ref:
        warnings.append(
            f"第{expense.id}号支出金额{yuan(expense.amount)}元，超过集体决策限额{yuan(thresholds.collective)}元，"
            "尚未填写集体决策文号"
        )
    return warnings


def awaiting_approval(user_id: int):
    """待我审批: drafts someone else handled and nobody has sent back, oldest first (a Select)."""
    return (
        select(Expense)
        .where(
            Expense.status == ExpenseStatus.DRAFT.value,
            Expense.returned_at.is_(None),
            (Expense.handler_id != user_id) | Expense.handler_id.is_(None),
        )
        .order_by(Expense.spent_on, Expense.id)
    )


def awaiting_count(user_id: int) -> int:
    return db.session.scalar(
        select(func.count()).select_from(awaiting_approval(user_id).order_by(None).subquery())
    )


def refuse(expense: Expense, user_id: int, now: dt.datetime, note: str) -> None:
    """退回经办人: a draft sent back with the reason; it leaves the approvers' list until edited."""
    note = (note or "").strip()
    if expense.status != ExpenseStatus.DRAFT.value:
        raise InvalidInput(
            f"第{expense.id}号支出当前为“{ExpenseStatus.label_of(expense.status)}”，只有草稿可以退回"
        )
    if expense.handler_id is not None and expense.handler_id == user_id:
        raise InvalidInput(f"第{expense.id}号支出是您经办的，无需退回给自己，请直接修改")
    if not note:
        raise InvalidInput(f"第{expense.id}号支出：请填写退回原因，经办人据此修改")
    expense.returned_at = now
    expense.returned_by_id = user_id
    expense.return_note = note[:500]


def resubmitted(expense: Expense) -> None:
    """The handler edited a returned draft: it waits for approval again."""
    expense.returned_at = None
    expense.returned_by_id = None


def return_to_draft(expense: Expense) -> None:
    """已审批 → 草稿 (to correct it); the approval is withdrawn."""
    if expense.status != ExpenseStatus.APPROVED.value:
        raise InvalidInput(f"第{expense.id}号支出：只有已审批、未支付的支出可以退回草稿")
    expense.status = ExpenseStatus.DRAFT.value
    expense.approver_id = None
    expense.approved_at = None


def pay(expense: Expense, now: dt.datetime) -> list[str]:
    """已审批 → 已支付. Returns warnings about missing documents."""
    if expense.status != ExpenseStatus.APPROVED.value:
        raise InvalidInput(
            f"第{expense.id}号支出当前为“{ExpenseStatus.label_of(expense.status)}”，须先审批才能支付"
        )
    expense.status = ExpenseStatus.PAID.value
    expense.paid_at = now
    if expense.reverses_id is not None:
        # A 红字冲销 takes effect when it is paid: it is dated that day (as a draft it counted nowhere).
        expense.spent_on = now.date()
    missing = [
        name for name, ok in (("凭证号", expense.voucher_no), ("发票", expense.invoice_attached)) if not ok
    ]
    if missing:
        return [f"第{expense.id}号支出已支付，但缺少{'和'.join(missing)}，请尽快补齐"]
    return []


def reversal_of(expense_id: int) -> Expense | None:
    return db.session.scalar(select(Expense).where(Expense.reverses_id == expense_id).limit(1))


def reverse(
    expense: Expense, handler_id: int, today: dt.date, reason: str, voucher_no: str | None
) -> Expense:
    """红字冲销: a new negative draft expense that points at the paid original; the original is kept.

    The counter-entry is dated the day it is paid (``pay``): until then the original counts as paid."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("请填写冲销原因")
    if expense.status != ExpenseStatus.PAID.value:
        raise InvalidInput("只有已支付的支出需要红字冲销；草稿可直接修改或删除，已审批的可退回草稿")
    if expense.reverses_id is not None or expense.amount < 0:
        raise InvalidInput("冲销记录本身不能再冲销")
    existing = reversal_of(expense.id)
    if existing is not None:
        raise InvalidInput(f"第{expense.id}号支出已有冲销记录（第{existing.id}号）")
    counter = Expense(
        spent_on=today,
        amount=-expense.amount,
        source_id=expense.source_id,
        category=expense.category,
        payee=expense.payee,
        purpose=f"红字冲销第{expense.id}号支出：{reason}"[:1000],
        activity_id=expense.activity_id,
        service_id=expense.service_id,
        child_id=expense.child_id,
        voucher_no=(voucher_no or "").strip() or None,
        invoice_attached=False,
        status=ExpenseStatus.DRAFT.value,
        handler_id=handler_id,
        reverses_id=expense.id,
    )
    db.session.add(counter)
    return counter


# --------------------------------------------------------------------------- sums


@dataclass
class Budget:
    """Budget against spending for one source or category."""

    key: str | int
    name: str
    kind: str = ""
    budget: Decimal | None = None
    paid: Decimal = Decimal("0.00")
    approved: Decimal = Decimal("0.00")
    draft: Decimal = Decimal("0.00")

    @property
    def committed(self) -> Decimal:
        return self.paid + self.approved

    @property
    def balance(self) -> Decimal | None:
        return None if self.budget is None else self.budget - self.committed

    @property
    def execution_rate(self) -> Decimal | None:
        return rate(self.paid, self.budget) if self.budget is not None else None


def spending_by(key, start: dt.date | None = None, end: dt.date | None = None) -> dict:
    """{key value: {status: Decimal}} of the expenses dated in the period, summed in exact cents."""
    stmt = _period(
        select(key, Expense.status, cents(Expense.amount)).group_by(key, Expense.status), start, end
    )
    result: dict = {}
    for value, status, total in db.session.execute(stmt):
        result.setdefault(value, {})[status] = from_cents(total)
    return result


def _period(stmt, start: dt.date | None, end: dt.date | None):
    if start:
        stmt = stmt.where(Expense.spent_on >= start)
    if end:
        stmt = stmt.where(Expense.spent_on <= end)
    return stmt


def _budget(key, name, budget, sums: dict | None, kind: str = "") -> Budget:
    sums = sums or {}
    zero = Decimal("0.00")
    return Budget(
        key=key,
        name=name,
        kind=kind,
        budget=budget,
        paid=sums.get(ExpenseStatus.PAID.value, zero),
        approved=sums.get(ExpenseStatus.APPROVED.value, zero),
        draft=sums.get(ExpenseStatus.DRAFT.value, zero),
    )


def source_budgets(start: dt.date | None = None, end: dt.date | None = None) -> list[Budget]:
    """Per source: budget, paid, approved, draft in the period (all sources, even without spending)."""
    spent = spending_by(Expense.source_id, start, end)
    return [
        _budget(s.id, s.name, Decimal(s.amount).quantize(CENT), spent.get(s.id), FundKind.label_of(s.kind))
        for s in db.session.scalars(select(FundSource).order_by(FundSource.received_on, FundSource.id))
    ]


def category_budgets(
    start: dt.date | None = None, end: dt.date | None = None, sources: list[Budget] | None = None
) -> list[Budget]:
    """Per expense category: spending in the period, and as budget the money that may be spent on it
    (the sources that allow the category or do not limit it; a source open to several categories
    counts for each of them)."""
    budgets = {b.key: b.budget for b in (sources or source_budgets(start, end))}
    allowed = dict(db.session.execute(select(FundSource.id, FundSource.allowed_categories)).all())
    spent = spending_by(Expense.category, start, end)
    result = []
    for category in ExpenseCategory:
        available = sum(
            (
                budgets.get(sid) or Decimal("0.00")
                for sid, cats in allowed.items()
                if not cats or category.value in cats
            ),
            Decimal("0.00"),
        )
        result.append(_budget(category.value, category.label, available, spent.get(category.value)))
    return result


def totals(budgets: list[Budget]) -> Budget:
    total = Budget(key="total", name="合计", budget=Decimal("0.00"))
    for b in budgets:
        total.budget += b.budget or 0
        total.paid += b.paid
        total.approved += b.approved
        total.draft += b.draft
    return total


__all__ = [
    "AMOUNT_MAX",
    "Budget",
    "Thresholds",
    "approve",
    "category_budgets",
    "check_expense",
    "check_source",
    "clean_amount",
    "from_cents",
    "load_thresholds",
    "pay",
    "return_to_draft",
    "reverse",
    "seed_settings",
    "source_budgets",
    "totals",
    "yuan",
]
