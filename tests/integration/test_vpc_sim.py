"""Integration test of the VPC API simulator (tools/vpc-sim) through its HTTP interface.

Starts the built binary ($CLW_BUILD_DIR/tools/vpc-sim/vpc-sim) and checks authentication, the
simulated world, every fault kind, the admin endpoints, the call log, TLS and the command line,
for API v2 and API 3.0, plus the quota, listings' paging and task follow-up, signing requests
with simlib's own (third, independent) signers; the temporary credentials of the CVM metadata
service and STS AssumeRoleWithWebIdentity and their expiry; 50-instance calls whose business
errors name the failing instance.
"""

import http.client
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simlib  # noqa: E402
from simlib import Sim, temp_credential_args  # noqa: E402

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
    seed = SEED

    @classmethod
    def setUpClass(cls):
        cls.sim = Sim().start(seed=cls.seed, extra_args=cls.extra_args)

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
                     "--retry-after", "--hang-ms", "--threads", "--quota", "API 3.0",
                     "--quota-per-region", "--quota-reserve", "--cvm-role", "--temp-credential-life-s",
                     "--expired-credential-code", "--oidc-token-file", "--oidc-provider-id",
                     "--oidc-role-arn", "--sts-provider-error", "--sts-role-error",
                     "AssumeRoleWithWebIdentity", "/latest/meta-data/cam/security-credentials/"):
            self.assertIn(flag, out.stdout)

    def test_usage_errors_exit_1(self):
        with tempfile.NamedTemporaryFile("w", suffix=".creds") as creds:
            creds.write("id key\n")
            creds.flush()
            for args in ([], ["--credentials", "/nonexistent"],
                         ["--credentials", creds.name, "--listen", "nonsense"],
                         ["--credentials", creds.name, "--error-rate", "2"],
                         ["--credentials", creds.name, "--quota", "-1"],
                         ["--credentials", creds.name, "--quota", "1000001"],
                         ["--credentials", creds.name, "--quota", "10", "--quota-reserve", "10"],
                         ["--credentials", creds.name, "--quota-reserve", "-1"],
                         ["--credentials", creds.name, "--tls-cert", creds.name],
                         ["--credentials", creds.name, "--bogus"],
                         ["--credentials", creds.name, "--cvm-role", "has space"],
                         ["--credentials", creds.name, "--cvm-role", "r" * 129],
                         ["--credentials", creds.name, "--temp-credential-life-s", "0"],
                         ["--credentials", creds.name, "--expired-credential-code", "Expired"],
                         ["--credentials", creds.name, "--oidc-provider-id", ""],
                         ["--credentials", creds.name, "--oidc-role-arn", "a\tb"],
                         ["--credentials", creds.name, "--sts-role-error", "1Bad"],
                         ["--credentials", creds.name, "--error-kinds",
                          "business:InvalidInstance.NotFound"]):
                with self.subTest(args=args):
                    out = self.run_sim(*args)
                    self.assertEqual(out.returncode, 1, out.stderr)
                    self.assertIn("vpc-sim", out.stderr)

    def test_credential_flags_show_in_config(self):
        with tempfile.TemporaryDirectory() as tmp:
            token_file = os.path.join(tmp, "token")
            with Sim().start(extra_args=[
                    "--quota", "3", "--quota-per-region", "--cvm-role", ROLE,
                    "--temp-credential-life-s", "60",
                    "--expired-credential-code", "AuthFailure.SecretIdNotFound",
                    "--oidc-token-file", token_file, "--oidc-provider-id", PROVIDER_ID,
                    "--oidc-role-arn", ROLE_ARN, "--sts-provider-error", "InvalidParameter",
                    "--sts-role-error", "ResourceNotFound.RoleNotFound"]) as sim:
                config = sim.config()
                self.assertEqual(
                    {k: config[k] for k in ("quota", "quotaPerRegion", "cvmRole",
                                            "tempCredentialLifeSec", "expiredCredentialCode",
                                            "metadata", "sts", "oidcTokenFile", "oidcProviderId",
                                            "oidcRoleArn", "stsProviderErrorCode",
                                            "stsRoleErrorCode")},
                    {"quota": 3, "quotaPerRegion": True, "cvmRole": ROLE,
                     "tempCredentialLifeSec": 60,
                     "expiredCredentialCode": "AuthFailure.SecretIdNotFound", "metadata": "up",
                     "sts": "up", "oidcTokenFile": token_file, "oidcProviderId": PROVIDER_ID,
                     "oidcRoleArn": ROLE_ARN, "stsProviderErrorCode": "InvalidParameter",
                     "stsRoleErrorCode": "ResourceNotFound.RoleNotFound"})
            with Sim().start() as sim:
                config = sim.config()
                self.assertEqual((config["cvmRole"], config["tempCredentialLifeSec"],
                                  config["expiredCredentialCode"], config["quotaPerRegion"]),
                                 ("", 7200, "AuthFailure.TokenFailure", False))
                self.assertEqual(sim.metadata().status, 404)

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


# ---- task follow-up and listings (v2) -------------------------------------------------------

class TaskFollowUpTest(SimTestCase):
    """DescribeVpcTaskResult end to end: --task-delay-ms, task_fail scripts, detach tasks."""

    def task_status(self, task):
        reply = self.sim.call("DescribeVpcTaskResult", {"taskId": task})
        self.assertCode(reply, 0)
        return reply.json["data"]

    def test_delay_flag_holds_tasks_running(self):
        self.assertEqual(self.sim.config()["taskDelayMs"], 300)  # from --task-delay-ms
        start = time.monotonic()
        task = attach(self.sim, ["ins-a"]).json["taskId"]
        self.assertEqual(self.task_status(task), {"status": 2})
        while time.monotonic() - start < 0.35:
            time.sleep(0.05)
        self.assertEqual(self.task_status(task), {"status": 0})
        # The link exists from the start; only the task reports progress.
        self.assertEqual(self.sim.linked("ins-a"), VPC)

    def test_delay_setting_applies_to_new_tasks(self):
        self.sim.config({"taskDelayMs": 0})
        task = attach(self.sim, ["ins-a"]).json["taskId"]
        self.assertEqual(self.task_status(task), {"status": 0})
        self.sim.config({"taskDelayMs": 60000})
        task = attach(self.sim, ["ins-b"]).json["taskId"]
        self.assertEqual(self.task_status(task)["status"], 2)

    def test_task_fail_runs_then_fails_and_changes_nothing(self):
        self.sim.add_faults({"scripts": [{"instanceId": "ins-linked", "times": 2,
                                          "action": DETACH, "fault": "task_fail"}]})
        tasks = []
        for _ in range(2):
            reply = self.sim.call(DETACH, {"vpcId": OTHER_VPC, "instanceIds": ["ins-linked"]})
            self.assertCode(reply, 0, "Success")
            tasks.append(reply.json["taskId"])
            self.assertEqual(self.task_status(tasks[-1]), {"status": 2})
        self.assertEqual(tasks[1], tasks[0] + 1)
        time.sleep(0.4)
        for task in tasks:
            data = self.task_status(task)
            self.assertEqual(data["status"], 1)
            self.assertEqual(set(data["output"]), {"errorCode", "errorMsg"})
        self.assertEqual(self.sim.linked("ins-linked"), OTHER_VPC)
        stats = self.sim.stats()
        self.assertEqual(stats["byFault"], {"task_fail": 2})
        self.assertNotIn("ins-linked", stats["instances"]["detached"])
        # The script is spent: the next detach works and its task succeeds.
        task = self.sim.call(DETACH, {"vpcId": OTHER_VPC,
                                      "instanceIds": ["ins-linked"]}).json["taskId"]
        time.sleep(0.4)
        self.assertEqual(self.task_status(task), {"status": 0})
        self.assertIsNone(self.sim.linked("ins-linked"))
        states = {t["taskId"]: t["status"] for t in self.sim.state()["tasks"]}
        self.assertEqual(states, {tasks[0]: 1, tasks[1]: 1, task: 0})

    def test_task_fail_only_for_its_action(self):
        self.sim.add_faults({"scripts": [{"instanceId": "ins-a", "action": DETACH,
                                          "fault": "task_fail"}]})
        task = attach(self.sim, ["ins-a"]).json["taskId"]
        time.sleep(0.4)
        self.assertEqual(self.task_status(task), {"status": 0})
        self.assertEqual(len(self.sim.faults()["scripts"]), 1)


