"""Issue 18's benchmark: a backfill (补报) of N ratings pushed through the exchange ledger to the
fake provincial gateway on the same machine, beside a bare loop that POSTs the same payloads
without the ledger — same HTTP client (NationalJsonAdapter), same batch size, same run.

    python -m tests.bench.bench_exchange [--database-url postgresql+psycopg://…/postgres] [--ratings 1000000]
                                         [--secure] [--profile]

1. starts a throwaway PostgreSQL (tests/support/pg.sh) unless --database-url names a server,
   creates a database and migrates it with `flask db upgrade`;
2. bulk-loads N ratings with tests/bench/datagen.py (their records, the bad ones' tickets with
   their steps, a few invalidated ratings) and gives every service item a 实施编码 (and the
   departments and halls their credit and area codes), so nothing is skipped as local;
3. times ``feedback.exchange.service.backfill`` over the whole history (≈ 2N messages: each
   record and its rating, plus the tickets' rectification steps and the invalidations);
4. starts the fake gateway (``start_gateway(discard_items=True)``: national-json without SM2
   and SM4 unless --secure), then, the gateway reset before each:
   (b) the bare loop: the same messages' payloads, built with feedback.exchange.mapping.payloads
       (untimed), POSTed kind by kind (records first) in batches of EXCHANGE_BATCH_SIZE through
       the same adapter, nothing written anywhere; only the ``send`` calls are timed;
   (a) the ledger: the pusher as a real process, `flask --app wsgi exchange push` with
       FEEDBACK_EXCHANGE_RUN_SECONDS large, run until the ledger is drained; wall time from its
       start to its exit, peak RSS (wait4's ru_maxrss of that process), the CPU of the pusher,
       of its PostgreSQL backend and of the gateway;
   (b) the bare loop again (the reference pools both runs: the machine's load drifts);
   (c) once more with each item handed to the adapter as its JSON text, as the pusher hands
       over what PostgreSQL wrote: shown beside the reference, not pooled into it;
5. checks: every message acknowledged, nothing pending, failed or sent twice; the gateway
   accepted exactly that many, duplicates 0, order violations 0, redelivered 0 — for all three.

Writes bench-results/exchange.md (and results in run.py's report as part "exchange").
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import psycopg

from tests.bench import datagen, stack
from tests.support.gateway import APP_KEY, APP_SECRET, SM2_PRIVATE_KEY, SM2_PUBLIC_KEY, SM4_KEY, start_gateway

RESULTS = stack.ROOT / "bench-results"
TARGET_RATIO = 0.5
PUSH = [str(stack.VENV_BIN / "flask"), "--app", "wsgi", "exchange", "push"]
MAX_RUNS = 20  # push runs before giving up on draining (one run normally drains everything)


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options of the standalone run."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", help="a PostgreSQL server to use instead of a throwaway one")
    p.add_argument("--ratings", type=int, default=1_000_000, help="ratings to generate and backfill")
    p.add_argument("--secure", action="store_true", help="SM2 signature and SM4 encryption on the wire (both sides)")
    p.add_argument("--profile", action="store_true", help="py-spy the pusher (bench-results/profile-exchange.txt)")
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def _app(url: str, **config):
    # The app is imported only when this part runs (run.py imports this module for every part).
    from feedback import create_app
    from feedback.config import Config

    return create_app(Config(ENV_NAME="production", SECRET_KEY="bench-" + "x" * 30, SQLALCHEMY_DATABASE_URI=url,
                             extra=config))


def _exchange_config(gateway, secure: bool) -> dict[str, str]:
    """The pusher's settings (environment variables) for ``gateway``."""
    env = {"FEEDBACK_EXCHANGE_ADAPTER": "national-json", "FEEDBACK_EXCHANGE_URL": gateway.url,
           "FEEDBACK_EXCHANGE_APP_KEY": APP_KEY, "FEEDBACK_EXCHANGE_APP_SECRET": APP_SECRET,
           "FEEDBACK_EXCHANGE_TIMEOUT_SECONDS": "60", "FEEDBACK_EXCHANGE_RUN_SECONDS": "86400"}
    if secure:
        env.update(FEEDBACK_EXCHANGE_SM2_PRIVATE_KEY=SM2_PRIVATE_KEY, FEEDBACK_EXCHANGE_SM2_PUBLIC_KEY=SM2_PUBLIC_KEY,
                   FEEDBACK_EXCHANGE_SM4_KEY=SM4_KEY)
    return env


