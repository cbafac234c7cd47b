"""Activities (活动), the attendance screen (活动签到), sign-in sheets, 爱心妈妈 pairing and staff training."""

from __future__ import annotations

import datetime as dt
import io
import json
from html import escape

from flask import abort, flash, redirect, request, send_file, url_for
from flask_admin import expose
from flask_admin.contrib.sqla.filters import DateBetweenFilter
from flask_admin.model.template import EndpointLinkRowAction
from flask_login import current_user
from markupsafe import Markup
from wtforms import SelectMultipleField, StringField
from wtforms.validators import Optional

from choices import ActivityKind, Audience, Level, StaffKind
from models import Activity, Category, Child, Guardian, MentorPairing, Staff, Village, db
from services import audit, clock
from services.activities import (
    PLACE_SUGGESTIONS,
    attendance_counts,
    check_activity,
    check_pairing,
    duration_hours,
    pairing_sessions,
    participation,
    record_session,
    training_hours,
    unpaired_children,
    untrained_staff,
)
from services.attendance import KIND_LABELS, RollFilter, build_roll, parse_keys, save_attendance
from services.signin_sheet import read_sheet, write_sheet
from services.validation import InvalidInput
from services.xlsx_input import UnsafeWorkbook
from views.base import (
    ChoiceFilter,
    ScopedAjaxLoader,
    ScopedModelView,
    SecureView,
    current_scope,
    level_badge,
    scoped_query,
    village_options,
)
from views.labels import LABELS

MENU = "活动与培训"

ACTIVITY_LABELS = {
    **LABELS,
    "kind": "活动类型",
    "title": "活动名称",
    "starts_at": "开始时间",
    "ends_at": "结束时间",
    "place": "地点",
    "organiser": "组织单位",
    "lecturers": "讲师/带队人员",
    "audience": "参与对象",
    "villages": "村（社区）",
    "capacity": "人数上限",
    "budget": "预算（元）",
    "description": "活动内容",
    "signed": "已签到",
}


def _audience_labels(values) -> str:
    return "、".join(Audience.label_of(v) for v in values or [])


def _villages_label(activity) -> str:
    return "、".join(v.name for v in activity.villages) or "全镇"


_ROW = (
    '<tr data-k="{kind}" data-v="{village_id}" data-c="{cats}" data-l="{level}" data-p="{pinyin}"'
    ' data-i="{initials}" data-d="{last4}"{row_class}><td class="tick-col"><input type="checkbox"'
    ' name="present" value="{key}"{checked}{disabled}></td><td class="name">{name}</td><td>{kind_label}</td>'
    '<td>{village}</td><td>{role}</td><td>{last4}</td><td class="small">{cat_names}</td><td>{badge}</td></tr>'
)


def roll_rows(entries, category_names: dict[int, str], may_write: bool) -> Markup:
    """The roll's table rows. Thousands of rows: every value is escaped here, once, with html.escape,
    and the row is put together with str.format (Markup.format is five times slower)."""
    badges = {level.value: str(level_badge(level.value)) for level in Level}
    unassessed = str(level_badge(None))
    names: dict[tuple, tuple[str, str]] = {}
    disabled = "" if may_write else " disabled"
    rows = []
    for e in entries:
        cats = names.get(e.category_ids)
        if cats is None:
            cats = names[e.category_ids] = (
                ",".join(str(c) for c in e.category_ids),
                escape("、".join(category_names.get(c, "") for c in e.category_ids)),
            )
        family = e.kind in ("child", "guardian")
        rows.append(
            _ROW.format(
                kind=e.kind,
                village_id=e.village_id or "",
                cats=cats[0],
                level=escape(e.level or ""),
                pinyin=escape(e.pinyin),
                initials=escape(e.initials),
                last4=escape(e.id_last4),
                row_class=' class="table-success"' if e.present else "",
                key=e.key,
                checked=" checked" if e.present else "",
                disabled=disabled,
                name=escape(e.name),
                kind_label=e.kind_label,
                village=escape(e.village),
                role=escape(e.role),
                cat_names=cats[1],
                badge=(badges.get(e.level, unassessed) if family else ""),
            )
        )
    return Markup("".join(rows))


def _town_name() -> str:
    from app import setting

    return setting("town_name", "") or ""


