"""Seeded reference rows: child categories and town settings. Idempotent."""

from models import Category, Setting, db

CATEGORIES = [
    ("orphan", "社会散居孤儿"),
    ("unsupported", "事实无人抚养儿童"),
    ("autism", "孤独症儿童"),
    ("disabled", "残疾儿童"),
    ("low_income", "低保儿童"),
    ("other", "其他监护困境"),
]

SETTINGS = [
    ("town_name", "重庆市涪陵区罗云镇", "镇（街道）名称"),
    ("demo_data", "0", "是否为演示数据（1 是，0 否）"),
    ("town_code", "LY", "档案编号中的镇（街道）代码（档案编号：镇代码-村代码-年份-序号）"),
    ("alert_deadline_hours_red", "24", "红色预警处置时限（小时）"),
    ("alert_deadline_hours_orange", "72", "橙色预警处置时限（小时）"),
    ("alert_deadline_hours_yellow", "168", "黄色预警处置时限（小时）"),
    (
        "public_base_url",
        "",
        "对外访问地址：活动反馈二维码使用的网址开头（如 https://tonghu.example.cn），不填则用当前访问地址",
    ),
]


def seed_reference() -> None:
    for order, (code, name) in enumerate(CATEGORIES):
        if db.session.scalar(db.select(Category.id).where(Category.code == code)) is None:
            db.session.add(Category(code=code, name=name, sort_order=order))
    for key, value, label in SETTINGS:
        if db.session.get(Setting, key) is None:
            db.session.add(Setting(key=key, value=value, label=label))
    # Areas with seeded rule tables add their seed call here.
    from seeds.rules import seed_rules

    seed_rules()
    from services.funds import seed_settings as seed_fund_settings

    seed_fund_settings()
    from services.retention import seed_setting as seed_retention_setting

    seed_retention_setting()
    db.session.flush()
