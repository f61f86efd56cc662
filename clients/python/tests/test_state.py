"""The Python client against a real supervisor: every object kind, the key, watch, leases, pipelining."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

import wharf_client
from wharf_client import MISSING

from .support import STRICT, connect_or_skip, needs_state_call, prerequisite, unique, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))


class WholeObjectsTest(unittest.TestCase):
    """What every wharf supervisor serves: describe, get, set, delete, snapshot, watch."""

    def setUp(self):
        self.wharf = connect_or_skip(self)

    def test_set_get_delete_snapshot_describe(self):
        name = unique("py.whole")
        self.wharf.set(name, {"a": [1, 2]}, kind="map")
        self.assertEqual(self.wharf.get(name), {"a": [1, 2]})
        self.assertEqual(self.wharf.kind_of(name), "map")
        self.assertEqual(self.wharf.snapshot()[name], {"kind": "map", "value": {"a": [1, 2]}})
        self.assertIn({"name": name, "kind": "map", "size": 1}, self.wharf.describe())
        self.assertTrue(self.wharf.delete(name))
        self.assertFalse(self.wharf.delete(name))
        with self.assertRaises(wharf_client.UnknownNameError) as caught:
            self.wharf.get(name)
        self.assertEqual(caught.exception.code, "ERR_UNKNOWN_NAME")

    def test_errors_carry_wharfs_codes(self):
        name = unique("py.kind")
        self.wharf.set(name, 1, kind="counter")
        with self.assertRaises(wharf_client.KindError) as caught:
            self.wharf.set(name, {}, kind="map")
        self.assertEqual(caught.exception.code, "ERR_STATE_KIND")
        self.assertIsInstance(caught.exception, wharf_client.WharfError)
        with self.assertRaises(wharf_client.WharfError) as caught:
            self.wharf.call("no.such.method")
        self.assertEqual(caught.exception.code, "ERR_UNKNOWN_METHOD")
        self.assertEqual(self.wharf.ping()["pid"], self.wharf.server_pid)

    def test_a_wrong_key_is_refused(self):
        with open(os.path.join(os.environ["WHARF_HOME"], "admin.json"), encoding="utf-8") as file:
            info = json.load(file)
        started = time.monotonic()
        with self.assertRaises(wharf_client.AuthenticationError) as caught:
            wharf_client.connect(info["address"], authkey="not the key, but long enough")
        self.assertEqual(caught.exception.code, "ERR_AUTH")
        self.assertGreaterEqual(time.monotonic() - started, 0.09, "the server answers a failed proof after its fixed delay")
        # The right key, given explicitly with the address, is accepted.
        if info["keyFile"] == "env":
            key = os.environ["WHARF_AUTHKEY"]
        else:
            with open(info["keyFile"], encoding="utf-8") as file:
                key = file.read().strip()
        with wharf_client.connect(info["address"], authkey=key) as explicit:
            self.assertTrue(explicit.ping()["pong"])

    def test_no_supervisor_is_a_clear_error(self):
        with self.assertRaises(wharf_client.NoSupervisorError) as caught:
            wharf_client.connect(home=os.path.join(HERE, "no-such-home"))
        self.assertEqual(caught.exception.code, "ERR_NO_SUPERVISOR")

    def test_watch_yields_changes_in_order(self):
        name = unique("py.watched")
        with self.wharf.watch(name) as changes, wharf_client.connect() as other:
            other.set(name, "first")
            other.set(name, "second")
            other.delete(name)
            seen = [changes.get(timeout=10) for _ in range(3)]
        self.assertEqual([(c.name, c.op, c.value) for c in seen], [(name, "set", "first"), (name, "set", "second"), (name, "drop", None)])
        self.assertTrue(all(abs(c.at - time.time()) < 60 for c in seen))

    def test_a_watch_ends_with_its_connection(self):
        client = wharf_client.connect()
        watch = client.watch(unique("py.ends"))
        client.close()
        self.assertEqual(list(watch), [])


class ObjectKindsTest(unittest.TestCase):
    """Operations on objects (state.call): each kind's Pythonic proxy."""

    def setUp(self):
        self.wharf = connect_or_skip(self)
        needs_state_call(self, self.wharf)

    def test_counter(self):
        hits = self.wharf.counter(unique("py.counter"))
        self.assertEqual(hits.add(5), 5)
        self.assertEqual(hits.add(), 6)
        hits += 4
        hits -= 1
        self.assertEqual(hits.value, 9)
        hits.value = 100
        self.assertEqual(int(hits), 100)
        with self.assertRaises(wharf_client.WharfError) as caught:
            hits.add(1.5)
        self.assertEqual(caught.exception.code, "ERR_STATE_ARGUMENT")

    def test_map(self):
        m = self.wharf.map(unique("py.map"))
        m["tony"] = {"suit": "Mark 42"}
        m["null"] = None
        self.assertEqual(m["tony"], {"suit": "Mark 42"})
        self.assertIsNone(m["null"])
        with self.assertRaises(KeyError):
            m["nobody"]
        self.assertEqual(m.get("nobody", "default"), "default")
        self.assertIn("tony", m)
        self.assertNotIn("nobody", m)
        self.assertEqual(len(m), 2)
        self.assertEqual(sorted(m), ["null", "tony"])
        self.assertTrue(m.set_if_absent("pepper", 1))
        self.assertFalse(m.set_if_absent("pepper", 2))
        self.assertFalse(m.compare_and_set("pepper", 2, 3))
        self.assertTrue(m.compare_and_set("pepper", 1, 3))
        self.assertEqual(m.transform("pepper", lambda v: v * 2), 6)
        self.assertEqual(m.transform("new", lambda v: (v or 0) + 1), 1)
        self.assertTrue(m.compare_and_set("new", 1, MISSING))
        m.update({"a": 1}, b=2)
        self.assertEqual(m.pop("a"), 1)
        self.assertEqual(m.pop("a", "gone"), "gone")
        del m["b"]
        with self.assertRaises(KeyError):
            del m["b"]
        self.assertEqual(m.to_dict(), {"tony": {"suit": "Mark 42"}, "null": None, "pepper": 6})
        self.assertEqual(m.batch([{"op": "get", "key": "pepper"}, {"op": "delete", "key": "pepper"}]), [6, True])
        m.clear()
        self.assertEqual(len(m), 0)

    def test_list(self):
        items = self.wharf.list(unique("py.list"))
        self.assertEqual(items.append("a", "b"), 2)
        self.assertEqual(items.extend(["c", {"d": 1}]), 4)
        self.assertEqual((items[0], items[-1], items[1:3], items[-2:]), ("a", {"d": 1}, ["b", "c"], ["c", {"d": 1}]))
        with self.assertRaises(IndexError):
            items[10]
        self.assertEqual((len(items), list(items)), (4, ["a", "b", "c", {"d": 1}]))
        items.clear()
        self.assertEqual(items.to_list(), [])

    def test_value(self):
        v = self.wharf.value(unique("py.value"))
        self.assertIsNone(v.value)
        v.value = {"mood": "calm"}
        self.assertEqual(v.get(), {"mood": "calm"})
        self.assertFalse(v.compare_and_set({"mood": "angry"}, 1))
        self.assertTrue(v.compare_and_set({"mood": "calm"}, 1))
        self.assertEqual(v.transform(lambda x: x + 1), 2)

    def test_namespace(self):
        ns = self.wharf.namespace(unique("py.ns"))
        ns.mood = "calm"
        ns.assign({"level": 3})
        self.assertEqual((ns.mood, ns.get("level"), ns.to_dict()), ("calm", 3, {"mood": "calm", "level": 3}))
        del ns.mood
        with self.assertRaises(AttributeError):
            ns.mood

    def test_queue(self):
        q = self.wharf.queue(unique("py.queue"), capacity=2)
        q.put("a")
        q.put_nowait({"b": 2})
        self.assertEqual(q.qsize(), 2)
        with self.assertRaises(wharf_client.StateTimeoutError):
            q.put("c", timeout=0.05)
        self.assertEqual((q.get(), q.get_nowait()), ("a", {"b": 2}))
        with self.assertRaises(wharf_client.StateTimeoutError) as caught:
            q.get(timeout=0.05)
        self.assertEqual(caught.exception.code, "ERR_TIMEOUT")
        # A get waiting in the supervisor is served by a put from another connection.
        with wharf_client.connect() as other:
            got = []
            getter = threading.Thread(target=lambda: got.append(other.queue(q.name, capacity=2).get(timeout=10)))
            getter.start()
            wait_until(lambda: self.wharf.get(q.name)["items"] == [] and getter.is_alive(), 5, "the getter waiting")
            q.put("handed over")
            getter.join(10)
        self.assertEqual(got, ["handed over"])
        with self.assertRaises(wharf_client.WharfError) as caught:
            self.wharf.queue(q.name, capacity=5).qsize()
        self.assertEqual(caught.exception.code, "ERR_STATE_CONFIG")

    def test_lock(self):
        lock = self.wharf.lock(unique("py.lock"))
        with lock as lease:
            self.assertGreater(lease.token, 0)
            self.assertTrue(lock.locked())
            self.assertAlmostEqual(lease.expires_at, time.time() + 30, delta=5)
            with wharf_client.connect() as other:
                with self.assertRaises(wharf_client.StateTimeoutError):
                    other.lock(lock.name).acquire(timeout=0)
            self.assertTrue(lease.extend(60))
            self.assertAlmostEqual(lease.expires_at, time.time() + 60, delta=5)
        self.assertFalse(lock.locked())
        short = lock.acquire(lease=0.05)
        wait_until(lambda: not lock.locked(), 5, "the lease to run out")
        self.assertFalse(short.release(), "a lease the store took back cannot be released again")
        with lock.acquire(timeout=1) as again:
            self.assertGreater(again.token, short.token)

    def test_semaphore(self):
        name = unique("py.sem")
        sem = self.wharf.semaphore(name, 2)
        a, b = sem.acquire(), sem.acquire()
        self.assertEqual(sem.available(), 0)
        with self.assertRaises(wharf_client.StateTimeoutError):
            sem.acquire(timeout=0.05)
        a.release()
        with sem:
            self.assertEqual(sem.available(), 0)
        b.release()
        self.assertEqual(sem.available(), 2)
        with self.assertRaises(wharf_client.WharfError) as caught:
            self.wharf.semaphore(name, 3).available()
        self.assertEqual(caught.exception.code, "ERR_STATE_CONFIG")

    def test_event(self):
        event = self.wharf.event(unique("py.event"))
        self.assertFalse(event.is_set())
        self.assertFalse(event.wait(0.05))
        with wharf_client.connect() as other:
            waited = []
            waiter = threading.Thread(target=lambda: waited.append(other.event(event.name).wait(10)))
            waiter.start()
            event.set()
            waiter.join(10)
        self.assertEqual(waited, [True])
        self.assertTrue(event.is_set())
        event.clear()
        self.assertFalse(event.is_set())

    def test_watch_sees_object_operations(self):
        hits = self.wharf.counter(unique("py.watched-counter"))
        with self.wharf.watch(hits.name) as changes:
            hits.add(2)
            hits.add(3)
            self.assertEqual([changes.get(timeout=10).value for _ in range(2)], [2, 5])

    def test_pipelined_calls_are_matched_by_id(self):
        name = unique("py.pipelined")
        with self.wharf.pipeline(window=100) as p:
            totals = [p.counter(name).add(1) for _ in range(1000)]
            sets = [p.map(name + ".m").set(str(i), i) for i in range(500)]
        self.assertEqual(sorted(t.result() for t in totals), list(range(1, 1001)))
        self.assertEqual([t.result() for t in totals], list(range(1, 1001)), "one connection's calls run in order")
        self.assertTrue(all(s.result() is None for s in sets))
        self.assertEqual(len(self.wharf.map(name + ".m")), 500)
        with self.assertRaises(wharf_client.KindError):
            with self.wharf.pipeline() as p:
                p.counter(name).add(1)
                p.map(name).set("k", 1)

    def test_threads_share_one_connection(self):
        name = unique("py.threads")
        counter = self.wharf.counter(name)
        threads = [threading.Thread(target=lambda: [counter.add(1) for _ in range(300)]) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        self.assertEqual(counter.get(), 1200)

    def test_a_lock_is_released_when_its_python_holder_is_killed(self):
        name = unique("py.killed-holder")
        holder = subprocess.Popen(
            [sys.executable, "-c", (
                "import sys, wharf_client\n"
                "w = wharf_client.connect()\n"
                f"lease = w.lock({name!r}).acquire(lease=120)\n"
                "print('held', lease.token, flush=True)\n"
                "sys.stdin.read()\n"
            )],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(HERE),
        )
        try:
            self.assertTrue(holder.stdout.readline().startswith("held"), "the holder took the lock")
            lock = self.wharf.lock(name)
            self.assertTrue(lock.info()["held"])
            with self.assertRaises(wharf_client.StateTimeoutError):
                lock.acquire(timeout=0.2)
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)
            started = time.monotonic()
            # Its lease had two minutes to run: only the end of its connection can free it this soon.
            with lock.acquire(timeout=10) as lease:
                self.assertLess(time.monotonic() - started, 10)
                self.assertTrue(lock.info()["held"])
                self.assertGreater(lease.token, 1)
        finally:
            if holder.poll() is None:
                holder.kill()
            holder.wait(10)
            holder.stdout.close()
            holder.stdin.close()


