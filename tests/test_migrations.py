"""`make run` builds the schema with Alembic: the migrations must produce exactly the models' schema."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from app import create_app
from models import db


def _empty_database(database_url, tmp_path):
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return f"sqlite:///{tmp_path / 'migrated.db'}"
    name = "tonghu_migrations_check"
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
