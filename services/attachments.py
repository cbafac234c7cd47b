"""附件: the evidence store every area uses — scans and photos on a child, a visit, an activity, a case,
an expense (and whatever area registers an owner later).

- ``save_upload(owner, kind, file)`` is the one way in: the kind of file is read from its bytes
  (JPEG, PNG, HEIC/HEIF from phones, PDF; never the name or the browser's type), at most 20 MB;
  images are decoded and written anew with Pillow — orientation applied, every EXIF/XMP field (GPS
  above all) left behind, HEIC turned into JPEG — and a thumbnail made. Sending the same file to the
  same owner twice keeps it once (a double click, an offline queue sending again).
- ``find(attachment_id, village_ids, role)`` is the one way out: the attachment only if the role may
  read its owner's area and the owner lies in the user's villages.
- ``exportable(attachments)`` is the one gate every exporter passes (see services/consent.py).
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass

import filetype
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select, update

from choices import AttachmentKind as K
from choices import AttachmentOwner
from models import Attachment, Case, Child, Visit, attachment_owners, db, utcnow
from services import audit, storage
from services.permissions import can_read, can_write
from services.scoping import scope
from services.validation import InvalidInput

pillow_heif.register_heif_opener()

MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 80_000_000  # a 48-megapixel phone photo passes; a decompression bomb does not
MAX_SIDE = 6000  # larger images are scaled down to this long side when stored
THUMB_SIDE = 320
JPEG_QUALITY = 88
THUMB_QUALITY = 72
ACCEPT = "image/jpeg,image/png,image/heic,image/heif,application/pdf,.jpg,.jpeg,.png,.heic,.heif,.pdf"

TOO_LARGE = "文件过大：每个附件不能超过20MB。请压缩图片或分页扫描后再上传。"
NOT_ALLOWED = "只能上传 JPG、PNG、HEIC（手机照片）或 PDF 文件；该文件的内容不是这几种格式。"


@dataclass(frozen=True)
class OwnerSpec:
    """How attachments hang on one kind of record: its model, area (roles) and allowed kinds."""

    kind: str
    area: str
    kinds: tuple[K, ...]

    @property
    def model(self):
        return attachment_owners()[self.kind]

    @property
    def label(self) -> str:
        return AttachmentOwner.label_of(self.kind)


OWNERS: dict[str, OwnerSpec] = {
    spec.kind: spec
    for spec in (
        OwnerSpec(
            "child",
            "children",
            (
                K.HUKOU,
                K.ID_CARD,
                K.DISABILITY_CERT,
                K.SUBSISTENCE_CERT,
                K.CONSENT_FORM,
                K.ASSESSMENT_SIGNATURE,
                K.REFERRAL,
                K.PHOTO,
                K.OTHER,
            ),
        ),
        OwnerSpec("visit", "visits", (K.VISIT_PHOTO, K.OTHER)),
        OwnerSpec("activity", "activities", (K.SCENE_PHOTO, K.SIGNIN_SCAN, K.OTHER)),
        OwnerSpec("case", "cases", (K.CASE_DOCUMENT, K.PHOTO, K.OTHER)),
        OwnerSpec("expense", "funds", (K.VOUCHER, K.OTHER)),
    )
}


def register_owner(kind: str, area: str, kinds) -> None:
    """For an area added later (e.g. 督查 records): its model must also be in models.attachment_owners."""
    OWNERS[kind] = OwnerSpec(kind, area, tuple(kinds))


# Documents that identify a child: never part of any export, report or pack.
IDENTITY_DOCUMENTS = {K.HUKOU, K.ID_CARD, K.DISABILITY_CERT, K.SUBSISTENCE_CERT}
# Paper records, not pictures of people: the photo-consent rule does not apply to them.
DOCUMENT_KINDS = IDENTITY_DOCUMENTS | {
    K.CONSENT_FORM,
    K.ASSESSMENT_SIGNATURE,
    K.REFERRAL,
    K.SIGNIN_SCAN,
    K.CASE_DOCUMENT,
    K.VOUCHER,
    K.MINUTES,
    K.INSPECTION_DOC,
}


# --------------------------------------------------------------------------- reading the bytes


@dataclass
class Processed:
    data: bytes
    content_type: str
    extension: str
    thumb: bytes | None = None
    width: int | None = None
    height: int | None = None


def read_upload(file) -> tuple[bytes, str]:
    """(bytes, original file name) from a werkzeug FileStorage, raw bytes or a binary file object."""
    if isinstance(file, bytes | bytearray):
        return bytes(file), ""
    name = getattr(file, "filename", None) or getattr(file, "name", "") or ""
    stream = getattr(file, "stream", file)
    data = stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise InvalidInput(TOO_LARGE)
    return data, str(name)


def sniff(data: bytes) -> str:
    """'jpeg', 'png', 'heif' or 'pdf', read from the content; anything else is refused."""
    if not data:
        raise InvalidInput("文件是空的，请重新选择")
    if len(data) > MAX_BYTES:
        raise InvalidInput(TOO_LARGE)
    if data[:5] == b"%PDF-":
        return "pdf"
    guess = filetype.guess(data[:8192])
    mime = guess.mime if guess else ""
    if mime == "image/jpeg":
        return "jpeg"
    if mime == "image/png":
        return "png"
    if mime in ("image/heic", "image/heif") or (data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS):
        return "heif"
    raise InvalidInput(NOT_ALLOWED)


_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
# Names of active PDF content (scripts, launched programs, embedded files): a scan has none.
_PDF_ACTIVE = re.compile(rb"/(JavaScript|JS|Launch|EmbeddedFiles?|RichMedia|XFA)(?![A-Za-z0-9])")
_PDF_ESCAPED_NAME = re.compile(rb"/[A-Za-z0-9]*#[0-9A-Fa-f]{2}[A-Za-z0-9#]*")


def _check_pdf(data: bytes) -> None:
    if b"%%EOF" not in data[-2048:]:
        raise InvalidInput("PDF 文件不完整（可能未上传完），请重新选择")
    if _PDF_ACTIVE.search(data):
        raise InvalidInput("PDF 中含有脚本、附带文件或可执行动作，不能上传；请用扫描件或“打印为PDF”重新生成")
    for name in _PDF_ESCAPED_NAME.findall(data):
        decoded = re.sub(rb"#([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), name)
        if _PDF_ACTIVE.fullmatch(decoded) or _PDF_ACTIVE.match(decoded):
            raise InvalidInput("PDF 中含有脚本或可执行动作，不能上传")


def process(data: bytes) -> Processed:
    """Check the bytes and produce what is stored: images re-encoded and stripped, PDFs as they are."""
    fmt = sniff(data)
    if fmt == "pdf":
        _check_pdf(data)
        return Processed(data, "application/pdf", "pdf")
    try:
        probe = Image.open(io.BytesIO(data))
        probe.verify()  # structure and checksums, before anything is decoded
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise InvalidInput(f"图片像素过大（{width}×{height}），请用不超过8000万像素的图片")
        image.load()
    except InvalidInput:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise InvalidInput("图片已损坏或不完整，无法读取，请重新拍摄或选择") from None
    icc = image.info.get("icc_profile")
    transparency = image.info.get("transparency") if image.mode in ("P", "L", "RGB") else None
    # turn the picture as the phone held it (in place: a 12-megapixel copy costs as much as a decode)
    ImageOps.exif_transpose(image, in_place=True)
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    image.info = {}
    out = io.BytesIO()
    if fmt == "png":
        clean = image if image.mode in ("RGB", "RGBA", "L", "LA", "P", "1", "I;16") else image.convert("RGB")
        extra = {"transparency": transparency} if transparency is not None and clean is image else {}
        clean.save(out, "PNG", icc_profile=icc, compress_level=6, **extra)
        content_type, extension = "image/png", "png"
    else:
        clean = image if image.mode in ("RGB", "L") else image.convert("RGB")
        clean.save(out, "JPEG", quality=JPEG_QUALITY, icc_profile=icc)
        content_type, extension = "image/jpeg", "jpg"
    return Processed(
        out.getvalue(),
        content_type,
        extension,
        thumb=_thumbnail(clean),
        width=clean.width,
        height=clean.height,
    )


def _thumbnail(image: Image.Image) -> bytes:
    scale = THUMB_SIDE / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    # resize makes a new small image straight away (no copy of the full picture first)
    thumb = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0) if scale < 1 else image.copy()
    if thumb.mode in ("RGBA", "LA", "P") or thumb.mode not in ("RGB", "L"):
        rgba = thumb.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        thumb = flat
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=THUMB_QUALITY)
    return out.getvalue()


def clean_name(name: str, extension: str) -> str:
    """The uploaded file's name for display and download: no folders, no control characters, and the
    extension of what is actually stored (a HEIC photo is kept as .jpg)."""
    name = unicodedata.normalize("NFKC", name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '<>:"|?*').strip(" .")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{(stem or '附件')[:80]}.{extension}"


# --------------------------------------------------------------------------- owners and scope


def owner_spec(owner_kind: str) -> OwnerSpec:
    spec = OWNERS.get(owner_kind)
    if spec is None:
        raise InvalidInput("附件所属记录的类型无效")
    return spec


def find_owner(owner_kind: str, owner_id, village_ids):
    """The owner row if it exists and lies in the user's villages; None otherwise."""
    spec = OWNERS.get(owner_kind)
    try:
        key = int(owner_id)
    except (TypeError, ValueError):
        return None
    if spec is None:
        return None
    model = spec.model
    return db.session.scalars(scope(select(model).where(model.id == key), model, village_ids)).one_or_none()


