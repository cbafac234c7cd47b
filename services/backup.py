"""Backup and restore of the whole database (``flask --app app backup`` / ``restore``).

SQLite: a backup is SQLite's online backup API copying the live database, WAL included, as one
consistent snapshot while the app keeps writing (a file copy of tonghu.db misses what is still in
tonghu.db-wal). A restore checks the file first (an SQLite database of 童护 with a schema revision this
code knows, ``PRAGMA integrity_check`` and ``foreign_key_check`` clean), refuses to go back in time
over a database written after the backup unless forced, keeps a copy of what it replaces, and writes
the backup into the live database through the same API in one transaction (readers see the old
database or the new one, never a mix). An older schema is then upgraded by the migrations.

PostgreSQL: ``pg_dump --format=custom`` and ``pg_restore`` when they are installed; otherwise the
exact commands are printed.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from models import db

SQLITE_MAGIC = b"SQLite format 3\x00"
TONGHU_TABLES = {"alembic_version", "child", "user_account", "audit_log", "village"}
KEEP_DEFAULT = 30


class BackupRefused(Exception):
    """A backup or restore that must not go ahead, with the Chinese reason."""


@dataclass
class Restored:
    path: Path
    revision: str
    upgraded: bool
    safety_copy: Path | str | None  # the file (SQLite) or database (PostgreSQL) it replaced
    last_write: dt.datetime | None


# --------------------------------------------------------------------------- where


def default_dir(instance_path: str | Path) -> Path:
    return Path(os.environ.get("BACKUP_DIR") or Path(instance_path) / "backups")


def default_path(instance_path: str | Path, now: dt.datetime | None = None, suffix: str = ".db") -> Path:
    now = now or dt.datetime.now()
    return default_dir(instance_path) / f"tonghu-{now:%Y%m%d-%H%M%S}{suffix}"


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups the nightly job wrote into ``folder``."""
    backups = sorted(folder.glob("tonghu-*.db")) + sorted(folder.glob("tonghu-*.dump"))
    backups.sort(key=lambda p: p.name)
    doomed = backups[:-keep] if keep > 0 else []
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def is_sqlite() -> bool:
    return db.engine.url.get_backend_name() == "sqlite"


def _sqlite_path() -> Path:
    return Path(db.engine.url.database)


# --------------------------------------------------------------------------- SQLite


