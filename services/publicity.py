"""政策宣传 (work plan 三(六) 常态化开展儿童福利政策、家庭监护责任宣传; 四.3 多渠道宣传试点成果) and the
four long-term mechanisms counted per phase (强制报告, 快速介入, 多元联动, 政策宣传).

A publicity event records when, where, in which form (集中宣讲, 入户宣传, 新媒体推送, 发放资料), for how
many people, with which materials; its photos are attachments. The mechanisms' counts are declared in
services/indicators.py (``MECHANISM_INDICATORS``); ``mechanism_table`` lays them out by phase.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from choices import AttachmentKind as K
from choices import PublicityForm
from models import PublicityEvent
from services import attachments, indicators
from services.validation import InvalidInput

attachments.register_owner("publicity", "publicity", (K.SCENE_PHOTO, K.OTHER))

AUDIENCE_MAX = 1_000_000
TEXT_MAX = 2000


def check_event(event: PublicityEvent, today: dt.date) -> dict[str, str]:
    errors = {}
    if event.held_on is None:
        errors["held_on"] = "请填写宣传日期"
    elif event.held_on > today:
        errors["held_on"] = "宣传日期不能晚于今天（计划中的宣传请在开展后登记）"
    if not (event.title or "").strip():
        errors["title"] = "请填写宣传主题"
    if event.form not in {f.value for f in PublicityForm}:
        errors["form"] = "请选择宣传形式（集中宣讲/入户宣传/新媒体推送/发放资料）"
    audience = event.audience_count
    if audience is None or audience < 0:
        errors["audience_count"] = "请填写受众人数（不小于0）"
    elif audience > AUDIENCE_MAX:
        errors["audience_count"] = f"受众人数不能超过{AUDIENCE_MAX}"
    for name, label in (("materials", "宣传资料"), ("content", "宣传内容")):
        if len(getattr(event, name) or "") > TEXT_MAX:
            errors[name] = f"{label}不能超过{TEXT_MAX}字"
    return errors


def raise_first(errors: dict[str, str]) -> None:
    if errors:
        raise InvalidInput(next(iter(errors.values())))


@dataclass(frozen=True)
class PhaseRow:
    key: str
    name: str
    start: dt.date
    end: dt.date
    values: dict  # indicator key → indicators.Value


def phases(year: int) -> list[tuple[str, str, dt.date, dt.date]]:
    from services.reports import PHASES, phase_period

    rows = []
    for key, (name, _, _) in PHASES.items():
        period = phase_period(year, key)
        rows.append((key, name, period.start, period.end))
    return rows


MECHANISM_KEYS = (*indicators.MECHANISM_INDICATORS, "publicity_audience")


def mechanism_table(year: int, village_ids, now: dt.datetime | None = None) -> list[PhaseRow]:
    """The four mechanisms' counts for each phase of the plan year (and the whole year), in scope.

    The plan's phases share their boundary months (部署启动 1–2月, 重点推进 2–11月, 总结提升 11–12月),
    so the phases' counts may add up to more than the year's."""
    rows = []
    for key, name, start, end in [
        *phases(year),
        ("year", f"{year}年全年", dt.date(year, 1, 1), dt.date(year, 12, 31)),
    ]:
        frame = indicators.Frame.of_period(start, end, village_ids, now=now)
        rows.append(PhaseRow(key, name, start, end, indicators.compute_many(MECHANISM_KEYS, frame)))
    return rows
