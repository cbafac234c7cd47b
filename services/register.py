"""Rules of the child register: ID-number checks against the record, duplicates, archive, restore."""

import datetime as dt

from choices import ChildStatus
from models import Child, Guardian, db, utcnow
from services import audit
from services.scoping import in_scope
from services.validation import (
    InvalidInput,
    birth_date_of,
    check_birth_date,
    check_gender,
    clean_id_number,
    gender_of,
)

DUPLICATE_ELSEWHERE = "该身份证号已在其他村（社区）登记，请联系镇民生服务办"


def check_child_identity(
    id_number: str,
    birth_date: dt.date | None,
    gender: str | None,
    *,
    child_id: int | None,
    village_ids,
) -> dict[str, str]:
    """Field → Chinese error for the identity fields of a child; empty when all is well."""
    errors: dict[str, str] = {}
    try:
        id_number = clean_id_number(id_number)
    except InvalidInput as bad:
        return {"id_number": str(bad)}
    try:
        check_birth_date(birth_date, id_number)
    except InvalidInput as bad:
        errors["birth_date"] = str(bad)
    try:
        check_gender(gender, id_number)
    except InvalidInput as bad:
        errors["gender"] = str(bad)
    other = db.session.scalar(
        db.select(Child).where(Child.id_number == id_number, Child.id != (child_id or 0))
    )
    if other is not None:
        if in_scope(other, village_ids):
            state = "（已归档）" if other.is_archived else ""
            errors["id_number"] = (
                f"该身份证号已登记：{other.name}（{other.village.name}）{state}，编号 {other.id}"
            )
        else:
            errors["id_number"] = DUPLICATE_ELSEWHERE
    return errors


def fill_from_id_number(child: Child) -> None:
    """Birth date and gender follow the ID number when they were left blank."""
    if not child.birth_date:
        child.birth_date = birth_date_of(child.id_number)
    if not child.gender:
        child.gender = gender_of(child.id_number)


def archive_child(child: Child, status: str, reason: str) -> None:
    status = ChildStatus(status)
    if status is ChildStatus.ACTIVE:
        raise InvalidInput("请选择归档原因类别（已结案、年满18周岁、迁出或死亡）")
    if not (reason or "").strip():
        raise InvalidInput("请填写归档说明")
    if child.is_archived:
        raise InvalidInput("该儿童已归档")
    from models import Transfer

    pending = db.session.scalar(
        db.select(Transfer.id).where(Transfer.child_id == child.id, Transfer.status == "pending")
    )
    if pending:
        raise InvalidInput("该儿童有待接收的转移，请先撤回转移或等待对方接收后再归档")
    audit.label_next_change(db.session, child, "archive")
    child.status = status.value
    child.archive_reason = reason.strip()[:200]
    child.archived_at = utcnow()


def restore_child(child: Child) -> None:
    if not child.is_archived:
        raise InvalidInput("该儿童未归档")
    if child.anonymised_at is not None:
        raise InvalidInput("该档案已匿名化，不能恢复")
    audit.label_next_change(db.session, child, "restore")
    child.status = ChildStatus.ACTIVE.value
    child.archived_at = None
    child.archive_reason = None


def note_guardian_status(guardian: Guardian, old_status: str | None, today: dt.date) -> None:
    """Remember when a guardian's status changed (the alert rules read it)."""
    if old_status != guardian.status:
        guardian.status_changed_on = today


__all__ = [
    "DUPLICATE_ELSEWHERE",
    "archive_child",
    "check_child_identity",
    "fill_from_id_number",
    "note_guardian_status",
    "restore_child",
]
