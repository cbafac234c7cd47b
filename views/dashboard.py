"""工作台: the admin index, figures scoped to the user."""

from flask import abort, jsonify, redirect, request, url_for
from flask_admin import AdminIndexView, expose
from flask_login import current_user

from choices import LEVEL_COLOURS, AssessmentStatus, Level, ServiceKind
from models import utcnow
from services import clock, indicators, transfers
from services.accounts import recently_locked
from services.assessment import may_review
from services.dashboard import child_figures, overdue_work, plan_phases, plan_rates, register_counts
from services.fund_checks import execution_figures, open_findings_count
from services.permissions import can_read
from views.assessment import OverdueFilter, filtered_url
from views.base import current_role, current_scope, level_badge
from views.registry import FileCompleteFilter


class DashboardView(AdminIndexView):
    def is_accessible(self):
        return current_user.is_authenticated

    def inaccessible_callback(self, name, **kwargs):
        return redirect(url_for("auth.login", next=request.full_path))

    @expose("/")
    def index(self):
        role = current_role()
        scope = current_scope()
        today = clock.today()
        counts = rates = work = None
        links = {}
        if can_read(role, "children"):
            children = child_figures(scope, today)  # one scan, shared by the counts and the rates
            counts = register_counts(scope, children)
            rates = plan_rates(scope, today, children)
            links["incomplete_files"] = filtered_url("child", [(FileCompleteFilter, "0")])
        # The findings count runs every fund check: the page asks for it separately (fund_findings).
        funds = execution_figures() if can_read(role, "funds") else None
        if can_read(role, "assessments"):
            work = overdue_work(scope, user_id=current_user.id, may_review=may_review(role), today=today)
            links["to_review"] = filtered_url("assessment", [("状态", AssessmentStatus.SUBMITTED.value)])
            if can_read(role, "services"):
                links["measures"] = filtered_url("support_service", [(OverdueFilter, "1")])
        rectifications = self._rectifications(role, scope, today)
        incoming = None
        if can_read(role, "transfers"):
            incoming = transfers.pending_incoming(scope)
        consent = None
        if can_read(role, "consent"):
            frame = indicators.Frame.as_of(today, scope)
            consent = indicators.compute_many(("consent_coverage", "consent_missing_under_14"), frame)
        # Accounts locked by wrong passwords: their admins are told here (and on 账号), not the typist.
        locked = recently_locked(utcnow()) if can_read(role, "users") else []
        return self.render(
            "admin/index.html",
            rectifications=rectifications,
            consent=consent,
            incoming=incoming,
            locked_accounts=locked,
            counts=counts,
            funds=funds,
            rates=rates,
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
        return jsonify(open_findings=open_findings_count())
