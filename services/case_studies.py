"""典型案例 (work plan 四.3 总结典型案例): the anonymised write-up of a closed case.

This module also owns the patterns that blot out ID and phone numbers in free text (``blot_numbers``),
which the anonymous feedback form uses too.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

# 18-digit ID numbers (the last may be X) and old 15-digit ones; any run of 15+ digits is treated as one.
_ID = re.compile(r"(?<![0-9A-Za-z])(?:\d{17}[\dXx]|\d{15,})(?![0-9A-Za-z])")
# Mobile numbers, possibly with +86 and spaces or hyphens in between; landlines with an area code.
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)0\d{2,3}[\s-]?\d{7,8}(?!\d)")
_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９ＸＸｘ", "0123456789XXx")

ID_MARK = "[身份证号已隐去]"
PHONE_MARK = "[电话已隐去]"


def blot_numbers(text: str) -> str:
    """ID numbers and phone numbers in ``text`` replaced by a mark (full-width digits included)."""
    if not text:
        return text
    text = text.translate(_FULLWIDTH_DIGITS)
    text = _ID.sub(ID_MARK, text)
    text = _MOBILE.sub(PHONE_MARK, text)
    return _LANDLINE.sub(PHONE_MARK, text)


# --------------------------------------------------------------------------- the anonymiser

CHILD_ALIAS = "小X"
ADDRESS_MARK = "（住址略）"
SCHOOL_MARK = "某学校"
RELATION_WORDS = {
    "father": "其父亲",
    "mother": "其母亲",
    "grandparent": "其祖父母",
    "maternal": "其外祖父母",
    "relative": "其亲属",
    "institution": "监护机构",
    "other": "其监护人",
}
# House numbers and groups of a village address (3组12号) once the village name is gone.
_ADDRESS_TAIL = re.compile(r"[0-9一二三四五六七八九十百]+组(?:[0-9]+号)?(?:[0-9]+室)?")


@dataclass
class Identifiers:
    """Every known identifier of one case's child, guardians, village and staff, with what replaces it."""

    replacements: dict[str, str] = field(default_factory=dict)

    def add(self, text: str | None, replacement: str, *, min_length: int = 2) -> None:
        text = (text or "").strip()
        if len(text) >= min_length and text not in self.replacements:
            self.replacements[text] = replacement

    def ordered(self) -> list[tuple[str, str]]:
        # Longest first: 云岭村3组 before 云岭村, 张小明 before 小明.
        return sorted(self.replacements.items(), key=lambda kv: -len(kv[0]))

    def apply(self, text: str | None) -> str:
        if not text:
            return ""
        text = blot_numbers(text)
        for known, replacement in self.ordered():
            text = text.replace(known, replacement)
        return _ADDRESS_TAIL.sub("X组", text)

    def leaks(self, text: str | None) -> list[str]:
        """Known identifiers still in ``text`` (masked for showing), and any ID or phone number."""
        found = []
        for known, _ in self.ordered():
            if known in (text or ""):
                found.append(known[0] + "*" * (len(known) - 1))
        if text and blot_numbers(text) != text.translate(_FULLWIDTH_DIGITS):
            found.append("身份证号或电话号码")
        return found


