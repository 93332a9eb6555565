"""The worker end to end: every business error, every invalid-request kind, transient-then-success
for every transient class, exhausted retries, per-instance order, headers and keys, and the
commit of every offset — one batch through the real binary, a broker process and the simulator.
"""

import base64
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kafkalib  # noqa: E402
import schemalib  # noqa: E402
import worklib  # noqa: E402
from worklib import request  # noqa: E402

REGION = "ap-guangzhou"
VPC = "vpc-main01"
OTHER_VPC = "vpc-other01"
LIMITED_VPC = "vpc-lim01"

# Instances used by valid cases; ins-linked is linked to OTHER_VPC, the limited region allows
# one link and ins-lim1 holds it.
SEED = {
    "regions": {REGION: {"linkLimit": 1000}, "ap-limited": {"linkLimit": 1}},
    "vpcs": [
        {"vpcId": VPC, "legacyId": "gz_vpc_245", "region": REGION},
        {"vpcId": OTHER_VPC, "region": REGION},
        {"vpcId": LIMITED_VPC, "region": "ap-limited"},
    ],
    "instances": (
        [{"instanceId": "ins-%s" % n, "region": REGION} for n in (
            "ok1", "ok2", "ok3", "legacy1", "hdr1", "nokey1", "ord1", "free1", "exh1")]
        + [{"instanceId": "ins-t%d" % i, "region": REGION} for i in range(20)]
        + [{"instanceId": "ins-linked", "region": REGION, "linkedVpc": OTHER_VPC},
           {"instanceId": "ins-lim1", "region": "ap-limited", "linkedVpc": LIMITED_VPC},
           {"instanceId": "ins-lim2", "region": "ap-limited"}]
    ),
}

# Transient classes: the first two calls touching the instance fail this way, then it works.
TRANSIENT = [
    ("code-4400", "code:4400"),
    ("code-5100", "code:5100"),
    ("code-6000", "code:6000"),
    ("code-6200", "code:6200"),
    ("http-500", "http:500"),
    ("http-502", "http:502"),
    ("http-503", "http:503"),
    ("http-429", "http:429"),
    ("http-408", "http:408"),
    ("drop", "drop"),
    ("service-unavailable", "code:4000:ServiceUnavailable"),
    ("action-locked", "code:4000:ActionLocked"),
]
HANG_INSTANCE = "ins-t19"  # first call hangs past api.timeout_ms

BIG = "x" * (64 * 1024)

# (key, value, expected codeDesc) — every invalid reason of the contract, in its order.
INVALID = [
    ("inv-empty", "", "Empty"),
    ("inv-tombstone", None, "Empty"),
    ("inv-toolarge", json.dumps({"vpcId": VPC, "instanceIds": ["ins-inv1"], "pad": BIG}),
     "TooLarge"),
    ("inv-notjson", '{"vpcId": "vpc-1", ', "NotJson"),
    ("inv-badutf8", b'{"vpcId":"vpc-\xc0\xaf","instanceIds":["ins-inv1"]}', "NotJson"),
    ("inv-notobject", '["vpc-1"]', "NotObject"),
    ("inv-duplicate", '{"vpcId":"%s","vpcId":"%s","instanceIds":["ins-inv1"],"region":"%s"}'
     % (VPC, VPC, REGION), "DuplicateField"),
    ("inv-version", request(VPC, ["ins-inv1"], schemaVersion=2, region=REGION),
     "UnsupportedVersion"),
    ("inv-missing", json.dumps({"instanceIds": ["ins-inv1"], "region": REGION}),
     "MissingField"),
    ("inv-wrongtype", json.dumps({"vpcId": 7, "instanceIds": ["ins-inv1"], "region": REGION}),
     "WrongType"),
    ("inv-requestid", request(VPC, ["ins-inv1"], request_id="bad id&x=1", region=REGION),
     "BadRequestId"),
    ("inv-action", request(VPC, ["ins-inv1"], action="DeleteVpc", region=REGION), "BadAction"),
    ("inv-region", request(VPC, ["ins-inv1"], region="ap guangzhou&Action=x"), "BadRegion"),
    ("inv-noregion", request(VPC, ["ins-inv1"]), "MissingRegion"),
    ("inv-vpc", request("vpc-1&SecretId=x", ["ins-inv1"], region=REGION), "BadVpcId"),
    ("inv-instance", request(VPC, ["ins-inv1", "ins-2#"], region=REGION), "BadInstanceId"),
    ("inv-dupinstance", request(VPC, ["ins-inv1", "ins-inv1"], region=REGION),
     "DuplicateInstanceId"),
    ("inv-toomany", request(VPC, ["ins-inv%d" % i for i in range(1, 8)], region=REGION),
     "TooManyInstances"),
]

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def rec(key, value, partition=None, headers=None):
    r = {"key": key, "value": value}
    if isinstance(value, bytes):
        r["value"] = value
    if partition is not None:
        r["partition"] = partition
    if headers:
        r["headers"] = headers
    return r


