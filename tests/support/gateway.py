"""Start the fake provincial gateway (``python -m feedback.exchange.fake_gateway``) as a real
process on a free port, and drive its control API.

    with start_gateway(app_key="city", app_secret="s3cret") as gateway:
        app.config.update(adapter_config(gateway))
        gateway.control(mode="down")
        gateway.stats()["duplicates"] == 0
"""
from __future__ import annotations

import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
APP_KEY = "city-test-app"
APP_SECRET = "city-test-secret"
# A fixed SM2 key pair (made by `openssl genpkey -algorithm SM2`; OpenSSL verifies our
# signatures with it) and an SM4 key, for tests only.
SM2_PRIVATE_KEY = "3486dd54387f898b08c3fff4d73b4dfa02054b844a513ba1a30ae44a64a18baa"
SM2_PUBLIC_KEY = ("04c1a840c2dc73c0bcf0dfe180a9fc6a0b01843456189bfffdf53b248e5e6529d0"
                  "9596716a31ba1c59747fbf3521c873caaa2cbd2df60e3d3c9da3752aeff1b93c")
SM4_KEY = "0123456789abcdeffedcba9876543210"


def adapter_config(gateway: "Gateway", *, secure: bool = False, **overrides) -> dict:
    """The settings of a national-json adapter talking to ``gateway`` (with the test SM2 and
    SM4 keys when ``secure``), as the Flask config would hold them."""
    config = {"EXCHANGE_ADAPTER": "national-json", "EXCHANGE_URL": gateway.url, "EXCHANGE_APP_KEY": APP_KEY,
              "EXCHANGE_APP_SECRET": APP_SECRET, "EXCHANGE_TIMEOUT_SECONDS": 5.0, "EXCHANGE_BATCH_SIZE": 200}
    if secure:
        config.update(EXCHANGE_SM2_PRIVATE_KEY=SM2_PRIVATE_KEY, EXCHANGE_SM2_PUBLIC_KEY=SM2_PUBLIC_KEY,
                      EXCHANGE_SM4_KEY=SM4_KEY)
    config.update(overrides)
    return config


class Gateway:
    """A running fake gateway process: its base ``url`` and its control API."""

    def __init__(self, process: subprocess.Popen, port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._http = requests.Session()

    def _call(self, method: str, path: str, **kw) -> object:
        response = self._http.request(method, self.url + path, timeout=10, **kw)
        response.raise_for_status()
        return response.json()

    def control(self, **options) -> dict:
        """POST /_control: mode, delay, drop_answers, expire_tokens, refuse."""
        return self._call("POST", "/_control", json=options)

    def stats(self) -> dict:
        """GET /_stats: requests, accepted, redelivered, duplicates, rejected, order_violations,
        by_kind, tokens_issued."""
        return self._call("GET", "/_stats")

    def items(self, kind: str | None = None):
        """GET /_items: the stored items of ``kind`` (each with its remoteId), or all by kind."""
        return self._call("GET", "/_items", params={"kind": kind} if kind else None)

    def reset(self) -> None:
        """POST /_reset: forget everything, back to mode ok."""
        self._call("POST", "/_reset")

    def log(self) -> str:
        """What the process wrote to stderr."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 5 s); the stderr log is removed."""
        self._http.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stdout:
            self.process.stdout.close()
        self.log_path.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL: the gateway vanishes mid-conversation."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def __enter__(self) -> "Gateway":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_gateway(*, app_key: str = APP_KEY, app_secret: str = APP_SECRET, sm2_public_key: str = "",
                  sm4_key: str = "", secure: bool = False, token_seconds: int | None = None,
                  keys: dict[str, str] | None = None, discard_items: bool = False, timeout: float = 20.0) -> Gateway:
    """Start the gateway process on a free port and wait for its ``READY <port>`` line.
    ``secure`` requires the test SM2 signature and SM4 encryption; ``keys`` maps a kind to its
    comma-separated business-key fields (``--key``)."""
    if secure:
        sm2_public_key, sm4_key = sm2_public_key or SM2_PUBLIC_KEY, sm4_key or SM4_KEY
    cmd = [sys.executable, "-m", "feedback.exchange.fake_gateway", "--port", "0",
           "--app-key", app_key, "--app-secret", app_secret]
    if sm2_public_key:
        cmd += ["--sm2-public-key", sm2_public_key]
    if sm4_key:
        cmd += ["--sm4-key", sm4_key]
    if token_seconds is not None:
        cmd += ["--token-seconds", str(token_seconds)]
    for kind, fields in (keys or {}).items():
        cmd += ["--key", f"{kind}={fields}"]
    if discard_items:
        cmd.append("--discard-items")
    log_path = Path(tempfile.mkstemp(prefix="fake-gateway.", suffix=".log")[1])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log)
    deadline = time.monotonic() + timeout
    line = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            line = process.stdout.readline()
            if line.startswith(b"READY "):
                return Gateway(process, int(line.split()[1]), log_path)
        if process.poll() is not None:
            break
    if process.poll() is None:
        process.kill()
        process.wait(5)
    raise RuntimeError(f"the fake gateway did not start ({line!r}): {log_path.read_text(errors='replace')}")
