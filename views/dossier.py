"""一人一档: one page (and its print layout) with everything about one child."""

from __future__ import annotations

from flask import current_app, request, url_for
from flask_admin import expose
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy.orm import joinedload

from choices import (
    AlertSource,
    AlertStatus,
    AssessmentStatus,
    AttachmentKind,
    CaseStage,
    CaseType,
    ChildStatus,
    ExpenseCategory,
    ExpenseStatus,
    Gender,
    GuardianStatus,
    IdentificationSource,
    Level,
    Relation,
    ReporterKind,
    ReportOutcome,
    ServiceKind,
    ServiceStatus,
    Severity,
    TransferAction,
    VisitKind,
)
from models import Child, db
from services import attachments, audit, clock, transfers
from services.dossier import case_path, load_dossier
from services.permissions import can_read, can_write
from services.search import child_search_clause
from services.validation import mask_id_number
from views.base import SecureView, current_role, current_scope, scoped_query

# Where each section's records live. Areas choose their own endpoint names, so a few are tried;
# a section whose area has no view yet is shown without links.
RECORD_ENDPOINTS = {
    "child": ("child", "child_archive"),
    "guardian": ("guardian",),
    "assessment": ("assessment",),
    "service": ("supportservice", "support_service", "service"),
    "visit": ("visit",),
    "report": ("mandatoryreport", "mandatory_report", "report"),
    "alert": ("alert", "alerts"),
    "case": ("case", "case_file", "cases"),
    "activity": ("activity",),
    "attendance": ("attendance",),
    "pairing": ("pairing", "mentorpairing", "mentor_pairing"),
    "expense": ("expense",),
}

LABELS = {
    "gender": Gender,
    "status": ChildStatus,
    "source": IdentificationSource,
    "relation": Relation,
    "guardian_status": GuardianStatus,
    "level": Level,
    "assessment_status": AssessmentStatus,
    "service_kind": ServiceKind,
    "service_status": ServiceStatus,
    "visit_kind": VisitKind,
    "reporter": ReporterKind,
    "report_outcome": ReportOutcome,
    "alert_source": AlertSource,
    "severity": Severity,
    "alert_status": AlertStatus,
    "case_type": CaseType,
    "case_stage": CaseStage,
    "expense_category": ExpenseCategory,
    "expense_status": ExpenseStatus,
    "transfer_action": TransferAction,
}


class RecordLinks:
    """URLs of the records the dossier shows; built once per page (cheap for 500 rows)."""

    def __init__(self):
        functions = current_app.view_functions
        self._details: dict[str, tuple[str, str] | None] = {}
        self._index: dict[str, str | None] = {}
        for kind, candidates in RECORD_ENDPOINTS.items():
            self._details[kind] = None
            self._index[kind] = None
            for endpoint in candidates:
                if f"{endpoint}.details_view" in functions:
                    self._details[kind] = (url_for(f"{endpoint}.details_view") + "?id=", "")
                elif f"{endpoint}.detail_view" in functions:
                    self._details[kind] = _path_detail(f"{endpoint}.detail_view")
                for index in (f"{endpoint}.index_view", f"{endpoint}.index"):
                    if index in functions:
                        self._index[kind] = url_for(index)
                        break
                if self._details[kind] or self._index[kind]:
                    break

    def record(self, kind: str, record_id) -> str | None:
        parts = self._details.get(kind)
        return f"{parts[0]}{record_id}{parts[1]}" if parts and record_id is not None else None

    def section(self, kind: str) -> str | None:
        return self._index.get(kind)

    def a(self, kind: str, record_id, text, printing: bool = False) -> Markup:
        """The text linked to its record (plain text in print, or where the area has no page)."""
        url = None if printing else self.record(kind, record_id)
        if url is None:
            return escape(text)
        # plain str concatenation of escaped parts: this runs once per row of up to hundreds of rows
        href, label = str(escape(url)), str(escape(text))
        return Markup('<a href="' + href + '">' + label + "</a>")


def _path_detail(endpoint: str) -> tuple[str, str] | None:
    """A details page taking the id in its path (e.g. /admin/alerts/<int:alert_id>/): prefix and suffix."""
    rule = next(iter(current_app.url_map.iter_rules(endpoint)), None)
    if rule is None or len(rule.arguments) != 1:
        return None
    marker = 987654321
    url = url_for(endpoint, **{next(iter(rule.arguments)): marker})
    prefix, _, suffix = url.partition(str(marker))
    return prefix, suffix


def _label(kind: str, value) -> str:
    return LABELS[kind].label_of(value)


_BADGES = {
    level.value: Markup('<span class="badge level-badge level-{}">{}</span>').format(level.value, level.label)
    for level in Level
}
_NO_BADGE = Markup('<span class="badge badge-light">未评估</span>')


def _badge(value) -> Markup:
    """A level (or severity) badge; Python rather than a Jinja macro, as it is drawn per row."""
    if not value:
        return _NO_BADGE
    return _BADGES.get(value) or escape(value)


