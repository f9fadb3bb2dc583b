"""Fixtures of the privacy tests: the SMS webhook's credentials and a citizen who leaves traces
everywhere (a real-name bad rating by SMS with a callback and a follow-up answer, a complaint by
SMS, a complaint on the web with photos), every ticket worked to the end through the services."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.deadlines.conftest import bj
from tests.sms.conftest import ACCOUNT_SID, AUTH_TOKEN, CITIZEN, FROM_NUMBER, post_inbound
from tests.tickets.test_access import PNG

NAME = "李雪梅"
NATIONAL = CITIZEN[3:]  # 13800138000
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64 + b"\xff\xd9"


@pytest.fixture
def app_config(app_config):
    app_config.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    app_config.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    app_config.TWILIO_FROM_NUMBER = FROM_NUMBER
    app_config.SMS_DAILY_LIMIT_PER_NUMBER = 0  # one busy day of one citizen: every text goes out
    return app_config


@dataclass
class Traces:
    """What the citizen's day left behind: the three tickets' ids, the photo files, when the last closed."""

    rated: int
    sms_complaint: int
    web_complaint: int
    photo_files: list[Path] = field(default_factory=list)
    closed_at: datetime | None = None


def _text(client, db, body: str) -> None:
    resp = post_inbound(client, body)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    db.session.expire_all()


def _ticket_of_evaluation(db, evaluation_id):
    from feedback.tickets.models import Ticket

    return db.session.scalar(sa.select(Ticket).where(Ticket.evaluation_id == evaluation_id))


@pytest.fixture
def citizen_traces(app, db, client, city, clock, make_record) -> Traces:
    """李雪梅 (13800138000) on Monday 2026-01-05, Beijing time, through the real services."""
    from feedback.complaints import service as complaints
    from feedback.complaints.service import Upload
    from feedback.evaluations.models import Evaluation
    from feedback.sms import sender
    from feedback.sms import service as sms
    from feedback.tickets import service as t
    from tests.conftest import walk_to

    h = city.users.handler
    clock.set(bj(2026, 1, 5, 10))

    # 1. A real-name record, invited by SMS, rated 非常不满意 by SMS; the answer to the follow-up
    #    question holds her name and number; the handler reveals the number, calls back and
    #    notes whom and what; she rates the handling by SMS.
    record = make_record(citizen_phone=CITIZEN, citizen_name=NAME,
                         completed_at=clock.now - timedelta(minutes=30))
    assert sms.invite(record, clock.now) is not None
    db.session.commit()
    _text(client, db, "1")
    _text(client, db, f"窗口让我跑了三趟。我是{NAME}，电话 138 0013 8000，请回电")
    evaluation = db.session.scalar(sa.select(Evaluation).where(Evaluation.service_record_id == record.id))
    rated = _ticket_of_evaluation(db, evaluation.id)
    t.accept(rated, h, now=clock.now)
    assert t.reveal_phone(rated, h, ip="10.0.0.1", now=clock.now) == CITIZEN
    t.verify(rated, h, callback_at=None, contact=NAME, reached=True,
             findings=f"已回电{NAME}（{NATIONAL}），反映属实：窗口一次性告知不到位", now=clock.now)
    t.rectify(rated, h, outcome="fixed_at_once", measures="已对窗口人员批评教育，并更新一次性告知单", now=clock.now)
    t.reply(rated, h, text="已整改，感谢监督。", now=clock.now)
    db.session.commit()
    _text(client, db, "满意")
    assert db.session.get(type(rated), rated.id).state == "closed"

    # 2. A complaint by SMS (no department: the supervisors route it), answered, rated by SMS.
    clock.set(bj(2026, 1, 5, 11))
    _text(client, db, f"投诉 3号窗口排长队没人管，请回电{NATIONAL}")
    from feedback.complaints.models import Complaint

    by_sms = db.session.scalar(sa.select(Complaint).where(Complaint.source == "sms"))
    sms_complaint = complaints.ticket_of(by_sms)
    t.move(sms_complaint, city.users.supervisor, city.child, note="分至户政支队", now=clock.now)
    walk_to(sms_complaint, "replied", city.users, now=clock.now)
    db.session.commit()
    _text(client, db, "满意")

    # 3. A complaint on the web form's service: contact, location and two photos.
    clock.set(bj(2026, 1, 5, 14))
    complaint, _secret = complaints.create_complaint(
        description=f"我是{NAME}，2号窗口要求提供办事指南以外的材料。联系电话 {NATIONAL}",
        contact_phone=NATIONAL, contact_name=NAME, occurred_at=clock.now - timedelta(hours=2),
        department_id=city.child.id, location_text=f"市民中心二楼，{NAME}排队的 1 号窗口旁",
        photos=[Upload(f"{NAME}的材料.png", PNG), Upload("窗口.jpg", JPEG)], now=clock.now)
    db.session.commit()
    web_complaint = complaints.ticket_of(complaint)
    photo_files = [complaints.photo_path(p) for p in complaint.photos]
    assert len(photo_files) == 2 and all(p.is_file() for p in photo_files)
    walk_to(web_complaint, "replied", city.users, now=clock.now)
    t.rate_handling(web_complaint, "满意", "link", now=clock.now)
    db.session.commit()

    # Every text of the day is settled (sent, or cancelled: the erasure leaves a queued text to
    # the sender, by design).
    from feedback.sms.models import OutboundSms

    summary = sender.send_due(clock.now, limit=200)
    assert summary["sent"] >= 8, summary
    waiting = db.session.scalar(sa.select(sa.func.count(OutboundSms.id))
                                .where(OutboundSms.state.in_(("queued", "sending"))))
    assert waiting == 0, summary
    db.session.expire_all()
    return Traces(rated=rated.id, sms_complaint=sms_complaint.id, web_complaint=web_complaint.id,
                  photo_files=photo_files, closed_at=clock.now)
