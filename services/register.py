"""Rules of the child register: ID-number checks against the record, duplicates, archive, restore.

The register's history is kept: the registration date (登记日期) on the child, and every archive
and restore as a ChildStatusChange, so 在册 on a past date can be read back (services/indicators.py).
"""

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import event, select
from sqlalchemy.orm import Session
from stdnum import numdb

from choices import AlertClosure, AlertStatus, ChildStatus, Gender, ServiceStatus
from models import Alert, AlertStep, Child, ChildStatusChange, Guardian, SupportService, db
from services import audit, clock
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
                f"该身份证号已登记：{other.name}（{other.village.name}）{state}，档案编号 {other.file_no}"
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


def check_registered_on(registered_on: dt.date | None, birth_date: dt.date | None, today: dt.date) -> None:
    if registered_on is None:
        return
    if registered_on > today:
        raise InvalidInput("登记日期不能晚于今天")
    if birth_date and registered_on < birth_date:
        raise InvalidInput("登记日期不能早于出生日期")


@event.listens_for(Session, "before_flush")
def _registration_date(session, flush_context, instances):
    """A child entered without a registration date is registered today (forms, imports, merges alike)."""
    for obj in session.new:
        if isinstance(obj, Child) and obj.registered_on is None:
            obj.registered_on = clock.today()


@dataclass(frozen=True)
class Archived:
    """What archiving did besides the status: planned measures cancelled, open alerts withdrawn."""

    change: ChildStatusChange
    measures_cancelled: int
    alerts_closed: int


def archive_child(
    child: Child, status: str, reason: str, *, now: dt.datetime | None = None, user_id: int | None = None
) -> Archived:
    """Take a child out of the register. Its planned measures are cancelled and its open alerts
    closed as withdrawn, each with the reason (the rows stay, with their history)."""
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
    now = now or clock.now()
    reason = reason.strip()[:200]
    audit.label_next_change(db.session, child, "archive")
    child.status = status.value
    child.archive_reason = reason
    child.archived_at = now
    why = f"儿童已归档（{status.label}）：{reason}"[:200]
    measures = settle_on_archive(child.id, why, now=now, user_id=user_id)
    return Archived(_record(child, status.value, reason, now, user_id, *measures), *measures)


def settle_on_archive(child_id: int, why: str, *, now: dt.datetime, user_id: int | None) -> tuple[int, int]:
    """Cancel the child's planned measures and withdraw its open alerts; (measures, alerts)."""
    services = db.session.scalars(
        select(SupportService).where(
            SupportService.child_id == child_id, SupportService.status == ServiceStatus.PLANNED.value
        )
    ).all()
    for service in services:
        service.status = ServiceStatus.CANCELLED.value
        service.cancelled_at = now
        service.cancel_reason = why
    alerts = db.session.scalars(
        select(Alert).where(Alert.child_id == child_id, Alert.status != AlertStatus.DONE.value)
    ).all()
    for alert in alerts:
        alert.status = AlertStatus.DONE.value
        alert.closed_at = now
        alert.closure = AlertClosure.WITHDRAWN.value
        alert.result = why
        db.session.add(AlertStep(alert_id=alert.id, at=now, user_id=user_id, note=f"办结（撤销）：{why}"))
    return len(services), len(alerts)


def restore_child(
    child: Child, *, now: dt.datetime | None = None, user_id: int | None = None
) -> ChildStatusChange | None:
    """Bring a child back to the register. What the archive cancelled stays cancelled: the archive's
    record (returned) says how many measures and alerts, so the user can plan them again."""
    if not child.is_archived:
        raise InvalidInput("该儿童未归档")
    if child.anonymised_at is not None:
        raise InvalidInput("该档案已匿名化，不能恢复")
    archived = last_archive(child.id)
    audit.label_next_change(db.session, child, "restore")
    child.status = ChildStatus.ACTIVE.value
    child.archived_at = None
    child.archive_reason = None
    _record(child, ChildStatus.ACTIVE.value, None, now or clock.now(), user_id)
    return archived


def last_archive(child_id: int) -> ChildStatusChange | None:
    return db.session.scalar(
        select(ChildStatusChange)
        .where(ChildStatusChange.child_id == child_id, ChildStatusChange.status != ChildStatus.ACTIVE.value)
        .order_by(ChildStatusChange.at.desc(), ChildStatusChange.id.desc())
        .limit(1)
    )


def record_status_change(
    child: Child, status: str, reason: str | None, *, now: dt.datetime, user_id: int | None = None
) -> ChildStatusChange:
    """The history row of an archive or restore made elsewhere (merging duplicates)."""
    return _record(child, status, reason, now, user_id)


def _record(child, status, reason, now, user_id, measures=0, alerts=0) -> ChildStatusChange:
    child.status_changed_at = now
    change = ChildStatusChange(
        child_id=child.id,
        at=now,
        status=status,
        reason=reason,
        user_id=user_id,
        measures_cancelled=measures,
        alerts_closed=alerts,
    )
    db.session.add(change)
    return change


def note_guardian_status(guardian: Guardian, old_status: str | None, today: dt.date) -> None:
    """Remember when a guardian's status changed (the alert rules read it)."""
    if old_status != guardian.status:
        guardian.status_changed_on = today


__all__ = [
    "DUPLICATE_ELSEWHERE",
    "Archived",
    "archive_child",
    "check_child_identity",
    "check_registered_on",
    "last_archive",
    "record_status_change",
    "fill_from_id_number",
    "note_guardian_status",
    "read_id_number",
    "restore_child",
]
