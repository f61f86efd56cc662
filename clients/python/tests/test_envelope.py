"""The envelope helper against wharf's formats (src/kafka/trace.ts, codec.ts, worker/context.ts)."""
import re
import unittest
from types import SimpleNamespace

from wharf_client import envelope as e


class TraceparentTest(unittest.TestCase):
    def test_new_is_version_00_sampled_with_nonzero_ids(self):
        tp = e.new_traceparent()
        self.assertRegex(tp, r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$")
        self.assertIsNotNone(e.parse_traceparent(tp))

    def test_child_keeps_the_trace_and_draws_a_new_parent(self):
        parent = e.new_traceparent()
        child = e.child_traceparent(parent)
        self.assertEqual(e.parse_traceparent(child).trace_id, e.parse_traceparent(parent).trace_id)
        self.assertNotEqual(e.parse_traceparent(child).parent_id, e.parse_traceparent(parent).parent_id)

    def test_invalid_parents_start_a_new_trace(self):
        for bad in [None, "", "garbage", "ff-" + "a" * 32 + "-" + "b" * 16 + "-01", "00-" + "0" * 32 + "-" + "b" * 16 + "-01",
                    "00-" + "a" * 32 + "-" + "0" * 16 + "-01", "00-" + "a" * 32 + "-" + "b" * 16 + "-01-extra"]:
            self.assertIsNone(e.parse_traceparent(bad), bad)
            self.assertIsNotNone(e.parse_traceparent(e.child_traceparent(bad)))

    def test_later_versions_may_append_fields(self):
        self.assertEqual(e.parse_traceparent("01-" + "a" * 32 + "-" + "b" * 16 + "-01-more").trace_id, "a" * 32)


class HeadersTest(unittest.TestCase):
    def test_request_headers_carry_what_ctx_request_sends(self):
        headers = dict((k, v.decode()) for k, v in e.request_headers("me.replies", "abc.123"))
        self.assertEqual(headers["reply-to"], "me.replies")
        self.assertEqual(headers["correlation-id"], "abc.123")
        self.assertEqual(headers["content-type"], "application/json")
        self.assertRegex(headers["message-id"], r"^[0-9a-f-]{36}$")
        self.assertIsNotNone(e.parse_traceparent(headers["traceparent"]))

    def test_reply_answers_like_ctx_reply(self):
        request = e.Envelope.from_record(SimpleNamespace(
            topic="jarvis.requests", partition=2, offset=7, key=b"42", value=b'{"n":42}',
            headers=e.request_headers("tony.replies", "corr-1"),
        ))
        send = request.reply({"n": 42, "reply": "yes"})
        self.assertEqual(send["topic"], "tony.replies")
        self.assertEqual(send["key"], b"42")
        headers = dict((k, v.decode()) for k, v in send["headers"])
        self.assertEqual(headers["correlation-id"], "corr-1")
        self.assertEqual(e.parse_traceparent(headers["traceparent"]).trace_id, e.parse_traceparent(request.traceparent).trace_id)
        self.assertEqual(e.decode(send["value"]), {"n": 42, "reply": "yes"})

    def test_a_request_without_correlation_id_is_answered_with_its_message_id(self):
        headers = [(k, v) for k, v in e.request_headers("r", "x") if k != "correlation-id"]
        request = e.Envelope.from_record(SimpleNamespace(topic="t", partition=0, offset=0, key=None, value=b"1", headers=headers))
        reply = dict((k, v.decode()) for k, v in request.reply(2)["headers"])
        self.assertEqual(reply["correlation-id"], request.message_id)

    def test_a_message_without_reply_to_cannot_be_answered(self):
        request = e.Envelope("t", 1, e.decode_headers(e.message_headers()))
        with self.assertRaisesRegex(ValueError, "no reply-to header"):
            request.reply(1)

    def test_correlation_ids_have_wharfs_shape(self):
        self.assertRegex(e.new_correlation_id(), r"^[0-9a-f]{12}\.[0-9a-f-]{36}$")
        self.assertTrue(re.match(r"^inst\.", e.new_correlation_id("inst")))


if __name__ == "__main__":
    unittest.main()
