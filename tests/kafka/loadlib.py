"""loadlib: request mixes, outcome accounting and a rate-limited feeder for the `kafka` tests.

Python 3 standard library only. Used by tests/kafka/test_*.py together with
tests/integration/{kafkalib,worklib,simlib,kafkareal}.py.

A Mix builds requests whose correct outcome is known in advance: mostly successful Attach and
Detach calls over distinct instances, some API business errors (unknown VPC, unknown instance)
and some invalid requests. Every record's key is its requestId, and an outcome's key is the
input key, so outcomes are matched to requests by key. A Ledger holds the expectations and
checks a list of consumed outcomes against them.
"""

import calendar
import json
import os
import signal
import sys
import threading
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "integration"))

import kafkalib  # noqa: E402
import simlib  # noqa: E402
import worklib  # noqa: E402

READ_COMMITTED = {"isolation.level": "read_committed"}
VPC_OK = "vpc-0"
VPC_OTHER = "vpc-1"
REGION = "ap-guangzhou"


def log_dir(name):
    """A directory for this scenario's worker logs under the build directory (kept after the
    run so a failure can be read)."""
    path = os.path.join(kafkalib.build_dir(), "test-logs", "kafka", name)
    os.makedirs(path, exist_ok=True)
    for old in os.listdir(path):
        os.unlink(os.path.join(path, old))
    return path


def start_sim(instances, linked, latency_ms=1, jitter_ms=4):
    """The API simulator with vpc-0, vpc-1 and ins-0..ins-(instances-1), the first `linked` of
    them linked to vpc-0, answering in latency_ms plus up to jitter_ms (1-5 ms by default), and
    with the worker's test credentials.

    Attach/Detach express a desired state (contract section 5): a repeated Attach to the same
    VPC and a repeated Detach succeed, so a request redone after a crash or rebalance keeps the
    outcome it had the first time."""
    return simlib.Sim().start(
        seed={"generate": {"vpcs": 2, "instances": instances, "linked": linked,
                           "region": REGION}},
        credentials=[(worklib.SECRET_ID, worklib.SECRET_KEY)],
        extra_args=["--latency-ms", str(latency_ms), "--latency-jitter-ms", str(jitter_ms),
                    "--same-vpc-attach", "success", "--detach-unlinked", "success",
                    "--task-delay-ms", "0", "--threads", "2"],
        call_log=False)


