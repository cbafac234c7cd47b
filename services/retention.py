"""档案保存期限与匿名化: a closed file is kept for a set time, then its personal data is removed.

个人信息保护法 keeps personal information no longer than its purpose needs. A child's file is due when
``retention_years`` (系统设置, default 3) have passed since the child turned 18 or since the file was
archived, whichever came first. An admin sees the due files (档案到期) and anonymises them:

- the child: name → 某某, ID number → a placeholder that is unique and can never be a real number
  (``X`` + 17 digits of the child's id), birth date → 1 July of the birth year, address, school, notes
  removed; gender, village, categories, disability, levels and every dated record stay, so the counts
  and reports do not change;
- its guardians: those of no other child get the same treatment (name 某某, ID number, phone, address
  removed); a guardian shared with a sibling stays and the link to this child is removed;
- every record about the child: free text (visit notes, case plans, report situations …) removed and any
  remaining mention of the removed names, numbers and addresses replaced;
- its scans and photos (the child's, its visits', its cases', its consent forms) deleted from the
  storage once the change is committed; the rows go too;
- the audit log's lines about these records keep who did what and when, without the personal values.

Refused while the child is still in the register, or a case or an alert about it is open.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import JSON, String, Text, and_, func, or_, select, update

from choices import AlertStatus, CaseStage, ChildStatus
from models import (
    Alert,
    AlertStep,
    Attachment,
    AuditLog,
    Case,
    CaseConference,
    CaseEvent,
    Child,
    ChildGuardian,
    Consent,
    Setting,
    Transfer,
    TransferEvent,
    db,
    utcnow,
)
from services import attachments, audit
from services.scoping import scope
from services.validation import InvalidInput

SETTING_KEY = "retention_years"
DEFAULT_YEARS = 3
ANONYMOUS_NAME = "某某"
REMOVED = "（已匿名化）"
ADULT_AGE = 18
# Audit-log keys whose values are personal whatever the table.
PERSONAL_KEYS = {
    "name",
    "id_number",
    "phone",
    "address",
    "notes",
    "note",
    "school",
    "grade",
    "birth_date",
    "archive_reason",
    "reporter_name",
    "reporter_phone",
    "child_description",
    "situation",
    "first_response_note",
    "outcome_note",
    "detail",
    "result",
    "content",
    "outcome",
    "plan_goals",
    "plan_measures",
    "closure_reason",
    "closing_evaluation",
    "attendees",
    "decisions",
    "override_reason",
    "review_note",
    "given_by",
    "witness",
    "withdrawal_note",
    "reason",
    "handover_note",
    "decision_note",
    "referral",
    "other_office",
    "original_name",
    "purpose",
    "payee",
}


def retention_years() -> int:
    value = db.session.scalar(select(Setting.value).where(Setting.key == SETTING_KEY))
    try:
        years = int(str(value).strip())
    except (TypeError, ValueError):
        return DEFAULT_YEARS
    return min(max(years, 1), 30)


def check_setting(value: str) -> str:
    """A new value of the setting, checked (系统设置 edits it)."""
    try:
        years = int(str(value).strip())
    except (TypeError, ValueError):
        raise InvalidInput("档案保存年限须为整数（年）") from None
    if not 1 <= years <= 30:
        raise InvalidInput("档案保存年限须在1至30年之间")
    return str(years)


def seed_setting() -> None:
    if db.session.get(Setting, SETTING_KEY) is None:
        db.session.add(
            Setting(
                key=SETTING_KEY,
                value=str(DEFAULT_YEARS),
                label="档案保存年限（年）：自儿童年满18周岁或档案归档之日起（以先到者为准），期满可匿名化",
            )
        )


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _years_after(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def due_on(child: Child, years: int) -> dt.date | None:
    """When the file's retention ends: ``years`` after the 18th birthday or the archive date, the earlier."""
    starts = []
    if child.birth_date:
        starts.append(_years_after(child.birth_date, ADULT_AGE))
    if child.archived_at:
        starts.append(child.archived_at.date())
    return _years_after(min(starts), years) if starts else None


