"""反馈意见 (work plan 四.2: 收集学校、社区、家庭反馈意见，优化服务举措).

Two ways in, one table (``Feedback``):

- staff type in a paper form: who it comes from (学校 / 村（社区）/ 家庭), the unit, a 满意度 of 1–5 per
  service item, suggestions;
- parents scan an activity's QR code and answer anonymously: no login, nothing personal asked or
  kept (the sender's address only as a keyed hash, for the rate limit, and only for a day), text
  capped, at most ``PER_ADDRESS`` answers per address and ``PER_ACTIVITY`` per activity in an hour
  (counted in the database, so every app process shares the count), closed ``CLOSES_AFTER_DAYS``
  after the activity. What parents type is kept as plain text (pages escape it; phone and ID numbers
  typed in by mistake are blotted out before it is stored).

``summary`` gives the per-phase figures: averages per item and source, the count, the suggestions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import delete, func, select
from sqlalchemy.orm import joinedload

from choices import ACTIVITY_ITEMS, SATISFACTION, FeedbackChannel, FeedbackItem, FeedbackSource
from models import Activity, Feedback, FeedbackHit, FeedbackLink, db
from services import case_studies
from services.scoping import scope
from services.validation import InvalidInput

SUGGESTION_MAX = 500
UNIT_MAX = 100
CLOSES_AFTER_DAYS = 7
WINDOW = dt.timedelta(hours=1)
PER_ADDRESS = 5
PER_ACTIVITY = 300
HITS_KEPT = dt.timedelta(days=1)
ITEMS = list(FeedbackItem)


# --------------------------------------------------------------------------- what people type


def plain_text(value: str | None, limit: int, what: str) -> str | None:
    """Text as it will be kept: NFC, control characters out (line breaks stay), trimmed, at most
    ``limit`` characters (longer is refused, not cut: the sender should know). Never parsed as HTML."""
    text = unicodedata.normalize("NFC", value or "")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    text = text.replace("\t", " ").strip()
    if len(text) > limit:
        raise InvalidInput(f"{what}不能超过{limit}字（现有{len(text)}字）")
    return text or None


def parse_scores(raw: dict, items=ITEMS) -> dict[str, int]:
    """{item value: 1..5} from a form's ``score_<item>`` fields; blank means not rated."""
    scores = {}
    allowed = {i.value for i in items}
    for key, value in raw.items():
        if not key.startswith("score_"):
            continue
        item = key[len("score_") :]
        value = (value or "").strip()
        if not value:
            continue
        if item not in allowed:
            raise InvalidInput("评价项目无效")
        if value not in {"1", "2", "3", "4", "5"}:
            raise InvalidInput("满意度只能是1到5分")
        scores[item] = int(value)
    if not scores:
        raise InvalidInput("请至少对一个项目打分（1–5分）")
    return scores


def check_feedback(fb: Feedback, today: dt.date) -> dict[str, str]:
    errors = {}
    if fb.source_kind not in {s.value for s in FeedbackSource}:
        errors["source_kind"] = "请选择反馈来源（学校/村（社区）/家庭）"
    if fb.received_on is None:
        errors["received_on"] = "请填写收到日期"
    elif fb.received_on > today:
        errors["received_on"] = "收到日期不能晚于今天"
    try:
        fb.unit = plain_text(fb.unit, UNIT_MAX, "单位名称")
    except InvalidInput as bad:
        errors["unit"] = str(bad)
    if fb.source_kind == FeedbackSource.SCHOOL.value and not fb.unit:
        errors["unit"] = "学校反馈请填写学校名称"
    try:
        fb.suggestions = plain_text(fb.suggestions, SUGGESTION_MAX, "意见建议")
    except InvalidInput as bad:
        errors["suggestions"] = str(bad)
    scores = fb.scores or {}
    if not scores:
        errors["scores"] = "请至少对一个项目打分（1–5分）"
    elif any(v not in (1, 2, 3, 4, 5) or k not in {i.value for i in ITEMS} for k, v in scores.items()):
        errors["scores"] = "满意度只能是1到5分"
    return errors


# --------------------------------------------------------------------------- the anonymous link


def closes_on(activity: Activity) -> dt.date:
    """The last day the link takes answers: the activity's (end) day plus seven."""
    last = activity.ends_at or activity.starts_at
    return last.date() + dt.timedelta(days=CLOSES_AFTER_DAYS)


def is_open(activity: Activity, today: dt.date) -> bool:
    return today <= closes_on(activity)


def link_of(activity: Activity) -> FeedbackLink | None:
    return db.session.scalar(select(FeedbackLink).where(FeedbackLink.activity_id == activity.id))


def ensure_link(activity: Activity, user_id: int | None) -> FeedbackLink:
    """The activity's link, made with a fresh random token the first time; the caller commits."""
    link = link_of(activity)
    if link is None:
        link = FeedbackLink(activity_id=activity.id, token=secrets.token_urlsafe(18), created_by_id=user_id)
        db.session.add(link)
        db.session.flush()
    return link


def find_link(token: str) -> FeedbackLink | None:
    token = (token or "").strip()
    if not token or len(token) > 64:
        return None
    return db.session.scalar(
        select(FeedbackLink).options(joinedload(FeedbackLink.activity)).where(FeedbackLink.token == token)
    )


