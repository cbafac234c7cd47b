"""Shared pieces of the benchmark: the big database, timing through the app, the result table."""

import os
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from flask.testing import FlaskClient

from app import create_app
from models import db
from seeds.demo import DEMO_PASSWORD

BENCH_DIR = Path(__file__).resolve().parent
CHILDREN = int(os.environ.get("BENCH_CHILDREN", "100000"))


@dataclass
class Row:
    what: str
    median_ms: float
    target_ms: float | None
    note: str = ""
    unit: str = "ms"

    @property
    def ok(self) -> bool:
        return self.target_ms is None or self.median_ms <= self.target_ms


@dataclass
class Bench:
    """The app over the benchmark database, with one logged-in test client per demo account."""

    app: object
    rows: list[Row] = field(default_factory=list)
    _clients: dict = field(default_factory=dict)

    def client(self, username: str):
        if username not in self._clients:
            client = self.app.test_client()
            page = client.get("/login").get_data(as_text=True)
            token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
            client.post("/login", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token})
            self._clients[username] = client
        return self._clients[username]

    def time_get(self, what, username, url, target_ms, repeat=15, note=""):
        client = self.client(username)
        response = client.get(url)  # warm-up
        assert response.status_code == 200, f"{what}: {url} answered {response.status_code}"
        samples = []
        for _ in range(repeat):
            start = time.perf_counter()
            response = client.get(url)
            samples.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200
        self.add(what, samples, target_ms, note)

    def time_call(self, what, fn, target_ms, repeat=5, note=""):
        samples = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - start) * 1000)
        self.add(what, samples, target_ms, note)

    def add(self, what, samples, target_ms, note=""):
        self.rows.append(Row(what, statistics.median(samples), target_ms, note))
        row = self.rows[-1]
        print(f"  {what}: {row.median_ms:.1f} ms (target {target_ms})", flush=True)


class FreshContextClient(FlaskClient):
    """Each request in its own app context (own g and session), as in production."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


def make_app(db_path: Path):
    url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{db_path}"
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench",
            # the bench's attachments live beside its database, never in the app's instance folder
            "ATTACHMENT_STORAGE": "local",
            "ATTACHMENT_DIR": str(db_path.with_suffix(".attachments")),
        }
    )
    app.test_client_class = FreshContextClient
    return app


def print_table(rows: list[Row], peak_mb: float) -> None:
    print()
    print("| measurement | median ms | target ms | ok | note |")
    print("|---|---:|---:|:-:|---|")
    for r in rows:
        target = "" if r.target_ms is None else f"{r.target_ms:g}"
        value = f"{r.median_ms:.1f}" + ("" if r.unit == "ms" else f" {r.unit}")
        target = target + ("" if r.unit == "ms" or not target else f" {r.unit}")
        print(f"| {r.what} | {value} | {target} | {'✓' if r.ok else '✗'} | {r.note} |")
    print(f"| peak memory of the process (RSS, with the database's mapped pages) | {peak_mb:.0f} MB | | | |")


__all__ = ["Bench", "Row", "db", "make_app", "print_table", "BENCH_DIR", "CHILDREN"]