class WorkerOutcomes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = worklib.Stack(seed=SEED, partitions=4, sim_args=["--hang-ms", "3000"])
        try:
            cls.run_batch()
        except BaseException:
            cls.stack.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    @classmethod
    def run_batch(cls):
        st = cls.stack
        scripts = [{"instanceId": "ins-t%d" % i, "fault": fault, "times": 2}
                   for i, (_, fault) in enumerate(TRANSIENT)]
        scripts.append({"instanceId": HANG_INSTANCE, "fault": "hang", "times": 1})
        scripts.append({"instanceId": "ins-exh1", "fault": "http:503", "times": 100000})
        scripts.append({"instanceId": "ins-ord1", "fault": "http:503", "times": 1})
        st.sim.add_faults({"scripts": scripts})

        records = [
            rec("ok-1", request(VPC, ["ins-ok1"], request_id="ok-1", region=REGION)),
            rec("ok-2", request(VPC, ["ins-ok2", "ins-ok3"], request_id="ok-2", region=REGION)),
            rec("ok-legacy", request("gz_vpc_245", ["ins-legacy1"], request_id="ok-legacy",
                                     region=REGION)),
            rec("biz-vpc", request("vpc-nowhere", ["ins-ok1"], request_id="biz-vpc",
                                   region=REGION)),
            rec("biz-instance", request(VPC, ["ins-missing"], request_id="biz-instance",
                                        region=REGION)),
            rec("biz-linked", request(VPC, ["ins-linked"], request_id="biz-linked",
                                      region=REGION)),
            rec("biz-limit", request(LIMITED_VPC, ["ins-lim2"], request_id="biz-limit",
                                     region="ap-limited")),
            rec("exhaust", request(VPC, ["ins-exh1"], request_id="exhaust", region=REGION)),
            rec("headers", request(VPC, ["ins-hdr1"], request_id="headers", region=REGION),
                headers={"traceparent": TRACEPARENT, "x-request-id": "xr-1",
                         "kafka_correlationId": "corr-9", "not-carried": "nope"}),
            rec(None, request(VPC, ["ins-nokey1"], request_id="no-key", region=REGION)),
            # Order on one instance within partition 0: attach (fails once, retried), then
            # detach; the detach must not run before the attach has its outcome.
            rec("ord-attach", request(VPC, ["ins-ord1"], request_id="ord-attach",
                                      region=REGION), partition=0),
            rec("ord-detach", request(VPC, ["ins-ord1"], request_id="ord-detach",
                                      action="DetachClassicLinkVpc", region=REGION),
                partition=0),
            # A hanging call does not hold back an unrelated request behind it.
            rec("hang", request(VPC, [HANG_INSTANCE], request_id="hang", region=REGION),
                partition=1),
            rec("free", request(VPC, ["ins-free1"], request_id="free", region=REGION),
                partition=1),
        ]
        for i, (name, _) in enumerate(TRANSIENT):
            records.append(rec("tr-" + name, request(VPC, ["ins-t%d" % i],
                                                     request_id="tr-" + name, region=REGION)))
        for key, value, _ in INVALID:
            records.append(rec(key, value))
        cls.sent = records
        # Faults are scripted per instance: each request must have its own call.
        cls.worker = st.worker(dict(worklib.ALONE, **{
            "worker.max_instances_per_request": "5",
            "api.region": "",
            "api.timeout_ms": "1000",
            "retry.initial_backoff_ms": "20",
            "retry.max_backoff_ms": "100",
            "retry.max_elapsed_ms": "2500",
        }))
        st.send(records)
        cls.result_records = st.outcome_records(len(records), timeout_s=90)
        cls.outcomes = {}
        for r in cls.result_records:
            o = json.loads(r["value"])
            cls.outcomes.setdefault(r["key"] if r["key"] is not None else o["requestId"],
                                    []).append((r, o))
        cls.parts = st.wait_committed_to_end()
        cls.stats = st.sim.stats()
        cls.call_log = st.sim.read_call_log()

    def one(self, key):
        got = self.outcomes.get(key)
        self.assertIsNotNone(got, "no outcome for %s" % key)
        self.assertEqual(len(got), 1, "duplicate outcomes for %s" % key)
        return got[0]

    def test_every_request_has_one_outcome_matching_the_schema(self):
        keys = [r["key"] if r["key"] is not None else "no-key" for r in self.sent]
        self.assertEqual(sorted(keys), sorted(self.outcomes))
        for key, items in self.outcomes.items():
            for _, o in items:
                with self.subTest(key=key):
                    schemalib.validate_outcome(o)

    def test_success(self):
        for key, ids in (("ok-1", ["ins-ok1"]), ("ok-2", ["ins-ok2", "ins-ok3"]),
                         ("ok-legacy", ["ins-legacy1"])):
            with self.subTest(key=key):
                r, o = self.one(key)
                self.assertEqual(o["status"], "succeeded")
                self.assertEqual(o["code"], 0)
                self.assertEqual(o["codeDesc"], "Success")
                self.assertIsNone(o["errorClass"])
                self.assertEqual(o["attempts"], 1)
                self.assertIsInstance(o["taskId"], int)
                self.assertEqual(o["instanceIds"], ids)
                self.assertEqual(o["region"], REGION)
                self.assertEqual(o["action"], "AttachClassicLinkVpc")
                self.assertEqual(r["headers"]["clw-status"], "succeeded")
                self.assertNotIn("clw-error-class", r["headers"])
                self.assertEqual(r["headers"]["content-type"], "application/json")
        self.assertEqual(self.stack.sim.linked("ins-ok2"), VPC)
        self.assertEqual(self.stack.sim.linked("ins-legacy1"), VPC)

    def test_business_errors(self):
        for key, desc in (("biz-vpc", "InvalidVpc.NotFound"),
                          ("biz-instance", "InvalidInstance.NotFound"),
                          ("biz-linked", "InstanceAlreadyLinked"),
                          ("biz-limit", "InstanceLimitExceeded")):
            with self.subTest(key=key):
                r, o = self.one(key)
                self.assertEqual(o["status"], "failed")
                self.assertEqual(o["errorClass"], "api_error")
                self.assertEqual(o["codeDesc"], desc)
                self.assertEqual(o["code"], 4000)
                self.assertEqual(o["attempts"], 1)
                self.assertEqual(r["headers"]["clw-error-class"], "api_error")
        self.assertEqual(self.stack.sim.linked("ins-linked"), OTHER_VPC)
        self.assertIsNone(self.stack.sim.linked("ins-lim2"))

    def test_invalid_requests_get_their_reason_and_no_api_call(self):
        for key, _, reason in INVALID:
            with self.subTest(key=key):
                r, o = self.one(key)
                self.assertEqual(o["status"], "failed")
                self.assertEqual(o["errorClass"], "invalid_request")
                self.assertEqual(o["code"], 4000)
                self.assertEqual(o["codeDesc"], "InvalidRequest." + reason)
                self.assertEqual(o["attempts"], 0)
                self.assertEqual(o["source"]["topic"], worklib.REQUESTS)
                self.assertEqual(o["requestId"], "%s:%d:%d" % (
                    worklib.REQUESTS, o["source"]["partition"], o["source"]["offset"]))
        bad = self.one("inv-requestid")[1]
        self.assertEqual(bad["rawRequestId"], "bad id&x=1")
        # No call ever named an instance of an invalid request.
        touched = set(self.stats["instances"]["calls"])
        self.assertFalse([i for i in touched if i.startswith("ins-inv")], touched)
        self.assertFalse([c for c in self.call_log if "SecretId=x" in json.dumps(c)])

    def test_transient_then_success_for_every_class(self):
        for i, (name, fault) in enumerate(TRANSIENT):
            with self.subTest(fault=fault):
                _, o = self.one("tr-" + name)
                self.assertEqual(o["status"], "succeeded", o)
                self.assertEqual(o["attempts"], 3)
                self.assertEqual(self.stats["instances"]["attached"].get("ins-t%d" % i), 1)

    def test_timeout_then_success(self):
        _, o = self.one("hang")
        self.assertEqual(o["status"], "succeeded", o)
        self.assertEqual(o["attempts"], 2)

    def test_unrelated_request_does_not_wait_for_a_hanging_one(self):
        _, hang = self.one("hang")
        _, free = self.one("free")
        self.assertEqual(hang["source"]["partition"], free["source"]["partition"])
        self.assertLess(hang["source"]["offset"], free["source"]["offset"])
        self.assertLess(free["completedAt"], hang["completedAt"])

    def test_retries_exhausted(self):
        r, o = self.one("exhaust")
        self.assertEqual(o["status"], "failed")
        self.assertEqual(o["errorClass"], "retries_exhausted")
        self.assertIsNone(o["code"])
        self.assertEqual(o["codeDesc"], "Transport.HttpStatus")
        self.assertEqual(o["httpStatus"], 503)
        self.assertGreater(o["attempts"], 2)
        calls = self.stats["instances"]["calls"]["ins-exh1"]
        self.assertEqual(calls, o["attempts"])
        self.assertEqual(r["headers"]["clw-error-class"], "retries_exhausted")

    def test_order_on_one_instance(self):
        _, attach = self.one("ord-attach")
        _, detach = self.one("ord-detach")
        self.assertEqual(attach["status"], "succeeded")
        self.assertEqual(attach["attempts"], 2)
        self.assertEqual(detach["status"], "succeeded", detach)
        self.assertLessEqual(attach["completedAt"], detach["completedAt"])
        actions = [c.get("action") for c in self.call_log
                   if "ins-ord1" in json.dumps(c.get("params", c))]
        self.assertEqual(actions, ["AttachClassicLinkVpc", "AttachClassicLinkVpc",
                                   "DetachClassicLinkVpc"])
        self.assertIsNone(self.stack.sim.linked("ins-ord1"))

    def test_headers_are_carried_and_keys_kept(self):
        r, o = self.one("headers")
        self.assertEqual(r["key"], "headers")
        self.assertEqual(r["headers"]["traceparent"], TRACEPARENT)
        self.assertEqual(r["headers"]["x-request-id"], "xr-1")
        self.assertEqual(r["headers"]["kafka_correlationId"], "corr-9")
        self.assertEqual(r["headers"]["clw-request-id"], "headers")
        self.assertNotIn("not-carried", r["headers"])
        r, o = self.one("no-key")
        self.assertEqual(r["key"], "no-key")  # keyed by requestId when the input had no key
        trace_logs = [x for x in self.worker.records()
                      if x.get("traceId") == "4bf92f3577b34da6a3ce929d0e0e4736"]
        self.assertTrue(trace_logs, "no log line carries the request's trace id")

    def test_api_calls_equal_attempts(self):
        attempts = sum(o["attempts"] for items in self.outcomes.values() for _, o in items)
        by_action = self.stats["byAction"]
        made = by_action.get("AttachClassicLinkVpc", 0) + by_action.get("DetachClassicLinkVpc", 0)
        # libcurl silently re-sends a request once when a kept-alive connection turns out to be
        # closed ("drop" faults); the copy carries the same Nonce, so the API's replay guard
        # answers it 4500 and it is never applied twice. Those copies are the only calls the
        # worker does not count as attempts.
        resent = self.stats["byResult"].get("4500", 0)
        self.assertGreaterEqual(made, attempts)
        self.assertLessEqual(made - attempts, resent)

    def test_every_offset_committed(self):
        sent_per_partition = {}
        for _, items in self.outcomes.items():
            for _, o in items:
                p = o["source"]["partition"]
                sent_per_partition[p] = sent_per_partition.get(p, 0) + 1
        for p in self.parts:
            self.assertEqual(p["committed"], p["high"], p)
            self.assertEqual(p["high"], sent_per_partition.get(p["partition"], 0))

    def test_metrics_count_outcomes(self):
        status, body = self.worker.http_get("/metrics")
        self.assertEqual(status, 200)
        total = 0
        for line in body.splitlines():
            if line.startswith("classiclink_requests_total{"):
                total += float(line.rsplit(" ", 1)[1])
        self.assertEqual(total, len(self.sent))
        status, body = self.worker.http_get("/readyz")
        self.assertEqual(status, 200, body)
        self.assertEqual(self.worker.http_get("/healthz")[0], 200)


