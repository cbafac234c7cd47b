"""Refused logins: the same work whatever was wrong, so their timings cannot tell which login names
exist or which accounts are locked or disabled. ``python -m bench.run sessions`` runs this alone."""

import datetime as dt
import re
import statistics
import time

from bench.harness import Row
from models import User, db, utcnow
from seeds.demo import DEMO_PASSWORD
from services.accounts import create_user

REPEAT = 15
SPREAD = 0.25  # each kind of refusal within ±25% of the unknown-login-name median


def _account(username: str) -> User:
    user = db.session.scalar(db.select(User).where(User.username == username))
    if user is None:
        user = create_user(username, DEMO_PASSWORD, "clerk")
    return user


def _reset(*users: User) -> None:
    for user in users:
        user.failed_logins, user.locked_until, user.active = 0, None, True
    db.session.commit()


def measure(bench) -> None:
    wrong, locked, disabled = _account("bench_wrong"), _account("bench_locked"), _account("bench_disabled")
    _reset(wrong, locked, disabled)
    locked.locked_until = utcnow() + dt.timedelta(days=1)
    disabled.active = False
    db.session.commit()
    client = bench.app.test_client()

    def attempt(username, password) -> float:
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        start = time.perf_counter()
        response = client.post(
            "/login", data={"username": username, "password": password, "csrf_token": token}
        )
        elapsed = (time.perf_counter() - start) * 1000
        assert response.status_code == 200 and "登录名或密码错误" in response.get_data(as_text=True)
        return elapsed

    kinds = {
        "unknown login name": ("no-such-user-x", DEMO_PASSWORD),
        "wrong password": ("bench_wrong", "wrong-password-1"),
        "locked account, right password": ("bench_locked", DEMO_PASSWORD),
        "disabled account, right password": ("bench_disabled", DEMO_PASSWORD),
    }
    samples = {kind: [] for kind in kinds}
    for _ in range(REPEAT):  # interleaved: a change in load hits every kind alike
        for kind, (username, password) in kinds.items():
            samples[kind].append(attempt(username, password))
            if kind == "wrong password":
                _reset(wrong)  # never reaches the lock
    base = statistics.median(samples["unknown login name"])
    for kind, values in samples.items():
        median = statistics.median(values)
        note = f"{median / base:.2f} × the unknown login name's (target within ±{SPREAD:.0%})"
        target = base * (1 + SPREAD) if median >= base else None
        row = Row(f"refused login: {kind}", median, target, note)
        if median < base * (1 - SPREAD):
            row.target_ms = 0  # too fast: marks the row ✗
        bench.rows.append(row)
    _reset(wrong, locked, disabled)
