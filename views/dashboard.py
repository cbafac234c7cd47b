"""工作台: the admin index, figures scoped to the user."""

from flask import redirect, request, url_for
from flask_admin import AdminIndexView, expose
from flask_login import current_user

from choices import LEVEL_COLOURS, Level
from services.dashboard import register_counts
from services.permissions import can_read
from views.base import current_role, current_scope


class DashboardView(AdminIndexView):
    def is_accessible(self):
        return current_user.is_authenticated

    def inaccessible_callback(self, name, **kwargs):
        return redirect(url_for("auth.login", next=request.full_path))

    @expose("/")
    def index(self):
        counts = None
        if can_read(current_role(), "children"):
            counts = register_counts(current_scope())
        return self.render(
            "admin/index.html",
            counts=counts,
            levels=list(Level),
            level_colours=LEVEL_COLOURS,
        )
