"""儿童档案 → 转移与迁出, 告知同意, 档案到期: the views of issue 15 (rules in services/transfers.py,
services/consent.py and services/retention.py)."""

from __future__ import annotations

import datetime as dt

from flask import Response, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.sqla.filters import DateBetweenFilter, FilterEqual
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from choices import (
    ConsentMethod,
    ConsentScope,
    Gender,
    Level,
    TransferAction,
    TransferKind,
    TransferStatus,
)
from models import Child, Consent, Transfer, Village, db
from services import attachments, clock, consent, retention, transfers
from services.dossier import find_child
from services.scoping import in_scope
from services.storage import StorageError
from services.validation import InvalidInput, mask_id_number
from views.base import ChoiceFilter, ScopedModelView, SecureView, current_role, current_scope, scoped_query
from views.labels import LABELS
from views.supervision import ChildVillageFilter

MENU = "儿童档案"


def _user_village():
    return current_user.village_id if current_user.is_authenticated else None


def _date(value) -> dt.date | None:
    try:
        return dt.date.fromisoformat((value or "").strip())
    except ValueError:
        return None


def _child_or_none(child_id):
    """The child if in the user's villages (archived children included)."""
    return find_child(child_id, current_scope())


def masked_name(name: str) -> str:
    """张小明 → 张*明: the sending village's record of a child it no longer keeps."""
    if not name:
        return ""
    if len(name) <= 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


# --------------------------------------------------------------------------- transfers


def _transfer_child(view, context, model, name):
    """The child's name where the user may see the child (or must decide on it); masked otherwise."""
    child = model.child
    if in_scope(child, current_scope()):
        if "dossier.index" in view.admin.app.view_functions:
            return Markup('<a href="{}">{}</a>').format(url_for("dossier.index", id=child.id), child.name)
        return child.name
    if model.status == TransferStatus.PENDING.value and model.to_village_id in (current_scope() or []):
        return child.name
    return masked_name(child.name)


def _transfer_to(view, context, model, name):
    if model.kind == TransferKind.OUT.value:
        return f"外镇：{model.other_town or ''}"
    return model.to_village.name if model.to_village else ""


def _transfer_from(view, context, model, name):
    if model.kind == TransferKind.IN.value:
        return f"外镇：{model.other_town or ''}"
    return model.from_village.name if model.from_village else ""


