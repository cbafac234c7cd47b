"""Choices shown as a row of chips (radio buttons): one click instead of opening a dropdown and
picking, for the short lists a form asks every time (支出类别, 资金来源, 关系, 监护状态). The look is
static/css/app.css's ``ul.form-control`` with radios."""

from flask_admin.contrib.sqla.fields import QuerySelectField
from wtforms import widgets


class ChipsQuerySelectField(QuerySelectField):
    """A relation (资金来源) picked from radio chips."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.RadioInput()
