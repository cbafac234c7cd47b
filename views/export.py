"""导出Excel for every list: ``XlsxExportMixin`` adds ``/export.xlsx`` to a ScopedModelView.

The export is the list the user is looking at (same scope, filters, search and sort, all pages),
streamed from the database with ``yield_per`` into XlsxWriter's constant_memory mode; ID numbers are
masked unless the role may reveal them; every export is written to the audit log.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from decimal import Decimal
from urllib.parse import urlencode

from flask import abort, request, send_file
from flask_admin import expose
from flask_admin.tools import rec_getattr
from markupsafe import Markup
from sqlalchemy.orm import selectinload

from choices import Choice
from models import db
from services import audit, clock
from services.permissions import may_reveal_id
from services.validation import mask_id_number
from services.xlsx_export import XLSX_MIMETYPE, ExportColumn, write_list
from views.base import current_role

PLAIN = (str, int, float, bool, Decimal, dt.date, dt.datetime, type(None))


class XlsxExportMixin:
    """Mix in before ModelView: ``class ScopedModelView(XlsxExportMixin, ModelView)``."""

    can_export_xlsx = True
    export_batch_size = 2000
    # Columns holding ID numbers: masked in the file unless the role may reveal them.
    column_export_masked: tuple[str, ...] = ("id_number",)

    # --- the button ----------------------------------------------------------------------

    def xlsx_export_url(self) -> str:
        """The export URL carrying the list's current filters, search and sort (not its page)."""
        args = [(k, v) for k, v in request.args.items(multi=True) if k not in ("page", "page_size")]
        url = self.get_url(".export_xlsx")
        return f"{url}?{urlencode(args)}" if args else url

    # --- the endpoint --------------------------------------------------------------------

    @expose("/export.xlsx")
    def export_xlsx(self):
        if not self.can_export_xlsx:
            abort(403)
        reveal = may_reveal_id(current_role())
        columns = self.xlsx_columns(reveal)
        view_args = self._get_list_extra_args()
        query = self.xlsx_query(view_args)
        out = tempfile.TemporaryFile()  # noqa: SIM115 - send_file closes it after the response
        try:
            n = write_list(
                out,
                self.name or self.model.__name__,
                columns,
                query,
                about=self._xlsx_about(view_args, reveal),
            )
        except Exception:
            out.close()
            raise
        conditions = self._conditions(view_args)
        summary = f"导出Excel：{self.name}，{n}行" + (f"；条件：{conditions}" if conditions else "")
        if reveal and self._masked_names():
            summary += "；含完整身份证号"
        audit.record(db.session, "export", table=self.model.__tablename__, summary=summary)
        db.session.commit()
        out.seek(0)
        return send_file(
            out,
            mimetype=XLSX_MIMETYPE,
            as_attachment=True,
            download_name=f"{self.name}_{clock.today():%Y%m%d}.xlsx",
        )

    # --- the query: Flask-Admin's own list query, all pages, streamed ----------------------

    def xlsx_query(self, view_args):
        """The list query with the current search, filters and sort, without paging, streamed."""
        query = self.get_query()
        count_query = self.get_count_query()
        joins: dict = {}
        count_joins: dict = {}
        if self._search_supported and view_args.search:
            query, count_query, joins, count_joins = self._apply_search(
                query, count_query, joins, count_joins, view_args.search
            )
        if view_args.filters and self._filters:
            query, count_query, joins, count_joins = self._apply_filters(
                query, count_query, joins, count_joins, view_args.filters
            )
        sort = self._get_column_by_idx(view_args.sort)
        query, joins = self._apply_sorting(query, joins, sort[0] if sort else None, view_args.sort_desc)
        options = self.xlsx_load_options()
        if options:
            query = query.options(*options)
        return query.yield_per(self.export_batch_size)

    def xlsx_load_options(self) -> list:
        """Relations the exported columns read, loaded per batch (selectin works with yield_per)."""
        mapper = self.model.__mapper__
        options = []
        for name, _label in self._export_columns:
            key = name.split(".")[0] if isinstance(name, str) else None
            if key in mapper.relationships:
                options.append(selectinload(getattr(self.model, key)))
        return options

    # --- the columns ---------------------------------------------------------------------

    def xlsx_columns(self, reveal: bool) -> list[ExportColumn]:
        return [
            ExportColumn(str(label), self._xlsx_getter(name, reveal)) for name, label in self._export_columns
        ]

    def _masked_names(self) -> set[str]:
        return {name for name, _ in self._export_columns if name in self.column_export_masked}

    def _xlsx_getter(self, name, reveal: bool):
        if name in self.column_export_masked:
            if reveal:
                return lambda model: getattr(model, name)
            return lambda model: mask_id_number(getattr(model, name))
        formatter = (self.column_formatters_export or {}).get(name)
        if formatter is not None:
            view = self

            def formatted(model):
                return plain(formatter(view, None, model, name))

            return formatted
        choice = (getattr(self, "choice_columns", None) or {}).get(name)
        if choice is not None:
            return lambda model: choice.label_of(getattr(model, name))
        choices_map = self._column_choices_map.get(name)
        if choices_map:
            return lambda model: plain(choices_map.get(getattr(model, name), getattr(model, name)))
        if isinstance(name, str) and "." not in name:

            def attribute(model):
                value = getattr(model, name)
                return value if isinstance(value, PLAIN) and not isinstance(value, Choice) else plain(value)

            return attribute
        return lambda model: plain(rec_getattr(model, name))

    # --- what the file says about itself -------------------------------------------------

    def _conditions(self, view_args) -> str:
        parts = []
        if view_args.search:
            parts.append(f"搜索“{view_args.search}”")
        for idx, flt_name, value in view_args.filters or []:
            flt = self._filters[idx]
            shown = value
            options = flt.get_options(self) if callable(flt.options) else flt.options
            if options:
                shown = dict((str(k), str(v)) for k, v in options).get(str(value), value)
            parts.append(f"{flt_name} {flt.operation()} {shown}")
        sort = self._get_column_by_idx(view_args.sort)
        if sort:
            parts.append(f"按“{sort[1]}”{'降序' if view_args.sort_desc else '升序'}")
        return "；".join(parts)

    def _xlsx_about(self, view_args, reveal: bool):
        actor = audit.current_actor()
        about = [
            ("列表", str(self.name)),
            ("导出时间", clock.now().strftime("%Y-%m-%d %H:%M")),
            ("导出人", actor.username or ""),
            ("筛选条件", self._conditions(view_args) or "（无，全部记录）"),
        ]
        if self._masked_names():
            about.append(("身份证号", "完整显示（本次导出已记入操作日志）" if reveal else "已脱敏"))
        about.append(("说明", "仅含您有权查看的记录；以“=、+、-、@”开头的内容按文本保存。"))
        return about


def plain(value):
    """A list/details value as a spreadsheet cell: HTML stripped, lists joined, objects as text."""
    if isinstance(value, Markup):
        return value.striptags()
    if isinstance(value, Choice):
        return value.label
    if isinstance(value, PLAIN):
        return value
    if isinstance(value, (list, tuple, set)):
        return "、".join(str(plain(v)) for v in value)
    return str(value)


__all__ = ["XlsxExportMixin", "plain"]
