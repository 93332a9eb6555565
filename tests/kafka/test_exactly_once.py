"""delivery.mode=exactly_once on a real broker: outcomes and input offsets commit in one Kafka
transaction, so a read_committed consumer sees exactly one outcome per request across SIGKILLs,
and a second live instance with the same transactional.id fences the first.

Prints one summary line per scenario:
  kafka scenario eos-kill: requests=N outcomes=N duplicates=0 lost=0 wrong=0 time=Ns ...
"""

import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import loadlib  # noqa: E402
from loadlib import BrokerCase  # noqa: E402

PARTITIONS = 12


def eos(tid, extra=None):
    conf = {"delivery.mode": "exactly_once", "kafka.producer.transactional.id": tid,
            "kafka.producer.transaction.timeout.ms": "10000", "worker.max_in_flight": "16"}
    conf.update(extra or {})
    return conf


class ExactlyOnce(BrokerCase, unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.start_broker()

    @classmethod
    def tearDownClass(cls):
        cls.stop_broker()

    def test_f_sigkill_twice_no_duplicate_outcome(self):
        """SIGKILL mid-stream twice, restarting with the same transactional.id: the open
        transaction is aborted, and read_committed sees every outcome exactly once."""
        total = 3000
        self.setup_scenario("eos-kill", total)
        w = self.start_worker("w0", eos("eos-kill-0"))
        loadlib.wait_owned([w], [PARTITIONS], PARTITIONS)
        feeder = self.feeder(rate=0, total=total)
        feeder.produce_now(total)
        kills = 0
        for step in (total // 4, total // 2):
            loadlib.wait_count(self.bootstrap, self.results, step)
            self.assertEqual(w.kill(), -signal.SIGKILL)
            kills += 1
            w = self.start_worker("w0-restart%d" % kills, eos("eos-kill-0"))
        counts = self.finish(extra="kills=%d" % kills, max_duplicates=0)
        self.assertEqual(counts["requests"], total)
        self.assertEqual(counts["duplicates"], 0)
        self.assertEqual(w.stop(), 0, w.tail())

    def test_g_second_instance_with_the_same_transactional_id_is_fenced(self):
        total = 600
        self.setup_scenario("eos-fence", total)
        first = self.start_worker("first", eos("eos-fence-0"))
        loadlib.wait_owned([first], [PARTITIONS], PARTITIONS)
        feeder = self.feeder(rate=0, total=total)
        feeder.produce_now(200)
        loadlib.wait_count(self.bootstrap, self.results, 100)
        second = self.start_worker("second", eos("eos-fence-0"))
        # The first instance notices when it next produces: keep feeding both until it has.
        sent = 200
        while first.proc.poll() is None and sent < total:
            feeder.produce_now(100)
            sent += 100
            try:
                first.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                pass  # still running: feed more
        if sent < total:
            feeder.produce_now(total - sent)
        rc = first.wait(120)
        # The first instance's transaction was refused: it says why and exits 2.
        self.assertEqual(rc, 2, first.tail())
        self.assertTrue(loadlib.log_lines(first, "fenced by a newer instance"), first.tail())
        counts = self.finish(max_duplicates=0)
        self.assertEqual(counts["requests"], total)
        self.assertEqual(second.stop(), 0, second.tail())


if __name__ == "__main__":
    unittest.main(verbosity=2)
