"""Columns of the child derived from other rows, kept by one mechanism.

``Child.file_complete`` (services/filing.py) and ``Child.next_visit_due`` (services/visits.py) are
read from an index by the 工作台, the lists and the alert rules, and written only from the rows they
are derived from. Each registers here what a flush touches and how to recompute it; after every ORM
flush the children touched are recomputed by a set-based UPDATE on the same connection (not an ORM
write: the derived value is not an edit of the child, so it neither bumps the child's version nor
enters the audit log), and any of them loaded in the session read the column again.

Bulk writes that bypass the ORM (the ledger import, merging duplicates, the demo data) call the
registered ``refresh`` themselves; each module's ``stale_children`` checks the column against its rows
(``stale_ids`` for a column computed in SQL).

A batch of many small saves (the phone's queue of visits) runs inside ``deferred(session)``: its
flushes only note the children they touch, and the columns are recomputed once, for all of them,
when the batch ends — one set-based refresh instead of one per flush. Nothing inside the batch may
read a derived column (it is stale until the end).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from models import Child


@dataclass(frozen=True)
class Derived:
    column: str  # the Child attribute written
    touched: Callable[[Session], set[int]]  # ids of the children a pending flush changes
    refresh: Callable[[object, Iterable[int]], object]  # (connection, ids): recompute and write


_DERIVED: dict[str, Derived] = {}


def derive(column: str, touched: Callable[[Session], set[int]], refresh: Callable) -> None:
    """Keep ``Child.<column>`` from ``refresh`` after every flush that ``touched`` says concerns it."""
    if column in _DERIVED:
        raise ValueError(f"Child.{column} is derived twice")
    _DERIVED[column] = Derived(column, touched, refresh)


_CHUNK = 500


def write_changed(connection, column: str, computed, child_ids: Iterable[int] | None = None) -> None:
    """Write ``computed`` (an expression over the child's row) into ``Child.<column>`` where it differs,
    for these children (every child when None), in chunks of ids. ``connection`` is a Session or a
    Connection. Not an ORM update: a derived value is not an edit of the child, so it neither bumps the
    child's version (no false edit conflicts) nor enters the audit log."""
    table = Child.__table__
    stmt = update(table).values({column: computed}).where(table.c[column] != computed)
    if child_ids is None:
        connection.execute(stmt)
        return
    ids = sorted({i for i in child_ids if i is not None})
    for start in range(0, len(ids), _CHUNK):
        connection.execute(stmt.where(table.c.id.in_(ids[start : start + _CHUNK])))


def stale_ids(connection, column: str, computed) -> list[int]:
    """Ids of the children whose ``Child.<column>`` differs from ``computed`` — the check, by the same
    comparison ``write_changed`` writes by, that a column kept in SQL agrees with its rows."""
    table = Child.__table__
    return list(connection.execute(select(table.c.id).where(table.c[column] != computed)).scalars())


def _key(column: str) -> tuple[str, str]:
    return ("derived written", column)


_DEFERRED = "derived deferred"


@contextmanager
def deferred(session: Session) -> Iterator[None]:
    """Recompute the derived columns once, when the block ends, for every child its flushes touched.

    A child whose change was rolled back (a refused item's savepoint) is recomputed too: the refresh
    reads the rows as they are, so that is harmless. On an exception nothing is recomputed (the
    transaction is going to be rolled back)."""
    if _DEFERRED in session.info:  # already inside a batch: the outer one refreshes
        yield
        return
    pending: dict[str, set[int]] = {}
    session.info[_DEFERRED] = pending
    try:
        yield
        session.flush()
    finally:
        session.info.pop(_DEFERRED, None)
    for column, ids in pending.items():
        _DERIVED[column].refresh(session.connection(), ids)
        for child_id in ids:
            child = session.identity_map.get(identity_key(Child, child_id))
            if child is not None:
                session.expire(child, [column])


@event.listens_for(Session, "after_flush")
def _refresh_after_flush(session, flush_context):
    pending = session.info.get(_DEFERRED)
    for derived in _DERIVED.values():
        ids = derived.touched(session)
        if not ids:
            continue
        if pending is not None:
            pending.setdefault(derived.column, set()).update(ids)
            continue
        derived.refresh(session.connection(), ids)
        session.info.setdefault(_key(derived.column), set()).update(ids)


@event.listens_for(Session, "after_flush_postexec")
def _expire_loaded(session, flush_context):
    """Children loaded in this session read the column again from the row that was just updated."""
    for derived in _DERIVED.values():
        for child_id in session.info.pop(_key(derived.column), ()):
            child = session.identity_map.get(identity_key(Child, child_id))
            if child is not None:
                session.expire(child, [derived.column])
