"""SQLAlchemy 2 models. No request or UI code lives here.

Every table that belongs to a village answers ``village_clause(ids)``: the one SQL condition that
scoping (services/scoping.py) applies on every path.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from pypinyin import Style, lazy_pinyin
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    or_,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, relationship, validates

from choices import (
    ActivityKind,
    AlertStatus,
    AssessmentStatus,
    CaseStage,
    CaseType,
    ChildStatus,
    ExpenseStatus,
    GuardianStatus,
    Level,
    MeasureSource,
    Relation,
    Role,
    ServiceStatus,
    VillageKind,
)


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)

MONEY = Numeric(12, 2)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def localnow() -> dt.datetime:
    """The server's real wall-clock time (naive), for change stamps the 141 feed's ``since`` reads."""
    return dt.datetime.now()


class Versioned:
    """Records two people may edit carry a counter; a stale save is refused (see views/base.py)."""

    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    @declared_attr.directive
    def __mapper_args__(cls):
        return {"version_id_col": cls.__table__.c.version}


class VillageOwned:
    """A row that carries its own village_id."""

    @classmethod
    def village_clause(cls, village_ids):
        return cls.village_id.in_(village_ids)


class ChildOwned:
    """A row that belongs to a village through its child."""

    @classmethod
    def village_clause(cls, village_ids):
        return cls.child_id.in_(select(Child.id).where(Child.village_id.in_(village_ids)))

    @classmethod
    def village_clause_per_row(cls, village_ids):
        """The same condition, tested row by row through the child's primary key.

        For queries whose other filters already pick few rows (awaiting review, the first rows by
        date): the database starts from those rows instead of from every child of the villages.
        """
        return select(Child.village_id).where(Child.id == cls.child_id).scalar_subquery().in_(village_ids)


# --------------------------------------------------------------------------- register


class Village(db.Model):
    __tablename__ = "village"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default=VillageKind.VILLAGE.value)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    lon: Mapped[float | None]
    lat: Mapped[float | None]
    boundary: Mapped[str | None] = mapped_column(Text, doc="GeoJSON geometry")
    sort_order: Mapped[int] = mapped_column(default=0)

    @classmethod
    def village_clause(cls, village_ids):
        return cls.id.in_(village_ids)

    def __str__(self) -> str:
        return self.name


class Staff(VillageOwned, Versioned, db.Model):
    __tablename__ = "staff"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), index=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    village_id: Mapped[int | None] = mapped_column(ForeignKey("village.id"), index=True)
    village: Mapped[Village | None] = relationship()
    organisation: Mapped[str | None] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Filled from the name; the attendance roll finds staff by pinyin.
    name_pinyin: Mapped[str] = mapped_column(String(200), default="")
    name_initials: Mapped[str] = mapped_column(String(50), default="")

    @validates("name")
    def _set_name_keys(self, key, value):
        value = (value or "").strip()
        self.name_pinyin, self.name_initials = pinyin_keys(value)
        return value

    @classmethod
    def village_clause(cls, village_ids):
        # Town-level staff (no village) serve every village and are visible to all.
        return cls.village_id.in_(village_ids) | cls.village_id.is_(None)

    def __str__(self) -> str:
        return self.name


user_village = Table(
    "user_village",
    db.Model.metadata,
    Column("user_id", ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True),
    Column("village_id", ForeignKey("village.id", ondelete="CASCADE"), primary_key=True),
)


class User(UserMixin, db.Model):
    __tablename__ = "user_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(50), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(50))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    village_id: Mapped[int | None] = mapped_column(ForeignKey("village.id"))
    village: Mapped[Village | None] = relationship(foreign_keys=[village_id])
    assigned_villages: Mapped[list[Village]] = relationship(secondary=user_village)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    staff: Mapped[Staff | None] = relationship()
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[dt.datetime | None]
    session_epoch: Mapped[int] = mapped_column(default=0)
    last_login_at: Mapped[dt.datetime | None]
    # When five wrong passwords last locked the account: told to its owner at the next login
    # (if later than last_login_at) and shown to admins, never to whoever is typing at the login page.
    last_locked_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @property
    def is_active(self) -> bool:  # Flask-Login: a disabled account cannot log in or stay logged in
        return bool(self.active)

    def get_id(self) -> str:
        # Changing the password or disabling the account bumps the epoch and ends old sessions.
        return f"{self.id}:{self.session_epoch}"

    def village_scope(self) -> list[int] | None:
        """The villages this account may see; None means every village."""
        if self.role == Role.DIRECTOR:
            return [self.village_id] if self.village_id else []
        if self.role == Role.SOCIAL:
            return [v.id for v in self.assigned_villages]
        if self.role in (Role.ADMIN, Role.CLERK, Role.SUPERVISOR, Role.INSPECTOR):
            return None
        return []

    def __str__(self) -> str:
        return self.display_name or self.username


class UserSession(db.Model):
    """One login on one device. The cookie carries a random id whose hash is here: logging out ends
    this row, so a replayed cookie is no longer logged in, while the account's other devices stay."""

    __tablename__ = "user_session"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[dt.datetime | None]
    ip: Mapped[str | None] = mapped_column(String(45))


class Lease(db.Model):
    """A named job that must run once at a time across threads and processes (the alert rule run):
    whoever holds an unexpired row runs it; a crashed holder's lease lapses at ``expires_at``."""

    __tablename__ = "lease"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    acquired_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]


class Category(db.Model):
    """Child categories (社会散居孤儿 …): seeded rows, several may apply to one child."""

    __tablename__ = "category"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    sort_order: Mapped[int] = mapped_column(default=0)

    def __str__(self) -> str:
        return self.name


child_category = Table(
    "child_category",
    db.Model.metadata,
    Column("child_id", ForeignKey("child.id", ondelete="CASCADE"), primary_key=True),
    Column("category_id", ForeignKey("category.id"), primary_key=True, index=True),
)


COMPOUND_SURNAMES = (
    "欧阳",
    "司马",
    "诸葛",
    "上官",
    "东方",
    "皇甫",
    "尉迟",
    "公孙",
    "慕容",
    "长孙",
    "宇文",
    "司徒",
    "夏侯",
    "令狐",
    "端木",
    "南宫",
)


def given_name(name: str) -> str:
    """The name without its surname (张小明 → 小明, 欧阳晓琳 → 晓琳), so 小明 finds 张小明 by index."""
    name = (name or "").strip()
    return name[2:] if name[:2] in COMPOUND_SURNAMES else name[1:]


def pinyin_keys(name: str) -> tuple[str, str]:
    """Full pinyin and initials of a Chinese name: 张小明 → ("zhangxiaoming", "zxm")."""
    syllables = lazy_pinyin(name or "", errors="default")
    initials = lazy_pinyin(name or "", style=Style.FIRST_LETTER, errors="default")
    return "".join(syllables).lower(), "".join(initials).lower()


