"""The plan's process at scale: the 验收材料包 for the demo town with 500 photos and 60 activities
(time to first bytes, total time, peak memory growth while it streams) and a 典型案例 .docx."""

import datetime as dt
import os
import threading
import time

from sqlalchemy import func, insert, select

from bench.harness import Row
from choices import CaseStage
from models import Activity, Attachment, Case, CaseStudy, PublicityEvent, User, db
from services import attachments, case_studies, clock, storage

PHOTOS = 500
ACTIVITIES = 60
MARKER = "基准：验收材料包"


def build(app):
    session = db.session
    session.info["skip_audit"] = True
    year = clock.today().year
    first = dt.datetime(year, 1, 1)
    have = session.scalar(select(func.count()).select_from(Activity).where(Activity.starts_at >= first))
    for n in range(max(ACTIVITIES - have, 0)):
        starts = first + dt.timedelta(days=3 * n + 10, hours=9)
        session.add(
            Activity(
                version=1,
                kind="other",
                title=f"{MARKER}活动{n + 1}",
                starts_at=starts,
                ends_at=starts + dt.timedelta(hours=2),
                place="镇文化站",
                audience=[],
                staff_kinds=[],
            )
        )
    # 500 photos on publicity events (no child is their subject: they pass the consent gate)
    events = []
    for n in range(PHOTOS // 10):
        event = PublicityEvent(
            held_on=dt.date(year, 1 + n % 11, 1 + n % 27),
            title=f"{MARKER}宣传{n + 1}",
            form="lecture",
            audience_count=50,
        )
        session.add(event)
        events.append(event)
    session.flush()
    with app.test_request_context():
        from bench.records import _phone_photo

        store = storage.current()
        sample = attachments.process(_phone_photo(7, size=(1600, 1200)))
        rows = []
        for i in range(PHOTOS):
            key = storage.new_key()
            store.put(key, sample.data, sample.content_type)
            rows.append(
                {
                    "owner_kind": "publicity",
                    "owner_id": events[i // 10].id,
                    "kind": "scene_photo",
                    "content_type": sample.content_type,
                    "original_name": f"IMG_{i:04d}.jpg",
                    "size": len(sample.data),
                    "width": sample.width,
                    "height": sample.height,
                    "storage_key": key,
                    "source_sha256": f"{i:064d}",
                }
            )
        session.execute(insert(Attachment), rows)
    # an approved case study of a closed case
    case = session.scalars(
        select(Case)
        .where(Case.stage == CaseStage.CLOSED.value, Case.closed_on.is_not(None))
        .order_by(Case.id)
    ).first()
    if case is not None and session.scalar(select(CaseStudy.id).where(CaseStudy.case_id == case.id)) is None:
        study = case_studies.draft(case, user_id=None, now=clock.now())
        study.status = "approved"
        study.reviewed_at = clock.now()
        study.reviewed_by_id = session.scalar(select(User.id).where(User.username == "supervisor"))
    session.commit()


def _rss_mb() -> float:
    """The process's own resident memory: resident less shared pages. SQLite reads the database
    through a memory map (app.py), and the mapped file's pages are the page cache's, not the pack's."""
    with open("/proc/self/statm") as statm:
        _, resident, shared, *_ = (int(n) for n in statm.read().split())
    return (resident - shared) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRss:
    """The process's resident memory sampled every 20 ms: the peak above where it started."""

    def __enter__(self):
        self.base = self.peak = _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())

    @property
    def growth(self) -> float:
        return self.peak - self.base


def measure(bench):
    year = clock.today().year
    client = bench.client("clerk")
    url = f"/admin/acceptance-pack/pack.zip?year={year}&period=year"
    page = client.get(f"/admin/acceptance-pack/?year={year}&period=year")
    assert page.status_code == 200
    firsts, totals, growths, sizes = [], [], [], []
    for _ in range(2):
        with PeakRss() as rss:
            start = time.perf_counter()
            response = client.get(url, buffered=False)
            assert response.status_code == 200
            chunks = iter(response.response)
            size = len(next(chunks))
            firsts.append((time.perf_counter() - start) * 1000)
            for chunk in chunks:
                size += len(chunk)
            response.close()
            totals.append((time.perf_counter() - start) * 1000)
        growths.append(rss.growth)
        sizes.append(size)
    photos = db.session.scalar(
        select(func.count()).select_from(Attachment).where(Attachment.owner_kind == "publicity")
    )
    note = f"{photos}张宣传照片，ZIP {sizes[-1] / 2**20:.0f} MB"
    bench.add("验收材料包：首字节", firsts, 2000, note)
    bench.add("验收材料包：全部", totals, 30000, note)
    bench.rows.append(
        Row("验收材料包：内存峰值增长", max(growths), 100, "RSS 采样（不含共享的数据库映射页）", unit="MB")
    )
    print(f"  验收材料包：内存峰值增长 {max(growths):.0f} MB (target 100)", flush=True)

    study = db.session.scalars(select(CaseStudy).order_by(CaseStudy.id)).first()
    if study is None:
        print("  典型案例：no closed case in the bench data", flush=True)
        return
    with bench.app.test_request_context():
        bench.time_call(
            "典型案例 .docx",
            lambda: case_studies.docx_bytes(study, town="罗云镇"),
            500,
            repeat=5,
        )
