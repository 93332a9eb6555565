"""Coalescing (contract section 8): requests for one VPC share API calls, and every request still
gets exactly the outcome its lone call would have given.

Each scenario sends a batch in one produce; api.coalesce.linger_ms=300 lets the batch gather in
the pool (it arrives over a few consumer polls), so that the calls are formed as the scenario
needs whatever the machine's speed. The simulator's stats and call log count the calls."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import worklib  # noqa: E402
from worklib import request  # noqa: E402

REGION = "ap-guangzhou"
GATHER = {"api.coalesce.linger_ms": "300"}


def seed(n, linked=(), other_linked=()):
    """vpc-0 and vpc-1 with ins-0..ins-(n-1); `linked` start linked to vpc-0, `other_linked` to
    vpc-1."""
    instances = []
    for i in range(n):
        ins = {"instanceId": "ins-%d" % i, "region": REGION}
        if i in linked:
            ins["linkedVpc"] = "vpc-0"
        if i in other_linked:
            ins["linkedVpc"] = "vpc-1"
        instances.append(ins)
    return {"vpcs": [{"vpcId": "vpc-0", "region": REGION}, {"vpcId": "vpc-1", "region": REGION}],
            "instances": instances}


def batch(ids, vpc="vpc-0", action=None, prefix="c"):
    """One record per instance-id list, keyed and identified c<i>, all on partition 0."""
    out = []
    for i, ins in enumerate(ids):
        extra = {"action": action} if action else {}
        out.append({"key": "%s%d" % (prefix, i), "partition": 0,
                    "value": request(vpc, ins if isinstance(ins, list) else [ins],
                                     request_id="%s%d" % (prefix, i), region=REGION, **extra)})
    return out


def outcomes(st, n):
    got = {}
    for r in st.outcome_records(n, timeout_s=90):
        o = json.loads(r["value"])
        got[o["requestId"]] = o
    return got


def calls(st, action):
    return st.sim.stats()["byAction"].get(action, 0)


class Splitting(unittest.TestCase):
    """Business errors about one instance split the call until each request has its own
    answer."""

    def one_bad_among_50(self, v3):
        with worklib.Stack(seed=seed(60), partitions=1) as st:
            settings = dict(GATHER)
            if v3:
                settings["api.version"] = "3"
                w = worklib.Worker(st.bootstrap, st.sim.endpoint_v3, settings)
                st.workers.append(w)
                w.wait_assigned()
            else:
                st.worker(settings)
            ids = ["ins-%d" % i for i in range(50)]
            ids[17] = "ins-nx17"  # not in the simulator's world
            st.send(batch(ids))
            got = outcomes(st, 50)
            bad = got.pop("c17")
            self.assertEqual(bad["status"], "failed")
            self.assertEqual(bad["errorClass"], "api_error")
            self.assertEqual(bad["codeDesc"], "ResourceNotFound" if v3 else
                             "InvalidInstance.NotFound")
            self.assertIn("ins-nx17", bad["message"])
            self.assertEqual(bad["coalesced"], 1)  # decided by its own, lone call
            self.assertEqual(bad["attempts"], 2)   # the shared call, then its own
            for rid, o in got.items():
                with self.subTest(rid=rid):
                    self.assertEqual(o["status"], "succeeded", o)
                    self.assertEqual(o["code"], 0)
                    self.assertEqual(o["coalesced"], 49)
                    self.assertEqual(o["attempts"], 2)
            # The error named the instance: one shared call, then the bad request alone and
            # the 49 others together.
            self.assertEqual(calls(st, "AttachClassicLinkVpc"), 3)
            linked = [i["instanceId"] for i in st.sim.state()["instances"]
                      if i.get("linkedVpc") == "vpc-0"]
            self.assertEqual(sorted(linked), sorted(ids[:17] + ids[18:]))

    def test_one_unknown_instance_among_50_requests(self):
        self.one_bad_among_50(v3=False)

    def test_one_unknown_instance_among_50_requests_api_3(self):
        self.one_bad_among_50(v3=True)

    def test_a_conflict_is_reconciled_once_and_decided_by_what_it_names(self):
        # ins-7 is linked to another VPC: InstanceAlreadyLinked naming ins-7 for the whole call.
        # One listing shows ins-7 not linked here: the answer is ins-7's own, so its request
        # fails with it (as its lone call would, after its own listing); nobody else is named,
        # so the other 19 are sent again and succeed.
        with worklib.Stack(seed=seed(20, other_linked=(7,)), partitions=1) as st:
            st.worker(GATHER)
            st.send(batch(["ins-%d" % i for i in range(20)]))
            got = outcomes(st, 20)
            bad = got.pop("c7")
            self.assertEqual(bad["status"], "failed")
            self.assertEqual(bad["codeDesc"], "InstanceAlreadyLinked")
            self.assertIn("ins-7", bad["message"])
            self.assertNotIn("reconciled", bad)
            self.assertEqual(bad["coalesced"], 20)
            self.assertEqual(bad["attempts"], 1)
            for o in got.values():
                self.assertEqual(o["status"], "succeeded", o)
                self.assertNotIn("reconciled", o)
                self.assertEqual(o["coalesced"], 19)
            self.assertEqual(st.sim.linked("ins-7"), "vpc-1")
            self.assertEqual(calls(st, "DescribeVpcClassicLink"), 1)
            self.assertEqual(calls(st, "AttachClassicLinkVpc"), 2)

    def test_a_scripted_business_error_splits_by_halves_when_nothing_is_named(self):
        # InstanceLimitExceeded names no instance: the call is halved until the request that
        # triggers it is alone.
        with worklib.Stack(seed=seed(16), partitions=1) as st:
            st.sim.add_faults({"scripts": [{"instanceId": "ins-11", "times": 100,
                                            "fault": "business:InstanceLimitExceeded"}]})
            st.worker(GATHER)
            st.send(batch(["ins-%d" % i for i in range(16)]))
            got = outcomes(st, 16)
            bad = got.pop("c11")
            self.assertEqual(bad["codeDesc"], "InstanceLimitExceeded")
            self.assertEqual(bad["errorClass"], "api_error")
            self.assertEqual(bad["coalesced"], 1)
            self.assertEqual(bad["attempts"], 5)  # 16, 8, 4, 2, 1
            self.assertTrue(all(o["status"] == "succeeded" for o in got.values()), got)
            # 16 -> 8 + 8 -> (8) + 4 + 4 -> ... : 1 + 2 + 2 + 2 + 2 calls
            self.assertEqual(calls(st, "AttachClassicLinkVpc"), 9)

    def test_a_batch_of_bad_requests_is_not_peeled_one_round_at_a_time(self):
        # 40 requests, every instance unknown: each answer names one of them. Peeling the
        # named one off would carry the last request through 40 calls one after the other;
        # once named errors are dense (one per 10 members) the rest is halved as well.
        n = 40
        with worklib.Stack(seed=seed(1), partitions=1) as st:
            st.worker(GATHER)
            st.send(batch(["ins-nx%d" % i for i in range(n)]))
            got = outcomes(st, n)
            for rid, o in got.items():
                with self.subTest(rid=rid):
                    self.assertEqual(o["status"], "failed", o)
                    self.assertEqual(o["codeDesc"], "InvalidInstance.NotFound")
                    self.assertIn("ins-nx%s" % rid[1:], o["message"])
                    self.assertEqual(o["coalesced"], 1)  # its lone call's outcome
            most = max(o["attempts"] for o in got.values())
            made = calls(st, "AttachClassicLinkVpc")
            print("%d bad requests: %d calls, at most %d per request" % (n, made, most))
            self.assertLessEqual(most, 16)
            # Every request needs its lone call; the splits add at most as many again.
            self.assertLessEqual(made, 2 * n)


class FanOut(unittest.TestCase):
    def test_an_unknown_vpc_fails_the_whole_batch_in_one_call(self):
        with worklib.Stack(seed=seed(20), partitions=1) as st:
            st.worker(GATHER)
            st.send(batch(["ins-%d" % i for i in range(20)], vpc="vpc-nowhere"))
            got = outcomes(st, 20)
            for o in got.values():
                self.assertEqual(o["status"], "failed")
                self.assertEqual(o["codeDesc"], "InvalidVpc.NotFound")
                self.assertEqual(o["coalesced"], 20)
                self.assertEqual(o["attempts"], 1)
            self.assertEqual(calls(st, "AttachClassicLinkVpc"), 1)

    def test_detach_batch_shares_one_call(self):
        with worklib.Stack(seed=seed(10, linked=range(10)), partitions=1) as st:
            st.worker(GATHER)
            st.send(batch(["ins-%d" % i for i in range(10)], action="DetachClassicLinkVpc"))
            got = outcomes(st, 10)
            self.assertTrue(all(o["status"] == "succeeded" and o["coalesced"] == 10
                                for o in got.values()), got)
            self.assertEqual(calls(st, "DetachClassicLinkVpc"), 1)
            self.assertTrue(all(i.get("linkedVpc") is None for i in st.sim.state()["instances"]))

    def test_calls_hold_at_most_max_instances(self):
        # 30 requests, every third with two instances: 40 instance ids, at most 10 a call, and a
        # request is never split across calls.
        ids = [["ins-%d" % (2 * i), "ins-%d" % (2 * i + 1)] if i % 3 == 0 else ["ins-%d" % (2 * i)]
               for i in range(30)]
        with worklib.Stack(seed=seed(60), partitions=1) as st:
            st.worker(dict(GATHER, **{"api.coalesce.max_instances": "10"}))
            st.send(batch(ids))
            got = outcomes(st, 30)
            self.assertTrue(all(o["status"] == "succeeded" for o in got.values()))
            made = calls(st, "AttachClassicLinkVpc")
            self.assertGreaterEqual(made, 4)
            log = st.sim.read_call_log()
            sizes = [sum(1 for k in c.get("params", {}) if k.startswith("instanceIds."))
                     for c in log if c.get("action") == "AttachClassicLinkVpc"]
            self.assertEqual(len(sizes), made)
            self.assertLessEqual(max(sizes), 10)
            self.assertEqual(sum(sizes), 40)


class FollowUps(unittest.TestCase):
    def test_an_ambiguous_batch_is_reconciled_with_one_listing(self):
        # The shared call is applied, then its answer lost (503); the retry hears
        # InstanceAlreadyLinked; one listing shows every instance linked: all 30 succeed.
        with worklib.Stack(seed=seed(30), partitions=1) as st:
            st.sim.add_faults({"scripts": [{"instanceId": "ins-0", "fault": "http:503",
                                            "apply": True, "times": 1}]})
            st.worker(dict(GATHER, **{"retry.initial_backoff_ms": "20"}))
            st.send(batch(["ins-%d" % i for i in range(30)]))
            got = outcomes(st, 30)
            for o in got.values():
                self.assertEqual(o["status"], "succeeded", o)
                self.assertIs(o.get("reconciled"), True, o)
                self.assertEqual(o["codeDesc"], "InstanceAlreadyLinked")
                self.assertEqual(o["coalesced"], 30)
                self.assertEqual(o["attempts"], 2)
            self.assertEqual(calls(st, "DescribeVpcClassicLink"), 1)
            self.assertEqual(calls(st, "AttachClassicLinkVpc"), 2)

    def test_an_exhausted_ambiguous_batch_is_reconciled_with_one_listing(self):
        with worklib.Stack(seed=seed(25), partitions=1) as st:
            st.sim.add_faults({"scripts": [
                {"instanceId": "ins-3", "fault": "http:502", "apply": True, "times": 1},
                {"instanceId": "ins-3", "fault": "http:502", "times": 1000}]})
            st.worker(dict(GATHER, **{"retry.initial_backoff_ms": "50",
                                      "retry.max_backoff_ms": "100",
                                      "retry.max_elapsed_ms": "600"}))
            st.send(batch(["ins-%d" % i for i in range(25)]))
            got = outcomes(st, 25)
            for o in got.values():
                self.assertEqual(o["status"], "succeeded", o)
                self.assertIs(o.get("reconciled"), True, o)
                self.assertEqual(o["codeDesc"], "Transport.HttpStatus")
            self.assertEqual(calls(st, "DescribeVpcClassicLink"), 1)

    def test_a_shared_task_is_polled_once_for_all(self):
        with worklib.Stack(seed=seed(20), partitions=1,
                           sim_args=["--task-delay-ms", "300"]) as st:
            st.worker(dict(GATHER, **{"task.follow": "true", "retry.initial_backoff_ms": "50",
                                      "retry.max_backoff_ms": "200"}))
            st.send(batch(["ins-%d" % i for i in range(20)]))
            got = outcomes(st, 20)
            tasks = {o["taskId"] for o in got.values()}
            self.assertEqual(len(tasks), 1, tasks)
            self.assertTrue(all(o["taskStatus"] == "succeeded" for o in got.values()), got)
            polls = calls(st, "DescribeVpcTaskResult")
            # Polls of one task, not of twenty: about 300 ms of polling at 50-200 ms backoff.
            self.assertGreaterEqual(polls, 1)
            self.assertLessEqual(polls, 8)


class Order(unittest.TestCase):
    def test_requests_sharing_an_instance_never_share_a_call(self):
        # attach ins-1, attach ins-2, detach ins-1, attach ins-3: the detach waits for the first
        # attach's outcome, the attaches of ins-2 and ins-3 may join the first call.
        with worklib.Stack(seed=seed(5), partitions=1) as st:
            st.worker(GATHER)
            st.send([
                {"key": "a1", "partition": 0,
                 "value": request("vpc-0", ["ins-1"], request_id="a1", region=REGION)},
                {"key": "a2", "partition": 0,
                 "value": request("vpc-0", ["ins-2"], request_id="a2", region=REGION)},
                {"key": "d1", "partition": 0,
                 "value": request("vpc-0", ["ins-1"], request_id="d1", region=REGION,
                                  action="DetachClassicLinkVpc")},
                {"key": "a3", "partition": 0,
                 "value": request("vpc-0", ["ins-3"], request_id="a3", region=REGION)}])
            got = outcomes(st, 4)
            self.assertTrue(all(o["status"] == "succeeded" for o in got.values()), got)
            self.assertEqual(got["a1"]["coalesced"], 3)
            self.assertLessEqual(got["a1"]["completedAt"], got["d1"]["completedAt"])
            self.assertIsNone(st.sim.linked("ins-1"))
            self.assertEqual(st.sim.linked("ins-3"), "vpc-0")
            for c in st.sim.read_call_log():
                ids = [v for k, v in c.get("params", {}).items() if k.startswith("instanceIds.")]
                self.assertEqual(len(ids), len(set(ids)), c)


if __name__ == "__main__":
    unittest.main(verbosity=2)
