"""工作台: the admin index, figures scoped to the user."""

from flask import abort, jsonify, redirect, request, url_for
from flask_admin import AdminIndexView, expose
from flask_login import current_user

from choices import LEVEL_COLOURS, AssessmentStatus, Level, ServiceKind
from models import utcnow
from services import clock, dashboard, indicators, transfers
from services import consent as consent_service
from services.accounts import recently_locked
from services.alerts import assigned_to
from services.assessment import may_review
from services.dashboard import overdue_work, plan_phases
from services.field import FIELD_ROLES
from services.funds import awaiting_count
from services.permissions import can_read, can_write
from views.assessment import OverdueFilter, filtered_url
from views.audit_log import quick_audit_url, reveal_count
from views.base import current_role, current_scope, level_badge
from views.field import is_phone
from views.registry import FileCompleteFilter


class DashboardView(AdminIndexView):
    def is_accessible(self):
        return current_user.is_authenticated

    def inaccessible_callback(self, name, **kwargs):
        return redirect(url_for("auth.login", next=request.full_path))

    @expose("/")
    def index(self):
        role = current_role()
        if role in FIELD_ROLES and is_phone() and not request.args.get("desk"):
            return redirect(url_for("field.index"))  # on a phone, field staff land on 今日
        scope = current_scope()
        now = clock.now()
        today = now.date()
        frame = dashboard.frame_for(scope, now)
        work = None
        links = {}
        shown = dashboard.all_figures(
            frame, children=can_read(role, "children"), funds=can_read(role, "funds")
        )
        if shown["counts"] is not None:
            links["incomplete_files"] = filtered_url("child", [(FileCompleteFilter, "0")])
        if shown["funds"]:
            links["fund_findings"] = url_for(
                "fundcheck.index", start=frame.start, end=frame.end, state="open"
            )
        # 我的待办 is for those who do the work: a read-only role (the inspector) has none.
        if can_write(role, "assessments"):
            work = overdue_work(scope, user_id=current_user.id, may_review=may_review(role), today=today)
            links["to_review"] = filtered_url("assessment", [("状态", AssessmentStatus.SUBMITTED.value)])
            if can_read(role, "services"):
                links["measures"] = filtered_url("support_service", [(OverdueFilter, "1")])
        my_alerts = None
        if can_read(role, "alerts"):
            my_alerts = assigned_to(current_user.id, scope, clock.now())
        rectifications = self._rectifications(role, scope, today)
        incoming = None
        if can_read(role, "transfers"):
            incoming = transfers.pending_incoming(scope)
        consent = None
        if can_read(role, "consent"):
            # the same frame as the figures above: its register scan is shared, not made again
            consent = indicators.compute_many(("consent_coverage", "consent_missing_under_14"), frame)
            consent["first_missing"] = consent_service.missing_filing_under_14(
                scope, today, limit=5, count=False, sample=True
            )[0]
        # Accounts locked by wrong passwords: their admins are told here (and on 账号), not the typist.
        locked = recently_locked(utcnow()) if can_read(role, "users") else []
        approvals = awaiting_count(current_user.id) if can_write(role, "funds") else None
        audit = None
        if can_read(role, "audit"):
            audit = {"reveals": reveal_count("last_week"), "url": quick_audit_url("last_week", "reveal")}
        return self.render(
            "admin/index.html",
            **shown,  # counts, state, period, tallies, funds
            my_alerts=my_alerts,
            rectifications=rectifications,
            consent=consent,
            incoming=incoming,
            approvals=approvals,
            audit=audit,
            locked_accounts=locked,
            frame=frame,
            work=work,
            links=links,
            phases=plan_phases(today),
            today=today,
            levels=list(Level),
            level_colours=LEVEL_COLOURS,
            level_badge=level_badge,
            service_kind=ServiceKind.label_of,
            may_map=can_read(role, "map"),
            may_services=can_read(role, "services"),
        )

    def _rectifications(self, role, scope, today):
        """整改完成率 this year, the overdue rectifications and the user's own open ones."""
        if not can_read(role, "inspections"):
            return None
        from services import indicators, inspections
        from views.process import OverdueRectFilter, ReviewRectFilter

        frame = indicators.Frame.year_to_date(scope)
        return {
            "overdue_url": filtered_url("rectification", [(OverdueRectFilter, "1")]),
            "review_url": filtered_url("rectification", [(ReviewRectFilter, "0")]),
            "rate": indicators.compute("rectification_rate", frame),
            "summary": inspections.summary(scope, today),
            "overdue": inspections.overdue(scope, today),
            "mine": inspections.awaiting_me(current_user.id, scope),
            "today": today,
        }

    @expose("/fund-findings/")
    def fund_findings(self):
        if not can_read(current_role(), "funds"):
            abort(403)
        frame = dashboard.frame_for(None, clock.now())
        return jsonify(open_findings=indicators.compute("fund_findings_open", frame).value)
