"""Worker faults, re-signing, the circuit breaker, TLS verification and secrets: the delivery rules
of contract section 5 that protect a backlog from the worker's own setup problems."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kafkalib  # noqa: E402
import worklib  # noqa: E402
from worklib import request  # noqa: E402

REGION = "ap-guangzhou"
GEN = ["--gen-vpcs", "1", "--gen-instances", "500"]


def attach(i, rid=None):
    rid = rid or "f%d" % i
    return {"key": rid, "value": request("vpc-0", ["ins-%d" % i], request_id=rid, region=REGION)}


def metric(body, name, labels=""):
    for line in body.splitlines():
        if line.startswith(name + labels + " ") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return None


class WorkerFault(unittest.TestCase):
    def test_auth_failure_pauses_publishes_nothing_then_recovers(self):
        with worklib.Stack(partitions=2, sim_args=GEN) as st:
            # Every call, whatever it touches, is refused as a bad signature until cleared.
            st.sim.add_faults({"scripts": [{"fault": "code:4100", "times": 1000000}]})
            w = st.worker({"retry.max_backoff_ms": "300"})
            st.send([attach(i) for i in range(5)])
            w.wait_msg("worker fault: API answered code 4100")
            status, body = w.http_get("/readyz")
            self.assertEqual(status, 503)
            self.assertIn("worker_fault", body)
            self.assertEqual(metric(w.http_get("/metrics")[1], "classiclink_paused",
                                    '{reason="worker_fault"}'), 1)
            # Probes keep failing while the key is wrong, and nothing is published.
            w.wait_count("attempt", 8)
            self.assertEqual(st.all_outcome_records(), [])
            # The fault clears once a probe gets through; then everything completes.
            st.sim.add_faults({"clear": True})
            seen = st.wait_outcomes_for("f%d" % i for i in range(5))
            for rid, items in seen.items():
                self.assertEqual(len(items), 1)
                self.assertEqual(items[0]["status"], "succeeded", items[0])
            w.wait_msg("worker fault cleared")
            self.assertEqual(w.http_get("/readyz")[0], 200)
            # No outcome ever carried the fault: it was never a request's failure.
            self.assertFalse([o for items in seen.values() for o in items if o["code"] == 4100])
            st.wait_committed_to_end()

    def test_on_worker_fault_exit_exits_3_and_commits_nothing(self):
        with worklib.Stack(partitions=1, sim_args=GEN) as st:
            st.sim.add_faults({"scripts": [{"fault": "code:4104", "times": 1000}]})
            w = st.worker({"api.on_worker_fault": "exit"})
            st.send([attach(1)])
            self.assertEqual(w.wait(60), 3, w.tail())
            self.assertEqual(st.all_outcome_records(), [])
            self.assertEqual(kafkalib.committed(st.bootstrap, "clw-it", worklib.REQUESTS)[0],
                             -1001)

    def test_wrong_secret_key_is_a_worker_fault(self):
        with worklib.Stack(partitions=1, sim_args=GEN) as st:
            w = st.worker({"retry.max_backoff_ms": "200"}, secret_key="not-the-key")
            st.send([attach(2)])
            w.wait_msg("worker fault: API answered code 4100")
            # Several probes later, still nothing published.
            w.wait_count("attempt", 3)
            self.assertEqual(st.all_outcome_records(), [])


class Resign(unittest.TestCase):
    def test_4500_and_4200_resign_and_succeed(self):
        with worklib.Stack(partitions=1, sim_args=GEN) as st:
            st.sim.add_faults({"scripts": [
                {"instanceId": "ins-1", "fault": "code:4500", "times": 2},
                {"instanceId": "ins-2", "fault": "code:4200", "times": 1}]})
            st.worker(worklib.ALONE)  # faults scripted per instance: a call each
            st.send([attach(1), attach(2)])
            got = {json.loads(r["value"])["requestId"]: json.loads(r["value"])
                   for r in st.outcome_records(2)}
            self.assertEqual(got["f1"]["status"], "succeeded")
            self.assertEqual(got["f1"]["attempts"], 3)
            self.assertEqual(got["f2"]["status"], "succeeded")
            self.assertEqual(got["f2"]["attempts"], 2)

    def test_three_replays_in_a_row_is_clock_skew(self):
        with worklib.Stack(partitions=1, sim_args=GEN) as st:
            st.sim.add_faults({"scripts": [{"instanceId": "ins-3", "fault": "code:4500",
                                            "times": 3}]})
            w = st.worker({"retry.max_backoff_ms": "200"})
            st.send([attach(3)])
            w.wait_msg("clock skew")
            got = worklib.outcome_values(st.outcome_records(1))
            self.assertEqual(got[0]["status"], "succeeded")
            self.assertEqual(got[0]["attempts"], 4)


class CircuitBreaker(unittest.TestCase):
    def test_opens_after_consecutive_transient_failures_and_closes(self):
        with worklib.Stack(partitions=2, sim_args=GEN) as st:
            st.sim.add_faults({"rate": 1.0, "kinds": ["http:503"]})
            w = st.worker({"retry.max_backoff_ms": "300", "retry.max_elapsed_ms": "0"})
            st.send([attach(i) for i in range(10, 20)])
            w.wait_msg("circuit open")
            status, body = w.http_get("/readyz")
            self.assertEqual(status, 503)
            self.assertIn("circuit_open", body)
            calls_open = st.sim.stats()["calls"]
            st.sim.add_faults({"rate": 0.0})
            seen = st.wait_outcomes_for("f%d" % i for i in range(10, 20))
            self.assertTrue(all(v[0]["status"] == "succeeded" for v in seen.values()))
            w.wait_msg("circuit closed")
            self.assertGreaterEqual(calls_open, 20)


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.ca_key, cls.ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
        cls.key, cls.csr, cls.cert = (os.path.join(d, n) for n in ("srv.key", "srv.csr", "srv.pem"))
        ext = os.path.join(d, "ext.cnf")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n")
        run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", cls.ca_key,
            "-out", cls.ca, "-days", "2", "-subj", "/CN=clw test CA")
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", cls.key, "-out",
            cls.csr, "-subj", "/CN=127.0.0.1")
        run("openssl", "x509", "-req", "-in", cls.csr, "-CA", cls.ca, "-CAkey", cls.ca_key,
            "-CAcreateserial", "-out", cls.cert, "-days", "2", "-extfile", ext)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_https_with_the_ca_configured(self):
        with worklib.Stack(partitions=1, sim_args=GEN, sim_tls=(self.cert, self.key, self.ca)) as st:
            self.assertTrue(st.sim.endpoint.startswith("https://"))
            st.worker({"api.ca_file": self.ca})
            st.send([attach(5)])
            got = worklib.outcome_values(st.outcome_records(1))
            self.assertEqual(got[0]["status"], "succeeded", got[0])

    def test_https_without_the_ca_fails_verification_and_commits_nothing(self):
        with worklib.Stack(partitions=1, sim_args=GEN, sim_tls=(self.cert, self.key, self.ca)) as st:
            w = st.worker({"retry.max_backoff_ms": "200"})
            st.send([attach(6)])
            w.wait_msg("worker fault: TLS verification of the API endpoint failed")
            self.assertEqual(st.all_outcome_records(), [])
            self.assertEqual(st.sim.stats()["calls"], 0)
            self.assertEqual(kafkalib.committed(st.bootstrap, "clw-it", worklib.REQUESTS)[0],
                             -1001)


class Secrets(unittest.TestCase):
    def test_no_secret_or_signature_in_logs_outcomes_or_metrics(self):
        with worklib.Stack(partitions=2, sim_args=GEN) as st:
            st.sim.add_faults({"scripts": [
                {"instanceId": "ins-7", "fault": "http:503", "times": 2},
                {"instanceId": "ins-8", "fault": "code:4500", "times": 1},
                {"instanceId": "ins-9", "fault": "drop", "times": 1}]})
            st.broker.create_topic("classiclink.dlq", 1)
            w = st.worker({"log.level": "debug", "topic.dlq": "classiclink.dlq"})
            st.send([attach(i) for i in range(7, 12)] +
                    [{"key": "biz", "value": request("vpc-missing", ["ins-1"], region=REGION)},
                     {"key": "bad", "value": "not json"}])
            records = st.outcome_records(7)
            letters = kafkalib.consume(st.bootstrap, "classiclink.dlq", count=1)
            metrics = w.http_get("/metrics")[1]
            self.assertEqual(w.stop(), 0)

            def text_of(recs):
                return "\n".join(json.dumps({k: v for k, v in r.items()
                                             if not k.endswith("_bytes")}) for r in recs)
            logs = "\n".join(w.lines)
            for where, text in (("logs", logs), ("outcomes", text_of(records)),
                                ("dead letters", text_of(letters)), ("metrics", metrics)):
                with self.subTest(where=where):
                    self.assertNotIn(worklib.SECRET_KEY, text)
                    self.assertNotIn("Signature=", text)
                    self.assertNotIn("Signature%3D", text)
            self.assertIn("attempt", logs)  # the debug log did record the calls


if __name__ == "__main__":
    unittest.main(verbosity=2)
