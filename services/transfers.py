"""迁出/迁入: a child's file moving with the child.

- Within the town (``start`` → ``accept`` / ``give_back`` / ``cancel``): the clerk or the sending
  village's director starts a transfer with a reason and a handover note; the child's open work (open
  alerts, open cases, measures not yet delivered) is listed and must be acknowledged. Until the
  receiving village accepts, the child stays with the sending village. Acceptance moves the child
  (``Child.village_id``) — and with it every record scoped through the child — and also the rows that
  carry a village of their own for this child (alerts, mandatory reports) and the guardians no other
  child of the sending village shares. The receiving village's director decides; the clerk or an admin
  decides only for a village without an active director account.
- Out of the town (``move_out``): the file is archived as 迁出 with the destination; a 转介函
  (``referral_letter``) carries what the next town needs, the ID number masked unless the clerk asks
  for it with a stated purpose.
- Into the town (``record_in``): the registration records the source town and the referral.

Every step is a TransferEvent (on the dossier's timeline) and a line in the audit log.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import exists, func, select, update

from choices import (
    AlertStatus,
    CaseStage,
    ChildStatus,
    Level,
    Relation,
    Role,
    ServiceKind,
    ServiceStatus,
    Severity,
    StaffKind,
    TransferAction,
    TransferKind,
    TransferStatus,
)
from models import (
    Alert,
    Assessment,
    Case,
    Child,
    ChildGuardian,
    Guardian,
    Staff,
    SupportService,
    Transfer,
    TransferEvent,
    User,
    Village,
    db,
    utcnow,
)
from services import audit, follow_child
from services.follow_child import moved_with_child
from services.register import archive_child
from services.validation import InvalidInput, mask_id_number

TOWN_ROLES = {Role.ADMIN.value, Role.CLERK.value}


# --------------------------------------------------------------------------- open work


def open_items(child_id: int) -> list[str]:
    """The child's open work that travels with it: open alerts, open cases, measures not delivered."""
    items = []
    for title, severity, status, deadline in db.session.execute(
        select(Alert.title, Alert.severity, Alert.status, Alert.deadline)
        .where(Alert.child_id == child_id, Alert.status != AlertStatus.DONE.value)
        .order_by(Alert.deadline)
    ):
        items.append(
            f"预警：{title}（{Severity.label_of(severity)}色，{AlertStatus.label_of(status)}，"
            f"处置期限 {deadline:%Y-%m-%d}）"
        )
    for case_id, stage, opened_on in db.session.execute(
        select(Case.id, Case.stage, Case.opened_on)
        .where(Case.child_id == child_id, Case.stage != CaseStage.CLOSED.value)
        .order_by(Case.opened_on)
    ):
        items.append(f"个案 {case_id}：{CaseStage.label_of(stage)}阶段（{opened_on} 立案）")
    for kind, due_on in db.session.execute(
        select(SupportService.kind, SupportService.due_on)
        .where(SupportService.child_id == child_id, SupportService.status == ServiceStatus.PLANNED.value)
        .order_by(SupportService.due_on.nulls_last())
    ):
        items.append(
            f"待落实赋能服务：{ServiceKind.label_of(kind)}" + (f"（应于 {due_on} 前）" if due_on else "")
        )
    return items


def pending_of(child_id: int) -> Transfer | None:
    return db.session.scalar(
        select(Transfer).where(Transfer.child_id == child_id, Transfer.status == TransferStatus.PENDING.value)
    )


def pending_incoming(village_ids) -> int:
    """Transfers waiting for the user's villages to accept them (the whole town: every pending one)."""
    stmt = (
        select(db.func.count()).select_from(Transfer).where(Transfer.status == TransferStatus.PENDING.value)
    )
    if village_ids is not None:
        stmt = stmt.where(Transfer.to_village_id.in_(village_ids or [0]))
    return db.session.scalar(stmt) or 0


def _event(transfer: Transfer, action: TransferAction, note: str | None = None) -> TransferEvent:
    event = TransferEvent(
        transfer=transfer,
        child_id=transfer.child_id,
        at=utcnow(),
        user_id=audit.current_actor().user_id,
        action=action.value,
        from_village_id=transfer.from_village_id,
        to_village_id=transfer.to_village_id,
        note=(note or None),
    )
    db.session.add(event)
    return event


