"""Fund-use checks (SPEC.md "Funds"; work plan 五(二) 专款专用): one function per check.

Each check is one set-based query that returns only the offending rows, and yields Findings with a
severity, a Chinese explanation naming the numbers, and the entry it is about. Thresholds come from
the settings table (services.funds.load_thresholds).

Counter-entries (红字冲销) and the expenses they reverse once the counter-entry is paid are no longer
live spending: checks about one expense skip them, while sums include them (they net to zero).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Integer, and_, cast, func, or_, select
from sqlalchemy.orm import joinedload

from choices import ExpenseCategory, ExpenseStatus, FindingSeverity, FundRule
from models import Activity, Expense, FindingNote, FundSource, db
from services import clock
from services.funds import Thresholds, cents, from_cents, load_thresholds, rate, yuan
from services.validation import InvalidInput

DRAFT, APPROVED, PAID = (s.value for s in ExpenseStatus)
SEVERITY_ORDER = {
    s.value: i for i, s in enumerate([FindingSeverity.HIGH, FindingSeverity.MEDIUM, FindingSeverity.LOW])
}


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    message: str
    target: str  # "expense" | "source" | "activity": what the link opens
    target_id: int
    source_id: int | None = None
    amount: Decimal | None = None
    spent_on: dt.date | None = None
    expense_ids: tuple[int, ...] = ()

    @property
    def key(self) -> tuple[str, str, int]:
        """What a finding is about: its check and its entry (a 核查说明 is kept under this key)."""
        return (self.rule, self.target, self.target_id)

    @property
    def rule_label(self) -> str:
        return FundRule.label_of(self.rule)

    @property
    def severity_label(self) -> str:
        return FindingSeverity.label_of(self.severity)


def _live():
    """An ordinary expense that still stands: not a counter-entry, not reversed by a paid one."""
    # The few reversed ids are read first: a NOT IN over a subquery makes SQLite walk the status index.
    reversed_ids = db.session.info.get(_REVERSED_KEY)
    if reversed_ids is None:
        reversed_ids = _reversed_ids()
    if not reversed_ids:
        return Expense.reverses_id.is_(None)
    return and_(Expense.reverses_id.is_(None), Expense.id.not_in(reversed_ids))


_REVERSED_KEY = "fund_checks.reversed_ids"


def _reversed_ids() -> list[int]:
    return [
        rid
        for rid, status in db.session.execute(
            select(Expense.reverses_id, Expense.status).where(Expense.reverses_id.is_not(None))
        )
        if status == PAID
    ]


def _counted():
    """Entries that count against a budget: everything except draft counter-entries."""
    return or_(Expense.status != DRAFT, Expense.amount > 0)


def _ids(ids: Iterable[int]) -> str:
    return "、".join(f"第{i}号" for i in ids)


def _status(value) -> str:
    return ExpenseStatus.label_of(value)


# --------------------------------------------------------------------------- checks


def overspend(th: Thresholds) -> list[Finding]:
    """A source whose counted spending (paid + approved + drafts) exceeds its amount."""
    sums: dict[int, dict[str, int]] = {}
    for source_id, status, total in db.session.execute(
        select(Expense.source_id, Expense.status, cents(Expense.amount))
        .where(_counted())
        .group_by(Expense.source_id, Expense.status)
    ):
        sums.setdefault(source_id, {})[status] = total
    findings = []
    for source_id, name, amount in db.session.execute(
        select(FundSource.id, FundSource.name, FundSource.amount)
    ):
        if source_id not in sums:
            continue
        paid_c, approved_c, draft_c = (sums[source_id].get(s, 0) for s in (PAID, APPROVED, DRAFT))
        budget = Decimal(amount).quantize(Decimal("0.01"))
        paid, approved, draft = from_cents(paid_c), from_cents(approved_c), from_cents(draft_c)
        total = paid + approved + draft
        if total <= budget:
            continue
        if paid > budget:
            severity = FindingSeverity.HIGH
        elif paid + approved > budget:
            severity = FindingSeverity.MEDIUM
        else:
            severity = FindingSeverity.LOW
        findings.append(
            Finding(
                FundRule.OVERSPEND.value,
                severity.value,
                f"资金来源「{name}」金额{yuan(budget)}元，已支付{yuan(paid)}元、已审批待付{yuan(approved)}元、"
                f"草稿{yuan(draft)}元，合计{yuan(total)}元，超支{yuan(total - budget)}元"
                f"（合计为来源金额的{_percent(rate(total, budget))}）",
                "source",
                source_id,
                source_id=source_id,
                amount=total - budget,
            )
        )
    return findings


def category_not_allowed(th: Thresholds) -> list[Finding]:
    """An expense whose category is not among its source's allowed categories (an empty list allows all)."""
    allowed = {
        sid: [c for c in (cats or []) if c]
        for sid, cats in db.session.execute(select(FundSource.id, FundSource.allowed_categories))
    }
    everything = {c.value for c in ExpenseCategory}
    clauses = [
        and_(Expense.source_id == sid, Expense.category.not_in(cats))
        for sid, cats in allowed.items()
        if cats and not everything <= set(cats)
    ]
    if not clauses:
        return []
    rows = db.session.execute(
        select(
            Expense.id, Expense.amount, Expense.spent_on, Expense.category, Expense.source_id, FundSource.name
        )
        .join(FundSource, Expense.source_id == FundSource.id)
        .where(_live(), or_(*clauses))
        .order_by(Expense.id)
    ).all()
    return [
        Finding(
            FundRule.CATEGORY_NOT_ALLOWED.value,
            FindingSeverity.HIGH.value,
            f"第{eid}号支出{yuan(amount)}元，类别为「{ExpenseCategory.label_of(category)}」，"
            f"但资金来源「{name}」只能用于"
            + "、".join(ExpenseCategory.label_of(c) for c in allowed[sid])
            + "（专款专用）",
            "expense",
            eid,
            source_id=sid,
            amount=amount,
            spent_on=spent_on,
        )
        for eid, amount, spent_on, category, sid, name in rows
    ]


