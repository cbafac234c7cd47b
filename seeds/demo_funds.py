"""Demo funds: four sources and the first quarter of 2026's spending, with planted irregularities.

Planted for the 资金使用检查 screen to find: an over-spent source, a split payment, a duplicate
voucher number, a self-approved expense and one paid without approval (both "imported" from the old
ledger), a category the source does not allow, a large payment without a collective decision, a
专业服务 payment linked to nothing, missing invoices, an expense dated before its money arrived, and
the staff training costing more than its budget. Everything else is clean.
"""

import datetime as dt
from decimal import Decimal

from sqlalchemy import select

from choices import ActivityKind, ExpenseStatus
from models import Activity, Expense, FundSource, SupportService, User
from seeds import moments
from services.funds import approve, load_thresholds, pay, reverse

PAID = ExpenseStatus.PAID.value
APPROVED = ExpenseStatus.APPROVED.value
DRAFT = ExpenseStatus.DRAFT.value

SOURCES = [
    # key, name, kind, amount, received, document no., allowed, valid_to
    (
        "district",
        "2026年区级困境儿童监护赋能试点专项资金",
        "district",
        "200000.00",
        dt.date(2026, 1, 12),
        "涪民发〔2026〕8号（虚构）",
        ["professional", "training", "activity"],
        dt.date(2026, 12, 31),
    ),
    (
        "town",
        "罗云镇镇级配套资金",
        "town",
        "60000.00",
        dt.date(2026, 1, 20),
        "罗云府〔2026〕3号（虚构）",
        ["training", "activity"],
        dt.date(2026, 12, 31),
    ),
    (
        "charity",
        "某爱心企业定向捐赠（虚构）",
        "charity",
        "30000.00",
        dt.date(2026, 3, 2),
        "捐赠协议 JZ-2026-01（虚构）",
        ["activity", "other"],
        None,
    ),
    (
        "social",
        "社会组织公益创投资助（虚构）",
        "social",
        "20000.00",
        dt.date(2026, 2, 10),
        "创投协议 CT-2026-07（虚构）",
        ["professional"],
        dt.date(2026, 9, 30),
    ),
]

SOCIAL_WORK = "涪陵区某社会工作服务中心（虚构）"
PRINTER = "罗云镇某印务部（虚构）"