def _adapter_config(env: dict[str, str]) -> dict:
    """The same settings as the Flask config holds them (for the bare loop's adapter)."""
    return {k.removeprefix("FEEDBACK_"): v for k, v in env.items()}


# ---------------------------------------------------------------- data

def national_codes(url: str) -> dict:
    """Every service item gets a 实施编码 and a 事项类型, every department a credit and area code,
    every hall an area code: a province whose directory was imported, nothing local."""
    from feedback.directory.national import credit_check_character  # the app is imported only when this runs

    with psycopg.connect(datagen.psycopg_url(url)) as conn, conn.cursor() as cur:
        cur.execute("UPDATE service_items SET implementation_code = '113401000000000000' || '0000' "
                    "|| lpad(id::text, 9, '0'), item_type = '01'")
        items = cur.rowcount
        cur.execute("SELECT id FROM departments")
        rows = []
        for (dept_id,) in cur.fetchall():
            first17 = f"11340100{dept_id:09d}"
            rows.append((first17 + credit_check_character(first17), dept_id))
        cur.executemany("UPDATE departments SET credit_code = %s, area_code = '340100000000' WHERE id = %s", rows)
        cur.execute("UPDATE halls SET area_code = '340100000000'")
        conn.commit()
        conn.autocommit = True
        for table in ("service_items", "departments", "halls"):
            cur.execute(f'VACUUM (ANALYZE) "{table}"')
    return {"items": items, "departments": len(rows)}


def queue_backfill(app) -> tuple[float, dict, date, date]:
    """Time ``service.backfill`` over the whole generated history (3 years and a month, to today)."""
    from feedback.clock import to_local, utcnow  # the app is imported only when this part runs
    from feedback.exchange import service
    from feedback.extensions import db

    with app.app_context():
        today = to_local(utcnow()).date()
        date_from = today - timedelta(days=datagen.HISTORY_DAYS + 40)
        db.session.execute(db.select(1))  # connect before the clock starts
        t0 = time.perf_counter()
        counts = service.backfill(date_from, today)
        db.session.commit()
        elapsed = time.perf_counter() - t0
        db.engine.dispose()
    return elapsed, counts, date_from, today


def ledger_status(url: str) -> dict:
    """Messages by status, by kind (all but the skipped), and how many took more than one attempt."""
    with psycopg.connect(datagen.psycopg_url(url)) as conn:
        by_status = dict(conn.execute("SELECT status, count(*) FROM exchange_messages GROUP BY 1").fetchall())
        by_kind = dict(conn.execute("SELECT kind, count(*) FROM exchange_messages "
                                    "WHERE status <> 'skipped' GROUP BY 1").fetchall())
        resent = conn.execute("SELECT count(*) FROM exchange_messages WHERE attempts > 1").fetchone()[0]
    return {"by_status": by_status, "by_kind": by_kind, "attempts_over_1": resent}


# ---------------------------------------------------------------- (b) the bare loop

