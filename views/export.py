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
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.interfaces import MANYTOONE

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
                self.xlsx_rows(query),
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
        """The list query with the current search, filters and sort, without paging."""
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
        return query

    def xlsx_rows(self, query):
        """The query's rows streamed in batches (``yield_per``); the relations the exported columns
        read are filled in per batch with one query each, so no row costs a query of its own."""
        prefetch = RelationPrefetch(self.model, self._relations_read(), self.session)
        options = prefetch.fallback_options()
        stmt = query.statement.options(*options) if options else query.statement
        result = self.session.execute(stmt, execution_options={"yield_per": self.export_batch_size})
        for batch in result.scalars().partitions():
            prefetch.fill(batch)
            yield from batch

    def _relations_read(self) -> list[str]:
        mapper = self.model.__mapper__
        keys = []
        for name, _label in self._export_columns:
            key = name.split(".")[0] if isinstance(name, str) else None
            if key in mapper.relationships and key not in keys:
                keys.append(key)
        return keys + [k for k in self.column_export_relations if k not in keys]

    # Relations that export formatters read besides the exported columns themselves.
    column_export_relations: tuple[str, ...] = ()

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


class RelationPrefetch:
    """Fills the relations of a batch of rows with a query per relation and batch: many-to-one and
    many-to-many directly (set_committed_value, no per-row events), others by selectin loading."""

    def __init__(self, model, keys, session):
        self.session = session
        self.direct = []
        self.fallback = []
        for key in keys:
            rel = model.__mapper__.relationships[key]
            many_to_one = rel.direction is MANYTOONE and len(rel.local_columns) == 1
            many_to_many = rel.secondary is not None and len(rel.synchronize_pairs) == 1
            if many_to_one or many_to_many:
                self.direct.append((key, rel))
            else:
                self.fallback.append(getattr(model, key))
        self.targets: dict = {}

    def fallback_options(self) -> list:
        return [selectinload(attr) for attr in self.fallback]

    def _targets(self, rel, ids) -> dict:
        cache = self.targets.setdefault(rel.key, {})
        missing = {i for i in ids if i is not None and i not in cache}
        if missing:
            target = rel.mapper.class_
            pk = rel.mapper.primary_key[0]
            for obj in self.session.scalars(select(target).where(pk.in_(missing))):
                cache[getattr(obj, pk.key)] = obj
        return cache

    def fill(self, batch) -> None:
        for key, rel in self.direct:
            if rel.secondary is None:
                local = next(iter(rel.local_columns))
                attr = self._column_key(rel.parent, local)
                values = [getattr(m, attr) for m in batch]
                cache = self._targets(rel, set(values))
                for m, value in zip(batch, values, strict=True):
                    set_committed_value(m, key, cache.get(value) if value is not None else None)
            else:
                parent_pk, parent_col = rel.synchronize_pairs[0]
                target_col = rel.secondary_synchronize_pairs[0][1]
                pk_attr = self._column_key(rel.parent, parent_pk)
                ids = [getattr(m, pk_attr) for m in batch]
                pairs = self.session.execute(
                    select(parent_col, target_col).where(parent_col.in_(ids)).order_by(parent_col, target_col)
                ).all()
                cache = self._targets(rel, {t for _, t in pairs})
                grouped: dict = {}
                for parent, target in pairs:
                    grouped.setdefault(parent, []).append(cache[target])
                for m, pid in zip(batch, ids, strict=True):
                    set_committed_value(m, key, grouped.get(pid, []))

    @staticmethod
    def _column_key(mapper, column) -> str:
        return mapper.get_property_by_column(column).key


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
