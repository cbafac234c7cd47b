"""Dates in forms, one mechanism for every view.

Every Date column becomes a native ``<input type="date">`` and every DateTime column a native
``<input type="datetime-local">``: the browser shows its own calendar in the page's language,
typing and picking cannot garble the value ("2026-11-27 09:00" stays that), and the value posted is
ISO. ``ScopedModelView`` uses ``NativeDateConverter`` for its forms and inline forms, and checks
every start/end pair a form holds with services/periods.py (``check_periods``). List filters on
dates get the same native inputs in the browser (static/js/zh-widgets.js).
"""

from __future__ import annotations

from flask_admin.contrib.sqla.form import AdminModelConverter
from flask_admin.model.form import converts
from wtforms import fields
from wtforms.widgets import DateInput, DateTimeLocalInput

from services.periods import PAIRS, period_error


class NativeDateField(fields.DateField):
    """A date typed or picked in the browser's own date input (ISO on the wire)."""

    widget = DateInput()

    def __init__(self, label=None, validators=None, format="%Y-%m-%d", **kwargs):
        kwargs.pop("widget", None)  # Flask-Admin's converter offers its daterangepicker widget
        super().__init__(label, validators, format=format, **kwargs)


class NativeDateTimeField(fields.DateTimeLocalField):
    """A date and time in the browser's own ``datetime-local`` input, to the minute."""

    widget = DateTimeLocalInput()

    def __init__(self, label=None, validators=None, format=None, **kwargs):
        kwargs.pop("widget", None)
        format = format or ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
        super().__init__(label, validators, format=format, **kwargs)

    def _value(self):
        if self.raw_data:
            return " ".join(self.raw_data)
        return self.data.strftime("%Y-%m-%dT%H:%M") if self.data else ""


class NativeDateConverter(AdminModelConverter):
    """Flask-Admin's model converter with native date and date-time inputs."""

    @converts("Date")
    def convert_date(self, field_args, **extra):
        return NativeDateField(**field_args)

    @converts("DateTime")
    def convert_datetime(self, field_args, **extra):
        return NativeDateTimeField(**field_args)


def _label(field) -> str:
    return str(getattr(field.label, "text", "") or field.name)


def check_periods(form) -> bool:
    """Put the period rule's message under every end field whose start/end pair is out of order;
    True when every pair is sound."""
    ok = True
    for start_name, end_name in PAIRS:
        start, end = getattr(form, start_name, None), getattr(form, end_name, None)
        if start is None or end is None or start.errors or end.errors:
            continue
        message = period_error(start.data, end.data, _label(start), _label(end))
        if message:
            if message not in (end.errors or []):
                end.errors = list(end.errors or []) + [message]
            ok = False
    return ok
