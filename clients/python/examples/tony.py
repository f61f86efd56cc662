"""Tony in Python, asking wharf's Jarvis (workers/demo/jarvis.ts) over Kafka with request/reply.

Questions are numbered from wharf's shared counter ``tony.asked`` and every answer is recorded in
the shared map ``conversation``, exactly as wharf's own Tony does, so the two can even run side by
side. Each reply's correlation id and traceparent are checked against its request.

    python3 clients/python/examples/tony.py --brokers 127.0.0.1:9092 --count 10
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import wharf_client  # noqa: E402
from conversation import STATE, TOPICS, question  # noqa: E402
from wharf_client.envelope import parse_traceparent  # noqa: E402
from wharf_client.kafka_python import Requester  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default=os.environ.get("KAFKA_BROKERS", "127.0.0.1:9092"))
    parser.add_argument("--requests", default=TOPICS["requests"], help="the topic Jarvis answers on")
    parser.add_argument("--reply-topic", default=f"python.tony.replies.{os.getpid()}")
    parser.add_argument("--count", type=int, default=10, help="questions to ask (all in flight at once)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for all answers")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--json", action="store_true", help="print a summary as one JSON object")
    args = parser.parse_args()

    wharf = wharf_client.connect()  # .wharf/admin.json or $WHARF_HOME, as `npm run admin`
    shared = wharf.supports("state.call")
    if not shared:
        print("note: this supervisor does not serve state.call: numbering locally, recording nothing", file=sys.stderr)
    local = iter(range(1, 1 << 62))
    asked = wharf.counter(STATE["asked"])
    conversation = wharf.map(STATE["conversation"])
    summary = {"asked": 0, "answered": 0, "recorded": 0, "badCorrelation": 0, "badTrace": 0, "late": 0, "numbers": []}
    with Requester(args.brokers.split(","), args.reply_topic) as requester:
        pending = []
        for _ in range(args.count):
            n = asked.add(1) if shared else next(local)
            future = requester.request(args.requests, {"n": n, "text": question(n), "askedAt": int(time.time() * 1000)}, key=str(n))
            pending.append((n, future))
            if shared:
                wharf.counter(STATE["sent"]).add(1)
            summary["asked"] += 1
        deadline = time.monotonic() + args.timeout
        for n, future in pending:
            try:
                reply = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001 - a timeout or a failed send: counted, not fatal
                requester.forget(future)
                summary["late"] += 1
                continue
            summary["answered"] += 1
            summary["numbers"].append(n)
            sent = future.request_headers  # type: ignore[attr-defined]
            if reply.correlation_id != sent["correlation-id"] or reply.value.get("n") != n:
                summary["badCorrelation"] += 1
            ours, theirs = parse_traceparent(sent["traceparent"]), parse_traceparent(reply.traceparent)
            if theirs is None or ours is None or theirs.trace_id != ours.trace_id or theirs.parent_id == ours.parent_id:
                summary["badTrace"] += 1
            exchange = dict(reply.value, recordedAt=int(time.time() * 1000))
            if shared and conversation.set_if_absent(str(n), exchange):
                wharf.counter(STATE["replied"]).add(1)
                summary["recorded"] += 1
            if not args.quiet:
                print(f"#{n}  Tony (python): {exchange['text']}\n     Jarvis ({exchange.get('answeredBy')}): {exchange.get('reply')}")
    wharf.close()
    if args.json:
        print(json.dumps(summary))
    return 0 if summary["answered"] == summary["asked"] and not summary["badCorrelation"] and not summary["badTrace"] else 1


if __name__ == "__main__":
    sys.exit(main())