class WithWharfWorkersTest(unittest.TestCase):
    """Python and wharf workers on one counter at the same time (the wrapper starts the workers)."""

    def test_concurrent_increments_add_up_exactly(self):
        counter_name = os.environ.get("WHARF_TEST_ADDER_COUNTER")
        prerequisite(self, bool(counter_name), "no wharf adder workers: run through test/integration/python-client.test.ts")
        wharf = connect_or_skip(self)
        needs_state_call(self, wharf)
        wharf_adds = int(os.environ["WHARF_TEST_ADDER_TOTAL"])
        total = wharf.counter(counter_name)
        self.assertEqual(total.get(), 0, "the wharf workers wait for the go event")
        wharf.event(os.environ["WHARF_TEST_ADDER_GO"]).set()

        per_thread, threads = 1500, 4
        wharf_tally = wharf.counter(counter_name + ".wharf")  # the workers' own count of their adds

        def add(pipelined: bool):
            with wharf_client.connect() as own:
                if pipelined:
                    with own.pipeline(window=200) as p:
                        for _ in range(per_thread):
                            p.counter(counter_name).add(1)
                else:
                    for _ in range(per_thread):
                        own.counter(counter_name).add(1)

        workers = [threading.Thread(target=add, args=(i % 2 == 1,)) for i in range(threads)]
        tally_before = wharf_tally.get()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(120)
        tally_after = wharf_tally.get()
        python_adds = per_thread * threads
        expected = wharf_adds + python_adds
        wait_until(lambda: wharf_tally.get() >= wharf_adds, 60, f"the wharf workers' {wharf_adds} adds")
        self.assertEqual(total.get(), expected)
        # The runs overlapped: the wharf workers added while Python did.
        self.assertLess(tally_before, tally_after, f"wharf workers added during Python's adds (tally {tally_before} → {tally_after} of {wharf_adds})")


if __name__ == "__main__":
    unittest.main()
