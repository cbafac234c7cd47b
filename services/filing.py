"""建档完成: whether a child's file holds what the plan asks of it, kept as a flag on the child.

A file is complete when it has an address, at least one guardian and at least one 困境类别.
``Child.file_complete`` is derived from those rows and written only here, by one set-based UPDATE
that reads the database's own rows:

- after every ORM flush that touched a child, a guardian link or a child's categories (through
  services/derived.py), so the register's forms, inline guardian rows and archive/restore keep it;
- by the bulk writes that bypass the ORM (the ledger import, merging duplicates, the demo data),
  which call ``refresh`` themselves.

The flag lets the 工作台 count complete files from an index instead of probing two link tables for
every child. ``stale_children`` is the check that it agrees with the rows it is derived from.
"""

from sqlalchemy import and_, case, exists, inspect

from models import Child, ChildGuardian, child_category
from services.derived import derive, stale_ids, write_changed

_child = Child.__table__


def _complete():
    return and_(
        _child.c.address.is_not(None),
        _child.c.address != "",
        exists().where(ChildGuardian.__table__.c.child_id == _child.c.id),
        exists().where(child_category.c.child_id == _child.c.id),
    )


def _computed():
    return case((_complete(), True), else_=False)


def refresh(connection, child_ids=None) -> None:
    """Recompute the flag of these children (all children when None); only changed rows are written
    (``services.derived.write_changed``: no version bump, no audit row)."""
    write_changed(connection, "file_complete", _computed(), child_ids)


def stale_children(connection) -> list[int]:
    """Ids of children whose flag disagrees with their rows (empty when all is well)."""
    return stale_ids(connection, "file_complete", _computed())


def describe(child: Child) -> str:
    """齐全, or what the file still lacks, read from a loaded child by the same rule as ``_complete``."""
    missing = [
        label
        for label, present in (
            ("住址", bool(child.address)),
            ("监护人", bool(child.guardian_links)),
            ("困境类别", bool(child.categories)),
        )
        if not present
    ]
    return "不全（缺：{}）".format("、".join(missing)) if missing else "齐全"


def _touched_children(session) -> set[int]:
    ids: set[int] = set()
    for obj in session.new | session.dirty | session.deleted:
        if isinstance(obj, Child):
            if obj in session.new or session.is_modified(obj):
                ids.add(obj.id)
        elif isinstance(obj, ChildGuardian):
            ids.add(obj.child_id)
            # a link moved to another child changes both children's files
            ids.update(inspect(obj).attrs.child_id.history.deleted or ())
    return ids


derive("file_complete", _touched_children, refresh)
