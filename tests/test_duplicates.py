"""疑似重复: the three signs of a duplicate, scoping, and a merge that moves every related record."""

import datetime as dt

import pytest
from sqlalchemy import insert

from models import (
    Alert,
    Assessment,
    Attendance,
    AuditLog,
    Case,
    Child,
    ChildGuardian,
    Expense,
    MandatoryReport,
    MentorPairing,
    SupportService,
    Village,
    Visit,
    db,
    pinyin_keys,
)
from seeds.demo import id_number
from services import file_numbers
from services.duplicates import REASON_BIRTH, REASON_ID, REASON_PHONE, find_duplicates, merge_children
from tests.conftest import form_fields
from tests.test_dossier import add_records_of_every_kind


@pytest.fixture(autouse=True)
def _app(app):
    return app


def _village(name) -> Village:
    return db.session.scalar(db.select(Village).where(Village.name == name))


def _children(village_name, n=2) -> list[Child]:
    village = _village(village_name)
    return list(
        db.session.scalars(db.select(Child).where(Child.village_id == village.id).order_by(Child.id).limit(n))
    )


def _raw_child(template: Child, **values) -> int:
    """A child written as a legacy ledger would have it (no ORM normalising)."""
    name = values.get("name", template.name)
    full, initials = pinyin_keys(name)
    row = {
        "name": name,
        "name_pinyin": full,
        "name_initials": initials,
        "gender": template.gender,
        "id_number": values["id_number"],
        "id_last4": values["id_number"][-4:],
        "birth_date": values.get("birth_date", template.birth_date),
        "village_id": values.get("village_id", template.village_id),
        "status": values.get("status", "active"),
        "archived_at": values.get("archived_at"),
        "version": 1,
    }
    row["file_no"] = file_numbers.numbers_for(db.session, [(row["village_id"], 2026)])[0]
    return db.session.execute(insert(Child).returning(Child.id), [row]).scalar_one()


def _id_ending_in_x() -> str:
    for serial in range(400, 999):
        number = id_number(dt.date(2016, 6, 1), serial, True)
        if number.endswith("X"):
            return number
    raise AssertionError("no ID number ending in X")


def _groups_with(ids) -> list:
    return [g for g in find_duplicates(None) if set(ids) <= set(g.child_ids)]


def test_same_id_number_ignoring_case_across_archived_and_active():
    template = _children("云岭村", 1)[0]
    number = _id_ending_in_x()
    active = _raw_child(template, name="王大宝", id_number=number)
    archived = _raw_child(
        template, name="王大宝", id_number=number.lower(), status="moved", archived_at=dt.datetime(2025, 1, 1)
    )
    db.session.commit()
    groups = _groups_with([active, archived])
    assert groups and REASON_ID in groups[0].reasons
    assert REASON_BIRTH in groups[0].reasons  # same name and birth date as well


def test_same_name_and_birth_date():
    first, other = _children("桃源村", 2)
    twin = _raw_child(first, id_number=id_number(first.birth_date, 700, True))
    db.session.commit()
    groups = _groups_with([first.id, twin])
    assert groups and groups[0].reasons == [REASON_BIRTH]
    assert not _groups_with([first.id, other.id])


def test_same_name_and_guardian_phone():
    first = _children("松林村", 1)[0]
    guardian = first.guardian_links[0].guardian
    assert guardian.phone
    copy = _raw_child(
        first, id_number=id_number(dt.date(2012, 2, 2), 701, True), birth_date=dt.date(2012, 2, 2)
    )
    db.session.execute(
        insert(ChildGuardian), [{"child_id": copy, "guardian_id": guardian.id, "relation": "mother"}]
    )
    db.session.commit()
    groups = _groups_with([first.id, copy])
    assert groups and groups[0].reasons == [REASON_PHONE]


