"""Coalesced against alone, over time: a request joining a throttled call late, a member leaving
a call in flight, and an API outage and its end (the circuit breaker). Each test is one way a
shared call, or the pauses around it, used to give a request an outcome or a delay its lone call
would not have given (contract sections 5 and 8); the numbered comments name the case of the
review that found it. The answers' side is tests/integration/test_coalescing_lone.py."""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lonelib  # noqa: E402
import worklib  # noqa: E402
from lonelib import record  # noqa: E402
from test_coalescing_lone import seed  # noqa: E402

REGION = lonelib.REGION


class Budgets(unittest.TestCase):
    # 4. A request that joined a throttled call inherited that call's retry budget: always
    # throttled, retry.max_elapsed_ms=3000, r2 arriving 2.5 s after r1 ended after one attempt
    # and about 0.5 s. The budget belongs to the request: r2 gets its own 3 s either way.
    def run_late_joiner(self, settings):
        with worklib.Stack(seed=seed(2), partitions=1) as st:
            st.sim.add_faults({"scripts": [{"fault": "code:4400", "times": 1000000}]})
            st.worker(dict(settings, **{"retry.max_elapsed_ms": "3000"}))
            st.send([record("r1", "vpc-0", ["ins-0"])])
            # r1 is being throttled when r2 arrives (scenario timing, not synchronisation).
            time.sleep(2.5)
            st.send([record("r2", "vpc-0", ["ins-1"])])
            got = {json.loads(r["value"])["requestId"]: json.loads(r["value"])
                   for r in st.outcome_records(2, timeout_s=30)}
        return got

    def test_a_request_joining_a_throttled_call_keeps_its_own_budget(self):
        coalesced, alone = lonelib.side_by_side(lambda: self.run_late_joiner(lonelib.COALESCED),
                                                lambda: self.run_late_joiner(lonelib.ALONE))
        lonelib.assert_same(self, coalesced, alone)
        for got in (coalesced, alone):
            r2 = got["r2"]
            self.assertEqual(r2["errorClass"], "retries_exhausted", r2)
            spent = iso_ms(r2["completedAt"]) - iso_ms(r2["receivedAt"])
            # Its own budget: nearly 3 s from its first attempt, not what r1 had left.
            self.assertGreaterEqual(spent, 2500, r2)
            self.assertGreater(r2["attempts"], 1, r2)


def iso_ms(stamp):
    """Milliseconds since the epoch of an outcome's RFC 3339 UTC stamp."""
    import calendar
    base, frac = stamp.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) * 1000 + int(frac)


class Departures(unittest.TestCase):
    # 5. A member left a call whose attempt was in flight (its partition was revoked and the
    # drain timed out): the verdict was then read over the members left, so another request's
    # error was taken as theirs. A verdict is read against what was sent.
    #
    # Two calls of two requests each, every call with one good and one unknown instance on
    # different partitions; a second worker joins while the calls are in flight (15 s API
    # latency: the mock cluster's rebalance takes a few seconds) and the first worker's revoke
    # drain gives up after 300 ms. Whichever partition
    # moves, in one of the calls the unknown instance's request leaves and the good one stays.
    RECORDS = [
        record("x-good", "vpc-0", ["ins-0"], partition=0),
        record("x-bad", "vpc-0", ["ins-nx0"], partition=1),
        record("y-good", "vpc-1", ["ins-1"], partition=1),
        record("y-bad", "vpc-1", ["ins-nx1"], partition=0),
    ]

    def run_departure(self, settings, v3):
        conf = dict(settings, **{"worker.shutdown_timeout_ms": "300", "api.timeout_ms": "30000"})
        if v3:
            conf["api.version"] = "3"
        with worklib.Stack(seed=seed(2), partitions=2) as st:
            # The request redone by the new owner may find its instance linked by the first
            # owner's attempt: a same-VPC attach succeeds, as the lone and shared runs differ
            # in which request moves.
            st.sim.config({"sameVpcAttach": "success"})
            st.sim.add_faults({"latencyMs": 15000})
            endpoint = st.sim.endpoint_v3 if v3 else st.sim.endpoint
            a = worklib.Worker(st.bootstrap, endpoint, conf)
            st.workers.append(a)
            a.wait_assigned()
            st.send(self.RECORDS)
            a.wait_count("request taken", 4)
            deadline = time.monotonic() + 30
            while st.sim.stats()["calls"] < (2 if "api.coalesce.linger_ms" in conf else 4):
                self.assertLess(time.monotonic(), deadline, "the calls never left")
                time.sleep(0.05)  # polling another process's state
            b = worklib.Worker(st.bootstrap, endpoint, conf)
            st.workers.append(b)
            a.wait_msg("unfinished", timeout_s=30)  # a request left a call in flight
            seen = st.wait_outcomes_for([json.loads(r["value"])["requestId"]
                                         for r in self.RECORDS], timeout_s=60)
        return {rid: outs[0] for rid, outs in seen.items()}, seen

    def departure(self, v3):
        (coalesced, c_all), (alone, a_all) = lonelib.side_by_side(
            lambda: self.run_departure(lonelib.COALESCED, v3),
            lambda: self.run_departure(lonelib.ALONE, v3))
        lonelib.assert_same(self, coalesced, alone)
        for got in (coalesced, alone):
            for rid in ("x-good", "y-good"):
                self.assertEqual(got[rid]["status"], "succeeded", got[rid])
            for rid in ("x-bad", "y-bad"):
                self.assertEqual(got[rid]["status"], "failed", got[rid])
        for seen in (c_all, a_all):
            self.assertEqual({rid: len(o) for rid, o in seen.items()},
                             {r: 1 for r in seen}, "one outcome each")

    def test_a_member_leaving_a_call_in_flight_lends_nobody_its_error(self):
        self.departure(v3=False)

    def test_a_member_leaving_a_call_in_flight_lends_nobody_its_error_api_3(self):
        self.departure(v3=True)


