"""一人一档, 台账导入, 疑似重复 and 报表: the views of issue 7, registered in menu order.

The dossier lives in views/dossier.py and the import and duplicates pages in views/ledger_import.py;
the report page is here.
"""

from flask import current_app, request, send_file
from flask_admin import expose
from flask_login import current_user

from models import Village, db
from services import audit, clock, reports
from services.permissions import can_read
from services.validation import parse_id
from views.base import SecureView, arg_int, current_role, current_scope, scoped_query

MENU = "档案与报表"


class ReportsView(SecureView):
    """报表: the monthly and phase report for a chosen period and scope, previewed and as xlsx."""

    area = "reports"

    def _choice(self):
        today = clock.today()
        kind = request.args.get("kind", reports.MONTHLY)
        if kind not in (reports.MONTHLY, reports.PHASE):
            kind = reports.MONTHLY
        year = arg_int("year", lo=2000, hi=today.year + 1, default=today.year, label="年份")
        month = arg_int("month", lo=1, hi=12, default=today.month, label="月份")
        phase = request.args.get("phase", "advance")
        if phase not in reports.PHASES:
            phase = "advance"
        period = (
            reports.month_period(year, month)
            if kind == reports.MONTHLY
            else reports.phase_period(year, phase)
        )
        villages = [(v.id, v.name) for v in scoped_query(Village).order_by(Village.sort_order, Village.id)]
        allowed = {vid for vid, _ in villages}
        chosen = [vid for vid in map(parse_id, request.args.getlist("village")) if vid in allowed]
        user_scope = current_scope()
        if chosen:
            village_ids = chosen
        else:
            village_ids = user_scope
        if village_ids is None:
            label = "全镇（全部村（社区））"
        else:
            names = [name for vid, name in villages if vid in set(village_ids)]
            label = "、".join(names) or "（无）"
        return {
            "kind": kind,
            "year": year,
            "month": month,
            "phase": phase,
            "period": period,
            "villages": villages,
            "chosen": chosen,
            "village_ids": village_ids,
            "scope_label": label,
            "whole_town": user_scope is None,
        }

    @expose("/")
    def index(self):
        choice = self._choice()
        figures = None
        if request.args.get("preview"):
            figures = reports.compute_figures(
                choice["period"], choice["village_ids"], choice["scope_label"], may_read=_may_read()
            )
        return self.render(
            "reports/index.html",
            c=choice,
            figures=figures,
            moment_text=reports.moment_text,
            phases=reports.PHASES,
            years=range(clock.today().year + 1, 2019, -1),
        )

    @expose("/download/")
    def download_view(self):
        from io import BytesIO

        from app import setting

        choice = self._choice()
        figures = reports.compute_figures(
            choice["period"],
            choice["village_ids"],
            choice["scope_label"],
            with_months=choice["kind"] == reports.PHASE,
            may_read=_may_read(),
        )
        content = reports.write_report(
            figures,
            town=setting("town_name", current_app.config.get("TOWN_NAME", "")),
            kind=choice["kind"],
            generated_at=clock.now(),
            generated_by=str(current_user),
        )
        name = "月度报表" if choice["kind"] == reports.MONTHLY else "阶段报表"
        audit.record(
            db.session,
            "export",
            table="report",
            summary=f"{name} {choice['period'].title} {choice['scope_label']}",
        )
        db.session.commit()
        return send_file(
            BytesIO(content),
            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            as_attachment=True,
            download_name=f"{name}-{choice['period'].start:%Y%m}-{choice['period'].end:%Y%m}.xlsx",
        )


def register(admin):
    from views import dossier, ledger_import

    dossier.register(admin, MENU)
    ledger_import.register(admin, MENU)
    ledger_import.register_duplicates(admin, MENU)
    admin.add_view(ReportsView(name="月度/阶段报表", endpoint="reports", url="reports", category=MENU))


def init_app(app):
    from views import ledger_import

    ledger_import.init_app(app)


def _may_read():
    """The areas the current role may read: a report shows only their figures."""
    role = current_role()
    return lambda area: can_read(role, area)
