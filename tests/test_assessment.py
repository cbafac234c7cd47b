"""Assessment rules: scoring edges, vetoes, override, review, rule versions, measures, the form."""

import datetime as dt

import pytest

from choices import AssessmentStatus, Level, ServiceKind, ServiceStatus
from models import Assessment, Child, LevelRule, Staff, SupportService, User, Village, Visit, db
from services import clock
from services.assessment import (
    AssessmentInput,
    AssessmentRefused,
    approve,
    current_rules,
    indicator_codes,
    record_online_push,
    refresh_level,
    return_assessment,
    save_assessment,
    score,
)
from services.validation import InvalidInput
from tests.conftest import form_fields

TODAY = dt.date(2026, 6, 15)


def scores_for(total: int, rules) -> dict[str, int]:
    """Scores of the current indicators adding up to ``total``."""
    codes = indicator_codes(rules)
    scores = {code: 3 for code in codes}
    deficit = 3 * len(codes) - total
    for code in codes:
        cut = min(3, deficit)
        scores[code] -= cut
        deficit -= cut
    assert sum(scores.values()) == total
    return scores


@pytest.fixture
def rules(app):
    return current_rules().snapshot


def user(name) -> User:
    return db.session.scalar(db.select(User).where(User.username == name))


def first_child(village_index=0) -> Child:
    """The village's first child, cleared of the demo's assessments and services: a blank history."""
    village = db.session.scalars(db.select(Village).order_by(Village.sort_order)).all()[village_index]
    child = db.session.scalar(
        db.select(Child).where(Child.village_id == village.id).order_by(Child.id).limit(1)
    )
    db.session.execute(db.delete(SupportService).where(SupportService.child_id == child.id))
    for assessment in db.session.scalars(db.select(Assessment).where(Assessment.child_id == child.id)):
        db.session.delete(assessment)
    db.session.execute(db.delete(Visit).where(Visit.child_id == child.id))
    child.current_level = child.level_assessed_on = child.next_assessment_due = None
    child.registered_on = dt.date(2026, 1, 5)
    db.session.commit()
    return child


def draft(child, total, *, by="social", vetoes=(), on=TODAY, submit=True, **extra) -> Assessment:
    rules = current_rules().snapshot
    team = db.session.scalar(db.select(Staff.id).where(Staff.village_id == child.village_id).limit(1))
    data = AssessmentInput(
        child_id=child.id,
        assessed_on=on,
        scores={k: str(v) for k, v in scores_for(total, rules).items()},
        vetoes=list(vetoes),
        methods=["home_visit"],
        team_ids=[team],
        **extra,
    )
    assessment = save_assessment(data, user_id=user(by).id, today=TODAY, village_ids=None, submit=submit)
    db.session.commit()
    return assessment


# --------------------------------------------------------------------------- scoring


@pytest.mark.parametrize(
    "total, level",
    [
        (33, Level.GREEN),
        (27, Level.GREEN),
        (26, Level.YELLOW),
        (20, Level.YELLOW),
        (19, Level.ORANGE),
        (12, Level.ORANGE),
        (11, Level.RED),
        (0, Level.RED),
    ],
)
def test_score_at_each_threshold_edge(rules, total, level):
    assert score(scores_for(total, rules), [], rules) == (total, level)


@pytest.mark.parametrize("veto", ["no_guardian", "abuse", "living_alone"])
def test_each_veto_forces_red_even_at_full_marks(rules, veto):
    assert score(scores_for(33, rules), [veto], rules) == (33, Level.RED)


def test_score_refuses_incomplete_or_out_of_range(rules):
    incomplete = scores_for(30, rules)
    incomplete.pop(next(iter(incomplete)))
    with pytest.raises(ValueError):
        score(incomplete, [], rules)
    bad = scores_for(30, rules)
    bad[next(iter(bad))] = 4
    with pytest.raises(ValueError):
        score(bad, [], rules)
    with pytest.raises(ValueError):
        score(scores_for(30, rules), ["not-a-veto"], rules)


