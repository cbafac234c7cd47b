"""验收材料包 (work plan 五, 区级评估验收): for a period and the whole town, one ZIP streamed to the
user with a 目录.xlsx index and numbered folders of everything the district asks to see.

``plan`` decides what goes in (cheap: queries and attachment ids, no file is made yet); ``stream``
then makes each file only when the ZIP reaches it (zipstream-ng), so memory holds one file at a
time however many photos there are. Photos pass ``attachments.exportable`` (照片使用 consent,
never identity documents); workbooks come from the one workbook factory, which masks ID numbers.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import select

from services import reports

YEAR = "year"
PERIODS = {YEAR: "全年", **{key: name for key, (name, _, _) in reports.PHASES.items()}}
FILENAME = "验收材料包.zip"
INDEX_NAME = "目录.xlsx"

FOLDERS = (
    ("reports", "阶段报表与月度报表", "阶段报表和期间各月的月度报表（全镇口径）"),
    ("ledger", "资金使用台账", "资金来源、支出明细、执行情况和资金使用检查问题清单"),
    ("signin", "活动签到表", "每场活动的签到表（系统生成）及已上传的签字签到表扫描件"),
    ("photos", "活动与宣传照片", "活动现场照片和政策宣传照片（仅限已取得照片使用同意的）"),
    ("publicity", "政策宣传与长效机制", "政策宣传台账和四项长效机制分阶段统计"),
    ("training", "培训记录", "业务培训场次、参训人员及学时"),
    ("inspections", "督查与整改台账", "督查发现的问题及整改、复核情况"),
    ("feedback", "反馈意见汇总", "学校、村（社区）、家庭的满意度汇总和意见建议"),
    ("cases", "典型案例", "已审核的典型案例（匿名化，Word文档）"),
    ("group", "领导小组", "领导小组名单及会议记录"),
    ("indicators", "指标说明", "报表中每一项指标的定义、分子分母和本期数值"),
)
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


def folder_name(key: str) -> str:
    """The folder's name in the ZIP: its number and its words (01_阶段报表与月度报表)."""
    for n, (k, label, _) in enumerate(FOLDERS, 1):
        if k == key:
            return f"{n:02d}_{label}"
    raise KeyError(key)


def safe_name(text: str, limit: int = 60) -> str:
    return _UNSAFE.sub("_", (text or "").strip())[:limit].strip(" .") or "未命名"


@dataclass
class Entry:
    folder: str  # a FOLDERS key
    name: str
    produce: Callable[[], bytes]

    @property
    def path(self) -> str:
        return f"{folder_name(self.folder)}/{self.name}"


@dataclass
class Pack:
    title: str
    start: dt.date
    end: dt.date
    town: str
    now: dt.datetime
    generated_by: str
    entries: list[Entry] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def add(self, folder: str, name: str, produce: Callable[[], bytes]) -> None:
        self.entries.append(Entry(folder, name, produce))

    def count(self, folder: str) -> int:
        return sum(1 for e in self.entries if e.folder == folder)


def period_of(year: int, period: str) -> tuple[dt.date, dt.date, str]:
    if period == YEAR:
        return dt.date(year, 1, 1), dt.date(year, 12, 31), f"{year}年全年"
    p = reports.phase_period(year, period)
    return p.start, p.end, p.title


# --------------------------------------------------------------------------- what goes in


def plan(year: int, period: str, *, town: str, now: dt.datetime, generated_by: str) -> Pack:
    """Everything the pack will hold for ``period`` of ``year`` (a PERIODS key), whole town."""
    start, end, title = period_of(year, period)
    pack = Pack(title, start, end, town, now, generated_by)
    _reports(pack, year, period)
    _ledger(pack)
    _activities(pack)
    _documents(pack)
    _case_studies(pack)
    return pack


def _report_bytes(pack: Pack, rp: reports.Period, kind: str) -> bytes:
    figures = reports.compute_figures(
        rp, None, "全镇（全部村（社区））", with_months=kind == reports.PHASE, now=pack.now
    )
    return reports.write_report(
        figures, town=pack.town, kind=kind, generated_at=pack.now, generated_by=pack.generated_by
    )


def report_periods(year: int, period: str) -> tuple[list[reports.Period], list[reports.Period]]:
    """(phase periods, month periods) the pack's reports cover."""
    phases = list(reports.PHASES) if period == YEAR else [period]
    phase_periods = [reports.phase_period(year, p) for p in phases]
    first = min(p.start for p in phase_periods).month
    last = max(p.end for p in phase_periods).month
    return phase_periods, [reports.month_period(year, m) for m in range(first, last + 1)]