def bare_loop(app, adapter_config: dict, batch_size: int, texts: bool = False) -> dict:
    """POST every queued message's payload (all but the skipped) through a NationalJsonAdapter
    in batches of ``batch_size``, kind by kind in the pusher's order (records first); payloads
    built untimed, only the ``send`` calls timed; nothing written to the database.

    ``texts``: each message handed over as its JSON text (written untimed, ``messageId`` first),
    as the pusher hands over what PostgreSQL wrote, instead of as a dict the adapter encodes."""
    from feedback.exchange.adapters.base import Outgoing  # the app is imported only when this part runs
    from feedback.exchange.adapters.national_json import canonical_json
    from feedback.exchange.adapters.national_json import NationalJsonAdapter
    from feedback.exchange.mapping import payloads
    from feedback.exchange.models import ExchangeMessage
    from feedback.exchange.pusher import ORDER
    from feedback.extensions import db

    m = ExchangeMessage
    sent = acknowledged = requests = 0
    send_s = build_s = 0.0
    started = time.perf_counter()
    with app.app_context():
        adapter = NationalJsonAdapter({**app.config, **adapter_config})
        try:
            for kind in ORDER:
                last = 0
                while True:
                    t0 = time.perf_counter()
                    rows = db.session.execute(db.select(m.id, m.message_id, m.subject_id).where(
                        m.kind == kind, m.status != "skipped", m.id > last).order_by(m.id).limit(batch_size)).all()
                    if not rows:
                        break
                    last = rows[-1].id
                    built = payloads(kind, rows)
                    batch = [Outgoing(r.message_id, kind, text=canonical_json({"messageId": r.message_id,
                                                                               **built[r.message_id]}))
                             if texts else Outgoing(r.message_id, kind, built[r.message_id]) for r in rows]
                    db.session.rollback()
                    db.session.expunge_all()
                    t1 = time.perf_counter()
                    delivery = adapter.send(kind, batch)
                    send_s += time.perf_counter() - t1
                    build_s += t1 - t0
                    requests += 1
                    sent += len(batch)
                    acknowledged += sum(o.status == "acknowledged" for o in delivery.outcomes)
        finally:
            adapter.close()
            db.engine.dispose()
    return {"messages": sent, "acknowledged": acknowledged, "requests": requests, "send_s": send_s,
            "build_s": build_s, "wall_s": time.perf_counter() - started,
            "per_s": sent / send_s if send_s else 0.0}


# ---------------------------------------------------------------- (a) the ledger

def _wait(proc: subprocess.Popen, peak_kb: int, backends: "Backends") -> tuple[int, int, float]:
    """Wait for ``proc`` with wait4 (its own rusage); (exit code, peak RSS in KiB, CPU seconds),
    polling /proc VmHWM meanwhile as a cross-check, and the CPU of its PostgreSQL backends."""
    polls = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, max(peak_kb, usage.ru_maxrss), usage.ru_utime + usage.ru_stime
        peak_kb = max(peak_kb, int(stack.memory_mb(proc.pid)["peak"] * 1024))
        backends.poll(find=polls % 40 == 0)
        polls += 1
        time.sleep(0.25)  # polling a process we started, not timing anything


class Backends:
    """CPU seconds of the PostgreSQL backends serving the database at ``url`` (during the drain:
    the pusher's connections), read from /proc while they live; a backend's entry goes with
    its connection, so each keeps the last value read."""

    def __init__(self, url: str) -> None:
        self.url, self.cpu = datagen.psycopg_url(url), {}
        # Backends alive before the drain (another connection of this process, a pool's leftover)
        # count only what they use from now on.
        self.poll(find=True)
        self.before = dict(self.cpu)

    def poll(self, find: bool = False) -> None:
        """Read the known backends' CPU; with ``find``, ask PostgreSQL for the current ones first."""
        if find:
            with psycopg.connect(self.url) as conn:
                for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                           "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"):
                    self.cpu.setdefault(pid, 0.0)
        for pid in self.cpu:
            try:
                self.cpu[pid] = max(self.cpu[pid], process_cpu(pid))
            except (OSError, ValueError, IndexError):
                pass  # gone: its last value stays

    @property
    def total(self) -> float:
        """CPU seconds of every backend seen, since the drain began."""
        return sum(cpu - self.before.get(pid, 0.0) for pid, cpu in self.cpu.items())


def _running(proc: subprocess.Popen) -> bool:
    """Whether ``proc`` still runs, without reaping it (wait4 in :func:`_wait` reads its rusage)."""
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:
        return False


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine since boot, summed over its cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / os.sysconf("SC_CLK_TCK"), sum(values) / os.sysconf("SC_CLK_TCK")