def owner_kind_of(owner) -> str:
    for kind, model in attachment_owners().items():
        if type(owner) is model:
            return kind
    raise InvalidInput("该类记录不能上传附件")


def may_view(role, owner_kind: str) -> bool:
    spec = OWNERS.get(owner_kind)
    return spec is not None and can_read(role, spec.area)


def may_attach(role, owner_kind: str) -> bool:
    spec = OWNERS.get(owner_kind)
    return spec is not None and can_write(role, spec.area)


def find(attachment_id, village_ids, role, *, include_archived: bool = True) -> Attachment | None:
    """The attachment if this role may read its owner's area and the owner is in scope."""
    try:
        key = int(attachment_id)
    except (TypeError, ValueError):
        return None
    stmt = scope(select(Attachment).where(Attachment.id == key), Attachment, village_ids)
    found = db.session.scalars(stmt).one_or_none()
    if found is None or found.purged_at is not None or not may_view(role, found.owner_kind):
        return None
    if found.archived_at is not None and not include_archived:
        return None
    return found


def child_id_of(attachment: Attachment) -> int | None:
    """The child a document is about (for the audit line and the consent rule), if any."""
    if attachment.owner_kind == "child":
        return attachment.owner_id
    model = {"visit": Visit, "case": Case}.get(attachment.owner_kind)
    if model is None:
        owner = db.session.get(attachment_owners().get(attachment.owner_kind, Child), attachment.owner_id)
        return getattr(owner, "child_id", None)
    return db.session.scalar(select(model.child_id).where(model.id == attachment.owner_id))


