"""附件: uploading, serving and deleting attachments for every area, through one scoped view.

Any page shows an owner's attachments with ``{{ attachment_panel('visit', model.id) }}`` (a Jinja
global registered here): thumbnails, links, and the upload form for roles that may write the owner's
area. Files are only ever served by this view: scoped, role-checked, audited, never cached.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_admin import expose
from markupsafe import Markup
from sqlalchemy import select

from choices import AttachmentKind
from models import Attachment, User, db
from services import attachments, audit
from services.storage import StorageError
from services.validation import InvalidInput
from views.base import SecureView, current_role, current_scope


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" or request.headers.get("X-Requested-With") == "XMLHttpRequest"


def _safe_next(target: str | None, fallback: str) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return fallback


def content_disposition(disposition: str, filename: str) -> str:
    """RFC 6266: an ASCII fallback and the UTF-8 name (Chinese names survive every browser)."""
    ascii_name = "".join(ch if ch.isascii() and ch.isalnum() or ch in "._-" else "_" for ch in filename)
    return f"{disposition}; filename=\"{ascii_name or 'attachment'}\"; filename*=UTF-8''{quote(filename)}"


def _file_response(attachment: Attachment, key: str, content_type: str, disposition: str, filename: str):
    from services import storage

    try:
        body = storage.current().stream(key)
    except StorageError as error:
        return render_template("attachments/unavailable.html", message=str(error)), 404
    response = Response(body, mimetype=content_type, direct_passthrough=True)
    if key == attachment.storage_key:
        response.headers["Content-Length"] = str(attachment.size)
    response.headers["Content-Disposition"] = content_disposition(disposition, filename)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


class AttachmentView(SecureView):
    """Serving and managing attachments; which ones a user reaches follows their owners."""

    area = "attachments"

    def is_visible(self):
        return False

    def _found(self, attachment_id):
        return attachments.find(attachment_id, current_scope(), current_role())

    def _missing(self):
        if _wants_json():
            return jsonify(error="记录不存在"), 404
        return self.render("attachments/missing.html"), 404

    @expose("/")
    def index(self):
        """My latest uploads (those still within my villages and roles)."""
        rows = db.session.scalars(
            select(Attachment)
            .where(Attachment.uploaded_by_id == _user_id(), Attachment.purged_at.is_(None))
            .order_by(Attachment.id.desc())
            .limit(50)
        ).all()
        visible = [a for a in rows if attachments.find(a.id, current_scope(), current_role()) is not None]
        return self.render("attachments/mine.html", items=visible, kind_label=AttachmentKind.label_of)

    @expose("/<int:attachment_id>/")
    def show(self, attachment_id):
        found = self._found(attachment_id)
        if found is None:
            return self._missing()
        attachments.record_read(found, "view")
        db.session.commit()
        return _file_response(found, found.storage_key, found.content_type, "inline", found.original_name)

    @expose("/<int:attachment_id>/download/")
    def download(self, attachment_id):
        found = self._found(attachment_id)
        if found is None:
            return self._missing()
        attachments.record_read(found, "download")
        db.session.commit()
        return _file_response(found, found.storage_key, found.content_type, "attachment", found.original_name)

    @expose("/<int:attachment_id>/thumb/")
    def thumb(self, attachment_id):
        found = self._found(attachment_id)
        if found is None or not found.thumb_key:
            return self._missing()
        return _file_response(found, found.thumb_key, "image/jpeg", "inline", "thumb-" + found.original_name)

    @expose("/export/")
    def export(self):
        """导出可对外使用的照片: one owner's attachments that pass ``attachments.exportable``, as a zip."""
        owner_kind = request.args.get("owner_kind", "")
        if not attachments.may_view(current_role(), owner_kind):
            return self._missing()
        owner = attachments.find_owner(owner_kind, request.args.get("owner_id"), current_scope())
        if owner is None:
            return self._missing()
        kept = attachments.listed(owner_kind, [owner.id])
        allowed = attachments.exportable(kept)
        audit.record(
            db.session,
            "export",
            table="attachment",
            record_id=owner.id,
            summary=f"导出{attachments.owner_spec(owner_kind).label}（编号 {owner.id}）可对外使用的附件 "
            f"{len(allowed)} 个，未导出 {len(kept) - len(allowed)} 个",
        )
        db.session.commit()
        return _zip_response(
            allowed, f"{attachments.owner_spec(owner_kind).label}{owner.id}-可对外使用的附件.zip"
        )

    @expose("/upload/", methods=("POST",))
    def upload(self):
        owner_kind = request.form.get("owner_kind", "")
        back = _safe_next(request.form.get("next"), url_for("admin.index"))
        if not attachments.may_attach(current_role(), owner_kind):
            return self._refuse("您没有为该类记录上传附件的权限", 403, back)
        owner = attachments.find_owner(owner_kind, request.form.get("owner_id"), current_scope())
        if owner is None:
            return self._refuse("记录不存在：附件所属的记录不存在或不在您的管理范围内", 404, back)
        files = [f for f in request.files.getlist("file") if f and (f.filename or f.content_length)]
        if not files:
            return self._refuse("请选择要上传的文件", 400, back)
        saved, errors = [], []
        for file in files:
            try:
                saved.append(
                    attachments.save_upload(
                        owner, request.form.get("kind", ""), file, note=request.form.get("note")
                    )
                )
            except InvalidInput as bad:
                errors.append(f"{file.filename or '文件'}：{bad}" if len(files) > 1 else str(bad))
            except StorageError as error:
                errors.append(str(error))
        db.session.commit()
        if _wants_json():
            body = {"saved": [_as_json(a) for a in saved], "errors": errors}
            return jsonify(body), (200 if saved or not errors else 400)
        if saved:
            flash(f"已上传 {len(saved)} 个附件", "success")
        for message in errors:
            flash(message, "error")
        return redirect(back)

    def _refuse(self, message, status, back):
        if _wants_json():
            return jsonify(saved=[], errors=[message]), status
        flash(message, "error")
        return redirect(back)

    @expose("/<int:attachment_id>/archive/", methods=("POST",))
    def archive(self, attachment_id):
        return self._change(
            attachment_id, attachments.archive, "已删除附件（已归档，可恢复）", request.form.get("reason", "")
        )

    @expose("/<int:attachment_id>/restore/", methods=("POST",))
    def restore(self, attachment_id):
        return self._change(attachment_id, attachments.restore, "已恢复附件")

    def _change(self, attachment_id, change, done, *args):
        back = _safe_next(request.form.get("next"), url_for("admin.index"))
        found = self._found(attachment_id)
        if found is None:
            return self._missing()
        if not attachments.may_attach(current_role(), found.owner_kind):
            abort(403)
        try:
            change(found, *args)
        except InvalidInput as bad:
            flash(str(bad), "error")
        else:
            db.session.commit()
            flash(done, "success")
        return redirect(back)