def outside_period(th: Thresholds) -> list[Finding]:
    """An expense dated before its source was received, or outside the source's valid period."""
    rows = db.session.execute(
        select(
            Expense.id,
            Expense.amount,
            Expense.spent_on,
            Expense.source_id,
            FundSource.name,
            FundSource.received_on,
            FundSource.valid_from,
            FundSource.valid_to,
        )
        .join(FundSource, Expense.source_id == FundSource.id)
        .where(
            _live(),
            or_(
                Expense.spent_on < FundSource.received_on,
                and_(FundSource.valid_from.is_not(None), Expense.spent_on < FundSource.valid_from),
                and_(FundSource.valid_to.is_not(None), Expense.spent_on > FundSource.valid_to),
            ),
        )
        .order_by(Expense.id)
    ).all()
    findings = []
    for eid, amount, spent_on, sid, name, received_on, valid_from, valid_to in rows:
        if spent_on < received_on:
            why = f"早于资金到账日期{received_on:%Y-%m-%d}"
        elif valid_from and spent_on < valid_from:
            why = f"早于资金有效期起始日{valid_from:%Y-%m-%d}"
        else:
            why = f"晚于资金有效期截止日{valid_to:%Y-%m-%d}"
        findings.append(
            Finding(
                FundRule.OUTSIDE_PERIOD.value,
                FindingSeverity.MEDIUM.value,
                f"第{eid}号支出{yuan(amount)}元，支出日期{spent_on:%Y-%m-%d}{why}（资金来源「{name}」）",
                "expense",
                eid,
                source_id=sid,
                amount=amount,
                spent_on=spent_on,
            )
        )
    return findings


def missing_documents(th: Thresholds) -> list[Finding]:
    """An approved or paid expense without a voucher number or without the invoice attached."""
    no_voucher = or_(Expense.voucher_no.is_(None), Expense.voucher_no == "")
    no_invoice = Expense.invoice_attached.is_not(True)
    rows = db.session.execute(
        select(
            Expense.id,
            Expense.amount,
            Expense.spent_on,
            Expense.source_id,
            Expense.status,
            no_voucher,
            no_invoice,
        )
        .where(_live(), Expense.status.in_([APPROVED, PAID]), or_(no_voucher, no_invoice))
        .order_by(Expense.id)
    ).all()
    findings = []
    for eid, amount, spent_on, sid, status, lacks_voucher, lacks_invoice in rows:
        missing = "和".join(
            name for name, lacks in (("凭证号", lacks_voucher), ("发票", lacks_invoice)) if lacks
        )
        findings.append(
            Finding(
                FundRule.MISSING_DOCUMENTS.value,
                (FindingSeverity.MEDIUM if status == PAID else FindingSeverity.LOW).value,
                f"第{eid}号支出{yuan(amount)}元（{_status(status)}）缺少{missing}",
                "expense",
                eid,
                source_id=sid,
                amount=amount,
                spent_on=spent_on,
            )
        )
    return findings