class Child(VillageOwned, Versioned, db.Model):
    __tablename__ = "child"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), index=True)
    name_pinyin: Mapped[str] = mapped_column(String(200), index=True, default="")
    name_initials: Mapped[str] = mapped_column(String(50), index=True, default="")
    name_given: Mapped[str] = mapped_column(String(50), index=True, default="", doc="name without surname")
    gender: Mapped[str] = mapped_column(String(1))
    id_number: Mapped[str] = mapped_column(String(18), unique=True)
    id_last4: Mapped[str] = mapped_column(String(4), index=True, default="")
    # 档案编号 town-village-year-sequence (services/file_numbers.py), given at registration, kept for
    # life (a transfer or merge does not renumber) and never given to another child.
    file_no: Mapped[str] = mapped_column(String(40), unique=True, index=True)
    birth_date: Mapped[dt.date] = mapped_column(Date)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"), index=True)
    village: Mapped[Village] = relationship()
    address: Mapped[str | None] = mapped_column(String(200))
    school: Mapped[str | None] = mapped_column(String(100))
    grade: Mapped[str | None] = mapped_column(String(30))
    categories: Mapped[list[Category]] = relationship(secondary=child_category)
    disability_kind: Mapped[str | None] = mapped_column(String(30))
    disability_grade: Mapped[str | None] = mapped_column(String(10))
    identification_source: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=ChildStatus.ACTIVE.value, index=True)
    # 登记日期: the day the child entered the register (a ledger import keeps the ledger's date), as
    # distinct from created_at, when the row was written. Filled with today (services/register.py on
    # the clock of services/clock.py) when left empty; the column default serves bare bulk inserts.
    registered_on: Mapped[dt.date] = mapped_column(Date, default=dt.date.today)
    archived_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    archive_reason: Mapped[str | None] = mapped_column(String(200))
    # When the child was last archived or restored (ChildStatusChange holds every change): a state on
    # an earlier date needs the history only for children changed since.
    status_changed_at: Mapped[dt.datetime | None]
    # Derived from the latest approved assessment; indexed for the dashboard, map and rules.
    current_level: Mapped[str | None] = mapped_column(String(16), index=True)
    level_assessed_on: Mapped[dt.date | None]
    next_visit_due: Mapped[dt.date | None] = mapped_column(index=True)
    next_assessment_due: Mapped[dt.date | None]
    # Derived: address, a guardian and a category on file (services/filing.py writes it, nothing else).
    file_complete: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Derived: a 建档与评估 consent stands now (services/consent.py writes it, nothing else).
    filing_consent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Set when the file's personal data was removed at the end of its retention (services/retention.py).
    anonymised_at: Mapped[dt.datetime | None]
    director_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    director: Mapped[Staff | None] = relationship(foreign_keys=[director_id])
    caring_mother_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    caring_mother: Mapped[Staff | None] = relationship(foreign_keys=[caring_mother_id])
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    guardian_links: Mapped[list[ChildGuardian]] = relationship(
        back_populates="child", cascade="all, delete-orphan"
    )

    __table_args__ = (
        Index("ix_child_village_status", "village_id", "archived_at"),
        # reassessment due: the alert rule's range and the 工作台's overdue count, answered from the index
        Index("ix_child_assessment_due", "next_assessment_due", "archived_at"),
    )

    @validates("name")
    def _set_name(self, key, value):
        value = (value or "").strip()
        self.name_pinyin, self.name_initials = pinyin_keys(value)
        self.name_given = given_name(value)
        return value

    @validates("id_number")
    def _set_id_number(self, key, value):
        value = (value or "").strip().upper()
        self.id_last4 = value[-4:]
        return value

    @property
    def age(self) -> int | None:
        if not self.birth_date:
            return None
        today = dt.date.today()
        b = self.birth_date
        return today.year - b.year - ((today.month, today.day) < (b.month, b.day))

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    @property
    def level(self) -> Level | None:
        return Level(self.current_level) if self.current_level else None

    def __str__(self) -> str:
        return self.name


class FileCounter(db.Model):
    """The last 档案编号 sequence given in one village and year; only ever counts up."""

    __tablename__ = "file_counter"
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    last: Mapped[int] = mapped_column(default=0)


class Guardian(VillageOwned, Versioned, db.Model):
    __tablename__ = "guardian"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), index=True)
    # Filled from the name (see _trim_name); the attendance roll finds guardians by pinyin.
    name_pinyin: Mapped[str] = mapped_column(String(200), default="")
    name_initials: Mapped[str] = mapped_column(String(50), default="")
    gender: Mapped[str | None] = mapped_column(String(1))
    id_number: Mapped[str | None] = mapped_column(String(18), unique=True)
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    status: Mapped[str] = mapped_column(String(16), default=GuardianStatus.NORMAL.value)
    status_changed_on: Mapped[dt.date | None]
    low_income: Mapped[bool] = mapped_column(Boolean, default=False)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"), index=True)
    village: Mapped[Village] = relationship()
    address: Mapped[str | None] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)

    child_links: Mapped[list[ChildGuardian]] = relationship(back_populates="guardian")

    @validates("name")
    def _trim_name(self, key, value):
        value = (value or "").strip()
        self.name_pinyin, self.name_initials = pinyin_keys(value)
        return value

    def __str__(self) -> str:
        return self.name


class ChildGuardian(ChildOwned, db.Model):
    """The link child↔guardian; one guardian may be linked to several children (siblings)."""

    __tablename__ = "child_guardian"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    child: Mapped[Child] = relationship(back_populates="guardian_links")
    guardian_id: Mapped[int] = mapped_column(ForeignKey("guardian.id"), index=True)
    guardian: Mapped[Guardian] = relationship(back_populates="child_links")
    relation: Mapped[str] = mapped_column(String(16), default=Relation.MOTHER.value)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (UniqueConstraint("child_id", "guardian_id"),)

    def __str__(self) -> str:
        return f"{self.guardian} ({Relation.label_of(self.relation)})"


class ChildStatusChange(ChildOwned, db.Model):
    """One archive or restore of a child: the register's history (在册 on a past date is read from it).

    An archive records what it cancelled and closed, so a restore can say what did not come back.
    """

    __tablename__ = "child_status_change"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime]  # local wall-clock time (services.clock.now), as alerts and case events
    status: Mapped[str] = mapped_column(String(16), doc="the status it changed to (active: restored)")
    reason: Mapped[str | None] = mapped_column(String(200))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    measures_cancelled: Mapped[int] = mapped_column(default=0)
    alerts_closed: Mapped[int] = mapped_column(default=0)

    __table_args__ = (Index("ix_child_status_change_child_at", "child_id", "at"),)


class AuditLog(db.Model):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    username: Mapped[str | None] = mapped_column(String(50))
    ip: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16), index=True)
    table_name: Mapped[str | None] = mapped_column(String(50))
    record_id: Mapped[int | None] = mapped_column(Integer)
    record_version: Mapped[int | None] = mapped_column(Integer)
    changes: Mapped[dict | None] = mapped_column(JSON)
    summary: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (Index("ix_audit_record", "table_name", "record_id"),)


class Setting(db.Model):
    """Town-wide settings an admin can change (town name, thresholds of the fund checks …)."""

    __tablename__ = "setting"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(String(100))


# --------------------------------------------------------------------------- assessment


class RuleVersion(db.Model):
    """A frozen copy of the scoring rules; each assessment points at the version it was scored under."""

    __tablename__ = "rule_version"
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    snapshot: Mapped[dict] = mapped_column(JSON)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)


class IndicatorGroup(db.Model):
    __tablename__ = "indicator_group"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    sort_order: Mapped[int] = mapped_column(default=0)
    indicators: Mapped[list[Indicator]] = relationship(
        back_populates="group", order_by="Indicator.sort_order"
    )

    def __str__(self) -> str:
        return self.name


