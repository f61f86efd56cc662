"""Jarvis in Python, answering wharf's Tony (workers/demo/tony.ts) over Kafka.

It reads Tony's questions from ``jarvis.requests`` in a consumer group and answers each on the
topic its ``reply-to`` header names, with its ``correlation-id`` and a child of its
``traceparent``: what wharf's ``ctx.reply`` does. Stop it with Ctrl-C (or after --count answers).

    python3 clients/python/examples/jarvis.py --brokers 127.0.0.1:9092
"""
import argparse
import json
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kafka import KafkaConsumer, KafkaProducer  # noqa: E402

from conversation import TOPICS, answer  # noqa: E402
from wharf_client.envelope import parse_traceparent  # noqa: E402
from wharf_client.kafka_python import ensure_topics, serve  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default=os.environ.get("KAFKA_BROKERS", "127.0.0.1:9092"))
    parser.add_argument("--requests", default=TOPICS["requests"])
    parser.add_argument("--group", default="python-jarvis")
    parser.add_argument("--count", type=int, default=0, help="stop after this many answers (0: run until stopped)")
    parser.add_argument("--log", help="append one JSON line per answer (correlation ids, traceparents) to this file")
    args = parser.parse_args()

    brokers = args.brokers.split(",")
    ensure_topics(brokers, [args.requests], partitions=6)
    consumer = KafkaConsumer(args.requests, bootstrap_servers=brokers, group_id=args.group, auto_offset_reset="earliest")
    producer = KafkaProducer(bootstrap_servers=brokers, acks="all", linger_ms=1)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    me = f"python-jarvis/{os.getpid()}"
    answered = 0
    log = open(args.log, "a", encoding="utf-8") if args.log else None

    def handle(request):
        question = request.value
        return dict(question, reply=answer(question["text"]), answeredBy=me)

    def replied(request, send):
        nonlocal answered
        answered += 1
        sent = dict((k, v.decode()) for k, v in send["headers"])
        if log:
            log.write(json.dumps({
                "n": request.value.get("n"), "replyTo": request.reply_to, "requestCorrelationId": request.correlation_id,
                "requestTraceparent": request.traceparent, "requestTraceValid": parse_traceparent(request.traceparent) is not None,
                "replyCorrelationId": sent["correlation-id"], "replyTraceparent": sent["traceparent"],
            }) + "\n")
            log.flush()
        print(f"answered #{request.value.get('n')} on {request.reply_to}", flush=True)
        if args.count and answered >= args.count:
            stop.set()

    print(f"{me} answering {args.requests} (group {args.group})", flush=True)
    try:
        serve(consumer, producer, handle, stop=stop, on_reply=replied)
    finally:
        producer.flush()
        producer.close()
        consumer.close()
        if log:
            log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