def duplicate_voucher(th: Thresholds) -> list[Finding]:
    """One voucher number used by more than one expense: one finding per voucher number."""
    duplicated = (
        select(Expense.voucher_no)
        .where(Expense.voucher_no.is_not(None), Expense.voucher_no != "")
        .group_by(Expense.voucher_no)
        .having(func.count() > 1)
    )
    rows = db.session.execute(
        select(Expense.voucher_no, Expense.id, Expense.amount, Expense.spent_on, Expense.source_id)
        .where(Expense.voucher_no.in_(duplicated))
        .order_by(Expense.voucher_no, Expense.id)
    ).all()
    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault(row.voucher_no, []).append(row)
    findings = []
    for voucher, group in groups.items():
        ids = tuple(r.id for r in group)
        total = sum((r.amount for r in group), Decimal("0.00"))
        last = group[-1]
        findings.append(
            Finding(
                FundRule.DUPLICATE_VOUCHER.value,
                FindingSeverity.HIGH.value,
                f"凭证号「{voucher}」被{len(group)}笔支出重复使用：{_ids(ids)}，合计{yuan(total)}元",
                "expense",
                last.id,
                source_id=last.source_id,
                amount=total,
                spent_on=last.spent_on,
                expense_ids=ids,
            )
        )
    return findings


def paid_without_approval(th: Thresholds) -> list[Finding]:
    rows = db.session.execute(
        select(Expense.id, Expense.amount, Expense.spent_on, Expense.source_id)
        .where(Expense.status == PAID, or_(Expense.approver_id.is_(None), Expense.approved_at.is_(None)))
        .order_by(Expense.id)
    ).all()
    return [
        Finding(
            FundRule.PAID_WITHOUT_APPROVAL.value,
            FindingSeverity.HIGH.value,
            f"第{eid}号支出{yuan(amount)}元已支付，但没有审批记录",
            "expense",
            eid,
            source_id=sid,
            amount=amount,
            spent_on=spent_on,
        )
        for eid, amount, spent_on, sid in rows
    ]


def self_approval(th: Thresholds) -> list[Finding]:
    rows = db.session.execute(
        select(Expense.id, Expense.amount, Expense.spent_on, Expense.source_id, Expense.approver_id)
        .where(Expense.approver_id.is_not(None), Expense.approver_id == Expense.handler_id)
        .order_by(Expense.id)
    ).all()
    names = _user_names({r.approver_id for r in rows})
    return [
        Finding(
            FundRule.SELF_APPROVAL.value,
            FindingSeverity.HIGH.value,
            f"第{eid}号支出{yuan(amount)}元由经办人{names.get(uid, uid)}本人审批（审批人与经办人须为不同人员）",
            "expense",
            eid,
            source_id=sid,
            amount=amount,
            spent_on=spent_on,
        )
        for eid, amount, spent_on, sid, uid in rows
    ]


def no_collective_decision(th: Thresholds) -> list[Finding]:
    """A single expense above the collective-decision threshold without a collective-decision reference."""
    rows = db.session.execute(
        select(Expense.id, Expense.amount, Expense.spent_on, Expense.source_id, Expense.status)
        .where(
            _live(),
            Expense.amount > th.collective,
            or_(Expense.collective_decision_ref.is_(None), Expense.collective_decision_ref == ""),
        )
        .order_by(Expense.id)
    ).all()
    return [
        Finding(
            FundRule.NO_COLLECTIVE_DECISION.value,
            (FindingSeverity.MEDIUM if status == DRAFT else FindingSeverity.HIGH).value,
            f"第{eid}号支出{yuan(amount)}元（{_status(status)}），超过集体决策限额{yuan(th.collective)}元，"
            "未填写集体决策文号（会议纪要号）",
            "expense",
            eid,
            source_id=sid,
            amount=amount,
            spent_on=spent_on,
        )
        for eid, amount, spent_on, sid, status in rows
    ]


