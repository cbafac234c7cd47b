"""The phone's offline queue, taken by one endpoint: visits and sets of attendance ticks.

Each queued item carries a client-made UUID and the time it was recorded on the phone. ``sync``
answers every item on its own — 已同步, or a Chinese reason it was refused — through the very services
the forms use (services/visits.record_visit, services/attendance.save_attendance), with the sender's
role and villages, so an item is checked, scoped and audited exactly like a form. An item the
server has already taken (its UUID has a SyncReceipt) is answered from the receipt and writes
nothing: a retry after a lost answer, or the same queue sent twice, writes once.

Items are independent: one refused item changes nothing and does not hold back the others. The
queue's visits (those without photos) are checked one by one and written together
(services/visits.record_visits: one read of their children, visitors and assessments, one flush with
their alerts and receipts, the children's 下次走访 recomputed once — a day's 200 visits cost about
what 20 did); if that joint write fails (another request took one of them a moment ago), each is
taken on its own in its own savepoint, like the other items.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from models import Activity, Alert, SyncReceipt, Visit, db
from services import audit
from services.attendance import parse_keys, save_attendance
from services.derived import deferred
from services.permissions import can_write
from services.scoping import scope
from services.validation import InvalidInput
from services.visits import VisitEntry, VisitRefused, answer, record_visit, record_visits

MAX_ITEMS = 500
MAX_PHOTOS_PER_VISIT = 6
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# A queue older than this is not taken: the phone's copy expires after 7 days without a sync, and a
# visit recorded long before is entered at the desk with its paper record instead.
MAX_AGE = dt.timedelta(days=30)

SYNCED = "已同步"


@dataclass(frozen=True)
class Sender:
    """Who sends the queue, as plain values: the account, its role, its villages (None: all)."""

    user_id: int
    role: str
    village_ids: list[int] | None
    staff_id: int | None = None


@dataclass
class ItemResult:
    uuid: str
    ok: bool
    message: str
    record_id: int | None = None
    duplicate: bool = False
    errors: dict[str, str] = field(default_factory=dict)
    alert_id: int | None = None
    alert: Alert | None = field(default=None, repr=False)  # alert_id is read from it once flushed

    def as_json(self) -> dict:
        data = {"uuid": self.uuid, "ok": self.ok, "message": self.message}
        if self.record_id is not None:
            data["record_id"] = self.record_id
        if self.duplicate:
            data["duplicate"] = True
        if self.errors:
            data["errors"] = self.errors
        if self.alert_id is not None:
            data["alert_id"] = self.alert_id
        return data


class Refused(InvalidInput):
    """The whole request is refused (wrong account, malformed): nothing is read from it."""


@dataclass
class Photo:
    data: bytes
    name: str


def check_owner(queue_user_id, sender: Sender) -> None:
    """Nothing syncs under another account: the queue is bound to the account that recorded it."""
    try:
        owner = int(queue_user_id)
    except (TypeError, ValueError):
        raise Refused("待同步记录没有标明录入账号，不能同步") from None
    if owner != sender.user_id:
        raise Refused("这些记录是用另一个账号录入的，不能以当前账号同步；请用录入时的账号登录后再同步")


def sync(
    items: list,
    sender: Sender,
    *,
    now: dt.datetime,
    photos: dict[str, list[Photo]] | None = None,
) -> list[ItemResult]:
    """Take every item of a queue; commits. ``photos``: the photos of each visit, by its UUID."""
    if not isinstance(items, list):
        raise Refused("同步数据格式不正确")
    if len(items) > MAX_ITEMS:
        raise Refused(f"一次最多同步{MAX_ITEMS}条记录，请分批同步")
    photos = photos or {}
    receipts = _receipts(items)
    seen: set[str] = set()
    results: list[ItemResult | None] = []
    pending: list[tuple[int, Pending]] = []
    for index, raw in enumerate(items):
        checked = _check(raw, sender, now, seen, receipts)
        results.append(checked if isinstance(checked, ItemResult) else None)
        if isinstance(checked, Pending):
            pending.append((index, checked))
    # the children's 下次走访 and 建档 flags are recomputed once for the queue, not once per item
    with deferred(db.session):
        # visits without photos are written together; the rest (and all of them if that fails) one by one
        batch = [(i, p) for i, p in pending if p.kind == "visit" and not photos.get(p.uuid)]
        answers = _take_visits(batch, sender, now) or {}
        for index, item in pending:
            if index not in answers:
                answers[index] = _take(item, sender, now, photos.get(item.uuid, []))
    for index, result in answers.items():
        results[index] = result
    visits = [
        answers[i].record_id
        for i, item in pending
        if item.kind == "visit" and answers[i].ok and not answers[i].duplicate
    ]
    if visits:
        from services.alerts import run_rules_for_children

        # the alert rules of every child visited, once for the queue (each visit's own risk alert is
        # raised as it is taken)
        children = db.session.scalars(select(Visit.child_id).where(Visit.id.in_(visits)).distinct()).all()
        run_rules_for_children(sorted(children), now.date(), now)
    taken = [r for r in results if r.ok and not r.duplicate]
    if results:
        audit.record(
            db.session,
            "sync",
            table="sync_receipt",
            summary=f"离线记录同步：收到{len(results)}条，写入{len(taken)}条，"
            f"重复{sum(r.duplicate for r in results)}条，退回{sum(not r.ok for r in results)}条",
        )
    db.session.commit()
    return results


def _receipts(items: list) -> dict[str, SyncReceipt]:
    """The receipts of the queue's items already taken, read at once (not one query per item)."""
    uuids = sorted(
        {str(raw.get("uuid") or "").strip().lower() for raw in items if isinstance(raw, dict)} - {""}
    )
    found = {}
    for start in range(0, len(uuids), 500):
        chunk = uuids[start : start + 500]
        for receipt in db.session.scalars(select(SyncReceipt).where(SyncReceipt.client_uuid.in_(chunk))):
            found[receipt.client_uuid] = receipt
    return found


