"""Coalesced against alone: every scenario runs twice on fresh stacks, once with requests sharing
calls (api.coalesce.linger_ms=300) and once with each request in its own call
(api.coalesce.max_instances=1), and every request's outcome must agree (status, errorClass, code,
codeDesc, taskId presence, reconciled, taskStatus), on API 2 and 3 where the scenario exists in
both. Each test is one way a shared call used to give a request an outcome its lone call would
not have given (contract section 8); the numbered comments name the case of the review that
found it. Scenarios over time (budgets, departures, outages): test_coalescing_lone_flow.py."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lonelib  # noqa: E402
import worklib  # noqa: E402
from lonelib import record  # noqa: E402

REGION = lonelib.REGION


def seed(n, vpcs=("vpc-0", "vpc-1"), linked=None):
    """vpcs with ins-0..ins-(n-1); linked: {instance index: vpc id}."""
    linked = linked or {}
    instances = []
    for i in range(n):
        ins = {"instanceId": "ins-%d" % i, "region": REGION}
        if i in linked:
            ins["linkedVpc"] = linked[i]
        instances.append(ins)
    return {"vpcs": [{"vpcId": v, "region": REGION} for v in vpcs], "instances": instances}


def batch(n, vpc="vpc-0", action=None, prefix="r", first=0):
    return [record("%s%d" % (prefix, i), vpc, ["ins-%d" % i], action=action)
            for i in range(first, first + n)]


def calls(run, action):
    return len(run.calls_for(action))


class Both(unittest.TestCase):
    def both(self, records, seed_doc, settings=None, **kw):
        coalesced, alone = lonelib.run_both(records, seed_doc, settings, **kw)
        return coalesced, alone


class ResourceLocks(Both):
    # 1. A lasting lock on one instance of a 10-request call stopped the whole worker: the
    # circuit opened on the call's own failures, its probe was that call, and paused time never
    # spent its budget. Alone: nine succeed at once, the locked one ends retries_exhausted.
    def lasting_lock(self, v3):
        fault = "code:5100:ResourceInUse" if v3 else "code:5100:ActionLocked"
        coalesced, alone = self.both(
            batch(10), seed(10), {"retry.max_elapsed_ms": "8000"}, v3=v3,
            faults={"scripts": [{"instanceId": "ins-4", "fault": fault, "times": 100000}]})
        lonelib.assert_same(self, coalesced, alone)
        got = coalesced.outcomes
        self.assertEqual(got["r4"]["errorClass"], "retries_exhausted", got["r4"])
        self.assertEqual(got["r4"]["codeDesc"], "ResourceInUse" if v3 else "ActionLocked")
        for rid, o in got.items():
            if rid != "r4":
                self.assertEqual(o["status"], "succeeded", o)
        # The lock is not an outage: no circuit, and the other nine were not held back.
        self.assertNotIn("circuit open", coalesced.worker_tail)
        self.assertEqual(coalesced.stats["instances"]["attached"].get("ins-0"), 1)

    def test_a_lasting_lock_on_one_instance_holds_only_its_request(self):
        self.lasting_lock(v3=False)

    def test_a_lasting_lock_on_one_instance_holds_only_its_request_api_3(self):
        self.lasting_lock(v3=True)


class Tasks(Both):
    # 2. A failed task failed every member of the call; alone only the culprit's fails. A failed
    # task changed nothing, so the members run again in smaller calls.
    def test_a_failed_shared_task_fails_only_the_request_whose_lone_task_fails(self):
        coalesced, alone = self.both(
            batch(5), seed(5), {"task.follow": "true"}, sim_args=["--task-delay-ms", "50"],
            faults={"scripts": [{"instanceId": "ins-2", "fault": "task_fail", "times": 100000}]})
        lonelib.assert_same(self, coalesced, alone)
        got = coalesced.outcomes
        self.assertEqual((got["r2"]["status"], got["r2"]["errorClass"], got["r2"]["taskStatus"]),
                         ("failed", "task_failed", "failed"))
        for rid in ("r0", "r1", "r3", "r4"):
            self.assertEqual(got[rid]["taskStatus"], "succeeded", got[rid])
        linked = {i["instanceId"]: i["linkedVpc"] for i in coalesced.state["instances"]}
        self.assertEqual(linked, {"ins-0": "vpc-0", "ins-1": "vpc-0", "ins-2": None,
                                  "ins-3": "vpc-0", "ins-4": "vpc-0"})


class UnknownVpc(Both):
    # 3. A v3 Detach from a VPC that does not exist failed coalesced (ResourceNotFound) and
    # succeeded "reconciled" alone; a lone v2 Detach failed InvalidVpc.NotFound. All four agree
    # now: the VPC does not exist.
    def detach_from_nowhere(self, v3):
        coalesced, alone = self.both(batch(4, vpc="vpc-nowhere", action="DetachClassicLinkVpc"),
                                     seed(4), v3=v3)
        lonelib.assert_same(self, coalesced, alone)
        for o in list(coalesced.outcomes.values()) + list(alone.outcomes.values()):
            self.assertEqual((o["status"], o["errorClass"]), ("failed", "api_error"), o)
            self.assertEqual(o["codeDesc"], "ResourceNotFound" if v3 else "InvalidVpc.NotFound")
            self.assertNotIn("reconciled", o)
        self.assertEqual(calls(alone, "DescribeClassicLinkInstances"), 0)
        self.assertEqual(calls(alone, "DescribeVpcClassicLink"), 0)

    def test_a_detach_from_an_unknown_vpc_fails(self):
        self.detach_from_nowhere(v3=False)

    def test_a_detach_from_an_unknown_vpc_fails_api_3(self):
        self.detach_from_nowhere(v3=True)


class Reconciliation(Both):
    # 6. "reconciled" was inherited by split parts: after a group reconciliation, a later
    # ambiguous attempt was reconciled one request at a time (20 listings). One listing per
    # "already" answer of the group now.
    def test_a_group_reconciled_once_reconciles_a_later_ambiguous_attempt_as_a_group(self):
        # ins-0 starts linked to vpc-0: the first shared call hears "ins-0 already linked" (a
        # member whose state holds). The second, without ins-0, is applied and its answer lost
        # (503); the retry hears "already linked" for everyone.
        faults = {"scripts": [
            {"instanceId": "ins-0", "fault": "business:InstanceAlreadyLinked", "times": 1},
            {"instanceId": "ins-1", "fault": "http:503", "apply": True, "times": 2}]}
        coalesced, alone = self.both(batch(20), seed(20, linked={0: "vpc-0"}), faults=faults)
        # Alone, only ins-1's own call was hit by the lost answer; shared, the call carrying
        # everyone was: the others are reconciled too (their attempt's effect was unknown).
        collateral = {"r%d" % i: (("reconciled", "codeDesc", "code", "taskId"),
                                  "shared the call whose answer was lost")
                      for i in range(2, 20)}
        lonelib.assert_same(self, coalesced, alone, exempt=collateral)
        self.assertTrue(all(o["status"] == "succeeded" for o in coalesced.outcomes.values()))
        self.assertTrue(all(o.get("reconciled") for o in coalesced.outcomes.values()))
        self.assertEqual(calls(coalesced, "DescribeVpcClassicLink"), 2)
        self.assertEqual(calls(coalesced, "AttachClassicLinkVpc"), 3)

    # 7. Members decided by a group reconciliation carried another request's answer
    # (InstanceAlreadyLinked naming someone else's instance, no taskId) where alone the API
    # answered Success with a task (sameVpcAttach=success).
    def decided_by_their_own_answer(self, v3):
        coalesced, alone = self.both(
            batch(10), seed(10, linked={3: "vpc-1", 5: "vpc-0"}), v3=v3,
            sim_config={"sameVpcAttach": "success"})
        lonelib.assert_same(self, coalesced, alone)
        got = coalesced.outcomes
        self.assertEqual(got["r3"]["status"], "failed")
        self.assertIn("ins-3", got["r3"]["message"])
        self.assertEqual(got["r5"]["status"], "succeeded")
        self.assertNotIn("reconciled", got["r5"])
        if not v3:
            self.assertIsNotNone(got["r5"]["taskId"])
        for rid, o in got.items():
            if rid != "r3":
                self.assertNotIn("ins-3", o.get("message") or "", o)

    def test_members_are_decided_by_an_answer_about_them(self):
        self.decided_by_their_own_answer(v3=False)

    def test_members_are_decided_by_an_answer_about_them_api_3(self):
        self.decided_by_their_own_answer(v3=True)


class CallWideErrors(Both):
    # 8. Errors about the whole call that name no member halved down to single requests (8
    # requests, 15 calls, attempts 4 each). An error every member's lone call would also get
    # fans out: at once when it names the VPC, after one member's lone call confirmed it when
    # it names nothing.
    def scripted_everywhere(self, fault, v3, want_desc):
        coalesced, alone = self.both(
            batch(8), seed(8), v3=v3,
            faults={"scripts": [{"fault": fault, "times": 100000}]})
        lonelib.assert_same(self, coalesced, alone)
        for o in coalesced.outcomes.values():
            self.assertEqual((o["status"], o["codeDesc"]), ("failed", want_desc), o)
            self.assertLessEqual(o["attempts"], 2, o)
        self.assertLessEqual(calls(coalesced, "AttachClassicLinkVpc"), 2)

    def test_an_invalid_parameter_about_the_call_fans_out(self):
        self.scripted_everywhere("code:4000", False, "InvalidParameter")

    def test_an_invalid_parameter_about_the_call_fans_out_api_3(self):
        self.scripted_everywhere("code:4000", True, "InvalidParameter")

    def test_a_vpc_wide_unsupported_operation_fans_out_api_3(self):
        self.scripted_everywhere("code:4000:UnsupportedOperation.CIDRUnSupportedClassicLink", True,
                                 "UnsupportedOperation.CIDRUnSupportedClassicLink")

    def test_a_malformed_legacy_vpc_id_fails_every_member_in_one_call_api_3(self):
        coalesced, alone = self.both(batch(8, vpc="gz_vpc_245"), seed(8), v3=True)
        lonelib.assert_same(self, coalesced, alone)
        for o in coalesced.outcomes.values():
            self.assertEqual(o["codeDesc"], "InvalidParameterValue.Malformed", o)
            self.assertEqual(o["coalesced"], 8, o)
        self.assertEqual(calls(coalesced, "AttachClassicLinkVpc"), 1)


class CallLength(Both):
    # 9. Nothing documents how many ids one call may carry: a call the API rejects for its
    # length is split, never failed.
    def too_long(self, v3):
        coalesced, alone = self.both(batch(12), seed(12), {"api.coalesce.max_instances": "12"},
                                     v3=v3, sim_args=["--max-instances", "5"])
        lonelib.assert_same(self, coalesced, alone)
        self.assertTrue(all(o["status"] == "succeeded" for o in coalesced.outcomes.values()),
                        coalesced.outcomes)
        sizes = [len(lonelib.call_instances(c)) for c in coalesced.calls_for("AttachClassicLinkVpc")]
        self.assertEqual(max(sizes), 12)  # the first call carried everyone and was refused

    def test_a_call_refused_for_its_length_is_split(self):
        self.too_long(v3=False)

    def test_a_call_refused_for_its_length_is_split_api_3(self):
        self.too_long(v3=True)

    def test_a_call_limit_above_the_known_safe_size_is_warned_about(self):
        with worklib.Stack(seed=seed(1), partitions=1) as st:
            w = st.worker({"api.coalesce.max_instances": "200"})
            line = w.wait_msg("api.coalesce.max_instances")
            self.assertIn("100", line)


if __name__ == "__main__":
    unittest.main(verbosity=2)