class PaginationTest(SimTestCase):
    """Listings page by offset/limit over links in creation order (v2 and API 3.0)."""

    seed = {"generate": {"vpcs": 2, "instances": 200, "linked": 45},
            "vpcs": [{"vpcId": "vpc-legacy1", "legacyId": "gz_vpc_7"}]}

    def links_v2(self, **params):
        reply = self.sim.call("DescribeVpcClassicLink", params)
        self.assertCode(reply, 0)
        return reply.json

    def test_v2_pages_cover_every_link_once(self):
        expected = ["ins-%d" % i for i in range(45)]
        seen = []
        for offset in range(0, 60, 20):
            page = self.links_v2(vpcId="vpc-0", offset=offset, limit=20)
            self.assertEqual(page["totalCount"], 45)
            self.assertEqual(len(page["data"]), min(20, max(0, 45 - offset)))
            for row in page["data"]:
                self.assertEqual((row["unVpcId"], row["vpcId"]), ("vpc-0", "vpc-0"))
            seen += [row["instanceId"] for row in page["data"]]
        self.assertEqual(seen, expected)
        # Default limit 20, the largest 50, past the end nothing, descending reversed.
        self.assertEqual(len(self.links_v2(vpcId="vpc-0")["data"]), 20)
        self.assertEqual([r["instanceId"] for r in self.links_v2(limit=50)["data"]], expected)
        past = self.links_v2(offset=45)
        self.assertEqual((past["totalCount"], past["data"]), (45, []))
        desc = self.links_v2(offset=40, limit=10, orderDirection="desc")["data"]
        self.assertEqual([r["instanceId"] for r in desc], ["ins-4", "ins-3", "ins-2", "ins-1",
                                                           "ins-0"])
        for bad in ({"limit": 0}, {"limit": 51}, {"offset": -1}):
            with self.subTest(bad=bad):
                self.assertCode(self.sim.call("DescribeVpcClassicLink", bad), 4000,
                                "InvalidParameter")

    def test_v2_new_links_come_last_with_both_vpc_ids(self):
        self.assertCode(attach(self.sim, ["ins-150", "ins-46"], vpc="gz_vpc_7"), 0)
        page = self.links_v2(offset=44, limit=5)
        self.assertEqual(page["totalCount"], 47)
        rows = [(r["instanceId"], r["vpcId"], r["unVpcId"]) for r in page["data"]]
        self.assertEqual(rows, [("ins-44", "vpc-0", "vpc-0"),
                                ("ins-150", "gz_vpc_7", "vpc-legacy1"),
                                ("ins-46", "gz_vpc_7", "vpc-legacy1")])
        page = self.links_v2(vpcId="vpc-legacy1")
        self.assertEqual([r["instanceId"] for r in page["data"]], ["ins-150", "ins-46"])

    def test_v3_pages(self):
        seen = []
        for offset in (0, 30):
            reply = self.sim.call_v3("DescribeClassicLinkInstances",
                                     {"Offset": offset, "Limit": 30})
            resp = reply.json["Response"]
            self.assertNotIn("Error", resp)
            self.assertEqual(resp["TotalCount"], 45)
            seen += [r["InstanceId"] for r in resp["ClassicLinkInstanceSet"]]
        self.assertEqual(seen, ["ins-%d" % i for i in range(45)])
        resp = self.sim.call_v3("DescribeClassicLinkInstances", {}).json["Response"]
        self.assertEqual(len(resp["ClassicLinkInstanceSet"]), 20)
        resp = self.sim.call_v3("DescribeClassicLinkInstances",
                                {"Limit": "100", "Offset": "40"}).json["Response"]
        self.assertEqual([r["InstanceId"] for r in resp["ClassicLinkInstanceSet"]],
                         ["ins-40", "ins-41", "ins-42", "ins-43", "ins-44"])


# ---- API 3.0 --------------------------------------------------------------------------------

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def attach3(sim, ids, vpc=VPC, **kw):
    return sim.call_v3(ATTACH, {"VpcId": vpc, "InstanceIds": ids}, **kw)


class V3TestCase(SimTestCase):

    def assertOk(self, reply):
        """A success answer; returns its Response."""
        self.assertEqual(reply.status, 200, reply.body)
        self.assertIsNotNone(reply.json, reply.body)
        resp = reply.json["Response"]
        self.assertNotIn("Error", resp)
        self.assertRegex(resp["RequestId"], UUID_RE)
        return resp

    def assertError(self, reply, code):
        """An error answer with Code code; returns its Message."""
        self.assertEqual(reply.status, 200, reply.body)
        self.assertIsNotNone(reply.json, reply.body)
        self.assertEqual(set(reply.json), {"Response"}, reply.json)
        resp = reply.json["Response"]
        self.assertEqual(set(resp), {"Error", "RequestId"}, resp)
        self.assertEqual(set(resp["Error"]), {"Code", "Message"}, resp)
        self.assertEqual(resp["Error"]["Code"], code, resp)
        self.assertRegex(resp["RequestId"], UUID_RE)
        return resp["Error"]["Message"]


class V3AuthenticationTest(V3TestCase):

    def test_signed_call_succeeds(self):
        reply = attach3(self.sim, ["ins-a"])
        self.assertEqual(set(self.assertOk(reply)), {"RequestId"})
        self.assertEqual(reply.headers["Content-Type"], "application/json")
        self.assertEqual(self.sim.linked("ins-a"), VPC)
        self.assertOk(attach3(self.sim, ["ins-b"], content_type="application/json"))
        stats = self.sim.stats()
        self.assertEqual(stats["byVersion"], {"2": 0, "3": 2})
        self.assertEqual(stats["byAction"], {ATTACH: 2})
        self.assertEqual(stats["byResult"], {"0": 2})
        self.assertEqual(stats["instances"]["attached"], {"ins-a": 1, "ins-b": 1})

    def test_request_ids_differ(self):
        ids = {attach3(self.sim, ["ins-nothere"]).json["Response"]["RequestId"]
               for _ in range(20)}
        self.assertEqual(len(ids), 20)

    def test_wrong_key_is_signature_failure(self):
        self.assertError(attach3(self.sim, ["ins-a"], secret_key="not-the-key"),
                         "AuthFailure.SignatureFailure")
        self.assertIsNone(self.sim.linked("ins-a"))

    def test_unknown_secret_id(self):
        self.assertError(attach3(self.sim, ["ins-a"], secret_id="AKIDnobody"),
                         "AuthFailure.SecretIdNotFound")

    def test_tampered_body_or_header_fails(self):
        signed = json.dumps({"VpcId": VPC, "InstanceIds": ["ins-a"]}).encode()
        sent = json.dumps({"VpcId": VPC, "InstanceIds": ["ins-b"]}).encode()
        ts = int(time.time())
        headers = {"Content-Type": simlib.V3_CONTENT_TYPE, "X-TC-Action": ATTACH,
                   "X-TC-Version": simlib.V3_VERSION, "X-TC-Region": "ap-guangzhou",
                   "X-TC-Timestamp": str(ts),
                   "Authorization": simlib.tc3_authorization(self.sim.secret_id,
                                                             self.sim.secret_key, signed,
                                                             "127.0.0.1", ts)}
        self.assertError(self.sim.request_v3(sent, headers), "AuthFailure.SignatureFailure")
        # The content type is signed too.
        headers["Content-Type"] = "application/json"
        self.assertError(self.sim.request_v3(signed, headers), "AuthFailure.SignatureFailure")
        headers["Content-Type"] = simlib.V3_CONTENT_TYPE
        self.assertOk(self.sim.request_v3(signed, headers))
        self.assertEqual(self.sim.linked("ins-a"), VPC)
        self.assertIsNone(self.sim.linked("ins-b"))

    def test_host_is_signed_without_port(self):
        self.assertError(attach3(self.sim, ["ins-a"], host="127.0.0.1:%d" % self.sim.port),
                         "AuthFailure.SignatureFailure")
        self.assertError(attach3(self.sim, ["ins-a"], host="vpc.tencentcloudapi.com"),
                         "AuthFailure.SignatureFailure")
        self.assertOk(attach3(self.sim, ["ins-a"], host="127.0.0.1"))

    def test_credential_scope_must_match(self):
        self.assertError(attach3(self.sim, ["ins-a"], service="cvm"),
                         "AuthFailure.SignatureFailure")
        self.assertError(attach3(self.sim, ["ins-a"], date="2019-02-25"),
                         "AuthFailure.SignatureFailure")

    def test_more_signed_headers(self):
        # Newer SDKs also sign x-tc-action; any signed header list with content-type and host.
        payload = json.dumps({"VpcId": VPC, "InstanceIds": ["ins-a"]}).encode()
        ts = int(time.time())
        signed = [("content-type", simlib.V3_CONTENT_TYPE), ("host", "127.0.0.1"),
                  ("x-tc-action", ATTACH)]
        auth = simlib.tc3_authorization(self.sim.secret_id, self.sim.secret_key, payload,
                                        "127.0.0.1", ts, signed_headers=signed)
        self.assertIn("SignedHeaders=content-type;host;x-tc-action,", auth)
        headers = {"Content-Type": simlib.V3_CONTENT_TYPE, "X-TC-Action": ATTACH,
                   "X-TC-Version": simlib.V3_VERSION, "X-TC-Region": "ap-guangzhou",
                   "X-TC-Timestamp": str(ts), "Authorization": auth}
        self.assertOk(self.sim.request_v3(payload, headers))
        auth = simlib.tc3_authorization(self.sim.secret_id, self.sim.secret_key, payload,
                                        "127.0.0.1", ts, signed_headers=signed[1:])
        headers["Authorization"] = auth
        self.assertError(self.sim.request_v3(payload, headers),
                         "AuthFailure.InvalidAuthorization")

    def test_malformed_authorization(self):
        for auth in ("Bearer abc", "TC3-HMAC-SHA256 Credential=x",
                     "TC3-HMAC-SHA256 Credential=%s/2024-01-01/vpc/tc3_request, "
                     "SignedHeaders=content-type;host, Signature=short" % self.sim.secret_id):
            with self.subTest(auth=auth):
                self.assertError(attach3(self.sim, ["ins-a"], headers={"Authorization": auth}),
                                 "AuthFailure.InvalidAuthorization")

    def test_timestamp_window(self):
        now = int(time.time())
        for ts in (now - 320, now + 320, now - 7200):
            with self.subTest(ts=ts - now):
                self.assertError(attach3(self.sim, ["ins-a"], timestamp=ts),
                                 "AuthFailure.SignatureExpire")
        self.assertIsNone(self.sim.linked("ins-a"))
        self.assertOk(attach3(self.sim, ["ins-a"], timestamp=now - 250))
        self.sim.config({"windowSec": 7200})
        self.assertOk(attach3(self.sim, ["ins-b"], timestamp=now - 3600))
        self.sim.config({"clockSkewSec": 10000, "windowSec": 300})
        self.assertError(attach3(self.sim, ["ins-c"]), "AuthFailure.SignatureExpire")
        self.assertOk(attach3(self.sim, ["ins-c"], timestamp=int(time.time()) + 10000))

    def test_same_request_twice_is_accepted(self):
        # API 3.0 has no nonce: an identical request within the window is answered again.
        payload = b"{}"
        ts = int(time.time())
        headers = {"Content-Type": simlib.V3_CONTENT_TYPE,
                   "X-TC-Action": "DescribeClassicLinkInstances",
                   "X-TC-Version": simlib.V3_VERSION, "X-TC-Region": "ap-guangzhou",
                   "X-TC-Timestamp": str(ts),
                   "Authorization": simlib.tc3_authorization(self.sim.secret_id,
                                                             self.sim.secret_key, payload,
                                                             "127.0.0.1", ts)}
        first = self.assertOk(self.sim.request_v3(payload, headers))
        second = self.assertOk(self.sim.request_v3(payload, headers))
        self.assertNotEqual(first["RequestId"], second["RequestId"])

    def test_missing_headers(self):
        for name in ("X-TC-Action", "X-TC-Version", "X-TC-Region", "X-TC-Timestamp",
                     "Authorization"):
            with self.subTest(missing=name):
                message = self.assertError(attach3(self.sim, ["ins-a"], omit=[name]),
                                           "MissingParameter")
                self.assertIn(name, message)
        self.assertIsNone(self.sim.linked("ins-a"))

    def test_content_type_and_timestamp_syntax(self):
        self.assertError(attach3(self.sim, ["ins-a"],
                                 content_type="application/x-www-form-urlencoded"),
                         "InvalidParameter")
        self.assertError(attach3(self.sim, ["ins-a"], omit=["Content-Type"]), "InvalidParameter")
        self.assertError(attach3(self.sim, ["ins-a"], headers={"X-TC-Timestamp": "soon"}),
                         "InvalidParameter")

    def test_unknown_action_or_version(self):
        self.assertError(self.sim.call_v3("RunInstances", {}), "InvalidAction")
        self.assertError(self.sim.call_v3("DescribeVpcEx", {}), "InvalidAction")  # v2 only
        self.assertError(attach3(self.sim, ["ins-a"], version="2020-01-01"), "InvalidAction")
        self.assertIsNone(self.sim.linked("ins-a"))
        # An action of another version counts as unknown.
        self.assertEqual(self.sim.stats()["byAction"], {"(other)": 3})
        # v2 knows no DescribeClassicLinkInstances either.
        self.assertCode(self.sim.call("DescribeClassicLinkInstances", {}), 6100, "InvalidAction")

    def test_only_post_on_root(self):
        self.assertEqual(self.sim.get("/").status, 405)
        self.assertEqual(self.sim.get("/v3").status, 404)

    def test_token(self):
        creds = [("AKIDtoken3", "tokenkey3", "tok-v3")]
        with Sim().start(seed=SEED, credentials=creds) as sim:
            self.assertError(attach3(sim, ["ins-a"]), "AuthFailure.TokenFailure")
            self.assertError(attach3(sim, ["ins-a"], token="other"), "AuthFailure.TokenFailure")
            self.assertOk(attach3(sim, ["ins-a"], token="tok-v3"))

    def test_sign_host_flag(self):
        with Sim().start(seed=SEED, extra_args=["--sign-host", "vpc.tencentcloudapi.com"]) as sim:
            self.assertError(attach3(sim, ["ins-a"]), "AuthFailure.SignatureFailure")
            self.assertOk(attach3(sim, ["ins-a"], host="vpc.tencentcloudapi.com"))


