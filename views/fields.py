"""Form-field types at the boundary: what a person types is normalised and checked here, once,
with the plain functions of services/validation.py, before any validator, view or service sees it.

``apply_field_types(form_class, model)`` gives every field of a scaffolded form (inline forms
and extra fields included) its type from the column's name and type; ``ScopedModelView`` calls it,
so a view added tomorrow gets these types without a line of its own:

- 身份证号 (``id_number``, ``*_id_number``): NFKC, ASCII digits, upper-case X, checked (GB 11643);
  an edit form shows the stored number masked, and posting the masked text back keeps it.
- phones (``phone``, ``*_phone``): NFKC, ASCII digits, checked.
- every other line of text: NUL, control, zero-width and bidi-control characters refused.
- money (``Numeric`` columns): a finite Decimal with at most two places, in a range, with
  thousands separators only where they belong.
- whole numbers and coordinates: bounded, finite, digits of any script accepted.
- dates: a real date between 1900 and 2100.
- relation dropdowns (plain and AJAX, single and multiple): a current value the user's scope
  cannot show is kept; a posted id the user could not have been offered refuses the save.
"""

from __future__ import annotations

import datetime as dt
import math
import re

from flask_admin._compat import _iter_choices_wtforms_compat
from flask_admin.contrib.sqla.fields import QuerySelectField, QuerySelectMultipleField
from flask_admin.model.fields import AjaxSelectField, AjaxSelectMultipleField
from markupsafe import Markup
from sqlalchemy import Float, Integer, Numeric
from wtforms import fields as wtf
from wtforms.fields.core import UnboundField
from wtforms.validators import NumberRange, StopValidation
from wtforms.widgets import TextInput

from services.validation import (
    INT_MAX,
    InvalidInput,
    ascii_digits,
    clean_id_number,
    clean_money,
    clean_phone,
    clean_text,
    mask_id_number,
    normalize_identifier,
    normalize_phone,
    parse_int,
)

DATE_MIN = dt.date(1900, 1, 1)
DATE_MAX = dt.date(2100, 12, 31)
KEEP = "__keep"
OUT_OF_SCOPE = "所选的{label}不在您的管理范围内或已不存在，未保存。请刷新页面后重新选择。"


def _label(field) -> str:
    """The field's label as a sentence names it: 金额（元） → 金额."""
    text = str(getattr(field.label, "text", "") or "").strip()
    for unit in ("（元）", "（天）", "（分钟）"):
        text = text.removesuffix(unit)
    return text or "内容"


def _refuse(message: str):
    raise StopValidation(message)


# --------------------------------------------------------------------------- text


class TextField(wtf.StringField):
    """One line of text: stripped, NFC; control, zero-width and bidi characters refused."""

    multiline = False

    def process_formdata(self, valuelist):
        if valuelist:
            self.data = "" if valuelist[0] is None else str(valuelist[0])

    def pre_validate(self, form):
        if self.data:
            try:
                self.data = clean_text(self.data, label=_label(self), multiline=self.multiline) or ""
            except InvalidInput as bad:
                _refuse(str(bad))


class MultilineTextField(TextField, wtf.TextAreaField):
    multiline = True


class RevealableInput(TextInput):
    """A masked 身份证号 input with 显示完整号码 beside it (for roles that may reveal): the button
    fetches the number through the view's audited ``reveal_id_view`` and puts it in the input."""

    def __call__(self, field, **kwargs):
        box = super().__call__(field, **kwargs)
        url = field.reveal_url() if getattr(field, "masked", False) else None
        if not url:
            return box
        return Markup(
            '<div class="input-group">{}<div class="input-group-append">'
            '<button type="button" class="btn btn-outline-secondary reveal-field" data-url="{}" '
            'data-target="{}">显示完整号码</button></div></div>'
        ).format(box, url, field.id)


class IdNumberField(wtf.StringField):
    """A 身份证号: normalised and checked; shown masked in an edit form, and the masked text posted
    back keeps the stored number (what the user did not reveal, the user did not change)."""

    widget = RevealableInput()

    def reveal_url(self) -> str | None:
        from flask import request, url_for
        from flask_login import current_user

        from services.permissions import may_reveal_id

        record_id = request.args.get("id")
        if not record_id or not current_user.is_authenticated or not may_reveal_id(current_user.role):
            return None
        try:
            return url_for(".reveal_id_view", id=record_id, field=self.name)
        except Exception:  # noqa: BLE001 - a view without the endpoint shows no button
            return None

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        raw = "" if valuelist[0] is None else str(valuelist[0]).strip()
        stored = self.object_data
        if stored and raw == mask_id_number(stored):
            self.data = stored
        else:
            self.data = normalize_identifier(raw) or None

    def pre_validate(self, form):
        if self.data:
            try:
                self.data = clean_id_number(self.data)
            except InvalidInput as bad:
                _refuse(str(bad))

    def _value(self):
        if self.raw_data:
            return str(self.raw_data[0] or "")
        if self.data and self.data == self.object_data:
            return mask_id_number(self.data)
        return self.data or ""

    @property
    def masked(self) -> bool:
        """Whether the page shows this field's stored number masked (a reveal button belongs by it)."""
        return bool(self.object_data) and not self.raw_data


