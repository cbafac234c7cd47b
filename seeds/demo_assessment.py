"""Demo data of the assessment area: fictional village boundaries, assessment histories, the
children's derived levels and the tiered measures that followed. Deterministic for a given day.

Written with bulk inserts: the benchmark runs this for 100,000 children.
"""

from __future__ import annotations

import datetime as dt
import json
import random

from sqlalchemy import bindparam, insert, update

from choices import AssessmentMethod, AssessmentStatus, Level, Role, ServiceStatus
from models import Assessment, Child, Staff, SupportService, User, Village, assessment_team, db
from seeds import moments
from services import clock
from services.assessment import TIERED_MEASURES, current_rules, indicator_codes, score

# Share of children per level in the demo (the rest of the weight: not yet assessed).
LEVEL_WEIGHTS = [(Level.GREEN, 42), (Level.YELLOW, 27), (Level.ORANGE, 15), (Level.RED, 6), (None, 10)]
BATCH = 5000


def voronoi_cells(points: dict[int, tuple[float, float]], pad: float = 0.02) -> dict[int, list]:
    """Each point's Voronoi cell inside the padded bounding box: a fictional map of village borders."""
    lons = [p[0] for p in points.values()]
    lats = [p[1] for p in points.values()]
    box = [
        (min(lons) - pad, min(lats) - pad),
        (max(lons) + pad, min(lats) - pad),
        (max(lons) + pad, max(lats) + pad),
        (min(lons) - pad, max(lats) + pad),
    ]
    cells = {}
    for key, (px, py) in points.items():
        cell = box
        for other, (qx, qy) in points.items():
            if other == key:
                continue
            mx, my, nx, ny = (px + qx) / 2, (py + qy) / 2, qx - px, qy - py
            cell = _clip(cell, lambda x, y, mx=mx, my=my, nx=nx, ny=ny: (x - mx) * nx + (y - my) * ny)
        ring = [[round(x, 5), round(y, 5)] for x, y in cell]
        cells[key] = ring + [ring[0]]
    return cells


def _clip(polygon, side):
    """Sutherland–Hodgman: the part of a convex polygon where side(x, y) <= 0."""
    out = []
    for i, current in enumerate(polygon):
        previous = polygon[i - 1]
        a, b = side(*previous), side(*current)
        if (a <= 0) != (b <= 0):
            t = a / (a - b)
            out.append(
                (previous[0] + t * (current[0] - previous[0]), previous[1] + t * (current[1] - previous[1]))
            )
        if b <= 0:
            out.append(current)
    return out


def seed_boundaries(session) -> None:
    villages = session.scalars(
        db.select(Village).where(Village.lon.is_not(None), Village.lat.is_not(None))
    ).all()
    cells = voronoi_cells({v.id: (v.lon, v.lat) for v in villages})
    for village in villages:
        village.boundary = json.dumps({"type": "Polygon", "coordinates": [cells[village.id]]})
    session.flush()


def _scores_for(level: Level, rules: dict, rng: random.Random) -> tuple[dict, list]:
    """Random indicator scores (and, for some reds, a veto) that earn ``level`` under ``rules``."""
    codes = indicator_codes(rules)
    vetoes = []
    if level is Level.RED and rng.random() < 0.4:
        vetoes = [rng.choice(rules["vetoes"])["code"]]
    for _ in range(200):
        bias = {Level.GREEN: 2.7, Level.YELLOW: 2.1, Level.ORANGE: 1.4, Level.RED: 0.8}[level]
        scores = {code: max(0, min(3, round(rng.gauss(bias, 0.6)))) for code in codes}
        if score(scores, vetoes, rules)[1] is level:
            return scores, vetoes
    return scores, [rules["vetoes"][0]["code"]] if level is Level.RED else []


