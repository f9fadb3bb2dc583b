"""The SMS webhook under load: Twilio's inbound POSTs per second beside a bare insert, same stack, same run.

    python -m tests.bench.bench_sms [--quick] [--database-url postgresql+psycopg://…/postgres] …
    (``sms_bench(args, server)`` is what `make bench` calls; standalone it writes bench-results/sms.md)

The traffic is what the webhook really sees: citizens answering their rating invitations, each
request a different citizen with one open invitation, each signed the way Twilio signs it.

1. recreates the database ``feedback_bench_sms`` on the server (tests/support/pg.sh unless
   --database-url names one), migrates it with `flask db upgrade` and bulk-loads a province
   with tests/bench/datagen.py (200,000 ratings; quick 20,000) plus a pool of completed,
   unrated records;
2. COPYs the SMS side (datagen knows nothing of it): the history of the SMS ratings datagen
   wrote (their invitation, the delivered invitation text, the inbound reply, our delivered
   answer), and one open invitation (with its delivered text) for each request of the load,
   to pool records whose numbers are valid and appear once;
3. precomputes every request in Python into one file per wrk run (LuaJIT in wrk has no HMAC):
   Twilio's form fields (Body, From, To, a unique MessageSid, …), X-Twilio-Signature from
   ``twilio.request_validator.RequestValidator(token).compute_signature(public URL + path,
   params)``; the bodies follow a plausible mix: 89 % digits or level names of good ratings,
   1 % bad ones with their reason in words ("2 窗口人员业务不熟练"), 7 % text that is no
   rating ("好的", "你们几点下班？", "10分": a polite "please answer with one digit"), 1 %
   TD (opt-out). What each should do is kept in ``bench_sms_expected``;
4. starts gunicorn on tests.bench.bench_wsgi:app with FEEDBACK_ENV=production, the Twilio
   backend configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER) but its API
   pointed at a closed local port, and FEEDBACK_PUBLIC_URL an https:// address unlike the one
   gunicorn listens on (the signature is checked over the public URL, as behind a proxy).
   Nothing sends: replies go to the outbox and only the job process (not started) sends it;
5. warms both endpoints up, then runs wrk (lua/sms.lua) for the same duration at
   POST /bench/ping and POST /sms/inbound, back to back, with the very same requests
   (the ping ignores the signature and stores the MessageSid);
6. checks in the database: one inbound row per 2xx (± requests in flight at wrk's deadline),
   no MessageSid twice, no non-2xx or socket error, every row with the outcome expected of
   its text (a rating of the citizen's own invitation at the level sent), one queued reply per
   row, a ticket and a follow-up question per bad rating, and nothing sent or even claimed
   from the outbox.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

import psycopg

from tests.bench import datagen, loadgen, stack
from tests.bench.pings import ensure_ping_table
from tests.bench.report import Figure, Report, rounds_table

RESULTS = stack.ROOT / "bench-results"
DATABASE = "feedback_bench_sms"
WEBHOOK_PATH = "/sms/inbound"
PUBLIC_URL = "https://hcp.example.gov.cn"  # not where gunicorn listens: as behind a TLS proxy
TWILIO_NUMBER = "+8610690012345"
SIGNATURE = "【某市政务服务】"
# Requests prepared per second of each wrk run: above what the stack can serve (a run that
# uses them up repeats MessageSids and fails its check, so this errs on the generous side).
REQUESTS_PER_SECOND = 2_500
INVITE_DELAY = 600  # seconds from completion to the invitation (SMS_INVITE_DELAY_MINUTES)

# What citizens answer: (share, texts, expected outcome, level). Every text is checked
# against feedback/sms/parser.py when the requests are built, so a parser change that
# reads one differently stops the bench instead of skewing it.
REPLY_MIX = (
    (0.780, ("5", "5", "5", "５", "5 非常满意", "非常满意", "5，谢谢", "5分"), "rated", 5),
    (0.100, ("4", "4", "满意", "4 满意"), "rated", 4),
    (0.030, ("3", "基本满意", "3 基本满意"), "rated", 3),
    (0.006, ("2 窗口人员业务不熟练", "2", "不满意，排队时间太长", "2 材料被要求重复提交"), "rated", 2),
    (0.004, ("1 态度差，推诿不办", "1", "非常不满意"), "rated", 1),
    (0.070, ("好的", "收到", "谢谢", "你们几点下班？", "这是哪里的短信", "ok", "10分", "已经办好了", "谢谢，服务很好"),
     "ambiguous", None),
    (0.010, ("TD",), "opted_out", None),
)
TWILIO_SIDS = "0123456789abcdef"


def _opt(args: argparse.Namespace, name: str, default, quick_default=None):
    """``args.name`` if set, else the default (the quick one under --quick)."""
    value = getattr(args, name, None)
    if value is not None:
        return value
    return quick_default if quick_default is not None and getattr(args, "quick", False) else default


@dataclass
class SmsOptions:
    """The knobs, from run.py's namespace or this module's own (missing fields get defaults)."""

    quick: bool
    duration: int
    warmup: int
    rounds: int
    workers: int
    worker_class: str
    threads: int
    connections: int
    wrk_threads: int
    ratings: int
    profile: bool
    out: Path

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "SmsOptions":
        workers = _opt(args, "workers", 2 * (os.cpu_count() or 1))
        return cls(quick=bool(getattr(args, "quick", False)), duration=_opt(args, "duration", 20, 5),
                   warmup=_opt(args, "warmup", 5, 2), rounds=_opt(args, "rounds", 1), workers=workers,
                   worker_class=_opt(args, "worker_class", "sync"), threads=_opt(args, "threads", 1),
                   connections=_opt(args, "connections", 2 * workers), wrk_threads=_opt(args, "wrk_threads", 2),
                   ratings=_opt(args, "sms_ratings", 200_000, 20_000), profile=bool(getattr(args, "profile", False)),
                   out=Path(_opt(args, "out", RESULTS)))


# ---------------------------------------------------------------- data

@dataclass
class Citizen:
    """One open invitation: the record, the number it went to."""

    record_id: int
    phone: str
    completed_at: datetime


@dataclass
class SmsData:
    citizens: list[Citizen]
    history: int  # SMS ratings of the past given their invitation, reply and answer
    invitations: int
    outbound: int
    inbound: int
    seconds: float

    def summary(self) -> str:
        return (f"{self.invitations:,} SMS invitations ({len(self.citizens):,} open, one per request of the load; "
                f"{self.history:,} answered in the past), {self.outbound:,} outbound texts, "
                f"{self.inbound:,} inbound texts in {self.seconds:.1f}s")


def _invitation_text(completed: datetime, deadline: datetime) -> str:
    local = completed + timedelta(hours=8)
    last = deadline + timedelta(hours=8) - timedelta(days=1)
    return (f"{SIGNATURE}您{local.month}月{local.day}日办理的事项已办结，请回复数字评价：5非常满意 4满意 3基本满意 "
            f"2不满意 1非常不满意，至{last.month}月{last.day}日有效")


def _sid(rng: random.Random, prefix: str = "SM") -> str:
    return prefix + f"{rng.getrandbits(128):032x}"


def load_sms(url: str, *, open_invitations: int, pool_prefix: str, seed: int = 20260601,
             now: datetime | None = None) -> SmsData:
    """COPY the SMS side of the province (see the module docstring, step 2) into ``url``."""
    from feedback.config import Config
    from feedback.contact import normalise_phone
    from feedback.errors import DomainError

    started = time.perf_counter()
    rng = random.Random(seed)
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    window = timedelta(days=Config().RATING_WINDOW_DAYS)
    fmt = datagen._UtcFormatter()
    with psycopg.connect(datagen.psycopg_url(url)) as conn, conn.cursor() as cur:
        out_w = datagen.prepare_writer(cur, "outbound_sms", (
            "id", "to_phone", "body", "purpose", "dedupe_key", "state", "attempts", "next_attempt_at", "created_at",
            "sent_at", "status_at", "provider_sid", "provider_status", "service_record_id"), now)
        inv_w = datagen.prepare_writer(cur, "sms_invitations", (
            "id", "service_record_id", "phone", "invited_at", "deadline_at", "outbound_sms_id"), now)
        in_w = datagen.prepare_writer(cur, "inbound_sms", (
            "id", "message_sid", "from_phone", "to_phone", "body", "received_at", "outcome", "detail",
            "evaluation_id", "service_record_id"), now)
        out_id, inv_id, in_id = (datagen._next_id(cur, t) for t in ("outbound_sms", "sms_invitations", "inbound_sms"))
        outs, invs, ins = [], [], []

        def invite(record_id: int, phone: str, completed: datetime, invited: datetime) -> None:
            nonlocal out_id, inv_id
            deadline = completed + window
            outs.append(out_w.line(dict(
                id=out_id, to_phone=phone, body=_invitation_text(completed, deadline), purpose="invitation",
                dedupe_key=f"invite:{record_id}", state="delivered", attempts=1, created_at=invited,
                sent_at=invited + timedelta(seconds=2), status_at=invited + timedelta(seconds=9),
                provider_sid=_sid(rng), provider_status="delivered", service_record_id=record_id), fmt))
            invs.append(inv_w.line(dict(id=inv_id, service_record_id=record_id, phone=phone, invited_at=invited,
                                        deadline_at=deadline, outbound_sms_id=out_id), fmt))
            out_id += 1
            inv_id += 1

        # The past: every SMS rating datagen wrote was an answer to an invitation.
        cur.execute("SELECT e.id, e.level, e.rated_at, r.id, r.citizen_phone, r.completed_at FROM evaluations e "
                    "JOIN service_records r ON r.id = e.service_record_id "
                    "WHERE e.channel = 'sms' AND r.citizen_phone IS NOT NULL ORDER BY e.id")
        history = cur.fetchall()
        for ev_id, level, rated_at, record_id, phone, completed in history:
            invited = max(completed, min(completed + timedelta(seconds=INVITE_DELAY), rated_at - timedelta(seconds=60)))
            invite(record_id, phone, completed, invited)
            sid = _sid(rng)
            ins.append(in_w.line(dict(id=in_id, message_sid=sid, from_phone=phone, to_phone=TWILIO_NUMBER,
                                      body=str(level), received_at=rated_at, outcome="rated",
                                      detail=f"评价 {level}", evaluation_id=ev_id, service_record_id=record_id), fmt))
            in_id += 1
            outs.append(out_w.line(dict(
                id=out_id, to_phone=phone, body=f"{SIGNATURE}感谢您的评价！我们会继续改进服务。",
                purpose="follow_up" if level <= 2 else "reply", dedupe_key=f"reply:{sid}", state="delivered",
                attempts=1, created_at=rated_at, sent_at=rated_at + timedelta(seconds=1),
                status_at=rated_at + timedelta(seconds=7), provider_sid=_sid(rng), provider_status="delivered"), fmt))
            out_id += 1

        # Now: open invitations for the load, one per citizen (a number seen once, valid as E.164).
        cur.execute("SELECT id, citizen_phone, completed_at FROM service_records r WHERE record_number LIKE %s "
                    "AND citizen_phone IS NOT NULL AND completed_at > %s "
                    "AND NOT EXISTS (SELECT 1 FROM evaluations e WHERE e.service_record_id = r.id) ORDER BY id",
                    (pool_prefix + "%", now - window + timedelta(hours=2)))
        pool = cur.fetchall()
        taken = {phone for *_, phone, _ in history}
        seen: dict[str, int] = {}
        for _, phone, _ in pool:
            seen[phone] = seen.get(phone, 0) + 1
        rng.shuffle(pool)
        citizens: list[Citizen] = []
        for record_id, phone, completed in pool:
            if len(citizens) == open_invitations:
                break
            if seen[phone] != 1 or phone in taken:
                continue
            try:
                if normalise_phone(phone) != phone:
                    continue
            except DomainError:
                continue
            citizens.append(Citizen(record_id, phone, completed))
        if len(citizens) < open_invitations:
            raise SystemExit(f"only {len(citizens):,} usable pool records for {open_invitations:,} invitations: "
                             "generate a larger pool")
        for c in citizens:
            invite(c.record_id, c.phone, c.completed_at,
                   min(c.completed_at + timedelta(seconds=INVITE_DELAY), now - timedelta(seconds=60)))

        out_w.write(cur, outs)
        inv_w.write(cur, invs)
        in_w.write(cur, ins)
        for table in ("outbound_sms", "sms_invitations", "inbound_sms"):
            datagen._fix_sequence(cur, table)
        conn.commit()
        conn.autocommit = True
        for table in ("outbound_sms", "sms_invitations", "inbound_sms"):
            cur.execute(f'VACUUM (ANALYZE) "{table}"')
    return SmsData(citizens=citizens, history=len(history), invitations=len(invs), outbound=len(outs),
                   inbound=len(ins), seconds=time.perf_counter() - started)


# ---------------------------------------------------------------- requests

def _reply_text(rng: random.Random) -> tuple[str, str, int | None]:
    """One citizen's answer: (text, expected outcome, expected level)."""
    r = rng.random()
    for share, texts, outcome, level in REPLY_MIX:
        if r < share:
            return rng.choice(texts), outcome, level
        r -= share
    share, texts, outcome, level = REPLY_MIX[0]
    return rng.choice(texts), outcome, level


