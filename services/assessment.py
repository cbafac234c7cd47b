"""Guardianship-capacity assessment: the rules as a frozen snapshot, scoring, the review workflow,
and what an approval sets in motion (the child's level and due dates, the tiered measures).

The rule tables (Indicator, VetoItem, LevelRule) are data an admin edits. Each assessment keeps
the RuleVersion it was scored under, so a later edit of a threshold never rewrites a past result.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError

from choices import AssessmentMethod, AssessmentStatus, Level, ServiceKind, ServiceStatus
from models import (
    Assessment,
    Child,
    Indicator,
    IndicatorGroup,
    LevelRule,
    RuleVersion,
    Staff,
    SupportService,
    VetoItem,
    db,
    utcnow,
)
from services.permissions import REVIEWER_ROLES
from services.scoping import scope
from services.staff import responsible_director_id
from services.validation import InvalidInput

SCORE_WORDS = {3: "良好", 2: "一般", 1: "较差", 0: "严重问题"}

# Work plan 三(二): what each level's family is offered, and within how many days of approval. The
# days are the seeded defaults of LevelRule.measure_days (admins edit them; each assessment plans its
# measures with the days of the rule version it was scored under).
TIERED_MEASURES: dict[Level, tuple[tuple[ServiceKind, int], ...]] = {
    Level.RED: ((ServiceKind.SAFETY_NET, 3),),
    Level.ORANGE: (
        (ServiceKind.FAMILY_EDUCATION, 15),
        (ServiceKind.COUNSELLING, 15),
        (ServiceKind.LIFE_SKILLS, 15),
    ),
    Level.YELLOW: ((ServiceKind.ONLINE_PUSH, 30), (ServiceKind.LECTURE, 30)),
    Level.GREEN: (),
}

CASE_SUGGESTION = "该儿童评估为红色（家庭监护能力缺失）：请在{days}日内对接兜底保障政策，并开立个案。"


class AssessmentRefused(InvalidInput):
    """Bad input for an assessment: ``errors`` maps form fields to Chinese messages."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("；".join(errors.values()))


# --------------------------------------------------------------------------- rules


def rules_snapshot() -> dict:
    """The rules in force, as plain JSON: the active indicators and vetoes, the level table."""
    groups = db.session.scalars(db.select(IndicatorGroup).order_by(IndicatorGroup.sort_order)).all()
    indicators = db.session.scalars(
        db.select(Indicator).where(Indicator.active.is_(True)).order_by(Indicator.sort_order, Indicator.id)
    ).all()
    vetoes = db.session.scalars(
        db.select(VetoItem).where(VetoItem.active.is_(True)).order_by(VetoItem.sort_order, VetoItem.id)
    ).all()
    levels = {row.level: row for row in db.session.scalars(db.select(LevelRule))}
    return {
        "groups": [
            {
                "name": group.name,
                "indicators": [
                    {
                        "code": ind.code,
                        "name": ind.name,
                        "labels": {"3": ind.label_3, "2": ind.label_2, "1": ind.label_1, "0": ind.label_0},
                    }
                    for ind in indicators
                    if ind.group_id == group.id
                ],
            }
            for group in groups
        ],
        "vetoes": [{"code": v.code, "name": v.name} for v in vetoes],
        "levels": {
            level.value: {
                "min_score": levels[level.value].min_score,
                "visit_days": levels[level.value].visit_days,
                "reassess_days": levels[level.value].reassess_days,
                "measure_days": levels[level.value].measure_days,
            }
            for level in Level
            if level.value in levels
        },
    }


def fingerprint(snapshot: dict) -> str:
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def current_rules() -> RuleVersion:
    """The RuleVersion matching the rule tables as they stand now (created on first use)."""
    snapshot = rules_snapshot()
    key = fingerprint(snapshot)
    version = db.session.scalar(db.select(RuleVersion).where(RuleVersion.fingerprint == key))
    if version is not None:
        return version
    try:
        with db.session.begin_nested():
            version = RuleVersion(snapshot=snapshot, fingerprint=key)
            db.session.add(version)
    except IntegrityError:  # another request froze the same rules a moment ago
        version = db.session.scalar(db.select(RuleVersion).where(RuleVersion.fingerprint == key))
    return version


def indicator_codes(rules: dict) -> list[str]:
    return [ind["code"] for group in rules["groups"] for ind in group["indicators"]]


def level_for_total(total: int, rules: dict) -> Level:
    """The most favourable level whose lowest total the score reaches."""
    for level in Level:  # green first
        row = rules["levels"].get(level.value)
        if row is not None and total >= row["min_score"]:
            return level
    return Level.RED