def seed_assessments(session, rng=None, *, today: dt.date | None = None) -> None:
    """One or two approved assessments per child (a tenth never assessed), a few awaiting review."""
    local = random.Random(31)
    today = today or clock.today()
    seed_boundaries(session)
    version = current_rules()
    rules = version.snapshot
    users = {u.username: u.id for u in session.scalars(db.select(User))}
    reviewer = users.get("supervisor")
    authors = [users[name] for name in ("social", "director1", "clerk") if name in users]
    directors = dict(
        session.execute(
            db.select(Staff.village_id, db.func.min(Staff.id))
            .where(Staff.kind == "director")
            .group_by(Staff.village_id)
        ).all()
    )
    levels = [lv for lv, _ in LEVEL_WEIGHTS]
    weights = [w for _, w in LEVEL_WEIGHTS]
    methods = [m.value for m in AssessmentMethod]
    children = session.execute(db.select(Child.id, Child.village_id).order_by(Child.id)).all()
    child_table = Child.__table__
    set_level = (
        update(child_table)
        .where(child_table.c.id == bindparam("cid"))
        .values(
            current_level=bindparam("level"),
            level_assessed_on=bindparam("on"),
            next_assessment_due=bindparam("reassess"),
        )
    )
    for start in range(0, len(children), BATCH):
        rows, team_rows, service_rows, child_updates = [], [], [], []
        for child_id, village_id in children[start : start + BATCH]:
            final = local.choices(levels, weights)[0]
            if final is None:
                continue
            history = []
            if local.random() < 0.5:  # an earlier assessment, about five months before the latest
                history.append(
                    (
                        local.choices(levels[:4], weights[:4])[0],
                        today - dt.timedelta(days=140 + local.randint(0, 60)),
                    )
                )
            latest_on = today - dt.timedelta(days=local.randint(5, 120))
            history.append((final, latest_on))
            previous = None
            for level, assessed_on in history:
                scores, vetoes = _scores_for(level, rules, local)
                total, computed = score(scores, vetoes, rules)
                row = rules["levels"][level.value]
                author = authors[child_id % len(authors)] if authors else None
                rows.append(
                    {
                        "child_id": child_id,
                        "assessed_on": assessed_on,
                        "methods": local.sample(methods, 2),
                        "scores": scores,
                        "vetoes": vetoes,
                        "total_score": total,
                        "computed_level": computed.value,
                        "override_level": None,
                        "override_reason": None,
                        "level": level.value,
                        "worsened": previous is not None and level.rank > previous.rank,
                        "rule_version_id": version.id,
                        "status": AssessmentStatus.APPROVED.value,
                        "created_by_id": author,
                        "reviewed_by_id": reviewer,
                        "reviewed_at": moments.at(assessed_on + dt.timedelta(days=2), 10),
                        "next_reassess_on": assessed_on + dt.timedelta(days=row["reassess_days"]),
                        "notes": None,
                        "version": 1,
                    }
                )
                # Ids are left to the database (PostgreSQL's sequence stays right); rows refer by position.
                if village_id in directors:
                    team_rows.append({"assessment_id": len(rows) - 1, "staff_id": directors[village_id]})
                previous = level
            row = rules["levels"][final.value]
            local.choice((0, 0, 0, 10))  # drawn as before, so the rest of the demo stays as it was
            child_updates.append(
                {
                    "cid": child_id,
                    "level": final.value,
                    "on": latest_on,
                    "reassess": latest_on + dt.timedelta(days=row["reassess_days"]),
                }
            )
            approved_on = latest_on + dt.timedelta(days=2)
            for kind, days in TIERED_MEASURES[final]:
                due = approved_on + dt.timedelta(days=days)
                delivered = due <= today and local.random() < 0.8
                late = local.random() < 0.15
                service_rows.append(
                    {
                        "child_id": child_id,
                        "village_id": village_id,
                        "tier": final.value,
                        "kind": kind.value,
                        "status": ServiceStatus.DELIVERED.value if delivered else ServiceStatus.PLANNED.value,
                        "due_on": due,
                        "delivered_on": (due + dt.timedelta(days=3) if late else due - dt.timedelta(days=1))
                        if delivered
                        else None,
                        "duration_minutes": 60 if delivered else None,
                        "content": f"按{final.label}色等级分层赋能：{kind.label}",
                        "outcome": "家长表示有收获" if delivered else None,
                        "assessment_id": len(rows) - 1,
                        "version": 1,
                    }
                )
        if rows:
            ids = session.scalars(
                insert(Assessment).returning(Assessment.id, sort_by_parameter_order=True), rows
            ).all()
            for row in team_rows + service_rows:
                row["assessment_id"] = ids[row["assessment_id"]]
        if team_rows:
            session.execute(insert(assessment_team), team_rows)
        if service_rows:
            session.execute(insert(SupportService), service_rows)
        if child_updates:
            session.execute(set_level, child_updates)
    _awaiting_review(session, rules, version.id, users, local, today)


def _awaiting_review(session, rules, version_id, users, rng, today) -> None:
    """A handful of submitted assessments, so the reviewer's dashboard has work on it."""
    authors = [users[name] for name in ("director1", "social") if name in users]
    if not authors:
        return
    director_village = session.scalar(
        db.select(User.village_id).where(User.role == Role.DIRECTOR.value).limit(1)
    )
    children = session.scalars(
        db.select(Child.id).where(Child.village_id == director_village).order_by(Child.id).limit(3)
    ).all()
    for n, child_id in enumerate(children):
        level = [Level.YELLOW, Level.ORANGE, Level.GREEN][n]
        scores, vetoes = _scores_for(level, rules, rng)
        total, computed = score(scores, vetoes, rules)
        assessed_on = today - dt.timedelta(days=1 + n)
        session.add(
            Assessment(
                child_id=child_id,
                assessed_on=assessed_on,
                methods=[AssessmentMethod.HOME_VISIT.value],
                scores=scores,
                vetoes=vetoes,
                total_score=total,
                computed_level=computed.value,
                level=computed.value,
                rule_version_id=version_id,
                status=AssessmentStatus.SUBMITTED.value,
                created_by_id=authors[0],
                next_reassess_on=assessed_on
                + dt.timedelta(days=rules["levels"][computed.value]["reassess_days"]),
            )
        )
    session.flush()
