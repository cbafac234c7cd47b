"""Assessment, dashboard and risk map at 100,000 children with 300,000 assessments."""

import datetime as dt
import re

from sqlalchemy import insert

from bench.harness import CHILDREN
from choices import AssessmentStatus, Level
from models import Assessment, Child, Staff, User, db
from services import clock
from services.assessment import current_rules, indicator_codes

ASSESSMENTS = CHILDREN * 3
BATCH = 20000


def build(app):
    """Older approved assessments until there are three per child (the demo wrote the recent ones)."""
    with app.app_context():
        version = current_rules()
        rules = version.snapshot
        codes = indicator_codes(rules)
        have = db.session.scalar(db.select(db.func.count(Assessment.id)))
        missing = max(0, ASSESSMENTS - have)
        child_ids = db.session.scalars(db.select(Child.id).order_by(Child.id)).all()
        reviewer = db.session.scalar(db.select(User.id).where(User.username == "supervisor"))
        author = db.session.scalar(db.select(User.id).where(User.username == "social"))
        today = clock.today()
        levels = list(Level)
        rows = []
        for n in range(missing):
            child_id = child_ids[n % len(child_ids)]
            level = levels[(n * 7 + child_id) % 4]
            per = {Level.GREEN: 3, Level.YELLOW: 2, Level.ORANGE: 1, Level.RED: 0}[level]
            total = per * len(codes)
            on = today - dt.timedelta(days=220 + (n * 13) % 500)
            rows.append(
                {
                    "child_id": child_id,
                    "assessed_on": on,
                    "methods": ["home_visit"],
                    "scores": dict.fromkeys(codes, per),
                    "vetoes": [],
                    "total_score": total,
                    "computed_level": level.value,
                    "level": level.value,
                    "worsened": False,
                    "rule_version_id": version.id,
                    "status": AssessmentStatus.APPROVED.value,
                    "created_by_id": author,
                    "reviewed_by_id": reviewer,
                    "next_reassess_on": on + dt.timedelta(days=rules["levels"][level.value]["reassess_days"]),
                    "version": 1,
                }
            )
            if len(rows) == BATCH:
                db.session.execute(insert(Assessment), rows)
                rows = []
        if rows:
            db.session.execute(insert(Assessment), rows)
        db.session.commit()


def _token(client, url) -> str:
    page = client.get(url).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def measure(bench):
    n = db.session.scalar(db.select(db.func.count(Assessment.id)))
    note = f"{n:,} assessments"
    bench.time_get("dashboard (clerk, whole town)", "clerk", "/admin/", 200, note=note)
    bench.time_get("dashboard (director1, one village)", "director1", "/admin/", 200)
    bench.time_get("risk-map data (clerk)", "clerk", "/admin/risk-map/data/", 150)
    as_of = (clock.today() - dt.timedelta(days=90)).isoformat()
    bench.time_get(
        "risk-map data as of 90 days ago (clerk)",
        "clerk",
        f"/admin/risk-map/data/?as_of={as_of}",
        300,
        note=note,
    )
    bench.time_get("assessment list page 1 (clerk)", "clerk", "/admin/assessment/", None)

    client = bench.client("supervisor")
    # A demo child of a village with staff (other benchmarks add children of a village of their own).
    staffed = db.select(Staff.village_id).where(Staff.village_id.is_not(None))
    child = db.session.scalar(
        db.select(Child)
        .where(Child.archived_at.is_(None), Child.village_id.in_(staffed))
        .order_by(Child.id.desc())
        .limit(1)
    )
    team = db.session.scalar(db.select(Staff.id).where(Staff.village_id == child.village_id).limit(1))
    form_url = f"/admin/assessment-form/new/?child_id={child.id}"
    codes = indicator_codes(current_rules().snapshot)
    data = {
        "csrf_token": _token(client, form_url),
        "child_id": child.id,
        "assessed_on": clock.today().isoformat(),
        "methods": ["home_visit"],
        "team": [team],
        "action": "submit",
        **{f"score_{code}": "2" for code in codes},
    }

    def save():
        response = client.post("/admin/assessment-form/save/", data=data)
        assert response.status_code == 302, response.status_code

    save()  # warm-up
    bench.time_call("assessment save (submit for review)", save, 100, repeat=15)