def score(scores: dict, vetoes, rules: dict) -> tuple[int, Level]:
    """Total of the indicator scores and the level it earns; any veto item forces red."""
    codes = indicator_codes(rules)
    missing = [code for code in codes if code not in scores]
    if missing:
        raise ValueError(f"missing scores: {missing}")
    values = [int(scores[code]) for code in codes]
    if any(v not in (0, 1, 2, 3) for v in values):
        raise ValueError("each score is 0..3")
    unknown = set(vetoes or ()) - {v["code"] for v in rules["vetoes"]}
    if unknown:
        raise ValueError(f"unknown veto items: {sorted(unknown)}")
    total = sum(values)
    if vetoes:
        return total, Level.RED
    return total, level_for_total(total, rules)


def check_level_rules(rows: dict[str, tuple]) -> str | None:
    """A Chinese complaint when the level table is inconsistent, else None.

    ``rows`` maps level value → (min_score, visit_days, reassess_days, measure_days).
    """
    missing = [level.label for level in Level if level.value not in rows]
    if missing:
        return "缺少等级：" + "、".join(missing)
    mins = [rows[level.value][0] for level in Level]
    if rows[Level.RED.value][0] != 0:
        return "红色等级的最低分必须为 0（低于橙色的总分都属红色）"
    if any(a <= b for a, b in zip(mins, mins[1:], strict=False)):
        return "最低分必须满足 绿 > 黄 > 橙 > 红"
    for level in Level:
        _, visit, reassess, measures = rows[level.value]
        if visit <= 0 or reassess <= 0:
            return f"{level.label}：走访和复评间隔天数必须大于 0"
        if TIERED_MEASURES[level] and not (measures and measures > 0):
            return f"{level.label}：请填写分层赋能措施的落实期限（天，大于 0）"
    return None


# --------------------------------------------------------------------------- saving


@dataclass
class AssessmentInput:
    """What the assessor typed; strings as they came from the form."""

    child_id: int | None
    assessed_on: str | dt.date | None
    scores: dict[str, str] = field(default_factory=dict)
    vetoes: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    team_ids: list[int] = field(default_factory=list)
    notes: str = ""
    override_level: str = ""
    override_reason: str = ""


def _parse_date(value) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat((value or "").strip())
    except ValueError:
        return None


def save_assessment(
    data: AssessmentInput,
    *,
    user_id: int | None,
    today: dt.date,
    village_ids,
    assessment: Assessment | None = None,
    submit: bool = False,
) -> Assessment:
    """Create or update a draft (optionally submitting it for review), scored under the current rules."""
    if assessment is not None and assessment.status != AssessmentStatus.DRAFT.value:
        raise AssessmentRefused({"status": "只有草稿可以修改；已提交或已审核的评估不能再改"})
    errors: dict[str, str] = {}
    child = None
    if data.child_id:
        child = db.session.scalar(
            scope(db.select(Child), Child, village_ids).where(Child.id == data.child_id)
        )
    if child is None or child.is_archived:
        errors["child_id"] = "请选择本人负责范围内的在册儿童"
    assessed_on = _parse_date(data.assessed_on)
    if assessed_on is None:
        errors["assessed_on"] = "请填写评估日期（年-月-日）"
    elif assessed_on > today:
        errors["assessed_on"] = "评估日期不能晚于今天"
    elif child is not None and assessed_on < child.birth_date:
        errors["assessed_on"] = "评估日期不能早于儿童出生日期"

    rules_version = current_rules()
    rules = rules_version.snapshot
    scores: dict[str, int] = {}
    for code in indicator_codes(rules):
        raw = str(data.scores.get(code, "")).strip()
        if raw not in ("0", "1", "2", "3"):
            errors[f"score_{code}"] = "请选择 0–3 分"
        else:
            scores[code] = int(raw)
    veto_codes = {v["code"] for v in rules["vetoes"]}
    vetoes = [code for code in dict.fromkeys(data.vetoes) if code in veto_codes]
    methods = [m for m in dict.fromkeys(data.methods) if m in {x.value for x in AssessmentMethod}]
    if not methods:
        errors["methods"] = "请至少选择一种评估方式"
    team = []
    if data.team_ids:
        team = db.session.scalars(
            scope(db.select(Staff), Staff, village_ids).where(Staff.id.in_(data.team_ids))
        ).all()
    if not team:
        errors["team"] = "请选择评估工作组成员"
    override = (data.override_level or "").strip() or None
    reason = (data.override_reason or "").strip()
    if override is not None:
        if override not in {level.value for level in Level}:
            errors["override_level"] = "请选择有效的等级"
        elif not reason:
            errors["override_reason"] = "调整等级必须填写书面理由"
    if errors:
        raise AssessmentRefused(errors)

    total, computed = score(scores, vetoes, rules)
    if override == computed.value:
        override, reason = None, ""
    if assessment is None:
        assessment = Assessment(created_by_id=user_id, status=AssessmentStatus.DRAFT.value)
        db.session.add(assessment)
    assessment.child = child
    assessment.assessed_on = assessed_on
    assessment.scores = scores
    assessment.vetoes = vetoes
    assessment.methods = methods
    assessment.team = list(team)
    assessment.notes = (data.notes or "").strip() or None
    assessment.total_score = total
    assessment.computed_level = computed.value
    assessment.override_level = override
    assessment.override_reason = reason or None
    assessment.level = override or computed.value
    assessment.rule_version = rules_version
    assessment.next_reassess_on = assessed_on + dt.timedelta(
        days=rules["levels"][assessment.level]["reassess_days"]
    )
    if submit:
        assessment.status = AssessmentStatus.SUBMITTED.value
        assessment.review_note = None
    db.session.flush()
    return assessment