class ActivityView(ScopedModelView):
    area = "activities"
    menu_category = MENU
    extra_write_endpoints = ("signin_import_view",)
    create_template = "activities/activity_create.html"
    edit_template = "activities/activity_edit.html"
    column_list = (
        "kind",
        "title",
        "starts_at",
        "place",
        "villages",
        "audience",
        "capacity",
        "signed",
        "budget",
    )
    column_labels = ACTIVITY_LABELS
    column_default_sort = ("starts_at", True)
    column_sortable_list = ("kind", "title", "starts_at", "capacity")
    column_searchable_list = ("title", "place", "organiser")
    column_filters = (
        ChoiceFilter(Activity.kind, "活动类型", ActivityKind),
        DateBetweenFilter(Activity.starts_at, "开始时间"),
    )
    column_details_list = (
        "kind",
        "title",
        "starts_at",
        "ends_at",
        "place",
        "organiser",
        "lecturers",
        "audience",
        "villages",
        "capacity",
        "signed",
        "budget",
        "description",
    )
    choice_columns = {"kind": ActivityKind}
    form_columns = (
        "kind",
        "title",
        "starts_at",
        "ends_at",
        "place",
        "organiser",
        "lecturers",
        "audience",
        "villages",
        "capacity",
        "budget",
        "description",
    )
    form_overrides = {"audience": SelectMultipleField, "place": StringField}
    form_args = {
        "title": {"description": "如：重走微长征·童心向未来"},
        "ends_at": {"validators": [Optional()]},
        "place": {"description": "可直接选择建议地点，也可自行填写"},
        "lecturers": {"description": "工作人员、家庭教育专家、老党员讲师等"},
        "audience": {"choices": Audience.choices(), "description": "可多选；决定签到名单里有哪些人"},
        "villages": {"description": "不选表示全镇活动（各村均可见、均可签到）"},
        "capacity": {"description": "可不填；签到人数超过上限时提示"},
        "budget": {"description": "单位：元"},
    }
    form_widget_args = {
        "place": {"list": "place-suggestions", "autocomplete": "off"},
        "audience": {"data-role": "select2"},
    }

    column_formatters = {
        "villages": lambda v, c, m, n: _villages_label(m),
        "audience": lambda v, c, m, n: _audience_labels(m.audience),
        "starts_at": lambda v, c, m, n: m.starts_at.strftime("%Y-%m-%d %H:%M") if m.starts_at else "",
        "ends_at": lambda v, c, m, n: m.ends_at.strftime("%Y-%m-%d %H:%M") if m.ends_at else "",
        "signed": lambda v, c, m, n: v._signed(m),
        "lecturers": lambda v, c, m, n: "、".join(s.name for s in m.lecturers),
    }

    def _signed(self, model):
        counts = getattr(self, "_counts", None)
        if counts is None or model.id not in counts:
            counts = attendance_counts(db.session, [model.id])
        return counts.get(model.id, 0)

    def get_list(self, *args, **kwargs):
        count, rows = super().get_list(*args, **kwargs)
        self._counts = attendance_counts(db.session, [r.id for r in rows])
        return count, rows

    def render(self, template, **kwargs):
        kwargs.setdefault("place_suggestions", PLACE_SUGGESTIONS)
        return super().render(template, **kwargs)

    @property
    def column_extra_row_actions(self):
        return [
            EndpointLinkRowAction("fa fa-check-square-o", ".attendance_view", title="活动签到"),
            EndpointLinkRowAction("fa fa-file-excel-o", ".signin_sheet_view", title="导出签到表"),
        ]

    # --- checks ----------------------------------------------------------------------------

    def _may_change(self, activity) -> bool:
        """A village-scoped account changes only its own villages' activities, never town-wide ones."""
        scope = current_scope()
        if scope is None:
            return True
        ids = [v.id for v in activity.villages]
        return bool(ids) and all(i in scope for i in ids)

    def validate_form(self, form):
        ok = super().validate_form(form)
        if request.method != "POST" or not hasattr(form, "title"):
            return ok
        errors = check_activity(
            form.starts_at.data,
            form.ends_at.data,
            form.audience.data,
            form.capacity.data,
            form.budget.data,
        )
        scope = current_scope()
        if scope is not None and not form.villages.data:
            errors["villages"] = "请选择本村（社区）；全镇活动由镇级经办人创建"
        for name, message in errors.items():
            field = getattr(form, name)
            field.errors = list(field.errors or []) + [message]
        return ok and not errors

    def update_model(self, form, model):
        if not self._may_change(model):
            flash("全镇活动或其他村的活动只能由镇级人员修改；您可以为本村人员签到。", "error")
            return False
        return super().update_model(form, model)

    def delete_model(self, model):
        if not self._may_change(model):
            flash("全镇活动或其他村的活动只能由镇级人员删除。", "error")
            return False
        return super().delete_model(model)

    # --- attendance --------------------------------------------------------------------------

    def _activity_or_404(self):
        activity = self.get_one(request.args.get("id"))
        if activity is None:
            abort(404)
        return activity

    def _filter_from_args(self) -> RollFilter:
        scope = current_scope()
        village = request.args.get("village", type=int)
        if village is not None and scope is not None and village not in scope:
            village = None
        level = request.args.get("level") or None
        if level not in {lv.value for lv in Level} | {"none", None}:
            level = None
        return RollFilter(village_id=village, category_id=request.args.get("category", type=int), level=level)

    @expose("/attendance/", methods=("GET", "POST"))
    def attendance_view(self):
        activity = self._activity_or_404()
        if request.method == "POST":
            return self._save_attendance(activity)
        flt = self._filter_from_args()
        roll = build_roll(db.session, activity, current_scope(), flt)
        categories = db.session.scalars(db.select(Category).order_by(Category.sort_order)).all()
        return self.render(
            "activities/attendance.html",
            activity=activity,
            kind_label=ActivityKind.label_of(activity.kind),
            roll=roll,
            flt=flt,
            villages=village_options(),
            categories=categories,
            levels=Level.choices(),
            kinds=KIND_LABELS,
            audience=_audience_labels(activity.audience),
            villages_label=_villages_label(activity),
            may_write=self.may_write,
            rows_html=roll_rows(roll.entries, {c.id: c.name for c in categories}, self.may_write),
        )

    def _save_attendance(self, activity):
        if not self.may_write:
            abort(403)
        walk_ins = []
        for raw in request.form.getlist("walkin"):
            try:
                item = json.loads(raw)
                village_id = int(item["village"]) if item.get("village") else None
                walk_ins.append((str(item["name"]), village_id))
            except (ValueError, KeyError, TypeError):
                continue
        name = (request.form.get("walkin_name") or "").strip()
        if name:
            walk_ins.append((name, request.form.get("walkin_village", type=int)))
        try:
            result = save_attendance(
                db.session,
                activity,
                parse_keys(request.form.getlist("present")),
                parse_keys([request.form.get("shown", "")]),
                current_scope(),
                walk_ins=walk_ins,
                recorded_by_id=current_user.id,
                now=clock.now(),
            )
        except InvalidInput as bad:
            flash(str(bad), "error")
            return redirect(request.full_path)
        flash(
            f"签到已保存：新增{len(result.added)}人，移除{len(result.removed)}人，现共{result.total}人签到。",
            "success",
        )
        if result.refused:
            flash(f"有{len(result.refused)}人不在您可签到的名单中，未保存。", "error")
        if result.over_capacity:
            flash(f"注意：签到人数{result.total}人已超过人数上限{result.capacity}人。", "warning")
        args = {k: v for k, v in request.args.items() if k in ("id", "village", "category", "level")}
        return redirect(url_for(".attendance_view", **args))

    # --- sign-in sheets ----------------------------------------------------------------------

    @expose("/signin-sheet/")
    def signin_sheet_view(self):
        activity = self._activity_or_404()
        flt = self._filter_from_args()
        roll = build_roll(db.session, activity, current_scope(), flt)
        if roll.too_long:
            flash("名单人数过多，请先选择一个村（社区）再导出签到表。", "warning")
            return redirect(url_for(".attendance_view", id=activity.id))
        subtitle = ""
        if flt.village_id:
            subtitle = db.session.get(Village, flt.village_id).name
        data = write_sheet(activity, roll.entries, town_name=_town_name(), subtitle=subtitle)
        audit.record(
            db.session,
            "export",
            table="activity",
            record_id=activity.id,
            summary=f"导出签到表：{activity.title}（{len(roll.entries)}人）",
        )
        db.session.commit()
        name = f"签到表-{activity.title}-{activity.starts_at:%Y%m%d}.xlsx"
        return send_file(
            io.BytesIO(data),
            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            as_attachment=True,
            download_name=name,
        )

    @expose("/signin-import/", methods=("GET", "POST"))
    def signin_import_view(self):
        if not self.may_write:
            abort(403)
        activity = self._activity_or_404()
        roll = build_roll(db.session, activity, current_scope())
        context = {"activity": activity, "reading": None, "roll": roll}
        villages = {name: vid for vid, name in village_options()}
        if request.method == "POST" and request.form.get("confirm"):
            keys = parse_keys([request.form.get("keys", "")])
            present = {e.key for e in roll.entries if e.present}
            walk_ins = []
            for raw in request.form.getlist("stranger"):
                name, _, village = raw.partition("|")
                if village in villages:
                    walk_ins.append((name, villages[village]))
            try:
                result = save_attendance(
                    db.session,
                    activity,
                    keys | present,
                    set(),
                    current_scope(),
                    walk_ins=walk_ins,
                    recorded_by_id=current_user.id,
                    now=clock.now(),
                )
            except InvalidInput as bad:
                flash(str(bad), "error")
                return redirect(request.full_path)
            flash(f"已按签到表写入：新增{len(result.added)}人，现共{result.total}人签到。", "success")
            if result.over_capacity:
                flash(f"注意：签到人数{result.total}人已超过人数上限{result.capacity}人。", "warning")
            return redirect(url_for(".attendance_view", id=activity.id))
        if request.method == "POST":
            upload = request.files.get("sheet")
            if upload is None or not upload.filename:
                context["error"] = "请选择要导入的签到表文件（.xlsx）"
            elif not upload.filename.lower().endswith(".xlsx"):
                context["error"] = "只支持 .xlsx 格式的签到表，请用本系统导出的模板填写"
            else:
                try:
                    reading = read_sheet(upload.read(), roll.entries)
                except UnsafeWorkbook as unsafe:
                    context["error"] = str(unsafe)
                    return self.render("activities/signin_import.html", **context), 400
                context["reading"] = reading
                context["new_keys"] = [m.entry.key for m in reading.matched if not m.entry.present]
                context["strangers"] = [
                    (row, name, village) for row, name, village in reading.strangers if village in villages
                ]
        return self.render("activities/signin_import.html", **context)


