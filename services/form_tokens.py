"""A form posted twice writes once: one-time form tokens.

Every create form carries a token (``issue``); the view claims it (``claim``) in the same
transaction as the record it creates, by inserting it into ``form_token`` whose primary key is the
token. A second submission of the same form — a double click, the back button, two tabs, a retry
after a timeout — finds the token taken: the database refuses the second insert (PostgreSQL makes
it wait for the first transaction, SQLite serialises the writers), the second request learns which
record the first one made, and nothing is written twice.

Tokens are signed and dated with the app's secret, so a token cannot be made up and a form left
open for more than ``TTL`` is refused (and the rows behind it are forgotten). A request carrying
no token at all did not come from one of our forms (each form we draw has one; the suite's walk
checks that) and is not deduplicated.
"""

from __future__ import annotations

import datetime as dt
import secrets

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from models import FormToken, utcnow

TTL = dt.timedelta(days=7)
FIELD = "form_once"
SALT = "tonghu-form-once"


class TokenRefused(Exception):
    """The token is missing, forged or too old: the form must be reloaded (message in Chinese)."""


class AlreadySubmitted(Exception):
    """The form was submitted before; ``claim`` is the row the first submission left."""

    def __init__(self, claim: FormToken | None):
        super().__init__("已保存，请勿重复提交")
        self.claim = claim


def issue(secret: str) -> str:
    """A fresh token for one form."""
    return URLSafeTimedSerializer(secret, salt=SALT).dumps(secrets.token_urlsafe(18))


def read(secret: str, token: str | None) -> str:
    """The token's key, or TokenRefused with the Chinese reason."""
    if not token or len(token) > 200:
        raise TokenRefused("表单缺少防重复提交标记，请刷新页面后重新填写。")
    try:
        key = URLSafeTimedSerializer(secret, salt=SALT).loads(token, max_age=int(TTL.total_seconds()))
    except SignatureExpired:
        raise TokenRefused("该表单已打开超过7天，请刷新页面后重新填写。") from None
    except BadSignature:
        raise TokenRefused("表单的防重复提交标记无效，请刷新页面后重新填写。") from None
    if not isinstance(key, str) or not 16 <= len(key) <= 40:
        raise TokenRefused("表单的防重复提交标记无效，请刷新页面后重新填写。")
    return key


def claim(
    session, key: str, *, user_id: int | None, endpoint: str, result_url: str | None = None
) -> FormToken:
    """Take the token inside the session's current transaction (the record's transaction). Raises
    AlreadySubmitted (after rolling the session back) when an earlier submission holds it."""
    try:
        session.execute(
            insert(FormToken).values(
                token=key,
                user_id=user_id,
                endpoint=endpoint[:100],
                claimed_at=utcnow(),
                result_url=(result_url or "")[:500] or None,
            )
        )
    except IntegrityError:
        session.rollback()
        raise AlreadySubmitted(session.get(FormToken, key)) from None
    return session.get(FormToken, key)


def note_result(session, key: str, *, record_id=None, result_url: str | None = None) -> None:
    """What the claiming submission made (its record, the page it went on to)."""
    row = session.get(FormToken, key)
    if row is None:
        return
    if record_id is not None:
        row.record_id = str(record_id)[:40]
    if result_url:
        row.result_url = result_url[:500]


def forget_old(session, now: dt.datetime | None = None) -> int:
    """Drop claims older than the longest a form may stay open (their tokens are refused anyway)."""
    cutoff = (now or utcnow()) - TTL - dt.timedelta(days=1)
    return session.execute(delete(FormToken).where(FormToken.claimed_at < cutoff)).rowcount or 0


def claimed(session, key: str) -> FormToken | None:
    return session.scalar(select(FormToken).where(FormToken.token == key))


__all__ = [
    "FIELD",
    "TTL",
    "AlreadySubmitted",
    "TokenRefused",
    "claim",
    "claimed",
    "forget_old",
    "issue",
    "note_result",
    "read",
]
