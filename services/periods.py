"""Start/end pairs: one rule for every period the app stores (activities, trainings, pairings,
fund validity …). An end must come after its start; an end equal to its start is refused too (a
training from 09:00 to 09:00 would count as 0 学时, a pairing that ends the day it starts is a slip)."""

from __future__ import annotations

import datetime as dt

# (start field, end field) names of the periods in the models; views check every pair their form
# holds (views/dates.py), services call ``period_error`` for the same rule without a form.
PAIRS: tuple[tuple[str, str], ...] = (
    ("starts_at", "ends_at"),
    ("start_on", "end_on"),
    ("valid_from", "valid_to"),
    ("start", "end"),
    ("date_from", "date_to"),
    ("period_start", "period_end"),
)


def _comparable(value):
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    return None


def period_error(start, end, start_label: str = "开始时间", end_label: str = "结束时间") -> str | None:
    """The Chinese message when ``end`` is not after ``start`` (both dates or date-times); None when
    either is missing or the period is sound."""
    a, b = _comparable(start), _comparable(end)
    if a is None or b is None:
        return None
    if b < a:
        return f"{end_label}不能早于{start_label}"
    if b == a:
        return f"{end_label}应晚于{start_label}（两者相同）"
    return None
