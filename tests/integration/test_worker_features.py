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


def by_id(records):
    return {json.loads(r["value"])["requestId"]: json.loads(r["value"]) for r in records}


class Reconcile(unittest.TestCase):
    """An attempt whose effect is unknown, then "already linked" / "not found": the worker reads
    DescribeVpcClassicLink and reports success when the requested state holds — no false
    failure, no double apply."""

    def test_ambiguous_failures_reconcile_to_success(self):
        seed = {"vpcs": [{"vpcId": "vpc-main1", "legacyId": "gz_vpc_7", "region": REGION},
                         {"vpcId": "vpc-else1", "region": REGION}],
                "instances": [{"instanceId": "ins-r%d" % i, "region": REGION}
                              for i in range(1, 6)]
                + [{"instanceId": "ins-d1", "region": REGION, "linkedVpc": "vpc-main1"},
                   {"instanceId": "ins-d2", "region": REGION},
                   {"instanceId": "ins-x1", "region": REGION, "linkedVpc": "vpc-else1"}]}
        with worklib.Stack(seed=seed, partitions=2) as st:
            st.sim.add_faults({"scripts": [
                # applied, then the answer is lost: the retry hears InstanceAlreadyLinked
                {"instanceId": "ins-r1", "fault": "http:503", "apply": True, "times": 1},
                {"instanceId": "ins-r2", "fault": "drop", "apply": True, "times": 1},
                # applied, then transient failures until the budget runs out
                {"instanceId": "ins-r3", "fault": "http:502", "apply": True, "times": 1},
                {"instanceId": "ins-r3", "fault": "http:502", "times": 1000},
                # transient failures that never applied: exhausted, and the links say so
                {"instanceId": "ins-r4", "fault": "http:502", "times": 1000},
                # detach applied, answer lost: the retry hears InvalidInstance.NotFound
                {"instanceId": "ins-d1", "fault": "http:500", "apply": True, "times": 1}]})
            # Few enough retries that the two failing instances do not open the circuit.
            # Faults are scripted per instance: each request has its own call.
            st.worker(dict(worklib.ALONE, **{"retry.max_elapsed_ms": "1000",
                                             "retry.initial_backoff_ms": "300",
                                             "retry.max_backoff_ms": "600"}))
            st.send([
                {"key": "r1", "value": request("vpc-main1", ["ins-r1"], request_id="r1",
                                               region=REGION)},
                {"key": "r2", "value": request("vpc-main1", ["ins-r2"], request_id="r2",
                                               region=REGION)},
                {"key": "r3", "value": request("vpc-main1", ["ins-r3"], request_id="r3",
                                               region=REGION)},
                {"key": "r4", "value": request("vpc-main1", ["ins-r4"], request_id="r4",
                                               region=REGION)},
                {"key": "legacy", "value": request("gz_vpc_7", ["ins-r5"], request_id="legacy",
                                                   region=REGION)},
                {"key": "d1", "value": request("vpc-main1", ["ins-d1"], request_id="d1",
                                               action="DetachClassicLinkVpc", region=REGION)},
                {"key": "d2", "value": request("vpc-main1", ["ins-d2"], request_id="d2",
                                               action="DetachClassicLinkVpc", region=REGION)},
                {"key": "x1", "value": request("vpc-main1", ["ins-x1"], request_id="x1",
                                               region=REGION)},
            ])
            got = by_id(st.outcome_records(8, timeout_s=60))
            for rid in ("r1", "r2", "r3", "d1", "d2"):
                with self.subTest(rid=rid):
                    self.assertEqual(got[rid]["status"], "succeeded", got[rid])
                    self.assertIs(got[rid].get("reconciled"), True, got[rid])
                    self.assertIsNone(got[rid]["errorClass"])
            self.assertEqual(got["r1"]["codeDesc"], "InstanceAlreadyLinked")  # the last answer
            self.assertEqual(got["d1"]["codeDesc"], "InvalidInstance.NotFound")
            # Not linked anywhere after only failures: the exhausted outcome stands.
            self.assertEqual(got["r4"]["errorClass"], "retries_exhausted")
            self.assertNotIn("reconciled", got["r4"])
            # Linked to another VPC: a real conflict, reported as such.
            self.assertEqual(got["x1"]["errorClass"], "api_error")
            self.assertEqual(got["x1"]["codeDesc"], "InstanceAlreadyLinked")
            # A plain success needs no reconciling.
            self.assertEqual(got["legacy"]["status"], "succeeded")
            self.assertNotIn("reconciled", got["legacy"])
            stats = st.sim.stats()
            for ins in ("ins-r1", "ins-r2", "ins-r3", "ins-r5"):
                self.assertEqual(stats["instances"]["attached"].get(ins), 1, ins)  # applied once
            self.assertEqual(st.sim.linked("ins-r1"), "vpc-main1")
            self.assertIsNone(st.sim.linked("ins-d1"))
            self.assertIsNone(st.sim.linked("ins-r4"))
            self.assertGreaterEqual(stats["byAction"].get("DescribeVpcClassicLink", 0), 6)
            st.wait_committed_to_end()


