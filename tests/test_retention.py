"""档案保存期限与匿名化: when a file is due, what anonymising removes (everything personal, in the
database and in the storage), and what it keeps (every count)."""

import datetime as dt
import io
import json
import re

import pytest
from PIL import Image
from sqlalchemy import text

from choices import ChildStatus
from models import (
    Alert,
    AlertStep,
    AuditLog,
    Case,
    CaseConference,
    CaseEvent,
    CaseFollowUp,
    CaseMeasure,
    CaseNeeds,
    CaseService,
    Child,
    ChildGuardian,
    Expense,
    FundSource,
    Guardian,
    MandatoryReport,
    Setting,
    Visit,
    db,
)
from services import attachments, clock, consent, reports, retention, storage, transfers
from services.validation import InvalidInput
from tests.conftest import AuthActions, csrf_token

NAME = "匿名测试甲"
ADDRESS = "云岭村幸福路九十九号"
GUARDIAN = "匿名监护人乙"
GUARDIAN_PHONE = "13912345678"
GUARDIAN_ID = "500102198001011237"
GUARDIAN_ADDRESS = "云岭村监护人住址丙"
REPORTER = "报告人丁某"
REPORTER_PHONE = "13800001111"


def _jpeg(colour) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), colour).save(out, "JPEG")
    return out.getvalue()