class Mix:
    """Deterministic request mix. Instances ins-0..ins-(linked-1) start linked to vpc-0 and are
    the Detach pool; ins-linked.. are the Attach pool; no instance is used twice."""

    def __init__(self, prefix, total, detach_pool, attach_only=False):
        self.prefix = prefix
        self.total = total
        self.linked = detach_pool
        self.next_detach = 0
        self.next_attach = detach_pool
        self.index = 0
        self.attach_only = attach_only  # every request a one-instance Attach that succeeds

    @staticmethod
    def instances_needed(total):
        """(instances, linked) for a simulator seed that covers `total` requests."""
        linked = total // 25 + 10
        return total * 2 + linked + 10, linked

    def _fresh(self, n=1):
        ids = ["ins-%d" % (self.next_attach + k) for k in range(n)]
        self.next_attach += n
        return ids

    def next(self):
        """(record, expectation) of the next request."""
        i = self.index
        self.index += 1
        rid = "%s-%06d" % (self.prefix, i)
        kind = 99 if self.attach_only else i % 100
        body = None
        value = None
        exp = {"requestId": rid, "status": "failed", "errorClass": "api_error", "links": {}}
        if kind < 3 and self.next_detach < self.linked:
            ins = ["ins-%d" % self.next_detach]
            self.next_detach += 1
            body = {"requestId": rid, "action": "DetachClassicLinkVpc", "vpcId": VPC_OK,
                    "instanceIds": ins}
            exp.update(status="succeeded", errorClass=None, codeDesc="Success",
                       links={ins[0]: None})
        elif kind < 6:
            ins = self._fresh()
            body = {"requestId": rid, "vpcId": "vpc-nx%d" % i, "instanceIds": ins}
            exp.update(codeDesc="InvalidVpc.NotFound", links={ins[0]: None})
        elif kind < 8:
            body = {"requestId": rid, "vpcId": VPC_OTHER, "instanceIds": ["ins-nx%d" % i]}
            exp.update(codeDesc="InvalidInstance.NotFound")
        elif kind == 8:
            body = {"requestId": rid, "vpcId": "VPC-Bad", "instanceIds": ["ins-1"]}
            exp.update(errorClass="invalid_request", codeDesc="InvalidRequest.BadVpcId")
        elif kind == 9:
            body = {"requestId": rid, "vpcId": VPC_OK}
            exp.update(errorClass="invalid_request", codeDesc="InvalidRequest.MissingField")
        elif kind == 10:
            value = "{not json %d" % i
            exp.update(errorClass="invalid_request", codeDesc="InvalidRequest.NotJson",
                       requestId=None)
        elif kind == 11:
            body = {"requestId": rid, "vpcId": VPC_OK, "instanceIds": ["i-%d" % i]}
            exp.update(errorClass="invalid_request", codeDesc="InvalidRequest.BadInstanceId")
        else:
            ins = self._fresh(2 if kind % 7 == 0 and not self.attach_only else 1)
            body = {"requestId": rid, "region": REGION, "vpcId": VPC_OK, "instanceIds": ins}
            exp.update(status="succeeded", errorClass=None, codeDesc="Success",
                       links={x: VPC_OK for x in ins})
        if body is not None:
            value = json.dumps(body)
            exp["vpcId"] = body.get("vpcId") if exp["errorClass"] != "invalid_request" else None
            exp["action"] = body.get("action", "AttachClassicLinkVpc")
        return {"key": rid, "value": value}, exp


class Ledger:
    """Expected outcomes by record key, plus the checks."""

    def __init__(self, requests_topic):
        self.topic = requests_topic
        self.expected = {}
        self._lock = threading.Lock()

    def add(self, key, exp):
        with self._lock:
            self.expected[key] = exp

    def keys(self):
        with self._lock:
            return set(self.expected)

    def links(self):
        """{instance: VPC it should end linked to, or None} over every request so far."""
        with self._lock:
            want = {}
            for exp in self.expected.values():
                want.update(exp["links"])
            return want

    def tally(self, records):
        """(counts dict, {key: [outcome, ...]}, [error text]) for consumed result records."""
        with self._lock:
            expected = dict(self.expected)
        by_key = {}
        errors = []
        for rec in records:
            by_key.setdefault(rec["key"], []).append(rec)
        for key, recs in by_key.items():
            exp = expected.get(key)
            if exp is None:
                errors.append("outcome for unknown key %r" % key)
                continue
            for rec in recs:
                problem = self._check(exp, rec)
                if problem:
                    errors.append("%s: %s: %s" % (key, problem, rec["value"][:400]))
        outcomes = sum(len(v) for k, v in by_key.items() if k in expected)
        distinct = sum(1 for k in by_key if k in expected)
        counts = {"requests": len(expected), "outcomes": outcomes,
                  "duplicates": outcomes - distinct, "lost": len(expected) - distinct,
                  "wrong": len(errors)}
        return counts, by_key, errors

    def _check(self, exp, rec):
        try:
            out = json.loads(rec["value"])
        except (TypeError, ValueError):
            return "outcome is not JSON"
        for field in ("status", "errorClass", "codeDesc"):
            if out.get(field) != exp[field]:
                return "%s is %r, expected %r" % (field, out.get(field), exp[field])
        if exp["requestId"] is not None and out.get("requestId") != exp["requestId"]:
            return "requestId is %r" % out.get("requestId")
        if exp["requestId"] is None and not str(out.get("requestId")).startswith(self.topic + ":"):
            return "default requestId is %r" % out.get("requestId")
        src = out.get("source") or {}
        if src.get("topic") != self.topic:
            return "source.topic is %r" % src.get("topic")
        if exp["errorClass"] == "invalid_request":
            if out.get("code") != 4000 or out.get("attempts") != 0:
                return "invalid request with code %r attempts %r" % (out.get("code"),
                                                                    out.get("attempts"))
        else:
            if out.get("action") != exp["action"] or out.get("vpcId") != exp["vpcId"]:
                return "action/vpcId echo %r/%r" % (out.get("action"), out.get("vpcId"))
            if not isinstance(out.get("attempts"), int) or out["attempts"] < 1:
                return "attempts %r" % out.get("attempts")
            if exp["status"] == "succeeded" and out.get("code") != 0:
                return "code %r on success" % out.get("code")
        return None

    def check_sim_state(self, sim):
        """Error texts for instances whose link in the simulator differs from the expectation."""
        want = self.links()
        have = {ins["instanceId"]: ins["linkedVpc"] for ins in sim.state()["instances"]}
        return ["%s linked to %r, expected %r" % (ins, have.get(ins, "<absent>"), vpc)
                for ins, vpc in sorted(want.items()) if have.get(ins, "<absent>") != vpc]


