"""台账导入 (template, dry run, all-or-nothing import) and 疑似重复 (likely duplicates and their merge)."""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import time
from pathlib import Path

from flask import current_app, flash, redirect, request, send_file, url_for
from flask_admin import expose
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from choices import ChildStatus
from models import Category, Child, Village, db
from services import audit
from services.duplicates import find_duplicates, merge_children, record_counts
from services.ledger_import import (
    MAX_BYTES,
    SKIP,
    UPDATE,
    LedgerHasErrors,
    LedgerRejected,
    build_template,
    check_ledger,
    import_ledger,
)
from services.validation import InvalidInput, mask_id_number
from views.base import SecureView, arg_id, current_scope, scoped_query

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
_KEEP_SECONDS = 24 * 3600


def upload_dir() -> Path:
    """Uploaded ledgers wait here between the dry run and the import (not in the session cookie)."""
    path = Path(current_app.config.get("IMPORT_FOLDER") or Path(current_app.instance_path) / "imports")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _forget(folder: Path, token: str) -> None:
    for suffix in (".xlsx", ".json"):
        (folder / f"{token}{suffix}").unlink(missing_ok=True)


def _forget_old_uploads(folder: Path) -> None:
    cutoff = time.time() - _KEEP_SECONDS
    for item in folder.iterdir():
        try:
            if item.stat().st_mtime < cutoff:
                item.unlink()
        except OSError:
            continue


