"""导出Excel for every list: ``XlsxExportMixin`` adds ``/export.xlsx`` to a ScopedModelView.

The export is the list the user is looking at (same scope, filters, search and sort, all pages),
streamed from the database with ``yield_per`` into the workbook factory's constant_memory mode. ID
numbers are masked for every role; full numbers only when a role that may see them ticks 导出完整
身份证号 and types the purpose (用途), which goes into that export's audit row. Every export is
written to the audit log.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter
from urllib.parse import urlencode

from flask import abort, request, send_file
from flask_admin import expose
from flask_admin.tools import rec_getattr
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.interfaces import MANYTOONE

from choices import Choice
from models import db
from services import audit, clock
from services.permissions import may_reveal_id
from services.validation import InvalidInput, clean_text
from services.workbook import shown_id
from services.xlsx_export import XLSX_MIMETYPE, write_list

PLAIN = (str, int, float, bool, Decimal, dt.date, dt.datetime, type(None))
_MISSING = object()


@dataclass(frozen=True)
class ExportColumn:
    header: str
    value: Callable[[object], object]


class XlsxExportMixin:
    """Adds 导出Excel to a ModelView: ``class ScopedModelView(ModelView, XlsxExportMixin)`` (its names
    do not clash with ModelView's, so either order works; a subclass lists it after its view base)."""

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

    def export_has_id_numbers(self) -> bool:
        return bool(self._masked_names())

    def _export_reveal(self) -> tuple[bool, str | None]:
        """(full ID numbers?, purpose): only on a POST that ticks full_ids and gives a purpose."""
        if request.method != "POST" or request.form.get("full_ids") != "1":
            return False, None
        from services.errors import Refused

        # views.base will import this module, so the role is read here, not through views.base.
        if not (current_user.is_authenticated and may_reveal_id(current_user.role)):
            raise Refused("您的角色不能导出完整身份证号。", 403)
        try:
            purpose = clean_text(request.form.get("purpose"), label="用途", max_length=100)
        except InvalidInput as bad:
            raise Refused(str(bad)) from None
        if not purpose or len(purpose) < 2:
            raise Refused("导出完整身份证号须填写用途（如：报送区民政局复核），请返回填写后再导出。")
        return True, purpose

    @expose("/export.xlsx", methods=("GET", "POST"))
    def export_xlsx(self):
        if not self.can_export_xlsx:
            abort(403)
        reveal, purpose = self._export_reveal()
        reveal = reveal and bool(self._masked_names())
        columns = self.xlsx_columns(reveal)
        view_args = self._get_list_extra_args()
        query = self.xlsx_query(view_args)
        out = tempfile.TemporaryFile()  # noqa: SIM115 - send_file closes it after the response
        try:
            n = write_list(
                out,
                self.name or self.model.__name__,
                [c.header for c in columns],
                self.xlsx_values(query, [c.value for c in columns]),
                about=self._xlsx_about(view_args, reveal, purpose),
            )
        except Exception:
            out.close()
            raise
        conditions = self._conditions(view_args)
        summary = f"导出Excel：{self.name}，{n}行" + (f"；条件：{conditions}" if conditions else "")
        if reveal:
            summary += f"；含完整身份证号；用途：{purpose}"
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

    def xlsx_values(self, query, getters):
        """One list of cell values per row, streamed in batches (``yield_per``).

        Rows are read as plain column tuples into light row objects, which is several times faster
        than building ORM instances; the relations the columns read are filled in per batch with one
        query each. If a formatter needs more than columns and those relations (a property, say),
        the first batch shows it and the export runs over ORM instances instead.
        """
        prefetch = RelationPrefetch(self.model, self._relations_read(), self.session)
        if not prefetch.fallback:
            # First the columns the export names (and the keys of its relations), then every column.
            for keys in (self._light_columns(prefetch), None):
                batches = self._light_batches(query, prefetch, keys)
                first = next(batches, [])
                try:
                    values = [[get(row) for get in getters] for row in first]
                except NotLoaded:
                    batches.close()
                    continue
                yield from values
                for batch in batches:
                    for row in batch:
                        try:
                            yield [get(row) for get in getters]
                        except NotLoaded:  # a branch the first batch did not take
                            yield [get(self._orm_row(row)) for get in getters]
                return
        for batch in self._orm_batches(query, prefetch):
            for row in batch:
                yield [get(row) for get in getters]

    def _light_columns(self, prefetch) -> list[str]:
        mapper = self.model.__mapper__
        keys = [prop.key for prop in mapper.column_attrs if prop.columns[0] in mapper.primary_key]
        wanted = [name for name, _ in self._export_columns if isinstance(name, str)]
        wanted += prefetch.local_keys()
        for name in wanted:
            if name in mapper.column_attrs and name not in keys:
                keys.append(name)
        return keys

    def _orm_row(self, row):
        pk = self.model.__mapper__.primary_key[0].key
        return self.session.get(self.model, row.__dict__[pk])

    def _light_batches(self, query, prefetch, keys=None):
        keys = keys or [attr.key for attr in self.model.__mapper__.column_attrs]
        stmt = query.with_entities(*(getattr(self.model, k) for k in keys)).statement
        row_class = type(f"{self.model.__name__}Row", (ExportRow,), {"_export_model": self.model})
        new = object.__new__
        result = self.session.execute(stmt, execution_options={"yield_per": self.export_batch_size})
        for part in result.partitions():
            batch = []
            for values in part:
                row = new(row_class)
                row.__dict__ = dict(zip(keys, values))  # noqa: B905 - a row has one value per key
                batch.append(row)
            prefetch.fill(batch, light=True)
            yield batch

    def _orm_batches(self, query, prefetch):
        options = prefetch.fallback_options()
        stmt = query.statement.options(*options) if options else query.statement
        result = self.session.execute(stmt, execution_options={"yield_per": self.export_batch_size})
        for batch in result.scalars().partitions():
            prefetch.fill(batch)
            yield batch

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
            return lambda model: shown_id(getattr(model, name), reveal)
        choice = (getattr(self, "choice_columns", None) or {}).get(name)
        if choice is not None:
            labels = dict(choice.choices())

            def label(model):
                value = getattr(model, name)
                return labels.get(value, value)

            return label
        formatter = (self.column_formatters_export or {}).get(name)
        if getattr(formatter, "__name__", "") == "inner":
            formatter = None  # a Jinja macro (flask_admin.model.template.macro) needs a template context
        if formatter is not None:
            view = self

            def formatted(model):
                value = formatter(view, None, model, name)
                return value if type(value) is str else plain(value)

            return Memoized(formatted)
        choices_map = self._column_choices_map.get(name)
        if choices_map:
            return lambda model: plain(choices_map.get(getattr(model, name), getattr(model, name)))
        if self._is_plain_column(name):
            return attrgetter(name)
        if isinstance(name, str) and "." not in name:
            texts: dict = {}  # a related row (a village) → its text, once per export

            def attribute(model):
                value = getattr(model, name)
                if isinstance(value, PLAIN) and not isinstance(value, Choice):
                    return value
                try:
                    return texts[value]
                except KeyError:
                    text = texts[value] = plain(value)
                    return text
                except TypeError:  # a list
                    return plain(value)

            return attribute
        return lambda model: plain(rec_getattr(model, name))

    def _is_plain_column(self, name) -> bool:
        """A column whose values are already cell values (text, number, date, yes/no)."""
        prop = self.model.__mapper__.column_attrs.get(name) if isinstance(name, str) else None
        if prop is None or len(prop.columns) != 1:
            return False
        try:
            python_type = prop.columns[0].type.python_type
        except NotImplementedError:
            return False
        return python_type in (str, int, float, bool, Decimal, dt.date, dt.datetime)

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

    def _xlsx_about(self, view_args, reveal: bool, purpose: str | None = None):
        actor = audit.current_actor()
        about = [
            ("列表", str(self.name)),
            ("导出时间", clock.now().strftime("%Y-%m-%d %H:%M")),
            ("导出人", actor.username or ""),
            ("筛选条件", self._conditions(view_args) or "（无，全部记录）"),
        ]
        if self._masked_names():
            shown = (
                f"完整显示（用途：{purpose}；本次导出已记入操作日志）"
                if reveal
                else "已脱敏（5001**********1234）"
            )
            about.append(("身份证号", shown))
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

    def local_keys(self) -> list[str]:
        """The row's own columns the relations are found by (village_id, id …)."""
        keys = []
        for _key, rel in self.direct:
            column = next(iter(rel.local_columns)) if rel.secondary is None else rel.synchronize_pairs[0][0]
            keys.append(self._column_key(rel.parent, column))
        return keys

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

    def fill(self, batch, light: bool = False) -> None:
        put = _put_light if light else set_committed_value
        for key, rel in self.direct:
            if rel.secondary is None:
                local = next(iter(rel.local_columns))
                attr = self._column_key(rel.parent, local)
                values = [getattr(m, attr) for m in batch]
                cache = self._targets(rel, set(values))
                for m, value in zip(batch, values, strict=True):
                    put(m, key, cache.get(value) if value is not None else None)
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
                    put(m, key, grouped.get(pid, []))

    @staticmethod
    def _column_key(mapper, column) -> str:
        return mapper.get_property_by_column(column).key


class NotLoaded(LookupError):
    """A formatter asked a plain row for something only the ORM instance has (a property, a relation)."""


class ExportRow:
    """A row of the export read as plain columns: attribute access like the model, nothing more.
    Asking for anything else the model has raises NotLoaded (not AttributeError, which
    ``getattr(row, name, default)`` would swallow), and the row is then read as an ORM instance."""

    _export_model = None

    def __getattr__(self, name):
        if self._export_model is not None and hasattr(self._export_model, name):
            raise NotLoaded(name)
        raise AttributeError(name)


class _Reads:
    """Stands in for a row and notes which attributes a formatter reads."""

    __slots__ = ("_row", "_seen")

    def __init__(self, row, seen: set):
        object.__setattr__(self, "_row", row)
        object.__setattr__(self, "_seen", seen)

    def __getattr__(self, name):
        self._seen.add(name)
        return getattr(self._row, name)


class Memoized:
    """A formatter remembered by the values of the attributes it reads: a badge built from a level
    is built once per level, not once per row. A formatter is taken to depend on nothing but the
    attributes it reads; when it reads one more (another branch), the memory starts afresh. Values
    that cannot be keys (lists) or that rarely repeat switch the memory off."""

    CHECK_AFTER = 2000

    def __init__(self, fn):
        self.fn = fn
        self.attrs: tuple[str, ...] | None = None
        self.cache: dict = {}
        self.on = True
        self.calls = self.hits = 0

    def __call__(self, row):
        if not self.on or not isinstance(row, ExportRow):
            return self.fn(row)
        self.calls += 1
        values = row.__dict__
        if self.attrs is not None:
            try:
                found = self.cache.get(tuple([values[a] for a in self.attrs]), _MISSING)
            except (KeyError, TypeError):
                return self._off(row)
            if found is not _MISSING:
                self.hits += 1
                return found
            if self.calls == self.CHECK_AFTER and self.hits * 2 < self.calls:
                return self._off(row)
        seen: set = set()
        result = self.fn(_Reads(row, seen))
        if self.attrs is None or not seen <= set(self.attrs):
            self.attrs = tuple(sorted(seen | set(self.attrs or ())))
            self.cache.clear()
        try:
            self.cache[tuple([values[a] for a in self.attrs])] = result
        except (KeyError, TypeError):
            return self._off(row, result)
        return result

    def _off(self, row, result=_MISSING):
        self.on = False
        self.cache.clear()
        return self.fn(row) if result is _MISSING else result


def _put_light(row, key, value) -> None:
    row.__dict__[key] = value


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
