"""The alert rule run: one at a time across threads and processes (a lease row), and no page waits for
a run it did not start."""

import datetime as dt
import threading

from models import Lease, RuleRun, db, utcnow
from services import alerts, clock, lease
from tests.conftest import AuthActions

TODAY = dt.date(2026, 6, 12)


def _runs() -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(RuleRun))


def _make_stale():
    db.session.execute(db.delete(RuleRun))
    db.session.add(RuleRun(as_of=TODAY, started_at=utcnow() - dt.timedelta(hours=2)))
    db.session.commit()


def _together(app, n, work):
    """``work()`` in ``n`` threads released at the same moment; their results."""
    barrier = threading.Barrier(n)
    results, errors = [], []

    def one():
        with app.app_context():
            try:
                barrier.wait()
                results.append(work())
            except Exception as exc:  # reported below: a thread's error must fail the test
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return results


def test_many_callers_finding_the_rules_stale_make_one_run(app):
    _make_stale()
    clock.set_today(TODAY)
    results = _together(app, 6, lambda: alerts.run_if_stale(TODAY, dt.datetime(2026, 6, 12, 9, 0)))
    assert sum(r is not None for r in results) == 1
    assert _runs() == 2  # the old one and exactly one new
    assert db.session.scalar(db.select(db.func.count()).select_from(Lease)) == 0  # released


def test_explicit_runs_at_the_same_moment_do_not_overlap(app, monkeypatch):
    """The CLI and the 立即运行 button: whoever finds a run in progress skips instead of running too."""
    started = threading.Event()
    overlapping = []
    real_run = alerts._run

    def slow_run(today, now):
        if started.is_set():
            overlapping.append(True)
        started.set()
        try:
            return real_run(today, now)
        finally:
            threading.Event().wait(0.3)  # keep the lease a moment, so the others arrive while it runs
            started.clear()

    monkeypatch.setattr(alerts, "_run", slow_run)
    results = _together(app, 5, lambda: alerts.run_rules_exclusively(TODAY, dt.datetime(2026, 6, 12, 9)))
    assert not overlapping
    assert 1 <= sum(r is not None for r in results) < 5


def test_the_alert_centre_never_waits_for_a_run_in_progress(app, client, auth):
    _make_stale()
    holder = lease.acquire(alerts.RUN_LEASE, alerts.RUN_LEASE_TTL)  # a run started elsewhere
    assert holder is not None
    auth.login("supervisor")
    page = client.get("/admin/alerts/").get_data(as_text=True)
    assert 'id="rule-run-in-progress"' in page
    assert not app.extensions.get("tonghu_background_runs")  # it started nothing
    assert _runs() == 1
    lease.release(alerts.RUN_LEASE, holder)


def test_pages_opened_together_start_one_background_run(app):
    _make_stale()
    clients = []
    for _ in range(4):
        c = app.test_client()
        AuthActions(c).login("supervisor")
        clients.append(c)
    lock = threading.Lock()
    pool = list(clients)

    def open_page():
        with lock:
            c = pool.pop()
        response = c.get("/admin/alerts/")
        assert response.status_code == 200
        return "已在后台开始运行" in response.get_data(as_text=True)

    started = _together(app, 4, open_page)
    alerts.wait_for_background_runs(app)
    assert sum(started) == 1
    assert _runs() == 2


def test_a_lapsed_lease_of_a_crashed_run_is_taken_over(app):
    db.session.add(
        Lease(
            name=alerts.RUN_LEASE,
            holder="crashed",
            acquired_at=utcnow() - dt.timedelta(hours=1),
            expires_at=utcnow() - dt.timedelta(minutes=1),
        )
    )
    db.session.commit()
    assert alerts.run_rules_exclusively(TODAY, dt.datetime(2026, 6, 12, 9)) is not None


def test_cli_skips_while_a_run_is_in_progress(app):
    holder = lease.acquire(alerts.RUN_LEASE, alerts.RUN_LEASE_TTL)
    before = _runs()
    result = app.test_cli_runner().invoke(args=["run-alert-rules", "--today", "2026-06-12"])
    assert result.exit_code == 0 and "本次跳过" in result.output
    assert _runs() == before
    lease.release(alerts.RUN_LEASE, holder)
    result = app.test_cli_runner().invoke(args=["run-alert-rules", "--today", "2026-06-12"])
    assert "预警规则已运行" in result.output and _runs() == before + 1
