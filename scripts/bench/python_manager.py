#!/usr/bin/env python3
"""Python's multiprocessing.Manager measured the way scripts/bench/state.ts measures wharf.

Run by dist/scripts/bench/state.js when python3 exists; runnable alone:
    python3 scripts/bench/python_manager.py [--json] [--reps 5] [--workers 1,8]

Every process waits on a start event, so process start-up is not timed; a run's rate is all
operations divided by the span from the first process's start to the last one's end.

- dict_set: awaited round trips, `d[key] = i` on a Manager().dict() proxy (each call is a
  request/response over the manager's socket, pickled).
- dict_get: awaited round trips, `d.get(key)` on the same proxy.
- counter: multiprocessing.Value('q') in shared memory, incremented under its own lock, the
  closest Python analogue to wharf's SharedArrayBuffer counters.
- manager_counter: a Manager().Value incremented under a Manager().Lock: three round trips per add.
Python's Manager has no pipelining, so there is no pipelined figure.
"""
import argparse
import json
import multiprocessing as mp
import platform
import statistics
import sys
import time


def dict_set(proxy, ops, start, results, index):
    start.wait()
    began = time.perf_counter()
    for i in range(ops):
        proxy["k%d" % (i % 1000)] = i
    results.put((index, began, time.perf_counter()))


def dict_get(proxy, ops, start, results, index):
    start.wait()
    began = time.perf_counter()
    for i in range(ops):
        proxy.get("k%d" % (i % 1000))
    results.put((index, began, time.perf_counter()))


def value_counter(value, ops, start, results, index):
    start.wait()
    began = time.perf_counter()
    for _ in range(ops):
        with value.get_lock():
            value.value += 1
    results.put((index, began, time.perf_counter()))


def manager_counter(pair, ops, start, results, index):
    value, lock = pair
    start.wait()
    began = time.perf_counter()
    for _ in range(ops):
        with lock:
            value.value += 1
    results.put((index, began, time.perf_counter()))


def run(target, shared, workers, ops):
    start = mp.Event()
    results = mp.Queue()
    procs = [mp.Process(target=target, args=(shared, ops, start, results, i)) for i in range(workers)]
    for proc in procs:
        proc.start()
    # Every process is up and waiting before the clock starts.
    time.sleep(0.2)
    start.set()
    spans = [results.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    began = min(span[1] for span in spans)
    ended = max(span[2] for span in spans)
    return workers * ops / (ended - began)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--workers", default="1,8")
    parser.add_argument("--ops-awaited", type=int, default=5000)
    parser.add_argument("--ops-counter", type=int, default=200000)
    args = parser.parse_args()

    manager = mp.Manager()
    table = {}
    for workers in [int(w) for w in args.workers.split(",")]:
        row = {}
        proxy = manager.dict()
        row["dict_set"] = statistics.median(run(dict_set, proxy, workers, args.ops_awaited) for _ in range(args.reps))
        row["dict_get"] = statistics.median(run(dict_get, proxy, workers, args.ops_awaited) for _ in range(args.reps))
        value = mp.Value("q", 0)
        row["counter"] = statistics.median(run(value_counter, value, workers, args.ops_counter) for _ in range(args.reps))
        pair = (manager.Value("q", 0), manager.Lock())
        row["manager_counter"] = statistics.median(run(manager_counter, pair, workers, max(1, args.ops_awaited // 3)) for _ in range(args.reps))
        table[str(workers)] = row
    manager.shutdown()

    out = {"python": platform.python_version(), "reps": args.reps, "opsPerSec": table}
    if args.json:
        print(json.dumps(out))
    else:
        for workers, row in table.items():
            for name, rate in row.items():
                print("%s worker(s) %-16s %12.0f ops/s" % (workers, name, rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
