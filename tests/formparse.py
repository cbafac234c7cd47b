"""Reading a page's forms as a browser would submit them (for tests that post a form back)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Field:
    name: str
    tag: str  # input, select, textarea
    kind: str = "text"  # the input's type, "select", "select-multiple" or "textarea"
    value: str = ""
    checked: bool = False
    options: list[tuple[str, bool]] = field(default_factory=list)  # (value, selected) of a select
    hidden_template: bool = False  # inside an inline-form template (not submitted)


@dataclass
class Form:
    action: str | None
    method: str
    enctype: str
    attrs: dict
    fields: list[Field] = field(default_factory=list)

    def submitted(self) -> list[tuple[str, str]]:
        """The (name, value) pairs a browser would post, with every field left as drawn."""
        pairs = []
        for f in self.fields:
            if f.hidden_template or not f.name:
                continue
            if f.tag == "select":
                chosen = [v for v, selected in f.options if selected]
                if not chosen and f.options and f.kind == "select":
                    chosen = [f.options[0][0]]
                pairs += [(f.name, v) for v in chosen]
            elif f.kind in ("checkbox", "radio"):
                if f.checked:
                    pairs.append((f.name, f.value or "on"))
            elif f.kind in ("submit", "button", "file", "image", "reset"):
                continue
            else:
                pairs.append((f.name, f.value))
        return pairs


class _Parser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: Field | None = None
        self._option: list | None = None
        self._textarea: Field | None = None
        self._template_depth = 0

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._form = Form(a.get("action"), (a.get("method") or "get").lower(), a.get("enctype", ""), a)
            self.forms.append(self._form)
            return
        if tag == "template":
            self._template_depth += 1
        if self._form is None:
            return
        hidden = self._template_depth > 0
        if tag == "input":
            self._form.fields.append(
                Field(
                    a.get("name", ""),
                    "input",
                    (a.get("type") or "text").lower(),
                    a.get("value", ""),
                    "checked" in a,
                    hidden_template=hidden,
                )
            )
        elif tag == "select":
            self._select = Field(
                a.get("name", ""),
                "select",
                "select-multiple" if "multiple" in a else "select",
                hidden_template=hidden,
            )
            self._form.fields.append(self._select)
        elif tag == "option" and self._select is not None:
            self._option = [a.get("value"), "selected" in a, ""]
        elif tag == "textarea":
            self._textarea = Field(a.get("name", ""), "textarea", "textarea", hidden_template=hidden)
            self._form.fields.append(self._textarea)

    def handle_data(self, data):
        if self._option is not None:
            self._option[2] += data
        if self._textarea is not None:
            self._textarea.value += data

    def handle_endtag(self, tag):
        if tag == "option" and self._option is not None and self._select is not None:
            value = self._option[0] if self._option[0] is not None else self._option[2].strip()
            self._select.options.append((value, self._option[1]))
            self._option = None
        elif tag == "select":
            if self._option is not None and self._select is not None:
                self.handle_endtag("option")
            self._select = None
        elif tag == "textarea":
            if self._textarea is not None and self._textarea.value.startswith("\n"):
                self._textarea.value = self._textarea.value[1:]
            self._textarea = None
        elif tag == "form":
            self._form = None
        elif tag == "template" and self._template_depth:
            self._template_depth -= 1


def forms(page: str) -> list[Form]:
    parser = _Parser()
    parser.feed(page)
    return parser.forms


def post_forms(page: str) -> list[Form]:
    return [f for f in forms(page) if f.method == "post"]


def form_with(page: str, field_name: str) -> Form:
    """The POST form of the page that has a field of this name."""
    for form in post_forms(page):
        if any(f.name == field_name for f in form.fields):
            return form
    raise AssertionError(f"no form with a field {field_name!r}")