class V3WorldTest(V3TestCase):

    def test_business_errors(self):
        cases = [
            (["ins-a"], "vpc-nothere", "ResourceNotFound"),
            (["ins-a"], "vpc-sh", "ResourceNotFound"),  # another region
            (["ins-a", "ins-nothere"], VPC, "ResourceNotFound"),
            (["ins-sh"], VPC, "ResourceNotFound"),
            (["ins-a", "ins-linked"], VPC, "UnsupportedOperation.ClassicInstanceIdAlreadyExists"),
            (["ins-a", "ins-b", "ins-c", "ins-d", "ins-e"], VPC, "LimitExceeded"),
        ]
        for ids, vpc, code in cases:
            with self.subTest(ids=ids, vpc=vpc):
                self.assertError(attach3(self.sim, ids, vpc=vpc), code)
        # All or nothing: none of those calls linked anything.
        self.assertEqual([l["instanceId"] for l in self.sim.state()["links"]], ["ins-linked"])
        self.assertOk(attach3(self.sim, ["ins-a", "ins-b", "ins-c", "ins-d"]))
        self.assertError(attach3(self.sim, ["ins-e"]), "LimitExceeded")

    def test_same_vpc_choice(self):
        self.assertOk(attach3(self.sim, ["ins-a"]))
        self.assertError(attach3(self.sim, ["ins-a"]),
                         "UnsupportedOperation.ClassicInstanceIdAlreadyExists")
        self.sim.config({"sameVpcAttach": "success"})
        self.assertOk(attach3(self.sim, ["ins-a"]))
        self.assertError(attach3(self.sim, ["ins-linked"]),
                         "UnsupportedOperation.ClassicInstanceIdAlreadyExists")

    def test_detach(self):
        body = {"VpcId": OTHER_VPC, "InstanceIds": ["ins-linked"]}
        self.assertOk(self.sim.call_v3(DETACH, body))
        self.assertIsNone(self.sim.linked("ins-linked"))
        self.assertError(self.sim.call_v3(DETACH, body), "ResourceNotFound")
        self.sim.config({"detachUnlinked": "success"})
        self.assertOk(self.sim.call_v3(DETACH, body))
        self.assertEqual(self.sim.stats()["instances"]["detached"], {"ins-linked": 2})

    def test_parameter_errors(self):
        cases = [
            ({"InstanceIds": ["ins-a"]}, "MissingParameter"),
            ({"VpcId": VPC}, "MissingParameter"),
            ({"VpcId": VPC, "InstanceIds": []}, "MissingParameter"),
            ({"VpcId": 7, "InstanceIds": ["ins-a"]}, "InvalidParameter"),
            ({"VpcId": VPC, "InstanceIds": "ins-a"}, "InvalidParameter"),
            ({"VpcId": VPC, "InstanceIds": ["ins-a", 3]}, "InvalidParameter"),
            ({"VpcId": VPC_LEGACY, "InstanceIds": ["ins-a"]}, "InvalidParameterValue.Malformed"),
            ({"VpcId": "VPC-2ARI9M7H", "InstanceIds": ["ins-a"]},
             "InvalidParameterValue.Malformed"),
            ({"VpcId": "vpc-", "InstanceIds": ["ins-a"]}, "InvalidParameterValue.Malformed"),
            ({"VpcId": VPC, "InstanceIds": ["ins-a", "i-abc"]}, "InvalidParameterValue.Malformed"),
            ({"VpcId": VPC, "InstanceIds": ["ins-a;drop"]}, "InvalidParameterValue.Malformed"),
            ({"VpcId": VPC, "InstanceIds": ["ins-a", "ins-a"]},
             "InvalidParameterValue.Duplicate"),
            ({"VpcId": VPC, "InstanceIds": ["ins-a"], "vpcId": VPC}, "UnknownParameter"),
            ([VPC], "InvalidParameter"),
        ]
        for body, code in cases:
            with self.subTest(body=body):
                self.assertError(self.sim.call_v3(ATTACH, body), code)
        self.assertError(attach3(self.sim, ["ins-a"], body=b"{not json"), "InvalidParameter")
        self.assertError(attach3(self.sim, ["ins-a"], body=b'{"VpcId": "x"} trailing'),
                         "InvalidParameter")
        self.sim.config({"maxInstances": 2})
        self.assertError(attach3(self.sim, ["ins-a", "ins-b", "ins-c"]),
                         "InvalidParameterValue.Limit")
        self.assertEqual([l["instanceId"] for l in self.sim.state()["links"]], ["ins-linked"])
        # No call counted against an instance it never reached.
        self.assertEqual(self.sim.stats()["instances"]["calls"], {})

    def test_describe_classic_link_instances(self):
        self.assertOk(attach3(self.sim, ["ins-a", "ins-b"]))
        resp = self.assertOk(self.sim.call_v3("DescribeClassicLinkInstances", {}))
        self.assertEqual(resp["TotalCount"], 3)
        self.assertEqual(resp["ClassicLinkInstanceSet"],
                         [{"VpcId": OTHER_VPC, "InstanceId": "ins-linked"},
                          {"VpcId": VPC, "InstanceId": "ins-a"},
                          {"VpcId": VPC, "InstanceId": "ins-b"}])
        cases = [
            ([{"Name": "vpc-id", "Values": [VPC]}], ["ins-a", "ins-b"]),
            ([{"Name": "instance-id", "Values": ["ins-b", "ins-linked", "ins-c"]}],
             ["ins-linked", "ins-b"]),
            ([{"Name": "vpc-id", "Values": [VPC]}, {"Name": "instance-id", "Values": ["ins-b"]}],
             ["ins-b"]),
            ([{"Name": "vpc-id", "Values": []}], []),
        ]
        for filters, ids in cases:
            with self.subTest(filters=filters):
                resp = self.assertOk(self.sim.call_v3("DescribeClassicLinkInstances",
                                                      {"Filters": filters}))
                self.assertEqual([r["InstanceId"] for r in resp["ClassicLinkInstanceSet"]], ids)
                self.assertEqual(resp["TotalCount"], len(ids))
        resp = self.assertOk(self.sim.call_v3("DescribeClassicLinkInstances", {},
                                              region="ap-shanghai"))
        self.assertEqual(resp["TotalCount"], 0)
        errors = [
            ({"Filters": {"Name": "vpc-id"}}, "InvalidParameter"),
            ({"Filters": ["vpc-id"]}, "InvalidParameter.FilterNotDict"),
            ({"Filters": [{"Name": "zone", "Values": ["x"]}]}, "InvalidParameter.FilterInvalidKey"),
            ({"Filters": [{"Name": "vpc-id", "Values": VPC}]},
             "InvalidParameter.FilterValuesNotList"),
            ({"Filters": [{"Name": "vpc-id", "Values": [1]}]},
             "InvalidParameter.FilterValuesNotList"),
            ({"Filters": [{"Name": "vpc-id", "Values": [VPC], "Op": "="}]}, "UnknownParameter"),
            ({"Limit": 0}, "InvalidParameterValue.Range"),
            ({"Limit": 101}, "InvalidParameterValue.Range"),
            ({"Limit": "x"}, "InvalidParameter"),
            ({"Offset": -1}, "InvalidParameter"),
            ({"Offset": 1.5}, "InvalidParameter"),
            ({"Order": "asc"}, "UnknownParameter"),
        ]
        for body, code in errors:
            with self.subTest(body=body):
                self.assertError(self.sim.call_v3("DescribeClassicLinkInstances", body), code)

    def test_v2_and_v3_share_the_world(self):
        self.assertOk(attach3(self.sim, ["ins-a"]))
        self.assertCode(attach(self.sim, ["ins-a"]), 4000, "InstanceAlreadyLinked")
        self.assertCode(self.sim.call(DETACH, {"vpcId": VPC_LEGACY, "instanceIds": ["ins-a"]}), 0)
        self.assertError(self.sim.call_v3(DETACH, {"VpcId": VPC, "InstanceIds": ["ins-a"]}),
                         "ResourceNotFound")
        stats = self.sim.stats()
        self.assertEqual(stats["byVersion"], {"2": 2, "3": 2})
        self.assertEqual(stats["byAction"], {ATTACH: 2, DETACH: 2})
        self.assertEqual(stats["byResult"], {"0": 2, "4000": 1, "ResourceNotFound": 1})
        self.assertEqual(stats["instances"]["calls"], {"ins-a": 4})
        self.assertEqual(stats["instances"]["attached"], {"ins-a": 1})
        self.assertEqual(stats["instances"]["detached"], {"ins-a": 1})


