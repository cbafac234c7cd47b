"""迁出/迁入: every step and refusal of a transfer, and who sees what before and after acceptance."""

import datetime as dt
import io
import re

import pytest
from openpyxl import load_workbook

from choices import ChildStatus, TransferStatus
from models import (
    Alert,
    AuditLog,
    Case,
    Child,
    ChildGuardian,
    Guardian,
    MandatoryReport,
    SupportService,
    Transfer,
    TransferEvent,
    User,
    Village,
    db,
)
from services import alerts, clock, transfers
from services.validation import InvalidInput
from tests.conftest import AuthActions, csrf_token


def village(name) -> Village:
    return db.session.scalar(db.select(Village).where(Village.name == name))


def user(username) -> User:
    return db.session.scalar(db.select(User).where(User.username == username))


def plain_child(village_name="云岭村") -> Child:
    """A child of the village with no pending transfer, whose guardians are its own."""
    v = village(village_name)
    for child in db.session.scalars(
        db.select(Child).where(Child.village_id == v.id, Child.archived_at.is_(None)).order_by(Child.id)
    ):
        shared = db.session.scalar(
            db.select(db.func.count())
            .select_from(ChildGuardian)
            .where(
                ChildGuardian.guardian_id.in_(
                    db.select(ChildGuardian.guardian_id).where(ChildGuardian.child_id == child.id)
                ),
                ChildGuardian.child_id != child.id,
            )
        )
        if child.guardian_links and not shared:
            return child
    raise AssertionError("no plain child in the demo data")


def give_open_work(child: Child):
    """An open alert, an open case, a measure not delivered and a mandatory report for the child."""
    now = clock.now()
    alert = Alert(
        source="patrol",
        severity="red",
        child_id=child.id,
        village_id=child.village_id,
        title="走访发现风险",
        raised_at=now,
        deadline=now + dt.timedelta(hours=24),
    )
    case = Case(child_id=child.id, case_type="absence", opened_on=clock.today())
    service = SupportService(child_id=child.id, kind="counselling", status="planned", due_on=clock.today())
    report = MandatoryReport(
        reporter_kind="teacher",
        received_at=now,
        child_id=child.id,
        village_id=child.village_id,
        situation="学校反映",
        urgency="normal",
    )
    db.session.add_all([alert, case, service, report])
    db.session.commit()
    return alert, case, report


def post(client, url, data, page="/admin/"):
    return client.post(url, data={"csrf_token": csrf_token(client, page), **data})


def start(client, child, to_name="桃源村", **extra):
    data = {
        "to_village": str(village(to_name).id),
        "reason": "随母亲搬迁",
        "handover_note": "母亲电话不变",
        "acknowledged": "1",
    }
    data.update(extra)
    return post(
        client, f"/admin/transfer/start/?child={child.id}", data, f"/admin/transfer/start/?child={child.id}"
    )


def sees_child(client, child) -> bool:
    """Whether the logged-in user finds the child: in the register search and in the dossier."""
    listing = client.get(f"/admin/child/?search={child.name}").get_data(as_text=True)
    dossier = client.get(f"/admin/dossier/?id={child.id}")
    found_in_list = f"/admin/child/details/?id={child.id}" in listing or f"id={child.id}&" in listing
    return dossier.status_code == 200 and found_in_list


def alert_centre_has(client, alert) -> bool:
    return f"/admin/alerts/{alert.id}/" in client.get("/admin/alerts/?status=all").get_data(as_text=True)


