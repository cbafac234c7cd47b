"""Every fixed choice of the domain, defined once: the stored value (English) and its Chinese label."""

import enum


class Choice(str, enum.Enum):  # noqa: UP042 - labels ride on the members
    """A str Enum whose members carry a Chinese label: Gender.FEMALE.label == "女"."""

    label: str

    def __new__(cls, value: str, label: str):
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.label = label
        return obj

    def __str__(self) -> str:
        return self.value

    @classmethod
    def choices(cls) -> list[tuple[str, str]]:
        return [(m.value, m.label) for m in cls]

    @classmethod
    def label_of(cls, value) -> str:
        if value is None or value == "":
            return ""
        try:
            return cls(value).label
        except ValueError:
            return str(value)

    @classmethod
    def from_label(cls, label: str):
        for m in cls:
            if m.label == label or m.value == label:
                return m
        return None


class Role(Choice):
    ADMIN = "admin", "系统管理员"
    CLERK = "clerk", "民生服务办经办人"
    SUPERVISOR = "supervisor", "儿童督导员"
    DIRECTOR = "director", "儿童主任"
    SOCIAL = "social", "社工"
    FINANCE = "finance", "财务"
    INSPECTOR = "inspector", "区级督导"


class VillageKind(Choice):
    VILLAGE = "village", "村"
    COMMUNITY = "community", "社区"


class StaffKind(Choice):
    SUPERVISOR = "supervisor", "儿童督导员"
    DIRECTOR = "director", "儿童主任"
    SOCIAL = "social", "社工"
    GRID = "grid", "网格员"
    CADRE = "cadre", "驻村驻社干部"
    CARING_MOTHER = "mother", "爱心妈妈"
    VOLUNTEER = "volunteer", "志愿者"
    EDUCATION_EXPERT = "expert", "家庭教育专家"
    PARTY_LECTURER = "lecturer", "老党员讲师"


class LeadingGroupRole(Choice):
    """A member's place in the 工作领导小组 (work plan 五(一)); the office (办公室) sits in 民生服务办."""

    LEADER = "leader", "组长"
    DEPUTY = "deputy", "副组长"
    MEMBER = "member", "成员"
    OFFICE = "office", "办公室"


class Gender(Choice):
    MALE = "M", "男"
    FEMALE = "F", "女"


class IdentificationSource(Choice):
    SCREENING = "screening", "村社区摸排"
    SCHOOL = "school", "学校"
    HOSPITAL = "hospital", "医院"
    FAMILY = "family", "家庭"
    MANDATORY_REPORT = "report", "强制报告"


class ChildStatus(Choice):
    ACTIVE = "active", "在册"
    CLOSED = "closed", "已结案"
    ADULT = "adult", "年满18周岁"
    MOVED = "moved", "迁出"
    DECEASED = "deceased", "死亡"


ARCHIVE_STATUSES = [s for s in ChildStatus if s is not ChildStatus.ACTIVE]


class Level(Choice):
    """Guardianship-capacity level, most severe last."""

    GREEN = "green", "绿"
    YELLOW = "yellow", "黄"
    ORANGE = "orange", "橙"
    RED = "red", "红"

    @property
    def rank(self) -> int:
        return list(Level).index(self)

    @property
    def meaning(self) -> str:
        return LEVEL_MEANINGS[self]


LEVEL_MEANINGS = {
    Level.GREEN: "家庭监护能力正常",
    Level.YELLOW: "家庭监护能力不足",
    Level.ORANGE: "家庭监护能力严重不足",
    Level.RED: "家庭监护能力缺失",
}

LEVEL_COLOURS = {
    Level.GREEN: "#2e9d57",
    Level.YELLOW: "#e6b800",
    Level.ORANGE: "#f07c00",
    Level.RED: "#d62728",
}


class Relation(Choice):
    FATHER = "father", "父"
    MOTHER = "mother", "母"
    GRANDPARENT = "grandparent", "祖父母"
    MATERNAL_GRANDPARENT = "maternal", "外祖父母"
    RELATIVE = "relative", "其他亲属"
    INSTITUTION = "institution", "机构"
    OTHER = "other", "其他"


