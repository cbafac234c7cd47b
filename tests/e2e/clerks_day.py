"""The clerk's day at the desk (issue 13), scripted as a person does it: menus, fields and buttons,
no typed URLs. Every step goes through ``Counter``, which counts what the person does:

- a click (a menu, a button, a radio, a dropdown opened or an option picked with the mouse);
- a key that matters (Enter to pick or to tick, an arrow, a digit choosing from a list);
- a field filled by typing (the characters themselves are counted apart, as ``chars``).

The five tasks are used by tests/e2e/test_clerks_day.py (which fails when a task needs more than
its budget) and by bench/desk.py (``make bench`` prints the same table with estimated seconds).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

# Seconds a person needs (a keystroke-level estimate, as in Card, Moran & Newell): pointing and
# clicking, one key, one typed character, and the moment of deciding what to put in a field.
SECONDS = {"click": 1.4, "key": 0.4, "char": 0.35, "field": 1.2}

# Action budgets of the issue: what each task may take (beyond typed text for the registration;
# the 30 names included for the class).
BUDGETS = {
    "register": 15,
    "parent_class": 45,
    "expense": 10,
    "approval": 3,
    "new_alert": 3,
}
TITLES = {
    "register": "经办人登记儿童（父亲、祖母两名监护人）",
    "parent_class": "儿童主任复制家长课堂并为30人签到",
    "expense": "财务录入一笔¥1,280.00支出",
    "approval": "管理员审批这笔支出",
    "new_alert": "督导员找到新产生的预警",
}


@dataclass
class Counter:
    task: str
    clicks: int = 0
    keys: int = 0
    fields: int = 0
    chars: int = 0
    steps: list[str] = field(default_factory=list)

    def click(self, page_or_locator, selector: str | None = None, note: str = "") -> None:
        target = page_or_locator.locator(selector) if selector else page_or_locator
        target.first.click()
        self.clicks += 1
        self.steps.append(f"点击 {note or selector}")

    def type(self, locator, text: str, note: str = "") -> None:
        locator.click()
        locator.fill("")
        locator.type(text)
        self.fields += 1
        self.chars += len(text)
        self.steps.append(f"输入 {note}：{text}")

    def fill_date(self, locator, value: str, note: str = "") -> None:
        """A native date/time input: the person types the digits (年月日 时分)."""
        locator.fill(value)
        self.fields += 1
        self.chars += len(re.sub(r"\D", "", value))
        self.steps.append(f"输入 {note}：{value}")

    def key(self, page, key: str, note: str = "") -> None:
        page.keyboard.press(key)
        self.keys += 1
        self.steps.append(f"按键 {key} {note}".strip())

    @property
    def actions(self) -> int:
        """Clicks, keys and fields filled."""
        return self.clicks + self.keys + self.fields

    @property
    def beyond_typing(self) -> int:
        """Clicks and keys: what the person does beyond typing into fields."""
        return self.clicks + self.keys

    @property
    def budgeted(self) -> int:
        """The figure the issue's budget is about for this task."""
        return self.beyond_typing if self.task == "register" else self.actions

    @property
    def seconds(self) -> float:
        return (
            self.clicks * SECONDS["click"]
            + self.keys * SECONDS["key"]
            + self.chars * SECONDS["char"]
            + self.fields * SECONDS["field"]
        )


# --------------------------------------------------------------------------- moving around


def menu(page, counter: Counter, group: str, item: str) -> None:
    """Open a menu group and click an entry (through 更多 when the group has moved there)."""
    toggle = page.locator("#main-menu > li.dropdown > a.dropdown-toggle", has_text=group)
    if toggle.count() and toggle.first.is_visible():
        counter.click(toggle, note=f"菜单“{group}”")
    else:
        counter.click(page.locator("#menu-more > a"), note="菜单“更多”")
    counter.click(page.locator("a.dropdown-item:visible", has_text=item), note=f"“{item}”")
    page.wait_for_load_state("load")


def select2_pick(page, counter: Counter, container: str, text: str, note: str) -> None:
    """A select2 box: click it, type a few characters, Enter on the match."""
    counter.click(page.locator(container), note=note)
    box = page.locator(
        "#select2-drop:visible input.select2-input, .select2-drop-active input.select2-input"
    ).first
    box.type(text)
    counter.fields += 1
    counter.chars += len(text)
    page.locator(".select2-drop-active .select2-result-selectable", has_text=text).first.wait_for()
    counter.key(page, "Enter", f"选中 {text}")


# --------------------------------------------------------------------------- the five tasks


