"""Loads a realistic demo city: departments, halls, windows, staff, items, accounts."""
from __future__ import annotations

import random

from sqlalchemy import func, select

from feedback.accounts import service as accounts
from feedback.accounts.models import Role, User
from feedback.directory.models import Department, Hall, ServiceItem, Staff, Window
from feedback.directory.national import credit_check_character
from feedback.extensions import db

# (code, name, parent code, service items)
DEPARTMENTS = [
    ("GOV", "临江市人民政府", None, []),
    ("YSJ", "临江市营商环境监督局", "GOV", []),
    ("ZWB", "临江市政务服务管理局", "GOV", [
        ("政务服务咨询", 0), ("证照寄递申请", 1), ("电子证照调取", 0),
        ("企业开办一件事", 1), ("新生儿出生一件事", 3)]),
    ("GA", "临江市公安局", "GOV", [
        ("户口迁入登记", 5), ("户口迁出登记", 3), ("居民身份证申领", 20), ("居民身份证换领", 20),
        ("临时居民身份证办理", 1), ("居住证申领", 15), ("出入境证件申请", 7), ("无犯罪记录证明开具", 3),
        ("机动车注册登记", 1), ("驾驶证换证", 1), ("新生儿出生登记", 1)]),
    ("GA-CRJ", "临江市公安局出入境管理支队", "GA", [
        ("普通护照签发", 7), ("往来港澳通行证签发", 7), ("往来台湾通行证签发", 10)]),
    ("SCJ", "临江市市场监督管理局", "GOV", [
        ("企业设立登记", 1), ("企业变更登记", 1), ("企业注销登记", 3), ("个体工商户注册登记", 1),
        ("食品经营许可", 10), ("药品零售企业许可", 15), ("特种设备使用登记", 5), ("营业执照遗失补领", 1),
        ("股权出质登记", 3), ("商标质押登记咨询", 0)]),
    ("RSJ", "临江市人力资源和社会保障局", "GOV", [
        ("社会保障卡申领", 10), ("养老保险关系转移", 15), ("失业保险金申领", 5), ("退休待遇核定", 20),
        ("职业资格证书补发", 10), ("就业登记", 1), ("工伤认定申请", 60), ("灵活就业人员参保登记", 1),
        ("技能人才补贴申领", 20)]),
    ("YB", "临江市医疗保障局", "GOV", [
        ("医保参保登记", 1), ("异地就医备案", 1), ("医疗费用手工报销", 20), ("门诊慢特病待遇认定", 15),
        ("生育医疗费用报销", 10), ("医保关系转移接续", 15)]),
    ("ZJJ", "临江市住房和城乡建设局", "GOV", [
        ("建筑工程施工许可", 7), ("商品房预售许可", 10), ("住房公积金提取", 3), ("住房公积金贷款申请", 10),
        ("公共租赁住房申请", 20), ("建筑业企业资质认定", 20), ("房屋交易网签备案", 1)]),
    ("BDC", "临江市不动产登记中心", "ZJJ", [
        ("不动产首次登记", 5), ("不动产转移登记", 5), ("不动产抵押登记", 3), ("不动产权证书补发", 10),
        ("不动产登记资料查询", 0), ("预告登记", 3)]),
    ("SWJ", "国家税务总局临江市税务局", "GOV", [
        ("增值税发票领用", 0), ("个人所得税汇算清缴辅导", 0), ("契税申报", 0), ("税务登记信息确认", 0),
        ("完税证明开具", 0), ("出口退税申报", 10), ("纳税信用等级评定复评", 15)]),
    ("MZJ", "临江市民政局", "GOV", [
        ("结婚登记", 0), ("离婚登记", 30), ("最低生活保障申请", 30), ("残疾人两项补贴申请", 20),
        ("高龄津贴申领", 15), ("社会团体成立登记", 30), ("婚姻登记记录证明", 1)]),
    ("JTJ", "临江市交通运输局", "GOV", [
        ("道路运输经营许可", 20), ("网约车驾驶员证核发", 10), ("出租汽车驾驶员从业资格", 10),
        ("道路运输证年审", 1), ("客运班线经营许可", 20)]),
    ("WJW", "临江市卫生健康委员会", "GOV", [
        ("出生医学证明办理", 1), ("医师执业注册", 20), ("护士执业注册", 20), ("公共场所卫生许可", 15),
        ("母婴保健技术服务许可", 20)]),
]

HALLS = [
    ("H01", "临江市政务服务中心", "临江市滨江大道 88 号"),
    ("H02", "临江市东城区政务服务中心", "临江市东城区和平路 16 号"),
]

# National identifiers: the demo city uses 亳州's 行政区划代码 (a real city, so the codes look like
# a province's); its second hall lies in a district (谯城区).
CITY_AREA_CODE = "341600000000"
HALL_AREA_CODES = {"H01": CITY_AREA_CODE, "H02": "341602000000"}
# Items created locally, without a 实施编码: they are never reported to the province.
LOCAL_ITEMS = {"政务服务咨询", "商标质押登记咨询"}

# (department code, windows in H01, windows in H02)
WINDOWS = [("ZWB", 2, 1), ("GA", 4, 2), ("GA-CRJ", 1, 1), ("SCJ", 3, 1), ("RSJ", 3, 1),
           ("YB", 2, 1), ("ZJJ", 1, 0), ("BDC", 2, 1), ("SWJ", 2, 1), ("MZJ", 1, 1), ("JTJ", 1, 0),
           ("WJW", 1, 0)]

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
         "超", "秀英", "霞", "平", "刚", "桂英", "建华", "文", "华", "红", "玉兰", "志强", "海燕", "晓东",
         "思远", "雨桐", "子涵", "欣怡", "浩然", "一鸣", "佳怡", "宇航", "诗涵", "俊杰"]