class GuardianStatus(Choice):
    NORMAL = "normal", "正常"
    MIGRANT = "migrant", "外出务工"
    IMPRISONED = "imprisoned", "服刑"
    ILL = "ill", "重病"
    DISABLED = "disabled", "重度残疾"
    MISSING = "missing", "失联"
    DECEASED = "deceased", "死亡"
    OTHER = "other", "其他"


# A change of a guardian's status into one of these asks for a reassessment.
GUARDIAN_STATUSES_NEEDING_REASSESSMENT = {
    GuardianStatus.IMPRISONED,
    GuardianStatus.MISSING,
    GuardianStatus.DECEASED,
    GuardianStatus.ILL,
}


class AssessmentMethod(Choice):
    OBSERVATION = "observation", "日常观测"
    HOME_VISIT = "home_visit", "入户走访"
    INTERVIEW = "interview", "深度访谈"
    VERIFICATION = "verification", "信息核验"


class AssessmentStatus(Choice):
    DRAFT = "draft", "草稿"
    SUBMITTED = "submitted", "待审核"
    APPROVED = "approved", "已审核"


class ServiceKind(Choice):
    SAFETY_NET = "safety_net", "兜底保障政策对接"
    FAMILY_EDUCATION = "family_education", "一对一家庭教育指导"
    COUNSELLING = "counselling", "心理疏导"
    LIFE_SKILLS = "life_skills", "生活技能培训"
    ONLINE_PUSH = "online_push", "线上知识推送"
    LECTURE = "lecture", "线下集中宣讲"
    CARING_MOTHER = "caring_mother", "爱心妈妈一对一帮扶"
    CHILD_PSYCHOLOGY = "child_psychology", "儿童心理疏解"


class ServiceStatus(Choice):
    PLANNED = "planned", "计划"
    DELIVERED = "delivered", "已落实"
    CANCELLED = "cancelled", "已取消"


class VisitKind(Choice):
    PATROL = "patrol", "日常巡查"
    HOME = "home", "入户走访"
    PHONE = "phone", "电话回访"
    SCHOOL = "school", "学校走访"


class ReporterKind(Choice):
    GRID = "grid", "网格员"
    NEIGHBOUR = "neighbour", "邻里群众"
    TEACHER = "teacher", "教职工"
    MEDICAL = "medical", "医务人员"
    CADRE = "cadre", "村社区干部"
    OTHER = "other", "其他"


class Urgency(Choice):
    NORMAL = "normal", "一般"
    URGENT = "urgent", "紧急"
    CRITICAL = "critical", "特别紧急"


class ReportOutcome(Choice):
    TO_ALERT = "to_alert", "转预警"
    TO_CASE = "to_case", "转个案"
    NO_RISK = "no_risk", "核实无风险"


class AlertSource(Choice):
    PATROL = "patrol", "巡查"
    REPORT = "report", "强制报告"
    ASSESSMENT = "assessment", "评估"
    RULE = "rule", "系统规则"


class Severity(Choice):
    YELLOW = "yellow", "黄"
    ORANGE = "orange", "橙"
    RED = "red", "红"


class AlertStatus(Choice):
    OPEN = "open", "待处置"
    IN_PROGRESS = "in_progress", "处置中"
    DONE = "done", "已办结"


class AlertClosure(Choice):
    """How a done alert was closed."""

    HANDLED = "handled", "处置办结"
    WITHDRAWN = "withdrawn", "儿童归档撤销"