class PhoneField(wtf.StringField):
    def process_formdata(self, valuelist):
        if valuelist:
            self.data = normalize_phone(valuelist[0]) or None

    def pre_validate(self, form):
        if self.data:
            try:
                self.data = clean_phone(self.data)
            except InvalidInput as bad:
                _refuse(str(bad))


# --------------------------------------------------------------------------- numbers


class MoneyField(wtf.StringField):
    """Money as typed: 1280, 1,280.00, ¥1280.5 (full-width too) → Decimal('1280.00')."""

    def __init__(
        self,
        label=None,
        validators=None,
        *,
        lo=0,
        hi=10_000_000,
        allow_zero=True,
        allow_negative=False,
        **kwargs,
    ):
        for unused in ("places", "rounding", "use_locale", "number_format"):
            kwargs.pop(unused, None)
        super().__init__(label, validators, **kwargs)
        self.lo, self.hi = lo, hi
        self.allow_zero, self.allow_negative = allow_zero, allow_negative

    def process_formdata(self, valuelist):
        if valuelist:
            self.data = valuelist[0]

    def pre_validate(self, form):
        try:
            self.data = clean_money(
                self.data,
                label=_label(self),
                lo=self.lo,
                hi=self.hi,
                allow_zero=self.allow_zero,
                allow_negative=self.allow_negative,
            )
        except InvalidInput as bad:
            self.data = None  # the page shows what was typed (raw_data); views see no number
            _refuse(str(bad))

    def _value(self):
        if self.raw_data:
            return str(self.raw_data[0] or "")
        if self.data is None or self.data == "":
            return ""
        try:
            return f"{self.data:.2f}"
        except (TypeError, ValueError):
            return str(self.data)


class WholeNumberField(wtf.IntegerField):
    """A whole number in [lo, hi] (the limits of any NumberRange validator, else the database's)."""

    def __init__(self, label=None, validators=None, *, lo=None, hi=None, **kwargs):
        super().__init__(label, validators, **kwargs)
        ranges = [v for v in self.validators if isinstance(v, NumberRange)]
        self.lo = lo if lo is not None else next((v.min for v in ranges if v.min is not None), -INT_MAX)
        self.hi = hi if hi is not None else next((v.max for v in ranges if v.max is not None), INT_MAX)

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        raw = "" if valuelist[0] is None else str(valuelist[0]).strip()
        self.data = parse_int(raw) if raw else None
        self._unreadable = bool(raw) and self.data is None

    def pre_validate(self, form):
        if getattr(self, "_unreadable", False):
            _refuse(f"{_label(self)}应填写整数，如 {max(self.lo, 1)}")
        if self.data is not None and not self.lo <= self.data <= self.hi:
            self.data = None
            _refuse(f"{_label(self)}应在{self.lo}至{self.hi}之间")

    def _value(self):
        if self.raw_data:
            return str(self.raw_data[0] or "")
        return "" if self.data is None else str(self.data)


_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
COORDINATE_RANGES = {"lon": (-180, 180), "lat": (-90, 90)}


class CoordinateField(wtf.StringField):
    """A finite decimal number (a map position): no exponent, NaN or Infinity, within a range."""

    def __init__(self, label=None, validators=None, *, lo=-1e9, hi=1e9, **kwargs):
        for unused in ("places", "rounding", "use_locale", "number_format"):
            kwargs.pop(unused, None)
        super().__init__(label, validators, **kwargs)
        self.lo, self.hi = lo, hi

    def process_formdata(self, valuelist):
        if valuelist:
            self.data = ascii_digits(str(valuelist[0] or "")).strip() or None

    def pre_validate(self, form):
        if self.data is None or isinstance(self.data, float):
            return
        text, self.data = self.data, None
        if not _DECIMAL.fullmatch(text) or len(text) > 30:
            _refuse(f"{_label(self)}应填写数字，如 107.39")
        number = float(text)
        if not math.isfinite(number) or not self.lo <= number <= self.hi:
            _refuse(f"{_label(self)}应在{self.lo}至{self.hi}之间")
        self.data = number

    def _value(self):
        if self.raw_data:
            return str(self.raw_data[0] or "")
        return "" if self.data is None else str(self.data)