def _zip_response(items, filename: str):
    """A streamed zip of these attachments (read from storage one by one as the zip is sent)."""
    from zipstream import ZIP_STORED, ZipStream

    from services import storage

    store = storage.current()
    archive = ZipStream(compress_type=ZIP_STORED)
    used: set[str] = set()
    for a in items:
        name = f"{AttachmentKind.label_of(a.kind)}-{a.id}-{a.original_name}".replace("/", "_")
        if name in used:
            name = f"{a.id}-{name}"
        used.add(name)
        archive.add(_lazy(store, a.storage_key), name, size=a.size)
    response = Response(iter(archive), mimetype="application/zip", direct_passthrough=True)
    response.headers["Content-Disposition"] = content_disposition("attachment", filename)
    response.headers["Cache-Control"] = "no-store"
    return response


def _lazy(store, key):
    yield from store.stream(key)


def _user_id():
    from flask_login import current_user

    return current_user.id if current_user.is_authenticated else None


def _as_json(attachment: Attachment) -> dict:
    return {
        "id": attachment.id,
        "kind": attachment.kind,
        "kind_label": AttachmentKind.label_of(attachment.kind),
        "name": attachment.original_name,
        "url": url_for("attachment.show", attachment_id=attachment.id),
        "thumb_url": url_for("attachment.thumb", attachment_id=attachment.id)
        if attachment.thumb_key
        else None,
    }


def attachment_panel(owner_kind: str, owner_id, *, printing: bool = False, title: str = "附件") -> Markup:
    """The reusable widget: an owner's attachments as thumbnails and links, and the upload form."""
    role = current_role()
    if not attachments.may_view(role, owner_kind):
        return Markup("")
    owner = attachments.find_owner(owner_kind, owner_id, current_scope())
    if owner is None:
        return Markup("")
    items = attachments.listed(owner_kind, [owner.id])
    may_attach = attachments.may_attach(role, owner_kind) and not printing
    archived = attachments.listed(owner_kind, [owner.id], archived=True) if may_attach else []
    exportable = len(attachments.exportable(items)) if items else 0
    return Markup(
        render_template(
            "attachments/_panel.html",
            exportable=exportable,
            owner_kind=owner_kind,
            owner_id=owner.id,
            items=items,
            archived=archived,
            may_attach=may_attach,
            printing=printing,
            title=title,
            kinds=attachments.kind_choices(owner_kind),
            accept=attachments.ACCEPT,
            kind_label=AttachmentKind.label_of,
            human_size=attachments.human_size,
            uploaders=_names({a.uploaded_by_id for a in items}),
            next_url=request.full_path.rstrip("?"),
        )
    )


def _names(user_ids) -> dict:
    ids = [i for i in user_ids if i]
    if not ids:
        return {}
    return {u.id: str(u) for u in db.session.scalars(select(User).where(User.id.in_(ids)))}


def too_large(error):
    message = attachments.TOO_LARGE
    if _wants_json():
        return jsonify(saved=[], errors=[message]), 413
    back = request.referrer if (request.referrer or "").startswith(request.host_url) else None
    return render_template("attachments/too_large.html", message=message, back=back), 413


def init_app(app) -> None:
    app.add_template_global(attachment_panel, "attachment_panel")
    # Other uploads (the ledger import) keep the 413 page they registered; attachments get theirs.
    from werkzeug.exceptions import RequestEntityTooLarge

    earlier = app.error_handler_spec[None][413].get(RequestEntityTooLarge)

    def too_large_here(error):
        if earlier is not None and not request.path.startswith("/admin/attachment"):
            return earlier(error)
        return too_large(error)

    app.register_error_handler(RequestEntityTooLarge, too_large_here)


def register(admin) -> None:
    admin.add_view(AttachmentView(name="附件", endpoint="attachment", url="/admin/attachment"))
