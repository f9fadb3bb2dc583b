"""Fixtures of the voice tests: Twilio credentials and numbers, signed webhook posts, TwiML read as XML."""
from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from twilio.request_validator import RequestValidator

from tests.sms.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, client_timeout
from tests.sms.conftest import fake_twilio  # noqa: F401 (the SMS tests' fake Twilio, shared)

VOICE_NUMBER = "+8657188880000"
HOTLINE = "+8657112345"
CITIZEN = "+8613800138000"
HANDLER_PHONE = "+8613911112222"


@pytest.fixture
def app_config(app_config):
    app_config.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    app_config.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    app_config.TWILIO_VOICE_NUMBER = VOICE_NUMBER
    app_config.VOICE_HOTLINE_NUMBER = HOTLINE
    return app_config


@pytest.fixture
def twilio_voice(app, fake_twilio, request):  # noqa: F811 (the imported fixture, by name)
    """The app placing calls through the real twilio client, pointed at the local fake."""
    app.config.update(VOICE_BACKEND="twilio", TWILIO_API_BASE_URL=fake_twilio.url,
                      TWILIO_TIMEOUT_SECONDS=client_timeout(request))
    return fake_twilio


_sids = itertools.count(1)


def new_sid() -> str:
    return f"CA{next(_sids):032x}"


def sign(url: str, params: dict, token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


def signed_post(client, url: str, params: dict, **kw):
    """POST ``params`` to ``url`` (absolute under PUBLIC_URL, or a path) signed as Twilio signs."""
    if url.startswith("/"):
        url = PUBLIC_URL + url
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return client.post(path, data=params, headers={"X-Twilio-Signature": sign(url, params)}, **kw)


@dataclass
class Heard:
    """One TwiML answer, parsed: the spoken text, and where the next request goes."""

    status: int
    root: ET.Element | None

    @property
    def text(self) -> str:
        return "".join(e.text or "" for e in self.root.iter("Say"))

    @property
    def gather(self) -> ET.Element | None:
        return self.root.find("Gather")

    @property
    def record(self) -> ET.Element | None:
        return self.root.find("Record")

    @property
    def hangs_up(self) -> bool:
        return self.root.find("Hangup") is not None


def heard(resp) -> Heard:
    assert resp.status_code == 200, f"webhook answered {resp.status_code}: {resp.get_data(as_text=True)[:300]}"
    assert resp.mimetype == "text/xml"
    return Heard(resp.status_code, ET.fromstring(resp.get_data(as_text=True)))


class Caller:
    """One phone call to the rating hotline, driven through the signed webhooks."""

    def __init__(self, client, phone: str | None = CITIZEN, sid: str | None = None):
        self.client, self.phone, self.sid = client, phone, sid or new_sid()
        self.last: Heard | None = None

    def params(self, **extra) -> dict:
        caller = self.phone if self.phone is not None else "anonymous"
        return {"CallSid": self.sid, "AccountSid": ACCOUNT_SID, "From": caller, "Caller": caller,
                "To": VOICE_NUMBER, "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01",
                **extra}

    def dial(self) -> Heard:
        self.last = heard(signed_post(self.client, "/voice/inbound", self.params(CallStatus="ringing")))
        return self.last

    def press(self, digits: str) -> Heard:
        gather = self.last.gather
        assert gather is not None, f"no <Gather> to press {digits!r} in: {self.last.text}"
        self.last = heard(signed_post(self.client, gather.get("action"), self.params(Digits=digits)))
        return self.last

    def wait(self) -> Heard:
        """Silence: the <Gather> (or <Record>) falls through to the <Redirect>."""
        redirect = self.last.root.find("Redirect")
        assert redirect is not None, f"no fallback after the prompt: {self.last.text}"
        self.last = heard(signed_post(self.client, redirect.text, self.params()))
        return self.last

    def speak(self, seconds: int = 12, sid: str | None = None) -> Heard:
        record = self.last.record
        assert record is not None, f"no <Record> in: {self.last.text}"
        rec = sid or f"RE{next(_sids):032x}"
        self.last = heard(signed_post(self.client, record.get("action"), self.params(
            RecordingSid=rec, RecordingDuration=str(seconds),
            RecordingUrl=f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{rec}")))
        return self.last

    def hang_up(self, status: str = "completed"):
        return signed_post(self.client, "/voice/status", self.params(CallStatus=status, CallDuration="20"))
