"""Coalescing, property style (contract section 8, issue 19): generated mixes of requests run
coalesced and alone, and every request's outcome must be the same (propmix.py says what a mix
holds and what the lone outcome of each fault is).

Two worker runs per mode: 100 mixes with API 2, 100 with API 3.0. The seed is printed; set
CLW_PROPERTY_SEED to replay a run (CLW_PROPERTY_MIXES changes the mixes per batch). A failing
mix is printed with a command that replays it alone; scripts/coalesce-property runs 10 000."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lonelib  # noqa: E402
import propmix  # noqa: E402

SEED = os.environ.get("CLW_PROPERTY_SEED") or str(propmix.random.SystemRandom().randrange(10**9))
MIXES = int(os.environ.get("CLW_PROPERTY_MIXES") or 100)


class Comparison(unittest.TestCase):
    """The comparison itself, on made-up outcomes: what differs, what is exempt."""

    OK = {"requestId": "r1", "status": "succeeded", "errorClass": None, "code": 0,
          "codeDesc": "Success", "taskId": 7, "attempts": 1}

    def test_view_reads_presence_and_absence(self):
        self.assertEqual(lonelib.view(self.OK), {
            "status": "succeeded", "errorClass": None, "code": 0, "codeDesc": "Success",
            "taskId": True, "reconciled": False, "taskStatus": None})

    def test_attempts_do_not_count_fields_do(self):
        other = dict(self.OK, attempts=3, coalesced=4)
        self.assertEqual(lonelib.diff({"r1": self.OK}, {"r1": other}), {})
        other = dict(other, taskId=None, reconciled=True)
        self.assertEqual(lonelib.diff({"r1": self.OK}, {"r1": other}),
                         {"r1": [("taskId", True, False), ("reconciled", False, True)]})

    def test_a_missing_outcome_differs_and_an_exemption_names_its_fields(self):
        self.assertIn("r1", lonelib.diff({"r1": self.OK}, {}))
        other = dict(self.OK, reconciled=True, status="failed")
        exempt = {"r1": (("reconciled",), "a reason")}
        self.assertEqual(lonelib.diff({"r1": self.OK}, {"r1": other}, exempt=exempt),
                         {"r1": [("status", "succeeded", "failed")]})

    def test_collateral_members_of_an_apply_call_are_found_by_time(self):
        # m0r0 and m0r1 share ins-m0i1 and ran one after the other; the apply call at t=5
        # carried m0r1's and m0r2's instances (m0r0 had finished).
        requests = {"m0r0": ("m0", propmix.ATTACH, "vpc-m0a", frozenset(["ins-m0i1"])),
                    "m0r1": ("m0", propmix.ATTACH, "vpc-m0a",
                             frozenset(["ins-m0i1", "ins-m0i2"])),
                    "m0r2": ("m0", propmix.ATTACH, "vpc-m0a", frozenset(["ins-m0i3"])),
                    "m0r3": ("m0", propmix.ATTACH, "vpc-m0a", frozenset(["ins-m0i4"]))}
        run = lonelib.Run("coalesced", {})
        run.outcomes = {"m0r0": {"completedAt": "t3"}, "m0r1": {"completedAt": "t7"},
                        "m0r2": {"completedAt": "t7"}, "m0r3": {"completedAt": "t7"}}
        run.calls = [{"ts": "t5", "version": 2, "action": propmix.ATTACH, "fault": "apply+drop",
                      "params": {"vpcId": "vpc-m0a", "instanceIds.0": "ins-m0i1",
                                 "instanceIds.1": "ins-m0i2", "instanceIds.2": "ins-m0i3"}}]
        self.assertEqual(sorted(propmix.collateral(run, requests)), ["m0r1", "m0r2"])
        run.calls[0]["params"] = {"vpcId": "vpc-m0a", "instanceIds.0": "ins-m0i3"}
        self.assertEqual(propmix.collateral(run, requests), {})  # its own call: strict


class Mixes(unittest.TestCase):
    def run_batch(self, index):
        print("coalesce property: CLW_PROPERTY_SEED=%s batch %d, %d mixes" % (SEED, index, MIXES))
        # A worker that stops giving outcomes is cut off after 80 s per run.
        config, mixes, failures, info = propmix.run_batch(SEED, index, MIXES, sys.stdout,
                                                          timeout_s=80)
        if failures:
            self.fail("%d of %d mixes differ between coalesced and alone (CLW_PROPERTY_SEED=%s "
                      "batch %d; every failing mix is printed above with its replay command)"
                      % (len(failures), len(mixes), SEED, index))

    def test_api_2(self):
        self.run_batch(0)

    def test_api_3(self):
        self.run_batch(1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