class V3FaultTest(V3TestCase):

    def script(self, fault, instance="ins-a", times=1, **extra):
        spec = {"instanceId": instance, "times": times, "fault": fault}
        spec.update(extra)
        self.sim.add_faults({"scripts": [spec]})

    def test_code_faults_map_to_v3_codes(self):
        cases = [("code:4400", "RequestLimitExceeded"), ("code:5100", "InternalError"),
                 ("code:6000", "InternalError"), ("code:6200", "InternalError"),
                 ("code:4100", "AuthFailure.SignatureFailure"),
                 ("code:4104", "AuthFailure.SecretIdNotFound"),
                 ("code:4000:ActionLocked", "ActionLocked"),
                 ("code:4400:RequestLimitExceeded.UinLimitExceeded",
                  "RequestLimitExceeded.UinLimitExceeded")]
        for fault, code in cases:
            with self.subTest(fault=fault):
                self.script(fault)
                message = self.assertError(attach3(self.sim, ["ins-a"]), code)
                self.assertIn("injected", message)
                self.assertIsNone(self.sim.linked("ins-a"))
        self.assertOk(attach3(self.sim, ["ins-a"]))
        stats = self.sim.stats()
        self.assertEqual(stats["byResult"]["InternalError"], 3)
        self.assertEqual(stats["byFault"]["code:4400"], 1)

    def test_retry_after(self):
        self.sim.add_faults({"retryAfter": 2})
        self.script("code:4400")
        reply = attach3(self.sim, ["ins-a"])
        self.assertError(reply, "RequestLimitExceeded")
        self.assertEqual(reply.headers["Retry-After"], "2")
        self.script("code:6000", retryAfter=7)
        reply = attach3(self.sim, ["ins-a"])
        self.assertError(reply, "InternalError")
        self.assertEqual(reply.headers["Retry-After"], "7")
        self.assertIsNone(attach3(self.sim, ["ins-a"]).headers["Retry-After"])

    def test_http_drop_hang(self):
        self.script("http:503")
        reply = attach3(self.sim, ["ins-a"])
        self.assertEqual(reply.status, 503)
        self.assertIsNone(reply.json)
        self.script("drop")
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            attach3(self.sim, ["ins-a"])
        self.sim.add_faults({"hangMs": 3000})
        self.script("hang")
        with self.assertRaises((socket.timeout, TimeoutError)):
            attach3(self.sim, ["ins-a"], timeout=0.5)
        self.assertIsNone(self.sim.linked("ins-a"))
        self.assertEqual(self.sim.stats()["byResult"],
                         {"http:503": 1, "drop": 1, "hang": 1})

    def test_apply_then_fail(self):
        self.script("http:502", apply=True)
        self.assertEqual(attach3(self.sim, ["ins-a"]).status, 502)
        self.assertEqual(self.sim.linked("ins-a"), VPC)
        self.script("code:6000", instance="ins-b", apply=True)
        self.assertError(attach3(self.sim, ["ins-b"]), "InternalError")
        self.assertEqual(self.sim.linked("ins-b"), VPC)
        self.assertEqual(self.sim.stats()["instances"]["attached"], {"ins-a": 1, "ins-b": 1})
        self.assertError(attach3(self.sim, ["ins-a"]),
                         "UnsupportedOperation.ClassicInstanceIdAlreadyExists")

    def test_task_fail_answers_success_and_changes_nothing(self):
        self.script("task_fail")
        self.assertOk(attach3(self.sim, ["ins-a"]))
        self.assertIsNone(self.sim.linked("ins-a"))

    def test_random_faults(self):
        self.sim.add_faults({"rate": 1.0, "kinds": ["code:5100"]})
        for _ in range(3):
            self.assertError(self.sim.call_v3("DescribeClassicLinkInstances", {}),
                             "InternalError")

    def test_call_log(self):
        reply = attach3(self.sim, ["ins-a"], token="tok-never-logged")
        request_id = self.assertOk(reply)["RequestId"]
        attach3(self.sim, ["ins-b"], secret_key="bad")
        self.script("code:4400", instance="ins-c")
        attach3(self.sim, ["ins-c"])
        entries = self.sim.read_call_log()[-3:]
        self.assertEqual([e["version"] for e in entries], [3, 3, 3])
        self.assertEqual([e["result"] for e in entries],
                         ["0", "AuthFailure.SignatureFailure", "RequestLimitExceeded"])
        self.assertEqual([e["errorCode"] for e in entries],
                         [None, "AuthFailure.SignatureFailure", "RequestLimitExceeded"])
        first = entries[0]
        self.assertEqual(first["requestId"], request_id)
        self.assertEqual(first["action"], ATTACH)
        self.assertEqual(first["body"], {"VpcId": VPC, "InstanceIds": ["ins-a"]})
        self.assertEqual(first["params"]["X-TC-Region"], "ap-guangzhou")
        self.assertTrue(first["applied"])
        self.assertFalse(first["throttled"])
        self.assertFalse(entries[1]["authenticated"])
        self.assertEqual(entries[2]["fault"], "code:4400")
        with open(self.sim.call_log) as f:
            text = f.read()
        self.assertNotIn("Authorization", text)
        self.assertNotIn("Signature=", text)
        self.assertNotIn("tok-never-logged", text)
        self.assertNotIn(self.sim.secret_id, text)
        self.assertNotIn(self.sim.secret_key, text)


# ---- the quota ------------------------------------------------------------------------------