_OWNER_NOTE = {
    "visit": ' <span class="text-muted">走访</span>',
    "case": ' <span class="text-muted">个案</span>',
}


def attachment_grid(rows, printing: bool) -> Markup:
    """The dossier's thumbnails, drawn in Python (hundreds of tiles; two URLs each built from one prefix)."""
    show = url_for("attachment.show", attachment_id=987654321).replace("987654321", "{}")
    thumb = url_for("attachment.thumb", attachment_id=987654321).replace("987654321", "{}")
    human = attachments.human_size
    parts = ['<div class="attachment-grid" id="dossier-attachments">']
    for a in rows:
        label = str(escape(AttachmentKind.label_of(a.kind)))
        if a.thumb_key:
            lazy = "" if printing else ' loading="lazy"'
            picture = f'<img src="{thumb.format(a.id)}" alt="{label}"{lazy}>'
        else:
            picture = '<span class="attachment-doc">PDF</span>'
        if printing:
            box = f'<span class="attachment-thumb">{picture}</span>'
        else:
            box = f'<a class="attachment-thumb" href="{show.format(a.id)}" target="_blank" rel="noopener">{picture}</a>'
        parts.append(
            f'<figure class="attachment-tile" data-attachment-id="{a.id}" data-kind="{escape(a.kind)}">{box}'
            f'<figcaption class="small"><span class="badge badge-secondary">{label}</span>'
            f"{_OWNER_NOTE.get(a.owner_kind, '')} {escape(a.original_name)}<br>"
            f'<span class="text-muted">{a.uploaded_at:%Y-%m-%d} · {human(a.size)}</span></figcaption></figure>'
        )
    parts.append("</div>")
    return Markup("".join(parts))


class DossierView(SecureView):
    area = "dossier"

    def _child_id(self):
        return request.args.get("id", type=int)

    @expose("/")
    def index(self):
        child_id = self._child_id()
        if child_id is None and not request.args.get("id"):
            return self._finder()
        return self._page("dossier/index.html", child_id, printing=False)

    @expose("/print/")
    def print_view(self):
        return self._page("dossier/print.html", self._child_id(), printing=True)

    def _page(self, template: str, child_id, printing: bool):
        dossier = load_dossier(child_id, current_scope(), clock.today())
        if dossier is None:
            return self.render("dossier/missing.html"), 404
        child = dossier.child
        # Rendered before the audit row is committed: a commit expires the loaded records.
        page = self.render(
            template,
            d=dossier,
            child=child,
            masked_id=mask_id_number(child.id_number),
            links=RecordLinks(),
            label=_label,
            badge=_badge,
            mask=mask_id_number,
            case_path=case_path,
            printed_at=clock.now(),
            attachment_form=self._attachment_form(child, printing),
            consent_url=url_for("consent.child_view", id=child.id)
            if can_read(current_role(), "consent")
            else None,
            actions=self._actions(child, dossier),
            attachment_grid=attachment_grid,
        )
        audit.record(
            db.session,
            "view",
            table="child",
            record_id=child.id,
            summary=f"{'打印' if printing else '查阅'}一人一档：{child.name}"
            + (f"（含附件缩略图 {len(dossier.attachments)} 张）" if dossier.attachments else ""),
        )
        db.session.commit()
        return page

    def _actions(self, child, dossier) -> dict:
        """Links of the dossier's head: transfer and move out for those who may."""
        role = current_role()
        movable = not child.is_archived and dossier.pending_transfer is None and child.anonymised_at is None
        return {
            "transfer": movable
            and can_write(role, "transfers")
            and transfers.may_start(child, role, current_user.village_id),
            "move_out": movable and can_write(role, "transfers") and role in transfers.TOWN_ROLES,
        }

    def _attachment_form(self, child, printing: bool) -> dict | None:
        """What the dossier's upload form needs, for roles that may attach to a child."""
        if printing or child.is_archived or not attachments.may_attach(current_role(), "child"):
            return None
        return {
            "owner_kind": "child",
            "owner_id": child.id,
            "kinds": attachments.kind_choices("child"),
            "accept": attachments.ACCEPT,
            "next_url": request.full_path.rstrip("?") + "#sec-attachments",
        }

    def _finder(self):
        """Without an id: a search box to open a child's dossier."""
        term = (request.args.get("q") or "").strip()
        children = []
        if term:
            clause = child_search_clause(term)
            if clause is not None:
                children = (
                    scoped_query(Child)
                    .options(joinedload(Child.village))
                    .filter(clause)
                    .order_by(Child.archived_at.is_not(None), Child.name)
                    .limit(50)
                    .all()
                )
        return self.render(
            "dossier/find.html", term=term, children=children, mask=mask_id_number, label=_label
        )


def register(admin, category: str) -> None:
    admin.add_view(DossierView(name="一人一档", endpoint="dossier", url="dossier", category=category))
