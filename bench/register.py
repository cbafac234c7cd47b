"""The register: child list, search, details and edit form at 100,000 children."""

from models import Child, Village, db


def measure(bench):
    first_village = db.session.scalar(db.select(Village.id).order_by(Village.sort_order))
    child = db.session.scalar(db.select(Child).where(Child.village_id == first_village).limit(1))
    surname_given = child.name
    initials = child.name_initials
    last4 = child.id_number[-4:]
    bench.time_get("child list page 1 (clerk)", "clerk", "/admin/child/", 60)
    bench.time_get("child list page 1 (director1)", "director1", "/admin/child/", 60)
    bench.time_get("search by Chinese name", "clerk", f"/admin/child/?search={surname_given}", 50)
    bench.time_get("search by pinyin initials", "clerk", f"/admin/child/?search={initials}", 50)
    bench.time_get("search by ID last 4", "clerk", f"/admin/child/?search={last4}", 50)
    bench.time_get("child details", "clerk", f"/admin/child/details/?id={child.id}", 60)
    bench.time_get("child edit form", "clerk", f"/admin/child/edit/?id={child.id}", 60)
