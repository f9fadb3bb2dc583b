"""A fake provincial gateway speaking national-json, for tests, benchmarks and ``make run``.

    python -m feedback.exchange.fake_gateway --port 0 --app-key K --app-secret S \
        [--sm2-public-key HEX] [--sm4-key HEX] [--token-seconds N] [--key KIND=F1,F2] [--discard-items]

prints ``READY <port>`` once listening and keeps everything in memory. It checks what a
province checks: the token request's SM3 sign, the access token, the SM2 signature of
``data`` (when started with a public key; then a signature is required), SM4 (when started
with a key; then encryption is required). Per item:

- a ``messageId`` seen before answers ``duplicate`` with the first ``remoteId`` (counted
  ``redelivered``: harmless, the ledger retrying);
- a NEW ``messageId`` whose business key is already stored is accepted but counted in
  ``duplicates`` (the same event produced twice: the number that must stay 0). Keys:
  :data:`KEY_FIELDS` (or ``--key``), else the item's whole content without its messageId;
- an ``evaluation`` whose ``projectNo`` never arrived as a ``record`` is rejected
  (``办件不存在``, counted in ``order_violations`` and ``rejected``);
- a messageId listed by ``refuse`` is rejected (``数据校验不通过``).

Control API (never subject to the modes):

- ``POST /_control`` with any of ``{"mode": "ok" | "down" (503 to everything) | "hang" (no
  answer until the mode changes or the client goes) | "malformed" (200 with a non-JSON body),
  "delay": seconds before each push is answered, "drop_answers": n (store the next n pushes, then close
  the connection without answering), "expire_tokens": true, "refuse": [messageId, ...]
  (replaces the list; ``[]`` refuses nothing again)}``;
- ``GET /_stats``: the counters above (``requests`` = push requests received, in any mode,
  counted on arrival), ``by_kind``, ``tokens_issued``, ``hanging`` (requests held right now);
- ``GET /_items?kind=K``: a list of the stored items of K, each with its ``remoteId``;
  without ``kind``, an object of such lists by kind;
- ``POST /_reset``: forget items, tokens, counters and modes.
"""
from __future__ import annotations

import argparse
import itertools
import json
import secrets
import select
import socket
import sys
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from feedback.exchange import crypto

KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "record": ("projectNo", "serviceNumber"),
    "evaluation": ("projectNo", "serviceNumber", "assessNumber"),
    "evaluation_invalidated": ("projectNo", "serviceNumber", "assessNumber"),
    "complaint": ("complaintNo",),
    "rectification": ("ticketNo", "step", "stepTime"),
    "supervision": ("monitorNo",),
    "supervision_order": ("monitorNo", "step"),  # a 督办单's issue and its answer
}
COUNTERS = ("requests", "accepted", "redelivered", "duplicates", "rejected", "order_violations")
MODES = ("ok", "down", "hang", "malformed")
REFUSED = "数据校验不通过"
NO_RECORD = "办件不存在"


