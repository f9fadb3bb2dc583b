"""What an exchange adapter is: the transport of one province, behind one small interface.

The ledger (``feedback.exchange.pusher``) owns the guarantees: order, retries, dedupe keys,
masking and the operator's view. An adapter only turns a batch of messages into one request
and the answer into one outcome per message. To add a province, subclass :class:`Adapter`
in a module of its own and name it in ``FEEDBACK_EXCHANGE_ADAPTER=package.module:ClassName``
(README, "Exchange").
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping


class Outgoing:
    """One message to send: its stable id (the remote's dedupe key), kind (record, evaluation,
    evaluation_invalidated, rectification, supervision, supervision_order, complaint) and fields.

    ``text``, when the caller has it, is the message as compact JSON text, ``messageId`` first
    and then the payload's fields, written the way :func:`json.dumps` writes with
    ``ensure_ascii=False`` and separators ``,`` and ``:`` (the pusher has PostgreSQL write it,
    feedback.exchange.fastpath). An adapter that sends JSON may put it on the wire as it is;
    ``payload`` is then read from it on first use, so an adapter that wants the fields still
    gets them."""

    __slots__ = ("message_id", "kind", "_payload", "text")

    def __init__(self, message_id: str, kind: str, payload: dict | None = None, text: str | None = None) -> None:
        if payload is None and text is None:
            raise ValueError("Outgoing needs a payload or its JSON text")
        self.message_id, self.kind, self._payload, self.text = message_id, kind, payload, text

    @property
    def payload(self) -> dict:
        """The message's fields (without ``messageId``)."""
        if self._payload is None:
            fields = json.loads(self.text)
            fields.pop("messageId", None)
            self._payload = fields
        return self._payload

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Outgoing) and (self.message_id, self.kind, self.payload)
                == (other.message_id, other.kind, other.payload))

    def __repr__(self) -> str:
        return f"Outgoing({self.message_id!r}, {self.kind!r}, {self.payload!r})"


@dataclass(frozen=True)
class Outcome:
    """What the remote said about one message."""

    message_id: str
    status: str  # acknowledged | rejected (refused for good) | retry (try again later)
    remote_id: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Delivery:
    """The outcome of one request: one Outcome per message, and the request and answer texts."""

    outcomes: list[Outcome]
    request: str  # what went on the wire, before encryption; the ledger masks it before storing
    answer: str


class TransientError(Exception):
    """The whole batch failed in a way worth retrying: timeout, refused connection, 5xx,
    a malformed answer, a token that could not be had."""

    def __init__(self, reason: str, request: str = "", answer: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.request = request
        self.answer = answer


class Adapter:
    """A province's transport. One instance serves one push run, so it may keep a token or a
    connection pool between batches; :meth:`close` ends it."""

    name = "base"
    sends = True  # False: the pusher leaves messages pending (adapter `none`)

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config

    def send(self, kind: str, batch: list[Outgoing]) -> Delivery:
        """Send up to ``EXCHANGE_BATCH_SIZE`` messages of one kind in one request."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the adapter holds (connections, tokens)."""
