"""Our child list beside bare Flask-Admin's, on the same database in the same run.

The bare side is a plain ``ModelView`` of the child table in a throwaway Flask app made here (not in
the product): the same columns, page size and order, searching ``name`` and ``id_number`` the way
Flask-Admin does (``LIKE '%…%'``), no login, no scoping. Samples of the two are interleaved so a
change in the machine's load hits both, and the ratios are taken on the CPU time the process spent
(wall-clock time beside it): on a shared machine the wall clock also counts other programs' turns.
``python -m bench.run bare`` runs this part alone.
"""

import statistics
import time

from flask import Flask
from flask_admin import Admin
from flask_admin.contrib.sqla import ModelView
from flask_admin.theme import Bootstrap4Theme
from flask_babel import Babel

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
    Babel(app)  # Flask-Admin asks flask-babel for its words when it is installed
    admin = Admin(app, name="bare", url="/admin", theme=Bootstrap4Theme())
    admin.add_view(BareChildView(Child, db.session, endpoint="child"))
    return app


def _sample(client, url, app) -> tuple[float, float]:
    """(wall-clock ms, CPU ms of this process) of one request."""
    start, cpu = time.perf_counter(), time.process_time()
    with app.app_context():
        response = client.get(url)
    elapsed = ((time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000)
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
        ours_wall, bare_wall = (statistics.median(s[0] for s in x) for x in (ours, theirs))
        ours_cpu, bare_cpu = (statistics.median(s[1] for s in x) for x in (ours, theirs))
        wall = f"wall clock: ours {ours_wall:.1f} ms, bare {bare_wall:.1f} ms"
        bench.rows.append(
            Row(f"bare Flask-Admin: {what} (CPU)", bare_cpu, None, "plain ModelView, same database")
        )
        if kind == "list":
            note = f"ours ÷ bare = {ours_cpu / bare_cpu:.2f} (target ≤ {LIST_RATIO}); {wall}"
            bench.rows.append(Row(f"ours: {what} (clerk, CPU)", ours_cpu, LIST_RATIO * bare_cpu, note))
        else:
            note = f"{bare_cpu / ours_cpu:.1f}× faster than bare (target ≥ {SEARCH_SPEEDUP}×); {wall}"
            bench.rows.append(Row(f"ours: {what} (clerk, CPU)", ours_cpu, bare_cpu / SEARCH_SPEEDUP, note))
        print(f"  {what}: CPU ours {ours_cpu:.1f} ms, bare {bare_cpu:.1f} ms; {wall}", flush=True)
