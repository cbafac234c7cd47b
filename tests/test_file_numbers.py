"""档案编号: town-village-year-sequence, given at registration on every path, never given twice."""

import datetime as dt
import re
import threading

from models import Child, FileCounter, Setting, Village, db
from seeds.demo import id_number
from services import clock, file_numbers
from services.duplicates import merge_children
from tests.conftest import AuthActions, csrf_token

PATTERN = re.compile(r"^LY-[A-Z]+-\d{4}-\d{4}$")
_serial = iter(range(700, 990))


def new_child(village_id: int, name: str = "编号测试") -> Child:
    child = Child(
        name=name,
        id_number=id_number(dt.date(2015, 5, 1), next(_serial), True),
        birth_date=dt.date(2015, 5, 1),
        gender="M",
        village_id=village_id,
    )
    db.session.add(child)
    db.session.commit()
    return child


def villages() -> list[Village]:
    return db.session.scalars(db.select(Village).order_by(Village.sort_order)).all()


def counter(village_id: int, year: int) -> int:
    row = db.session.get(FileCounter, (village_id, year))
    return row.last if row else 0


def test_every_demo_child_has_a_distinct_number_of_its_village(app):
    rows = db.session.execute(
        db.select(Child.file_no, Village.code).join(Village, Village.id == Child.village_id)
    ).all()
    assert rows and all(PATTERN.match(number) for number, _ in rows)
    assert all(number.split("-")[1] == code for number, code in rows)
    assert len({number for number, _ in rows}) == len(rows)


def test_a_registered_child_takes_the_next_number_of_its_village_and_year(app):
    first, second = villages()[:2]
    year = clock.today().year
    last = counter(first.id, year)
    a = new_child(first.id)
    b = new_child(first.id)
    c = new_child(second.id)
    assert a.file_no == f"LY-{first.code}-{year}-{last + 1:04d}"
    assert b.file_no == f"LY-{first.code}-{year}-{last + 2:04d}"
    assert c.file_no.startswith(f"LY-{second.code}-{year}-")
    assert counter(first.id, year) == last + 2


def test_a_new_year_starts_a_new_sequence_and_the_town_code_is_a_setting(app):
    village = villages()[0]
    db.session.get(Setting, "town_code").value = "LYZ"
    db.session.commit()
    clock.set_today(dt.date(2027, 1, 2))
    child = new_child(village.id)
    assert child.file_no == f"LYZ-{village.code}-2027-0001"


def test_numbers_are_never_given_again(app):
    """Archiving, merging away and even deleting a child leave its number used: the next child gets a new one."""
    village = villages()[0]
    a, b, c = new_child(village.id, "甲"), new_child(village.id, "乙"), new_child(village.id, "丙")
    taken = {a.file_no, b.file_no, c.file_no}
    merge_children(a.id, b.id, None, note="重复登记")
    db.session.commit()
    db.session.refresh(b)
    assert b.is_archived and b.file_no in taken and a.file_no in taken  # both keep theirs
    db.session.delete(db.session.get(Child, c.id))
    db.session.commit()
    d = new_child(village.id, "丁")
    assert d.file_no not in taken


def test_a_number_already_on_a_file_is_skipped(app):
    """A village code reused after a rename could make the counter meet a number in use: it is skipped."""
    village = villages()[0]
    year = clock.today().year
    upcoming = f"LY-{village.code}-{year}-{counter(village.id, year) + 1:04d}"
    other = new_child(villages()[1].id)
    other.file_no = upcoming
    db.session.commit()
    child = new_child(village.id)
    assert child.file_no != upcoming and child.file_no.startswith(f"LY-{village.code}-{year}-")


def test_registration_through_the_form_shows_the_number(app, client):
    village = villages()[0]
    AuthActions(client).login("director1")
    token = csrf_token(client, "/admin/child/new/")
    number = id_number(dt.date(2016, 2, 2), 950, False)
    client.post(
        "/admin/child/new/",
        data={
            "csrf_token": token,
            "name": "表单建档",
            "id_number": number,
            "birth_date": "2016-02-02",
            "gender": "F",
            "village": str(village.id),
        },
    )
    child = db.session.scalar(db.select(Child).where(Child.id_number == number))
    assert child is not None and PATTERN.match(child.file_no)
    assert child.file_no in client.get(f"/admin/dossier/?id={child.id}").get_data(as_text=True)


def test_concurrent_registrations_get_different_numbers(app):
    """Two registrations at once (two threads, two connections) each take their own number."""
    village = villages()[2]
    year = clock.today().year
    before = counter(village.id, year)
    serials = {0: list(range(600, 620)), 1: list(range(620, 640))}
    errors = []
    barrier = threading.Barrier(2)

    def register(worker: int):
        with app.app_context():
            try:
                barrier.wait()
                for serial in serials[worker]:
                    db.session.add(
                        Child(
                            name=f"并发{worker}",
                            id_number=id_number(dt.date(2014, 7, 7), serial, False),
                            birth_date=dt.date(2014, 7, 7),
                            gender="F",
                            village_id=village.id,
                        )
                    )
                    db.session.commit()
            except Exception as exc:  # noqa: BLE001 - reported to the test below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=register, args=(w,)) for w in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    db.session.expire_all()
    numbers = db.session.scalars(db.select(Child.file_no).where(Child.name.in_(["并发0", "并发1"]))).all()
    sequences = sorted(int(n.rsplit("-", 1)[1]) for n in numbers)
    assert sequences == list(range(before + 1, before + 41))
    assert counter(village.id, year) == before + 40


def test_numbers_for_reserves_a_block_in_order(app):
    village = villages()[3]
    year = clock.today().year
    before = counter(village.id, year)
    numbers = file_numbers.numbers_for(db.session, [(village.id, year)] * 3)
    assert [int(n.rsplit("-", 1)[1]) for n in numbers] == [before + 1, before + 2, before + 3]