class FollowTask(unittest.TestCase):
    def test_task_outcomes(self):
        with worklib.Stack(partitions=2, sim_args=GEN + ["--task-delay-ms", "300"]) as st:
            st.sim.add_faults({"scripts": [{"instanceId": "ins-2", "fault": "task_fail",
                                            "times": 1}]})
            # A task failure scripted for one instance: each request has its own call, task.
            st.worker(dict(worklib.ALONE, **{"task.follow": "true",
                                             "retry.initial_backoff_ms": "50",
                                             "retry.max_backoff_ms": "200"}))
            st.send([{"key": "t%d" % i, "value": request("vpc-0", ["ins-%d" % i],
                                                          request_id="t%d" % i, region=REGION)}
                     for i in (1, 2)])
            got = by_id(st.outcome_records(2))
            self.assertEqual(got["t1"]["status"], "succeeded")
            self.assertEqual(got["t1"]["taskStatus"], "succeeded")
            self.assertIsInstance(got["t1"]["taskId"], int)
            self.assertEqual(got["t2"]["status"], "failed")
            self.assertEqual(got["t2"]["taskStatus"], "failed")
            self.assertEqual(got["t2"]["errorClass"], "task_failed")
            self.assertGreaterEqual(st.sim.stats()["byAction"]["DescribeVpcTaskResult"], 2)
            # The offsets committed only after the final outcomes.
            st.wait_committed_to_end()

    def test_task_that_outlives_the_wait_times_out_without_blocking_others(self):
        with worklib.Stack(partitions=1, sim_args=GEN + ["--task-delay-ms", "60000"]) as st:
            st.worker({"task.follow": "true", "task.max_wait_ms": "1500",
                       "retry.initial_backoff_ms": "50", "retry.max_backoff_ms": "200"})
            st.send([{"key": "slow", "value": request("vpc-0", ["ins-5"], request_id="slow",
                                                       region=REGION)}])
            st.send([{"key": "fast%d" % i, "value": request("vpc-1", ["ins-%d" % (10 + i)],
                                                             request_id="fast%d" % i,
                                                             region=REGION)}
                     for i in range(3)])
            records = st.outcome_records(4)
            got = by_id(records)
            self.assertEqual(got["slow"]["taskStatus"], "timeout")
            self.assertEqual(got["slow"]["status"], "succeeded")
            # Polling one task did not hold back the others (they are tasks too, also timing
            # out; what matters is that all were followed at the same time).
            self.assertLess(max(o["completedAt"] for o in got.values()),
                            "9999")  # all present
            first = min(o["receivedAt"] for o in got.values())
            self.assertTrue(all(o["completedAt"] > first for o in got.values()))


