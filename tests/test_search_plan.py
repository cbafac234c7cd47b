"""The child search box's clauses are served by indexes on both databases (services/search.py): the
last 4 digits of the ID number and a name (or its start) never make the database read every child."""

import pytest
from sqlalchemy import func, select, text

from models import Child, db
from services.search import child_search_clause


def _plan(stmt) -> str:
    sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
    if db.engine.url.get_backend_name() == "sqlite":
        return "\n".join(row[-1] for row in db.session.execute(text("EXPLAIN QUERY PLAN " + sql)))
    # A test database holds a hundred children, where reading them all is cheapest: forbid that, so
    # the plan shows whether an index can serve the clause at all.
    db.session.execute(text("SET LOCAL enable_seqscan = off"))
    return "\n".join(db.session.execute(text("EXPLAIN " + sql)).scalars())


@pytest.mark.parametrize(
    ("term", "indexes"),
    [
        ("0019", {"ix_child_id_last4"}),
        ("001X", {"ix_child_id_last4"}),
        ("张", {"ix_child_name", "ix_child_name_given"}),
        ("小明", {"ix_child_name", "ix_child_name_given"}),
        ("zxm", {"ix_child_name_initials", "ix_child_name_pinyin"}),
    ],
)
def test_search_is_served_by_an_index(app, term, indexes):
    clause = child_search_clause(term)
    for stmt in (
        select(func.count(Child.id)).where(clause, Child.archived_at.is_(None)),
        select(Child.id).where(clause, Child.archived_at.is_(None)),
    ):
        plan = _plan(stmt)
        used = {name for name in indexes if name in plan}
        assert used == indexes, f"{term}: {plan}"
        assert "SCAN child\n" not in plan + "\n" and "Seq Scan on child" not in plan, plan
    db.session.rollback()


def test_the_list_page_query_of_a_last4_search_uses_its_index_on_sqlite(app):
    if db.engine.url.get_backend_name() != "sqlite":
        pytest.skip("the ORDER BY id DESC LIMIT shape is checked on SQLite; PostgreSQL is checked above")
    stmt = (
        select(Child.id)
        .where(child_search_clause("0019"), Child.archived_at.is_(None))
        .order_by(Child.id.desc())
        .limit(20)
    )
    assert "ix_child_id_last4" in _plan(stmt)
