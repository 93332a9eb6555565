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
import re
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

    def run_overlap(self, name, every_extra=None, leaver_extra=None, leaver_fails=False):
        """The scenario; returns a dict of what happened (duplicates by cause, the leaver's exit
        status, its classiclink_commit_failures_total while it left the group, when it saw
        commits stall). every_extra: settings of every worker; leaver_extra: the leaver's own;
        leaver_fails: the leaver's final commit is expected to fail."""
        self.setup_scenario(name, 40000)
        self.mix = loadlib.Mix(name, 40000, self.mix.linked, attach_only=True)
        common = dict(DEFAULTS, **(every_extra or {}))
        victim = self.start_worker("w0", common)
        leaver = self.start_worker("w1", dict(common, **(leaver_extra or {})))
        keeper = self.start_worker("w2", common)
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
            joiner = self.start_worker("w3", common)
            prepare = self.wait_prepare(kill_at)
            time.sleep(PENDING_WORK_S)  # the leaver works while the group waits
            leaver_parts = loadlib.owned_partitions(leaver)
            term_at = time.time()
            leaver.signal(signal.SIGTERM)
            failures = None
            if leaver_fails:
                # The failure is counted before the leaver leaves the group, which takes until
                # the group settles: the metric can be read meanwhile.
                leaver.wait_msg("not committed within", 60)
                failures = metric(leaver, "classiclink_commit_failures_total")
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
        return dict(dups, bound=bound, rc=rc, leaver=leaver, leaver_parts=leaver_parts,
                    failures=failures, kill_at=kill_at)

    def test_sigterm_during_pending_rebalance_redoes_nothing(self):
        """With the product's defaults the leaver waits for the group to settle, commits under
        the new generation and leaves: its hand-over redoes nothing, and it exits 0."""
        r = self.run_overlap("overlap")
        self.assertEqual(r["rc"], 0, r["leaver"].tail())
        self.assertEqual(r["sigterm"], 0, r)
        self.assertEqual(r["other"], 0, r)
        self.assertLessEqual(r["sigkill"], r["bound"], r)

    def test_sigterm_that_cannot_wait_for_the_group_exits_4(self):
        """A 30 s session timeout (a static-membership value) and a leaver with
        worker.shutdown_timeout_ms = 3 s: the group settles long after the leaver must go. The
        leaver took no new records once its commits stalled, so its hand-over redoes at most
        what it held then plus what finished while the stall was being noticed; it logs the
        offsets it could not commit as an error, counts the failure and exits 4."""
        r = self.run_overlap("overlap-late",
                             every_extra={"kafka.consumer.session.timeout.ms": "30000"},
                             leaver_extra={"worker.shutdown_timeout_ms": "3000"},
                             leaver_fails=True)
        leaver = r["leaver"]
        self.assertEqual(r["rc"], 4, leaver.tail())
        self.assertEqual(r["failures"], 1)
        self.assertEqual(r["other"], 0, r)
        self.assertLessEqual(r["sigkill"], r["bound"], r)
        # What the error names is what the next owners redid.
        errors = [x for x in leaver.records() if x.get("level") == "error"]
        self.assertEqual(len(errors), 1, errors)
        gaps = {int(p): (c, int(d)) for p, c, d in re.findall(
            r"partition (\d+) committed (\d+|none), done to (\d+)", errors[0]["msg"])}
        self.assertEqual(set(gaps), r["leaver_parts"], errors[0]["msg"])
        self.assertTrue(all(c != "none" for c, _ in gaps.values()), errors[0]["msg"])
        self.assertEqual(r["sigterm"], sum(d - int(c) for c, d in gaps.values()), r)
        # The bound. Commits stop landing when the leaver rejoins (its heartbeat learns of the
        # rebalance); it stops taking records when it notices (the stall time: two automatic
        # commit intervals of 200 ms plus 100 ms) or at its SIGTERM, whichever comes first.
        # What it redoes is what it held then plus what finished since its last commit landed:
        # at most one commit interval before the rejoin plus the stall time, 0.7 s.
        held, stop_at = None, None
        for x in leaver.records():
            m = re.search(r"(\d+) request\(s\) taken", x.get("msg", ""))
            at = loadlib.timestamp(json.dumps(x), "ts")
            if m and at >= r["kill_at"] and ("commits are not reaching" in x["msg"] or
                                             x["msg"].startswith("stopping")):
                held, stop_at = int(m.group(1)), at
                break
        self.assertIsNotNone(held, leaver.tail())
        recent = sum(1 for recs in self.by_key.values()
                     for out in [json.loads(recs[0]["value"])]
                     if out["source"]["partition"] in r["leaver_parts"]
                     and stop_at - 0.7 <= loadlib.timestamp(recs[0]["value"], "completedAt")
                     <= stop_at)
        print("kafka handover overlap-late: held=%d finished_in_0.7s=%d sigterm=%d" % (
            held, recent, r["sigterm"]), flush=True)
        self.assertLessEqual(r["sigterm"], held + recent, r)

def metric(worker, name):
    """The value of an unlabelled metric of worker's /metrics."""
    status, body = worker.http_get("/metrics")
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no %s in /metrics (status %d)" % (name, status))


if __name__ == "__main__":
    unittest.main(verbosity=2)
