"""A child's rows that keep a village of their own follow the child (services/follow_child.py), and the
consent state kept on the child follows its consent records (services/consent.py)."""

import datetime as dt

from sqlalchemy import select

from choices import ReporterKind, ServiceKind, ServiceStatus, Urgency
from models import Alert, Child, MandatoryReport, SupportService, Village, db
from services import clock, consent, indicators
from services.follow_child import moved_with_child
from services.scoping import scope
from tests.conftest import a_child
from tests.test_boundary import post_as_drawn


def _child_with_rows() -> Child:
    """A child in register with an alert and a measure of its own."""
    return db.session.scalar(
        select(Child)
        .where(
            Child.archived_at.is_(None),
            Child.id.in_(select(Alert.child_id)),
            Child.id.in_(select(SupportService.child_id)),
        )
        .order_by(Child.id)
        .limit(1)
    )


def _rows_of(child_id: int) -> list:
    return [
        row
        for model in moved_with_child()
        for row in db.session.scalars(select(model).where(model.child_id == child_id))
    ]


def test_every_table_that_keeps_a_village_for_a_child_is_followed():
    names = {model.__tablename__ for model in moved_with_child()}
    assert {"alert", "mandatory_report", "support_service"} <= names
    assert not names & {"child", "transfer", "transfer_event"}


def test_a_clerks_correction_of_a_childs_village_moves_its_rows_with_it(app, client, auth):
    child = _child_with_rows()
    old = child.village_id
    new = db.session.scalar(select(Village.id).where(Village.id != old).order_by(Village.id).limit(1))
    report = MandatoryReport(
        reporter_kind=ReporterKind.TEACHER.value,
        reporter_name="班主任",
        village_id=old,
        child_id=child.id,
        received_at=clock.now(),
        situation="学校发现孩子多日未到校",
        urgency=Urgency.NORMAL.value,
    )
    db.session.add(report)
    db.session.commit()
    before = {(type(row).__tablename__, row.id): row.version for row in _rows_of(child.id)}
    assert {table for table, _ in before} >= {"alert", "support_service", "mandatory_report"}
    loaded_alert = db.session.scalar(select(Alert).where(Alert.child_id == child.id).limit(1))
    stamped = loaded_alert.updated_at

    auth.login("clerk")
    url = f"/admin/child/edit/?id={child.id}"
    assert post_as_drawn(client, url, "id_number", village=str(new)).status_code == 302

    db.session.expire_all()
    assert db.session.get(Child, child.id).village_id == new
    rows = _rows_of(child.id)
    assert {(type(row).__tablename__, row.id) for row in rows} == set(before)
    for row in rows:
        assert row.village_id == new, type(row).__tablename__
        assert row.version == before[(type(row).__tablename__, row.id)] + 1  # a form open before is refused
    # the old village's scope no longer reaches them; the new one's does
    for model in (Alert, SupportService, MandatoryReport):
        ids = {row.id for row in rows if isinstance(row, model)}
        assert not ids & set(db.session.scalars(scope(select(model.id), model, [old])))
        assert ids <= set(db.session.scalars(scope(select(model.id), model, [new])))
    assert loaded_alert.village_id == new  # an instance loaded before reads the moved value
    assert loaded_alert.updated_at > stamped  # a change for the 141 feed's ``since``


def test_a_moved_childs_measures_count_in_its_new_village(app):
    child = _child_with_rows()
    old = child.village_id
    new = db.session.scalar(select(Village.id).where(Village.id != old).order_by(Village.id).limit(1))
    today = clock.today()
    measure = SupportService(
        child=child,
        kind=ServiceKind.COUNSELLING.value,
        status=ServiceStatus.PLANNED.value,
        due_on=today - dt.timedelta(days=3),
    )
    db.session.add(measure)
    db.session.flush()
    assert measure.village_id == old  # added without a village: the child's

    def due(village_id):
        frame = indicators.Frame.year_to_date([village_id], clock.now())
        return indicators.compute("measures_due", frame).numerator or 0

    old_due, new_due = due(old), due(new)
    child.village_id = new
    db.session.commit()
    mine = db.session.scalar(
        select(db.func.count())
        .select_from(SupportService)
        .where(
            SupportService.child_id == child.id,
            SupportService.due_on >= dt.date(today.year, 1, 1),
            SupportService.due_on < today,
            SupportService.status != ServiceStatus.CANCELLED.value,
        )
    )
    assert mine >= 1
    assert due(old) == old_due - mine and due(new) == new_due + mine


