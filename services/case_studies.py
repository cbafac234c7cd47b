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