# --------------------------------------------------------------------------- writing


def save_upload(
    owner, kind, file, *, note: str | None = None, original_name: str | None = None
) -> Attachment:
    """Store one uploaded file on ``owner`` (a row the caller found in the user's scope).

    Raises InvalidInput with a Chinese message; the caller commits. The same bytes sent again to the
    same owner return the attachment already kept.
    """
    owner_kind = owner_kind_of(owner)
    spec = owner_spec(owner_kind)
    try:
        kind = K(kind)
    except ValueError:
        raise InvalidInput("请选择附件类别") from None
    if kind not in spec.kinds:
        raise InvalidInput(f"{spec.label}不能上传“{kind.label}”类附件")
    data, sent_name = read_upload(file)
    digest = hashlib.sha256(data).hexdigest()
    existing = db.session.scalar(
        select(Attachment).where(
            Attachment.owner_kind == owner_kind,
            Attachment.owner_id == owner.id,
            Attachment.source_sha256 == digest,
            Attachment.archived_at.is_(None),
            Attachment.purged_at.is_(None),
        )
    )
    if existing is not None:
        return existing
    result = process(data)
    session = db.session
    key = storage.new_key()
    storage.put_in_transaction(session, key, result.data, result.content_type)
    thumb_key = None
    if result.thumb is not None:
        thumb_key = key + "-t"
        storage.put_in_transaction(session, thumb_key, result.thumb, "image/jpeg")
    attachment = Attachment(
        owner_kind=owner_kind,
        owner_id=owner.id,
        kind=kind.value,
        content_type=result.content_type,
        original_name=clean_name(original_name or sent_name, result.extension),
        note=(note or "").strip()[:200] or None,
        size=len(result.data),
        width=result.width,
        height=result.height,
        storage_key=key,
        thumb_key=thumb_key,
        source_sha256=digest,
        uploaded_by_id=audit.current_actor().user_id,
        uploaded_at=utcnow(),
    )
    session.add(attachment)
    session.flush()
    return attachment


