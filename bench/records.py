"""Attachments and transfers at scale: a 12-megapixel phone photo uploaded and re-encoded, a dossier
with 200 photos (thumbnails), and accepting the transfer of a child with 500 records."""

import datetime as dt
import io
import os
import random
import statistics
import time

from PIL import Image
from sqlalchemy import delete, insert, select

from choices import TransferStatus
from models import (
    Alert,
    Assessment,
    Attachment,
    Case,
    Child,
    MandatoryReport,
    MentorPairing,
    RuleVersion,
    Staff,
    SupportService,
    Transfer,
    Village,
    Visit,
    db,
)
from services import attachments, storage, transfers

PHOTOS_MARKER = "基准：200张照片"
MOVING_MARKER = "基准：转移500条记录"
PHOTOS = 200
# 500 records on the child that moves, of every kind acceptance touches
MOVING = {
    "visit": 200,
    "assessment": 100,
    "service": 100,
    "alert": 60,
    "report": 20,
    "case": 10,
    "pairing": 10,
}


def _phone_photo(seed: int, size=(4000, 3000)) -> bytes:
    """A 12-megapixel JPEG as a phone writes it (texture, EXIF with orientation and GPS)."""
    rng = random.Random(seed)
    small = Image.effect_noise((size[0] // 8, size[1] // 8), 50 + rng.randint(0, 20)).convert("RGB")
    gradient = Image.linear_gradient("L").resize(small.size)
    small = Image.merge("RGB", [small.getchannel(0), gradient, small.getchannel(0).point(lambda v: 255 - v)])
    picture = small.resize(size, Image.Resampling.BICUBIC)
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x8825] = {1: "N", 2: (29.0, 42.0, 7.5), 3: "E", 4: (107.0, 23.0, 12.0)}
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=92, exif=exif.tobytes())
    return out.getvalue()


def build(app):
    session = db.session
    session.info["skip_audit"] = True
    villages = session.scalars(select(Village.id).order_by(Village.sort_order)).all()
    first = villages[0]
    photo_child, moving_child = session.scalars(
        select(Child)
        .where(Child.village_id == first, Child.archived_at.is_(None))
        .order_by(Child.id.desc())
        .limit(2)
    ).all()
    photo_child.notes = PHOTOS_MARKER
    moving_child.notes = MOVING_MARKER

    # 200 photos: each stored with its own key (original and thumbnail), as uploads would leave them
    with app.test_request_context():
        store = storage.current()
        sample = attachments.process(_phone_photo(1, size=(1600, 1200)))
        rows = []
        for i in range(PHOTOS):
            key = storage.new_key()
            store.put(key, sample.data, sample.content_type)
            store.put(key + "-t", sample.thumb, "image/jpeg")
            rows.append(
                {
                    "owner_kind": "child",
                    "owner_id": photo_child.id,
                    "kind": "photo",
                    "content_type": sample.content_type,
                    "original_name": f"IMG_{i:04d}.jpg",
                    "size": len(sample.data),
                    "width": sample.width,
                    "height": sample.height,
                    "storage_key": key,
                    "thumb_key": key + "-t",
                    "source_sha256": f"{i:064d}",
                    "uploaded_at": dt.datetime(2026, 1, 1) + dt.timedelta(hours=i),
                }
            )
        session.execute(insert(Attachment), rows)

    # the child that moves: 500 records
    cid = moving_child.id
    staff = session.scalars(select(Staff.id).order_by(Staff.id).limit(3)).all()
    rules = RuleVersion(snapshot={}, fingerprint="bench-records")
    session.add(rules)
    session.flush()
    day0 = dt.date(2021, 1, 1)
    session.execute(
        insert(Visit),
        [
            {"child_id": cid, "visited_on": day0 + dt.timedelta(days=7 * i), "kind": "home", "version": 1}
            for i in range(MOVING["visit"])
        ],
    )
    session.execute(
        insert(Assessment),
        [
            {
                "child_id": cid,
                "assessed_on": day0 + dt.timedelta(days=15 * i),
                "methods": [],
                "scores": {},
                "vetoes": [],
                "computed_level": "yellow",
                "level": "yellow",
                "rule_version_id": rules.id,
                "status": "approved",
                "version": 1,
            }
            for i in range(MOVING["assessment"])
        ],
    )
    session.execute(
        insert(SupportService),
        [
            {
                "child_id": cid,
                "village_id": moving_child.village_id,
                "kind": "counselling",
                "status": "delivered",
                "provider_id": staff[0],
                "version": 1,
            }
            for _ in range(MOVING["service"])
        ],
    )
    session.execute(
        insert(Alert),
        [
            {
                "source": "rule",
                "severity": "yellow",
                "child_id": cid,
                "village_id": first,
                "title": f"基准转移预警{i}",
                "raised_at": dt.datetime(2021, 1, 1) + dt.timedelta(days=10 * i),
                "deadline": dt.datetime(2021, 1, 8) + dt.timedelta(days=10 * i),
                "status": "done",
                "version": 1,
            }
            for i in range(MOVING["alert"])
        ],
    )
    session.execute(
        insert(MandatoryReport),
        [
            {
                "reporter_kind": "teacher",
                "received_at": dt.datetime(2021, 1, 1) + dt.timedelta(days=30 * i),
                "child_id": cid,
                "village_id": first,
                "situation": "基准",
                "urgency": "normal",
                "version": 1,
            }
            for i in range(MOVING["report"])
        ],
    )
    session.execute(
        insert(Case),
        [
            {"child_id": cid, "case_type": "absence", "opened_on": day0, "stage": "closed", "version": 1}
            for _ in range(MOVING["case"])
        ],
    )
    session.execute(
        insert(MentorPairing),
        [
            {"staff_id": staff[1], "child_id": cid, "start_on": day0, "version": 1}
            for _ in range(MOVING["pairing"])
        ],
    )
    session.commit()