class AlertRule(Choice):
    """The alert rules the system runs (services/alerts.py); the label is the alert's title."""

    VISIT_OVERDUE = "visit_overdue", "巡查走访逾期"
    REASSESSMENT_OVERDUE = "reassessment_overdue", "复评逾期"
    RED_WITHOUT_SAFETY_NET = "red_no_safety_net", "红色儿童3日内未落实兜底保障"
    LEVEL_WORSENED = "level_worsened", "风险等级上升"
    REPORT_UNANSWERED = "report_unanswered", "强制报告超过24小时未响应"
    CASE_STAGE_STALE = "case_stage_stale", "个案阶段超过30天未推进"
    GUARDIAN_STATUS_CHANGED = "guardian_status", "监护人状态变化，需重新评估"
    TURNING_18 = "turning_18", "即将年满18周岁，需制定过渡衔接计划"
    NEVER_ASSESSED = "never_assessed", "尚未进行监护能力评估"
    CASE_UNREPORTED = "case_unreported", "个案立案3日内未报区民政局"


class CaseType(Choice):
    ABUSE = "abuse", "监护侵害"
    ABSENCE = "absence", "监护缺失"
    IMPROPER = "improper", "监护不当"


class CaseStage(Choice):
    IDENTIFY = "identify", "识别"
    ASSESS = "assess", "评估"
    INTERVENE = "intervene", "介入"
    TRACK = "track", "跟踪"
    CLOSED = "closed", "结案"


class NeedDomain(Choice):
    """Problem domains of a case's needs assessment (需求评估), as a social-work supervisor reads them."""

    SAFETY = "safety", "人身安全"
    HEALTH = "health", "身心健康"
    CARE = "care", "生活照料"
    EDUCATION = "education", "教育就学"
    EMOTION = "emotion", "心理情绪与行为"
    FAMILY = "family", "家庭关系与监护"
    ECONOMY = "economy", "经济保障"
    SOCIAL = "social", "社会支持与参与"


class RiskRating(Choice):
    HIGH = "high", "高"
    MEDIUM = "medium", "中"
    LOW = "low", "低"


class FollowUpMethod(Choice):
    HOME = "home", "入户走访"
    PHONE = "phone", "电话回访"
    SCHOOL = "school", "到校了解"
    INTERVIEW = "interview", "约谈面谈"
    OTHER = "other", "其他"


class MeasureSource(Choice):
    PLAN = "plan", "帮扶方案"
    CONFERENCE = "conference", "会商决定"


class ClosureReason(Choice):
    GOALS_MET = "goals_met", "帮扶目标达成"
    REFERRED = "referred", "转介其他机构持续服务"
    MOVED = "moved", "儿童迁出本镇"
    ADULT = "adult", "儿童年满18周岁"
    DECLINED = "declined", "服务对象拒绝服务或失联"
    OTHER = "other", "其他"


class Department(Choice):
    CIVIL = "civil", "民政"
    POLICE = "police", "公安"
    EDUCATION = "education", "教育"
    HEALTH = "health", "卫健"
    WOMEN = "women", "妇联"
    YOUTH = "youth", "团委"
    JUSTICE = "justice", "司法"
    VILLAGE = "village", "村社区"
    SCHOOL = "school", "学校"
    HOSPITAL = "hospital", "医院"


class ActivityKind(Choice):
    RED_WALK = "red_walk", "重走微长征·童心向未来 红色实践"
    RED_CLASS = "red_class", "红色监护课堂"
    CARING_MOTHER = "caring_mother", "爱心妈妈一对一帮扶"
    PUBLICITY = "publicity", "政策宣传"
    TRAINING = "training", "业务培训"
    LECTURE = "lecture", "线下集中宣讲"
    OTHER = "other", "其他"


class Audience(Choice):
    CHILDREN = "children", "儿童"
    PARENTS = "parents", "家长"
    STAFF = "staff", "工作人员"


class FundKind(Choice):
    DISTRICT = "district", "区级试点专项资金"
    TOWN = "town", "镇级配套资金"
    CHARITY = "charity", "慈善捐赠"
    SOCIAL = "social", "社会力量资助"
    OTHER = "other", "其他"


class ExpenseCategory(Choice):
    PROFESSIONAL = "professional", "专业服务"
    TRAINING = "training", "人员培训"
    ACTIVITY = "activity", "活动开展"
    OTHER = "other", "其他"


