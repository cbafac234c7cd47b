"""Independent reads of one page, run side by side, each on its own database connection.

A page of figures (the 工作台) reads a few large, unrelated things: the register, the year's
measures, alerts, cases and expenses. One after the other they use one core while the other waits;
the database answers each read without Python's interpreter lock (SQLite's C code releases it,
PostgreSQL works in its own process), so two reads at once take the time of the longer one, as a
dashboard's panels are queried at once. The total work is the same, so a busy server gains nothing
and loses nothing; an idle one answers sooner.

Each read runs in a thread with an application context of its own, hence a session and a pooled
connection of its own: it must only read, and must not touch the request's session or its objects
(what it returns is plain data). Like any two statements of a request, the two reads may see the
database as of two moments a few milliseconds apart.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from flask import current_app
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from models import db

T = TypeVar("T")


def _one_connection() -> bool:
    """A database of one shared connection (SQLite in memory) cannot serve two reads at once."""
    return isinstance(db.engine.pool, (StaticPool, SingletonThreadPool))


def side_by_side(*reads: Callable[[], T]) -> list[T]:
    """The results of ``reads`` in order; the first runs in the calling thread, the others beside it.

    An exception of any read is raised here, after every read has ended (the caller's error handling
    applies as if the reads had run in turn)."""
    if len(reads) < 2 or _one_connection():
        return [read() for read in reads]
    app = current_app._get_current_object()

    def run(read: Callable[[], T]) -> T:
        with app.app_context():  # its own session, hence its own connection (removed at the end)
            return read()

    # leaving the block waits for every read, also when the first one raised
    with ThreadPoolExecutor(max_workers=len(reads) - 1, thread_name_prefix="side-read") as pool:
        # each thread sees the request's context variables (the locale …), then its own app context
        futures = [pool.submit(contextvars.copy_context().run, run, read) for read in reads[1:]]
        first = reads[0]()
    return [first] + [future.result() for future in futures]
