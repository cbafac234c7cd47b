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


def test_upgrading_fills_the_history_the_indicators_read(database_url, tmp_path):
    """A landed database gains registration dates (the earliest record when older than the row), its
    archived children's history, their planned measures cancelled and open alerts withdrawn, change
    stamps on alerts, every approved assessment's next reassessment, and 下次走访 counted from visits."""
    import sqlalchemy as sa

    url = _empty_database(database_url, tmp_path)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        upgrade(revision="c01c978d1054")  # the schema before the indicators' history
        meta = sa.MetaData()
        meta.reflect(bind=db.engine)
        t = meta.tables
        base_child = {
            "name_pinyin": "jia",
            "name_initials": "j",
            "name_given": "甲",
            "gender": "F",
            "birth_date": dt.date(2016, 3, 15),
            "village_id": 1,
            "file_complete": False,
            "created_at": dt.datetime(2026, 3, 1, 8),
            "updated_at": dt.datetime(2026, 3, 1, 8),
            "version": 1,
        }
        snapshot = {"levels": {"orange": {"visit_days": 15, "reassess_days": 90}}}
        with db.engine.begin() as conn:
            conn.execute(
                t["village"].insert(),
                {"id": 1, "name": "云岭村", "kind": "village", "code": "V1", "sort_order": 1},
            )
            conn.execute(
                t["rule_version"].insert(),
                {"id": 1, "created_at": dt.datetime(2026, 1, 1), "snapshot": snapshot, "fingerprint": "v1"},
            )
            for cid, archived in ((1, dt.datetime(2026, 4, 1, 10)), (2, None)):
                conn.execute(
                    t["child"].insert(),
                    {
                        **base_child,
                        "id": cid,
                        "name": f"甲{cid}",
                        "id_number": f"50010220160315{cid:03d}X",
                        "id_last4": f"{cid:03d}X",
                        "status": "moved" if archived else "active",
                        "archived_at": archived,
                        "archive_reason": "迁出" if archived else None,
                        "current_level": "orange",
                        "level_assessed_on": dt.date(2026, 1, 10),
                    },
                )
                conn.execute(
                    t["assessment"].insert(),
                    {
                        "id": cid,
                        "child_id": cid,
                        "assessed_on": dt.date(2026, 1, 10),
                        "methods": [],
                        "scores": {},
                        "vetoes": [],
                        "total_score": 15,
                        "computed_level": "orange",
                        "level": "orange",
                        "worsened": False,
                        "rule_version_id": 1,
                        "status": "approved",
                        "version": 1,
                        "created_at": dt.datetime(2026, 1, 10),
                    },
                )
                conn.execute(
                    t["visit"].insert(),
                    {
                        "child_id": cid,
                        "visited_on": dt.date(2026, 2, 1),
                        "kind": "home",
                        "child_seen": True,
                        "guardian_present": True,
                        "living_ok": True,
                        "school_ok": True,
                        "harm_signs": False,
                        "risk_found": False,
                        "version": 1,
                        "created_at": dt.datetime(2026, 2, 1),
                    },
                )
                conn.execute(
                    t["support_service"].insert(),
                    {
                        "id": cid,
                        "child_id": cid,
                        "kind": "counselling",
                        "status": "planned",
                        "due_on": dt.date(2026, 4, 20),
                        "version": 1,
                        "created_at": dt.datetime(2026, 1, 12),
                    },
                )
                conn.execute(
                    t["alert"].insert(),
                    {
                        "id": cid,
                        "source": "rule",
                        "severity": "orange",
                        "child_id": cid,
                        "village_id": 1,
                        "title": "预警",
                        "raised_at": dt.datetime(2026, 3, 20, 9),
                        "deadline": dt.datetime(2026, 3, 23, 9),
                        "status": "open",
                        "version": 1,
                    },
                )
        upgrade()
        with db.engine.connect() as conn:
            child = {
                r.id: r
                for r in conn.execute(
                    text("SELECT id, registered_on, status_changed_at, next_visit_due FROM child")
                )
            }
            changes = conn.execute(text("SELECT child_id, status, reason FROM child_status_change")).all()
            services = dict(conn.execute(text("SELECT id, status FROM support_service")).all())
            alerts_rows = {
                r.id: r
                for r in conn.execute(text("SELECT id, status, closure, updated_at, result FROM alert"))
            }
            steps = conn.execute(text("SELECT alert_id FROM alert_step")).scalars().all()
            reassess = (
                conn.execute(text("SELECT next_reassess_on FROM assessment ORDER BY id")).scalars().all()
            )
        db.engine.dispose()
    as_date = lambda v: v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v)[:10])  # noqa: E731
    assert as_date(child[1].registered_on) == dt.date(2026, 1, 10)  # the assessment is older than the row
    assert child[1].status_changed_at is not None and child[2].status_changed_at is None
    assert [(c, s, r) for c, s, r in changes] == [(1, "moved", "迁出")]
    assert services == {1: "cancelled", 2: "planned"}
    assert (alerts_rows[1].status, alerts_rows[1].closure) == ("done", "withdrawn")
    assert alerts_rows[2].status == "open" and alerts_rows[2].updated_at is not None
    assert steps == [1]
    assert [as_date(d) for d in reassess] == [dt.date(2026, 4, 10)] * 2
    # the visit of 2026-02-01 is the latest contact: orange, every 15 days
    assert as_date(child[2].next_visit_due) == dt.date(2026, 2, 16)


