"""What the tests share: the supervisor under test, and waits on conditions with deadlines.

The tests run against a real supervisor: ``WHARF_HOME`` names its state folder (``connect()``
finds it there). Without one they skip, unless ``WHARF_TEST_STRICT=1`` (set by
test/integration/python-client.test.ts), where a missing prerequisite fails instead.
"""
import os
import time
import unittest

import wharf_client

STRICT = os.environ.get("WHARF_TEST_STRICT") == "1"
#: CI installs kafka-python (python3-kafka): there its absence fails the Kafka tests instead of skipping them.
REQUIRE_KAFKA = os.environ.get("WHARF_TEST_REQUIRE_KAFKA") == "1"
NO_STATE_CALL = "the supervisor does not serve state.call (operations on shared objects): run a wharf that does"


def prerequisite(test: unittest.TestCase, ok: bool, reason: str, strict: bool = STRICT) -> None:
    if ok:
        return
    if strict:
        test.fail(f"missing prerequisite (WHARF_TEST_STRICT=1): {reason}")
    test.skipTest(reason)


def connect_or_skip(test: unittest.TestCase, **kwargs) -> wharf_client.Client:
    home = os.environ.get("WHARF_HOME")
    prerequisite(test, bool(home) and os.path.exists(os.path.join(home, "admin.json")), "no supervisor: set WHARF_HOME to a running supervisor's state folder")
    client = wharf_client.connect(**kwargs)
    test.addCleanup(client.close)
    return client


def needs_state_call(test: unittest.TestCase, client: wharf_client.Client) -> None:
    # A supervisor older than state.call skips these when run by hand; under WHARF_TEST_STRICT it fails them.
    prerequisite(test, client.supports("state.call"), NO_STATE_CALL)


def unique(prefix: str) -> str:
    return f"{prefix}.{os.getpid()}.{time.monotonic_ns()}"


def wait_until(condition, timeout: float, what: str, interval: float = 0.02):
    """Polls ``condition`` until it returns something truthy (returned), or fails after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {value!r})")
        time.sleep(interval)