class ExpenseStatus(Choice):
    DRAFT = "draft", "草稿"
    APPROVED = "approved", "已审批"
    PAID = "paid", "已支付"


class FundRule(Choice):
    """The fund-use checks (work plan 五(二) 专款专用); one function each in services/fund_checks.py."""

    OVERSPEND = "overspend", "资金来源超支"
    CATEGORY_NOT_ALLOWED = "category_not_allowed", "支出类别不在资金用途范围内"
    OUTSIDE_PERIOD = "outside_period", "支出日期超出资金到账或有效期"
    MISSING_DOCUMENTS = "missing_documents", "缺少凭证号或发票"
    DUPLICATE_VOUCHER = "duplicate_voucher", "凭证号重复"
    PAID_WITHOUT_APPROVAL = "paid_without_approval", "未经审批即支付"
    SELF_APPROVAL = "self_approval", "审批人与经办人为同一人"
    NO_COLLECTIVE_DECISION = "no_collective_decision", "大额支出缺少集体决策"
    SPLIT_PAYMENT = "split_payment", "疑似拆分支付"
    ACTIVITY_OVER_BUDGET = "activity_over_budget", "活动支出超出活动预算"
    SERVICE_UNLINKED = "service_unlinked", "专业服务支出未关联服务或活动"


class FindingSeverity(Choice):
    HIGH = "high", "严重"
    MEDIUM = "medium", "较重"
    LOW = "low", "一般"


class AuditAction(Choice):
    CREATE = "create", "新增"
    UPDATE = "update", "修改"
    DELETE = "delete", "删除"
    ARCHIVE = "archive", "归档"
    RESTORE = "restore", "恢复"
    VIEW = "view", "查阅"
    EXPORT = "export", "导出"
    REVEAL = "reveal", "查看完整身份证号"
    LOGIN = "login", "登录"
    LOGIN_FAILED = "login_failed", "登录失败"
    LOGOUT = "logout", "退出"
    IMPORT = "import", "导入"
    MERGE = "merge", "合并"
    SYNC = "sync", "离线同步"


# --------------------------------------------------------------------------- the plan's own process


class InspectionLevel(Choice):
    """镇级常态化督查 or the district's 区级督导 (work plan 五(三))."""

    TOWN = "town", "镇级督查"
    DISTRICT = "district", "区级督导"


class InspectionArea(Choice):
    ASSESSMENT = "assessment", "评估"
    VISIT = "visit", "走访"
    CASE = "case", "个案"
    ACTIVITY = "activity", "活动"
    FUNDS = "funds", "资金"
    OTHER = "other", "其他"


class InspectionMethod(Choice):
    RECORDS = "records", "查阅台账"
    SITE = "site", "实地察看"
    HOME_VISIT = "home_visit", "入户走访"
    INTERVIEW = "interview", "座谈访谈"
    PHONE = "phone", "电话抽查"
    SYSTEM = "system", "系统核查"


class RectificationStatus(Choice):
    OPEN = "open", "待整改"
    IN_PROGRESS = "in_progress", "整改中"
    DONE = "done", "已整改"


class RectificationSource(Choice):
    INSPECTION = "inspection", "督查发现"
    FUND_CHECK = "fund_check", "资金使用检查"


class FeedbackSource(Choice):
    SCHOOL = "school", "学校"
    VILLAGE = "village", "村（社区）"
    FAMILY = "family", "家庭"


class FeedbackChannel(Choice):
    PAPER = "paper", "纸质录入"
    QR = "qr", "扫码匿名"


class FeedbackItem(Choice):
    """The services a 反馈意见 rates (满意度 1–5 each); the anonymous activity link asks ACTIVITY_ITEMS."""

    ASSESSMENT = "assessment", "监护评估与走访"
    SERVICES = "services", "赋能服务"
    ACTIVITIES = "activities", "关爱活动"
    CASES = "cases", "个案帮扶"
    PUBLICITY = "publicity", "政策宣传"
    OVERALL = "overall", "总体满意度"