class SaneDateMixin:
    """A date (or date and time) a person can mean: 1900-01-01 … 2100-12-31."""

    def post_validate(self, form, validation_stopped):
        super().post_validate(form, validation_stopped)
        value = self.data
        if isinstance(value, dt.datetime):
            value = value.date()
        if isinstance(value, dt.date) and not DATE_MIN <= value <= DATE_MAX:
            self.errors.append(f"{_label(self)}应在1900年至2100年之间")


# --------------------------------------------------------------------------- relations


def _pk_text(field, obj) -> str:
    return str(field.get_pk(obj))


class ScopedSelectField(QuerySelectField):
    """A relation dropdown limited to the user's scope (views/base.py sets ``query``). The current
    value it cannot show is offered as "keep" and kept; an id it did not offer refuses the save."""

    _raw = None

    def hidden_current(self):
        current = self.object_data
        if current is None:
            return None
        pk = _pk_text(self, current)
        if any(p == pk for p, _ in self._get_object_list()):
            return None
        return current

    def iter_choices(self):
        hidden = self.hidden_current()
        if hidden is not None:
            kept = self._raw in (None, KEEP)
            yield _iter_choices_wtforms_compat(KEEP, "（保持原值：不在您管理范围内的记录）", kept)
            for choice in super().iter_choices():
                value, label, selected = choice[:3]
                yield _iter_choices_wtforms_compat(value, label, selected and not kept)
            return
        yield from super().iter_choices()

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        self._raw = valuelist[0]
        if self._raw == KEEP:
            self._set_data(self.object_data)
            return
        super().process_formdata(valuelist)

    def pre_validate(self, form):
        raw = self._raw
        if raw == KEEP:
            return
        if raw and raw != "__None" and self.data is None:
            current = self.object_data
            if current is not None and _pk_text(self, current) == raw:
                self._set_data(current)
                return
            _refuse(OUT_OF_SCOPE.format(label=_label(self)))
        super().pre_validate(form)


class ScopedSelectMultipleField(QuerySelectMultipleField):
    """A multiple relation dropdown: values out of the user's scope are kept (and counted in the
    field's note); a posted id that was not offered refuses the save."""

    _posted = None

    def hidden_current(self) -> list:
        current = list(self.object_data or [])
        if not current:
            return []
        offered = {p for p, _ in self._get_object_list()}
        return [obj for obj in current if _pk_text(self, obj) not in offered]

    def process_formdata(self, valuelist):
        self._posted = [v for v in valuelist if v]
        super().process_formdata(self._posted)

    def pre_validate(self, form):
        hidden = self.hidden_current()
        if self._posted is not None:
            found = {_pk_text(self, obj) for obj in self.data or []}
            hidden_pks = {_pk_text(self, obj) for obj in hidden}
            if set(self._posted) - found - hidden_pks:
                _refuse(OUT_OF_SCOPE.format(label=_label(self)))
        data = list(self.data or [])
        self._set_data(data + [obj for obj in hidden if obj not in data])

    def note(self) -> Markup | None:
        hidden = self.hidden_current()
        if not hidden:
            return None
        return Markup("另有{}项不在您的管理范围内，保存时保持不变。").format(len(hidden))


class ScopedAjaxSelectField(AjaxSelectField):
    """An AJAX lookup (its loader is scoped): the current value is kept, an unknown id refused."""

    _raw = None

    def process_formdata(self, valuelist):
        if valuelist:
            self._raw = valuelist[0]
        super().process_formdata(valuelist)

    def pre_validate(self, form):
        raw = self._raw
        if raw and raw != "__None" and self.data is None:
            current = self.object_data
            if current is not None and str(self.loader.format(current)[0]) == raw:
                self._set_data(current)
                return
            _refuse(OUT_OF_SCOPE.format(label=_label(self)))
        super().pre_validate(form)


class ScopedAjaxSelectMultipleField(AjaxSelectMultipleField):
    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        self._formdata = {v for v in self._formdata if v}
        self._posted = set(self._formdata)

    def pre_validate(self, form):
        posted = getattr(self, "_posted", None)
        data = list(self.data or [])
        if posted is not None:
            found = {str(self.loader.format(obj)[0]) for obj in data}
            current = {str(self.loader.format(obj)[0]): obj for obj in self.object_data or []}
            for pk in posted - found:
                if pk not in current:
                    _refuse(OUT_OF_SCOPE.format(label=_label(self)))
                data.append(current[pk])
            self._invalid_formdata = False
            self._set_data(data)


