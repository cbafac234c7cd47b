"""The child register: validation with Chinese messages, audit, conflicts, archive and restore, search."""

import datetime as dt
import re

import pytest
from stdnum.cn import ric

from models import AuditLog, Category, Child, ChildGuardian, Guardian, User, Village, db
from services.register import DUPLICATE_ELSEWHERE
from services.validation import InvalidInput, clean_id_number, clean_phone, mask_id_number
from tests.conftest import PASSWORD, a_child, csrf_token, form_fields


def valid_id(body17: str) -> str:
    return body17 + ric.calc_check_digit(body17 + "0")


GOOD_ID = valid_id("50010220160315002")  # girl (even serial digit), born 2016-03-15


def own_village(username="director1"):
    return db.session.scalar(db.select(User).where(User.username == username)).village_id


def child_form(client, **overrides):
    data = {
        "name": "测试儿童",
        "id_number": GOOD_ID,
        "gender": "",
        "birth_date": "",
        "village": str(own_village()),
        "address": "云岭村3组",
        **form_fields(client, "/admin/child/new/"),
    }
    data.update(overrides)
    return data


def post_child(client, **overrides):
    return client.post("/admin/child/new/", data=child_form(client, **overrides))


# --- ID number checks (services) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5001022016031500", "应为18位"),
        ("50010220160315002A", "只能由数字组成"),
        (GOOD_ID[:-1] + ("0" if GOOD_ID[-1] != "0" else "1"), "校验位不正确"),
        (valid_id("99999920160315002"), "行政区划代码"),
        (valid_id("50010220161335002"), "出生日期"),
        (valid_id("50010230160315002"), "晚于今天"),
        ("", "请填写身份证号"),
    ],
)
def test_id_number_faults(value, message):
    with pytest.raises(InvalidInput, match=message):
        clean_id_number(value)


def test_id_number_lower_x_is_normalised():
    body = "50010220160315001"
    for digit in range(10):
        candidate = valid_id(body[:-1] + str(digit))
        if candidate.endswith("X"):
            assert clean_id_number(candidate.lower()) == candidate
            return
    raise AssertionError("no ID number ending in X in this range: pick another body")


@pytest.mark.parametrize("phone", ["13912345678", "023-72345678", "02372345678"])
def test_phone_accepted(phone):
    assert clean_phone(phone) == phone


@pytest.mark.parametrize("phone", ["1391234567", "12345678901", "abc", "023-123"])
def test_phone_refused(phone):
    with pytest.raises(InvalidInput, match="电话号码格式不正确"):
        clean_phone(phone)


def test_mask():
    assert mask_id_number("500102201603150021") == "5001**********0021"


# --- the child form -------------------------------------------------------------------------


def test_create_child_fills_birth_date_and_gender(app, client, auth):
    auth.login("director1")
    response = post_child(client)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    child = db.session.scalar(db.select(Child).where(Child.id_number == GOOD_ID))
    assert child.birth_date == dt.date(2016, 3, 15)
    assert child.gender == "F"
    assert child.name_pinyin == "ceshiertong" and child.name_initials == "cset"


def test_wrong_check_digit_keeps_what_was_typed(app, client, auth):
    auth.login("director1")
    bad = GOOD_ID[:-1] + ("0" if GOOD_ID[-1] != "0" else "1")
    page = post_child(client, id_number=bad, address="保留的地址").get_data(as_text=True)
    assert "身份证号校验位不正确" in page
    assert "保留的地址" in page and bad in page
    assert db.session.scalar(db.select(Child).where(Child.id_number == bad)) is None


def test_birth_date_must_agree_with_id_number(app, client, auth):
    auth.login("clerk")
    page = post_child(client, birth_date="2016-03-16").get_data(as_text=True)
    assert "出生日期与身份证号不一致" in page


def test_gender_must_agree_with_id_number(app, client, auth):
    auth.login("clerk")
    page = post_child(client, gender="M").get_data(as_text=True)
    assert "性别与身份证号不一致" in page