def identifiers_of(case) -> Identifiers:
    """What must not survive in a write-up of ``case``: read from the case's own records."""
    from sqlalchemy import select

    from choices import Role, StaffKind
    from models import (
        Assessment,
        Child,
        ChildGuardian,
        Staff,
        SupportService,
        User,
        Village,
        Visit,
        assessment_team,
        db,
        visit_staff,
    )

    ids = Identifiers()
    child = case.child
    for text in (child.id_number,):
        ids.add(text, ID_MARK)
    ids.add(child.address, ADDRESS_MARK)
    ids.add(child.school, SCHOOL_MARK)
    ids.add(child.name, CHILD_ALIAS)
    ids.add(child.name_given, CHILD_ALIAS)
    # guardians, and the children who share them (brothers and sisters)
    links = db.session.scalars(select(ChildGuardian).where(ChildGuardian.child_id == child.id)).all()
    guardian_ids = [link.guardian_id for link in links]
    for link in links:
        guardian = link.guardian
        word = RELATION_WORDS.get(link.relation, "其监护人")
        ids.add(guardian.id_number, ID_MARK)
        ids.add(guardian.phone, PHONE_MARK, min_length=5)
        ids.add(guardian.address, ADDRESS_MARK)
        ids.add(guardian.name, word)
        given = guardian.name[2:] if guardian.name[:2] in _compound() else guardian.name[1:]
        ids.add(given, word)
    if guardian_ids:
        siblings = db.session.scalars(
            select(Child)
            .join(ChildGuardian, ChildGuardian.child_id == Child.id)
            .where(ChildGuardian.guardian_id.in_(guardian_ids), Child.id != child.id)
        ).all()
        for sibling in siblings:
            ids.add(sibling.name, "其兄弟姐妹")
            ids.add(sibling.name_given, "其兄弟姐妹")
            ids.add(sibling.id_number, ID_MARK)
    # the village (X村) and every other village of the town (某村)
    village = child.village
    own = "X社区" if village.kind == "community" else "X村"
    ids.add(village.name, own)
    stem = village.name.removesuffix("社区").removesuffix("村")
    ids.add(stem, "X")
    for other in db.session.scalars(select(Village).where(Village.id != village.id)):
        ids.add(other.name, "某社区" if other.kind == "community" else "某村")
    # staff who worked with the child, by their role
    staff_ids = {child.director_id, child.caring_mother_id, case.professional_id}
    staff_ids |= set(
        db.session.scalars(
            select(visit_staff.c.staff_id)
            .join(Visit, Visit.id == visit_staff.c.visit_id)
            .where(Visit.child_id == child.id)
        )
    )
    staff_ids |= set(
        db.session.scalars(
            select(assessment_team.c.staff_id)
            .join(Assessment, Assessment.id == assessment_team.c.assessment_id)
            .where(Assessment.child_id == child.id)
        )
    )
    staff_ids |= set(
        db.session.scalars(select(SupportService.provider_id).where(SupportService.child_id == child.id))
    )
    staff_ids.discard(None)
    for staff in db.session.scalars(select(Staff).where(Staff.id.in_(staff_ids))):
        ids.add(staff.name, StaffKind.label_of(staff.kind))
        ids.add(staff.phone, PHONE_MARK, min_length=5)
    # accounts that wrote the case's records
    user_ids = {e.user_id for e in case.events} | {case.opened_by_id}
    user_ids.discard(None)
    for user in db.session.scalars(select(User).where(User.id.in_(user_ids))):
        ids.add(user.display_name, Role.label_of(user.role))
    return ids


def _compound():
    from models import COMPOUND_SURNAMES

    return COMPOUND_SURNAMES


# --------------------------------------------------------------------------- the Word document

SECTIONS = (
    ("background", "基本情况"),
    ("assessment", "评估情况"),
    ("intervention", "介入服务"),
    ("outcome", "服务成效"),
    ("experience", "经验启示"),
)
NUMERALS = "一二三四五六七八九十"
TITLE_FONT = "方正小标宋简体"
HEADING_FONT = "黑体"
BODY_FONT = "仿宋_GB2312"
SUBTITLE_FONT = "楷体_GB2312"


def _fonts(run, east_asian: str, size_pt: float, bold: bool = False) -> None:
    from docx.oxml.ns import qn
    from docx.shared import Pt

    run.font.size = Pt(size_pt)
    run.font.bold = bold
    run.font.name = "Times New Roman"
    fonts = run._element.get_or_add_rPr().get_or_add_rFonts()
    fonts.set(qn("w:eastAsia"), east_asian)


def _paragraph(doc, text: str, font: str, size: float, *, bold=False, align=None, indent=True, space_after=0):
    from docx.enum.text import WD_LINE_SPACING
    from docx.shared import Pt

    para = doc.add_paragraph()
    fmt = para.paragraph_format
    fmt.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    fmt.line_spacing = Pt(28)
    fmt.space_before = Pt(0)
    fmt.space_after = Pt(space_after)
    if indent:
        fmt.first_line_indent = Pt(size * 2)
    if align is not None:
        para.alignment = align
    _fonts(para.add_run(text), font, size, bold)
    return para


