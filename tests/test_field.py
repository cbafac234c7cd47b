"""今日, the visit checklist, the offline copy and the offline queue's sync (services/field.py,
services/visits.py, services/sync.py, views/field.py), through the app with a real database."""

import datetime as dt
import gzip
import hashlib
import json
import re
import uuid
from pathlib import Path

import pytest

from models import Activity, Alert, Attendance, AuditLog, Child, SyncReceipt, User, Village, Visit, db
from services import clock
from services.visits import VisitEntry, VisitRefused, record_visit
from tests.conftest import PASSWORD, ROOT

ANSWERED = {
    "child_seen": True,
    "guardian_present": True,
    "living_ok": True,
    "school_ok": True,
    "harm_signs": False,
    "risk_found": False,
}


def user(username) -> User:
    return db.session.scalar(db.select(User).where(User.username == username))


def children_of(village_id, n=3) -> list[Child]:
    return db.session.scalars(
        db.select(Child)
        .where(Child.village_id == village_id, Child.archived_at.is_(None))
        .order_by(Child.id)
        .limit(n)
    ).all()


def other_village(village_id) -> Village:
    return db.session.scalar(db.select(Village).where(Village.id != village_id).order_by(Village.id))


def session_token(client) -> str:
    body = client.get("/field/api/session").get_json()
    return body["csrf_token"]


def visit_item(child_id, *, recorded_at, **answers):
    return {
        "uuid": str(uuid.uuid4()),
        "kind": "visit",
        "recorded_at": recorded_at.isoformat(),
        "offline": True,
        "data": {
            "child_id": child_id,
            "visited_on": recorded_at.date().isoformat(),
            "kind": "home",
            "answers": {**ANSWERED, **answers},
            "risk_note": "手臂有新鲜淤青，儿童称被打" if answers.get("risk_found") else "",
            "notes": "入户查看",
        },
    }


def post_queue(client, user_id, items, token=None):
    return client.post(
        "/field/api/sync",
        data=json.dumps({"user_id": user_id, "items": items}),
        content_type="application/json",
        headers={"X-CSRFToken": token or session_token(client)},
    )


# --------------------------------------------------------------------------- the checklist


def test_a_visit_with_any_answer_missing_is_refused_and_nothing_is_written(app):
    director = user("director1")
    child = children_of(director.village_id, 1)[0]
    before = db.session.scalar(db.select(db.func.count(Visit.id)))
    now = clock.now().replace(microsecond=0)
    for missing in ANSWERED:
        answers = {k: v for k, v in ANSWERED.items() if k != missing}
        entry = VisitEntry(child.id, now.date(), "home", answers)
        with pytest.raises(VisitRefused) as refused:
            record_visit(entry, village_ids=[director.village_id], user_id=director.id, now=now)
        assert set(refused.value.errors) == {missing}
        assert "是 或 否" in refused.value.errors[missing]
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count(Visit.id))) == before


def test_harm_signs_or_child_not_seen_mean_risk_with_its_reason(app):
    director = user("director1")
    child = children_of(director.village_id, 1)[0]
    now = clock.now().replace(microsecond=0)

    def refused(**answers):
        entry = VisitEntry(child.id, now.date(), "home", {**ANSWERED, **answers}, risk_note="")
        with pytest.raises(VisitRefused) as bad:
            record_visit(entry, village_ids=[director.village_id], user_id=director.id, now=now)
        return bad.value.errors

    assert "risk_found" in refused(harm_signs=True, risk_found=False)
    assert "risk_found" in refused(child_seen=False, risk_found=False)
    assert set(refused(harm_signs=True, risk_found=True)) == {"risk_note"}
    entry = VisitEntry(
        child.id, now.date(), "home", {**ANSWERED, "harm_signs": True, "risk_found": True}, risk_note="淤青"
    )
    visit, alert = record_visit(entry, village_ids=[director.village_id], user_id=director.id, now=now)
    assert visit.harm_signs is True and visit.risk_found is True and visit.child_seen is True
    assert alert.severity == "red" and "淤青" in alert.detail and "离线录入" not in alert.title


