"""What a SIGKILL redoes (contract section 5, commit cadence), against a real Kafka broker.

One worker with worker.max_in_flight=16 and otherwise the product's defaults consumes a steady
~300 requests/s; it is SIGKILLed twice, and each time a new process takes its place. After a
kill, whatever was done but not yet committed is done again. The contract bounds that by
max_in_flight + 0.25 s of throughput; per kill the test counts

- duplicates: requests with a second outcome (at least once; exactly-once readers see none),
- redone: requests whose Attach reached the API a second time (both modes),

and prints them next to the bound. Throughput: the outcomes that became final in the 0.25 s
before the kill (loadlib.redo_bound). A third scenario shows that revocation and SIGTERM commit
synchronously, without the automatic commit's help.
  kafka crash NAME kill K: throughput=../s bound=.. duplicates=.. redone=..
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
RATE = 300
MAX_IN_FLIGHT = 16
KILLS = 2


class CrashRedo(BrokerCase, unittest.TestCase):

    def settle(self, feeder, seconds):
        """Waits until the worker keeps up with the feeder (every request produced more than a
        second ago has an outcome), then `seconds` more of steady load."""
        loadlib.wait_count(self.bootstrap, self.results, max(0, feeder.produced - RATE),
                           timeout_s=120)
        if seconds:
            time.sleep(seconds)  # steady load for the throughput measurement: time is the point

    def redone(self):
        """Requests whose successful Attach reached the API more than once (no faults are
        injected, and such requests are never split, so a second call is a redo)."""
        calls = self.sim.stats()["instances"]["calls"]
        ok = [ins for ins, vpc in self.ledger.links().items() if vpc == loadlib.VPC_OK]
        return sum(1 for ins in ok if calls.get(ins, 0) > 1)

    def run_kills(self, name, extra, lag_s=0.0):
        self.setup_scenario(name, 60000)
        settings = dict({"worker.max_in_flight": str(MAX_IN_FLIGHT)}, **extra)
        worker = self.start_worker("w0", settings)
        loadlib.wait_owned([worker], [PARTITIONS], PARTITIONS)
        feeder = loadlib.SteadyFeeder(self.bootstrap, self.requests, self.mix, self.ledger,
                                      RATE).start()
        rows = []
        duplicates_before = 0
        redone_before = 0
        for k in range(1, KILLS + 1):
            self.settle(feeder, 3)
            kill_at = time.time()
            worker.kill()
            bound, recent = loadlib.redo_bound(self.bootstrap, self.results, kill_at,
                                               MAX_IN_FLIGHT, lag_s)
            throughput = recent / 0.25
            worker = self.start_worker("w%d" % k, settings)
            loadlib.wait_owned([worker], [PARTITIONS], PARTITIONS, timeout_s=90)
            # Recovered: every request produced before the kill has its outcome again.
            self.settle(feeder, 0)
            counts, _, _ = self.ledger.tally(loadlib.read_outcomes(self.bootstrap, self.results))
            redone = self.redone()
            row = {"kill": k, "throughput": throughput, "bound": bound,
                   "duplicates": counts["duplicates"] - duplicates_before,
                   "redone": redone - redone_before}
            duplicates_before, redone_before = counts["duplicates"], redone
            print("kafka crash %s kill %d: throughput=%.0f/s bound=%.0f duplicates=%d "
                  "redone=%d" % (name, k, throughput, bound, row["duplicates"], row["redone"]),
                  flush=True)
            rows.append(row)
        feeder.stop()
        self.finish(extra="kills=%d" % KILLS)
        self.assertEqual(worker.stop(), 0, worker.tail())
        return rows

    def test_at_least_once_redoes_a_quarter_second(self):
        rows = self.run_kills("crash-alo", {})
        for row in rows:
            # Throughput must be steady for the bound to mean anything.
            self.assertGreater(row["throughput"], RATE / 2, row)
            self.assertLessEqual(row["duplicates"], row["bound"], row)
            self.assertLessEqual(row["redone"], row["bound"], row)
        # At ~300 outcomes/s with commits every 100 ms, a crash redoes some work.
        self.assertGreater(sum(r["redone"] for r in rows), 0, rows)

    def test_exactly_once_redoes_a_quarter_second(self):
        rows = self.run_kills("crash-eos", {
            "delivery.mode": "exactly_once",
            "kafka.producer.transactional.id": "crash-eos-0",
            "kafka.producer.transaction.timeout.ms": "10000"}, lag_s=0.5)
        for row in rows:
            # The outcomes of the transaction open at the kill were never visible: throughput
            # is measured half a second earlier (a steady stream).
            self.assertGreater(row["throughput"], RATE / 2, row)
            self.assertEqual(row["duplicates"], 0, row)
            self.assertLessEqual(row["redone"], row["bound"], row)

    def test_revocation_and_sigterm_commit_synchronously(self):
        """With the automatic commit out of the way (an interval of 10 minutes), only the
        worker's own commits can commit: partitions handed to a new member arrive committed to
        their end, the rebalance commits what the old member kept (its assign callback commits
        under the new generation), and after SIGTERM every partition is; nothing is redone."""
        self.setup_scenario("sync-commit", 4000)
        # SIGTERM waits up to worker.shutdown_timeout_ms for an automatic commit that does not
        # come here, then leaves the group, whose own commit commits when the group is stable.
        slow = {"kafka.consumer.auto.commit.interval.ms": "600000",
                "worker.shutdown_timeout_ms": "3000"}
        a = self.start_worker("a", slow)
        loadlib.wait_owned([a], [PARTITIONS], PARTITIONS)
        feeder = self.feeder(rate=0, total=4000)
        feeder.produce_now(2000)
        loadlib.wait_count(self.bootstrap, self.results, 2000)
        b = self.start_worker("b", slow)
        loadlib.wait_owned([a, b], [None, None], PARTITIONS)
        line = [m for m in loadlib.log_lines(b, "assigned ")][-1]
        moved = [int(x) for x in line.split(": ", 1)[1].split(",")]
        parts = {p["partition"]: p for p in
                 loadlib.kafkalib.partition_offsets(self.bootstrap, self.group, self.requests)}
        for p in moved:
            self.assertEqual(parts[p]["committed"], parts[p]["high"],
                             "partition %d handed over uncommitted: %s" % (p, parts[p]))
        for p in range(PARTITIONS):
            self.assertEqual(parts[p]["committed"], parts[p]["high"],
                             "partition %d not committed by the rebalance: %s" % (p, parts[p]))
        feeder.produce_now(2000)
        loadlib.wait_count(self.bootstrap, self.results, 4000)
        # The control: no timer committed the second batch before the SIGTERMs.
        parts = loadlib.kafkalib.partition_offsets(self.bootstrap, self.group, self.requests)
        self.assertTrue(any(p["committed"] < p["high"] for p in parts), parts)
        self.assertEqual(a.stop(), 0, a.tail())
        self.assertEqual(b.stop(), 0, b.tail())
        for p in loadlib.kafkalib.partition_offsets(self.bootstrap, self.group, self.requests):
            self.assertEqual(p["committed"], p["high"], p)
        counts = self.finish(extra="moved=%s" % moved, max_duplicates=0)
        self.assertEqual(counts["requests"], 4000)

    def test_a_kill_during_coalesced_calls_loses_nothing(self):
        """3 000 requests for one VPC, 100 to a call, answers held 300 ms, SIGKILL while
        shared calls are in flight: a new process redoes what was not committed; the Attach
        repeated for instances already linked ("already linked", the simulator's default) is
        reconciled once per group, and every request ends succeeded, none lost."""
        total = 3000
        self.setup_scenario("kill-coalesced", total)
        self.sim.stop()
        self.sim = loadlib.simlib.Sim().start(
            seed={"generate": {"vpcs": 1, "instances": total, "region": loadlib.REGION}},
            credentials=[(loadlib.worklib.SECRET_ID, loadlib.worklib.SECRET_KEY)],
            extra_args=["--latency-ms", "300", "--threads", "2"], call_log=False)
        self.addCleanup(self.sim.stop)
        w = self.start_worker("w0", {"worker.max_in_flight": "4"})
        loadlib.wait_owned([w], [PARTITIONS], PARTITIONS)
        records = []
        for i in range(total):
            rid = "kc-%05d" % i
            records.append({"key": rid, "partition": i % PARTITIONS,
                            "value": json.dumps({"requestId": rid, "region": loadlib.REGION,
                                                 "vpcId": "vpc-0",
                                                 "instanceIds": ["ins-%d" % i]})})
            self.ledger.add(rid, {"requestId": rid, "status": "succeeded", "errorClass": None,
                                  "codeDesc": None, "action": "AttachClassicLinkVpc",
                                  "vpcId": "vpc-0", "links": {"ins-%d" % i: "vpc-0"}})
        loadlib.kafkalib.produce(self.bootstrap, self.requests, records, timeout_s=120)
        loadlib.wait_count(self.bootstrap, self.results, 500)
        self.assertEqual(w.kill(), -9)
        before = loadlib.read_outcomes(self.bootstrap, self.results)
        shared = max(json.loads(r["value"])["coalesced"] for r in before)
        w = self.start_worker("w1", {"worker.max_in_flight": "4"})
        recs = loadlib.wait_outcomes(self.bootstrap, self.results, self.ledger, timeout_s=180)
        values = [json.loads(r["value"]) for r in recs]
        self.assertEqual(len({o["requestId"] for o in values}), total)
        self.assertEqual([o["requestId"] for o in values if o["status"] != "succeeded"][:5], [])
        reconciled = sum(1 for o in values if o.get("reconciled"))
        describes = self.sim.stats()["byAction"].get("DescribeVpcClassicLink", 0)
        loadlib.summary("kill-coalesced", {"requests": total, "outcomes": len(values),
                                           "duplicates": len(values) - total, "lost": 0,
                                           "wrong": 0},
                        time.monotonic() - self.t0,
                        "before_kill=%d coalesced_max=%d reconciled=%d describes=%d" % (
                            len(before), shared, reconciled, describes))
        self.assertGreater(shared, 1)
        self.assertEqual(self.ledger.check_sim_state(self.sim)[:5], [])
        # Reconciliation read the links once per redone group, not once per request.
        if reconciled:
            self.assertLess(describes, reconciled)
        self.assertEqual(w.stop(), 0, w.tail())


if __name__ == "__main__":
    unittest.main(verbosity=2)
