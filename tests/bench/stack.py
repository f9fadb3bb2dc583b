"""The real stack for benchmarks: a throwaway PostgreSQL, migrations, an API key, gunicorn.

Each piece is a context manager or a plain function so later benchmarks compose them.
Everything runs as subprocesses with the production environment (FEEDBACK_ENV=production),
the way an operator would run it.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import psycopg

from tests.bench.datagen import psycopg_url

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PG_SH = ROOT / "tests" / "support" / "pg.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def cluster(url: str | None = None) -> Iterator[str]:
    """Yield the URL of a PostgreSQL server's ``postgres`` database: ``url`` itself, or a
    throwaway cluster started with tests/support/pg.sh and removed afterwards. Several
    benchmarks then share one server with :func:`postgres` (one database each)."""
    if url is not None:
        yield url
        return
    pgdir = tempfile.mkdtemp(prefix="feedback-pgbench.")
    try:
        yield subprocess.run(["bash", str(PG_SH), "start", pgdir], check=True, capture_output=True,
                             text=True).stdout.strip()
    finally:
        subprocess.run(["bash", str(PG_SH), "stop", pgdir], capture_output=True)


@contextlib.contextmanager
def postgres(url: str | None = None, database: str = "feedback_bench") -> Iterator[str]:
    """Yield the URL of a fresh, empty database.

    Without ``url`` a throwaway cluster is started with tests/support/pg.sh (as the test
    suite does) and removed afterwards; with ``url`` the database ``database`` is
    recreated on that server.
    """
    pgdir = None
    if url is None:
        pgdir = tempfile.mkdtemp(prefix="feedback-pgbench.")
        url = subprocess.run(["bash", str(PG_SH), "start", pgdir], check=True, capture_output=True,
                             text=True).stdout.strip()
    try:
        with psycopg.connect(psycopg_url(url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{database}"')
        yield url.rsplit("/", 1)[0] + "/" + database
    finally:
        if pgdir:
            subprocess.run(["bash", str(PG_SH), "stop", pgdir], capture_output=True)


def production_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a production deployment on ``database_url``, rate limiting off."""
    env = dict(os.environ)
    env.update({
        "FEEDBACK_ENV": "production",
        "FEEDBACK_DATABASE_URL": database_url,
        "FEEDBACK_SECRET_KEY": secrets.token_urlsafe(32),
        "FEEDBACK_PUBLIC_URL": "http://127.0.0.1",
        # The API allows 600 ratings a minute per key; a load test is one key.
        "FEEDBACK_RATELIMIT_ENABLED": "0",
        # wrk replays one login cookie for the whole run: no idle sign-out in the middle of it.
        "FEEDBACK_SESSION_IDLE_MINUTES": "1440",
        "PYTHONPATH": str(ROOT),
    })
    env.update(extra)
    return env


def flask(env: dict[str, str], *args: str) -> str:
    """Run `flask --app wsgi ARGS…` as an operator would; return its stdout."""
    proc = subprocess.run([str(VENV_BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def migrate(env: dict[str, str]) -> None:
    flask(env, "db", "upgrade", "heads")  # "heads": as the test suite does, tolerant of parallel branches


def create_api_key(env: dict[str, str], name: str = "bench", scopes: tuple[str, ...] = ("ratings:write",)) -> tuple[int, str]:
    """Create an API key with the operator command; return (id, plain key)."""
    out = flask(env, "apikeys", "create", name, *[a for s in scopes for a in ("--scope", s)])
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    key_id = int(lines[-2].split("(id ", 1)[1].split(",", 1)[0])
    return key_id, lines[-1]


def stop(proc: subprocess.Popen | None, timeout_s: float = 30) -> None:
    """SIGTERM a server process, then SIGKILL it if it has not exited within ``timeout_s``."""
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def memory_mb(pid: int) -> dict[str, float]:
    """Resident memory of a process now (``rss``) and at its peak (``peak``, VmHWM), in MiB."""
    out = {"rss": 0.0, "peak": 0.0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss"] = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                out["peak"] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


def job_runs(url: str) -> dict[str, int]:
    """Finished runs per job name in the job_runs table."""
    import psycopg

    from tests.bench.datagen import psycopg_url

    with psycopg.connect(psycopg_url(url)) as conn:
        return dict(conn.execute("SELECT name, count(*) FROM job_runs WHERE finished_at IS NOT NULL GROUP BY name"))


class Scheduler:
    """`flask --app wsgi scheduler` (the job process, one per deployment) on ``env``'s database."""

    def __init__(self, env: dict[str, str], log_path: Path | None = None):
        self.env, self.log_path = env, log_path
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Scheduler":
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen([str(VENV_BIN / "flask"), "--app", "wsgi", "scheduler"], cwd=ROOT, env=self.env,
                                     stdout=log, stderr=log)
        return self

    def wait_for_every_job(self, url: str, jobs: int, timeout_s: float) -> tuple[dict[str, int], float]:
        """Wait until each of ``jobs`` jobs has finished a run (or the timeout); (runs per job, seconds)."""
        started = time.monotonic()
        runs: dict[str, int] = {}
        while time.monotonic() - started < timeout_s and (self.proc is None or self.proc.poll() is None):
            runs = job_runs(url)
            if len(runs) >= jobs:
                break
            time.sleep(1)
        return runs, time.monotonic() - started

    def __exit__(self, *exc) -> None:
        stop(self.proc)


class Gunicorn:
    """gunicorn serving ``app`` on a free port; ``workers()`` lists the worker pids."""

    def __init__(self, env: dict[str, str], app: str = "tests.bench.bench_wsgi:app", *, workers: int = 4,
                 worker_class: str = "sync", threads: int = 1, log_path: Path | None = None):
        self.env, self.app = env, app
        self.workers_n, self.worker_class, self.threads = workers, worker_class, threads
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def command(self) -> list[str]:
        cmd = [str(VENV_BIN / "gunicorn"), "-w", str(self.workers_n), "-k", self.worker_class,
               "-b", f"127.0.0.1:{self.port}", "--backlog", "2048", "--log-level", "warning"]
        if self.worker_class == "gthread":
            cmd += ["--threads", str(self.threads)]
        return cmd + [self.app]

    def __enter__(self) -> "Gunicorn":
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + "/api/v1/openapi.json", timeout=2) as resp:
                    if resp.status == 200 and len(self.workers()) >= self.workers_n:
                        return self
            except OSError:
                pass
            time.sleep(0.3)
        self.__exit__(None, None, None)
        raise RuntimeError("gunicorn did not answer within 60 s")

    def workers(self) -> list[int]:
        """Pids of the worker processes (children of the gunicorn master)."""
        if self.proc is None:
            return []
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return []
        return [int(pid) for pid in children]

    def __exit__(self, *exc) -> None:
        stop(self.proc)