class TransferView(ScopedModelView):
    """转移与迁出: every transfer the user's villages sent or received; the start and decision pages."""

    area = "transfers"
    menu_category = MENU
    details_template = "records/transfer_details.html"
    column_list = (
        "started_at",
        "child",
        "kind",
        "status",
        "from_village",
        "to_village",
        "reason",
        "decided_at",
    )
    column_labels = {
        **LABELS,
        "started_at": "发起时间",
        "child": "儿童",
        "kind": "类型",
        "status": "状态",
        "from_village": "转出",
        "to_village": "转入",
        "reason": "原因",
        "decided_at": "办结时间",
    }
    column_formatters = {"child": _transfer_child, "to_village": _transfer_to, "from_village": _transfer_from}
    column_default_sort = ("started_at", True)
    column_sortable_list = ("started_at", "decided_at")
    column_filters = (
        ChoiceFilter(Transfer.status, "状态", TransferStatus),
        ChoiceFilter(Transfer.kind, "类型", TransferKind),
        DateBetweenFilter(Transfer.started_at, "发起时间"),
    )
    choice_columns = {"kind": TransferKind, "status": TransferStatus}
    column_details_list = ()
    allow_create = False
    allow_edit = False
    allow_delete = False
    extra_write_endpoints = frozenset(
        {"start_view", "decide_view", "cancel_view", "move_out_view", "letter_view", "letter_xlsx_view"}
    )

    def get_query(self):
        return (
            super()
            .get_query()
            .options(
                joinedload(Transfer.child), joinedload(Transfer.from_village), joinedload(Transfer.to_village)
            )
        )

    def list_extra_links(self):
        pending = transfers.pending_incoming(current_scope())
        return [(f"待接收（{pending}）", url_for(".inbox_view"))]

    def render(self, template, **kwargs):
        if template == self.details_template and kwargs.get("model") is not None:
            transfer = kwargs["model"]
            kwargs.update(self._details(transfer))
        return super().render(template, **kwargs)

    def _details(self, transfer: Transfer) -> dict:
        role, village = current_role(), _user_village()
        child_visible = in_scope(transfer.child, current_scope())
        return {
            "t": transfer,
            "child_name": _transfer_child(self, None, transfer, "child"),
            "child_visible": child_visible,
            "summary": _child_summary(transfer.child)
            if child_visible or transfer.status == TransferStatus.PENDING.value
            else None,
            "may_decide": self.may_write and transfers.may_decide(transfer, role, village),
            "may_cancel": self.may_write and transfers.may_cancel(transfer, role, village),
            "may_letter": self.may_write
            and transfer.kind == TransferKind.OUT.value
            and role in transfers.TOWN_ROLES
            and transfer.child.anonymised_at is None,
            "status_label": TransferStatus.label_of,
            "kind_label": TransferKind.label_of,
            "action_label": TransferAction.label_of,
            "events": _events(transfer),
        }

    # --- 待接收 -------------------------------------------------------------------------

    @expose("/inbox/")
    def inbox_view(self):
        """待接收: pending transfers to the user's villages (the whole town for the town's roles)."""
        stmt = (
            select(Transfer)
            .where(Transfer.status == TransferStatus.PENDING.value)
            .options(
                joinedload(Transfer.child).selectinload(Child.categories),
                joinedload(Transfer.from_village),
                joinedload(Transfer.to_village),
            )
            .order_by(Transfer.started_at)
        )
        scope_ids = current_scope()
        if scope_ids is not None:
            stmt = stmt.where(Transfer.to_village_id.in_(scope_ids or [0]))
        incoming = db.session.scalars(stmt).unique().all()
        outgoing = []
        if scope_ids is not None:
            outgoing = (
                db.session.scalars(
                    select(Transfer)
                    .where(
                        Transfer.status == TransferStatus.PENDING.value,
                        Transfer.from_village_id.in_(scope_ids or [0]),
                    )
                    .options(joinedload(Transfer.child), joinedload(Transfer.to_village))
                    .order_by(Transfer.started_at)
                )
                .unique()
                .all()
            )
        role, village = current_role(), _user_village()
        return self.render(
            "records/transfer_inbox.html",
            incoming=[
                (t, _child_summary(t.child), self.may_write and transfers.may_decide(t, role, village))
                for t in incoming
            ],
            outgoing=outgoing,
        )

    # --- start ---------------------------------------------------------------------------

    @expose("/start/", methods=("GET", "POST"))
    def start_view(self):
        child = _child_or_none(request.values.get("child"))
        if child is None:
            return self.render("records/missing.html", what="儿童"), 404
        role, village = current_role(), _user_village()
        if not transfers.may_start(child, role, village):
            flash("只有镇民生服务办经办人或本村（社区）儿童主任可以发起转移", "error")
            return redirect(url_for("dossier.index", id=child.id))
        error = None
        if request.method == "POST":
            try:
                transfer = transfers.start(
                    child,
                    request.form.get("to_village"),
                    request.form.get("reason", ""),
                    request.form.get("handover_note", ""),
                    request.form.get("acknowledged") == "1",
                    role=role,
                    user_village_id=village,
                )
            except InvalidInput as bad:
                db.session.rollback()
                error = str(bad)
            else:
                db.session.commit()
                flash(
                    f"已发起转移：{child.name} 待 {transfer.to_village.name} 接收；接收前仍由本村（社区）管理。",
                    "success",
                )
                return redirect(url_for(".details_view", id=transfer.id))
        villages = db.session.execute(
            select(Village.id, Village.name)
            .where(Village.id != child.village_id)
            .order_by(Village.sort_order, Village.id)
        ).all()
        return self.render(
            "records/transfer_start.html",
            child=child,
            villages=villages,
            items=transfers.open_items(child.id),
            pending=transfers.pending_of(child.id),
            error=error,
            form=request.form,
            may_move_out=role in transfers.TOWN_ROLES,
        )

    # --- decisions -----------------------------------------------------------------------

    def _transfer(self):
        return self.get_one(request.args.get("id"))

    @expose("/decide/", methods=("POST",))
    def decide_view(self):
        transfer = self._transfer()
        if transfer is None:
            return self.render("records/missing.html", what="转移"), 404
        decision = request.form.get("decision")
        note = request.form.get("note", "")
        role, village = current_role(), _user_village()
        name = transfer.child.name
        try:
            if decision == "accept":
                transfers.accept(transfer, note, role=role, user_village_id=village)
                message = f"已接收：{name} 的档案及全部记录已转入本村（社区）"
            elif decision == "return":
                transfers.give_back(transfer, note, role=role, user_village_id=village)
                message = f"已退回：{name} 仍由原村（社区）管理"
            else:
                raise InvalidInput("请选择接收或退回")
        except InvalidInput as bad:
            db.session.rollback()
            flash(str(bad), "error")
            return redirect(url_for(".details_view", id=transfer.id))
        db.session.commit()
        flash(message, "success")
        if decision == "accept":
            return redirect(url_for("dossier.index", id=transfer.child_id))
        return redirect(url_for(".inbox_view"))

    @expose("/cancel/", methods=("POST",))
    def cancel_view(self):
        transfer = self._transfer()
        if transfer is None:
            return self.render("records/missing.html", what="转移"), 404
        try:
            transfers.cancel(
                transfer, request.form.get("note", ""), role=current_role(), user_village_id=_user_village()
            )
        except InvalidInput as bad:
            db.session.rollback()
            flash(str(bad), "error")
        else:
            db.session.commit()
            flash("已撤回转移", "success")
        return redirect(url_for(".details_view", id=transfer.id))

    # --- out of the town -------------------------------------------------------------------

    @expose("/move-out/", methods=("GET", "POST"))
    def move_out_view(self):
        child = _child_or_none(request.values.get("child"))
        if child is None:
            return self.render("records/missing.html", what="儿童"), 404
        if current_role() not in transfers.TOWN_ROLES:
            flash("迁出外镇由镇民生服务办经办人办理；村（社区）请联系镇民生服务办", "error")
            return redirect(url_for("dossier.index", id=child.id))
        error = None
        if request.method == "POST":
            try:
                transfer = transfers.move_out(
                    child,
                    request.form.get("destination", ""),
                    request.form.get("office", ""),
                    request.form.get("reason", ""),
                    request.form.get("handover_note", ""),
                    request.form.get("acknowledged") == "1",
                    role=current_role(),
                )
            except InvalidInput as bad:
                db.session.rollback()
                error = str(bad)
            else:
                db.session.commit()
                flash(f"已办理迁出：{child.name} 已归档为“迁出”。请打印转介函交迁入地。", "success")
                return redirect(url_for(".details_view", id=transfer.id))
        return self.render(
            "records/move_out.html",
            child=child,
            items=transfers.open_items(child.id),
            error=error,
            form=request.form,
        )

    def _letter(self):
        transfer = self._transfer()
        if transfer is None or current_role() not in transfers.TOWN_ROLES:
            return None, None
        reveal = request.method == "POST" and request.form.get("reveal") == "1"
        from app import setting

        clerk = current_user.staff
        contact = f"{setting('town_name', '')}民生服务办 {current_user}" + (
            f" {clerk.phone}" if clerk is not None and clerk.phone else ""
        )
        letter = transfers.referral_letter(
            transfer,
            town=setting("town_name", ""),
            today=clock.today(),
            reveal_id=reveal,
            purpose=request.form.get("purpose", ""),
            contact=contact,
        )
        return transfer, letter

    @expose("/letter/", methods=("GET", "POST"))
    def letter_view(self):
        """转介函 (HTML, printed or saved as PDF by the browser)."""
        try:
            transfer, letter = self._letter()
        except InvalidInput as bad:
            db.session.rollback()
            flash(str(bad), "error")
            return redirect(url_for(".details_view", id=request.args.get("id", type=int)))
        if transfer is None:
            return self.render("records/missing.html", what="转移"), 404
        page = self.render("records/referral_letter.html", t=transfer, letter=letter)
        db.session.commit()
        return page

    @expose("/letter.xlsx", methods=("GET", "POST"))
    def letter_xlsx_view(self):
        try:
            transfer, letter = self._letter()
        except InvalidInput as bad:
            db.session.rollback()
            flash(str(bad), "error")
            return redirect(url_for(".details_view", id=request.args.get("id", type=int)))
        if transfer is None:
            return self.render("records/missing.html", what="转移"), 404
        body = transfers.referral_workbook(letter)
        db.session.commit()
        from views.attachments import content_disposition

        response = Response(
            body, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        response.headers["Content-Disposition"] = content_disposition(
            "attachment", f"转介函-{letter.number}.xlsx"
        )
        response.headers["Cache-Control"] = "no-store"
        return response


def _child_summary(child: Child) -> dict:
    """What a receiving village sees of a child before accepting it: no ID number, no guardians."""
    return {
        "name": child.name,
        "gender": Gender.label_of(child.gender),
        "age": consent.age_on(child.birth_date, clock.today()) if child.birth_date else None,
        "categories": "、".join(c.name for c in child.categories),
        "level": Level.label_of(child.current_level) if child.current_level else "未评估",
        "village": child.village.name if child.village else "",
        "status": child.status,
    }


def _events(transfer: Transfer):
    from models import TransferEvent, User

    return db.session.execute(
        select(TransferEvent.at, TransferEvent.action, TransferEvent.note, User.display_name, User.username)
        .outerjoin(User, User.id == TransferEvent.user_id)
        .where(TransferEvent.transfer_id == transfer.id)
        .order_by(TransferEvent.at, TransferEvent.id)
    ).all()


# --------------------------------------------------------------------------- consent


class ConsentStandingFilter(FilterEqual):
    def __init__(self):
        super().__init__(Consent.withdrawn_on, "状态", options=[("1", "有效"), ("0", "已撤回")])

    def apply(self, query, value, alias=None):
        return query.filter(
            Consent.withdrawn_on.is_(None) if value == "1" else Consent.withdrawn_on.is_not(None)
        )

    def validate(self, value):
        return value in ("0", "1")


def _consent_child(view, context, model, name):
    return Markup('<a href="{}">{}</a>').format(
        url_for("consent.child_view", id=model.child_id), model.child.name
    )


class ConsentView(ScopedModelView):
    """告知同意: every consent record of the user's villages; each child's page records and withdraws."""

    area = "consent"
    menu_category = MENU
    column_list = (
        "child",
        "scope",
        "given_by",
        "given_on",
        "method",
        "witness",
        "form_attachment",
        "withdrawn_on",
    )
    column_labels = {
        **LABELS,
        "child": "儿童",
        "scope": "同意事项",
        "given_by": "同意人",
        "given_on": "同意日期",
        "method": "方式",
        "witness": "见证人",
        "form_attachment": "签字同意书",
        "withdrawn_on": "撤回日期",
    }
    column_formatters = {
        "child": _consent_child,
        "form_attachment": lambda v, c, m, n: (
            Markup('<a href="{}" target="_blank" rel="noopener">查看</a>').format(
                url_for("attachment.show", attachment_id=m.form_attachment_id)
            )
            if m.form_attachment_id
            else ""
        ),
    }
    column_default_sort = ("given_on", True)
    column_sortable_list = ("given_on", "withdrawn_on")
    column_filters = (
        ChildVillageFilter(Consent),
        ChoiceFilter(Consent.scope, "同意事项", ConsentScope),
        ChoiceFilter(Consent.method, "方式", ConsentMethod),
        ConsentStandingFilter(),
        DateBetweenFilter(Consent.given_on, "同意日期"),
    )
    choice_columns = {"scope": ConsentScope, "method": ConsentMethod}
    can_view_details = False
    allow_create = False
    allow_edit = False
    allow_delete = False
    extra_write_endpoints = frozenset({"record_view", "withdraw_view"})

    def get_query(self):
        return super().get_query().options(joinedload(Consent.child))

    @expose("/child/")
    def child_view(self):
        child = _child_or_none(request.args.get("id"))
        if child is None:
            return self.render("records/missing.html", what="儿童"), 404
        return self._child_page(child)

    def _child_page(self, child, error=None, status=200):
        today = clock.today()
        records = consent.records_of(child.id)
        return (
            self.render(
                "records/consent_child.html",
                child=child,
                records=records,
                states=consent.states(child.id, records),
                givers=consent.givers(child, today),
                scopes=ConsentScope.choices(),
                methods=ConsentMethod.choices(),
                scope_label=ConsentScope.label_of,
                method_label=ConsentMethod.label_of,
                age=consent.age_on(child.birth_date, today) if child.birth_date else None,
                today=today,
                error=error,
                form=request.form,
                may_write=self.may_write and child.anonymised_at is None,
                accept=attachments.ACCEPT,
            ),
            status,
        )

    @expose("/record/", methods=("POST",))
    def record_view(self):
        child = _child_or_none(request.args.get("id"))
        if child is None:
            return self.render("records/missing.html", what="儿童"), 404
        form_file = request.files.get("form_file")
        try:
            signed = None
            if form_file and form_file.filename:
                signed = attachments.save_upload(child, "consent_form", form_file, note="告知同意书（签字）")
            consent.record(
                child,
                request.form.getlist("scope"),
                request.form.get("giver", ""),
                _date(request.form.get("given_on")),
                request.form.get("method", ""),
                today=clock.today(),
                witness=request.form.get("witness"),
                note=request.form.get("note"),
                form=signed,
            )
        except (InvalidInput, StorageError) as bad:
            db.session.rollback()
            return self._child_page(child, error=str(bad), status=400)
        db.session.commit()
        flash("已登记告知同意", "success")
        return redirect(url_for(".child_view", id=child.id))

    @expose("/withdraw/", methods=("POST",))
    def withdraw_view(self):
        record = self.get_one(request.args.get("id"))
        if record is None:
            return self.render("records/missing.html", what="同意记录"), 404
        try:
            ended = consent.withdraw(
                record, _date(request.form.get("withdrawn_on")), request.form.get("note"), today=clock.today()
            )
        except InvalidInput as bad:
            db.session.rollback()
            return self._child_page(record.child, error=str(bad), status=400)
        db.session.commit()
        flash(f"已撤回“{ConsentScope.label_of(record.scope)}”的同意（{len(ended)} 条记录）", "success")
        return redirect(url_for(".child_view", id=record.child_id))

    @expose("/form/")
    def form_view(self):
        """告知同意书 to print, with the child's and guardians' names filled in."""
        child = _child_or_none(request.args.get("id"))
        if child is None:
            return self.render("records/missing.html", what="儿童"), 404
        from app import setting

        links = sorted(child.guardian_links, key=lambda link: (not link.is_primary, link.id))
        return self.render(
            "records/consent_form_print.html",
            child=child,
            guardians=[link.guardian.name for link in links],
            scopes=list(ConsentScope),
            years=retention.retention_years(),
            town=setting("town_name", ""),
            gender=Gender.label_of(child.gender),
            age=consent.age_on(child.birth_date, clock.today()) if child.birth_date else None,
        )

    @expose("/missing/")
    def missing_view(self):
        """14周岁以下未取得建档同意的儿童."""
        children, count = consent.missing_filing_under_14(current_scope(), clock.today(), limit=500)
        return self.render(
            "records/consent_missing.html",
            children=children,
            count=count,
            age_on=consent.age_on,
            today=clock.today(),
        )


# --------------------------------------------------------------------------- retention


class RetentionView(SecureView):
    """档案到期: archived files past their retention, and their anonymisation (admins)."""

    area = "retention"
    extra_write_endpoints = frozenset({"anonymise_view"})

    @expose("/")
    def index(self):
        files, count = retention.due_files(current_scope(), clock.today())
        return self.render(
            "records/retention.html",
            files=files,
            count=count,
            years=retention.retention_years(),
            mask=mask_id_number,
            today=clock.today(),
        )

    @expose("/anonymise/", methods=("POST",))
    def anonymise_view(self):
        child = scoped_query(Child).filter(Child.id == request.args.get("id", type=int)).one_or_none()
        if child is None:
            return self.render("records/missing.html", what="儿童"), 404
        if request.form.get("confirm") != "1":
            flash("请勾选“确认匿名化，不可恢复”后再提交", "error")
            return redirect(url_for(".index"))
        try:
            counts = retention.anonymise(child, today=clock.today(), reason=request.form.get("reason", ""))
        except InvalidInput as bad:
            db.session.rollback()
            flash(str(bad), "error")
            return redirect(url_for(".index"))
        db.session.commit()
        flash(
            f"已匿名化档案（编号 {child.id}）：删除附件 {counts['附件']} 个，清理记录 {counts['记录']} 条、日志 {counts['日志']} 条",
            "success",
        )
        return redirect(url_for(".index"))


def register(admin):
    admin.add_view(TransferView(Transfer, name="转移与迁出", endpoint="transfer"))
    admin.add_view(ConsentView(Consent, name="告知同意", endpoint="consent"))
    admin.add_view(
        RetentionView(name="档案到期", endpoint="retention", url="/admin/retention", category=MENU)
    )


__all__ = ["register", "masked_name"]
