"""Configuration: the one place that reads the environment.

Every number from DOMAIN.md is a setting here with its documented default, so an
operator changes a rule with an environment variable and a test with a dict.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = PROJECT_ROOT / "instance"


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def sms_signature(city_name: str, given: str | None = None) -> str:
    """The 【signature】 of every text: ``given`` (brackets added when missing), else
    【<city_name>政务服务】 (DOMAIN.md: texts start with the sender's signature in 【】)."""
    text = (given or "").strip().strip("【】").strip() or f"{city_name.strip() or '某市'}政务服务"
    return f"【{text}】"


@dataclass
class Config:
    """Settings of one running app. Field names are Flask config keys."""

    ENV_NAME: str = "production"  # development | production | testing
    SECRET_KEY: str | None = None
    SQLALCHEMY_DATABASE_URI: str = f"sqlite:///{INSTANCE_DIR / 'feedback.sqlite3'}"
    # A read replica for /public (open data included) and the ticket exports (feedback/readonly.py);
    # empty: the primary. A replica that does not answer is skipped this many seconds.
    READ_DATABASE_URL: str = ""
    READ_DATABASE_RETRY_SECONDS: float = 10.0
    PUBLIC_URL: str = "http://127.0.0.1:5000"
    PORT: int = 5000
    TIMEZONE: str = "Asia/Shanghai"
    SMS_BACKEND: str = "console"
    # The city this system serves, and the 【signature】 every text starts with (DOMAIN.md, SMS
    # conventions). Without FEEDBACK_SMS_SIGNATURE the signature is 【<city>政务服务】.
    CITY_NAME: str = "某市"
    SMS_SIGNATURE: str = "【某市政务服务】"
    TWILIO_ACCOUNT_SID: str | None = None
    TWILIO_AUTH_TOKEN: str | None = None
    TWILIO_FROM_NUMBER: str | None = None
    TWILIO_MESSAGING_SERVICE_SID: str | None = None
    TWILIO_API_BASE_URL: str | None = None  # tests point the real client at a fake
    TWILIO_TIMEOUT_SECONDS: float = 10.0
    SMS_MAX_ATTEMPTS: int = 6  # transient failures retried with exponential backoff, then failed
    SMS_RETRY_BASE_SECONDS: int = 60  # first retry after this, doubling, at most an hour
    SMS_SENDING_LEASE_SECONDS: int = 300  # a row left in 'sending' longer (crash) is sent again
    SMS_FOLLOW_UP_HOURS: int = 24  # after a bad rating by SMS, the next text within this is its comment
    # A different level texted this soon after an SMS rating is taken as "I pressed the wrong
    # digit" (once per rating; feedback/sms/service.py), never as the reason of a bad rating.
    SMS_CORRECTION_MINUTES: int = 10
    SMS_INBOUND_LIMIT_PER_HOUR: int = 20  # texts from one number acted on per hour; more are logged only
    # The phone channel (feedback/voice): the Twilio number citizens call and that masked callback
    # calls show (callerId); the hall's hotline that key 0 reaches; console | twilio for placing
    # calls; recording of callback calls (off: a spoken notice is given when on); Mandarin TTS.
    TWILIO_VOICE_NUMBER: str | None = None
    VOICE_HOTLINE_NUMBER: str | None = None
    VOICE_BACKEND: str = "console"
    VOICE_CALLBACK_RECORDING: bool = False
    VOICE_TTS_VOICE: str = "Polly.Zhiyu"
    VOICE_TTS_LANGUAGE: str = "cmn-CN"
    VOICE_RECORD_MAX_SECONDS: int = 60  # a spoken reason or complaint
    # Outbound rating calls (feedback/voice/outbound.py), off by default: a record still unrated
    # VOICE_OUTBOUND_AFTER_HOURS after its SMS invitation, of a number that opted in (SMS 来电) or
    # marked at the counter, gets one call, in these local hours of working days only.
    VOICE_OUTBOUND_CALLS: bool = False
    VOICE_OUTBOUND_AFTER_HOURS: int = 24
    VOICE_OUTBOUND_HOURS: str = "09:00-12:00,14:00-17:30"
    VOICE_OUTBOUND_MAX_ATTEMPTS: int = 3  # Twilio refusing for a while (5xx/429): tries, then failed
    VOICE_OUTBOUND_RETRY_MINUTES: int = 30  # between those tries
    # memory:// counts per worker process: with several gunicorn workers (or servers) use a
    # shared store, e.g. redis://host:6379/0 (pip install redis) or memcached://host:11211.
    RATELIMIT_STORAGE_URI: str = "memory://"
    RATELIMIT_ENABLED: bool = True
    # Web servers (boxes running gunicorn) behind the load balancer. In production more than one
    # with memory:// is refused at start-up (feedback/__init__.py, README "Production").
    WEB_SERVERS: int = 1
    # With a redis:// store: the prefix of every key (one Redis may serve several deployments),
    # the connect/read timeout, and what happens while Redis is down: each process limits in its
    # own memory (N × the limit) and goes back to Redis when it answers again, rather than every
    # rate-limited request failing with a 500 (False) or going unlimited (RATELIMIT_SWALLOW_ERRORS).
    RATELIMIT_STORAGE_PREFIX: str = "haochaping"
    RATELIMIT_STORAGE_TIMEOUT_SECONDS: float = 0.5
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED: bool = True
    # Reverse proxies in front of the app that set X-Forwarded-For/-Proto (0: none). Without
    # it behind a proxy every citizen has the proxy's address and shares one rate limit.
    TRUSTED_PROXIES: int = 0
    WTF_CSRF_ENABLED: bool = True
    SESSION_COOKIE_SECURE: bool = True
    SESSION_COOKIE_HTTPONLY: bool = True
    SESSION_COOKIE_SAMESITE: str = "Lax"
    REMEMBER_COOKIE_SECURE: bool = True
    REMEMBER_COOKIE_HTTPONLY: bool = True
    MAX_CONTENT_LENGTH: int = 12 * 1024 * 1024
    UPLOAD_DIR: str = ""  # complaint photos; empty = instance/uploads
    COMPLAINT_PHOTO_MAX_COUNT: int = 3
    COMPLAINT_PHOTO_MAX_BYTES: int = 3 * 1024 * 1024
    # Accounts (feedback/accounts/throttle.py, sessions.py). Failures are counted per source
    # address and account: LOGIN_MAX_FAILURES within LOGIN_FAILURE_WINDOW_MINUTES lock that
    # address out of that account (never the account for everybody) for LOGIN_LOCKOUT_MINUTES;
    # LOGIN_ADDRESS_MAX_FAILURES lock an address out of every account likewise;
    # LOGIN_ACCOUNT_ALERT_FAILURES on one account from anywhere alert the administrators.
    LOGIN_MAX_FAILURES: int = 5
    LOGIN_LOCKOUT_MINUTES: int = 15
    LOGIN_FAILURE_WINDOW_MINUTES: int = 15
    LOGIN_ADDRESS_MAX_FAILURES: int = 20
    LOGIN_ACCOUNT_ALERT_FAILURES: int = 20
    SESSION_IDLE_MINUTES: int = 30  # a staff session unused this long ends
    SESSION_MAX_HOURS: int = 12  # and any staff session ends this long after signing in
    API_AUTH_FAILURE_LIMIT: str = "20 per minute"  # failed API-key authentications per address
    # A verified API key is trusted from each process's memory this long: a revoked key is
    # refused at the latest this many seconds later (README "JSON API"); 0 checks every request.
    API_KEY_CACHE_SECONDS: int = 5
    # A plain rating (API, tablet, SMS reply) in one statement on PostgreSQL (evaluations/quick.py);
    # off: every rating goes through the ORM path, which writes the same rows in more round trips.
    QUICK_RATINGS: bool = True
    PASSWORD_MIN_LENGTH: int = 10
    # Domain rules (DOMAIN.md); each is a setting with the documented default.
    RATING_WINDOW_DAYS: int = 7
    SMS_INVITE_DELAY_MINUTES: int = 10
    AUTO_RATING_ENABLED: bool = True
    VERIFY_DUE_WORKING_DAYS: int = 1
    REPLY_DUE_WORKING_DAYS: int = 5
    EXTENDED_DUE_WORKING_DAYS: int = 15
    APPEAL_WINDOW_WORKING_DAYS: int = 3
    ESCALATION_LEVEL2_AFTER_WORKING_DAYS: int = 2
    REMINDER_LEAD_WORKING_DAYS: int = 1  # a deadline's reminder when this many working days are left
    # 督办单 (feedback/orders): the longest deadline an order may give, and the prefilled one when a
    # level-2 escalation (督办) is turned into an order.
    ORDER_DUE_MAX_WORKING_DAYS: int = 30
    ORDER_DEFAULT_DUE_WORKING_DAYS: int = 3
    REWORK_DUE_WORKING_DAYS: int = 5  # a ticket sent back for rework owes a new reply this soon
    UNRATED_CLOSE_WORKING_DAYS: int = 5  # a reply the citizen never rates closes as 未评价 after this
    # Next year's arrangement can still move the last days of December (2018-12-29 became a
    # 调休 workday): deadlines touching them, or counted from a December day, stay provisional
    # until that arrangement is entered.
    YEAR_END_PROVISIONAL_DAYS: int = 7
    COMPLAINT_MIN_LETTERS: int = 2  # a complaint needs this many letters (汉字 or A–Z), not only digits/punctuation
    CONTACT_RETENTION_DAYS: int = 180
    IDEMPOTENCY_RETENTION_DAYS: int = 30  # answered writes kept for replays (API and counter tablets)
    SMS_DAILY_LIMIT_PER_NUMBER: int = 5
    QUIET_HOURS_START: int = 21  # local hour, citizens get no SMS from here ...
    QUIET_HOURS_END: int = 8  # ... until here
    # Deadline enforcement (feedback/deadlines): staff notifications wait for working hours
    # (working days from the calendar, these local hours); SMS to staff only for these roles
    # ('head' = department heads, 'handler', 'supervisor'), comma-separated.
    WORK_HOURS_START: int = 9
    WORK_HOURS_END: int = 17
    NOTIFY_SMS_ROLES: str = "head,supervisor"
    DEADLINE_SWEEP_BATCH: int = 500
    # A standby job process (another server's) retries the leadership lock this often.
    SCHEDULER_STANDBY_SECONDS: float = 5.0
    # Periodic jobs re-read this much before their watermark (late-arriving rows).
    WATERMARK_OVERLAP_MINUTES: int = 60
    COMMENT_MAX_LENGTH: int = 500
    TERMINAL_ANONYMOUS_RATING: bool = True
    TERMINAL_RATE_LIMIT: str = "30 per minute"  # ratings per tablet
    TERMINAL_POLL_MS: int = 1000  # how often the tablet asks for a pending record
    TERMINAL_IDLE_MS: int = 60000  # back to idle after this long without a tap
    TERMINAL_COUNTDOWN_MS: int = 15000  # the last part of the idle time, counted down on screen (继续评价)
    TERMINAL_READ_IDLE_MS: int = 8000  # untouched this long, the question is offered/read aloud once
    TERMINAL_DOUBLE_TAP_MS: int = 350  # a second press at the same spot within this is the same tap
    TERMINAL_THANKS_MS: int = 6000  # the thanks screen stays this long
    TERMINAL_CASE_MS: int = 60000  # ... and that of a bad rating, with its case number and QR code
    TERMINAL_RETRY_BASE_MS: int = 2000  # offline queue: first retry, doubled each time ...
    TERMINAL_RETRY_MAX_MS: int = 60000  # ... up to this
    TERMINAL_OFFLINE_MAX_HOURS: int = 24  # a tap time older than this (offline queue) is clamped and flagged
    TERMINAL_PAIR_MAX_FAILURES: int = 5  # wrong pairing codes for a window before its code is locked
    TERMINAL_PAIR_GLOBAL_LIMIT: str = "60 per hour"  # pairing attempts from all addresses together
    RANKING_MIN_RATINGS: int = 30
    # The monthly 通报 (feedback/reports): who issues it, and the CJK font its PDF embeds (Debian
    # fonts-wqy-microhei; ReportLab cannot read Noto CJK).
    REPORT_ISSUER: str = "临江市营商环境监督局"
    REPORT_FONT_PATH: str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
    # 抽查回访 (feedback/oversight): the share of last week's closed real-name bad-review tickets drawn
    # each week into the bureau's re-check queue (at least 1 per department that has any), and the
    # working days a 督办单 issued when the department's account does not hold gives it to answer.
    RECHECK_SHARE: float = 0.10
    RECHECK_ORDER_DUE_WORKING_DAYS: int = 5
    PUBLISH_STAFF_STATS: bool = False
    PUBLISH_STAFF_NAMES: bool = False  # with PUBLISH_STAFF_STATS: names beside staff numbers
    # Data exchange with the provincial platform (feedback/exchange; README "Exchange").
    # none: nothing is sent (messages wait in the ledger) | log: written to the log as they
    # would go | national-json: the national-style JSON envelope | a dotted path module:Class.
    EXCHANGE_ADAPTER: str = "none"
    EXCHANGE_URL: str = ""  # the province's endpoint (national-json)
    EXCHANGE_APP_KEY: str = ""
    EXCHANGE_APP_SECRET: str = ""
    EXCHANGE_SM2_PRIVATE_KEY: str = ""  # hex; when set, every request is signed (SM2)
    EXCHANGE_SM2_PUBLIC_KEY: str = ""  # hex, the public half the province is given
    EXCHANGE_SM4_KEY: str = ""  # 32 hex digits; when set, payloads are encrypted (SM4-CBC)
    EXCHANGE_TIMEOUT_SECONDS: float = 10.0
    EXCHANGE_BATCH_SIZE: int = 200  # items a request (the national limit)
    EXCHANGE_RETRY_BASE_SECONDS: int = 30  # first retry after this, doubling, with jitter ...
    EXCHANGE_RETRY_MAX_SECONDS: int = 1800  # ... up to this
    EXCHANGE_MAX_ATTEMPTS: int = 30  # transient failures this many times: failed, shown to the operator
    EXCHANGE_SENDING_LEASE_SECONDS: int = 300  # a message left 'sending' longer (crash) is sent again
    EXCHANGE_RUN_SECONDS: float = 50.0  # one push run stops taking batches after this long
    EXCHANGE_DATA_SOURCE: str = "city"  # dataSource: this system's id at the province
    PROVINCE_CODE: str = "34"  # 2-digit province code: prefix of nationally unique 办件编号
    # `make run` only: start the fake provincial gateway beside the app (python -m
    # feedback.exchange.fake_gateway) and report to it with national-json.
    EXCHANGE_LOCAL_GATEWAY: bool = False
    DEMO_DATA: bool = False
    # Tests inject a clock here: a callable returning an aware UTC datetime.
    CLOCK: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    _ENV = {
        "SQLALCHEMY_DATABASE_URI": "FEEDBACK_DATABASE_URL",
        "SECRET_KEY": "FEEDBACK_SECRET_KEY",
        "PUBLIC_URL": "FEEDBACK_PUBLIC_URL",
        "PORT": "FEEDBACK_PORT",
        "TIMEZONE": "FEEDBACK_TIMEZONE",
        "SMS_BACKEND": "FEEDBACK_SMS_BACKEND",
        "SMS_SIGNATURE": "FEEDBACK_SMS_SIGNATURE",
        "CITY_NAME": "FEEDBACK_CITY_NAME",
        "EXCHANGE_ADAPTER": "FEEDBACK_EXCHANGE_ADAPTER",
        "ENV_NAME": "FEEDBACK_ENV",
        "RATELIMIT_STORAGE_URI": "FEEDBACK_RATELIMIT_STORAGE_URI",
        "TWILIO_ACCOUNT_SID": "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN": "TWILIO_AUTH_TOKEN",
        "TWILIO_FROM_NUMBER": "TWILIO_FROM_NUMBER",
        "TWILIO_MESSAGING_SERVICE_SID": "TWILIO_MESSAGING_SERVICE_SID",
        "TWILIO_VOICE_NUMBER": "TWILIO_VOICE_NUMBER",
    }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Config":
        """Build a Config from environment variables.

        Explicitly mapped variables (see the README) win; any other field can be set
        as ``FEEDBACK_<FIELD>`` (for example ``FEEDBACK_REPLY_DUE_WORKING_DAYS=5``).
        """
        env = os.environ if environ is None else environ
        cfg = cls()
        for f in fields(cls):
            if f.name.startswith("_") or f.name in {"CLOCK", "extra"}:
                continue
            var = cls._ENV.get(f.name, f"FEEDBACK_{f.name}")
            if var not in env:
                continue
            raw = env[var]
            current = getattr(cfg, f.name)
            if isinstance(current, bool):
                value: Any = _bool(raw)
            elif isinstance(current, int):
                value = int(raw)
            elif isinstance(current, float):
                value = float(raw)
            else:
                value = raw
            setattr(cfg, f.name, value)
        cfg.SMS_SIGNATURE = sms_signature(cfg.CITY_NAME, env.get("FEEDBACK_SMS_SIGNATURE"))
        if cfg.ENV_NAME == "development":
            # Plain HTTP on localhost: secure cookies would never come back.
            cfg.SESSION_COOKIE_SECURE = _bool(env.get("FEEDBACK_SESSION_COOKIE_SECURE", "0"))
            cfg.REMEMBER_COOKIE_SECURE = cfg.SESSION_COOKIE_SECURE
        return cfg

    def as_flask(self) -> dict[str, Any]:
        """The settings as a dict for ``app.config.update``."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out.update(self.extra)
        return out