def check_mix() -> None:
    """Every text of REPLY_MIX parses as the bench expects (feedback/sms/parser.py)."""
    from feedback.sms.parser import parse_reply

    kinds = {"rated": ("rating",), "ambiguous": ("text", "ambiguous"), "opted_out": ("opt_out",)}
    for _, texts, outcome, level in REPLY_MIX:
        for text in texts:
            reply = parse_reply(text)
            if reply.kind not in kinds[outcome] or reply.level != level:
                raise SystemExit(f"the parser reads {text!r} as {reply}; update REPLY_MIX in tests/bench/bench_sms.py")


def build_requests(path: Path, citizens: list[Citizen], *, token: str, account_sid: str, label: str,
                   rng: random.Random) -> list[tuple[str, str, int | None, str]]:
    """Write one signed Twilio request per citizen to ``path`` (the format lua/sms.lua reads);
    return what each should do: (MessageSid, outcome, level, label)."""
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(token)
    url = PUBLIC_URL + WEBHOOK_PATH
    expected = []
    with path.open("w", encoding="utf-8") as f:
        for c in citizens:
            text, outcome, level = _reply_text(rng)
            sid = _sid(rng)
            # Twilio's fields for an inbound SMS, in Twilio's order.
            params = {"ToCountry": "CN", "ToState": "", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "",
                      "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received", "FromCity": "",
                      "Body": text, "FromCountry": "CN", "To": TWILIO_NUMBER, "ToZip": "", "NumSegments": "1",
                      "MessageSid": sid, "AccountSid": account_sid, "From": c.phone, "ApiVersion": "2010-04-01"}
            signature = validator.compute_signature(url, params)
            f.write(f"{sid}\t{signature}\t{urlencode(params)}\n")
            expected.append((sid, outcome, level, label))
    return expected


