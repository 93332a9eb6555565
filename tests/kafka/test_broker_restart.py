"""Broker SIGKILL and restart (data kept) under load, against a real Kafka broker.

The workers are not restarted: they must ride out the outage, finish every request and commit
to the end. Prints one summary line:
  kafka scenario broker-kill: requests=N outcomes=N duplicates=N lost=0 wrong=0 time=Ns ...
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import loadlib  # noqa: E402
from loadlib import BrokerCase  # noqa: E402

PARTITIONS = 12


class BrokerRestart(BrokerCase, unittest.TestCase):

    def test_c_broker_sigkill_and_restart(self):
        """SIGKILL the broker mid-stream and start it again on the same data: nothing lost,
        the same worker processes finish the work and commit to the end."""
        total = 6000
        self.setup_scenario("broker-kill", total)
        # Fewer calls in flight make the backlog last, so the kill lands mid-stream.
        workers = [self.start_worker("w%d" % i, {"worker.max_in_flight": "16"})
                   for i in range(2)]
        loadlib.wait_owned(workers, [None, None], PARTITIONS)
        feeder = self.feeder(rate=0, total=total)
        feeder.produce_now(total)
        loadlib.wait_count(self.bootstrap, self.results, total // 4)
        t_kill = time.monotonic()
        self.kafka.kill()
        self.kafka.start()
        back_at = time.time()
        outage = time.monotonic() - t_kill
        self.assertEqual(self.kafka.bootstrap, self.bootstrap)
        after = [0]

        def completed_after_restart(by_key):
            after[0] = sum(1 for recs in by_key.values() for r in recs
                           if loadlib.timestamp(r["value"], "completedAt") >= back_at)
            return "completed_after_restart=%d" % after[0]

        counts = self.finish(extra="outage=%.1fs" % outage, extra_fn=completed_after_restart)
        self.assertEqual(counts["requests"], total)
        self.assertGreater(after[0], 0, "the kill came after the work was done")
        for w in workers:
            self.assertIsNone(w.proc.poll(), "%s exited during the outage:\n%s" % (
                w.label, w.tail()))
        for w in workers:
            rc = w.stop()
            self.assertEqual(rc, 0, "%s exit status\n%s" % (w.label, w.tail()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
