"""The crawl for words a user should never read: every page of the URL map, as every role.

What a person reads on a page is its text and the attributes a browser shows or speaks
(placeholder, title, aria-label, alt, button values, select2's data-placeholder). On that text:

- no English string of the libraries we build on (Flask-Admin, WTForms, select2, the date picker,
  Werkzeug's error pages), from the list below;
- no "__None" (Flask-Admin's empty choice) and no "None"/"True"/"False" printed from Python;
- no raw code where a label belongs: stored choice values (professional, in_progress …), rule
  codes of the seeded tables (indicator and veto codes, setting keys), table and column names.

Pages: every GET rule without arguments (as tests/test_access.py walks them) and, for every CRUD
view, the details and edit pages of one row the role may see.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from sqlalchemy import inspect as sa_inspect

from choices import Choice
from models import AuditLog, Indicator, Setting, User, VetoItem, db
from services.scoping import scope

# English UI strings of the libraries, as they would appear untranslated on a page.
KNOWN_LIBRARY_STRINGS = (
    # Flask-Admin
    "Failed to create record",
    "Failed to save record",
    "Failed to update record",
    "Failed to delete record",
    "Record was successfully",
    "Record does not exist",
    "Please select model",
    "With selected",
    "Save and Add Another",
    "Save and Continue Editing",
    "Add Filter",
    "Reset Filters",
    "Create New Record",
    "Select all records",
    "Are you sure you want to delete",
    "There are no items in the table",
    "Integrity error",
    "View Record",
    "Edit Record",
    "Delete Record",
    "Sort by",
    "items",
    # WTForms
    "This field is required",
    "Not a valid",
    "Invalid Choice",
    "Invalid input",
    "Field must be",
    # select2 3.5
    "No matches found",
    "Loading more results",
    "Loading failed",
    "Searching…",
    "Please enter",
    "Please delete",
    "You can only select",
    "results are available",
    "One result is available",
    # bootstrap-daterangepicker
    "Apply",
    "Cancel",
    "Custom Range",
    # Werkzeug and Flask
    "Not Found",
    "Forbidden",
    "Method Not Allowed",
    "Internal Server Error",
    "Bad Request",
    "Unauthorized",
    "Request Entity Too Large",
    "Service Unavailable",
    "The requested URL was not found",
    "You don't have the permission",
    "Redirecting",
    # Flask-Admin's own zh catalogue, where it reads wrong ("Please select model", "With selected")
    "请选择模型",
)
# Whole lines of that catalogue that would be ordinary words inside a sentence.
KNOWN_LIBRARY_LINES = ("选中的",)
PYTHON_LEAKS = ("__None", "None", "True", "False", "nan", "Decimal(", "datetime.", "<built-in")

# Codes too short or too common to tell from ordinary text (M/F genders, "other" in a sentence).
_MIN_CODE = 4

_SHOWN_ATTRS = ("placeholder", "title", "aria-label", "alt", "data-placeholder", "label")
_SKIPPED_TAGS = {"script", "style", "template", "noscript"}


_VOID_TAGS = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}


def _data_only(tag: str, attrs: dict) -> bool:
    """Elements that carry data for scripts, not text for people: Flask-Admin's JSON holders
    (filter-groups-data …) and the escaped template of an inline form row."""
    classes = (attrs.get("class") or "").split()
    return (attrs.get("id") or "").endswith("-data") or "inline-field-template" in classes


class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._open: list[tuple[str, bool]] = []  # open elements: (tag, whether it starts a skipped part)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag not in _VOID_TAGS:
            skipped = tag in _SKIPPED_TAGS or _data_only(tag, attrs)
            self._open.append((tag, skipped))
            if skipped:
                self._skip += 1
                return
        if self._skip:
            return
        if tag == "input" and (attrs.get("type") or "").lower() == "hidden":
            return
        for name in _SHOWN_ATTRS:
            if attrs.get(name):
                self.parts.append(attrs[name])
        if tag == "input" and (attrs.get("type") or "").lower() in ("submit", "button", "reset"):
            self.parts.append(attrs.get("value") or "")

    def handle_endtag(self, tag):
        # Unclosed <li>, <p>, <td> … are closed by the first end tag of an element around them.
        if tag in _VOID_TAGS or all(t != tag for t, _ in self._open):
            return
        while self._open:
            open_tag, skipped = self._open.pop()
            self._skip -= skipped
            if open_tag == tag:
                break

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.parts.append(data)


def visible_text(html: str) -> str:
    """What a person reads or hears on the page: text nodes and the shown attributes, one per line."""
    parser = _Text()
    parser.feed(html)
    return "\n".join(part.strip() for part in parser.parts if part.strip())


def _word(term: str) -> re.Pattern:
    return re.compile(r"(?<![A-Za-z0-9_])" + re.escape(term) + r"(?![A-Za-z0-9_])")


def raw_codes() -> dict[str, str]:
    """code → where it comes from, for every stored value that has a label to show instead."""
    codes: dict[str, str] = {}
    for choice in _all_choices():
        for member in choice:
            if len(member.value) >= _MIN_CODE and member.value.isascii():
                codes[member.value] = f"{choice.__name__}.{member.name}"
    for model, column in ((Indicator, Indicator.code), (VetoItem, VetoItem.code), (Setting, Setting.key)):
        for code in db.session.scalars(db.select(column)):
            if code and len(code) >= _MIN_CODE and code.isascii():
                codes[code] = f"{model.__tablename__} code"
    for table in db.metadata.tables.values():
        if "_" in table.name:
            codes[table.name] = "table name"
        for column in table.columns:
            if "_" in column.name:
                codes[column.name] = f"column {table.name}.{column.name}"
    # Login names are data a person typed (账号 lists them), not codes.
    for username in db.session.scalars(db.select(User.username)):
        codes.pop(username, None)
    return codes


def _all_choices():
    seen, stack = [], list(Choice.__subclasses__())
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen


class Checker:
    """Finds the words above in a page; built once per test (the codes come from the database)."""

    def __init__(self):
        self.library = [
            (s, _word(s) if s.isascii() and s[:1].isalpha() else None) for s in KNOWN_LIBRARY_STRINGS
        ]
        self.leaks = [(s, _word(s) if s[:1].isalpha() else None) for s in PYTHON_LEAKS]
        codes = raw_codes()
        self.codes = codes
        # One pattern for all the codes: a page is scanned once, whatever their number.
        alternatives = "|".join(re.escape(c) for c in sorted(codes, key=len, reverse=True))
        self.code_pattern = re.compile(r"(?<![A-Za-z0-9_./-])(" + alternatives + r")(?![A-Za-z0-9_/-])")

    def findings(self, html: str) -> list[str]:
        text = visible_text(html)
        found = []
        for term, pattern in self.library + self.leaks:
            hit = pattern.search(text) if pattern else (term in text)
            if hit:
                found.append(f"“{term}” in …{_around(text, term)}…")
        lines = set(text.split("\n"))
        found.extend(f"“{line}” as a line of its own" for line in KNOWN_LIBRARY_LINES if line in lines)
        for match in self.code_pattern.finditer(text):
            code = match.group(1)
            found.append(f"raw code “{code}” ({self.codes[code]}) in …{_around(text, code)}…")
        return found


def _around(text: str, term: str, width: int = 40) -> str:
    at = text.find(term)
    return text[max(0, at - width) : at + len(term) + width].replace("\n", " ⏎ ")


# --------------------------------------------------------------------------- the pages


def crawl_urls(app, user: User) -> list[str]:
    """Every page a person can open by typing its address, and one details and edit page per CRUD
    view (of a row within the user's villages)."""
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.arguments or rule.endpoint.endswith("static"):
            continue
        method = rule.endpoint.split(".", 1)[-1]
        if (
            method in ("details_view", "edit_view")
            or "ajax" in method
            or rule.rule.endswith((".xlsx", ".json"))
        ):
            continue
        urls.append(rule.rule)
    village_ids = user.village_scope()
    for view in app.extensions["admin"][0]._views:
        model = getattr(view, "model", None)
        if model is None or not getattr(view, "endpoint", None):
            continue
        pk = sa_inspect(model).primary_key[0]
        query = scope(db.select(pk), model, village_ids)
        if hasattr(model, "archived_at"):
            wanted_archived = view.endpoint.endswith("archive")
            query = query.where(
                model.archived_at.is_not(None) if wanted_archived else model.archived_at.is_(None)
            )
        if model is AuditLog:
            query = query.where(AuditLog.changes.is_not(None))
        row = db.session.execute(query.order_by(pk.desc()).limit(1)).first()
        if row is None:
            continue
        if getattr(view, "can_view_details", False):
            urls.append(f"{view.url}/details/?id={row[0]}")
        urls.append(f"{view.url}/edit/?id={row[0]}")
    return urls