def _child(marker) -> Child:
    return db.session.scalar(select(Child).where(Child.notes == marker))


def _timed_gets(client, url, repeat=15):
    """Wall and CPU milliseconds of repeated GETs (CPU: this process, i.e. the app's own work)."""
    assert client.get(url).status_code == 200
    walls, cpus = [], []
    for _ in range(repeat):
        cpu = time.process_time()
        start = time.perf_counter()
        response = client.get(url)
        walls.append((time.perf_counter() - start) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
        assert response.status_code == 200
    return walls, cpus


def _load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def measure(bench):
    app = bench.app
    photo_child = _child(PHOTOS_MARKER)
    moving = _child(MOVING_MARKER)

    # 1. a 12-megapixel photo through the upload view (sniff, verify, decode, turn, re-encode, thumbnail, store)
    client = bench.client("clerk")
    page = client.get(f"/admin/dossier/?id={photo_child.id}").get_data(as_text=True)
    import re

    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    photos = [_phone_photo(100 + i) for i in range(6)]
    walls, cpus, uploaded = [], [], []
    for i, photo in enumerate(photos):
        cpu = time.process_time()
        start = time.perf_counter()
        response = client.post(
            "/admin/attachment/upload/",
            data={
                "csrf_token": token,
                "owner_kind": "child",
                "owner_id": str(photo_child.id),
                "kind": "photo",
                "file": (io.BytesIO(photo), f"IMG_{i}.JPG"),
            },
            headers={"Accept": "application/json"},
            content_type="multipart/form-data",
        )
        wall = (time.perf_counter() - start) * 1000
        assert response.status_code == 200, response.get_data(as_text=True)
        uploaded += [saved["id"] for saved in response.get_json()["saved"]]
        if i:  # the first warms up
            walls.append(wall)
            cpus.append((time.process_time() - cpu) * 1000)
    bench.add(
        "upload + re-encode a 12-megapixel JPEG (4000×3000, EXIF/GPS stripped, turned, thumbnail)",
        walls,
        1500,
        f"{len(photos[0]) / 1e6:.1f} MB; CPU {statistics.median(cpus):.0f} ms; {_load()}",
    )
    # the uploads leave: the grid below has exactly 200
    rows = db.session.scalars(select(Attachment).where(Attachment.id.in_(uploaded))).all()
    keys = [k for a in rows for k in (a.storage_key, a.thumb_key) if k]
    db.session.execute(delete(Attachment).where(Attachment.id.in_(uploaded)))
    db.session.commit()
    store = storage.for_app(app)
    for key in keys:
        store.delete(key)

    # 2. the dossier's thumbnail grid of 200 photos (the page; the thumbnails load after it)
    count = len(attachments.of_child(photo_child.id))
    walls, cpus = _timed_gets(bench.client("clerk"), f"/admin/dossier/?id={photo_child.id}")
    bench.add(
        "dossier with 200 photos (thumbnail grid)",
        walls,
        150,
        f"{count} photos; CPU {statistics.median(cpus):.0f} ms; {_load()}",
    )
    first = db.session.scalar(select(Attachment.id).where(Attachment.owner_id == photo_child.id).limit(1))
    bench.time_get(
        "one thumbnail (scoped, from storage)", "director1", f"/admin/attachment/{first}/thumb/", None
    )

    # 3. accepting the transfer of a child with 500 records (clerk for 松林村, director1 back to 云岭村)
    villages = dict(db.session.execute(select(Village.name, Village.id)).all())
    records = sum(MOVING.values())
    samples, cpus = [], []
    for i in range(6):
        there = i % 2 == 0
        target = villages["松林村"] if there else villages["云岭村"]
        deciding = "clerk" if there else "director1"
        with app.test_request_context():
            child = db.session.get(Child, moving.id)
            transfers.start(child, target, "基准转移", "", True, role="admin", user_village_id=None)
            db.session.commit()
        pending = db.session.scalar(
            select(Transfer.id).where(
                Transfer.child_id == moving.id, Transfer.status == TransferStatus.PENDING.value
            )
        )
        client = bench.client(deciding)
        token = re.search(
            r'name="csrf_token" value="([^"]+)"', client.get("/admin/transfer/inbox/").get_data(as_text=True)
        ).group(1)
        cpu = time.process_time()
        start = time.perf_counter()
        response = client.post(
            f"/admin/transfer/decide/?id={pending}", data={"decision": "accept", "csrf_token": token}
        )
        samples.append((time.perf_counter() - start) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
        assert response.status_code == 302, response.status_code
        db.session.expire_all()
        assert db.session.get(Child, moving.id).village_id == target
    bench.add(
        "accept the transfer of a child with 500 records",
        samples[1:],
        200,
        f"{records} records (alerts and reports re-villaged); CPU {statistics.median(cpus[1:]):.0f} ms; {_load()}",
    )
