"""worklib: run the real classiclink-worker binary in integration tests.

Python 3 standard library only. The worker's stderr (JSON log lines) is collected by a reader
thread; tests wait on log conditions and process exit, never on sleeps.
"""

import json
import os
import queue
import shlex
import signal
import subprocess
import threading
import time
import urllib.request

import kafkalib

# Settings for tests of one request's own behaviour (its classification, attempts, faults
# scripted per instance): every request gets its own API call, as with coalescing off.
ALONE = {"api.coalesce.max_instances": "1"}

REQUESTS = "classiclink.requests"
RESULTS = "classiclink.results"
SECRET_ID = "AKIDclwTestSecretId0000000000000001"
SECRET_KEY = "clwTestSecretKeyDoNotLeak0123456789"


_KNOWN_KEYS = {}


def worker_knows(key):
    """True when the worker binary has configuration key (an older build run by a benchmark may
    not); asked once per binary."""
    path = worker_path()
    if path not in _KNOWN_KEYS:
        env = dict(os.environ, TENCENTCLOUD_SECRET_ID=SECRET_ID, TENCENTCLOUD_SECRET_KEY=SECRET_KEY)
        res = subprocess.run([path, "-c", "/dev/null", "--check-config"], capture_output=True,
                             text=True, env=env, timeout=60)
        _KNOWN_KEYS[path] = {line.split(" = ", 1)[0] for line in res.stdout.splitlines()
                             if " = " in line}
    return key in _KNOWN_KEYS[path]


def worker_path():
    """The worker binary: $CLW_WORKER_BIN (bench/run --worker), else the build's."""
    return os.environ.get("CLW_WORKER_BIN") or os.path.join(kafkalib.build_dir(), "src",
                                                            "classiclink-worker")