def _reports(pack: Pack, year: int, period: str) -> None:
    phases, months = report_periods(year, period)
    for n, rp in enumerate(phases, 1):
        pack.add(
            "reports",
            f"{n:02d}_阶段报表_{safe_name(rp.title)}.xlsx",
            lambda rp=rp: _report_bytes(pack, rp, reports.PHASE),
        )
    for rp in months:
        pack.add(
            "reports",
            f"月度报表_{rp.start:%Y-%m}.xlsx",
            lambda rp=rp: _report_bytes(pack, rp, reports.MONTHLY),
        )


def _ledger(pack: Pack) -> None:
    def produce() -> bytes:
        from services import fund_checks, ledger

        findings = fund_checks.filter_findings(fund_checks.run_all(), start=pack.start, end=pack.end)
        out = io.BytesIO()
        ledger.write_ledger(
            out,
            town=pack.town,
            start=pack.start,
            end=pack.end,
            findings=findings,
            notes=fund_checks.notes_for(findings),
            generated_at=pack.now,
        )
        return out.getvalue()

    pack.add("ledger", "资金使用台账.xlsx", produce)


def _period_activities(pack: Pack) -> list:
    from models import Activity, db

    first = dt.datetime.combine(pack.start, dt.time.min)
    after = dt.datetime.combine(pack.end + dt.timedelta(days=1), dt.time.min)
    return list(
        db.session.scalars(
            select(Activity)
            .where(Activity.starts_at >= first, Activity.starts_at < after)
            .order_by(Activity.starts_at, Activity.id)
        )
    )


def _signin_bytes(activity_id: int, town: str) -> bytes:
    from models import Activity, db
    from services.attendance import RollFilter, activity_village_ids, build_roll
    from services.signin_sheet import write_sheet

    activity = db.session.get(Activity, activity_id)
    roll = build_roll(db.session, activity, None)
    if not roll.too_long:
        return write_sheet(activity, roll.entries, town_name=town)
    # too many people for one sheet: the roll village by village, one after the other
    entries = []
    for village_id in sorted(activity_village_ids(db.session, activity)):
        entries += build_roll(db.session, activity, None, RollFilter(village_id=village_id)).entries
    return write_sheet(activity, entries, town_name=town)


def _attachment_bytes(attachment_id: int) -> bytes:
    from models import Attachment, db
    from services import storage

    return storage.current().read(db.session.get(Attachment, attachment_id).storage_key)


def _extension(attachment) -> str:
    return {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}.get(
        attachment.content_type, "bin"
    )


def _activities(pack: Pack) -> None:
    from models import PublicityEvent, db
    from services import attachments
    from services.attachments import DOCUMENT_KINDS, K

    activities = _period_activities(pack)
    kept = attachments.exportable(attachments.listed("activity", [a.id for a in activities]))
    by_activity: dict[int, list] = {}
    for item in sorted(kept, key=lambda a: a.id):
        by_activity.setdefault(item.owner_id, []).append(item)
    for n, activity in enumerate(activities, 1):
        stem = f"{n:03d}_{activity.starts_at:%Y-%m-%d}_{safe_name(activity.title, 40)}"
        pack.add("signin", f"{stem}_签到表.xlsx", lambda aid=activity.id: _signin_bytes(aid, pack.town))
        photos = 0
        for item in by_activity.get(activity.id, []):
            if K(item.kind) == K.SIGNIN_SCAN:
                pack.add(
                    "signin",
                    f"{stem}_签字扫描件{item.id}.{_extension(item)}",
                    lambda i=item.id: _attachment_bytes(i),
                )
            elif K(item.kind) not in DOCUMENT_KINDS and item.content_type.startswith("image/"):
                photos += 1
                pack.add(
                    "photos",
                    f"活动_{stem}_{photos:02d}.{_extension(item)}",
                    lambda i=item.id: _attachment_bytes(i),
                )
    events = list(
        db.session.scalars(
            select(PublicityEvent)
            .where(PublicityEvent.held_on >= pack.start, PublicityEvent.held_on <= pack.end)
            .order_by(PublicityEvent.held_on, PublicityEvent.id)
        )
    )
    kept = attachments.exportable(attachments.listed("publicity", [e.id for e in events]))
    titles = {e.id: (e.held_on, e.title) for e in events}
    for n, item in enumerate(sorted(kept, key=lambda a: (titles[a.owner_id][0], a.id)), 1):
        if not item.content_type.startswith("image/") or K(item.kind) in DOCUMENT_KINDS:
            continue
        held_on, title = titles[item.owner_id]
        name = f"宣传_{held_on:%Y-%m-%d}_{safe_name(title, 40)}_{n:02d}.{_extension(item)}"
        pack.add("photos", name, lambda i=item.id: _attachment_bytes(i))