def store_expected(url: str, rows: list[tuple[str, str, int | None, str]]) -> None:
    """``bench_sms_expected``: what each request should do (outside the app's metadata, like bench_pings)."""
    with psycopg.connect(datagen.psycopg_url(url)) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS bench_sms_expected (message_sid varchar(64) PRIMARY KEY, "
                    "outcome varchar(30) NOT NULL, level integer, label varchar(20) NOT NULL)")
        with cur.copy("COPY bench_sms_expected (message_sid, outcome, level, label) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute("ANALYZE bench_sms_expected")


# ---------------------------------------------------------------- checks

def _one(url: str, sql: str, *params):
    with psycopg.connect(datagen.psycopg_url(url)) as conn:
        return conn.execute(sql, params).fetchone()


def snapshot(url: str) -> dict[str, int]:
    """Highest ids (and the ping count) before a run: what the run adds is above them."""
    row = _one(url, "SELECT (SELECT coalesce(max(id), 0) FROM inbound_sms), (SELECT coalesce(max(id), 0) FROM "
                    "outbound_sms), (SELECT coalesce(max(id), 0) FROM evaluations), (SELECT coalesce(max(id), 0) "
                    "FROM sms_follow_ups), (SELECT count(*) FROM bench_pings)")
    return dict(zip(("inbound", "outbound", "evaluations", "follow_ups", "pings"), row))


def inbound_effects(url: str, before: dict[str, int], label: str) -> dict:
    """What the webhook run stored, checked against what its requests should have done."""
    with psycopg.connect(datagen.psycopg_url(url)) as conn:
        q = lambda sql, *p: conn.execute(sql, p).fetchone()[0]  # noqa: E731
        b = before
        rows = q("SELECT count(*) FROM inbound_sms WHERE id > %s", b["inbound"])
        distinct = q("SELECT count(DISTINCT message_sid) FROM inbound_sms WHERE id > %s", b["inbound"])
        outcomes = dict(conn.execute("SELECT outcome, count(*) FROM inbound_sms WHERE id > %s GROUP BY outcome "
                                     "ORDER BY count(*) DESC", (b["inbound"],)).fetchall())
        unknown = q("SELECT count(*) FROM inbound_sms i WHERE id > %s AND NOT EXISTS (SELECT 1 FROM "
                    "bench_sms_expected x WHERE x.message_sid = i.message_sid AND x.label = %s)", b["inbound"], label)
        wrong = q("SELECT count(*) FROM inbound_sms i JOIN bench_sms_expected x USING (message_sid) "
                  "LEFT JOIN evaluations e ON e.id = i.evaluation_id LEFT JOIN sms_invitations v "
                  "ON v.service_record_id = i.service_record_id WHERE i.id > %s AND (i.outcome <> x.outcome "
                  "OR (x.level IS NOT NULL AND (e.level IS DISTINCT FROM x.level OR e.channel <> 'sms' "
                  "OR v.phone IS DISTINCT FROM i.from_phone)))", b["inbound"])
        no_reply = q("SELECT count(*) FROM inbound_sms i WHERE id > %s AND NOT EXISTS (SELECT 1 FROM outbound_sms o "
                     "WHERE o.dedupe_key = 'reply:' || i.message_sid)", b["inbound"])
        replies = q("SELECT count(*) FROM outbound_sms WHERE id > %s", b["outbound"])
        touched = q("SELECT count(*) FROM outbound_sms WHERE id > %s AND (state <> 'queued' OR attempts > 0 "
                    "OR provider_sid IS NOT NULL)", b["outbound"])
        ratings = q("SELECT count(*) FROM evaluations WHERE id > %s", b["evaluations"])
        bad = q("SELECT count(*) FROM evaluations WHERE id > %s AND level <= 2", b["evaluations"])
        tickets = q("SELECT count(*) FROM tickets t JOIN evaluations e ON e.id = t.evaluation_id WHERE e.id > %s",
                    b["evaluations"])
        follow_ups = q("SELECT count(*) FROM sms_follow_ups WHERE id > %s", b["follow_ups"])
    return dict(rows=rows, duplicates=rows - distinct, outcomes=outcomes, unknown=unknown, wrong=wrong,
                no_reply=no_reply, replies=replies, outbox_touched=touched, ratings=ratings, bad=bad,
                tickets=tickets, follow_ups=follow_ups)


def _repeated(res: loadgen.WrkResult) -> int:
    """Requests lua/sms.lua sent a second time because its file ran out (0 when sized right)."""
    line = next(ln for ln in res.raw.splitlines() if ln.startswith("WRK_JSON "))
    return int(json.loads(line[len("WRK_JSON "):]).get("repeated", 0))


# ---------------------------------------------------------------- the bench

def sms_bench(args: argparse.Namespace, pg_server: str) -> tuple[list[Figure], list[tuple[str, str]], dict, bool]:
    """The SMS webhook on the PostgreSQL server ``pg_server``: figures, report sections, data, checks passed.

    Reads duration, warmup, rounds, workers, worker_class, threads, connections, wrk_threads,
    quick, profile, out and sms_ratings from ``args`` when present, defaults otherwise (run.py's
    namespace works as it is; its --ratings is not used: 200,000 existing ratings, quick 20,000)."""
    o = SmsOptions.from_args(args)
    o.out.mkdir(parents=True, exist_ok=True)
    log = o.out / "gunicorn-sms.log"
    log.write_text("")
    started = time.perf_counter()
    check_mix()
    rng = random.Random(20260602)
    token = f"{rng.getrandbits(128):032x}"
    account_sid = _sid(rng, "AC")
    warm_n = REQUESTS_PER_SECOND * max(o.warmup, 1)
    run_n = REQUESTS_PER_SECOND * o.duration
    total = warm_n + o.rounds * run_n
    data: dict = {}
    with stack.postgres(pg_server, database=DATABASE) as url:
        env = stack.production_env(url, FEEDBACK_PUBLIC_URL=PUBLIC_URL, FEEDBACK_SMS_BACKEND="twilio",
                                   TWILIO_ACCOUNT_SID=account_sid, TWILIO_AUTH_TOKEN=token,
                                   TWILIO_FROM_NUMBER=TWILIO_NUMBER, FEEDBACK_SMS_SIGNATURE=SIGNATURE,
                                   # Never reached (nothing sends here), and nobody would answer.
                                   FEEDBACK_TWILIO_API_BASE_URL="http://127.0.0.1:9")
        print(f"migrating {url} …", file=sys.stderr)
        stack.migrate(env)
        pool = int(total / 0.6) + 2_000  # datagen gives 65 % of the pool a number
        print(f"generating {o.ratings:,} ratings and a pool of {pool:,} …", file=sys.stderr)
        gen = datagen.generate(url, ratings=o.ratings, pool=pool)
        print(gen.summary(), file=sys.stderr)
        print(f"loading {total:,} open SMS invitations …", file=sys.stderr)
        sms = load_sms(url, open_invitations=total, pool_prefix=gen.pool_prefix)
        print(sms.summary(), file=sys.stderr)
        ensure_ping_table(url)

        mark = time.perf_counter()
        files: dict[str, Path] = {}
        expected = []
        slices = [("warm-up", sms.citizens[:warm_n])]
        slices += [(f"round {n}", sms.citizens[warm_n + (n - 1) * run_n:warm_n + n * run_n])
                   for n in range(1, o.rounds + 1)]
        for label, citizens in slices:
            files[label] = o.out / f"sms-requests-{label.replace(' ', '-')}.txt"
            expected += build_requests(files[label], citizens, token=token, account_sid=account_sid, label=label,
                                       rng=rng)
        store_expected(url, expected)
        signing_s = time.perf_counter() - mark
        request_bytes = statistics.median(len(ln) for ln in files["round 1"].read_text().splitlines()[:1000])
        print(f"signed {len(expected):,} requests in {signing_s:.1f}s", file=sys.stderr)

        server = stack.Gunicorn(env, workers=o.workers, worker_class=o.worker_class, threads=o.threads,
                                log_path=log)
        wrk_opts = dict(threads=o.wrk_threads, connections=o.connections)

        def wrk(label: str, path: str, requests: str, seconds: int) -> loadgen.WrkResult:
            return loadgen.run_wrk(label, server.url + path, "sms.lua", [str(files[requests]), str(o.wrk_threads)],
                                   duration_s=seconds, **wrk_opts)

        rounds = []
        with server:
            print(f"gunicorn {' '.join(server.command[1:])} at {server.url}", file=sys.stderr)
            if o.warmup:
                wrk("warm-up bare", "/bench/ping", "warm-up", o.warmup)
                wrk("warm-up sms", WEBHOOK_PATH, "warm-up", o.warmup)
            for n in range(1, o.rounds + 1):
                label = f"round {n}"
                before = snapshot(url)
                bare = wrk("bare insert", "/bench/ping", label, o.duration)
                time.sleep(1)  # requests in flight at wrk's deadline still commit
                middle = snapshot(url)
                profiler = None
                if o.profile and n == 1 and server.workers():
                    from tests.bench.run import _profile

                    profiler = _profile(server.workers()[0], o.duration, o.out / "profile-sms.txt")
                webhook = wrk("sms webhook", WEBHOOK_PATH, label, o.duration)
                if profiler:
                    profiler.wait(timeout=60)
                time.sleep(1)
                effects = inbound_effects(url, middle, label)
                print(f"round {n}: bare {bare.ok_per_s:.0f}/s, sms webhook {webhook.ok_per_s:.0f}/s", file=sys.stderr)
                rounds.append(dict(bare=bare, sms=webhook, new_pings=middle["pings"] - before["pings"],
                                   effects=effects, repeated=_repeated(webhook), after=snapshot(url)))
            time.sleep(1)
            late = _one(url, "SELECT count(*) FROM inbound_sms WHERE id > %s", rounds[-1]["after"]["inbound"])[0]

    # ------------------------------------------------------------ verification
    checks = []
    for n, r in enumerate(rounds, 1):
        e = r["effects"]
        for label, res, rows, clean in (("bare insert", r["bare"], r["new_pings"], True),
                                        ("sms webhook", r["sms"], e["rows"], e["duplicates"] == r["repeated"] == 0)):
            # wrk stops counting at the deadline; requests still in flight may commit afterwards.
            extra = rows - res.ok
            ok = 0 <= extra <= o.connections and res.failures == 0 and clean
            checks.append((f"{label} (round {n})", res.ok, rows, extra, res.failures, ok))
    content = []
    for n, r in enumerate(rounds, 1):
        e = r["effects"]
        rated = e["outcomes"].get("rated", 0)
        content += [
            (n, "rows whose outcome, level, channel or invitation differ from what their text should do",
             e["wrong"], 0),
            (n, "rows from MessageSids the bench did not send in this run", e["unknown"], 0),
            (n, "MessageSids stored twice / sent twice (file ran out)", e["duplicates"] + r["repeated"], 0),
            (n, "rows without their queued reply (dedupe_key reply:<MessageSid>)", e["no_reply"], 0),
            (n, "new ratings − rows rated", e["ratings"] - rated, 0),
            (n, "tickets − bad ratings", e["tickets"] - e["bad"], 0),
            (n, "follow-up questions − bad ratings", e["follow_ups"] - e["bad"], 0),
            (n, "outbox rows sent, claimed or attempted (nothing may send)", e["outbox_touched"], 0),
        ]
    all_ok = all(c[-1] for c in checks) and all(v == want for *_, v, want in content) and late == 0

    def med(kind: str, attr: str) -> float:
        return statistics.median(getattr(r[kind], attr) for r in rounds)

    bare_rps, sms_rps = med("bare", "ok_per_s"), med("sms", "ok_per_s")
    of_rounds = f" (median of {len(rounds)} rounds)" if len(rounds) > 1 else ""
    figures = [
        Figure("#6 SMS webhook replies/s (POST /sms/inbound)", sms_rps, "req/s",
               "bare insert (POST /bench/ping, same requests)", bare_rps,
               note=f"signed Twilio form, a distinct citizen's open invitation each{of_rounds}"),
        Figure("#6 SMS webhook latency p50", med("sms", "p50_ms"), "ms", "bare insert p50", med("bare", "p50_ms"),
               higher_is_better=False),
        Figure("#6 SMS webhook latency p99", med("sms", "p99_ms"), "ms", "bare insert p99", med("bare", "p99_ms"),
               higher_is_better=False),
    ]
    checks_md = ["| endpoint | 2xx seen by wrk | new rows in the database | rows − 2xx (in flight at the end) "
                 "| non-2xx + socket errors | ok |", "|---|---:|---:|---:|---:|---|"]
    checks_md += [f"| {label} | {seen:,} | {rows:,} | {extra} | {fail} | {'yes' if ok else '**NO**'} |"
                  for label, seen, rows, extra, fail, ok in checks]
    checks_md += ["", "| round | what the webhook stored | found | expected | ok |", "|---:|---|---:|---:|---|"]
    checks_md += [f"| {n} | {what} | {v:,} | {want} | {'yes' if v == want else '**NO**'} |"
                  for n, what, v, want in content]
    checks_md.append("")
    for n, r in enumerate(rounds, 1):
        e = r["effects"]
        outcomes = ", ".join(f"{k} {v:,}" for k, v in e["outcomes"].items())
        checks_md.append(f"Round {n}: {e['rows']:,} inbound rows ({outcomes}); {e['ratings']:,} ratings "
                         f"({e['bad']} bad, {e['tickets']} tickets); {e['replies']:,} replies queued, all still "
                         f"`queued` with no provider sid.")
    checks_md.append(f"\nInbound texts committed after the last count: {late}.")
    samples = [s for r in rounds for res in (r["bare"], r["sms"]) for s in res.error_samples]
    if samples:
        checks_md += ["", "Error samples:", "", *[f"- `{s[:200]}`" for s in samples]]
    mix = ", ".join(f"{share * 100:g} % {outcome}" + (f" {level}" if level else "")
                    for share, _, outcome, level in REPLY_MIX)
    setup = (
        f"- data: {gen.summary()}; {sms.summary()}\n"
        f"- requests: {len(expected):,} precomputed (signing {signing_s:.1f}s), {REQUESTS_PER_SECOND:,} per second "
        f"of each run, one file per run (tests/bench/lua/sms.lua); Twilio's form fields, about {request_bytes:.0f} "
        f"bytes of body, X-Twilio-Signature over `{PUBLIC_URL}{WEBHOOK_PATH}`, a unique MessageSid, the From of a "
        f"citizen with one open invitation; replies: {mix}\n"
        f"- server: `gunicorn {' '.join(server.command[1:])}`, FEEDBACK_ENV=production, FEEDBACK_SMS_BACKEND=twilio "
        f"(API base pointed at a closed port; the job process that sends the outbox is not running), rate limiting "
        f"off (the per-number SMS_INBOUND_LIMIT_PER_HOUR stays on: one text per number)\n"
        f"- load: `wrk -t{o.wrk_threads} -c{o.connections} -d{o.duration}s --latency -s tests/bench/lua/sms.lua` "
        f"after {o.warmup} s of warm-up per endpoint; {o.rounds} round(s) of the bare run then the webhook run, the "
        f"very same requests to both (the bare endpoint parses the form and inserts the MessageSid)\n"
        f"- took {time.perf_counter() - started:.0f} s")
    sections = [("SMS webhook: setup", setup), ("SMS webhook: rounds", rounds_table(rounds, "sms", "webhook")),
                ("SMS webhook: verification in the database", "\n".join(checks_md))]
    if o.profile and (o.out / "profile-sms.txt").exists():
        from tests.bench.run import summarise_profile

        sections.append(("Profile of one worker during the SMS webhook run (py-spy, inclusive)",
                         "```\n" + summarise_profile(o.out / "profile-sms.txt") + "\n```"))
    for n, r in enumerate(rounds, 1):
        (o.out / f"wrk-sms-bare-{n}.txt").write_text(r["bare"].raw)
        (o.out / f"wrk-sms-{n}.txt").write_text(r["sms"].raw)
    for path in files.values():
        path.unlink(missing_ok=True)
    data["sms"] = {"generation": gen.__dict__, "sms_data": {k: v for k, v in sms.__dict__.items() if k != "citizens"},
                   "rounds": [{"bare": r["bare"].as_dict(), "sms": r["sms"].as_dict(), "effects": r["effects"],
                               "repeated": r["repeated"]} for r in rounds],
                   "late": late, "seconds": time.perf_counter() - started}
    data["sms_checks_ok"] = all_ok
    return figures, sections, data, all_ok


# ---------------------------------------------------------------- standalone

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="SMS webhook (POST /sms/inbound) per second beside a bare insert")
    p.add_argument("--quick", action="store_true", help="small data and short runs (a smoke test of the bench)")
    p.add_argument("--duration", type=int, help="seconds per measured run (default 20; quick 5)")
    p.add_argument("--warmup", type=int, help="seconds of warm-up per endpoint (default 5; quick 2)")
    p.add_argument("--rounds", type=int, default=1, help="bare-then-webhook rounds; figures are the medians")
    p.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1), help="gunicorn sync workers (2 × cores)")
    p.add_argument("--connections", type=int, help="wrk connections (default 2 × workers)")
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--sms-ratings", type=int, help="existing ratings to generate (default 200,000; quick 20,000)")
    p.add_argument("--database-url", help="use this PostgreSQL server instead of a throwaway cluster "
                                          f"(a database {DATABASE} is recreated on it)")
    p.add_argument("--profile", action="store_true", help="py-spy one worker during the webhook run")
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    loadgen.wrk_path()  # fail early when wrk is missing
    started = time.perf_counter()
    load_before = os.getloadavg()
    with stack.cluster(args.database_url) as server:
        figures, sections, data, ok = sms_bench(args, server)
    command = "python -m tests.bench.bench_sms " + " ".join(shlex.quote(a) for a in argv)
    sections.insert(0, ("Run", f"- command: `{command}` ({time.perf_counter() - started:.0f} s)\n"
                               f"- machine: {os.cpu_count()} cores shared with whatever else runs (load average "
                               f"before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}); wrk and PostgreSQL "
                               f"run on the same cores as gunicorn, so read the ratio."))
    report = Report("Benchmark: the SMS webhook (POST /sms/inbound)", figures, sections, data | {"checks_ok": ok})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sms.md").write_text(report.markdown(), encoding="utf-8")
    (args.out / "sms.json").write_text(json.dumps(data | {"checks_ok": ok, "command": command}, ensure_ascii=False,
                                                  indent=2, default=str), encoding="utf-8")
    print(report.markdown())
    print(f"written {args.out / 'sms.md'}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