def test_override_without_reason_is_refused(app):
    child = first_child()
    with pytest.raises(AssessmentRefused) as refused:
        draft(child, 30, override_level="orange", override_reason="  ")
    assert "override_reason" in refused.value.errors
    kept = draft(child, 30, override_level="orange", override_reason="监护人近期确诊重病，入户核实")
    assert (kept.computed_level, kept.level, kept.total_score) == ("green", "orange", 30)


def test_self_approval_is_refused_and_director_cannot_review(app):
    child = first_child()
    own = draft(child, 25, by="supervisor")
    with pytest.raises(InvalidInput, match="本人"):
        approve(own, user_id=user("supervisor").id, role="supervisor", today=TODAY)
    other = draft(child, 25, by="social")
    with pytest.raises(InvalidInput, match="督导员"):
        approve(other, user_id=user("director1").id, role="director", today=TODAY)
    assert other.status == AssessmentStatus.SUBMITTED.value


def test_returned_assessment_goes_back_to_draft_with_the_reason(app):
    child = first_child()
    a = draft(child, 25)
    with pytest.raises(InvalidInput):
        return_assessment(a, user_id=user("supervisor").id, role="supervisor", note="")
    return_assessment(a, user_id=user("supervisor").id, role="supervisor", note="请补充入户照片")
    assert a.status == AssessmentStatus.DRAFT.value and a.review_note == "请补充入户照片"


def test_rule_version_is_stable_after_a_threshold_edit(app):
    child = first_child()
    before = draft(child, 26)
    assert before.level == "yellow"
    version_before = before.rule_version_id
    db.session.get(LevelRule, "green").min_score = 26
    db.session.commit()
    after = draft(child, 26)
    assert after.level == "green" and after.rule_version_id != version_before
    db.session.expire_all()
    old = db.session.get(Assessment, before.id)
    assert (old.level, old.total_score, old.rule_version_id) == ("yellow", 26, version_before)
    assert old.rule_version.snapshot["levels"]["green"]["min_score"] == 27
    # The unchanged rules give the unchanged version: no new row per save.
    assert draft(child, 20).rule_version_id == after.rule_version_id


# --------------------------------------------------------------------------- approval


def services_of(child, assessment):
    return db.session.scalars(
        db.select(SupportService).where(
            SupportService.child_id == child.id, SupportService.assessment_id == assessment.id
        )
    ).all()


@pytest.mark.parametrize(
    "total, vetoes, kinds, days",
    [
        (30, (), set(), None),
        (22, (), {ServiceKind.ONLINE_PUSH, ServiceKind.LECTURE}, 30),
        (15, (), {ServiceKind.FAMILY_EDUCATION, ServiceKind.COUNSELLING, ServiceKind.LIFE_SKILLS}, 15),
        (30, ("abuse",), {ServiceKind.SAFETY_NET}, 3),
    ],
)
def test_approval_updates_the_child_and_plans_the_tiered_measures(app, total, vetoes, kinds, days):
    child = first_child()
    a = draft(child, total, vetoes=vetoes, on=TODAY - dt.timedelta(days=2))
    outcome = approve(a, user_id=user("supervisor").id, role="supervisor", today=TODAY)
    db.session.commit()
    db.session.expire_all()
    child = db.session.get(Child, child.id)
    level = Level(a.level)
    rule = db.session.get(LevelRule, level.value)
    assert child.current_level == level.value
    assert child.level_assessed_on == TODAY - dt.timedelta(days=2)
    assert child.next_visit_due == child.level_assessed_on + dt.timedelta(days=rule.visit_days)
    assert child.next_assessment_due == child.level_assessed_on + dt.timedelta(days=rule.reassess_days)
    planned = services_of(child, a)
    assert {ServiceKind(s.kind) for s in planned} == kinds
    assert all(s.status == ServiceStatus.PLANNED.value and s.tier == level.value for s in planned)
    assert all(s.due_on == TODAY + dt.timedelta(days=days) for s in planned)
    assert bool(outcome.messages) == (level is Level.RED)