def _text(value, limit=2000) -> str:
    return (value or "").strip()[:limit]


def _village_name(village_id) -> str:
    return db.session.scalar(select(Village.name).where(Village.id == village_id)) or ""


def _check_movable(child: Child) -> None:
    if child.anonymised_at is not None:
        raise InvalidInput("该档案已匿名化，不能转移")
    if child.is_archived:
        raise InvalidInput("该儿童已归档，请先恢复后再办理转移")
    if pending_of(child.id) is not None:
        raise InvalidInput("该儿童已有待接收的转移，请等待对方接收，或先撤回")


def _acknowledged(child: Child, acknowledged: bool) -> list[str]:
    items = open_items(child.id)
    if items and not acknowledged:
        raise InvalidInput(f"该儿童有 {len(items)} 项未结事项，请逐项核对并勾选“已知悉，随档移交”")
    return items


# --------------------------------------------------------------------------- within the town


def may_start(child: Child, role: str, user_village_id: int | None) -> bool:
    """The clerk (or an admin) for any child; a director for a child of their own village."""
    if role in TOWN_ROLES:
        return True
    return role == Role.DIRECTOR.value and child.village_id == user_village_id


def start(
    child: Child,
    to_village_id,
    reason: str,
    handover_note: str,
    acknowledged: bool,
    *,
    role: str,
    user_village_id: int | None,
) -> Transfer:
    """发起转移 to another village of the town; the child stays here until the other side accepts."""
    if not may_start(child, role, user_village_id):
        raise InvalidInput("只有镇民生服务办经办人或本村（社区）儿童主任可以发起转移")
    _check_movable(child)
    try:
        to_village_id = int(to_village_id)
    except (TypeError, ValueError):
        raise InvalidInput("请选择接收的村（社区）") from None
    if db.session.get(Village, to_village_id) is None:
        raise InvalidInput("请选择接收的村（社区）")
    if to_village_id == child.village_id:
        raise InvalidInput("接收村（社区）与儿童现在所在的村（社区）相同")
    reason = _text(reason)
    if not reason:
        raise InvalidInput("请填写转移原因（如：随监护人搬迁至…）")
    items = _acknowledged(child, acknowledged)
    transfer = Transfer(
        child_id=child.id,
        kind=TransferKind.WITHIN.value,
        status=TransferStatus.PENDING.value,
        from_village_id=child.village_id,
        to_village_id=to_village_id,
        reason=reason,
        handover_note=_text(handover_note) or None,
        open_items=items,
        started_by_id=audit.current_actor().user_id,
        started_at=utcnow(),
    )
    db.session.add(transfer)
    _event(transfer, TransferAction.START, reason)
    db.session.flush()
    audit.record(
        db.session,
        "transfer",
        table="child",
        record_id=child.id,
        summary=f"发起转移：{child.name} 从 {_village_name(child.village_id)} 转至 {_village_name(to_village_id)}",
        changes={"transfer_id": transfer.id, "open_items": len(items)},
    )
    return transfer


def receiving_director_exists(village_id: int) -> bool:
    return bool(
        db.session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == Role.DIRECTOR.value, User.village_id == village_id, User.active.is_(True))
        )
    )


def may_decide(transfer: Transfer, role: str, user_village_id: int | None) -> bool:
    """The receiving village's director; the clerk or an admin only where that village has none."""
    if transfer.status != TransferStatus.PENDING.value:
        return False
    if role == Role.DIRECTOR.value:
        return user_village_id == transfer.to_village_id
    return role in TOWN_ROLES and not receiving_director_exists(transfer.to_village_id)


def may_cancel(transfer: Transfer, role: str, user_village_id: int | None) -> bool:
    """The sending side: the clerk or an admin, or the sending village's director."""
    if transfer.status != TransferStatus.PENDING.value:
        return False
    if role in TOWN_ROLES:
        return True
    return role == Role.DIRECTOR.value and user_village_id == transfer.from_village_id