def read_outcomes(bootstrap, topic, timeout_s=30.0):
    """Every outcome record currently in topic (read_committed)."""
    return kafkalib.consume(bootstrap, topic, count=None, timeout_s=timeout_s,
                            config=READ_COMMITTED)


def wait_outcomes(bootstrap, topic, ledger, timeout_s=180.0):
    """Waits until every key of ledger has at least one outcome in topic; returns the records.
    Raises AssertionError with the counts on timeout."""
    deadline = time.monotonic() + timeout_s
    records = read_outcomes(bootstrap, topic)
    while True:
        counts, by_key, _ = ledger.tally(records)
        missing = counts["lost"]
        if missing == 0:
            return records
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("outcomes missing after %.0f s: %s; e.g. %s" % (
                timeout_s, counts, sorted(ledger.keys() - set(by_key))[:10]))
        # Block until at least `missing` more records exist (or a bounded wait passes).
        try:
            records = kafkalib.consume(bootstrap, topic, count=len(records) + missing,
                                       timeout_s=min(left, 20.0), config=READ_COMMITTED)
        except kafkalib.KafkaTimeout as e:
            records = e.records


def wait_committed_end(bootstrap, group, topic, timeout_s=60.0):
    """Waits until group's committed offset equals the end offset of every partition of topic;
    returns the partition list. Raises AssertionError naming the lagging partitions."""
    deadline = time.monotonic() + timeout_s
    while True:
        parts = kafkalib.partition_offsets(bootstrap, group, topic)
        behind = [p for p in parts if p["committed"] != p["high"]]
        if not behind:
            return parts
        if time.monotonic() >= deadline:
            raise AssertionError("committed offsets short of the end after %.0f s: %s" % (
                timeout_s, behind))
        time.sleep(0.25)  # the workers commit every 100 ms: poll the condition


def timestamp(value, field):
    """Unix time of an RFC 3339 UTC timestamp field ("2026-11-25T21:06:32.123Z") of an outcome
    JSON value."""
    text = json.loads(value)[field]
    t = time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(t) + float("0" + text[19:].rstrip("Z"))


def redo_bound(bootstrap, topic, kill_at, max_in_flight, lag_s=0.0):
    """The contract's bound on what a SIGKILL at wall time kill_at redoes (section 5, commit
    cadence): worker.max_in_flight plus 0.25 s of throughput, the throughput being the outcomes
    that became final in a quarter second before the kill: [kill - lag - 0.25, kill - lag).
    lag_s > 0 measures a steady stream where the last outcomes are not visible yet (exactly-once:
    the open transaction was aborted). Returns (bound, those outcomes)."""
    end = kill_at - lag_s
    stamps = [timestamp(r["value"], "completedAt") for r in read_outcomes(bootstrap, topic)]
    recent = sum(1 for t in stamps if end - 0.25 <= t < end)
    return max_in_flight + recent, recent


