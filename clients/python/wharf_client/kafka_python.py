"""Request/reply with wharf services over kafka-python (``pip install kafka-python`` or Debian's
``python3-kafka``). The rest of wharf_client never imports this module, so it needs no Kafka client.

``Requester`` is the Python side of wharf's ``ctx.request``: it sends with ``reply-to`` and a
``correlation-id`` and resolves each request when the reply with that id comes back on its own
reply topic. ``serve`` answers requests the way a wharf handler's ``ctx.reply`` does.
"""
from __future__ import annotations

import secrets
import threading
from concurrent.futures import Future
from typing import Any, Callable, Dict, Iterable, Optional

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from .envelope import Envelope, encode_json, new_correlation_id, request_headers


def ensure_topics(bootstrap_servers: Any, topics: Iterable[str], partitions: int = 1) -> None:
    """Creates the topics that are missing (as wharf's createTopics does for its own)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="wharf-python-admin")
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(name=topic, num_partitions=partitions, replication_factor=1) for topic in topics if topic not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


class Requester:
    """Requests to wharf services, each resolved by the reply that carries its correlation id.

    The reply topic (one partition) is created if missing and read from its end, without a
    consumer group, so replies to requests sent after ``start()`` are never missed.
    """

    def __init__(self, bootstrap_servers: Any, reply_topic: str, *, producer: Optional[KafkaProducer] = None):
        self.reply_topic = reply_topic
        self.instance = secrets.token_hex(6)
        self._bootstrap = bootstrap_servers
        self._producer = producer or KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=1)
        self._own_producer = producer is None
        self._pending: Dict[str, Future] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._consumer: Optional[KafkaConsumer] = None
        self._thread: Optional[threading.Thread] = None
        self.unknown_replies = 0

    def start(self) -> "Requester":
        ensure_topics(self._bootstrap, [self.reply_topic])
        consumer = KafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False)
        partition = TopicPartition(self.reply_topic, 0)
        consumer.assign([partition])
        consumer.seek_to_end(partition)
        consumer.position(partition)  # fixes the position now: replies after this are read
        self._consumer = consumer
        self._thread = threading.Thread(target=self._listen, name=f"wharf-replies-{self.reply_topic}", daemon=True)
        self._thread.start()
        return self

    def _listen(self) -> None:
        assert self._consumer is not None
        while not self._stop.is_set():
            for records in self._consumer.poll(timeout_ms=200).values():
                for record in records:
                    reply = Envelope.from_record(record)
                    with self._lock:
                        future = self._pending.pop(reply.correlation_id or "", None)
                    if future is None:
                        self.unknown_replies += 1
                    elif not future.done():
                        future.set_result(reply)

    def request(self, topic: str, value: Any, *, key: Optional[str] = None, traceparent: Optional[str] = None) -> "Future[Envelope]":
        """Sends one request; the Future resolves with the reply's :class:`Envelope` (``.value``, ``.headers``)."""
        correlation_id = new_correlation_id(self.instance)
        future: Future = Future()
        future.correlation_id = correlation_id  # type: ignore[attr-defined]
        with self._lock:
            self._pending[correlation_id] = future
        headers = request_headers(self.reply_topic, correlation_id, traceparent=traceparent)
        future.request_headers = dict((k, v.decode()) for k, v in headers)  # type: ignore[attr-defined]
        sent = self._producer.send(topic, value=encode_json(value), key=None if key is None else key.encode("utf-8"), headers=headers)
        sent.add_errback(lambda error: future.done() or future.set_exception(error))
        return future

    def forget(self, future: "Future[Envelope]") -> None:
        """Stops waiting for a request's reply (after its timeout): a late reply is counted as unknown."""
        with self._lock:
            self._pending.pop(getattr(future, "correlation_id", ""), None)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._consumer is not None:
            self._consumer.close()
        if self._own_producer:
            self._producer.close()

    def __enter__(self) -> "Requester":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()


def serve(consumer: KafkaConsumer, producer: KafkaProducer, handler: Callable[[Envelope], Any], *, stop: Optional[threading.Event] = None,
          on_reply: Optional[Callable[[Envelope, Dict[str, Any]], None]] = None) -> None:
    """Answers each request ``consumer`` reads with ``handler(request)``, as wharf's ``ctx.reply``:
    to its ``reply-to`` topic, with its correlation id and a child of its traceparent. Requests
    without ``reply-to`` are handled and not answered. Runs until ``stop`` is set."""
    stop = stop or threading.Event()
    while not stop.is_set():
        for records in consumer.poll(timeout_ms=200).values():
            for record in records:
                request = Envelope.from_record(record)
                value = handler(request)
                if request.reply_to:
                    send = request.reply(value)
                    producer.send(**send)
                    if on_reply is not None:
                        on_reply(request, send)
        producer.flush()
