"""Accounts: password policy, login with lockout, creating users."""

import datetime as dt

from werkzeug.security import check_password_hash, generate_password_hash

from choices import Role
from models import User, db, utcnow
from services.validation import InvalidInput

PASSWORD_MIN = 10
MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)


def check_password_policy(password: str, username: str) -> None:
    if len(password or "") < PASSWORD_MIN:
        raise InvalidInput(f"密码至少{PASSWORD_MIN}个字符")
    if username and password.strip().lower() == username.strip().lower():
        raise InvalidInput("密码不能与登录名相同")


def set_password(user: User, password: str) -> None:
    check_password_policy(password, user.username)
    user.password_hash = generate_password_hash(password, method="scrypt")
    user.session_epoch = (user.session_epoch or 0) + 1


class LoginRefused(Exception):
    """Login refused, with the Chinese message to show."""


def authenticate(username: str, password: str, now: dt.datetime | None = None) -> User:
    """Return the user for a correct login, or raise LoginRefused. Counts failures and locks."""
    now = now or utcnow()
    user = db.session.scalar(db.select(User).where(User.username == (username or "").strip()))
    generic = "登录名或密码错误"
    if user is None:
        # Same work as a real check, so timing does not tell which login names exist.
        check_password_hash(_DUMMY_HASH, password or "")
        raise LoginRefused(generic)
    if user.locked_until and user.locked_until > now:
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
        raise LoginRefused(f"密码连续错误{MAX_FAILURES}次，账号已锁定，请{minutes}分钟后再试")
    if not check_password_hash(user.password_hash, password or ""):
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
            db.session.commit()
            raise LoginRefused(f"密码连续错误{MAX_FAILURES}次，账号已锁定15分钟")
        left = MAX_FAILURES - user.failed_logins
        db.session.commit()
        raise LoginRefused(f"{generic}（再错{left}次将锁定15分钟）")
    if not user.active:
        raise LoginRefused("该账号已停用，请联系系统管理员")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    db.session.commit()
    return user


_DUMMY_HASH = generate_password_hash("not-a-real-password", method="scrypt")


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