def test_a_row_given_only_its_childs_id_takes_the_childs_village(app):
    child = db.session.scalar(
        select(Child).where(Child.archived_at.is_(None)).order_by(Child.id.desc()).limit(1)
    )
    alert_free = SupportService(child_id=child.id, kind=ServiceKind.COUNSELLING.value)
    db.session.add(alert_free)
    db.session.flush()
    assert alert_free.village_id == child.village_id


def test_a_row_of_a_child_new_in_the_same_flush_takes_its_village(app):
    """The child is added with its village as an object (no village_id until the flush writes it)."""
    model = a_child()
    village = db.session.scalar(select(Village).where(Village.id != model.village_id).order_by(Village.id))
    child = Child(
        name="新来的孩子",
        id_number=None,
        gender=model.gender,
        birth_date=model.birth_date,
        registered_on=clock.today(),
        village=village,
    )
    measure = SupportService(child=child, kind=ServiceKind.COUNSELLING.value)
    db.session.add_all([child, measure])
    db.session.flush()
    assert child.village_id == village.id and measure.village_id == village.id


def test_the_kept_consent_state_follows_the_records(app):
    db.session.query(consent.Consent).delete()
    consent.refresh(db.session.connection())
    db.session.commit()
    today = clock.today()
    child = db.session.scalar(
        select(Child)
        .where(Child.archived_at.is_(None), Child.guardian_links.any())
        .order_by(Child.id)
        .limit(1)
    )
    giver = f"g{child.guardian_links[0].guardian_id}"

    def kept() -> bool:
        db.session.expire(child, ["filing_consent"])
        return child.filing_consent

    assert kept() is False
    consent.record(child, ["sharing"], giver, today - dt.timedelta(days=9), "written", today=today)
    assert kept() is False  # another purpose
    first = consent.record(child, ["filing"], giver, today - dt.timedelta(days=8), "written", today=today)
    assert kept() is True
    consent.record(child, ["filing"], giver, today - dt.timedelta(days=2), "written", today=today)
    consent.withdraw(first[0], today, "监护人电话撤回", today=today)  # withdraws the scope: both records
    assert kept() is False
    consent.record(child, ["filing"], giver, today, "written", today=today)
    assert kept() is True
    db.session.commit()
    assert consent.stale_children(db.session.connection()) == []
    # the 工作台's figure reads the kept state: this child is the village's one consented child
    frame = indicators.Frame.as_of(today, [child.village_id], clock.now())
    assert indicators.compute("consent_coverage", frame).numerator == 1


def test_an_edit_that_keeps_the_village_moves_nothing(app):
    child = _child_with_rows()
    alert = db.session.scalar(select(Alert).where(Alert.child_id == child.id).limit(1))
    version = alert.version
    child.notes = "只改备注"
    db.session.commit()
    db.session.refresh(alert)
    assert alert.version == version


def test_a_ledger_that_puts_a_child_in_another_village_moves_its_rows(app, client, auth, tmp_path):
    from tests.test_import import ledger, row, run, upload

    app.config["IMPORT_FOLDER"] = str(tmp_path / "imports")
    child = _child_with_rows()
    other = db.session.scalar(
        select(Village).where(Village.id != child.village_id).order_by(Village.id).limit(1)
    )
    rows_before = {(type(r).__tablename__, r.id) for r in _rows_of(child.id)}
    line = row(1, id_number=child.id_number, name=child.name, village=other.name)
    auth.login("clerk")
    page = upload(client, ledger([line]), mode="update").get_data(as_text=True)
    assert "更新 1 名" in run(client, page, mode="update").get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Child, child.id).village_id == other.id
    rows = _rows_of(child.id)
    assert {(type(r).__tablename__, r.id) for r in rows} == rows_before
    assert all(r.village_id == other.id for r in rows)
