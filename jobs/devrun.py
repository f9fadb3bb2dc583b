"""`make run`: the web server and the scheduler process side by side; Ctrl-C stops both."""
from __future__ import annotations

import os
import signal
import subprocess
import sys


def main() -> int:
    """Run the web server and the scheduler side by side for `make run`; Ctrl-C stops both."""
    port = os.environ.get("FEEDBACK_PORT", "5000")
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    env = dict(os.environ)
    env.setdefault("FEEDBACK_ENV", "development")
    env.setdefault("FEEDBACK_PUBLIC_URL", f"http://127.0.0.1:{port}")
    procs = [
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
                procs[1].wait(timeout=1)
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