def test_director_sees_only_own_village_duplicates(client, auth):
    own = _children("云岭村", 1)[0]
    other = _children("桃源村", 1)[0]
    own_copy = _raw_child(own, id_number=id_number(own.birth_date, 702, True))
    other_copy = _raw_child(other, id_number=id_number(other.birth_date, 703, True))
    db.session.commit()
    auth.login("director1")
    page = client.get("/admin/duplicates/").get_data(as_text=True)
    own_no, other_no = (db.session.get(Child, i).file_no for i in (own_copy, other_copy))
    assert f">{own_no}</td>" in page
    assert f">{other_no}</td>" not in page
    assert "merge-link" not in page  # a director may look, not merge
    assert client.get(f"/admin/duplicates/merge/?keep={own.id}&other={own_copy}").status_code == 403


def test_merge_moves_every_related_record(client, auth):
    keep, other = _children("云岭村", 2)
    add_records_of_every_kind(other)
    # the kept child already attended the same activity: one sign-in remains
    activity_id = db.session.scalar(db.select(Attendance.activity_id).where(Attendance.child_id == other.id))
    db.session.add(Attendance(activity_id=activity_id, child_id=keep.id))
    db.session.commit()
    models = [
        Assessment,
        SupportService,
        Visit,
        MandatoryReport,
        Alert,
        Case,
        MentorPairing,
        Expense,
        ChildGuardian,
    ]
    before = {m: db.session.scalar(db.select(db.func.count()).where(m.child_id == keep.id)) for m in models}
    moving = {m: db.session.scalar(db.select(db.func.count()).where(m.child_id == other.id)) for m in models}
    assert all(moving[m] > 0 for m in models)
    categories = {c.name for c in keep.categories} | {c.name for c in other.categories}

    auth.login("clerk")
    url = f"/admin/duplicates/merge/?keep={keep.id}&other={other.id}"
    page = client.get(url).get_data(as_text=True)
    assert "确认合并" in page
    response = client.post(url, data={**form_fields(client, url), "note": "台账重复录入"})
    assert response.status_code == 302
    assert f"/admin/dossier/?id={keep.id}" in response.headers["Location"]

    db.session.expire_all()
    for m in models:
        assert db.session.scalar(db.select(db.func.count()).where(m.child_id == other.id)) == 0, m
        expected = before[m] + moving[m]
        if m is ChildGuardian:
            expected = len({link.guardian_id for link in db.session.get(Child, keep.id).guardian_links})
        assert db.session.scalar(db.select(db.func.count()).where(m.child_id == keep.id)) == expected, m
    assert db.session.scalar(db.select(db.func.count()).where(Attendance.child_id == keep.id)) == 1
    assert db.session.scalar(db.select(db.func.count()).where(Attendance.child_id == other.id)) == 0
    kept = db.session.get(Child, keep.id)
    merged = db.session.get(Child, other.id)
    assert {c.name for c in kept.categories} == categories
    assert sum(1 for link in kept.guardian_links if link.is_primary) == 1
    assert (
        merged.is_archived
        and f"档案编号 {keep.file_no}" in merged.archive_reason
        and "台账重复录入" in merged.archive_reason
    )
    assert not kept.is_archived
    log = db.session.scalar(db.select(AuditLog).where(AuditLog.action == "merge"))
    assert log.record_id == keep.id and log.username == "clerk"
    assert log.changes["merged_from"] == other.id
    assert db.session.scalar(
        db.select(AuditLog).where(AuditLog.action == "archive", AuditLog.record_id == other.id)
    )


def test_merged_alerts_follow_the_kept_child_to_its_village():
    keep = _children("云岭村", 1)[0]
    other = _children("桃源村", 1)[0]
    add_records_of_every_kind(other)
    merge_children(keep.id, other.id, None)
    db.session.commit()
    db.session.expire_all()
    alerts = db.session.scalars(db.select(Alert).where(Alert.child_id == keep.id)).all()
    assert alerts and {a.village_id for a in alerts} == {keep.village_id}
    reports = db.session.scalars(db.select(MandatoryReport).where(MandatoryReport.child_id == keep.id)).all()
    assert reports and {r.village_id for r in reports} == {keep.village_id}


def test_merge_refuses_children_out_of_scope_or_the_same():
    from services.validation import InvalidInput

    own = _children("云岭村", 1)[0]
    other = _children("桃源村", 1)[0]
    with pytest.raises(InvalidInput):
        merge_children(own.id, other.id, [own.village_id])
    with pytest.raises(InvalidInput):
        merge_children(own.id, own.id, None)