def split_payments(th: Thresholds) -> list[Finding]:
    """Same payee, within the window (first to last day < window days), each payment below the approval
    threshold, together above it. Overlapping windows merge into one finding per run of payments."""
    amount_cents = cast(func.round(Expense.amount * 100), Integer)
    rows = db.session.execute(
        select(Expense.payee, Expense.spent_on, Expense.id, amount_cents, Expense.source_id)
        .where(_live(), Expense.amount > 0, Expense.amount < th.approval)
        .order_by(Expense.payee, Expense.spent_on, Expense.id)
    ).all()
    window = th.split_days
    limit = int(th.approval * 100)
    findings = []
    by_payee: dict[str, list] = {}
    for row in rows:
        by_payee.setdefault(" ".join((row[0] or "").split()), []).append(row)
    for payee, payments in by_payee.items():
        if len(payments) < 2:
            continue
        flagged: list[tuple[int, int]] = []  # [start, end] index runs whose sum exceeds the threshold
        start, running = 0, 0
        for end, (_, spent_on, _, amount, _) in enumerate(payments):
            running += amount
            while (spent_on - payments[start][1]).days >= window:
                running -= payments[start][3]
                start += 1
            if end > start and running > limit:
                if flagged and start <= flagged[-1][1]:
                    flagged[-1] = (flagged[-1][0], end)
                else:
                    flagged.append((start, end))
        for first, last in flagged:
            run = payments[first : last + 1]
            total = from_cents(sum(r[3] for r in run))
            days = (run[-1][1] - run[0][1]).days + 1
            ids = tuple(r[2] for r in run)
            findings.append(
                Finding(
                    FundRule.SPLIT_PAYMENT.value,
                    FindingSeverity.HIGH.value,
                    f"收款方「{payee}」在{run[0][1]:%Y-%m-%d}至{run[-1][1]:%Y-%m-%d}（{days}天）内"
                    f"有{len(run)}笔支出：{_ids(ids)}，每笔均低于审批限额{yuan(th.approval)}元，"
                    f"合计{yuan(total)}元超过限额，疑似拆分支付",
                    "expense",
                    ids[-1],
                    source_id=run[-1][4],
                    amount=total,
                    spent_on=run[-1][1],
                    expense_ids=ids,
                )
            )
    return findings


def activity_over_budget(th: Thresholds) -> list[Finding]:
    """An activity whose linked expenses exceed the activity's budget."""
    rows = db.session.execute(
        select(Activity.id, Activity.title, Activity.budget, cents(Expense.amount), func.count(Expense.id))
        .join(Expense, Expense.activity_id == Activity.id)
        .where(Activity.budget.is_not(None), _counted())
        .group_by(Activity.id, Activity.title, Activity.budget)
    ).all()
    findings = []
    for activity_id, title, budget, spent_c, n in rows:
        spent = from_cents(spent_c)
        budget = Decimal(budget).quantize(Decimal("0.01"))
        if spent <= budget:
            continue
        findings.append(
            Finding(
                FundRule.ACTIVITY_OVER_BUDGET.value,
                FindingSeverity.MEDIUM.value,
                f"活动「{title}」预算{yuan(budget)}元，关联的{n}笔支出合计{yuan(spent)}元，超出{yuan(spent - budget)}元",
                "activity",
                activity_id,
                amount=spent - budget,
            )
        )
    return findings


def service_unlinked(th: Thresholds) -> list[Finding]:
    """A 专业服务 expense linked to neither a support service nor an activity."""
    rows = db.session.execute(
        select(Expense.id, Expense.amount, Expense.spent_on, Expense.source_id, Expense.payee)
        .where(
            _live(),
            Expense.category == ExpenseCategory.PROFESSIONAL.value,
            Expense.service_id.is_(None),
            Expense.activity_id.is_(None),
        )
        .order_by(Expense.id)
    ).all()
    return [
        Finding(
            FundRule.SERVICE_UNLINKED.value,
            FindingSeverity.MEDIUM.value,
            f"第{eid}号专业服务支出{yuan(amount)}元（收款方「{payee}」）未关联任何赋能服务或活动，无法核实服务内容",
            "expense",
            eid,
            source_id=sid,
            amount=amount,
            spent_on=spent_on,
        )
        for eid, amount, spent_on, sid, payee in rows
    ]