def address_key(address: str | None, secret: str) -> str:
    """The sender's address as a keyed hash: the rate limit can tell two senders apart, nobody can
    read the address back."""
    return hmac.new(secret.encode(), (address or "?").encode(), hashlib.sha256).hexdigest()


def raise_first(errors: dict[str, str]) -> None:
    if errors:
        raise InvalidInput(next(iter(errors.values())))


class RateLimited(InvalidInput):
    pass


def submit_anonymous(
    link: FeedbackLink, form: dict, *, address: str | None, secret: str, now: dt.datetime
) -> Feedback:
    """Take one anonymous answer through an activity's link. Raises InvalidInput (closed, limited,
    bad values) with the message to show; the caller commits."""
    activity = link.activity
    if not is_open(activity, now.date()):
        raise InvalidInput(f"本次活动的反馈已于{closes_on(activity):%Y年%m月%d日}截止，感谢您的关注。")
    scores = parse_scores(form, ACTIVITY_ITEMS)
    suggestions = plain_text(form.get("suggestions"), SUGGESTION_MAX, "意见建议")
    key = address_key(address, secret)
    # One sender at a time per activity: the link row is locked (PostgreSQL; SQLite writes one at a time).
    db.session.execute(select(FeedbackLink.id).where(FeedbackLink.id == link.id).with_for_update())
    db.session.execute(
        delete(FeedbackHit).where(FeedbackHit.activity_id == activity.id, FeedbackHit.at < now - HITS_KEPT)
    )
    since = now - WINDOW
    recent = (
        select(func.count())
        .select_from(FeedbackHit)
        .where(FeedbackHit.activity_id == activity.id, FeedbackHit.at >= since)
    )
    if db.session.scalar(recent.where(FeedbackHit.address_hash == key)) >= PER_ADDRESS:
        raise RateLimited("您提交得太频繁了，请稍后再试。")
    if db.session.scalar(recent) >= PER_ACTIVITY:
        raise RateLimited("本活动收到的反馈较多，请稍后再试。")
    db.session.add(FeedbackHit(activity_id=activity.id, address_hash=key, at=now))
    villages = activity.villages
    feedback = Feedback(
        channel=FeedbackChannel.QR.value,
        source_kind=FeedbackSource.FAMILY.value,
        unit=None,
        village_id=villages[0].id if len(villages) == 1 else None,
        activity_id=activity.id,
        received_on=now.date(),
        scores=scores,
        suggestions=case_studies.blot_numbers(suggestions) if suggestions else None,
    )
    db.session.add(feedback)
    return feedback


# --------------------------------------------------------------------------- the summary


@dataclass
class Cell:
    total: int = 0
    count: int = 0

    def add(self, score: int) -> None:
        self.total += score
        self.count += 1

    @property
    def average(self) -> Decimal | None:
        if not self.count:
            return None
        return (Decimal(self.total) / Decimal(self.count)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@dataclass
class Summary:
    start: dt.date
    end: dt.date
    count: int = 0
    by_source: dict = field(default_factory=dict)  # source value → number of forms
    by_channel: dict = field(default_factory=dict)
    cells: dict = field(default_factory=dict)  # (item, source or None for all) → Cell
    suggestions: list = field(default_factory=list)  # (date, source label, unit, channel label, text)

    def cell(self, item: str, source: str | None = None) -> Cell:
        return self.cells.get((item, source)) or Cell()


def _rows(village_ids, start: dt.date, end: dt.date):
    stmt = scope(
        select(Feedback)
        .options(joinedload(Feedback.village), joinedload(Feedback.activity))
        .where(Feedback.received_on >= start, Feedback.received_on <= end)
        .order_by(Feedback.received_on, Feedback.id),
        Feedback,
        village_ids,
    )
    return db.session.scalars(stmt)


def summary(village_ids, start: dt.date, end: dt.date) -> Summary:
    result = Summary(start, end)
    for fb in _rows(village_ids, start, end):
        result.count += 1
        result.by_source[fb.source_kind] = result.by_source.get(fb.source_kind, 0) + 1
        result.by_channel[fb.channel] = result.by_channel.get(fb.channel, 0) + 1
        for item, score in (fb.scores or {}).items():
            for source in (fb.source_kind, None):
                result.cells.setdefault((item, source), Cell()).add(int(score))
        if fb.suggestions:
            result.suggestions.append(
                (
                    fb.received_on,
                    FeedbackSource.label_of(fb.source_kind),
                    unit_of(fb),
                    FeedbackChannel.label_of(fb.channel),
                    fb.suggestions,
                )
            )
    return result


def unit_of(fb: Feedback) -> str:
    if fb.unit:
        return fb.unit
    if fb.activity is not None:
        return f"活动：{fb.activity.title}"
    return fb.village.name if fb.village else ""


def detail_rows(village_ids, start: dt.date, end: dt.date):
    """Every form of the period, one row each (the summary workbook's detail sheet)."""
    for fb in _rows(village_ids, start, end):
        scores = fb.scores or {}
        yield (
            fb.received_on,
            FeedbackSource.label_of(fb.source_kind),
            unit_of(fb),
            FeedbackChannel.label_of(fb.channel),
            *(scores.get(item.value) for item in ITEMS),
            fb.suggestions or "",
        )


def satisfaction_label(score: int) -> str:
    return SATISFACTION.get(score, "")