def vpcs_seed(n):
    """vpc-0..vpc-(n-1), each with one instance ins-<i>."""
    return {"vpcs": [{"vpcId": "vpc-%d" % i, "region": REGION} for i in range(n)],
            "instances": [{"instanceId": "ins-%d" % i, "region": REGION} for i in range(n)]}


def one_per_vpc(n, first=0):
    return [record("r%d" % i, "vpc-%d" % i, ["ins-%d" % i]) for i in range(first, first + n)]


def line_index(worker, fragment):
    """Index of the first log line containing fragment, or None."""
    with worker._cond:
        lines = list(worker.lines)
    for i, line in enumerate(lines):
        if fragment in line:
            return i
    return None


class Outages(unittest.TestCase):
    # 10. After an outage the open circuit probed every retry.max_backoff_ms (30 s): /readyz
    # stayed 503 for 10 s after the API was back. Probes now start at retry.initial_backoff_ms
    # and grow, so an outage of up to a minute is noticed within about 5 s of its end.
    def test_the_worker_is_ready_soon_after_the_api_returns(self):
        with worklib.Stack(seed=vpcs_seed(40), partitions=1) as st:
            st.sim.add_faults({"scripts": [{"fault": "http:503", "times": 10000000}]})
            w = st.worker({"retry.initial_backoff_ms": None, "retry.max_backoff_ms": None,
                           "retry.max_elapsed_ms": "0"})
            st.send(one_per_vpc(40))
            w.wait_msg("circuit open", timeout_s=30)
            outage_end = time.monotonic() + 20  # a 20 s outage (scenario timing)
            time.sleep(max(0.0, outage_end - time.monotonic()))
            st.sim.add_faults({"clear": True, "scripts": []})
            back = time.monotonic()
            while True:
                status, body = w.http_get("/readyz")
                if status == 200:
                    break
                self.assertLess(time.monotonic() - back, 5.0,
                                "not ready 5 s after the API returned: %s" % body)
                time.sleep(0.1)  # polling another process's state
            got = st.outcome_records(40, timeout_s=30)
            self.assertTrue(all(json.loads(r["value"])["status"] == "succeeded" for r in got))

    # 11. A success from a call sent before the outage closed the circuit (open, closed 2 ms
    # later, open again). Only a probe's answer closes it.
    def test_only_a_probe_closes_the_circuit(self):
        with worklib.Stack(seed=vpcs_seed(41), partitions=1) as st:
            w = st.worker()
            # r40 is answered (successfully) 3 s after it arrives; everything after it fails.
            st.sim.add_faults({"latencyMs": 3000})
            st.send(one_per_vpc(1, first=40))
            deadline = time.monotonic() + 30
            while st.sim.stats()["calls"] < 1:
                self.assertLess(time.monotonic(), deadline, "r40 never reached the simulator")
                time.sleep(0.05)  # polling another process's state
            st.sim.add_faults({"latencyMs": 0,
                               "scripts": [{"fault": "http:503", "times": 10000000}]})
            st.send(one_per_vpc(40))
            w.wait_msg("circuit open", timeout_s=30)
            r40 = json.loads(st.outcome_records(1, timeout_s=30)[0]["value"])
            self.assertEqual((r40["requestId"], r40["status"]), ("r40", "succeeded"))
            # r40's success came while the circuit was open: it stays open until a probe.
            opened = line_index(w, "circuit open")
            closed = line_index(w, "circuit closed")
            self.assertIsNone(closed, "closed by r40's success:\n%s" % w.tail(20))
            cleared = len(w.lines)
            st.sim.add_faults({"clear": True, "scripts": []})
            w.wait_msg("circuit closed", timeout_s=30)
            self.assertGreater(line_index(w, "circuit closed"), max(opened, cleared - 1))
            got = st.outcome_records(41, timeout_s=30)
            self.assertTrue(all(json.loads(r["value"])["status"] == "succeeded" for r in got))


if __name__ == "__main__":
    unittest.main(verbosity=2)
