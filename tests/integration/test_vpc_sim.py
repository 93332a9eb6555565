"""Integration test of the VPC API simulator (tools/vpc-sim) through its HTTP interface.

Starts the built binary ($CLW_BUILD_DIR/tools/vpc-sim/vpc-sim) and checks authentication, the
simulated world, every fault kind, the admin endpoints, the call log, TLS and the command line,
signing requests with simlib's own (third, independent) signer.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simlib  # noqa: E402
from simlib import Sim  # noqa: E402

VPC = "vpc-2ari9m7h"
VPC_LEGACY = "gz_vpc_245"
OTHER_VPC = "vpc-other01"

# Guangzhou: two VPCs, instances ins-a..ins-f (ins-linked already linked to OTHER_VPC), a limit
# of 5 links; Shanghai: one VPC and one instance.
SEED = {
    "regions": {"ap-guangzhou": {"linkLimit": 5}},
    "vpcs": [
        {"vpcId": VPC, "legacyId": VPC_LEGACY, "region": "ap-guangzhou", "name": "main"},
        {"vpcId": OTHER_VPC, "region": "ap-guangzhou"},
        {"vpcId": "vpc-sh", "region": "ap-shanghai"},
    ],
    "instances": [
        {"instanceId": "ins-a", "name": "web-a", "lanIp": "10.1.0.1"},
        {"instanceId": "ins-b"}, {"instanceId": "ins-c"}, {"instanceId": "ins-d"},
        {"instanceId": "ins-e"}, {"instanceId": "ins-f"},
        {"instanceId": "ins-linked", "linkedVpc": OTHER_VPC},
        {"instanceId": "ins-sh", "region": "ap-shanghai"},
    ],
}

ATTACH = "AttachClassicLinkVpc"
DETACH = "DetachClassicLinkVpc"


def attach(sim, ids, vpc=VPC, **kw):
    return sim.call(ATTACH, {"vpcId": vpc, "instanceIds": ids}, **kw)


class SimTestCase(unittest.TestCase):
    """One simulator per class, reset before every test."""

    extra_args = ["--task-delay-ms", "300", "--rng-seed", "7"]

    @classmethod
    def setUpClass(cls):
        cls.sim = Sim().start(seed=SEED, extra_args=cls.extra_args)

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def setUp(self):
        self.sim.reset()

    def assertCode(self, reply, code, code_desc=None):
        self.assertEqual(reply.status, 200, reply.body)
        self.assertIsNotNone(reply.json, reply.body)
        self.assertEqual(reply.json["code"], code, reply.json)
        if code_desc is not None:
            self.assertEqual(reply.json["codeDesc"], code_desc, reply.json)
        self.assertIn("message", reply.json)


class AuthenticationTest(SimTestCase):

    def test_signed_get_succeeds(self):
        reply = attach(self.sim, ["ins-a"])
        self.assertCode(reply, 0, "Success")
        self.assertEqual(reply.json["message"], "")
        self.assertIsInstance(reply.json["taskId"], int)
        self.assertEqual(reply.headers["Content-Type"], "application/json")

    def test_post_form_succeeds(self):
        self.assertCode(attach(self.sim, ["ins-a"], method="POST"), 0)
        self.assertEqual(self.sim.linked("ins-a"), VPC)

    def test_hmacsha1_when_no_signature_method(self):
        self.assertCode(attach(self.sim, ["ins-a"], signature_method=None), 0)
        self.assertCode(attach(self.sim, ["ins-b"], signature_method="HmacSHA1"), 0)

    def test_signed_as_sha256_but_sent_as_sha1_fails(self):
        params = simlib.common_params(ATTACH, self.sim.secret_id)
        params.update(simlib.flatten({"vpcId": VPC, "instanceIds": ["ins-a"]}))
        sts = simlib.string_to_sign("GET", "127.0.0.1", "/v2/index.php", params)
        params["Signature"] = simlib.signature(self.sim.secret_key, sts, "HmacSHA1")
        query = "&".join("%s=%s" % (k, simlib.url_encode(v)) for k, v in params.items())
        self.assertCode(self.sim.request(query), 4100)

    def test_wrong_key_is_4100(self):
        self.assertCode(attach(self.sim, ["ins-a"], secret_key="not-the-key"), 4100,
                        "AuthFailure.SignatureFailure")
        self.assertIsNone(self.sim.linked("ins-a"))

    def test_unknown_secret_id_is_4104(self):
        self.assertCode(attach(self.sim, ["ins-a"], secret_id="AKIDnobody"), 4104,
                        "AuthFailure.SecretIdNotFound")

    def test_tampered_value_is_4100(self):
        params = simlib.common_params(ATTACH, self.sim.secret_id)
        params.update(simlib.flatten({"vpcId": VPC, "instanceIds": ["ins-a"]}))
        query = simlib.sign_v2(params, self.sim.secret_key).replace("ins-a", "ins-b")
        self.assertCode(self.sim.request(query), 4100)

    def test_host_port_is_not_signed(self):
        # The string to sign uses the host without the port: signing with it must fail.
        self.assertCode(attach(self.sim, ["ins-a"], sign_host="127.0.0.1:%d" % self.sim.port),
                        4100)
        self.assertCode(attach(self.sim, ["ins-a"], sign_host="127.0.0.1"), 0)

    def test_get_signature_does_not_verify_as_post(self):
        params = simlib.common_params(ATTACH, self.sim.secret_id)
        params.update(simlib.flatten({"vpcId": VPC, "instanceIds": ["ins-a"]}))
        query = simlib.sign_v2(params, self.sim.secret_key, method="GET")
        self.assertCode(self.sim.request(query, method="POST"), 4100)

    def test_underscore_names_are_signed_as_dots(self):
        params = simlib.common_params(ATTACH, self.sim.secret_id)
        params.update({"vpcId": VPC, "instanceIds_0": "ins-a"})
        self.assertCode(self.sim.request(simlib.sign_v2(params, self.sim.secret_key)), 0)
        self.assertEqual(self.sim.linked("ins-a"), VPC)

    def test_encoded_special_characters_verify_decoded(self):
        # A value with '/', '+', '=' and a space is signed raw and sent encoded.
        reply = self.sim.call("DescribeVpcEx", {"vpcName": "a/b+c=d e"})
        self.assertCode(reply, 0)
        self.assertEqual(reply.json["totalCount"], 0)

    def test_replayed_nonce_is_4500(self):
        params = simlib.common_params(ATTACH, self.sim.secret_id)
        params.update(simlib.flatten({"vpcId": VPC, "instanceIds": ["ins-a"]}))
        query = simlib.sign_v2(params, self.sim.secret_key)
        self.assertCode(self.sim.request(query), 0)
        self.assertCode(self.sim.request(query), 4500, "InvalidNonce")
        # A fresh nonce with the same timestamp is fine.
        self.assertCode(self.sim.call("DescribeVpcEx", timestamp=params["Timestamp"]), 0)
        self.assertEqual(self.sim.stats()["instances"]["attached"], {"ins-a": 1})

    def test_stale_and_future_timestamps_are_4500(self):
        now = int(time.time())
        for ts in (now - 320, now + 320, now - 7200):
            with self.subTest(ts=ts - now):
                self.assertCode(attach(self.sim, ["ins-a"], timestamp=ts), 4500,
                                "InvalidTimestamp")
        self.assertCode(attach(self.sim, ["ins-a"], timestamp=now - 250), 0)

    def test_window_is_configurable(self):
        self.sim.config({"windowSec": 7200})
        self.assertCode(attach(self.sim, ["ins-a"], timestamp=int(time.time()) - 3600), 0)

    def test_clock_skew_setting(self):
        self.sim.config({"clockSkewSec": 1000})
        self.assertCode(attach(self.sim, ["ins-a"]), 4500, "InvalidTimestamp")
        self.assertCode(attach(self.sim, ["ins-a"], timestamp=int(time.time()) + 1000), 0)

    def test_missing_common_parameter_is_4000(self):
        for name in ("Action", "Region", "SecretId", "Timestamp", "Nonce", "Signature"):
            with self.subTest(missing=name):
                params = simlib.common_params(ATTACH, self.sim.secret_id)
                params.update(simlib.flatten({"vpcId": VPC, "instanceIds": ["ins-a"]}))
                query = simlib.sign_v2(params, self.sim.secret_key)
                query = "&".join(p for p in query.split("&") if not p.startswith(name + "="))
                reply = self.sim.request(query)
                self.assertCode(reply, 4000, "MissingParameter")
                self.assertIn(name, reply.json["message"])

    def test_malformed_nonce_or_timestamp_is_4000(self):
        self.assertCode(attach(self.sim, ["ins-a"], nonce="abc"), 4000, "InvalidParameter")
        self.assertCode(attach(self.sim, ["ins-a"], timestamp="soon"), 4000, "InvalidParameter")

    def test_unknown_action_is_6100(self):
        self.assertCode(self.sim.call("RunInstances", {}), 6100, "InvalidAction")

    def test_duplicate_parameter_is_4000(self):
        params = simlib.common_params(ATTACH, self.sim.secret_id)
        params.update(simlib.flatten({"vpcId": VPC, "instanceIds": ["ins-a"]}))
        query = simlib.sign_v2(params, self.sim.secret_key) + "&vpcId=" + VPC
        self.assertCode(self.sim.request(query), 4000, "InvalidParameter")

    def test_post_needs_form_content_type(self):
        params = simlib.common_params(ATTACH, self.sim.secret_id)
        params.update(simlib.flatten({"vpcId": VPC, "instanceIds": ["ins-a"]}))
        query = simlib.sign_v2(params, self.sim.secret_key, method="POST")
        self.assertCode(self.sim.request(query, method="POST", content_type="application/json"),
                        4000)
        self.assertIsNone(self.sim.linked("ins-a"))

    def test_other_method_and_path(self):
        reply = self.sim.request("", method="PUT")
        self.assertEqual(reply.status, 405)
        self.assertEqual(self.sim.get("/v3/").status, 404)
        self.assertEqual(self.sim.get("/v2/index.php/x").status, 404)


class TokenTest(unittest.TestCase):

    def test_token_is_checked_when_configured(self):
        creds = [("AKIDtoken", "tokenkey", "tok-123")]
        with Sim().start(seed=SEED, credentials=creds) as sim:
            self.assertEqual(attach(sim, ["ins-a"]).json["code"], 4105)
            reply = sim.call(ATTACH, {"vpcId": VPC, "instanceIds": ["ins-a"],
                                      "Token": "tok-123"})
            self.assertEqual(reply.json["code"], 0, reply.json)


class WorldTest(SimTestCase):

    def test_attach_links_instances(self):
        self.assertCode(attach(self.sim, ["ins-a", "ins-b"]), 0)
        self.assertEqual(self.sim.linked("ins-a"), VPC)
        self.assertEqual(self.sim.linked("ins-b"), VPC)
        stats = self.sim.stats()
        self.assertEqual(stats["instances"]["attached"], {"ins-a": 1, "ins-b": 1})
        self.assertNotIn("ins-c", stats["instances"]["calls"])

    def test_legacy_vpc_id_and_short_region(self):
        self.assertCode(attach(self.sim, ["ins-a"], vpc=VPC_LEGACY, region="gz"), 0)
        self.assertEqual(self.sim.linked("ins-a"), VPC)

    def test_unknown_vpc(self):
        self.assertCode(attach(self.sim, ["ins-a"], vpc="vpc-nothere"), 4000,
                        "InvalidVpc.NotFound")

    def test_vpc_of_another_region(self):
        self.assertCode(attach(self.sim, ["ins-a"], vpc="vpc-sh"), 4000, "InvalidVpc.NotFound")

    def test_unknown_instance_and_all_or_nothing(self):
        self.assertCode(attach(self.sim, ["ins-a", "ins-nothere", "ins-b"]), 4000,
                        "InvalidInstance.NotFound")
        self.assertIsNone(self.sim.linked("ins-a"))
        self.assertIsNone(self.sim.linked("ins-b"))
        self.assertCode(attach(self.sim, ["ins-sh"]), 4000, "InvalidInstance.NotFound")

    def test_already_linked_to_another_vpc(self):
        self.assertCode(attach(self.sim, ["ins-a", "ins-linked"]), 4000, "InstanceAlreadyLinked")
        self.assertIsNone(self.sim.linked("ins-a"))
        self.assertEqual(self.sim.linked("ins-linked"), OTHER_VPC)

    def test_same_vpc_choice(self):
        self.assertCode(attach(self.sim, ["ins-a"]), 0)
        # Default: attaching again to the same VPC is InstanceAlreadyLinked.
        self.assertCode(attach(self.sim, ["ins-a"]), 4000, "InstanceAlreadyLinked")
        self.sim.config({"sameVpcAttach": "success"})
        self.assertCode(attach(self.sim, ["ins-a", "ins-b"]), 0)
        self.assertEqual(self.sim.linked("ins-b"), VPC)
        self.assertCode(attach(self.sim, ["ins-linked"]), 4000, "InstanceAlreadyLinked")

    def test_region_link_limit(self):
        # One link exists (ins-linked); the limit is 5.
        self.assertCode(attach(self.sim, ["ins-a", "ins-b", "ins-c", "ins-d", "ins-e"]), 4000,
                        "InstanceLimitExceeded")
        self.assertIsNone(self.sim.linked("ins-a"))
        self.assertCode(attach(self.sim, ["ins-a", "ins-b", "ins-c", "ins-d"]), 0)
        self.assertCode(attach(self.sim, ["ins-e"]), 4000, "InstanceLimitExceeded")

    def test_business_code_is_configurable(self):
        self.sim.config({"businessCode": 5000})
        self.assertCode(attach(self.sim, ["ins-nothere"]), 5000, "InvalidInstance.NotFound")

    def test_bad_action_parameters(self):
        self.assertCode(self.sim.call(ATTACH, {"instanceIds": ["ins-a"]}), 4000,
                        "MissingParameter")
        self.assertCode(self.sim.call(ATTACH, {"vpcId": VPC}), 4000, "MissingParameter")
        self.assertCode(attach(self.sim, ["ins-a", "ins-a"]), 4000, "InvalidParameter")
        self.sim.config({"maxInstances": 2})
        self.assertCode(attach(self.sim, ["ins-a", "ins-b", "ins-c"]), 4000, "InvalidParameter")

    def test_detach(self):
        self.assertCode(self.sim.call(DETACH, {"vpcId": OTHER_VPC, "instanceIds": ["ins-linked"]}),
                        0)
        self.assertIsNone(self.sim.linked("ins-linked"))
        self.assertEqual(self.sim.stats()["instances"]["detached"], {"ins-linked": 1})
        # Not linked (any more): InvalidInstance.NotFound unless configured otherwise.
        self.assertCode(self.sim.call(DETACH, {"vpcId": OTHER_VPC, "instanceIds": ["ins-linked"]}),
                        4000, "InvalidInstance.NotFound")
        self.sim.config({"detachUnlinked": "success"})
        self.assertCode(self.sim.call(DETACH, {"vpcId": OTHER_VPC, "instanceIds": ["ins-linked"]}),
                        0)
        self.assertCode(self.sim.call(DETACH, {"vpcId": "vpc-none", "instanceIds": ["ins-a"]}),
                        4000, "InvalidVpc.NotFound")

    def test_describe_classic_link(self):
        self.assertCode(attach(self.sim, ["ins-a", "ins-b", "ins-c"]), 0)
        reply = self.sim.call("DescribeVpcClassicLink", {"vpcId": VPC})
        self.assertCode(reply, 0)
        self.assertEqual(reply.json["totalCount"], 3)
        row = reply.json["data"][0]
        self.assertEqual(set(row), {"lanIp", "unVpcId", "vpcId", "classicLinkId", "createTime",
                                    "instanceId", "instanceName"})
        self.assertEqual((row["instanceId"], row["instanceName"], row["lanIp"]),
                         ("ins-a", "web-a", "10.1.0.1"))
        self.assertEqual((row["vpcId"], row["unVpcId"]), (VPC_LEGACY, VPC))
        # Paging, the legacy id as filter, descending order, other filters.
        reply = self.sim.call("DescribeVpcClassicLink", {"vpcId": VPC_LEGACY, "offset": 1,
                                                         "limit": 1, "orderDirection": "desc"})
        self.assertEqual(reply.json["totalCount"], 3)
        self.assertEqual([r["instanceId"] for r in reply.json["data"]], ["ins-b"])
        reply = self.sim.call("DescribeVpcClassicLink", {"lanIp": "10.1.0.1"})
        self.assertEqual([r["instanceId"] for r in reply.json["data"]], ["ins-a"])
        link_id = row["classicLinkId"]
        reply = self.sim.call("DescribeVpcClassicLink", {"classicLinkId": link_id})
        self.assertEqual(reply.json["totalCount"], 1)
        reply = self.sim.call("DescribeVpcClassicLink", {})
        self.assertEqual(reply.json["totalCount"], 4)  # with ins-linked
        self.assertCode(self.sim.call("DescribeVpcClassicLink", {"limit": 51}), 4000)
        self.assertCode(self.sim.call("DescribeVpcClassicLink", {"offset": "x"}), 4000)

    def test_describe_vpc_ex(self):
        self.assertCode(attach(self.sim, ["ins-a"]), 0)
        reply = self.sim.call("DescribeVpcEx", {})
        self.assertCode(reply, 0)
        self.assertEqual(reply.json["totalCount"], 2)
        by_id = {r["vpcId"]: r for r in reply.json["data"]}
        self.assertEqual(by_id[VPC]["classicLinkNum"], 1)
        self.assertEqual(by_id[OTHER_VPC]["classicLinkNum"], 1)
        reply = self.sim.call("DescribeVpcEx", {"vpcId": VPC_LEGACY})
        self.assertEqual([r["vpcName"] for r in reply.json["data"]], ["main"])
        reply = self.sim.call("DescribeVpcEx", {}, region="ap-shanghai")
        self.assertEqual([r["vpcId"] for r in reply.json["data"]], ["vpc-sh"])

    def test_task_runs_then_succeeds(self):
        task = attach(self.sim, ["ins-a"]).json["taskId"]
        reply = self.sim.call("DescribeVpcTaskResult", {"taskId": task})
        self.assertCode(reply, 0)
        self.assertEqual(reply.json["data"]["status"], 2)
        time.sleep(0.4)
        reply = self.sim.call("DescribeVpcTaskResult", {"taskId": task})
        self.assertEqual(reply.json["data"]["status"], 0)

    def test_task_scripted_to_fail(self):
        self.sim.add_faults({"scripts": [{"instanceId": "ins-a", "fault": "task_fail"}]})
        reply = attach(self.sim, ["ins-a"])
        self.assertCode(reply, 0)
        time.sleep(0.4)
        reply = self.sim.call("DescribeVpcTaskResult", {"taskId": reply.json["taskId"]})
        self.assertEqual(reply.json["data"]["status"], 1)
        self.assertIn("errorCode", reply.json["data"]["output"])
        self.assertIsNone(self.sim.linked("ins-a"))

    def test_task_errors(self):
        self.assertCode(self.sim.call("DescribeVpcTaskResult", {}), 4000, "MissingParameter")
        self.assertCode(self.sim.call("DescribeVpcTaskResult", {"taskId": "12x"}), 4000)
        self.assertCode(self.sim.call("DescribeVpcTaskResult", {"taskId": 1}), 4000,
                        "InvalidTask.NotFound")


class FaultTest(SimTestCase):

    def script(self, fault, instance="ins-a", times=1, **extra):
        spec = {"instanceId": instance, "times": times, "fault": fault}
        spec.update(extra)
        self.sim.add_faults({"scripts": [spec]})

    def test_transient_codes(self):
        for code in (4400, 5100, 6000, 6200):
            with self.subTest(code=code):
                self.script("code:%d" % code)
                self.assertCode(attach(self.sim, ["ins-a"]), code)
                self.assertIsNone(self.sim.linked("ins-a"))
        self.assertCode(attach(self.sim, ["ins-a"]), 0)
        self.assertEqual(self.sim.stats()["byFault"],
                         {"code:4400": 1, "code:5100": 1, "code:6000": 1, "code:6200": 1})

    def test_first_n_calls_touching_an_instance(self):
        self.script("code:6000", times=2)
        self.assertCode(attach(self.sim, ["ins-b"]), 0)  # does not touch ins-a
        self.assertCode(attach(self.sim, ["ins-a"]), 6000)
        self.assertCode(attach(self.sim, ["ins-c", "ins-a"]), 6000)
        self.assertCode(attach(self.sim, ["ins-a"]), 0)

    def test_string_code_desc(self):
        self.script("code:4000:ActionLocked")
        self.assertCode(attach(self.sim, ["ins-a"]), 4000, "ActionLocked")

    def test_retry_after_on_4400_and_429(self):
        self.script("code:4400", retryAfter=3)
        reply = attach(self.sim, ["ins-a"])
        self.assertCode(reply, 4400)
        self.assertEqual(reply.headers["Retry-After"], "3")
        self.sim.add_faults({"retryAfter": 2})
        self.script("http:429")
        reply = attach(self.sim, ["ins-a"])
        self.assertEqual(reply.status, 429)
        self.assertEqual(reply.headers["Retry-After"], "2")
        reply = attach(self.sim, ["ins-a"])
        self.assertIsNone(reply.headers["Retry-After"])

    def test_http_statuses(self):
        for status in (500, 502, 503):
            with self.subTest(status=status):
                self.script("http:%d" % status)
                reply = attach(self.sim, ["ins-a"])
                self.assertEqual(reply.status, status)
                self.assertIsNone(reply.json)  # not JSON
                self.assertIsNone(self.sim.linked("ins-a"))

    def test_drop(self):
        self.script("drop")
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            attach(self.sim, ["ins-a"])
        self.assertIsNone(self.sim.linked("ins-a"))
        self.assertEqual(self.sim.stats()["byResult"].get("drop"), 1)

    def test_hang_outlasts_client_timeout(self):
        self.sim.add_faults({"hangMs": 5000})
        self.script("hang")
        start = time.monotonic()
        with self.assertRaises((socket.timeout, TimeoutError)):
            attach(self.sim, ["ins-a"], timeout=0.5)
        self.assertLess(time.monotonic() - start, 3)
        self.assertIsNone(self.sim.linked("ins-a"))
        # The simulator keeps serving others meanwhile.
        self.assertCode(attach(self.sim, ["ins-b"]), 0)

    def test_apply_then_fail(self):
        self.script("http:503", instance="ins-a", apply=True)
        self.assertEqual(attach(self.sim, ["ins-a"]).status, 503)
        self.assertEqual(self.sim.linked("ins-a"), VPC)
        self.script("drop", instance="ins-b", apply=True)
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            attach(self.sim, ["ins-b"])
        self.assertEqual(self.sim.linked("ins-b"), VPC)
        self.script("code:6000", instance="ins-c", apply=True)
        self.assertCode(attach(self.sim, ["ins-c"]), 6000)
        self.assertEqual(self.sim.linked("ins-c"), VPC)
        attached = self.sim.stats()["instances"]["attached"]
        self.assertEqual(attached, {"ins-a": 1, "ins-b": 1, "ins-c": 1})
        # A retry now meets the instance already linked.
        self.assertCode(attach(self.sim, ["ins-a"]), 4000, "InstanceAlreadyLinked")

    def test_scripted_auth_code_for_any_call(self):
        self.sim.add_faults({"scripts": [{"fault": "code:4104", "times": 2}]})
        self.assertCode(self.sim.call("DescribeVpcEx", {}), 4104)
        self.assertCode(attach(self.sim, ["ins-a"]), 4104)
        self.assertCode(attach(self.sim, ["ins-a"]), 0)

    def test_scripted_by_action(self):
        self.sim.add_faults({"scripts": [{"action": "DescribeVpcClassicLink",
                                          "fault": "code:4100"}]})
        self.assertCode(attach(self.sim, ["ins-a"]), 0)
        self.assertCode(self.sim.call("DescribeVpcClassicLink", {}), 4100)
        self.assertCode(self.sim.call("DescribeVpcClassicLink", {}), 0)

    def test_random_rate(self):
        self.sim.add_faults({"rate": 1.0, "kinds": ["code:6200"]})
        for _ in range(5):
            self.assertCode(self.sim.call("DescribeVpcEx", {}), 6200)
        self.sim.add_faults({"rate": 0.5, "kinds": ["code:5100", "http:502"], "rngSeed": 3})
        results = []
        for _ in range(60):
            reply = self.sim.call("DescribeVpcEx", {})
            results.append(reply.json["code"] if reply.status == 200 else reply.status)
        self.assertTrue(set(results) <= {0, 5100, 502}, results)
        self.assertGreater(results.count(0), 10)
        self.assertGreater(len(results) - results.count(0), 10)
        # The same seed gives the same sequence.
        self.sim.add_faults({"rngSeed": 3})
        again = []
        for _ in range(60):
            reply = self.sim.call("DescribeVpcEx", {})
            again.append(reply.json["code"] if reply.status == 200 else reply.status)
        self.assertEqual(results, again)

    def test_random_apply_rate(self):
        self.sim.add_faults({"rate": 1.0, "kinds": ["http:500"], "applyRate": 1.0})
        self.assertEqual(attach(self.sim, ["ins-a"]).status, 500)
        self.assertEqual(self.sim.linked("ins-a"), VPC)

    def test_latency_does_not_block_other_calls(self):
        self.sim.add_faults({"latencyMs": 300})
        start = time.monotonic()
        self.assertCode(self.sim.call("DescribeVpcEx", {}), 0)
        self.assertGreaterEqual(time.monotonic() - start, 0.29)
        results = []

        def one():
            results.append(self.sim.call("DescribeVpcEx", {}).json["code"])

        threads = [threading.Thread(target=one) for _ in range(40)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, [0] * 40)
        self.assertLess(time.monotonic() - start, 4.0)  # serial would take 12 s

    def test_bad_fault_document_is_rejected(self):
        with self.assertRaises(simlib.SimError):
            self.sim.add_faults({"scripts": [{"fault": "explode"}]})
        with self.assertRaises(simlib.SimError):
            self.sim.add_faults({"rate": 3})
        self.assertEqual(self.sim.faults()["scripts"], [])


class AdminTest(SimTestCase):

    def test_state(self):
        state = self.sim.state()
        self.assertEqual({v["vpcId"] for v in state["vpcs"]}, {VPC, OTHER_VPC, "vpc-sh"})
        self.assertEqual(len(state["instances"]), 8)
        self.assertEqual([(l["instanceId"], l["unVpcId"]) for l in state["links"]],
                         [("ins-linked", OTHER_VPC)])
        limits = {r["region"]: r["linkLimit"] for r in state["regions"]}
        self.assertEqual(limits, {"ap-guangzhou": 5, "ap-shanghai": None})
        attach(self.sim, ["ins-a"])
        self.assertEqual(len(self.sim.state()["tasks"]), 1)

    def test_stats_count_calls(self):
        attach(self.sim, ["ins-a"])
        attach(self.sim, ["ins-a"])
        attach(self.sim, ["ins-b"], secret_key="bad")
        self.sim.call("DescribeVpcEx", {})
        stats = self.sim.stats()
        self.assertEqual(stats["calls"], 4)
        self.assertEqual(stats["byAction"], {ATTACH: 3, "DescribeVpcEx": 1})
        self.assertEqual(stats["byResult"], {"0": 2, "4000": 1, "4100": 1})
        self.assertEqual(stats["instances"]["calls"], {"ins-a": 2})
        self.assertEqual(stats["instances"]["attached"], {"ins-a": 1})

    def test_reset(self):
        attach(self.sim, ["ins-a"])
        self.sim.add_faults({"scripts": [{"instanceId": "ins-b", "fault": "drop"}]})
        self.sim.config({"businessCode": 4300})
        self.sim.reset()
        self.assertIsNone(self.sim.linked("ins-a"))
        self.assertEqual(self.sim.stats()["calls"], 0)
        self.assertEqual(self.sim.faults()["scripts"], [])
        self.assertEqual(self.sim.config()["businessCode"], 4000)
        self.assertCode(attach(self.sim, ["ins-b"]), 0)

    def test_set_seed(self):
        summary = self.sim.set_seed({"generate": {"vpcs": 3, "instances": 10000, "linked": 2}})
        self.assertEqual((summary["vpcs"], summary["instances"]), (3, 10000))
        self.assertEqual(self.sim.linked("ins-1"), "vpc-0")
        self.assertCode(attach(self.sim, ["ins-9999"], vpc="vpc-2"), 0)
        self.sim.reset()  # back to the new seed
        self.assertIsNone(self.sim.linked("ins-9999"))
        with self.assertRaises(simlib.SimError):
            self.sim.set_seed({"vpcs": "nope"})
        self.assertEqual(len(self.sim.state()["vpcs"]), 3)
        self.sim.set_seed(SEED)

    def test_bad_admin_requests(self):
        with self.assertRaises(simlib.SimError):
            self.sim.admin("nothing")
        with self.assertRaises(simlib.SimError):
            self.sim.admin("state", method="POST", body={})
        with self.assertRaises(simlib.SimError):
            self.sim.config({"sameVpcAttach": "maybe"})

    def test_call_log_has_no_secrets(self):
        params = simlib.common_params(ATTACH, self.sim.secret_id)
        params.update(simlib.flatten({"vpcId": VPC, "instanceIds": ["ins-a"]}))
        query = simlib.sign_v2(params, self.sim.secret_key)
        sig = urllib.parse.unquote(query.rsplit("Signature=", 1)[1])
        self.sim.request(query)
        attach(self.sim, ["ins-a"], secret_key="bad")
        self.script_drop()
        entries = self.sim.read_call_log()
        self.assertGreaterEqual(len(entries), 3)
        last = entries[-3:]
        self.assertEqual([e["result"] for e in last], ["0", "4100", "drop"])
        self.assertEqual(last[0]["action"], ATTACH)
        self.assertEqual(last[0]["params"]["instanceIds.0"], "ins-a")
        self.assertTrue(last[0]["applied"])
        self.assertEqual(last[2]["fault"], "drop")
        with open(self.sim.call_log) as f:
            text = f.read()
        self.assertFalse([e for e in entries if "Signature" in e["params"]])
        self.assertNotIn(sig, text)
        self.assertNotIn(self.sim.secret_key, text)
        self.assertNotIn(self.sim.secret_id, text)

    def script_drop(self):
        self.sim.add_faults({"scripts": [{"instanceId": "ins-c", "fault": "drop"}]})
        try:
            attach(self.sim, ["ins-c"])
        except (http.client.RemoteDisconnected, ConnectionError):
            pass


@unittest.skipIf(shutil.which("openssl") is None, "openssl CLI not installed")
class TlsTest(unittest.TestCase):

    def test_https_with_a_self_signed_certificate(self):
        with tempfile.TemporaryDirectory() as tmp:
            cert = os.path.join(tmp, "cert.pem")
            key = os.path.join(tmp, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                           check=True, capture_output=True)
            with Sim().start(seed=SEED, tls=(cert, key)) as sim:
                self.assertTrue(sim.url.startswith("https://"))
                reply = attach(sim, ["ins-a"])
                self.assertEqual(reply.json["code"], 0, reply.json)
                reply = attach(sim, ["ins-b"], method="POST")
                self.assertEqual(reply.json["code"], 0, reply.json)
                self.assertEqual(sim.linked("ins-a"), VPC)
                # Plain HTTP to the TLS port gets no API answer.
                conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
                with self.assertRaises((http.client.HTTPException, OSError)):
                    conn.request("GET", "/v2/index.php")
                    conn.getresponse().read()
                conn.close()


class CommandLineTest(unittest.TestCase):

    def run_sim(self, *args, timeout=10):
        return subprocess.run([simlib.sim_binary()] + list(args), capture_output=True,
                              text=True, timeout=timeout)

    def test_help_lists_every_flag(self):
        out = self.run_sim("--help")
        self.assertEqual(out.returncode, 0)
        for flag in ("--listen", "--port-file", "--tls-cert", "--tls-key", "--credentials",
                     "--seed", "--gen-instances", "--gen-vpcs", "--window-s", "--latency-ms",
                     "--latency-jitter-ms", "--error-rate", "--rng-seed", "--call-log",
                     "--same-vpc-attach", "--business-code", "--task-delay-ms", "--faults",
                     "--retry-after", "--hang-ms", "--threads"):
            self.assertIn(flag, out.stdout)

    def test_usage_errors_exit_1(self):
        with tempfile.NamedTemporaryFile("w", suffix=".creds") as creds:
            creds.write("id key\n")
            creds.flush()
            for args in ([], ["--credentials", "/nonexistent"],
                         ["--credentials", creds.name, "--listen", "nonsense"],
                         ["--credentials", creds.name, "--error-rate", "2"],
                         ["--credentials", creds.name, "--tls-cert", creds.name],
                         ["--credentials", creds.name, "--bogus"]):
                with self.subTest(args=args):
                    out = self.run_sim(*args)
                    self.assertEqual(out.returncode, 1, out.stderr)
                    self.assertIn("vpc-sim", out.stderr)

    def test_port_in_use_exits_2(self):
        with Sim().start() as first:
            with tempfile.NamedTemporaryFile("w") as creds:
                creds.write("id key\n")
                creds.flush()
                out = self.run_sim("--credentials", creds.name, "--listen",
                                   "127.0.0.1:%d" % first.port)
                self.assertEqual(out.returncode, 2, out.stderr)

    def test_port_file_generated_seed_and_clean_stop(self):
        with tempfile.TemporaryDirectory() as tmp:
            port_file = os.path.join(tmp, "port")
            sim = Sim().start(extra_args=["--port-file", port_file, "--gen-vpcs", "2",
                                          "--gen-instances", "10000", "--gen-region", "gz",
                                          "--latency-ms", "5"])
            try:
                with open(port_file) as f:
                    self.assertEqual(int(f.read()), sim.port)
                reply = sim.call(ATTACH, {"vpcId": "vpc-1", "instanceIds": ["ins-0", "ins-9999"]})
                self.assertEqual(reply.json["code"], 0, reply.json)
                self.assertEqual(len(sim.state()["instances"]), 10000)
            finally:
                self.assertEqual(sim.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
