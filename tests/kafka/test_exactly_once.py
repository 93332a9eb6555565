"""delivery.mode=exactly_once on a real broker: outcomes and input offsets commit in one Kafka
transaction, so a read_committed consumer sees exactly one outcome per request across SIGKILLs,
a second live instance with the same transactional.id fences the first, and a broker that
answers nothing for 15 s (SIGSTOP) never stops the event loop.

Prints one summary line per scenario:
  kafka scenario eos-kill: requests=N outcomes=N duplicates=0 lost=0 wrong=0 time=Ns ...
"""

import json
import os
import signal
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import loadlib  # noqa: E402
from loadlib import BrokerCase  # noqa: E402

PARTITIONS = 12


def eos(tid, extra=None):
    conf = {"delivery.mode": "exactly_once", "kafka.producer.transactional.id": tid,
            "kafka.producer.transaction.timeout.ms": "10000", "worker.max_in_flight": "16"}
    conf.update(extra or {})
    return conf


class AttachOnly(loadlib.Mix):
    """Successful one-instance Attach requests to vpc-0 only. They share one coalescing group,
    so with coalescing off the worker calls the API in offset order and each outcome is released
    as soon as it is final: the records the worker holds are work still to do, not finished
    outcomes waiting for an earlier one."""

    def next(self):
        rid = "%s-%06d" % (self.prefix, self.index)
        self.index += 1
        ins = self._fresh()
        body = {"requestId": rid, "vpcId": loadlib.VPC_OK, "instanceIds": ins}
        exp = {"requestId": rid, "status": "succeeded", "errorClass": None,
               "codeDesc": "Success", "links": {ins[0]: loadlib.VPC_OK},
               "vpcId": loadlib.VPC_OK, "action": "AttachClassicLinkVpc"}
        return {"key": rid, "value": json.dumps(body)}, exp


def http_get(port, path):
    """(status, body) of GET path on a worker's operations listener; status 0 when it did not
    answer within 2 s."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def api_calls(port):
    """The sum of classiclink_api_calls_total over every label set: API answers handled."""
    status, body = http_get(port, "/metrics")
    if status != 200:
        return -1
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in body.splitlines()
               if line.startswith("classiclink_api_calls_total{"))


class ExactlyOnce(BrokerCase, unittest.TestCase):

    def test_f_sigkill_twice_no_duplicate_outcome(self):
        """SIGKILL mid-stream twice, restarting with the same transactional.id: the open
        transaction is aborted, and read_committed sees every outcome exactly once."""
        total = 3000
        self.setup_scenario("eos-kill", total)
        w = self.start_worker("w0", eos("eos-kill-0"))
        loadlib.wait_owned([w], [PARTITIONS], PARTITIONS)
        feeder = self.feeder(rate=0, total=total)
        feeder.produce_now(total)
        kills = 0
        for step in (total // 4, total // 2):
            loadlib.wait_count(self.bootstrap, self.results, step)
            self.assertEqual(w.kill(), -signal.SIGKILL)
            kills += 1
            w = self.start_worker("w0-restart%d" % kills, eos("eos-kill-0"))
        counts = self.finish(extra="kills=%d" % kills, max_duplicates=0)
        self.assertEqual(counts["requests"], total)
        self.assertEqual(counts["duplicates"], 0)
        self.assertEqual(w.stop(), 0, w.tail())

    def test_g_second_instance_with_the_same_transactional_id_is_fenced(self):
        total = 600
        self.setup_scenario("eos-fence", total)
        first = self.start_worker("first", eos("eos-fence-0"))
        loadlib.wait_owned([first], [PARTITIONS], PARTITIONS)
        feeder = self.feeder(rate=0, total=total)
        feeder.produce_now(200)
        loadlib.wait_count(self.bootstrap, self.results, 100)
        second = self.start_worker("second", eos("eos-fence-0"))
        # The first instance notices when it next produces: keep feeding both until it has.
        sent = 200
        while first.proc.poll() is None and sent < total:
            feeder.produce_now(100)
            sent += 100
            try:
                first.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                pass  # still running: feed more
        if sent < total:
            feeder.produce_now(total - sent)
        rc = first.wait(120)
        # The first instance's transaction was refused: it says why and exits 2.
        self.assertEqual(rc, 2, first.tail())
        self.assertTrue(loadlib.log_lines(first, "fenced by a newer instance"), first.tail())
        counts = self.finish(max_duplicates=0)
        self.assertEqual(counts["requests"], total)
        self.assertEqual(second.stop(), 0, second.tail())

    def test_h_stopped_broker_never_blocks_the_event_loop(self):
        """SIGSTOP the broker for 15 s while the worker has API work in flight: the transaction
        commit waits, the event loop does not. /healthz (polled every 200 ms) stays 200, API
        answers keep being handled, and after SIGCONT read_committed sees every outcome once."""
        total = 800
        stop_s = 15.0
        # A slow API and two calls at a time: the ~260 records the worker holds take ~13 s of
        # calls, so there is API work for most of the stop (no new record can be fetched).
        self.setup_scenario("eos-stall", total, sim_latency=(100, 0))
        self.mix = AttachOnly(self.name, total, self.mix.linked)
        w = self.start_worker("w0", eos("eos-stall-0", {
            "worker.max_in_flight": "2", "api.coalesce.max_instances": "1",
            # The stop must not expire the transaction or the group session on the broker.
            "kafka.producer.transaction.timeout.ms": "60000",
            "kafka.consumer.session.timeout.ms": "45000"}))
        loadlib.wait_owned([w], [PARTITIONS], PARTITIONS)
        port = w.metrics_port()
        feeder = self.feeder(rate=0, total=total)
        feeder.produce_now(total)
        loadlib.wait_count(self.bootstrap, self.results, 60)
        samples = []  # (seconds into the stop, /healthz status, API answers handled)
        self.kafka.suspend()
        try:
            t0 = time.monotonic()
            while time.monotonic() - t0 < stop_s:
                status, _ = http_get(port, "/healthz")
                samples.append((time.monotonic() - t0, status, api_calls(port)))
                time.sleep(0.2)  # the sampling period: the stop itself is a time condition
        finally:
            self.kafka.resume()
        unhealthy = [(round(t, 1), st) for t, st, _ in samples if st != 200]
        early = [c for t, _, c in samples if t >= 1.0][0]
        mid = [c for t, _, c in samples if t >= stop_s / 2][0]
        late = samples[-1][2]
        detail = "API answers handled: %d at 1 s, %d at %.1f s, %d at %.1f s; %d samples" % (
            early, mid, stop_s / 2, late, samples[-1][0], len(samples))
        self.assertEqual(unhealthy, [], "/healthz failed during the stop (%s)" % detail)
        # About 20 answers a second while the loop turns (till the held records are done);
        # none while it waits for the broker.
        self.assertGreaterEqual(mid - early, 20, detail)
        self.assertGreaterEqual(late - mid, 20, detail)
        counts = self.finish(extra="stop=%.0fs calls_during_stop=%d healthz_samples=%d" % (
            stop_s, late - samples[0][2], len(samples)), max_duplicates=0)
        self.assertEqual(counts["requests"], total)
        self.assertEqual(w.stop(), 0, w.tail())


if __name__ == "__main__":
    unittest.main(verbosity=2)
