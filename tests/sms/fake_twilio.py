"""A tiny local stand-in for Twilio's REST API, for driving the real ``twilio`` client.

It records every request (method, path, form fields, Basic auth user) and answers from a
script of responses, one per request (the last one repeats):

    with FakeTwilio() as fake:
        fake.script(created("SM1"), error(400, 21211), server_error(), hang(seconds=2))
        app.config["TWILIO_API_BASE_URL"] = fake.url

``hang`` keeps the connection open past the client's timeout (it waits on an Event that
``close`` sets, so the server never sleeps a fixed time and shuts down at once);
``hang(accepted=True)`` is Twilio taking the message and the answer getting lost.

Calls (``POST …/Calls.json``, answered with ``call_created``) are kept in ``calls``.
Accepted messages are kept (``messages``) and listed newest first by ``GET …/Messages.json``
(filtered by ``To``), as Twilio's message list does; those lookups are recorded apart from
``requests`` (``lookups``), and ``fail_lookups`` makes the next ones answer 500.
"""
from __future__ import annotations

import base64
import itertools
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    form: dict[str, str]
    auth_user: str | None
    auth_password: str | None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Scripted:
    status: int
    body: dict | None = None
    hang: bool = False
    accepted: bool = False  # a hang after Twilio took the message


def created(sid: str = "SM00000000000000000000000000000001", status: str = "queued") -> Scripted:
    """Twilio's 201 answer to a message create."""
    return Scripted(201, {"sid": sid, "status": status, "error_code": None, "error_message": None,
                          "num_segments": "1", "direction": "outbound-api"})


def call_created(sid: str = "CA00000000000000000000000000000001", status: str = "queued") -> Scripted:
    """Twilio's 201 answer to a call create (POST …/Calls.json)."""
    return Scripted(201, {"sid": sid, "status": status, "direction": "outbound-api", "duration": None,
                          "price": None, "answered_by": None})


def error(status: int, code: int, message: str = "error") -> Scripted:
    """A Twilio REST error: a JSON body with ``code`` and ``message`` (e.g. 400/21211)."""
    return Scripted(status, {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                             "status": status})


def server_error() -> Scripted:
    return Scripted(500, {"code": 20500, "message": "Internal Server Error", "status": 500})


def hang(accepted: bool = False) -> Scripted:
    """Never answer (until the server closes): the client's timeout must fire. With
    ``accepted`` Twilio has taken the message all the same (it is in the message list)."""
    return Scripted(0, hang=True, accepted=accepted)


class FakeTwilio:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.lookups: list[str] = []
        self.messages: list[dict] = []
        self.calls: list[dict] = []
        self.fail_lookups = 0
        self.now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
        self._script: list[Scripted] = [created()]
        self._release = threading.Event()
        self._hung_sids = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
                user = password = None
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                fake.requests.append(Recorded("POST", self.path, form, user, password, dict(self.headers)))
                answer = fake._next()
                if self.path.endswith("/Calls.json"):
                    fake.calls.append(form)  # placed calls (To, From, Url, StatusCallback …)
                elif answer.status == 201 or answer.accepted:
                    sid = (answer.body or {}).get("sid") or f"SMhung{next(fake._hung_sids):028x}"
                    fake.messages.append({"sid": sid, "to": form.get("To"), "from": form.get("From"),
                                          "body": form.get("Body"), "status": "queued",
                                          "date_created": format_datetime(fake.now().astimezone(timezone.utc),
                                                                          usegmt=True)})
                if answer.hang:
                    fake._release.wait(30)
                    return
                payload = json.dumps(answer.body or {}).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):
                url = urlsplit(self.path)
                fake.lookups.append(self.path)
                if fake.fail_lookups > 0:
                    fake.fail_lookups -= 1
                    status, body = 500, {"code": 20500, "message": "Internal Server Error", "status": 500}
                else:
                    to = parse_qs(url.query).get("To", [None])[0]
                    listed = [m for m in reversed(fake.messages) if to is None or m["to"] == to]
                    status, body = 200, {"messages": listed, "page": 0, "page_size": 50, "start": 0,
                                         "end": max(len(listed) - 1, 0), "uri": self.path,
                                         "first_page_uri": self.path, "next_page_uri": None,
                                         "previous_page_uri": None}
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def _next(self) -> Scripted:
        return self._script.pop(0) if len(self._script) > 1 else self._script[0]

    def script(self, *answers: Scripted) -> None:
        self._script = list(answers)

    def __enter__(self) -> "FakeTwilio":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
