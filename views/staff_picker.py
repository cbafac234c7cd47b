"""Staff pickers: a relation field to Staff that offers the right kind of person for the job, from
the right village, each shown with their kind and village.

A view declares ``staff_pickers = {"director": StaffPicker((StaffKind.DIRECTOR,), strict=True,
default=True)}``; ``ScopedModelView`` applies the declaration to the field in every create and edit
form (single and multiple relation fields, inline rows too). On the page, static/js/staff-picker.js
follows the form's village field: a strict picker then offers only that village's staff (and the
town-level ones), another one lists them first, and a ``default`` picker takes the village's first
person when the field is empty (儿童主任 follows 村). Case views (a case's responsible person) and
any later form reuse the same declaration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from markupsafe import Markup

from choices import StaffKind
from models import Staff
from services.staff import staff_clauses, staff_label, staff_order


@dataclass(frozen=True)
class StaffPicker:
    kinds: tuple[StaffKind, ...]
    # The form field holding the village the picker follows (a relation to Village).
    village_field: str | None = "village"
    # Only the village's staff and the town-level ones; otherwise the village's are listed first.
    strict: bool = False
    # Take the village's first person of the kind when the field is empty.
    default: bool = False

    def describe(self) -> str:
        kinds = "、".join(StaffKind(k).label for k in self.kinds)
        if self.strict:
            return f"只列出所选村（社区）的{kinds}和镇级{kinds}"
        return f"可选{kinds}；所选村（社区）的排在前面"


def _village_id(form, picker: StaffPicker) -> int | None:
    follow = getattr(form, picker.village_field, None) if picker.village_field else None
    village = getattr(follow, "data", None)
    return getattr(village, "id", None)


def apply_staff_picker(form, name: str, picker: StaffPicker) -> None:
    """Give the form's ``name`` field the picker's people (within the user's villages, which
    views/base.py has already applied to the field's query), labels, and the data its script needs."""
    field = getattr(form, name, None)
    query = getattr(field, "query", None)
    if field is None or query is None:
        return
    village_id = _village_id(form, picker)
    field.query = query.filter(*staff_clauses(picker.kinds)).order_by(None).order_by(*staff_order(village_id))
    field.query_factory = lambda q=field.query: q
    field.get_label = staff_label
    config = {
        "follow": picker.village_field,
        "strict": picker.strict,
        "default": picker.default,
        "villages": {str(pk): vid for pk, vid in field.query.with_entities(Staff.id, Staff.village_id)},
    }
    field.render_kw = {**(field.render_kw or {}), "data-staff-picker": json.dumps(config)}
    note = picker.describe()
    if note not in str(field.description or ""):
        field.description = Markup("{} {}").format(field.description or "", note).strip()