def seed_funds(session, rng) -> None:
    handler = session.scalar(select(User.id).where(User.username == "finance"))
    approver = session.scalar(select(User.id).where(User.username == "admin"))
    sources = {}
    for key, name, kind, amount, received, doc, allowed, valid_to in SOURCES:
        source = FundSource(
            name=name,
            kind=kind,
            amount=Decimal(amount),
            received_on=received,
            document_no=doc,
            allowed_categories=allowed,
            valid_from=received,
            valid_to=valid_to,
            version=1,
        )
        session.add(source)
        sources[key] = source
    session.flush()
    training = session.scalar(
        select(Activity).where(Activity.kind == ActivityKind.TRAINING.value).order_by(Activity.id).limit(1)
    )
    red_walk = session.scalar(
        select(Activity).where(Activity.kind == ActivityKind.RED_WALK.value).order_by(Activity.id).limit(1)
    )
    services = session.scalars(select(SupportService.id).order_by(SupportService.id).limit(12)).all()
    voucher = iter(range(1, 1000))

    def add(day, amount, source, category, payee, purpose, *, status=PAID, documents=True, **extra):
        spent_on = dt.date(2026, 1, 1) + dt.timedelta(days=day)
        approved = status in (APPROVED, PAID) and "approved_at" not in extra
        expense = Expense(
            spent_on=spent_on,
            amount=Decimal(amount),
            source_id=sources[source].id,
            category=category,
            payee=payee,
            purpose=purpose,
            voucher_no=extra.pop("voucher_no", f"记-2026-{next(voucher):04d}"),
            invoice_attached=documents,
            status=status,
            handler_id=handler,
            approver_id=extra.pop("approver_id", approver if approved else None),
            approved_at=extra.pop("approved_at", moments.at(spent_on, 10) if approved else None),
            paid_at=moments.at(spent_on, 15) if status == PAID else None,
            version=1,
            **extra,
        )
        session.add(expense)
        return expense

    # Professional services bought from a social-work agency, one bill a month (clean, each linked).
    for month, day in enumerate((25, 55, 84)):
        add(
            day,
            f"{8850 + 150 * month:.2f}",
            "district",
            "professional",
            SOCIAL_WORK,
            f"{month + 1}月困境儿童个案心理疏导服务费",
            service_id=services[(4 + month) % len(services)] if services else None,
        )
    # Staff training (Feb 26): venue and meals plus materials run past the activity's 3,000 budget.
    training_id = training.id if training else None
    add(
        55,
        "1800.00",
        "town",
        "training",
        "罗云镇某农家乐（虚构）",
        "业务培训场地及午餐",
        activity_id=training_id,
    )
    add(56, "1500.00", "town", "training", PRINTER, "业务培训教材印制", activity_id=training_id)
    add(40, "3600.00", "district", "training", "某高校社会工作系（虚构）", "评估规范培训讲课费")
    # Preparing the red walk in late March (clean, within its budget).
    walk_id = red_walk.id if red_walk else None
    add(
        80,
        "2400.00",
        "charity",
        "activity",
        "某户外用品店（虚构）",
        "微长征步道安全物资采购",
        activity_id=walk_id,
    )
    add(86, "1200.00", "charity", "activity", PRINTER, "寻访任务卡及宣传册印制", activity_id=walk_id)
    add(88, "900.00", "town", "activity", "罗云镇某文化传媒工作室（虚构）", "红色监护课堂宣传展板")
    for week in range(9):
        add(
            21 + 7 * week,
            f"{360 + rng.randint(0, 8) * 20:.2f}",
            "town",
            "activity",
            "罗云镇某超市（虚构）",
            f"第{week + 1}周关爱活动慰问物资",
        )

    # Planted irregularities -----------------------------------------------------------------
    # Over-spend: the 20,000 venture grant carries 21,800 of services.
    add(
        45,
        "9800.00",
        "social",
        "professional",
        SOCIAL_WORK,
        "孤独症儿童康复训练服务（一期）",
        service_id=services[0] if services else None,
    )
    add(
        70,
        "12000.00",
        "social",
        "professional",
        SOCIAL_WORK,
        "孤独症儿童康复训练服务（二期）",
        service_id=services[1] if len(services) > 1 else None,
    )
    # Split payment: three printing bills of 1,800 within five days (together 5,400 > 5,000).
    for k, day in enumerate((63, 65, 67)):
        add(day, "1800.00", "district", "activity", PRINTER, f"关爱服务宣传资料印制（{k + 1}）")
    # Duplicate voucher number.
    add(
        60,
        "1350.00",
        "town",
        "activity",
        "罗云镇某文化传媒工作室（虚构）",
        "政策宣传横幅制作",
        voucher_no="记-2026-0901",
    )
    add(
        61,
        "980.00",
        "town",
        "activity",
        "罗云镇某文化传媒工作室（虚构）",
        "宣传折页设计",
        voucher_no="记-2026-0901",
    )
    # Self-approval and payment without approval, both carried over from the old paper ledger.
    add(
        30,
        "4200.00",
        "town",
        "training",
        "某培训中心（虚构）",
        "网格员培训（旧台账导入）",
        approver_id=handler,
    )
    add(
        33,
        "2600.00",
        "town",
        "activity",
        "某交通运输公司（虚构）",
        "活动包车（旧台账导入）",
        approver_id=None,
        approved_at=None,
    )
    # A category the source does not allow: the town's money spent on professional services.
    add(
        50,
        "3000.00",
        "town",
        "professional",
        SOCIAL_WORK,
        "家庭教育指导服务",
        service_id=services[2] if len(services) > 2 else None,
    )
    # A large payment without a collective-decision reference (above 30,000).
    add(
        75,
        "36000.00",
        "district",
        "professional",
        SOCIAL_WORK,
        "一季度专业社工驻点服务费",
        service_id=services[3] if len(services) > 3 else None,
    )
    # A 专业服务 payment linked to no service or activity.
    add(77, "2200.00", "district", "professional", "某心理咨询工作室（虚构）", "儿童心理疏解服务")
    # Missing invoices, and one still a draft (drafts are not checked for documents).
    add(78, "1650.00", "district", "training", "某培训中心（虚构）", "儿童主任能力提升培训", documents=False)
    add(
        89,
        "760.00",
        "town",
        "activity",
        "罗云镇某超市（虚构）",
        "端午节慰问物资",
        status=DRAFT,
        documents=False,
    )
    add(
        82,
        "2300.00",
        "district",
        "activity",
        "某户外用品店（虚构）",
        "活动急救包",
        status=APPROVED,
        documents=False,
    )
    # Dated before the donation arrived (the charity money came on March 2).
    add(52, "1100.00", "charity", "other", "罗云镇某超市（虚构）", "困境儿童新春慰问物资")
    # 红字冲销: a bill paid twice, its counter-entry paid twelve days later (dated the day it is paid) …
    twice = add(35, "640.00", "town", "activity", "某交通运输公司（虚构）", "慰问活动包车（重复支付）")
    session.flush()
    counter = reverse(twice, handler, dt.date(2026, 2, 16), "同一张发票重复支付，款项已退回", "记-2026-0950")
    session.flush()
    approve(counter, approver, dt.datetime(2026, 2, 16, 11), load_thresholds())
    pay(counter, dt.datetime(2026, 2, 17, 15))
    # … and one whose counter-entry is still a draft: until it is paid, the original counts as paid.
    wrong = add(84, "480.00", "town", "activity", "罗云镇某超市（虚构）", "慰问物资（金额录入有误）")
    session.flush()
    reverse(wrong, handler, dt.date(2026, 3, 28), "金额录入有误，冲销后重新录入", None)
    session.flush()


__all__ = ["seed_funds"]
