"""Accounts: password policy, login with lockout, sessions kept on the server, creating users.

What a login attempt may learn: one answer ("登录名或密码错误") for an unknown login name, a wrong
password, a locked account and a disabled one, after the same work (one scrypt check). The lock is
told to the account's owner at their next successful login and shown to admins, never at the login page.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
from typing import NamedTuple

from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

from choices import Role
from models import User, UserSession, db, utcnow
from services import clock
from services.validation import InvalidInput

PASSWORD_MIN = 10
PASSWORD_MAX = 128
MIN_STRENGTH = 3  # zxcvbn score 0-4: below 3 a password falls to an offline guess in hours or less
MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)
IDLE_TIMEOUT = dt.timedelta(minutes=30)
SEEN_EVERY = dt.timedelta(minutes=1)  # a session's last_seen_at is written at most this often
LOGIN_REFUSED = "登录名或密码错误"
PASSWORD_RULES = (
    "至少10个字符，不能与登录名相同，不能是常见密码或简单规律（如 1234567890、aaaaaaaaaa、qwertyuiop）"
)

# --------------------------------------------------------------------------- password policy

# Words the checker should treat as guessable in any password of this app.
_APP_WORDS = ("tonghu", "童护", "admin", "password", "mima", "luoyun", "fuling", "chongqing")
# zxcvbn keeps the user inputs of a call in a module-level dictionary: one call at a time.
_zxcvbn_lock = threading.Lock()


def check_password_policy(password: str, username: str, *, personal: tuple[str, ...] = ()) -> None:
    """Raise InvalidInput with the reason in Chinese when ``password`` may not be used."""
    password = password or ""
    if len(password) < PASSWORD_MIN:
        raise InvalidInput(f"密码至少{PASSWORD_MIN}个字符")
    if len(password) > PASSWORD_MAX:
        raise InvalidInput(f"密码不能超过{PASSWORD_MAX}个字符")
    if username and password.strip().lower() == username.strip().lower():
        raise InvalidInput("密码不能与登录名相同")
    weakness = password_weakness(password, (username, *personal))
    if weakness:
        raise InvalidInput(weakness)


def password_weakness(password: str, personal: tuple[str, ...] = ()) -> str | None:
    """Why ``password`` is too easy to guess (Chinese), or None when it is strong enough."""
    inputs = [p for p in (*personal, *_APP_WORDS) if p]
    with _zxcvbn_lock:
        result = zxcvbn(password[:72], user_inputs=inputs)  # zxcvbn refuses longer input
    if result["score"] >= MIN_STRENGTH:
        return None
    reasons = []
    for match in sorted(result["sequence"], key=lambda m: -len(m["token"])):
        reason = _reason(match)
        if reason and reason not in reasons:
            reasons.append(reason)
    why = "；".join(reasons[:2]) if reasons else "长度够了，但组合太简单"
    return f"密码太容易被猜到：{why}。请改用更长、不常见的组合，例如三四个无关的词加几位数字"


def _reason(match: dict) -> str | None:
    """One zxcvbn match in our words (its own feedback is English only)."""
    token = match["token"]
    if len(token) < 3:
        return None
    pattern = match["pattern"]
    if pattern == "dictionary":
        name = match["dictionary_name"]
        if name == "passwords":
            return f"“{token}”是常见密码" if len(token) >= 4 else None
        if name == "user_inputs":
            return f"包含登录名、姓名或本系统名称（“{token}”）"
        if name in ("surnames", "male_names", "female_names"):
            return f"“{token}”是常见姓名"
        return f"“{token}”是常见单词" if len(token) >= 4 else None
    if pattern == "spatial":
        return f"“{token}”是键盘上相邻的按键"
    if pattern == "repeat":
        return f"“{token}”是重复的字符"
    if pattern == "sequence":
        return f"“{token}”是连续的字母或数字"
    if pattern == "regex" and match.get("regex_name") == "recent_year":
        return f"“{token}”是近年的年份"
    if pattern == "date":
        return f"“{token}”是日期或年份"
    return None


def set_password(user: User, password: str) -> None:
    """Check the policy, hash, and move the account's epoch (every session of it ends)."""
    check_password_policy(password, user.username, personal=tuple(filter(None, [user.display_name])))
    user.password_hash = generate_password_hash(password, method="scrypt")
    user.session_epoch = (user.session_epoch or 0) + 1


# --------------------------------------------------------------------------- login


class LoginRefused(Exception):
    """Login refused, with the Chinese message to show (always the same one)."""


class Login(NamedTuple):
    user: User
    # The owner's notice of a lock since their previous login (Chinese), or None.
    lock_notice: str | None


