"""Consumer-group scenarios against a real Kafka broker: load, SIGKILL, rolling restart, SIGTERM.

One broker (scripts/kafka-local) for the file; each scenario has its own topics, consumer group
and API simulator, runs the real classiclink-worker binaries and reads outcomes with
isolation.level=read_committed. Each prints one summary line:
  kafka scenario NAME: requests=N outcomes=N duplicates=N lost=0 wrong=0 time=Ns ...
"""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import loadlib  # noqa: E402
from loadlib import BrokerCase  # noqa: E402

PARTITIONS = 12
MAX_IN_FLIGHT = 256  # the default worker.max_in_flight


class GroupScenarios(BrokerCase, unittest.TestCase):

    def stop_all(self, workers):
        for w in workers:
            if w.proc.poll() is None:
                rc = w.stop()
                self.assertEqual(rc, 0, "%s exit status\n%s" % (w.label, w.tail()))

    def test_a_three_workers_10000_requests(self):
        """Three workers, 12 partitions, 10 000 requests of mixed kinds: every request gets
        exactly its right outcome, the simulator's state matches, commits reach the end."""
        total = 10000
        self.setup_scenario("group3", total)
        workers = [self.start_worker("w%d" % i) for i in range(3)]
        have = loadlib.wait_owned(workers, [None, None, None], PARTITIONS)
        members = self.kafka.describe_members(self.group)
        self.assertEqual(len(members), 3, members)
        self.assertEqual(sorted(p for ps in members.values() for p in ps),
                         list(range(PARTITIONS)), members)
        self.t0 = time.monotonic()
        self.feeder(0, total).produce_now(total)
        counts = self.finish(extra="owned=%s" % have, max_duplicates=0)
        self.assertEqual(counts["requests"], total)
        self.stop_all(workers)

    def test_b_sigkill_twice(self):
        """SIGKILL one worker mid-stream, then a second one: nothing lost, the survivor takes
        over every partition, duplicate outcomes counted: at most the contract's bound per kill
        (worker.max_in_flight + 0.25 s of throughput)."""
        self.setup_scenario("kill2", 30000)
        workers = [self.start_worker("w%d" % i) for i in range(3)]
        loadlib.wait_owned(workers, [None, None, None], PARTITIONS)
        feeder = self.feeder(rate=400, total=30000).start()
        bound = 0
        notes = []
        for victim in workers[:2]:
            feeder.burst(2000, 300)  # a backlog, so the kill lands mid-stream
            held = loadlib.owned(victim)
            kill_at = time.time()
            victim.kill()
            # Every worker's last quarter second: a conservative measure of the victim's.
            bound += loadlib.redo_bound(self.bootstrap, self.results, kill_at, MAX_IN_FLIGHT)[0]
            seen = len(loadlib.read_outcomes(self.bootstrap, self.results))
            notes.append("%s(held %d, outcomes %d of %d)" % (victim.label, held, seen,
                                                             feeder.produced))
            survivors = [w for w in workers if w.proc.poll() is None]
            # The broker notices the dead member after session.timeout.ms (6 s).
            loadlib.wait_owned(survivors, [None] * len(survivors), PARTITIONS, timeout_s=60)
        self.assertEqual(loadlib.owned(workers[2]), PARTITIONS)
        produced = feeder.stop()
        counts = self.finish(extra="produced=%d killed=%s dup_bound=%d" % (
            produced, ",".join(notes), bound), max_duplicates=bound)
        self.assertEqual(counts["requests"], produced)
        members = self.kafka.describe_members(self.group)
        self.assertEqual(list(members.values()), [list(range(PARTITIONS))], members)
        self.stop_all(workers[2:])

    def test_c_graceful_rebalance_under_load(self):
        """A member joins mid-stream, then another leaves by SIGTERM, both while a backlog is
        being worked: every revocation drains the revoked partitions and commits synchronously
        before the new owner starts, so no request runs twice (under valgrind a drain may
        outlast its limit: see handover_duplicate_bound)."""
        # An API answering in a second keeps calls in flight at every revocation.
        self.setup_scenario("rebalance", 30000, sim_latency=(1000, 4))
        workers = [self.start_worker("w%d" % i) for i in range(2)]
        loadlib.wait_owned(workers, [None, None], PARTITIONS)
        feeder = self.feeder(rate=400, total=30000).start()
        feeder.burst(3000, 300)

        def revokes(w):
            return sum(1 for r in w.records() if r.get("msg", "").startswith("revoking "))

        before = [revokes(w) for w in workers]
        workers.append(self.start_worker("w2"))
        loadlib.wait_owned(workers, [None, None, None], PARTITIONS)
        after = [revokes(w) for w in workers[:2]]
        self.assertNotEqual(after, before, "the join revoked nothing")
        done = len(loadlib.read_outcomes(self.bootstrap, self.results))
        self.assertLess(done, feeder.produced, "the backlog was done before the join")
        feeder.burst(3000, 300)
        rc = workers[0].stop()
        done = len(loadlib.read_outcomes(self.bootstrap, self.results))
        self.assertLess(done, feeder.produced, "the backlog was done before the SIGTERM")
        self.assertEqual(rc, 0, workers[0].tail())
        loadlib.wait_owned(workers[1:], [None, None], PARTITIONS)
        produced = feeder.stop()
        bound = self.handover_duplicate_bound(workers)
        counts = self.finish(extra="produced=%d unfinished=%s" % (
            produced, loadlib.unfinished(workers)), max_duplicates=bound)
        self.assertEqual(counts["requests"], produced)
        self.stop_all(workers[1:])

    def test_d_rolling_restart_static_membership(self):
        """Rolling restart of three workers with group.instance.id: no partition moves to
        another member, nothing is lost."""
        self.setup_scenario("rolling", 30000)

        def static(i):
            return {"kafka.consumer.group.instance.id": "worker-%d" % i,
                    "kafka.consumer.session.timeout.ms": "30000"}

        workers = [self.start_worker("worker-%d" % i, static(i)) for i in range(3)]
        loadlib.wait_owned(workers, [None, None, None], PARTITIONS)
        before = self.kafka.describe_members(self.group)
        self.assertEqual(sorted(before), ["worker-0", "worker-1", "worker-2"], before)
        originals = list(workers)
        marks = [len(w.records()) for w in workers]
        feeder = self.feeder(rate=400, total=30000).start()
        restarted = []
        for i in range(3):
            feeder.burst(1000, 200)
            old = workers[i]
            rc = old.stop()
            self.assertEqual(rc, 0, "%s exit status\n%s" % (old.label, old.tail()))
            new = self.start_worker("worker-%d-restarted" % i, static(i))
            line = new.wait_assigned(60)
            restarted.append(new)
            workers[i] = new
            self.assertIn("assigned %d partition(s)" % len(before["worker-%d" % i]), line)
        after = self.kafka.describe_members(self.group)
        produced = feeder.stop()
        # Every stop drained and committed and no partition moved: nothing ran twice.
        bound = self.handover_duplicate_bound(originals + restarted)
        counts = self.finish(extra="produced=%d assignment=%s" % (
            produced, {k: v for k, v in sorted(after.items())}), max_duplicates=bound)
        self.assertEqual(counts["requests"], produced)
        self.assertEqual(after, before, "assignment changed by the rolling restart")
        # No member saw a rebalance: the original processes logged nothing between the
        # snapshot and their own shutdown but the revoke of their own close, and each
        # restarted process got its partitions back in one assignment and kept them.
        for i, w in enumerate(originals):
            msgs = [m for m in (r.get("msg", "") for r in w.records()[marks[i]:])
                    if m.startswith(("assigned ", "revoking "))]
            self.assertEqual(len(msgs), 1, "%s after the snapshot: %s" % (w.label, msgs))
            self.assertTrue(msgs[0].startswith("revoking %d partition(s)" % len(before[w.label])),
                            "%s after the snapshot: %s" % (w.label, msgs))
            self.assertEqual(loadlib.listed_partitions(msgs[0]), set(before[w.label]), msgs)
        for w in restarted:
            msgs = [m for m in (r.get("msg", "") for r in w.records())
                    if m.startswith(("assigned ", "revoking "))]
            self.assertEqual(len(msgs), 1, "%s: %s" % (w.label, msgs))
        self.stop_all(workers)

    # worker.max_in_flight=4 leaves a backlog of taken but unsent records below outcomes that
    # are already published (invalid requests, calls that finished first): the drain must
    # finish those too, or the next owner would run the published ones again.
    def test_e_sigterm_drains_then_restart_redoes_nothing(self):
        """SIGTERM during load: the worker drains, commits and exits 0; everything it published
        is committed, so restarting (and a second SIGTERM with a peer taking over) redoes
        nothing that already had an outcome."""
        # A backlog must be left at the SIGTERM: the first worker serves one request per call,
        # four at a time, from an API answering in 20-24 ms (about 180/s, less than the feed).
        self.setup_scenario("drain", 30000, sim_latency=(20, 4))
        first = self.start_worker("w0", {"worker.max_in_flight": "4",
                                         "api.coalesce.max_instances": "1"})
        loadlib.wait_owned([first], [PARTITIONS], PARTITIONS)
        feeder = self.feeder(rate=400, total=30000).start()
        feeder.burst(3000, 300)
        produced_at_stop = feeder.produced
        rc = first.stop()
        self.assertEqual(rc, 0, first.tail())
        # With the only member gone, the group's commits are final: every outcome published
        # so far lies below the committed offset, and every offset below it has an outcome.
        committed = loadlib.kafkalib.committed(self.bootstrap, self.group, self.requests)
        records = loadlib.read_outcomes(self.bootstrap, self.results)
        done = {}
        for rec in records:
            src = json.loads(rec["value"])["source"]
            done.setdefault(src["partition"], set()).add(src["offset"])
        for p in range(PARTITIONS):
            offsets = done.get(p, set())
            c = committed[p] if committed[p] >= 0 else 0
            self.assertEqual(offsets, set(range(c)),
                             "partition %d: committed %d, outcomes for %d offsets (max %s)" % (
                                 p, c, len(offsets), max(offsets) if offsets else None))
        at_stop = len(records)
        self.assertLess(at_stop, produced_at_stop, "SIGTERM came after the backlog was done")

        again = self.start_worker("w0-restarted")
        peer = self.start_worker("w1")
        loadlib.wait_owned([again, peer], [None, None], PARTITIONS)
        feeder.burst(2000, 300)
        rc = peer.stop()
        self.assertEqual(rc, 0, peer.tail())
        loadlib.wait_owned([again], [PARTITIONS], PARTITIONS)
        produced = feeder.stop()
        counts = self.finish(extra="produced=%d first_sigterm_at=%d/%d" % (
            produced, at_stop, produced_at_stop), max_duplicates=0)
        self.assertEqual(counts["requests"], produced)
        self.stop_all([again])


if __name__ == "__main__":
    unittest.main(verbosity=2)
