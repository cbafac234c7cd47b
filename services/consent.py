"""告知同意: guardians' consent to the programme's use of a child's personal information, by purpose.

个人信息保护法 asks a guardian's consent to handle the personal information of a child under 14 (a
child of 14 or more may consent in person), separately for each purpose. Three purposes here
(``ConsentScope``): 建档与评估, 与学校/卫生院/141平台共享, 照片使用与宣传. A scope is consented for a
child while one of its records stands (not withdrawn). Withdrawing withdraws the scope: every standing
record of it ends on the withdrawal date.

Where 照片使用与宣传 is not consented, the child's photos never leave the system: the one gate is
``services.attachments.exportable``, which reads ``consented_children`` below.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, case, exists, func, inspect, or_, select

from choices import ConsentMethod, ConsentScope
from models import Attachment, Child, ChildGuardian, Consent, Guardian, db
from services import audit
from services.derived import derive, stale_ids, write_changed
from services.scoping import scope
from services.validation import InvalidInput

SELF = "self"
SELF_LABEL = "本人"
SELF_CONSENT_AGE = 14


def age_on(birth_date: dt.date, day: dt.date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def under_14_born_after(day: dt.date) -> dt.date:
    """Children born after this date are under 14 on ``day``."""
    try:
        return day.replace(year=day.year - SELF_CONSENT_AGE)
    except ValueError:  # 29 February
        return day.replace(year=day.year - SELF_CONSENT_AGE, day=28)


def standing(scope_value: str, on: dt.date | None = None):
    """The SQL condition of a consent record of this scope standing on ``on`` (None: now)."""
    condition = Consent.scope == scope_value
    if on is None:
        return and_(condition, Consent.withdrawn_on.is_(None))
    return and_(
        condition,
        Consent.given_on <= on,
        or_(Consent.withdrawn_on.is_(None), Consent.withdrawn_on > on),
    )


def has_consent_clause(scope_value: str, on: dt.date | None = None):
    """A condition on Child: the scope is consented for the child."""
    return exists().where(Consent.child_id == Child.id, standing(scope_value, on))


def consented_ids(scope_value: str, on: dt.date | None = None):
    """A select of the ids of the children for whom the scope is consented (for ``Child.id.in_``
    over the whole register: read once, where ``has_consent_clause`` looks each child up)."""
    return select(Consent.child_id).where(standing(scope_value, on))


def consented_children(scope_value: str, child_ids, on: dt.date | None = None) -> set[int]:
    """Of these children, those for whom the scope is consented."""
    ids = list({int(i) for i in child_ids})
    found: set[int] = set()
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        found.update(
            db.session.scalars(
                select(Consent.child_id)
                .where(Consent.child_id.in_(chunk), standing(scope_value, on))
                .distinct()
            )
        )
    return found


# --------------------------------------------------------------------------- Child.filing_consent
#
# The 建档与评估 consent's state now, kept on the child so the 工作台's consent figures are counted from
# the register's covering index instead of looking every child up in the consent table. Derived from
# the consent rows and written only here: after every ORM flush that touched a consent (through
# services/derived.py), and by the bulk writes that bypass the ORM (the demo data), which call
# ``refresh``. A record stands now when it is not withdrawn: neither its date nor its withdrawal date
# can be later than the day it is entered (``record`` and ``withdraw`` refuse that), so no standing
# changes with the clock alone. Figures for a past date read the consent rows as of that date.

_child = Child.__table__
_consent = Consent.__table__


def _filing_consent_now():
    standing_now = exists().where(
        _consent.c.child_id == _child.c.id,
        _consent.c.scope == ConsentScope.FILING.value,
        _consent.c.withdrawn_on.is_(None),
    )
    return case((standing_now, True), else_=False)


def refresh(connection, child_ids=None) -> None:
    """Recompute ``Child.filing_consent`` of these children (all when None); only changed rows are
    written (``services.derived.write_changed``: no version bump, no audit row)."""
    write_changed(connection, "filing_consent", _filing_consent_now(), child_ids)


def stale_children(connection) -> list[int]:
    """Ids of children whose flag disagrees with their consent rows (empty when all is well)."""
    return stale_ids(connection, "filing_consent", _filing_consent_now())


def _touched_children(session) -> set[int]:
    ids: set[int] = set()
    for obj in session.new | session.dirty | session.deleted:
        if isinstance(obj, Consent):
            ids.add(obj.child_id)
            ids.update(inspect(obj).attrs.child_id.history.deleted or ())  # a record moved to another child
    return ids


derive("filing_consent", _touched_children, refresh)


# --------------------------------------------------------------------------- one child's state


@dataclass
class ScopeState:
    scope: ConsentScope
    standing: list  # the records that stand now
    withdrawn: Consent | None  # the latest withdrawn record, when nothing stands

    @property
    def given(self) -> bool:
        return bool(self.standing)

    @property
    def label(self) -> str:
        if self.standing:
            return "已同意"
        return "已撤回" if self.withdrawn else "未取得"


def records_of(child_id: int) -> list[Consent]:
    return list(
        db.session.scalars(
            select(Consent)
            .where(Consent.child_id == child_id)
            .order_by(Consent.given_on.desc(), Consent.id.desc())
        )
    )


def states(child_id: int, records: list[Consent] | None = None) -> list[ScopeState]:
    records = records_of(child_id) if records is None else records
    result = []
    for scope_choice in ConsentScope:
        mine = [r for r in records if r.scope == scope_choice.value]
        stand = [r for r in mine if r.withdrawn_on is None]
        withdrawn = None if stand else next((r for r in mine if r.withdrawn_on is not None), None)
        result.append(ScopeState(scope_choice, stand, withdrawn))
    return result


def givers(child: Child, day: dt.date) -> list[tuple[str, str]]:
    """Who may give consent for this child: its guardians, and the child itself from 14."""
    links = db.session.execute(
        select(Guardian.id, Guardian.name, ChildGuardian.relation)
        .join(ChildGuardian, ChildGuardian.guardian_id == Guardian.id)
        .where(ChildGuardian.child_id == child.id)
        .order_by(ChildGuardian.is_primary.desc(), ChildGuardian.id)
    ).all()
    from choices import Relation

    options = [(f"g{gid}", f"{name}（{Relation.label_of(relation)}）") for gid, name, relation in links]
    if child.birth_date and age_on(child.birth_date, day) >= SELF_CONSENT_AGE:
        options.append((SELF, f"{SELF_LABEL}（年满14周岁）"))
    return options


# --------------------------------------------------------------------------- recording


def record(
    child: Child,
    scopes,
    giver: str,
    given_on: dt.date | None,
    method: str,
    *,
    today: dt.date,
    witness: str | None = None,
    note: str | None = None,
    form: Attachment | None = None,
) -> list[Consent]:
    """Record one guardian's consent to one or more scopes (one signed form). The caller commits."""
    if child.anonymised_at is not None:
        raise InvalidInput("该档案已匿名化，不能再登记告知同意")
    chosen = []
    for value in scopes or []:
        try:
            chosen.append(ConsentScope(value))
        except ValueError:
            raise InvalidInput("同意事项无效") from None
    if not chosen:
        raise InvalidInput("请勾选监护人同意的事项")
    if given_on is None:
        raise InvalidInput("请填写同意日期")
    if given_on > today:
        raise InvalidInput("同意日期不能晚于今天")
    if child.birth_date and given_on < child.birth_date:
        raise InvalidInput("同意日期不能早于儿童出生日期")
    try:
        method = ConsentMethod(method)
    except ValueError:
        raise InvalidInput("请选择同意方式（书面，或口头并有见证人）") from None
    witness = (witness or "").strip()[:50] or None
    if method is ConsentMethod.ORAL and not witness:
        raise InvalidInput("口头同意须填写见证人姓名")
    guardian_id, given_by = _giver(child, giver, given_on)
    created = []
    for scope_choice in chosen:
        duplicate = db.session.scalar(
            select(Consent.id).where(
                Consent.child_id == child.id,
                Consent.scope == scope_choice.value,
                Consent.given_by == given_by,
                Consent.given_on == given_on,
                Consent.withdrawn_on.is_(None),
            )
        )
        if duplicate:
            raise InvalidInput(
                f"“{scope_choice.label}”已登记过 {given_by} 于 {given_on} 的同意，无需重复登记"
            )
        consent = Consent(
            child_id=child.id,
            scope=scope_choice.value,
            guardian_id=guardian_id,
            given_by=given_by,
            given_on=given_on,
            method=method.value,
            witness=witness,
            form_attachment_id=form.id if form is not None else None,
            note=(note or "").strip()[:200] or None,
            recorded_by_id=audit.current_actor().user_id,
        )
        db.session.add(consent)
        created.append(consent)
    db.session.flush()
    return created


