"""Rate limits on the public writes: the complaint form, rating by link, SMS per sender;
behind a proxy (the client's address, not the proxy's, and no spoofing without one);
and across gunicorn workers with a shared store (the production setting).

Flask-Limiter's default ``memory://`` storage counts in each worker process: N workers
allow N × the limit. Production sets FEEDBACK_RATELIMIT_STORAGE_URI to a shared store
(``redis://…`` or ``memcached://…``, the storages of the ``limits`` package); the test
across workers below runs gunicorn with 2 workers on a Redis-protocol server.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from feedback.complaints.models import Complaint
from feedback.sms.models import InboundSms
from tests.conftest import csrf_from
from tests.security.conftest import fresh_csrf

COMPLAINT = {"description": "窗口要求提供办事指南以外的材料，跑了三次", "department": "", "hall": "", "window": "",
             "location_text": "", "occurred_at": "2026-11-23T09:30", "contact_phone": "139 0013 9000",
             "contact_name": ""}


def _complain(client, phone=COMPLAINT["contact_phone"], **environ):
    token = csrf_from(client.get("/complaints/new", environ_base=environ).get_data(as_text=True))
    return client.post("/complaints/new", data=dict(COMPLAINT, csrf_token=token, contact_phone=phone),
                       environ_base=environ).status_code


def _complaints(db) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count(Complaint.id)))


def test_the_complaint_form_takes_five_an_hour_from_one_phone_and_the_sixth_files_nothing(app, db, targets):
    client = app.test_client()
    before = _complaints(db)
    statuses = [_complain(client, REMOTE_ADDR="203.0.113.7") for _ in range(6)]
    assert statuses == [303] * 5 + [429]
    assert _complaints(db) == before + 5
    # Another citizen is not affected, behind the same address (a hall's Wi-Fi) or another one.
    assert _complain(app.test_client(), phone="139 0013 9001", REMOTE_ADDR="203.0.113.7") == 303
    assert _complain(app.test_client(), phone="139 0013 9002", REMOTE_ADDR="203.0.113.8") == 303


def test_rating_by_link_takes_thirty_posts_an_hour_from_one_address(app, db, targets):
    client = app.test_client()
    url = f"/e/{targets.args['token']}"
    token = fresh_csrf(client)
    statuses = [client.post(url, data={"csrf_token": token}).status_code for _ in range(31)]
    assert statuses == [422] * 30 + [429]  # no level chosen: refused, but counted
    # The 429 is refused before the view: a valid rating now is refused too, and stores nothing.
    assert client.post(url, data={"csrf_token": token, "level": "5"}).status_code == 429
    db.session.expire_all()
    assert targets.ns.record.evaluation is None


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored_so_it_cannot_evade_the_limit(app, targets):
    client = app.test_client()
    statuses = []
    for i in range(6):
        token = fresh_csrf(client)
        statuses.append(client.post("/complaints/new", data=dict(COMPLAINT, csrf_token=token),
                                    headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code)
    assert statuses == [303] * 5 + [429]


def test_behind_a_trusted_proxy_each_citizen_has_their_own_limit(db_url, targets, clock, monkeypatch):
    """FEEDBACK_TRUSTED_PROXIES=1: the address the proxy saw, not the proxy's own."""
    from feedback import create_app
    from feedback.complaints import views as complaint_views

    # The per-address limit of accepted complaints, made small; each post has its own phone.
    monkeypatch.setattr(complaint_views, "ACCEPTED_PER_ADDRESS", "5 per hour")
    phones = iter(f"139 0013 90{i:02d}" for i in range(20))
    from feedback.extensions import db
    from tests.conftest import make_config

    cfg = make_config(db_url, TRUSTED_PROXIES=1)
    cfg.CLOCK = clock
    app = create_app(cfg)
    with app.app_context():
        client = app.test_client()
        proxy = {"REMOTE_ADDR": "10.0.0.2"}

        def post(citizen):
            token = csrf_from(client.get("/complaints/new", environ_base=proxy).get_data(as_text=True))
            return client.post("/complaints/new", data=dict(COMPLAINT, csrf_token=token, contact_phone=next(phones)),
                               environ_base=proxy, headers={"X-Forwarded-For": citizen}).status_code

        assert [post("203.0.113.1") for _ in range(6)] == [303] * 5 + [429]
        assert post("203.0.113.2") == 303  # another citizen behind the same proxy
        # A client cannot pick its own address: only the last hop (the proxy's view) counts.
        assert post("203.0.113.2, 203.0.113.1") == 429
        db.session.remove()
        db.engine.dispose()


