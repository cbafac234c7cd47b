"""Who may be picked for a role on a record: the staff of a village, by kind.

Staff pickers (views/staff_picker.py) and the services that fill in a person (a tiered measure's
提供人) read the same rules here: active staff of the wanted kinds, the village's own first, then
the town-level ones (no village).
"""

from __future__ import annotations

from sqlalchemy import case, select

from choices import StaffKind
from models import Child, Staff


def staff_clauses(kinds) -> list:
    """Active staff of ``kinds`` (any kind when empty)."""
    clauses = [Staff.active.is_(True)]
    if kinds:
        clauses.append(Staff.kind.in_([StaffKind(k).value for k in kinds]))
    return clauses


def staff_order(village_id: int | None) -> list:
    """The village's own staff first, then the town-level ones, then the other villages'."""
    order = [case((Staff.village_id == village_id, 0), else_=1)] if village_id is not None else []
    return [
        *order,
        case((Staff.village_id.is_(None), 0), else_=1),
        Staff.village_id,
        Staff.name_pinyin,
        Staff.id,
    ]


def staff_query(kinds, village_id: int | None = None, *, strict: bool = False):
    """A Select of the staff a picker offers (``strict``: only the village's and town-level ones)."""
    stmt = select(Staff).where(*staff_clauses(kinds))
    if village_id is not None and strict:
        stmt = stmt.where((Staff.village_id == village_id) | Staff.village_id.is_(None))
    return stmt.order_by(*staff_order(village_id))


def village_director_id(session, village_id: int | None) -> int | None:
    """The village's 儿童主任 (the first active one, if a village has two)."""
    if village_id is None:
        return None
    return session.scalar(
        select(Staff.id)
        .where(
            Staff.village_id == village_id,
            Staff.kind == StaffKind.DIRECTOR.value,
            Staff.active.is_(True),
        )
        .order_by(Staff.id)
        .limit(1)
    )


def responsible_director_id(session, child: Child) -> int | None:
    """Who delivers a child's tiered measure unless someone else is named: the child's own 儿童主任,
    else the village's."""
    return child.director_id or village_director_id(session, child.village_id)


def staff_label(staff: Staff) -> str:
    """刘然然（儿童主任 · 云岭村）: the person, their kind and where they serve."""
    where = staff.village.name if staff.village is not None else "镇级"
    return f"{staff.name}（{StaffKind.label_of(staff.kind)} · {where}）"