class Indicator(db.Model):
    __tablename__ = "indicator"
    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("indicator_group.id"))
    group: Mapped[IndicatorGroup] = relationship(back_populates="indicators")
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(50))
    label_3: Mapped[str] = mapped_column(String(200), default="良好")
    label_2: Mapped[str] = mapped_column(String(200), default="一般")
    label_1: Mapped[str] = mapped_column(String(200), default="较差")
    label_0: Mapped[str] = mapped_column(String(200), default="严重问题")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(default=0)

    def __str__(self) -> str:
        return self.name


class VetoItem(db.Model):
    __tablename__ = "veto_item"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(default=0)

    def __str__(self) -> str:
        return self.name


class LevelRule(db.Model):
    """Per level: the lowest total that still reaches it, the visit and reassessment intervals, and
    the days from approval within which the level's tiered measures are due (none for green)."""

    __tablename__ = "level_rule"
    level: Mapped[str] = mapped_column(String(16), primary_key=True)
    min_score: Mapped[int]
    visit_days: Mapped[int]
    reassess_days: Mapped[int]
    measure_days: Mapped[int | None]

    def __str__(self) -> str:
        return Level.label_of(self.level)


assessment_team = Table(
    "assessment_team",
    db.Model.metadata,
    Column("assessment_id", ForeignKey("assessment.id", ondelete="CASCADE"), primary_key=True),
    Column("staff_id", ForeignKey("staff.id"), primary_key=True),
)


class Assessment(ChildOwned, Versioned, db.Model):
    __tablename__ = "assessment"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id"), index=True)
    child: Mapped[Child] = relationship()
    assessed_on: Mapped[dt.date] = mapped_column(Date, index=True)
    methods: Mapped[list] = mapped_column(JSON, default=list)
    team: Mapped[list[Staff]] = relationship(secondary=assessment_team)
    scores: Mapped[dict] = mapped_column(JSON, default=dict, doc="indicator code → 0..3")
    vetoes: Mapped[list] = mapped_column(JSON, default=list, doc="veto item codes that apply")
    total_score: Mapped[int] = mapped_column(default=0)
    computed_level: Mapped[str] = mapped_column(String(16))
    override_level: Mapped[str | None] = mapped_column(String(16))
    override_reason: Mapped[str | None] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(16), index=True)
    worsened: Mapped[bool] = mapped_column(Boolean, default=False)
    rule_version_id: Mapped[int] = mapped_column(ForeignKey("rule_version.id"))
    rule_version: Mapped[RuleVersion] = relationship()
    notes: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=AssessmentStatus.DRAFT.value, index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id])
    reviewed_at: Mapped[dt.datetime | None]
    review_note: Mapped[str | None] = mapped_column(Text, doc="the reviewer's reason when returning it")
    next_reassess_on: Mapped[dt.date | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_assessment_child_status_date", "child_id", "status", "assessed_on"),
        # The reviewers' queue: few rows of one status, oldest first.
        Index("ix_assessment_status_date", "status", "assessed_on"),
    )


class SupportService(VillageOwned, Versioned, db.Model):
    __tablename__ = "support_service"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id"), index=True)
    child: Mapped[Child] = relationship()
    # The child's village, kept on the row (as alerts keep theirs): filled from the child when the row
    # is added and moved with the child (services/follow_child.py), so the measures' figures and lists
    # count a village's measures from one index without reading every child.
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"))
    guardian_id: Mapped[int | None] = mapped_column(ForeignKey("guardian.id"))
    guardian: Mapped[Guardian | None] = relationship()
    tier: Mapped[str | None] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default=ServiceStatus.PLANNED.value, index=True)
    due_on: Mapped[dt.date | None] = mapped_column(index=True)
    delivered_on: Mapped[dt.date | None]
    # When and why a planned measure was cancelled (archiving the child cancels its planned measures).
    cancelled_at: Mapped[dt.datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(String(200))
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    provider: Mapped[Staff | None] = relationship()
    duration_minutes: Mapped[int | None]
    content: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(Text)
    assessment_id: Mapped[int | None] = mapped_column(ForeignKey("assessment.id"))
    assessment: Mapped[Assessment | None] = relationship()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        # The dashboard: overdue measures (status, due date) and the delivery rate (from the index alone).
        Index("ix_support_service_status_due", "status", "due_on"),
        Index("ix_support_service_due_delivery", "due_on", "status", "delivered_on", "child_id"),
        # … and the same for one village's children, read child by child.
        Index("ix_support_service_child_due", "child_id", "status", "due_on", "delivered_on"),
        # The measures due in a period, by village, from the index alone (工作台, reports).
        Index(
            "ix_support_service_village_due",
            "village_id",
            "due_on",
            "status",
            "delivered_on",
            "cancelled_at",
        ),
    )


# Covering indexes for the risk map and the dashboard, which count every child by village and level
# and by its due dates: answered from the index alone, without reading the child rows.
Index(
    "ix_child_level_dues",
    Child.archived_at,
    Child.village_id,
    Child.current_level,
    Child.level_assessed_on,
    Child.next_assessment_due,
    Child.next_visit_due,
    Child.file_complete,
    Child.registered_on,
    # … and the consent figures (under 14 without a standing 建档与评估 consent) from the same entries
    Child.birth_date,
    Child.filing_consent,
)
# Reassessments overdue now (the 工作台's count and list, the alert rule's range): the children on the
# register by due date, with the registration date, from the index alone. Partial — only children not
# archived — so no query about another moment can pick it (as the registration date did in
# ix_child_assessment_due, where SQLite's planner then skip-scanned it for the as-of risk map). A plain
# index of the registration date was tried for the category counts and taken back: on a database
# upgraded without fresh statistics, SQLite chose it for this count (1 s instead of 7 ms).
Index(
    "ix_child_reassess_due",
    Child.next_assessment_due,
    Child.registered_on,
    Child.archived_at,  # (null in every entry) so that the index alone answers: SQLite checks the column
    sqlite_where=Child.archived_at.is_(None),
    postgresql_where=Child.archived_at.is_(None),
)
# One village's visits by date (今日's overdue list and the week's due count, the visit rules): a range
# of 下次走访 within the village, with the level for the order, from the index alone.
Index(
    "ix_child_village_visit_due",
    Child.archived_at,
    Child.village_id,
    Child.next_visit_due,
    Child.current_level,
)
# The level of each child on a past date (as-of map): the latest approved assessment, from the index.
Index(
    "ix_assessment_level_history",
    Assessment.child_id,
    Assessment.status,
    Assessment.assessed_on,
    Assessment.id,
    Assessment.level,
)


# --------------------------------------------------------------------------- supervision

visit_staff = Table(
    "visit_staff",
    db.Model.metadata,
    Column("visit_id", ForeignKey("visit.id", ondelete="CASCADE"), primary_key=True),
    Column("staff_id", ForeignKey("staff.id"), primary_key=True),
)