CHECKS: dict[str, Callable[[Thresholds], list[Finding]]] = {
    FundRule.OVERSPEND.value: overspend,
    FundRule.CATEGORY_NOT_ALLOWED.value: category_not_allowed,
    FundRule.OUTSIDE_PERIOD.value: outside_period,
    FundRule.MISSING_DOCUMENTS.value: missing_documents,
    FundRule.DUPLICATE_VOUCHER.value: duplicate_voucher,
    FundRule.PAID_WITHOUT_APPROVAL.value: paid_without_approval,
    FundRule.SELF_APPROVAL.value: self_approval,
    FundRule.NO_COLLECTIVE_DECISION.value: no_collective_decision,
    FundRule.SPLIT_PAYMENT.value: split_payments,
    FundRule.ACTIVITY_OVER_BUDGET.value: activity_over_budget,
    FundRule.SERVICE_UNLINKED.value: service_unlinked,
}


def run_all(th: Thresholds | None = None) -> list[Finding]:
    """Every check, most severe first."""
    th = th or load_thresholds()
    db.session.info[_REVERSED_KEY] = _reversed_ids()  # read once for all the checks of this run
    try:
        findings = [f for check in CHECKS.values() for f in check(th)]
    finally:
        db.session.info.pop(_REVERSED_KEY, None)
    findings.sort(key=lambda f: (SEVERITY_ORDER[f.severity], f.rule, f.target_id))
    return findings


def filter_findings(
    findings: list[Finding],
    *,
    rule: str | None = None,
    severity: str | None = None,
    source_id: int | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> list[Finding]:
    """Findings matching the screen's filters; a date range keeps source and activity findings."""
    result = []
    for f in findings:
        if rule and f.rule != rule:
            continue
        if severity and f.severity != severity:
            continue
        if source_id and f.source_id != source_id:
            continue
        if f.spent_on and ((start and f.spent_on < start) or (end and f.spent_on > end)):
            continue
        result.append(f)
    return result


# --------------------------------------------------------------------------- 核查说明

NOTE_LENGTH = (5, 500)


def notes_for(findings: Iterable[Finding]) -> dict[tuple, FindingNote]:
    """Finding key → its 核查说明, for the findings that have one (standing or not: see ``stands``)."""
    keys = {f.key for f in findings}
    if not keys:
        return {}
    notes = db.session.scalars(select(FindingNote).options(joinedload(FindingNote.by))).all()
    return {key: note for note in notes if (key := (note.rule, note.target, note.target_id)) in keys}


def stands(finding: Finding, notes: dict) -> bool:
    """Whether the finding is explained: it has a note written when it read as it reads now."""
    note = notes.get(finding.key)
    return note is not None and note.finding_message == finding.message


def unexplained(findings: Iterable[Finding], notes: dict) -> list[Finding]:
    return [f for f in findings if not stands(f, notes)]


def explain(key: tuple[str, str, int], text: str, user_id: int | None) -> FindingNote:
    """Write (or rewrite) the 核查说明 of the finding the checks find now under ``key``; the caller commits."""
    text = (text or "").strip()
    low, high = NOTE_LENGTH
    if not low <= len(text) <= high:
        raise InvalidInput(f"请填写核查说明（{low}–{high}字）：核实的情况、整改结果或依据")
    finding = next((f for f in run_all() if f.key == key), None)
    if finding is None:
        raise InvalidInput("该问题已不存在（相关记录可能已更正），无需说明")
    rule, target, target_id = key
    note = db.session.scalar(
        select(FindingNote).where(
            FindingNote.rule == rule, FindingNote.target == target, FindingNote.target_id == target_id
        )
    ) or FindingNote(rule=rule, target=target, target_id=target_id)
    note.finding_message, note.note, note.by_id, note.at = finding.message, text, user_id, clock.now()
    db.session.add(note)
    return note


def _percent(value: Decimal | None) -> str:
    return "—" if value is None else f"{value * 100:.2f}%"


def _user_names(ids) -> dict[int, str]:
    from models import User

    if not ids:
        return {}
    return {
        u.id: str(u)
        for u in db.session.scalars(select(User).where(User.id.in_([i for i in ids if i is not None])))
    }


__all__ = [
    "CHECKS",
    "Finding",
    "explain",
    "filter_findings",
    "notes_for",
    "run_all",
    "stands",
    "unexplained",
]