class GatewayState:
    """Everything the gateway knows, behind one lock; the HTTP handler only translates."""

    def __init__(self, app_key: str, app_secret: str, *, sm2_public_key: str = "", sm4_key: str = "",
                 token_seconds: int = 7200, key_fields: dict[str, tuple[str, ...]] | None = None,
                 keep_items: bool = True) -> None:
        self.app_key, self.app_secret = app_key, app_secret
        self.sm2_public_key = crypto.normalize_public_key(sm2_public_key) if sm2_public_key else ""
        self.sm4_key = crypto.sm4_key(sm4_key) if sm4_key else None
        self.token_seconds = token_seconds
        self.key_fields = {**KEY_FIELDS, **(key_fields or {})}
        self.keep_items = keep_items
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)  # notified when the mode changes
        self.closing = False
        self.hanging = 0  # requests held by mode "hang" right now (a reset does not release them)
        self.reset()

    def reset(self) -> None:
        """Forget every item, token, counter and mode."""
        with self.lock:
            self.mode, self.delay, self.drop_answers = "ok", 0.0, 0
            self.refuse: set[str] = set()
            self.tokens: dict[str, float] = {}
            self.tokens_issued = 0
            self.messages: dict[str, int] = {}  # messageId -> remote sequence number
            self.keys: dict[str, set] = defaultdict(set)  # kind -> business keys stored
            self.projects: set[str] = set()  # projectNo of the records stored
            self.items: dict[str, dict[str, dict]] = defaultdict(dict)  # kind -> messageId -> item
            self.counts = {name: 0 for name in COUNTERS}
            self.by_kind: dict[str, dict[str, int]] = defaultdict(lambda: {name: 0 for name in COUNTERS})
            self.sequence = itertools.count(1)
            self.changed.notify_all()

    def control(self, options: dict) -> dict:
        """Apply a ``/_control`` request; ValueError for an unknown key or value."""
        unknown = set(options) - {"mode", "delay", "drop_answers", "expire_tokens", "refuse"}
        if unknown:
            raise ValueError(f"unknown control keys: {sorted(unknown)}")
        if "mode" in options and options["mode"] not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        with self.lock:
            if "mode" in options:
                self.mode = options["mode"]
            if "delay" in options:
                self.delay = max(0.0, float(options["delay"]))
            if "drop_answers" in options:
                self.drop_answers = max(0, int(options["drop_answers"]))
            if options.get("expire_tokens"):
                self.tokens.clear()
            if "refuse" in options:
                self.refuse = {str(m) for m in options["refuse"]}
            self.changed.notify_all()
            return {"mode": self.mode, "delay": self.delay, "drop_answers": self.drop_answers,
                    "refuse": len(self.refuse)}

    def stats(self) -> dict:
        """The counters, per kind too, and the number of tokens issued."""
        with self.lock:
            return {**self.counts, "by_kind": {k: dict(v) for k, v in self.by_kind.items()},
                    "tokens_issued": self.tokens_issued, "hanging": self.hanging}

    def stored(self, kind: str | None) -> Any:
        """The stored items of ``kind`` (with ``remoteId``), or all of them by kind."""
        with self.lock:
            def listed(k: str) -> list[dict]:
                return [{**item, "remoteId": _remote_id(self.messages[m])} for m, item in self.items[k].items()]
            if kind:
                return listed(kind)
            return {k: listed(k) for k in list(self.items)}

    def issue_token(self, body: dict) -> tuple[int, dict]:
        """``/auth/token``: a new access token when app key and SM3 sign are right."""
        app_key, timestamp = str(body.get("appKey", "")), str(body.get("timestamp", ""))
        expected = crypto.token_sign(self.app_key, timestamp, self.app_secret)
        if app_key != self.app_key or not secrets.compare_digest(str(body.get("sign", "")), expected):
            return 401, {"code": "invalid_sign", "msg": "签名错误或应用不存在"}
        token = secrets.token_hex(16)
        with self.lock:
            self.tokens[token] = time.monotonic() + self.token_seconds
            self.tokens_issued += 1
        return 200, {"code": "0", "msg": "成功", "data": {"accessToken": token, "expiresIn": self.token_seconds}}

    def _items_of(self, envelope: dict) -> tuple[int, dict] | list:
        """The checked, decrypted item list of a push envelope, or an error answer."""
        if str(envelope.get("appKey", "")) != self.app_key:
            return 401, {"code": "invalid_app_key", "msg": "应用不存在"}
        with self.lock:
            expires = self.tokens.get(str(envelope.get("accessToken", "")))
        if expires is None or expires < time.monotonic():
            return 401, {"code": "access_token_invalid", "msg": "令牌无效或已过期"}
        encrypt, data = envelope.get("encrypt", "NONE"), envelope.get("data")
        if encrypt == "SM4":
            if self.sm4_key is None or not isinstance(data, str):
                return 400, {"code": "decrypt_failed", "msg": "无法解密"}
            signed = data
            try:
                items = json.loads(crypto.sm4_decrypt(data, self.sm4_key).decode("utf-8"))
            except ValueError:  # CryptoError, UnicodeDecodeError and JSONDecodeError alike
                return 400, {"code": "decrypt_failed", "msg": "解密失败"}
        elif encrypt == "NONE":
            if self.sm4_key is not None:
                return 400, {"code": "encrypt_required", "msg": "须以 SM4 加密"}
            items = data
            signed = json.dumps(items, ensure_ascii=False, separators=(",", ":")) if self.sm2_public_key else ""
        else:
            return 400, {"code": "bad_request", "msg": f"不支持的加密方式 {str(encrypt)[:20]}"}
        if self.sm2_public_key and not crypto.sm2_verify(str(envelope.get("sign") or ""), signed.encode("utf-8"),
                                                         self.sm2_public_key):
            return 401, {"code": "invalid_signature", "msg": "验签失败"}
        if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("messageId"), str)
                                                  and i["messageId"] for i in items):
            return 400, {"code": "bad_request", "msg": "data 须为带 messageId 的对象数组"}
        return items

    def push(self, kind: str, envelope: dict) -> tuple[int, dict, bool]:
        """``/push/{kind}``: (HTTP status, answer, whether to drop the answer)."""
        checked = self._items_of(envelope)
        if isinstance(checked, tuple):
            return checked[0], checked[1], False
        fields = self.key_fields.get(kind)
        results = []
        with self.lock:
            count, mine = self.counts, self.by_kind[kind]
            keys = self.keys[kind]
            stored = self.items[kind]
            for item in checked:
                message_id = item["messageId"]
                seen = self.messages.get(message_id)
                if seen is not None:
                    results.append({"messageId": message_id, "status": "duplicate", "remoteId": _remote_id(seen),
                                    "reason": ""})
                    count["redelivered"] += 1
                    mine["redelivered"] += 1
                    continue
                reason = ""
                if message_id in self.refuse:
                    reason = REFUSED
                elif kind == "evaluation" and item.get("projectNo") not in self.projects:
                    reason = NO_RECORD
                    count["order_violations"] += 1
                    mine["order_violations"] += 1
                if reason:
                    results.append({"messageId": message_id, "status": "rejected", "remoteId": "", "reason": reason})
                    count["rejected"] += 1
                    mine["rejected"] += 1
                    continue
                seq = next(self.sequence)
                self.messages[message_id] = seq
                key = _business_key(item, fields)
                if key in keys:
                    count["duplicates"] += 1
                    mine["duplicates"] += 1
                else:
                    keys.add(key)
                if kind == "record":
                    self.projects.add(item.get("projectNo"))
                if self.keep_items:
                    stored[message_id] = item
                count["accepted"] += 1
                mine["accepted"] += 1
                results.append({"messageId": message_id, "status": "accepted", "remoteId": _remote_id(seq),
                                "reason": ""})
            drop = self.drop_answers > 0
            if drop:
                self.drop_answers -= 1
        return 200, {"code": "0", "msg": "成功", "data": {"results": results}}, drop

    def count_request(self, kind: str) -> None:
        """Count a push request as it arrives, whatever the mode."""
        with self.lock:
            self.counts["requests"] += 1
            self.by_kind[kind]["requests"] += 1


