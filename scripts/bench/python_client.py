#!/usr/bin/env python3
"""The Python client (clients/python) against Python's own multiprocessing.Manager, in one run.

A Python service that needs shared state chooses between a Manager and wharf's supervisor. Each
rep measures both in the same ways, interleaved, so load from elsewhere spreads over both:

- awaited: one call at a time, waiting for each reply (`m[key] = i` on a wharf map through
  state.call, `d[key] = i` on a Manager dict). When the supervisor does not serve state.call,
  the wharf row uses state.set of a whole value instead (one round trip of the same size).
- pipelined: the same wharf calls with WINDOW unanswered at a time (a Manager proxy cannot
  pipeline: its calls are synchronous).
- counter: wharf `counter.add(1)` (atomic in the supervisor) vs a Manager Value under a Manager
  Lock (three round trips per add, the only exact way with a Manager).

Every figure is a median over the reps, in operations per second for all processes together.
Needs a running supervisor, found as wharf_client.connect() finds it (.wharf/ or WHARF_HOME):

    npm start &                     # or any supervisor; then, from the same folder:
    python3 scripts/bench/python_client.py [--json] [--reps 5] [--processes 1,4]

`npm run bench -- --only python` (scripts/load/bench-python.ts) runs it against a supervisor of its own,
as does `node dist/scripts/bench/python-client.js` alone.
"""
import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python"))
sys.path.insert(0, HERE)

import wharf_client  # noqa: E402
from python_manager import dict_set, manager_counter, run  # noqa: E402

WINDOW = 1000


def wharf_awaited(name, ops, start, results, index):
    with wharf_client.connect() as wharf:
        use_call = wharf.supports("state.call")
        target = wharf.map(f"{name}.{index}")
        start.wait()
        began = time.perf_counter()
        if use_call:
            for i in range(ops):
                target["k%d" % (i % 1000)] = i
        else:
            for i in range(ops):
                wharf.set(f"{name}.{index}.v", i)
        results.put((index, began, time.perf_counter()))


def wharf_pipelined(name, ops, start, results, index):
    with wharf_client.connect() as wharf:
        use_call = wharf.supports("state.call")
        start.wait()
        began = time.perf_counter()
        with wharf.pipeline(window=WINDOW) as p:
            if use_call:
                target = p.map(f"{name}.{index}")
                for i in range(ops):
                    target.set("k%d" % (i % 1000), i)
            else:
                for i in range(ops):
                    p.submit("state.set", {"name": f"{name}.{index}.v", "value": i})
        results.put((index, began, time.perf_counter()))


def wharf_counter(name, ops, start, results, index):
    with wharf_client.connect() as wharf:
        counter = wharf.counter(name)
        start.wait()
        began = time.perf_counter()
        for _ in range(ops):
            counter.add(1)
        results.put((index, began, time.perf_counter()))


def main():
    parser = argparse.ArgumentParser(description="The Python client against multiprocessing.Manager.")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--processes", default="1,4")
    parser.add_argument("--ops-awaited", type=int, default=3000)
    parser.add_argument("--ops-pipelined", type=int, default=30000)
    args = parser.parse_args()

    with wharf_client.connect() as probe:
        state_call = probe.supports("state.call")
        server_pid = probe.server_pid
    name = f"bench.python.{os.getpid()}"
    counts = [int(p) for p in args.processes.split(",")]
    manager = mp.Manager()
    samples = {}

    def record(count, measure, value):
        samples.setdefault(str(count), {}).setdefault(measure, []).append(value)

    for rep in range(1, args.reps + 1):
        for count in counts:
            print(f"rep {rep}/{args.reps}, {count} process(es)…", file=sys.stderr, flush=True)
            record(count, "wharf.awaited", run(wharf_awaited, name, count, args.ops_awaited))
            record(count, "wharf.pipelined", run(wharf_pipelined, name, count, args.ops_pipelined))
            record(count, "manager.awaited", run(dict_set, manager.dict(), count, args.ops_awaited))
            if state_call:
                record(count, "wharf.counter", run(wharf_counter, f"{name}.counter", count, args.ops_awaited))
            pair = (manager.Value("q", 0), manager.Lock())
            record(count, "manager.counter", run(manager_counter, pair, count, max(1, args.ops_awaited // 3)))
    manager.shutdown()
    with wharf_client.connect() as wharf:
        for entry in wharf.describe():
            if entry["name"].startswith(name):
                wharf.delete(entry["name"])

    medians = {count: {m: statistics.median(v) for m, v in row.items()} for count, row in samples.items()}
    spread = {count: {m: [min(v), max(v)] for m, v in row.items()} for count, row in samples.items()}
    with open("/proc/loadavg") as file:
        load = file.read().split()[:3]
    out = {"python": platform.python_version(), "reps": args.reps, "window": WINDOW, "supervisorPid": server_pid,
           "wharfCall": "state.call map.set / counter.add" if state_call else "state.set of a whole value (no state.call)",
           "loadavg": load, "opsPerSec": medians, "spread": spread}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"Python {out['python']}, {args.reps} reps, wharf calls: {out['wharfCall']}, load average {' '.join(load)}")
    print(f"{'processes':>9}  {'measure':<36} {'wharf client':>13} {'Manager':>10} {'wharf/Manager':>14}")
    for count, row in medians.items():
        lines = [
            ("awaited round trip (map set / d[k]=v)", row.get("wharf.awaited"), row.get("manager.awaited")),
            (f"pipelined, {WINDOW} in flight", row.get("wharf.pipelined"), row.get("manager.awaited")),
            ("exact counter add (add / Value+Lock)", row.get("wharf.counter"), row.get("manager.counter")),
        ]
        for label, ours, theirs in lines:
            ratio = f"{ours / theirs:.2f}x" if ours and theirs else "-"
            print(f"{count:>9}  {label:<36} {ours or 0:>13,.0f} {theirs or 0:>10,.0f} {ratio:>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
