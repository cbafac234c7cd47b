"""Checks of what people type: ID numbers (GB 11643), phones, names, text, money, whole numbers.
Messages are Chinese.

Everything is normalised before it is validated, stored or compared: identifiers and phones go
through NFKC with every decimal digit made ASCII (full-width ５, Arabic-Indic ٥ …) and x made X;
names and text refuse NUL, other control characters, zero-width and bidi-control characters;
money is a finite Decimal with at most two places, in a range, with thousands separators only
where they belong. The form-field types of views/fields.py are thin wrappers around these.
"""

import datetime as dt
import re
import unicodedata
from decimal import Decimal, InvalidOperation

from stdnum import exceptions as stdnum_exc
from stdnum import numdb
from stdnum.cn import ric

from choices import Gender

NAME_MAX = 50

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}(-\d{1,6})?$")


class InvalidInput(ValueError):
    """A value a person typed that we refuse, with the Chinese message to show next to the field."""


# --------------------------------------------------------------------------- normalising

# Invisible characters that change how text reads without showing: zero-width and bidi controls.
INVISIBLE = frozenset(
    "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u061c\u180e"
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u00ad"
)
_SPACES = re.compile(r"[\s\u3000]+")


def ascii_digits(text: str) -> str:
    """NFKC, then every decimal digit of any script as its ASCII digit (５ ٥ ۵ ५ → 5)."""
    text = unicodedata.normalize("NFKC", text)
    if text.isascii():
        return text
    return "".join(
        str(unicodedata.decimal(ch)) if not ch.isascii() and unicodedata.category(ch) == "Nd" else ch
        for ch in text
    )


def normalize_identifier(value) -> str:
    """An ID number as stored and compared: ASCII digits, upper-case X, no spaces or invisible
    characters. Does not validate (``clean_id_number`` does)."""
    text = ascii_digits(str(value or ""))
    text = "".join(ch for ch in text if ch not in INVISIBLE)
    return _SPACES.sub("", text).upper()


def normalize_phone(value) -> str:
    """A phone number as stored and compared: ASCII digits; spaces, dots and brackets dropped,
    dashes kept as typed between groups (023-72345678)."""
    text = ascii_digits(str(value or ""))
    text = "".join(ch for ch in text if ch not in INVISIBLE)
    text = re.sub(r"[\u2010-\u2015\u2212\u30fc]", "-", text)
    return re.sub(r"[\s().]", "", text)


def unsafe_character(text: str, *, multiline: bool = False) -> str | None:
    """The description of the first character a person's text may not contain, or None: NUL and
    other control characters (tab and line breaks allowed in multi-line text), zero-width and
    bidi-control characters, unpaired surrogates and non-characters."""
    for ch in text:
        if ch in INVISIBLE:
            return "不可见字符（零宽字符或文字方向控制符）"
        code = ord(ch)
        category = unicodedata.category(ch)
        if category == "Cc":
            if multiline and ch in "\t\n\r":
                continue
            return "空字符或控制字符" if code else "空字符（NUL）"
        if category in ("Cf", "Cs", "Co"):
            return "无法显示的特殊字符"
    return None


def clean_text(value, *, label: str = "内容", max_length: int | None = None, multiline: bool = False):
    """Free text as typed (stripped); None when empty. Refuses unsafe characters and over-long text."""
    if value is None:
        return None
    text = unicodedata.normalize("NFC", str(value)).strip()
    if not text:
        return None
    if multiline:
        text = text.replace("\r\n", "\n")
    problem = unsafe_character(text, multiline=multiline)
    if problem:
        raise InvalidInput(f"{label}中含有{problem}，请删除后重新填写")
    if max_length is not None and len(text) > max_length:
        raise InvalidInput(f"{label}不能超过{max_length}个字（当前{len(text)}个）")
    return text


def clean_id_number(value: str) -> str:
    """Validate a 身份证号 and return it normalised (ASCII digits, upper-case X). Raises InvalidInput."""
    raw = normalize_identifier(value)
    if not raw:
        raise InvalidInput("请填写身份证号")
    if not re.fullmatch(r"\d{17}[\dX]", raw):
        if len(raw) != 18:
            raise InvalidInput(f"身份证号应为18位，当前为{len(raw)}位")
        raise InvalidInput("身份证号只能由数字组成，最后一位可以是X")
    try:
        born = ric.get_birth_date(raw)
    except stdnum_exc.ValidationError:
        raise InvalidInput("身份证号中的出生日期（第7-14位）无效") from None
    if not _region_ok(raw):
        raise InvalidInput("身份证号前6位不是有效的行政区划代码")
    if ric.calc_check_digit(raw) != raw[-1]:
        raise InvalidInput("身份证号校验位不正确，请核对最后一位")
    if born > dt.date.today():
        raise InvalidInput("身份证号中的出生日期晚于今天")
    return raw


def _region_ok(raw: str) -> bool:
    """A known county code, whatever the birth year: people keep numbers issued under codes that were
    created after their birth (涪陵区 500102 dates from 1997), which python-stdnum's own check refuses."""
    return any(props for _, props in numdb.get("cn/loc").info(raw[:6]))


def birth_date_of(id_number: str) -> dt.date:
    return ric.get_birth_date(id_number)


def gender_of(id_number: str) -> str:
    return Gender.MALE.value if int(id_number[16]) % 2 else Gender.FEMALE.value


