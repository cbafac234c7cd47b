"""典型案例 end to end: drafted from a closed case's own records through the anonymiser, edited,
submitted, approved by a supervisor who is not the author, exported as .docx. Nothing that names
the child, the guardians or their village survives in the document; photos only with consent."""

from __future__ import annotations

import datetime as dt
import io

import docx
import pytest
from PIL import Image

from choices import CaseStage
from models import Case, CaseService, CaseStudy, ChildGuardian, Consent, User, Village, db
from services import attachments, case_studies, clock, consent
from tests.conftest import form_fields as form_token

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _jpeg(color) -> io.BytesIO:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(out, "JPEG")
    out.seek(0)
    out.name = "photo.jpg"
    return out


def _user(name) -> User:
    return db.session.scalar(db.select(User).where(User.username == name))


@pytest.fixture
def closed_case(app):
    """The demo's closed case, its records seeded with every identifier of the child and guardians."""
    db.session.query(CaseStudy).delete()
    db.session.query(Consent).delete()
    consent.refresh(db.session.connection())  # Child.filing_consent: the rows went without the ORM
    case = db.session.scalars(
        db.select(Case).where(Case.stage == CaseStage.CLOSED.value).order_by(Case.id)
    ).first()
    assert case is not None and case.closed_on is not None
    child = case.child
    child.address = child.address or f"{child.village.name}3组12号"
    links = db.session.scalars(db.select(ChildGuardian).where(ChildGuardian.child_id == child.id)).all()
    assert links, "the closed case's child has guardians on file"
    guardian = links[0].guardian
    guardian.phone = guardian.phone or "13812345678"
    guardian.address = guardian.address or child.address
    case.closing_evaluation = (
        f"{child.name}（身份证{child.id_number}）与{guardian.name}同住{child.address}，"
        f"{guardian.name}电话{guardian.phone}，身份证{guardian.id_number}；{child.village.name}村委会定期探访。"
    )
    measure = case.measures[0] if case.measures else None
    if measure is not None:
        db.session.add(
            CaseService(
                case_id=case.id,
                measure_id=measure.id,
                delivered_on=case.closed_on - dt.timedelta(days=3),
                provider="社工",
                content=f"到{child.village.name}入户，与{guardian.name}商定{child.name_given}的作息安排",
            )
        )
    db.session.commit()
    return case


def identifiers(case) -> list[str]:
    """What must not appear in the document: read from the case's own records."""
    child = case.child
    found = [child.name, child.id_number, child.village.name, child.address or ""]
    if len(child.name_given) >= 2:
        found.append(child.name_given)
    for link in db.session.scalars(db.select(ChildGuardian).where(ChildGuardian.child_id == child.id)):
        g = link.guardian
        found += [g.name, g.id_number or "", g.phone or "", g.address or ""]
    return [text for text in found if text and len(text) >= 2]


def docx_text(data: bytes) -> tuple[docx.document.Document, str]:
    document = docx.Document(io.BytesIO(data))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        parts += [cell.text for row in table.rows for cell in row.cells]
    for section in document.sections:
        parts += [p.text for p in section.header.paragraphs + section.footer.paragraphs]
    parts += [document.core_properties.title or "", document.core_properties.author or ""]
    return document, "\n".join(parts)