def _page_number_footer(section) -> None:
    """— 1 — centred at the foot of every page (a PAGE field)."""
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    para = section.footer.paragraphs[0]
    para.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _fonts(para.add_run("— "), "宋体", 14)
    run = para.add_run()
    _fonts(run, "宋体", 14)
    for kind, text in (("begin", None), (None, "PAGE"), ("end", None)):
        if kind:
            char = OxmlElement("w:fldChar")
            char.set(qn("w:fldCharType"), kind)
            run._element.append(char)
        else:
            instr = OxmlElement("w:instrText")
            instr.set(qn("xml:space"), "preserve")
            instr.text = text
            run._element.append(instr)
    _fonts(para.add_run(" —"), "宋体", 14)


def write_docx(
    target, *, title: str, sections: list[tuple[str, str]], town: str, dated: str, photos=()
) -> None:
    """The write-up in the usual layout of a government document (GB/T 9704): A4, title in 小标宋 二号,
    numbered headings 一、二、… in 黑体 三号, body in 仿宋 三号 with a two-character indent and 28-point
    lines, page numbers — 1 — at the foot. ``photos``: (caption, image bytes)."""
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Cm

    doc = Document()
    section = doc.sections[0]
    section.page_width, section.page_height = Cm(21), Cm(29.7)
    section.top_margin, section.bottom_margin = Cm(3.7), Cm(3.5)
    section.left_margin, section.right_margin = Cm(2.8), Cm(2.6)
    doc.core_properties.title = title
    doc.core_properties.author = town
    _paragraph(doc, title, TITLE_FONT, 22, align=WD_ALIGN_PARAGRAPH.CENTER, indent=False, space_after=0)
    _paragraph(
        doc,
        f"——{town}困境儿童监护赋能关爱服务典型案例",
        SUBTITLE_FONT,
        16,
        align=WD_ALIGN_PARAGRAPH.CENTER,
        indent=False,
        space_after=14,
    )
    for n, (heading, body) in enumerate(sections):
        _paragraph(doc, f"{NUMERALS[n]}、{heading}", HEADING_FONT, 16)
        for line in [p.strip() for p in (body or "").splitlines() if p.strip()] or ["（无）"]:
            _paragraph(doc, line, BODY_FONT, 16)
    for n, (caption, data) in enumerate(photos, 1):
        doc.add_picture(io.BytesIO(data), width=Cm(12))
        doc.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER
        _paragraph(doc, f"图{n}　{caption}", BODY_FONT, 12, align=WD_ALIGN_PARAGRAPH.CENTER, indent=False)
    _paragraph(doc, "", BODY_FONT, 16, indent=False)
    _paragraph(doc, town, BODY_FONT, 16, align=WD_ALIGN_PARAGRAPH.RIGHT, indent=False)
    _paragraph(doc, dated, BODY_FONT, 16, align=WD_ALIGN_PARAGRAPH.RIGHT, indent=False)
    _page_number_footer(section)
    doc.save(target)


# --------------------------------------------------------------------------- the life cycle

PHOTO_LIMIT = 4
SECTION_KEYS = tuple(key for key, _ in SECTIONS)


def _lines(*parts) -> str:
    return "\n".join(p.strip() for p in parts if p and p.strip())


