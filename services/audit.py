"""The audit log: every create, update and delete through the ORM, and sensitive reads on request.

The view layer says who is acting (``set_actor``) at the start of each request; the session
listener below writes one AuditLog row per changed record, with the changed fields old→new.
"""

import contextvars
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import event, insert, inspect
from sqlalchemy.orm import Session

from models import AuditLog, RuleRun, UserSession, utcnow
from services.validation import mask_id_number


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    username: str | None
    ip: str | None = None


SYSTEM = Actor(None, "系统")
_actor: contextvars.ContextVar[Actor] = contextvars.ContextVar("audit_actor", default=SYSTEM)

# Tables whose rows are not worth a line of their own (a login's session row: the login is logged).
_SKIPPED = {AuditLog.__tablename__, RuleRun.__tablename__, UserSession.__tablename__}
# Columns never copied into the log in clear.
_MASKED = {"id_number"}
_SECRET = {"password_hash", "token_hash"}
# Derived or bookkeeping columns that would only add noise to a change record. A login's own
# bookkeeping (last login time, failed-login count, session epoch) is told by the 登录/登录失败
# rows: an update that changes nothing else writes no row of its own.
_NOISE = {
    "name_pinyin",
    "name_initials",
    "id_last4",
    "updated_at",
    "version",
    "last_login_at",
    "failed_logins",
    "session_epoch",
    "status_changed_at",  # the archive/restore history's stamp: the archive row tells it
}


def set_actor(actor: Actor) -> contextvars.Token:
    return _actor.set(actor)


def current_actor() -> Actor:
    return _actor.get()


def _plain(value):
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _shown(key, value):
    if key in _SECRET:
        return "******" if value else None
    if key in _MASKED and value:
        return mask_id_number(value)
    return _plain(value)


def _changes(obj, only_modified: bool) -> dict:
    state = inspect(obj)
    changes = {}
    for attr in state.mapper.column_attrs:
        key = attr.key
        if key in _NOISE:
            continue
        hist = state.attrs[key].history
        if only_modified:
            if not hist.has_changes():
                continue
            old = hist.deleted[0] if hist.deleted else None
            new = hist.added[0] if hist.added else None
            if _plain(old) == _plain(new):
                continue
            changes[key] = [_shown(key, old), _shown(key, new)]
        else:
            value = getattr(obj, key)
            if value is not None:
                changes[key] = [None, _shown(key, value)]
    for rel in state.mapper.relationships:
        # Only many-to-many collections (categories, team …) are recorded on this row.
        if rel.secondary is None:
            continue
        hist = state.attrs[rel.key].history
        if not hist.has_changes():
            continue
        before = [str(o) for o in (hist.unchanged or [])] + [str(o) for o in (hist.deleted or [])]
        after = [str(o) for o in (hist.unchanged or [])] + [str(o) for o in (hist.added or [])]
        changes[rel.key] = [sorted(before), sorted(after)]
    return changes


def _row(action, obj, changes, actor):
    state = inspect(obj)
    pk = state.mapper.primary_key[0].key
    record_id = getattr(obj, pk)
    return {
        "at": utcnow(),
        "user_id": actor.user_id,
        "username": actor.username,
        "ip": actor.ip,
        "action": action,
        "table_name": obj.__tablename__,
        "record_id": record_id if isinstance(record_id, int) else None,
        "record_version": getattr(obj, "version", None),
        "changes": changes or None,
        "summary": str(obj)[:500],
    }


@event.listens_for(Session, "after_flush")
def _log_flush(session, flush_context):
    if session.info.get("skip_audit"):
        return
    actor = current_actor()
    rows = []
    for obj in session.new:
        if getattr(obj, "__tablename__", None) and obj.__tablename__ not in _SKIPPED:
            rows.append(_row("create", obj, _changes(obj, only_modified=False), actor))
    for obj in session.dirty:
        if getattr(obj, "__tablename__", None) in _SKIPPED or not session.is_modified(obj):
            continue
        changes = _changes(obj, only_modified=True)
        if changes:
            action = session.info.pop(("audit_action", id(obj)), "update")
            rows.append(_row(action, obj, changes, actor))
    for obj in session.deleted:
        if getattr(obj, "__tablename__", None) not in _SKIPPED:
            rows.append(_row("delete", obj, _changes(obj, only_modified=False), actor))
    if rows:
        _write(session, rows)


# One row per record and transaction: a save that flushes twice (a query in between, a value filled
# after the first flush) is one change in the log, not two. {(table, id): (audit row id, row)}.
_LOGGED = "audit_logged"


def _merged(first: dict, later: dict) -> dict:
    changes = dict(first["changes"] or {})
    for key, (old, new) in (later["changes"] or {}).items():
        changes[key] = [changes[key][0] if key in changes else old, new]
    # a created record stays "create"; a plain update takes the name of a later labelled one (archive)
    action = first["action"] if first["action"] != "update" else later["action"]
    return {**first, "action": action, "changes": changes or None, "record_version": later["record_version"]}


def _write(session, rows: list[dict]) -> None:
    logged = session.info.setdefault(_LOGGED, {})
    fresh = []
    conn = session.connection()
    for row in rows:
        key = (row["table_name"], row["record_id"])
        earlier = logged.get(key) if row["record_id"] is not None else None
        if earlier is not None and "delete" not in (earlier[1]["action"], row["action"]):
            merged = _merged(earlier[1], row)
            done = conn.execute(
                AuditLog.__table__.update()
                .where(AuditLog.__table__.c.id == earlier[0])
                .values(
                    action=merged["action"],
                    changes=merged["changes"],
                    record_version=merged["record_version"],
                    summary=merged["summary"],
                )
            )
            if done.rowcount:
                logged[key] = (earlier[0], merged)
                continue
        fresh.append(row)
    if not fresh:
        return
    ids = (
        conn.execute(insert(AuditLog).returning(AuditLog.id, sort_by_parameter_order=True), fresh)
        .scalars()
        .all()
    )
    for row, row_id in zip(fresh, ids, strict=True):
        if row["record_id"] is not None:
            logged[(row["table_name"], row["record_id"])] = (row_id, row)


@event.listens_for(Session, "after_transaction_end")
def _forget_logged(session, transaction):
    if transaction.parent is None:
        session.info.pop(_LOGGED, None)


def label_next_change(session, obj, action: str) -> None:
    """Name the next update of ``obj`` (e.g. "archive", "restore") instead of a plain "update"."""
    session.info[("audit_action", id(obj))] = action


def record(session, action: str, *, table: str | None = None, record_id=None, summary=None, changes=None):
    """Log an event that is not a row change: a dossier opened, an export, an ID number revealed."""
    actor = current_actor()
    session.add(
        AuditLog(
            user_id=actor.user_id,
            username=actor.username,
            ip=actor.ip,
            action=action,
            table_name=table,
            record_id=record_id,
            changes=changes,
            summary=(summary or "")[:500],
        )
    )
