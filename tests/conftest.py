"""Fixtures in the style of the Flask tutorial: a fresh app and a real database per test.

The database is SQLite by default, PostgreSQL when DATABASE_URL is set (as in CI). Each test
gets its own copy of a seeded template database: a file copy on SQLite, CREATE DATABASE …
TEMPLATE on PostgreSQL.
"""

import itertools
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import create_app
from models import db
from seeds.demo import DEMO_PASSWORD
from services import clock

DEMO_CHILDREN = 120
PASSWORD = DEMO_PASSWORD
_counter = itertools.count()


def _build_template(url: str) -> None:
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        db.create_all()
        from seeds.demo import seed_demo

        seed_demo(children=DEMO_CHILDREN)
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="session")
def template_db(tmp_path_factory):
    base = os.environ.get("DATABASE_URL")
    if not base:
        path = tmp_path_factory.mktemp("db") / "template.db"
        _build_template(f"sqlite:///{path}")
        yield ("sqlite", path)
        return
    url = make_url(base)
    name = f"tonghu_tpl_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    _build_template(url.set(database=name).render_as_string(hide_password=False))
    yield ("postgresql", (url, name, admin))
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def database_url(template_db, tmp_path):
    kind, info = template_db
    if kind == "sqlite":
        path = tmp_path / "test.db"
        shutil.copy(info, path)
        yield f"sqlite:///{path}"
        return
    url, template, admin = info
    name = f"tonghu_t{next(_counter)}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class FreshContextClient(FlaskClient):
    """Each request gets its own app context (and so its own g and db session), as in production,
    although the test itself holds one open for direct database access."""

    def open(self, *args, **kwargs):
        # buffered: a streamed answer (the acceptance pack) is read and closed inside its own
        # context, as the server does, not left for garbage collection to close inside a later test
        kwargs.setdefault("buffered", True)
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def app(database_url, tmp_path):
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "ATTACHMENT_STORAGE": "local",
            "ATTACHMENT_DIR": str(tmp_path / "attachments"),
        }
    )
    app.test_client_class = FreshContextClient
    with app.app_context():
        yield app
        from services.alerts import wait_for_background_runs

        wait_for_background_runs(app)  # a rule run a page started must end before its database goes
        db.session.remove()
        db.engine.dispose()
    clock.set_today(None)


@pytest.fixture
def client(app):
    return app.test_client()


def csrf_token(client, url="/login") -> str:
    page = client.get(url).get_data(as_text=True)
    token = hidden_value(page, "csrf_token")
    assert token, f"no CSRF token on {url}"
    return token


def a_child(*conditions):
    """The first child on the register (not archived) that meets the conditions, by id.

    Tests pick "a child of this village" through here: an unordered pick is whatever row the
    database meets first, which on PostgreSQL moves with every update of the table, and may be
    one of the children the demo archives (a file that can no longer be edited)."""
    from models import Child

    return db.session.scalar(
        db.select(Child).where(Child.archived_at.is_(None), *conditions).order_by(Child.id).limit(1)
    )


def hidden_value(page: str, name: str) -> str | None:
    match = re.search(rf'name="{name}" (?:type="hidden" )?value="([^"]+)"', page) or re.search(
        rf'value="([^"]+)" name="{name}"', page
    )
    return match.group(1) if match else None


def form_fields(client, url) -> dict:
    """The hidden fields a browser posts back with a page's form: the CSRF token and, on a create
    form, its one-time token (services/form_tokens.py)."""
    page = client.get(url).get_data(as_text=True)
    fields = {"csrf_token": hidden_value(page, "csrf_token")}
    assert fields["csrf_token"], f"no CSRF token on {url}"
    once = hidden_value(page, "form_once")
    if once:
        fields["form_once"] = once
    return fields


class AuthActions:
    def __init__(self, client):
        self._client = client

    def login(self, username="clerk", password=PASSWORD):
        token = csrf_token(self._client)
        return self._client.post(
            "/login", data={"username": username, "password": password, "csrf_token": token}
        )

    def logout(self):
        token = csrf_token(self._client, "/admin/")
        return self._client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client):
    return AuthActions(client)


def form_token(client, url) -> str:
    """The CSRF token of a page's form, for posting back like a browser would."""
    return csrf_token(client, url)


ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """moto's standalone S3 server (installed with the dev requirements) on a free loopback port, for
    the attachment suite's S3 run. Started here, so `make test` and CI need nothing else."""
    exe = Path(sys.executable).parent / "moto_server"
    if not exe.exists():
        exe = Path(shutil.which("moto_server") or "moto_server")
    port = _free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    process = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(params=["local", "s3"])
def store(request, app):
    """The app's attachment storage: local disk, then an S3 bucket on the moto server (a test taking it
    runs once on each)."""
    from services import storage

    if request.param == "s3":
        use_s3(app, request.getfixturevalue("s3_server"))
    return storage.for_app(app)


def use_s3(app, endpoint: str) -> str:
    """Point the app's attachment storage at a new bucket of the moto server; returns its name."""
    from services import storage

    bucket = f"tonghu-{uuid.uuid4().hex[:12]}"
    app.config.update(
        ATTACHMENT_STORAGE="s3",
        S3_ENDPOINT_URL=endpoint,
        S3_BUCKET=bucket,
        S3_REGION="us-east-1",
        S3_ACCESS_KEY_ID="test",
        S3_SECRET_ACCESS_KEY="test",
        S3_PREFIX="attachments",
    )
    storage.reset(app)
    storage.for_app(app).create_bucket()
    return bucket