def register_child(page, counter: Counter, child: dict) -> None:
    """经办人 registers a child whose father works away and whose grandmother cares for it."""
    menu(page, counter, "儿童档案", "登记儿童")
    counter.type(page.locator("#name"), child["name"], "姓名")
    counter.type(page.locator("#id_number"), child["id_number"], "身份证号")
    page.locator("#id-check.text-success-strong").wait_for()
    select2_pick(page, counter, "#s2id_village a.select2-choice", child["village"], "村（社区）")
    counter.type(page.locator("#address"), child["address"], "住址")
    select2_pick(page, counter, "#s2id_categories", child["category"], "困境类别")
    rows = page.locator("#guardian_links .inline-field")
    first = rows.nth(0)
    counter.type(first.locator("input[name$='-new_name']"), child["father"], "父亲姓名")
    counter.click(first.locator("label", has_text=re.compile("^父$")), note="关系：父")
    counter.click(first.locator("label", has_text="外出务工"), note="监护状态：外出务工")
    counter.type(first.locator("input[name$='-new_phone']"), child["father_phone"], "父亲电话")
    counter.click(page.locator("#guardian_links-button"), note="添加监护人")
    second = rows.nth(1)
    counter.type(second.locator("input[name$='-new_name']"), child["grandmother"], "祖母姓名")
    counter.click(second.locator("label", has_text=re.compile("^祖父母$")), note="关系：祖父母")
    counter.type(second.locator("input[name$='-new_phone']"), child["grandmother_phone"], "祖母电话")
    counter.click(second.locator("label", has_text="主要监护人"), note="主要监护人")
    counter.click(page.locator("input[type=submit][value='保存']"), note="保存")
    page.locator(".alert-success").first.wait_for()  # the saved page, not the form still unloading


def parent_class(page, counter: Counter, names: list[tuple[str, str]], day: dt.date) -> dict:
    """儿童主任 copies the last parent class to ``day`` and signs in people by name or initials.

    ``names``: (what is typed, the roll key of the person meant). Returns what happened."""
    menu(page, counter, "活动与培训", "活动签到")
    counter.click(
        page.locator("#recent-activities tr", has_text="家长").locator("a.copy-activity"), note="复制为新活动"
    )
    page.locator("#starts_at").wait_for()
    page.wait_for_load_state("load")  # activity-form.js moves the end with the start once it has run
    starts = page.locator("#starts_at").input_value()
    counter.fill_date(page.locator("#starts_at"), f"{day.isoformat()}T{starts[11:16]}", "开始时间")
    page.locator("#starts_at").dispatch_event("change")
    counter.click(page.locator("input[type=submit][value='保存']"), note="保存")
    page.wait_for_load_state("load")
    menu(page, counter, "活动与培训", "活动签到")
    counter.click(
        page.locator("#upcoming-activities tr", has_text="家长").locator("a.signin-link"), note="打开签到"
    )
    search = page.locator("#roll-search")
    search.wait_for()
    chooser_shown = 0
    for typed, key in names:
        search.fill("")
        search.type(typed)
        counter.fields += 1
        counter.chars += len(typed)
        page.keyboard.press("Enter")  # the Enter of a typed name belongs to filling it in
        chooser = page.locator("#match-chooser")
        if chooser.is_visible():
            chooser_shown += 1
            meant = page.locator(f"#roll tbody input[value='{key}']").locator("xpath=ancestor::tr")
            label = meant.locator("td.name").inner_text()
            last4 = meant.locator("td").nth(5).inner_text()
            choice = chooser.locator(".match-choice", has_text=label)
            if choice.count() > 1 and last4:
                choice = choice.filter(has_text=last4)
            counter.click(choice, note=f"在候选中选 {label}")
    counter.click(page.locator("#save-attendance"), note="保存签到")
    page.locator(".alert-success", has_text="签到已保存").wait_for()
    return {"chooser_shown": chooser_shown}


def enter_expense(page, counter: Counter, expense: dict) -> None:
    """财务 enters an expense: the date is today already; the amount as written on the invoice."""
    menu(page, counter, "资金管理", "录入支出")
    counter.type(page.locator("#amount"), expense["amount"], "金额")
    counter.click(page.locator("#source label", has_text=expense["source"]), note="资金来源")
    counter.click(page.locator("#category label", has_text=expense["category"]), note="支出类别")
    counter.type(page.locator("#payee"), expense["payee"], "收款方")
    counter.type(page.locator("#purpose"), expense["purpose"], "用途")
    counter.type(page.locator("#voucher_no"), expense["voucher_no"], "凭证号")
    counter.click(page.locator("label[for=invoice_attached]"), note="发票已附")
    counter.click(page.locator("input[type=submit][value='保存']"), note="保存")
    page.locator(".alert-success").first.wait_for()


def approve_expense(page, counter: Counter, payee: str) -> None:
    """系统管理员 approves it from the 工作台's 待我审批."""
    counter.click(page.locator("#awaiting-approval a"), note="工作台“待我审批”")
    page.locator("#approval-table").wait_for()
    row = page.locator("#approval-table tr", has_text=payee)
    counter.click(row.locator("button.approve-button"), note="审批通过")
    page.locator(".alert-success").first.wait_for()