def _remote_id(seq: int) -> str:
    return f"P{seq:012d}"


def _business_key(item: dict, fields: tuple[str, ...] | None) -> Any:
    if fields and all(f in item for f in fields):
        return tuple(str(item[f]) for f in fields)
    return json.dumps({k: v for k, v in item.items() if k != "messageId"}, ensure_ascii=False, sort_keys=True)


class GatewayHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; one thread per connection (ThreadingHTTPServer)."""

    protocol_version = "HTTP/1.1"
    server_version = "FakeProvincialGateway/1.0"
    disable_nagle_algorithm = True  # headers and body leave at once: no 40 ms delayed-ACK stalls
    server: "GatewayServer"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a benchmark makes a million lines otherwise."""

    def do_GET(self) -> None:
        """``/_stats`` and ``/_items``."""
        url = urlsplit(self.path)
        state = self.server.state
        if url.path == "/_stats":
            self._json(200, state.stats())
        elif url.path == "/_items":
            kind = (parse_qs(url.query).get("kind") or [""])[0]
            self._json(200, state.stored(kind or None))
        else:
            self._json(404, {"code": "not_found", "msg": "没有这个接口"})

    def do_POST(self) -> None:
        """Control endpoints, then ``/auth/token`` and ``/push/{kind}`` under the current mode."""
        path = urlsplit(self.path).path
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        state = self.server.state
        if path == "/_control":
            try:
                self._json(200, state.control(json.loads(body or b"{}")))
            except (ValueError, TypeError) as exc:
                self._json(400, {"code": "bad_request", "msg": str(exc)})
            return
        if path == "/_reset":
            state.reset()
            self._json(200, {"code": "0"})
            return
        kind = path[len("/push/"):] if path.startswith("/push/") else ""
        if kind:
            state.count_request(kind)
        if state.delay and kind:  # pushes answer slowly; the token endpoint stays quick
            time.sleep(state.delay)
        while True:
            mode = state.mode
            if mode == "down":
                self._json(503, {"code": "service_unavailable", "msg": "服务暂不可用"})
                return
            if mode == "malformed":
                self._send(200, b"<html><body>502 Bad Gateway (nginx)</body></html>", "text/html")
                return
            if mode != "hang":
                break
            if not self._hang():
                return
        try:
            envelope = json.loads(body)
        except ValueError:
            self._json(400, {"code": "bad_request", "msg": "请求不是 JSON"})
            return
        if not isinstance(envelope, dict):
            self._json(400, {"code": "bad_request", "msg": "请求不是 JSON 对象"})
        elif path == "/auth/token":
            self._json(*state.issue_token(envelope))
        elif kind:
            status, answer, drop = state.push(kind, envelope)
            if drop:  # stored, but the answer is lost: the client must resend and get "duplicate"
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            self._json(status, answer)
        else:
            self._json(404, {"code": "not_found", "msg": "没有这个接口"})

    def _hang(self) -> bool:
        """Wait while the mode is ``hang``; False when the client went away meanwhile."""
        state = self.server.state
        with state.lock:
            state.hanging += 1
        try:
            while True:
                with state.changed:
                    if state.mode != "hang" or state.closing:
                        return not state.closing
                    state.changed.wait(0.05)
                if self._client_gone():
                    self.close_connection = True
                    return False
        finally:
            with state.lock:
                state.hanging -= 1

    def _client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _json(self, status: int, answer: Any) -> None:
        self._send(status, json.dumps(answer, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class GatewayServer(ThreadingHTTPServer):
    """The threaded HTTP server holding one :class:`GatewayState`."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: GatewayState) -> None:
        super().__init__(address, GatewayHandler)
        self.state = state

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (its timeout, a killed pusher) is normal here; the rest is printed."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    def server_close(self) -> None:
        """Release hanging requests, then close the listening socket."""
        with self.state.changed:
            self.state.closing = True
            self.state.changed.notify_all()
        super().server_close()


def _key_option(text: str) -> tuple[str, tuple[str, ...]]:
    kind, _, fields = text.partition("=")
    if not kind or not fields:
        raise argparse.ArgumentTypeError("--key wants KIND=FIELD[,FIELD...]")
    return kind, tuple(f.strip() for f in fields.split(",") if f.strip())


def build_server(argv: list[str] | None = None) -> GatewayServer:
    """A bound (not yet serving) gateway from command-line arguments."""
    parser = argparse.ArgumentParser(prog="python -m feedback.exchange.fake_gateway", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed as READY <port>)")
    parser.add_argument("--app-key", required=True)
    parser.add_argument("--app-secret", required=True)
    parser.add_argument("--sm2-public-key", default="", help="hex; signatures are then required")
    parser.add_argument("--sm4-key", default="", help="32 hex digits; encryption is then required")
    parser.add_argument("--token-seconds", type=int, default=7200)
    parser.add_argument("--key", type=_key_option, action="append", default=[],
                        help="business key of a kind for the duplicates count, e.g. complaint=complaintNo")
    parser.add_argument("--discard-items", action="store_true",
                        help="keep only ids and keys, not item bodies (benchmarks of millions)")
    args = parser.parse_args(argv)
    state = GatewayState(args.app_key, args.app_secret, sm2_public_key=args.sm2_public_key, sm4_key=args.sm4_key,
                         token_seconds=args.token_seconds, key_fields=dict(args.key),
                         keep_items=not args.discard_items)
    return GatewayServer((args.host, args.port), state)


def main(argv: list[str] | None = None) -> None:
    """Run the gateway until interrupted; ``READY <port>`` on stdout once it listens."""
    server = build_server(argv)
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