class QuotaTest(unittest.TestCase):
    """--quota N: N calls per second per (account, action), sliding; per region on request."""

    QUOTA = 5
    CREDS = [(simlib.DEFAULT_SECRET_ID, simlib.DEFAULT_SECRET_KEY), ("AKIDsecond", "key2")]

    @classmethod
    def setUpClass(cls):
        cls.sim = Sim().start(seed=SEED, credentials=cls.CREDS,
                              extra_args=["--quota", str(cls.QUOTA), "--retry-after", "2"])

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def setUp(self):
        self.sim.reset()
        time.sleep(1.05)  # empty every window

    def burst(self, n, send, prepare=None):
        """n calls as fast as possible, after prepare(); retried from scratch (reset, an empty
        window, prepare() again) if the burst took too long to stay within one second (a
        stalled machine). Returns the replies."""
        for _ in range(3):
            if prepare is not None:
                prepare()
            start = time.monotonic()
            replies = [send() for _ in range(n)]
            if time.monotonic() - start < 0.8:
                return replies
            self.sim.reset()
            time.sleep(1.05)
        self.fail("could not send %d calls within 0.8 s" % n)

    def v2_code(self, reply):
        self.assertEqual(reply.status, 200)
        return reply.json["code"]

    def test_calls_over_the_quota_get_4400_with_retry_after(self):
        replies = self.burst(8, lambda: self.sim.call("DescribeVpcEx", {}))
        self.assertEqual([self.v2_code(r) for r in replies], [0] * 5 + [4400] * 3)
        self.assertEqual(replies[-1].json["codeDesc"], "RequestLimitExceeded")
        self.assertEqual(replies[-1].headers["Retry-After"], "2")
        self.assertIsNone(replies[0].headers["Retry-After"])
        stats = self.sim.stats()
        self.assertEqual(stats["quota"], 5)
        self.assertEqual(stats["throttled"], 3)
        self.assertEqual(stats["byResult"], {"0": 5, "4400": 3})
        self.assertEqual(sum(stats["acceptedPerSecond"]), 5)
        self.assertEqual(sum(stats["throttledPerSecond"]), 3)
        self.assertEqual(len(stats["acceptedPerSecond"]), 60)
        self.assertLessEqual(abs(stats["perSecondEnd"] - time.time()), 2)
        # A second later the window has room again.
        time.sleep(1.05)
        self.assertEqual(self.v2_code(self.sim.call("DescribeVpcEx", {})), 0)

    def test_quota_is_per_account_and_action_across_regions(self):
        def mixed():
            return [self.sim.call("DescribeVpcEx", {}, region=region)
                    for region in ("ap-guangzhou", "ap-shanghai", "ap-guangzhou",
                                   "ap-beijing", "ap-shanghai", "ap-guangzhou")] + \
                [self.sim.call("DescribeVpcClassicLink", {}),
                 attach(self.sim, ["ins-nothere"]),
                 self.sim.call("DescribeVpcEx", {}, secret_id="AKIDsecond", secret_key="key2")]
        codes = [self.v2_code(r) for r in self.burst(1, mixed)[0]]
        # Regions share the account's quota; other actions and other SecretIds have their own.
        self.assertEqual(codes, [0, 0, 0, 0, 0, 4400, 0, 4000, 0])
        stats = self.sim.stats()
        self.assertEqual(stats["throttled"], 1)
        self.assertFalse(self.sim.config()["quotaPerRegion"])

    def test_quota_per_region_setting(self):
        def mixed():
            return [self.sim.call("DescribeVpcEx", {}) for _ in range(5)] + \
                [self.sim.call("DescribeVpcEx", {}, region="ap-shanghai") for _ in range(6)]
        rounds = self.burst(1, mixed, prepare=lambda: self.sim.config({"quotaPerRegion": True}))
        codes = [self.v2_code(r) for r in rounds[0]]
        self.assertEqual(codes, [0] * 10 + [4400])
        self.sim.reset()
        self.assertFalse(self.sim.config()["quotaPerRegion"])
        with self.assertRaises(simlib.SimError):
            self.sim.config({"quotaPerRegion": "yes"})

    def test_short_region_names_share_the_per_region_quota(self):
        regions = itertools.cycle(["gz", "ap-guangzhou"])
        replies = self.burst(7, lambda: self.sim.call("DescribeVpcEx", {}, region=next(regions)),
                             prepare=lambda: self.sim.config({"quotaPerRegion": True}))
        self.assertEqual([self.v2_code(r) for r in replies], [0] * 5 + [4400, 4400])

    def test_per_action_counts_and_rates(self):
        def calls():
            return [self.sim.call("DescribeVpcEx", {}) for _ in range(7)] + \
                [attach3(self.sim, ["ins-a"]), attach(self.sim, ["ins-b"])]
        replies = self.burst(1, calls)[0]
        self.assertEqual([self.v2_code(r) for r in replies[:7]], [0] * 5 + [4400] * 2)
        per_action = self.sim.stats()["perAction"]
        self.assertEqual(set(per_action), {"DescribeVpcEx", ATTACH})
        describe = per_action["DescribeVpcEx"]
        self.assertEqual((describe["accepted"], describe["throttled"]), (5, 2))
        self.assertEqual(sum(describe["acceptedPerSecond"]), 5)
        self.assertEqual(sum(describe["throttledPerSecond"]), 2)
        self.assertEqual(len(describe["acceptedPerSecond"]), 60)
        # v2 and v3 calls of one action are one action (and one quota).
        self.assertEqual((per_action[ATTACH]["accepted"], per_action[ATTACH]["throttled"]),
                         (2, 0))

    def test_v3_is_throttled_too_and_shares_the_quota(self):
        def calls():
            return [attach3(self.sim, ["ins-nothere"]) for _ in range(3)] + \
                [attach(self.sim, ["ins-nothere"]) for _ in range(2)] + \
                [attach3(self.sim, ["ins-a"]), attach(self.sim, ["ins-a"])]
        replies = self.burst(1, calls)[0]
        codes = [r.json["Response"].get("Error", {}).get("Code", "ok") if "Response" in r.json
                 else r.json["codeDesc"] for r in replies]
        self.assertEqual(codes, ["ResourceNotFound"] * 3 + ["InvalidInstance.NotFound"] * 2 +
                         ["RequestLimitExceeded", "RequestLimitExceeded"])
        self.assertEqual(replies[5].headers["Retry-After"], "2")
        self.assertIsNone(self.sim.linked("ins-a"))
        stats = self.sim.stats()
        self.assertEqual(stats["throttled"], 2)
        # A throttled call still named the instance; it changed nothing.
        self.assertEqual(stats["instances"]["calls"]["ins-a"], 2)
        self.assertNotIn("ins-a", stats["instances"]["attached"])
        entries = [e for e in self.sim.read_call_log() if e["throttled"]]
        self.assertEqual([e["version"] for e in entries[-2:]], [3, 2])

    def test_unauthenticated_and_invalid_calls_use_no_quota(self):
        for _ in range(8):
            self.sim.call("DescribeVpcEx", {}, secret_key="bad")
            self.sim.call("DescribeVpcClassicLink", {"limit": 99})
        replies = self.burst(5, lambda: self.sim.call("DescribeVpcEx", {}))
        self.assertEqual([self.v2_code(r) for r in replies], [0] * 5)
        self.assertEqual(self.sim.stats()["throttled"], 0)

    def test_sustained_load_is_held_to_the_quota(self):
        # About 4x the quota offered for 3 s: per second never more than the quota accepted.
        deadline = time.monotonic() + 3.0
        sent = accepted = 0
        while time.monotonic() < deadline:
            code = self.v2_code(self.sim.call("DescribeVpcEx", {}))
            sent += 1
            accepted += code == 0
            time.sleep(0.05)
        stats = self.sim.stats()
        per_second = stats["acceptedPerSecond"]
        self.assertLessEqual(max(per_second), self.QUOTA, per_second)
        self.assertEqual(sum(per_second), accepted)
        self.assertEqual(stats["throttled"], sent - accepted)
        self.assertEqual(sum(stats["throttledPerSecond"]), sent - accepted)
        self.assertGreaterEqual(accepted, 2 * self.QUOTA)
        self.assertGreater(stats["throttled"], 0)

    def test_config_and_reset(self):
        self.assertEqual(self.sim.config()["quota"], 5)
        replies = self.burst(12, lambda: self.sim.call("DescribeVpcEx", {}),
                             prepare=lambda: self.sim.config({"quota": 0}))
        self.assertEqual([self.v2_code(r) for r in replies], [0] * 12)
        replies = self.burst(3, lambda: self.sim.call("DescribeVpcClassicLink", {}),
                             prepare=lambda: self.sim.config({"quota": 2}))
        self.assertEqual([self.v2_code(r) for r in replies], [0, 0, 4400])
        with self.assertRaises(simlib.SimError):
            self.sim.config({"quota": -1})
        self.sim.reset()
        self.assertEqual(self.sim.config()["quota"], 5)
        self.assertEqual(self.sim.stats()["throttled"], 0)

    def test_reserve_spends_part_of_the_quota(self):
        # A phantom client spends 6 of 10 calls/s: a fresh burst finds its last second already in
        # the window, 4 slots free.
        replies = self.burst(8, lambda: self.sim.call("DescribeVpcEx", {}),
                             prepare=lambda: self.sim.config({"quota": 10, "quotaReserve": 6}))
        self.assertEqual([self.v2_code(r) for r in replies], [0] * 4 + [4400] * 4)
        stats = self.sim.stats()
        self.assertEqual((stats["quotaReserve"], stats["throttled"]), (6, 4))
        self.assertGreaterEqual(stats["reserveAdmitted"], 6)
        # Offered 50 calls/s for 3 s, a client gets what the phantom leaves: 4 a second.
        self.sim.config({"quota": 20, "quotaReserve": 15})
        before = self.sim.stats()["reserveAdmitted"]
        deadline = time.monotonic() + 3.0
        sent = accepted = 0
        while time.monotonic() < deadline:
            accepted += self.v2_code(self.sim.call("DescribeVpcEx", {})) == 0
            sent += 1
            time.sleep(0.02)
        stats = self.sim.stats()
        self.assertGreaterEqual(sent, 60)
        # 5 free slots in the first window, then 5 a second; a stalled machine sends fewer
        self.assertLessEqual(accepted, 5 + 3 * 5 + 1)
        self.assertGreaterEqual(accepted, 10)
        self.assertGreaterEqual(stats["reserveAdmitted"] - before, 2 * 15)
        self.assertLessEqual(max(stats["acceptedPerSecond"]), 20)
        # The reserve stays below the quota; a reset takes it away.
        for bad in ({"quotaReserve": 20}, {"quota": 15}, {"quotaReserve": -1}):
            with self.subTest(bad=bad), self.assertRaises(simlib.SimError):
                self.sim.config(bad)
        self.sim.reset()
        self.assertEqual(self.sim.config()["quotaReserve"], 0)

    def test_reserve_flag(self):
        with Sim().start(seed=SEED, extra_args=["--quota", "10", "--quota-reserve", "9"]) as sim:
            self.assertEqual((sim.config()["quota"], sim.config()["quotaReserve"]), (10, 9))
            codes = [sim.call("DescribeVpcEx", {}).json["code"] for _ in range(3)]
            self.assertEqual(codes, [0, 4400, 4400])

    def test_no_quota_by_default(self):
        with Sim().start(seed=SEED) as sim:
            self.assertEqual(sim.config()["quota"], 0)
            codes = [sim.call("DescribeVpcEx", {}).json["code"] for _ in range(20)]
            self.assertEqual(codes, [0] * 20)
            stats = sim.stats()
            self.assertEqual((stats["throttled"], sum(stats["acceptedPerSecond"])), (0, 20))


# ---- temporary credentials: the CVM metadata service and STS --------------------------------

ROLE = "classiclink-worker"
PROVIDER_ID = "tke-oidc-provider"
ROLE_ARN = "qcs::cam::uin/100000000001:roleName/classiclink-worker"
CRED_FIELDS = {"TmpSecretId", "TmpSecretKey", "ExpiredTime", "Expiration", "Token", "Code"}


def rfc3339(unix_s):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix_s))


