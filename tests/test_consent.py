"""告知同意: recording, withdrawing, the coverage figure against an independent count, and photos of a
child without 照片使用与宣传 consent kept out of every export and report."""

import datetime as dt
import io
import zipfile

import pytest
from PIL import Image

from choices import ConsentScope
from models import Activity, Attachment, Attendance, Child, Consent, User, Visit, db
from services import attachments, clock, consent, indicators
from services.validation import InvalidInput
from tests.conftest import AuthActions, csrf_token
from tests.test_access import walkable_rules


@pytest.fixture(autouse=True)
def no_demo_consents(app):
    """The demo data holds consents; these tests plant their own."""
    db.session.query(Consent).delete()
    consent.refresh(db.session.connection())  # Child.filing_consent: the rows went without the ORM
    db.session.commit()


def user(username) -> User:
    return db.session.scalar(db.select(User).where(User.username == username))


def young_child(village_id=None, *, min_age=0, max_age=13) -> Child:
    today = clock.today()
    stmt = db.select(Child).where(Child.archived_at.is_(None)).order_by(Child.id)
    if village_id:
        stmt = stmt.where(Child.village_id == village_id)
    for child in db.session.scalars(stmt):
        if child.guardian_links and min_age <= consent.age_on(child.birth_date, today) <= max_age:
            return child
    raise AssertionError("no such child in the demo data")


def record(child, scopes=("filing",), **kwargs):
    guardian = child.guardian_links[0].guardian_id
    values = {"giver": f"g{guardian}", "given_on": clock.today(), "method": "written", "today": clock.today()}
    values.update(kwargs)
    giver = values.pop("giver")
    given_on = values.pop("given_on")
    method = values.pop("method")
    return consent.record(child, list(scopes), giver, given_on, method, **values)


