"""services/parallel_reads.side_by_side: independent reads at once, each on its own connection."""

import threading

import pytest
from sqlalchemy import func, select

from app import create_app
from models import Child, db
from services.parallel_reads import side_by_side


def _connection_id():
    return id(db.session.connection().connection.dbapi_connection)


def test_the_reads_run_at_once_on_their_own_connections_and_come_back_in_order(app):
    # Each read waits at the barrier for the other: read in turn, the first would wait alone and fail.
    barrier = threading.Barrier(2, timeout=10)

    def read(n):
        def run():
            barrier.wait()
            return n, db.session.scalar(select(func.count(Child.id))), _connection_id()

        return run

    with app.test_request_context():
        (a, children_a, conn_a), (b, children_b, conn_b) = side_by_side(read("a"), read("b"))
        expected = db.session.scalar(select(func.count(Child.id)))
    assert (a, b) == ("a", "b")
    assert children_a == children_b == expected > 0
    assert conn_a != conn_b


def test_an_error_of_a_side_read_reaches_the_caller_after_every_read_ended(app):
    finished = []

    def slow():
        threading.Event().wait(0.2)
        finished.append("first")
        return 1

    def failing():
        raise LookupError("side")

    with app.test_request_context(), pytest.raises(LookupError, match="side"):
        side_by_side(slow, failing)
    assert finished == ["first"]


def test_a_side_read_does_not_use_the_callers_session(app):
    # What the caller has not committed is not seen beside it, and the side read leaves the
    # caller's session as it was.
    with app.test_request_context():
        child = db.session.scalar(select(Child).order_by(Child.id).limit(1))
        child.name = "未提交的名字"
        db.session.flush()

        def name_beside():
            return db.session.scalar(select(Child.name).where(Child.id == child.id))

        _, seen = side_by_side(lambda: None, name_beside)
        assert seen != "未提交的名字"
        assert child in db.session and child.name == "未提交的名字"
        db.session.rollback()


def test_a_database_of_one_connection_is_read_in_turn(tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "TESTING": True, "SECRET_KEY": "x"})
    threads = []

    def read():
        threads.append(threading.get_ident())
        return db.session.scalar(select(func.count()).select_from(Child))

    with app.app_context():
        db.create_all()
        assert side_by_side(read, read) == [0, 0]
    assert threads == [threading.get_ident()] * 2


def test_the_dashboards_halves_read_each_grouped_figure_once(app, client, auth):
    # dashboard.FROM_REGISTER decides which half computes which figure; a figure of the register put
    # in the other half would scan the register a second time, beside the first.
    from sqlalchemy import event

    statements = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()))

    for user in ("clerk", "director1"):
        auth.login(user)
        with app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", seen)
        try:
            statements.clear()
            assert client.get("/admin/").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        grouped = [s for s in statements if s.startswith("SELECT") and " GROUP BY " in s]
        register = [s for s in grouped if "GROUP BY child.village_id, child.current_level" in s]
        assert len(register) == 1, user
        assert len(grouped) == len(set(grouped)), [s for s in grouped if grouped.count(s) > 1]
        auth.logout()
