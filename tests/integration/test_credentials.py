"""Credentials the way Tencent's SDKs find them (contract section 9): the profile file, a CVM role
from the metadata service, OIDC at STS, temporary credentials refreshed before they expire, a
call refused with old credentials signed again, and the credentials pause when the metadata
service goes away — against the simulator, which issues short-lived credentials and refuses
expired ones."""

import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kafkalib  # noqa: E402
import worklib  # noqa: E402
from worklib import request  # noqa: E402

REGION = "ap-guangzhou"
GEN = ["--gen-vpcs", "1", "--gen-instances", "1200"]
ROLE = "clw-worker-role"
PROVIDER = "tke-oidc-provider-1"
ROLE_ARN = "qcs::cam::uin/100000000001:roleName/clw-worker-role"
WEB_TOKEN = "eyJhbGciOiJSUzI1NiJ9.webIdentityTokenDoNotLeak0123456789"
NO_KEYS = {"secret_id": None, "secret_key": None}


def attaches(n, start=0, prefix="c"):
    return [{"key": "%s%d" % (prefix, i),
             "value": request("vpc-0", ["ins-%d" % i], request_id="%s%d" % (prefix, i),
                              region=REGION)} for i in range(start, start + n)]


def by_id(records):
    return {json.loads(r["value"])["requestId"]: json.loads(r["value"]) for r in records}


def metadata_url(sim):
    return sim.url + "/latest/meta-data/cam/security-credentials/"


def check_config(env, *args):
    full = dict(os.environ)
    for name in ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY"):
        full.pop(name, None)
    full.update(env)
    return subprocess.run([worklib.worker_path(), "-c", "/dev/null", "--check-config"] +
                          [a for kv in args for a in ("-X", kv)],
                          capture_output=True, text=True, env=full, timeout=30)


class Sources(unittest.TestCase):
    def test_profile_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "credentials")
            with open(path, "w") as f:
                f.write("# a profile file as the SDKs read it\n[default]\nsecret_id = AKIDnotThis\n"
                        "secret_key = notThisKey\n\n[prod]\nsecret_id = %s\nsecret_key = %s\n"
                        % (worklib.SECRET_ID, worklib.SECRET_KEY))
            os.chmod(path, 0o600)
            env = {"TENCENTCLOUD_CREDENTIALS_FILE": path}
            r = check_config(env, "api.profile=prod")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("# credentials: profile [prod] of %s" % path, r.stdout)
            self.assertNotIn(worklib.SECRET_KEY, r.stdout + r.stderr)
            with worklib.Stack(partitions=1, sim_args=GEN) as st:
                st.worker({"api.profile": "prod"}, env=env, **NO_KEYS)
                st.send(attaches(3))
                got = by_id(st.outcome_records(3))
                self.assertTrue(all(o["status"] == "succeeded" for o in got.values()), got)
            # A profile named but missing is a configuration error naming file and profile.
            r = check_config(env, "api.profile=staging")
            self.assertEqual(r.returncode, 1)
            self.assertIn("no profile [staging]", r.stderr)

    def test_cvm_role_named_and_discovered(self):
        with worklib.Stack(partitions=1, sim_args=GEN + ["--cvm-role", ROLE]) as st:
            url = metadata_url(st.sim)
            r = check_config({}, "api.role_name=" + ROLE, "api.metadata_endpoint=" + url)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("# credentials: CVM role %s (metadata service %s); temporary, these "
                          "expire at 20" % (ROLE, url), r.stdout)
            st.worker({"api.role_name": ROLE, "api.metadata_endpoint": url}, **NO_KEYS)
            st.send(attaches(3))
            self.assertTrue(all(o["status"] == "succeeded"
                                for o in by_id(st.outcome_records(3)).values()))
            # Without api.role_name, the role the metadata service lists.
            w2 = worklib.Worker(st.bootstrap, st.sim.endpoint,
                                {"api.metadata_endpoint": url}, group="second", **NO_KEYS)
            st.workers.append(w2)
            w2.wait_msg("the metadata service lists the CAM role " + ROLE)
            w2.wait_assigned()
            self.assertGreaterEqual(st.sim.stats()["tempCredentials"]["issued"]["metadata"], 2)

    def test_oidc_on_tke(self):
        with tempfile.TemporaryDirectory() as tmp:
            token = os.path.join(tmp, "token")
            with open(token, "w") as f:
                f.write(WEB_TOKEN + "\n")
            sim_args = GEN + ["--oidc-token-file", token, "--oidc-provider-id", PROVIDER,
                              "--oidc-role-arn", ROLE_ARN]
            with worklib.Stack(partitions=1, sim_args=sim_args) as st:
                env = {"TKE_REGION": REGION, "TKE_PROVIDER_ID": PROVIDER,
                       "TKE_WEB_IDENTITY_TOKEN_FILE": token, "TKE_ROLE_ARN": ROLE_ARN}
                sts = {"api.sts_endpoint": st.sim.url + "/"}
                r = check_config(env, "api.sts_endpoint=" + st.sim.url + "/")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("# credentials: OIDC role %s" % ROLE_ARN, r.stdout)
                w = st.worker(sts, env=env, **NO_KEYS)
                st.send(attaches(3))
                self.assertTrue(all(o["status"] == "succeeded"
                                    for o in by_id(st.outcome_records(3)).values()))
                self.assertGreaterEqual(st.sim.stats()["tempCredentials"]["issued"]["sts"], 1)
                self.assertNotIn(WEB_TOKEN, "\n".join(w.lines))
                # Part of the TKE variables is a configuration error naming the missing one.
                partial = dict(env)
                del partial["TKE_ROLE_ARN"]
                r = check_config(partial)
                self.assertEqual(r.returncode, 1)
                self.assertIn("TKE_ROLE_ARN is not set", r.stderr)

    def test_no_credentials_anywhere_is_a_configuration_error(self):
        with tempfile.TemporaryDirectory() as home:
            # The metadata service answers no role (404): nothing to discover.
            with worklib.Stack(partitions=1, sim_args=GEN) as st:
                r = check_config({"HOME": home},
                                 "api.metadata_endpoint=" + metadata_url(st.sim))
                self.assertEqual(r.returncode, 1)
                self.assertIn("no credentials", r.stderr)
                self.assertIn("lists no CAM role", r.stderr)


