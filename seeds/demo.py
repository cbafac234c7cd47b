"""Deterministic, obviously fictional demo data (fixed random seed, Fuling region code 500102).

Written with bulk inserts so the benchmark's 100,000 children take seconds, not minutes.
"""

import datetime as dt
import random

from sqlalchemy import insert
from werkzeug.security import generate_password_hash

from choices import (
    ChildStatus,
    Gender,
    GuardianStatus,
    IdentificationSource,
    Relation,
    Role,
    StaffKind,
    VillageKind,
)
from models import (
    Category,
    Child,
    ChildGuardian,
    Guardian,
    Setting,
    Staff,
    User,
    Village,
    child_category,
    db,
    given_name,
    pinyin_keys,
    user_village,
)
from seeds.demo_activities import seed_activities
from seeds.demo_assessment import seed_assessments
from seeds.demo_funds import seed_funds
from seeds.demo_history import seed_archives
from seeds.demo_process import seed_process
from seeds.demo_records import seed_records
from seeds.demo_supervision import seed_supervision
from seeds.reference import seed_reference
from services import clock, file_numbers, filing

DEMO_PASSWORD = "tonghu-demo-2026"
REGION = "500102"  # 重庆市涪陵区

VILLAGES = [
    ("云岭村", "YL", VillageKind.VILLAGE, 107.352, 29.742),
    ("桃源村", "TY", VillageKind.VILLAGE, 107.381, 29.751),
    ("松林村", "SL", VillageKind.VILLAGE, 107.410, 29.745),
    ("石泉村", "SQ", VillageKind.VILLAGE, 107.342, 29.718),
    ("青杠村", "QG", VillageKind.VILLAGE, 107.372, 29.722),
    ("枫香村", "FX", VillageKind.VILLAGE, 107.402, 29.717),
    ("竹溪村", "ZX", VillageKind.VILLAGE, 107.338, 29.692),
    ("梨花村", "LH", VillageKind.VILLAGE, 107.368, 29.695),
    ("金盆村", "JP", VillageKind.VILLAGE, 107.398, 29.690),
    ("白鹤村", "BH", VillageKind.VILLAGE, 107.428, 29.700),
    ("罗云社区", "LYSQ", VillageKind.COMMUNITY, 107.384, 29.706),
    ("新街社区", "XJSQ", VillageKind.COMMUNITY, 107.390, 29.730),
]

SURNAMES = "王李张刘陈杨黄赵周吴徐孙马胡朱郭何罗高林谭冉秦况付"
GIVEN = "小明华丽强军红梅芳静伟磊洋勇艳杰娟涛超秀霞平刚桂英玉兰子涵宇轩浩然欣怡梓萱一诺思雨俊"

DEMO_ACCOUNTS = [
    ("admin", Role.ADMIN, None, "演示管理员"),
    ("clerk", Role.CLERK, None, "演示经办人"),
    ("supervisor", Role.SUPERVISOR, None, "演示督导员"),
    ("director1", Role.DIRECTOR, 0, "演示儿童主任一"),
    ("director2", Role.DIRECTOR, 1, "演示儿童主任二"),
    ("social", Role.SOCIAL, None, "演示社工"),
    ("finance", Role.FINANCE, None, "演示财务"),
    ("inspector", Role.INSPECTOR, None, "演示区级督导"),
]


def id_number(birth: dt.date, serial: int, male: bool, region: str = REGION) -> str:
    """A valid 18-digit ID number: region, birth date, a 3-digit serial whose parity is the gender."""
    from stdnum.cn import ric

    seq = (serial * 2 + (1 if male else 0)) % 1000
    body = f"{region}{birth:%Y%m%d}{seq:03d}"
    return body + ric.calc_check_digit(body + "0")


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def seed_demo(children: int = 240, seed: int = 2026) -> dict:
    rng = random.Random(seed)
    session = db.session
    session.info["skip_audit"] = True
    try:
        seed_reference()
        summary = _seed(session, rng, children)
        setting = session.get(Setting, "demo_data")
        setting.value = "1"
        session.commit()
        sync_id_sequences(session)
    finally:
        session.info.pop("skip_audit", None)
    return summary


