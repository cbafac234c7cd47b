"""`flask --app app backup` / `restore`: a backup taken while several threads write holds every write
acknowledged before it began, restores whole, and a bad or foreign file is refused with nothing changed."""

import sqlite3
import threading
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from choices import StaffKind
from models import AuditLog, Staff, Village, db

WRITERS = 4


@pytest.fixture(autouse=True)
def _migrated(app):
    """The test databases are built by create_all: mark them as at the newest migration, as
    `flask db upgrade` leaves a real one."""
    from flask_migrate import stamp

    stamp()
    db.session.remove()


def _on_sqlite(app) -> bool:
    return make_url(app.config["SQLALCHEMY_DATABASE_URI"]).get_backend_name() == "sqlite"


def _backup_file(app, tmp_path, name="nightly"):
    return tmp_path / (f"{name}.db" if _on_sqlite(app) else f"{name}.dump")


class Writers:
    """Threads adding staff rows one commit at a time; ``acked[t]`` counts the commits that returned."""

    def __init__(self, app, village_id):
        self.app, self.village_id = app, village_id
        self.acked = [0] * WRITERS
        self.errors = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._write, args=(t,)) for t in range(WRITERS)]

    def _write(self, t):
        with self.app.app_context():
            try:
                i = 0
                while not self.stop.is_set():
                    db.session.add(
                        Staff(name=f"备份{t}号{i:05d}", kind=StaffKind.GRID.value, village_id=self.village_id)
                    )
                    db.session.commit()
                    self.acked[t] = i = i + 1
            except Exception as exc:
                self.errors.append(exc)
            finally:
                db.session.remove()

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(60)
        assert not self.errors, self.errors

    def wait_for(self, n):
        deadline = time.monotonic() + 60
        while min(self.acked) < n:
            assert time.monotonic() < deadline and not self.errors, (self.acked, self.errors)
            time.sleep(0.01)


def _written_by(t) -> list[str]:
    return db.session.scalars(
        db.select(Staff.name).where(Staff.name.like(f"备份{t}号%")).order_by(Staff.name)
    ).all()


def test_backup_under_concurrent_writes_restores_every_acknowledged_write(app, tmp_path):
    village_id = db.session.scalar(db.select(Village.id).limit(1))
    db.session.commit()
    target = _backup_file(app, tmp_path)
    runner = app.test_cli_runner()
    with Writers(app, village_id) as writers:
        writers.wait_for(20)
        acked_before = list(writers.acked)  # every one of these commits returned before the backup began
        result = runner.invoke(args=["backup", str(target)])
        assert result.exit_code == 0, result.output
        assert "已备份到" in result.output
        writers.wait_for(max(acked_before) + 20)  # and the writers went on after it
    acked_after = list(writers.acked)

    refused = runner.invoke(args=["restore", str(target)])
    assert refused.exit_code != 0 and "当前数据库比备份新" in refused.output
    db.session.remove()
    assert len(_written_by(0)) == acked_after[0]  # refused: nothing changed

    result = runner.invoke(args=["restore", "--force", str(target)])
    assert result.exit_code == 0, result.output
    db.session.remove()
    for t in range(WRITERS):
        names = _written_by(t)
        # Each writer's rows are a gap-free prefix of what it wrote: one consistent moment.
        assert names == [f"备份{t}号{i:05d}" for i in range(len(names))]
        assert acked_before[t] <= len(names) < acked_after[t]
        ids = db.session.scalars(db.select(Staff.id).where(Staff.name.like(f"备份{t}号%"))).all()
        audited = db.session.scalar(
            db.select(db.func.count(db.distinct(AuditLog.record_id))).where(
                AuditLog.table_name == "staff", AuditLog.action == "create", AuditLog.record_id.in_(ids)
            )
        )
        assert audited == len(ids), "a restored row lost its audit row"
    assert db.session.scalar(db.select(AuditLog).where(AuditLog.action == "restore")) is not None
    if not _on_sqlite(app):
        _drop_kept_databases(app)


