"""Flask-Admin views, one module per area. ``register_views`` adds them all, in menu order."""

import importlib

# Each module has register(admin). Areas built later add their module name here.
AREA_MODULES = (
    "views.registry",
    "views.records",
    "views.assessment",
    "views.supervision",
    "views.cases",
    "views.activities",
    "views.funds",
    "views.reports",
    "views.process",
    "views.system",
    "views.attachments",
)


def register_views(admin, app):
    for name in AREA_MODULES:
        module = importlib.import_module(name)
        module.register(admin)
        if hasattr(module, "init_app"):
            module.init_app(app)
