"""`make loadtest`: 20 logged-in users for 60 s against waitress, over real HTTP, then a check that every
acknowledged write exists exactly once with its audit row.

A fresh database is built for the run (``flask db upgrade`` and ``seed-demo`` with 240 children, the
real migrations and demo data), the app runs in its own processes as ``make run`` serves it
(serve.py with its defaults: three waitress processes per core, two threads each), and 20 users — clerks, village directors, supervisors and fund officers —
work through it with a small keep-alive HTTP client: they open the 工作台, lists and searches, the
alert centre and the case board, add and edit guardians, record visits and attendance, enter
expenses and approve and pay each other's, and export the child list. Each posts the forms a
browser would (every field of the form as the page shows it, hidden ones included). Between two
clicks a user waits 0.25–0.75 s.

A write is *acknowledged* when the app answered it as saved (the redirect after a form, the success
message after an approval). Afterwards the database must hold each acknowledged write exactly once,
with its row in the audit log; an answer of 5xx, a broken connection or a refused valid form is an
error. Prints p50/p95/p99 per kind of request.

    python -m bench.loadtest                 # SQLite (a file in a temporary folder)
    python -m bench.loadtest --pg URL        # PostgreSQL: a fresh database on that server
    python -m bench.loadtest --users 20 --seconds 60
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import http.client
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

from serve import worker_pids

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHILDREN = 240
THINK = (0.25, 0.75)
PAGE_TARGET_P95_MS = 300
PASSWORD = "load-test-river-2026"

# --------------------------------------------------------------------------- a small browser


class FormParser(HTMLParser):
    """The fields of the page's main form, as a browser would post them."""

    def __init__(self, marker: str):
        super().__init__(convert_charrefs=True)
        self.marker = marker
        self.in_form = False
        self.depth = 0
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._select_multiple = False
        self._select_values: list[str] = []
        self._select_first: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            if not self.in_form and self.marker in (a.get("class", "") + " " + a.get("id", "")):
                self.in_form = True
            elif self.in_form:
                self.depth += 1
            return
        if not self.in_form:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields.append((name, a.get("value", "y") or "y"))
            elif kind not in ("submit", "button", "file", "image", "reset"):
                self.fields.append((name, a.get("value", "")))
        elif tag == "select" and name:
            self._select, self._select_multiple = name, "multiple" in a
            self._select_values, self._select_first = [], None
        elif tag == "option" and self._select is not None:
            value = a.get("value", "")
            if self._select_first is None:
                self._select_first = value
            if "selected" in a:
                self._select_values.append(value)
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_endtag(self, tag):
        if not self.in_form:
            return
        if tag == "form":
            if self.depth:
                self.depth -= 1
            else:
                self.in_form = False
        elif tag == "select" and self._select is not None:
            values = self._select_values or ([] if self._select_multiple else [self._select_first or ""])
            self.fields.extend((self._select, v) for v in values)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.fields.append((self._textarea, "".join(self._text)))
            self._textarea = None

    def handle_data(self, data):
        if self._textarea is not None:
            self._text.append(data)


def form_fields(page: str, marker: str = "admin-form") -> dict[str, list[str]]:
    parser = FormParser(marker)
    parser.feed(page)
    fields: dict[str, list[str]] = {}
    for name, value in parser.fields:
        fields.setdefault(name, []).append(value)
    return fields


class Refused(Exception):
    """A valid request the app did not carry out (an error of the run)."""