class Refresh(unittest.TestCase):
    def test_rotation_under_load_across_three_lifetimes(self):
        """1 000 requests over about three lives of 4 s credentials: each refresh comes at half
        their life, so no request fails and no worker fault happens."""
        life = 4
        args = GEN + ["--cvm-role", ROLE, "--temp-credential-life-s", str(life),
                      "--latency-ms", "20"]
        with worklib.Stack(partitions=2, sim_args=args) as st:
            w = st.worker(dict(worklib.ALONE, **{
                "api.role_name": ROLE, "api.metadata_endpoint": metadata_url(st.sim),
                "worker.max_in_flight": "1"}), **NO_KEYS)
            t0 = time.monotonic()
            st.send(attaches(1000))
            got = by_id(st.outcome_records(1000, timeout_s=120))
            took = time.monotonic() - t0
            self.assertEqual(len(got), 1000)
            self.assertEqual([k for k, o in got.items() if o["status"] != "succeeded"][:5], [])
            self.assertGreaterEqual(took, 2.5 * life, "the load did not span the lifetimes")
            self.assertEqual([l for l in w.lines if "worker fault" in l], [])
            issued = st.sim.stats()["tempCredentials"]["issued"]["metadata"]
            refreshed = sum(1 for l in w.lines if "credentials refreshed" in l)
            print("rotation: 1000 requests in %.1f s, %d credentials issued, %d refreshes" % (
                took, issued, refreshed))
            self.assertGreaterEqual(refreshed, 3)

    def test_refused_credentials_are_refreshed_and_the_call_signed_again(self):
        """The simulator's clock runs 6 s ahead, so credentials of 4 s die in its eyes when the
        worker still holds them valid: calls come back AuthFailure.TokenFailure (4105). The
        worker refreshes at once and signs them again; nothing fails, no worker fault."""
        args = GEN + ["--cvm-role", ROLE, "--temp-credential-life-s", "4", "--clock-skew-s", "6",
                      "--latency-ms", "20"]
        with worklib.Stack(partitions=1, sim_args=args) as st:
            w = st.worker(dict(worklib.ALONE, **{
                "api.role_name": ROLE, "api.metadata_endpoint": metadata_url(st.sim),
                "worker.max_in_flight": "1"}), **NO_KEYS)
            st.send(attaches(300))
            got = by_id(st.outcome_records(300, timeout_s=120))
            self.assertTrue(all(o["status"] == "succeeded" for o in got.values()))
            self.assertTrue([l for l in w.lines if "refreshing them now" in l], w.tail())
            self.assertGreater(st.sim.stats()["tempCredentials"]["rejectedExpired"], 0)
            self.assertEqual([l for l in w.lines if "worker fault" in l], [])

    def test_metadata_service_going_away_pauses_then_recovers(self):
        life = 4
        args = GEN + ["--cvm-role", ROLE, "--temp-credential-life-s", str(life)]
        with worklib.Stack(partitions=1, sim_args=args) as st:
            w = st.worker({"api.role_name": ROLE, "api.metadata_endpoint": metadata_url(st.sim),
                           "retry.max_backoff_ms": "500"}, **NO_KEYS)
            st.send(attaches(2))
            st.outcome_records(2)
            st.sim.config({"metadata": "drop"})
            # The current credentials serve until they expire; then the worker pauses.
            w.wait_msg("worker fault: credentials:", timeout_s=3 * life)
            status, body = w.http_get("/readyz")
            self.assertEqual(status, 503)
            self.assertIn("credentials", body)
            self.assertIn('classiclink_paused{reason="credentials"} 1', w.http_get("/metrics")[1])
            st.send(attaches(3, start=10))
            time.sleep(1.0)  # the pause holds: nothing may be published meanwhile
            self.assertEqual(len(st.all_outcome_records()), 2)
            # Back: the next refresh succeeds, the worker resumes without a restart.
            st.sim.config({"metadata": "up"})
            w.wait_msg("credentials refreshed; resuming", timeout_s=10)
            got = by_id(st.outcome_records(5))
            self.assertTrue(all(o["status"] == "succeeded" for o in got.values()))
            self.assertEqual(w.http_get("/readyz")[0], 200)
            self.assertIsNone(w.proc.poll())

    def test_malformed_metadata_answers_are_errors_not_crashes(self):
        with worklib.Stack(partitions=1, sim_args=GEN + ["--cvm-role", ROLE]) as st:
            for mode, words in (("not-json", "not a JSON object"),
                                ("missing-fields", "TmpSecretId is missing")):
                with self.subTest(mode=mode):
                    st.sim.config({"metadata": mode})
                    w = worklib.Worker(st.bootstrap, st.sim.endpoint,
                                       {"api.role_name": ROLE,
                                        "api.metadata_endpoint": metadata_url(st.sim)},
                                       group="g-" + mode, **NO_KEYS)
                    st.workers.append(w)
                    w.wait_msg(words)
                    w.wait_msg("worker fault: credentials:")
                    st.sim.config({"metadata": "up"})
                    w.wait_msg("credentials refreshed", timeout_s=30)
                    self.assertEqual(w.stop(), 0, w.tail())


