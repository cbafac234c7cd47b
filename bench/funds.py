"""Funds: every fund check over 20,000 expenses, the ledger, and the streamed export of the child list.

The export is compared with XlsxWriter writing the same rows on its own (already in memory), in the
same run; its memory is measured separately with tracemalloc (which slows Python down).
"""

import datetime as dt
import gc
import io
import os
import random
import statistics
import tempfile
import time
import tracemalloc
from decimal import Decimal

import openpyxl
import xlsxwriter
from flask_login import login_user
from sqlalchemy import func, insert, select

from bench.harness import Row
from choices import ExpenseCategory, FundKind
from models import Activity, Child, Expense, FundSource, User, db

EXPENSES = 20_000
SOURCES = 40
CHILD_EXPORT_URL = "/admin/child/export.xlsx"


def build(app):
    session = db.session
    session.info["skip_audit"] = True
    rng = random.Random(6)
    handler = session.scalar(select(User.id).where(User.username == "finance"))
    approver = session.scalar(select(User.id).where(User.username == "admin"))
    activities = session.scalars(select(Activity.id)).all() or [None]
    categories = [c.value for c in ExpenseCategory]
    kinds = [k.value for k in FundKind]
    source_rows = []
    for i in range(SOURCES):
        allowed = categories if i else categories[:2]  # one source is earmarked for two categories
        source_rows.append(
            {
                "name": f"基准资金来源{i + 1:02d}",
                "kind": kinds[i % len(kinds)],
                "amount": Decimal("8000000.00") if i % 10 else Decimal("5000000.00"),
                "received_on": dt.date(2026, 1, 1) + dt.timedelta(days=i % 10),
                "document_no": f"基准〔2026〕{i + 1}号",
                "allowed_categories": allowed,
                "valid_from": None,
                "valid_to": dt.date(2026, 12, 31),
                "version": 1,
            }
        )
    session.execute(insert(FundSource), source_rows)
    sources = session.scalars(select(FundSource.id).where(FundSource.name.like("基准资金来源%"))).all()
    # About one expense in a hundred breaks a rule; the rest are clean, as in a kept ledger.
    payees = [f"基准收款单位{i:04d}" for i in range(1000)]
    rows = []
    for i in range(EXPENSES):
        source_index = i % len(sources)
        category = rng.choice(categories[:2] if source_index == 0 and rng.random() > 0.02 else categories)
        status = rng.choices(["paid", "approved", "draft"], [85, 10, 5])[0]
        approved = status != "draft"
        day = dt.date(2026, 1, 15) + dt.timedelta(days=i * 300 // EXPENSES)
        large = rng.random() < 0.02
        amount = (
            Decimal(rng.randrange(3_000_000, 20_000_000) if large else rng.randrange(10_000, 2_000_000)) / 100
        )
        rows.append(
            {
                "spent_on": day,
                "amount": amount,
                "source_id": sources[source_index],
                "category": category,
                "payee": payees[i % len(payees)] if rng.random() > 0.01 else rng.choice(payees),
                "purpose": f"基准支出{i}",
                "activity_id": rng.choice(activities)
                if category != "other" and rng.random() < 0.99
                else None,
                "voucher_no": f"B-{i:06d}" if rng.random() > 0.003 else f"B-{rng.randrange(EXPENSES):06d}",
                "invoice_attached": rng.random() > 0.003,
                "status": status,
                "handler_id": handler,
                "approver_id": (handler if rng.random() < 0.002 else approver) if approved else None,
                "approved_at": dt.datetime.combine(day, dt.time(10)) if approved else None,
                "paid_at": dt.datetime.combine(day, dt.time(15)) if status == "paid" else None,
                "collective_decision_ref": "基准集体决策" if large and rng.random() < 0.97 else None,
                "version": 1,
            }
        )
    for start in range(0, len(rows), 5000):
        session.execute(insert(Expense), rows[start : start + 5000])
    session.commit()
    session.info.pop("skip_audit", None)


def measure(bench):
    from services import fund_checks

    n = db.session.scalar(select(func.count()).select_from(Expense))
    findings = fund_checks.run_all()
    _timed(
        bench, f"fund checks, all 11 ({n} expenses)", fund_checks.run_all, 300, 7, f"{len(findings)} findings"
    )
    client = bench.client("finance")
    url = "/admin/fund-check/ledger.xlsx?start=2026-01-01&end=2026-12-31"

    def ledger():
        response = client.get(url)
        assert response.status_code == 200, response.status_code
        sum(len(chunk) for chunk in response.iter_encoded())
        response.close()

    # For scale: XlsxWriter alone writing the same detail rows (most of the ledger's time is spent in
    # XlsxWriter writing cells, and this machine's speed varies from run to run).
    detail = _sheet_rows(client.get(url).get_data(), "支出明细")
    plain_ms = statistics.median(_plain_xlsxwriter(detail) for _ in range(3)) * 1000
    _timed(
        bench,
        f"ledger 资金使用台账.xlsx ({n} expenses)",
        ledger,
        3000,
        3,
        f"HTTP, checks included; plain XlsxWriter writing the same {len(detail):,} detail rows {plain_ms:.0f} ms",
    )
    _measure_child_export(bench)


def _timed(bench, what, fn, target_ms, repeat, note):
    """Wall time as the table's figure; CPU time and the machine's load beside it (a shared machine
    stretches wall time, not CPU time)."""
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    load = os.getloadavg()[0]
    bench.add(what, wall, target_ms, f"{note}; CPU {statistics.median(cpu):.0f} ms; load {load:.1f}")


def _export_once(bench) -> tuple[float, int]:
    """One export of the whole child list as the clerk; returns (seconds, bytes)."""
    start = time.perf_counter()
    view = _child_view(bench.app)
    if view is None:
        response = bench.client("clerk").get(CHILD_EXPORT_URL)
        assert response.status_code == 200, response.status_code
        size = sum(len(chunk) for chunk in response.iter_encoded())  # read as a browser would, in chunks
        response.close()
    else:
        with bench.app.test_request_context("/admin/child-export/export.xlsx"):
            login_user(db.session.scalar(select(User).where(User.username == "clerk")))
            response = view.export_xlsx()
            response.direct_passthrough = False
            size = sum(len(chunk) for chunk in response.iter_encoded())
            response.close()
    return time.perf_counter() - start, size


_VIEW = {}


def _child_view(app):
    """None when ChildView has the export (the HTTP path is used); else an unregistered subclass."""
    from views.export import XlsxExportMixin
    from views.registry import ChildView

    if hasattr(ChildView, "export_xlsx"):
        return None
    if "view" not in _VIEW:

        class ChildExportView(ChildView, XlsxExportMixin):
            pass

        _VIEW["view"] = ChildExportView(Child, name="儿童名册", endpoint="child_bench_export")
    return _VIEW["view"]


def _baseline_rows(bench) -> list[list]:
    """The exported rows as plain values, read back from one export (not timed)."""

    view = _child_view(bench.app)
    if view is None:
        response = bench.client("clerk").get(CHILD_EXPORT_URL)
        data = response.get_data()
    else:
        with bench.app.test_request_context("/"):
            login_user(db.session.scalar(select(User).where(User.username == "clerk")))
            response = view.export_xlsx()
            response.direct_passthrough = False
            data = response.get_data()
    return _sheet_rows(data, None)


def _sheet_rows(data: bytes, sheet: str | None) -> list[list]:
    """The values of one sheet (the first when None), read back with openpyxl."""
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    rows = [list(r) for r in (book[sheet] if sheet else book.worksheets[0]).iter_rows(values_only=True)]
    book.close()
    return rows


def _plain_xlsxwriter(rows: list[list]) -> float:
    """XlsxWriter alone writing the same rows, already in memory, in the same mode."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        wb = xlsxwriter.Workbook(out, {"constant_memory": True})
        ws = wb.add_worksheet("儿童名册")
        for r, row in enumerate(rows):
            ws.write_row(r, 0, row)
        wb.close()
    return time.perf_counter() - start


def _measure_child_export(bench):
    rows = _baseline_rows(bench)
    n = len(rows) - 1
    # The baseline's million cell objects would otherwise be rescanned by every garbage collection
    # during our export (which allocates far more than XlsxWriter alone) and bill it for them.
    gc.collect()
    gc.freeze()
    plain, ours = [], []
    for _ in range(3):  # alternated, so a busy moment of the machine hits both alike
        plain.append(_plain_xlsxwriter(rows))
        ours.append(_export_once(bench)[0])
    del rows
    gc.unfreeze()
    plain_ms = statistics.median(plain) * 1000
    ours_ms = statistics.median(ours) * 1000
    bench.add(
        f"child list export.xlsx ({n} rows, streamed)",
        [t * 1000 for t in ours],
        round(plain_ms * 1.3),
        note=f"target = 1.3 × plain XlsxWriter {plain_ms:.0f} ms; ratio {ours_ms / plain_ms:.2f}; "
        f"load {os.getloadavg()[0]:.1f}",
    )
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    _export_once(bench)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    growth_mb = (peak - base) / 1024 / 1024
    bench.rows.append(Row("child list export: peak memory growth (tracemalloc)", growth_mb, 60, unit="MB"))
    print(f"  child export peak memory growth: {growth_mb:.1f} MB (target 60)", flush=True)
