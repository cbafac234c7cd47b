"""一人一档, 台账导入 and 报表 at scale: a dossier of 500 records, a 10,000-row ledger, the monthly report."""

import datetime as dt
import random
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import xlsxwriter
from sqlalchemy import insert, select

from choices import AssessmentStatus, ServiceStatus
from models import (
    Activity,
    Alert,
    Assessment,
    Attendance,
    Case,
    CaseEvent,
    Child,
    Expense,
    FundSource,
    MentorPairing,
    RuleVersion,
    Staff,
    SupportService,
    Village,
    Visit,
    db,
)
from seeds.demo import id_number
from services.ledger_import import COLUMNS, check_ledger, import_ledger

MARKER = "基准：一人一档500条记录"
LEDGER_ROWS = 10_000
# Records of each kind hung on one child: 500 in all.
RECORDS = {
    "assessment": 60,
    "service": 100,
    "visit": 120,
    "alert": 40,
    "case": 10,
    "attendance": 60,
    "pairing": 20,
    "expense": 90,
}


def build(app):
    session = db.session
    session.info["skip_audit"] = True
    rng = random.Random(7)
    village = session.scalar(select(Village.id).order_by(Village.sort_order))
    child = session.scalar(select(Child).where(Child.village_id == village).order_by(Child.id))
    child.notes = MARKER
    staff = session.scalars(select(Staff.id).order_by(Staff.id).limit(5)).all()
    rules = RuleVersion(snapshot={}, fingerprint="bench-dossier")
    session.add(rules)
    session.flush()
    day0 = dt.date(2021, 1, 1)
    cid = child.id
    levels = ["green", "yellow", "orange", "red"]
    session.execute(
        insert(Assessment),
        [
            {
                "child_id": cid,
                "assessed_on": day0 + dt.timedelta(days=30 * i),
                "methods": ["home_visit"],
                "scores": {},
                "vetoes": [],
                "total_score": rng.randint(8, 33),
                "computed_level": levels[i % 4],
                "level": levels[i % 4],
                "rule_version_id": rules.id,
                "status": AssessmentStatus.APPROVED.value,
                "version": 1,
            }
            for i in range(RECORDS["assessment"])
        ],
    )
    session.execute(
        insert(SupportService),
        [
            {
                "child_id": cid,
                "village_id": child.village_id,
                "tier": levels[i % 4],
                "kind": "counselling",
                "status": ServiceStatus.DELIVERED.value if i % 3 else ServiceStatus.PLANNED.value,
                "due_on": day0 + dt.timedelta(days=15 * i),
                "delivered_on": day0 + dt.timedelta(days=15 * i - 1) if i % 3 else None,
                "provider_id": staff[i % len(staff)],
                "content": "基准心理疏导",
                "version": 1,
            }
            for i in range(RECORDS["service"])
        ],
    )
    session.execute(
        insert(Visit),
        [
            {
                "child_id": cid,
                "visited_on": day0 + dt.timedelta(days=14 * i),
                "kind": "home",
                "notes": "基准走访",
                "next_due": day0 + dt.timedelta(days=14 * i + 15),
                "version": 1,
            }
            for i in range(RECORDS["visit"])
        ],
    )
    visits = session.scalars(select(Visit.id).where(Visit.child_id == cid, Visit.notes == "基准走访")).all()
    session.execute(
        Visit.visitors.property.secondary.insert(),
        [{"visit_id": vid, "staff_id": staff[i % len(staff)]} for i, vid in enumerate(visits)],
    )
    session.execute(
        insert(Alert),
        [
            {
                "source": "rule",
                "severity": levels[1 + i % 3],
                "child_id": cid,
                "village_id": village,
                "title": f"基准预警{i}",
                "raised_at": dt.datetime(2021, 1, 1) + dt.timedelta(days=40 * i),
                "deadline": dt.datetime(2021, 1, 2) + dt.timedelta(days=40 * i),
                "status": "done",
                "closed_at": dt.datetime(2021, 1, 1, 20) + dt.timedelta(days=40 * i),
                "version": 1,
            }
            for i in range(RECORDS["alert"])
        ],
    )
    session.execute(
        insert(Case),
        [
            {
                "child_id": cid,
                "case_type": "absence",
                "opened_on": day0 + dt.timedelta(days=180 * i),
                "stage": "closed" if i < 9 else "track",
                "closed_on": day0 + dt.timedelta(days=180 * i + 90) if i < 9 else None,
                "stage_changed_at": dt.datetime(2021, 1, 1),
                "version": 1,
            }
            for i in range(RECORDS["case"])
        ],
    )
    cases = session.scalars(
        select(Case.id).where(Case.child_id == cid, Case.stage_changed_at == dt.datetime(2021, 1, 1))
    ).all()
    stages = ["identify", "assess", "intervene", "track", "closed"]
    session.execute(
        insert(CaseEvent),
        [
            {"case_id": case_id, "kind": "stage", "from_stage": a, "to_stage": b, "note": "基准"}
            for case_id in cases
            for a, b in zip(stages, stages[1:], strict=False)
        ],
    )
    session.execute(
        insert(Activity),
        [
            {
                "title": f"基准活动{i}",
                "kind": "red_class",
                "starts_at": dt.datetime(2021, 1, 1, 9) + dt.timedelta(days=20 * i),
                "audience": ["children"],
                "version": 1,
            }
            for i in range(RECORDS["attendance"])
        ],
    )
    activities = session.scalars(select(Activity.id).where(Activity.title.like("基准活动%"))).all()
    session.execute(insert(Attendance), [{"activity_id": aid, "child_id": cid} for aid in activities])
    session.execute(
        insert(MentorPairing),
        [
            {
                "staff_id": staff[i % len(staff)],
                "child_id": cid,
                "start_on": day0 + dt.timedelta(days=60 * i),
                "end_on": day0 + dt.timedelta(days=60 * i + 59),
                "version": 1,
            }
            for i in range(RECORDS["pairing"])
        ],
    )
    session.execute(
        insert(FundSource),
        [
            {
                "name": "基准档案资金",
                "kind": "district",
                "amount": Decimal("100000"),
                "received_on": day0,
                "allowed_categories": [],
                "version": 1,
            }
        ],
    )
    source = session.scalar(select(FundSource.id).where(FundSource.name == "基准档案资金"))
    session.execute(
        insert(Expense),
        [
            {
                "spent_on": day0 + dt.timedelta(days=20 * i),
                "amount": Decimal("88.50"),
                "source_id": source,
                "category": "professional",
                "payee": "基准收款方",
                "child_id": cid,
                "status": "paid",
                "version": 1,
            }
            for i in range(RECORDS["expense"])
        ],
    )
    session.commit()
    session.info.pop("skip_audit", None)


