"""Our child list beside bare Flask-Admin's, on the same database in the same run.

The bare side is a plain ``ModelView`` of the child table in a throwaway Flask app made here (not in
the product): the same columns, page size and order, searching ``name`` and ``id_number`` the way
Flask-Admin does (``LIKE '%…%'``), no login, no scoping. Samples of the two are interleaved so a
change in the machine's load hits both. ``python -m bench.run bare`` runs this part alone.
"""

import statistics
import time

from flask import Flask
from flask_admin import Admin
from flask_admin.contrib.sqla import ModelView
from flask_admin.theme import Bootstrap4Theme

from bench.harness import Row
from models import Child, Village, db

REPEAT = 21
LIST_RATIO = 1.3  # ours may take at most this many times bare Flask-Admin's time
SEARCH_SPEEDUP = 5  # and search at least this many times faster


class BareChildView(ModelView):
    column_list = (
        "name",
        "gender",
        "id_number",
        "birth_date",
        "village",
        "current_level",
        "next_visit_due",
        "status",
    )
    column_searchable_list = ("name", "id_number")
    column_default_sort = ("id", True)
    page_size = 20


def bare_app(database_url: str) -> Flask:
    app = Flask("bare_flask_admin")
    app.config.update(SQLALCHEMY_DATABASE_URI=database_url, SECRET_KEY="bare")
    db.init_app(app)  # the same models on the same database, through an engine of this app
    admin = Admin(app, name="bare", url="/admin", theme=Bootstrap4Theme())
    admin.add_view(BareChildView(Child, db.session, endpoint="child"))
    return app


def _sample(client, url, app) -> float:
    start = time.perf_counter()
    with app.app_context():
        response = client.get(url)
    elapsed = (time.perf_counter() - start) * 1000
    assert response.status_code == 200, f"{url}: {response.status_code}"
    return elapsed


def measure(bench) -> None:
    ours_app = bench.app
    bare = bare_app(ours_app.config["SQLALCHEMY_DATABASE_URI"])
    bare_client = bare.test_client()
    ours_client = bench.client("clerk")
    first_village = db.session.scalar(db.select(Village.id).order_by(Village.sort_order))
    child = db.session.scalar(db.select(Child).where(Child.village_id == first_village).limit(1))
    name, last4 = child.name, child.id_number[-4:]
    db.session.commit()
    cases = [
        ("child list page 1", "/admin/child/", "/admin/child/", "list"),
        ("child list page 200", "/admin/child/?page=199", "/admin/child/?page=199", "list"),
        ("search by name", f"/admin/child/?search={name}", f"/admin/child/?search={name}", "search"),
        ("search by ID last 4", f"/admin/child/?search={last4}", f"/admin/child/?search={last4}", "search"),
    ]
    for what, ours_url, bare_url, kind in cases:
        _sample(ours_client, ours_url, ours_app)  # warm-up, both
        _sample(bare_client, bare_url, bare)
        ours, theirs = [], []
        for _ in range(REPEAT):
            ours.append(_sample(ours_client, ours_url, ours_app))
            theirs.append(_sample(bare_client, bare_url, bare))
        ours_ms, bare_ms = statistics.median(ours), statistics.median(theirs)
        bench.rows.append(Row(f"bare Flask-Admin: {what}", bare_ms, None, "plain ModelView, same database"))
        if kind == "list":
            note = f"ours ÷ bare = {ours_ms / bare_ms:.2f} (target ≤ {LIST_RATIO})"
            bench.rows.append(Row(f"ours: {what} (clerk)", ours_ms, LIST_RATIO * bare_ms, note))
        else:
            note = f"{bare_ms / ours_ms:.1f}× faster than bare (target ≥ {SEARCH_SPEEDUP}×)"
            bench.rows.append(Row(f"ours: {what} (clerk)", ours_ms, bare_ms / SEARCH_SPEEDUP, note))
        print(f"  {what}: ours {ours_ms:.1f} ms, bare {bare_ms:.1f} ms", flush=True)