def check_birth_date(birth_date: dt.date | None, id_number: str | None) -> None:
    if birth_date is None:
        return
    if birth_date > dt.date.today():
        raise InvalidInput("出生日期不能晚于今天")
    if id_number and birth_date != birth_date_of(id_number):
        expected = birth_date_of(id_number).isoformat()
        raise InvalidInput(f"出生日期与身份证号不一致（身份证号显示为{expected}）")


def check_gender(gender: str | None, id_number: str | None) -> None:
    if gender and id_number and gender != gender_of(id_number):
        raise InvalidInput(f"性别与身份证号不一致（身份证号显示为{Gender.label_of(gender_of(id_number))}）")


def clean_phone(value: str | None) -> str | None:
    raw = normalize_phone(value)
    if not raw:
        return None
    if _MOBILE.fullmatch(raw) or _LANDLINE.fullmatch(raw):
        return raw
    raise InvalidInput("电话号码格式不正确：手机号为11位（1开头），座机如 023-72345678")


def clean_name(value: str | None, *, label: str = "姓名", max_length: int = NAME_MAX) -> str:
    name = unicodedata.normalize("NFC", str(value or "")).strip()
    if not name:
        raise InvalidInput(f"请填写{label}")
    problem = unsafe_character(name)
    if problem:
        raise InvalidInput(f"{label}中含有{problem}，请删除后重新填写")
    if len(name) > max_length:
        raise InvalidInput(f"{label}不能超过{max_length}个字")
    return name


# --------------------------------------------------------------------------- numbers

# Every primary key is a 32-bit integer on PostgreSQL; larger ids cannot name a row.
ID_MAX = 2**31 - 1
INT_MAX = 2**31 - 1
_INTEGER = re.compile(r"[+-]?[0-9]+")


def parse_int(value, *, lo: int | None = None, hi: int | None = None) -> int | None:
    """A whole number as typed or put in a URL (full-width and other digits allowed), or None when it
    is not one or lies outside [lo, hi]. No exponent, no decimals, no underscores."""
    if value is None:
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    else:
        text = ascii_digits(str(value)).strip()
        if not _INTEGER.fullmatch(text) or len(text) > 20:
            return None
        number = int(text)
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        return None
    return number


def parse_id(value) -> int | None:
    """A record id from a URL or a form: 1 … ID_MAX, else None (the caller answers 记录不存在)."""
    return parse_int(value, lo=1, hi=ID_MAX)


def clean_int(value, *, label: str = "数值", lo: int = 0, hi: int = INT_MAX) -> int | None:
    """A whole number typed into a form; None when empty. Raises InvalidInput."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number = parse_int(value)
    if number is None:
        raise InvalidInput(f"{label}应填写整数，如 {max(lo, 1)}")
    if number < lo or number > hi:
        raise InvalidInput(f"{label}应在{lo}至{hi}之间")
    return number


CENT = Decimal("0.01")
_PLAIN_AMOUNT = re.compile(r"[0-9]+(\.[0-9]{1,2})?")
_GROUPED_AMOUNT = re.compile(r"[0-9]{1,3}(,[0-9]{3})+(\.[0-9]{1,2})?")
_TOO_PRECISE = re.compile(r"[0-9,]*\.[0-9]{3,}")


def clean_money(
    value,
    *,
    label: str = "金额",
    lo: Decimal | int = 0,
    hi: Decimal | int = 10_000_000,
    allow_zero: bool = True,
    allow_negative: bool = False,
) -> Decimal | None:
    """A money amount typed by a person, as a Decimal with two places; None when empty.

    Accepts 1200, 1200.5, 1,280.00, ¥1,280 and the full-width forms of these; refuses exponents
    (1e30), NaN/Infinity, more than two decimal places, misplaced thousands separators ("1,2,3")
    and values outside [lo, hi]. Raises InvalidInput."""
    if value is None:
        return None
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        text = format(Decimal(value), "f")
    else:
        text = ascii_digits(str(value)).strip()
    text = text.replace(" ", "").removesuffix("元").lstrip("¥￥")
    if not text:
        return None
    negative = text.startswith("-")
    if negative or text.startswith("+"):
        text = text[1:]
    if _TOO_PRECISE.fullmatch(text):
        raise InvalidInput(f"{label}最多保留两位小数（精确到分）")
    if not (_PLAIN_AMOUNT.fullmatch(text) or _GROUPED_AMOUNT.fullmatch(text)):
        raise InvalidInput(f"{label}格式不正确，请填写数字，如 1280.00 或 1,280.00")
    try:
        amount = Decimal(text.replace(",", "")).quantize(CENT)
    except InvalidOperation:
        raise InvalidInput(f"{label}格式不正确，请填写数字，如 1280.00") from None
    if negative:
        if not allow_negative:
            raise InvalidInput(f"{label}不能为负数" if allow_zero else f"{label}必须大于0")
        amount = -amount
    if amount == 0 and not allow_zero:
        raise InvalidInput(f"{label}不能为0" if allow_negative else f"{label}必须大于0")
    low, high = Decimal(lo), Decimal(hi)
    if allow_negative:
        low = min(low, -high)
    if abs(amount) > high:
        raise InvalidInput(f"{label}不能超过{high:,.2f}元")
    if amount < low:
        raise InvalidInput(f"{label}不能低于{low:,.2f}元")
    return amount


def mask_id_number(value: str | None) -> str:
    """5001**********1234: the region prefix and the last four digits only."""
    if not value:
        return ""
    if len(value) < 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]