def find_new_alert(page, counter: Counter) -> str:
    """儿童督导员 opens the alert centre and the alerts raised in the last 24 hours."""
    menu(page, counter, "监护监督", "预警中心")
    counter.click(page.locator("#new-alerts"), note="新产生（24小时内）")
    page.locator("#alert-table").wait_for()
    return page.locator("#alert-table tbody tr").first.inner_text()


def table(counters: list[Counter]) -> str:
    """The table of the note and of ``make bench``: task, actions, budget, estimated seconds."""
    lines = [
        "| 任务 | 操作数（计入预算） | 预算 | 点击 | 按键 | 输入字段 | 输入字符 | 估计用时（秒） |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in counters:
        lines.append(
            f"| {TITLES[c.task]} | {c.budgeted} | {BUDGETS[c.task]} | {c.clicks} | {c.keys} | {c.fields} | "
            f"{c.chars} | {c.seconds:.0f} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- the day's data

# One common character per initial letter, to make a name with the same pinyin initials.
_BY_INITIAL = dict(
    zip("abcdefghjklmnopqrstwxyz", "安白陈邓鄂范郭黄江孔李马倪欧潘钱任孙唐王徐杨张", strict=True)
)


def _same_initials(name: str) -> str | None:
    from models import pinyin_keys

    initials = pinyin_keys(name)[1]
    twin = "".join(_BY_INITIAL.get(ch, "") for ch in initials)
    if len(twin) != len(initials) or twin == name or pinyin_keys(twin)[1] != initials:
        return None
    return twin


def prepare(today: dt.date) -> dict:
    """What the town already has before the day starts (run in an app context): director1's last
    parent class with who came, an alert raised an hour ago; and what the people will type."""
    from choices import ActivityKind, AlertSource, AlertStatus, Audience, Severity
    from models import Activity, Alert, Attendance, Child, ChildGuardian, Guardian, User, Village, db
    from services import clock

    director = db.session.scalar(db.select(User).where(User.username == "director1"))
    village = db.session.get(Village, director.village_id)
    guardians = db.session.scalars(
        db.select(Guardian)
        .join(ChildGuardian, ChildGuardian.guardian_id == Guardian.id)
        .join(Child, Child.id == ChildGuardian.child_id)
        .where(Child.village_id == village.id, Child.archived_at.is_(None))
        .distinct()
        .order_by(Guardian.id)
    ).all()
    last = Activity(
        kind=ActivityKind.RED_CLASS.value,
        title=f"红色监护课堂·{village.name}家长专场",
        starts_at=dt.datetime.combine(today - dt.timedelta(days=28), dt.time(14, 30)),
        ends_at=dt.datetime.combine(today - dt.timedelta(days=28), dt.time(16, 30)),
        place="村（社区）儿童之家",
        organiser=f"{village.name}村（居）委会",
        audience=[Audience.PARENTS.value],
        villages=[village],
        capacity=60,
    )
    db.session.add(last)
    db.session.flush()
    for g in guardians[:12]:
        db.session.add(Attendance(activity_id=last.id, guardian_id=g.id, signed_at=last.starts_at))
    child = db.session.scalar(
        db.select(Child).where(Child.village_id == village.id, Child.archived_at.is_(None)).order_by(Child.id)
    )
    db.session.add(
        Alert(
            source=AlertSource.PATROL.value,
            severity=Severity.RED.value,
            child_id=child.id,
            village_id=child.village_id,
            title="巡查发现：儿童独自在家，监护人外出未归",
            raised_at=clock.now(),  # after the demo's own alerts (raised when it was loaded, or 09:30)
            deadline=clock.now() + dt.timedelta(hours=23),
            status=AlertStatus.OPEN.value,
        )
    )
    # As on a real roll, some people share their initials with another (5 of the 30 here): a second
    # guardian of the same child whose name gives the same letters.
    chosen = guardians[:30]
    for g in chosen[:5]:
        twin = _same_initials(g.name)
        if twin is None:
            continue
        link = db.session.scalar(db.select(ChildGuardian).where(ChildGuardian.guardian_id == g.id).limit(1))
        other = Guardian(name=twin, village_id=g.village_id)
        db.session.add(ChildGuardian(child_id=link.child_id, guardian=other, relation="relative"))
    db.session.commit()
    # 30 people of the parents' roll, typed as people say them: the pinyin initials.
    names = [(g.name_initials or g.name, f"g:{g.id}") for g in chosen]
    return {
        "names": names,
        "alert_child": child.name,
        "village": village.name,
        "child": {
            "name": "测试欣怡",
            "id_number": "500102201605050025",
            "village": village.name[:2],
            "address": f"{village.name}三组18号",
            "category": "低保",
            "father": "测试建国",
            "father_phone": "13900000001",
            "grandmother": "测试秀英",
            "grandmother_phone": "13900000002",
        },
        "expense": {
            "amount": "1,280.00",
            "source": "区级",
            "category": "活动",
            "payee": "罗云镇文印店",
            "purpose": "家长课堂资料印制",
            "voucher_no": f"PZ-{today:%Y%m%d}-31",
        },
    }
