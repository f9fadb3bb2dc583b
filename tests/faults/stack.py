"""The real processes of a deployment for the fault and security suites: gunicorn serving
``wsgi:app`` (the production entry point) with an access log that names the worker, a
throwaway PostgreSQL cluster we may stop and start, and a Redis-protocol store for
shared rate limits. Built on tests/bench/stack.py and tests/support/pg.sh.
"""
from __future__ import annotations

import os
import pathlib
import secrets
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from tests.bench.stack import PG_SH, ROOT, VENV_BIN, Gunicorn, free_port

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)


def app_env(database_url: str, **extra: str) -> dict[str, str]:
    """A production environment (secret key, no demo data) on ``database_url``; cookies
    without the Secure flag so plain-HTTP test clients get them back."""
    env = dict(os.environ)
    env.update({
        "FEEDBACK_ENV": "production", "FEEDBACK_DATABASE_URL": database_url,
        "FEEDBACK_SECRET_KEY": secrets.token_urlsafe(32), "FEEDBACK_PUBLIC_URL": "http://127.0.0.1",
        "FEEDBACK_SESSION_COOKIE_SECURE": "0", "FEEDBACK_REMEMBER_COOKIE_SECURE": "0",
        "PYTHONPATH": str(ROOT),
    })
    env.update(extra)
    return env


class AppServer(Gunicorn):
    """gunicorn ``wsgi:app`` whose access log lines read ``<worker pid> <status> <method> <path>``."""

    def __init__(self, env: dict[str, str], *, workers: int = 2, log_dir: Path, **kw):
        super().__init__(env, "wsgi:app", workers=workers, log_path=log_dir / "gunicorn.log", **kw)
        self.access_log = log_dir / "access.log"

    @property
    def command(self) -> list[str]:
        cmd = ["info" if c == "warning" else c for c in super().command]  # "Booting worker" lines
        return cmd[:-1] + ["--access-logfile", str(self.access_log), "--access-logformat", "%(p)s %(s)s %(m)s %(U)s",
                           "--timeout", "60", cmd[-1]]

    def served(self, path_prefix: str = "") -> list[tuple[str, int, str, str]]:
        """(worker pid, status, method, path) of every request logged so far."""
        if not self.access_log.exists():
            return []
        out = []
        for line in self.access_log.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[3].startswith(path_prefix):
                out.append((parts[0].strip("<>"), int(parts[1]), parts[2], parts[3]))
        return out


class Cluster:
    """A throwaway PostgreSQL cluster (tests/support/pg.sh) that a test may stop and start."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="feedback-pgfault.")
        self.url = ""

    def __enter__(self) -> "Cluster":
        self.url = subprocess.run(["bash", str(PG_SH), "start", self.dir], check=True, capture_output=True,
                                  text=True).stdout.strip()
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run(["bash", str(PG_SH), "stop", self.dir], capture_output=True)

    def _pg_ctl(self, *args: str) -> None:
        data = f"{self.dir}/data"
        cmd = f"{PG_BIN}/pg_ctl -D '{data}' -l '{self.dir}/server.log' -w -t 60 " + " ".join(args)
        if os.geteuid() == 0:
            subprocess.run(["su", "postgres", "-s", "/bin/bash", "-c", cmd], check=True, capture_output=True)
        else:
            subprocess.run(["bash", "-c", cmd], check=True, capture_output=True)

    def stop(self) -> None:
        """pg_ctl stop -m fast: open connections are cut, the server is gone until start()."""
        self._pg_ctl("-m", "fast", "stop")

    def start(self) -> None:
        """Start it again: ``pg_ctl restart`` on a stopped server starts it with the options
        it last ran with (postmaster.opts: the same port)."""
        self._pg_ctl("restart")

    def database(self, name: str) -> str:
        """Create database ``name`` and return its URL."""
        import psycopg

        from tests.bench.datagen import psycopg_url

        with psycopg.connect(psycopg_url(self.url), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + "/" + name


class SharedLimitStore:
    """A Redis-protocol server in this process (fakeredis), the shared store the app's rate
    limits use across gunicorn workers in the tests. Production uses a real Redis (or
    memcached): see SECURITY.md. The ``limits`` Lua scripts are loaded up front because the
    fake server closes a connection after an error such as NOSCRIPT."""

    def __init__(self) -> None:
        from fakeredis import TcpFakeServer

        self.port = free_port()
        self.server = TcpFakeServer(("127.0.0.1", self.port), server_type="redis")
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.uri = f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> "SharedLimitStore":
        import limits
        import redis

        self.thread.start()
        client = redis.Redis(port=self.port, protocol=2)
        for script in (pathlib.Path(limits.__file__).parent / "resources" / "redis" / "lua_scripts").glob("*.lua"):
            client.script_load(script.read_text())
        client.close()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)  # polling a condition with a deadline, not timing the test
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


__all__ = ["AppServer", "Cluster", "SharedLimitStore", "app_env", "wait_for", "ROOT", "VENV_BIN"]