def v3_code(reply):
    """The API 3.0 error Code of a reply, or None for a success."""
    return reply.json["Response"].get("Error", {}).get("Code")


class MetadataServiceTest(unittest.TestCase):
    """GET /latest/meta-data/cam/security-credentials/[ROLE] and the credentials it issues."""

    LIFE = 3

    @classmethod
    def setUpClass(cls):
        cls.sim = Sim().start(seed=SEED, extra_args=[
            "--cvm-role", ROLE, "--temp-credential-life-s", str(cls.LIFE)])

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def setUp(self):
        self.sim.reset()

    def fetch(self):
        reply = self.sim.metadata(ROLE)
        self.assertEqual(reply.status, 200, reply.body)
        return reply.json

    def test_role_list_and_credential_document(self):
        listing = self.sim.metadata()
        self.assertEqual(listing.status, 200)
        self.assertEqual(listing.body, ROLE.encode())  # one name a line, no newline after it
        self.assertTrue(listing.headers["Content-Type"].startswith("text/plain"))
        before = int(time.time())
        cred = self.fetch()
        after = int(time.time())
        self.assertEqual(set(cred), CRED_FIELDS)
        self.assertEqual(cred["Code"], "Success")
        self.assertRegex(cred["TmpSecretId"], r"^AKID[0-9A-Za-z]{32}$")
        self.assertRegex(cred["TmpSecretKey"], r"^[0-9A-Za-z]{32}$")
        self.assertRegex(cred["Token"], r"^[0-9A-Za-z_-]{100,}$")
        self.assertIsInstance(cred["ExpiredTime"], int)
        self.assertGreaterEqual(cred["ExpiredTime"], before + self.LIFE)
        self.assertLessEqual(cred["ExpiredTime"], after + self.LIFE)
        self.assertEqual(cred["Expiration"], rfc3339(cred["ExpiredTime"]))

    def test_unknown_role_and_other_paths(self):
        self.assertEqual(self.sim.metadata("other-role").status, 404)
        self.assertEqual(self.sim.metadata(ROLE + "x").status, 404)
        self.assertEqual(self.sim.get(simlib.METADATA_PATH.rstrip("/")).status, 404)
        self.assertEqual(self.sim.get("/latest/meta-data/").status, 404)
        req = urllib.request.Request(self.sim.url + simlib.METADATA_PATH + ROLE, data=b"",
                                     method="POST")
        self.assertEqual(self.sim._send(req, 10).status, 405)
        self.assertEqual(self.sim.stats()["tempCredentials"]["issued"]["metadata"], 0)

    def test_no_role_bound_is_404(self):
        self.sim.config({"cvmRole": ""})
        self.assertEqual(self.sim.metadata().status, 404)
        self.assertEqual(self.sim.metadata(ROLE).status, 404)
        self.sim.config({"cvmRole": "other.role@x"})
        self.assertEqual(self.sim.metadata().body, b"other.role@x")
        self.assertEqual(self.sim.metadata(ROLE).status, 404)
        with self.assertRaises(simlib.SimError):
            self.sim.config({"cvmRole": "has space"})
        self.sim.reset()
        self.assertEqual(self.sim.metadata().body, ROLE.encode())

    def test_credentials_work_on_v2_and_v3_and_every_fetch_is_fresh(self):
        first, second = self.fetch(), self.fetch()
        for field in ("TmpSecretId", "TmpSecretKey", "Token"):
            self.assertNotEqual(first[field], second[field])
        # Both stay valid: a fresh fetch does not revoke the previous credential.
        self.assertEqual(attach(self.sim, ["ins-a"], **temp_credential_args(first)).json["code"],
                         0)
        self.assertIsNone(v3_code(attach3(self.sim, ["ins-b"], **temp_credential_args(second))))
        self.assertIsNone(v3_code(attach3(self.sim, ["ins-c"], **temp_credential_args(first))))
        self.assertEqual(attach(self.sim, ["ins-d"], method="POST",
                                **temp_credential_args(second)).json["code"], 0)
        self.assertEqual([self.sim.linked(i) for i in ("ins-a", "ins-b", "ins-c", "ins-d")],
                         [VPC] * 4)
        self.assertEqual(self.sim.stats()["tempCredentials"]["issued"]["metadata"], 2)

    def test_token_is_required_and_checked(self):
        args = temp_credential_args(self.fetch())
        token = args.pop("token")
        self.assertEqual(attach(self.sim, ["ins-a"], **args).json["code"], 4105)
        self.assertEqual(attach(self.sim, ["ins-a"], token=token + "x", **args).json["code"],
                         4105)
        self.assertEqual(v3_code(attach3(self.sim, ["ins-a"], **args)), "AuthFailure.TokenFailure")
        self.assertEqual(attach(self.sim, ["ins-a"], token=token, secret_id=args["secret_id"],
                                secret_key="wrong").json["code"], 4100)
        self.assertIsNone(self.sim.linked("ins-a"))

    def test_expired_credentials_are_rejected(self):
        old, other = self.fetch(), self.fetch()
        self.assertEqual(attach(self.sim, ["ins-a"], **temp_credential_args(old)).json["code"], 0)
        simlib.wait_for_time(max(old["ExpiredTime"], other["ExpiredTime"]))
        reply = attach(self.sim, ["ins-b"], **temp_credential_args(old))
        self.assertEqual((reply.json["code"], reply.json["codeDesc"]),
                         (4105, "AuthFailure.TokenFailure"))
        self.assertIn("expired", reply.json["message"])
        self.assertEqual(v3_code(attach3(self.sim, ["ins-b"], **temp_credential_args(old))),
                         "AuthFailure.TokenFailure")
        self.assertIsNone(self.sim.linked("ins-b"))
        # Configurable: refused as an unknown SecretId instead.
        self.sim.config({"expiredCredentialCode": "AuthFailure.SecretIdNotFound"})
        reply = self.sim.call("DescribeVpcEx", {}, **temp_credential_args(other))
        self.assertEqual((reply.json["code"], reply.json["codeDesc"]),
                         (4104, "AuthFailure.SecretIdNotFound"))
        self.assertEqual(v3_code(self.sim.call_v3("DescribeClassicLinkInstances", {},
                                                  **temp_credential_args(other))),
                         "AuthFailure.SecretIdNotFound")
        with self.assertRaises(simlib.SimError):
            self.sim.config({"expiredCredentialCode": "AuthFailure.Expired"})
        stats = self.sim.stats()
        self.assertEqual(stats["tempCredentials"]["rejectedExpired"], 4)
        self.assertEqual(stats["tempCredentials"]["live"], 0)
        self.assertEqual(stats["byResult"], {"0": 1, "4105": 1, "AuthFailure.TokenFailure": 1,
                                             "4104": 1, "AuthFailure.SecretIdNotFound": 1})
        self.assertNotIn("ins-b", stats["instances"]["calls"])
        # A fresh credential works again.
        self.assertEqual(attach(self.sim, ["ins-b"], **temp_credential_args(self.fetch()))
                         .json["code"], 0)
        self.assertEqual(self.sim.stats()["tempCredentials"]["live"], 1)

    def test_life_is_configurable(self):
        self.sim.config({"tempCredentialLifeSec": 600})
        cred = self.fetch()
        self.assertAlmostEqual(cred["ExpiredTime"], time.time() + 600, delta=2)
        for bad in (0, 86401, "60"):
            with self.assertRaises(simlib.SimError):
                self.sim.config({"tempCredentialLifeSec": bad})

    def test_service_down_and_malformed(self):
        self.sim.config({"metadata": "drop"})
        for role in ("", ROLE):
            with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
                self.sim.metadata(role)
        # The API itself is not affected.
        self.assertEqual(self.sim.call("DescribeVpcEx", {}).json["code"], 0)
        self.sim.config({"metadata": "http:503"})
        reply = self.sim.metadata(ROLE)
        self.assertEqual(reply.status, 503)
        self.assertIsNone(reply.json)
        self.assertEqual(self.sim.metadata().status, 503)
        self.sim.config({"metadata": "not-json"})
        reply = self.sim.metadata(ROLE)
        self.assertEqual(reply.status, 200)
        self.assertIsNone(reply.json)
        self.sim.config({"metadata": "missing-fields"})
        reply = self.sim.metadata(ROLE)
        self.assertEqual(reply.status, 200)
        self.assertEqual(set(reply.json), {"ExpiredTime", "Expiration", "Code"})
        self.assertEqual(self.sim.metadata().body, ROLE.encode())  # the list is still plain
        self.assertEqual(self.sim.stats()["tempCredentials"]["issued"]["metadata"], 0)
        self.assertEqual(self.sim.config()["metadata"], "missing-fields")
        self.sim.config({"metadata": "up"})
        self.assertEqual(set(self.fetch()), CRED_FIELDS)
        for bad in ("down", "http:200", "http:600", 503):
            with self.assertRaises(simlib.SimError):
                self.sim.config({"metadata": bad})
        stats = self.sim.stats()["metadata"]
        self.assertEqual(stats["requests"], 8)
        self.assertEqual(stats["byResult"], {"drop": 2, "http:503": 2, "not-json": 1,
                                             "missing-fields": 1, "200": 2})
        self.sim.config({"metadata": "http:500"})
        self.sim.reset()
        self.assertEqual(self.sim.config()["metadata"], "up")

    def test_secrets_stay_out_of_the_call_log_and_stderr(self):
        cred = self.fetch()
        attach(self.sim, ["ins-a"], **temp_credential_args(cred))
        attach3(self.sim, ["ins-b"], **temp_credential_args(cred))
        entries = self.sim.read_call_log()
        self.assertEqual([e["result"] for e in entries[-2:]], ["0", "0"])
        with open(self.sim.call_log) as f:
            log = f.read()
        for secret in (cred["TmpSecretId"], cred["TmpSecretKey"], cred["Token"]):
            self.assertNotIn(secret, log)
            self.assertNotIn(secret, self.sim.stderr())