# --------------------------------------------------------------------------- 爱心妈妈


class MentorPairingView(ScopedModelView):
    area = "pairing"
    menu_category = MENU
    extra_write_endpoints = ("session_view",)
    details_template = "activities/pairing_details.html"
    column_list = ("staff", "child", "child.village", "child.current_level", "start_on", "end_on", "notes")
    column_labels = {
        **LABELS,
        "staff": "爱心妈妈",
        "child": "儿童",
        "child.village": "村（社区）",
        "child.current_level": "风险等级",
        "start_on": "结对开始",
        "end_on": "结对结束",
    }
    column_default_sort = ("start_on", True)
    column_searchable_list = ("child.name", "staff.name")
    column_formatters = {"child.current_level": lambda v, c, m, n: level_badge(m.child.current_level)}
    column_details_list = ("staff", "child", "child.village", "start_on", "end_on", "notes")
    form_columns = ("staff", "child", "start_on", "end_on", "notes")
    form_args = {
        "staff": {"description": "只能选择类型为“爱心妈妈”的在岗工作人员"},
        "end_on": {"description": "不填表示仍在结对"},
    }
    form_ajax_refs = {
        "child": ScopedAjaxLoader("child", db.session, Child, fields=("name", "name_initials"), page_size=10)
    }

    def _scope_field(self, field):
        super()._scope_field(field)
        if field.name == "staff" and getattr(field, "query", None) is not None:
            field.query = field.query.filter(
                Staff.kind == StaffKind.CARING_MOTHER.value, Staff.active.is_(True)
            )

    def validate_form(self, form):
        ok = super().validate_form(form)
        if request.method != "POST" or not hasattr(form, "staff"):
            return ok
        errors = check_pairing(
            db.session,
            staff=form.staff.data,
            child=form.child.data,
            start_on=form.start_on.data,
            end_on=form.end_on.data,
            pairing_id=request.args.get("id", type=int),
        )
        for name, message in errors.items():
            field = getattr(form, name)
            field.errors = list(field.errors or []) + [message]
        return ok and not errors

    def on_model_change(self, form, model, is_created):
        # The child's record names its current caring mother.
        today = clock.today()
        if model.start_on <= today and (model.end_on is None or model.end_on >= today):
            model.child.caring_mother_id = model.staff.id
        elif model.child.caring_mother_id == model.staff.id:
            model.child.caring_mother_id = None

    @property
    def column_extra_row_actions(self):
        if not self.may_write:
            return []
        return [EndpointLinkRowAction("fa fa-heart", ".session_view", title="记录一对一帮扶")]

    def list_extra_links(self):
        return [("待结对儿童（橙/红）", url_for("pairing_gaps.index"))]

    def render(self, template, **kwargs):
        if template == self.details_template and kwargs.get("model") is not None:
            kwargs["sessions"] = pairing_sessions(db.session, kwargs["model"])
        return super().render(template, **kwargs)

    @expose("/session/", methods=("GET", "POST"))
    def session_view(self):
        if not self.may_write:
            abort(403)
        pairing = self.get_one(request.args.get("id"))
        if pairing is None:
            abort(404)
        error = None
        if request.method == "POST":
            try:
                delivered = request.form.get("delivered_on") or ""
                minutes = request.form.get("duration_minutes") or ""
                record_session(
                    db.session,
                    pairing,
                    delivered_on=dt.date.fromisoformat(delivered) if delivered else None,
                    duration_minutes=int(minutes) if minutes else None,
                    content=request.form.get("content", ""),
                    outcome=request.form.get("outcome"),
                )
            except InvalidInput as bad:
                error = str(bad)
            except ValueError:
                error = "日期或时长格式不正确"
            else:
                db.session.commit()
                flash(f"已记录对{pairing.child.name}的一对一帮扶。", "success")
                return redirect(url_for(".details_view", id=pairing.id))
        return self.render(
            "activities/pairing_session.html",
            pairing=pairing,
            error=error,
            form_values=request.form,
            today=clock.today(),
            sessions=pairing_sessions(db.session, pairing),
        )