@dataclass(frozen=True)
class Pending:
    """An item that passed the checks of the queue itself, to be written."""

    uuid: str
    kind: str
    recorded_at: dt.datetime
    data: dict
    offline: bool


def _check(
    raw, sender: Sender, now: dt.datetime, seen: set[str], receipts: dict[str, SyncReceipt]
) -> ItemResult | Pending:
    """The item's answer when it is answered without writing (refused, or taken before); else Pending."""
    if not isinstance(raw, dict):
        return ItemResult("", False, "记录格式不正确")
    uuid = str(raw.get("uuid") or "").strip().lower()
    if not _UUID.match(uuid):
        return ItemResult(uuid, False, "记录编号无效（应由手机生成），请删除该条后重新录入")
    if uuid in seen:
        return ItemResult(uuid, True, SYNCED, duplicate=True)
    seen.add(uuid)
    receipt = receipts.get(uuid)
    if receipt is not None:
        return _answered(receipt, uuid, sender)
    kind = raw.get("kind")
    handler = HANDLERS.get(kind)
    if handler is None:
        return ItemResult(uuid, False, "不认识的记录类型，请更新页面后重试")
    area, _ = handler
    if not can_write(sender.role, area):
        return ItemResult(uuid, False, f"您的角色不能录入{AREA_NAMES[area]}")
    try:
        recorded_at = parse_time(raw.get("recorded_at"))
    except InvalidInput as bad:
        return ItemResult(uuid, False, str(bad))
    if recorded_at < now - MAX_AGE:
        return ItemResult(uuid, False, "记录时间早于30天前，不能再离线同步；请在电脑上按纸质记录补录")
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    return Pending(uuid, kind, recorded_at, data, raw.get("offline") is True)


def _receipt(item: Pending, sender: Sender, now: dt.datetime, result: ItemResult) -> SyncReceipt:
    return SyncReceipt(
        client_uuid=item.uuid,
        user_id=sender.user_id,
        kind=item.kind,
        record_id=result.record_id,
        recorded_at=item.recorded_at,
        received_at=now,
        summary=result.message[:200],
    )


def _take_visits(batch: list[tuple[int, Pending]], sender: Sender, now: dt.datetime):
    """Write a queue's visits together (services/visits.record_visits: each checked on its own, the
    accepted ones in one flush with their alerts and receipts). {index: answer}; None when the write
    failed as a whole (another request took one of them a moment ago): then each is taken on its own.
    """
    if not batch:
        return {}
    entries = []
    for _, item in batch:
        entry = visit_entry(item.data, uuid=item.uuid, recorded_at=item.recorded_at, offline=item.offline)
        if not entry.visitor_ids and sender.staff_id:
            entry.visitor_ids = (sender.staff_id,)
        entries.append(entry)
    answers = {}
    try:
        with db.session.begin_nested():
            done = record_visits(
                entries, village_ids=sender.village_ids, user_id=sender.user_id, now=now, rules=False
            )
            taken = []
            for (index, item), recorded in zip(batch, done, strict=True):
                if recorded.errors:
                    bad = VisitRefused(recorded.errors)
                    answers[index] = ItemResult(item.uuid, False, str(bad), errors=bad.errors)
                    continue
                result = _visit_result(item.uuid, recorded.visit, recorded.alert)
                db.session.add(_receipt(item, sender, now, result))
                answers[index] = result
                taken.append(result)
            db.session.flush()
            for result in taken:
                if result.alert is not None:
                    result.alert_id = result.alert.id
    except IntegrityError:
        return None
    return answers


