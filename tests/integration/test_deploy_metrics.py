"""The alert rules (deploy/prometheus) and the dashboard (deploy/grafana) name only metrics the
worker exports: the real worker runs against the mock broker and the simulator (temporary
credentials from its metadata service, a dead-letter topic), is driven until every family has
samples (an API call, an invalid request, a stored offset), and every metric name in the rules'
expressions and the dashboard's queries must appear as a sample in its /metrics. The two new
families are checked for their values too: one dead letter, and the expiry of the temporary
credentials the worker logged."""

import calendar
import json
import os
import re
import sys
import time
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kafkalib  # noqa: E402,F401  (worklib's broker helpers)
import worklib  # noqa: E402
from worklib import request  # noqa: E402

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
RULES = os.path.join(REPO, "deploy", "prometheus", "classiclink-worker.rules.yaml")
DASHBOARD = os.path.join(REPO, "deploy", "grafana", "classiclink-worker.json")
ROLE = "clw-worker-role"
DLQ = "classiclink.dlq"
NAME = re.compile(r"\bclassiclink_[a-z0-9_]+")


def rule_metrics():
    rules = yaml.safe_load(open(RULES, encoding="utf-8"))
    exprs = [str(r["expr"]) for g in rules["groups"] for r in g["rules"]]
    return {n for e in exprs for n in NAME.findall(e)}


def dashboard_metrics():
    """Names in every query of the dashboard: panel targets and template variables."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("expr", "query", "definition") and isinstance(v, str):
                    found.update(NAME.findall(v))
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(json.load(open(DASHBOARD, encoding="utf-8")))
    return found


def samples(text):
    """{sample name: [(labels text, value)]} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$", line)
        if m:
            out.setdefault(m.group(1), []).append((m.group(2) or "", float(m.group(3))))
    return out


class ExportedMetrics(unittest.TestCase):
    def test_rules_and_dashboard_name_only_exported_metrics(self):
        wanted = rule_metrics() | dashboard_metrics()
        # The extraction itself: both files name the core families.
        self.assertLessEqual({"classiclink_paused", "classiclink_consumer_lag",
                              "classiclink_dead_letters_total",
                              "classiclink_credentials_expiry_timestamp_seconds"}, rule_metrics())
        self.assertLessEqual({"classiclink_requests_total", "classiclink_api_calls_total",
                              "classiclink_call_requests_bucket",
                              "classiclink_inflight_calls"}, dashboard_metrics())
        with worklib.Stack(partitions=1,
                           sim_args=["--gen-vpcs", "1", "--gen-instances", "20",
                                     "--cvm-role", ROLE]) as st:
            st.broker.create_topic(DLQ, 1)
            url = st.sim.url + "/latest/meta-data/cam/security-credentials/"
            # api.quota at the product's default (the test defaults turn it off): the limiter's
            # families then have series.
            w = st.worker({"api.role_name": ROLE, "api.metadata_endpoint": url, "topic.dlq": DLQ,
                           "api.quota": None},
                          secret_id=None, secret_key=None)
            st.send([{"key": "a", "value": request("vpc-0", ["ins-1"], request_id="m1",
                                                   region="ap-guangzhou")},
                     {"key": "b", "value": request("vpc-0", ["ins-2"], request_id="m2",
                                                   region="ap-guangzhou")},
                     {"key": "c", "value": "not json"}])
            outcomes = {json.loads(r["value"])["requestId"]: json.loads(r["value"])
                        for r in st.outcome_records(3)}
            self.assertEqual(outcomes["m1"]["status"], "succeeded", outcomes)
            line = w.wait_msg("credentials refreshed; they expire at ")
            expires_at = json.loads(line)["msg"].rsplit(" ", 1)[1]
            expiry = calendar.timegm(time.strptime(expires_at[:19], "%Y-%m-%dT%H:%M:%S"))

            # Lag and the committed offset appear once an offset is stored and the high
            # watermark seen (sampled every second): wait for every wanted name.
            deadline = time.monotonic() + 30
            while True:
                status, text = w.http_get("/metrics")
                self.assertEqual(status, 200)
                got = samples(text)
                missing = sorted(wanted - set(got))
                if not missing or time.monotonic() > deadline:
                    break
                time.sleep(0.2)  # polling the worker's own once-a-second sampling
            self.assertEqual(missing, [], "named by the alert rules or the dashboard but not "
                             "exported:\n%s" % text)
            self.assertEqual(got["classiclink_dead_letters_total"], [("", 1.0)])
            self.assertEqual(got["classiclink_credentials_expiry_timestamp_seconds"],
                             [("", float(expiry))])
            self.assertGreater(expiry, time.time())
            attach = '{action="AttachClassicLinkVpc"}'
            self.assertIn((attach, 100.0), got["classiclink_api_quota"])
            admitted = dict(got["classiclink_ratelimit_admitted_total"])
            attach_calls = st.sim.stats()["byAction"]["AttachClassicLinkVpc"]
            self.assertEqual(admitted['{action="AttachClassicLinkVpc",region="ap-guangzhou"}'],
                             float(attach_calls), admitted)
            self.assertEqual(w.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