def test_casework_migration_keeps_what_existing_cases_and_children_hold(database_url, tmp_path):
    """A landed database: each case's free-text 帮扶措施 becomes one measure per line, 跟踪 notes become
    跟进记录, a case opened from a report is linked to it, and every child gets its 档案编号 in the
    order of registration, per village and year, with the counters set after them. Down and up again
    gives the same."""
    url = _empty_database(database_url, tmp_path)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        upgrade(revision="d35c0e7a1b2f")  # the schema before casework
        child = {
            "name_pinyin": "jia",
            "name_initials": "j",
            "name_given": "甲",
            "gender": "F",
            "birth_date": dt.date(2016, 3, 15),
            "status": "active",
            "file_complete": False,
            "updated_at": dt.datetime(2026, 1, 5),
            "version": 1,
        }
        columns = ", ".join(
            ["id", "name", "id_number", "id_last4", "village_id", "created_at", "registered_on", *child]
        )
        values = ", ".join(
            [":id", ":name", ":id_number", ":id_last4", ":village_id", ":created_at", ":registered_on"]
        )
        values += ", " + ", ".join(f":{k}" for k in child)
        rows = [  # (id, village, registered): out of id order on purpose
            (1, 1, dt.datetime(2026, 3, 1)),
            (2, 1, dt.datetime(2026, 1, 5)),
            (3, 2, dt.datetime(2026, 2, 1)),
            (4, 1, dt.datetime(2025, 12, 30)),
        ]
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO village (id, name, kind, code, sort_order) VALUES (1, '云岭村', 'village', 'YL', 1)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO village (id, name, kind, code, sort_order) VALUES (2, '桃源村', 'village', 'TY', 2)"
                )
            )
            for child_id, village_id, registered in rows:
                conn.execute(
                    text(f"INSERT INTO child ({columns}) VALUES ({values})"),
                    {
                        "id": child_id,
                        "name": f"儿童{child_id}",
                        "id_number": f"50010220160315{child_id:03d}X",
                        "id_last4": f"{child_id:03d}X",
                        "village_id": village_id,
                        "created_at": registered,
                        "registered_on": registered.date(),
                        **child,
                    },
                )
            conn.execute(
                text(
                    "INSERT INTO user_account (id, username, display_name, password_hash, role, active, failed_logins,"
                    " session_epoch, created_at) VALUES (1, 'sw', '社工甲', 'x', 'social', TRUE, 0, 0, :at)"
                ),
                {"at": dt.datetime(2026, 1, 1)},
            )
            conn.execute(
                text(
                    "INSERT INTO mandatory_report (id, reporter_kind, anonymous, received_at, child_id, village_id,"
                    " situation, urgency, outcome, version) VALUES (1, 'teacher', FALSE, :at, 1, 1, '淤青',"
                    " 'urgent', 'to_case', 1)"
                ),
                {"at": dt.datetime(2026, 3, 2, 9)},
            )
            conn.execute(
                text(
                    "INSERT INTO case_file (id, child_id, case_type, opened_on, stage, stage_changed_at, plan_goals,"
                    " plan_measures, version) VALUES (1, 1, 'abuse', :day, 'track', :at, '恢复监护',"
                    " :measures, 1)"
                ),
                {
                    "day": dt.date(2026, 3, 2),
                    "at": dt.datetime(2026, 3, 20),
                    "measures": "每周入户；联系亲属\n训诫",
                },
            )
            for kind, at, note in (
                ("open", dt.datetime(2026, 3, 2, 10), "由强制报告转入：核实属实"),
                ("track", dt.datetime(2026, 3, 25, 10), "回访：情况稳定"),
            ):
                conn.execute(
                    text(
                        "INSERT INTO case_event (case_id, at, user_id, kind, note) VALUES (1, :at, 1, :kind, :note)"
                    ),
                    {"at": at, "kind": kind, "note": note},
                )
        upgrade()
        first = _casework_state()
        downgrade(revision="d35c0e7a1b2f")
        with db.engine.connect() as conn:
            measures_text = conn.execute(
                text("SELECT plan_measures FROM case_file WHERE id = 1")
            ).scalar_one()
            kinds = (
                conn.execute(text("SELECT kind FROM case_event WHERE case_id = 1 ORDER BY at"))
                .scalars()
                .all()
            )
        upgrade()
        again = _casework_state()
        db.engine.dispose()
    assert first["numbers"] == {
        4: "LY-YL-2025-0001",
        2: "LY-YL-2026-0001",
        1: "LY-YL-2026-0002",
        3: "LY-TY-2026-0001",
    }
    assert first["counters"] == {(1, 2025): 1, (1, 2026): 2, (2, 2026): 1}
    assert first["measures"] == ["每周入户", "联系亲属", "训诫"]
    assert first["follow_ups"] == [(dt.date(2026, 3, 25), "other", "社工甲", "回访：情况稳定", "track")]
    assert first["events"] == ["open"] and first["report_id"] == 1
    assert first["rules"] == {"abuse": True, "absence": True, "improper": False}
    assert measures_text == "每周入户\n联系亲属\n训诫" and kinds == ["open", "track"]
    assert again == first


def _casework_state() -> dict:
    with db.engine.connect() as conn:
        follow_ups = conn.execute(
            text("SELECT followed_on, method, followed_by, change, stage FROM case_follow_up ORDER BY id")
        ).all()
        return {
            "numbers": dict(conn.execute(text("SELECT id, file_no FROM child")).all()),
            "counters": {
                (v, y): last
                for v, y, last in conn.execute(text("SELECT village_id, year, last FROM file_counter"))
            },
            "measures": conn.execute(text("SELECT content FROM case_measure ORDER BY id")).scalars().all(),
            "follow_ups": [
                (d if isinstance(d, dt.date) else dt.date.fromisoformat(d), m, by, c, s)
                for d, m, by, c, s in follow_ups
            ],
            "events": conn.execute(text("SELECT kind FROM case_event ORDER BY at")).scalars().all(),
            "report_id": conn.execute(text("SELECT report_id FROM case_file WHERE id = 1")).scalar_one(),
            "rules": {
                t: bool(r)
                for t, r in conn.execute(text("SELECT case_type, conference_required FROM case_type_rule"))
            },
        }