class RateLimit(unittest.TestCase):
    """Under an API quota the worker settles under it without a retry storm, whether
    api.rate_limit is set or not (then the first throttling answer starts the limiter); the
    circuit never opens for throttling answers."""

    N = 240
    QUOTA = 20

    def run_load(self, settings):
        with worklib.Stack(partitions=2, sim_args=["--gen-vpcs", "1", "--gen-instances",
                                                   str(self.N), "--quota", str(self.QUOTA)]) as st:
            w = st.worker(dict({"retry.initial_backoff_ms": "100", "retry.max_backoff_ms": "1000",
                                "retry.max_elapsed_ms": "0"}, **settings))
            st.send([{"key": "q%d" % i, "value": request("vpc-0", ["ins-%d" % i],
                                                          request_id="q%d" % i, region=REGION)}
                     for i in range(self.N)])
            got = by_id(st.outcome_records(self.N, timeout_s=120))
            self.assertTrue(all(o["status"] == "succeeded" for o in got.values()))
            self.assertEqual([l for l in w.lines if "circuit open" in l], [])
            return st.sim.stats()

    def check(self, label, stats, max_throttled):
        calls = stats["byAction"]["AttachClassicLinkVpc"]
        accepted, throttled = stats["acceptedPerSecond"], stats["throttledPerSecond"]
        first = min(i for i, (a, t) in enumerate(zip(accepted, throttled)) if a or t)
        later = sum(throttled[first + 3:])
        print("rate limit %s: %d requests, quota %d/s: %d calls, %d throttled, %d of them after "
              "the first 3 s" % (label, self.N, self.QUOTA, calls, stats["throttled"], later))
        # No retry storm: few calls beyond one per request.
        self.assertLessEqual(stats["throttled"], max_throttled, label)
        # Settled: once the limiter knows the quota, throttling answers are rare.
        self.assertLessEqual(later, self.N // 20, label)
        # The accepted rate never went over the quota in any full second.
        self.assertLessEqual(max(accepted[:-1]), self.QUOTA, label)

    def test_configured_limit_settles_under_the_quota(self):
        self.check("api.rate_limit=60", self.run_load({"api.rate_limit": "60"}), self.N // 4)

    def test_unconfigured_worker_starts_its_limiter(self):
        # The first burst (every request at once: the in-flight cap is 256) meets the quota
        # unannounced; after that the limiter holds the worker under it.
        self.check("api.rate_limit=0", self.run_load({}), self.N - self.QUOTA + self.N // 4)


class ApiV3(unittest.TestCase):
    """api.version=3: TC3-HMAC-SHA256, JSON bodies, v3 error codes mapped to the same classes."""

    def test_v3_outcomes(self):
        seed = {"vpcs": [{"vpcId": "vpc-v3main", "region": REGION},
                         {"vpcId": "vpc-v3else", "region": REGION}],
                "instances": [{"instanceId": "ins-v%d" % i, "region": REGION} for i in range(6)]
                + [{"instanceId": "ins-vx", "region": REGION, "linkedVpc": "vpc-v3else"}]}
        with worklib.Stack(seed=seed, partitions=2) as st:
            st.sim.add_faults({"scripts": [
                {"instanceId": "ins-v2", "fault": "code:4400", "times": 1},   # RequestLimitExceeded
                {"instanceId": "ins-v3", "fault": "http:503", "apply": True, "times": 1}]})
            w = worklib.Worker(st.bootstrap, st.sim.endpoint_v3,
                               dict(worklib.ALONE, **{"api.version": "3",
                                                      "retry.initial_backoff_ms": "20"}))
            st.workers.append(w)
            w.wait_assigned()
            st.send([
                {"key": "ok", "value": request("vpc-v3main", ["ins-v0", "ins-v1"],
                                               request_id="ok", region=REGION), "partition": 0},
                {"key": "limit", "value": request("vpc-v3main", ["ins-v2"], request_id="limit",
                                                  region=REGION)},
                {"key": "applied", "value": request("vpc-v3main", ["ins-v3"],
                                                    request_id="applied", region=REGION)},
                {"key": "novpc", "value": request("vpc-nowhere", ["ins-v4"],
                                                  request_id="novpc", region=REGION)},
                {"key": "taken", "value": request("vpc-v3main", ["ins-vx"], request_id="taken",
                                                  region=REGION)},
                {"key": "detach", "value": request("vpc-v3main", ["ins-v0"],
                                                   action="DetachClassicLinkVpc",
                                                   request_id="detach", region=REGION),
                 "partition": 0},
            ])
            got = by_id(st.outcome_records(6))
            self.assertEqual(got["ok"]["status"], "succeeded", got["ok"])
            self.assertEqual(got["ok"]["code"], 0)
            self.assertTrue(got["ok"]["apiRequestId"])  # the v3 RequestId, for support cases
            self.assertEqual(got["limit"]["status"], "succeeded")
            self.assertEqual(got["limit"]["attempts"], 2)   # RequestLimitExceeded is transient
            self.assertEqual(got["applied"]["status"], "succeeded")
            self.assertIs(got["applied"].get("reconciled"), True, got["applied"])
            self.assertEqual(got["novpc"]["errorClass"], "api_error")
            self.assertEqual(got["novpc"]["codeDesc"], "ResourceNotFound")
            self.assertEqual(got["taken"]["errorClass"], "api_error")
            self.assertEqual(got["taken"]["codeDesc"],
                             "UnsupportedOperation.ClassicInstanceIdAlreadyExists")
            self.assertEqual(got["detach"]["status"], "succeeded", got["detach"])
            self.assertNotIn("reconciled", got["detach"])  # it found the link the attach made
            self.assertEqual(st.sim.stats()["byVersion"].get("2", 0), 0)
            self.assertIsNone(st.sim.linked("ins-v0"))  # attached, then detached in order
            self.assertEqual(st.sim.linked("ins-v3"), "vpc-v3main")

    def test_wrong_key_is_a_worker_fault_in_v3_too(self):
        with worklib.Stack(partitions=1, sim_args=GEN) as st:
            w = worklib.Worker(st.bootstrap, st.sim.endpoint_v3,
                               {"api.version": "3", "retry.max_backoff_ms": "200"},
                               secret_key="wrong-key")
            st.workers.append(w)
            w.wait_assigned()
            st.send([{"key": "k", "value": request("vpc-0", ["ins-1"], region=REGION)}])
            w.wait_msg("worker fault: ")
            self.assertEqual(st.all_outcome_records(), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