def rich_child(app, client):
    """A child with everything a file gathers: guardian, visits, report, alert, case, consent, photos,
    a transfer out of the town, audit lines of views, reveals and downloads."""
    child = db.session.scalars(
        db.select(Child)
        .where(Child.village.has(name="云岭村"), Child.archived_at.is_(None))
        .order_by(Child.id)
    ).first()
    for link in list(child.guardian_links):
        db.session.delete(link)
    db.session.flush()
    db.session.query(Alert).filter(Alert.child_id == child.id).update(
        {"status": "done", "closed_at": clock.now()}
    )
    db.session.query(Case).filter(Case.child_id == child.id).update({"stage": "closed"})
    child.name = NAME
    child.address = ADDRESS
    child.notes = f"{NAME}与奶奶同住"
    guardian = Guardian(
        name=GUARDIAN,
        phone=GUARDIAN_PHONE,
        id_number=GUARDIAN_ID,
        address=GUARDIAN_ADDRESS,
        village_id=child.village_id,
    )
    child.guardian_links.append(ChildGuardian(guardian=guardian, relation="mother", is_primary=True))
    db.session.commit()
    now = clock.now()
    visit = Visit(
        child_id=child.id, visited_on=clock.today(), kind="home", notes=f"{GUARDIAN}说{NAME}在{ADDRESS}"
    )
    report = MandatoryReport(
        reporter_kind="teacher",
        reporter_name=REPORTER,
        reporter_phone=REPORTER_PHONE,
        received_at=now,
        child_id=child.id,
        village_id=child.village_id,
        situation=f"{NAME}多日未到校",
        urgency="normal",
    )
    alert = Alert(
        source="patrol",
        severity="orange",
        child_id=child.id,
        village_id=child.village_id,
        title=f"走访发现风险：{NAME}",
        detail=f"{GUARDIAN}外出",
        raised_at=now,
        deadline=now,
        status="done",
        closed_at=now,
        result="已联系",
    )
    case = Case(
        child_id=child.id,
        case_type="absence",
        opened_on=clock.today(),
        stage="closed",
        plan_goals=f"{NAME}复学",
        closing_evaluation=f"{GUARDIAN}已返乡",
    )
    source = db.session.scalar(db.select(FundSource).order_by(FundSource.id))
    expense = Expense(
        spent_on=clock.today(),
        amount=100,
        source_id=source.id,
        category="other",
        payee=GUARDIAN,
        purpose=f"{NAME}助学",
        child_id=child.id,
    )
    db.session.add_all([visit, report, alert, case, expense])
    db.session.flush()
    db.session.add(AlertStep(alert_id=alert.id, note=f"电话{GUARDIAN_PHONE}"))
    db.session.add(CaseEvent(case_id=case.id, kind="note", note=f"{NAME}情况"))
    # the case's own records, each with personal text
    db.session.add(
        CaseNeeds(
            case_id=case.id,
            assessed_on=clock.today(),
            problems={"care": f"{NAME}无人照看", "family": f"{GUARDIAN}外出"},
            risk_rating="high",
            risk=f"{NAME}独自在{ADDRESS}",
            child_strengths=f"{NAME}懂事",
            family_strengths=f"{GUARDIAN}愿意照料",
        )
    )
    conference = CaseConference(
        case_id=case.id,
        held_on=clock.today(),
        departments=["civil"],
        attendees=f"{GUARDIAN}、村委会",
        problem=f"{NAME}由谁照料",
        decisions=f"{GUARDIAN}返乡",
    )
    db.session.add(conference)
    db.session.flush()
    measure = CaseMeasure(
        case_id=case.id,
        content=f"联系{GUARDIAN}",
        responsible=GUARDIAN,
        source="conference",
        conference_id=conference.id,
    )
    db.session.add(measure)
    db.session.flush()
    db.session.add(
        CaseService(
            case_id=case.id,
            measure_id=measure.id,
            delivered_on=clock.today(),
            provider=f"{GUARDIAN}的邻居",
            content=f"电话{GUARDIAN_PHONE}",
            outcome=f"{NAME}已返校",
        )
    )
    db.session.add(
        CaseFollowUp(
            case_id=case.id,
            followed_on=clock.today(),
            method="home",
            followed_by=f"{GUARDIAN}陪同",
            change=f"{NAME}在{ADDRESS}生活稳定",
            stage="track",
        )
    )
    db.session.commit()
    with app.test_request_context():
        rows = consent.record(
            child,
            ["filing", "photos"],
            f"g{guardian.id}",
            clock.today(),
            "oral",
            today=clock.today(),
            witness="见证人戊",
        )
        rows[0].note = f"{GUARDIAN}签字"
        files = [
            attachments.save_upload(child, "hukou", _jpeg((1, 2, 3)), original_name=f"{NAME}户口本.jpg"),
            attachments.save_upload(visit, "visit_photo", _jpeg((4, 5, 6))),
            attachments.save_upload(case, "case_doc", b"%PDF-1.4\n1 0 obj <<>> endobj\n%%EOF\n"),
        ]
        db.session.commit()
    AuthActions(client).login("clerk")
    client.get(f"/admin/dossier/?id={child.id}")
    client.post(f"/admin/child/reveal/?id={child.id}", data={"csrf_token": csrf_token(client, "/admin/")})
    client.get(f"/admin/attachment/{files[0].id}/download/")
    page = f"/admin/transfer/move-out/?child={child.id}"
    client.post(
        page,
        data={
            "csrf_token": csrf_token(client, page),
            "destination": "某某县某某镇",
            "office": f"联系{GUARDIAN}",
            "reason": f"随{GUARDIAN}迁居",
            "acknowledged": "1",
        },
    )
    transfer = db.session.scalar(db.select(transfers.Transfer).where(transfers.Transfer.child_id == child.id))
    client.get(f"/admin/transfer/letter/?id={transfer.id}")
    AuthActions(client).logout()
    db.session.expire_all()
    child = db.session.get(Child, child.id)
    assert child.status == ChildStatus.MOVED.value
    keys = {k for f in files for k in (f.storage_key, f.thumb_key) if k}
    return child, guardian, keys


def personal_tokens(child_id_number):
    return [
        NAME,
        ADDRESS,
        GUARDIAN,
        GUARDIAN_PHONE,
        GUARDIAN_ID,
        GUARDIAN_ADDRESS,
        REPORTER,
        REPORTER_PHONE,
        child_id_number,
        "见证人戊",
    ]


def database_text() -> str:
    """Every value of every table, as text (JSON with its Chinese unescaped)."""
    parts = []
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(table.select()):
            for value in row:
                if isinstance(value, (dict, list)):
                    parts.append(json.dumps(value, ensure_ascii=False))
                elif value is not None:
                    parts.append(str(value))
    return "\n".join(parts)


