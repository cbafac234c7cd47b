"""The phone at 100,000 children: the offline copy of a 3,000-child village, a sync of 200 queued
visits in one request, and 今日 for director1.

``python -m bench.run field`` runs this area alone (on bench-100000-field.db).
"""

import datetime as dt
import gzip
import json
import time
import uuid

from sqlalchemy import delete, func, select, update
from werkzeug.security import generate_password_hash

from choices import Role, StaffKind
from models import Activity, Alert, Child, Staff, SyncReceipt, User, Village, Visit, db
from services import clock
from services.visits import UNASSESSED_VISIT_DAYS, visit_days_by_level

VILLAGE = "测评村（3000人）"
USERNAME = "director_bench"
CHILDREN_IN_VILLAGE = 3000
QUEUED_VISITS = 200


def _password() -> str:
    try:
        from seeds.demo import DEMO_PASSWORD
    except ImportError:
        return "demo-12345"
    return DEMO_PASSWORD


def build(app) -> None:
    """A village of exactly 3,000 children (moved from the largest village that is not director1's),
    its 儿童主任's account, and an activity for its children tomorrow (its roll is in the copy)."""
    director1 = db.session.scalar(select(User).where(User.username == "director1"))
    source = db.session.execute(
        select(Child.village_id, func.count())
        .where(Child.village_id != director1.village_id, Child.archived_at.is_(None))
        .group_by(Child.village_id)
        .order_by(func.count().desc())
        .limit(1)
    ).first()[0]
    village = Village(name=VILLAGE, kind="village", code="BENCH3000", sort_order=99)
    db.session.add(village)
    db.session.flush()
    moved = db.session.scalars(
        select(Child.id)
        .where(Child.village_id == source, Child.archived_at.is_(None))
        .order_by(Child.id)
        .limit(CHILDREN_IN_VILLAGE)
    ).all()
    db.session.execute(update(Child).where(Child.id.in_(moved)).values(village_id=village.id))
    staff = Staff(name="测评主任", kind=StaffKind.DIRECTOR.value, village_id=village.id, phone="13900000000")
    db.session.add(staff)
    db.session.flush()
    db.session.add(
        User(
            username=USERNAME,
            display_name="测评主任",
            password_hash=generate_password_hash(_password()),
            role=Role.DIRECTOR.value,
            village_id=village.id,
            staff_id=staff.id,
        )
    )
    activity = Activity(
        title="测评村·红色监护课堂",
        kind="other",
        starts_at=dt.datetime.combine(clock.today() + dt.timedelta(days=1), dt.time(9)),
        audience=["children"],
    )
    activity.villages = [village]
    db.session.add(activity)
    db.session.commit()


def _login(bench, username):
    if username != USERNAME:
        return bench.client(username)
    client = bench.app.test_client()
    page = client.get("/login").get_data(as_text=True)
    import re

    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    client.post("/login", data={"username": username, "password": _password(), "csrf_token": token})
    return client


def measure(bench):
    client = _login(bench, USERNAME)
    village_id = db.session.scalar(select(Village.id).where(Village.name == VILLAGE))
    in_village = db.session.scalar(
        select(func.count()).where(Child.village_id == village_id, Child.archived_at.is_(None))
    )

    # the offline copy: built and gzipped by the app, as the phone asks for it
    samples, size = [], 0
    for _ in range(7):
        start = time.perf_counter()
        response = client.get("/field/api/copy", headers={"Accept-Encoding": "gzip"})
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200 and response.headers["Content-Encoding"] == "gzip"
        size = len(response.get_data())
    copy = json.loads(gzip.decompress(response.get_data()))
    assert len(copy["children"]) == in_village == CHILDREN_IN_VILLAGE, len(copy["children"])
    rolls = sum(len(a["roll"]) for a in copy["activities"])
    bench.add(
        "offline copy of a 3,000-child village: built and gzipped",
        samples,
        500,
        note=f"{in_village} children, {rolls} people on the next 14 days' rolls",
    )
    bench.rows.append(
        type(bench.rows[-1])(
            "offline copy of a 3,000-child village: size gzipped",
            size / 1024,
            300,
            note=f"{len(json.dumps(copy, ensure_ascii=False).encode()) / 1024:.0f} KB as JSON",
            unit="KB",
        )
    )
    print(f"  offline copy size: {size / 1024:.1f} KB gzipped (target 300)", flush=True)

    _sync_200(bench, client, village_id)

    bench.time_get(
        "今日 for director1 (data of the page)",
        "director1",
        "/field/api/today",
        100,
        note="the page itself is a static shell the service worker keeps",
    )


