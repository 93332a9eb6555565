"""Quota-bound throughput (contract section 8), against a real Kafka broker.

The simulator admits 100 calls per second per action (Tencent's documented quota) and answers in
50 ms; one-instance requests for one VPC over 12 partitions meet a worker with the product's
defaults plus api.version=3 and worker.max_in_flight=256, so every burst of calls runs into the
quota.

- Without coalescing (api.coalesce.max_instances=1), 2 000 requests: the worker must never open
  its circuit breaker for throttling answers, must start its rate limiter by itself
  (api.rate_limit=0) and settle just under the quota: after the first 5 s at most 2 % of calls
  throttled and at least 85 calls admitted per second.
- With coalescing (the default), 20 000 requests share calls of up to 100 instances: every one
  succeeds, no circuit opens, and the calls are a small fraction of the requests.

Each prints one line:
  kafka scenario quota...: requests=N outcomes=N ... calls/s=.. throttled=..%
"""

import json
import os
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import loadlib  # noqa: E402
from loadlib import BrokerCase  # noqa: E402

import kafkalib  # noqa: E402
import simlib  # noqa: E402
import worklib  # noqa: E402

QUOTA = 100
TOTAL = 2000
COALESCED_TOTAL = 20000
PARTITIONS = 12
SETTLE_S = 5


def product_defaults(extra):
    """Settings that undo worklib's fast-test overrides of retry and timeout defaults, so the
    worker runs as a user would run it."""
    conf = {
        "retry.initial_backoff_ms": "200",
        "retry.max_backoff_ms": "30000",
        "api.timeout_ms": "10000",
        "worker.shutdown_timeout_ms": "20000",
        "worker.max_pending_per_partition": "1000",
        "api.quota": None,  # the product's: 100, the simulator's quota here
    }
    conf.update(extra)
    return conf