def ledger_file(rows: int = LEDGER_ROWS) -> Path:
    """A 10,000-row ledger of new children (ID serials no demo child or guardian uses), written as Excel does."""
    path = Path(tempfile.mkdtemp()) / "ledger-10000.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("儿童名单")
    sheet.write_row(0, 0, [c.header + ("*" if c.required else "") for c in COLUMNS])
    keys = [c.key for c in COLUMNS]
    villages = [v for (v,) in db.session.execute(select(Village.name).order_by(Village.sort_order))]
    for n in range(rows):
        born = dt.date(2012, 1, 1) + dt.timedelta(days=n // 50)
        values = {
            "name": f"基准导入{n}",
            "id_number": id_number(born, 450 + n % 50, n % 2 == 1),
            "village": villages[n % len(villages)],
            "address": f"基准地址{n}号",
            "category1": "低保儿童",
            "g1_name": f"基准家长{n}",
            "g1_relation": "母",
            "g1_phone": f"135{n:08d}",
            "g1_status": "外出务工",
        }
        for col, key in enumerate(keys):
            if values.get(key) is not None:
                sheet.write_string(n + 1, col, values[key])
    book.close()
    return path


def measure(bench):
    child = db.session.scalar(select(Child.id).where(Child.notes == MARKER))
    if child is not None:
        note = f"{sum(RECORDS.values())} records"
        bench.time_get(
            "dossier, child with 500 records", "clerk", f"/admin/dossier/?id={child}", 150, note=note
        )
        bench.time_get(
            "dossier print view, 500 records", "clerk", f"/admin/dossier/print/?id={child}", 150, note=note
        )

    today = dt.date.today()
    bench.time_get(
        "monthly report xlsx (all villages)",
        "clerk",
        f"/admin/reports/download/?kind=monthly&year={today.year}&month={today.month}",
        10_000,
        repeat=3,
    )
    bench.time_get(
        "phase report xlsx (all villages)",
        "clerk",
        f"/admin/reports/download/?kind=phase&year={today.year}&phase=advance",
        None,
        repeat=1,
        note="10 monthly trend columns",
    )

    bench.time_get("likely duplicates page (all villages)", "clerk", "/admin/duplicates/", None, repeat=3)

    path = ledger_file()
    with bench.app.app_context(), bench.app.test_request_context():
        start = time.perf_counter()
        result = check_ledger(path, None)
        dry_run = (time.perf_counter() - start) * 1000
        assert result.ok, result.errors[:3]
        bench.add("ledger dry run, 10,000 rows", [dry_run], 20_000, note=f"{result.total_rows} rows checked")
        start = time.perf_counter()
        summary = import_ledger(path, None, "skip", file_name="bench")
        db.session.flush()
        imported = (time.perf_counter() - start) * 1000
        db.session.rollback()  # the benchmark database stays as it was
        bench.add(
            "ledger import, 10,000 rows", [imported], 30_000, note=f"{summary.created} children, rolled back"
        )
    path.unlink(missing_ok=True)
