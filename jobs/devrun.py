"""`make run`: the web server, the scheduler and the fake provincial gateway side by side; Ctrl-C stops all."""
from __future__ import annotations

import os
import signal
import subprocess
import sys


LOCAL_APP_KEY = "demo-city"
LOCAL_APP_SECRET = "demo-city-secret"


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _start_gateway(env: dict) -> tuple[subprocess.Popen, str]:
    """The fake provincial gateway on a free port (FEEDBACK_EXCHANGE_LOCAL_GATEWAY=0 to do without)."""
    proc = subprocess.Popen([sys.executable, "-m", "feedback.exchange.fake_gateway", "--port", "0",
                             "--app-key", LOCAL_APP_KEY, "--app-secret", LOCAL_APP_SECRET],
                            env=env, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("READY "):
        proc.kill()
        raise SystemExit(f"the local gateway did not start: {line!r}")
    return proc, f"http://127.0.0.1:{line.split()[1]}"


def main() -> int:
    """Run the web server and the scheduler side by side for `make run`; Ctrl-C stops both."""
    port = os.environ.get("FEEDBACK_PORT", "5000")
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    env = dict(os.environ)
    env.setdefault("FEEDBACK_ENV", "development")
    env.setdefault("FEEDBACK_PUBLIC_URL", f"http://127.0.0.1:{port}")
    procs = []
    if _bool(env.setdefault("FEEDBACK_EXCHANGE_LOCAL_GATEWAY", "1")) and "FEEDBACK_EXCHANGE_ADAPTER" not in os.environ:
        gateway, url = _start_gateway(env)
        procs.append(gateway)
        env.update({"FEEDBACK_EXCHANGE_ADAPTER": "national-json", "FEEDBACK_EXCHANGE_URL": url,
                    "FEEDBACK_EXCHANGE_APP_KEY": LOCAL_APP_KEY, "FEEDBACK_EXCHANGE_APP_SECRET": LOCAL_APP_SECRET})
        print(f"  local provincial gateway (fake) at {url}: see /admin/exchange", flush=True)
    else:
        env.setdefault("FEEDBACK_EXCHANGE_ADAPTER", "log")
    procs += [
        subprocess.Popen(flask + ["scheduler"], env=env),
        # No reloader: it would start a second copy of everything.
        subprocess.Popen(flask + ["run", "--host", "127.0.0.1", "--port", port, "--no-reload",
                                  "--with-threads"], env=env),
    ]
    print(f"\n  好差评 running at http://127.0.0.1:{port}  (Ctrl-C stops web and scheduler)\n", flush=True)

    def stop(*_):
        for p in procs:
            if p.poll() is None:
                p.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(p.poll() is None for p in procs):
            try:
                procs[-1].wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