def _drop_kept_databases(app):
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for (name,) in conn.execute(
            text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
            {"p": f"{url.database}_before_restore_%"},
        ):
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_default_folder_and_rotation(app, tmp_path, monkeypatch):
    monkeypatch.setenv("BACKUP_DIR", str(tmp_path / "backups"))
    runner = app.test_cli_runner()
    suffix = ".db" if _on_sqlite(app) else ".dump"
    folder = tmp_path / "backups"
    folder.mkdir()
    for day in range(1, 5):
        (folder / f"tonghu-2026010{day}-230000{suffix}").write_bytes(b"old")
    result = runner.invoke(args=["backup", "--keep", "3"])
    assert result.exit_code == 0, result.output
    kept = sorted(p.name for p in folder.iterdir())
    assert len(kept) == 3 and kept[0] == f"tonghu-20260103-230000{suffix}"
    assert kept[-1].startswith("tonghu-") and kept[-1] > kept[0]


# --------------------------------------------------------------------------- refusals (SQLite)

sqlite_only = pytest.mark.skipif(
    "DATABASE_URL" in __import__("os").environ, reason="file-level checks of the SQLite backup"
)


def _staff_count():
    db.session.remove()
    return db.session.scalar(db.select(db.func.count()).select_from(Staff))


def _refused(app, path, words):
    before = _staff_count()
    result = app.test_cli_runner().invoke(args=["restore", "--force", str(path)])
    assert result.exit_code != 0, result.output
    assert words in result.output, result.output
    assert "Traceback" not in result.output
    assert _staff_count() == before


@sqlite_only
def test_restore_refuses_what_is_not_a_sound_tonghu_backup(app, tmp_path):
    runner = app.test_cli_runner()
    good = tmp_path / "good.db"
    assert runner.invoke(args=["backup", str(good)]).exit_code == 0

    text_file = tmp_path / "notes.db"
    text_file.write_text("这不是数据库")
    _refused(app, text_file, "不是 SQLite 数据库文件")

    other_app = tmp_path / "other.db"
    with sqlite3.connect(other_app) as conn:
        conn.execute("CREATE TABLE things (id INTEGER PRIMARY KEY)")
    _refused(app, other_app, "缺少童护的数据表")

    broken_reference = tmp_path / "fk.db"
    broken_reference.write_bytes(good.read_bytes())
    with sqlite3.connect(broken_reference) as conn:
        conn.execute("UPDATE staff SET village_id = 999999 WHERE id = (SELECT min(id) FROM staff)")
    _refused(app, broken_reference, "外键检查未通过")

    newer_schema = tmp_path / "newer.db"
    newer_schema.write_bytes(good.read_bytes())
    with sqlite3.connect(newer_schema) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    _refused(app, newer_schema, "比本程序新")

    corrupt = tmp_path / "corrupt.db"
    data = bytearray(good.read_bytes())
    page = 4096
    for offset in range(page * 3, min(len(data), page * 40), page):
        data[offset + 100 : offset + 400] = b"\xff" * 300  # scribble over many pages' cells
    corrupt.write_bytes(bytes(data))
    before = _staff_count()
    result = runner.invoke(args=["restore", "--force", str(corrupt)])
    assert result.exit_code != 0 and ("损坏" in result.output or "完整性检查未通过" in result.output)
    assert _staff_count() == before


@sqlite_only
def test_restore_of_an_older_schema_upgrades_it(app, tmp_path):
    """A backup taken before an upgrade of the program restores and is brought up to date."""
    from flask_migrate import downgrade

    from app import create_app

    old = tmp_path / "old.db"
    assert app.test_cli_runner().invoke(args=["backup", str(old)]).exit_code == 0
    older = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{old}", "TESTING": True})
    with older.app_context():
        downgrade(revision="-1")
        db.session.remove()
        db.engine.dispose()
    result = app.test_cli_runner().invoke(args=["restore", "--force", str(old)])
    assert result.exit_code == 0, result.output
    assert "已升级到当前版本" in result.output
    db.session.remove()
    assert db.session.scalar(db.select(db.func.count()).select_from(Staff)) > 0
