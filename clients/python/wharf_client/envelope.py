"""wharf's message envelope, for Python services on the same Kafka topics (src/kafka/codec.ts,
request-reply.ts, trace.ts). Standard library only; works with any Kafka client whose headers are
``(str, bytes)`` pairs, as kafka-python's are.

Every message wharf sends carries ``content-type``, a new ``message-id`` and a W3C
``traceparent``. A request adds ``reply-to`` (the topic to answer on) and ``correlation-id``; the
reply goes to ``reply-to`` with the request's ``correlation-id`` (or its ``message-id`` when it had
none) and a child of its ``traceparent`` (same trace id, new parent id).
"""
from __future__ import annotations

import json
import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Tuple, Union

CONTENT_TYPE = "content-type"
MESSAGE_ID = "message-id"
CORRELATION_ID = "correlation-id"
REPLY_TO = "reply-to"
TRACEPARENT = "traceparent"
#: Set by wharf on a message handed to a handler again after a failure (1, 2, …).
ATTEMPT = "attempt"

JSON = "application/json"
RAW = "application/octet-stream"

Headers = List[Tuple[str, bytes]]

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")


class TraceParent(NamedTuple):
    trace_id: str
    parent_id: str
    flags: str

    def __str__(self) -> str:
        return f"00-{self.trace_id}-{self.parent_id}-{self.flags}"


def parse_traceparent(header: Optional[str]) -> Optional[TraceParent]:
    """The header parsed, or None when missing or invalid (version ff, all-zero ids), as trace.ts."""
    if not header:
        return None
    match = _TRACEPARENT.match(header.strip().lower())
    if not match:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return TraceParent(trace_id, parent_id, flags)


def _nonzero_hex(nbytes: int) -> str:
    while True:
        value = secrets.token_hex(nbytes)
        if value.strip("0"):
            return value


def new_traceparent() -> str:
    """A new trace, sampled."""
    return str(TraceParent(_nonzero_hex(16), _nonzero_hex(8), "01"))


def child_traceparent(parent: Optional[str]) -> str:
    """A child of ``parent`` (same trace id, new parent id), or a new trace when it is missing or invalid."""
    parsed = parse_traceparent(parent)
    return new_traceparent() if parsed is None else str(parsed._replace(parent_id=_nonzero_hex(8)))


def new_correlation_id(instance: Optional[str] = None) -> str:
    """``<instance>.<uuid>``, the shape wharf's ctx.request uses (any unique string will do)."""
    return f"{instance or secrets.token_hex(6)}.{uuid.uuid4()}"


def encode_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def decode(value: Optional[bytes], content_type: Optional[str] = JSON) -> Any:
    """JSON for ``application/json`` (wharf's default) and when there is no content-type; bytes otherwise."""
    if content_type not in (None, JSON):
        return value or b""
    if not value:
        raise ValueError("empty value (expected JSON)")
    return json.loads(value.decode("utf-8"))


def _headers(fields: Mapping[str, Optional[str]], extra: Optional[Mapping[str, Union[str, bytes]]]) -> Headers:
    merged: Dict[str, Union[str, bytes]] = {key: value for key, value in fields.items() if value is not None}
    merged.update(extra or {})
    return [(key, value if isinstance(value, bytes) else value.encode("utf-8")) for key, value in merged.items()]


def message_headers(*, traceparent: Optional[str] = None, content_type: str = JSON, extra: Optional[Mapping[str, Union[str, bytes]]] = None) -> Headers:
    """Headers of a plain send: content-type, a new message-id, a traceparent (new unless given)."""
    return _headers({CONTENT_TYPE: content_type, MESSAGE_ID: str(uuid.uuid4()), TRACEPARENT: traceparent or new_traceparent()}, extra)


def request_headers(reply_to: str, correlation_id: str, *, traceparent: Optional[str] = None, content_type: str = JSON,
                    extra: Optional[Mapping[str, Union[str, bytes]]] = None) -> Headers:
    """Headers of a request that a wharf handler answers with ``ctx.reply``."""
    fields = {CONTENT_TYPE: content_type, MESSAGE_ID: str(uuid.uuid4()), TRACEPARENT: traceparent or new_traceparent(),
              REPLY_TO: reply_to, CORRELATION_ID: correlation_id}
    return _headers(fields, extra)


def reply_headers(request: "Envelope", *, content_type: str = JSON, extra: Optional[Mapping[str, Union[str, bytes]]] = None) -> Headers:
    """Headers of the answer to ``request``, as wharf's ``ctx.reply`` makes them: its correlation id
    (or message id), and a child of its traceparent."""
    fields = {CONTENT_TYPE: content_type, MESSAGE_ID: str(uuid.uuid4()), TRACEPARENT: child_traceparent(request.traceparent),
              CORRELATION_ID: request.correlation_id or request.message_id}
    return _headers(fields, extra)


@dataclass
class Envelope:
    """One consumed message with its headers as strings. ``from_record`` takes a kafka-python ConsumerRecord."""

    topic: str
    value: Any
    headers: Dict[str, str] = field(default_factory=dict)
    key: Optional[str] = None
    partition: int = 0
    offset: int = -1

    @classmethod
    def from_record(cls, record: Any) -> "Envelope":
        headers = decode_headers(getattr(record, "headers", None) or [])
        key = record.key.decode("utf-8") if isinstance(record.key, bytes) else record.key
        return cls(record.topic, decode(record.value, headers.get(CONTENT_TYPE)), headers, key, record.partition, record.offset)

    @property
    def content_type(self) -> Optional[str]:
        return self.headers.get(CONTENT_TYPE)

    @property
    def message_id(self) -> Optional[str]:
        return self.headers.get(MESSAGE_ID)

    @property
    def correlation_id(self) -> Optional[str]:
        return self.headers.get(CORRELATION_ID)

    @property
    def reply_to(self) -> Optional[str]:
        return self.headers.get(REPLY_TO)

    @property
    def traceparent(self) -> Optional[str]:
        return self.headers.get(TRACEPARENT)

    def reply(self, value: Any, *, extra: Optional[Mapping[str, Union[str, bytes]]] = None) -> Dict[str, Any]:
        """Keyword arguments for ``producer.send`` that answer this request (kafka-python)::

            producer.send(**request.reply({"answer": 42}))
        """
        if not self.reply_to:
            raise ValueError(f"message {self.topic}/{self.partition}@{self.offset} has no {REPLY_TO} header: answer it with a plain send")
        return {"topic": self.reply_to, "value": encode_json(value), "key": None if self.key is None else self.key.encode("utf-8"),
                "headers": reply_headers(self, extra=extra)}


def decode_headers(headers: Iterable[Tuple[str, Optional[bytes]]]) -> Dict[str, str]:
    """kafka-python's ``[(key, bytes)]`` as ``{key: str}`` (the first of repeated keys)."""
    out: Dict[str, str] = {}
    for key, value in headers:
        if key not in out and value is not None:
            out[key] = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
    return out
