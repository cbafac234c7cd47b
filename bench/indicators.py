"""Indicators at 100,000 children: every figure over the year, a past month's report (levels, stages
and 在册 read back from history), and the 141 feed a thousand alerts a page.

The 工作台 itself is timed in bench/assessment.py (it reads its figures from services/indicators.py).
Run with the areas that write the history: ``python -m bench.run assessment supervision indicators``.
"""

import datetime as dt
import time

from sqlalchemy import func, select

from choices import AlertStatus
from models import Alert, Case, Visit, db
from services import alerts, clock, indicators
from services.indicators import Frame


def _last_month(today: dt.date) -> tuple[dt.date, dt.date]:
    end = today.replace(day=1) - dt.timedelta(days=1)
    return end.replace(day=1), end


def measure(bench) -> None:
    today = clock.today()
    if (
        db.session.scalar(
            select(func.count()).select_from(Alert).where(Alert.status != AlertStatus.DONE.value)
        )
        < 1000
    ):
        alerts.run_rules(today, clock.now())  # this area alone: the feed needs the rules' alerts
    visits = db.session.scalar(select(func.count()).select_from(Visit))
    cases = db.session.scalar(select(func.count()).select_from(Case))
    note = f"{len(indicators.INDICATORS)} indicators; {visits:,} visits, {cases:,} cases"

    def year_to_date():
        indicators.compute_many(indicators.INDICATORS, Frame.year_to_date(None))

    bench.time_call("indicators: every figure, year to date (town)", year_to_date, None, repeat=3, note=note)
    start, end = _last_month(today)

    def last_month():
        indicators.compute_many(indicators.INDICATORS, Frame.of_period(start, end, None))

    bench.time_call(
        "indicators: every figure, last month (from history)", last_month, None, repeat=3, note=note
    )
    bench.time_get(
        "monthly report xlsx, last month (history-correct levels)",
        "clerk",
        f"/admin/reports/download/?kind=monthly&year={start.year}&month={start.month}",
        10_000,
        repeat=3,
    )

    with bench.app.app_context():
        _, plain = alerts.issue_token("bench 141", _user_id("supervisor"))
        db.session.commit()
    client = bench.app.test_client()
    headers = {"Authorization": f"Bearer {plain}"}
    first = client.get("/api/alerts?per_page=1000", headers=headers).get_json()
    total = first["total"]

    def page(n):
        def get():
            response = client.get(f"/api/alerts?per_page=1000&page={n}", headers=headers)
            assert response.status_code == 200 and len(response.get_json()["alerts"]) == 1000

        return get

    bench.time_call(
        "141 feed, 1,000 alerts a page (page 1)", page(1), 300, repeat=10, note=f"{total:,} open alerts"
    )
    deep = max(1, total // 1000 - 1)
    bench.time_call(f"141 feed, 1,000 alerts a page (page {deep})", page(deep), 300, repeat=10)
    since = (dt.datetime.now() - dt.timedelta(minutes=5)).isoformat()

    def changed():
        assert client.get(f"/api/alerts?per_page=1000&since={since}", headers=headers).status_code == 200

    bench.time_call("141 feed, changed in the last 5 minutes", changed, 300, repeat=10)
    started = time.perf_counter()
    with bench.app.app_context():
        stale = indicators.visits.stale_children(db.session.connection())
    bench.add(
        "下次走访 check over every child (stale_children)",
        [(time.perf_counter() - started) * 1000],
        None,
        f"{len(stale)} stale",
    )


def _user_id(username):
    from models import User

    return db.session.scalar(select(User.id).where(User.username == username))