def _pending(transfer: Transfer) -> None:
    if transfer.status != TransferStatus.PENDING.value:
        raise InvalidInput(f"该转移已{TransferStatus.label_of(transfer.status)}，不能再办理")


def accept(transfer: Transfer, note: str, *, role: str, user_village_id: int | None) -> dict[str, int]:
    """接收: the child and its whole history now belong to the receiving village."""
    _pending(transfer)
    if not may_decide(transfer, role, user_village_id):
        raise InvalidInput("只有接收村（社区）的儿童主任可以接收（该村没有儿童主任账号时由镇民生服务办接收）")
    child = db.session.get(Child, transfer.child_id)
    if child.village_id != transfer.from_village_id or child.is_archived:
        raise InvalidInput("发起转移后该儿童的档案已有变化（所在村或状态），请退回后由对方重新发起")
    old, new = transfer.from_village_id, transfer.to_village_id
    session = db.session
    follow_child.take_moved_counts(session)
    child.village_id = new
    session.flush()  # its alerts, reports and measures follow it (services/follow_child.py)
    moved = follow_child.take_moved_counts(session)
    # guardians go along unless a child still in the sending village shares them
    shared_elsewhere = exists().where(
        ChildGuardian.guardian_id == Guardian.id,
        ChildGuardian.child_id != child.id,
        ChildGuardian.child_id.in_(select(Child.id).where(Child.village_id != new)),
    )
    moved["guardian"] = session.execute(
        update(Guardian)
        .where(
            Guardian.id.in_(select(ChildGuardian.guardian_id).where(ChildGuardian.child_id == child.id)),
            Guardian.village_id == old,
            ~shared_elsewhere,
        )
        .values(village_id=new, version=Guardian.version + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    child.director_id = _village_director_staff(new)
    transfer.status = TransferStatus.ACCEPTED.value
    transfer.decided_by_id = audit.current_actor().user_id
    transfer.decided_at = utcnow()
    transfer.decision_note = _text(note) or None
    _event(transfer, TransferAction.ACCEPT, transfer.decision_note)
    session.flush()
    audit.record(
        session,
        "transfer",
        table="child",
        record_id=child.id,
        summary=f"接收转移：{child.name} 由 {_village_name(old)} 转入 {_village_name(new)}",
        changes={"transfer_id": transfer.id, "moved": moved},
    )
    return moved


def _village_director_staff(village_id: int) -> int | None:
    ids = db.session.scalars(
        select(Staff.id).where(
            Staff.village_id == village_id, Staff.kind == StaffKind.DIRECTOR.value, Staff.active.is_(True)
        )
    ).all()
    return ids[0] if len(ids) == 1 else None


def give_back(transfer: Transfer, note: str, *, role: str, user_village_id: int | None) -> None:
    """退回: the receiving side declines, with a reason; the child stays where it is."""
    _pending(transfer)
    if not may_decide(transfer, role, user_village_id):
        raise InvalidInput("只有接收村（社区）的儿童主任可以退回（该村没有儿童主任账号时由镇民生服务办办理）")
    note = _text(note)
    if not note:
        raise InvalidInput("请填写退回原因")
    transfer.status = TransferStatus.RETURNED.value
    transfer.decided_by_id = audit.current_actor().user_id
    transfer.decided_at = utcnow()
    transfer.decision_note = note
    _event(transfer, TransferAction.RETURN, note)
    db.session.flush()
    audit.record(
        db.session,
        "transfer",
        table="child",
        record_id=transfer.child_id,
        summary=f"退回转移：{_village_name(transfer.to_village_id)} 未接收（{note[:100]}）",
        changes={"transfer_id": transfer.id},
    )


def cancel(transfer: Transfer, note: str, *, role: str, user_village_id: int | None) -> None:
    """撤回: the sending side takes the transfer back before it is accepted."""
    _pending(transfer)
    if not may_cancel(transfer, role, user_village_id):
        raise InvalidInput("只有发起方（镇民生服务办或原村儿童主任）可以撤回")
    transfer.status = TransferStatus.CANCELLED.value
    transfer.decided_by_id = audit.current_actor().user_id
    transfer.decided_at = utcnow()
    transfer.decision_note = _text(note) or None
    _event(transfer, TransferAction.CANCEL, transfer.decision_note)
    db.session.flush()
    audit.record(
        db.session,
        "transfer",
        table="child",
        record_id=transfer.child_id,
        summary="撤回转移",
        changes={"transfer_id": transfer.id},
    )


# --------------------------------------------------------------------------- out of and into the town


def move_out(
    child: Child,
    destination: str,
    office: str,
    reason: str,
    handover_note: str,
    acknowledged: bool,
    *,
    role: str,
) -> Transfer:
    """迁出外镇: archive the file as 迁出 with its destination; the 转介函 is printed from the transfer."""
    if role not in TOWN_ROLES:
        raise InvalidInput("迁出外镇由镇民生服务办经办人办理")
    _check_movable(child)
    destination = _text(destination, 100)
    if not destination:
        raise InvalidInput("请填写迁入地（如：重庆市涪陵区某某镇）")
    reason = _text(reason)
    if not reason:
        raise InvalidInput("请填写迁出原因")
    items = _acknowledged(child, acknowledged)
    transfer = Transfer(
        child_id=child.id,
        kind=TransferKind.OUT.value,
        status=TransferStatus.DONE.value,
        from_village_id=child.village_id,
        other_town=destination,
        other_office=_text(office, 200) or None,
        reason=reason,
        handover_note=_text(handover_note) or None,
        open_items=items,
        started_by_id=audit.current_actor().user_id,
        started_at=utcnow(),
        decided_by_id=audit.current_actor().user_id,
        decided_at=utcnow(),
    )
    db.session.add(transfer)
    archive_child(child, ChildStatus.MOVED.value, f"迁出至{destination}：{reason}")
    _event(transfer, TransferAction.MOVE_OUT, f"迁出至{destination}")
    db.session.flush()
    audit.record(
        db.session,
        "transfer",
        table="child",
        record_id=child.id,
        summary=f"迁出外镇：{child.name} 迁至 {destination}",
        changes={"transfer_id": transfer.id, "open_items": len(items)},
    )
    return transfer


def record_in(child: Child, source_town: str, referral: str) -> Transfer | None:
    """外镇迁入: a new registration notes where the child came from and the referral it brought."""
    source_town = _text(source_town, 100)
    referral = _text(referral)
    if not source_town and not referral:
        return None
    if not source_town:
        raise InvalidInput("外镇迁入：请填写原所在镇街")
    if child.id is None:
        db.session.flush()
    transfer = Transfer(
        child_id=child.id,
        kind=TransferKind.IN.value,
        status=TransferStatus.DONE.value,
        to_village_id=child.village_id,
        other_town=source_town,
        referral=referral or None,
        started_by_id=audit.current_actor().user_id,
        started_at=utcnow(),
    )
    db.session.add(transfer)
    _event(
        transfer, TransferAction.MOVE_IN, f"自{source_town}迁入" + (f"：{referral[:200]}" if referral else "")
    )
    db.session.flush()
    return transfer


# --------------------------------------------------------------------------- the 转介函


@dataclass
class ReferralLetter:
    number: str
    town: str
    issued_on: dt.date
    destination: str
    office: str
    reason: str
    handover_note: str
    child: dict
    id_number: str
    id_revealed: bool
    guardians: list = field(default_factory=list)
    level: str = ""
    level_on: dt.date | None = None
    last_score: int | None = None
    open_items: list = field(default_factory=list)
    measures: list = field(default_factory=list)
    visits: int = 0
    last_visit: dt.date | None = None
    contact: str = ""


def referral_letter(
    transfer: Transfer, *, town: str, today: dt.date, reveal_id: bool, purpose: str, contact: str
) -> ReferralLetter:
    """The 转介函 of an out-of-town transfer: the file summary, level, open measures and a contact.

    The ID number is masked unless ``reveal_id`` with a stated ``purpose``; each letter is audited,
    a revealed number with its purpose."""
    from models import Visit

    if transfer.kind != TransferKind.OUT.value:
        raise InvalidInput("只有迁出外镇的转移才出具转介函")
    purpose = _text(purpose, 200)
    if reveal_id and not purpose:
        raise InvalidInput("显示完整身份证号须填写用途（如：迁入地民政办建档核验）")
    child = db.session.get(Child, transfer.child_id)
    if child.anonymised_at is not None:
        raise InvalidInput("该档案已匿名化，不能再出具转介函")
    links = db.session.execute(
        select(
            Guardian.name, Guardian.phone, Guardian.status, ChildGuardian.relation, ChildGuardian.is_primary
        )
        .join(ChildGuardian, ChildGuardian.guardian_id == Guardian.id)
        .where(ChildGuardian.child_id == child.id)
        .order_by(ChildGuardian.is_primary.desc(), ChildGuardian.id)
    ).all()
    from choices import Gender, GuardianStatus

    last = db.session.execute(
        select(Assessment.assessed_on, Assessment.total_score, Assessment.level)
        .where(Assessment.child_id == child.id, Assessment.status == "approved")
        .order_by(Assessment.assessed_on.desc(), Assessment.id.desc())
        .limit(1)
    ).first()
    visits = db.session.execute(
        select(func.count(), func.max(Visit.visited_on)).where(Visit.child_id == child.id)
    ).one()
    measures = [
        f"{ServiceKind.label_of(kind)}（{ServiceStatus.label_of(status)}"
        + (f"，应于 {due} 前" if due and status == ServiceStatus.PLANNED.value else "")
        + (f"，{delivered} 落实" if delivered else "")
        + "）"
        for kind, status, due, delivered in db.session.execute(
            select(
                SupportService.kind, SupportService.status, SupportService.due_on, SupportService.delivered_on
            )
            .where(
                SupportService.child_id == child.id, SupportService.status != ServiceStatus.CANCELLED.value
            )
            .order_by(SupportService.due_on.desc().nulls_last())
            .limit(20)
        )
    ]
    letter = ReferralLetter(
        number=f"{transfer.started_at:%Y}-迁-{transfer.id:04d}",
        town=town,
        issued_on=today,
        destination=transfer.other_town or "",
        office=transfer.other_office or "",
        reason=transfer.reason or "",
        handover_note=transfer.handover_note or "",
        child={
            "name": child.name,
            "gender": Gender.label_of(child.gender),
            "birth_date": child.birth_date,
            "village": _village_name(transfer.from_village_id),
            "address": child.address or "",
            "school": " ".join(x for x in (child.school, child.grade) if x),
            "categories": "、".join(c.name for c in child.categories),
            "disability": " ".join(x for x in (child.disability_kind, child.disability_grade) if x),
        },
        id_number=child.id_number if reveal_id else mask_id_number(child.id_number),
        id_revealed=reveal_id,
        guardians=[
            {
                "name": name,
                "relation": Relation.label_of(relation),
                "phone": phone or "",
                "status": GuardianStatus.label_of(status),
                "primary": primary,
            }
            for name, phone, status, relation, primary in links
        ],
        level=Level.label_of(child.current_level) if child.current_level else "未评估",
        level_on=child.level_assessed_on,
        last_score=last.total_score if last else None,
        open_items=list(transfer.open_items or []) or open_items(child.id),
        measures=measures,
        visits=visits[0] or 0,
        last_visit=visits[1],
        contact=contact,
    )
    if reveal_id:
        audit.record(
            db.session,
            "reveal",
            table="child",
            record_id=child.id,
            summary=f"转介函显示完整身份证号：{child.name}；用途：{purpose}",
        )
    audit.record(
        db.session,
        "export",
        table="child",
        record_id=child.id,
        summary=f"出具转介函 {letter.number}：{child.name} 迁至 {letter.destination}"
        + ("（含完整身份证号）" if reveal_id else "（身份证号已遮蔽）"),
    )
    _event(
        transfer, TransferAction.LETTER, "含完整身份证号，用途：" + purpose if reveal_id else "身份证号已遮蔽"
    )
    return letter


def referral_workbook(letter: ReferralLetter) -> bytes:
    """The 转介函 as an xlsx sheet (every text written as text, never as a formula)."""
    import io

    import xlsxwriter

    out = io.BytesIO()
    book = xlsxwriter.Workbook(
        out, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    sheet = book.add_worksheet("转介函")
    title = book.add_format({"bold": True, "font_size": 14, "align": "center"})
    head = book.add_format({"bold": True, "bg_color": "#F2F2F2", "border": 1, "valign": "top"})
    cell = book.add_format({"border": 1, "text_wrap": True, "valign": "top"})
    sheet.set_column(0, 0, 18)
    sheet.set_column(1, 1, 70)
    sheet.merge_range(0, 0, 0, 1, f"{letter.town} 困境儿童档案转介函", title)
    rows = [
        ("函号", letter.number),
        ("出具日期", f"{letter.issued_on:%Y-%m-%d}"),
        ("迁入地", letter.destination),
        ("接收单位/联系人", letter.office),
        ("儿童姓名", letter.child["name"]),
        ("性别", letter.child["gender"]),
        ("出生日期", f"{letter.child['birth_date']:%Y-%m-%d}" if letter.child["birth_date"] else ""),
        ("身份证号", letter.id_number + ("" if letter.id_revealed else "（已遮蔽）")),
        ("原所在村（社区）", letter.child["village"]),
        ("原住址", letter.child["address"]),
        ("学校/年级", letter.child["school"]),
        ("困境类别", letter.child["categories"]),
        ("残疾情况", letter.child["disability"]),
        (
            "监护人",
            "\n".join(f"{g['name']}（{g['relation']}，{g['status']}）{g['phone']}" for g in letter.guardians),
        ),
        (
            "风险等级",
            letter.level
            + (f"（{letter.level_on:%Y-%m-%d} 评定" if letter.level_on else "")
            + (f"，总分 {letter.last_score}" if letter.last_score is not None else "")
            + ("）" if letter.level_on else ""),
        ),
        (
            "走访情况",
            f"共 {letter.visits} 次"
            + (f"，最近一次 {letter.last_visit:%Y-%m-%d}" if letter.last_visit else ""),
        ),
        ("赋能服务", "\n".join(letter.measures) or "无"),
        ("未结事项", "\n".join(letter.open_items) or "无"),
        ("迁出原因", letter.reason),
        ("交接说明", letter.handover_note),
        ("联系方式", letter.contact),
    ]
    for index, (label, value) in enumerate(rows, start=2):
        sheet.write_string(index, 0, label, head)
        sheet.write_string(index, 1, str(value or ""), cell)
    sheet.write_string(
        len(rows) + 3, 0, "内含未成年人个人信息，仅用于困境儿童关爱服务衔接，请妥善保管，不得外传。"
    )
    sheet.set_paper(9)
    sheet.fit_to_pages(1, 0)
    book.close()
    return out.getvalue()


def events_of(child_id: int) -> list:
    """The dossier's timeline of a child's transfers, oldest first, with village and user names."""
    from sqlalchemy.orm import aliased

    source, target = aliased(Village), aliased(Village)
    return db.session.execute(
        select(
            TransferEvent.at,
            TransferEvent.action,
            TransferEvent.note,
            source.name.label("from_name"),
            target.name.label("to_name"),
            func.coalesce(User.display_name, User.username).label("user_name"),
            Transfer.kind,
            Transfer.other_town,
        )
        .join(Transfer, Transfer.id == TransferEvent.transfer_id)
        .outerjoin(source, source.id == TransferEvent.from_village_id)
        .outerjoin(target, target.id == TransferEvent.to_village_id)
        .outerjoin(User, User.id == TransferEvent.user_id)
        .where(TransferEvent.child_id == child_id)
        .order_by(TransferEvent.at, TransferEvent.id)
    ).all()


__all__ = [
    "ReferralLetter",
    "accept",
    "cancel",
    "events_of",
    "give_back",
    "may_cancel",
    "may_decide",
    "may_start",
    "move_out",
    "moved_with_child",
    "open_items",
    "pending_incoming",
    "pending_of",
    "receiving_director_exists",
    "record_in",
    "referral_letter",
    "referral_workbook",
    "start",
]