def _giver(child: Child, giver: str, given_on: dt.date) -> tuple[int | None, str]:
    if giver == SELF:
        if not child.birth_date or age_on(child.birth_date, given_on) < SELF_CONSENT_AGE:
            raise InvalidInput("不满14周岁的儿童须由监护人同意")
        return None, SELF_LABEL
    try:
        guardian_id = int(str(giver).removeprefix("g"))
    except ValueError:
        raise InvalidInput("请选择作出同意的监护人") from None
    name = db.session.scalar(
        select(Guardian.name)
        .join(ChildGuardian, ChildGuardian.guardian_id == Guardian.id)
        .where(ChildGuardian.child_id == child.id, Guardian.id == guardian_id)
    )
    if name is None:
        raise InvalidInput("请选择该儿童已登记的监护人（新监护人请先在儿童档案中登记）")
    return guardian_id, name


def withdraw(consent: Consent, on: dt.date | None, note: str | None, *, today: dt.date) -> list[Consent]:
    """Withdraw the consent's scope for its child from ``on``: every standing record of it ends."""
    if consent.withdrawn_on is not None:
        raise InvalidInput("该同意已撤回")
    if on is None:
        raise InvalidInput("请填写撤回日期")
    if on > today:
        raise InvalidInput("撤回日期不能晚于今天")
    if on < consent.given_on:
        raise InvalidInput(f"撤回日期不能早于同意日期（{consent.given_on}）")
    note = (note or "").strip()
    if not note:
        raise InvalidInput("请填写撤回说明（谁、以何种方式提出撤回）")
    ended = list(
        db.session.scalars(
            select(Consent).where(
                Consent.child_id == consent.child_id,
                Consent.scope == consent.scope,
                Consent.withdrawn_on.is_(None),
            )
        )
    )
    for row in ended:
        row.withdrawn_on = max(on, row.given_on)
        row.withdrawal_note = note[:200]
    db.session.flush()
    return ended


