"""建档完成: Child.file_complete follows the child's address, guardian links and categories on every path."""

import re

from sqlalchemy import delete

from models import Category, Child, ChildGuardian, User, db
from services.duplicates import merge_children
from services.filing import stale_children
from tests.test_duplicates import _raw_child
from tests.test_import import ledger, new_id, row, run, upload
from tests.test_register import GOOD_ID, _edit, post_child


def flag(child_id) -> bool:
    return db.session.scalar(db.select(Child.file_complete).where(Child.id == child_id))


def complete_child() -> Child:
    return db.session.scalar(
        db.select(Child).where(Child.file_complete.is_(True), Child.archived_at.is_(None)).order_by(Child.id)
    )


def test_demo_flags_agree_with_the_rows_and_both_kinds_exist(app):
    assert stale_children(db.session) == []
    assert db.session.scalar(db.select(db.func.count()).where(Child.file_complete.is_(True))) > 0
    assert db.session.scalar(db.select(db.func.count()).where(Child.file_complete.is_(False))) > 0


def test_editing_the_address_in_the_panel_clears_and_sets_the_flag(app, client, auth):
    child = complete_child()
    auth.login("clerk")
    categories = [str(c.id) for c in child.categories]
    response = client.post(
        f"/admin/child/edit/?id={child.id}", data=_edit(client, child, address="", categories=categories)
    )
    assert response.status_code == 302
    assert flag(child.id) is False
    db.session.expire_all()
    response = client.post(
        f"/admin/child/edit/?id={child.id}",
        data=_edit(client, child, address="新住址", categories=categories),
    )
    assert response.status_code == 302
    assert flag(child.id) is True
    assert stale_children(db.session) == []


def test_a_new_child_is_complete_only_with_guardian_category_and_address(app, client, auth):
    auth.login("clerk")
    category = db.session.scalar(db.select(Category).order_by(Category.sort_order))
    response = post_child(client, categories=[str(category.id)])  # an address, no guardian
    assert response.status_code == 302
    child = db.session.scalar(db.select(Child).where(Child.id_number == GOOD_ID))
    assert flag(child.id) is False
    db.session.expire_all()
    data = _edit(
        client,
        child,
        categories=[str(category.id)],
        **{
            "guardian_links-0-new_name": "新妈妈",
            "guardian_links-0-new_phone": "13911113333",
            "guardian_links-0-relation": "mother",
            "guardian_links-0-new_status": "normal",
        },
    )
    assert client.post(f"/admin/child/edit/?id={child.id}", data=data).status_code == 302
    assert flag(child.id) is True


def test_removing_and_moving_guardian_links(app):
    giver = complete_child()
    taker = db.session.scalar(
        db.select(Child).where(Child.file_complete.is_(True), Child.id != giver.id).order_by(Child.id)
    )
    for link in list(taker.guardian_links):
        db.session.delete(link)
    db.session.commit()
    assert flag(taker.id) is False
    for link in list(giver.guardian_links):
        link.child = taker  # the link moves to another child: both files change
    db.session.commit()
    assert flag(giver.id) is False and flag(taker.id) is True


def test_a_child_loaded_in_the_session_reads_the_new_flag_after_a_flush(app):
    child = complete_child()
    assert child.file_complete is True
    child.categories = []
    db.session.flush()
    assert child.file_complete is False
    db.session.rollback()
    assert flag(child.id) is True


def test_imported_children_get_their_flags(client, auth):
    rows = [
        row(1, address="云岭村1组"),
        row(2, address="云岭村2组", g1_name=None, g1_relation=None, g1_phone=None),
        row(3),  # no address
    ]
    auth.login("clerk")
    page = upload(client, ledger(rows)).get_data(as_text=True)
    assert "新增儿童 3 名" in run(client, page).get_data(as_text=True)
    flags = {
        n: flag(db.session.scalar(db.select(Child.id).where(Child.id_number == new_id(n)))) for n in (1, 2, 3)
    }
    assert flags == {1: True, 2: False, 3: False}
    assert stale_children(db.session) == []


def test_merging_moves_the_complete_file_to_the_kept_child(app):
    other = complete_child()
    keep = _raw_child(other, id_number=new_id(40, born=other.birth_date), birth_date=other.birth_date)
    db.session.commit()
    assert flag(keep) is False
    merge_children(keep, other.id, None)
    db.session.commit()
    assert flag(keep) is True and flag(other.id) is False
    assert stale_children(db.session) == []


def test_links_deleted_without_the_orm_show_as_stale(app):
    """The check itself can fail: a bulk write that forgets ``refresh`` is caught by it."""
    child = complete_child()
    db.session.execute(delete(ChildGuardian).where(ChildGuardian.child_id == child.id))
    assert stale_children(db.session) == [child.id]


def test_details_and_list_filter_name_what_is_missing(app, client, auth):
    lacking = db.session.scalar(
        db.select(Child).where(Child.file_complete.is_(False), Child.address.is_(None)).order_by(Child.id)
    )
    auth.login("clerk")
    details = client.get(f"/admin/child/details/?id={lacking.id}").get_data(as_text=True)
    assert "不全（缺：住址）" in details
    complete = complete_child()
    assert "齐全" in client.get(f"/admin/child/details/?id={complete.id}").get_data(as_text=True)
    listing = client.get("/admin/").get_data(as_text=True)
    link = re.search(r'id="incomplete-files" href="([^"]+)"|href="([^"]+)" id="incomplete-files"', listing)
    rows = client.get(next(g for g in link.groups() if g).replace("&amp;", "&")).get_data(as_text=True)
    incomplete = db.session.scalars(
        db.select(Child.name).where(Child.file_complete.is_(False), Child.archived_at.is_(None))
    ).all()
    body = rows.split("</thead>")[1]
    assert incomplete and all(name in body for name in incomplete)
    assert complete.name not in body


def test_director_sees_only_own_incomplete_files(app, client, auth):
    own = db.session.scalar(db.select(User.village_id).where(User.username == "director1"))
    lacking = db.session.scalar(
        db.select(Child).where(Child.village_id == own, Child.file_complete.is_(True)).order_by(Child.id)
    )
    lacking.address = None  # one file of director1's village loses its address
    db.session.commit()
    incomplete = db.session.execute(
        db.select(Child.name, Child.village_id).where(
            Child.file_complete.is_(False), Child.archived_at.is_(None)
        )
    ).all()
    mine = [name for name, village_id in incomplete if village_id == own]
    others = [name for name, village_id in incomplete if village_id != own]
    assert mine and others  # the demo has incomplete files in and outside director1's village
    auth.login("director1")
    page = client.get("/admin/").get_data(as_text=True)
    assert f"查看档案不全的 {len(mine)} 名儿童" in page
    href = re.search(r'href="([^"]+)" id="incomplete-files"', page).group(1).replace("&amp;", "&")
    body = client.get(href).get_data(as_text=True).split("</thead>")[1]
    assert all(name in body for name in mine)
    assert not any(name in body for name in set(others) - set(mine))
