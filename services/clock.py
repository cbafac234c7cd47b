"""Today's date, settable for tests and for the CLI (``--today``) so data can be aged."""

import datetime as dt
import os

_override: dt.date | None = None


def set_today(value: dt.date | None) -> None:
    global _override
    _override = value


def today() -> dt.date:
    if _override is not None:
        return _override
    env = os.environ.get("TONGHU_TODAY")
    if env:
        return dt.date.fromisoformat(env)
    return dt.date.today()


def now() -> dt.datetime:
    """Naive local wall-clock time, moved with ``today`` when that is overridden."""
    real = dt.datetime.now()
    day = today()
    if day != real.date():
        return dt.datetime.combine(day, real.time())
    return real


def local(utc: dt.datetime | None) -> dt.datetime | None:
    """A stored UTC time (``models.utcnow``) on the server's clock, like the other times shown."""
    if utc is None:
        return None
    return utc.replace(tzinfo=dt.UTC).astimezone().replace(tzinfo=None)


def local_text(utc: dt.datetime | None) -> str:
    """``local`` as the pages print it: 2026-05-01 17:05, or nothing."""
    moment = local(utc)
    return f"{moment:%Y-%m-%d %H:%M}" if moment else ""