def archive(attachment: Attachment, reason: str) -> None:
    """删除 in the UI: the attachment leaves the lists but is kept (and can be restored)."""
    if attachment.archived_at is not None:
        raise InvalidInput("该附件已删除")
    reason = (reason or "").strip()
    audit.label_next_change(db.session, attachment, "archive")
    attachment.archived_at = utcnow()
    attachment.archived_by_id = audit.current_actor().user_id
    attachment.archive_reason = reason[:200] or "（未填写原因）"


def restore(attachment: Attachment) -> None:
    if attachment.archived_at is None:
        raise InvalidInput("该附件未删除")
    audit.label_next_change(db.session, attachment, "restore")
    attachment.archived_at = None
    attachment.archived_by_id = None
    attachment.archive_reason = None


def move_owner(owner_kind: str, from_id: int, to_id: int) -> int:
    """Hang every attachment of one owner on another (merging two records of one child)."""
    return db.session.execute(
        update(Attachment)
        .where(Attachment.owner_kind == owner_kind, Attachment.owner_id == from_id)
        .values(owner_id=to_id)
    ).rowcount


def purge(attachments) -> int:
    """Delete attachments for good: the rows now, the stored bytes once the transaction commits."""
    keys = []
    count = 0
    for attachment in attachments:
        keys.extend(k for k in (attachment.storage_key, attachment.thumb_key) if k)
        db.session.delete(attachment)
        count += 1
    storage.delete_after_commit(db.session, keys)
    return count


def record_read(attachment: Attachment, action: str) -> None:
    """Log a view or download of an original (thumbnails are shown inside pages that log themselves)."""
    child_id = child_id_of(attachment)
    who = ""
    if child_id is not None:
        who = db.session.scalar(select(Child.name).where(Child.id == child_id)) or ""
    verb = "下载" if action == "download" else "查看"
    audit.record(
        db.session,
        action,
        table="attachment",
        record_id=attachment.id,
        summary=f"{verb}附件：{who + ' ' if who else ''}{K.label_of(attachment.kind)} {attachment.original_name}",
        changes={"child_id": child_id} if child_id is not None else None,
    )


# --------------------------------------------------------------------------- leaving the system


def subjects(items) -> dict[int, set[int]]:
    """Attachment id → the children it may show: the child itself, a visit's or case's child, an
    expense's child, and for an activity everyone who signed in as a child (nobody tags faces)."""
    from models import Attendance, Expense

    items = list(items)
    by_kind: dict[str, set[int]] = {}
    for a in items:
        by_kind.setdefault(a.owner_kind, set()).add(a.owner_id)
    children_of: dict[tuple[str, int], set[int]] = {}
    queries = {
        "visit": lambda ids: select(Visit.id, Visit.child_id).where(Visit.id.in_(ids)),
        "case": lambda ids: select(Case.id, Case.child_id).where(Case.id.in_(ids)),
        "expense": lambda ids: select(Expense.id, Expense.child_id).where(Expense.id.in_(ids)),
        "activity": lambda ids: select(Attendance.activity_id, Attendance.child_id).where(
            Attendance.activity_id.in_(ids), Attendance.child_id.is_not(None)
        ),
    }
    for kind, ids in by_kind.items():
        if kind == "child":
            for owner_id in ids:
                children_of[(kind, owner_id)] = {owner_id}
            continue
        model = attachment_owners().get(kind)
        query = queries.get(kind)
        if query is None and model is not None and hasattr(model, "child_id"):
            query = lambda ids, model=model: select(model.id, model.child_id).where(model.id.in_(ids))  # noqa: E731
        if query is None:
            continue
        id_list = list(ids)
        for start in range(0, len(id_list), 900):
            for owner_id, child_id in db.session.execute(query(id_list[start : start + 900])):
                if child_id is not None:
                    children_of.setdefault((kind, owner_id), set()).add(child_id)
    return {a.id: children_of.get((a.owner_kind, a.owner_id), set()) for a in items}