# --------------------------------------------------------------------------- lists


def missing_filing_under_14(
    village_ids, today: dt.date, *, limit: int | None = 200, count: bool = True, sample: bool = False
):
    """Children in the register, under 14 today, without a standing 建档与评估 consent (and how many;
    None when ``count`` is False: the 工作台 has the figure from its indicator). By village and age;
    ``sample``: the earliest filed instead, read in file order so the scan stops at ``limit``."""
    condition = and_(
        Child.registered_on <= today,  # in register, as the indicator counts them
        Child.archived_at.is_(None),
        Child.birth_date > under_14_born_after(today),
        ~has_consent_clause(ConsentScope.FILING.value),
    )
    total = None
    if count:
        total = (
            db.session.scalar(
                scope(select(func.count()).select_from(Child).where(condition), Child, village_ids)
            )
            or 0
        )
    stmt = scope(select(Child).where(condition), Child, village_ids).order_by(
        *((Child.id,) if sample else (Child.village_id, Child.birth_date))
    )
    if limit:
        stmt = stmt.limit(limit)
    return list(db.session.scalars(stmt)), total


__all__ = [
    "SELF",
    "ScopeState",
    "age_on",
    "consented_children",
    "consented_ids",
    "givers",
    "has_consent_clause",
    "missing_filing_under_14",
    "record",
    "records_of",
    "standing",
    "states",
    "withdraw",
]