def test_draft_edit_submit_approve_and_export(app, client, auth, closed_case):
    case = closed_case
    child = case.child
    # a photo of the child on the case: consent to 照片使用 stands for it, and one without consent
    guardian_id = child.guardian_links[0].guardian_id
    consent.record(child, ["photos"], f"g{guardian_id}", clock.today(), "written", today=clock.today())
    with app.test_request_context():
        photo = attachments.save_upload(case, "photo", _jpeg((10, 200, 10)), note=f"{child.name}在家中")
        db.session.commit()

    auth.login("clerk")
    page = client.get("/admin/casestudy/draft/").get_data(as_text=True)
    assert child.file_no in page
    token = form_token(client, "/admin/casestudy/draft/")
    response = client.post("/admin/casestudy/draft/", data={"case_id": case.id, **token})
    assert response.status_code == 302
    study = db.session.scalar(db.select(CaseStudy).where(CaseStudy.case_id == case.id))
    assert study is not None and study.status == "draft"
    assert study.photo_ids == [photo.id]
    body = "\n".join(getattr(study, k) for k in case_studies.SECTION_KEYS)
    assert "小X" in body and "X村" in body
    for known in identifiers(case):
        assert known not in body and known not in study.title, known
    # posted twice: one write-up
    assert client.post("/admin/casestudy/draft/", data={"case_id": case.id, **token}).status_code in (
        302,
        409,
    )
    assert db.session.scalar(db.select(db.func.count()).select_from(CaseStudy)) == 1

    # an edit that brings the child's name back is refused and changes nothing
    edit_url = f"/admin/casestudy/edit/?id={study.id}"
    fields = {k: getattr(study, k) for k in ("title", *case_studies.SECTION_KEYS)}
    bad = dict(fields, experience=f"{child.name}的经验")
    page = client.post(edit_url, data={**bad, **form_token(client, edit_url)}).get_data(as_text=True)
    assert "仍含可识别信息" in page
    db.session.expire_all()
    assert child.name not in db.session.get(CaseStudy, study.id).experience
    good = dict(fields, experience="早发现、早介入；多部门联动；提升监护能力。")
    assert client.post(edit_url, data={**good, **form_token(client, edit_url)}).status_code == 302

    # the docx waits for approval
    docx_url = f"/admin/casestudy/case-study.docx?id={study.id}"
    assert client.get(docx_url).mimetype != DOCX
    assert (
        client.post(f"/admin/casestudy/submit/?id={study.id}", data=form_token(client, edit_url)).status_code
        == 302
    )
    db.session.expire_all()
    assert db.session.get(CaseStudy, study.id).status == "submitted"
    # once submitted it cannot be edited
    page = client.post(edit_url, data={**good, **form_token(client, edit_url)}, follow_redirects=True)
    assert "不能修改" in page.get_data(as_text=True)
    auth.logout()

    # an approver who drafted it may not approve it
    study_row = db.session.get(CaseStudy, study.id)
    assert not case_studies.may_review("admin", study_row.drafted_by_id, study_row)
    # a supervisor approves; a director (read only) cannot
    auth.login("director1")
    assert client.post(
        f"/admin/casestudy/approve/?id={study.id}", data=form_token(client, "/admin/")
    ).status_code in (403, 404)
    auth.logout()
    auth.login("supervisor")
    details = client.get(f"/admin/casestudy/details/?id={study.id}").get_data(as_text=True)
    assert 'id="approve-form"' in details
    response = client.post(
        f"/admin/casestudy/approve/?id={study.id}",
        data=form_token(client, f"/admin/casestudy/details/?id={study.id}"),
    )
    assert response.status_code == 302
    db.session.expire_all()
    approved = db.session.get(CaseStudy, study.id)
    assert approved.status == "approved" and approved.reviewed_by_id == _user("supervisor").id

    response = client.get(docx_url)
    assert response.status_code == 200 and response.mimetype == DOCX
    document, text = docx_text(response.data)
    headings = [
        p.text for p in document.paragraphs if p.text[:2] in {f"{n}、" for n in case_studies.NUMERALS[:5]}
    ]
    assert headings == [
        f"{case_studies.NUMERALS[i]}、{label}" for i, (_, label) in enumerate(case_studies.SECTIONS)
    ]
    assert "小X" in text
    for known in identifiers(case):
        assert known not in text, f"{known[:1]}… survives in the docx"
    # no other village of the town either
    for village in db.session.scalars(db.select(Village)):
        assert village.name not in text
    # fonts: 黑体 headings, 仿宋 body
    paragraphs = document.paragraphs
    at = next(i for i, p in enumerate(paragraphs) if p.text == headings[0])
    heading, body_para = paragraphs[at], paragraphs[at + 1]
    east_asian = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}eastAsia"
    assert heading.runs[0]._element.rPr.rFonts.get(east_asian) == "黑体"
    assert "仿宋" in body_para.runs[0]._element.rPr.rFonts.get(east_asian)
    assert len(document.inline_shapes) == 1  # the consented photo

    # consent withdrawn since drafting: the photo stays out of the next export
    for row in consent.records_of(child.id):
        consent.withdraw(row, clock.today(), "不再同意", today=clock.today())
    db.session.commit()
    document, _ = docx_text(client.get(docx_url).data)
    assert len(document.inline_shapes) == 0


def test_only_closed_cases_are_drafted(app, closed_case):
    open_case = db.session.scalars(
        db.select(Case).where(Case.stage != CaseStage.CLOSED.value).order_by(Case.id)
    ).first()
    from services.validation import InvalidInput

    with pytest.raises(InvalidInput, match="已结案"):
        case_studies.draft(open_case, user_id=None, now=clock.now())
    study = case_studies.draft(closed_case, user_id=_user("social").id, now=clock.now())
    with pytest.raises(InvalidInput, match="已有典型案例"):
        case_studies.draft(closed_case, user_id=None, now=clock.now())
    with pytest.raises(InvalidInput, match="起草人以外"):
        case_studies.submit(study, user_id=study.drafted_by_id, now=clock.now())
        case_studies.approve(study, role="social", user_id=study.drafted_by_id, now=clock.now())
    with pytest.raises(InvalidInput, match="退回原因"):
        case_studies.send_back(study, role="supervisor", user_id=_user("supervisor").id, note=" ")