def due_clause(today: dt.date, years: int):
    """Children whose retention has ended by ``today`` (not yet anonymised)."""
    archived_before = dt.datetime.combine(_years_before(today, years) + dt.timedelta(days=1), dt.time.min)
    return and_(
        Child.anonymised_at.is_(None),
        or_(
            Child.archived_at < archived_before,
            Child.birth_date <= _years_before(today, ADULT_AGE + years),
        ),
    )


@dataclass
class DueFile:
    child: Child
    due: dt.date
    open_cases: int
    open_alerts: int

    @property
    def blocked(self) -> str | None:
        """Why it cannot be anonymised yet (None: it can)."""
        if not self.child.is_archived:
            return "仍在册，请先归档"
        reasons = []
        if self.open_cases:
            reasons.append(f"有 {self.open_cases} 个未结案个案")
        if self.open_alerts:
            reasons.append(f"有 {self.open_alerts} 条未办结预警")
        return "、".join(reasons) or None


def due_files(village_ids, today: dt.date, *, limit: int = 500) -> tuple[list[DueFile], int]:
    """档案到期: files past their retention, oldest due first, and how many there are."""
    years = retention_years()
    condition = due_clause(today, years)
    count = db.session.scalar(
        scope(select(func.count()).select_from(Child).where(condition), Child, village_ids)
    )
    children = list(
        db.session.scalars(
            scope(select(Child).where(condition), Child, village_ids)
            .order_by(Child.archived_at.is_(None), Child.archived_at, Child.birth_date)
            .limit(limit)
        )
    )
    ids = [c.id for c in children]
    cases = _open_counts(
        select(Case.child_id, func.count()).where(Case.stage != CaseStage.CLOSED.value), Case, ids
    )
    alerts = _open_counts(
        select(Alert.child_id, func.count()).where(Alert.status != AlertStatus.DONE.value), Alert, ids
    )
    files = [DueFile(c, due_on(c, years), cases.get(c.id, 0), alerts.get(c.id, 0)) for c in children]
    files.sort(key=lambda f: f.due)
    return files, count or 0


def _open_counts(stmt, model, ids) -> dict[int, int]:
    if not ids:
        return {}
    return dict(db.session.execute(stmt.where(model.child_id.in_(ids)).group_by(model.child_id)).all())


# --------------------------------------------------------------------------- anonymising


def placeholder_id_number(child_id: int) -> str:
    """Unique (one per child), 18 characters, and never a valid 身份证号 (those are digits, X last)."""
    return f"X{child_id:017d}"