def _documents(pack: Pack) -> None:
    from services import documents

    start, end, town, now = pack.start, pack.end, pack.town, pack.now
    today = min(end, now.date())
    period = f"{start:%Y-%m-%d} 至 {end:%Y-%m-%d}"
    pack.add(
        "publicity",
        "政策宣传台账与长效机制.xlsx",
        lambda: documents.publicity_book(start, end, town=town, now=now),
    )
    pack.add("training", "培训记录.xlsx", lambda: documents.training_book(start, end, town=town))
    pack.add(
        "inspections",
        "督查与整改台账.xlsx",
        lambda: documents.rectification_book(None, start, end, town=town, today=now.date()),
    )
    pack.add(
        "feedback",
        "反馈意见汇总.xlsx",
        lambda: documents.feedback_book(None, start, end, town=town, title=f"全镇　{period}"),
    )
    pack.add("group", "领导小组名单.xlsx", lambda: documents.leading_group_book(town=town, today=today))
    pack.add("indicators", "指标说明.xlsx", lambda: documents.indicator_book(start, end, town=town, now=now))


def _case_studies(pack: Pack) -> None:
    from models import CaseStudy, db
    from services import case_studies

    after = dt.datetime.combine(pack.end + dt.timedelta(days=1), dt.time.min)
    studies = db.session.scalars(
        select(CaseStudy)
        .where(CaseStudy.status == "approved", CaseStudy.reviewed_at < after)
        .order_by(CaseStudy.reviewed_at, CaseStudy.id)
    ).all()
    for n, study in enumerate(studies, 1):
        name = f"{n:02d}_{safe_name(study.title, 50)}.docx"
        pack.add(
            "cases",
            name,
            lambda sid=study.id: case_studies.docx_bytes(db.session.get(CaseStudy, sid), town=pack.town),
        )


# --------------------------------------------------------------------------- the index and the ZIP


def index_book(pack: Pack) -> bytes:
    """目录.xlsx: the folders with their contents and file counts, then every file by name."""
    from services.workbook import Book, PrintSetup

    setup = PrintSetup(fit_to_width=True, repeat_rows=(2, 2), footer_town=pack.town, page_numbers=True)
    book = Book(print_setup=setup)
    title = book.format(bold=True, font_size=16, align="center")
    head = book.format(bold=True, border=1, bg_color="#EEEEEE", align="center")
    cell = book.format(border=1, text_wrap=True, valign="top")
    sheet = book.sheet("目录")
    sheet.title(0, 0, 0, 3, f"{pack.town}困境儿童监护赋能关爱服务验收材料目录", title)
    sheet.title(
        1,
        0,
        1,
        3,
        f"{pack.title}（{pack.start:%Y-%m-%d} 至 {pack.end:%Y-%m-%d}）　生成于{pack.now:%Y-%m-%d %H:%M}　{pack.generated_by}",
    )
    sheet.row(2, 0, ("序号", "文件夹", "内容", "文件数"), head)
    for n, (key, _, what) in enumerate(FOLDERS, 1):
        sheet.row(2 + n, 0, (n, folder_name(key), what, pack.count(key)), cell)
    total = 3 + len(FOLDERS)
    sheet.row(total, 0, ("", "合计", "", len(pack.entries)), cell)
    for col, width in enumerate((6, 26, 60, 8)):
        sheet.set_column(col, col, width)
    files = book.sheet("文件清单")
    files.title(0, 0, 0, 2, "文件清单", title)
    files.title(1, 0, 1, 2, pack.title)
    files.row(2, 0, ("序号", "文件夹", "文件名"), head)
    for n, entry in enumerate(pack.entries, 1):
        files.row(2 + n, 0, (n, folder_name(entry.folder), entry.name), cell)
    for col, width in enumerate((6, 26, 70)):
        files.set_column(col, col, width)
    return book.close()


def stream(pack: Pack) -> Iterator[bytes]:
    """The ZIP, chunk by chunk: 目录.xlsx first, then each folder's files made as they are reached.
    Photos are stored as they are (already compressed); workbooks and documents are deflated."""
    from zipfile import ZIP_DEFLATED, ZIP_STORED

    from zipstream import ZipStream

    zs = ZipStream(compress_type=ZIP_DEFLATED)
    zs.add(index_book(pack), INDEX_NAME)
    for key, _, _ in FOLDERS:
        if not pack.count(key):
            zs.mkdir(folder_name(key))
    for entry in pack.entries:
        stored = entry.name.rsplit(".", 1)[-1] in ("jpg", "png", "pdf")
        zs.add(_lazy(entry.produce), entry.path, compress_type=ZIP_STORED if stored else ZIP_DEFLATED)
    yield from zs


def _lazy(produce: Callable[[], bytes]) -> Iterator[bytes]:
    yield produce()
