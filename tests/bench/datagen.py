"""Bulk generator of a realistic province on PostgreSQL (COPY, never the ORM row by row).

    python -m tests.bench.datagen --database-url postgresql+psycopg://… --ratings 1000000 [--pool 200000] [--reset]

Into a schema migrated by `flask db upgrade` it writes a directory at province scale
(about 1,200 departments, 112 halls, 2,000 windows, 4,000 staff, 3,400 service items),
then N rated service records spread over 3 years with the real shapes:

- ratings grow over the years, fall on working days and peak at the halls' opening hours
  (the history ends yesterday; with ``--today`` it runs on to now, today counted as a
  working day cut at the present hour, for the hall wallboard);
- busy windows get far more ratings than quiet ones (heavy-tailed window weights);
- about 99.5 % are good; bad ratings cluster: 2 % of the windows collect 60 % of them;
- about 4 % are automatic 基本满意 ratings (channel ``default``, not active ratings);
- every bad rating has its ticket (closed with an outcome unless recent) and timeline
  events; some bad ratings were appealed, some appeals upheld (evaluation invalid);
  contact data of long-closed real-name bad reviews is erased, as the retention rule says;
- a pool of completed, unrated records (``BP00000000`` …, completed in the last two days)
  for the load test to rate, each with its ledger message (acknowledged by the province).

Rows are written in time order (each chunk covers the next slice of the three years), so
ids and physical order follow time, as they do in production; month-range scans then
read one slice of a table, not all of it.

``--tickets N`` makes the number of tickets independent of the natural 0.5 % bad share
(issue 4's queue at 1,000,000 tickets): about 85 % of N come from bad ratings (the bad
share among the ratings is raised to match, still clustered on the problem windows) and
the rest are complaints (with their ``complaints`` rows: routed, a few waiting for triage
without a department, contacts erased after retention); a backlog stays open (about 3 %
of old tickets, more of recent ones: 5–10 % open in all, most of them overdue, some
extended), and the timeline is one ``opened`` event per ticket.

Everything runs in one transaction on one connection: the big tables' secondary indexes
and foreign keys are dropped first and rebuilt (and validated) at the end, so a crash
leaves the database as it was. Ids are assigned here (after the current maximum, so a
second run appends), sequences are set past them afterwards, and the tables are VACUUMed and ANALYZEd.
``--reset`` truncates the generated tables first (RESTART IDENTITY, CASCADE).

The column lists are explicit. A NOT NULL column that appears in the schema later and
that this file does not know is filled from the SQLAlchemy model's Python-side default
(our defaults are not server defaults); if it has none the generator stops and says so.
"""
from __future__ import annotations

import argparse
import bisect
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Sequence

import psycopg

CHUNK = 20_000
DAY = 86_400
LOCAL_OFFSET = 8 * 3600  # Asia/Shanghai has no DST
HISTORY_DAYS = 3 * 365
BULK_TABLES = ("service_records", "evaluations", "complaints", "tickets", "ticket_events")
RESET_TABLES = ("exchange_messages", "ticket_events", "tickets", "complaints", "evaluations", "idempotency_keys", "service_records", "staff_windows",
                "staff", "windows", "halls", "service_items", "departments")

# Ticket vocabulary of feedback/tickets/workflow.py (checked against it in generate()).
TICKET_OUTCOMES = (("fixed_at_once", 0.35), ("rectified", 0.40), ("explained", 0.25))
APPEAL_UPHELD_OUTCOME = "appeal_upheld"
TICKET_EVENT_KINDS = ("opened", "accept", "verify", "rectify", "reply", "close", "decide_appeal")

CITIES = ["临江市", "青川市", "云岭市", "白沙市", "东湖市", "南浦市", "北岭市", "西塘市",
          "金溪市", "玉泉市", "石门市", "长河市", "丰城市", "安平市", "宁远市", "清源市"]