class Visit(ChildOwned, Versioned, db.Model):
    __tablename__ = "visit"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id"))
    child: Mapped[Child] = relationship()
    visited_on: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))
    visitors: Mapped[list[Staff]] = relationship(secondary=visit_staff)
    # 是/否 answers of the checklist: None is "not answered" (no default stands in for an answer;
    # services/visits.py refuses a visit with any of them unanswered).
    child_seen: Mapped[bool | None] = mapped_column(Boolean)
    guardian_present: Mapped[bool | None] = mapped_column(Boolean)
    living_ok: Mapped[bool | None] = mapped_column(Boolean)
    school_ok: Mapped[bool | None] = mapped_column(Boolean)
    harm_signs: Mapped[bool | None] = mapped_column(Boolean)
    risk_found: Mapped[bool | None] = mapped_column(Boolean)
    risk_note: Mapped[str | None] = mapped_column(Text, doc="what the risk is, required with 发现风险")
    notes: Mapped[str | None] = mapped_column(Text)
    next_due: Mapped[dt.date | None]
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Local wall-clock times: when the visit was recorded (on the phone, maybe offline) and when it
    # reached the server. A visit queued offline keeps its recorded time; the gap is the delay.
    recorded_at: Mapped[dt.datetime | None]
    received_at: Mapped[dt.datetime | None]
    offline: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), doc="queued offline"
    )
    # The phone's id of a visit sent through the offline queue: the same visit sent twice writes once.
    client_uuid: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (
        Index("ix_visit_child_date", "child_id", "visited_on"),
        UniqueConstraint("client_uuid", name="uq_visit_client_uuid"),
    )


class SyncReceipt(db.Model):
    """One item of a phone's offline queue that the server has taken (services/sync.py).

    The phone makes ``client_uuid``; the database refuses a second receipt for it, so an item sent
    twice (a retry after a lost answer, a replayed queue) is written once and answered from here.
    """

    __tablename__ = "sync_receipt"
    id: Mapped[int] = mapped_column(primary_key=True)
    client_uuid: Mapped[str] = mapped_column(String(36), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), doc="visit | attendance")
    record_id: Mapped[int | None] = mapped_column(Integer, doc="the visit, or the activity of the ticks")
    recorded_at: Mapped[dt.datetime]  # local wall-clock time on the phone
    received_at: Mapped[dt.datetime]  # local wall-clock time on the server
    summary: Mapped[str | None] = mapped_column(String(200))


class MandatoryReport(VillageOwned, Versioned, db.Model):
    __tablename__ = "mandatory_report"
    id: Mapped[int] = mapped_column(primary_key=True)
    reporter_kind: Mapped[str] = mapped_column(String(16))
    reporter_name: Mapped[str | None] = mapped_column(String(50))
    reporter_phone: Mapped[str | None] = mapped_column(String(20))
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[dt.datetime] = mapped_column(index=True)
    child_id: Mapped[int | None] = mapped_column(ForeignKey("child.id"), index=True)
    child: Mapped[Child | None] = relationship()
    child_description: Mapped[str | None] = mapped_column(Text)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"), index=True)
    village: Mapped[Village] = relationship()
    situation: Mapped[str] = mapped_column(Text)
    urgency: Mapped[str] = mapped_column(String(16))
    first_response_at: Mapped[dt.datetime | None]
    first_response_note: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(16))
    outcome_note: Mapped[str | None] = mapped_column(Text)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))


class Alert(VillageOwned, Versioned, db.Model):
    __tablename__ = "alert"
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str | None] = mapped_column(String(40), index=True)
    # Identifies the condition (rule + subject); at most one open alert per key.
    condition_key: Mapped[str | None] = mapped_column(String(120), index=True)
    severity: Mapped[str] = mapped_column(String(16), index=True)
    child_id: Mapped[int | None] = mapped_column(ForeignKey("child.id"), index=True)
    child: Mapped[Child | None] = relationship()
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"), index=True)
    village: Mapped[Village] = relationship()
    title: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str | None] = mapped_column(Text)
    raised_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    deadline: Mapped[dt.datetime] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(16), default=AlertStatus.OPEN.value, index=True)
    handler_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    handler: Mapped[User | None] = relationship()
    ticket_141: Mapped[str | None] = mapped_column(String(50))
    closed_at: Mapped[dt.datetime | None]
    result: Mapped[str | None] = mapped_column(Text)
    condition_cleared_at: Mapped[dt.datetime | None]
    # How a done alert was closed: handled, or withdrawn because its child was archived (AlertClosure).
    closure: Mapped[str | None] = mapped_column(String(16))
    report_id: Mapped[int | None] = mapped_column(ForeignKey("mandatory_report.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case_file.id"))
    # Every change of the row (the 141 feed's ``since``); bulk updates set it themselves.
    updated_at: Mapped[dt.datetime] = mapped_column(default=localnow, onupdate=localnow)

    __table_args__ = (
        # The database itself refuses a second open alert for one condition (two concurrent runs).
        Index(
            "uq_alert_open_condition",
            "condition_key",
            unique=True,
            sqlite_where=text("status != 'done'"),
            postgresql_where=text("status != 'done'"),
        ),
        # Covering indexes for the alert centre's counts by status and severity (town-wide and per village).
        Index("ix_alert_status_severity", "status", "severity"),
        Index("ix_alert_village_status_severity", "village_id", "status", "severity"),
        # by village and deadline, with what the on-time figure reads of each alert (from the index alone)
        Index("ix_alert_village_deadline", "village_id", "deadline", "closed_at", "closure"),
        # the alerts open (and overdue) at a moment, by village (from the index alone)
        Index("ix_alert_village_open", "village_id", "raised_at", "deadline", "status", "closed_at"),
        Index("ix_alert_severity_deadline", "severity", "deadline"),
        # a handler's open alerts, soonest deadline first (我的预警 on the 工作台 and 今日); partial, so
        # that SQLite's statistics weigh the assigned alerts only (unassigned ones read as one huge
        # handler, and its planner then scanned every alert along the deadline index instead)
        Index(
            "ix_alert_handler_open",
            "handler_id",
            "deadline",
            "status",
            sqlite_where=text("handler_id IS NOT NULL"),
            postgresql_where=text("handler_id IS NOT NULL"),
        ),
        # the 141 feed: what changed since a time, in order
        Index("ix_alert_updated", "updated_at", "id"),
    )

    def __str__(self) -> str:
        return self.title


class AlertStep(db.Model):
    __tablename__ = "alert_step"
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    user: Mapped[User | None] = relationship()
    note: Mapped[str] = mapped_column(Text)


class RuleRun(db.Model):
    __tablename__ = "rule_run"
    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    as_of: Mapped[dt.date]
    raised: Mapped[int] = mapped_column(default=0)
    cleared: Mapped[int] = mapped_column(default=0)


class CaseTypeRule(db.Model):
    """Per case type: whether a 会商 must be held before the case enters 介入 (rule data an admin edits)."""

    __tablename__ = "case_type_rule"
    case_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    conference_required: Mapped[bool] = mapped_column(Boolean, default=False)

    def __str__(self) -> str:
        return CaseType.label_of(self.case_type)


