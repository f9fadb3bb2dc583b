"""The two adapters that reach no province: ``none`` (nothing leaves; the ledger keeps every
message pending until a real adapter is configured) and ``log`` (each batch is written to the
``feedback.exchange`` log as it would go, and taken as delivered: a console backend for
development and demonstrations, like the SMS console backend)."""
from __future__ import annotations

import json
import logging

from feedback.exchange.adapters.base import Adapter, Delivery, Outcome, Outgoing

log = logging.getLogger("feedback.exchange")


class NoneAdapter(Adapter):
    """Sends nothing: ``sends`` is False, so the pusher leaves messages pending."""

    name = "none"
    sends = False

    def send(self, kind: str, batch: list[Outgoing]) -> Delivery:
        """Never called by the pusher; should it be, every message stays to be retried."""
        reason = "未配置数据交换（FEEDBACK_EXCHANGE_ADAPTER=none）"
        return Delivery([Outcome(m.message_id, "retry", reason=reason) for m in batch], "", "")


class LogAdapter(Adapter):
    """Writes each batch to the log and acknowledges every message as ``log-<messageId>``."""

    name = "log"

    def send(self, kind: str, batch: list[Outgoing]) -> Delivery:
        """Log the batch as one line (kind, count, the JSON array) and acknowledge it all."""
        items = [{**m.payload, "messageId": m.message_id} for m in batch]
        request = json.dumps(items, ensure_ascii=False)
        log.warning("exchange (log adapter) %s ×%d: %s", kind, len(batch), request)
        outcomes = [Outcome(m.message_id, "acknowledged", remote_id=f"log-{m.message_id}") for m in batch]
        return Delivery(outcomes, request, f"已写入日志（{len(batch)} 条）")