class StubMetadata:
    """A metadata service of known credentials (the simulator accepts them as a long-term key
    with a token), so that a test can look for them in everything the worker writes."""

    SECRET_ID = "AKIDtmpKnownSecretId00000000000001"
    SECRET_KEY = "tmpKnownSecretKeyDoNotLeak0000001"
    TOKEN = "tmpKnownTokenDoNotLeak" + "0" * 40

    def __init__(self):
        doc = json.dumps({"TmpSecretId": self.SECRET_ID, "TmpSecretKey": self.SECRET_KEY,
                          "Token": self.TOKEN, "ExpiredTime": int(time.time()) + 3600,
                          "Expiration": "", "Code": "Success"}).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = ROLE.encode() if self.path.endswith("/") else doc
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/latest/meta-data/cam/security-credentials/" % (
            self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Secrets(unittest.TestCase):
    def test_temporary_secrets_stay_out_of_logs_outcomes_metrics_and_dead_letters(self):
        stub = StubMetadata()
        self.addCleanup(stub.close)
        creds = [(stub.SECRET_ID, stub.SECRET_KEY, stub.TOKEN)]
        with worklib.Stack(partitions=1, sim_args=GEN, credentials=creds) as st:
            st.broker.create_topic("classiclink.dlq", 1)
            st.sim.add_faults({"scripts": [{"instanceId": "ins-1", "fault": "http:503"}]})
            w = st.worker({"api.role_name": ROLE, "api.metadata_endpoint": stub.url,
                           "log.level": "debug", "topic.dlq": "classiclink.dlq"}, **NO_KEYS)
            st.send(attaches(3) + [{"key": "bad", "value": "not json"}])
            records = st.outcome_records(4)
            letters = kafkalib.consume(st.bootstrap, "classiclink.dlq", count=1)
            metrics = w.http_get("/metrics")[1]
            self.assertTrue(all(json.loads(r["value"])["status"] == "succeeded"
                                for r in records if r["key"] != "bad"))
            self.assertEqual(w.stop(), 0)
            r = check_config({}, "api.role_name=" + ROLE, "api.metadata_endpoint=" + stub.url)
            self.assertEqual(r.returncode, 0, r.stderr)
            logs = "\n".join(w.lines)
            for where, text in (("logs", logs), ("outcomes", json.dumps(records, default=str)),
                                ("dead letters", json.dumps(letters, default=str)),
                                ("metrics", metrics), ("--check-config", r.stdout + r.stderr)):
                with self.subTest(where=where):
                    self.assertNotIn(stub.SECRET_KEY, text)
                    self.assertNotIn(stub.TOKEN, text)
                    self.assertNotIn("Signature=", text)
            self.assertIn("attempt", logs)


if __name__ == "__main__":
    unittest.main(verbosity=2)