DEMO_PASSWORDS = {
    "admin": "Linjiang-A2026",
    "supervisor": "Linjiang-S2026",
    "handler_ga": "Linjiang-H2026",
    "handler_scj": "Linjiang-H2026",
    "staff_ga01": "Linjiang-W2026",
}


def demo_credit_code(number: int) -> str:
    """A valid 统一社会信用代码 of the ``number``-th demo government body: 1 (机构编制) 1 (机关),
    the city's area, a 9-character organisation code (GB 11714 check digit) and the GB 32100
    check character."""
    body = f"{11300000 + number * 137:08d}"
    rest = 11 - sum(int(ch) * w for ch, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2))) % 11
    organisation = body + {10: "X", 11: "0"}.get(rest, str(rest))
    first17 = "11" + CITY_AREA_CODE[:6] + organisation
    return first17 + credit_check_character(first17)


def demo_item_codes(credit_code: str, item_no: int, name: str, days: int) -> dict[str, str | None]:
    """The national identifiers of a demo item: its 实施编码 (the department's credit code, the
    item type and a sequence: 31 characters) and 业务办理项编码 (+ "01"), unless it is local."""
    item_type = "01" if "许可" in name else "07" if "登记" in name or "认定" in name else "20"
    if name in LOCAL_ITEMS:
        return {"item_type": None, "implementation_code": None, "handle_item_code": None,
                "record_type": "1" if days == 0 else "2"}
    implementation = f"{credit_code}{item_type}{item_no:05d}000000"
    return {"item_type": item_type, "implementation_code": implementation, "handle_item_code": implementation + "01",
            "record_type": "1" if days == 0 else "2"}


def is_empty() -> bool:
    """True when no directory or account data exists yet."""
    return not db.session.scalar(select(func.count()).select_from(Department)) and \
        not db.session.scalar(select(func.count()).select_from(User))


def load(seed: int = 2026) -> dict[str, str]:
    """Create the demo city and demo accounts; returns {username: password}.

    Deterministic for a seed, so screenshots and demos look the same every time.
    """
    rng = random.Random(seed)
    depts: dict[str, Department] = {}
    for number, (code, name, parent, _) in enumerate(DEPARTMENTS, start=1):
        depts[code] = Department(code=code, name=name, parent=depts.get(parent) if parent else None,
                                 credit_code=demo_credit_code(number), area_code=CITY_AREA_CODE)
        db.session.add(depts[code])
    item_no = 0
    for code, _, _, items in DEPARTMENTS:
        for name, days in items:
            item_no += 1
            db.session.add(ServiceItem(code=f"3302{item_no:04d}", name=name, department=depts[code],
                                       promised_days=days,
                                       **demo_item_codes(depts[code].credit_code, item_no, name, days)))
    halls = {code: Hall(code=code, name=name, address=addr, area_code=HALL_AREA_CODES[code])
             for code, name, addr in HALLS}
    db.session.add_all(halls.values())
    windows: list[Window] = []
    seq = {"H01": 0, "H02": 0}
    for dept_code, n1, n2 in WINDOWS:
        for hall_code, n in (("H01", n1), ("H02", n2)):
            for _ in range(n):
                seq[hall_code] += 1
                number = seq[hall_code]
                w = Window(code=f"{hall_code}-W{number:02d}", name=f"{number} 号窗口（{depts[dept_code].name.replace('临江市', '')}）",
                           hall=halls[hall_code], department=depts[dept_code])
                windows.append(w)
                db.session.add(w)
    used_names: set[str] = set()
    staff_no = 0
    for w in windows:
        for _ in range(2):
            staff_no += 1
            while True:
                name = rng.choice(SURNAMES) + rng.choice(GIVEN)
                if name not in used_names:
                    used_names.add(name)
                    break
            db.session.add(Staff(staff_number=f"{w.department.code.replace('-', '')}{staff_no:04d}", name=name,
                                 department=w.department, windows=[w]))
    db.session.flush()
    accounts.create_user("admin", DEMO_PASSWORDS["admin"], Role.ADMIN, display_name="系统管理员")
    accounts.create_user("supervisor", DEMO_PASSWORDS["supervisor"], Role.SUPERVISOR,
                         display_name="监督局 周督查", department_codes=["YSJ"])
    accounts.create_user("handler_ga", DEMO_PASSWORDS["handler_ga"], Role.HANDLER,
                         display_name="公安局 李办理", department_codes=["GA"])
    accounts.create_user("handler_scj", DEMO_PASSWORDS["handler_scj"], Role.HANDLER,
                         display_name="市场监管局 陈办理", department_codes=["SCJ"])
    first_ga = db.session.scalar(select(Staff).join(Staff.windows).where(Window.code == "H01-W03"))
    user = accounts.create_user("staff_ga01", DEMO_PASSWORDS["staff_ga01"], Role.WINDOW_STAFF,
                                display_name=first_ga.name if first_ga else "窗口人员",
                                department_codes=["GA"])
    user.staff = first_ga
    # Their passwords are in the README: they sign in only in development (accounts.authenticate).
    for demo_user in db.session.scalars(select(User).where(User.username.in_(DEMO_PASSWORDS))):
        demo_user.is_demo = True
    db.session.flush()
    return dict(DEMO_PASSWORDS)