def test_within_the_town_every_step_and_who_sees_what(app, client):
    child = plain_child()
    alert, case, report = give_open_work(child)
    guardian_ids = [link.guardian_id for link in child.guardian_links]
    d1, d2 = AuthActions(client), AuthActions(client)

    # director1 starts; the open work must be acknowledged first
    d1.login("director1")
    page = start(client, child, acknowledged="").get_data(as_text=True)
    assert "项未结事项" in page and "随档移交" in page
    assert "走访发现风险" in page and "个案" in page and "心理疏导" in page
    assert db.session.scalar(db.select(db.func.count()).select_from(Transfer)) == 0
    response = start(client, child, acknowledged="1")
    transfer = db.session.scalar(db.select(Transfer).where(Transfer.child_id == child.id))
    assert response.status_code == 302 and transfer.status == TransferStatus.PENDING.value
    expected = (
        db.session.scalar(
            db.select(db.func.count()).where(Alert.child_id == child.id, Alert.status != "done")
        )
        + db.session.scalar(
            db.select(db.func.count()).where(Case.child_id == child.id, Case.stage != "closed")
        )
        + db.session.scalar(
            db.select(db.func.count()).where(
                SupportService.child_id == child.id, SupportService.status == "planned"
            )
        )
    )
    assert len(transfer.open_items) == expected >= 3

    # pending: the sending village keeps the child; the receiving one sees only the summary
    assert sees_child(client, child) and alert_centre_has(client, alert)
    assert "待 桃源村 接收" in client.get(f"/admin/dossier/?id={child.id}").get_data(as_text=True)
    d1.logout()
    d2.login("director2")
    inbox = client.get("/admin/transfer/inbox/").get_data(as_text=True)
    assert child.name in inbox and "随母亲搬迁" in inbox and "母亲电话不变" in inbox
    assert child.id_number not in inbox and "走访发现风险" in inbox
    assert not sees_child(client, child) and not alert_centre_has(client, alert)
    assert "记录不存在" in client.get(f"/admin/dossier/?id={child.id}").get_data(as_text=True)
    assert client.get(f"/admin/case/details/?id={case.id}", follow_redirects=True).status_code in (200, 404)
    assert "记录不存在" in client.get(f"/admin/case/details/?id={case.id}", follow_redirects=True).get_data(
        as_text=True
    )
    d2.logout()

    # neither the sender nor the clerk may accept for a village that has its own director
    for who in ("director1", "clerk"):
        AuthActions(client).login(who)
        post(client, f"/admin/transfer/decide/?id={transfer.id}", {"decision": "accept"})
        db.session.refresh(transfer)
        assert transfer.status == TransferStatus.PENDING.value, who
        AuthActions(client).logout()

    # director2 accepts: the child and its whole history go to 桃源村
    d2.login("director2")
    response = post(
        client, f"/admin/transfer/decide/?id={transfer.id}", {"decision": "accept", "note": "已电话联系"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    taoyuan = village("桃源村").id
    assert db.session.get(Child, child.id).village_id == taoyuan
    assert db.session.get(Alert, alert.id).village_id == taoyuan
    assert db.session.get(MandatoryReport, report.id).village_id == taoyuan
    assert {db.session.get(Guardian, g).village_id for g in guardian_ids} == {taoyuan}
    assert sees_child(client, child) and alert_centre_has(client, alert)
    case_page = client.get(f"/admin/case/details/?id={case.id}").get_data(as_text=True)
    assert "记录不存在" not in case_page and child.name in case_page
    dossier = client.get(f"/admin/dossier/?id={child.id}").get_data(as_text=True)
    assert "发起转移" in dossier and "接收" in dossier and "云岭村 → 桃源村" in dossier
    d2.logout()

    # director1 no longer sees the child, its alert or its case; the transfer record shows a masked name
    d1.login("director1")
    assert not sees_child(client, child) and not alert_centre_has(client, alert)
    listing = client.get("/admin/transfer/").get_data(as_text=True)
    assert child.name not in listing and child.name[0] + "*" in listing
    assert "记录不存在" in client.get(f"/admin/case/details/?id={case.id}", follow_redirects=True).get_data(
        as_text=True
    )
    steps = db.session.scalars(
        db.select(TransferEvent.action).where(TransferEvent.child_id == child.id).order_by(TransferEvent.id)
    ).all()
    assert steps == ["start", "accept"]
    logged = db.session.scalars(
        db.select(AuditLog.summary).where(AuditLog.action == "transfer", AuditLog.record_id == child.id)
    ).all()
    assert len(logged) == 2 and any("接收转移" in s for s in logged)


def test_returned_and_cancelled_transfers_leave_the_child_where_it_was(app, client):
    child = plain_child()
    yunling = child.village_id
    AuthActions(client).login("director1")
    start(client, child)
    transfer = db.session.scalar(db.select(Transfer).where(Transfer.child_id == child.id))
    AuthActions(client).logout()
    AuthActions(client).login("director2")
    # a return needs a reason
    post(client, f"/admin/transfer/decide/?id={transfer.id}", {"decision": "return", "note": " "})
    db.session.refresh(transfer)
    assert transfer.status == TransferStatus.PENDING.value
    post(
        client, f"/admin/transfer/decide/?id={transfer.id}", {"decision": "return", "note": "家庭未实际搬迁"}
    )
    db.session.refresh(transfer)
    assert transfer.status == TransferStatus.RETURNED.value
    # the receiving side cannot cancel (nothing is pending any more either)
    assert db.session.get(Child, child.id).village_id == yunling
    AuthActions(client).logout()
    AuthActions(client).login("director1")
    assert sees_child(client, child)
    start(client, child, to_name="松林村")
    second = db.session.scalar(
        db.select(Transfer).where(Transfer.child_id == child.id, Transfer.status == "pending")
    )
    assert second is not None
    # 松林村 has no director account: director2 cannot decide, the clerk can; director1 cancels first
    post(client, f"/admin/transfer/cancel/?id={second.id}", {"note": "搬迁推迟"})
    db.session.refresh(second)
    assert second.status == TransferStatus.CANCELLED.value
    actions = db.session.scalars(
        db.select(TransferEvent.action).where(TransferEvent.child_id == child.id).order_by(TransferEvent.id)
    ).all()
    assert actions == ["start", "return", "start", "cancel"]


def test_the_clerk_decides_for_a_village_without_a_director(app, client):
    child = plain_child()
    AuthActions(client).login("clerk")
    start(client, child, to_name="松林村")
    transfer = db.session.scalar(db.select(Transfer).where(Transfer.child_id == child.id))
    AuthActions(client).logout()
    AuthActions(client).login("director2")
    post(client, f"/admin/transfer/decide/?id={transfer.id}", {"decision": "accept"})
    db.session.refresh(transfer)
    assert transfer.status == TransferStatus.PENDING.value
    AuthActions(client).logout()
    AuthActions(client).login("clerk")
    post(client, f"/admin/transfer/decide/?id={transfer.id}", {"decision": "accept"})
    db.session.expire_all()
    assert db.session.get(Transfer, transfer.id).status == TransferStatus.ACCEPTED.value
    assert db.session.get(Child, child.id).village.name == "松林村"


def test_refusals(app, client):
    child = plain_child()
    other = plain_child("桃源村")
    role, v1 = "director", child.village_id
    with app.test_request_context():
        with pytest.raises(InvalidInput, match="相同"):
            transfers.start(child, child.village_id, "x", "", True, role=role, user_village_id=v1)
        with pytest.raises(InvalidInput, match="转移原因"):
            transfers.start(child, village("桃源村").id, " ", "", True, role=role, user_village_id=v1)
        with pytest.raises(InvalidInput, match="接收的村"):
            transfers.start(child, "abc", "x", "", True, role=role, user_village_id=v1)
        with pytest.raises(InvalidInput, match="本村"):
            transfers.start(other, v1, "x", "", True, role=role, user_village_id=v1)
        transfers.start(child, village("桃源村").id, "x", "", True, role=role, user_village_id=v1)
        db.session.commit()
        with pytest.raises(InvalidInput, match="待接收"):
            transfers.start(child, village("松林村").id, "x", "", True, role=role, user_village_id=v1)
        from services.register import archive_child

        with pytest.raises(InvalidInput, match="待接收的转移"):
            archive_child(child, ChildStatus.CLOSED.value, "结案")
        with pytest.raises(InvalidInput, match="迁出外镇由镇民生服务办"):
            transfers.move_out(child, "某某镇", "", "x", "", True, role="director")
    # the database refuses a second pending transfer even past the service (two clerks at once)
    from sqlalchemy.exc import IntegrityError

    db.session.add(
        Transfer(child_id=child.id, kind="within", status="pending", to_village_id=other.village_id)
    )
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_a_guardian_shared_with_a_sibling_who_stays_is_kept_by_the_sending_village(app, client):
    child = plain_child()
    sibling = db.session.scalars(
        db.select(Child).where(Child.village_id == child.village_id, Child.id != child.id).order_by(Child.id)
    ).first()
    shared = child.guardian_links[0].guardian
    sibling.guardian_links.append(ChildGuardian(guardian=shared, relation="mother"))
    db.session.commit()
    AuthActions(client).login("director1")
    start(client, child)
    transfer = db.session.scalar(db.select(Transfer).where(Transfer.child_id == child.id))
    AuthActions(client).logout()
    AuthActions(client).login("director2")
    post(client, f"/admin/transfer/decide/?id={transfer.id}", {"decision": "accept"})
    db.session.expire_all()
    assert db.session.get(Guardian, shared.id).village.name == "云岭村"
    # the receiving village still sees the guardian on the child's dossier
    assert shared.name in client.get(f"/admin/dossier/?id={child.id}").get_data(as_text=True)


def test_out_of_the_town_with_a_referral_letter_masked_unless_asked(app, client):
    child = plain_child()
    give_open_work(child)
    AuthActions(client).login("director1")
    assert client.get(f"/admin/transfer/move-out/?child={child.id}").status_code == 302  # the clerk's job
    AuthActions(client).logout()
    AuthActions(client).login("clerk")
    page = f"/admin/transfer/move-out/?child={child.id}"
    data = {"destination": "重庆市涪陵区某某镇", "office": "某某镇民生服务办 王老师", "reason": "随父母迁居"}
    assert "随档移交" in post(client, page, data, page).get_data(as_text=True)
    response = post(client, page, {**data, "acknowledged": "1"}, page)
    assert response.status_code == 302
    db.session.expire_all()
    moved = db.session.get(Child, child.id)
    assert moved.status == ChildStatus.MOVED.value and moved.is_archived
    assert "重庆市涪陵区某某镇" in moved.archive_reason
    transfer = db.session.scalar(db.select(Transfer).where(Transfer.child_id == child.id))
    letter = client.get(f"/admin/transfer/letter/?id={transfer.id}").get_data(as_text=True)
    assert child.name in letter and "走访发现风险" in letter and "心理疏导" in letter
    assert child.id_number not in letter and child.id_number[-4:] in letter and "（已遮蔽）" in letter
    # the full number needs a purpose, and the purpose is logged
    refused = post(client, f"/admin/transfer/letter/?id={transfer.id}", {"reveal": "1", "purpose": ""})
    assert child.id_number not in refused.get_data(as_text=True)
    revealed = post(
        client, f"/admin/transfer/letter/?id={transfer.id}", {"reveal": "1", "purpose": "迁入地建档核验"}
    ).get_data(as_text=True)
    assert child.id_number in revealed
    reveal_log = db.session.scalars(
        db.select(AuditLog.summary).where(AuditLog.action == "reveal", AuditLog.record_id == child.id)
    ).all()
    assert any("迁入地建档核验" in s for s in reveal_log)
    # the xlsx carries the same, masked
    sheet = load_workbook(io.BytesIO(client.get(f"/admin/transfer/letter.xlsx?id={transfer.id}").data)).active
    cells = {row[0]: row[1] for row in sheet.iter_rows(values_only=True) if row[0]}
    assert cells["儿童姓名"] == child.name and child.id_number not in cells["身份证号"]
    assert "走访发现风险" in cells["未结事项"]
    letters = db.session.scalar(
        db.select(db.func.count())
        .select_from(TransferEvent)
        .where(TransferEvent.child_id == child.id, TransferEvent.action == "letter")
    )
    assert letters == 3
    # a director of the village reads the archived child's dossier with its timeline
    AuthActions(client).logout()
    AuthActions(client).login("director1")
    dossier = client.get(f"/admin/dossier/?id={child.id}").get_data(as_text=True)
    assert "迁出外镇" in dossier and "重庆市涪陵区某某镇" in dossier


def test_a_child_registered_from_another_town_records_where_from(app, client):
    AuthActions(client).login("clerk")
    page = "/admin/child/new/"
    form = client.get(page).get_data(as_text=True)
    assert "外镇迁入：原所在镇街" in form
    token = csrf_token(client, page)
    response = client.post(
        page,
        data={
            "csrf_token": token,
            "name": "迁入测试",
            "id_number": "50010220160101123X",
            "village": str(village("云岭村").id),
            "transfer_in_from": "重庆市涪陵区南沱镇",
            "transfer_in_referral": "南沱镇转介函 2026-迁-0007，原为橙色",
        },
    )
    assert response.status_code == 302
    child = db.session.scalar(db.select(Child).where(Child.name == "迁入测试"))
    transfer = db.session.scalar(db.select(Transfer).where(Transfer.child_id == child.id))
    assert transfer.kind == "in" and transfer.other_town == "重庆市涪陵区南沱镇"
    assert "2026-迁-0007" in transfer.referral
    dossier = client.get(f"/admin/dossier/?id={child.id}").get_data(as_text=True)
    assert "外镇迁入登记" in dossier and "南沱镇" in dossier
    assert "外镇迁入：原所在镇街" not in client.get(f"/admin/child/edit/?id={child.id}").get_data(
        as_text=True
    )


def test_an_accepted_transfer_is_in_the_receiving_villages_next_feed_poll(app, client):
    """The 141 platform polls with ``since``: a transferred child's open alert is new to the receiving
    village, so its next poll must carry it; the transfer's record counts what moved."""
    child = plain_child()
    alert, _, _ = give_open_work(child)
    _, plain = alerts.issue_token("141基层智治平台", user("director2").id)
    db.session.commit()
    headers = {"Authorization": f"Bearer {plain}"}
    before = client.get("/api/alerts?per_page=1000", headers=headers).get_json()
    assert alert.id not in {a["id"] for a in before["alerts"]}
    AuthActions(client).login("director1")
    start(client, child)
    AuthActions(client).logout()
    transfer = db.session.scalar(db.select(Transfer).where(Transfer.child_id == child.id))
    AuthActions(client).login("director2")
    post(client, f"/admin/transfer/decide/?id={transfer.id}", {"decision": "accept"})
    db.session.expire_all()
    assert db.session.get(Transfer, transfer.id).status == TransferStatus.ACCEPTED.value
    polled = client.get(f"/api/alerts?since={before['next_since']}&per_page=1000", headers=headers).get_json()
    assert alert.id in {a["id"] for a in polled["alerts"]}
    record = db.session.scalars(
        db.select(AuditLog).where(AuditLog.action == "transfer", AuditLog.record_id == child.id)
    ).all()[-1]
    alerts_of_child = db.session.scalar(db.select(db.func.count()).where(Alert.child_id == child.id))
    assert record.changes["moved"]["alert"] == alerts_of_child >= 1
    assert record.changes["moved"]["mandatory_report"] >= 1


def test_moved_with_child_finds_every_table_with_its_own_village():
    names = {model.__tablename__ for model in transfers.moved_with_child()}
    assert {"alert", "mandatory_report"} <= names
    assert "child" not in names and "transfer" not in names


def test_inbox_lists_only_transfers_to_the_users_village(app, client):
    child = plain_child()
    AuthActions(client).login("clerk")
    start(client, child, to_name="松林村")
    AuthActions(client).logout()
    AuthActions(client).login("director2")
    assert child.name not in client.get("/admin/transfer/inbox/").get_data(as_text=True)
    AuthActions(client).logout()
    AuthActions(client).login("clerk")
    inbox = client.get("/admin/transfer/inbox/").get_data(as_text=True)
    assert child.name in inbox and re.search(r'class="[^"]*transfer-accept', inbox)