def test_a_recorded_visit_is_written_once_with_its_next_visit(app):
    """The visit's 下次走访 goes in with its row, not by a second write of the row after the insert
    (the sync of a day's visits wrote every row twice, with an audit update for each)."""
    from sqlalchemy import event

    director = user("director1")
    child = children_of(director.village_id, 1)[0]
    now = clock.now().replace(microsecond=0)
    written = []

    def seen(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith(("INSERT INTO VISIT ", "UPDATE VISIT ")):
            written.append(statement.split()[0].upper())

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        visit, _ = record_visit(
            VisitEntry(child.id, now.date(), "home", ANSWERED),
            village_ids=[director.village_id],
            user_id=director.id,
            now=now,
        )
        db.session.commit()
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert written == ["INSERT"]
    assert visit.next_due is not None and visit.next_due > now.date()


def test_nothing_answered_stays_unanswered_in_the_database(app):
    """No column of the checklist has a default that could stand in for an answer."""
    child = children_of(user("director1").village_id, 1)[0]
    visit = Visit(child_id=child.id, visited_on=clock.today(), kind="home")
    db.session.add(visit)
    db.session.flush()
    db.session.refresh(visit)
    assert [getattr(visit, name) for name in ANSWERED] == [None] * 6


# --------------------------------------------------------------------------- the sync


def test_a_day_offline_syncs_once_with_recorded_times_and_the_alert_counted_from_the_visit(app, client, auth):
    auth.login("director1")
    director = user("director1")
    kids = children_of(director.village_id, 3)
    now = clock.now().replace(microsecond=0)
    times = [now - dt.timedelta(hours=h) for h in (7, 5, 3)]
    items = [
        visit_item(kids[0].id, recorded_at=times[0]),
        visit_item(kids[1].id, recorded_at=times[1], harm_signs=True, risk_found=True),
        visit_item(kids[2].id, recorded_at=times[2], child_seen=False, risk_found=True),
    ]
    # the phone sends its times in UTC with the offset, as Date.toISOString() does
    items[0]["recorded_at"] = times[0].astimezone().astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    response = post_queue(client, director.id, items)
    assert response.status_code == 200, response.get_data(as_text=True)
    results = response.get_json()["results"]
    assert [r["ok"] for r in results] == [True, True, True]
    assert all(r["message"].startswith("已同步") for r in results)
    visits = {
        v.client_uuid: v for v in db.session.scalars(db.select(Visit).where(Visit.client_uuid.is_not(None)))
    }
    assert len(visits) == 3
    for item, at in zip(items, times, strict=True):
        visit = visits[item["uuid"]]
        assert visit.recorded_at == at and visit.received_at >= at
        assert visit.recorded_by_id == director.id
        assert [s.id for s in visit.visitors] == [director.staff_id]
    harmed = visits[items[1]["uuid"]]
    alert = db.session.scalar(db.select(Alert).where(Alert.condition_key == f"visit_risk:visit:{harmed.id}"))
    assert alert.severity == "red"
    assert alert.raised_at == times[1] and alert.deadline == times[1] + dt.timedelta(hours=24)
    assert "离线录入" in alert.title and "延迟 5小时" in alert.detail
    unseen = visits[items[2]["uuid"]]
    assert (
        db.session.scalar(
            db.select(Alert.severity).where(Alert.condition_key == f"visit_risk:visit:{unseen.id}")
        )
        == "orange"
    )
    # each visit moved its child's next visit from the visit's date
    assert all(v.next_due is not None and v.next_due > v.visited_on for v in visits.values())
    assert db.session.scalar(db.select(db.func.count(SyncReceipt.id))) == 3
    assert db.session.scalar(db.select(AuditLog).where(AuditLog.action == "sync")).summary.startswith(
        "离线记录同步"
    )

    # the same queue again (an answer lost on the way): nothing new is written
    counts = [db.session.scalar(db.select(db.func.count(m.id))) for m in (Visit, Alert, SyncReceipt)]
    again = post_queue(client, director.id, items).get_json()["results"]
    assert all(r["ok"] and r["duplicate"] for r in again)
    assert [r["record_id"] for r in again] == [visits[i["uuid"]].id for i in items]
    db.session.expire_all()
    assert [db.session.scalar(db.select(db.func.count(m.id))) for m in (Visit, Alert, SyncReceipt)] == counts


def test_a_forged_visit_for_another_villages_child_is_refused_and_writes_nothing(app, client, auth):
    auth.login("director1")
    director = user("director1")
    stranger = children_of(other_village(director.village_id).id, 1)[0]
    mine = children_of(director.village_id, 1)[0]
    now = clock.now().replace(microsecond=0)
    forged = visit_item(
        stranger.id, recorded_at=now - dt.timedelta(hours=1), harm_signs=True, risk_found=True
    )
    fine = visit_item(mine.id, recorded_at=now - dt.timedelta(hours=1))
    before = [db.session.scalar(db.select(db.func.count(m.id))) for m in (Visit, Alert)]
    results = post_queue(client, director.id, [forged, fine]).get_json()["results"]
    assert results[0]["ok"] is False and "不在您负责的村" in results[0]["message"]
    assert results[1]["ok"] is True
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count(Visit.id))) == before[0] + 1
    assert db.session.scalar(db.select(db.func.count(Alert.id))) == before[1]
    assert (
        db.session.scalar(
            db.select(Visit).where(Visit.child_id == stranger.id, Visit.client_uuid.is_not(None))
        )
        is None
    )
    assert db.session.scalar(db.select(SyncReceipt).where(SyncReceipt.client_uuid == forged["uuid"])) is None