def _sync_200(bench, client, village_id):
    """200 visits recorded offline, each with 伤害迹象 (so 200 alerts), sent in one request."""
    user_id = db.session.scalar(select(User.id).where(User.username == USERNAME))
    children = db.session.execute(
        select(Child.id, Child.current_level)
        .where(Child.village_id == village_id, Child.archived_at.is_(None))
        .order_by(Child.id)
    ).all()
    days = visit_days_by_level()
    samples, written = [], []
    now = clock.now().replace(microsecond=0)
    for run in range(3):
        batch = children[run * QUEUED_VISITS : (run + 1) * QUEUED_VISITS]
        recorded = now - dt.timedelta(hours=3, minutes=run)
        items = [
            {
                "uuid": str(uuid.uuid4()),
                "kind": "visit",
                "recorded_at": recorded.isoformat(),
                "offline": True,
                "data": {
                    "child_id": child_id,
                    "visited_on": recorded.date().isoformat(),
                    "kind": "home",
                    "answers": {
                        "child_seen": True,
                        "guardian_present": False,
                        "living_ok": True,
                        "school_ok": True,
                        "harm_signs": True,
                        "risk_found": True,
                    },
                    "risk_note": "手臂有淤青",
                    "notes": "测评",
                },
            }
            for child_id, _ in batch
        ]
        token = client.get("/field/api/session").get_json()["csrf_token"]
        body = json.dumps({"user_id": user_id, "items": items})
        start = time.perf_counter()
        response = client.post(
            "/field/api/sync", data=body, content_type="application/json", headers={"X-CSRFToken": token}
        )
        samples.append((time.perf_counter() - start) * 1000)
        results = response.get_json()["results"]
        assert all(r["ok"] for r in results), [r for r in results if not r["ok"]][:3]
        uuids = [i["uuid"] for i in items]
        written.extend(uuids)
        visits = db.session.execute(
            select(Visit.id, Visit.child_id, Visit.visited_on, Visit.next_due).where(
                Visit.client_uuid.in_(uuids)
            )
        ).all()
        levels = dict(batch)
        wrong_dates = [
            v
            for v in visits
            if v.next_due
            != v.visited_on + dt.timedelta(days=days.get(levels[v.child_id], UNASSESSED_VISIT_DAYS))
        ]
        alerts = db.session.execute(
            select(Alert.raised_at, Alert.deadline).where(
                Alert.condition_key.in_([f"visit_risk:visit:{v.id}" for v in visits])
            )
        ).all()
        assert len(visits) == QUEUED_VISITS and not wrong_dates, wrong_dates[:3]
        assert len(alerts) == QUEUED_VISITS
        assert all(
            a.raised_at == recorded and a.deadline == recorded + dt.timedelta(hours=24) for a in alerts
        )
    bench.add(
        "sync 200 queued visits in one request",
        samples,
        2000,
        note="each with 伤害迹象: 200 red alerts from the visit time, 200 next-visit dates, all checked",
    )
    # Leave the cached database as it was for the next run.
    ids = db.session.scalars(select(Visit.id).where(Visit.client_uuid.in_(written))).all()
    db.session.execute(delete(Alert).where(Alert.condition_key.in_([f"visit_risk:visit:{i}" for i in ids])))
    for visit in db.session.scalars(select(Visit).where(Visit.id.in_(ids))):
        db.session.delete(visit)
    db.session.execute(delete(SyncReceipt).where(SyncReceipt.client_uuid.in_(written)))
    db.session.commit()