class Worker:
    """One classiclink-worker process.

    settings: dict of configuration keys passed with -X (override the test defaults; None
    leaves a key to the product's default).
    """

    def __init__(self, bootstrap, api_url, settings=None, env=None, log_path=None,
                 group="clw-it", secret_id=SECRET_ID, secret_key=SECRET_KEY, args=None):
        conf = {
            "kafka.bootstrap.servers": bootstrap,
            "kafka.group.id": group,
            "kafka.consumer.session.timeout.ms": "6000",
            "kafka.consumer.fetch.wait.max.ms": "50",
            "kafka.producer.linger.ms": "1",
            "api.endpoint": api_url,
            "api.region": "ap-guangzhou",
            "api.timeout_ms": "5000",
            "retry.initial_backoff_ms": "20",
            "retry.max_backoff_ms": "200",
            "worker.shutdown_timeout_ms": "10000",
            # The simulator these tests start has no quota (tests that want one set both it and
            # api.quota): the worker must not hold itself to Tencent's 100 calls/s, and a
            # scripted throttling answer must not make it guess a quota from a second of calls.
            # (A build from before api.quota, run by a benchmark, does not get the key.)
            "api.quota": "100000" if worker_knows("api.quota") else None,
            "metrics.listen": "127.0.0.1:0",
            "log.level": "debug",
        }
        conf.update(settings or {})
        # A setting given as None is left out: the product's default applies.
        conf = {k: v for k, v in conf.items() if v is not None}
        self.settings = conf
        # CLW_WORKER_WRAPPER: a command prefix for the worker, e.g. "valgrind --error-exitcode=99".
        cmd = shlex.split(os.environ.get("CLW_WORKER_WRAPPER", ""))
        cmd += [worker_path(), "-c", "/dev/null"]
        for k, v in conf.items():
            cmd += ["-X", "%s=%s" % (k, v)]
        cmd += args or []
        full_env = dict(os.environ)
        for name in ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY",
                     "TENCENTCLOUD_SESSION_TOKEN", "TENCENTCLOUD_REGION"):
            full_env.pop(name, None)
        if secret_id is not None:
            full_env["TENCENTCLOUD_SECRET_ID"] = secret_id
        if secret_key is not None:
            full_env["TENCENTCLOUD_SECRET_KEY"] = secret_key
        full_env.update(env or {})
        self.log_path = log_path
        self._log_file = open(log_path, "a", encoding="utf-8") if log_path else None
        self.lines = []  # every stderr line
        self._cond = threading.Condition()
        self._eof = False
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=full_env)
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stderr,),
                                          daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stdout,),
                                          daemon=True)]
        for t in self._readers:
            t.start()

    def _read(self, stream):
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if self._log_file:
                self._log_file.write(line + "\n")
                self._log_file.flush()
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def records(self):
        """The JSON log records so far (non-JSON lines skipped)."""
        out = []
        with self._cond:
            lines = list(self.lines)
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def wait_log(self, predicate, timeout_s=30.0, what="log line"):
        """Waits for a log line for which predicate(line_str) is true; returns it."""
        deadline = time.monotonic() + timeout_s
        seen = 0
        with self._cond:
            while True:
                while seen < len(self.lines):
                    line = self.lines[seen]
                    seen += 1
                    if predicate(line):
                        return line
                if self._eof:
                    raise AssertionError("worker exited (%s) before %s:\n%s" % (
                        self.proc.poll(), what, self.tail()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for %s:\n%s" % (what, self.tail()))
                self._cond.wait(left)

    def wait_count(self, fragment, count, timeout_s=30.0):
        """Waits until `count` log lines contain fragment."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                if sum(1 for l in self.lines if fragment in l) >= count:
                    return
                if self._eof:
                    raise AssertionError("worker exited before %d x %r:\n%s" % (
                        count, fragment, self.tail()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for %d x %r:\n%s" % (
                        count, fragment, self.tail()))
                self._cond.wait(left)

    def wait_msg(self, fragment, timeout_s=30.0):
        return self.wait_log(lambda l: fragment in l, timeout_s, repr(fragment))

    def wait_assigned(self, timeout_s=30.0):
        return self.wait_msg("assigned ", timeout_s)

    def metrics_port(self, timeout_s=30.0):
        line = self.wait_msg("metrics listening on", timeout_s)
        return int(json.loads(line)["msg"].rsplit(":", 1)[1])

    def http_get(self, path, timeout_s=5.0):
        """(status, body) of GET path on the operations listener."""
        url = "http://127.0.0.1:%d%s" % (self.metrics_port(), path)
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def tail(self, n=40):
        with self._cond:
            return "\n".join(self.lines[-n:])

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout_s=60.0):
        """SIGTERM and wait; returns the exit status."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout_s)

    def kill(self):
        self.signal(signal.SIGKILL)
        return self.wait(30)

    def wait(self, timeout_s=60.0):
        try:
            rc = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("worker did not exit within %.0f s:\n%s" % (timeout_s,
                                                                              self.tail()))
        for t in self._readers:
            t.join(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()
        if self._log_file:
            self._log_file.close()
            self._log_file = None
        self.check_invariants()
        return rc

    def check_invariants(self):
        """Raises when the worker logged a broken invariant of its core ("internal: ..."): a
        job event the state table refused, or the job events drained re-entrantly. Every test
        that stops or closes a worker checks this."""
        with self._cond:
            broken = [l for l in self.lines
                      if any(m in l for m in ("internal: event ", "internal: job events",
                                              "internal: more than"))]
        if broken:
            raise AssertionError("the worker broke an invariant of its core:\n%s"
                                 % "\n".join(broken[:10]))

    def close(self):
        if self.proc.poll() is None:
            self.kill()
        else:
            self.wait()


def request(vpc="vpc-demo1", instances=("ins-a1",), request_id=None, **extra):
    """A request value as a JSON string."""
    body = {"vpcId": vpc, "instanceIds": list(instances)}
    if request_id is not None:
        body["requestId"] = request_id
    body.update(extra)
    return json.dumps(body)


def outcome_values(records):
    """Decoded outcome JSON values of consumed result records."""
    return [json.loads(r["value"]) for r in records]


def by_request_id(outcomes):
    out = {}
    for o in outcomes:
        out.setdefault(o["requestId"], []).append(o)
    return out


def _validated(records):
    """Raises unless every record's value is a valid outcome (contract section 4)."""
    import schemalib  # local import: needs python3-jsonschema, installed by scripts/deps
    for r in records:
        schemalib.validate_outcome(r["value"] if r.get("value") is not None else b"")
    return records


class Stack:
    """A mock-cluster broker, the API simulator and helpers to run workers against them.

    with Stack(seed=SEED, partitions=4) as st:
        w = st.worker({"worker.max_in_flight": "8"})
        st.send([{"key": "k", "value": request(...)}])
        outcomes = st.outcomes(1)
    """

    def __init__(self, seed=None, partitions=4, sim_args=(), sim_tls=None, credentials=None):
        import simlib  # local import: simlib starts nothing at import time
        self.partitions = partitions
        self.broker = kafkalib.MockBroker(topics={REQUESTS: partitions, RESULTS: partitions})
        self.bootstrap = self.broker.bootstrap
        try:
            self.sim = simlib.Sim().start(seed=seed,
                                          credentials=credentials or [(SECRET_ID, SECRET_KEY)],
                                          extra_args=list(sim_args), tls=sim_tls)
        except BaseException:
            self.broker.stop()
            raise
        self.workers = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for w in self.workers:
            w.close()
        self.sim.stop()
        self.broker.stop()

    def worker(self, settings=None, wait_assigned=True, **kw):
        w = Worker(self.bootstrap, self.sim.endpoint, settings, **kw)
        self.workers.append(w)
        if wait_assigned:
            w.wait_assigned()
        return w

    def send(self, records):
        kafkalib.produce(self.bootstrap, REQUESTS, records)

    def outcome_records(self, count, timeout_s=60.0):
        """The first `count` result records (raises kafkalib.KafkaTimeout with .records when
        fewer arrive in time). Every outcome is checked against docs/schemas/outcome.schema.json
        on the way."""
        return _validated(kafkalib.consume(self.bootstrap, RESULTS, count=count,
                                           timeout_s=timeout_s))

    def all_outcome_records(self):
        return _validated(kafkalib.consume(self.bootstrap, RESULTS, count=None, timeout_s=30.0))

    def wait_outcomes_for(self, request_ids, timeout_s=90.0):
        """Polls the results topic until every request id has at least one outcome; returns
        {requestId: [outcome, ...]}."""
        want = set(request_ids)
        deadline = time.monotonic() + timeout_s
        while True:
            seen = {}
            for r in self.all_outcome_records():
                o = json.loads(r["value"])
                seen.setdefault(o["requestId"], []).append(o)
            if want <= set(seen):
                return seen
            if time.monotonic() > deadline:
                raise AssertionError("no outcome for %d request(s), e.g. %s" % (
                    len(want - set(seen)), sorted(want - set(seen))[:5]))
            time.sleep(0.2)  # polling a topic written by another process

    def wait_committed_to_end(self, group="clw-it", timeout_s=30.0):
        """Waits until the group's committed offset equals the end of every requests-topic
        partition; returns the final partition offsets."""
        deadline = time.monotonic() + timeout_s
        while True:
            parts = kafkalib.partition_offsets(self.bootstrap, group, REQUESTS)
            if all(p["committed"] == p["high"] or (p["high"] == 0 and p["committed"] < 0)
                   for p in parts):
                return parts
            if time.monotonic() > deadline:
                raise AssertionError("committed offsets did not reach the end: %r" % parts)
            time.sleep(0.1)  # polling a condition owned by another process (the commit timer)