# --------------------------------------------------------------------------- giving forms their types

_TYPED: dict[tuple[type, type], type] = {}


def _typed(base: type, mixin: type) -> type:
    """``base`` with ``mixin`` first (cached): a view's own field class keeps what it does."""
    key = (base, mixin)
    if key not in _TYPED:
        _TYPED[key] = type(f"{mixin.__name__}{base.__name__}", (mixin, base), {})
    return _TYPED[key]


RELATIONS = {
    QuerySelectMultipleField: ScopedSelectMultipleField,
    QuerySelectField: ScopedSelectField,
    AjaxSelectMultipleField: ScopedAjaxSelectMultipleField,
    AjaxSelectField: ScopedAjaxSelectField,
}


def field_type_for(name: str, field_class: type, column) -> tuple[type, dict] | None:
    """The boundary type for a field (and extra constructor arguments), or None to keep it."""
    if field_class in RELATIONS:
        return RELATIONS[field_class], {}
    if issubclass(field_class, (wtf.DateField, wtf.DateTimeField, wtf.DateTimeLocalField)):
        return None if issubclass(field_class, SaneDateMixin) else (_typed(field_class, SaneDateMixin), {})
    column_type = getattr(column, "type", None)
    plain_text = field_class in (wtf.StringField, wtf.TextAreaField)
    if name == "id_number" or name.endswith("_id_number"):
        return (IdNumberField, {}) if plain_text else None
    if name == "phone" or name.endswith("_phone"):
        return (PhoneField, {}) if plain_text else None
    if isinstance(column_type, Float) or field_class is wtf.FloatField:
        lo, hi = COORDINATE_RANGES.get(name, (-1e9, 1e9))
        return CoordinateField, {"lo": lo, "hi": hi}
    if isinstance(column_type, Numeric) or field_class is wtf.DecimalField:
        if plain_text or field_class is wtf.DecimalField:
            return MoneyField, {}
        return None
    if field_class is wtf.IntegerField or (isinstance(column_type, Integer) and plain_text):
        return WholeNumberField, {}
    if field_class is wtf.TextAreaField:
        return MultilineTextField, {}
    if field_class is wtf.StringField:
        return TextField, {}
    return None


def apply_field_types(form_class, model) -> None:
    """Give every unbound field of ``form_class`` (and of its inline forms) its boundary type."""
    columns = model.__table__.columns if model is not None and hasattr(model, "__table__") else {}
    for name, unbound in _unbound_fields(form_class):
        inline = _inline_form(unbound)
        if inline is not None:
            apply_field_types(inline[0], inline[1])
            continue
        chosen = field_type_for(name, unbound.field_class, columns.get(name) if columns else None)
        if chosen is None:
            continue
        field_class, extra = chosen
        unbound.field_class = field_class
        for key, value in extra.items():
            unbound.kwargs.setdefault(key, value)


def _unbound_fields(form_class):
    seen = set()
    for klass in form_class.__mro__:
        for name, value in vars(klass).items():
            if isinstance(value, UnboundField) and name not in seen:
                seen.add(name)
                yield name, value


def _inline_form(unbound):
    """(form class, model) of an inline model form list, or None."""
    from flask_admin.contrib.sqla.fields import InlineModelFormList

    if not (isinstance(unbound.field_class, type) and issubclass(unbound.field_class, InlineModelFormList)):
        return None
    args = unbound.args
    if len(args) >= 3:
        return args[0], args[2]
    return None


def form_once_input() -> Markup:
    """The hidden one-time token of a hand-written form (``{{ form_once() }}`` in a template) whose
    endpoint is listed in its view's ``create_endpoints``."""
    from flask import current_app

    from services import form_tokens

    return Markup('<input type="hidden" name="{}" value="{}">').format(
        form_tokens.FIELD, form_tokens.issue(current_app.secret_key)
    )


def init_app(app) -> None:
    app.add_template_global(form_once_input, "form_once")


__all__ = [
    "IdNumberField",
    "MoneyField",
    "MultilineTextField",
    "PhoneField",
    "ScopedAjaxSelectField",
    "ScopedAjaxSelectMultipleField",
    "ScopedSelectField",
    "ScopedSelectMultipleField",
    "TextField",
    "WholeNumberField",
    "apply_field_types",
]