def dashboard_numbers(client) -> list[str]:
    page = client.get("/admin/").get_data(as_text=True)
    return re.findall(r'class="(?:numerator|denominator|count)">(\d+)<', page) + re.findall(
        r'id="count-total">(\d+)<', page
    )


def test_anonymising_leaves_nothing_personal_and_keeps_every_count(app, client, store):
    """On local disk and on S3: the child's photos and documents leave the storage too."""
    child, guardian, keys = rich_child(app, client)
    tokens = personal_tokens(child.id_number)
    visits = db.session.scalar(db.select(db.func.count()).where(Visit.child_id == child.id))
    before = database_text()
    assert all(token in before for token in tokens)  # the check below can fail
    assert store is storage.current() and keys <= set(store.keys())
    # due three years after the archive date
    child.archived_at = child.archived_at - dt.timedelta(days=3 * 366)
    db.session.commit()
    AuthActions(client).login("clerk")
    counts_before = dashboard_numbers(client)
    period = reports.month_period(clock.today().year, clock.today().month)
    figures_before = reports.compute_figures(period, None).summary
    AuthActions(client).logout()

    AuthActions(client).login("admin")
    listing = client.get("/admin/retention/").get_data(as_text=True)
    assert f'data-child-id="{child.id}"' in listing
    response = client.post(
        f"/admin/retention/anonymise/?id={child.id}",
        data={"csrf_token": csrf_token(client, "/admin/retention/"), "confirm": "1", "reason": "保存期满"},
    )
    assert response.status_code == 302
    AuthActions(client).logout()
    db.session.expire_all()
    assert db.session.get(Child, child.id).anonymised_at is not None

    after = database_text()
    left = [token for token in tokens if token in after]
    assert left == [], f"personal data left in the database: {left}"
    assert not keys & set(store.keys()), "photos or documents left in the storage"
    anonymous = db.session.get(Child, child.id)
    assert anonymous.name == "某某" and anonymous.anonymised_at is not None
    assert anonymous.id_number == retention.placeholder_id_number(child.id)
    assert db.session.get(Guardian, guardian.id).name == "某某"
    # statistics kept
    assert anonymous.gender == child.gender and anonymous.village_id == child.village_id
    assert db.session.scalar(db.select(db.func.count()).where(Visit.child_id == child.id)) == visits
    AuthActions(client).login("clerk")
    assert dashboard_numbers(client) == counts_before
    assert reports.compute_figures(period, None).summary == figures_before
    log = db.session.scalar(
        db.select(AuditLog).where(
            AuditLog.action == "anonymise",
            AuditLog.record_id == child.id,
            AuditLog.summary.like("档案匿名化%"),
        )
    )
    assert log.username == "admin" and "保存期满" in log.summary
    # the archive view shows 某某, cannot restore it, and the finder never pairs two anonymised files
    restore = client.post(
        f"/admin/child_archive/restore/?id={child.id}", data={"csrf_token": csrf_token(client, "/admin/")}
    )
    assert db.session.get(Child, child.id).archived_at is not None, restore.status_code


def test_anonymising_is_refused_while_a_case_or_alert_is_open_or_the_child_is_registered(app):
    child = db.session.scalars(db.select(Child).where(Child.archived_at.is_(None)).order_by(Child.id)).first()
    with pytest.raises(InvalidInput, match="请先归档"):
        retention.anonymise(child, today=clock.today())
    child.archived_at, child.status = clock.now(), "closed"
    case = Case(child_id=child.id, case_type="absence", opened_on=clock.today())
    db.session.add(case)
    db.session.commit()
    with pytest.raises(InvalidInput, match="个案未结案"):
        retention.anonymise(child, today=clock.today())
    case.stage = "closed"
    now = clock.now()
    db.session.add(
        Alert(
            source="rule",
            severity="red",
            child_id=child.id,
            village_id=child.village_id,
            title="t",
            raised_at=now,
            deadline=now,
        )
    )
    db.session.commit()
    with pytest.raises(InvalidInput, match="预警未办结"):
        retention.anonymise(child, today=clock.today())
    db.session.rollback()
    assert db.session.get(Child, child.id).anonymised_at is None


