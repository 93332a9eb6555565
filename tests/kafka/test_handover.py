"""A SIGTERM while the consumer group is still rebalancing after a crash (contract section 5,
commit cadence), against a real Kafka broker, with the product's default session timeout.

Three workers share a 12-partition topic; one-instance Attach requests (every one succeeds)
arrive steadily. One worker is SIGKILLed (a crashed node) and a replacement starts 2 s later:
the group prepares a rebalance and waits for the dead member's session to expire. While it
waits, a second worker gets SIGTERM (a rolling deploy), a few seconds into the wait; the group
settles without the dead member, the leaver hands over, and the replacement and the third
worker take every partition.

Duplicates (requests with a second outcome) are attributed by the partition in the outcome's
`source`: partitions the killed worker owned at the kill go to the SIGKILL, partitions the
leaver owned at its SIGTERM to the hand-over. Each scenario prints
  kafka handover NAME: sigkill=N (bound B) sigterm=N other=N leaver_exit=S ...
"""

import json
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import loadlib  # noqa: E402
from loadlib import BrokerCase  # noqa: E402

PARTITIONS = 12
RATE = 300
MAX_IN_FLIGHT = 256  # the default worker.max_in_flight
# The product's defaults for what this scenario is about: None leaves a key to the product.
DEFAULTS = {"kafka.consumer.session.timeout.ms": None, "worker.shutdown_timeout_ms": None}
# Work the leaver does while the group waits, before its SIGTERM.
PENDING_WORK_S = 3.0


class HandoverWhileRebalancing(BrokerCase, unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.start_broker()

    @classmethod
    def tearDownClass(cls):
        cls.stop_broker()

    def group_events(self, since):
        return [e for e in loadlib.group_events(self.kafka, self.group) if e[0] >= since - 1.0]

    def wait_prepare(self, since, timeout_s=30.0):
        """Waits until the broker logs that the group prepares a rebalance after wall time
        since; returns that event."""
        deadline = time.monotonic() + timeout_s
        while True:
            prep = [e for e in self.group_events(since) if e[1] == "prepare" and e[0] >= since]
            if prep:
                return prep[0]
            if time.monotonic() >= deadline:
                raise AssertionError("no rebalance prepared since the kill: %s" %
                                     self.group_events(since))
            time.sleep(0.1)  # poll the broker's log, bounded by the deadline

    def run_overlap(self, name, leaver_extra=None):
        """The scenario; returns a dict of what happened (duplicates by cause, the leaver's exit
        status and log)."""
        self.setup_scenario(name, 40000)
        self.mix = loadlib.Mix(name, 40000, self.mix.linked, attach_only=True)
        victim = self.start_worker("w0", dict(DEFAULTS))
        leaver = self.start_worker("w1", dict(DEFAULTS, **(leaver_extra or {})))
        keeper = self.start_worker("w2", dict(DEFAULTS))
        loadlib.wait_owned([victim, leaver, keeper], [None, None, None], PARTITIONS,
                           timeout_s=90)
        feeder = loadlib.SteadyFeeder(self.bootstrap, self.requests, self.mix, self.ledger,
                                      RATE).start()
        try:
            loadlib.wait_count(self.bootstrap, self.results, max(0, feeder.produced - RATE))
            time.sleep(3)  # steady load before the crash: time is the point
            killed_parts = loadlib.owned_partitions(victim)
            kill_at = time.time()
            victim.kill()
            bound, _ = loadlib.redo_bound(self.bootstrap, self.results, kill_at, MAX_IN_FLIGHT)
            time.sleep(2)  # the replacement comes ~2 s after the crash, as an operator's would
            joiner = self.start_worker("w3", dict(DEFAULTS))
            prepare = self.wait_prepare(kill_at)
            time.sleep(PENDING_WORK_S)  # the leaver works while the group waits
            leaver_parts = loadlib.owned_partitions(leaver)
            term_at = time.time()
            leaver.signal(signal.SIGTERM)
            rc = leaver.wait(150)
            stopped_at = time.time()
            loadlib.wait_owned([keeper, joiner], [None, None], PARTITIONS, timeout_s=90)
        finally:
            produced = feeder.stop()
        events = self.group_events(kill_at)
        stable = [e for e in events if e[1] == "stable" and e[0] >= prepare[0]]
        # The scenario is what it says only if the SIGTERM came while the group still waited.
        self.assertTrue(stable, events)
        self.assertGreater(stable[0][0], term_at,
                           "the group settled (%s) before the SIGTERM (%.3f): %s" % (
                               stable[0], term_at, events))
        extra = "produced=%d settled_after_sigterm=%.1fs leaver_stop=%.1fs" % (
            produced, stable[0][0] - term_at, stopped_at - term_at)
        counts = self.finish(extra=extra)
        self.assertEqual(counts["requests"], produced)
        statuses = {json.loads(r["value"])["status"] for recs in self.by_key.values()
                    for r in recs}
        self.assertEqual(statuses, {"succeeded"})
        dups = {"sigkill": 0, "sigterm": 0, "other": 0}
        for recs in self.by_key.values():
            if len(recs) < 2:
                continue
            part = json.loads(recs[0]["value"])["source"]["partition"]
            cause = ("sigkill" if part in killed_parts else
                     "sigterm" if part in leaver_parts else "other")
            dups[cause] += len(recs) - 1
        print("kafka handover %s: sigkill=%d (bound %d) sigterm=%d other=%d leaver_exit=%s "
              "killed=%s leaver=%s" % (name, dups["sigkill"], bound, dups["sigterm"],
                                       dups["other"], rc, sorted(killed_parts),
                                       sorted(leaver_parts)), flush=True)
        for w in (keeper, joiner):
            self.assertEqual(w.stop(), 0, w.tail())
        return dict(dups, bound=bound, rc=rc, leaver=leaver, leaver_parts=leaver_parts)

    def test_sigterm_during_pending_rebalance_redoes_nothing(self):
        """With the product's defaults the leaver waits for the group to settle, commits under
        the new generation and leaves: its hand-over redoes nothing, and it exits 0."""
        r = self.run_overlap("overlap")
        self.assertEqual(r["rc"], 0, r["leaver"].tail())
        self.assertEqual(r["sigterm"], 0, r)
        self.assertEqual(r["other"], 0, r)
        self.assertLessEqual(r["sigkill"], r["bound"], r)


if __name__ == "__main__":
    unittest.main(verbosity=2)