# --------------------------------------------------------------------------- review


def may_review(role: str | None) -> bool:
    return role in {r.value for r in REVIEWER_ROLES}


def _check_reviewer(assessment: Assessment, user_id: int, role: str) -> None:
    if assessment.status != AssessmentStatus.SUBMITTED.value:
        raise InvalidInput("只有待审核的评估可以审核或退回")
    if not may_review(role):
        raise InvalidInput("只有儿童督导员、民生服务办经办人或系统管理员可以审核评估")
    if assessment.created_by_id == user_id:
        raise InvalidInput("不能审核本人填写的评估，请由其他审核人审核")


def return_assessment(assessment: Assessment, *, user_id: int, role: str, note: str) -> None:
    """Send a submitted assessment back to its author as a draft, with the reviewer's reason."""
    _check_reviewer(assessment, user_id, role)
    if not (note or "").strip():
        raise InvalidInput("退回时请填写退回意见")
    assessment.status = AssessmentStatus.DRAFT.value
    assessment.review_note = note.strip()
    assessment.reviewed_by_id = user_id
    assessment.reviewed_at = utcnow()


@dataclass
class ApprovalOutcome:
    services: list[SupportService]
    current: bool  # whether it became the child's current level
    messages: list[str]


def approve(
    assessment: Assessment, *, user_id: int, role: str, today: dt.date, now: dt.datetime | None = None
) -> ApprovalOutcome:
    """Approve; the child's level follows its latest approved assessment, the level's measures are
    planned, and the child's alert rules run at once (a cleared 复评逾期 or 从未评估 clears now)."""
    from services.alerts import run_rules_for_children

    now = now or dt.datetime.combine(today, dt.datetime.now().time())
    _check_reviewer(assessment, user_id, role)
    assessment.status = AssessmentStatus.APPROVED.value
    assessment.reviewed_by_id = user_id
    assessment.reviewed_at = utcnow()
    assessment.review_note = None
    previous = _approved_before(assessment)
    assessment.worsened = previous is not None and Level(assessment.level).rank > Level(previous.level).rank
    db.session.flush()
    latest = latest_approved(assessment.child_id)
    if latest is not assessment:  # a late entry of an older assessment leaves the current level alone
        run_rules_for_children([assessment.child_id], today, now)
        return ApprovalOutcome([], False, ["该评估早于已审核的最近一次评估，儿童当前等级不变。"])
    apply_level(assessment)
    services = plan_measures(assessment, today)
    run_rules_for_children([assessment.child_id], today, now)
    messages = (
        [CASE_SUGGESTION.format(days=measure_days(assessment.rule_version.snapshot, Level.RED))]
        if assessment.level == Level.RED.value
        else []
    )
    return ApprovalOutcome(services, True, messages)


def _approved_before(assessment: Assessment) -> Assessment | None:
    return db.session.scalar(
        db.select(Assessment)
        .where(
            Assessment.child_id == assessment.child_id,
            Assessment.status == AssessmentStatus.APPROVED.value,
            Assessment.id != assessment.id,
            (Assessment.assessed_on < assessment.assessed_on)
            | ((Assessment.assessed_on == assessment.assessed_on) & (Assessment.id < assessment.id)),
        )
        .order_by(Assessment.assessed_on.desc(), Assessment.id.desc())
        .limit(1)
    )


@dataclass
class IndicatorChange:
    code: str
    name: str
    before: int | None
    after: int | None

    @property
    def delta(self) -> int | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before