def test_a_guardian_consents_through_the_page_with_the_signed_form(app, client):
    child = young_child(user("director1").village_id)
    AuthActions(client).login("director1")
    page = f"/admin/consent/child/?id={child.id}"
    assert "未取得" in client.get(page).get_data(as_text=True)
    scan = io.BytesIO()
    Image.new("RGB", (400, 560), (255, 255, 255)).save(scan, "JPEG")
    response = client.post(
        f"/admin/consent/record/?id={child.id}",
        data={
            "csrf_token": csrf_token(client, page),
            "scope": ["filing", "photos"],
            "giver": f"g{child.guardian_links[0].guardian_id}",
            "given_on": clock.today().isoformat(),
            "method": "written",
            "form_file": (io.BytesIO(scan.getvalue()), "同意书.jpg"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    rows = db.session.scalars(db.select(Consent).where(Consent.child_id == child.id)).all()
    assert sorted(r.scope for r in rows) == ["filing", "photos"]
    assert rows[0].given_by == child.guardian_links[0].guardian.name
    form = db.session.get(Attachment, rows[0].form_attachment_id)
    assert form.kind == "consent_form" and rows[1].form_attachment_id == form.id
    dossier = client.get(f"/admin/dossier/?id={child.id}").get_data(as_text=True)
    assert 'class="consent-filing text-success" data-state="given"' in dossier
    assert 'class="consent-sharing text-danger" data-state="missing"' in dossier


@pytest.mark.parametrize(
    "change,message",
    [
        ({"scopes": ()}, "请勾选"),
        ({"given_on": None}, "同意日期"),
        ({"given_on": dt.date(2100, 1, 1)}, "晚于今天"),
        ({"method": "oral"}, "见证人"),
        ({"method": "email"}, "同意方式"),
        ({"giver": "g999999"}, "已登记的监护人"),
        ({"giver": "self"}, "不满14周岁"),
    ],
)
def test_refusals(app, change, message):
    child = young_child()
    scopes = change.pop("scopes", ("filing",))
    with pytest.raises(InvalidInput, match=message):
        record(child, scopes, **change)
    assert db.session.scalar(db.select(db.func.count()).select_from(Consent)) == 0


def test_a_child_of_14_may_consent_in_person_and_oral_consent_needs_a_witness(app):
    child = young_child(min_age=14, max_age=17)
    created = record(child, ("filing",), giver="self", method="oral", witness="村干部李四")
    assert created[0].given_by == "本人" and created[0].witness == "村干部李四"


def test_withdrawal_ends_every_standing_record_of_the_scope(app):
    child = young_child()
    record(child, ("photos",), given_on=clock.today() - dt.timedelta(days=30))
    second_guardian = child.guardian_links[-1].guardian_id
    record(
        child,
        ("photos", "filing"),
        giver=f"g{second_guardian}",
        given_on=clock.today() - dt.timedelta(days=20),
    )
    first = db.session.scalars(
        db.select(Consent).where(Consent.child_id == child.id, Consent.scope == "photos")
    ).first()
    with pytest.raises(InvalidInput, match="不能早于同意日期"):
        consent.withdraw(first, clock.today() - dt.timedelta(days=40), "电话撤回", today=clock.today())
    with pytest.raises(InvalidInput, match="撤回说明"):
        consent.withdraw(first, clock.today(), "", today=clock.today())
    ended = consent.withdraw(
        first, clock.today() - dt.timedelta(days=1), "母亲电话提出撤回", today=clock.today()
    )
    assert len(ended) == (2 if len(child.guardian_links) > 1 else 1)
    states = {s.scope.value: s for s in consent.states(child.id)}
    assert states["photos"].label == "已撤回" and states["filing"].label == "已同意"
    assert consent.consented_children("photos", [child.id]) == set()
    # on a day before the withdrawal it still stood
    assert consent.consented_children("photos", [child.id], clock.today() - dt.timedelta(days=5)) == {
        child.id
    }


def _plant_consents():
    """Consents on a spread of children: standing, withdrawn, other scopes, archived children."""
    children = db.session.scalars(db.select(Child).order_by(Child.id)).all()
    today = clock.today()
    for index, child in enumerate(children):
        if not child.guardian_links or index % 3 == 2:
            continue
        giver = f"g{child.guardian_links[0].guardian_id}"
        scope = "filing" if index % 5 else "sharing"
        rows = consent.record(child, [scope], giver, today - dt.timedelta(days=10), "written", today=today)
        if index % 7 == 0:
            consent.withdraw(rows[0], today, "撤回", today=today)
    db.session.commit()


def _independent_coverage(village_ids):
    """Counted child by child in Python, without the SQL the figure uses."""
    registered = consented = 0
    for child in db.session.scalars(db.select(Child)):
        if child.archived_at is not None or (village_ids is not None and child.village_id not in village_ids):
            continue
        registered += 1
        if any(c.scope == "filing" and c.withdrawn_on is None for c in consent.records_of(child.id)):
            consented += 1
    return consented, registered


def test_coverage_figure_against_an_independent_count(app, client):
    _plant_consents()
    some = db.session.scalars(db.select(Child).where(Child.archived_at.is_(None)).limit(3)).all()
    for child in some:
        child.archived_at, child.status = clock.now(), "closed"
    db.session.commit()
    for username in ("clerk", "director1"):
        scope_ids = user(username).village_scope()
        value = indicators.compute("consent_coverage", indicators.Frame.as_of(clock.today(), scope_ids))
        consented, registered = _independent_coverage(scope_ids)
        assert (value.numerator, value.denominator) == (consented, registered), username
        assert 0 < consented < registered
        AuthActions(client).login(username)
        page = client.get("/admin/").get_data(as_text=True)
        card = page[page.index('id="rate-consent"') :][:1500]
        assert f'<span class="numerator">{consented}</span>' in card
        assert f'<span class="denominator">{registered}</span>' in card
        AuthActions(client).logout()


def test_children_under_14_without_filing_consent_are_listed(app, client):
    _plant_consents()
    today = clock.today()
    expected = set()
    director = user("director1")
    for child in db.session.scalars(db.select(Child).where(Child.village_id == director.village_id)):
        young = child.archived_at is None and consent.age_on(child.birth_date, today) < 14
        if young and not any(
            c.scope == "filing" and c.withdrawn_on is None for c in consent.records_of(child.id)
        ):
            expected.add(child.id)
    AuthActions(client).login("director1")
    page = client.get("/admin/consent/missing/").get_data(as_text=True)
    assert f"（{len(expected)} 人）" in page
    listed = {c.id for c in consent.missing_filing_under_14(director.village_scope(), today, limit=None)[0]}
    assert listed == expected
    value = indicators.compute(
        "consent_missing_under_14", indicators.Frame.as_of(today, director.village_scope())
    )
    assert value.numerator == len(expected)
    dashboard = client.get("/admin/").get_data(as_text=True)
    assert f'id="consent-missing-count">{len(expected)}</a>' in dashboard


def test_printable_form_is_prefilled(app, client):
    child = young_child(user("director1").village_id)
    AuthActions(client).login("director1")
    page = client.get(f"/admin/consent/form/?id={child.id}").get_data(as_text=True)
    assert child.name in page and child.guardian_links[0].guardian.name in page
    for scope in ConsentScope:
        assert scope.label in page
    other = young_child(user("director2").village_id)
    assert "记录不存在" in client.get(f"/admin/consent/form/?id={other.id}").get_data(as_text=True)


# --------------------------------------------------------------------------- photos leaving the system


def _jpeg(colour) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), colour).save(out, "JPEG")
    return out.getvalue()


def _zip_members(body: bytes) -> list[bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            return [archive.read(name) for name in archive.namelist()]
    except zipfile.BadZipFile:
        return []


def test_a_photo_without_photo_consent_leaves_through_no_export_or_report(app, client, store):
    director = user("director1")
    consented = young_child(director.village_id)
    refused = db.session.scalars(
        db.select(Child)
        .where(Child.village_id == director.village_id, Child.id != consented.id, Child.archived_at.is_(None))
        .order_by(Child.id)
    ).first()
    withdrawn = db.session.scalars(
        db.select(Child)
        .where(Child.village_id == director.village_id, Child.id.not_in([consented.id, refused.id]))
        .where(Child.archived_at.is_(None), Child.guardian_links.any())
        .order_by(Child.id)
    ).first()
    record(consented, ("photos",))
    rows = record(withdrawn, ("photos",), given_on=clock.today() - dt.timedelta(days=3))
    consent.withdraw(rows[0], clock.today(), "不再同意", today=clock.today())
    activity = db.session.scalar(db.select(Activity).order_by(Activity.id))
    shared = db.session.scalar(db.select(Activity).where(Activity.id != activity.id).order_by(Activity.id))
    db.session.query(Attendance).filter(Attendance.activity_id.in_([activity.id, shared.id])).delete()
    db.session.add_all(
        [
            Attendance(activity_id=activity.id, child_id=consented.id),
            Attendance(activity_id=shared.id, child_id=consented.id),
            Attendance(activity_id=shared.id, child_id=refused.id),
        ]
    )
    db.session.commit()
    visit = Visit(child_id=refused.id, visited_on=clock.today(), kind="home")
    db.session.add(visit)
    db.session.commit()
    with app.test_request_context():
        ok_photo = attachments.save_upload(consented, "photo", _jpeg((10, 200, 10)))
        ok_scene = attachments.save_upload(activity, "scene_photo", _jpeg((10, 10, 200)))
        ok_scan = attachments.save_upload(shared, "signin_scan", _jpeg((250, 250, 250)))
        hidden = [
            attachments.save_upload(refused, "photo", _jpeg((200, 10, 10))),
            attachments.save_upload(withdrawn, "photo", _jpeg((200, 200, 10))),
            attachments.save_upload(visit, "visit_photo", _jpeg((200, 10, 200))),
            attachments.save_upload(shared, "scene_photo", _jpeg((10, 200, 200))),  # shows the refused child
            attachments.save_upload(consented, "hukou", _jpeg((90, 90, 90))),  # an identity document
        ]
        db.session.commit()
    everything = [ok_photo, ok_scene, ok_scan, *hidden]
    # the one gate
    assert {a.id for a in attachments.exportable(everything)} == {ok_photo.id, ok_scene.id, ok_scan.id}
    hidden_bytes = {store.read(a.storage_key) for a in hidden} | {store.read(a.thumb_key) for a in hidden}
    shown_bytes = {store.read(a.storage_key) for a in (ok_photo, ok_scene, ok_scan)}

    AuthActions(client).login("clerk")
    # every export of an owner's attachments
    seen_ok = set()
    for owner_kind, owner in (
        ("child", consented),
        ("child", refused),
        ("child", withdrawn),
        ("visit", visit),
        ("activity", activity),
        ("activity", shared),
    ):
        response = client.get(f"/admin/attachment/export/?owner_kind={owner_kind}&owner_id={owner.id}")
        assert response.status_code == 200
        members = _zip_members(response.data)
        assert not hidden_bytes & set(members), f"{owner_kind} {owner.id}"
        seen_ok |= shown_bytes & set(members)
    assert seen_ok == shown_bytes  # the exports do carry what may leave: the check above can fail
    # every page and download a person can open without an id: reports, ledgers, lists, packs
    for rule in walkable_rules(app):
        response = client.get(rule.rule)
        if response.status_code != 200:
            continue
        body = response.data
        assert not any(photo in body for photo in hidden_bytes), rule.rule
        for member in _zip_members(body):  # xlsx, docx and zip downloads
            assert member not in hidden_bytes, rule.rule