def test_measure_days_are_rule_data_frozen_with_the_assessment(app):
    """Admins set the days within which a level's measures are due; an assessment scored before the
    change keeps the days of its rule version, one scored after gets the new ones."""
    child, other, third = first_child(0), first_child(1), first_child(2)  # blank histories
    before = draft(child, 15)  # orange under the seeded 15 days
    db.session.get(LevelRule, "orange").measure_days = 10
    db.session.get(LevelRule, "red").measure_days = 2
    db.session.commit()
    after = draft(other, 15)
    red = draft(third, 30, vetoes=("abuse",))
    for a in (before, after, red):
        outcome = approve(a, user_id=user("supervisor").id, role="supervisor", today=TODAY)
        db.session.commit()
    assert {s.due_on for s in services_of(child, before)} == {TODAY + dt.timedelta(days=15)}
    assert {s.due_on for s in services_of(other, after)} == {TODAY + dt.timedelta(days=10)}
    assert {s.due_on for s in services_of(third, red)} == {TODAY + dt.timedelta(days=2)}
    assert "请在2日内对接兜底保障政策" in outcome.messages[0]


def test_a_level_with_measures_needs_its_measure_days(client, auth):
    auth.login("admin")
    url = "/admin/level_rule/edit/?id=orange"
    page = client.get(url).get_data(as_text=True)
    assert "分层措施期限（天）" in page
    fields = form_fields(client, url)
    form = {
        **fields,
        "min_score": "12",
        "visit_days": "15",
        "reassess_days": "90",
        "measure_days": "",
    }
    refused = client.post(url, data=form).get_data(as_text=True)
    assert "请填写分层赋能措施的落实期限" in refused
    db.session.expire_all()
    assert db.session.get(LevelRule, "orange").measure_days == 15
    form["measure_days"] = "20"
    assert client.post(url, data=form).status_code == 302
    db.session.expire_all()
    assert db.session.get(LevelRule, "orange").measure_days == 20


def test_worsened_is_marked_against_the_previous_approved_assessment(app):
    child = first_child()
    supervisor = user("supervisor").id
    first = draft(child, 30, on=TODAY - dt.timedelta(days=60))
    approve(first, user_id=supervisor, role="supervisor", today=TODAY)
    second = draft(child, 15, on=TODAY - dt.timedelta(days=5))
    approve(second, user_id=supervisor, role="supervisor", today=TODAY)
    third = draft(child, 22, on=TODAY)
    approve(third, user_id=supervisor, role="supervisor", today=TODAY)
    db.session.commit()
    assert (first.worsened, second.worsened, third.worsened) == (False, True, False)
    # A late entry of an older assessment does not move the current level.
    late = draft(child, 5, on=TODAY - dt.timedelta(days=30))
    outcome = approve(late, user_id=supervisor, role="supervisor", today=TODAY)
    db.session.commit()
    assert not outcome.current and db.session.get(Child, child.id).current_level == "yellow"


def test_same_open_measure_is_not_planned_twice(app):
    child = first_child()
    supervisor = user("supervisor").id
    approve(
        draft(child, 22, on=TODAY - dt.timedelta(days=9)), user_id=supervisor, role="supervisor", today=TODAY
    )
    approve(draft(child, 21), user_id=supervisor, role="supervisor", today=TODAY)
    db.session.commit()
    pushes = db.session.scalars(
        db.select(SupportService).where(
            SupportService.child_id == child.id, SupportService.kind == ServiceKind.ONLINE_PUSH.value
        )
    ).all()
    assert len(pushes) == 1