def summary(name, counts, seconds, extra=""):
    line = ("kafka scenario %s: requests=%d outcomes=%d duplicates=%d lost=%d wrong=%d "
            "time=%.1fs%s" % (name, counts["requests"], counts["outcomes"],
                               counts["duplicates"], counts["lost"], counts["wrong"], seconds,
                               (" " + extra) if extra else ""))
    print(line, flush=True)
    return line


class Feeder:
    """Produces requests from a Mix in a background thread: `rate` per second in batches,
    until stop() or `total` requests."""

    def __init__(self, bootstrap, topic, mix, ledger, rate, total, batch_s=0.25,
                 results_topic=None):
        self.bootstrap = bootstrap
        self.topic = topic
        self.results_topic = results_topic
        self.mix = mix
        self.ledger = ledger
        self.rate = rate
        self.total = total
        self.batch_s = batch_s
        self.produced = 0
        self.error = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def produce_now(self, n):
        """Produces n requests at once (in the caller's thread, also while the feeder runs);
        returns the number produced before them."""
        with self._lock:
            before = self.produced
            records = []
            for _ in range(n):
                rec, exp = self.mix.next()
                self.ledger.add(rec["key"], exp)
                records.append(rec)
            kafkalib.produce(self.bootstrap, self.topic, records, timeout_s=120)
            self.produced += n
        return before

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        per_batch = max(1, int(self.rate * self.batch_s))
        next_at = time.monotonic()
        try:
            while not self._stop.is_set() and self.produced < self.total:
                self.produce_now(max(0, min(per_batch, self.total - self.produced)))
                next_at += self.batch_s
                self._stop.wait(max(0.0, next_at - time.monotonic()))
        except Exception as e:  # reported by stop()
            self.error = e

    def burst(self, n, progress):
        """Produces a backlog of n requests and waits until `progress` of them have outcomes,
        so that whatever comes next lands in the middle of the stream."""
        before = self.produce_now(n)
        return wait_count(self.bootstrap, self.results_topic, before + progress)

    def stop(self):
        """Stops producing; returns the number of requests produced. Raises if producing
        failed."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(180)
        if self.error is not None:
            raise AssertionError("feeder failed: %s" % self.error)
        return self.produced

    def wait_done(self, timeout_s):
        """Waits until all `total` requests are produced."""
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise AssertionError("feeder still producing after %.0f s" % timeout_s)
        if self.error is not None:
            raise AssertionError("feeder failed: %s" % self.error)
        return self.produced


class SteadyFeeder:
    """Produces requests from a Mix at `rate` per second, a few every 10 ms, through one
    long-lived producer: a steady stream for measurements that need one (the batch Feeder
    starts a producer process per batch)."""

    TICK_S = 0.01

    def __init__(self, bootstrap, topic, mix, ledger, rate):
        self.mix = mix
        self.ledger = ledger
        self.rate = rate
        self.produced = 0
        self.error = None
        self._producer = kafkalib.Producer(bootstrap, topic)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        start = time.monotonic()
        try:
            while not self._stop.is_set():
                due = int((time.monotonic() - start) * self.rate)
                records = []
                while self.produced + len(records) < due:
                    rec, exp = self.mix.next()
                    self.ledger.add(rec["key"], exp)
                    records.append(rec)
                if records:
                    self._producer.send(records)
                    self.produced += len(records)
                self._stop.wait(self.TICK_S)
        except Exception as e:  # reported by stop()
            self.error = e

    def stop(self):
        """Stops producing; returns the number of requests produced (all delivered)."""
        self._stop.set()
        self._thread.join(60)
        delivered = self._producer.close()
        if self.error is not None:
            raise AssertionError("feeder failed: %s" % self.error)
        if delivered != self.produced:
            raise AssertionError("%d of %d requests delivered" % (delivered, self.produced))
        return self.produced


# Records a partition takes beyond its oldest unfinished one (worker.max_pending_per_partition).
MAX_PENDING = 200


def worker_settings(requests, results, extra=None):
    """Worker settings for the real-broker tests (on top of worklib's defaults)."""
    conf = {
        "topic.requests": requests,
        "topic.results": results,
        "log.level": "info",
        "worker.max_pending_per_partition": str(MAX_PENDING),
        # Revocations and SIGTERM drain for as long as the product's default allows.
        "worker.shutdown_timeout_ms": None,
        "kafka.consumer.reconnect.backoff.max.ms": "1000",
        "kafka.producer.reconnect.backoff.max.ms": "1000",
        # start_sim has no quota: the workers must not hold themselves to Tencent's. A request
        # waiting for a token holds its partition's commit point (contract section 5), which
        # these scenarios' redo bounds (calls in flight + 0.25 s) do not allow for.
        "api.quota": "0" if worklib.worker_knows("api.quota") else None,
    }
    conf.update(extra or {})
    return conf


def instrumented():
    """True when the workers run under a wrapper such as valgrind (CLW_WORKER_WRAPPER)."""
    return bool(os.environ.get("CLW_WORKER_WRAPPER", "").strip())


def unfinished(workers):
    """{partition: requests} that the workers revoked with work left ("partition P revoked with
    N request(s) unfinished"): their drain outlasted worker.shutdown_timeout_ms."""
    left = {}
    for w in workers:
        for msg in log_lines(w, "request(s) unfinished"):
            words = msg.split()
            left[int(words[1])] = left.get(int(words[1]), 0) + int(words[4])
    return left


def log_lines(worker, fragment):
    """The msg of every JSON log record of worker containing fragment."""
    return [r.get("msg", "") for r in worker.records() if fragment in r.get("msg", "")]


class BrokerCase:
    """Mixin for unittest.TestCase classes: one real broker per test file (setUpClass), one
    simulator, topics and consumer group per scenario."""

    kafka = None

    @classmethod
    def start_broker(cls):
        import kafkareal
        cls.kafka = kafkareal.RealKafka()
        cls.kafka.start()
        cls.bootstrap = cls.kafka.bootstrap
        print("kafka broker startup: %.1fs (script wall time, first start)" %
              cls.kafka.startup_s[0], flush=True)

    @classmethod
    def stop_broker(cls):
        if cls.kafka is not None:
            cls.kafka.close()
            cls.kafka = None

    @classmethod
    def setUpClass(cls):
        cls.start_broker()

    @classmethod
    def tearDownClass(cls):
        cls.stop_broker()

    def setup_scenario(self, name, total, partitions=12, result_partitions=6, sim_latency=(1, 4)):
        """Topics, simulator, ledger, mix, log directory for one scenario. sim_latency: the
        simulator's (latency, jitter) in ms."""
        self.name = name
        self.requests = "req-" + name
        self.results = "res-" + name
        self.group = "grp-" + name
        kafkalib.create_topics(self.bootstrap, {self.requests: partitions,
                                                self.results: result_partitions})
        instances, linked = Mix.instances_needed(total)
        self.sim = start_sim(instances, linked, *sim_latency)
        self.addCleanup(self.sim.stop)
        self.mix = Mix(name, total, linked)
        self.ledger = Ledger(self.requests)
        self.logs = log_dir(name)
        self.workers = []
        self.t0 = time.monotonic()

    def start_worker(self, label, extra=None):
        extra = dict({"kafka.client.id": label}, **(extra or {}))
        w = worklib.Worker(self.bootstrap, self.sim.endpoint,
                           settings=worker_settings(self.requests, self.results, extra),
                           group=self.group, log_path=os.path.join(self.logs, label + ".log"))
        w.label = label
        self.workers.append(w)
        self.addCleanup(_close_worker, w)
        return w

    def feeder(self, rate, total):
        return Feeder(self.bootstrap, self.requests, self.mix, self.ledger, rate, total,
                      results_topic=self.results)

    def handover_duplicate_bound(self, workers):
        """Duplicates that graceful hand-overs (revocations, SIGTERM) may cause: none when every
        drain finished in time, which a run at full speed must do. Under instrumentation
        (valgrind slows the worker some twenty times) a drain may outlast
        worker.shutdown_timeout_ms; the contract then lets the next owner redo what was not
        committed, at most MAX_PENDING records of each partition revoked with work left."""
        left = unfinished(workers)
        if not instrumented():
            self.assertEqual(left, {}, "partitions revoked with work left")
            return 0
        return len(left) * MAX_PENDING

    def owned_now(self, workers, by_broker=False):
        """{label: set of partitions} the workers own now: from their logs' assigned and revoked
        partition lists, or (by_broker, for builds whose logs do not list revoked partitions)
        from the coordinator, members named by the kafka.client.id start_worker gives them."""
        if not by_broker:
            return {w.label: owned_partitions(w) for w in workers}
        members = self.kafka.describe_members(self.group)
        return {w.label: {p for m, ps in members.items() if m.startswith(w.label + "-")
                          for p in ps} for w in workers}

    def wait_group_event(self, kind, since, timeout_s=60.0):
        """Waits until the broker logs a "prepare" or "stable" event of the group at or after
        wall time since; returns it."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = [e for e in group_events(self.kafka, self.group)
                     if e[1] == kind and e[0] >= since]
            if found:
                return found[0]
            if time.monotonic() >= deadline:
                raise AssertionError("no %s event since %.3f: %s" % (
                    kind, since, group_events(self.kafka, self.group)[-5:]))
            time.sleep(0.1)  # poll the broker's log, bounded by the deadline

    def run_handover(self, name, kill=True, term=True, every_extra=None, leaver_extra=None,
                     leaver_fails=False, rate=300, pending_work_s=3.0, by_broker=False):
        """Three workers share 12 partitions; one-instance Attach requests (each succeeds)
        arrive at `rate`/s. kill: w0 is SIGKILLed (a crashed node) and w3 starts 2 s later, so
        the group prepares a rebalance and waits for w0's session to expire. term: w1 gets
        SIGTERM (a deploy) - pending_work_s into that wait, or after steady load without kill.
        Duplicates are attributed by the outcome's source partition: partitions w0 owned at
        the kill to "sigkill", partitions w1 owned at its SIGTERM to "sigterm". every_extra:
        settings of every worker; leaver_extra: w1's own; leaver_fails: w1's final commit is
        expected to fail (its classiclink_commit_failures_total is read while it leaves).
        Checks that nothing is lost or wrong, every outcome succeeded, commits reach the end,
        and that a SIGTERM with kill came while the group still waited. Returns a dict."""
        self.setup_scenario(name, 40000)
        self.mix = Mix(name, 40000, self.mix.linked, attach_only=True)
        # Members learn of a rebalance at their next heartbeat: at 1 s (librdkafka: 3 s) the
        # leaver rejoins within a second of the replacement's join, so that the work it does
        # while the group waits does not depend on where its heartbeat fell.
        common = dict({"kafka.consumer.heartbeat.interval.ms": "1000"}, **(every_extra or {}))
        victim = self.start_worker("w0", common)
        leaver = self.start_worker("w1", dict(common, **(leaver_extra or {})))
        keeper = self.start_worker("w2", common)
        wait_owned([victim, leaver, keeper], [None, None, None], 12, timeout_s=90)
        feeder = SteadyFeeder(self.bootstrap, self.requests, self.mix, self.ledger, rate).start()
        r = {"bound": 0, "rc": None, "failures": None, "kill_at": None, "term_at": None,
             "stop_s": None, "leaver": leaver, "killed_parts": set(), "leaver_parts": set()}
        try:
            wait_count(self.bootstrap, self.results, max(0, feeder.produced - rate))
            time.sleep(3)  # steady load before the crash or the deploy: time is the point
            owned = self.owned_now([victim, leaver], by_broker)
            survivors = [victim, leaver, keeper]
            if kill:
                r["killed_parts"] = owned["w0"]
                r["kill_at"] = time.time()
                victim.kill()
                survivors.remove(victim)
                r["bound"] = redo_bound(self.bootstrap, self.results, r["kill_at"], 256)[0]
                time.sleep(2)  # the replacement comes ~2 s after the crash
                survivors.append(self.start_worker("w3", common))
                prepare = self.wait_group_event("prepare", r["kill_at"])
                if term:
                    time.sleep(pending_work_s)  # the leaver works while the group waits
            if term:
                r["leaver_parts"] = owned["w1"]
                r["term_at"] = time.time()
                leaver.signal(signal.SIGTERM)
                if leaver_fails:
                    # Counted before the leaver leaves the group, which lasts until the group
                    # settles: the metric can be read meanwhile.
                    leaver.wait_msg("not committed within", 60)
                    r["failures"] = metric(leaver, "classiclink_commit_failures_total")
                r["rc"] = leaver.wait(150)
                r["stop_s"] = time.time() - r["term_at"]
                survivors.remove(leaver)
            wait_owned(survivors, [None] * len(survivors), 12, timeout_s=90)
        finally:
            produced = feeder.stop()
        extra = "produced=%d" % produced
        if kill and term:
            settled = self.wait_group_event("stable", prepare[0])
            # The scenario is what it says only if the SIGTERM came while the group waited.
            self.assertGreater(settled[0], r["term_at"], "the group settled before the SIGTERM")
            extra += " settled_after_sigterm=%.1fs" % (settled[0] - r["term_at"])
        if term:
            extra += " leaver_stop=%.1fs" % r["stop_s"]
        counts = self.finish(extra=extra)
        self.assertEqual(counts["requests"], produced)
        statuses = {json.loads(x["value"])["status"] for recs in self.by_key.values()
                    for x in recs}
        self.assertEqual(statuses, {"succeeded"})
        r.update(sigkill=0, sigterm=0, other=0)
        for recs in self.by_key.values():
            if len(recs) > 1:
                part = json.loads(recs[0]["value"])["source"]["partition"]
                cause = ("sigkill" if part in r["killed_parts"] else
                         "sigterm" if part in r["leaver_parts"] else "other")
                r[cause] += len(recs) - 1
        print("kafka handover %s: sigkill=%d (bound %d) sigterm=%d other=%d leaver_exit=%s "
              "killed=%s leaver=%s" % (name, r["sigkill"], r["bound"], r["sigterm"], r["other"],
                                       r["rc"], sorted(r["killed_parts"]),
                                       sorted(r["leaver_parts"])), flush=True)
        for w in survivors:
            self.assertEqual(w.stop(), 0, w.tail())
        return r

    def finish(self, extra="", max_duplicates=None, timeout_s=240.0, extra_fn=None):
        """Waits for every outcome and the commits, checks outcomes, simulator state and
        counts, prints the summary line; returns the counts."""
        records = wait_outcomes(self.bootstrap, self.results, self.ledger, timeout_s)
        wait_committed_end(self.bootstrap, self.group, self.requests)
        # Everything is committed: whatever the workers publish from now on is a duplicate
        # too, so read once more for the final count.
        records = read_outcomes(self.bootstrap, self.results)
        counts, by_key, errors = self.ledger.tally(records)
        if extra_fn is not None:
            extra = (extra + " " + extra_fn(by_key)).strip()
        line = summary(self.name, counts, time.monotonic() - self.t0, extra)
        self.assertEqual(errors, [], "wrong outcomes (%d), first ones:\n%s" % (
            len(errors), "\n".join(errors[:20])))
        self.assertEqual(counts["lost"], 0, line)
        state_errors = self.ledger.check_sim_state(self.sim)
        self.assertEqual(state_errors[:20], [], "simulator state differs (%d)" %
                         len(state_errors))
        if max_duplicates is not None:
            self.assertLessEqual(counts["duplicates"], max_duplicates, line)
        self.counts = counts
        self.by_key = by_key
        return counts


def _close_worker(worker):
    worker.close()
    for stream in (worker.proc.stdout, worker.proc.stderr):
        if stream is not None:
            stream.close()


def owned(worker):
    """Partitions worker owns now, from its log: assigned minus revoked (cooperative
    rebalancing logs increments; a lost assignment is revoked in full as well)."""
    n = 0
    for msg in (r.get("msg", "") for r in worker.records()):
        if msg.startswith("assigned "):
            n += int(msg.split()[1])
        elif msg.startswith("revoking "):
            n -= int(msg.split()[1])
    return n


def wait_owned(workers, want, partitions, timeout_s=60.0):
    """Waits until the workers' logs show `want` = [n, ...] partitions owned (None = any
    number > 0) and `partitions` in total."""
    deadline = time.monotonic() + timeout_s
    while True:
        have = [owned(w) for w in workers]
        ok = sum(have) == partitions and all(
            (h > 0 if n is None else h == n) for h, n in zip(have, want))
        if ok:
            return have
        for w in workers:
            if w.proc.poll() is not None:
                raise AssertionError("worker %s exited (%s):\n%s" % (
                    getattr(w, "label", "?"), w.proc.returncode, w.tail()))
        if time.monotonic() >= deadline:
            raise AssertionError("partitions owned %s, wanted %s (total %d)" % (
                have, want, partitions))
        time.sleep(0.2)  # poll the logs, bounded by the deadline


def wait_count(bootstrap, topic, count, timeout_s=120.0):
    """Waits until topic holds at least count outcome records; returns how many it saw."""
    try:
        recs = kafkalib.consume(bootstrap, topic, count=count, timeout_s=timeout_s,
                                config=READ_COMMITTED)
    except kafkalib.KafkaTimeout as e:
        raise AssertionError("only %d of %d outcomes after %.0f s" % (
            len(e.records), count, timeout_s)) from None
    return len(recs)


def owned_partitions(worker):
    """The set of partitions worker owns now, from its log lines "assigned N partition(s)
    (...): 1,2" and "revoking N partition(s): 1,2"."""
    have = set()
    for msg in (r.get("msg", "") for r in worker.records()):
        if msg.startswith("assigned "):
            have |= listed_partitions(msg)
        elif msg.startswith("revoking "):
            have -= listed_partitions(msg)
    return have