@dataclass
class Comparison:
    """An assessment beside the child's previous approved one: what the reviewer checks first."""

    previous: Assessment
    changes: list[IndicatorChange]  # every indicator of the new assessment, in the form's order
    vetoes_added: list[str]
    vetoes_removed: list[str]
    current_total: int
    current_level: str

    @property
    def total_delta(self) -> int:
        return self.current_total - self.previous.total_score

    @property
    def level_steps(self) -> int:
        """How many levels the child moves (positive: worse, towards red)."""
        return Level(self.current_level).rank - Level(self.previous.level).rank

    @property
    def big_move(self) -> bool:
        """Two steps or more (e.g. 红→黄, 绿→橙): the reviewer is warned to check the evidence."""
        return abs(self.level_steps) >= 2

    @property
    def changed(self) -> list[IndicatorChange]:
        return [c for c in self.changes if c.delta]


def compare_with_previous(assessment: Assessment) -> Comparison | None:
    """The assessment against the child's approved assessment before it (None: the first one)."""
    previous = _approved_before(assessment)
    if previous is None:
        return None
    rules = assessment.rule_version.snapshot if assessment.rule_version else rules_snapshot()
    names = {ind["code"]: ind["name"] for group in rules["groups"] for ind in group["indicators"]}
    before, after = previous.scores or {}, assessment.scores or {}
    changes = [
        IndicatorChange(code, names[code], _score(before.get(code)), _score(after.get(code)))
        for code in indicator_codes(rules)
    ]
    veto_names = {v["code"]: v["name"] for v in rules["vetoes"]}
    veto_names.update(
        {v["code"]: v["name"] for v in (previous.rule_version.snapshot or {}).get("vetoes", [])}
    )
    old_vetoes, new_vetoes = set(previous.vetoes or []), set(assessment.vetoes or [])
    return Comparison(
        previous=previous,
        changes=changes,
        vetoes_added=[veto_names.get(v, v) for v in sorted(new_vetoes - old_vetoes)],
        vetoes_removed=[veto_names.get(v, v) for v in sorted(old_vetoes - new_vetoes)],
        current_total=assessment.total_score,
        current_level=assessment.level,
    )


