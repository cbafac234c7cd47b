"""What a page must never show, for the tests and walks that throw bad input at the app."""

from __future__ import annotations

import re
from html import unescape

# Text that only a leaked database error or traceback puts in a page.
LEAK = re.compile(
    r"Traceback \(most recent|\[SQL:|\[parameters:|sqlite3\.|psycopg|IntegrityError|OperationalError|"
    r"StaleDataError|ProgrammingError|DataError\b|\bINSERT INTO\b|\bUPDATE \w+ SET\b|\bSELECT \S+ FROM\b|"
    r"Background on this error|sqlalche\.me|werkzeug|jinja2\.|File \"/",
    re.IGNORECASE,
)
# English words a user may legitimately see (file types, units, our own abbreviations).
ALLOWED_ENGLISH = {
    "excel",
    "xlsx",
    "geojson",
    "json",
    "csv",
    "api",
    "token",
    "bearer",
    "authorization",
    "url",
    "pdf",
    "png",
    "jpg",
    "id",
    "qr",
    "echarts",
    "apache",
    "license",
    "polygon",
    "multipolygon",
    "feature",
    "featurecollection",
    "http",
    "https",
    "www",
    "utf",
    "docx",
    "zip",
    "wifi",
    "pwa",
}
_WORD = re.compile(r"[A-Za-z]{3,}(?:\s+[A-Za-z]{2,})+")


def visible_text(body: str) -> str:
    """The text a person sees: scripts, styles, tags and attribute values dropped."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S | re.I)
    body = re.sub(r"<!--.*?-->", " ", body, flags=re.S)
    body = re.sub(r"<[^>]+>", "\n", body)
    # inline-form templates are markup escaped into attributes: unescaped, their tags go too
    return re.sub(r"<[^<>]+>", "\n", unescape(body))


def leaks(body: str) -> list[str]:
    """SQL, driver, traceback text found anywhere in a response body (markup included)."""
    return [m.group(0) for m in LEAK.finditer(body)]


def english_phrases(body: str, ignore: tuple[str, ...] = ()) -> list[str]:
    """Runs of two or more English words in the visible text: a library message left untranslated.
    ``ignore``: texts that came from the request itself (the hostile values), echoed back."""
    text = visible_text(body)
    for value in ignore:
        if value:
            # only where it stands alone: "0" sent as ?page= must not split a token into "words"
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", " ", text)
    found = []
    for match in _WORD.finditer(text):
        words = [w.lower() for w in match.group(0).split()]
        if all(w in ALLOWED_ENGLISH for w in words):
            continue
        found.append(match.group(0))
    return found