class Browser:
    """One user's keep-alive connection, cookies and timings."""

    def __init__(self, port: int, stats: Stats):
        self.port, self.stats = port, stats
        self.cookies: dict[str, str] = {}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def _send(self, method, path, body=None, extra_headers=None):
        path = quote(path, safe="/?=&%:+,")
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        headers.update(extra_headers or {})
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt == 2 or method != "GET":
                    raise
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if not value or "1970" in header:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response.status, response.headers, data

    def timed(self, kind, method, path, data=None):
        body = urlencode(data, doseq=True) if data is not None else None
        start = time.perf_counter()
        try:
            status, headers, raw = self._send(method, path, body)
        except (http.client.HTTPException, OSError) as exc:
            self.stats.error(kind, f"{method} {path}: connection {exc!r}")
            raise Refused(str(exc)) from None
        self.stats.sample(kind, (time.perf_counter() - start) * 1000)
        if status >= 500:
            self.stats.error(kind, f"{method} {path}: {status}")
            raise Refused(f"{status}")
        return status, headers, raw

    def post_json(self, kind, path, payload, token) -> dict:
        """POST JSON as the phone's page does (its CSRF token in X-CSRFToken); the answer's JSON."""
        body = json.dumps(payload, ensure_ascii=False).encode()
        start = time.perf_counter()
        try:
            status, headers, raw = self._send(
                "POST", path, body, {"Content-Type": "application/json", "X-CSRFToken": token}
            )
        except (http.client.HTTPException, OSError) as exc:
            self.stats.error(kind, f"POST {path}: connection {exc!r}")
            raise Refused(str(exc)) from None
        self.stats.sample(kind, (time.perf_counter() - start) * 1000)
        if status != 200:
            self.stats.error(kind, f"POST {path}: {status}")
            raise Refused(f"{status}")
        return json.loads(raw)

    def get(self, kind, path) -> str:
        status, headers, raw = self.timed(kind, "GET", path)
        if status != 200:
            self.stats.error(kind, f"GET {path}: {status} {headers.get('Location', '')}")
            raise Refused(f"{status}")
        return raw.decode("utf-8", "replace")

    def post(self, kind, path, data) -> str:
        """POST a form; the redirect's target (the write was saved) or Refused with the page's words."""
        status, headers, raw = self.timed(kind, "POST", path, data)
        if status in (301, 302, 303):
            return urlsplit(headers["Location"]).path + (
                "?" + urlsplit(headers["Location"]).query if urlsplit(headers["Location"]).query else ""
            )
        page = raw.decode("utf-8", "replace")
        words = re.findall(r'class="(?:invalid-feedback|help-block|alert[^"]*)"[^>]*>\s*([^<]{2,200})', page)
        self.stats.error(kind, f"POST {path}: {status} refused: {' | '.join(w.strip() for w in words[:3])}")
        raise Refused(f"{status}")

    def login(self, username):
        page = self.get("login page", "/login")
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        status, headers, _ = self.timed(
            "login", "POST", "/login", {"username": username, "password": PASSWORD, "csrf_token": token}
        )
        if status != 302:
            self.stats.error("login", f"{username}: {status}")
            raise Refused("login")

    def flash_after(self, kind, location) -> str:
        return self.get(kind, location)


# --------------------------------------------------------------------------- what was done


@dataclass
class Stats:
    samples: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)
    server_cpu: float = 0.0  # seconds of CPU the server used in the measured minute
    load: float = 0.0  # the machine's load average meanwhile (other programs included)

    def sample(self, kind, ms):
        with self.lock:
            self.samples[kind].append(ms)

    def error(self, kind, what):
        with self.lock:
            self.errors[kind].append(what)


@dataclass
class Acknowledged:
    """Writes the app answered as saved, to be found in the database afterwards."""

    guardians: dict[str, int] = field(default_factory=dict)  # name -> id
    guardian_address: dict[int, str] = field(default_factory=dict)  # id -> last saved address
    visits: list[str] = field(default_factory=list)  # notes tags
    attendance: list[tuple[int, str]] = field(default_factory=list)  # (activity id, key)
    expenses: dict[str, int] = field(default_factory=dict)  # payee tag -> id
    approved: dict[int, int] = field(default_factory=dict)  # expense id -> approver user id
    paid: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    drafts: collections.deque = field(default_factory=collections.deque)  # (expense id, handler)


