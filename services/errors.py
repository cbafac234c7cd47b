"""Exceptions → (HTTP status, Chinese message): the one mapping every error of the app goes through.

CRUD views (``ScopedModelView.handle_view_exception``), custom endpoints (``_run_view`` of
``SecureView``/``ScopedModelView``) and the app's error handlers all call ``describe``; nothing
else turns an exception into words. No SQL, parameter, traceback or English library text is ever
part of an answer: constraint failures become the field's Chinese message, a stale version or a
lost race a 409, an unreachable database a 503, and anything unforeseen a 500 whose reference
number is written to the server log with the traceback.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import exc as sa_exc
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from services.validation import InvalidInput

log = logging.getLogger("tonghu.errors")


@dataclass(frozen=True)
class Answer:
    """What the user is told: an HTTP status and a Chinese message (``field``: the form field the
    message belongs next to; ``reference``: the number under which a 500 is in the server log)."""

    status: int
    message: str
    field: str | None = None
    reference: str | None = None


class Refused(Exception):
    """A request refused with a Chinese message and a status (400 by default), raised anywhere a
    view or helper decides the request cannot be answered (a bad URL argument, a foreign id)."""

    def __init__(self, message: str, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


# --------------------------------------------------------------------------- words

UNAVAILABLE = "数据库暂时不可用，请稍后重试。"
BUSY = "数据库正忙（其他人正在保存），请稍后重试。"
SAVE_FAILED = "保存失败：系统出错，未保存任何内容。"
FAILED = "系统出错，操作未完成。"

HTTP_MESSAGES = {
    400: "请求有误：提交的内容格式不正确或参数超出范围。",
    401: "请先登录。",
    403: "您没有权限进行此操作。",
    404: "页面或记录不存在（可能已被删除，或不在您的管理范围内）。",
    405: "不支持这种访问方式，请使用页面上的按钮或链接。",
    409: "该记录刚被他人修改或处理，请刷新后重试。",
    413: "上传的内容过大，请拆分后分批上传。",
    414: "网址过长，请返回后重新操作。",
    429: "操作过于频繁，请稍后再试。",
    500: FAILED,
    503: UNAVAILABLE,
}
TITLES = {
    400: "请求有误",
    401: "请先登录",
    403: "没有权限",
    404: "未找到",
    405: "访问方式不支持",
    409: "记录已变化",
    413: "内容过大",
    414: "网址过长",
    429: "操作过于频繁",
    500: "系统出错",
    503: "数据库暂时不可用",
}

# What a row of each table is called in a sentence ("该支出刚被他人处理").
NOUNS = {
    "child": "儿童档案",
    "guardian": "监护人",
    "child_guardian": "监护关系",
    "staff": "工作人员",
    "village": "村（社区）",
    "user_account": "账号",
    "assessment": "评估",
    "support_service": "赋能服务",
    "visit": "走访记录",
    "mandatory_report": "强制报告",
    "alert": "预警",
    "case_file": "个案",
    "activity": "活动",
    "attendance": "签到",
    "mentor_pairing": "结对",
    "fund_source": "资金来源",
    "expense": "支出",
    "finding_note": "核查说明",
    "setting": "设置",
}

# Unique columns with their own message; any other unique column gets "{label}已存在".
UNIQUE_MESSAGES = {
    (
        "child",
        "id_number",
    ): "该身份证号的儿童已登记（可能已归档或属于其他村（社区）），请先在名册或已归档儿童中查找",
    ("guardian", "id_number"): "该身份证号的监护人已登记，请在儿童表单中直接选择",
    ("village", "name"): "已有同名的村（社区）",
    ("village", "code"): "该编码已被其他村（社区）使用",
    ("user_account", "username"): "该登录名已被使用，请换一个",
    ("child_guardian", "child_id,guardian_id"): "同一监护人不能重复添加到同一名儿童",
    ("attendance", "activity_id,child_id"): "该儿童已签到",
    ("attendance", "activity_id,guardian_id"): "该监护人已签到",
    ("attendance", "activity_id,staff_id"): "该工作人员已签到",
    ("finding_note", "rule,target,target_id"): "另一位用户刚刚保存了这条问题的说明，请查看后再修改",
    ("alert", "condition_key"): "该情况已有一条未办结的预警",
}


def new_reference() -> str:
    """A short number a person can read out on the phone: 8 upper-case hex digits."""
    return secrets.token_hex(4).upper()


def is_chinese(text: str | None) -> bool:
    return bool(text) and re.search(r"[\u4e00-\u9fff]", text) is not None


def describe(
    exc: BaseException,
    *,
    labels: dict | None = None,
    verb: str = "修改",
    context: str = "",
) -> Answer:
    """The answer for ``exc``. ``labels``: column → Chinese label (the view's ``column_labels``),
    for a constraint failure on a column without a message of its own; ``verb``: what the user was
    doing to the record (修改 in forms, 处理 on workflow buttons); ``context``: logged with a 500."""
    if isinstance(exc, Refused):
        return Answer(exc.status, exc.message, exc.field)
    if isinstance(exc, InvalidInput):
        return Answer(400, str(exc), getattr(exc, "field", None))
    if isinstance(exc, HTTPException):
        return _http(exc)
    if isinstance(exc, StaleDataError):
        noun = NOUNS.get(_stale_table(exc), "记录")
        return Answer(409, f"该{noun}刚被他人{verb}，请刷新后重试")
    if isinstance(exc, sa_exc.IntegrityError):
        return _integrity(exc, labels or {})
    if _unavailable(exc):
        # the operator's trace: the driver's own words (never the statement or its values)
        log.warning(
            "数据库不可用（%s）：%s", type(exc).__name__, getattr(exc, "orig", None) or exc.__class__.__name__
        )
        return Answer(503, BUSY if _locked(exc) else UNAVAILABLE)
    if isinstance(exc, sa_exc.DataError) or _out_of_range(exc):
        return Answer(400, "输入的数值超出范围或格式不正确，请核对后重新填写")
    return unexpected(exc, context)


def unexpected(exc: BaseException, context: str = "") -> Answer:
    """A 500: the reference number goes to the log with the traceback, and to the user."""
    reference = new_reference()
    log.error("错误编号 %s %s", reference, context, exc_info=(type(exc), exc, exc.__traceback__))
    return Answer(
        500, f"{FAILED}错误编号：{reference}（已记入服务器日志，请告知系统管理员）。", None, reference
    )


# --------------------------------------------------------------------------- HTTP


def _http(exc: HTTPException) -> Answer:
    status = exc.code or 500
    description = exc.description if isinstance(exc.description, str) else None
    if is_chinese(description):
        return Answer(status, description)
    if status >= 500 and status != 503:
        return unexpected(getattr(exc, "original_exception", None) or exc)
    if status == 400 and type(exc).__name__ == "CSRFError":
        return Answer(400, "页面已过期或缺少安全令牌，请刷新页面后重新提交。")
    return Answer(status, HTTP_MESSAGES.get(status, HTTP_MESSAGES[400] if status < 500 else FAILED))


# --------------------------------------------------------------------------- the database


def _stale_table(exc: StaleDataError) -> str:
    match = re.search(r"on table '([\w.]+)'", str(exc))
    return match.group(1).split(".")[-1] if match else ""


def _integrity(exc: sa_exc.IntegrityError, labels: dict) -> Answer:
    kind, table, columns = constraint_of(exc)
    label = None
    if len(columns) == 1:
        label = labels.get(columns[0]) or _COMMON_LABELS.get(columns[0])
    if kind == "unique":
        message = UNIQUE_MESSAGES.get((table, ",".join(columns)))
        if message is None:
            message = f"{label}已存在，不能重复" if label else "该记录与已有记录重复，不能重复保存"
        return Answer(409, message, columns[0] if len(columns) == 1 else None)
    if kind == "not_null":
        what = label or "必填项"
        return Answer(400, f"请填写{what}", columns[0] if columns else None)
    if kind == "foreign_key":
        return Answer(409, "所选的关联记录不存在或刚被删除，请刷新后重新选择")
    return Answer(400, "填写的内容不符合要求，未保存，请核对后重试")


def constraint_of(exc: sa_exc.IntegrityError) -> tuple[str, str, list[str]]:
    """(kind, table, columns) of a constraint failure, from SQLite's or PostgreSQL's error; kind is
    unique, not_null, foreign_key or check. Only names are read, never the values."""
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    if diag is not None:  # PostgreSQL (psycopg)
        state = getattr(orig, "sqlstate", "") or ""
        table = diag.table_name or ""
        if state == "23505":
            found = re.search(r"Key \((.+?)\)=", diag.message_detail or "")
            columns = [c.strip().strip('"') for c in found.group(1).split(",")] if found else []
            return "unique", table, columns
        if state == "23502":
            return "not_null", table, [diag.column_name] if diag.column_name else []
        if state == "23503":
            return "foreign_key", table, []
        return "check", table, []
    text = str(orig.args[0]) if orig is not None and orig.args else ""
    found = re.match(r"(UNIQUE|NOT NULL) constraint failed: (.+)$", text)
    if found:
        pairs = [part.strip().split(".", 1) for part in found.group(2).split(",")]
        table = pairs[0][0] if pairs and len(pairs[0]) == 2 else ""
        columns = [p[1] for p in pairs if len(p) == 2]
        return ("unique" if found.group(1) == "UNIQUE" else "not_null"), table, columns
    if text.startswith("FOREIGN KEY"):
        return "foreign_key", "", []
    return "check", "", []


def _unavailable(exc: BaseException) -> bool:
    """The database could not be reached or is restarting (or, on SQLite, is locked by a writer)."""
    if isinstance(exc, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        text = str(exc.orig if exc.orig is not None else exc).lower()
        return not any(word in text for word in ("no such table", "no such column", "syntax error"))
    return False


def _locked(exc: BaseException) -> bool:
    text = str(getattr(exc, "orig", None) or exc).lower()
    return "database is locked" in text or "database table is locked" in text


def _out_of_range(exc: BaseException) -> bool:
    """A number too large for the database driver (SQLite's OverflowError), wrapped or not."""
    if isinstance(exc, OverflowError):
        return True
    orig = getattr(exc, "orig", None)
    return isinstance(orig, OverflowError)


# Labels of columns shared by many tables, for messages raised where no view's labels are at hand.
_COMMON_LABELS = {
    "name": "名称",
    "code": "编码",
    "id_number": "身份证号",
    "username": "登录名",
    "voucher_no": "凭证号",
    "phone": "电话",
    "title": "名称",
}


__all__ = [
    "Answer",
    "HTTP_MESSAGES",
    "NOUNS",
    "Refused",
    "TITLES",
    "UNAVAILABLE",
    "constraint_of",
    "describe",
    "is_chinese",
    "new_reference",
    "unexpected",
]
