"""`make run` builds the schema with Alembic: the migrations must produce exactly the models' schema."""

import datetime as dt
import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from app import create_app
from models import db


def _empty_database(database_url, tmp_path):
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return f"sqlite:///{tmp_path / 'migrated.db'}"
    # unique per run: several suites (xdist workers, parallel checkouts) share one PostgreSQL server
    name = f"tonghu_migrations_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def test_migrations_build_the_models_schema(database_url, tmp_path):
    url = _empty_database(database_url, tmp_path)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": False}), db.metadata
            )
            tables = set(inspect(conn).get_table_names())
        db.engine.dispose()
    assert "child" in tables and "audit_log" in tables
    assert diff == [], f"models and migrations differ: run `flask --app app db migrate`: {diff}"


def test_upgrading_a_landed_database_fills_the_new_columns(database_url, tmp_path):
    """Upgrading a database that already holds children and rules sets their 建档 flags from their
    rows and the level rules' measure days to the values the code used before."""
    url = _empty_database(database_url, tmp_path)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        upgrade(revision="3ab5e9520c1a")  # the schema before the flag
        child = {
            "name": "甲",
            "name_pinyin": "jia",
            "name_initials": "j",
            "name_given": "甲",
            "id_last4": "000X",
            "gender": "F",
            "birth_date": dt.date(2016, 3, 15),
            "village_id": 1,
            "status": "active",
            "created_at": dt.datetime(2026, 1, 5),
            "updated_at": dt.datetime(2026, 1, 5),
            "version": 1,
        }
        statements = [
            (
                "INSERT INTO village (id, name, kind, code, sort_order) VALUES (1, '云岭村', 'village', 'V1', 1)",
                {},
            ),
            ("INSERT INTO category (id, code, name, sort_order) VALUES (1, 'low_income', '低保儿童', 1)", {}),
            (
                "INSERT INTO guardian (id, name, name_pinyin, name_initials, status, low_income, village_id, version)"
                " VALUES (1, '母', 'mu', 'm', 'normal', FALSE, 1, 1)",
                {},
            ),
        ]
        columns = ", ".join(["id", "id_number", "address", *child])
        values = ", ".join([":id", ":id_number", ":address", *(f":{k}" for k in child)])
        for child_id, address in ((1, "云岭村3组"), (2, "云岭村4组"), (3, None), (4, "")):
            statements.append(
                (
                    f"INSERT INTO child ({columns}) VALUES ({values})",
                    {
                        "id": child_id,
                        "id_number": f"50010220160315{child_id:03d}X",
                        "address": address,
                        **child,
                    },
                )
            )
        # 1: complete; 2: no category; 3: no address; 4: an empty address
        for child_id in (1, 2, 3, 4):
            statements.append(
                (
                    "INSERT INTO child_guardian (id, child_id, guardian_id, relation, is_primary)"
                    " VALUES (:id, :id, 1, 'mother', TRUE)",
                    {"id": child_id},
                )
            )
        for level, min_score in (("green", 27), ("yellow", 20), ("orange", 12), ("red", 0)):
            statements.append(
                (
                    "INSERT INTO level_rule (level, min_score, visit_days, reassess_days)"
                    " VALUES (:level, :min_score, 30, 90)",
                    {"level": level, "min_score": min_score},
                )
            )
        for child_id in (1, 3, 4):
            statements.append(
                ("INSERT INTO child_category (child_id, category_id) VALUES (:id, 1)", {"id": child_id})
            )
        with db.engine.begin() as conn:
            for sql, params in statements:
                conn.execute(text(sql), params)
        upgrade()
        flags = _flags()
        with db.engine.connect() as conn:
            measure_days = dict(conn.execute(text("SELECT level, measure_days FROM level_rule")).all())
        # Down and up again: on SQLite the downgrade rebuilds the child table (batch), which must not
        # cascade-delete the rows that reference it.
        downgrade(revision="3ab5e9520c1a")
        with db.engine.connect() as conn:
            links = conn.execute(text("SELECT count(*) FROM child_guardian")).scalar_one()
            categorised = conn.execute(text("SELECT count(*) FROM child_category")).scalar_one()
        upgrade()
        flags_again = _flags()
        db.engine.dispose()
    assert flags == {1: True, 2: False, 3: False, 4: False}
    # the tiered measures' days the code used before they were rule data
    assert measure_days == {"green": None, "yellow": 30, "orange": 15, "red": 3}
    assert (links, categorised) == (4, 3)
    assert flags_again == flags


def _flags() -> dict:
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT id, file_complete FROM child ORDER BY id")).all()
    return {child_id: bool(flag) for child_id, flag in rows}