class LedgerImportView(SecureView):
    area = "import"
    extra_write_endpoints = ("check_view", "run_view")
    create_endpoints = frozenset({"run_view"})

    @expose("/")
    def index(self):
        return self.render("import/index.html", max_mb=MAX_BYTES // 1024 // 1024)

    @expose("/template/")
    def template_view(self):
        villages = [v.name for v in scoped_query(Village).order_by(Village.sort_order, Village.id)]
        categories = [c.name for c in db.session.scalars(db.select(Category).order_by(Category.sort_order))]
        content = build_template(villages, categories)
        from io import BytesIO

        return send_file(
            BytesIO(content),
            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            as_attachment=True,
            download_name=f"儿童台账导入模板-{dt.date.today():%Y%m%d}.xlsx",
        )

    @expose("/check/", methods=("POST",))
    def check_view(self):
        if not self.may_write:
            return self.inaccessible_callback("check_view")
        try:
            upload = request.files.get("file")
        except RequestEntityTooLarge:
            return self._refused(TOO_LARGE)
        if upload is None or not upload.filename:
            return self._refused("请选择要上传的台账文件（.xlsx）。")
        folder = upload_dir()
        _forget_old_uploads(folder)
        token = secrets.token_urlsafe(24)
        path = folder / f"{token}.xlsx"
        upload.save(path)
        file_name = Path(upload.filename).name[:120]
        (folder / f"{token}.json").write_text(
            json.dumps({"user_id": current_user.id, "file_name": file_name}, ensure_ascii=False)
        )
        mode = request.form.get("mode", SKIP)
        return self._dry_run(path, token, file_name, mode)

    @expose("/run/", methods=("POST",))
    def run_view(self):
        if not self.may_write:
            return self.inaccessible_callback("run_view")
        token = request.form.get("token", "")
        mode = request.form.get("mode", SKIP)
        if mode not in (SKIP, UPDATE):
            mode = SKIP
        path, meta = self._upload(token)
        if path is None:
            flash("上传的文件已失效，请重新上传。", "error")
            return redirect(url_for(".index"))
        try:
            summary = import_ledger(path, current_scope(), mode, file_name=meta["file_name"])
            db.session.commit()
        except LedgerRejected as bad:
            db.session.rollback()
            return self._refused(str(bad))
        except LedgerHasErrors as bad:
            db.session.rollback()
            _forget(path.parent, token)
            flash("数据已发生变化，重新检查发现问题，未导入任何记录。", "error")
            return self.render(
                "import/check.html", result=bad.result, token=token, file_name=meta["file_name"], mode=mode
            )
        except Exception:
            db.session.rollback()
            current_app.logger.exception("ledger import failed")
            flash("导入失败，未写入任何记录。请稍后重试或联系系统管理员。", "error")
            return redirect(url_for(".index"))
        _forget(path.parent, token)
        return self.render("import/done.html", summary=summary, file_name=meta["file_name"], mode=mode)

    def _upload(self, token: str):
        if not _TOKEN.match(token or ""):
            return None, None
        folder = upload_dir()
        path, meta_path = folder / f"{token}.xlsx", folder / f"{token}.json"
        if not path.exists() or not meta_path.exists():
            return None, None
        meta = json.loads(meta_path.read_text())
        if meta.get("user_id") != current_user.id:
            return None, None
        return path, meta

    def _dry_run(self, path: Path, token: str, file_name: str, mode: str):
        try:
            result = check_ledger(path, current_scope())
        except LedgerRejected as bad:
            _forget(path.parent, token)
            return self._refused(str(bad))
        if not result.ok:
            _forget(path.parent, token)  # the corrected file will be uploaded anew
        audit.record(
            db.session,
            "import",
            table="child",
            summary=f"台账试导入 {file_name}：{result.total_rows}行，问题{len(result.errors)}处",
        )
        db.session.commit()
        return self.render("import/check.html", result=result, token=token, file_name=file_name, mode=mode)

    def _refused(self, message: str):
        return self.render("import/index.html", max_mb=MAX_BYTES // 1024 // 1024, refused=message), 400


TOO_LARGE = "文件过大，单个文件不能超过 10 MB，请拆分后分批导入。"
_views: list[LedgerImportView] = []


def register(admin, category: str) -> None:
    view = LedgerImportView(name="台账导入", endpoint="ledger_import", url="import", category=category)
    _views.append(view)
    admin.add_view(view)


def init_app(app) -> None:
    """An upload above the app's request limit is refused before any view runs: answer it in Chinese."""

    view = _views.pop() if _views else None  # the view register() just made for this app

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error):
        if view is not None and request.path.startswith(view.url) and view.is_accessible():
            page, _ = view._refused(TOO_LARGE)
            return page, 413
        return TOO_LARGE, 413


class DuplicatesView(SecureView):
    """疑似重复: likely duplicate children, and the merge of two records into one."""

    area = "archive"
    extra_write_endpoints = ("merge_view",)
    create_endpoints = frozenset({"merge_view"})

    @expose("/")
    def index(self):
        groups = find_duplicates(current_scope())
        return self.render("import/duplicates.html", groups=groups, mask=mask_id_number, status_label=_status)

    @expose("/merge/", methods=("GET", "POST"))
    def merge_view(self):
        if not self.may_write:
            return self.inaccessible_callback("merge_view")
        keep_id = arg_id("keep", source=request.values)
        other_id = arg_id("other", source=request.values)
        children = {
            c.id: c for c in scoped_query(Child).filter(Child.id.in_([keep_id or 0, other_id or 0])).all()
        }
        keep, other = children.get(keep_id), children.get(other_id)
        if keep is None or other is None or keep_id == other_id:
            flash("记录不存在：要合并的儿童不存在或不在您的管理范围内。", "error")
            return redirect(url_for(".index"))
        if request.method == "POST":
            try:
                moved = merge_children(keep_id, other_id, current_scope(), note=request.form.get("note", ""))
                db.session.commit()
            except InvalidInput as bad:
                db.session.rollback()
                flash(str(bad), "error")
                return redirect(url_for(".index"))
            total = sum(moved.values())
            flash(
                f"已合并：编号 {other_id} 的 {total} 条记录已并入 {keep.name}（编号 {keep_id}），原记录已归档。",
                "success",
            )
            return redirect(url_for("dossier.index", id=keep_id))
        return self.render(
            "import/merge.html",
            keep=keep,
            other=other,
            keep_counts=record_counts(keep_id),
            other_counts=record_counts(other_id),
            mask=mask_id_number,
            status_label=_status,
        )


def _status(value) -> str:
    return ChildStatus.label_of(value)


def register_duplicates(admin, category: str) -> None:
    admin.add_view(
        DuplicatesView(name="疑似重复儿童", endpoint="duplicates", url="duplicates", category=category)
    )