class StsTest(unittest.TestCase):
    """POST / with X-TC-Action AssumeRoleWithWebIdentity, as the SDKs' OIDC providers send it."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.token_file = os.path.join(cls.tmp.name, "token")
        cls.sim = Sim().start(seed=SEED, extra_args=[
            "--oidc-token-file", cls.token_file, "--oidc-provider-id", PROVIDER_ID,
            "--oidc-role-arn", ROLE_ARN, "--temp-credential-life-s", "3600"])

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()
        cls.tmp.cleanup()

    def setUp(self):
        self.sim.reset()
        self.write_token("eyJhbGciOiJSUzI1NiJ9.first.signature")

    def write_token(self, token):
        with open(self.token_file, "w") as f:
            f.write(token)
        self.token = token.strip()

    def body(self, **changes):
        body = {"ProviderId": PROVIDER_ID, "WebIdentityToken": self.token, "RoleArn": ROLE_ARN,
                "RoleSessionName": "tencentcloud-go-sdk-1764104792", "DurationSeconds": 7200}
        body.update(changes)
        return {k: v for k, v in body.items() if v is not None}

    def assume(self, **changes):
        return self.sim.assume_role_with_web_identity(self.body(**changes))

    def assertStsError(self, reply, code):
        self.assertEqual(reply.status, 200, reply.body)
        resp = reply.json["Response"]
        self.assertEqual(set(resp), {"Error", "RequestId"}, resp)
        self.assertEqual(resp["Error"]["Code"], code, resp)
        self.assertRegex(resp["RequestId"], UUID_RE)
        return resp["Error"]["Message"]

    def test_assume_role_with_web_identity(self):
        before = int(time.time())
        reply = self.assume()
        self.assertEqual(reply.status, 200)
        resp = reply.json["Response"]
        self.assertEqual(set(resp), {"Credentials", "ExpiredTime", "Expiration", "RequestId"})
        self.assertEqual(set(resp["Credentials"]), {"TmpSecretId", "TmpSecretKey", "Token"})
        self.assertRegex(resp["RequestId"], UUID_RE)
        # The life is the smaller of DurationSeconds and --temp-credential-life-s.
        self.assertGreaterEqual(resp["ExpiredTime"], before + 3600)
        self.assertLessEqual(resp["ExpiredTime"], int(time.time()) + 3600)
        self.assertEqual(resp["Expiration"], rfc3339(resp["ExpiredTime"]))
        short = self.assume(DurationSeconds=60).json["Response"]
        self.assertAlmostEqual(short["ExpiredTime"], time.time() + 60, delta=2)
        no_duration = self.assume(DurationSeconds=None).json["Response"]
        self.assertAlmostEqual(no_duration["ExpiredTime"], time.time() + 3600, delta=2)
        # The credentials work on both API versions, and each call issued fresh ones.
        self.assertIsNone(v3_code(attach3(self.sim, ["ins-a"], **temp_credential_args(resp))))
        self.assertEqual(attach(self.sim, ["ins-b"], **temp_credential_args(short)).json["code"],
                         0)
        self.assertEqual(len({r["Credentials"]["TmpSecretId"]
                              for r in (resp, short, no_duration)}), 3)
        stats = self.sim.stats()
        self.assertEqual(stats["tempCredentials"]["issued"], {"metadata": 0, "sts": 3})
        self.assertEqual(stats["sts"], {"calls": 3, "byResult": {"0": 3}})
        # STS calls are not VPC API calls.
        self.assertEqual(stats["byAction"], {ATTACH: 2})

    def test_token_file_is_read_on_every_call(self):
        self.assertIsNone(v3_code(self.assume()))
        old = self.token
        self.write_token("eyJhbGciOiJSUzI1NiJ9.second.signature\n")  # a newline at the end is fine
        message = self.assertStsError(self.assume(WebIdentityToken=old),
                                      "InvalidParameter.WebIdentityTokenError")
        self.assertNotIn(old, message)
        self.assertIsNone(v3_code(self.assume()))
        os.unlink(self.token_file)
        self.assertStsError(self.assume(), "InvalidParameter.WebIdentityTokenError")
        self.write_token("")
        self.assertStsError(self.assume(WebIdentityToken="x"),
                            "InvalidParameter.WebIdentityTokenError")
        self.assertEqual(self.sim.stats()["tempCredentials"]["issued"]["sts"], 2)

    def test_wrong_provider_or_role(self):
        self.assertStsError(self.assume(ProviderId="other-provider"),
                            "InvalidParameter.ParamError")
        self.assertStsError(self.assume(RoleArn=ROLE_ARN + "x"), "InternalError.GetRoleError")
        self.sim.config({"stsProviderErrorCode": "ResourceNotFound.ProviderNotFound",
                         "stsRoleErrorCode": "ResourceNotFound.RoleNotFound"})
        self.assertStsError(self.assume(ProviderId="other-provider"),
                            "ResourceNotFound.ProviderNotFound")
        self.assertStsError(self.assume(RoleArn="qcs::cam::uin/1:roleName/x"),
                            "ResourceNotFound.RoleNotFound")
        for bad in ({"stsRoleErrorCode": ""}, {"stsRoleErrorCode": "1Bad"},
                    {"stsProviderErrorCode": "Has Space"}, {"oidcRoleArn": "a b"}):
            with self.assertRaises(simlib.SimError):
                self.sim.config(bad)
        # Another provider and role, set at run time.
        self.sim.config({"oidcProviderId": "p2", "oidcRoleArn": "qcs::cam::uin/1:roleName/x"})
        self.assertIsNone(v3_code(self.assume(ProviderId="p2",
                                              RoleArn="qcs::cam::uin/1:roleName/x")))
        self.sim.config({"oidcProviderId": ""})  # no provider at all
        self.assertStsError(self.assume(ProviderId="p2"), "ResourceNotFound.ProviderNotFound")
        self.assertEqual(self.sim.stats()["tempCredentials"]["issued"]["sts"], 1)

    def test_request_checks(self):
        sim = self.sim
        cases = [
            (sim.assume_role_with_web_identity(self.body(), headers={"Authorization": "TC3-x"}),
             "AuthFailure.InvalidAuthorization"),
            (sim.assume_role_with_web_identity(self.body(), omit=["Authorization"]),
             "MissingParameter"),
            (sim.assume_role_with_web_identity(self.body(), omit=["X-TC-Version"]),
             "MissingParameter"),
            (sim.assume_role_with_web_identity(self.body(), headers={"X-TC-Version": "2017-03-12"}),
             "InvalidAction"),
            (sim.assume_role_with_web_identity(self.body(), headers={"Content-Type": "text/plain"}),
             "InvalidParameter"),
            (sim.assume_role_with_web_identity(body=b"{not json"), "InvalidParameter"),
            (sim.assume_role_with_web_identity(body=b"[]"), "InvalidParameter"),
            (self.assume(Policy="{}"), "UnknownParameter"),
            (self.assume(RoleArn=None), "MissingParameter"),
            (self.assume(WebIdentityToken=""), "MissingParameter"),
            (self.assume(ProviderId=7), "InvalidParameter"),
            (self.assume(DurationSeconds=0), "InvalidParameter.ParamError"),
            (self.assume(DurationSeconds=43201), "InvalidParameter.ParamError"),
            (self.assume(DurationSeconds="60"), "InvalidParameter.ParamError"),
            (self.assume(DurationSeconds=1.5), "InvalidParameter.ParamError"),
            (self.assume(RoleSessionName="x"), "InvalidParameter.ParamError"),
            (self.assume(RoleSessionName="has space"), "InvalidParameter.ParamError"),
        ]
        for i, (reply, code) in enumerate(cases):
            with self.subTest(case=i, code=code):
                self.assertStsError(reply, code)
        self.assertIsNone(v3_code(self.assume(DurationSeconds=43200)))
        stats = self.sim.stats()
        self.assertEqual(stats["tempCredentials"]["issued"]["sts"], 1)
        self.assertEqual(stats["sts"]["calls"], len(cases) + 1)

    def test_service_down_and_malformed(self):
        self.sim.config({"sts": "drop"})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.assume()
        # VPC API 3.0 calls on the same address are not affected.
        self.assertIsNone(v3_code(attach3(self.sim, ["ins-a"])))
        self.sim.config({"sts": "http:502"})
        reply = self.assume()
        self.assertEqual(reply.status, 502)
        self.assertIsNone(reply.json)
        self.sim.config({"sts": "not-json"})
        reply = self.assume()
        self.assertEqual(reply.status, 200)
        self.assertIsNone(reply.json)
        self.sim.config({"sts": "missing-fields"})
        resp = self.assume().json["Response"]
        self.assertEqual(set(resp), {"ExpiredTime", "Expiration", "RequestId"})
        # A bad call still gets its error while the answers are malformed.
        self.assertStsError(self.assume(ProviderId="x"), "InvalidParameter.ParamError")
        self.sim.config({"sts": "up"})
        self.assertIsNone(v3_code(self.assume()))
        stats = self.sim.stats()
        self.assertEqual(stats["sts"]["byResult"],
                         {"drop": 1, "http:502": 1, "not-json": 1, "missing-fields": 1,
                          "InvalidParameter.ParamError": 1, "0": 1})
        self.assertEqual(stats["tempCredentials"]["issued"]["sts"], 1)

    def test_expired_sts_credentials_are_rejected(self):
        self.sim.config({"tempCredentialLifeSec": 2})
        resp = self.assume().json["Response"]
        self.assertLessEqual(resp["ExpiredTime"], int(time.time()) + 2)
        self.assertIsNone(v3_code(attach3(self.sim, ["ins-a"], **temp_credential_args(resp))))
        simlib.wait_for_time(resp["ExpiredTime"])
        self.assertEqual(v3_code(attach3(self.sim, ["ins-b"], **temp_credential_args(resp))),
                         "AuthFailure.TokenFailure")
        self.assertEqual(attach(self.sim, ["ins-b"], **temp_credential_args(resp)).json["code"],
                         4105)
        self.assertIsNone(self.sim.linked("ins-b"))
        self.assertEqual(self.sim.stats()["tempCredentials"]["rejectedExpired"], 2)

    def test_call_log_never_holds_the_token_or_credentials(self):
        resp = self.assume().json["Response"]
        self.assume(ProviderId="other")
        entries = [e for e in self.sim.read_call_log() if e.get("service") == "sts"][-2:]
        self.assertEqual([e["result"] for e in entries], ["0", "InvalidParameter.ParamError"])
        self.assertEqual([e["errorCode"] for e in entries], [None, "InvalidParameter.ParamError"])
        self.assertEqual([e["issued"] for e in entries], [True, False])
        first = entries[0]
        self.assertEqual(first["action"], simlib.STS_ACTION)
        self.assertEqual(first["requestId"], resp["RequestId"])
        self.assertEqual(first["params"]["X-TC-Version"], simlib.STS_VERSION)
        self.assertEqual(first["body"]["WebIdentityToken"], "[redacted]")
        self.assertEqual(first["body"]["RoleArn"], ROLE_ARN)
        with open(self.sim.call_log) as f:
            log = f.read()
        for secret in (self.token, resp["Credentials"]["TmpSecretId"],
                       resp["Credentials"]["TmpSecretKey"], resp["Credentials"]["Token"]):
            self.assertNotIn(secret, log)
            self.assertNotIn(secret, self.sim.stderr())


class TemporaryCredentialQuotaTest(unittest.TestCase):
    """Temporary credentials of one role count against one account's quota."""

    @classmethod
    def setUpClass(cls):
        cls.sim = Sim().start(seed=SEED, extra_args=["--cvm-role", ROLE, "--quota", "4"])

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def test_credentials_of_one_role_share_a_quota(self):
        for _ in range(3):
            creds = [self.sim.metadata(ROLE).json for _ in range(3)]
            time.sleep(1.05)  # an empty window
            start = time.monotonic()
            codes = [self.sim.call("DescribeVpcEx", {}, **temp_credential_args(cred))
                     .json["code"] for cred in creds + creds]
            codes.append(self.sim.call("DescribeVpcEx", {}).json["code"])  # another account
            if time.monotonic() - start < 0.8:
                break
        self.assertEqual(codes, [0, 0, 0, 0, 4400, 4400, 0])


