"""资金使用台账.xlsx: sheets 汇总, 资金来源, 支出明细, 问题清单 (XlsxWriter).

Every sheet opens with a title row (town and period), frozen header rows and an autofilter; money is
¥#,##0.00 and dates yyyy-mm-dd. Totals are formulas (SUMIFS over 支出明细, SUBTOTAL over the rows)
written with their computed value cached, so a reader without a calculation engine sees the numbers.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Integer, cast, func, select

from choices import ExpenseCategory, ExpenseStatus, FundKind
from models import Activity, Expense, FundSource, User, db
from services.fund_checks import Finding, stands
from services.funds import Budget, category_budgets, cents, source_budgets, totals
from services.workbook import DATE_FORMAT, DATETIME_FORMAT, MONEY_FORMAT, Book, display_width

FILENAME = "资金使用台账.xlsx"
CONSTANT_MEMORY = True
SHEETS = ("汇总", "资金来源", "支出明细", "问题清单")
TARGET_LABELS = {"expense": "支出", "source": "资金来源", "activity": "活动"}

EXPENSE_HEADERS = (
    ("编号", 8),
    ("支出日期", 12),
    ("资金来源", 28),
    ("支出类别", 10),
    ("收款方", 24),
    ("用途", 36),
    ("金额", 14),
    ("状态", 8),
    ("凭证号", 14),
    ("发票", 6),
    ("关联活动", 24),
    ("经办人", 12),
    ("审批人", 12),
    ("集体决策文号", 16),
    ("冲销原支出", 10),
)
# Column letters of 支出明细 used by the formulas of 汇总.
X_SOURCE, X_CATEGORY, X_AMOUNT, X_STATUS = "C", "D", "G", "H"
X_FIRST_ROW = 4  # first data row of 支出明细, 1-based (title, totals, header above it)


def period_text(start: dt.date | None, end: dt.date | None) -> str:
    if not start and not end:
        return "全部期间"
    first = f"{start:%Y-%m-%d}" if start else "最早"
    last = f"{end:%Y-%m-%d}" if end else "至今"
    return f"{first} 至 {last}"


class _Formats:
    def __init__(self, book: Book):
        self.title = book.format(bold=True, font_size=14)
        self.subtitle = book.format(font_color="#555555")
        self.header = book.format(bold=True, bg_color="#DDEBF7", border=1, text_wrap=True, valign="vcenter")
        self.money = book.format(num_format=MONEY_FORMAT)
        self.date = book.format(num_format=DATE_FORMAT)
        self.datetime = book.format(num_format=DATETIME_FORMAT)
        self.percent = book.format(num_format="0.00%")
        self.total_label = book.format(bold=True, top=1)
        self.total_money = book.format(bold=True, top=1, num_format=MONEY_FORMAT)
        self.total_percent = book.format(bold=True, top=1, num_format="0.00%")
        self.text = book.format(text_wrap=False)


def _title(ws, fmt, town: str, what: str, period: str, width: int) -> None:
    ws.title(0, 0, 0, max(width - 1, 1), f"{town} {what}（{period}）", fmt.title)
    ws.set_row(0, 24)


def _header(ws, fmt, row: int, headers) -> None:
    if ws.header_rows is None:
        ws.print_header(row)
    for col, (label, width) in enumerate(headers):
        ws.text(row, col, label, fmt.header)
        ws.set_column(col, col, max(width, display_width(label) + 2))


def _date(value):
    return dt.datetime(value.year, value.month, value.day) if value else None


def _money(value) -> float:
    return float(value or 0)


def write_ledger(
    target,
    *,
    town: str,
    start: dt.date | None,
    end: dt.date | None,
    findings: list[Finding],
    generated_at: dt.datetime,
    notes: dict | None = None,
) -> dict:
    """Write the ledger for expenses dated within [start, end]; returns what it wrote (for the audit)."""
    period = period_text(start, end)
    book = Book(target, constant_memory=CONSTANT_MEMORY, town=town)
    fmt = _Formats(book)
    try:
        summary_ws = book.sheet(SHEETS[0])
        sources_ws = book.sheet(SHEETS[1])
        expenses_ws = book.sheet(SHEETS[2])
        findings_ws = book.sheet(SHEETS[3])
        budgets = source_budgets(start, end)
        labels = source_labels()
        n_expenses, last_row = _write_expenses(expenses_ws, fmt, town, period, start, end, labels)
        _write_summary(
            summary_ws,
            fmt,
            town,
            period,
            budgets,
            category_budgets(start, end, budgets),
            last_row,
            len(findings),
            generated_at,
            labels,
        )
        n_sources = _write_sources(sources_ws, fmt, town, period)
        _write_findings(findings_ws, fmt, town, period, findings, notes or {})
        summary_ws.activate()
    finally:
        book.close()
    return {"expenses": n_expenses, "sources": n_sources, "findings": len(findings)}


def _sumifs(status: str | None, key_col: str, key_cell: str, last_row: int) -> str:
    rng = f"'支出明细'!${{col}}${X_FIRST_ROW}:${{col}}${max(last_row, X_FIRST_ROW)}"
    amount = rng.format(col=X_AMOUNT)
    parts = [amount, rng.format(col=key_col), key_cell]
    if status:
        parts += [rng.format(col=X_STATUS), f'"{ExpenseStatus(status).label}"']
    return "=SUMIFS(" + ",".join(parts) + ")"


def _status_sums(ws, fmt, row: int, key_col: str, last_row: int, budget: Budget) -> None:
    """Columns E–G of a summary row: paid, approved and draft as SUMIFS over 支出明细 (cached values)."""
    for col, status in ((4, "paid"), (5, "approved"), (6, "draft")):
        formula = _sumifs(status, key_col, f"$B{row + 1}", last_row)
        ws.formula(row, col, formula, fmt.money, _money(getattr(budget, status)))


def _write_summary(
    ws, fmt, town, period, budgets: list[Budget], categories, last_row, n_findings, generated_at, labels
) -> None:
    headers = (
        ("来源编号", 9),
        ("资金来源", 28),
        ("资金类型", 16),
        ("预算金额", 16),
        ("已支付", 16),
        ("已审批待付", 16),
        ("草稿", 14),
        ("余额", 16),
        ("支付进度", 10),
    )
    _title(ws, fmt, town, "困境儿童关爱服务资金使用台账 · 汇总", period, len(headers))
    ws.text(
        1,
        0,
        f"期间：{period}　生成时间：{generated_at:%Y-%m-%d %H:%M}　问题清单：{n_findings}条",
        fmt.subtitle,
    )
    ws.text(2, 0, "一、按资金来源", fmt.total_label)
    head = 3
    _header(ws, fmt, head, headers)
    ws.freeze_panes(head + 1, 0)
    row = head
    for b in budgets:
        row += 1
        r = row + 1  # 1-based row number for formulas
        ws.number(row, 0, b.key)
        ws.text(row, 1, labels.get(b.key, b.name))
        ws.text(row, 2, b.kind)
        ws.number(row, 3, _money(b.budget), fmt.money)
        _status_sums(ws, fmt, row, X_SOURCE, last_row, b)
        ws.formula(row, 7, f"=D{r}-E{r}-F{r}", fmt.money, _money(b.balance))
        rate = b.execution_rate
        ws.formula(row, 8, f'=IF(D{r}=0,"",E{r}/D{r})', fmt.percent, float(rate) if rate is not None else "")
    first, last = head + 2, row + 1
    ws.autofilter(head, 0, max(row, head + 1), len(headers) - 1)
    row += 1
    total = totals(budgets)
    ws.text(row, 0, "合计", fmt.total_label)
    ws.write_blank(row, 1, None, fmt.total_label)
    ws.write_blank(row, 2, None, fmt.total_label)
    for col, value in (
        (3, total.budget),
        (4, total.paid),
        (5, total.approved),
        (6, total.draft),
        (7, total.balance),
    ):
        letter = "DEFGH"[col - 3]
        ws.formula(row, col, f"=SUBTOTAL(9,{letter}{first}:{letter}{last})", fmt.total_money, _money(value))
    r = row + 1
    rate = total.execution_rate
    ws.formula(
        row, 8, f'=IF(D{r}=0,"",E{r}/D{r})', fmt.total_percent, float(rate) if rate is not None else ""
    )

    row += 2
    ws.text(row, 0, "二、按支出类别", fmt.total_label)
    row += 1
    cat_headers = (
        "序号",
        "支出类别",
        "",
        "可使用资金",
        "已支付",
        "已审批待付",
        "草稿",
        "占已支付",
        "支付进度",
    )
    for col, label in enumerate(cat_headers):
        ws.text(row, col, label, fmt.header)
    cat_first = row + 2
    cat_last = row + 1 + len(categories)
    cat_total = totals(categories)
    for number, b in enumerate(categories, start=1):
        row += 1
        r = row + 1
        ws.number(row, 0, number)
        ws.text(row, 1, b.name)
        ws.number(row, 3, _money(b.budget), fmt.money)
        _status_sums(ws, fmt, row, X_CATEGORY, last_row, b)
        share = float(b.paid / cat_total.paid) if cat_total.paid else ""
        ws.formula(row, 7, f'=IF(E${cat_last + 1}=0,"",E{r}/E${cat_last + 1})', fmt.percent, share)
        rate = b.execution_rate
        ws.formula(row, 8, f'=IF(D{r}=0,"",E{r}/D{r})', fmt.percent, float(rate) if rate is not None else "")
    row += 1
    ws.text(row, 0, "合计", fmt.total_label)
    for col, value in ((4, cat_total.paid), (5, cat_total.approved), (6, cat_total.draft)):
        letter = "DEFGH"[col - 3]
        ws.formula(row, col, f"=SUM({letter}{cat_first}:{letter}{cat_last})", fmt.total_money, _money(value))
    row += 1
    ws.text(
        row,
        1,
        "可使用资金：允许用于该类别（或未限定用途）的资金来源合计，可用于多个类别的资金在各类别中重复计入。",
        fmt.subtitle,
    )


def _write_sources(ws, fmt, town, period) -> int:
    headers = (
        ("编号", 8),
        ("资金来源", 28),
        ("资金类型", 16),
        ("金额", 16),
        ("到账日期", 12),
        ("文号", 22),
        ("允许用途", 30),
        ("有效期起", 12),
        ("有效期止", 12),
        ("备注", 30),
    )
    _title(ws, fmt, town, "资金来源", period, len(headers))
    head = 2
    sources = db.session.scalars(select(FundSource).order_by(FundSource.received_on, FundSource.id)).all()
    total = sum((Decimal(s.amount) for s in sources), Decimal("0.00"))
    ws.text(1, 2, "合计（随筛选变化）", fmt.total_label)
    last = head + 1 + len(sources)
    ws.formula(1, 3, f"=SUBTOTAL(9,D{head + 2}:D{max(last, head + 2)})", fmt.total_money, _money(total))
    _header(ws, fmt, head, headers)
    ws.freeze_panes(head + 1, 0)
    row = head
    for s in sources:
        row += 1
        ws.number(row, 0, s.id)
        ws.text(row, 1, s.name)
        ws.text(row, 2, FundKind.label_of(s.kind))
        ws.number(row, 3, _money(s.amount), fmt.money)
        ws.date(row, 4, _date(s.received_on), fmt.date)
        if s.document_no:
            ws.text(row, 5, s.document_no)
        cats = "、".join(ExpenseCategory.label_of(c) for c in s.allowed_categories or []) or "不限"
        ws.text(row, 6, cats)
        if s.valid_from:
            ws.date(row, 7, _date(s.valid_from), fmt.date)
        if s.valid_to:
            ws.date(row, 8, _date(s.valid_to), fmt.date)
        if s.notes:
            ws.text(row, 9, s.notes)
    ws.autofilter(head, 0, max(row, head + 1), len(headers) - 1)
    return len(sources)


def source_labels() -> dict[int, str]:
    """Source id → the name shown in the ledger; a name shared by two sources gets its number added,
    so the SUMIFS of 汇总 can key on it."""
    rows = db.session.execute(select(FundSource.id, FundSource.name)).all()
    seen: dict[str, int] = {}
    for _, name in rows:
        seen[name] = seen.get(name, 0) + 1
    return {sid: name if seen[name] == 1 else f"{name}（编号{sid}）" for sid, name in rows}


def _write_expenses(ws, fmt, town, period, start, end, labels: dict[int, str]) -> tuple[int, int]:
    """The detail rows; returns (rows written, 1-based number of the last data row)."""
    _title(ws, fmt, town, "资金支出明细", period, len(EXPENSE_HEADERS))
    head = X_FIRST_ROW - 2  # 0-based header row; totals sit in row 1 above it
    users = {u.id: str(u) for u in db.session.scalars(select(User))}
    activities = dict(db.session.execute(select(Activity.id, Activity.title)).all())
    where = [*([Expense.spent_on >= start] if start else []), *([Expense.spent_on <= end] if end else [])]
    n_rows, total_cents = db.session.execute(select(func.count(), cents(Expense.amount)).where(*where)).one()
    # In constant_memory mode rows go out in order: the totals row (above the header) comes first.
    last = X_FIRST_ROW + max(n_rows, 1) - 1
    ws.text(1, 5, "合计（随筛选变化）", fmt.total_label)
    ws.formula(
        1,
        6,
        f"=SUBTOTAL(9,{X_AMOUNT}{X_FIRST_ROW}:{X_AMOUNT}{last})",
        fmt.total_money,
        int(total_cents) / 100,
    )
    _header(ws, fmt, head, EXPENSE_HEADERS)
    ws.freeze_panes(head + 1, 2)
    stmt = (
        select(
            Expense.id,
            Expense.spent_on,
            Expense.source_id,
            Expense.category,
            Expense.payee,
            Expense.purpose,
            cast(func.round(Expense.amount * 100), Integer),
            Expense.status,
            Expense.voucher_no,
            Expense.invoice_attached,
            Expense.activity_id,
            Expense.handler_id,
            Expense.approver_id,
            Expense.collective_decision_ref,
            Expense.reverses_id,
        )
        .where(*where)
        .order_by(Expense.spent_on, Expense.id)
        .execution_options(yield_per=2000)
    )
    labels_status = {s.value: s.label for s in ExpenseStatus}
    labels_category = {c.value: c.label for c in ExpenseCategory}
    write_string, write_number, write_datetime = ws.fast_writers()
    money, date_fmt = fmt.money, fmt.date
    row = head
    for (
        eid,
        spent_on,
        source_id,
        category,
        payee,
        purpose,
        amount_cents,
        status,
        voucher,
        invoice,
        activity_id,
        handler_id,
        approver_id,
        decision,
        reverses,
    ) in db.session.execute(stmt):
        row += 1
        write_number(row, 0, eid)
        write_datetime(row, 1, dt.datetime(spent_on.year, spent_on.month, spent_on.day), date_fmt)
        write_string(row, 2, labels[source_id])
        write_string(row, 3, labels_category.get(category, category))
        write_string(row, 4, payee)
        if purpose:
            write_string(row, 5, purpose[:32767])
        write_number(row, 6, amount_cents / 100, money)
        write_string(row, 7, labels_status.get(status, status))
        if voucher:
            write_string(row, 8, voucher)
        write_string(row, 9, "有" if invoice else "无")
        if activity_id:
            write_string(row, 10, activities.get(activity_id, str(activity_id)))
        if handler_id:
            write_string(row, 11, users.get(handler_id, str(handler_id)))
        if approver_id:
            write_string(row, 12, users.get(approver_id, str(approver_id)))
        if decision:
            write_string(row, 13, decision)
        if reverses:
            write_number(row, 14, reverses)
    ws.autofilter(head, 0, max(row, head + 1), len(EXPENSE_HEADERS) - 1)
    return row - head, last


def _write_findings(ws, fmt, town, period, findings: list[Finding], notes: dict) -> None:
    headers = (
        ("序号", 6),
        ("严重程度", 9),
        ("问题类型", 24),
        ("说明", 90),
        ("对象", 9),
        ("对象编号", 9),
        ("资金来源编号", 9),
        ("涉及金额", 16),
        ("日期", 12),
        ("核查状态", 10),
        ("核查说明", 50),
        ("说明人", 10),
        ("说明时间", 17),
    )
    _title(ws, fmt, town, "资金使用问题清单", period, len(headers))
    head = 2
    unexplained = sum(1 for f in findings if not stands(f, notes))
    ws.text(
        1,
        0,
        f"共{len(findings)}条，其中待核查{unexplained}条（由系统按资金使用检查规则自动生成）",
        fmt.subtitle,
    )
    _header(ws, fmt, head, headers)
    ws.freeze_panes(head + 1, 0)
    row = head
    for i, f in enumerate(findings, start=1):
        row += 1
        ws.number(row, 0, i)
        ws.text(row, 1, f.severity_label)
        ws.text(row, 2, f.rule_label)
        ws.text(row, 3, f.message)
        ws.text(row, 4, TARGET_LABELS.get(f.target, f.target))
        ws.number(row, 5, f.target_id)
        if f.source_id:
            ws.number(row, 6, f.source_id)
        if f.amount is not None:
            ws.number(row, 7, float(f.amount), fmt.money)
        if f.spent_on:
            ws.date(row, 8, _date(f.spent_on), fmt.date)
        note = notes.get(f.key)
        ws.text(row, 9, "已说明" if stands(f, notes) else ("情况已变化" if note else "待核查"))
        if note:
            ws.text(row, 10, note.note)
            ws.text(row, 11, str(note.by or ""))
            ws.date(row, 12, note.at, fmt.datetime)
    ws.autofilter(head, 0, max(row, head + 1), len(headers) - 1)


__all__ = ["FILENAME", "SHEETS", "period_text", "write_ledger"]