class PairingGapView(SecureView):
    """Orange and red children with no active 爱心妈妈."""

    area = "pairing"

    @expose("/")
    def index(self):
        children = unpaired_children(db.session, clock.today(), current_scope())
        return self.render(
            "activities/pairing_gaps.html",
            children=children,
            level_badge=level_badge,
            may_write=self.may_write,
        )


# --------------------------------------------------------------------------- training


class TrainingView(SecureView):
    area = "activities"

    @expose("/")
    def index(self):
        year = request.args.get("year", type=int) or clock.today().year
        scope = current_scope()
        rows = training_hours(db.session, year, scope)
        trainings = scoped_query(Activity).filter(
            Activity.kind == ActivityKind.TRAINING.value,
            Activity.starts_at >= dt.datetime(year, 1, 1),
            Activity.starts_at < dt.datetime(year + 1, 1, 1),
        )
        trainings = trainings.order_by(Activity.starts_at).all()
        counts = attendance_counts(db.session, [a.id for a in trainings])
        return self.render(
            "activities/training.html",
            year=year,
            rows=rows,
            untrained=untrained_staff(db.session, year, scope),
            trainings=trainings,
            counts=counts,
            duration_hours=duration_hours,
            staff_kind=StaffKind.label_of,
            years=range(clock.today().year + 1, clock.today().year - 4, -1),
        )