def test_a_guardian_shared_with_a_sibling_is_kept_and_unlinked(app):
    child, sibling = db.session.scalars(
        db.select(Child).where(Child.guardian_links.any()).order_by(Child.id).limit(2)
    ).all()
    shared = Guardian(name="共同监护人", phone="13700000000", village_id=child.village_id)
    child.guardian_links.append(ChildGuardian(guardian=shared, relation="other"))
    sibling.guardian_links.append(ChildGuardian(guardian=shared, relation="other"))
    child.archived_at, child.status = clock.now(), "closed"
    db.session.query(Alert).filter(Alert.child_id == child.id).update({"status": "done"})
    db.session.query(Case).filter(Case.child_id == child.id).update({"stage": "closed"})
    db.session.commit()
    with app.test_request_context():
        retention.anonymise(child, today=clock.today())
        db.session.commit()
    db.session.expire_all()
    assert db.session.get(Guardian, shared.id).name == "共同监护人"
    assert shared.id in [link.guardian_id for link in db.session.get(Child, sibling.id).guardian_links]
    assert shared.id not in [link.guardian_id for link in db.session.get(Child, child.id).guardian_links]


def test_due_dates_at_their_edges(app):
    today = clock.today()
    years = retention.retention_years()
    assert years == 3
    child = db.session.scalars(db.select(Child).order_by(Child.id)).first()
    child.birth_date = dt.date(today.year - 12, 3, 1)
    child.archived_at = dt.datetime.combine(today.replace(year=today.year - 3), dt.time(9))
    child.status = "moved"
    db.session.commit()
    assert retention.due_on(child, years) == today
    due = {c.id for c in db.session.scalars(db.select(Child).where(retention.due_clause(today, years)))}
    assert child.id in due
    assert child.id not in {
        c.id
        for c in db.session.scalars(
            db.select(Child).where(retention.due_clause(today - dt.timedelta(days=1), years))
        )
    }
    # an adult never archived is due 3 years after the 18th birthday (and must be archived first)
    adult = db.session.scalars(db.select(Child).where(Child.id != child.id).order_by(Child.id)).first()
    adult.birth_date = today.replace(year=today.year - 21)
    adult.archived_at = None
    db.session.commit()
    assert retention.due_on(adult, years) == today
    files, _ = retention.due_files(None, today)
    blocked = {f.child.id: f.blocked for f in files}
    assert blocked[adult.id] == "仍在册，请先归档"


def test_the_retention_setting_is_checked(app, client):
    AuthActions(client).login("admin")
    url = "/admin/setting/edit/?id=retention_years"
    for bad in ("0", "abc", "31"):
        client.post(url, data={"csrf_token": csrf_token(client, url), "value": bad})
        db.session.expire_all()
        assert db.session.get(Setting, "retention_years").value == "3", bad
    client.post(url, data={"csrf_token": csrf_token(client, url), "value": " 5 "})
    db.session.expire_all()
    assert db.session.get(Setting, "retention_years").value == "5"
    assert retention.retention_years() == 5


def test_anonymised_files_are_never_duplicates(app):
    from services.duplicates import find_duplicates

    first, second = db.session.scalars(db.select(Child).order_by(Child.id).limit(2)).all()
    for child in (first, second):
        db.session.query(Alert).filter(Alert.child_id == child.id).update({"status": "done"})
        db.session.query(Case).filter(Case.child_id == child.id).update({"stage": "closed"})
        child.archived_at, child.status = clock.now(), "closed"
        child.birth_date = dt.date(2012, 7, 1)
    db.session.commit()
    with app.test_request_context():
        for child in (first, second):
            retention.anonymise(child, today=clock.today())
        db.session.commit()
    groups = find_duplicates(None)
    assert not any({first.id, second.id} & set(g.child_ids) for g in groups)
    # the placeholder numbers are unique and not ID numbers
    assert (
        db.session.execute(
            text("select count(distinct id_number) from child where anonymised_at is not null")
        ).scalar()
        == 2
    )