def _score(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def latest_approved(child_id: int) -> Assessment | None:
    return db.session.scalar(
        db.select(Assessment)
        .where(Assessment.child_id == child_id, Assessment.status == AssessmentStatus.APPROVED.value)
        .order_by(Assessment.assessed_on.desc(), Assessment.id.desc())
        .limit(1)
    )


def apply_level(assessment: Assessment) -> None:
    """The child's derived fields follow its latest approved assessment, under that assessment's rules.

    The next visit (下次走访) also counts visits since: services/visits.py recomputes it when the
    approval is flushed."""
    row = assessment.rule_version.snapshot["levels"][assessment.level]
    child = assessment.child
    child.current_level = assessment.level
    child.level_assessed_on = assessment.assessed_on
    child.next_assessment_due = assessment.assessed_on + dt.timedelta(days=row["reassess_days"])
    assessment.next_reassess_on = child.next_assessment_due


def refresh_level(child: Child) -> None:
    """Recompute a child's derived level fields from its approved assessments (after a merge,
    a deletion or an import moved assessments between children)."""
    latest = latest_approved(child.id)
    if latest is not None:
        apply_level(latest)
        return
    child.current_level = child.level_assessed_on = None
    child.next_assessment_due = None


def measure_days(rules: dict, level: Level) -> int | None:
    """Days from approval within which the level's measures are due, under these rules (rule versions
    frozen before the days were rule data hold none: the seeded defaults apply)."""
    days = rules["levels"].get(level.value, {}).get("measure_days")
    if days:
        return days
    return next((default for _, default in TIERED_MEASURES[level]), None)


def plan_measures(assessment: Assessment, today: dt.date) -> list[SupportService]:
    """Planned support services of the level's tier; a kind already planned for the child is not repeated."""
    level = Level(assessment.level)
    open_kinds = set(
        db.session.scalars(
            db.select(SupportService.kind).where(
                SupportService.child_id == assessment.child_id,
                SupportService.status == ServiceStatus.PLANNED.value,
            )
        )
    )
    created = []
    days = measure_days(assessment.rule_version.snapshot, level)
    provider_id = responsible_director_id(db.session, assessment.child)
    for kind, _ in TIERED_MEASURES[level]:
        if kind.value in open_kinds:
            continue
        service = SupportService(
            child_id=assessment.child_id,
            provider_id=provider_id,
            tier=level.value,
            kind=kind.value,
            status=ServiceStatus.PLANNED.value,
            due_on=today + dt.timedelta(days=days),
            assessment_id=assessment.id,
            content=f"按{level.label}色等级分层赋能：{kind.label}",
        )
        db.session.add(service)
        created.append(service)
    db.session.flush()
    return created


def level_history(child_id: int) -> list[Assessment]:
    """Every assessment of a child, newest first (the timeline of the child page)."""
    return db.session.scalars(
        db.select(Assessment)
        .where(Assessment.child_id == child_id)
        .order_by(Assessment.assessed_on.desc(), Assessment.id.desc())
    ).all()


# --------------------------------------------------------------------------- support services


def check_service(status: str, delivered_on: dt.date | None, today: dt.date) -> dict[str, str]:
    """Field → Chinese error for a support service's delivery fields."""
    errors = {}
    if status == ServiceStatus.DELIVERED.value and delivered_on is None:
        errors["delivered_on"] = "已落实的服务请填写落实日期"
    if delivered_on is not None and delivered_on > today:
        errors["delivered_on"] = "落实日期不能晚于今天"
    if status == ServiceStatus.PLANNED.value and delivered_on is not None:
        errors["status"] = "已填写落实日期，请把状态改为“已落实”"
    return errors


def record_online_push(
    child_ids, *, delivered_on: dt.date, content: str, provider_id: int | None, village_ids, today: dt.date
) -> int:
    """One 线上知识推送 delivered to many families at once.

    A child's open planned push is marked delivered; a child without one gets a delivered record.
    A child outside ``village_ids`` (or archived), or a provider the form could not offer, refuses
    the whole save. Returns the number of children recorded.
    """
    if delivered_on > today:
        raise InvalidInput("推送日期不能晚于今天")
    if not (content or "").strip():
        raise InvalidInput("请填写推送内容")
    wanted = {int(i) for i in child_ids}
    if not wanted:
        raise InvalidInput("请至少选择一名儿童")
    ids = set(
        db.session.scalars(
            scope(db.select(Child.id), Child, village_ids).where(
                Child.id.in_(wanted), Child.archived_at.is_(None)
            )
        )
    )
    if ids != wanted:
        raise InvalidInput(
            f"所选儿童中有{len(wanted - ids)}名不在您的管理范围内或已归档，未保存；请刷新页面后重新选择"
        )
    if provider_id is not None:
        provider = db.session.execute(
            scope(db.select(Staff.id), Staff, village_ids).where(
                Staff.id == provider_id, Staff.active.is_(True)
            )
        ).first()
        if provider is None:
            raise InvalidInput("所选的服务提供人不存在或不在您的管理范围内，未保存")
    planned = {
        s.child_id: s
        for s in db.session.scalars(
            db.select(SupportService).where(
                SupportService.child_id.in_(ids),
                SupportService.kind == ServiceKind.ONLINE_PUSH.value,
                SupportService.status == ServiceStatus.PLANNED.value,
            )
        )
    }
    levels = dict(db.session.execute(db.select(Child.id, Child.current_level).where(Child.id.in_(ids))).all())
    for child_id in sorted(ids):
        service = planned.get(child_id)
        if service is None:
            service = SupportService(
                child_id=child_id, kind=ServiceKind.ONLINE_PUSH.value, tier=levels[child_id]
            )
            db.session.add(service)
        service.status = ServiceStatus.DELIVERED.value
        service.delivered_on = delivered_on
        service.provider_id = provider_id
        service.content = content.strip()
    db.session.flush()
    return len(ids)


__all__ = [
    "SCORE_WORDS",
    "TIERED_MEASURES",
    "AssessmentInput",
    "AssessmentRefused",
    "ApprovalOutcome",
    "approve",
    "check_level_rules",
    "measure_days",
    "check_service",
    "record_online_push",
    "refresh_level",
    "current_rules",
    "level_for_total",
    "may_review",
    "return_assessment",
    "rules_snapshot",
    "save_assessment",
    "score",
]


def new_rule_code(session, model, name: str) -> str:
    """The stored code of a new indicator or veto item, made from the pinyin of its name
    (身体健康 → shentijiankang, then shentijiankang_2 …): scores and vetoes are kept by code, so
    nobody has to invent one, and it never changes once made."""
    from models import pinyin_keys

    base = "".join(ch for ch in pinyin_keys(name)[0] if ch.isascii() and ch.isalnum())[:24] or "rule"
    code, n = base, 1
    with session.no_autoflush:  # the new row is in the session already, still without its code
        while session.scalar(db.select(model.id).where(model.code == code)) is not None:
            n += 1
            code = f"{base}_{n}"
    return code