def authenticate(username: str, password: str, now: dt.datetime | None = None) -> Login:
    """The account for a correct login, or LoginRefused. Counts failures and locks; the caller commits
    (with its audit row), so every outcome costs one lookup, one scrypt check and one commit."""
    now = now or utcnow()
    user = db.session.scalar(db.select(User).where(User.username == (username or "").strip()[:50]))
    # The password is checked whatever else is wrong: the answer takes as long for every refusal.
    correct = check_password_hash(user.password_hash if user else _DUMMY_HASH, password or "")
    if user is None or not user.active:
        raise LoginRefused(LOGIN_REFUSED)
    if user.locked_until and user.locked_until > now:
        raise LoginRefused(LOGIN_REFUSED)
    if not correct:
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until = now + LOCKOUT
            user.last_locked_at = now
            user.failed_logins = 0
        raise LoginRefused(LOGIN_REFUSED)
    notice = None
    if user.last_locked_at and (user.last_login_at is None or user.last_locked_at > user.last_login_at):
        notice = (
            f"提醒：您的账号于 {clock.local(user.last_locked_at):%Y-%m-%d %H:%M} 因密码连续错误{MAX_FAILURES}次"
            "被锁定过15分钟。如果不是您本人输错，请立即修改密码并告知系统管理员。"
        )
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    return Login(user, notice)


_DUMMY_HASH = generate_password_hash("not-a-real-password", method="scrypt")


def recently_locked(now: dt.datetime, days: int = 7) -> list[User]:
    """Accounts locked by wrong passwords in the last ``days`` days, newest first (for admins)."""
    return list(
        db.session.scalars(
            db.select(User)
            .where(User.last_locked_at >= now - dt.timedelta(days=days))
            .order_by(User.last_locked_at.desc())
        )
    )


# --------------------------------------------------------------------------- sessions


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(user: User, ip: str | None, now: dt.datetime | None = None) -> str:
    """A new server-side session for ``user``; returns the random id the cookie carries."""
    now = now or utcnow()
    db.session.execute(  # forget this account's ended and long-idle sessions
        db.delete(UserSession).where(
            UserSession.user_id == user.id,
            (UserSession.ended_at.is_not(None)) | (UserSession.last_seen_at < now - dt.timedelta(days=1)),
        )
    )
    token = secrets.token_urlsafe(32)
    db.session.add(
        UserSession(token_hash=_digest(token), user_id=user.id, created_at=now, last_seen_at=now, ip=ip)
    )
    return token


class SessionState(NamedTuple):
    row: UserSession | None
    timed_out: bool


def live_session(user_id: int, token: str | None, now: dt.datetime | None = None) -> SessionState:
    """The open session of ``user_id`` whose cookie carries ``token``. One idle past IDLE_TIMEOUT is
    ended here. Marks it seen (at most once a minute; the caller commits)."""
    if not token or not isinstance(token, str):
        return SessionState(None, False)
    now = now or utcnow()
    row = db.session.scalar(
        db.select(UserSession).where(UserSession.token_hash == _digest(token), UserSession.user_id == user_id)
    )
    if row is None or row.ended_at is not None:
        return SessionState(None, False)
    if now - row.last_seen_at > IDLE_TIMEOUT:
        row.ended_at = now
        return SessionState(None, True)
    if now - row.last_seen_at >= SEEN_EVERY:
        row.last_seen_at = now
    return SessionState(row, False)


def end_session(token: str | None, now: dt.datetime | None = None) -> None:
    """Logout: this session only; the account's other devices stay logged in."""
    if token and isinstance(token, str):
        db.session.execute(
            db.update(UserSession)
            .where(UserSession.token_hash == _digest(token), UserSession.ended_at.is_(None))
            .values(ended_at=now or utcnow())
        )


def end_sessions(user_id: int, *, keep: str | None = None, now: dt.datetime | None = None) -> None:
    """End every open session of an account except ``keep`` (password changed, account disabled)."""
    stmt = db.update(UserSession).where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
    if keep:
        stmt = stmt.where(UserSession.token_hash != _digest(keep))
    db.session.execute(stmt.values(ended_at=now or utcnow()))


# --------------------------------------------------------------------------- accounts


def create_user(
    username: str,
    password: str,
    role: str,
    *,
    display_name: str | None = None,
    village_id: int | None = None,
    assigned_village_ids=(),
    staff_id: int | None = None,
) -> User:
    username = (username or "").strip()
    if not username:
        raise InvalidInput("请填写登录名")
    if Role(role) is Role.DIRECTOR and not village_id:
        raise InvalidInput("儿童主任账号必须指定所属村（社区）")
    if db.session.scalar(db.select(User.id).where(User.username == username)):
        raise InvalidInput("该登录名已存在")
    user = User(
        username=username,
        role=Role(role).value,
        display_name=display_name,
        village_id=village_id,
        staff_id=staff_id,
    )
    set_password(user, password)
    if assigned_village_ids:
        from models import Village

        user.assigned_villages = list(
            db.session.scalars(db.select(Village).where(Village.id.in_(list(assigned_village_ids))))
        )
    db.session.add(user)
    return user
