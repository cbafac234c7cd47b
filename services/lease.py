"""One holder at a time for a named job, across threads and app processes, on SQLite and PostgreSQL.

A lease is a row of ``lease`` keyed by the job's name. Taking it is one INSERT (the primary key lets
one writer win) or, once the holder's time is up, one UPDATE guarded by ``expires_at``; both run on
their own connection and commit at once, so the lease is visible to everyone before the job starts
and whatever the caller's session holds is untouched. A holder that dies loses the lease when it
expires.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from models import Lease, db, utcnow

_table = Lease.__table__


def acquire(name: str, ttl: dt.timedelta, now: dt.datetime | None = None) -> str | None:
    """Take the lease ``name`` for ``ttl``; the holder's id, or None while someone else holds it."""
    now = now or utcnow()
    holder = uuid.uuid4().hex
    values = {"holder": holder, "acquired_at": now, "expires_at": now + ttl}
    try:
        with db.engine.begin() as conn:
            taken = conn.execute(
                update(_table).where(_table.c.name == name, _table.c.expires_at < now).values(**values)
            ).rowcount
            if not taken:
                conn.execute(insert(_table).values(name=name, **values))
    except (IntegrityError, OperationalError):
        # Someone else inserted it first (or, on SQLite, holds the write lock to do so).
        return None
    return holder


def release(name: str, holder: str) -> None:
    with db.engine.begin() as conn:
        conn.execute(delete(_table).where(_table.c.name == name, _table.c.holder == holder))


def held(name: str, now: dt.datetime | None = None) -> bool:
    """Whether someone holds ``name`` right now."""
    now = now or utcnow()
    with db.engine.connect() as conn:
        expires = conn.scalar(select(_table.c.expires_at).where(_table.c.name == name))
    return expires is not None and expires >= now