def test_name_trimmed_and_limited(app, client, auth):
    auth.login("clerk")
    page = post_child(client, name="长" * 51).get_data(as_text=True)
    assert "不能超过50个字" in page
    post_child(client, name="  张三  ")
    assert db.session.scalar(db.select(Child.name).where(Child.id_number == GOOD_ID)) == "张三"


def test_duplicate_id_in_other_village_reveals_nothing_to_a_director(app, client, auth):
    other = a_child(Child.village_id != own_village())
    auth.login("director1")
    page = post_child(client, id_number=other.id_number).get_data(as_text=True)
    assert DUPLICATE_ELSEWHERE in page
    assert other.name not in page


def test_duplicate_id_names_the_child_to_a_clerk(app, client, auth):
    other = a_child(Child.village_id != own_village())
    auth.login("clerk")
    page = post_child(client, id_number=other.id_number).get_data(as_text=True)
    assert "该身份证号已登记" in page and other.name in page


def test_child_with_new_and_existing_guardians_inline(app, client, auth):
    sibling = a_child(Child.village_id == own_village())
    shared = sibling.guardian_links[0].guardian
    auth.login("director1")
    category = db.session.scalar(db.select(Category).where(Category.code == "low_income"))
    response = post_child(
        client,
        categories=[str(category.id)],
        **{
            "guardian_links-0-guardian": str(shared.id),
            "guardian_links-0-relation": "mother",
            "guardian_links-0-is_primary": "y",
            "guardian_links-1-new_name": "新外婆",
            "guardian_links-1-new_phone": "13911112222",
            "guardian_links-1-relation": "maternal",
            "guardian_links-1-new_status": "normal",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    child = db.session.scalar(db.select(Child).where(Child.id_number == GOOD_ID))
    names = sorted(link.guardian.name for link in child.guardian_links)
    assert names == sorted([shared.name, "新外婆"])
    assert [c.code for c in child.categories] == ["low_income"]
    # The shared guardian now has both siblings.
    assert (
        len(db.session.scalars(db.select(ChildGuardian).where(ChildGuardian.guardian_id == shared.id)).all())
        >= 2
    )
    new = db.session.scalar(db.select(Guardian).where(Guardian.name == "新外婆"))
    assert new.village_id == own_village()


def test_bad_guardian_phone_inline_is_refused(app, client, auth):
    auth.login("director1")
    page = post_child(
        client,
        **{
            "guardian_links-0-new_name": "某人",
            "guardian_links-0-new_phone": "123",
            "guardian_links-0-relation": "father",
        },
    ).get_data(as_text=True)
    assert "电话号码格式不正确" in page
    assert db.session.scalar(db.select(Child).where(Child.id_number == GOOD_ID)) is None


# --- audit, conflicts, archive ---------------------------------------------------------------


def _edit(client, child, **changes):
    page = client.get(f"/admin/child/edit/?id={child.id}").get_data(as_text=True)
    import re

    version = re.search(r'id="version_seen" name="version_seen" type="hidden" value="(\d+)"', page).group(1)
    data = {
        "name": child.name,
        "id_number": child.id_number,
        "gender": child.gender,
        "birth_date": child.birth_date.isoformat(),
        "village": str(child.village_id),
        "address": child.address or "",
        "version_seen": version,
        "csrf_token": csrf_token(client, f"/admin/child/edit/?id={child.id}"),
    }
    data.update(changes)
    return data


def test_audit_rows_for_create_update_archive(app, client, auth):
    auth.login("clerk")
    post_child(client)
    child = db.session.scalar(db.select(Child).where(Child.id_number == GOOD_ID))
    client.post(f"/admin/child/edit/?id={child.id}", data=_edit(client, child, address="新地址"))
    token = csrf_token(client, f"/admin/child/archive/?id={child.id}")
    client.post(
        f"/admin/child/archive/?id={child.id}",
        data={"status": "moved", "reason": "随父母迁居", "csrf_token": token},
    )
    rows = db.session.scalars(
        db.select(AuditLog)
        .where(AuditLog.table_name == "child", AuditLog.record_id == child.id)
        .order_by(AuditLog.id)
    ).all()
    actions = [r.action for r in rows]
    assert actions[:3] == ["create", "update", "archive"]
    assert rows[1].changes["address"] == ["云岭村3组", "新地址"]
    assert rows[1].username == "clerk"
    assert rows[0].changes["id_number"][1] == mask_id_number(GOOD_ID)  # never in clear in the log


def test_concurrent_edit_gets_a_conflict_message(app, client, auth):
    child = a_child(Child.village_id == own_village())
    auth.login("clerk")
    first = _edit(client, child, address="甲改的地址")
    second = _edit(client, child, address="乙改的地址")
    assert client.post(f"/admin/child/edit/?id={child.id}", data=first).status_code == 302
    page = client.post(f"/admin/child/edit/?id={child.id}", data=second).get_data(as_text=True)
    assert "保存冲突" in page
    assert "<li>住址（clerk" in page  # the changed field by its Chinese label, and who changed it
    assert "甲改的地址" in page  # shows what changed
    assert "乙改的地址" in page  # and keeps what the second person typed
    db.session.expire_all()
    assert db.session.get(Child, child.id).address == "甲改的地址"


def test_archive_and_restore(app, client, auth):
    child = a_child(Child.village_id == own_village())
    auth.login("clerk")
    token = csrf_token(client, f"/admin/child/archive/?id={child.id}")
    page = client.post(
        f"/admin/child/archive/?id={child.id}", data={"status": "moved", "reason": "", "csrf_token": token}
    ).get_data(as_text=True)
    assert "请填写归档说明" in page
    client.post(
        f"/admin/child/archive/?id={child.id}",
        data={"status": "moved", "reason": "迁往外区", "csrf_token": token},
    )
    db.session.expire_all()
    assert db.session.get(Child, child.id).archived_at is not None
    client.get("/admin/child/")  # shows (and so consumes) the "已归档" message
    assert child.name not in client.get(f"/admin/child/?search={child.id_number}").get_data(as_text=True)
    assert child.name in client.get("/admin/child_archive/").get_data(as_text=True)
    token = csrf_token(client, f"/admin/child_archive/restore/?id={child.id}")
    client.post(f"/admin/child_archive/restore/?id={child.id}", data={"csrf_token": token})
    db.session.expire_all()
    restored = db.session.get(Child, child.id)
    assert restored.archived_at is None and restored.status == "active"


def test_only_admin_can_hard_delete(app, client, auth):
    from services.register import archive_child

    child = Child(
        name="待删除",
        id_number=GOOD_ID,
        birth_date=dt.date(2016, 3, 15),
        gender="F",
        village_id=own_village(),
    )
    db.session.add(child)
    db.session.commit()

    archive_child(child, "moved", "测试")
    db.session.commit()
    child_id = child.id
    auth.login("clerk")
    token = csrf_token(client, "/admin/child_archive/")
    assert (
        client.post("/admin/child_archive/delete/", data={"id": child_id, "csrf_token": token}).status_code
        == 403
    )
    auth.logout()
    auth.login("admin")
    token = csrf_token(client, "/admin/child_archive/")
    client.post("/admin/child_archive/delete/", data={"id": child_id, "csrf_token": token})
    db.session.expire_all()
    assert db.session.get(Child, child_id) is None
    deleted = db.session.scalar(
        db.select(AuditLog).where(
            AuditLog.action == "delete", AuditLog.table_name == "child", AuditLog.record_id == child_id
        )
    )
    assert deleted is not None and deleted.username == "admin"


# --- search, masking, reveal ------------------------------------------------------------------


def test_search_by_name_pinyin_initials_id_and_last4(app, client, auth):
    auth.login("clerk")
    post_child(client, name="张小明")
    for term in ("张小明", "张", "小明", "zhangxiaoming", "zxm", GOOD_ID, GOOD_ID[-4:]):
        page = client.get(f"/admin/child/?search={term}").get_data(as_text=True)
        assert "张小明" in page, term
    assert "张小明" not in client.get("/admin/child/?search=qqq").get_data(as_text=True)


def test_director_search_stays_in_own_village(app, client, auth):
    other = a_child(Child.village_id != own_village())
    auth.login("director1")
    page = client.get(f"/admin/child/?search={other.id_number}").get_data(as_text=True)
    assert other.id_number[-4:] not in page or other.name not in page


def test_id_numbers_masked_in_lists_and_reveal_is_logged(app, client, auth):
    child = db.session.scalar(
        db.select(Child).where(Child.village_id == own_village()).order_by(Child.id.desc())
    )
    auth.login("director1")
    page = client.get("/admin/child/").get_data(as_text=True)
    assert child.id_number not in page and mask_id_number(child.id_number) in page
    token = csrf_token(client, "/admin/child/")
    response = client.post(f"/admin/child/reveal/?id={child.id}", headers={"X-CSRFToken": token})
    assert response.get_json()["id_number"] == child.id_number
    assert db.session.scalar(
        db.select(AuditLog).where(AuditLog.action == "reveal", AuditLog.record_id == child.id)
    )


def test_inspector_cannot_reveal(app, client, auth):
    child = a_child()
    auth.login("inspector")
    token = csrf_token(client, "/admin/child/")
    response = client.post(f"/admin/child/reveal/?id={child.id}", headers={"X-CSRFToken": token})
    assert response.status_code == 403


def test_director_cannot_reveal_other_village(app, client, auth):
    other = a_child(Child.village_id != own_village())
    auth.login("director1")
    token = csrf_token(client, "/admin/child/")
    response = client.post(f"/admin/child/reveal/?id={other.id}", headers={"X-CSRFToken": token})
    assert response.status_code == 404


def test_post_without_csrf_token_is_refused(app, client, auth):
    auth.login("clerk")
    data = child_form(client)
    data.pop("csrf_token")
    assert client.post("/admin/child/new/", data=data).status_code == 400


def test_password_policy_and_change(app, client, auth):
    auth.login("clerk")
    url = "/admin/account/password/"
    token = csrf_token(client, url)
    page = client.post(
        url, data={"current": PASSWORD, "new": "short", "confirm": "short", "csrf_token": token}
    )
    assert "至少10个字符" in page.get_data(as_text=True)
    page = client.post(
        url, data={"current": PASSWORD, "new": "clerk", "confirm": "clerk", "csrf_token": token}
    )
    assert "密码" in page.get_data(as_text=True)
    response = client.post(
        url,
        data={
            "current": PASSWORD,
            "new": "a-long-new-pass",
            "confirm": "a-long-new-pass",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    auth.logout()
    assert auth.login("clerk", "a-long-new-pass").status_code == 302


def test_security_headers(app, client, auth):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self' 'nonce-" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"]
    auth.login("clerk")
    cookie = client.get_cookie("session")
    assert cookie.http_only and cookie.same_site == "Lax"


def test_new_session_on_login(app, client, auth):
    client.get("/login")
    with client.session_transaction() as sess:
        sess["planted"] = "before-login"
    auth.login("clerk")
    with client.session_transaction() as sess:
        assert "planted" not in sess


def test_idle_timeout_logs_out(app, client, auth):
    from models import UserSession, utcnow

    auth.login("clerk")
    db.session.execute(db.update(UserSession).values(last_seen_at=utcnow() - dt.timedelta(minutes=31)))
    db.session.commit()
    response = client.get("/admin/child/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "登录已超时" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert db.session.scalar(db.select(UserSession.ended_at)) is not None


def test_villages_list_for_director_is_own_village(app, client, auth):
    auth.login("director1")
    names = db.session.scalars(db.select(Village.name)).all()
    page = client.get("/admin/village/").get_data(as_text=True)
    visible = [n for n in names if n in page]
    assert visible == [db.session.get(Village, own_village()).name]


def test_list_toolbar_reads_in_our_words(app, client, auth):
    """Our catalogue wins over Flask-Admin's where both translate a text (the page-size button)."""
    auth.login("clerk")
    page = client.get("/admin/child/").get_data(as_text=True)
    assert re.search(r">\s*20 条/页\s*<", page)
    assert "项目" not in page
    assert "添加筛选条件" in page  # Flask-Admin's own words are still there