# --------------------------------------------------------------------------- the users


@dataclass
class World:
    """What the users need to know about the seeded data (read once, before the run)."""

    villages: dict[int, str]
    children_by_village: dict[int, list[int]]
    activities: list[int]
    activities_by_village: dict[int, list[int]]
    surnames: list[str]
    last4s: list[str]
    source_id: int
    source_category: str
    user_ids: dict[str, int]


class User:
    def __init__(self, username, role, village_id, port, stats, acked, world, seconds, seed):
        self.username, self.role, self.village_id = username, role, village_id
        self.browser = Browser(port, stats)
        self.acked, self.world, self.seconds = acked, world, seconds
        self.deadline = 0.0
        self.rng = random.Random(seed)
        self.mine: list[int] = []  # guardians this user created (and may edit)
        self.counter = 0

    def tag(self, what):
        self.counter += 1
        return f"压测{what}-{self.username}-{self.counter:04d}-{uuid.uuid4().hex[:6]}"

    def run(self, ready: threading.Barrier):
        try:
            self.browser.login(self.username)
        finally:
            ready.wait()  # everyone logged in: the measured minute starts together
        self.deadline = time.monotonic() + self.seconds
        moves = self.moves()
        names, weights = zip(*moves, strict=True)
        while time.monotonic() < self.deadline:
            move = self.rng.choices(names, weights)[0]
            try:
                getattr(self, move)()
            except Refused:
                pass  # counted where it happened
            except Exception as exc:  # a fault of this script must not end the user's run unseen
                self.browser.stats.error(f"script: {move}", repr(exc))
            time.sleep(self.rng.uniform(*THINK))

    def moves(self):
        common = [("dashboard", 2), ("child_list", 2), ("child_search", 3), ("alert_centre", 2)]
        if self.role == "clerk":
            return common + [("create_guardian", 3), ("edit_guardian", 3), ("export", 1), ("visit_list", 1)]
        if self.role == "director":
            return common + [
                ("create_visit", 4),
                ("attendance", 3),
                ("create_guardian", 2),
                ("edit_guardian", 2),
            ]
        if self.role == "supervisor":
            return common + [("case_board", 2), ("create_visit", 2), ("attendance", 2), ("visit_list", 1)]
        return [("dashboard", 1), ("expense_list", 2), ("create_expense", 4), ("approve_expense", 4)]

    # --- pages

    def dashboard(self):
        self.browser.get("page: 工作台", "/admin/")

    def child_list(self):
        self.browser.get("page: child list", "/admin/child/")

    def child_search(self):
        term = self.rng.choice(self.world.surnames + self.world.last4s)
        self.browser.get("page: child search", f"/admin/child/?search={term}")

    def alert_centre(self):
        self.browser.get("page: alert centre", "/admin/alerts/")

    def case_board(self):
        self.browser.get("page: case board", "/admin/caseboard/")

    def visit_list(self):
        self.browser.get("page: visit list", "/admin/visit/")

    def expense_list(self):
        self.browser.get("page: expense list", "/admin/expense/")

    def export(self):
        status, _, raw = self.browser.timed("export: child list xlsx", "GET", "/admin/child/export.xlsx")
        if status != 200 or not raw.startswith(b"PK"):
            self.browser.stats.error("export: child list xlsx", f"{status}, {len(raw)} bytes")

    # --- writes

    def _village(self):
        return self.village_id or self.rng.choice(list(self.world.villages))

    def create_guardian(self):
        page = self.browser.get("form: new guardian", "/admin/guardian/new/")
        fields = form_fields(page)
        name = self.tag("监护人")[:50]
        fields.update(
            name=[name],
            phone=[f"139{self.rng.randint(10_000_000, 99_999_999)}"],
            status=["normal"],
            village=[str(self._village())],
            address=["压测村1组"],
        )
        self.browser.post("write: create guardian", "/admin/guardian/new/", fields)
        guardian_id = _lookup_guardian(self, name)
        with self.acked.lock:
            self.acked.guardians[name] = guardian_id
        if guardian_id:
            self.mine.append(guardian_id)

    def edit_guardian(self):
        if not self.mine:
            return self.create_guardian()
        guardian_id = self.rng.choice(self.mine)
        url = f"/admin/guardian/edit/?id={guardian_id}"
        fields = form_fields(self.browser.get("form: edit guardian", url))
        address = self.tag("住址")[:100]
        fields["address"] = [address]
        self.browser.post("write: edit guardian", url, fields)
        with self.acked.lock:
            self.acked.guardian_address[guardian_id] = address
        return None

    def create_visit(self):
        """A visit as the phone's 记走访 page sends it online: one item through /field/api/sync."""
        children = self.world.children_by_village.get(self.village_id) if self.village_id else None
        children = children or [c for ids in self.world.children_by_village.values() for c in ids]
        self.browser.get("form: new visit", "/field/visit")
        session = json.loads(self.browser.get("form: new visit", "/field/api/session"))
        notes = self.tag("走访")
        now = dt.datetime.now().replace(microsecond=0)
        item = {
            "uuid": str(uuid.uuid4()),
            "kind": "visit",
            "recorded_at": now.isoformat(),
            "offline": False,
            "data": {
                "child_id": self.rng.choice(children),
                "visited_on": now.date().isoformat(),
                "kind": "home",
                "answers": {
                    "child_seen": True,
                    "guardian_present": True,
                    "living_ok": True,
                    "school_ok": True,
                    "harm_signs": False,
                    "risk_found": False,
                },
                "notes": notes,
            },
        }
        answer = self.browser.post_json(
            "write: create visit",
            "/field/api/sync",
            {"user_id": session["user"]["id"], "items": [item]},
            session["csrf_token"],
        )
        results = answer.get("results") or [{}]
        if not results[0].get("ok"):
            self.browser.stats.error("write: create visit", f"refused: {results[0].get('message')}")
            return
        with self.acked.lock:
            self.acked.visits.append(notes)

    def attendance(self):
        mine = self.world.activities_by_village.get(self.village_id) if self.village_id else None
        if self.village_id and not mine:
            return
        activity_id = self.rng.choice(mine or self.world.activities)
        url = f"/admin/activity/attendance/?id={activity_id}"
        page = self.browser.get("page: attendance roll", url)
        # the people not yet signed in: their box is neither checked nor disabled (whatever the order
        # of the attributes)
        keys = [
            key
            for tag, key in re.findall(r'(<input[^>]*name="present" value="([cgsw]:\d+)"[^>]*>)', page)
            if not re.search(r"\s(checked|disabled)\b", tag)
        ]
        if not keys:
            return
        chosen = self.rng.sample(keys, min(len(keys), self.rng.randint(1, 5)))
        token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)
        location = self.browser.post(
            "write: attendance", url, {"csrf_token": token, "present": chosen, "shown": ""}
        )
        shown = self.browser.get("page: attendance roll", location)
        # Someone else may have ticked one of them meanwhile: then fewer are new, all are signed in.
        if "签到已保存" not in shown:
            if "刚刚被他人签到" not in shown:  # a race with another user is answered, not an error
                self.browser.stats.error("write: attendance", f"{activity_id} {chosen}: no success message")
            return
        with self.acked.lock:
            self.acked.attendance.extend((activity_id, k) for k in chosen)

    def create_expense(self):
        page = self.browser.get("form: new expense", "/admin/expense/new/")
        fields = form_fields(page)
        payee = self.tag("收款")[:100]
        fields.update(
            spent_on=[dt.date.today().isoformat()],
            amount=[f"{self.rng.randint(1, 900)}.{self.rng.randint(0, 99):02d}"],
            source=[str(self.world.source_id)],
            category=[self.world.source_category],
            payee=[payee],
            purpose=["压测用途"],
            voucher_no=[self.tag("凭证")[:40]],
        )
        fields.pop("invoice_attached", None)
        self.browser.post("write: create expense", "/admin/expense/new/", fields)
        expense_id = _lookup_expense(self, payee)
        with self.acked.lock:
            self.acked.expenses[payee] = expense_id
            if expense_id:
                self.acked.drafts.append((expense_id, self.username))

    def approve_expense(self):
        with self.acked.lock:
            pick = next((d for d in self.acked.drafts if d[1] != self.username), None)
            if pick:
                self.acked.drafts.remove(pick)
        if pick is None:
            return self.create_expense()
        expense_id = pick[0]
        page = self.browser.get("page: expense details", f"/admin/expense/details/?id={expense_id}")
        token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)
        location = self.browser.post(
            "write: approve expense", f"/admin/expense/approve/?id={expense_id}", {"csrf_token": token}
        )
        shown = self.browser.get("page: expense details", location)
        if "已审批 1 笔支出" not in shown:
            self.browser.stats.error("write: approve expense", f"expense {expense_id}: no success message")
            return None
        with self.acked.lock:
            self.acked.approved[expense_id] = self.world.user_ids[self.username]
        location = self.browser.post(
            "write: pay expense", f"/admin/expense/pay/?id={expense_id}", {"csrf_token": token}
        )
        if "已确认支付 1 笔支出" in self.browser.get("page: expense details", location):
            with self.acked.lock:
                self.acked.paid.add(expense_id)
        else:
            self.browser.stats.error("write: pay expense", f"expense {expense_id}: no success message")
        return None