ACTIVITY_ITEMS = (FeedbackItem.ACTIVITIES, FeedbackItem.OVERALL)
SATISFACTION = {5: "非常满意", 4: "满意", 3: "一般", 2: "不满意", 1: "非常不满意"}


class PublicityForm(Choice):
    LECTURE = "lecture", "集中宣讲"
    DOOR = "door", "入户宣传"
    ONLINE = "online", "新媒体推送"
    LEAFLET = "leaflet", "发放资料"


class Mechanism(Choice):
    """The four long-term mechanisms of work plan 三(六)."""

    MANDATORY_REPORT = "mandatory_report", "强制报告"
    RAPID_RESPONSE = "rapid_response", "快速介入"
    LINKAGE = "linkage", "多元联动"
    PUBLICITY = "publicity", "政策宣传"


class CaseStudyStatus(Choice):
    DRAFT = "draft", "草稿"
    SUBMITTED = "submitted", "待审核"
    APPROVED = "approved", "已审核"

    ATTACH = "attach", "上传附件"
    DOWNLOAD = "download", "下载附件"
    TRANSFER = "transfer", "转移"
    ANONYMISE = "anonymise", "匿名化"


class AttachmentOwner(Choice):
    """What an attachment hangs on (services/attachments.py registers each with its area and kinds)."""

    CHILD = "child", "儿童"
    VISIT = "visit", "走访"
    ACTIVITY = "activity", "活动"
    CASE = "case", "个案"
    EXPENSE = "expense", "资金支出"
    MEETING = "meeting", "领导小组会议"
    INSPECTION = "inspection", "督查记录"
    RECTIFICATION = "rectification", "整改事项"
    PUBLICITY = "publicity", "政策宣传"


class AttachmentKind(Choice):
    HUKOU = "hukou", "户口本"
    ID_CARD = "id_card", "身份证"
    DISABILITY_CERT = "disability_cert", "残疾证"
    SUBSISTENCE_CERT = "subsistence_cert", "低保/特困证明"
    CONSENT_FORM = "consent_form", "告知同意书"
    ASSESSMENT_SIGNATURE = "assessment_sign", "评估签字页"
    REFERRAL = "referral", "转介函"
    PHOTO = "photo", "照片"
    OTHER = "other", "其他"
    VISIT_PHOTO = "visit_photo", "走访照片"
    SCENE_PHOTO = "scene_photo", "现场照片"
    SIGNIN_SCAN = "signin_scan", "签字签到表扫描件"
    CASE_DOCUMENT = "case_doc", "个案材料"
    VOUCHER = "voucher", "票据/凭证"
    MINUTES = "minutes", "会议纪要"
    INSPECTION_DOC = "inspection_doc", "督查材料"
    EVIDENCE = "evidence", "整改佐证"


class ConsentScope(Choice):
    """告知同意 by purpose (个人信息保护法: a guardian consents for a child under 14, scope by scope)."""

    FILING = "filing", "建档与评估"
    SHARING = "sharing", "与学校/卫生院/141平台共享"
    PHOTOS = "photos", "照片使用与宣传"


class ConsentMethod(Choice):
    WRITTEN = "written", "书面"
    ORAL = "oral", "口头并有见证人"


class TransferKind(Choice):
    WITHIN = "within", "镇内转移"
    OUT = "out", "迁出外镇"
    IN = "in", "外镇迁入"


class TransferStatus(Choice):
    PENDING = "pending", "待接收"
    ACCEPTED = "accepted", "已接收"
    RETURNED = "returned", "已退回"
    CANCELLED = "cancelled", "已撤回"
    DONE = "done", "已办结"


class TransferAction(Choice):
    START = "start", "发起转移"
    ACCEPT = "accept", "接收"
    RETURN = "return", "退回"
    CANCEL = "cancel", "撤回"
    MOVE_OUT = "move_out", "迁出外镇"
    MOVE_IN = "move_in", "外镇迁入登记"
    LETTER = "letter", "出具转介函"
