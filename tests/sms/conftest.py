"""Fixtures of the SMS tests: Twilio credentials, a fake Twilio, invited records and signed posts."""
from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from twilio.request_validator import RequestValidator

from tests.sms.fake_twilio import FakeTwilio

AUTH_TOKEN = "test-twilio-auth-token"
ACCOUNT_SID = "AC" + "a1" * 16
FROM_NUMBER = "+15005550006"
PUBLIC_URL = "https://feedback.example.gov.cn"  # tests/conftest.make_config
CITIZEN = "+8613800138000"
# The twilio client's timeout against the fake: long enough for a loaded CI machine to answer
# (half a second was not, once), short in a test marked ``twilio_hangs`` so its timeouts fire fast.
CLIENT_TIMEOUT_SECONDS = 5.0
HANG_TIMEOUT_SECONDS = 0.5


def client_timeout(request) -> float:
    """The client timeout for the requesting test (see CLIENT_TIMEOUT_SECONDS)."""
    return HANG_TIMEOUT_SECONDS if request.node.get_closest_marker("twilio_hangs") else CLIENT_TIMEOUT_SECONDS


@pytest.fixture
def app_config(app_config):
    app_config.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    app_config.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    app_config.TWILIO_FROM_NUMBER = FROM_NUMBER
    return app_config


@pytest.fixture
def fake_twilio():
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def twilio_app(app, fake_twilio, request):
    """The app with the twilio backend pointed at the local fake (client timeout: client_timeout)."""
    app.config.update(SMS_BACKEND="twilio", TWILIO_API_BASE_URL=fake_twilio.url,
                      TWILIO_TIMEOUT_SECONDS=client_timeout(request))
    return app


@pytest.fixture
def make_invited(db, make_record, clock):
    """``make_invited(**overrides)``: a record of CITIZEN completed 30 minutes ago (see the root
    ``make_record``) whose invitation has been queued, committed."""
    def make(**kw):
        from feedback.sms import service

        kw.setdefault("citizen_phone", CITIZEN)
        kw.setdefault("completed_at", clock.now - timedelta(minutes=30))
        record = make_record(**kw)
        assert service.invite(record, clock.now) is not None
        db.session.commit()
        return record
    return make


def sign(url: str, params: dict, token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


_sids = itertools.count(1)


def inbound_params(body: str, phone: str = CITIZEN, sid: str | None = None) -> dict:
    sid = sid or f"SM{next(_sids):032x}"
    return {"MessageSid": sid, "SmsMessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT_SID, "From": phone,
            "To": FROM_NUMBER, "Body": body, "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received",
            "ApiVersion": "2010-04-01"}


def post_inbound(client, body: str, phone: str = CITIZEN, *, sid: str | None = None, **kw):
    """POST /sms/inbound signed as Twilio signs it (over FEEDBACK_PUBLIC_URL)."""
    params = inbound_params(body, phone, sid)
    return client.post("/sms/inbound", data=params,
                       headers={"X-Twilio-Signature": sign(PUBLIC_URL + "/sms/inbound", params)}, **kw)