class Case(ChildOwned, Versioned, db.Model):
    """A 个案 and its plan (个性化帮扶方案): the goals here, the measures in CaseMeasure rows."""

    __tablename__ = "case_file"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id"), index=True)
    child: Mapped[Child] = relationship()
    case_type: Mapped[str] = mapped_column(String(16))
    opened_on: Mapped[dt.date] = mapped_column(Date)
    reported_to_bureau_on: Mapped[dt.date | None]
    # The 强制报告 the case was opened from (an alert it came from points here through Alert.case_id).
    report_id: Mapped[int | None] = mapped_column(ForeignKey("mandatory_report.id"), index=True)
    report: Mapped[MandatoryReport | None] = relationship()
    stage: Mapped[str] = mapped_column(String(16), default=CaseStage.IDENTIFY.value, index=True)
    stage_changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    plan_goals: Mapped[str | None] = mapped_column(Text)
    professional_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    professional: Mapped[Staff | None] = relationship()
    closure_reason: Mapped[str | None] = mapped_column(Text, doc="a ClosureReason value")
    closing_evaluation: Mapped[str | None] = mapped_column(Text)
    closed_on: Mapped[dt.date | None]
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    events: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", order_by="(CaseEvent.at, CaseEvent.id)", cascade="all, delete-orphan"
    )
    conferences: Mapped[list[CaseConference]] = relationship(
        back_populates="case",
        order_by="[CaseConference.held_on, CaseConference.id]",
        cascade="all, delete-orphan",
    )
    needs: Mapped[CaseNeeds | None] = relationship(back_populates="case", cascade="all, delete-orphan")
    measures: Mapped[list[CaseMeasure]] = relationship(
        back_populates="case", order_by="CaseMeasure.id", cascade="all, delete-orphan"
    )
    services: Mapped[list[CaseService]] = relationship(
        back_populates="case",
        order_by="[CaseService.delivered_on, CaseService.id]",
        cascade="all, delete-orphan",
    )
    follow_ups: Mapped[list[CaseFollowUp]] = relationship(
        back_populates="case",
        order_by="[CaseFollowUp.followed_on, CaseFollowUp.id]",
        cascade="all, delete-orphan",
    )

    __table_args__ = (Index("ix_case_stage_changed", "stage", "stage_changed_at"),)

    def __str__(self) -> str:
        return f"个案 {self.id}"


class CaseEvent(db.Model):
    """The case's log: opening, every stage change (who, when, note), reopening."""

    __tablename__ = "case_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id", ondelete="CASCADE"), index=True)
    case: Mapped[Case] = relationship(back_populates="events")
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    user: Mapped[User | None] = relationship()
    kind: Mapped[str] = mapped_column(String(16), doc="open | stage | note | reopen")
    from_stage: Mapped[str | None] = mapped_column(String(16))
    to_stage: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)


class CaseNeeds(Versioned, db.Model):
    """需求评估 of a case (recorded in 评估): problems by domain, the risk, the child's and the family's
    strengths, and the four-colour assessment it was made beside."""

    __tablename__ = "case_needs"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id", ondelete="CASCADE"), unique=True)
    case: Mapped[Case] = relationship(back_populates="needs")
    assessed_on: Mapped[dt.date] = mapped_column(Date)
    problems: Mapped[dict] = mapped_column(JSON, default=dict, doc="NeedDomain value → the problem found")
    risk_rating: Mapped[str] = mapped_column(String(16), doc="a RiskRating value")
    risk: Mapped[str] = mapped_column(Text, doc="the risk to the child, in words")
    child_strengths: Mapped[str] = mapped_column(Text)
    family_strengths: Mapped[str] = mapped_column(Text)
    assessment_id: Mapped[int | None] = mapped_column(ForeignKey("assessment.id"))
    assessment: Mapped[Assessment | None] = relationship()
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    recorded_by: Mapped[User | None] = relationship()
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CaseConference(db.Model):
    """会商: departments, attendees, the problem put to them and their decisions; who does what by
    when are CaseMeasure rows (source 会商决定), so the decisions enter the case's plan."""

    __tablename__ = "case_conference"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id", ondelete="CASCADE"), index=True)
    case: Mapped[Case] = relationship(back_populates="conferences")
    held_on: Mapped[dt.date] = mapped_column(Date)
    departments: Mapped[list] = mapped_column(JSON, default=list)
    attendees: Mapped[str | None] = mapped_column(Text)
    problem: Mapped[str | None] = mapped_column(Text)
    decisions: Mapped[str | None] = mapped_column(Text)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    actions: Mapped[list[CaseMeasure]] = relationship(back_populates="conference", order_by="CaseMeasure.id")


class CaseMeasure(db.Model):
    """One measure of the plan: what is done, by whom, by when; from the plan or a 会商's decisions."""

    __tablename__ = "case_measure"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id", ondelete="CASCADE"), index=True)
    case: Mapped[Case] = relationship(back_populates="measures")
    content: Mapped[str] = mapped_column(Text)
    responsible: Mapped[str | None] = mapped_column(String(100))
    due_on: Mapped[dt.date | None]
    source: Mapped[str] = mapped_column(String(16), default=MeasureSource.PLAN.value)
    conference_id: Mapped[int | None] = mapped_column(
        ForeignKey("case_conference.id", ondelete="CASCADE"), index=True
    )
    conference: Mapped[CaseConference | None] = relationship(back_populates="actions")
    services: Mapped[list[CaseService]] = relationship(back_populates="measure")

    def __str__(self) -> str:
        return self.content


class CaseService(db.Model):
    """服务记录: one delivery of a plan measure (date, who, what was done, how it went)."""

    __tablename__ = "case_service"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id", ondelete="CASCADE"), index=True)
    case: Mapped[Case] = relationship(back_populates="services")
    measure_id: Mapped[int] = mapped_column(ForeignKey("case_measure.id"), index=True)
    measure: Mapped[CaseMeasure] = relationship(back_populates="services")
    delivered_on: Mapped[dt.date] = mapped_column(Date)
    provider: Mapped[str] = mapped_column(String(100))
    content: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(Text)
    duration_minutes: Mapped[int | None]
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CaseFollowUp(db.Model):
    """跟进记录 (in 介入 or 跟踪): when, how, by whom, and what changed for the child."""

    __tablename__ = "case_follow_up"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id", ondelete="CASCADE"), index=True)
    case: Mapped[Case] = relationship(back_populates="follow_ups")
    followed_on: Mapped[dt.date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(16), doc="a FollowUpMethod value")
    followed_by: Mapped[str] = mapped_column(String(100))
    change: Mapped[str] = mapped_column(Text, doc="what changed for the child and family")
    stage: Mapped[str] = mapped_column(String(16), doc="the case's stage when it was recorded")
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# --------------------------------------------------------------------------- activities

activity_village = Table(
    "activity_village",
    db.Model.metadata,
    Column("activity_id", ForeignKey("activity.id", ondelete="CASCADE"), primary_key=True),
    Column("village_id", ForeignKey("village.id"), primary_key=True),
)

activity_lecturer = Table(
    "activity_lecturer",
    db.Model.metadata,
    Column("activity_id", ForeignKey("activity.id", ondelete="CASCADE"), primary_key=True),
    Column("staff_id", ForeignKey("staff.id"), primary_key=True),
)