def listed_partitions(msg):
    """{1, 2} of an "assigned"/"revoking" log message ending in ": 1,2"."""
    if msg.endswith(",..."):
        raise AssertionError("partition list cut in %r" % msg)
    return {int(x) for x in msg.rsplit(": ", 1)[1].split(",") if x.strip().isdigit()}


def group_events(kafka, group):
    """[(unix time, "prepare" | "stable", generation)] of group from the broker's own log: the
    coordinator's "Preparing to rebalance group G ... with old generation N" and "Stabilized
    group G generation N" lines (log4j stamps in local time, millisecond precision)."""
    out = []
    path = os.path.join(kafka.dir, "logs", "server.log")
    with open(path, errors="replace") as f:
        for line in f:
            if " group %s " % group not in line:
                continue
            if "Preparing to rebalance group" in line:
                kind, key = "prepare", "with old generation "
            elif "Stabilized group" in line:
                kind, key = "stable", " generation "
            else:
                continue
            stamp = line[1:24]  # "2026-12-05 10:11:12,345"
            t = time.mktime(time.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S")) + int(stamp[20:]) / 1e3
            gen = int(line.split(key, 1)[1].split()[0])
            out.append((t, kind, gen))
    return out


def metric(worker, name):
    """The value of an unlabelled metric of worker's /metrics."""
    status, body = worker.http_get("/metrics")
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no %s in /metrics (status %d)" % (name, status))
