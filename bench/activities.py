"""Activities: the attendance roll of 2,000 people, saving 200 ticks in one request, the 2,000-row sign-in sheet."""

import datetime as dt
import re
import statistics
import time

from flask.testing import FlaskClient
from sqlalchemy import delete, func, insert, select

from choices import ActivityKind, Audience, ChildStatus, Gender, Relation
from models import (
    Activity,
    Attendance,
    Child,
    ChildGuardian,
    Guardian,
    Village,
    activity_village,
    db,
    given_name,
    pinyin_keys,
)
from seeds.demo import DEMO_PASSWORD, SURNAMES, id_number
from services import filing

BENCH_VILLAGE = "基准村"
BENCH_TITLE = "基准测试：重走微长征（2000人名单）"
CHILDREN = 1000  # each with one guardian of their own: a roll of 2,000 people


def build(app):
    session = db.session
    session.info["skip_audit"] = True
    village = Village(name=BENCH_VILLAGE, code="BENCH01", kind="village", sort_order=99)
    session.add(village)
    session.flush()
    next_child = (session.scalar(select(func.max(Child.id))) or 0) + 1
    next_guardian = (session.scalar(select(func.max(Guardian.id))) or 0) + 1
    given = "明华丽强军红梅芳静伟磊洋勇艳杰娟涛超秀霞"
    children, guardians, links = [], [], []
    start = dt.date(2010, 1, 1)
    for i in range(CHILDREN):
        name = SURNAMES[i % len(SURNAMES)] + given[i % len(given)] + given[(i // len(given)) % len(given)]
        full, initials = pinyin_keys(name)
        idn = id_number(start + dt.timedelta(days=i), 400, i % 2 == 0)
        children.append(
            {
                "id": next_child + i,
                "name": name,
                "name_pinyin": full,
                "name_initials": initials,
                "name_given": given_name(name),
                "gender": Gender.MALE.value if i % 2 == 0 else Gender.FEMALE.value,
                "id_number": idn,
                "id_last4": idn[-4:],
                "birth_date": start + dt.timedelta(days=i),
                "village_id": village.id,
                "status": ChildStatus.ACTIVE.value,
                "version": 1,
            }
        )
        g_name = SURNAMES[(i + 3) % len(SURNAMES)] + given[(i + 5) % len(given)]
        g_full, g_initials = pinyin_keys(g_name)
        guardians.append(
            {
                "id": next_guardian + i,
                "name": g_name,
                "name_pinyin": g_full,
                "name_initials": g_initials,
                "village_id": village.id,
                "version": 1,
            }
        )
        links.append(
            {
                "child_id": next_child + i,
                "guardian_id": next_guardian + i,
                "relation": Relation.MOTHER.value,
                "is_primary": True,
            }
        )
    session.execute(insert(Child), children)
    session.execute(insert(Guardian), guardians)
    session.execute(insert(ChildGuardian), links)
    filing.refresh(session, [row["child_id"] for row in links])
    activity = Activity(
        kind=ActivityKind.RED_WALK.value,
        title=BENCH_TITLE,
        starts_at=dt.datetime(2026, 4, 4, 9, 0),
        ends_at=dt.datetime(2026, 4, 4, 12, 0),
        place="二路红军微长征步道",
        audience=[Audience.CHILDREN.value, Audience.PARENTS.value],
        capacity=2500,
        version=1,
    )
    session.add(activity)
    session.flush()
    session.execute(insert(activity_village), [{"activity_id": activity.id, "village_id": village.id}])
    session.commit()
    session.info.pop("skip_audit", None)


class _FreshContextClient(FlaskClient):
    """A request in its own app context, as in production (a shared one would share g and its CSRF token)."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


def _login(app, username):
    app.test_client_class = _FreshContextClient
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    client.post("/login", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token})
    return client


def _time_get(bench, client, what, url, target_ms, repeat=15, note=""):
    assert client.get(url).status_code == 200, url
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    bench.add(what, samples, target_ms, note)


def measure(bench):
    activity = db.session.scalar(select(Activity).where(Activity.title == BENCH_TITLE))
    url = f"/admin/activity/attendance/?id={activity.id}"
    client = _login(bench.app, "clerk")
    page = client.get(url).get_data(as_text=True)
    people = len(re.findall(r'name="present" value=', page))
    _time_get(bench, client, "attendance roll", url, 150, note=f"{people} people on the roll")

    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    shown = re.search(r'name="shown" value="([^"]*)"', page).group(1)
    keys = shown.split(",")[:200]
    samples = []
    for _ in range(7):
        db.session.execute(delete(Attendance).where(Attendance.activity_id == activity.id))
        db.session.commit()
        start = time.perf_counter()
        response = client.post(url, data={"csrf_token": token, "shown": shown, "present": keys})
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 302, response.status_code
    signed = db.session.scalar(select(func.count()).where(Attendance.activity_id == activity.id))
    assert signed == 200, signed
    bench.add("save 200 ticks in one request", samples[1:], 300, note=f"median of {len(samples) - 1}")

    sheet_url = f"/admin/activity/signin-sheet/?id={activity.id}"
    _time_get(bench, client, "sign-in sheet xlsx", sheet_url, 2000, repeat=5, note=f"{people} rows")

    data = client.get(sheet_url).data
    from services.attendance import build_roll
    from services.signin_sheet import read_sheet

    entries = build_roll(db.session, activity, None).entries
    times = []
    for _ in range(3):
        start = time.perf_counter()
        reading = read_sheet(data, entries)
        times.append((time.perf_counter() - start) * 1000)
    bench.add(
        "read back a sign-in sheet",
        [statistics.median(times)],
        2000,
        note=f"{reading.unmarked + len(reading.matched)} rows",
    )