def sync_id_sequences(session) -> None:
    """Rows bulk-inserted with explicit ids leave PostgreSQL's sequences behind; move them on."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.flush()
    for table in db.metadata.sorted_tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type, db.Integer):
            continue
        session.execute(
            db.text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', '{pk[0].name}'), "
                f"COALESCE((SELECT MAX({pk[0].name}) FROM {table.name}), 0) + 1, false)"
            )
        )


def _seed(session, rng: random.Random, n_children: int) -> dict:
    villages = []
    for order, (name, code, kind, lon, lat) in enumerate(VILLAGES):
        v = Village(name=name, kind=kind.value, code=code, lon=lon, lat=lat, sort_order=order)
        session.add(v)
        villages.append(v)
    session.flush()

    staff_rows = []
    for v in villages:
        staff_rows.append({"name": _name(rng), "kind": StaffKind.DIRECTOR.value, "village_id": v.id})
        for kind in (
            StaffKind.GRID,
            StaffKind.GRID,
            StaffKind.CADRE,
            StaffKind.CARING_MOTHER,
            StaffKind.VOLUNTEER,
        ):
            staff_rows.append({"name": _name(rng), "kind": kind.value, "village_id": v.id})
    town_staff = [
        StaffKind.SUPERVISOR,
        StaffKind.SUPERVISOR,
        StaffKind.SOCIAL,
        StaffKind.SOCIAL,
        StaffKind.SOCIAL,
        StaffKind.EDUCATION_EXPERT,
        StaffKind.PARTY_LECTURER,
        StaffKind.CARING_MOTHER,
        StaffKind.VOLUNTEER,
        StaffKind.CADRE,
        StaffKind.CADRE,
    ]
    for kind in town_staff:
        staff_rows.append(
            {
                "name": _name(rng),
                "kind": kind.value,
                "village_id": None,
                "organisation": "罗云镇民生服务办"
                if kind is not StaffKind.SOCIAL
                else "涪陵区某社工服务中心（虚构）",
            }
        )
    for i, row in enumerate(staff_rows):
        row.setdefault("organisation", None)
        row.update({"phone": f"1390000{i:04d}", "active": True, "version": 1})
    session.execute(insert(Staff), staff_rows)
    staff = session.scalars(db.select(Staff).order_by(Staff.id)).all()
    directors = {s.village_id: s.id for s in staff if s.kind == StaffKind.DIRECTOR.value}
    mothers = [s.id for s in staff if s.kind == StaffKind.CARING_MOTHER.value]

    password_hash = generate_password_hash(DEMO_PASSWORD, method="scrypt")
    for username, role, village_index, display in DEMO_ACCOUNTS:
        user = User(
            username=username,
            display_name=display,
            role=role.value,
            password_hash=password_hash,
            village_id=villages[village_index].id if village_index is not None else None,
        )
        if role is Role.DIRECTOR:
            user.staff_id = directors[user.village_id]
        if role in (Role.SOCIAL, Role.SUPERVISOR):  # the accounts of the first town-level 社工 and 督导员
            user.staff_id = next(s.id for s in staff if s.kind == role.value)
        session.add(user)
    session.flush()
    social = session.scalar(db.select(User).where(User.username == "social"))
    session.execute(insert(user_village), [{"user_id": social.id, "village_id": v.id} for v in villages[:4]])

    categories = {c.code: c.id for c in session.scalars(db.select(Category))}
    n_guardians = _seed_children(session, rng, villages, directors, mothers, categories, n_children)
    sync_id_sequences(session)
    # Later areas add their demo records here, in dependency order.
    for step in DEMO_STEPS:
        step(session, rng)
        sync_id_sequences(session)
    return {
        "村（社区）": len(villages),
        "工作人员": len(staff_rows),
        "儿童": n_children,
        "监护人": n_guardians,
    }


DEMO_STEPS: list = []
DEMO_STEPS.insert(0, seed_assessments)  # first: later steps (visits, alerts) read the children's levels
DEMO_STEPS.append(seed_archives)  # before visits and alerts: the archived children get none after it
DEMO_STEPS.append(seed_activities)
DEMO_STEPS.append(seed_funds)  # after activities: expenses link to them
DEMO_STEPS.append(seed_supervision)  # after assessments: visits follow the children's levels
DEMO_STEPS.append(seed_process)  # after activities and supervision: feedback on the activities
DEMO_STEPS.append(seed_records)  # last: consent by child id, without drawing from the random stream

_CATEGORY_WEIGHTS = [
    ("orphan", 6),
    ("unsupported", 10),
    ("autism", 6),
    ("disabled", 16),
    ("low_income", 40),
    ("other", 22),
]


def _seed_children(session, rng, villages, directors, mothers, categories, n_children) -> int:
    today = clock.today()
    start = dt.date(2008, 12, 1)
    span = 6131  # days of birth dates; prime, so (i * 37) % span visits each day once per block
    guardian_span = 9001
    guardian_start = dt.date(1968, 1, 1)
    codes = [c for c, _ in _CATEGORY_WEIGHTS]
    weights = [w for _, w in _CATEGORY_WEIGHTS]
    sources = [s.value for s in IdentificationSource]
    relations = [
        Relation.MOTHER,
        Relation.FATHER,
        Relation.GRANDPARENT,
        Relation.MATERNAL_GRANDPARENT,
        Relation.RELATIVE,
    ]
    statuses = [s.value for s in GuardianStatus]
    status_weights = [50, 25, 3, 5, 5, 3, 2, 7]
    pinyin_cache: dict[str, tuple[str, str]] = {}
    batch = 5000
    next_child_id = (session.scalar(db.select(db.func.max(Child.id))) or 0) + 1
    next_guardian_id = (session.scalar(db.select(db.func.max(Guardian.id))) or 0) + 1
    n_guardians = 0
    for offset in range(0, n_children, batch):
        child_rows, cat_rows, guardian_rows, link_rows = [], [], [], []
        for i in range(offset, min(offset + batch, n_children)):
            village = villages[i % len(villages)] if i % 7 else villages[0]
            male = rng.random() < 0.52
            birth = start + dt.timedelta(days=(i * 37) % span)
            name = _name(rng)
            if name not in pinyin_cache:
                pinyin_cache[name] = pinyin_keys(name)
            full, initials = pinyin_cache[name]
            idn = id_number(birth, i // span, male)
            child_id = next_child_id + i
            address = f"{village.name}{rng.randint(1, 12)}组{rng.randint(1, 80)}号"
            # Registered when the plan's screening ran (its first quarter); a few registered lately
            # (seeds/demo_history.py moves a date back to the child's earliest record when earlier).
            late = i % 25 == 3
            registered_on = today - dt.timedelta(days=20 + i % 40 if late else 300 + (i * 7) % 60)
            child_rows.append(
                {
                    "id": child_id,
                    "name": name,
                    "name_pinyin": full,
                    "name_initials": initials,
                    "name_given": given_name(name),
                    "gender": Gender.MALE.value if male else Gender.FEMALE.value,
                    "id_number": idn,
                    "id_last4": idn[-4:],
                    "birth_date": birth,
                    "village_id": village.id,
                    "address": address if i % 50 != 17 else None,  # a few files still being completed
                    "school": "罗云镇中心小学（虚构）" if birth.year >= 2014 else "罗云镇中学（虚构）",
                    "grade": None,
                    "identification_source": rng.choice(sources),
                    "status": ChildStatus.ACTIVE.value,
                    "registered_on": registered_on,
                    "director_id": directors[village.id],
                    "caring_mother_id": rng.choice(mothers) if rng.random() < 0.2 else None,
                    "version": 1,
                }
            )
            chosen = {rng.choices(codes, weights)[0]}
            if rng.random() < 0.25:
                chosen.add(rng.choices(codes, weights)[0])
            for code in chosen:
                cat_rows.append({"child_id": child_id, "category_id": categories[code]})
            if "disabled" in chosen:
                child_rows[-1]["disability_kind"] = rng.choice(["视力", "听力", "肢体", "智力", "言语"])
                child_rows[-1]["disability_grade"] = rng.choice(["一级", "二级", "三级", "四级"])
            else:
                child_rows[-1]["disability_kind"] = None
                child_rows[-1]["disability_grade"] = None
            # Every fifth child is a younger sibling sharing the previous child's guardians.
            if (
                i % 5 == 4
                and link_rows
                and link_rows[-1]["child_id"] == child_id - 1
                and village.id == child_rows[-2]["village_id"]
            ):
                for link in [r for r in link_rows if r["child_id"] == child_id - 1]:
                    link_rows.append({**link, "child_id": child_id})
                continue
            for k in range(1 if rng.random() < 0.4 else 2):
                gid = next_guardian_id + n_guardians
                n_guardians += 1
                g_male = k == 1
                has_id = rng.random() < 0.8
                gbirth = guardian_start + dt.timedelta(days=(gid * 53) % guardian_span)
                guardian_rows.append(
                    {
                        "id": gid,
                        "name": _name(rng),
                        "gender": Gender.MALE.value if g_male else Gender.FEMALE.value,
                        "id_number": id_number(gbirth, 100 + gid // guardian_span, g_male)
                        if has_id
                        else None,
                        "phone": f"138{(gid * 7919) % 100000000:08d}",
                        "status": rng.choices(statuses, status_weights)[0],
                        "low_income": "low_income" in chosen,
                        "village_id": village.id,
                        "version": 1,
                    }
                )
                link_rows.append(
                    {
                        "child_id": child_id,
                        "guardian_id": gid,
                        "relation": rng.choice(relations).value,
                        "is_primary": k == 0,
                    }
                )
        year = clock.today().year
        numbers = file_numbers.numbers_for(session, [(row["village_id"], year) for row in child_rows])
        for row, number in zip(child_rows, numbers, strict=True):
            row["file_no"] = number
        session.execute(insert(Child), child_rows)
        session.execute(insert(child_category), cat_rows)
        if guardian_rows:
            session.execute(insert(Guardian), guardian_rows)
        session.execute(insert(ChildGuardian), link_rows)
        filing.refresh(session, [row["id"] for row in child_rows])
    return n_guardians
