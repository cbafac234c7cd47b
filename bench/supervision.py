"""Supervision at 100,000 children: 1,000,000 visits, a full alert-rules run, alert centre, case board.

``python -m bench.run supervision`` runs this area alone (on bench-100000-supervision.db).
"""

import datetime as dt
import random
import time
import tracemalloc

from sqlalchemy import delete, insert, select

from bench.harness import CHILDREN, Row
from choices import CaseStage, CaseType, ReporterKind, Urgency, VisitKind
from models import Alert, AlertStep, Case, CaseEvent, Child, MandatoryReport, Visit, db
from services import clock, visits
from services.alerts import run_rules

VISITS = 10 * CHILDREN  # 1,000,000 at the benchmark's 100,000 children
CASES = 3_000
REPORTS = 3_000
BATCH = 50_000


def build(app) -> None:
    """Bulk-insert the visits (10 per child on average), cases with their events, and reports."""
    rng = random.Random(44)
    today = clock.today()
    children = db.session.execute(
        select(Child.id, Child.village_id).where(Child.archived_at.is_(None)).order_by(Child.id)
    ).all()
    kinds = [k.value for k in VisitKind]
    per_child = max(VISITS // len(children), 1)
    rows = []
    written = 0
    for child_id, _ in children:
        last = today - dt.timedelta(days=rng.randint(0, 40))
        for k in range(per_child):
            visited_on = last - dt.timedelta(days=30 * k)
            rows.append(
                {
                    "child_id": child_id,
                    "visited_on": visited_on,
                    "kind": kinds[k % 4],
                    "child_seen": True,
                    "guardian_present": True,
                    "living_ok": True,
                    "school_ok": True,
                    "harm_signs": False,
                    "risk_found": False,
                    "next_due": visited_on + dt.timedelta(days=30),
                    "version": 1,
                }
            )
        if len(rows) >= BATCH:
            db.session.execute(insert(Visit), rows)
            written += len(rows)
            rows = []
        if written + len(rows) >= VISITS:
            break
    if rows:
        db.session.execute(insert(Visit), rows)
    visits.refresh(db.session.connection())  # 下次走访 counts the visits just written
    _build_cases(rng, children, today)
    _build_reports(rng, children, today)
    db.session.commit()


def _build_cases(rng, children, today) -> None:
    stages = [s.value for s in CaseStage]
    types = [t.value for t in CaseType]
    first_new = (db.session.scalar(select(db.func.max(Case.id))) or 0) + 1
    cases = []
    for n in range(CASES):
        child_id, _ = children[rng.randrange(len(children))]
        opened = today - dt.timedelta(days=rng.randint(0, 365))
        changed = dt.datetime.combine(opened + dt.timedelta(days=rng.randint(0, 20)), dt.time(10))
        cases.append(
            {
                "child_id": child_id,
                "case_type": types[n % 3],
                "opened_on": opened,
                "reported_to_bureau_on": opened + dt.timedelta(days=1) if n % 7 else None,
                "stage": stages[n % 5],
                "stage_changed_at": min(changed, dt.datetime.combine(today, dt.time(9))),
                "plan_goals": "演示目标",
                "version": 1,
            }
        )
    db.session.execute(insert(Case), cases)
    # the stage history agrees with the stage: opened, then one event into the current stage
    events = []
    for case_id, stage, opened, changed in db.session.execute(
        select(Case.id, Case.stage, Case.opened_on, Case.stage_changed_at).where(Case.id >= first_new)
    ):
        events.append(
            {
                "case_id": case_id,
                "at": dt.datetime.combine(opened, dt.time(8)),
                "kind": "open",
                "to_stage": "identify",
            }
        )
        if stage != "identify":
            events.append({"case_id": case_id, "at": changed, "kind": "stage", "to_stage": stage})
    db.session.execute(insert(CaseEvent), events)


def _build_reports(rng, children, today) -> None:
    now = dt.datetime.combine(today, dt.time(9))
    rows = []
    for n in range(REPORTS):
        child_id, village_id = children[rng.randrange(len(children))]
        received = now - dt.timedelta(hours=rng.randint(1, 24 * 200))
        rows.append(
            {
                "reporter_kind": ReporterKind.GRID.value,
                "anonymous": False,
                "received_at": received,
                "child_id": child_id,
                "village_id": village_id,
                "situation": "演示强制报告",
                "urgency": Urgency.URGENT.value,
                "first_response_at": received + dt.timedelta(hours=2) if n % 10 else None,
                "version": 1,
            }
        )
    db.session.execute(insert(MandatoryReport), rows)


def measure(bench) -> None:
    today, now = clock.today(), clock.now()  # raised now, as the hourly run does (not at the day's end)
    visits = db.session.scalar(select(db.func.count()).select_from(Visit))
    start = time.perf_counter()
    first = run_rules(today, now)
    bench.add(
        "alert rules: full run (raising)",
        [(time.perf_counter() - start) * 1000],
        15000,
        f"{visits:,} visits; {first.raised:,} raised, {first.holding:,} holding",
    )
    start = time.perf_counter()
    again = run_rules(today, now)
    bench.add(
        "alert rules: full run (repeat, idempotent)",
        [(time.perf_counter() - start) * 1000],
        15000,
        f"{again.raised} raised, {again.cleared} cleared",
    )
    # Memory of the heaviest kind of run, a first run over the whole town: raise everything again.
    db.session.execute(delete(AlertStep))
    db.session.execute(delete(Alert))
    db.session.commit()
    tracemalloc.start()
    heavy = run_rules(today, now)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    bench.rows.append(
        Row(
            "alert rules: peak Python memory of a raising run (tracemalloc)",
            peak / 2**20,
            300,
            f"{heavy.raised:,} raised",
            unit="MB",
        )
    )
    pages = [
        ("alert centre (supervisor)", "supervisor", "/admin/alerts/", 60),
        ("alert centre (director1)", "director1", "/admin/alerts/", 60),
        ("alert centre red, page 20", "supervisor", "/admin/alerts/?severity=red&page=20", 60),
        ("case board (supervisor)", "supervisor", "/admin/caseboard/", 100),
        ("case board (social)", "social", "/admin/caseboard/", 100),
    ]
    for what, username, url, target in pages:
        bench.time_get(what, username, url, target)
