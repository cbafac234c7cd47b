"""Views of this area (to be built; see its issue)."""


def register(admin):
    pass
