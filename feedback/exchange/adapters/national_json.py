"""national-json: the national-style JSON push (Shandong/Xinjiang style) over HTTPS.

One request per batch: ``POST {EXCHANGE_URL}/push/{kind}`` with the envelope ``{appKey,
accessToken, timestamp, encrypt, data, sign}`` where ``data`` is the JSON array of the
messages (payload + ``messageId``), SM4-CBC encrypted and base64-encoded (random IV first)
when ``EXCHANGE_SM4_KEY`` is set, and ``sign`` is the SM3withSM2 signature (DER hex) of the
``data`` string when ``EXCHANGE_SM2_PRIVATE_KEY`` is set: the base64 text when encrypted,
else the array written compactly (``ensure_ascii=False``, separators ``,`` and ``:``), which
is how the receiver re-serialises it to check. The token comes from ``POST /auth/token``
(``sign`` = SM3 of app key + timestamp + app secret), is kept for its ``expiresIn`` (less a
margin), and is fetched again once when a push answers ``access_token_invalid``.

Anything that leaves the batch's fate unknown (timeout, refused or dropped connection, 5xx,
an answer that is not the expected JSON, a token that cannot be had) raises
:class:`TransientError` carrying the request and answer texts; the ledger retries the batch
with the same message ids, which the province dedupes. The wire format is described in
/work/shared/EXCHANGE.md and the README ("Exchange").
"""
from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any, Mapping
from zoneinfo import ZoneInfo

import requests

from feedback.clock import utcnow
from feedback.exchange import crypto
from feedback.exchange.adapters.base import Adapter, Delivery, Outcome, Outgoing, TransientError

BEIJING = ZoneInfo("Asia/Shanghai")  # the wire's zone, whatever FEEDBACK_TIMEZONE says
TOKEN_MARGIN_SECONDS = 60.0  # fetch a new token this long before the old one runs out
MASK = "***"
_KIND = re.compile(r"^[a-z][a-z_]*$")


def wire_time(moment: datetime | None = None) -> str:
    """``yyyyMMddHHmmss`` in Beijing time; now (the app's clock) when ``moment`` is None."""
    moment = moment or utcnow()
    return moment.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")


