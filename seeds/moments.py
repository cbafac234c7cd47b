"""The demo's moments: a day at an hour, never later than the clock.

The demo is dated from today, and a story's events fall at working hours (an alert raised at 09:30, an
expense paid at 15:00). Loaded before those hours, such a moment lies in the future: a list sorted by
time shows it above what the user does next, and a rule run "as of now" sees a case opened later
than now. Every demo moment at an hour goes through ``at``.
"""

import datetime as dt

from services import clock


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """``day`` at ``hour``:``minute``, or the clock's time when that is still to come."""
    return min(dt.datetime.combine(day, dt.time(hour, minute)), clock.now().replace(microsecond=0))