def test_online_push_for_many_families_refuses_a_child_out_of_scope(app):
    own = db.session.scalars(
        db.select(Child.id)
        .where(Child.village_id == first_child(0).village_id, Child.archived_at.is_(None))
        .limit(5)
    ).all()
    other = first_child(1).id
    approve(
        draft(db.session.get(Child, own[0]), 22),
        user_id=user("supervisor").id,
        role="supervisor",
        today=TODAY,
    )
    push = dict(
        delivered_on=TODAY,
        content="科学育儿第3期",
        provider_id=None,
        village_ids=[first_child(0).village_id],
        today=TODAY,
    )
    # A child the page could not have offered refuses the whole save: nothing is written.
    with pytest.raises(InvalidInput, match="1名不在您的管理范围内"):
        record_online_push(own + [other], **push)
    db.session.rollback()
    assert not db.session.scalars(
        db.select(SupportService.id).where(SupportService.content == "科学育儿第3期")
    ).all()
    n = record_online_push(own, **push)
    db.session.commit()
    assert n == len(own)
    pushes = db.session.scalars(
        db.select(SupportService).where(
            SupportService.kind == ServiceKind.ONLINE_PUSH.value, SupportService.content == "科学育儿第3期"
        )
    ).all()
    assert sorted(p.child_id for p in pushes) == sorted(own)
    assert all(p.status == ServiceStatus.DELIVERED.value and p.delivered_on == TODAY for p in pushes)
    # The planned push of the assessed child was delivered, not duplicated.
    assert not db.session.scalars(
        db.select(SupportService).where(
            SupportService.child_id == own[0],
            SupportService.kind == ServiceKind.ONLINE_PUSH.value,
            SupportService.status == ServiceStatus.PLANNED.value,
        )
    ).all()


# --------------------------------------------------------------------------- through the panel


def form_data(client, child, total, rules, action="submit", **extra):
    fields = form_fields(client, f"/admin/assessment-form/new/?child_id={child.id}")
    team = db.session.scalar(db.select(Staff.id).where(Staff.village_id == child.village_id).limit(1))
    data = {
        **fields,
        "child_id": child.id,
        "assessed_on": TODAY.isoformat(),
        "methods": ["home_visit", "interview"],
        "team": [team],
        "action": action,
    }
    data.update({f"score_{k}": v for k, v in scores_for(total, rules).items()})
    data.update(extra)
    return data


def test_form_saves_submits_and_supervisor_approves(client, auth, rules):
    clock.set_today(TODAY)
    child = first_child()
    auth.login("director1")
    page = client.get(f"/admin/assessment-form/new/?child_id={child.id}").get_data(as_text=True)
    assert "身体健康" in page and "儿童独自居住无人照料" in page and "assessment-form.js" in page
    response = client.post("/admin/assessment-form/save/", data=form_data(client, child, 18, rules))
    assert response.status_code == 302
    a = db.session.scalar(db.select(Assessment).where(Assessment.child_id == child.id))
    assert (a.status, a.total_score, a.level) == ("submitted", 18, "orange")
    # The director cannot approve; the supervisor can.
    fields = form_fields(client, f"/admin/assessment-form/edit/?id={a.id}")
    assert client.post(f"/admin/assessment-form/approve/?id={a.id}", data={**fields}).status_code == 403
    auth.logout()
    auth.login("supervisor")
    fields = form_fields(client, f"/admin/assessment-form/edit/?id={a.id}")
    client.post(f"/admin/assessment-form/approve/?id={a.id}", data={**fields})
    db.session.expire_all()
    assert db.session.get(Assessment, a.id).status == "approved"
    assert db.session.get(Child, child.id).current_level == "orange"
    history = client.get(f"/admin/assessment-form/child/?id={child.id}").get_data(as_text=True)
    assert "一对一家庭教育指导" in history and "已审核" in history


def test_form_keeps_input_and_shows_the_error_next_to_the_field(client, auth, rules):
    clock.set_today(TODAY)
    child = first_child()
    auth.login("social")
    data = form_data(client, child, 30, rules, override_level="red", override_reason="")
    page = client.post("/admin/assessment-form/save/", data=data).get_data(as_text=True)
    assert "调整等级必须填写书面理由" in page
    assert 'value="red" selected' in page
    assert db.session.scalar(db.select(Assessment.id).where(Assessment.child_id == child.id)) is None