def test_sms_from_one_number_is_acted_on_twenty_times_an_hour_then_only_logged(app, db, targets, clock):
    """A scripted flood of 投诉 texts from one number: 20 complaints an hour, the rest are kept
    in the SMS log as rate-limited, unanswered. Another number, and opting out, still work."""
    from feedback.sms import service
    from feedback.sms.models import OutboundSms, SmsOptOut

    def text(body, phone="+8613600136000", n=[0]):
        n[0] += 1
        result = service.handle_inbound(f"SMflood{n[0]:06d}", phone, body, now=clock.now)
        db.session.commit()
        return result.inbound.outcome

    before = _complaints(db)
    outcomes = [text(f"投诉 第{i}次：窗口人员态度差，办理超时") for i in range(25)]
    assert outcomes == ["complaint"] * 20 + ["rate_limited"] * 5
    assert _complaints(db) == before + 20
    replies = db.session.scalar(sa.select(sa.func.count(OutboundSms.id)).where(OutboundSms.to_phone == "+8613600136000"))
    assert replies == 20  # a receipt per complaint, nothing for the limited ones
    assert text("投诉 另一位市民：取号机故障", phone="+8613500135000") == "complaint"
    assert text("退订") == "opted_out"  # opting out is always honoured
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SmsOptOut)
                             .where(SmsOptOut.phone == "+8613600136000")) == 1
    clock.set(clock.now + timedelta(minutes=61))
    assert text("投诉 一小时后再次反映：窗口长时间无人办理") == "complaint"
    limited = db.session.scalars(sa.select(InboundSms).where(InboundSms.outcome == "rate_limited")).all()
    assert len(limited) == 5
    assert all(r.complaint_id is None for r in limited)


# ---------------------------------------------------------------- across processes

PG_ONLY = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def _alternate(servers, n: int) -> list[int]:
    """POST the complaint form ``n`` times, turn about to each server (one browser session:
    the servers share the secret key, as the web servers of one deployment do)."""
    session = requests.Session()
    token = csrf_from(session.get(servers[0].url + "/complaints/new", timeout=30).text)
    return [session.post(servers[i % len(servers)].url + "/complaints/new", data=dict(COMPLAINT, csrf_token=token),
                         timeout=30, allow_redirects=False).status_code for i in range(n)]


def _two_servers(env, tmp_path):
    """Two gunicorn servers on one database, as a deployment with two web processes.

    (gunicorn's own workers share one listening socket and the kernel picks who answers;
    on an idle machine one worker answers nearly everything, so two servers make the
    turn-about deterministic. Each is a separate process with its own memory, exactly
    like two workers.)"""
    from contextlib import ExitStack

    from tests.faults.stack import AppServer

    stack = ExitStack()
    servers = []
    for i in range(2):
        (tmp_path / str(i)).mkdir()
        servers.append(stack.enter_context(AppServer(env, workers=1, log_dir=tmp_path / str(i))))
    return stack, servers


@PG_ONLY
@pytest.mark.processes
def test_with_a_shared_store_two_web_processes_allow_five_complaints_in_all(db_url, db, tmp_path):
    from tests.faults.stack import SharedLimitStore, app_env, wait_for

    with SharedLimitStore() as store:
        stack, servers = _two_servers(app_env(db_url, FEEDBACK_RATELIMIT_STORAGE_URI=store.uri), tmp_path)
        with stack:
            statuses = _alternate(servers, 12)
            # Each server answered six (its access log is written just after the answer).
            wait_for(lambda: [len([r for r in s.served("/complaints/new") if r[2] == "POST"]) for s in servers]
                     == [6, 6], 10, "both access logs")
    assert statuses == [303] * 5 + [429] * 7
    assert _complaints(db) == 5


@PG_ONLY
@pytest.mark.processes
def test_the_default_memory_store_counts_per_process_which_is_why_production_needs_a_shared_one(
        db_url, db, tmp_path):
    """The failure the setting prevents, shown: with memory:// each process allows five."""
    from tests.faults.stack import app_env

    stack, servers = _two_servers(app_env(db_url), tmp_path)
    with stack:
        statuses = _alternate(servers, 12)
    assert statuses == [303] * 10 + [429] * 2
    assert _complaints(db) == 10
