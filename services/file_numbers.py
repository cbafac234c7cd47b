"""档案编号: the number on a child's file, ``<town>-<village>-<year>-<sequence>`` (e.g. LY-YL-2026-0007).

Given once, at registration, from a counter row per village and registration year (``FileCounter``)
that only ever counts up; the number stays with the child for life (a transfer or a merge keeps it)
and is never given to another child. The counter is advanced by one UPDATE … RETURNING, so two
registrations at the same moment (two app processes, PostgreSQL) wait on the row and get different
numbers; a registration that rolls back gives its number back with it, never having used it.

Every ORM insert of a child is numbered by the flush listener below; the bulk writes that bypass
the ORM (the ledger import, the demo data) take their numbers from ``numbers_for`` before inserting.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from models import Child, FileCounter, Setting, Village

TOWN_CODE_SETTING = "town_code"
DEFAULT_TOWN_CODE = "LY"


def format_number(town: str, village: str, year: int, sequence: int) -> str:
    return f"{town}-{village}-{year}-{sequence:04d}"


def _insert_ignoring_conflict(session, values: dict):
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(insert(FileCounter).values(**values).on_conflict_do_nothing())


def reserve(session, village_id: int, year: int, count: int) -> int:
    """Advance the village's counter for ``year`` by ``count``; the last sequence now taken."""
    _insert_ignoring_conflict(session, {"village_id": village_id, "year": year, "last": 0})
    return session.execute(
        update(FileCounter)
        .where(FileCounter.village_id == village_id, FileCounter.year == year)
        .values(last=FileCounter.last + count)
        .returning(FileCounter.last)
    ).scalar_one()


def town_code(session) -> str:
    value = session.scalar(select(Setting.value).where(Setting.key == TOWN_CODE_SETTING))
    return (value or "").strip() or DEFAULT_TOWN_CODE


def numbers_for(session, keys: list[tuple[int, int]]) -> list[str]:
    """A new 档案编号 for each (village id, registration year), in the order given."""
    wanted: dict[tuple[int, int], list[int]] = defaultdict(list)
    for position, key in enumerate(keys):
        wanted[key].append(position)
    if not wanted:
        return []
    town = town_code(session)
    codes = dict(
        session.execute(select(Village.id, Village.code).where(Village.id.in_({v for v, _ in wanted}))).all()
    )
    numbers: list[str] = [""] * len(keys)
    for (village_id, year), positions in wanted.items():
        code = codes.get(village_id) or str(village_id)
        taken = _taken(session, town, code, year, positions, village_id)
        for position, number in zip(positions, taken, strict=True):
            numbers[position] = number
    return numbers


def _taken(session, town, code, year, positions, village_id) -> list[str]:
    """Numbers from the counter, skipping any already on a file (a village code reused after a rename)."""
    result: list[str] = []
    while len(result) < len(positions):
        need = len(positions) - len(result)
        last = reserve(session, village_id, year, need)
        candidates = [format_number(town, code, year, seq) for seq in range(last - need + 1, last + 1)]
        used = set(session.scalars(select(Child.file_no).where(Child.file_no.in_(candidates))))
        result.extend(n for n in candidates if n not in used)
    return result


def registration_year(child: Child, today: dt.date) -> int:
    return child.created_at.year if child.created_at else today.year


@event.listens_for(Session, "before_flush")
def _number_new_children(session, flush_context, instances):
    from services import clock

    new = [obj for obj in session.new if isinstance(obj, Child) and not obj.file_no]
    if not new:
        return
    today = clock.today()
    keys = []
    for child in new:
        village_id = child.village_id if child.village_id is not None else getattr(child.village, "id", None)
        if village_id is None:
            return  # the insert fails on its missing village, with that error, not ours
        keys.append((village_id, registration_year(child, today)))
    for child, number in zip(new, numbers_for(session, keys), strict=True):
        child.file_no = number


__all__ = ["format_number", "numbers_for", "reserve", "town_code"]
