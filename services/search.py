"""Finding a child fast: one box for Chinese name, full pinyin, initials, full ID number or last 4."""

import re

from sqlalchemy import or_

from models import Child
from services.validation import normalize_identifier

_ID_FULL = re.compile(r"^[0-9]{17}[0-9X]$")
_ID_LAST4 = re.compile(r"^[0-9]{3}[0-9X]$")
_LATIN = re.compile(r"^[A-Za-z]+$")


def _prefix(column, term: str):
    """``column LIKE 'term%'`` written as a range, so SQLite and PostgreSQL both use the index."""
    return (column >= term) & (column < term + "\uffff")


def child_search_clause(text: str):
    """The WHERE clause for what was typed into the child search box."""
    term = (text or "").strip().replace(" ", "")
    if not term:
        return None
    number = normalize_identifier(term)  # full-width or Arabic-Indic digits find the same child
    if _ID_FULL.match(number):
        return Child.id_number == number
    if _ID_LAST4.match(number):
        return Child.id_last4 == number
    if _LATIN.match(term):
        term = term.lower()
        return or_(_prefix(Child.name_initials, term), _prefix(Child.name_pinyin, term))
    # Whole name or its start (张小明, 张), or the given name or its start (小明): both by index.
    return or_(_prefix(Child.name, term), _prefix(Child.name_given, term))