def test_director_cannot_assess_or_see_another_village(client, auth, rules):
    clock.set_today(TODAY)
    other = first_child(1)
    a = draft(other, 25)
    auth.login("director1")
    assert client.get(f"/admin/assessment-form/new/?child_id={other.id}").status_code == 404
    assert client.get(f"/admin/assessment-form/edit/?id={a.id}").status_code == 404
    assert client.get(f"/admin/assessment-form/child/?id={other.id}").status_code == 404
    listing = client.get("/admin/assessment/").get_data(as_text=True)
    assert other.name not in listing
    data = form_data(client, first_child(0), 25, rules, child_id=other.id)
    page = client.post("/admin/assessment-form/save/", data=data, follow_redirects=True).get_data(
        as_text=True
    )
    assert "负责范围" in page


def test_service_marked_delivered_needs_its_date(client, auth):
    clock.set_today(TODAY)
    child = first_child()
    approve(draft(child, 15), user_id=user("supervisor").id, role="supervisor", today=TODAY)
    db.session.commit()
    service = db.session.scalar(db.select(SupportService).where(SupportService.child_id == child.id).limit(1))
    auth.login("social")
    url = f"/admin/support_service/edit/?id={service.id}"
    fields = form_fields(client, url)
    data = {
        **fields,
        "child": child.id,
        "kind": service.kind,
        "tier": service.tier,
        "status": "delivered",
        "due_on": service.due_on.isoformat(),
        "delivered_on": "",
        "duration_minutes": "60",
        "content": "入户指导",
        "outcome": "家长掌握了沟通方法",
        "version_seen": service.version,
    }
    page = client.post(url, data=data).get_data(as_text=True)
    assert "已落实的服务请填写落实日期" in page
    data["delivered_on"] = TODAY.isoformat()
    client.post(url, data=data)
    db.session.expire_all()
    kept = db.session.get(SupportService, service.id)
    assert (kept.status, kept.delivered_on, kept.outcome) == ("delivered", TODAY, "家长掌握了沟通方法")


def test_bulk_online_push_page_records_every_matching_family_of_the_village(client, auth):
    clock.set_today(TODAY)
    auth.login("director1")
    village_id = user("director1").village_id
    url = f"/admin/support_service/online-push/?village={village_id}&level=green"
    page = client.get(url).get_data(as_text=True)
    greens = db.session.scalars(
        db.select(Child.id).where(
            Child.village_id == village_id, Child.current_level == "green", Child.archived_at.is_(None)
        )
    ).all()
    assert greens and all(f'value="{cid}"' in page for cid in greens)
    client.post(
        url,
        data={
            **form_fields(client, url),
            "village": village_id,
            "level": "green",
            "all_matching": "1",
            "delivered_on": TODAY.isoformat(),
            "content": "亲子沟通技巧（第5期）",
        },
    )
    recorded = db.session.scalars(
        db.select(SupportService.child_id).where(SupportService.content == "亲子沟通技巧（第5期）")
    ).all()
    assert sorted(recorded) == sorted(greens)


def test_child_list_links_to_the_level_history(client, auth):
    auth.login("clerk")
    listing = client.get("/admin/child/").get_data(as_text=True)
    assert "/admin/assessment-form/child/?id=" in listing


def test_refresh_level_follows_the_latest_approved_assessment(app):
    child = first_child()
    supervisor = user("supervisor").id
    older = draft(child, 30, on=TODAY - dt.timedelta(days=40))
    approve(older, user_id=supervisor, role="supervisor", today=TODAY)
    newer = draft(child, 15, on=TODAY - dt.timedelta(days=10))
    approve(newer, user_id=supervisor, role="supervisor", today=TODAY)
    db.session.execute(db.delete(SupportService).where(SupportService.child_id == child.id))
    db.session.delete(newer)  # e.g. moved to another record by a merge
    refresh_level(child)
    assert (child.current_level, child.level_assessed_on) == ("green", TODAY - dt.timedelta(days=40))
    db.session.delete(older)
    refresh_level(child)
    db.session.flush()
    # no assessment left: visited as an unassessed child, counted from its registration (no visits)
    assert child.current_level is None
    assert child.next_visit_due == child.registered_on + dt.timedelta(days=30)
