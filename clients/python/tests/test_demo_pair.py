"""The article's pair across languages over a real broker: Python Tony ↔ wharf Jarvis, and
wharf Tony ↔ Python Jarvis, 100 requests each (examples/tony.py and examples/jarvis.py)."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

from wharf_client.envelope import parse_traceparent

from .support import REQUIRE_KAFKA, STRICT, connect_or_skip, prerequisite, wait_until

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
REQUESTS = 100

try:
    import kafka  # noqa: F401
    KAFKA = None
except ImportError as error:  # Debian: apt-get install python3-kafka
    KAFKA = f"kafka-python is not importable by {sys.executable} ({error}): apt-get install python3-kafka"


def run(args, timeout):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=os.environ)


class DemoPairTest(unittest.TestCase):
    def setUp(self):
        prerequisite(self, KAFKA is None, KAFKA or "", strict=REQUIRE_KAFKA)
        prerequisite(self, bool(os.environ.get("KAFKA_BROKERS")), "KAFKA_BROKERS is not set")
        self.wharf = connect_or_skip(self)
        self.brokers = os.environ["KAFKA_BROKERS"]

    def test_python_tony_asks_wharf_jarvis(self):
        topic = os.environ.get("WHARF_TEST_JARVIS_TOPIC")
        prerequisite(self, bool(topic), "no wharf Jarvis: run through test/integration/python-client.test.ts")
        result = run([os.path.join(EXAMPLES, "tony.py"), "--brokers", self.brokers, "--requests", topic, "--count", str(REQUESTS),
                      "--timeout", "60", "--quiet", "--json"], timeout=120)
        self.assertEqual(result.returncode, 0, f"tony.py failed:\n{result.stdout}\n{result.stderr}")
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        # Every reply carried its request's correlation id and a child of its traceparent (tony.py checks each).
        self.assertEqual((summary["asked"], summary["answered"], summary["badCorrelation"], summary["badTrace"], summary["late"]), (REQUESTS, REQUESTS, 0, 0, 0))
        if STRICT or self.wharf.supports("state.call"):  # under the wrapper the supervisor serves it: checked, not skipped
            conversation = self.wharf.get("conversation")
            for n in summary["numbers"]:
                self.assertTrue(conversation[str(n)]["answeredBy"].startswith("jarvis/"), conversation[str(n)])

    def test_wharf_tony_asks_python_jarvis(self):
        topic = os.environ.get("WHARF_TEST_TONY_TOPIC")
        prerequisite(self, bool(topic), "no wharf Tony: run through test/integration/python-client.test.ts")
        with tempfile.TemporaryDirectory() as folder:
            log = os.path.join(folder, "answers.jsonl")
            result = run([os.path.join(EXAMPLES, "jarvis.py"), "--brokers", self.brokers, "--requests", topic,
                          "--group", f"python-jarvis.{os.getpid()}", "--count", str(REQUESTS), "--log", log], timeout=180)
            self.assertEqual(result.returncode, 0, f"jarvis.py failed:\n{result.stdout}\n{result.stderr}")
            with open(log, encoding="utf-8") as lines:
                answers = [json.loads(line) for line in lines]
        self.assertEqual(len(answers), REQUESTS)
        for a in answers:
            self.assertRegex(a["replyTo"], r"\.replies\.tony\.producer\.\d+$", "wharf's Tony names its reply topic")
            self.assertTrue(a["requestCorrelationId"], "a request carries a correlation id")
            self.assertEqual(a["replyCorrelationId"], a["requestCorrelationId"])
            self.assertTrue(a["requestTraceValid"], a["requestTraceparent"])
            request, reply = parse_traceparent(a["requestTraceparent"]), parse_traceparent(a["replyTraceparent"])
            self.assertEqual(reply.trace_id, request.trace_id)
            self.assertNotEqual(reply.parent_id, request.parent_id)
        # wharf's Tony matched each reply to its request by correlation id and recorded it.
        me = "python-jarvis/"
        numbers = {a["n"] for a in answers}

        def recorded():
            conversation = self.wharf.get("conversation")
            return all(conversation.get(str(n), {}).get("answeredBy", "").startswith(me) for n in numbers)
        wait_until(recorded, 60, "wharf's Tony recording every answer of the Python Jarvis")


if __name__ == "__main__":
    unittest.main()