class PostAndHmacSha1(unittest.TestCase):
    """POST form bodies, HmacSHA1, and the default region from api.region."""

    def test_post_sha1_default_region(self):
        with worklib.Stack(seed=SEED, partitions=2) as st:
            st.worker({"api.http_method": "POST", "api.signature_method": "HmacSHA1",
                       "api.region": REGION})
            st.send([rec("p1", request(VPC, ["ins-ok1"], request_id="p1")),
                     rec("p2", request("vpc-nowhere", ["ins-ok2"], request_id="p2"))])
            got = {r["key"]: json.loads(r["value"]) for r in st.outcome_records(2)}
            self.assertEqual(got["p1"]["status"], "succeeded", got["p1"])
            self.assertEqual(got["p1"]["region"], REGION)
            self.assertEqual(got["p2"]["codeDesc"], "InvalidVpc.NotFound")
            log = st.sim.read_call_log()
            self.assertTrue(log)
            for entry in log:
                text = json.dumps(entry)
                self.assertIn("POST", text)
                self.assertIn("HmacSHA1", text)

    def test_invalid_requests_never_get_the_default_region(self):
        """An invalid request made no call: its outcome's region is its own valid region, else
        null, never api.region (contract section 4)."""
        with worklib.Stack(seed=SEED, partitions=1) as st:
            st.worker({"api.region": REGION})
            st.send([rec("notjson", "{"), rec("array", "[1]"), rec("empty", ""),
                     rec("tombstone", None), rec("trailing", '{"vpcId":"vpc-1"} x'),
                     rec("deep", "[" * 1001 + "]" * 1001),
                     rec("noregion", request("VPC-BAD", ["ins-ok1"])),
                     rec("ownregion", request("VPC-BAD", ["ins-ok1"], region="ap-shanghai")),
                     rec("badregion", request(VPC, ["ins-ok1"], region="AP")),
                     rec("valid", request(VPC, ["ins-ok3"]))])
            got = {r["key"]: json.loads(r["value"]) for r in st.outcome_records(10)}
            for key in ("notjson", "array", "empty", "tombstone", "trailing", "deep",
                        "noregion", "badregion"):
                with self.subTest(key=key):
                    self.assertEqual(got[key]["errorClass"], "invalid_request")
                    self.assertIsNone(got[key]["region"], got[key])
                    self.assertNotIn("coalesced", got[key])
            self.assertEqual(got["ownregion"]["region"], "ap-shanghai")
            self.assertEqual(got["valid"]["region"], REGION)  # the call was signed for it
            self.assertEqual(got["valid"]["coalesced"], 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
