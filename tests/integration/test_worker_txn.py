"""Exactly-once transactions against the mock cluster with errors injected into its requests:
a commit refused with an abortable error, and a transaction in which a delivery failed, are
aborted on the transaction thread and their outcomes produced again in the next transaction.

The mock cluster shows the records of aborted transactions to read_committed readers and drops
transactional offset commits, so these tests check that nothing is lost and the worker goes on;
exactly-once itself is checked on the real broker (tests/kafka/test_exactly_once.py).
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import worklib  # noqa: E402
from worklib import request  # noqa: E402

REGION = "ap-guangzhou"
GEN = ["--gen-vpcs", "1", "--gen-instances", "100"]
EOS = {"delivery.mode": "exactly_once", "kafka.producer.transactional.id": "it-txn-0",
       "kafka.producer.transaction.timeout.ms": "10000"}


def attach(i):
    rid = "x%d" % i
    return {"key": rid, "value": request("vpc-0", ["ins-%d" % i], request_id=rid, region=REGION)}


class Transactions(unittest.TestCase):
    def check_all_succeeded(self, st, ids):
        seen = st.wait_outcomes_for(ids)
        for rid in ids:
            for o in seen[rid]:
                self.assertEqual(o["status"], "succeeded", o)

    def test_abortable_commit_error_aborts_and_produces_again(self):
        with worklib.Stack(partitions=2, sim_args=GEN) as st:
            w = st.worker(EOS)
            st.send([attach(i) for i in range(5)])
            self.check_all_succeeded(st, ["x%d" % i for i in range(5)])
            # The next transaction's offsets are refused (an abortable error).
            self.assertEqual(st.broker.command("push-errors AddOffsetsToTxn "
                                               "GROUP_AUTHORIZATION_FAILED 1"), "ok")
            st.send([attach(i) for i in range(5, 10)])
            w.wait_msg("transaction aborted (send_offsets_to_transaction")
            self.check_all_succeeded(st, ["x%d" % i for i in range(10)])
            self.assertEqual(w.stop(), 0, w.tail())

    def test_failed_delivery_aborts_the_transaction(self):
        # API answers take 500 ms: the error is injected before the outcomes are produced.
        with worklib.Stack(partitions=2, sim_args=GEN + ["--latency-ms", "500"]) as st:
            w = st.worker(EOS)
            st.send([attach(i) for i in range(5)])
            self.assertEqual(st.broker.command("push-errors Produce MSG_SIZE_TOO_LARGE 1"), "ok")
            w.wait_msg("outcome not acknowledged: Broker: Message size too large")
            w.wait_msg("a record of the Kafka transaction was not delivered; aborting it")
            self.check_all_succeeded(st, ["x%d" % i for i in range(5)])
            self.assertEqual(w.stop(), 0, w.tail())


if __name__ == "__main__":
    unittest.main(verbosity=2)