def backup_sqlite(target: Path) -> Path:
    """A consistent copy of the live database at ``target`` (written beside it, then renamed)."""
    source = _sqlite_path()
    if not source.exists():
        raise BackupRefused(f"找不到数据库文件：{source}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(partial)
    try:
        # One step (pages=-1): a single read transaction, so the copy is one moment of the database,
        # WAL included, while writers go on (WAL readers do not block them).
        src.backup(dst, pages=-1)
        dst.execute("PRAGMA journal_mode=DELETE")  # a backup is one self-contained file
        ok = dst.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        dst.close()
        src.close()
    if ok != "ok":
        partial.unlink(missing_ok=True)
        raise BackupRefused(f"备份文件校验失败（{ok}），请检查磁盘后重试")
    os.replace(partial, target)
    return target


def inspect_sqlite(path: Path) -> tuple[str, dt.datetime | None]:
    """Check that ``path`` is a sound 童护 database: its schema revision and its last audited write."""
    path = Path(path)
    if not path.is_file():
        raise BackupRefused(f"找不到备份文件：{path}")
    with path.open("rb") as handle:
        if handle.read(16) != SQLITE_MAGIC:
            raise BackupRefused("该文件不是童护的备份（不是 SQLite 数据库文件）")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError:
            raise BackupRefused("备份文件已损坏，无法读取") from None
        if not tables >= TONGHU_TABLES:
            raise BackupRefused("该文件不是童护的备份（缺少童护的数据表）")
        try:
            problems = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            raise BackupRefused(f"备份文件已损坏（{exc}）") from None
        if problems != ["ok"]:
            raise BackupRefused(f"备份文件完整性检查未通过：{'；'.join(problems[:3])}")
        broken = conn.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            table, rowid, parent, _ = broken[0]
            raise BackupRefused(
                f"备份文件外键检查未通过：{len(broken)} 处引用缺失（如 {table} 第 {rowid} 行引用的 {parent}）"
            )
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        last = conn.execute("SELECT max(at) FROM audit_log").fetchone()[0]
    finally:
        conn.close()
    if revision is None:
        raise BackupRefused("该文件不是童护的备份（没有数据库版本号）")
    return revision[0], _as_datetime(last)


def _as_datetime(value) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


def _live_last_write() -> dt.datetime | None:
    from models import AuditLog

    try:
        return db.session.scalar(db.select(db.func.max(AuditLog.at)))
    except Exception:  # an empty or unmigrated database has nothing to lose
        db.session.rollback()
        return None


def restore_sqlite(source: Path, *, force: bool = False, safety_dir: Path | None = None) -> Restored:
    revision, backup_last = inspect_sqlite(source)
    known, head = _revisions()
    if revision not in known:
        raise BackupRefused(
            f"备份的数据库版本（{revision}）比本程序新或不属于童护，无法恢复：请先把程序升级到做备份时的版本"
        )
    live = _sqlite_path()
    live_last = _live_last_write() if live.exists() else None
    if live_last and (backup_last is None or live_last > backup_last) and not force:
        raise BackupRefused(
            f"当前数据库比备份新（当前最近写入 {_text(live_last)}，备份最近写入 {_text(backup_last)}），"
            "恢复会丢失此后的全部修改。确认要恢复请加 --force"
        )
    db.session.remove()
    db.engine.dispose()  # nothing of ours keeps the old database open
    safety = None
    if live.exists():
        safety = (safety_dir or live.parent) / f"before-restore-{dt.datetime.now():%Y%m%d-%H%M%S}.db"
        backup_sqlite(safety)
    src = sqlite3.connect(f"file:{Path(source)}?mode=ro", uri=True)
    dst = sqlite3.connect(live, timeout=30)
    try:
        # Into the live file through SQLite's locks, in one transaction: atomic for every reader,
        # and the live WAL is handled by SQLite instead of left to replay over a swapped file.
        src.backup(dst, pages=-1)
        dst.execute("PRAGMA journal_mode=WAL")
    finally:
        dst.close()
        src.close()
    upgraded = revision != head
    if upgraded:
        from flask_migrate import upgrade

        upgrade()
    db.engine.dispose()
    return Restored(live, revision, upgraded, safety, backup_last)


def _text(moment: dt.datetime | None) -> str:
    from services.clock import local_text

    return local_text(moment) or "无"


def _revisions() -> tuple[set[str], str]:
    """Every revision of our migrations, and the newest."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from flask import current_app

    config = Config()
    config.set_main_option("script_location", current_app.extensions["migrate"].directory)
    script = ScriptDirectory.from_config(config)
    return {rev.revision for rev in script.walk_revisions()}, script.get_current_head()


# --------------------------------------------------------------------------- PostgreSQL


def _libpq_url(hide_password: bool) -> str:
    url = make_url(db.engine.url).set(drivername="postgresql")
    return url.render_as_string(hide_password=hide_password)


def pg_dump_command(target: Path) -> list[str]:
    return ["pg_dump", "--format=custom", "--no-owner", f"--file={target}", _libpq_url(False)]


def pg_restore_command(source: Path) -> list[str]:
    """What to run by hand where pg_restore is not on this machine (the app stopped first)."""
    return [
        "pg_restore",
        "--clean",
        "--if-exists",
        "--no-owner",
        "--single-transaction",
        "--exit-on-error",
        f"--dbname={_libpq_url(False)}",
        str(source),
    ]


def shown(command: list[str]) -> str:
    """A command as the operator types it, with the database password left out (PGPASSWORD)."""
    url = make_url(db.engine.url).set(drivername="postgresql")
    secret = url.render_as_string(hide_password=False)
    hidden = url.set(password=None).render_as_string(hide_password=False)
    return " ".join(part.replace(secret, hidden) for part in command)


def tool(name: str) -> str | None:
    return shutil.which(name)


def backup_postgres(target: Path) -> Path | None:
    """Run pg_dump into ``target``; None when pg_dump is not installed (the caller prints the command)."""
    if tool("pg_dump") is None:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    command = pg_dump_command(partial)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupRefused(f"pg_dump 失败：{done.stderr.strip()[:500]}")
    os.replace(partial, target)
    return target


def inspect_postgres_dump(source: Path) -> None:
    """The dump is pg_dump's custom format and holds 童护's tables."""
    source = Path(source)
    if not source.is_file():
        raise BackupRefused(f"找不到备份文件：{source}")
    with source.open("rb") as handle:
        if handle.read(5) != b"PGDMP":
            raise BackupRefused("该文件不是童护的 PostgreSQL 备份（不是 pg_dump 的 custom 格式）")
    listing = subprocess.run(["pg_restore", "--list", str(source)], capture_output=True, text=True)
    if listing.returncode != 0:
        raise BackupRefused(f"备份文件无法读取：{listing.stderr.strip()[:300]}")
    missing = [t for t in TONGHU_TABLES if f" TABLE public {t} " not in listing.stdout]
    if missing:
        raise BackupRefused("该文件不是童护的备份（缺少童护的数据表）")


def _dump_facts(source: Path) -> tuple[str, dt.datetime | None]:
    """The schema revision inside a dump and when pg_dump wrote it (UTC)."""
    data = subprocess.run(
        ["pg_restore", "--data-only", "--table=alembic_version", "--file=-", str(source)],
        capture_output=True,
        text=True,
    )
    match = re.search(r"COPY public\.alembic_version \(version_num\) FROM stdin;\n(\w+)\n", data.stdout)
    if data.returncode != 0 or match is None:
        raise BackupRefused("该文件不是童护的备份（没有数据库版本号）")
    listing = subprocess.run(["pg_restore", "--list", str(source)], capture_output=True, text=True)
    created = re.search(r"Archive created at (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) (\S+)", listing.stdout)
    when = None
    if created:
        when = dt.datetime.fromisoformat(created.group(1))
        if created.group(2) not in ("UTC", "GMT"):
            when = None  # a dump written in another time zone: compare nothing rather than wrongly
    return match.group(1), when


def restore_postgres(source: Path, *, force: bool = False) -> Restored | None:
    """Restore a dump into a new database, then swap it in by renaming (the old one is kept as
    ``<name>_before_restore_<time>``). None when pg_restore is not installed."""
    if tool("pg_restore") is None:
        return None
    inspect_postgres_dump(source)
    revision, created = _dump_facts(source)
    known, head = _revisions()
    if revision not in known:
        raise BackupRefused(
            f"备份的数据库版本（{revision}）比本程序新或不属于童护，无法恢复：请先把程序升级到做备份时的版本"
        )
    live_last = _live_last_write()
    if live_last and (created is None or live_last > created) and not force:
        raise BackupRefused(
            f"当前数据库比备份新（当前最近写入 {_text(live_last)}，备份写于 {_text(created)}），"
            "恢复会丢失此后的全部修改。确认要恢复请加 --force"
        )
    url = make_url(db.engine.url)
    live_name = url.database
    moment = f"{dt.datetime.now():%Y%m%d%H%M%S}"
    scratch, kept = f"{live_name}_restore_{moment}", f"{live_name}_before_restore_{moment}"
    db.session.remove()
    db.engine.dispose()
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{scratch}"'))
        target = url.set(drivername="postgresql", database=scratch).render_as_string(hide_password=False)
        done = subprocess.run(
            [
                "pg_restore",
                "--no-owner",
                "--single-transaction",
                "--exit-on-error",
                f"--dbname={target}",
                str(source),
            ],
            capture_output=True,
            text=True,
        )
        with admin.connect() as conn:
            if done.returncode != 0:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
                raise BackupRefused(f"pg_restore 失败，数据库未改变：{done.stderr.strip()[:500]}")
            others = conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": live_name},
            )
            if others:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
                raise BackupRefused(
                    f"还有 {others} 个连接在使用数据库 {live_name}：请先停止童护的所有进程，再运行恢复"
                )
            conn.execute(text(f'ALTER DATABASE "{live_name}" RENAME TO "{kept}"'))
            conn.execute(text(f'ALTER DATABASE "{scratch}" RENAME TO "{live_name}"'))
    finally:
        admin.dispose()
    upgraded = revision != head
    if upgraded:
        from flask_migrate import upgrade

        upgrade()
    return Restored(Path(source), revision, upgraded, kept, created)