class Activity(Versioned, db.Model):
    __tablename__ = "activity"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default=ActivityKind.OTHER.value)
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime | None]
    place: Mapped[str | None] = mapped_column(String(200))
    organiser: Mapped[str | None] = mapped_column(String(100))
    lecturers: Mapped[list[Staff]] = relationship(secondary=activity_lecturer)
    audience: Mapped[list] = mapped_column(JSON, default=list, doc="Audience values")
    # For 工作人员 audiences: which kinds of staff the activity is for (empty: every kind).
    staff_kinds: Mapped[list] = mapped_column(JSON, default=list, doc="StaffKind values")
    villages: Mapped[list[Village]] = relationship(secondary=activity_village)
    capacity: Mapped[int | None]
    budget: Mapped[Decimal | None] = mapped_column(MONEY)
    description: Mapped[str | None] = mapped_column(Text)

    @classmethod
    def village_clause(cls, village_ids):
        # Town-wide activities (no village) are everybody's; others belong to their villages.
        return ~cls.villages.any() | cls.villages.any(Village.id.in_(village_ids))

    def __str__(self) -> str:
        return self.title


class Attendance(db.Model):
    __tablename__ = "attendance"
    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activity.id", ondelete="CASCADE"), index=True)
    activity: Mapped[Activity] = relationship()
    child_id: Mapped[int | None] = mapped_column(ForeignKey("child.id"), index=True)
    child: Mapped[Child | None] = relationship()
    guardian_id: Mapped[int | None] = mapped_column(ForeignKey("guardian.id"), index=True)
    guardian: Mapped[Guardian | None] = relationship()
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    staff: Mapped[Staff | None] = relationship()
    walk_in_name: Mapped[str | None] = mapped_column(String(50))
    walk_in_village_id: Mapped[int | None] = mapped_column(ForeignKey("village.id"))
    signed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    __table_args__ = (
        UniqueConstraint("activity_id", "child_id"),
        UniqueConstraint("activity_id", "guardian_id"),
        UniqueConstraint("activity_id", "staff_id"),
    )


class MentorPairing(ChildOwned, Versioned, db.Model):
    """爱心妈妈 one-on-one pairing of a caring mother with a child."""

    __tablename__ = "mentor_pairing"
    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    staff: Mapped[Staff] = relationship()
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id"), index=True)
    child: Mapped[Child] = relationship()
    start_on: Mapped[dt.date] = mapped_column(Date)
    end_on: Mapped[dt.date | None]
    notes: Mapped[str | None] = mapped_column(Text)


# --------------------------------------------------------------------------- funds


class FundSource(Versioned, db.Model):
    __tablename__ = "fund_source"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    received_on: Mapped[dt.date] = mapped_column(Date)
    document_no: Mapped[str | None] = mapped_column(String(100))
    allowed_categories: Mapped[list] = mapped_column(JSON, default=list)
    valid_from: Mapped[dt.date | None]
    valid_to: Mapped[dt.date | None]
    notes: Mapped[str | None] = mapped_column(Text)

    def __str__(self) -> str:
        return self.name


class Expense(Versioned, db.Model):
    __tablename__ = "expense"
    id: Mapped[int] = mapped_column(primary_key=True)
    spent_on: Mapped[dt.date] = mapped_column(Date)  # indexed by ix_expense_period below
    amount: Mapped[Decimal] = mapped_column(MONEY)
    source_id: Mapped[int] = mapped_column(ForeignKey("fund_source.id"), index=True)
    source: Mapped[FundSource] = relationship()
    category: Mapped[str] = mapped_column(String(16), index=True)
    payee: Mapped[str] = mapped_column(String(100), index=True)
    purpose: Mapped[str | None] = mapped_column(Text)
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activity.id"), index=True)
    activity: Mapped[Activity | None] = relationship()
    service_id: Mapped[int | None] = mapped_column(ForeignKey("support_service.id"))
    service: Mapped[SupportService | None] = relationship()
    child_id: Mapped[int | None] = mapped_column(ForeignKey("child.id"), index=True)
    child: Mapped[Child | None] = relationship()
    voucher_no: Mapped[str | None] = mapped_column(String(50), index=True)
    invoice_attached: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=ExpenseStatus.DRAFT.value, index=True)
    handler_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    handler: Mapped[User | None] = relationship(foreign_keys=[handler_id])
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    approver: Mapped[User | None] = relationship(foreign_keys=[approver_id])
    approved_at: Mapped[dt.datetime | None]
    paid_at: Mapped[dt.datetime | None]
    collective_decision_ref: Mapped[str | None] = mapped_column(String(100))
    # 退回: an approver sent the draft back to its handler with a reason; editing it clears this.
    returned_at: Mapped[dt.datetime | None]
    returned_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    returned_by: Mapped[User | None] = relationship(foreign_keys=[returned_by_id])
    return_note: Mapped[str | None] = mapped_column(Text)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("expense.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    # Covering indexes: budget sums per source, per activity and per period read the index alone.
    __table_args__ = (
        Index("ix_expense_period", "spent_on", "status", "amount"),
        Index("ix_expense_source_status_amount", "source_id", "status", "amount"),
        Index("ix_expense_activity_status_amount", "activity_id", "status", "amount"),
    )


class FindingNote(db.Model):
    """核查说明: the fund officer's account of one fund-use finding (e.g. 发票已补交、经党委会研究同意).

    The finding stays listed while the check finds it: correcting the entries is what clears it. A
    note stands only while the finding reads as it did when it was explained (``finding_message``);
    a finding that changed (an over-spend that grew) is open again.
    """

    __tablename__ = "finding_note"
    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[int]
    finding_message: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text)
    by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    by: Mapped[User | None] = relationship()
    at: Mapped[dt.datetime]  # local wall-clock time (services.clock.now), as case events

    __table_args__ = (UniqueConstraint("rule", "target", "target_id"),)

    def __str__(self) -> str:
        return f"{self.rule} {self.target} {self.target_id}"


