"""Likely duplicate children, and merging two records of one child into one.

Three signs of a duplicate: the same ID number once case and blanks are ignored (archived and
active alike); the same name and birth date; the same name and a guardian's phone. A merge moves
every record of the other child to the kept one, archives the other, and is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, func, literal_column, select, true, update

from choices import ChildStatus
from models import (
    Alert,
    Assessment,
    Attachment,
    Attendance,
    Case,
    Child,
    ChildGuardian,
    Expense,
    Guardian,
    MandatoryReport,
    MentorPairing,
    SupportService,
    Visit,
    child_category,
    db,
    utcnow,
)
from services import attachments, audit, filing
from services.assessment import refresh_level
from services.scoping import scope
from services.validation import InvalidInput

REASON_ID = "身份证号相同（忽略大小写和空格）"
REASON_BIRTH = "姓名和出生日期相同"
REASON_PHONE = "姓名和监护人电话相同"

# Tables whose rows belong to a child through child_id, with their Chinese names.
MOVED_TABLES = [
    (Assessment, "评估"),
    (SupportService, "赋能措施"),
    (Visit, "走访"),
    (MandatoryReport, "强制报告"),
    (Alert, "预警"),
    (Case, "个案"),
    (MentorPairing, "爱心妈妈结对"),
    (Expense, "资金支出"),
]
# Optional facts the kept child takes from the other when it has none of its own.
_FILLED = ("address", "school", "grade", "disability_kind", "disability_grade", "identification_source")
_FILLED_IDS = ("director_id", "caring_mother_id")
_GROUP_LIMIT = 500


@dataclass
class DuplicateGroup:
    child_ids: list[int]
    reasons: list[str] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)


def _normalised_id(column):
    # Literals inline, not bound: PostgreSQL must see the SELECT and GROUP BY expressions as the same.
    return func.upper(func.replace(func.trim(column), literal_column("' '"), literal_column("''")))


def find_duplicates(village_ids, limit: int = _GROUP_LIMIT) -> list[DuplicateGroup]:
    """Groups of children in scope that are likely one child, most certain signs first."""
    # every village: no condition at all (an IN over the whole table only slows the grouping down)
    in_scope = true() if village_ids is None else Child.id.in_(scope(select(Child.id), Child, village_ids))
    # anonymised files are 某某 with a placeholder number: never anyone's duplicate
    in_scope = in_scope & Child.anonymised_at.is_(None)
    groups: dict[frozenset, DuplicateGroup] = {}

    def add(reason, ids):
        key = frozenset(ids)
        if len(key) < 2:
            return
        group = groups.setdefault(key, DuplicateGroup(sorted(key)))
        if reason not in group.reasons:
            group.reasons.append(reason)

    by_id = (
        select(_normalised_id(Child.id_number).label("k"))
        .where(in_scope)
        .group_by(_normalised_id(Child.id_number))
        .having(func.count() > 1)
        .limit(limit)
        .subquery()
    )
    _collect(
        select(by_id.c.k, Child.id).join(by_id, _normalised_id(Child.id_number) == by_id.c.k),
        in_scope,
        lambda ids: add(REASON_ID, ids),
    )
    by_birth = (
        select(Child.name, Child.birth_date)
        .where(in_scope)
        .group_by(Child.name, Child.birth_date)
        .having(func.count() > 1)
        .limit(limit)
        .subquery()
    )
    _collect(
        select(by_birth.c.name, by_birth.c.birth_date, Child.id).join(
            by_birth, (Child.name == by_birth.c.name) & (Child.birth_date == by_birth.c.birth_date)
        ),
        in_scope,
        lambda ids: add(REASON_BIRTH, ids),
    )
    phone_pairs = (
        select(Child.name.label("name"), Guardian.phone.label("phone"))
        .join(ChildGuardian, ChildGuardian.child_id == Child.id)
        .join(Guardian, Guardian.id == ChildGuardian.guardian_id)
        .where(in_scope, Guardian.phone.is_not(None), Guardian.phone != "")
        .group_by(Child.name, Guardian.phone)
        .having(func.count(func.distinct(Child.id)) > 1)
        .limit(limit)
        .subquery()
    )
    _collect(
        select(phone_pairs.c.name, phone_pairs.c.phone, Child.id)
        .join(ChildGuardian, ChildGuardian.child_id == Child.id)
        .join(Guardian, Guardian.id == ChildGuardian.guardian_id)
        .join(phone_pairs, (Child.name == phone_pairs.c.name) & (Guardian.phone == phone_pairs.c.phone)),
        in_scope,
        lambda ids: add(REASON_PHONE, ids),
    )

    result = list(groups.values())[:limit]
    wanted = {cid for g in result for cid in g.child_ids}
    loaded = {}
    ids = list(wanted)
    for start in range(0, len(ids), 900):
        for child in db.session.scalars(select(Child).where(Child.id.in_(ids[start : start + 900]))):
            loaded[child.id] = child
    for group in result:
        group.children = [loaded[cid] for cid in group.child_ids if cid in loaded]
    order = {REASON_ID: 0, REASON_BIRTH: 1, REASON_PHONE: 2}
    result.sort(key=lambda g: (min(order[r] for r in g.reasons), g.child_ids))
    return result


def _collect(statement, in_scope, add) -> None:
    keyed: dict = {}
    for *key, child_id in db.session.execute(statement.where(in_scope)):
        keyed.setdefault(tuple(key), set()).add(child_id)
    for ids in keyed.values():
        add(ids)


def record_counts(child_id: int) -> dict[str, int]:
    """How many records of each kind hang on a child (what a merge would move)."""
    counts = {"监护人": _count(ChildGuardian, child_id), "活动签到": _count(Attendance, child_id)}
    for model, label in MOVED_TABLES:
        counts[label] = _count(model, child_id)
    counts["证件与照片"] = db.session.scalar(
        select(func.count())
        .select_from(Attachment)
        .where(Attachment.owner_kind == "child", Attachment.owner_id == child_id)
    )
    return counts


def _count(model, child_id) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(model.child_id == child_id)) or 0


def merge_children(keep_id: int, other_id: int, village_ids, *, note: str = "") -> dict[str, int]:
    """Move every record of ``other_id`` to ``keep_id`` and archive the other; the caller commits."""
    if keep_id == other_id:
        raise InvalidInput("请选择两个不同的儿童进行合并")
    children = {
        c.id: c
        for c in db.session.scalars(
            scope(select(Child).where(Child.id.in_([keep_id, other_id])), Child, village_ids)
        )
    }
    keep, other = children.get(keep_id), children.get(other_id)
    if keep is None or other is None:
        raise InvalidInput("记录不存在：要合并的儿童不存在或不在您的管理范围内")
    if keep.anonymised_at is not None or other.anonymised_at is not None:
        raise InvalidInput("已匿名化的档案不能合并")
    session = db.session
    moved: dict[str, int] = {}

    # guardian links: a guardian already linked to the kept child is not linked twice
    kept_guardians = select(ChildGuardian.guardian_id).where(ChildGuardian.child_id == keep_id)
    dropped = session.execute(
        delete(ChildGuardian).where(
            ChildGuardian.child_id == other_id, ChildGuardian.guardian_id.in_(kept_guardians)
        )
    ).rowcount
    keep_has_primary = session.scalar(
        select(func.count())
        .select_from(ChildGuardian)
        .where(ChildGuardian.child_id == keep_id, ChildGuardian.is_primary.is_(True))
    )
    values = {"child_id": keep_id}
    if keep_has_primary:
        values["is_primary"] = False
    moved["监护人"] = session.execute(
        update(ChildGuardian).where(ChildGuardian.child_id == other_id).values(**values)
    ).rowcount
    if dropped:
        moved["监护人（重复，已去除）"] = dropped

    # attendance: one sign-in per activity
    attended = select(Attendance.activity_id).where(Attendance.child_id == keep_id)
    session.execute(
        delete(Attendance).where(Attendance.child_id == other_id, Attendance.activity_id.in_(attended))
    )
    moved["活动签到"] = session.execute(
        update(Attendance).where(Attendance.child_id == other_id).values(child_id=keep_id)
    ).rowcount

    for model, label in MOVED_TABLES:
        values = {"child_id": keep_id, "version": model.version + 1}
        if "village_id" in model.__table__.c:
            # alerts and reports follow the kept child's village, so its director sees them
            values["village_id"] = keep.village_id
        moved[label] = session.execute(
            update(model).where(model.child_id == other_id).values(**values)
        ).rowcount

    # the other record's scans and photos (its visits' and cases' move with them)
    moved["证件与照片"] = attachments.move_owner("child", other_id, keep_id)

    # categories: the kept child has every category either record had
    missing = select(child_category.c.category_id).where(
        child_category.c.child_id == other_id,
        child_category.c.category_id.not_in(
            select(child_category.c.category_id).where(child_category.c.child_id == keep_id)
        ),
    )
    categories = [row[0] for row in session.execute(missing)]
    if categories:
        session.execute(
            child_category.insert(), [{"child_id": keep_id, "category_id": cid} for cid in categories]
        )
    moved["困境类别"] = len(categories)
    filing.refresh(session, [keep_id, other_id])  # the links moved without the ORM

    for name in _FILLED + _FILLED_IDS:
        if getattr(keep, name) in (None, "") and getattr(other, name) not in (None, ""):
            setattr(keep, name, getattr(other, name))
    # The assessments moved: the kept child's level follows its latest approved one, wherever it came from.
    session.flush()
    session.expire(keep)
    refresh_level(keep)
    if keep.is_archived and not other.is_archived:
        # the record that stays is the one in use: the kept child comes back to the register
        audit.label_next_change(session, keep, "restore")
        keep.status, keep.archived_at, keep.archive_reason = ChildStatus.ACTIVE.value, None, None

    reason = f"重复登记，已并入 {keep.name}（编号 {keep.id}）" + (f"：{note.strip()}" if note.strip() else "")
    audit.label_next_change(session, other, "archive")
    if not other.is_archived:
        other.status = ChildStatus.CLOSED.value
        other.archived_at = utcnow()
    other.archive_reason = reason[:200]
    summary = "；".join(f"{label}{n}" for label, n in moved.items() if n)
    audit.record(
        session,
        "merge",
        table="child",
        record_id=keep_id,
        summary=f"合并重复儿童：编号 {other_id} 并入 {keep_id}（{summary or '无关联记录'}）",
        changes={"merged_from": other_id, "moved": moved},
    )
    session.flush()
    return moved


__all__ = [
    "MOVED_TABLES",
    "REASON_BIRTH",
    "REASON_ID",
    "REASON_PHONE",
    "DuplicateGroup",
    "find_duplicates",
    "merge_children",
    "record_counts",
]