def canonical_json(value: Any) -> str:
    """The compact JSON text that is signed when the data travels unencrypted."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def read_results(batch: list[Outgoing], answer: Mapping[str, Any]) -> list[Outcome]:
    """One Outcome per message of ``batch`` from a push's ``{"code": "0", "data": {"results":
    [...]}}`` answer: accepted or duplicate → acknowledged (with the remote id), rejected →
    rejected (with the reason), absent or unknown → retry. An answer without a results list,
    or with an entry that is not ``{"messageId": str, "status": str, ...}``, raises
    :class:`ValueError` (the caller turns it into a TransientError)."""
    data = answer.get("data")
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise ValueError("应答缺少 data.results 列表")
    by_id: dict[str, dict] = {}
    for entry in results:
        if not (isinstance(entry, dict) and isinstance(entry.get("messageId"), str)
                and isinstance(entry.get("status"), str)):
            raise ValueError(f"results 中有格式不对的条目：{str(entry)[:200]}")
        by_id[entry["messageId"]] = entry
    outcomes = []
    for message in batch:
        entry = by_id.get(message.message_id)
        if entry is None:
            outcomes.append(Outcome(message.message_id, "retry", reason="省平台应答中没有这一条，稍后重推"))
            continue
        status = entry["status"]
        remote_id = entry.get("remoteId")
        remote_id = str(remote_id) if remote_id not in (None, "") else None
        if status in ("accepted", "duplicate"):
            outcomes.append(Outcome(message.message_id, "acknowledged", remote_id=remote_id))
        elif status == "rejected":
            reason = str(entry.get("reason") or "").strip() or "省平台拒收（未说明原因）"
            outcomes.append(Outcome(message.message_id, "rejected", remote_id=remote_id, reason=reason))
        else:
            outcomes.append(Outcome(message.message_id, "retry", reason=f"省平台返回未知状态 {status[:40]}"))
    return outcomes


def _envelope(head: Mapping[str, str], token: str, data_json: str) -> str:
    """The push envelope as JSON text: ``head`` (appKey, timestamp, encrypt, sign), the token,
    and ``data`` given as its JSON text (the array, or the SM4 text as a JSON string)."""
    return (json.dumps({"appKey": head["appKey"], "accessToken": token, "timestamp": head["timestamp"],
                        "encrypt": head["encrypt"], "sign": head["sign"]}, ensure_ascii=False)[:-1]
            + ', "data": ' + data_json + "}")


class NationalJsonAdapter(Adapter):
    """The national-style JSON transport: token, optional SM2 signature and SM4 encryption,
    one ``requests`` session (kept-alive connections) per push run."""

    name = "national-json"

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.url = str(config.get("EXCHANGE_URL") or "").strip().rstrip("/")
        if not self.url:
            raise ValueError("national-json 需要 FEEDBACK_EXCHANGE_URL（省平台地址）")
        self.app_key = str(config.get("EXCHANGE_APP_KEY") or "")
        self.app_secret = str(config.get("EXCHANGE_APP_SECRET") or "")
        seconds = float(config.get("EXCHANGE_TIMEOUT_SECONDS") or 10.0)
        self.timeout = (seconds, seconds)  # connect, read
        self.sm2_private, self.sm2_public = self._sm2_keys(config)
        sm4_hex = str(config.get("EXCHANGE_SM4_KEY") or "")
        try:
            self.sm4_key = crypto.sm4_key(sm4_hex) if sm4_hex else None
        except crypto.CryptoError as exc:
            raise ValueError(f"FEEDBACK_EXCHANGE_SM4_KEY：{exc}") from None
        self.session = requests.Session()
        self.session.headers.update({"Content-Type": "application/json; charset=utf-8",
                                     "Accept": "application/json"})
        self.token: str | None = None
        self.token_expires = 0.0  # time.monotonic() after which the token is not used

    @staticmethod
    def _sm2_keys(config: Mapping[str, Any]) -> tuple[str, str]:
        private = str(config.get("EXCHANGE_SM2_PRIVATE_KEY") or "").strip()
        public = str(config.get("EXCHANGE_SM2_PUBLIC_KEY") or "").strip()
        if not private:
            return "", ""
        try:
            derived = crypto.sm2_public_key(private)
        except crypto.CryptoError as exc:
            raise ValueError(f"FEEDBACK_EXCHANGE_SM2_PRIVATE_KEY：{exc}") from None
        if public:
            try:
                public = crypto.normalize_public_key(public)
            except crypto.CryptoError as exc:
                raise ValueError(f"FEEDBACK_EXCHANGE_SM2_PUBLIC_KEY：{exc}") from None
            if public != derived:
                raise ValueError("FEEDBACK_EXCHANGE_SM2_PUBLIC_KEY 与 FEEDBACK_EXCHANGE_SM2_PRIVATE_KEY 不是一对")
        return private, derived

    def send(self, kind: str, batch: list[Outgoing]) -> Delivery:
        """Push one batch of one kind; one Outcome per message, in the batch's order."""
        if not batch:
            return Delivery([], "", "")
        if not _KIND.match(kind):
            raise ValueError(f"不能推送的类型：{kind!r}")
        # The array is written once: it is what is signed (unencrypted), encrypted (SM4), sent and
        # logged; the envelopes around it are joined as text, not encoded again.
        if any(message.text is not None for message in batch):
            plain = "[" + ",".join(message.text if message.text is not None
                                   else canonical_json({**message.payload, "messageId": message.message_id})
                                   for message in batch) + "]"
        else:
            plain = canonical_json([{**message.payload, "messageId": message.message_id} for message in batch])
        if self.sm4_key is not None:
            encrypt, data = "SM4", crypto.sm4_encrypt(plain.encode("utf-8"), self.sm4_key)
            signed, data_json = data, canonical_json(data)
        else:
            encrypt, signed, data_json = "NONE", plain, plain
        sign = crypto.sm2_sign(signed.encode("utf-8"), self.sm2_private, self.sm2_public) if self.sm2_private else ""
        head = {"appKey": self.app_key, "timestamp": wire_time(), "encrypt": encrypt, "sign": sign}
        logged = _envelope(head, MASK, plain)

        url = f"{self.url}/push/{kind}"
        status, text, answer = self._post(url, _envelope(head, self._token(logged), data_json), logged, "推送")
        if answer.get("code") == "access_token_invalid":
            self.token = None  # the province dropped it early (restart, rotation): fetch once more
            status, text, answer = self._post(url, _envelope(head, self._token(logged), data_json), logged, "推送")
            if answer.get("code") == "access_token_invalid":
                raise TransientError("省平台连续两次拒绝令牌（access_token_invalid）", logged, text)
        code = str(answer.get("code"))
        if code != "0" or not 200 <= status < 300:
            message = str(answer.get("msg") or "")[:200]
            raise TransientError(f"省平台拒绝整批：HTTP {status} code={code} {message}".rstrip(), logged, text)
        try:
            outcomes = read_results(batch, answer)
        except ValueError as exc:
            raise TransientError(f"省平台的应答格式不对：{exc}", logged, text) from None
        return Delivery(outcomes, logged, text)

    def _token(self, logged: str) -> str:
        """The cached token, or a new one from ``/auth/token``."""
        if self.token and time.monotonic() < self.token_expires:
            return self.token
        timestamp = wire_time()
        body = {"appKey": self.app_key, "timestamp": timestamp,
                "sign": crypto.token_sign(self.app_key, timestamp, self.app_secret)}
        request_text = json.dumps({**body, "sign": MASK}, ensure_ascii=False)
        status, text, answer = self._post(f"{self.url}/auth/token", body, request_text, "获取令牌")
        data = answer.get("data") if isinstance(answer.get("data"), dict) else {}
        token = data.get("accessToken")
        if str(answer.get("code")) != "0" or not 200 <= status < 300 or not isinstance(token, str) or not token:
            message = str(answer.get("msg") or "")[:200]
            raise TransientError(f"获取令牌失败：HTTP {status} code={answer.get('code')} {message}".rstrip(),
                                 request_text, text)
        try:
            lifetime = float(data.get("expiresIn", 7200))
        except (TypeError, ValueError):
            lifetime = 7200.0
        self.token = token
        self.token_expires = time.monotonic() + max(0.0, lifetime - min(TOKEN_MARGIN_SECONDS, lifetime / 10))
        return token

    def _post(self, url: str, body: dict | str, logged: str, what: str) -> tuple[int, str, dict]:
        """POST ``body`` (an object, or its JSON text); (HTTP status, answer text, answer object).
        Timeouts, connection failures, 5xx and answers that are not a JSON object raise TransientError."""
        if not isinstance(body, str):
            body = json.dumps(body, ensure_ascii=False)
        try:
            response = self.session.post(url, data=body.encode("utf-8"), timeout=self.timeout)
        except requests.Timeout:
            raise TransientError(f"{what}失败：省平台 {self.timeout[1]:g} 秒内未应答（{url}）", logged) from None
        except requests.ConnectionError as exc:
            raise TransientError(f"{what}失败：连接中断或被拒绝（{url}）：{str(exc)[:300]}", logged) from None
        except requests.RequestException as exc:
            raise TransientError(f"{what}失败：{type(exc).__name__}: {str(exc)[:300]}", logged) from None
        text = response.content.decode("utf-8", errors="replace")
        if response.status_code >= 500:
            raise TransientError(f"{what}失败：省平台返回 HTTP {response.status_code}", logged, text)
        try:
            answer = json.loads(text)
        except ValueError:
            raise TransientError(f"{what}失败：省平台的应答不是 JSON（HTTP {response.status_code}）",
                                 logged, text) from None
        if not isinstance(answer, dict):
            raise TransientError(f"{what}失败：省平台的应答不是 JSON 对象", logged, text)
        return response.status_code, text, answer

    def close(self) -> None:
        """Close the session's connections and forget the token."""
        self.session.close()
        self.token = None
        self.token_expires = 0.0
