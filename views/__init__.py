"""Flask-Admin views, one module per area. ``register_views`` adds them all, in menu order."""

import importlib

# Each module has register(admin). Areas built later add their module name here.
AREA_MODULES = (
    "views.field",
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
    _system_menu_last(admin)


def _system_menu_last(admin):
    """系统管理 closes the menu, whichever module first added a page to it."""
    from views.system import MENU_SYSTEM

    admin._menu.sort(key=lambda item: item.name == MENU_SYSTEM)