def _lookup_guardian(user: User, name: str) -> int | None:
    """The id the app gave a guardian just saved, read back through the app's own list search."""
    page = user.browser.get("page: guardian search", f"/admin/guardian/?search={name}")
    found = re.findall(r"/admin/guardian/edit/\?id=(\d+)", page)
    return int(found[0]) if len(set(found)) == 1 else None


def _lookup_expense(user: User, payee: str) -> int | None:
    page = user.browser.get("page: expense search", f"/admin/expense/?search={payee}")
    found = set(re.findall(r"/admin/expense/details/\?id=(\d+)", page))
    return int(found.pop()) if len(found) == 1 else None


# --------------------------------------------------------------------------- the run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _flask(env, *args):
    subprocess.run(
        [str(BIN / "flask"), "--app", "app", *args], cwd=ROOT, env=env, check=True, capture_output=True
    )


def prepare(database_url: str) -> World:
    """Migrate and seed the database, add the load-test accounts, read what the users need."""
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "loadtest"}
    _flask(env, "db", "upgrade")
    _flask(env, "seed-demo", "--children", str(CHILDREN))
    sys.path.insert(0, str(ROOT))
    from app import create_app
    from models import Activity, Child, FundSource, Village, db
    from models import User as Account
    from services.accounts import create_user

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "loadtest"})
    with app.app_context():
        villages = {v.id: v.name for v in db.session.scalars(db.select(Village).order_by(Village.sort_order))}
        ids = list(villages)
        for i in range(1, 7):
            create_user(f"lt_clerk{i}", PASSWORD, "clerk")
            create_user(f"lt_director{i}", PASSWORD, "director", village_id=ids[(i - 1) % len(ids)])
        for i in range(1, 5):
            create_user(f"lt_supervisor{i}", PASSWORD, "supervisor")
            create_user(f"lt_finance{i}", PASSWORD, "finance")
        db.session.commit()
        children: dict[int, list[int]] = collections.defaultdict(list)
        for child_id, village_id in db.session.execute(
            db.select(Child.id, Child.village_id).where(Child.archived_at.is_(None))
        ):
            children[village_id].append(child_id)
        activities = db.session.scalars(db.select(Activity.id).order_by(Activity.id).limit(8)).all()
        by_village = {
            v: db.session.scalars(
                db.select(Activity.id).where(Activity.village_clause([v])).order_by(Activity.id).limit(8)
            ).all()
            for v in ids
        }
        today = dt.date.today()
        source = next(
            s
            for s in db.session.scalars(db.select(FundSource).order_by(FundSource.id))
            if s.allowed_categories
            and (s.valid_from is None or s.valid_from <= today)
            and (s.valid_to is None or s.valid_to >= today)
        )
        names = db.session.scalars(db.select(Child.name).limit(40)).all()
        last4s = db.session.scalars(db.select(Child.id_last4).limit(40)).all()
        user_ids = dict(db.session.execute(db.select(Account.username, Account.id)).all())
        world = World(
            villages=villages,
            children_by_village=dict(children),
            activities=list(activities),
            activities_by_village=by_village,
            surnames=sorted({n[0] for n in names}),
            last4s=list(last4s),
            source_id=source.id,
            # 活动开展 is checked against an activity's budget: another category keeps drafts plain.
            source_category=next(
                (c for c in source.allowed_categories if c != "activity"), source.allowed_categories[0]
            ),
            user_ids=user_ids,
        )
        db.session.remove()
        db.engine.dispose()
    return world


