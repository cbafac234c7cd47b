"""Rows that keep a village of their own for a child (alerts, mandatory reports, tiered measures …)
follow the child's village, by one mechanism.

Such a row is scoped by its own ``village_id`` — that is what lets a village's director see it, and
what the figures count by — so it must never disagree with its child:

- a row added without a village takes its child's (before the flush writes it);
- when a flush changes a child's village — a transfer's acceptance, a clerk correcting the file's
  village, anything else — every row of the child moves with it in the same flush (a caller that
  records how many moved, as the transfer does, takes the counts with ``take_moved_counts``). Before
  this, a clerk's correction left the child's alerts and reports in the old village: its director
  kept seeing them, the new one never did.

The move is a set-based UPDATE on the flush's connection (not an edit of each row: no audit row per
alert), bumping each row's version (a form open on the old village is refused, not saved over it) and
the change stamp the 141 feed's ``since`` reads; rows of these models loaded in the session read the
moved values again.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import event, inspect, select, update
from sqlalchemy.orm import Session

from models import Child, Transfer, TransferEvent, db

_MOVED = "follow_child moved"
_COUNTS = "follow_child counts"
_CHUNK = 500


@cache
def moved_with_child() -> tuple:
    """The models that keep a village of their own for a child's row."""
    models = []
    for mapper in db.Model.registry.mappers:
        cls = mapper.class_
        if cls in (Child, Transfer, TransferEvent):
            continue
        if "child_id" in mapper.columns and "village_id" in mapper.columns:
            models.append(cls)
    return tuple(sorted(models, key=lambda m: m.__tablename__))


def follow(connection, child_ids) -> dict[str, int]:
    """Move every row of these children kept under a village other than its child's to the child's
    village (set-based, in chunks); {table: rows moved}. For the flush below and for bulk writes that
    change children's villages without the ORM (the ledger import), which call it themselves."""
    ids = sorted({int(i) for i in child_ids if i is not None})
    moved: dict[str, int] = {}
    child = Child.__table__
    for model in moved_with_child():
        table = model.__table__
        childs_village = select(child.c.village_id).where(child.c.id == table.c.child_id).scalar_subquery()
        values = {"village_id": childs_village}
        if "version" in table.c:
            values["version"] = table.c.version + 1
        # updated_at (the 141 feed's change stamp) is set by its column's own onupdate
        for start in range(0, len(ids), _CHUNK):
            count = connection.execute(
                update(table)
                .where(
                    table.c.child_id.in_(ids[start : start + _CHUNK]), table.c.village_id != childs_village
                )
                .values(**values)
            ).rowcount
            if count:
                moved[table.name] = moved.get(table.name, 0) + count
    return moved


@event.listens_for(Session, "before_flush")
def _fill_new_rows(session, flush_context, instances):
    models = moved_with_child()
    with session.no_autoflush:
        for obj in session.new:
            if not isinstance(obj, models) or obj.village_id is not None:
                continue
            child = getattr(obj, "child", None)
            if not isinstance(child, Child) and obj.child_id is not None:
                child = session.get(Child, obj.child_id)
            if child is None:
                continue
            if child.village_id is not None:
                obj.village_id = child.village_id
            elif child.village is not None:  # a child new in this flush, given its village as an object
                if child.village.id is not None:
                    obj.village_id = child.village.id
                elif "village" in inspect(type(obj)).relationships:  # the village is new too
                    obj.village = child.village


@event.listens_for(Session, "after_flush")
def _follow_moved_children(session, flush_context):
    changed = set()
    for obj in session.dirty:
        if not isinstance(obj, Child):
            continue
        history = inspect(obj).attrs.village_id.history
        if history.added and history.added[0] is not None and history.added[0] not in (history.deleted or ()):
            changed.add(obj.id)
    if not changed:
        return
    moved = follow(session.connection(), changed)
    if moved:
        session.info.setdefault(_MOVED, set()).update(changed)
        counts = session.info.setdefault(_COUNTS, {})
        for table, count in moved.items():
            counts[table] = counts.get(table, 0) + count


def take_moved_counts(session) -> dict[str, int]:
    """{table: rows moved} by the flushes of this session since the last call (or its last commit or
    rollback), and forget them."""
    return session.info.pop(_COUNTS, {})


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _forget_counts(session, *args):
    session.info.pop(_COUNTS, None)


@event.listens_for(Session, "after_flush_postexec")
def _expire_moved(session, flush_context):
    moved = session.info.pop(_MOVED, None)
    if not moved:
        return
    models = moved_with_child()
    for obj in list(session.identity_map.values()):
        if isinstance(obj, models) and obj.child_id in moved:
            columns = inspect(type(obj)).columns
            session.expire(obj, [name for name in ("village_id", "version", "updated_at") if name in columns])