# --------------------------------------------------------------------------- participation


class ParticipationView(SecureView):
    """The activities one child, guardian or staff member attended (linked from their records)."""

    area = "activities"

    def is_visible(self):
        return False

    @expose("/")
    def index(self):
        for arg, model, label in (
            ("child", Child, "儿童"),
            ("guardian", Guardian, "监护人"),
            ("staff", Staff, "工作人员"),
        ):
            pk = request.args.get(arg, type=int)
            if pk is None:
                continue
            person = scoped_query(model).filter(model.id == pk).one_or_none()
            if person is None:
                abort(404)
            records = participation(db.session, **{f"{arg}_id": pk})
            visible = {
                a.id for a in scoped_query(Activity).filter(Activity.id.in_([r.activity.id for r in records]))
            }
            records = [r for r in records if r.activity.id in visible]
            return self.render(
                "activities/participation.html",
                person=person,
                label=label,
                records=records,
                kind_label=ActivityKind.label_of,
                total_hours=sum((r.hours for r in records), start=0),
            )
        abort(404)


def participation_link(kind: str, pk: int) -> Markup:
    return Markup('<a href="{}">参与记录</a>').format(url_for("participation.index", **{kind: pk}))


def register(admin):
    admin.add_view(ActivityView(Activity, name="活动", endpoint="activity"))
    admin.add_view(MentorPairingView(MentorPairing, name="爱心妈妈结对", endpoint="pairing"))
    admin.add_view(PairingGapView(name="待结对儿童", endpoint="pairing_gaps", category=MENU))
    admin.add_view(TrainingView(name="培训统计", endpoint="training", category=MENU))
    admin.add_view(ParticipationView(name="参与记录", endpoint="participation", category=MENU))