def raw_sections(case) -> dict[str, str]:
    """The write-up's five sections in the case's own words, before anonymising."""
    from choices import CaseType, ClosureReason, FollowUpMethod, Gender, NeedDomain, RiskRating
    from services.consent import age_on

    child = case.child
    age = age_on(child.birth_date, case.opened_on)
    categories = "、".join(c.name for c in child.categories) or "困境儿童"
    background = _lines(
        f"{child.name}，{Gender.label_of(child.gender)}，{age}岁，家住{child.village.name}，"
        f"属{categories}。" + (f"就读于{child.school}{child.grade or ''}。" if child.school else ""),
        f"{case.opened_on:%Y年%m月}立案，个案类型为{CaseType.label_of(case.case_type)}。",
    )
    needs = case.needs
    if needs is not None:
        problems = "；".join(
            f"{NeedDomain.label_of(k)}：{v}" for k, v in (needs.problems or {}).items() if v and v.strip()
        )
        assessment = _lines(
            f"{needs.assessed_on:%Y年%m月%d日}完成需求评估，风险等级为{RiskRating.label_of(needs.risk_rating)}。",
            f"主要问题：{problems}。" if problems else "",
            f"风险：{needs.risk}" if needs.risk else "",
            f"儿童优势：{needs.child_strengths}" if needs.child_strengths else "",
            f"家庭优势：{needs.family_strengths}" if needs.family_strengths else "",
        )
    else:
        assessment = ""
    conferences = [
        f"{c.held_on:%Y年%m月%d日}召开个案会商（{c.attendees or '相关部门'}），"
        f"{c.problem or ''}{'；决定：' + c.decisions if c.decisions else ''}"
        for c in case.conferences
    ]
    measures = [f"{n}. {m.content}" for n, m in enumerate(case.measures, 1)]
    services = [
        f"{s.delivered_on:%Y年%m月%d日}，{s.content}" + (f"（{s.outcome}）" if s.outcome else "")
        for s in sorted(case.services, key=lambda s: (s.delivered_on, s.id))
    ]
    intervention = _lines(
        f"帮扶目标：{case.plan_goals}" if case.plan_goals else "",
        *conferences,
        "帮扶措施：" if measures else "",
        *measures,
        "服务过程：" if services else "",
        *services,
    )
    follow_ups = [
        f"{f.followed_on:%Y年%m月%d日}{FollowUpMethod.label_of(f.method)}：{f.change}"
        for f in sorted(case.follow_ups, key=lambda f: (f.followed_on, f.id))
    ]
    outcome = _lines(
        *follow_ups,
        f"{case.closed_on:%Y年%m月%d日}结案，结案原因：{ClosureReason.label_of(case.closure_reason)}。"
        if case.closed_on
        else "",
        case.closing_evaluation or "",
    )
    experience = "（请结合本案总结可推广的做法和启示，如：及早发现、多部门联动、监护能力提升的具体做法。）"
    return {
        "background": background,
        "assessment": assessment,
        "intervention": intervention,
        "outcome": outcome,
        "experience": experience,
    }


def title_for(case) -> str:
    from choices import CaseType

    return f"用心守护　助力成长——{CaseType.label_of(case.case_type)}个案服务典型案例"


def consented_photos(case) -> list:
    """Photos of the case and the child's visits that may leave the system (照片使用 consent)."""
    from services import attachments

    items = [a for a in attachments.exportable(attachments.of_child(case.child_id)) if _is_photo(a)]
    return items[:PHOTO_LIMIT]


def _is_photo(attachment) -> bool:
    from services.attachments import DOCUMENT_KINDS, K

    return attachment.content_type.startswith("image/") and K(attachment.kind) not in DOCUMENT_KINDS


def closed_cases_without_study(case_query, limit: int = 200) -> list:
    """Closed cases of ``case_query`` (already scoped) that have no write-up yet, newest first."""
    from choices import CaseStage
    from models import Case, CaseStudy

    return (
        case_query.filter(
            Case.stage == CaseStage.CLOSED.value,
            ~Case.id.in_(CaseStudy.__table__.select().with_only_columns(CaseStudy.case_id)),
        )
        .order_by(Case.closed_on.desc(), Case.id.desc())
        .limit(limit)
        .all()
    )