def push_ledger(env: dict[str, str], gateway, url: str, log_path: Path, profile: Path | None = None) -> dict:
    """Run the pusher process until nothing is pending; wall time, runs, peak RSS, summaries."""
    runs, summaries, peak_kb, first_request, cpu, backends = 0, [], 0, None, 0.0, Backends(url)
    gateway_cpu, machine, load = process_cpu(gateway.process.pid), machine_cpu(), os.getloadavg()[0]
    started = time.perf_counter()
    with log_path.open("w") as log:
        while runs < MAX_RUNS:
            runs += 1
            proc = subprocess.Popen(PUSH, cwd=stack.ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
            if first_request is None:
                while _running(proc) and gateway.stats()["requests"] == 0:
                    time.sleep(0.05)  # waiting for the first push request, to report the start-up apart
                first_request = time.perf_counter() - started
            spy = _profile(proc.pid, profile) if profile and runs == 1 else None  # attached once it is pushing
            code, peak_kb, used = _wait(proc, peak_kb, backends)
            cpu += used
            out = proc.stdout.read()
            proc.stdout.close()
            if spy:
                spy.wait(timeout=120)
            summaries.append(out.strip())
            if code != 0:
                raise RuntimeError(f"exchange push exited with {code}: {out[-2000:]} (see {log_path})")
            status = ledger_status(url)["by_status"]
            if not status.get("pending") and not status.get("sending"):
                break
    drain = time.perf_counter() - started
    busy, total = (b - a for a, b in zip(machine, machine_cpu()))
    return {"runs": runs, "drain_s": drain, "first_request_s": first_request, "peak_rss_mb": peak_kb / 1024,
            "summaries": summaries, "cpu": {"pusher_s": cpu, "gateway_s": process_cpu(gateway.process.pid) - gateway_cpu,
                                            "postgres_s": backends.total, "machine_busy_s": busy, "machine_all_s": total,
                                            "load_before": load, "load_after": os.getloadavg()[0]}}


def _profile(pid: int, out: Path) -> subprocess.Popen | None:
    exe = stack.VENV_BIN / "py-spy"
    if not exe.exists():
        print("py-spy not installed (pip install -e '.[bench]'); no profile", file=sys.stderr)
        return None
    return subprocess.Popen([str(exe), "record", "--pid", str(pid), "--rate", "100", "--format", "raw",
                             "--output", str(out), "--nonblocking"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


# ---------------------------------------------------------------- the whole part

def run_exchange(server: str | None, *, ratings: int, secure: bool = False, out: Path = RESULTS,
                 profile: bool = False) -> dict:
    """Everything on the PostgreSQL server ``server`` (None: a throwaway cluster); the results."""
    out.mkdir(parents=True, exist_ok=True)
    r: dict = {"ratings": ratings, "secure": secure}
    with stack.postgres(server, database="feedback_bench_exchange") as url:
        print(f"[exchange] migrating {url} and generating {ratings:,} ratings …", file=sys.stderr)
        env = stack.production_env(url)
        stack.migrate(env)
        gen = datagen.generate(url, ratings=ratings, pool=0)
        r["generation"] = {"summary": gen.summary(), "seconds": gen.seconds}
        r["codes"] = national_codes(url)
        app = _app(url)
        batch_size = int(app.config["EXCHANGE_BATCH_SIZE"])
        r["backfill_s"], r["queued"], d_from, d_to = queue_backfill(app)
        r["backfill_range"] = f"{d_from.isoformat()} … {d_to.isoformat()}"
        with psycopg.connect(datagen.psycopg_url(url), autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE) exchange_messages")  # as autovacuum would after the bulk insert
        r["before"] = ledger_status(url)
        r["messages"] = r["before"]["by_status"].get("pending", 0)
        print(f"[exchange] backfill queued {r['messages']:,} messages in {r['backfill_s']:.1f} s {r['queued']}",
              file=sys.stderr)
        # A fresh gateway process for each of the three (a reset of millions of stored ids
        # takes longer than the control API's timeout), all started alike.
        with start_gateway(discard_items=True, secure=secure) as gateway:
            r["bare_runs"] = [_bare(app, _exchange_config(gateway, secure), batch_size, gateway, "before")]
        with start_gateway(discard_items=True, secure=secure) as gateway:
            r["ledger"] = push_ledger({**env, **_exchange_config(gateway, secure)}, gateway, url,
                                      out / "exchange-pusher.log", out / "profile-exchange.txt" if profile else None)
            r["ledger"]["gateway"] = gateway.stats()
            r["gateway_rss_mb"] = stack.memory_mb(gateway.process.pid)["peak"]
        print(f"[exchange] ledger: {r['messages']:,} in {r['ledger']['drain_s']:.1f} s", file=sys.stderr)
        with start_gateway(discard_items=True, secure=secure) as gateway:
            r["bare_runs"].append(_bare(app, _exchange_config(gateway, secure), batch_size, gateway, "after"))
        # Not in the reference, shown beside it: the adapter given JSON text, as the pusher gives it.
        with start_gateway(discard_items=True, secure=secure) as gateway:
            r["bare_texts"] = _bare(app, _exchange_config(gateway, secure), batch_size, gateway,
                                    "after (items as JSON text)", texts=True)
        runs = r["bare_runs"]
        send_s = sum(b["send_s"] for b in runs)
        r["bare"] = {"messages": runs[0]["messages"], "send_s": send_s / len(runs),
                     "per_s": sum(b["messages"] for b in runs) / send_s if send_s else 0.0,
                     "build_s": sum(b["build_s"] for b in runs) / len(runs)}
        r["after"] = ledger_status(url)
        r["ledger"]["per_s"] = r["messages"] / r["ledger"]["drain_s"]
        r["batch_size"] = batch_size
        r["ratio"] = r["ledger"]["per_s"] / r["bare"]["per_s"] if r["bare"]["per_s"] else 0.0
        print(f"[exchange] ledger {r['ledger']['per_s']:.0f}/s, bare {r['bare']['per_s']:.0f}/s, "
              f"ratio {r['ratio']:.2f}", file=sys.stderr)
    r["checks"] = checks(r)
    return r


def _bare(app, pusher_env: dict, batch_size: int, gateway, label: str, texts: bool = False) -> dict:
    """One bare loop on a fresh gateway, with the gateway's counts."""
    out = bare_loop(app, _adapter_config(pusher_env), batch_size, texts)
    out |= {"gateway": gateway.stats(), "label": label, "load": os.getloadavg()[0]}
    print(f"[exchange] bare loop ({label} the ledger): {out['messages']:,} in {out['send_s']:.1f} s of sends "
          f"= {out['per_s']:.0f}/s", file=sys.stderr)
    return out


def checks(r: dict) -> dict[str, bool]:
    """What must hold after both runs."""
    n, after, lg = r["messages"], r["after"], r["ledger"]["gateway"]
    bare = r["bare_runs"] + [r["bare_texts"]]
    return {
        "messages queued ≈ 2 × ratings (+ tickets' steps)": n >= 2 * r["ratings"],
        "ledger: every message acknowledged": after["by_status"].get("acknowledged", 0) == n
        and set(after["by_status"]) <= {"acknowledged", "skipped"},
        "ledger: none skipped": not after["by_status"].get("skipped"),
        "ledger: each sent once (attempts = 1)": after["attempts_over_1"] == 0,
        "gateway (ledger): accepted = messages": lg["accepted"] == n,
        "gateway (ledger): duplicates 0, order violations 0, rejected 0, redelivered 0":
            lg["duplicates"] == lg["order_violations"] == lg["rejected"] == lg["redelivered"] == 0,
        "gateway (ledger): per kind = ledger per kind":
            {k: v["accepted"] for k, v in lg["by_kind"].items()} == after["by_kind"],
        "bare loops: every message acknowledged": all(b["messages"] == b["acknowledged"] == n for b in bare),
        "gateway (bare loops): accepted = messages, duplicates 0, order violations 0, rejected 0":
            all(b["gateway"]["accepted"] == n and b["gateway"]["duplicates"] == b["gateway"]["order_violations"]
                == b["gateway"]["rejected"] == 0 for b in bare),
    }


def checks_ok(r: dict) -> bool:
    """All checks passed."""
    return all(r["checks"].values())


def figures(r: dict) -> list:
    """The part's figures for run.py's table."""
    from tests.bench.report import Figure  # as bench_sweep does: report is only needed for the table

    wire = "SM2+SM4" if r["secure"] else "plain national-json, no SM2/SM4"
    n, lg = r["messages"], r["ledger"]
    return [
        Figure(f"#18 exchange push, backfill of {r['ratings']:,} ratings ({n:,} messages), msg/s", lg["per_s"], "msg/s",
               f"bare loop, same payloads/client/batch {r['batch_size']}", r["bare"]["per_s"],
               note=f"ratio {r['ratio']:.2f} (target ≥ {TARGET_RATIO}); {wire}; fake gateway on the same machine; "
                    f"{lg['per_s'] / r['bare_texts']['per_s']:.2f}× a bare loop handing over JSON text"),
        Figure(f"#18 exchange: time to drain {n:,} messages (pusher process)", lg["drain_s"], "s",
               "bare loop's sends", r["bare"]["send_s"], higher_is_better=False,
               note=f"{lg['runs']} run(s), first request after {lg['first_request_s']:.1f} s"),
        Figure(f"#18 exchange: backfill queueing ({n:,} messages)", r["backfill_s"], "s",
               note=f"service.backfill over {r['backfill_range']}"),
        Figure("#18 exchange: pusher peak RSS", lg["peak_rss_mb"], "MiB",
               note=f"whole drain; fake gateway peak {r['gateway_rss_mb']:.0f} MiB"),
    ]


def report(r: dict, heading: bool = True, command: str = "") -> str:
    """bench-results/exchange.md."""
    n, lg, bare, cpu = r["messages"], r["ledger"], r["bare"], r["ledger"]["cpu"]
    default = f"python -m tests.bench.bench_exchange --ratings {r['ratings']}" + (" --secure" if r["secure"] else "")
    wire = ("SM2 signature + SM4 encryption (gmssl, pure Python) on both sides" if r["secure"] else
            "plain national-json (`encrypt: NONE`, no SM2 signature, no SM4 encryption): the figures are the "
            "ledger's cost, not the cryptography's")
    with_build = n / (bare["send_s"] + bare["build_s"])
    lines = [
        *(["# Exchange (issue 18): a backfill pushed through the ledger beside a bare loop", ""] if heading else []),
        f"Command: `{command or default}`" + ("" if heading else " (here as part of `make bench`)"),
        "",
        f"- data: {r['generation']['summary']}; every service item given a 实施编码 (nothing local, nothing skipped)",
        f"- wire: {wire}; the fake gateway `python -m feedback.exchange.fake_gateway --discard-items` (one Python "
        f"process, threaded HTTP server) on the same machine; PostgreSQL from tests/support/pg.sh (fsync off)",
        f"- bare loop: the same messages' payloads (built with `feedback.exchange.mapping.payloads`, untimed) POSTed "
        f"kind by kind through the same `NationalJsonAdapter`, batches of {r['batch_size']}, nothing written; run "
        "once before and once after the ledger, each phase on a fresh gateway process; the reference pools both",
        "- ledger: the pusher as a real process, `flask --app wsgi exchange push` with "
        "FEEDBACK_EXCHANGE_RUN_SECONDS=86400, run until nothing is pending; wall time from its start to its exit",
        "",
        "| | messages | time | messages/s |",
        "|---|---:|---:|---:|",
        f"| 补报 queueing: `service.backfill` over {r['backfill_range']}, one transaction | {n:,} | "
        f"{r['backfill_s']:.1f} s | {n / r['backfill_s']:,.0f} |",
        *[f"| bare loop {b['label']} the ledger: sends only (payloads built untimed in {b['build_s']:.1f} s; "
          f"load average {b['load']:.1f}) | {b['messages']:,} | {b['send_s']:.1f} s | {b['per_s']:,.0f} |"
          for b in r["bare_runs"]],
        f"| bare loop after the ledger, each item handed to the adapter as its JSON text (written untimed), as the "
        f"pusher hands over what PostgreSQL wrote; not in the reference | {r['bare_texts']['messages']:,} | "
        f"{r['bare_texts']['send_s']:.1f} s | {r['bare_texts']['per_s']:,.0f} |",
        f"| **ledger**: the pusher until drained ({lg['runs']} run(s), process start included, first request after "
        f"{lg['first_request_s']:.1f} s) | {n:,} | {lg['drain_s']:.1f} s | {lg['per_s']:,.0f} |",
        "",
        f"**Ratio ledger / bare loop: {r['ratio']:.2f}** (target ≥ {TARGET_RATIO}; bare pooled "
        f"{bare['per_s']:,.0f} msg/s). For scale: a bare loop that also built its payloads from the database "
        f"would do {with_build:,.0f} msg/s, and the ledger is {lg['per_s'] / with_build:.2f}× that; beside the bare "
        f"loop that hands over JSON text, the ledger is {lg['per_s'] / r['bare_texts']['per_s']:.2f}×.",
        "",
        f"Time to drain {n:,} messages: {lg['drain_s']:.0f} s. Pusher peak RSS {lg['peak_rss_mb']:.0f} MiB "
        f"(wait4's ru_maxrss of the process, the whole drain); the fake gateway's peak RSS "
        f"{r['gateway_rss_mb']:.0f} MiB.",
        "",
        f"CPU during the drain ({lg['drain_s']:.0f} s wall, {cpu['machine_all_s'] / lg['drain_s']:.0f} cores): "
        f"the pusher {cpu['pusher_s']:.0f} s, its PostgreSQL backend {cpu['postgres_s']:.0f} s, the gateway "
        f"{cpu['gateway_s']:.0f} s, everything else on the machine (other PostgreSQL processes, other users) "
        f"{cpu['machine_busy_s'] - cpu['pusher_s'] - cpu['postgres_s'] - cpu['gateway_s']:.0f} s; machine busy "
        f"{100 * cpu['machine_busy_s'] / cpu['machine_all_s']:.0f} %, load average {cpu['load_before']:.1f} → "
        f"{cpu['load_after']:.1f}.",
        "",
        f"Queued by kind: {', '.join(f'{k} {v:,}' for k, v in r['queued'].items())}.",
        f"Pusher summary (last run): `{lg['summaries'][-1] if lg['summaries'] else ''}`",
        "",
        "| check | ok |", "|---|---|",
        *[f"| {name} | {'yes' if ok else '**NO**'} |" for name, ok in r["checks"].items()],
        "",
        f"Gateway after the ledger: {_stats(lg['gateway'])}.",
        *[f"Gateway after the bare loop {b['label']}: {_stats(b['gateway'])}."
          for b in r["bare_runs"] + [r["bare_texts"]]],
        f"Ledger afterwards: {r['after']['by_status']}.",
    ]
    return "\n".join(lines) + "\n"


def _stats(s: dict) -> str:
    return ", ".join(f"{k} {s[k]:,}" for k in ("requests", "accepted", "duplicates", "order_violations", "rejected",
                                               "redelivered", "tokens_issued"))


def main(argv=None) -> int:
    """Run the part alone and write bench-results/exchange.md."""
    args = parse_args(argv)
    r = run_exchange(args.database_url, ratings=args.ratings, secure=args.secure, out=args.out, profile=args.profile)
    md = report(r, command="python -m tests.bench.bench_exchange " + " ".join(argv if argv is not None else sys.argv[1:]))
    (args.out / "exchange.md").write_text(md, encoding="utf-8")
    print(md)
    return 0 if checks_ok(r) else 1


if __name__ == "__main__":
    sys.exit(main())
