"""The worker's life cycle: command line, configuration errors, SIGTERM drain, a second signal,
SIGKILL then restart with nothing lost, and refusing to start without its results topic."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kafkalib  # noqa: E402
import worklib  # noqa: E402
from worklib import request  # noqa: E402

REGION = "ap-guangzhou"
GEN = ["--gen-vpcs", "1", "--gen-instances", "2000", "--same-vpc-attach", "success"]


def run_cli(*args, env=None, timeout=30):
    full_env = dict(os.environ)
    for name in ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY"):
        full_env.pop(name, None)
    full_env.update(env or {})
    return subprocess.run([worklib.worker_path()] + list(args), capture_output=True, text=True,
                          env=full_env, timeout=timeout)


class CommandLine(unittest.TestCase):
    CREDS = {"TENCENTCLOUD_SECRET_ID": "AKIDcli", "TENCENTCLOUD_SECRET_KEY": "cliSecretKey42"}

    def test_version_and_help(self):
        r = run_cli("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^classiclink-worker \d+\.\d+\.\d+")
        r = run_cli("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--check-config", r.stdout)

    def test_unknown_argument_is_a_usage_error(self):
        r = run_cli("--frobnicate")
        self.assertEqual(r.returncode, 1)
        self.assertIn("--frobnicate", r.stderr)

    def test_check_config_prints_sources_and_redacts_secrets(self):
        with tempfile.TemporaryDirectory() as d:
            conf = os.path.join(d, "w.conf")
            with open(conf, "w") as f:
                f.write("# test\ntopic.requests = in.topic\nworker.max_in_flight = 32\n")
            r = run_cli("-c", conf, "--check-config", "-X", "api.region=ap-shanghai",
                        env=self.CREDS)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines, sorted(lines))
        self.assertIn("topic.requests = in.topic  # %s:2" % conf, r.stdout)
        self.assertIn("worker.max_in_flight = 32  # %s:3" % conf, r.stdout)
        self.assertIn("api.region = ap-shanghai  # -X", r.stdout)
        self.assertIn("api.secret_key = [redacted]  # env TENCENTCLOUD_SECRET_KEY", r.stdout)
        self.assertNotIn("cliSecretKey42", r.stdout + r.stderr)

    def test_config_error_names_file_line_and_key(self):
        with tempfile.TemporaryDirectory() as d:
            conf = os.path.join(d, "w.conf")
            with open(conf, "w") as f:
                f.write("topic.requests = a\n\nworker.max_in_flight = lots\n")
            r = run_cli("-c", conf, "--check-config", env=self.CREDS)
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:3" % conf, r.stderr)
        self.assertIn("worker.max_in_flight", r.stderr)

    def test_unknown_key_and_unknown_kafka_property_are_errors(self):
        r = run_cli("-c", "/dev/null", "-X", "worker.turbo=1", "--check-config", env=self.CREDS)
        self.assertEqual(r.returncode, 1)
        self.assertIn("worker.turbo", r.stderr)
        r = run_cli("-c", "/dev/null", "-X", "kafka.no.such.property=1", "--check-config",
                    env=self.CREDS)
        self.assertEqual(r.returncode, 1)
        self.assertIn("kafka.no.such.property", r.stderr)

    def test_enforced_kafka_settings_cannot_be_overridden(self):
        for key in ("kafka.enable.auto.commit=false", "kafka.consumer.isolation.level=x",
                    "kafka.producer.acks=1", "kafka.enable.auto.offset.store=true"):
            with self.subTest(key=key):
                r = run_cli("-c", "/dev/null", "-X", key, "--check-config", env=self.CREDS)
                self.assertEqual(r.returncode, 1)

    def test_missing_credentials(self):
        r = run_cli("-c", "/dev/null", "-X", "kafka.bootstrap.servers=127.0.0.1:1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("credentials", r.stderr)

    def test_plain_http_only_for_loopback(self):
        r = run_cli("-c", "/dev/null", "-X", "api.endpoint=http://vpc.api.qcloud.com/v2/index.php",
                    "--check-config", env=self.CREDS)
        self.assertEqual(r.returncode, 1)
        self.assertIn("api.endpoint", r.stderr)


class MissingResultsTopic(unittest.TestCase):
    def test_exits_2_when_results_topic_is_missing(self):
        broker = kafkalib.MockBroker(topics={worklib.REQUESTS: 1})
        try:
            w = worklib.Worker(broker.bootstrap, "http://127.0.0.1:1/v2/index.php")
            rc = w.wait(60)
            self.assertEqual(rc, 2, w.tail())
            self.assertIn("topic classiclink.results does not exist", w.tail())
        finally:
            broker.stop()


class Shutdown(unittest.TestCase):
    def test_sigterm_drains_calls_in_flight_then_exits_0(self):
        with worklib.Stack(partitions=2, sim_args=GEN + ["--latency-ms", "1500"]) as st:
            w = st.worker()
            n = 20
            st.send([{"key": "k%d" % i, "value": request("vpc-0", ["ins-%d" % i], request_id="r%d" % i,
                                                          region=REGION)} for i in range(n)])
            # Every request is taken, and its call sent in the same loop turn.
            w.wait_count("request taken", n)
            w.signal(signal.SIGTERM)
            self.assertEqual(w.wait(60), 0, w.tail())
            # Every call already sent finished and its outcome was published and committed.
            outcomes = worklib.outcome_values(st.all_outcome_records())
            self.assertEqual(sorted(o["requestId"] for o in outcomes),
                             sorted("r%d" % i for i in range(n)))
            self.assertTrue(all(o["status"] == "succeeded" for o in outcomes))
            st.wait_committed_to_end()
            calls = st.sim.stats()["byAction"]["AttachClassicLinkVpc"]
            # A restarted worker reprocesses nothing: only the marker gets a new outcome.
            st.sim.add_faults({"latencyMs": 0})
            w2 = st.worker()
            st.send([{"key": "marker", "value": request("vpc-0", ["ins-1999"],
                                                         request_id="marker", region=REGION)}])
            records = st.outcome_records(n + 1)
            ids = [json.loads(r["value"])["requestId"] for r in records]
            self.assertEqual(ids.count("marker"), 1)
            self.assertEqual(len(ids), len(set(ids)), "duplicate outcomes after restart")
            self.assertEqual(st.sim.stats()["byAction"]["AttachClassicLinkVpc"], calls + 1)
            self.assertEqual(w2.stop(), 0)

    def test_second_signal_exits_2_at_once(self):
        with worklib.Stack(partitions=1, sim_args=GEN + ["--latency-ms", "20000"]) as st:
            w = st.worker()
            st.send([{"key": "slow", "value": request("vpc-0", ["ins-1"], region=REGION)}])
            w.wait_msg("request taken")
            w.signal(signal.SIGTERM)
            w.wait_msg("stopping")
            w.signal(signal.SIGINT)
            self.assertEqual(w.wait(10), 2)
            # Nothing was committed for the unfinished request.
            self.assertEqual(kafkalib.committed(st.bootstrap, "clw-it", worklib.REQUESTS)[0],
                             -1001)


class Crash(unittest.TestCase):
    def test_sigkill_then_restart_loses_nothing(self):
        n = 300
        with worklib.Stack(partitions=4, sim_args=GEN + ["--latency-ms", "20"]) as st:
            w = st.worker({"worker.max_in_flight": "16"})
            st.send([{"key": "c%d" % i, "value": request("vpc-0", ["ins-%d" % i],
                                                          request_id="c%d" % i, region=REGION)}
                     for i in range(n)])
            st.outcome_records(n // 3)  # a third of the outcomes are out
            self.assertEqual(w.kill(), -signal.SIGKILL)
            w2 = st.worker({"worker.max_in_flight": "16"})
            seen = st.wait_outcomes_for("c%d" % i for i in range(n))
            seen = {k: len(v) for k, v in seen.items()}
            self.assertEqual(len(seen), n)
            dups = sum(c - 1 for c in seen.values())
            print("crash test: requests=%d outcomes=%d duplicates=%d lost=0"
                  % (n, sum(seen.values()), dups))
            # At most the killed worker's unacknowledged window is redone.
            self.assertLessEqual(dups, 4 * 16 + 4 * 1000)
            st.wait_committed_to_end()
            # Desired state holds whatever ran twice: every instance is linked exactly once.
            linked = [i for i in st.sim.state()["instances"] if i["linkedVpc"] == "vpc-0"]
            self.assertEqual(len(linked), n)
            self.assertEqual(w2.stop(), 0)


class Rebalance(unittest.TestCase):
    def test_second_worker_joins_then_first_leaves(self):
        n = 400
        with worklib.Stack(partitions=6, sim_args=GEN + ["--latency-ms", "5"]) as st:
            a = st.worker({"worker.max_in_flight": "8"})
            st.send([{"key": "b%d" % i, "value": request("vpc-0", ["ins-%d" % i],
                                                          request_id="b%d" % i, region=REGION)}
                     for i in range(n)])
            st.outcome_records(50)
            b = st.worker({"worker.max_in_flight": "8"}, wait_assigned=False)
            a.wait_msg("revoking")  # the cooperative rebalance takes partitions from a
            b.wait_assigned()
            self.assertEqual(a.stop(), 0)  # a leaves: b takes everything
            seen = st.wait_outcomes_for("b%d" % i for i in range(n))
            dups = sum(len(v) - 1 for v in seen.values())
            print("rebalance test: requests=%d outcomes=%d duplicates=%d lost=0"
                  % (n, sum(len(v) for v in seen.values()), dups))
            # Revoked partitions were drained and committed, so nothing ran twice.
            self.assertEqual(dups, 0)
            st.wait_committed_to_end()
            self.assertEqual(b.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
