"""Drive load with wrk (Debian's `wrk`, not our code) and read its results.

The Lua scripts in ``lua/`` count statuses per thread and print one ``WRK_JSON {…}`` line
from ``done()``; wrk's own summary (``--latency``) is kept beside it in the raw output.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

LUA_DIR = Path(__file__).resolve().parent / "lua"


class WrkMissing(RuntimeError):
    """wrk is not installed (`bash tests/support/ensure_bench.sh` installs it)."""


@dataclass
class WrkResult:
    """One wrk run: throughput of successful requests, latency percentiles, every failure counted."""

    label: str
    url: str
    duration_s: float
    requests: int
    ok: int
    status_4xx: int
    status_5xx: int
    status_other: int
    socket_errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    error_samples: list[str] = field(default_factory=list)
    raw: str = ""

    @property
    def ok_per_s(self) -> float:
        return self.ok / self.duration_s if self.duration_s else 0.0

    @property
    def failures(self) -> int:
        return self.requests - self.ok + sum(self.socket_errors.values())

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "raw"}
        out["ok_per_s"] = round(self.ok_per_s, 1)
        return out


def wrk_path() -> str:
    path = shutil.which("wrk")
    if not path:
        raise WrkMissing("wrk not found: run `bash tests/support/ensure_bench.sh` (apt-get install wrk)")
    return path


def run_wrk(label: str, url: str, script: str, script_args: list[str], *, duration_s: int, threads: int,
            connections: int, timeout_s: int = 10, headers: dict[str, str] | None = None) -> WrkResult:
    """Run wrk against ``url`` for ``duration_s`` seconds and parse the script's WRK_JSON line.

    ``headers`` go to wrk as ``-H "Name: value"`` (a session cookie, for instance)."""
    cmd = [wrk_path(), f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", f"--timeout={timeout_s}s",
           "--latency", "-s", str(LUA_DIR / script)]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    cmd += [url, "--", *script_args]
    proc = subprocess.run(cmd, capture_output=True, timeout=duration_s + timeout_s + 60)
    out = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.decode('utf-8', 'replace')}\n{out}")
    line = next((ln for ln in out.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no WRK_JSON line:\n{out}")
    data = json.loads(line[len("WRK_JSON "):])
    lat = data["latency_us"]
    return WrkResult(
        label=label, url=url, duration_s=data["duration_us"] / 1e6, requests=data["requests"], ok=data["ok"],
        status_4xx=data["status_4xx"], status_5xx=data["status_5xx"], status_other=data["status_other"],
        socket_errors={k: data[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts") if data[k]},
        p50_ms=lat["p50"] / 1000, p90_ms=lat["p90"] / 1000, p99_ms=lat["p99"] / 1000, max_ms=lat["max"] / 1000,
        error_samples=data["error_samples"], raw=out)
