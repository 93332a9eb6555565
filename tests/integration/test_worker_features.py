"""Capabilities beyond the core (issue 8): dead letters, Detach with its guarantees,
reconciliation of ambiguous failures, following the task, quota-aware rate limiting."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kafkalib  # noqa: E402
import worklib  # noqa: E402
from worklib import request  # noqa: E402

REGION = "ap-guangzhou"
DLQ = "classiclink.dlq"
GEN = ["--gen-vpcs", "2", "--gen-instances", "200"]


class DeadLetters(unittest.TestCase):
    def test_invalid_records_are_dead_lettered_byte_for_byte(self):
        with worklib.Stack(partitions=2, sim_args=GEN) as st:
            st.broker.create_topic(DLQ, 1)
            st.worker({"topic.dlq": DLQ})
            bad = b'{"vpcId": \xff\xfe not json'
            st.send([
                {"key": "dl-1", "value": bad, "partition": 1,
                 "headers": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                             "team": "blue"}},
                {"key": "dl-2", "value": None, "partition": 0},
                {"key": "ok-1", "value": request("vpc-0", ["ins-1"], region=REGION)},
            ])
            outcomes = {r["key"]: json.loads(r["value"]) for r in st.outcome_records(3)}
            self.assertEqual(outcomes["dl-1"]["codeDesc"], "InvalidRequest.NotJson")
            self.assertEqual(outcomes["ok-1"]["status"], "succeeded")
            letters = {r["key"]: r for r in kafkalib.consume(st.bootstrap, DLQ, count=2)}
            self.assertEqual(set(letters), {"dl-1", "dl-2"})
            one = letters["dl-1"]
            self.assertEqual(one["value_bytes"], bad)
            h = one["headers"]
            self.assertEqual(h["team"], "blue")
            self.assertEqual(h["clw.error.reason"], "NotJson")
            self.assertTrue(h["clw.error.message"])
            self.assertEqual(h["clw.source.topic"], worklib.REQUESTS)
            self.assertEqual(h["clw.source.partition"], "1")
            self.assertEqual(h["clw.source.offset"], str(outcomes["dl-1"]["source"]["offset"]))
            self.assertIsNone(letters["dl-2"]["value"])  # a tombstone stays a tombstone
            self.assertEqual(letters["dl-2"]["headers"]["clw.error.reason"], "Empty")
            st.wait_committed_to_end()

    def test_missing_dead_letter_topic_is_fatal_at_start(self):
        with worklib.Stack(partitions=1, sim_args=GEN) as st:
            w = st.worker({"topic.dlq": "no.such.topic"}, wait_assigned=False)
            self.assertEqual(w.wait(60), 2)
            self.assertIn("topic no.such.topic does not exist", w.tail())


if __name__ == "__main__":
    unittest.main(verbosity=2)