def _take(item: Pending, sender: Sender, now: dt.datetime, photos: list[Photo]) -> ItemResult:
    """Write one item in its own savepoint, with its receipt."""
    _, take = HANDLERS[item.kind]
    try:
        with db.session.begin_nested():
            result = take(item.uuid, item.data, sender, item.recorded_at, now, photos, item.offline)
            db.session.add(_receipt(item, sender, now, result))
            db.session.flush()
            if result.alert is not None:
                result.alert_id = result.alert.id
    except VisitRefused as bad:
        return ItemResult(item.uuid, False, str(bad), errors=bad.errors)
    except InvalidInput as bad:
        return ItemResult(item.uuid, False, str(bad))
    except IntegrityError:
        # The same item arrived by another request a moment ago: answer from its receipt.
        receipt = db.session.scalar(select(SyncReceipt).where(SyncReceipt.client_uuid == item.uuid))
        if receipt is not None:
            return _answered(receipt, item.uuid, sender)
        return ItemResult(item.uuid, False, "保存时与其他人的修改冲突，请稍后重试")
    return result


def _answered(receipt: SyncReceipt, uuid: str, sender: Sender) -> ItemResult:
    if receipt.user_id != sender.user_id:
        return ItemResult(uuid, False, "该记录已由其他账号同步，不能重复提交")
    return ItemResult(uuid, True, SYNCED, record_id=receipt.record_id, duplicate=True)


def parse_time(value) -> dt.datetime:
    """The phone's ISO 8601 time (with a UTC offset, as ``Date.toISOString()`` gives it) on the
    server's local wall clock, like every other time the app stores."""
    text = str(value or "").strip()
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput("记录时间无效，请删除该条后重新录入") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone().replace(tzinfo=None)
    return moment.replace(microsecond=0)


def _date(value) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value or "").strip())
    except ValueError:
        return None


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def visit_entry(
    data: dict, *, uuid: str | None, recorded_at: dt.datetime | None, offline: bool = False
) -> VisitEntry:
    """A VisitEntry from the phone's JSON (the visit form's fields)."""
    answers = data.get("answers") if isinstance(data.get("answers"), dict) else {}
    visitor_ids = tuple(i for i in (_int(v) for v in data.get("visitors") or []) if i is not None)
    return VisitEntry(
        child_id=_int(data.get("child_id")),
        visited_on=_date(data.get("visited_on")),
        kind=str(data.get("kind") or "") or None,
        answers={name: answer(answers.get(name)) for name in answers},
        risk_note=str(data.get("risk_note") or ""),
        notes=str(data.get("notes") or ""),
        visitor_ids=visitor_ids,
        recorded_at=recorded_at,
        client_uuid=uuid,
        offline=offline,
    )


def _take_visit(uuid, data, sender: Sender, recorded_at, now, photos: list[Photo], offline) -> ItemResult:
    entry = visit_entry(data, uuid=uuid, recorded_at=recorded_at, offline=offline)
    if not entry.visitor_ids and sender.staff_id:
        entry.visitor_ids = (sender.staff_id,)
    if len(photos) > MAX_PHOTOS_PER_VISIT:
        raise InvalidInput(f"每次走访最多附{MAX_PHOTOS_PER_VISIT}张照片")
    visit, alert = record_visit(
        entry, village_ids=sender.village_ids, user_id=sender.user_id, now=now, rules=False
    )
    attach_photos(visit, photos)
    return _visit_result(uuid, visit, alert)


def _visit_result(uuid: str, visit: Visit, alert: Alert | None) -> ItemResult:
    message = SYNCED + ("，已生成风险预警" if alert is not None else "")
    return ItemResult(uuid, True, message, record_id=visit.id, alert=alert)


def attach_photos(visit: Visit, photos: list[Photo]) -> None:
    """The visit's photos, through the attachment store (EXIF stripped, thumbnails, scoped serving)."""
    if not photos:
        return
    from choices import AttachmentKind
    from services import attachments

    for photo in photos:
        attachments.save_upload(visit, AttachmentKind.VISIT_PHOTO.value, photo.data, original_name=photo.name)


def _take_attendance(uuid, data, sender: Sender, recorded_at, now, photos, offline) -> ItemResult:
    if photos:
        raise InvalidInput("签到记录不能附照片")
    activity_id = _int(data.get("activity_id"))
    activity = None
    if activity_id is not None:
        activity = db.session.scalar(
            scope(select(Activity).where(Activity.id == activity_id), Activity, sender.village_ids)
        )
    if activity is None:
        raise InvalidInput("该活动不存在或不在您负责的村（社区）")
    present = parse_keys(data.get("present") or [])
    absent = parse_keys(data.get("absent") or []) - present
    if not present and not absent:
        raise InvalidInput("这组签到没有勾选任何人")
    result = save_attendance(
        db.session,
        activity,
        present,
        present | absent,
        sender.village_ids,
        recorded_by_id=sender.user_id,
        now=recorded_at,
        commit=False,
        strict=True,
    )
    message = f"{SYNCED}：签到新增{len(result.added)}人，移除{len(result.removed)}人"
    return ItemResult(uuid, True, message, record_id=activity.id)


Handler = Callable[..., ItemResult]
HANDLERS: dict[str, tuple[str, Handler]] = {
    "visit": ("visits", _take_visit),
    "attendance": ("activities", _take_attendance),
}
AREA_NAMES = {"visits": "巡查走访", "activities": "活动签到"}