class Quota(BrokerCase, unittest.TestCase):

    def run_quota(self, name, extra, total=TOTAL, timeout_s=90):
        """Runs the scenario; returns the worker, the outcomes by key, the simulator's stats, the
        worker's last metrics, the wall time of the first request and the seconds to the last
        outcome."""
        self.requests = "req-" + name
        self.results = "res-" + name
        kafkalib.create_topics(self.bootstrap, {self.requests: PARTITIONS, self.results: 6})
        sim = simlib.Sim().start(
            seed={"generate": {"vpcs": 1, "instances": total, "region": loadlib.REGION}},
            credentials=[(worklib.SECRET_ID, worklib.SECRET_KEY)],
            extra_args=["--quota", str(QUOTA), "--latency-ms", "50", "--threads", "2"],
            call_log=False)
        self.addCleanup(sim.stop)
        logs = loadlib.log_dir(name)
        settings = loadlib.worker_settings(self.requests, self.results, product_defaults(dict(
            {"api.version": "3", "worker.max_in_flight": "256"}, **extra)))
        w = worklib.Worker(self.bootstrap, sim.endpoint_v3, settings=settings,
                           group="grp-" + name, log_path=os.path.join(logs, "w0.log"))
        self.addCleanup(loadlib._close_worker, w)
        w.wait_assigned()
        records = [{"key": "q%05d" % i,
                    "value": '{"requestId":"q%05d","region":"%s","vpcId":"vpc-0",'
                             '"instanceIds":["ins-%d"]}' % (i, loadlib.REGION, i),
                    "partition": i % PARTITIONS} for i in range(total)]
        start_wall = time.time()
        t0 = time.monotonic()
        kafkalib.produce(self.bootstrap, self.requests, records, timeout_s=120)
        # 2 000 requests at 85/s take under 25 s; a worker whose circuit opens (30 s probes)
        # makes about 4 outcomes/s and misses this by far.
        try:
            recs = kafkalib.consume(self.bootstrap, self.results, count=total,
                                    timeout_s=timeout_s, config=loadlib.READ_COMMITTED)
        except kafkalib.KafkaTimeout as e:
            raise AssertionError("%d of %d outcomes after %d s; circuit opened %d times" % (
                len(e.records), total, timeout_s,
                len(loadlib.log_lines(w, "circuit open")))) from None
        elapsed = time.monotonic() - t0
        outcomes = {}
        for r in recs:
            outcomes.setdefault(r["key"], []).append(r["value"])
        stats = sim.stats()
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % w.metrics_port(),
                                    timeout=5) as resp:
            metrics = resp.read().decode()
        rc = w.stop()
        self.assertEqual(rc, 0, w.tail())
        return w, outcomes, stats, metrics, start_wall, elapsed

    def test_throttling_never_opens_the_circuit(self):
        w, outcomes, stats, metrics, start_wall, elapsed = self.run_quota(
            "quota", {"api.coalesce.max_instances": "1"})
        self.assertEqual(len(outcomes), TOTAL)
        failed = [v for vs in outcomes.values() for v in vs if '"status":"succeeded"' not in v]
        self.assertEqual(failed[:3], [])
        self.assertEqual(loadlib.log_lines(w, "circuit open"), [])
        self.assertEqual(loadlib.log_lines(w, "worker fault"), [])
        paused = [line for line in metrics.splitlines()
                  if line.startswith("classiclink_paused{") and not line.endswith(" 0")]
        self.assertEqual(paused, [], "a pause was active at the end")

        # The simulator's per-second counters (wall seconds, the last 60 ending at
        # perSecondEnd): from 5 s after the first request to the last full second of backlog.
        end = stats["perSecondEnd"]
        accepted = stats["acceptedPerSecond"]
        throttled = stats["throttledPerSecond"]
        first = int(start_wall) + SETTLE_S + 1
        last = int(start_wall + elapsed) - 1
        idx = [len(accepted) - 1 - (end - s) for s in range(first, last)]
        idx = [i for i in idx if 0 <= i < len(accepted)]
        self.assertGreaterEqual(len(idx), 5, "too few settled seconds to measure")
        ok = sum(accepted[i] for i in idx)
        thr = sum(throttled[i] for i in idx)
        rate = ok / float(len(idx))
        share = thr / float(max(1, ok + thr))
        loadlib.summary("quota", {"requests": TOTAL, "outcomes": sum(map(len, outcomes.values())),
                                  "duplicates": sum(map(len, outcomes.values())) - TOTAL,
                                  "lost": TOTAL - len(outcomes), "wrong": len(failed)},
                        elapsed, "outcomes/s=%.1f settled calls/s=%.1f throttled=%.2f%% "
                        "(all: %d throttled of %d calls)" % (
                            TOTAL / elapsed, rate, 100 * share, stats["throttled"],
                            stats["calls"]))
        self.assertLessEqual(share, 0.02, "throttled share after settling")
        self.assertGreaterEqual(rate, 0.85 * QUOTA, "admitted calls per second after settling")

    def test_coalescing_lifts_the_quota_cap(self):
        total = COALESCED_TOTAL
        w, outcomes, stats, metrics, start_wall, elapsed = self.run_quota(
            "quotacoal", {}, total=total, timeout_s=180)
        self.assertEqual(len(outcomes), total)
        values = [json.loads(v) for vs in outcomes.values() for v in vs]
        self.assertEqual([o["requestId"] for o in values if o["status"] != "succeeded"][:3], [])
        self.assertEqual(loadlib.log_lines(w, "circuit open"), [])
        calls = stats["byAction"].get("AttachClassicLinkVpc", 0)
        admitted = calls - stats["throttled"]
        shared = [o["coalesced"] for o in values]
        loadlib.summary("quota-coalesced",
                        {"requests": total, "outcomes": len(values),
                         "duplicates": len(values) - total, "lost": total - len(outcomes),
                         "wrong": 0},
                        elapsed, "outcomes/s=%.1f calls=%d (admitted %d, throttled %d) "
                        "requests/call mean=%.1f max=%d" % (
                            total / elapsed, calls, admitted, stats["throttled"],
                            total / float(max(1, admitted)), max(shared)))
        # Every call that succeeded carried many requests: far fewer calls than requests.
        self.assertLessEqual(admitted, total // 20)
        self.assertEqual(max(shared), 100)
        self.assertEqual(sum(1 for o in values if o["attempts"] < 1), 0)
        # The histogram of requests per call saw the same calls.
        count = [line for line in metrics.splitlines()
                 if line.startswith("classiclink_call_requests_count ")]
        self.assertEqual(len(count), 1)
        self.assertGreaterEqual(int(count[0].split()[1]), admitted)


if __name__ == "__main__":
    unittest.main(verbosity=2)