def draft(case, *, user_id: int | None, now):
    """A new write-up of a closed case, drafted from its records and anonymised."""
    from choices import CaseStage
    from models import CaseStudy, db
    from services.validation import InvalidInput

    if case.stage != CaseStage.CLOSED.value or case.closed_on is None:
        raise InvalidInput("只能从已结案的个案起草典型案例")
    if db.session.scalar(db.select(CaseStudy.id).where(CaseStudy.case_id == case.id)) is not None:
        raise InvalidInput("该个案已有典型案例，请在原稿上修改")
    ids = identifiers_of(case)
    texts = {key: ids.apply(value) for key, value in raw_sections(case).items()}
    study = CaseStudy(
        case_id=case.id,
        title=ids.apply(title_for(case)),
        photo_ids=[a.id for a in consented_photos(case)],
        status="draft",
        drafted_by_id=user_id,
        drafted_at=now,
        **texts,
    )
    db.session.add(study)
    db.session.flush()
    return study


def check_texts(study, values: dict[str, str]) -> dict[str, str]:
    """Field → message for any identifier of the case's child, guardians or village still in the text."""
    ids = identifiers_of(study.case)
    errors = {}
    for name, text in values.items():
        leaks = ids.leaks(text)
        if leaks:
            errors[name] = "仍含可识别信息（" + "、".join(dict.fromkeys(leaks)) + "），请改用小X、X村等称呼"
    if not (values.get("title") or "").strip() and "title" in values:
        errors["title"] = "请填写标题"
    return errors


def may_edit(study) -> bool:
    return study.status == "draft"


def submit(study, *, user_id: int | None, now) -> None:
    from services.validation import InvalidInput

    if study.status != "draft":
        raise InvalidInput("只有草稿可以提交审核")
    empty = [label for key, label in SECTIONS if not (getattr(study, key) or "").strip()]
    if empty:
        raise InvalidInput("请先填写：" + "、".join(empty))
    errors = check_texts(study, {"title": study.title, **{k: getattr(study, k) for k in SECTION_KEYS}})
    if errors:
        raise InvalidInput(next(iter(errors.values())))
    study.status = "submitted"
    study.submitted_at = now
    study.review_note = None


def may_review(role, user_id: int | None, study) -> bool:
    from services.permissions import CASE_STUDY_APPROVERS

    return role in CASE_STUDY_APPROVERS and user_id is not None and user_id != study.drafted_by_id


def approve(study, *, role, user_id: int | None, now, note: str | None = None) -> None:
    from services.validation import InvalidInput

    if study.status != "submitted":
        raise InvalidInput("只有待审核的案例可以审核通过")
    if not may_review(role, user_id, study):
        raise InvalidInput("典型案例须由起草人以外的督导或管理员审核")
    study.status = "approved"
    study.reviewed_by_id = user_id
    study.reviewed_at = now
    study.review_note = (note or "").strip()[:500] or None


def send_back(study, *, role, user_id: int | None, note: str | None) -> None:
    from services.validation import InvalidInput

    if study.status != "submitted":
        raise InvalidInput("只有待审核的案例可以退回")
    if not may_review(role, user_id, study):
        raise InvalidInput("典型案例须由起草人以外的督导或管理员审核")
    note = (note or "").strip()
    if not note:
        raise InvalidInput("请填写退回原因")
    study.status = "draft"
    study.review_note = note[:500]


def docx_bytes(study, *, town: str) -> bytes:
    """The write-up as a Word document. The texts pass the anonymiser once more and the photos the
    consent gate at the moment of export (consent withdrawn since drafting takes the photo out)."""
    from services import attachments, storage

    ids = identifiers_of(study.case)
    sections = [(label, ids.apply(getattr(study, key))) for key, label in SECTIONS]
    chosen = set(study.photo_ids or [])
    photos = []
    if chosen:
        from models import Attachment, db

        items = db.session.scalars(db.select(Attachment).where(Attachment.id.in_(chosen))).all()
        store = storage.current()
        for n, item in enumerate(a for a in attachments.exportable(items) if _is_photo(a)):
            photos.append((ids.apply(item.note or f"服务照片{n + 1}"), store.read(item.storage_key)))
    dated = (study.reviewed_at or study.drafted_at).strftime("%Y年%m月%d日")
    out = io.BytesIO()
    write_docx(out, title=ids.apply(study.title), sections=sections, town=town, dated=dated, photos=photos)
    return out.getvalue()


def docx_name(study) -> str:
    return f"典型案例{study.id:03d}.docx"