def anonymise(child: Child, *, today: dt.date, reason: str = "") -> dict[str, int]:
    """Remove the child's personal data, keeping its statistics; the caller commits (storage follows)."""
    if child.anonymised_at is not None:
        raise InvalidInput("该档案已匿名化")
    if not child.is_archived:
        raise InvalidInput("在册儿童的档案不能匿名化，请先归档")
    open_cases = db.session.scalar(
        select(func.count()).where(Case.child_id == child.id, Case.stage != CaseStage.CLOSED.value)
    )
    open_alerts = db.session.scalar(
        select(func.count()).where(Alert.child_id == child.id, Alert.status != AlertStatus.DONE.value)
    )
    if open_cases or open_alerts:
        parts = []
        if open_cases:
            parts.append(f"{open_cases} 个个案未结案")
        if open_alerts:
            parts.append(f"{open_alerts} 条预警未办结")
        raise InvalidInput("不能匿名化：" + "、".join(parts) + "，请先办结")
    session = db.session
    cid = child.id
    counts: dict[str, int] = {}

    # what must not remain anywhere: the names, numbers and addresses of the child and its own guardians
    links = list(session.scalars(select(ChildGuardian).where(ChildGuardian.child_id == cid)))
    own_guardians, shared_links = [], []
    for link in links:
        others = session.scalar(
            select(func.count())
            .select_from(ChildGuardian)
            .where(ChildGuardian.guardian_id == link.guardian_id, ChildGuardian.child_id != cid)
        )
        (shared_links if others else own_guardians).append(link)
    tokens = _tokens(child, [link.guardian for link in own_guardians])

    # records about the child, found before anything changes (the audit lines are found through them)
    tied = _tied_records(cid, [link.guardian_id for link in own_guardians], [link.id for link in links])

    # 1. stored scans and photos: rows now, bytes after the commit
    stored = list(
        session.scalars(
            select(Attachment).where(
                or_(
                    and_(Attachment.owner_kind == "child", Attachment.owner_id == cid),
                    and_(Attachment.owner_kind == "visit", Attachment.owner_id.in_(tied["visit"])),
                    and_(Attachment.owner_kind == "case", Attachment.owner_id.in_(tied["case_file"])),
                )
            )
        )
    )
    session.execute(
        update(Consent)
        .where(Consent.form_attachment_id.in_([a.id for a in stored] or [0]))
        .values(form_attachment_id=None)
    )
    counts["附件"] = attachments.purge(stored)

    # 2. the records: free text removed, remaining mentions replaced
    counts["记录"] = _scrub_child_rows(cid, tied, tokens)

    # 3. guardians of no other child are anonymised; links to shared ones removed
    for link in own_guardians:
        guardian = link.guardian
        guardian.name = ANONYMOUS_NAME
        guardian.id_number = None
        guardian.phone = None
        guardian.address = None
        guardian.notes = None
    for link in shared_links:
        session.delete(link)
    counts["监护人"] = len(own_guardians)
    counts["共用监护人（解除关联）"] = len(shared_links)

    # 4. the child
    audit.label_next_change(session, child, "anonymise")
    child.name = ANONYMOUS_NAME
    child.id_number = placeholder_id_number(cid)
    if child.birth_date:
        child.birth_date = dt.date(child.birth_date.year, 7, 1)
    child.address = None
    child.school = None
    child.grade = None
    child.notes = None
    child.archive_reason = f"{ChildStatus.label_of(child.status)}{REMOVED}"
    child.anonymised_at = utcnow()
    session.flush()

    # 5. the audit log keeps who and when, not the personal values
    counts["日志"] = _scrub_audit(tied, tokens)
    audit.record(
        session,
        "anonymise",
        table="child",
        record_id=cid,
        summary=f"档案匿名化：编号 {cid}"
        + (f"（{reason.strip()[:100]}）" if reason and reason.strip() else ""),
        changes={"counts": counts, "retention_years": retention_years(), "on": today.isoformat()},
    )
    session.flush()
    return counts


def _tokens(child: Child, guardians) -> list[str]:
    values = {child.name, child.id_number, child.address}
    for guardian in guardians:
        values.update({guardian.name, guardian.id_number, guardian.phone, guardian.address})
    # the longest first, so a name inside an address does not split the address
    return sorted(
        (v.strip() for v in values if v and len(v.strip()) >= 2 and v.strip() != ANONYMOUS_NAME),
        key=len,
        reverse=True,
    )


def _child_models() -> list:
    """Every mapped model with a child_id column (other areas' tables included)."""
    models = []
    for mapper in db.Model.registry.mappers:
        cls = mapper.class_
        if "child_id" in mapper.columns and cls is not Child:
            models.append(cls)
    return sorted(models, key=lambda m: m.__tablename__)


def _tied_records(cid: int, guardian_ids, link_ids) -> dict[str, list[int]]:
    """Table name → ids of the rows about this child (for the scrub and the audit log)."""
    tied: dict[str, list[int]] = {
        "child": [cid],
        "guardian": list(guardian_ids),
        "child_guardian": list(link_ids),
    }
    for model in _child_models():
        if model is ChildGuardian:
            continue
        tied[model.__tablename__] = list(db.session.scalars(select(model.id).where(model.child_id == cid)))
    tied.setdefault("visit", [])
    tied.setdefault("case_file", [])
    tied["alert_step"] = list(
        db.session.scalars(select(AlertStep.id).where(AlertStep.alert_id.in_(tied.get("alert", []) or [0])))
    )
    tied["case_event"] = list(
        db.session.scalars(select(CaseEvent.id).where(CaseEvent.case_id.in_(tied["case_file"] or [0])))
    )
    tied["case_conference"] = list(
        db.session.scalars(
            select(CaseConference.id).where(CaseConference.case_id.in_(tied["case_file"] or [0]))
        )
    )
    tied["attachment"] = list(
        db.session.scalars(
            select(Attachment.id).where(
                or_(
                    and_(Attachment.owner_kind == "child", Attachment.owner_id == cid),
                    and_(Attachment.owner_kind == "visit", Attachment.owner_id.in_(tied["visit"] or [0])),
                    and_(Attachment.owner_kind == "case", Attachment.owner_id.in_(tied["case_file"] or [0])),
                )
            )
        )
    )
    return tied


