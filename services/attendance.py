"""The attendance roll of an activity and saving who came, as one set.

A roll entry is keyed ``c:<child id>``, ``g:<guardian id>``, ``s:<staff id>`` or ``w:<attendance id>``
(a walk-in). The people on a roll follow the activity's audience and villages, limited to the
villages of the person logging (``village_ids``, None = all). Saving takes the keys ticked and the
keys that were shown: shown-but-unticked attendees are removed, nobody is ever signed in twice, and
people the logger cannot see are never touched.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from choices import Audience, ChildStatus, Level, Relation, StaffKind
from models import (
    Activity,
    Attendance,
    Child,
    ChildGuardian,
    Guardian,
    Staff,
    Village,
    activity_village,
    child_category,
    pinyin_keys,
)
from services import audit
from services.scoping import scope_clause
from services.validation import InvalidInput, clean_name

KIND_LABELS = {"child": "儿童", "guardian": "家长", "staff": "工作人员", "walk_in": "临时签到"}
# A roll longer than this asks the logger to pick a village first (a town-wide activity of a big town).
ROLL_LIMIT = 3000


@dataclass(slots=True)
class RollEntry:
    key: str
    kind: str
    name: str
    village_id: int | None
    village: str
    role: str
    id_last4: str = ""
    id_number: str | None = None
    pinyin: str = ""
    initials: str = ""
    category_ids: tuple = ()
    level: str | None = None
    present: bool = False
    eligible: bool = True
    came_last: bool = False  # signed in at the previous activity of the kind (上次来过的)
    staff_kind: str = ""

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]


@dataclass
class RollFilter:
    village_id: int | None = None
    category_id: int | None = None
    level: str | None = None

    @property
    def narrows_people(self) -> bool:
        return self.category_id is not None or self.level is not None

    @property
    def empty(self) -> bool:
        return self.village_id is None and not self.narrows_people


@dataclass
class Roll:
    activity: Activity
    entries: list[RollEntry]
    total_signed: int  # everyone signed in for the activity, including people out of the logger's scope
    too_long: bool = False
    previous: Activity | None = None  # the activity 上次来过的 refers to

    @cached_property
    def present(self) -> int:
        return sum(1 for e in self.entries if e.present)

    @property
    def hidden_signed(self) -> int:
        """Signed-in people this logger cannot see (other villages)."""
        return self.total_signed - self.present

    @cached_property
    def eligible(self) -> int:
        return sum(1 for e in self.entries if e.eligible)

    @cached_property
    def keys(self) -> str:
        """Every key on the roll, comma-separated: what the page showed, posted back with the ticks."""
        return ",".join(e.key for e in self.entries)

    @property
    def rate(self) -> float | None:
        return self.present / self.eligible if self.eligible else None

    @property
    def over_capacity(self) -> bool:
        return bool(self.activity.capacity) and self.total_signed > self.activity.capacity


@dataclass
class SaveResult:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    total: int = 0
    capacity: int | None = None
    refused: list[str] = field(default_factory=list)

    @property
    def over_capacity(self) -> bool:
        return bool(self.capacity) and self.total > self.capacity


@lru_cache(maxsize=20000)
def _pinyin(name: str) -> tuple[str, str]:
    return pinyin_keys(name)


def _keys_of(name: str, full: str | None, initials: str | None) -> tuple[str, str]:
    """Stored pinyin when the row has it; computed (and cached) for rows bulk-written without it."""
    if full:
        return full, initials or ""
    return _pinyin(name or "")


def _audiences(activity: Activity) -> set[str]:
    return set(activity.audience or [])


def activity_village_ids(session, activity: Activity) -> list[int]:
    return list(
        session.scalars(
            select(activity_village.c.village_id).where(activity_village.c.activity_id == activity.id)
        )
    )


def _village_limit(session, activity, village_ids, flt: RollFilter) -> list[int] | None:
    """The villages whose people belong on the roll; None = every village."""
    allowed = activity_village_ids(session, activity) or None
    for limit in (village_ids, [flt.village_id] if flt.village_id else None):
        if limit is None:
            continue
        allowed = list(limit) if allowed is None else [v for v in allowed if v in set(limit)]
    return allowed


def _children_select(session, activity, village_ids, flt: RollFilter):
    villages = _village_limit(session, activity, village_ids, flt)
    stmt = select(Child.id).where(Child.archived_at.is_(None), Child.status == ChildStatus.ACTIVE.value)
    if villages is not None:
        stmt = stmt.where(Child.village_id.in_(villages))
    if flt.category_id is not None:
        stmt = stmt.where(
            Child.id.in_(
                select(child_category.c.child_id).where(child_category.c.category_id == flt.category_id)
            )
        )
    if flt.level is not None:
        stmt = stmt.where(
            Child.current_level.is_(None) if flt.level == "none" else Child.current_level == flt.level
        )
    return stmt


def staff_kinds(activity: Activity) -> list[str]:
    """The kinds of staff the activity is for (a training for 儿童主任 and 网格员); empty: every kind."""
    valid = {k.value for k in StaffKind}
    return [k for k in activity.staff_kinds or [] if k in valid]


def _staff_clause(session, activity, village_ids, flt: RollFilter):
    clauses = [Staff.active.is_(True)]
    kinds = staff_kinds(activity)
    if kinds:
        clauses.append(Staff.kind.in_(kinds))
    own = activity_village_ids(session, activity)
    if own:
        clauses.append(Staff.village_id.in_(own) | Staff.village_id.is_(None))
    if flt.village_id:
        clauses.append(Staff.village_id == flt.village_id)
    limit = scope_clause(Staff, village_ids)
    if limit is not None:
        clauses.append(limit)
    return clauses


def eligible_keys(session, activity: Activity, village_ids) -> set[str]:
    """Keys of everybody who may be ticked for ``activity`` by someone seeing ``village_ids``."""
    audiences = _audiences(activity)
    flt = RollFilter()
    keys: set[str] = set()
    children = _children_select(session, activity, village_ids, flt)
    if Audience.CHILDREN in audiences:
        keys.update(f"c:{cid}" for cid in session.scalars(children))
    if Audience.PARENTS in audiences:
        stmt = select(ChildGuardian.guardian_id).where(ChildGuardian.child_id.in_(children)).distinct()
        limit = scope_clause(Guardian, village_ids)
        if limit is not None:
            stmt = stmt.join(Guardian, Guardian.id == ChildGuardian.guardian_id).where(limit)
        keys.update(f"g:{gid}" for gid in session.scalars(stmt))
    if Audience.STAFF in audiences:
        keys.update(
            f"s:{sid}"
            for sid in session.scalars(
                select(Staff.id).where(*_staff_clause(session, activity, village_ids, flt))
            )
        )
    return keys


def _visible(village_id, village_ids, town_level_visible: bool) -> bool:
    if village_ids is None:
        return True
    if village_id is None:
        return town_level_visible
    return village_id in village_ids


def _existing(session, activity_id: int):
    """(attendance id, key, village id, kind) of everybody signed in for the activity."""
    stmt = (
        select(
            Attendance.id,
            Attendance.child_id,
            Attendance.guardian_id,
            Attendance.staff_id,
            Attendance.walk_in_village_id,
            Child.village_id,
            Guardian.village_id,
            Staff.village_id,
        )
        .outerjoin(Child, Child.id == Attendance.child_id)
        .outerjoin(Guardian, Guardian.id == Attendance.guardian_id)
        .outerjoin(Staff, Staff.id == Attendance.staff_id)
        .where(Attendance.activity_id == activity_id)
    )
    rows = []
    for aid, cid, gid, sid, wv, cv, gv, sv in session.execute(stmt):
        if cid:
            rows.append((aid, f"c:{cid}", cv, "child"))
        elif gid:
            rows.append((aid, f"g:{gid}", gv, "guardian"))
        elif sid:
            rows.append((aid, f"s:{sid}", sv, "staff"))
        else:
            rows.append((aid, f"w:{aid}", wv, "walk_in"))
    return rows


def _visible_existing(rows, village_ids):
    return {
        key: aid
        for aid, key, village_id, kind in rows
        if _visible(village_id, village_ids, town_level_visible=(kind == "staff"))
    }


def build_roll(session, activity: Activity, village_ids, flt: RollFilter | None = None) -> Roll:
    """Everybody eligible for ``activity`` (and everybody already signed in) that ``village_ids`` may see."""
    flt = flt or RollFilter()
    audiences = _audiences(activity)
    villages = dict(session.execute(select(Village.id, Village.name)).all())
    existing = _existing(session, activity.id)
    present = _visible_existing(existing, village_ids)
    entries: list[RollEntry] = []
    children = _children_select(session, activity, village_ids, flt)
    too_long = False
    if flt.village_id is None and len(activity_village_ids(session, activity)) != 1:
        size = 0
        if Audience.CHILDREN in audiences or Audience.PARENTS in audiences:
            size = session.scalar(select(func.count()).select_from(children.subquery()))
            if Audience.PARENTS in audiences:
                size *= 2
        too_long = size > ROLL_LIMIT
    if too_long:
        return Roll(activity, [], total_signed=len(existing), too_long=True)

    categories: dict[int, list[int]] = {}
    need_children = Audience.CHILDREN in audiences or Audience.PARENTS in audiences
    child_info: dict[int, tuple] = {}
    if need_children:
        for cid, cat in session.execute(
            select(child_category.c.child_id, child_category.c.category_id).where(
                child_category.c.child_id.in_(children)
            )
        ):
            categories.setdefault(cid, []).append(cat)
        stmt = (
            select(
                Child.id,
                Child.name,
                Child.name_pinyin,
                Child.name_initials,
                Child.id_number,
                Child.village_id,
                Child.current_level,
            )
            .where(Child.id.in_(children))
            .order_by(Child.village_id, Child.name_pinyin, Child.id)
        )
        for cid, name, full, initials, idn, vid, level in session.execute(stmt):
            child_info[cid] = (name, level)
            if Audience.CHILDREN in audiences:
                entries.append(
                    RollEntry(
                        key=f"c:{cid}",
                        kind="child",
                        name=name,
                        village_id=vid,
                        village=villages.get(vid, ""),
                        role="儿童",
                        id_last4=(idn or "")[-4:],
                        id_number=idn,
                        pinyin=full,
                        initials=initials,
                        category_ids=tuple(categories.get(cid, ())),
                        level=level,
                    )
                )
    if Audience.PARENTS in audiences:
        entries.extend(_guardian_entries(session, children, village_ids, villages, child_info, categories))
    if Audience.STAFF in audiences and not flt.narrows_people:
        stmt = (
            select(Staff.id, Staff.name, Staff.name_pinyin, Staff.name_initials, Staff.kind, Staff.village_id)
            .where(*_staff_clause(session, activity, village_ids, flt))
            .order_by(Staff.village_id.is_(None).desc(), Staff.village_id, Staff.kind, Staff.id)
        )
        for sid, name, full, initials, kind, vid in session.execute(stmt):
            full, initials = _keys_of(name, full, initials)
            entries.append(
                RollEntry(
                    key=f"s:{sid}",
                    kind="staff",
                    name=name,
                    village_id=vid,
                    village=villages.get(vid, "镇级"),
                    role=StaffKind.label_of(kind),
                    pinyin=full,
                    initials=initials,
                    staff_kind=kind,
                )
            )
    shown = {e.key for e in entries}
    if flt.empty:
        entries.extend(_extra_attendees(session, activity, present, shown, villages))
    previous = previous_activity(session, activity)
    came = attended_keys(session, previous.id) if previous is not None else set()
    for entry in entries:
        entry.present = entry.key in present
        entry.came_last = entry.key in came
    return Roll(activity, entries, total_signed=len(existing), previous=previous)


def previous_activity(session, activity: Activity) -> Activity | None:
    """The activity "上次来过的" looks back to: the latest earlier one of the same kind held for the
    same villages (town-wide ones for a town-wide activity)."""
    own = set(activity_village_ids(session, activity))
    earlier = (
        select(Activity)
        .where(
            Activity.kind == activity.kind,
            Activity.starts_at < activity.starts_at,
            Activity.id != activity.id,
        )
        .order_by(Activity.starts_at.desc(), Activity.id.desc())
        .limit(20)
    )
    for candidate in session.scalars(earlier):
        theirs = set(activity_village_ids(session, candidate))
        if theirs == own or (own and theirs & own):
            return candidate
    return None


def attended_keys(session, activity_id: int) -> set[str]:
    """Roll keys of the people (not walk-ins) signed in for an activity."""
    return {key for _, key, _, kind in _existing(session, activity_id) if kind != "walk_in"}


def _guardian_entries(session, children, village_ids, villages, child_info, categories):
    stmt = (
        select(
            Guardian.id,
            Guardian.name,
            Guardian.name_pinyin,
            Guardian.name_initials,
            Guardian.id_number,
            Guardian.village_id,
            ChildGuardian.child_id,
            ChildGuardian.relation,
        )
        .join(Guardian, Guardian.id == ChildGuardian.guardian_id)
        .where(ChildGuardian.child_id.in_(children))
        .order_by(Guardian.village_id, Guardian.id)
    )
    limit = scope_clause(Guardian, village_ids)
    if limit is not None:
        stmt = stmt.where(limit)
    by_id: dict[int, RollEntry] = {}
    links: dict[int, list[str]] = {}
    cats: dict[int, set[int]] = {}
    rank = {level.value: level.rank for level in Level}
    relation_label = {r.value: r.label for r in Relation}
    for gid, name, full, initials, idn, vid, cid, relation in session.execute(stmt):
        child_name, level = child_info.get(cid, ("", None))
        entry = by_id.get(gid)
        if entry is None:
            full, initials = _keys_of(name, full, initials)
            entry = by_id[gid] = RollEntry(
                key=f"g:{gid}",
                kind="guardian",
                name=name,
                village_id=vid,
                village=villages.get(vid, ""),
                role="",
                id_last4=(idn or "")[-4:],
                id_number=idn,
                pinyin=full,
                initials=initials,
            )
            links[gid] = []
            cats[gid] = set()
        links[gid].append(f"{child_name}的{relation_label.get(relation, relation or '')}")
        cats[gid].update(categories.get(cid, ()))
        if level and (entry.level is None or rank.get(level, -1) > rank.get(entry.level, -1)):
            entry.level = level
    for gid, entry in by_id.items():
        entry.role = "、".join(links[gid])
        entry.category_ids = tuple(sorted(cats[gid]))
    return list(by_id.values())


def _extra_attendees(
    session, activity, present: dict[str, int], shown: set[str], villages
) -> list[RollEntry]:
    """Signed-in people no longer on the roll (moved, archived, audience changed) and walk-ins."""
    missing = [key for key in present if key not in shown]
    if not missing:
        return []
    extra = []
    ids = {kind: [int(k[2:]) for k in missing if k[0] == kind] for kind in "cgsw"}
    if ids["c"]:
        for c in session.scalars(select(Child).where(Child.id.in_(ids["c"]))):
            extra.append(
                RollEntry(
                    f"c:{c.id}",
                    "child",
                    c.name,
                    c.village_id,
                    villages.get(c.village_id, ""),
                    "儿童（不在名单范围）",
                    c.id_last4,
                    c.id_number,
                    c.name_pinyin,
                    c.name_initials,
                    eligible=False,
                )
            )
    if ids["g"]:
        for g in session.scalars(select(Guardian).where(Guardian.id.in_(ids["g"]))):
            full, initials = _keys_of(g.name, g.name_pinyin, g.name_initials)
            extra.append(
                RollEntry(
                    f"g:{g.id}",
                    "guardian",
                    g.name,
                    g.village_id,
                    villages.get(g.village_id, ""),
                    "家长（不在名单范围）",
                    (g.id_number or "")[-4:],
                    g.id_number,
                    full,
                    initials,
                    eligible=False,
                )
            )
    if ids["s"]:
        for s in session.scalars(select(Staff).where(Staff.id.in_(ids["s"]))):
            full, initials = _keys_of(s.name, s.name_pinyin, s.name_initials)
            extra.append(
                RollEntry(
                    f"s:{s.id}",
                    "staff",
                    s.name,
                    s.village_id,
                    villages.get(s.village_id, "镇级"),
                    StaffKind.label_of(s.kind),
                    "",
                    None,
                    full,
                    initials,
                    eligible=False,
                )
            )
    if ids["w"]:
        for a in session.scalars(select(Attendance).where(Attendance.id.in_(ids["w"]))):
            full, initials = _keys_of(a.walk_in_name, None, None)
            extra.append(
                RollEntry(
                    f"w:{a.id}",
                    "walk_in",
                    a.walk_in_name or "",
                    a.walk_in_village_id,
                    villages.get(a.walk_in_village_id, ""),
                    "临时签到",
                    "",
                    None,
                    full,
                    initials,
                    eligible=False,
                )
            )
    return extra


def parse_keys(values) -> set[str]:
    """Keys from a form: ``c:12`` etc.; anything else is dropped."""
    keys = set()
    for raw in values or ():
        for part in str(raw).split(","):
            part = part.strip()
            if len(part) > 2 and part[0] in "cgsw" and part[1] == ":" and part[2:].isdigit():
                keys.add(part)
    return keys


def save_attendance(
    session,
    activity: Activity,
    ticked: set[str],
    shown: set[str],
    village_ids,
    *,
    walk_ins: list[tuple[str, int | None]] = (),
    recorded_by_id: int | None = None,
    now: dt.datetime | None = None,
    commit: bool = True,
    strict: bool = False,
) -> SaveResult:
    """Make the ticked people (of those shown) exactly the ones signed in. Commits, unless ``commit``
    is False (the caller's transaction, e.g. one item of an offline queue, then only flushes).

    People the logger may not tick are left out and listed in ``refused``; with ``strict`` the whole
    set is refused instead (InvalidInput, nothing written).
    """
    now = now or dt.datetime.now()
    result = SaveResult(capacity=activity.capacity)
    existing = _existing(session, activity.id)
    present = _visible_existing(existing, village_ids)
    wanted_new = {k for k in ticked if k not in present and k[0] != "w"}
    allowed = eligible_keys(session, activity, village_ids) if wanted_new else set()
    result.refused = sorted(k for k in wanted_new if k not in allowed)
    if strict and result.refused:
        raise InvalidInput(
            f"有{len(result.refused)}人不在您可签到的名单中（可能已迁出、已归档或不属于本活动的对象），"
            "这组签到未保存；请去掉这些人后重新提交"
        )
    to_add = sorted(wanted_new & allowed)
    to_remove = [present[k] for k in (shown & set(present)) - ticked]
    walk_rows = _walk_in_rows(session, activity, walk_ins, village_ids)
    rows = []
    for key in to_add:
        column = {"c": "child_id", "g": "guardian_id", "s": "staff_id"}[key[0]]
        rows.append(
            {
                "activity_id": activity.id,
                column: int(key[2:]),
                "signed_at": now,
                "recorded_by_id": recorded_by_id,
            }
        )
    for name, village_id in walk_rows:
        rows.append(
            {
                "activity_id": activity.id,
                "walk_in_name": name,
                "walk_in_village_id": village_id,
                "signed_at": now,
                "recorded_by_id": recorded_by_id,
            }
        )
    try:
        if to_remove:
            session.execute(delete(Attendance).where(Attendance.id.in_(to_remove)))
        if rows:
            session.execute(insert(Attendance), [_full_row(r) for r in rows])
        result.added = to_add + [f"临时:{n}" for n, _ in walk_rows]
        result.removed = sorted(k for k in (shown & set(present)) - ticked)
        if result.added or result.removed:
            audit.record(
                session,
                "update",
                table="attendance",
                record_id=activity.id,
                summary=f"{activity.title}：签到新增{len(result.added)}人，移除{len(result.removed)}人",
                changes={"added": result.added[:500], "removed": result.removed[:500]},
            )
        if commit:
            session.commit()
        else:
            session.flush()
    except IntegrityError:
        # Someone else signed the same person in a moment ago: nobody is signed in twice.
        if commit:
            session.rollback()
        raise InvalidInput("保存时发现有人刚刚被他人签到，请刷新页面后重新保存。") from None
    result.total = session.scalar(select(func.count()).where(Attendance.activity_id == activity.id))
    return result


def _full_row(row: dict) -> dict:
    base = {
        "child_id": None,
        "guardian_id": None,
        "staff_id": None,
        "walk_in_name": None,
        "walk_in_village_id": None,
    }
    base.update(row)
    return base


def _walk_in_rows(session, activity, walk_ins, village_ids):
    """Walk-ins to write: named, in a village the logger may see, not already signed in."""
    rows = []
    if not walk_ins:
        return rows
    names = {
        (a.walk_in_name, a.walk_in_village_id)
        for a in session.scalars(
            select(Attendance).where(
                Attendance.activity_id == activity.id, Attendance.walk_in_name.is_not(None)
            )
        )
    }
    for raw_name, village_id in walk_ins:
        name = clean_name(raw_name)
        if village_ids is not None:
            if village_id is None and len(village_ids) == 1:
                village_id = village_ids[0]
            if village_id not in village_ids:
                raise InvalidInput(f"临时签到“{name}”：只能登记本人负责村（社区）的人员")
        if (name, village_id) in names:
            continue
        names.add((name, village_id))
        rows.append((name, village_id))
    return rows


def find(entries: list[RollEntry], text: str) -> list[RollEntry]:
    """The roll entries matching what was typed: Chinese name, full pinyin, initials or ID last 4."""
    term = (text or "").strip().replace(" ", "")
    if not term:
        return list(entries)
    if len(term) == 4 and term[:3].isdigit() and (term[3].isdigit() or term[3] in "xX"):
        return [e for e in entries if e.id_last4.upper() == term.upper()]
    if term.isascii() and term.isalpha():
        term = term.lower()
        return [e for e in entries if e.initials.startswith(term) or e.pinyin.startswith(term)]
    return [e for e in entries if term in e.name]