DISTRICT_NAMES = ["城东区", "城西区", "高新区", "滨江区", "开发区", "新城区"]
BUREAUS = [  # (abbreviation, name, typical service items)
    ("GA", "公安局", ["户口迁移", "居民身份证换领", "出入境证件办理"]),
    ("SCJ", "市场监督管理局", ["企业设立登记", "个体工商户注册", "食品经营许可"]),
    ("RS", "人力资源和社会保障局", ["社会保障卡申领", "失业登记", "职业资格证书核发"]),
    ("BDC", "不动产登记中心", ["不动产转移登记", "抵押权登记", "不动产权证补发"]),
    ("SW", "税务局", ["发票领用", "税务登记", "个人所得税汇算"]),
    ("MZ", "民政局", ["婚姻登记", "最低生活保障申请", "殡葬服务"]),
    ("GJJ", "住房公积金管理中心", ["公积金提取", "公积金贷款", "缴存登记"]),
    ("YB", "医疗保障局", ["医保参保登记", "异地就医备案", "医疗费用报销"]),
    ("JT", "交通运输局", ["道路运输证办理", "出租汽车资格证", "网约车许可"]),
    ("ZRZY", "自然资源和规划局", ["建设用地规划许可", "建设工程规划许可", "土地复核验收"]),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华玉兰萍红鹏辉建文斌宇浩凯健俊帆帅旭宁龙林欣"
BAD_COMMENTS = ["排队时间太长", "材料被要求重复提交", "窗口人员态度生硬", "说好当天办结，拖了一周", "多跑了两趟",
                "办事指南和窗口说法不一致", "线上预约后到现场还要重新取号", ""]
GOOD_COMMENTS = ["办事效率高，谢谢", "工作人员很耐心", "一次就办好了", "服务热情"]

# Level mix (product direction: 5 = 非常满意 … 1 = 非常不满意).
GOOD_LEVELS = ((5, 0.86), (4, 0.11), (3, 0.03))
BAD_LEVELS = ((2, 0.6), (1, 0.4))
BAD_SHARE = 0.005
PROBLEM_WINDOW_SHARE = 0.02  # of windows ...
PROBLEM_BAD_SHARE = 0.60  # ... collect this share of the bad ratings
AUTO_RATING_SHARE = 0.04
ACTIVE_CHANNELS = (("hall_tablet", 55), ("mobile", 18), ("pc", 10), ("qr", 9), ("sms", 5), ("phone", 2),
                   ("hall_terminal", 1))
PHONE_SHARE = 0.65
APPEAL_SHARE = 0.10  # of bad ratings
APPEAL_UPHELD_SHARE = 0.40
CONTACT_RETENTION_DAYS = 180
# --tickets mode: the share of tickets that are complaints, and the open backlog: a ticket
# stays open (stuck before its reply) with probability BACKLOG_FLOOR + BACKLOG_RECENT·e^(−age/BACKLOG_DAYS).
COMPLAINT_TICKET_SHARE = 0.15
BACKLOG_FLOOR, BACKLOG_RECENT, BACKLOG_DAYS = 0.03, 0.30, 90
EXTENDED_SHARE = 0.10  # of backlog tickets: extended once by a supervisor (due 15 working days ≈ 21 days)
TRIAGE_PENDING_OF_NEW = 0.3  # of complaints still untouched (new): no department named, waiting for triage
COMPLAINT_SOURCES = (("web", 70), ("api", 20), ("sms", 10))
COMPLAINT_TEXTS = ["窗口工作人员中午提前离岗，等候一个多小时无人办理", "网上预约成功到现场却被告知系统无号",
                   "同一材料被要求反复提交三次", "办事指南写的材料和窗口要求不一致", "咨询电话长期无人接听",
                   "大厅自助机故障多日未修", "工作人员态度恶劣，推诿不办"]


def psycopg_url(url: str) -> str:
    """A libpq URL from a SQLAlchemy one (drops the ``+psycopg`` driver suffix)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


# ---------------------------------------------------------------- COPY text format

def _text(value: Any) -> str:
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        value = json.dumps(value, ensure_ascii=False)
    return (str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r"))


def _line(values: Iterable[Any]) -> str:
    return "\t".join(_text(v) for v in values) + "\n"


class _UtcFormatter:
    """Epoch seconds → COPY timestamptz text, fast (a cached date prefix per day)."""

    def __init__(self) -> None:
        self._days: dict[int, str] = {}

    def __call__(self, ts: int) -> str:
        day, sec = divmod(ts, DAY)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = self._days[day] = (date(1970, 1, 1) + timedelta(days=day)).isoformat() + " "
        return f"{prefix}{sec // 3600:02d}:{sec % 3600 // 60:02d}:{sec % 60:02d}+00"


# ---------------------------------------------------------------- schema awareness

@dataclass
class TableWriter:
    """COPY into one table with an explicit column list, plus fillers for unknown NOT NULL columns."""

    table: str
    columns: Sequence[str]
    suffix_columns: list[str] = field(default_factory=list)
    suffix: str = ""

    @property
    def copy_sql(self) -> str:
        cols = ", ".join(f'"{c}"' for c in [*self.columns, *self.suffix_columns])
        return f'COPY "{self.table}" ({cols}) FROM STDIN'

    def line(self, row: dict[str, Any], fmt: "_UtcFormatter") -> str:
        """One COPY line from a dict (absent columns are NULL; ints in ``*_at`` columns are epoch seconds)."""
        out = []
        for col in self.columns:
            value = row.get(col)
            if isinstance(value, int) and not isinstance(value, bool) and (col.endswith("_at") or col == "at"):
                out.append(fmt(value))
            else:
                out.append(_text(value))
        return "\t".join(out) + "\n"

    def write(self, cur: psycopg.Cursor, lines: list[str]) -> None:
        """COPY pre-formatted lines (each ends with a newline; suffix added here)."""
        if not lines:
            return
        if self.suffix:
            lines = [ln[:-1] + self.suffix + "\n" for ln in lines]
        with cur.copy(self.copy_sql) as copy:
            copy.write("".join(lines).encode())


def prepare_writer(cur: psycopg.Cursor, table: str, columns: Sequence[str], now: datetime) -> TableWriter:
    """Check ``columns`` against the live schema; fill NOT NULL columns we do not know from model defaults."""
    cur.execute("SELECT column_name, is_nullable, column_default FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = %s", (table,))
    live = {name: (nullable == "YES", default) for name, nullable, default in cur.fetchall()}
    if not live:
        raise SystemExit(f"table {table} does not exist: run `flask --app wsgi db upgrade` first")
    missing = [c for c in columns if c not in live]
    if missing:
        raise SystemExit(f"{table}: columns {missing} are gone from the schema; update tests/bench/datagen.py")
    writer = TableWriter(table, list(columns))
    extra = [c for c, (nullable, default) in live.items() if c not in columns and not nullable and default is None]
    if extra:
        from feedback import models  # noqa: F401  (register every table)
        from feedback.extensions import db

        model_table = db.metadata.tables.get(table)
        values = []
        for name in extra:
            col = model_table.c.get(name) if model_table is not None else None
            default = col.default if col is not None else None
            if default is None:
                raise SystemExit(f"{table}.{name} is NOT NULL without a default anywhere; "
                                 "teach tests/bench/datagen.py to fill it")
            value = default.arg(None) if default.is_callable else default.arg
            values.append(value)
        writer.suffix_columns = extra
        writer.suffix = "".join("\t" + _text(v) for v in values)
        print(f"  {table}: filling {', '.join(extra)} from model defaults", file=sys.stderr)
    return writer


def _next_id(cur: psycopg.Cursor, table: str) -> int:
    cur.execute(f'SELECT coalesce(max(id), 0) + 1 FROM "{table}"')
    return cur.fetchone()[0]


def _fix_sequence(cur: psycopg.Cursor, table: str) -> None:
    cur.execute(f"SELECT pg_get_serial_sequence('\"{table}\"', 'id')")
    seq = cur.fetchone()[0]
    if seq:
        cur.execute(f'SELECT setval(%s, greatest((SELECT max(id) FROM "{table}"), 1))', (seq,))


def _drop_secondary(cur: psycopg.Cursor, tables: Sequence[str]) -> list[str]:
    """Drop the tables' foreign keys, unique constraints and plain indexes; return DDL to rebuild them."""
    rebuild_indexes: list[str] = []
    rebuild_unique: list[str] = []
    rebuild_fks: list[str] = []
    for table in tables:
        cur.execute("SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = %s::regclass AND contype IN ('f', 'u')", (table,))
        for name, kind, definition in cur.fetchall():
            cur.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
            ddl = f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'
            (rebuild_fks if kind == "f" else rebuild_unique).append(ddl)
        cur.execute("SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                    "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary", (table,))
        for name, definition in cur.fetchall():
            cur.execute(f"DROP INDEX {name}")
            rebuild_indexes.append(definition)
    return rebuild_indexes + rebuild_unique + rebuild_fks


# ---------------------------------------------------------------- the directory

@dataclass
class WindowInfo:
    id: int
    department_id: int
    hall_id: int
    staff_ids: tuple[int, ...]
    item_ids: tuple[int, ...]


def _person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def generate_directory(cur: psycopg.Cursor, rng: random.Random, now: datetime, windows: int) -> list[WindowInfo]:
    """Departments (province → cities → districts → bureaus), halls, windows, staff, items."""
    created = now - timedelta(days=HISTORY_DAYS + 30)
    dep_w = prepare_writer(cur, "departments", ("id", "code", "name", "parent_id", "active", "created_at",
                                                "updated_at"), now)
    hall_w = prepare_writer(cur, "halls", ("id", "code", "name", "address", "active", "created_at", "updated_at"), now)
    win_w = prepare_writer(cur, "windows", ("id", "code", "name", "hall_id", "department_id", "active", "created_at",
                                            "updated_at"), now)
    staff_w = prepare_writer(cur, "staff", ("id", "staff_number", "name", "department_id", "active", "created_at",
                                            "updated_at"), now)
    sw_w = prepare_writer(cur, "staff_windows", ("staff_id", "window_id"), now)
    item_w = prepare_writer(cur, "service_items", ("id", "code", "name", "department_id", "promised_days", "active",
                                                   "created_at", "updated_at"), now)
    dep_id, hall_id, win_id, staff_id, item_id = (_next_id(cur, t) for t in
                                                  ("departments", "halls", "windows", "staff", "service_items"))
    tag = f"{dep_id:x}"  # codes stay unique when a second run appends
    deps, halls, items = [], [], []
    areas: list[tuple[int, list[tuple[int, str]]]] = []  # hall id, bureaus [(dept id, name)]
    root = dep_id
    deps.append((root, f"B{tag}-P", "省政务服务管理局", None, True, created, created))
    dep_id += 1
    for ci, city in enumerate(CITIES):
        city_id = dep_id
        deps.append((city_id, f"B{tag}-C{ci:02d}", f"{city}人民政府", root, True, created, created))
        dep_id += 1
        for di, district in enumerate([None, *DISTRICT_NAMES]):
            area_name = city + (district or "")
            area_code = f"B{tag}-C{ci:02d}" + (f"D{di}" if district else "")
            parent = city_id
            if district:
                parent = dep_id
                deps.append((dep_id, area_code, f"{area_name}人民政府", city_id, True, created, created))
                dep_id += 1
            bureaus = []
            for abbr, name, item_names in BUREAUS:
                bureaus.append((dep_id, name))
                deps.append((dep_id, f"{area_code}-{abbr}", f"{area_name}{name}", parent, True, created, created))
                for k, item in enumerate(item_names):
                    items.append((item_id, f"{area_code}-{abbr}-{k:03d}", item, dep_id,
                                  rng.choice((0, 1, 3, 5, 7, 10, 15, 20)), True, created, created))
                    item_id += 1
                dep_id += 1
            halls.append((hall_id, f"{area_code}-H", f"{area_name}政务服务中心", f"{area_name}政务服务大道 {rng.randint(1, 300)} 号",
                          True, created, created))
            areas.append((hall_id, bureaus))
            hall_id += 1
    items_by_dept: dict[int, list[int]] = {}
    for row in items:
        items_by_dept.setdefault(row[3], []).append(row[0])
    win_rows, staff_rows, sw_rows, infos = [], [], [], []
    for n in range(windows):
        hall, bureaus = areas[n % len(areas)]
        dept, dept_name = bureaus[(n // len(areas)) % len(bureaus)]
        sids = []
        for _ in range(2):
            staff_rows.append((staff_id, f"G{tag}{staff_id:06d}", _person_name(rng), dept, True, created, created))
            sw_rows.append((staff_id, win_id))
            sids.append(staff_id)
            staff_id += 1
        win_rows.append((win_id, f"B{tag}-W{n:05d}", f"{dept_name}{n // len(areas) + 1}号窗口", hall, dept, True, created,
                         created))
        infos.append(WindowInfo(win_id, dept, hall, tuple(sids), tuple(items_by_dept[dept])))
        win_id += 1
    for writer, rows in ((dep_w, deps), (hall_w, halls), (item_w, items), (win_w, win_rows), (staff_w, staff_rows),
                         (sw_w, sw_rows)):
        writer.write(cur, [_line(r) for r in rows])
    print(f"  directory: {len(deps)} departments, {len(halls)} halls, {len(win_rows)} windows, "
          f"{len(staff_rows)} staff, {len(items)} service items", file=sys.stderr)
    return infos


# ---------------------------------------------------------------- ratings

RECORD_COLUMNS = ("id", "record_number", "service_item_id", "department_id", "hall_id", "window_id", "staff_id",
                  "completed_at", "citizen_phone", "citizen_name", "citizen_kind", "source", "created_at",
                  "contact_erased_at", "national_number")
# 办件编号 (service_records.national_number, unique, NOT NULL): the province's code before the
# record number, as migration 0018 and feedback.directory.national.national_number_for do
# (PROVINCE_CODE's default; the bench's record numbers never start with it).
PROVINCE_CODE = "34"
EVALUATION_COLUMNS = ("id", "service_record_id", "level", "channel", "reasons", "comment", "rated_at", "created_at",
                      "department_id", "hall_id", "window_id", "staff_id", "service_item_id", "is_active_rating",
                      "real_name", "terminal_id", "api_key_id", "invalid", "invalidated_at", "flagged", "flag_reason",
                      "reasons_version")
TICKET_COLUMNS = ("id", "source", "evaluation_id", "complaint_id", "department_id", "hall_id", "window_id", "staff_id",
                  "assignee_id", "state", "is_open", "created_at", "verify_due_at", "reply_due_at", "extended_due_at",
                  "due_at", "due_provisional", "escalation_level", "outcome", "closed_at", "accepted_at",
                  "verified_at", "callback_at", "callback_contact", "callback_reached", "findings", "rectified_at",
                  "measures", "replied_at", "reply_text", "reply_count", "handling_rating", "handling_rated_at",
                  "handling_rating_channel", "reopened_count", "extended_at", "extension_reason", "appeal_state",
                  "appeal_reason", "appeal_filed_at", "appeal_decided_at", "appeal_decision_note",
                  "state_before_appeal", "moved_count", "next_deadline_check_at")
COMPLAINT_COLUMNS = ("id", "case_number", "lookup_secret_hash", "description", "department_id", "hall_id", "window_id",
                     "location_text", "occurred_at", "contact_phone", "contact_name", "source", "triage_state",
                     "api_key_id", "created_at", "contact_erased_at")
EVENT_COLUMNS = ("id", "ticket_id", "at", "actor_id", "actor_label", "kind", "note", "data")


def _seconds_of_day_weights() -> tuple[list[int], list[float]]:
    """Local seconds-of-day by 15-minute slot, weighted to the halls' opening hours."""
    slots, weights = [], []
    for slot in range(96):
        hour = slot / 4
        if 9 <= hour < 11.5 or 14 <= hour < 16.5:
            w = 10.0
        elif 8.5 <= hour < 12 or 13.5 <= hour < 17.5:
            w = 5.0
        elif 7 <= hour < 22:
            w = 0.4  # online channels
        else:
            w = 0.05
        slots.append(slot * 900)
        weights.append(w)
    return slots, weights


def _cum(weights: Sequence[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


MEASURES = ["已对窗口人员进行业务培训", "已补充材料样本并在窗口公示", "已优化取号流程，线上预约直接办理",
            "已约谈相关人员并纳入考核", "已更新办事指南"]
REPLIES = ["您好，您反映的问题已核实并整改，感谢监督。", "您好，经核实，已向您说明相关政策依据。"]


def _ticket(rng: random.Random, now_ts: int, ticket_id: int, evaluation_id: int | None, win: "WindowInfo | None",
            staff_id: int | None, created: int, level: int, channel: str, real_name: bool, *,
            complaint: dict | None = None, backlog: bool = False) -> tuple[dict, list[dict], int | None]:
    """A bad rating's (or, with ``complaint``, a complaint's) ticket with a plausible history
    for its age, its timeline events, and when the citizen's contact data was erased (None:
    not yet). With ``backlog`` some tickets stall before their reply and stay open."""
    t, events, erase = _ticket_history(rng, now_ts, ticket_id, evaluation_id, win, staff_id, created, level, channel,
                                       real_name, complaint, backlog)
    if t["is_open"]:  # the deadline sweep's next look (feedback/deadlines)
        t["next_deadline_check_at"] = t["due_at"] if t["due_at"] > now_ts else now_ts + int(rng.random() * DAY)
    return t, events, erase


def _ticket_history(rng, now_ts, ticket_id, evaluation_id, win, staff_id, created, level, channel, real_name,
                    complaint, backlog):
    rand = rng.random
    reply_due = created + 7 * DAY  # 5 working days, near enough for volume
    t: dict[str, Any] = {
        "id": ticket_id, "source": "evaluation", "evaluation_id": evaluation_id,
        "department_id": win.department_id if win else None, "hall_id": win.hall_id if win else None,
        "window_id": win.id if win else None, "staff_id": staff_id, "created_at": created,
        "verify_due_at": created + DAY + DAY // 2 if real_name else None, "reply_due_at": reply_due,
        "due_at": reply_due, "due_provisional": False, "escalation_level": 0, "reply_count": 0,
        "reopened_count": 0, "moved_count": 0, "is_open": True, "state": "new"}
    if complaint is not None:
        t.update(source="complaint", evaluation_id=None, complaint_id=complaint["id"],
                 department_id=complaint["department_id"], hall_id=complaint["hall_id"],
                 window_id=complaint["window_id"])
        events = [{"ticket_id": ticket_id, "at": created, "actor_label": "系统", "kind": "opened",
                   "note": "群众投诉生成工单", "data": {"source": complaint["source"],
                                                     "case_number": complaint["case_number"]}}]
    else:
        events = [{"ticket_id": ticket_id, "at": created, "actor_label": "系统", "kind": "opened",
                   "note": "差评自动生成工单", "data": {"level": level, "channel": channel}}]
    # Each step happens some hours after the previous; a recent ticket has not got far yet.
    steps = []
    moment = created
    for kind in ("accept", "verify", "rectify", "reply", "close"):
        moment += int((0.1 + rand() * (1.2 if kind != "close" else 3.0)) * DAY)
        steps.append((kind, moment))
    if rand() < 0.04:  # late: escalated
        steps = [(k, m + 6 * DAY) if k in ("reply", "close") else (k, m) for k, m in steps]
    age_days = (now_ts - created) / DAY
    stuck = backlog and rand() < BACKLOG_FLOOR + BACKLOG_RECENT * math.exp(-age_days / BACKLOG_DAYS)
    if stuck:  # the backlog: stalled before the reply, still open
        steps = steps[:rng.choice((0, 0, 1, 1, 2, 3))]
        if rand() < EXTENDED_SHARE:
            extended_at = created + int((1 + rand() * 3) * DAY)
            if extended_at <= now_ts:
                t.update(extended_at=extended_at, extended_due_at=created + 21 * DAY, due_at=created + 21 * DAY,
                         extension_reason="需协调多个部门核实")
    appealed = complaint is None and not stuck and rand() < APPEAL_SHARE
    upheld = appealed and rand() < APPEAL_UPHELD_SHARE
    if appealed:
        filed = created + int((0.5 + rand() * 2) * DAY)
        t.update(appeal_state="pending", appeal_reason="评价人反映的情况与事实不符，已提供办件记录", appeal_filed_at=filed,
                 state_before_appeal="accepted")
        decided = filed + int((0.5 + rand() * 3) * DAY)
        if decided <= now_ts:
            t.update(appeal_state="upheld" if upheld else "rejected", appeal_decided_at=decided,
                     appeal_decision_note="经督查核实" + ("申诉成立" if upheld else "申诉不成立"))
            events.append({"ticket_id": ticket_id, "at": decided, "actor_label": "督查人员", "kind": "decide_appeal",
                           "note": t["appeal_decision_note"], "data": {"upheld": upheld}})
        else:
            t["state"] = "appealed"
            return t, events, None
        if upheld:
            t.update(state="closed", is_open=False, outcome=APPEAL_UPHELD_OUTCOME, closed_at=decided)
            return t, events, _erasure(now_ts, decided, real_name)
    state = "new"
    for kind, at in steps:
        if at > now_ts:
            break
        events.append({"ticket_id": ticket_id, "at": at, "actor_label": "办理人员", "kind": kind, "note": "", "data": {}})
        if kind == "accept":
            t["accepted_at"], state = at, "accepted"
        elif kind == "verify":
            t.update(verified_at=at, findings="情况属实", state="verified")
            if real_name:
                t.update(callback_at=at, callback_contact="本人", callback_reached=rand() < 0.9)
            state = "verified"
        elif kind == "rectify":
            outcome = rng.choices([o for o, _ in TICKET_OUTCOMES], weights=[w for _, w in TICKET_OUTCOMES])[0]
            t.update(rectified_at=at, measures=rng.choice(MEASURES), outcome=outcome)
            state = "rectifying"
        elif kind == "reply":
            t.update(replied_at=at, reply_text=rng.choice(REPLIES), reply_count=1)
            if at > t["due_at"]:
                t["escalation_level"] = 1 if at - t["due_at"] < 3 * DAY else 2
            state = "replied"
            if rand() < 0.7:
                rating = rng.choices(("satisfied", "basically_satisfied", "dissatisfied"), weights=(75, 20, 5))[0]
                t.update(handling_rating=rating, handling_rated_at=at + int(rand() * DAY),
                         handling_rating_channel=rng.choice(("sms", "link")))
        elif kind == "close":
            t.update(closed_at=at, is_open=False)
            state = "closed"
    t["state"] = state
    if state != "closed" and now_ts > t["due_at"] and not t.get("replied_at"):
        t["escalation_level"] = 1 if now_ts - t["due_at"] < 3 * DAY else 2
    return t, events, _erasure(now_ts, t.get("closed_at"), real_name)


def _complaint(rng: random.Random, now_ts: int, complaint_id: int, ticket_id: int, win: "WindowInfo", created: int,
               fmt: "_UtcFormatter", backlog: bool) -> tuple[dict, dict, list[dict]]:
    """A complaint about ``win``'s hall (often naming the window) and its ticket, with events."""
    rand = rng.random
    phone = f"+861{rng.choice('3589')}{int(rand() * 10**9):09d}" if rand() < 0.8 else None
    day = fmt(created + LOCAL_OFFSET)[:10].replace("-", "")
    c = {"id": complaint_id, "case_number": f"TS{day}{complaint_id:06d}",
         "lookup_secret_hash": f"bench{complaint_id:x}$" + "0" * 64, "description": rng.choice(COMPLAINT_TEXTS),
         "department_id": win.department_id, "hall_id": win.hall_id, "window_id": win.id if rand() < 0.6 else None,
         "location_text": "", "occurred_at": created - int(rand() * 3 * DAY), "contact_phone": phone,
         "contact_name": _person_name(rng) if phone and rand() < 0.5 else None,
         "source": rng.choices([s for s, _ in COMPLAINT_SOURCES], weights=[w for _, w in COMPLAINT_SOURCES])[0],
         "triage_state": "routed", "created_at": created}
    t, events, erase = _ticket(rng, now_ts, ticket_id, None, None, None, created, 0, "", phone is not None,
                               complaint=c, backlog=backlog)
    if t["state"] == "new" and t["is_open"] and rand() < TRIAGE_PENDING_OF_NEW:
        # "不确定": nobody named a department; waits in the supervisors' triage queue.
        c.update(department_id=None, window_id=None, triage_state="pending")
        t.update(department_id=None, window_id=None)
    if erase is not None:
        c.update(contact_phone=None, contact_name=None, contact_erased_at=erase)
    return c, t, events


def _erasure(now_ts: int, closed: int | None, real_name: bool) -> int | None:
    if real_name and closed is not None and now_ts - closed > CONTACT_RETENTION_DAYS * DAY:
        return closed + CONTACT_RETENTION_DAYS * DAY
    return None


@dataclass
class GenerationResult:
    ratings: int
    bad_ratings: int
    tickets: int
    pool: int
    pool_prefix: str
    windows: int
    seconds: float
    phases: dict[str, float]
    complaints: int = 0
    open_tickets: int = 0

    def summary(self) -> str:
        phases = ", ".join(f"{k} {v:.1f}s" for k, v in self.phases.items())
        tickets = f"{self.tickets:,} tickets"
        if self.complaints or self.open_tickets:
            tickets += f" of which {self.complaints:,} complaints and {self.open_tickets:,} open"
        return (f"generated {self.ratings:,} ratings ({self.bad_ratings:,} bad, {tickets}), "
                f"{self.windows:,} windows, pool of {self.pool:,} unrated records in {self.seconds:.1f}s ({phases})")


def generate(url: str, *, ratings: int, pool: int = 200_000, windows: int = 2000, seed: int = 20260101,
             reset: bool = False, now: datetime | None = None, tickets: int | None = None,
             today: bool = False) -> GenerationResult:
    """Generate the province into the database at ``url`` (already migrated); see the module docstring.

    ``tickets``: None for the natural mix (one ticket per bad rating, 0.5 % bad); a number
    for that many tickets whatever ``ratings`` is (see the module docstring).

    ``today``: the history runs on to ``now`` instead of ending yesterday: today (Beijing time)
    counts as a working day cut at ``now``, with the share of the ratings a working day at the
    end of the history gets by that hour (the hall wallboard shows today's ratings)."""
    from feedback.tickets import workflow

    unknown = ({o for o, _ in TICKET_OUTCOMES} | {APPEAL_UPHELD_OUTCOME}) - set(workflow.OUTCOMES)
    unknown |= set(TICKET_EVENT_KINDS) - set(workflow.EVENT_LABELS)
    if unknown:
        raise SystemExit(f"ticket vocabulary changed ({sorted(unknown)}); update tests/bench/datagen.py")
    started = time.perf_counter()
    phases: dict[str, float] = {}
    rng = random.Random(seed)
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    now_ts = int(now.timestamp())
    fmt = _UtcFormatter()
    with psycopg.connect(psycopg_url(url)) as conn, conn.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '256MB'")
        if reset:
            cur.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in RESET_TABLES) + " RESTART IDENTITY CASCADE")
        mark = time.perf_counter()
        infos = generate_directory(cur, rng, now, windows)
        phases["directory"] = time.perf_counter() - mark

        mark = time.perf_counter()
        rebuild = _drop_secondary(cur, BULK_TABLES)
        rec_w = prepare_writer(cur, "service_records", RECORD_COLUMNS, now)
        ev_w = prepare_writer(cur, "evaluations", EVALUATION_COLUMNS, now)
        cp_w = prepare_writer(cur, "complaints", COMPLAINT_COLUMNS, now)
        tk_w = prepare_writer(cur, "tickets", TICKET_COLUMNS, now)
        evt_w = prepare_writer(cur, "ticket_events", EVENT_COLUMNS, now)
        rec_id, ev_id, cp_id, tk_id, evt_id = (_next_id(cur, t) for t in BULK_TABLES)
        cur.execute("SELECT count(*) FROM service_records WHERE record_number LIKE 'BP%%'")
        earlier_pools = cur.fetchone()[0]
        pool_prefix = f"BP{earlier_pools:x}-" if earlier_pools else "BP"  # a second run appends a new pool

        # Windows: heavy-tailed load; a few problem windows collect most bad ratings.
        load = [min(rng.paretovariate(1.3), 40.0) for _ in infos]
        window_cum = _cum(load)
        total_load = window_cum[-1]
        problem = set(rng.sample(range(len(infos)), max(1, int(len(infos) * PROBLEM_WINDOW_SHARE))))
        problem_load = sum(load[i] for i in problem) / total_load
        backlog = tickets is not None
        bad_share = BAD_SHARE
        if backlog:  # the bad share that gives the evaluation part of the tickets
            complaint_target = round(tickets * COMPLAINT_TICKET_SHARE) if ratings else tickets
            bad_share = min(0.5, (tickets - complaint_target) / ratings) if ratings else 0.0
        p_bad_problem = min(0.5, PROBLEM_BAD_SHARE * bad_share / problem_load)
        p_bad_other = max(0.0, (bad_share - p_bad_problem * problem_load) / (1 - problem_load))
        p_bad = [p_bad_problem if i in problem else p_bad_other for i in range(len(infos))]

        # Days: three years up to yesterday (local), growing, mostly working days.
        today_local = (now_ts + LOCAL_OFFSET) // DAY
        first_day = today_local - HISTORY_DAYS
        day_weights = []
        for d in range(HISTORY_DAYS):
            weekday = (first_day + d + 3) % 7  # 1970-01-01 was a Thursday → 0 = Monday
            day_weights.append((0.5 + d / HISTORY_DAYS) * (1.0 if weekday < 5 else 0.08))
        slot_secs, slot_weights = _seconds_of_day_weights()
        slot_cum = _cum(slot_weights)
        # Today so far (``today``): the slots before now, the current one cut at now.
        now_sec = now_ts - (today_local * DAY - LOCAL_OFFSET)
        today_secs = [s for s in slot_secs if s < now_sec]
        today_spans = [min(900, now_sec - s) for s in today_secs]
        today_weights = [w * span / 900 for w, span in zip(slot_weights, today_spans)]
        if today and sum(today_weights) > 0:
            day_weights.append(1.5 * sum(today_weights) / slot_cum[-1])  # a working day at the end of the history
        day_cum = _cum(day_weights)
        n_days = len(day_weights)
        today_cum = _cum(today_weights)
        channels = [c for c, _ in ACTIVE_CHANNELS]
        channel_cum = _cum([w for _, w in ACTIVE_CHANNELS])
        good_levels, good_cum = [lv for lv, _ in GOOD_LEVELS], _cum([w for _, w in GOOD_LEVELS])
        bad_levels, bad_cum = [lv for lv, _ in BAD_LEVELS], _cum([w for _, w in BAD_LEVELS])
        # The reason codes the migration seeded (the catalogue of feedback/evaluations/reasons.py):
        # every rating is given under its current version.
        cur.execute("SELECT version FROM reason_catalogue WHERE id = 1")
        reasons_version = cur.fetchone()[0]
        cur.execute("SELECT code, level FROM reason_codes WHERE active ORDER BY code")
        reasons_by_level: dict[int, list[int]] = {lv: [] for lv in range(1, 6)}
        for code, code_level in cur.fetchall():
            reasons_by_level[code_level].append(code)
        bad_count = n_tickets = n_complaints = n_open = 0
        rand = rng.random
        day_total = day_cum[-1]

        def moments(k: int, c: int, chunks: int) -> list[int]:
            """``k`` sorted moments in the ``c``-th of ``chunks`` equal slices of the rating history."""
            days = [min(bisect.bisect_left(day_cum, (c + rand()) / chunks * day_total), n_days - 1) for _ in range(k)]
            slots = rng.choices(slot_secs, cum_weights=slot_cum, k=k)
            out = []
            for d, s in zip(days, slots):
                if d == HISTORY_DAYS:  # today: a slot before now, and not past now within it
                    i = bisect.bisect_left(today_cum, rand() * today_cum[-1])
                    out.append(today_local * DAY - LOCAL_OFFSET + today_secs[i] + int(rand() * today_spans[i]))
                else:
                    out.append((first_day + d) * DAY - LOCAL_OFFSET + s + int(rand() * 900))
            return sorted(out)

        def add_ticket(ticket: dict, events: list[dict], tks: list[str], evts: list[str]) -> None:
            nonlocal evt_id, n_tickets, n_open
            tks.append(tk_w.line(ticket, fmt))
            for event in (events[:1] if backlog else events):  # --tickets: the "opened" event only
                event["id"] = evt_id
                evts.append(evt_w.line(event, fmt))
                evt_id += 1
            n_tickets += 1
            n_open += ticket["is_open"]

        # Time order: chunk c holds the c-th slice of the three years (ids follow time).
        chunks = max(1, -(-ratings // CHUNK), -(-(tickets or 0) // CHUNK))
        for c in range(chunks):
            n = ratings * (c + 1) // chunks - ratings * c // chunks
            w_idx = rng.choices(range(len(infos)), cum_weights=window_cum, k=n)
            rated_at = moments(n, c, chunks)
            recs, evs, cps, tks, evts = [], [], [], [], []
            for i in range(n):
                win = infos[w_idx[i]]
                rated = rated_at[i]
                bad = rand() < p_bad[w_idx[i]]
                auto = not bad and rand() < AUTO_RATING_SHARE
                if auto:
                    level, channel = 3, "default"
                    completed = rated - 7 * DAY - int(rand() * 3600)
                elif bad:
                    level = rng.choices(bad_levels, cum_weights=bad_cum)[0]
                    channel = rng.choices(channels, cum_weights=channel_cum)[0]
                    completed = rated - int(rand() * 2 * DAY) if channel != "hall_tablet" else rated - int(rand() * 300)
                else:
                    level = rng.choices(good_levels, cum_weights=good_cum)[0]
                    channel = rng.choices(channels, cum_weights=channel_cum)[0]
                    completed = rated - int(rand() * 300) if channel in ("hall_tablet", "hall_terminal") \
                        else rated - 600 - int(rand() * 2 * DAY)
                phone = f"+861{rng.choice('3589')}{int(rand() * 10**9):09d}" if rand() < PHONE_SHARE else None
                name = _person_name(rng) if phone and rand() < 0.5 else None
                staff = win.staff_ids[int(rand() * len(win.staff_ids))]
                item = win.item_ids[int(rand() * len(win.item_ids))]
                erased = None
                comment, reasons = "", "[]"
                invalid, invalidated = "f", r"\N"
                if bad:
                    bad_count += 1
                    codes = rng.sample(reasons_by_level[level], rng.choice((1, 1, 2)))
                    reasons = json.dumps(sorted(codes))
                    comment = rng.choice(BAD_COMMENTS)
                    ticket, events, erase_after = _ticket(rng, now_ts, tk_id, ev_id, win, staff, rated, level,
                                                          channel, real_name=phone is not None, backlog=backlog)
                    if ticket.get("outcome") == APPEAL_UPHELD_OUTCOME:
                        invalid, invalidated = "t", fmt(ticket["appeal_decided_at"])
                    if erase_after is not None:
                        erased = erase_after
                    add_ticket(ticket, events, tks, evts)
                    tk_id += 1
                elif rand() < 0.25 and reasons_by_level.get(level):
                    reasons = f"[{rng.choice(reasons_by_level[level])}]"
                    if rand() < 0.1:
                        comment = rng.choice(GOOD_COMMENTS)
                record_phone, record_name = (phone, name) if erased is None else (None, None)
                recs.append(f"{rec_id}\tBJ{rec_id:010d}\t{item}\t{win.department_id}\t{win.hall_id}\t{win.id}\t{staff}\t"
                            f"{fmt(completed)}\t{record_phone or chr(92) + 'N'}\t{record_name or chr(92) + 'N'}\t"
                            f"person\twindow\t{fmt(completed)}\t{fmt(erased) if erased else chr(92) + 'N'}\t"
                            f"{PROVINCE_CODE}BJ{rec_id:010d}\n")
                evs.append(f"{ev_id}\t{rec_id}\t{level}\t{channel}\t{reasons}\t{comment}\t{fmt(rated)}\t{fmt(rated)}\t"
                           f"{win.department_id}\t{win.hall_id}\t{win.id}\t{staff}\t{item}\t"
                           f"{'f' if auto else 't'}\t{'t' if phone else 'f'}\t\\N\t\\N\t{invalid}\t{invalidated}\t"
                           f"f\t\\N\t{reasons_version}\n")
                rec_id += 1
                ev_id += 1
            if backlog:  # complaints fill the tickets up to the target, slice by slice
                k = max(0, tickets * (c + 1) // chunks - n_tickets)
                for created, w in zip(moments(k, c, chunks), rng.choices(range(len(infos)), cum_weights=window_cum,
                                                                          k=k)):
                    complaint, ticket, events = _complaint(rng, now_ts, cp_id, tk_id, infos[w], created, fmt, backlog)
                    cps.append(cp_w.line(complaint, fmt))
                    add_ticket(ticket, events, tks, evts)
                    cp_id += 1
                    tk_id += 1
                    n_complaints += 1
            rec_w.write(cur, recs)
            ev_w.write(cur, evs)
            cp_w.write(cur, cps)
            tk_w.write(cur, tks)
            evt_w.write(cur, evts)
            if (c + 1) % 25 == 0 or c + 1 == chunks:
                print(f"  ratings: {ratings * (c + 1) // chunks:,}/{ratings:,}, tickets {n_tickets:,} "
                      f"({time.perf_counter() - mark:.0f}s)", file=sys.stderr)

        # The pool: completed in the last two days, not rated yet.
        n_done = 0
        while n_done < pool:
            n = min(CHUNK, pool - n_done)
            w_idx = rng.choices(range(len(infos)), cum_weights=window_cum, k=n)
            recs = []
            for i in range(n):
                win = infos[w_idx[i]]
                completed = now_ts - 60 - int(rand() * 2 * DAY)
                phone = f"+861{rng.choice('3589')}{int(rand() * 10**9):09d}" if rand() < PHONE_SHARE else r"\N"
                recs.append(f"{rec_id}\t{pool_prefix}{n_done + i:08d}\t{win.item_ids[i % len(win.item_ids)]}\t"
                            f"{win.department_id}\t{win.hall_id}\t{win.id}\t{win.staff_ids[i % 2]}\t{fmt(completed)}\t"
                            f"{phone}\t\\N\tperson\tapi\t{fmt(completed)}\t\\N\t"
                            f"{PROVINCE_CODE}{pool_prefix}{n_done + i:08d}\n")
                rec_id += 1
            rec_w.write(cur, recs)
            n_done += n
        phases["copy"] = time.perf_counter() - mark

        mark = time.perf_counter()
        for ddl in rebuild:
            cur.execute(ddl)
        phases["indexes+constraints"] = time.perf_counter() - mark
        for table in ("departments", "halls", "windows", "staff", "service_items", *BULK_TABLES):
            _fix_sequence(cur, table)
        # Every record registered through the app has its ledger message (exchange/ledger.py), which
        # a rating follows; the pool's were pushed and acknowledged, as a day-old record's would be.
        cur.execute(
            "INSERT INTO exchange_messages (subject_key, message_id, kind, subject_id, lane, status, attempts, "
            "event_at, business_date, produced_at, acknowledged_at, remote_id, backfilled) "
            "SELECT 'REC-' || r.id, 'city-REC-' || r.id, 'record', r.id, 'batch', 'acknowledged', 1, r.completed_at, "
            "(r.completed_at AT TIME ZONE 'Asia/Shanghai')::date, r.completed_at, r.completed_at + interval '1 minute', "
            "'P-' || r.id, FALSE FROM service_records r WHERE r.record_number LIKE %s ON CONFLICT DO NOTHING",
            (pool_prefix.replace("_", r"\_") + "%",))
        conn.commit()
        mark = time.perf_counter()
        conn.autocommit = True
        # VACUUM too: otherwise autovacuum visits the freshly loaded tables during the measurements.
        for table in ("departments", "halls", "windows", "staff", "staff_windows", "service_items", *BULK_TABLES,
                      "exchange_messages"):
            cur.execute(f'VACUUM (ANALYZE) "{table}"')
        phases["vacuum+analyze"] = time.perf_counter() - mark
    return GenerationResult(ratings=ratings, bad_ratings=bad_count, tickets=n_tickets, pool=pool, pool_prefix=pool_prefix,
                            windows=len(infos), seconds=time.perf_counter() - started, phases=phases,
                            complaints=n_complaints, open_tickets=n_open)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="postgresql+psycopg://… (already migrated)")
    parser.add_argument("--ratings", type=int, default=1_000_000)
    parser.add_argument("--pool", type=int, default=200_000, help="completed, unrated records for the load test")
    parser.add_argument("--tickets", type=int, default=None,
                        help="this many tickets whatever --ratings is (default: one per bad rating, 0.5 %% bad)")
    parser.add_argument("--windows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--reset", action="store_true", help="truncate the generated tables first")
    parser.add_argument("--today", action="store_true",
                        help="ratings today up to now as well (a working day's share so far), not only up to yesterday")
    args = parser.parse_args(argv)
    result = generate(args.database_url, ratings=args.ratings, pool=args.pool, windows=args.windows, seed=args.seed,
                      reset=args.reset, tickets=args.tickets, today=args.today)
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