def users_for(n: int) -> list[tuple[str, str]]:
    """n users in the proportions of a town: clerks, directors, supervisors, fund officers."""
    pool = (
        [(f"lt_clerk{i}", "clerk") for i in range(1, 7)]
        + [(f"lt_director{i}", "director") for i in range(1, 7)]
        + [(f"lt_supervisor{i}", "supervisor") for i in range(1, 5)]
        + [(f"lt_finance{i}", "finance") for i in range(1, 5)]
    )
    order = [pool[i] for i in (0, 6, 12, 16, 1, 7, 13, 17, 2, 8, 3, 9, 14, 18, 4, 10, 5, 11, 15, 19)]
    return order[:n]


def serve(database_url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "loadtest"}
    # the server's log goes to a file: a pipe nobody reads fills up (waitress warns of every queued
    # request under load) and then blocks the server's own loop
    log = tempfile.NamedTemporaryFile(prefix="tonghu-loadtest-", suffix=".log", delete=False)  # noqa: SIM115
    print(f"server log: {log.name}", flush=True)
    server = subprocess.Popen(
        # as `make run` serves it: serve.py with its defaults (WEB_WORKERS, WEB_THREADS)
        [sys.executable, "serve.py", "--host", "127.0.0.1", f"--port={port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    server.log_path = log.name
    log.close()  # the child has its own copy of the file
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("waitress did not start")


def verify(database_url: str, acked: Acknowledged, world: World) -> dict[str, int]:
    """Every acknowledged write exactly once, with its audit row. Returns the problems by kind."""
    from app import create_app
    from models import Attendance, AuditLog, Expense, Guardian, Visit, db

    problems = collections.Counter()
    details: list[str] = []
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "loadtest"})

    def audited(table, record_id, action) -> bool:
        return bool(
            db.session.scalar(
                db.select(db.func.count())
                .select_from(AuditLog)
                .where(
                    AuditLog.table_name == table, AuditLog.record_id == record_id, AuditLog.action == action
                )
            )
        )

    audited_keys: dict[int, set[str]] = {}

    def signed_in_audit(activity_id) -> set[str]:
        """Keys the audit log says were signed in (one row per save of the roll: its ``added``)."""
        if activity_id not in audited_keys:
            rows = db.session.scalars(
                db.select(AuditLog.changes).where(
                    AuditLog.table_name == "attendance", AuditLog.record_id == activity_id
                )
            )
            audited_keys[activity_id] = {k for changes in rows for k in (changes or {}).get("added", [])}
        return audited_keys[activity_id]

    def problem(kind, what):
        problems[kind] += 1
        if len(details) < 20:
            details.append(f"{kind}: {what}")

    with app.app_context():
        for name in acked.guardians:
            rows = db.session.scalars(db.select(Guardian).where(Guardian.name == name)).all()
            if len(rows) != 1:
                problem("lost" if not rows else "duplicated", f"guardian {name}: {len(rows)} rows")
            elif not audited("guardian", rows[0].id, "create"):
                problem("unaudited", f"guardian {name}")
        for guardian_id, address in acked.guardian_address.items():
            guardian = db.session.get(Guardian, guardian_id)
            if guardian is None or guardian.address != address:
                problem(
                    "lost", f"guardian {guardian_id} address: {guardian and guardian.address!r} ≠ {address!r}"
                )
            elif not db.session.scalar(
                db.select(db.func.count())
                .select_from(AuditLog)
                .where(
                    AuditLog.table_name == "guardian",
                    AuditLog.record_id == guardian_id,
                    AuditLog.action == "update",
                )
            ):
                problem("unaudited", f"guardian {guardian_id} edit")
        for notes in acked.visits:
            rows = db.session.scalars(db.select(Visit).where(Visit.notes == notes)).all()
            if len(rows) != 1:
                problem("lost" if not rows else "duplicated", f"visit {notes}: {len(rows)} rows")
            elif not audited("visit", rows[0].id, "create"):
                problem("unaudited", f"visit {notes}")
        columns = {"c": Attendance.child_id, "g": Attendance.guardian_id, "s": Attendance.staff_id}
        for activity_id, key in set(acked.attendance):
            if key[0] not in columns:
                continue
            rows = db.session.scalars(
                db.select(Attendance).where(
                    Attendance.activity_id == activity_id, columns[key[0]] == int(key[2:])
                )
            ).all()
            if len(rows) != 1:
                problem("lost" if not rows else "duplicated", f"attendance {activity_id} {key}: {len(rows)}")
            elif key not in signed_in_audit(activity_id):
                problem("unaudited", f"attendance {activity_id} {key}")
        for payee in acked.expenses:
            rows = db.session.scalars(db.select(Expense).where(Expense.payee == payee)).all()
            if len(rows) != 1:
                problem("lost" if not rows else "duplicated", f"expense {payee}: {len(rows)} rows")
            elif not audited("expense", rows[0].id, "create"):
                problem("unaudited", f"expense {payee}")
        for expense_id, approver in acked.approved.items():
            expense = db.session.get(Expense, expense_id)
            wanted = "paid" if expense_id in acked.paid else ("approved", "paid")
            if expense is None or expense.approver_id != approver or expense.status not in wanted:
                problem("lost", f"expense {expense_id} approval/payment")
            elif not audited("expense", expense_id, "update"):
                problem("unaudited", f"expense {expense_id} approval")
        db.session.remove()
        db.engine.dispose()
    for line in details:
        print("  ", line)
    return dict(problems)


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def report(label: str, stats: Stats, acked: Acknowledged, problems: dict[str, int], seconds: float) -> bool:
    print()
    print(f"### {label}")
    print()
    print("| kind | requests | p50 ms | p95 ms | p99 ms | max ms | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    pages: list[float] = []
    for kind in sorted(stats.samples):
        s = stats.samples[kind]
        if kind.startswith(("page", "form")):
            pages.extend(s)
        print(
            f"| {kind} | {len(s)} | {statistics.median(s):.0f} | {percentile(s, 95):.0f} | "
            f"{percentile(s, 99):.0f} | {max(s):.0f} | {len(stats.errors.get(kind, []))} |"
        )
    errors = sum(len(v) for v in stats.errors.values())
    total = sum(len(v) for v in stats.samples.values())
    p95 = percentile(pages, 95) if pages else 0
    print(
        f"| **all pages and forms (exports apart)** | {len(pages)} | {statistics.median(pages):.0f} | "
        f"**{p95:.0f}** | {percentile(pages, 99):.0f} | {max(pages):.0f} | |"
    )
    writes = (
        len(acked.guardians)
        + len(acked.guardian_address)
        + len(acked.visits)
        + len(set(acked.attendance))
        + len(acked.expenses)
        + len(acked.approved)
    )
    lost = problems.get("lost", 0)
    print()
    print(
        f"{total} requests in {seconds:.0f} s ({total / seconds:.1f}/s); errors {errors}; acknowledged writes "
        f"{writes}: lost {lost}, duplicated {problems.get('duplicated', 0)}, without audit row "
        f"{problems.get('unaudited', 0)}; page p95 {p95:.0f} ms (target ≤ {PAGE_TARGET_P95_MS})"
    )
    measured = sum(len(v) for k, v in stats.samples.items() if not k.startswith("login"))
    print(
        f"server CPU {stats.server_cpu:.1f} s for {measured} requests ({stats.server_cpu * 1000 / max(measured, 1):.0f} ms "
        f"each on average); machine load average {stats.load:.1f} on {os.cpu_count()} cores"
    )
    for kind, items in stats.errors.items():
        for item in items[:3]:
            print(f"  error {kind}: {item}")
    return errors == 0 and not problems and p95 <= PAGE_TARGET_P95_MS


def run(database_url: str, label: str, n_users: int, seconds: float) -> bool:
    print(f"{label}: preparing the database ({CHILDREN} children) …", flush=True)
    world = prepare(database_url)
    port = _free_port()
    server = serve(database_url, port)
    stats, acked = Stats(), Acknowledged()
    try:
        users = [
            User(name, role, _village_of(name, world), port, stats, acked, world, seconds, seed=i)
            for i, (name, role) in enumerate(users_for(n_users))
        ]
        ready = threading.Barrier(len(users) + 1)
        threads = [threading.Thread(target=u.run, args=(ready,), name=u.username) for u in users]
        for t in threads:
            t.start()
        ready.wait()  # all logged in
        print(
            f"{label}: {len(users)} users logged in; working for {seconds:.0f} s against "
            f"{len(worker_pids(server.pid)) or 1} worker processes …",
            flush=True,
        )
        cpu_before, load_before = _cpu_seconds(server.pid), os.getloadavg()[0]
        started = time.monotonic()
        for t in threads:
            t.join()
        stats.server_cpu = _cpu_seconds(server.pid) - cpu_before
        stats.load = (load_before + os.getloadavg()[0]) / 2
        elapsed = time.monotonic() - started
    finally:
        server.terminate()  # serve.py stops its workers
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            for pid in worker_pids(server.pid):
                os.kill(pid, signal.SIGKILL)
            server.kill()
            server.wait()
    tracebacks = Path(server.log_path).read_text("utf-8", "replace").count("Traceback")
    if tracebacks:
        stats.error("server log", f"{tracebacks} tracebacks in the server's log")
    problems = verify(database_url, acked, world)
    return report(label, stats, acked, problems, elapsed)


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the server and its workers have used so far (Linux /proc)."""
    total = 0.0
    for each in (pid, *worker_pids(pid)):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _village_of(username: str, world: World) -> int | None:
    if not username.startswith("lt_director"):
        return None
    ids = list(world.villages)
    return ids[(int(username.removeprefix("lt_director")) - 1) % len(ids)]


def _postgres_database(base_url: str):
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(base_url)
    name = f"tonghu_loadtest_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument(
        "--pg", metavar="URL", help="also run on PostgreSQL (a fresh database on that server)"
    )
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args(argv)
    pg = args.pg or os.environ.get("DATABASE_URL")
    ok = True
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            ok &= run(f"sqlite:///{folder}/loadtest.db", "SQLite", args.users, args.seconds)
    if pg:
        url, drop = _postgres_database(pg)
        try:
            ok &= run(url, "PostgreSQL", args.users, args.seconds)
        finally:
            drop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