# ---- multi-instance calls: all or nothing, errors name the instance --------------------------

INSTANCE_ID_RE = re.compile(r"\bins-[0-9A-Za-z]+")


class MultiInstanceTest(V3TestCase):
    """50-instance calls as a coalescing client sends them."""

    seed = {"regions": {"ap-guangzhou": {"linkLimit": 55}},
            "generate": {"vpcs": 1, "instances": 60}}

    IDS = ["ins-%d" % i for i in range(50)]

    def assertNothingLinked(self):
        self.assertEqual(self.sim.state()["links"], [])
        self.assertEqual(self.sim.stats()["instances"]["attached"], {})

    def test_one_unknown_instance_among_50_v2(self):
        ids = self.IDS[:25] + ["ins-nothere"] + self.IDS[25:49]
        reply = attach(self.sim, ids, vpc="vpc-0")
        self.assertCode(reply, 4000, "InvalidInstance.NotFound")
        self.assertEqual(INSTANCE_ID_RE.findall(reply.json["message"]), ["ins-nothere"])
        self.assertNothingLinked()
        self.assertEqual(len(self.sim.stats()["instances"]["calls"]), 50)

    def test_one_unknown_instance_among_50_v3(self):
        ids = self.IDS[:49] + ["ins-nothere"]
        message = self.assertError(attach3(self.sim, ids, vpc="vpc-0"), "ResourceNotFound")
        self.assertEqual(INSTANCE_ID_RE.findall(message), ["ins-nothere"])
        self.assertNothingLinked()

    def test_one_linked_instance_among_50(self):
        self.assertCode(attach(self.sim, ["ins-55"], vpc="vpc-0"), 0)
        ids = self.IDS[:10] + ["ins-55"] + self.IDS[10:49]
        reply = attach(self.sim, ids, vpc="vpc-0")
        self.assertCode(reply, 4000, "InstanceAlreadyLinked")
        self.assertEqual(INSTANCE_ID_RE.findall(reply.json["message"]), ["ins-55"])
        message = self.assertError(attach3(self.sim, ids, vpc="vpc-0"),
                                   "UnsupportedOperation.ClassicInstanceIdAlreadyExists")
        self.assertEqual(INSTANCE_ID_RE.findall(message), ["ins-55"])
        # Detach: one instance not linked to that VPC among 50 linked ones.
        self.sim.config({"sameVpcAttach": "success"})
        self.assertCode(attach(self.sim, self.IDS, vpc="vpc-0"), 0)
        ids = self.IDS[:49] + ["ins-57"]
        reply = self.sim.call(DETACH, {"vpcId": "vpc-0", "instanceIds": ids})
        self.assertCode(reply, 4000, "InvalidInstance.NotFound")
        self.assertEqual(INSTANCE_ID_RE.findall(reply.json["message"]), ["ins-57"])
        message = self.assertError(self.sim.call_v3(DETACH, {"VpcId": "vpc-0",
                                                             "InstanceIds": ids}),
                                   "ResourceNotFound")
        self.assertEqual(INSTANCE_ID_RE.findall(message), ["ins-57"])
        self.assertEqual(len(self.sim.state()["links"]), 51)

    def test_link_limit_names_no_instance(self):
        self.assertCode(attach(self.sim, self.IDS, vpc="vpc-0"), 0)
        extra = ["ins-%d" % i for i in range(50, 60)]
        reply = attach(self.sim, extra, vpc="vpc-0")
        self.assertCode(reply, 4000, "InstanceLimitExceeded")
        self.assertEqual(INSTANCE_ID_RE.findall(reply.json["message"]), [])
        message = self.assertError(attach3(self.sim, extra, vpc="vpc-0"), "LimitExceeded")
        self.assertEqual(INSTANCE_ID_RE.findall(message), [])
        self.assertEqual(len(self.sim.state()["links"]), 50)

    def test_scripted_business_fault_among_50(self):
        self.sim.add_faults({"scripts": [
            {"instanceId": "ins-7", "fault": "business:InvalidInstance.NotFound", "times": 2}]})
        reply = attach(self.sim, self.IDS, vpc="vpc-0")
        self.assertCode(reply, 4000, "InvalidInstance.NotFound")
        self.assertEqual(INSTANCE_ID_RE.findall(reply.json["message"]), ["ins-7"])
        message = self.assertError(attach3(self.sim, self.IDS, vpc="vpc-0"), "ResourceNotFound")
        self.assertEqual(INSTANCE_ID_RE.findall(message), ["ins-7"])
        self.assertNothingLinked()
        stats = self.sim.stats()
        self.assertEqual(stats["byFault"], {"business:InvalidInstance.NotFound": 2})
        self.assertEqual(stats["byResult"], {"4000": 1, "ResourceNotFound": 1})
        # The script is spent: the same call goes through.
        self.assertOk(attach3(self.sim, self.IDS, vpc="vpc-0"))
        self.assertEqual(len(self.sim.state()["links"]), 50)
        entry = self.sim.read_call_log()[-2]
        self.assertEqual(entry["fault"], "business:InvalidInstance.NotFound")
        self.assertFalse(entry["applied"])

    def test_scripted_business_faults_of_every_kind(self):
        cases = [
            ("InstanceAlreadyLinked", "UnsupportedOperation.ClassicInstanceIdAlreadyExists",
             ["ins-9"]),
            ("InstanceLimitExceeded", "LimitExceeded", []),
            ("InvalidVpc.NotFound", "ResourceNotFound", []),
        ]
        for code, v3code, named in cases:
            with self.subTest(code=code):
                self.sim.add_faults({"scripts": [
                    {"instanceId": "ins-9", "action": ATTACH, "fault": "business:" + code,
                     "times": 2}]})
                reply = attach(self.sim, self.IDS, vpc="vpc-0")
                self.assertCode(reply, 4000, code)
                self.assertEqual(INSTANCE_ID_RE.findall(reply.json["message"]), named)
                message = self.assertError(attach3(self.sim, self.IDS, vpc="vpc-0"), v3code)
                self.assertEqual(INSTANCE_ID_RE.findall(message), named)
        self.sim.config({"businessCode": 5000})
        self.sim.add_faults({"scripts": [
            {"instanceId": "ins-3", "fault": "business:InvalidInstance.NotFound"}]})
        self.assertCode(attach(self.sim, ["ins-3"], vpc="vpc-0"), 5000,
                        "InvalidInstance.NotFound")
        self.assertNothingLinked()

    def test_bad_business_scripts_are_refused(self):
        for doc in ({"scripts": [{"fault": "business:InvalidInstance.NotFound"}]},
                    {"scripts": [{"instanceId": "ins-1", "fault": "business:Nope"}]},
                    {"scripts": [{"instanceId": "ins-1", "apply": True,
                                  "fault": "business:InvalidInstance.NotFound"}]},
                    {"scripts": [{"instanceId": "i" * 65,
                                  "fault": "business:InvalidInstance.NotFound"}]},
                    {"rate": 0.5, "kinds": ["business:InvalidInstance.NotFound"]}):
            with self.subTest(doc=doc):
                with self.assertRaises(simlib.SimError):
                    self.sim.add_faults(doc)
        self.assertEqual(self.sim.faults()["scripts"], [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
