"""Checks of what people type: ID numbers (GB 11643), phones, names, dates. Messages are Chinese."""

import datetime as dt
import re

from stdnum import exceptions as stdnum_exc
from stdnum import numdb
from stdnum.cn import ric

from choices import Gender

NAME_MAX = 50

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}(-\d{1,6})?$")


class InvalidInput(ValueError):
    """A value a person typed that we refuse, with the Chinese message to show next to the field."""


def clean_id_number(value: str) -> str:
    """Validate a 身份证号 and return it normalised (upper-case X). Raises InvalidInput."""
    raw = (value or "").strip().replace(" ", "").upper()
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
    raw = (value or "").strip().replace(" ", "")
    if not raw:
        return None
    if _MOBILE.fullmatch(raw) or _LANDLINE.fullmatch(raw):
        return raw
    raise InvalidInput("电话号码格式不正确：手机号为11位（1开头），座机如 023-72345678")


def clean_name(value: str | None) -> str:
    name = (value or "").strip()
    if not name:
        raise InvalidInput("请填写姓名")
    if len(name) > NAME_MAX:
        raise InvalidInput(f"姓名不能超过{NAME_MAX}个字")
    return name


def mask_id_number(value: str | None) -> str:
    """5001**********1234: the region prefix and the last four digits only."""
    if not value:
        return ""
    if len(value) < 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]