def exportable(items) -> list[Attachment]:
    """THE gate for every export, report and pack that carries attachments out of the system.

    - identity documents (户口本, 身份证, 残疾证, 低保/特困证明) never leave;
    - a photo (any kind that is not a paper record) leaves only if 照片使用与宣传 consent stands for
      every child it may show (services/consent.py); missing or withdrawn, it stays;
    - archived or purged attachments never leave.
    Paper records (signed forms, sign-in scans, vouchers) are not pictures of people and pass.
    """
    from choices import ConsentScope
    from services.consent import consented_children

    items = [a for a in items if a.archived_at is None and a.purged_at is None]
    photos = [a for a in items if K(a.kind) not in DOCUMENT_KINDS]
    shown = subjects(photos)
    everyone = set().union(*shown.values()) if shown else set()
    consented = consented_children(ConsentScope.PHOTOS.value, everyone) if everyone else set()
    result = []
    for a in items:
        kind = K(a.kind)
        if kind in IDENTITY_DOCUMENTS:
            continue
        if kind not in DOCUMENT_KINDS and not shown.get(a.id, set()) <= consented:
            continue
        result.append(a)
    return result


def exportable_photos(owner_kind: str, owner_ids) -> list[Attachment]:
    """The attachments of these owners that may leave the system (see ``exportable``)."""
    return exportable(listed(owner_kind, owner_ids))


# --------------------------------------------------------------------------- reading lists


def listed(owner_kind: str, owner_ids, *, archived: bool = False) -> list[Attachment]:
    """Attachments of these owners, newest first (the caller has scoped the owners)."""
    ids = list(owner_ids)
    if not ids:
        return []
    condition = Attachment.archived_at.is_not(None) if archived else Attachment.archived_at.is_(None)
    return list(
        db.session.scalars(
            select(Attachment)
            .where(
                Attachment.owner_kind == owner_kind,
                Attachment.owner_id.in_(ids),
                condition,
                Attachment.purged_at.is_(None),
            )
            .order_by(Attachment.uploaded_at.desc(), Attachment.id.desc())
        )
    )


def _of_child_clause(child_id: int):
    visits = select(Visit.id).where(Visit.child_id == child_id)
    cases = select(Case.id).where(Case.child_id == child_id)
    return (
        ((Attachment.owner_kind == "child") & (Attachment.owner_id == child_id))
        | ((Attachment.owner_kind == "visit") & Attachment.owner_id.in_(visits))
        | ((Attachment.owner_kind == "case") & Attachment.owner_id.in_(cases))
    )


def of_child(child_id: int) -> list[Attachment]:
    """Everything kept about one child: its own documents, its visits' photos, its cases' materials."""
    return list(
        db.session.scalars(
            select(Attachment)
            .where(
                _of_child_clause(child_id), Attachment.archived_at.is_(None), Attachment.purged_at.is_(None)
            )
            .order_by(Attachment.uploaded_at.desc(), Attachment.id.desc())
        )
    )


def tiles_of_child(child_id: int) -> list:
    """The same, as plain rows with what a thumbnail grid shows (a dossier may hold hundreds)."""
    return db.session.execute(
        select(
            Attachment.id,
            Attachment.owner_kind,
            Attachment.kind,
            Attachment.original_name,
            Attachment.size,
            Attachment.uploaded_at,
            Attachment.thumb_key,
        )
        .where(_of_child_clause(child_id), Attachment.archived_at.is_(None), Attachment.purged_at.is_(None))
        .order_by(Attachment.uploaded_at.desc(), Attachment.id.desc())
    ).all()


def verify(store) -> dict:
    """Rows whose stored files are missing, and stored files no row points at (after a restore)."""
    referenced: dict[str, int] = {}
    rows = 0
    for attachment_id, key, thumb in db.session.execute(
        select(Attachment.id, Attachment.storage_key, Attachment.thumb_key).where(
            Attachment.purged_at.is_(None)
        )
    ):
        rows += 1
        referenced[key] = attachment_id
        if thumb:
            referenced[thumb] = attachment_id
    present = set(store.keys())
    missing = sorted((attachment_id, key) for key, attachment_id in referenced.items() if key not in present)
    return {"rows": rows, "missing": missing, "orphans": len(present - referenced.keys())}


def kind_choices(owner_kind: str) -> list[tuple[str, str]]:
    return [(k.value, k.label) for k in owner_spec(owner_kind).kinds]


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:.1f} MB"
    return f"{max(size // 1024, 1)} KB"


__all__ = [
    "ACCEPT",
    "DOCUMENT_KINDS",
    "exportable",
    "exportable_photos",
    "subjects",
    "IDENTITY_DOCUMENTS",
    "MAX_BYTES",
    "OWNERS",
    "archive",
    "find",
    "find_owner",
    "listed",
    "may_attach",
    "may_view",
    "move_owner",
    "of_child",
    "process",
    "purge",
    "record_read",
    "register_owner",
    "restore",
    "save_upload",
    "sniff",
]