class ApiToken(db.Model):
    """A token for the 141 platform's pull of open alerts; scoped like the account it acts as."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    user: Mapped[User] = relationship()
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]


# --------------------------------------------------------------------------- the plan's own process
# 领导小组, 督查与整改, 反馈意见, 政策宣传, 典型案例 (work plan 四 and 五; services/inspections.py,
# feedback.py, case_studies.py, acceptance_pack.py).


class LeadingGroupMember(Versioned, db.Model):
    """A member of the 工作领导小组. Most are department heads and village party secretaries, not staff
    of the programme, so members are rows of their own; ``staff`` links one who is also staff."""

    __tablename__ = "leading_group_member"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    post: Mapped[str | None] = mapped_column(String(100), doc="职务, e.g. 镇党委副书记、镇长")
    department: Mapped[str | None] = mapped_column(String(100), doc="单位/部门")
    group_role: Mapped[str] = mapped_column(String(16))
    duties: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(20))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    staff: Mapped[Staff | None] = relationship()
    sort_order: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    def __str__(self) -> str:
        return self.name


leading_group_meeting_member = Table(
    "leading_group_meeting_member",
    db.Model.metadata,
    Column("meeting_id", ForeignKey("leading_group_meeting.id", ondelete="CASCADE"), primary_key=True),
    Column("member_id", ForeignKey("leading_group_member.id"), primary_key=True),
)


class LeadingGroupMeeting(Versioned, db.Model):
    """A meeting of the leading group: who came, what was decided; the minutes are an attachment."""

    __tablename__ = "leading_group_meeting"
    id: Mapped[int] = mapped_column(primary_key=True)
    held_on: Mapped[dt.date] = mapped_column(Date, index=True)
    title: Mapped[str] = mapped_column(String(200))
    place: Mapped[str | None] = mapped_column(String(200))
    attendees: Mapped[list[LeadingGroupMember]] = relationship(secondary=leading_group_meeting_member)
    other_attendees: Mapped[str | None] = mapped_column(String(500), doc="列席人员")
    decisions: Mapped[str | None] = mapped_column(Text)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __str__(self) -> str:
        return f"{self.held_on} {self.title}"


inspection_village = Table(
    "inspection_village",
    db.Model.metadata,
    Column("inspection_id", ForeignKey("inspection.id", ondelete="CASCADE"), primary_key=True),
    Column("village_id", ForeignKey("village.id"), primary_key=True),
)


class Inspection(Versioned, db.Model):
    """督查: a town-level inspection or the district's 区级督导 visit; its findings are Rectifications."""

    __tablename__ = "inspection"
    id: Mapped[int] = mapped_column(primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    inspected_on: Mapped[dt.date] = mapped_column(Date, index=True)
    inspectors: Mapped[str] = mapped_column(String(200))
    villages: Mapped[list[Village]] = relationship(secondary=inspection_village)
    areas: Mapped[list] = mapped_column(JSON, default=list)
    methods: Mapped[list] = mapped_column(JSON, default=list)
    summary: Mapped[str | None] = mapped_column(Text)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    rectifications: Mapped[list[Rectification]] = relationship(
        back_populates="inspection", order_by="Rectification.id"
    )

    @classmethod
    def village_clause(cls, village_ids):
        # A village user sees the inspections that covered their village; town-wide ones are the town's.
        return cls.villages.any(Village.id.in_(village_ids))

    def __str__(self) -> str:
        return f"{self.inspected_on} {self.inspectors}"


class Rectification(VillageOwned, Versioned, db.Model):
    """整改: one finding of an inspection (or a fund-use finding) and its fixing, 待整改 → 整改中 → 已整改.

    It belongs to a village when the finding is about one (and then its owner must be able to see that
    village); town-level ones (no village) are seen by the town's roles only.
    """

    __tablename__ = "rectification"
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    inspection_id: Mapped[int | None] = mapped_column(ForeignKey("inspection.id"), index=True)
    inspection: Mapped[Inspection | None] = relationship(back_populates="rectifications")
    # The fund-use finding it came from (services/fund_checks.Finding.key); one rectification each.
    fund_rule: Mapped[str | None] = mapped_column(String(32))
    fund_target: Mapped[str | None] = mapped_column(String(16))
    fund_target_id: Mapped[int | None]
    area: Mapped[str] = mapped_column(String(16))
    village_id: Mapped[int | None] = mapped_column(ForeignKey("village.id"), index=True)
    village: Mapped[Village | None] = relationship()
    finding: Mapped[str] = mapped_column(Text)
    requirement: Mapped[str | None] = mapped_column(Text)
    found_on: Mapped[dt.date] = mapped_column(Date, index=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    owner: Mapped[User] = relationship(foreign_keys=[owner_id])
    deadline: Mapped[dt.date] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    started_at: Mapped[dt.datetime | None]
    completed_on: Mapped[dt.date | None]
    completion_note: Mapped[str | None] = mapped_column(Text)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id])
    reviewed_at: Mapped[dt.datetime | None]
    review_note: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    steps: Mapped[list[RectificationStep]] = relationship(
        back_populates="rectification", order_by="RectificationStep.id", cascade="all, delete-orphan"
    )

    __table_args__ = (
        UniqueConstraint("fund_rule", "fund_target", "fund_target_id", name="uq_rectification_fund_finding"),
        Index("ix_rectification_status_deadline", "status", "deadline"),
    )

    def __str__(self) -> str:
        text = self.finding or ""
        return f"整改 {self.id}：{text[:30]}{'…' if len(text) > 30 else ''}"


class RectificationStep(db.Model):
    """A line of a rectification's history: started, progress noted, marked done, signed off, returned."""

    __tablename__ = "rectification_step"
    id: Mapped[int] = mapped_column(primary_key=True)
    rectification_id: Mapped[int] = mapped_column(
        ForeignKey("rectification.id", ondelete="CASCADE"), index=True
    )
    rectification: Mapped[Rectification] = relationship(back_populates="steps")
    at: Mapped[dt.datetime]  # local wall-clock time (services.clock.now)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    user: Mapped[User | None] = relationship()
    action: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)


class FeedbackLink(db.Model):
    """The anonymous feedback link of one activity (the QR code parents scan): a random token."""

    __tablename__ = "feedback_link"
    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activity.id", ondelete="CASCADE"), unique=True)
    activity: Mapped[Activity] = relationship()
    token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))


class Feedback(VillageOwned, db.Model):
    """反馈意见 from a school, a village or a family: 满意度 1–5 per service item and suggestions.

    Entered by staff from paper, or sent through an activity's anonymous link (no person, no address
    kept). Town-level ones (no village) are seen by the town's roles only.
    """

    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    source_kind: Mapped[str] = mapped_column(String(16), index=True)
    unit: Mapped[str | None] = mapped_column(String(100), doc="填报单位, e.g. 罗云小学")
    village_id: Mapped[int | None] = mapped_column(ForeignKey("village.id"), index=True)
    village: Mapped[Village | None] = relationship()
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activity.id"), index=True)
    activity: Mapped[Activity | None] = relationship()
    received_on: Mapped[dt.date] = mapped_column(Date, index=True)
    scores: Mapped[dict] = mapped_column(JSON, default=dict, doc="FeedbackItem value → 1..5")
    suggestions: Mapped[str | None] = mapped_column(Text)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __str__(self) -> str:
        return f"反馈 {self.id}"


class FeedbackHit(db.Model):
    """One use of an anonymous feedback link: the rate limit counts these (any process, one table).
    The address is kept only as a keyed hash, and rows older than a day are removed."""

    __tablename__ = "feedback_hit"
    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(Integer)
    address_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime]

    __table_args__ = (
        Index("ix_feedback_hit_activity_at", "activity_id", "at"),
        Index("ix_feedback_hit_address", "activity_id", "address_hash", "at"),
    )


class PublicityEvent(VillageOwned, Versioned, db.Model):
    """政策宣传: a lecture, door-to-door round, new-media push or leaflet drive; photos are attachments.
    Town-wide events (no village) are seen by the town's roles only."""

    __tablename__ = "publicity_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    held_on: Mapped[dt.date] = mapped_column(Date, index=True)
    title: Mapped[str] = mapped_column(String(200))
    form: Mapped[str] = mapped_column(String(16))
    place: Mapped[str | None] = mapped_column(String(200))
    village_id: Mapped[int | None] = mapped_column(ForeignKey("village.id"), index=True)
    village: Mapped[Village | None] = relationship()
    organiser: Mapped[str | None] = mapped_column(String(100))
    audience_count: Mapped[int] = mapped_column(default=0)
    materials: Mapped[str | None] = mapped_column(Text, doc="资料名称与份数")
    content: Mapped[str | None] = mapped_column(Text)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __str__(self) -> str:
        return self.title


