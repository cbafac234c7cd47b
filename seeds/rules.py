"""The default assessment rules of SPEC.md, seeded as rows an admin can edit. Idempotent.

The structure follows published guardianship-capacity standards (e.g. Hubei DB42/T 1969-2023):
3 groups, 11 indicators scored 0–3, three veto items, four level thresholds with their frequencies.
"""

from choices import CaseType, Level
from models import CaseTypeRule, Indicator, IndicatorGroup, LevelRule, VetoItem, db
from services.assessment import TIERED_MEASURES

# group → [(code, name, label_3 良好, label_2 一般, label_1 较差, label_0 严重问题)]
INDICATORS = [
    (
        "儿童成长",
        [
            (
                "child_health",
                "身体健康",
                "身体健康，发育正常",
                "偶有疾病，能及时就医",
                "慢性病或营养不良，照料不足",
                "重病或重度残疾且得不到治疗照料",
            ),
            (
                "child_mental",
                "心理健康",
                "情绪稳定，性格开朗",
                "偶有情绪或行为问题",
                "明显孤僻、焦虑或行为异常",
                "有自伤倾向或严重心理问题",
            ),
            (
                "child_safety",
                "儿童安全",
                "居家出行安全有保障",
                "存在一般安全隐患",
                "多次发生意外或长期无人看护",
                "面临严重人身安全风险",
            ),
            (
                "child_education",
                "教育情况",
                "按时就学，学习正常",
                "偶有缺课或学习困难",
                "经常缺课或学习严重困难",
                "失学辍学",
            ),
            (
                "child_social",
                "社会参与",
                "积极参加集体和社区活动",
                "较少参加活动",
                "基本不与同伴交往",
                "完全封闭，与外界隔绝",
            ),
        ],
    ),
    (
        "监护能力",
        [
            (
                "guardian_health",
                "监护人健康状况",
                "监护人身体健康，能履行照料职责",
                "监护人年老或有慢性病，照料能力一般",
                "监护人患重病或残疾，照料能力较弱",
                "监护人丧失照料能力",
            ),
            (
                "guardian_income",
                "收入水平",
                "收入稳定，能满足基本生活",
                "收入较低，基本生活勉强维持",
                "依靠低保或救助维持生活",
                "无稳定收入，基本生活无保障",
            ),
            (
                "guardian_emotion",
                "情感交流",
                "亲子沟通良好，关心儿童",
                "沟通较少",
                "缺乏沟通，对儿童需求不关注",
                "忽视、冷漠或有言语暴力",
            ),
        ],
    ),
    (
        "监护保障",
        [
            (
                "home_environment",
                "居住环境",
                "住房安全，卫生条件良好",
                "住房基本安全，条件一般",
                "住房简陋或卫生条件差",
                "住房危险或无固定住所",
            ),
            (
                "neighbour_relations",
                "邻里关系",
                "邻里和睦，能得到邻里帮助",
                "邻里来往一般",
                "与邻里关系紧张",
                "与邻里冲突，孤立无援",
            ),
            (
                "relative_relations",
                "亲属关系",
                "亲属关系融洽，能提供支持",
                "亲属偶尔提供帮助",
                "亲属很少过问",
                "无亲属或亲属拒绝支持",
            ),
        ],
    ),
]

VETO_ITEMS = [
    ("no_guardian", "无人监护或监护人失联/服刑/死亡而无人代为履责"),
    ("abuse", "存在监护侵害"),
    ("living_alone", "儿童独自居住无人照料"),
]

# level → (lowest total reaching it, visit every … days, reassess every … days)
LEVEL_RULES = {
    Level.GREEN: (27, 90, 365),
    Level.YELLOW: (20, 30, 180),
    Level.ORANGE: (12, 15, 90),
    Level.RED: (0, 7, 30),
}


# Whether a 会商 must be held before a case of the type enters 介入 (the work plan's 个案会商 for
# 监护侵害 and 监护缺失).
CASE_TYPE_RULES = {CaseType.ABUSE: True, CaseType.ABSENCE: True, CaseType.IMPROPER: False}


def seed_rules() -> None:
    session = db.session
    if session.scalar(db.select(IndicatorGroup.id).limit(1)) is None:
        order = 0
        for group_order, (group_name, indicators) in enumerate(INDICATORS):
            group = IndicatorGroup(name=group_name, sort_order=group_order)
            session.add(group)
            for code, name, l3, l2, l1, l0 in indicators:
                order += 1
                session.add(
                    Indicator(
                        group=group,
                        code=code,
                        name=name,
                        label_3=l3,
                        label_2=l2,
                        label_1=l1,
                        label_0=l0,
                        active=True,
                        sort_order=order,
                    )
                )
    if session.scalar(db.select(VetoItem.id).limit(1)) is None:
        for order, (code, name) in enumerate(VETO_ITEMS):
            session.add(VetoItem(code=code, name=name, active=True, sort_order=order))
    for level, (min_score, visit_days, reassess_days) in LEVEL_RULES.items():
        if session.get(LevelRule, level.value) is None:
            session.add(
                LevelRule(
                    level=level.value,
                    min_score=min_score,
                    visit_days=visit_days,
                    reassess_days=reassess_days,
                    measure_days=next((days for _, days in TIERED_MEASURES[level]), None),
                )
            )
    for case_type, required in CASE_TYPE_RULES.items():
        if session.get(CaseTypeRule, case_type.value) is None:
            session.add(CaseTypeRule(case_type=case_type.value, conference_required=required))
    session.flush()
