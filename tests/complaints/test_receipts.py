"""The SMS receipt of a complaint: its lookup secret leaves the outbox once sent (L7), and it only
goes to a mainland mobile that did not opt out, within the daily limit (L8)."""
import pytest
import sqlalchemy as sa

from feedback.complaints.models import Complaint
from feedback.sms import outbox, sender
from feedback.sms.models import OutboundSms
from tests.complaints.test_form import _post, _receipt, _valid

PHONE = "+8613900139000"  # _valid()'s contact phone


def _file(client, **over) -> str:
    resp = _receipt(client, _post(client, _valid(**over)))
    secret = resp.get_data(as_text=True).split('id="lookup-secret">')[1].split("<")[0]
    return secret


def _receipts(db):
    db.session.expire_all()
    return db.session.scalars(sa.select(OutboundSms).where(OutboundSms.purpose == "complaint_receipt")
                              .order_by(OutboundSms.id)).all()


def test_once_sent_no_outbox_row_holds_the_lookup_secret(app, client, db, city, clock):
    secret = _file(client)
    assert sender.send_due(clock.now)["sent"] == 1
    (receipt,) = _receipts(db)
    complaint = db.session.scalars(sa.select(Complaint)).one()
    assert receipt.state == "sent"
    assert receipt.body.startswith(app.config["SMS_SIGNATURE"])
    assert complaint.case_number in receipt.body
    assert "查询码 ******。" in receipt.body
    assert db.session.scalar(sa.select(sa.func.count(OutboundSms.id))
                             .where(OutboundSms.body.contains(secret))) == 0


def test_blank_secret_keeps_everything_but_the_secret():
    body = "【好差评】您的投诉已受理，编号 TS20261123000001，查询码 AB23CD45。可在 https://x/complaints/lookup 查询"
    assert outbox.blank_secret(body) == body.replace("AB23CD45", "******")


@pytest.mark.parametrize("phone", ["+852 9123 4567", "010 6552 9988"])
def test_a_receipt_goes_only_to_a_mainland_mobile(client, db, city, clock, phone):
    secret = _file(client, contact_phone=phone)
    sender.send_due(clock.now)
    (receipt,) = _receipts(db)
    assert (receipt.state, receipt.error_code, receipt.sent_at) == ("cancelled", "not-mainland-mobile", None)
    assert secret not in receipt.body


def test_an_opted_out_number_gets_no_receipt(client, db, city, clock):
    outbox.record_opt_out(PHONE, now=clock.now)
    db.session.commit()
    secret = _file(client)
    sender.send_due(clock.now)
    (receipt,) = _receipts(db)
    assert (receipt.state, receipt.error_code, receipt.sent_at) == ("cancelled", "opted-out", None)
    assert secret not in receipt.body


def test_receipts_over_the_daily_limit_are_cancelled_not_held(app, client, db, city, clock):
    app.config["SMS_DAILY_LIMIT_PER_NUMBER"] = 2
    secrets = [_file(client) for _ in range(3)]
    summary = sender.send_due(clock.now)
    assert (summary["sent"], summary["cancelled"], summary["deferred"]) == (2, 1, 0)
    receipts = _receipts(db)
    assert [r.state for r in receipts] == ["sent", "sent", "cancelled"]
    assert receipts[2].error_code == "daily-limit"
    assert not any(s in r.body for r in receipts for s in secrets)
    assert sender.sent_today(PHONE, clock.now) == 2
