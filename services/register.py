"""Rules of the child register: ID-number checks against the record, duplicates, archive, restore."""

import datetime as dt
import re
import unicodedata

from stdnum import numdb

from choices import ChildStatus, Gender
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


def region_of(id_number: str) -> str | None:
    """重庆市涪陵区 for 500102…: the province and county of the first 6 digits (None if unknown)."""
    parts = [props for _, props in numdb.get("cn/loc").info(id_number[:6]) if props]
    if len(parts) < 2:
        return None
    names = [re.sub(r"^\[[^\]]*\]", "", value) for props in parts for value in props.values()]
    return "".join(dict.fromkeys(names))


def age_on(birth: dt.date, today: dt.date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def read_id_number(text: str, today: dt.date, *, child_id: int | None, village_ids) -> dict:
    """What the registration form says about a 身份证号 while it is being typed: the region once 6
    digits are in, the birth date once 14 are, and at 18 the full check (check digit, date, region,
    already registered). The same rules decide when the form is saved; this only says them early.

    Returns state ("typing", "ok" or "error"), a Chinese message, and what the number tells:
    region, birth date (ISO), gender (M/F and its label) and age in whole years."""
    raw = unicodedata.normalize("NFKC", text or "").strip().replace(" ", "").upper()
    answer: dict = {"state": "typing", "message": "", "region": None}
    if not raw:
        return {**answer, "message": "请输入18位身份证号"}
    if not re.fullmatch(r"\d{0,17}[\dX]?", raw) or "X" in raw[:-1]:
        return {**answer, "state": "error", "message": "身份证号只能由数字组成，最后一位可以是X"}
    if len(raw) > 18:
        return {**answer, "state": "error", "message": f"身份证号应为18位，当前为{len(raw)}位"}
    if len(raw) >= 6:
        answer["region"] = region_of(raw)
        if answer["region"] is None:
            return {**answer, "state": "error", "message": "身份证号前6位不是有效的行政区划代码"}
    if len(raw) >= 14:
        try:
            born = dt.datetime.strptime(raw[6:14], "%Y%m%d").date()
        except ValueError:
            return {**answer, "state": "error", "message": "身份证号中的出生日期（第7-14位）无效"}
        if born > today or born.year < 1900:
            return {**answer, "state": "error", "message": "身份证号中的出生日期晚于今天或早于1900年"}
        answer.update(birth_date=born.isoformat(), age=age_on(born, today))
    if len(raw) < 18:
        return {**answer, "message": f"已输入{len(raw)}位，共18位"}
    errors = check_child_identity(raw, None, None, child_id=child_id, village_ids=village_ids)
    if "id_number" in errors:
        return {**answer, "state": "error", "message": errors["id_number"]}
    gender = gender_of(raw)
    return {
        **answer,
        "state": "ok",
        "message": "身份证号有效",
        "gender": gender,
        "gender_label": Gender.label_of(gender),
    }


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
    audit.label_next_change(db.session, child, "archive")
    child.status = status.value
    child.archive_reason = reason.strip()[:200]
    child.archived_at = utcnow()


def restore_child(child: Child) -> None:
    if not child.is_archived:
        raise InvalidInput("该儿童未归档")
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
    "read_id_number",
    "restore_child",
]