# Columns that stay as they are: identifiers, choices, dates and amounts carry no personal text.
_KEEP_TEXT = {"other_town"}


def _scrub_child_rows(cid: int, tied: dict[str, list[int]], tokens: list[str]) -> int:
    session = db.session
    changed = 0
    targets = [(model, model.child_id == cid) for model in _child_models() if model is not ChildGuardian]
    targets += [
        (AlertStep, AlertStep.id.in_(tied["alert_step"] or [0])),
        (CaseEvent, CaseEvent.id.in_(tied["case_event"] or [0])),
        (CaseConference, CaseConference.id.in_(tied["case_conference"] or [0])),
    ]
    for model, where in targets:
        table = model.__table__
        values = {}
        for column in table.columns:
            if column.name in _KEEP_TEXT or column.foreign_keys or column.primary_key:
                continue
            if isinstance(column.type, Text):
                values[column.name] = None if column.nullable else REMOVED
            elif isinstance(column.type, JSON) and column.name == "open_items":
                values[column.name] = []
            elif column.name in PERSONAL_KEYS and isinstance(column.type, String) and column.nullable:
                values[column.name] = None  # a reporter's name and phone, a witness …
        if values:
            changed += session.execute(update(model).where(where).values(**values)).rowcount
        # what is left (short texts: titles, payees, names given on a consent) loses the personal values
        for column in table.columns:
            if column.name in values or column.foreign_keys or column.primary_key:
                continue
            if isinstance(column.type, String) and not isinstance(column.type, Text):
                for token in tokens:
                    session.execute(
                        update(model)
                        .where(where, column.contains(token, autoescape=True))
                        .values({column.name: func.replace(column, token, ANONYMOUS_NAME)})
                    )
    # the people named on consents and transfers
    session.execute(
        update(Consent)
        .where(Consent.child_id == cid)
        .values(given_by=ANONYMOUS_NAME, guardian_id=None, witness=None, note=None, withdrawal_note=None)
    )
    session.execute(
        update(Transfer)
        .where(Transfer.child_id == cid)
        .values(
            other_office=None,
            reason=None,
            handover_note=None,
            decision_note=None,
            referral=None,
            open_items=[],
        )
    )
    session.execute(update(TransferEvent).where(TransferEvent.child_id == cid).values(note=None))
    return changed


def _scrub_audit(tied: dict[str, list[int]], tokens: list[str]) -> int:
    session = db.session
    scrubbed = 0
    for table, ids in tied.items():
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = session.scalars(
                select(AuditLog).where(AuditLog.table_name == table, AuditLog.record_id.in_(chunk))
            ).all()
            for row in rows:
                row.summary = _replace(row.summary, tokens) if table != "attachment" else "附件（已匿名化）"
                row.changes = _clean_changes(row.changes, tokens)
                scrubbed += 1
    session.flush()
    return scrubbed


def _replace(text: str | None, tokens: list[str]) -> str | None:
    if not text:
        return text
    for token in tokens:
        text = text.replace(token, ANONYMOUS_NAME)
    return text


def _clean_changes(changes, tokens: list[str]):
    if not changes:
        return changes
    cleaned = {}
    for key, value in changes.items():
        if key in PERSONAL_KEYS:
            cleaned[key] = [REMOVED, REMOVED] if isinstance(value, list) and len(value) == 2 else REMOVED
        else:
            cleaned[key] = json.loads(_replace(json.dumps(value, ensure_ascii=False), tokens))
    return cleaned


__all__ = [
    "ANONYMOUS_NAME",
    "DEFAULT_YEARS",
    "DueFile",
    "anonymise",
    "check_setting",
    "due_clause",
    "due_files",
    "due_on",
    "placeholder_id_number",
    "retention_years",
    "seed_setting",
]