def _selects_of_a_queue(client, director, kids, now) -> tuple[int, list]:
    """SELECT statements the sync of one visit per child costs, and its answers."""
    from sqlalchemy import event

    selects = []

    def seen(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    items = [visit_item(kid.id, recorded_at=now - dt.timedelta(minutes=30)) for kid in kids]
    token = session_token(client)
    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        response = post_queue(client, director.id, items, token=token)
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    return len(selects), response.get_json()["results"]


def test_a_queue_of_visits_is_checked_item_by_item_and_written_together(app, client, auth):
    """A day's queue costs no more reads for 12 visits than for 5 (the children, visitors and
    assessments of all of them are read at once), and a refused item still gets its own answer."""
    auth.login("director1")
    director = user("director1")
    kids = children_of(director.village_id, 20)
    assert len(kids) == 20
    now = clock.now().replace(microsecond=0)
    _selects_of_a_queue(client, director, kids[17:], now)  # the session's first reads
    few, answers = _selects_of_a_queue(client, director, kids[:5], now)
    assert all(r["ok"] for r in answers)
    many, answers = _selects_of_a_queue(client, director, kids[5:17], now)
    assert all(r["ok"] for r in answers) and len(answers) == 12
    # no read per item (before, 7 reads each): 7 more visits cost fewer reads than 7 (the alert rules
    # run once for the queue's children, and their reads depend on what they find)
    assert many < few + 7, (few, many)

    # refused items among accepted ones: each answered with its reason, only the others written
    stranger = children_of(other_village(director.village_id).id, 1)[0]
    archived = kids[0]
    archived.archived_at = now
    db.session.commit()
    unanswered = visit_item(kids[1].id, recorded_at=now)
    del unanswered["data"]["answers"]["school_ok"]
    items = [
        visit_item(kids[2].id, recorded_at=now, harm_signs=True, risk_found=True),
        visit_item(stranger.id, recorded_at=now),
        unanswered,
        visit_item(archived.id, recorded_at=now),
        visit_item(kids[3].id, recorded_at=now),
    ]
    results = post_queue(client, director.id, items).get_json()["results"]
    assert [r["ok"] for r in results] == [True, False, False, False, True]
    assert results[0]["alert_id"] and "已生成风险预警" in results[0]["message"]
    assert "不在您负责的村" in results[1]["message"]
    assert set(results[2]["errors"]) == {"school_ok"}
    assert "已归档" in results[3]["message"]
    db.session.expire_all()
    written = {
        v.client_uuid: v
        for v in db.session.scalars(db.select(Visit).where(Visit.client_uuid.in_([i["uuid"] for i in items])))
    }
    assert set(written) == {items[0]["uuid"], items[4]["uuid"]}
    assert {
        r.client_uuid
        for r in db.session.scalars(
            db.select(SyncReceipt).where(SyncReceipt.client_uuid.in_([i["uuid"] for i in items]))
        )
    } == set(written)
    alert = db.session.get(Alert, results[0]["alert_id"])
    assert (
        alert.condition_key == f"visit_risk:visit:{written[items[0]['uuid']].id}" and alert.severity == "red"
    )
    for item in (items[0], items[4]):
        visit = written[item["uuid"]]
        assert visit.child.next_visit_due == visit.next_due > visit.visited_on


def test_a_queue_whose_joint_write_fails_is_taken_item_by_item(app, client, auth):
    """When writing the queue's visits together fails (another request took one of them a moment
    ago), the visits are taken one by one: every one answered, none lost, none written twice."""
    from sqlalchemy import event, insert
    from sqlalchemy.orm import Session

    auth.login("director1")
    director = user("director1")
    kids = children_of(director.village_id, 3)
    now = clock.now().replace(microsecond=0)
    items = [visit_item(kid.id, recorded_at=now, harm_signs=True, risk_found=True) for kid in kids]
    failed = []

    def clash(session, flush_context, instances):
        # the first flush with the receipts meets a receipt of the same item written in between
        receipts = [o for o in session.new if isinstance(o, SyncReceipt)]
        if len(receipts) == 3 and not failed:
            failed.append(receipts[1].client_uuid)
            session.connection().execute(
                insert(SyncReceipt).values(
                    client_uuid=receipts[1].client_uuid,
                    user_id=director.id,
                    kind="visit",
                    recorded_at=now,
                    received_at=now,
                    summary="已同步",
                )
            )

    event.listen(Session, "before_flush", clash)
    try:
        results = post_queue(client, director.id, items).get_json()["results"]
    finally:
        event.remove(Session, "before_flush", clash)
    assert failed == [items[1]["uuid"]]
    assert [r["ok"] for r in results] == [True, True, True]
    assert all(r["alert_id"] for r in results)
    db.session.expire_all()
    uuids = [i["uuid"] for i in items]
    visits = db.session.scalars(db.select(Visit).where(Visit.client_uuid.in_(uuids))).all()
    assert sorted(v.client_uuid for v in visits) == sorted(uuids)
    assert (
        db.session.scalar(db.select(db.func.count(SyncReceipt.id)).where(SyncReceipt.client_uuid.in_(uuids)))
        == 3
    )
    assert (
        db.session.scalar(
            db.select(db.func.count(Alert.id)).where(
                Alert.condition_key.in_([f"visit_risk:visit:{v.id}" for v in visits])
            )
        )
        == 3
    )


def test_an_item_refused_for_its_answers_says_which(app, client, auth):
    auth.login("director1")
    director = user("director1")
    child = children_of(director.village_id, 1)[0]
    item = visit_item(child.id, recorded_at=clock.now().replace(microsecond=0))
    del item["data"]["answers"]["school_ok"]
    result = post_queue(client, director.id, [item]).get_json()["results"][0]
    assert result["ok"] is False and set(result["errors"]) == {"school_ok"}
    assert "正常上学" in result["message"]


def test_nothing_syncs_under_another_account(app, client, auth):
    auth.login("director2")
    director1, director2 = user("director1"), user("director2")
    child = children_of(director2.village_id, 1)[0]
    item = visit_item(child.id, recorded_at=clock.now().replace(microsecond=0))
    response = post_queue(client, director1.id, [item])
    assert response.status_code == 409 and "另一个账号" in response.get_json()["error"]
    assert db.session.scalar(db.select(Visit).where(Visit.client_uuid == item["uuid"])) is None
    # and a receipt taken for one account is not answered as synced to another
    auth.logout()
    auth.login("director1")
    mine = visit_item(
        children_of(director1.village_id, 1)[0].id, recorded_at=clock.now().replace(microsecond=0)
    )
    assert post_queue(client, director1.id, [mine]).get_json()["results"][0]["ok"]
    auth.logout()
    auth.login("director2")
    replay = post_queue(client, director2.id, [mine]).get_json()["results"][0]
    assert replay["ok"] is False and "其他账号" in replay["message"]


def test_a_role_that_may_not_record_visits_is_refused_per_item(app, client, auth):
    auth.login("social")
    social = user("social")
    village = social.village_scope()[0]
    item = visit_item(children_of(village, 1)[0].id, recorded_at=clock.now().replace(microsecond=0))
    result = post_queue(client, social.id, [item]).get_json()["results"][0]
    assert result["ok"] is False and result["message"] == "您的角色不能录入巡查走访"


def test_a_session_that_ended_gets_401_and_the_password_prompt_logs_the_owner_back_in(app, client, auth):
    director = user("director1")
    response = client.post("/field/api/sync", json={"user_id": director.id, "items": []})
    assert response.status_code in (400, 401)
    probe = client.get("/field/api/session")
    assert probe.status_code == 401 and probe.get_json()["authenticated"] is False
    token = probe.get_json()["csrf_token"]
    wrong = client.post(
        "/field/api/login",
        json={"username": "director2", "password": PASSWORD, "user_id": director.id},
        headers={"X-CSRFToken": token},
    )
    assert wrong.status_code == 409
    assert client.get("/field/api/session").status_code == 401
    bad = client.post(
        "/field/api/login",
        json={"username": "director1", "password": "wrong-password", "user_id": director.id},
        headers={"X-CSRFToken": token},
    )
    assert bad.status_code == 401 and bad.get_json()["error"]
    ok = client.post(
        "/field/api/login",
        json={"username": "director1", "password": PASSWORD, "user_id": director.id},
        headers={"X-CSRFToken": token},
    )
    assert ok.status_code == 200 and ok.get_json()["user"]["id"] == director.id
    assert client.get("/field/api/session").get_json()["user"]["username"] == "director1"


def test_attendance_ticks_sync_once_with_the_recorded_time(app, client, auth):
    auth.login("director1")
    director = user("director1")
    now = clock.now().replace(microsecond=0)
    activity = Activity(
        title="红色监护课堂", kind="other", starts_at=now + dt.timedelta(days=1), audience=["children"]
    )
    activity.villages = [db.session.get(Village, director.village_id)]
    db.session.add(activity)
    db.session.commit()
    keys = [f"c:{c.id}" for c in children_of(director.village_id, 10)]
    recorded = now - dt.timedelta(hours=2)
    item = {
        "uuid": str(uuid.uuid4()),
        "kind": "attendance",
        "recorded_at": recorded.isoformat(),
        "data": {"activity_id": activity.id, "present": keys, "absent": []},
    }
    result = post_queue(client, director.id, [item]).get_json()["results"][0]
    assert result["ok"] and "新增10人" in result["message"]
    rows = db.session.scalars(db.select(Attendance).where(Attendance.activity_id == activity.id)).all()
    assert len(rows) == 10 and {r.signed_at for r in rows} == {recorded}
    assert post_queue(client, director.id, [item]).get_json()["results"][0]["duplicate"]
    db.session.expire_all()
    assert (
        db.session.scalar(
            db.select(db.func.count(Attendance.id)).where(Attendance.activity_id == activity.id)
        )
        == 10
    )
    # a tick of another village's child refuses the whole set
    stranger = children_of(other_village(director.village_id).id, 1)[0]
    forged = {**item, "uuid": str(uuid.uuid4()), "data": {**item["data"], "present": [f"c:{stranger.id}"]}}
    refused = post_queue(client, director.id, [forged]).get_json()["results"][0]
    assert refused["ok"] is False and "不在您可签到的名单" in refused["message"]
    assert db.session.scalar(db.select(Attendance).where(Attendance.child_id == stranger.id)) is None


# --------------------------------------------------------------------------- 今日 and the copy


def test_today_lists_my_villages_work(app, client, auth):
    auth.login("director1")
    director = user("director1")
    data = client.get("/field/api/today").get_json()
    today = clock.today()
    in_village = db.select(Child).where(Child.village_id == director.village_id, Child.archived_at.is_(None))
    overdue = db.session.scalars(in_village.where(Child.next_visit_due < today)).all()
    assert data["visits_overdue"]["count"] == len(overdue)
    assert sum(data["visits_overdue"]["by_level"].values()) == len(overdue)
    rows = data["visits_overdue"]["rows"]
    ranks = {"red": 0, "orange": 1, "yellow": 2, "green": 3, None: 4}
    assert [(ranks[r["level"]], -r["days_overdue"]) for r in rows] == sorted(
        (ranks[r["level"]], -r["days_overdue"]) for r in rows
    )
    never = db.session.scalars(in_village.where(Child.current_level.is_(None))).all()
    assert data["never_assessed"]["count"] == len(never)
    # the same figures as the 工作台's
    from services.dashboard import frame_for, overdue_work, register_counts

    work = overdue_work([director.village_id], user_id=director.id, may_review=False, today=today)
    assert data["measures"]["overdue"] == work["measures_count"]
    counts = register_counts(frame_for([director.village_id], clock.now()))
    assert data["never_assessed"]["count"] == counts["by_level"].get(None, 0)
    assert data["user"]["username"] == "director1"
    names = {
        r["name"]
        for section in ("visits_overdue", "visits_due", "never_assessed")
        for r in data[section]["rows"]
    }
    village_names = {c.name for c in db.session.scalars(in_village)}
    assert names <= village_names


def test_the_offline_copy_is_my_village_without_id_numbers(app, client, auth):
    auth.login("director1")
    director = user("director1")
    response = client.get("/field/api/copy", headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    copy = json.loads(gzip.decompress(response.get_data()))
    fields = copy["child_fields"]
    ids = {row[fields.index("id")] for row in copy["children"]}
    expected = set(
        db.session.scalars(
            db.select(Child.id).where(Child.village_id == director.village_id, Child.archived_at.is_(None))
        )
    )
    assert ids == expected
    id_numbers = set(db.session.scalars(db.select(Child.id_number)))
    text = json.dumps(copy, ensure_ascii=False)
    assert not any(number in text for number in id_numbers)
    assert "id_number" not in fields and copy["user"]["id"] == director.id
    assert [v[0] for v in copy["villages"]] == [director.village_id]
    assert copy["expires_days"] == 7 and ("risk_found", "发现风险") in [tuple(a) for a in copy["answers"]]


def phone_moves(copy, row, visited_on: dt.date) -> dt.date:
    """What static/js/field/pages.js (movedInCopy) writes as 下次走访 when it records a visit offline."""
    fields = copy["child_fields"]
    due = row[fields.index("next_visit_due")]
    moved = visited_on + dt.timedelta(days=row[fields.index("visit_days")])
    return max(dt.date.fromisoformat(due), moved) if due else moved


def test_the_phones_next_visit_agrees_with_the_servers_rule(app, client, auth):
    """The copy carries each child's own interval (its level as frozen in the assessment's rule version,
    not today's 等级与频次), and max(stored date, visit + interval) is what the server then stores, for a
    visit today and for one entered days late."""
    from models import Assessment, LevelRule

    director = user("director1")
    assessed = set(db.session.scalars(db.select(Assessment.child_id).where(Assessment.status == "approved")))
    mine = db.session.scalars(
        db.select(Child)
        .where(Child.village_id == director.village_id, Child.archived_at.is_(None))
        .order_by(Child.id)
    ).all()
    children = [c for c in mine if c.id in assessed][:3] + [c for c in mine if c.id not in assessed][:1]
    assert len([c for c in children if c.id in assessed]) == 3
    # the admin changes the intervals after these assessments: they keep the ones they were scored under
    for rule in db.session.scalars(db.select(LevelRule)):
        rule.visit_days += 3
    db.session.commit()

    auth.login("director1")
    response = client.get("/field/api/copy", headers={"Accept-Encoding": "gzip"})
    copy = json.loads(gzip.decompress(response.get_data()))
    fields = copy["child_fields"]
    rows = {row[fields.index("id")]: row for row in copy["children"]}
    today_rule = {level["value"]: level["visit_days"] for level in copy["levels"]}
    for child in children:
        row = rows[child.id]
        assert row[fields.index("next_visit_due")] == child.next_visit_due.isoformat()
        if child.id in assessed:  # the current table would give another date
            assert row[fields.index("visit_days")] != today_rule[row[fields.index("level")]]
        else:
            assert row[fields.index("visit_days")] == 30

    now = clock.now().replace(microsecond=0)
    days_late = [0, 20, 45, 0][: len(children)]
    expected, items = {}, []
    for child, late in zip(children, days_late, strict=True):
        visited_on = now.date() - dt.timedelta(days=late)
        expected[child.id] = phone_moves(copy, rows[child.id], visited_on)
        item = visit_item(child.id, recorded_at=now - dt.timedelta(minutes=5))
        item["data"]["visited_on"] = visited_on.isoformat()
        items.append(item)
    results = post_queue(client, director.id, items).get_json()["results"]
    assert all(r["ok"] for r in results), results
    db.session.expire_all()
    stored = {c.id: db.session.get(Child, c.id).next_visit_due for c in children}
    assert stored == expected


def test_a_synced_visit_clears_the_childs_overdue_alert_at_once(app, client, auth):
    """record_visit's three parts together: the listener moves 下次走访 in the flush, and the child's own
    rule run then clears its 巡查走访逾期 at the visit's arrival (not at the next hourly run)."""
    from services.alerts import run_rules

    director = user("director1")
    today = clock.today()
    child = db.session.scalar(
        db.select(Child)
        .where(
            Child.village_id == director.village_id,
            Child.archived_at.is_(None),
            Child.next_visit_due < today,
        )
        .order_by(Child.id)
    )
    assert child is not None, "the demo village has an overdue child"
    run_rules(today, clock.now())
    db.session.commit()
    overdue = db.select(Alert).where(
        Alert.child_id == child.id, Alert.rule == "visit_overdue", Alert.condition_cleared_at.is_(None)
    )
    assert db.session.scalar(overdue) is not None

    auth.login("director1")
    now = clock.now().replace(microsecond=0)
    results = post_queue(client, director.id, [visit_item(child.id, recorded_at=now)]).get_json()["results"]
    assert results[0]["ok"], results
    db.session.expire_all()
    assert db.session.get(Child, child.id).next_visit_due > today
    assert db.session.scalar(overdue) is None


def test_field_pages_and_api_need_login_and_role(app, client, auth):
    assert client.get("/field/").status_code == 302
    assert client.get("/field/api/today").status_code == 401
    auth.login("finance")
    assert client.get("/field/").status_code == 403
    assert client.get("/field/api/copy").status_code == 403
    auth.logout()
    auth.login("director1")
    page = client.get("/field/")
    assert page.status_code == 200 and "今日" in page.get_data(as_text=True)
    assert "no-store" in page.headers.get("Cache-Control", "") or "no-cache" in page.headers.get(
        "Cache-Control", ""
    )


def test_a_phone_lands_on_today(app, client, auth):
    auth.login("director1")
    phone = {"User-Agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36"}
    response = client.get("/admin/", headers=phone)
    assert response.status_code == 302 and response.headers["Location"].endswith("/field/")
    assert client.get("/admin/?desk=1", headers=phone).status_code == 200
    assert client.get("/admin/").status_code == 200


def test_logout_asks_the_browser_to_clear_site_data(app, client, auth):
    auth.login("director1")
    response = auth.logout()
    assert response.headers["Clear-Site-Data"] == '"cache", "storage"'


def test_the_service_worker_is_built_from_the_current_files():
    """`npm run build:field` was run after the last change to a precached file (else phones keep
    serving the old one): every revision in static/field/sw.js is the file's MD5, as Workbox makes it."""
    sw = (ROOT / "static/field/sw.js").read_text()
    entries = json.loads(re.search(r"precacheAndRoute\((\[.*?\])", sw).group(1))
    assert {e["url"] for e in entries} >= {
        "/static/field/today.html",
        "/static/field/visit.html",
        "/static/field/roll.html",
        "/static/js/field/core.js",
        "/static/js/field/pages.js",
    }
    for entry in entries:
        path = ROOT / entry["url"].lstrip("/")
        assert hashlib.md5(path.read_bytes()).hexdigest() == entry["revision"], f"rebuild: {path}"
    assert "/static/vendor/workbox/workbox-sw.js" in sw
    assert Path(ROOT / "static/vendor/workbox/workbox-precaching.prod.js").exists()


# --------------------------------------------------------------------------- lists as cards


@pytest.mark.parametrize(
    "url", ["/admin/child/", "/admin/visit/", "/admin/activity/", "/admin/case/", "/admin/alerts/"]
)
def test_lists_a_director_opens_carry_their_cards(app, client, auth, url):
    auth.login("supervisor")
    body = client.get(url).get_data(as_text=True)
    assert 'class="card-head"' in body
    if "<td" in body and "没有" not in body.split("<tbody>")[-1][:200]:
        assert "card-fact" in body


def test_a_session_that_timed_out_answers_the_phone_in_json(app, client, auth):
    """The phone's API is not sent to the login page: it gets 401 and asks for the password itself."""
    from models import UserSession, utcnow

    auth.login("director1")
    assert client.get("/field/api/session").status_code == 200
    db.session.execute(db.update(UserSession).values(last_seen_at=utcnow() - dt.timedelta(minutes=31)))
    db.session.commit()
    probe = client.get("/field/api/session")
    assert probe.status_code == 401 and probe.get_json()["authenticated"] is False
    today = client.get("/field/api/today")
    assert today.status_code == 401 and today.get_json()["login"] is True
    assert client.get("/admin/").status_code == 302


def test_a_malformed_queue_gets_a_chinese_answer(app, client, auth):
    auth.login("director1")
    token = session_token(client)
    for body, kind in (("not json", "application/json"), ("[1, 2]", "application/json")):
        response = client.post(
            "/field/api/sync", data=body, content_type=kind, headers={"X-CSRFToken": token}
        )
        assert response.status_code == 400 and response.get_json()["error"] == "同步数据格式不正确"
    director = user("director1")
    results = post_queue(
        client, director.id, [{"uuid": "x", "kind": "visit"}, "junk", {"uuid": str(uuid.uuid4())}]
    )
    messages = [r["message"] for r in results.get_json()["results"]]
    assert messages == [
        "记录编号无效（应由手机生成），请删除该条后重新录入",
        "记录格式不正确",
        "不认识的记录类型，请更新页面后重试",
    ]
