"""Demo activity: two months of service records, ratings and tickets at every stage.

Everything goes through the real services (rate, ticket actions, publication), so the
demo shows what the platform does, deadlines and timeline included; only the clock is
moved back. Deterministic for a seed.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import select

from feedback.accounts.models import User
from feedback.clock import utcnow
from feedback.directory.models import ServiceItem, Window
from feedback.evaluations import service as ratings
from feedback.evaluations import reasons as reason_codes
from feedback.extensions import db
from feedback.publications import service as publications
from feedback.statistics import service as stats
from feedback.tickets import service as tickets

LEVEL_WEIGHTS = [(5, 70), (4, 18), (3, 8), (2, 3), (1, 1)]
MEASURES = [
    "已对窗口人员开展业务培训，并在窗口张贴材料样本和清单。",
    "已调整窗口排班，高峰时段增开一个综合窗口。",
    "已向群众当面致歉，对当事工作人员进行批评教育。",
]
REPLIES = [
    "感谢您的监督。经核实情况属实，我们已整改，欢迎再次来办。",
    "您反映的问题已处理，相关材料已一次性告知，请按清单准备后办理。",
]


def _weighted_level(rng: random.Random) -> int:
    roll = rng.randrange(100)
    for level, weight in LEVEL_WEIGHTS:
        if roll < weight:
            return level
        roll -= weight
    return 5


def load_activity(seed: int = 2026, days: int = 60, per_day: int = 12, now: datetime | None = None) -> dict:
    """Create ``days`` days of records and ratings ending now; progress the tickets they open."""

    rng = random.Random(seed)
    now = now or utcnow()
    windows = db.session.scalars(select(Window).order_by(Window.code)).all()
    items_by_dept: dict[int, list[ServiceItem]] = {}
    for item in db.session.scalars(select(ServiceItem).order_by(ServiceItem.code)):
        items_by_dept.setdefault(item.department_id, []).append(item)
    windows = [w for w in windows if items_by_dept.get(w.department_id)]
    handler = {u.username: u for u in db.session.scalars(select(User))}
    supervisor = handler.get("supervisor")
    counts = {"records": 0, "ratings": 0, "tickets": 0, "published": 0}
    opened = []
    catalogue = reason_codes.catalogue()
    for day in range(days, 0, -1):
        base = (now - timedelta(days=day)).replace(hour=1, minute=0, second=0, microsecond=0)  # 09:00 Beijing
        for n in range(per_day):
            window = rng.choice(windows)
            item = rng.choice(items_by_dept[window.department_id])
            staff = window.staff[0] if window.staff else None
            completed = base + timedelta(minutes=rng.randrange(0, 8 * 60))
            record = ratings.create_record(
                record_number=f"DEMO{completed:%Y%m%d}{n:03d}", service_item_code=item.code,
                window_code=window.code, staff_number=staff.staff_number if staff else None,
                completed_at=completed, citizen_phone=f"1390000{rng.randrange(10000):04d}" if rng.random() < 0.6 else None,
                source="demo", now=completed)
            counts["records"] += 1
            if rng.random() < 0.85:
                level = _weighted_level(rng)
                offered = sorted(catalogue.offered(level))
                if level <= 2:
                    reasons = rng.sample(offered, k=1) if offered else []
                else:  # every fourth good rating has a label, chosen without the rng (same draws as before)
                    reasons = [offered[n % len(offered)]] if offered and n % 4 == 0 else []
                rated_at = completed + timedelta(minutes=rng.randrange(1, 30))
                ev = ratings.rate(record=record, level=level, channel=rng.choice(["hall_tablet", "sms", "qr"]),
                                  reasons=reasons, rated_at=rated_at, now=rated_at,
                                  comment="窗口材料清单不清楚，来回跑了两趟" if level <= 2 else "")
                counts["ratings"] += 1
                if ev.is_bad:
                    opened.append(db.session.scalar(select(tickets.Ticket).where(
                        tickets.Ticket.evaluation_id == ev.id)))
    counts["tickets"] = len(opened)
    # Older tickets have moved along the workflow; the newest still wait in the queue.
    for i, ticket in enumerate(sorted(opened, key=lambda t: t.created_at)):
        age = now - ticket.created_at
        if age < timedelta(days=3):
            continue
        actor = _handler_for(ticket, handler, supervisor)
        if actor is None:
            continue
        t0 = ticket.created_at
        tickets.accept(ticket, actor, now=t0 + timedelta(hours=2))
        if ticket.verify_due_at is not None or i % 2 == 0:
            tickets.verify(ticket, actor, callback_at=t0 + timedelta(hours=5), contact="评价人本人",
                           reached=True, findings="电话回访，群众反映情况属实。", now=t0 + timedelta(hours=5))
        else:
            tickets.verify(ticket, actor, callback_at=t0 + timedelta(hours=5), contact="窗口负责人",
                           reached=False, findings="群众未留联系电话，调阅窗口记录核实。", now=t0 + timedelta(hours=5))
        if age < timedelta(days=7):
            continue
        tickets.rectify(ticket, actor, outcome=rng.choice(["fixed_at_once", "rectified"]),
                        measures=rng.choice(MEASURES), now=t0 + timedelta(days=1))
        tickets.reply(ticket, actor, text=rng.choice(REPLIES), now=t0 + timedelta(days=2))
        tickets.rate_handling(ticket, rng.choice(["satisfied", "satisfied", "basically_satisfied"]), "sms",
                              now=t0 + timedelta(days=2, hours=3))
        if ticket.state == "closed" and supervisor is not None and counts["published"] < 5:
            pub = publications.draft_for(ticket, supervisor, now=t0 + timedelta(days=3))
            for hit in list(pub.hits or []):
                if hit.get("status") == "open":
                    publications.mark_not_personal(pub, hit["id"], "演示数据", supervisor,
                                                   now=t0 + timedelta(days=3))
            publications.publish(pub, supervisor, now=t0 + timedelta(days=3))
            counts["published"] += 1
    db.session.flush()

    stats.recompute_all(now)
    return counts


def _handler_for(ticket, users: dict[str, User], supervisor: User | None) -> User | None:
    """A demo handler of the ticket's department, else the supervisor (who sees every department)."""
    for user in users.values():
        if user.role == "handler" and any(d.id == ticket.department_id or _under(ticket.department, d)
                                          for d in user.departments):
            return user
    return supervisor


def _under(department, ancestor) -> bool:
    node = department
    while node is not None:
        if node.id == ancestor.id:
            return True
        node = node.parent
    return False