class CaseStudy(Versioned, db.Model):
    """典型案例: the anonymised write-up of a closed case, drafted from its records, approved by a
    supervisor, exported as .docx. Belongs to a village through its case's child."""

    __tablename__ = "case_study"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), unique=True)
    case: Mapped[Case] = relationship()
    title: Mapped[str] = mapped_column(String(200))
    background: Mapped[str] = mapped_column(Text, default="")
    assessment: Mapped[str] = mapped_column(Text, default="")
    intervention: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(Text, default="")
    experience: Mapped[str] = mapped_column(Text, default="")
    photo_ids: Mapped[list] = mapped_column(JSON, default=list, doc="attachment ids chosen for the write-up")
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    drafted_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    drafted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[dt.datetime | None]
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id])
    reviewed_at: Mapped[dt.datetime | None]
    review_note: Mapped[str | None] = mapped_column(Text)

    @classmethod
    def village_clause(cls, village_ids):
        cases = select(Case.id).where(
            Case.child_id.in_(select(Child.id).where(Child.village_id.in_(village_ids)))
        )
        return cls.case_id.in_(cases)

    def __str__(self) -> str:
        return self.title


# --------------------------------------------------------------------------- records: attachments


def attachment_owners() -> dict[str, type]:
    """Owner kind → model. An area that adds an owner (e.g. 督查 inspections) adds it here."""
    return {
        "child": Child,
        "visit": Visit,
        "activity": Activity,
        "case": Case,
        "expense": Expense,
        "meeting": LeadingGroupMeeting,
        "inspection": Inspection,
        "rectification": Rectification,
        "publicity": PublicityEvent,
    }


class Attachment(db.Model):
    """A scan or photo kept in the attachment storage (services/storage.py) under a random key.

    It hangs on one owner row (``owner_kind`` + ``owner_id``) and belongs to a village through it:
    whoever may see the owner may see the attachment. Deleting archives it; only anonymisation
    removes the stored bytes (``purged_at``).
    """

    __tablename__ = "attachment"
    id: Mapped[int] = mapped_column(primary_key=True)
    owner_kind: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[int]
    kind: Mapped[str] = mapped_column(String(24))
    content_type: Mapped[str] = mapped_column(String(40))
    original_name: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str | None] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(default=0)
    width: Mapped[int | None]
    height: Mapped[int | None]
    storage_key: Mapped[str] = mapped_column(String(80), unique=True)
    thumb_key: Mapped[str | None] = mapped_column(String(80))
    # The uploaded bytes' hash: the same file sent twice to one owner is kept once.
    source_sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    uploaded_by: Mapped[User | None] = relationship(foreign_keys=[uploaded_by_id])
    uploaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    archived_at: Mapped[dt.datetime | None]
    archived_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    archive_reason: Mapped[str | None] = mapped_column(String(200))
    purged_at: Mapped[dt.datetime | None]

    __table_args__ = (Index("ix_attachment_owner", "owner_kind", "owner_id", "archived_at"),)

    @classmethod
    def village_clause(cls, village_ids):
        clauses = []
        for kind, model in attachment_owners().items():
            if not hasattr(model, "village_clause"):
                continue  # owners outside village scoping (expenses) are reached by unscoped roles only
            owners = select(model.id).where(model.village_clause(village_ids))
            clauses.append((cls.owner_kind == kind) & cls.owner_id.in_(owners))
        return or_(*clauses) if clauses else false()

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")

    def __str__(self) -> str:
        return self.original_name or f"附件 {self.id}"


# --------------------------------------------------------------------------- records: consent, transfers


class Consent(ChildOwned, db.Model):
    """告知同意: one guardian's consent to one purpose for one child, until withdrawn.

    A scope is consented for a child while one of its records is not withdrawn (services/consent.py).
    """

    __tablename__ = "consent"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id"))
    child: Mapped[Child] = relationship()
    scope: Mapped[str] = mapped_column(String(16))
    guardian_id: Mapped[int | None] = mapped_column(ForeignKey("guardian.id"))
    guardian: Mapped[Guardian | None] = relationship()
    # who gave it, as written on the form: a guardian's name, or 本人 for a child of 14 or more
    given_by: Mapped[str] = mapped_column(String(50))
    given_on: Mapped[dt.date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(16))
    witness: Mapped[str | None] = mapped_column(String(50))
    form_attachment_id: Mapped[int | None] = mapped_column(ForeignKey("attachment.id", ondelete="SET NULL"))
    form_attachment: Mapped[Attachment | None] = relationship()
    note: Mapped[str | None] = mapped_column(String(200))
    withdrawn_on: Mapped[dt.date | None]
    withdrawal_note: Mapped[str | None] = mapped_column(String(200))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_consent_child_scope", "child_id", "scope", "withdrawn_on"),)

    def __str__(self) -> str:
        from choices import ConsentScope

        return f"{ConsentScope.label_of(self.scope)}：{self.given_by}"


class Transfer(db.Model):
    """A child's file moving: to another village of the town (accepted there), out of the town, or in.

    Both villages see the transfer; the child and its records follow ``Child.village_id``, which
    changes only when the receiving village accepts (services/transfers.py).
    """

    __tablename__ = "transfer"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id"), index=True)
    child: Mapped[Child] = relationship()
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    from_village_id: Mapped[int | None] = mapped_column(ForeignKey("village.id"), index=True)
    from_village: Mapped[Village | None] = relationship(foreign_keys=[from_village_id])
    to_village_id: Mapped[int | None] = mapped_column(ForeignKey("village.id"), index=True)
    to_village: Mapped[Village | None] = relationship(foreign_keys=[to_village_id])
    # out of town: where the child went and who receives the file; into the town: where it came from
    other_town: Mapped[str | None] = mapped_column(String(100))
    other_office: Mapped[str | None] = mapped_column(String(200))
    referral: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    handover_note: Mapped[str | None] = mapped_column(Text)
    open_items: Mapped[list] = mapped_column(JSON, default=list, doc="open work acknowledged at the start")
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    started_by: Mapped[User | None] = relationship(foreign_keys=[started_by_id])
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    decided_at: Mapped[dt.datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        # one pending transfer per child, whatever two clerks do at once
        Index(
            "uq_transfer_pending_child",
            "child_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    @classmethod
    def village_clause(cls, village_ids):
        return cls.from_village_id.in_(village_ids) | cls.to_village_id.in_(village_ids)

    def __str__(self) -> str:
        return f"转移 {self.id}"


class TransferEvent(ChildOwned, db.Model):
    """One step of a transfer, shown on the child's dossier (it moves with the child)."""

    __tablename__ = "transfer_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfer.id", ondelete="CASCADE"), index=True)
    transfer: Mapped[Transfer] = relationship()
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    user: Mapped[User | None] = relationship()
    action: Mapped[str] = mapped_column(String(16))
    from_village_id: Mapped[int | None] = mapped_column(ForeignKey("village.id"))
    to_village_id: Mapped[int | None] = mapped_column(ForeignKey("village.id"))
    note: Mapped[str | None] = mapped_column(Text)


class FormToken(db.Model):
    """A one-time form token, claimed in the same transaction as the record its form creates: the
    second submission of the same form finds it taken (services/form_tokens.py)."""

    __tablename__ = "form_token"
    token: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[int | None]
    endpoint: Mapped[str] = mapped_column(String(100))
    claimed_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    record_id: Mapped[str | None] = mapped_column(String(40))
    result_url: Mapped[str | None] = mapped_column(String(500))
