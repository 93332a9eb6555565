"""kafkareal: a real Apache Kafka broker (scripts/kafka-local) for the `kafka` test label.

Python 3 standard library only.

    kafka = RealKafka()           # a fresh data directory under a temporary directory
    kafka.start()                 # fetches Kafka once (cached), formats, starts, waits for metadata
    kafka.bootstrap               # "127.0.0.1:PORT"
    kafka.kill(); kafka.start()   # SIGKILL and restart with the same data and the same port
    kafka.suspend(); kafka.resume()   # SIGSTOP / SIGCONT: a broker that answers nothing for a while
    kafka.stop()                  # SIGTERM (SIGKILL after a timeout)
    kafka.close()                 # stop if running and remove the directory

The broker is started with --owner <this process>, so it dies with the test process even when
the test is killed before it can clean up.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import kafkalib

_HERE = os.path.dirname(os.path.abspath(__file__))


def source_dir():
    return os.environ.get("CLW_SOURCE_DIR") or os.path.normpath(os.path.join(_HERE, "..", ".."))


def script_path():
    return os.path.join(source_dir(), "scripts", "kafka-local")


def _env():
    env = dict(os.environ)
    env["CLW_BUILD_DIR"] = kafkalib.build_dir()
    return env


def fetch(timeout_s=900):
    """Fetches the broker's jars into the cache (no-op when already there)."""
    subprocess.run([script_path(), "fetch"], check=True, env=_env(), timeout=timeout_s)


class KafkaLocalError(RuntimeError):
    pass


class RealKafka:
    """One single-node KRaft broker run by scripts/kafka-local."""

    def __init__(self, data_dir=None, port=None):
        self._tmp = None
        if data_dir is None:
            self._tmp = tempfile.mkdtemp(prefix="clw-kafka-")
            data_dir = os.path.join(self._tmp, "broker")
        self.dir = data_dir
        self.port = port
        self.bootstrap = None
        self.startup_s = []  # wall time of every start(), seconds

    def _run(self, args, timeout_s):
        res = subprocess.run([script_path()] + args, capture_output=True, text=True,
                             env=_env(), timeout=timeout_s)
        if res.returncode != 0:
            raise KafkaLocalError("kafka-local %s: exit %d\n%s%s\n%s" % (
                " ".join(args), res.returncode, res.stdout, res.stderr[-4000:],
                self.log_tail()))
        return res

    def start(self, timeout_s=300):
        """Starts the broker (keeping this directory's data and port) and waits until it answers
        metadata. Returns the bootstrap string."""
        args = ["start", "--dir", self.dir, "--owner", str(os.getpid())]
        if self.port is not None:
            args += ["--port", str(self.port)]
        t0 = time.monotonic()
        res = self._run(args, timeout_s)
        self.startup_s.append(time.monotonic() - t0)
        self.bootstrap = res.stdout.strip().splitlines()[-1]
        self.port = int(self.bootstrap.rsplit(":", 1)[1])
        m = re.search(r"ready on \S+ in ([0-9.]+)s", res.stderr)
        if m:
            print("kafka-local: broker ready in %ss" % m.group(1), flush=True)
        return self.bootstrap

    def stop(self, timeout_s=120):
        self._run(["stop", "--dir", self.dir], timeout_s)

    def kill(self, timeout_s=60):
        """SIGKILL: the data stays for the next start()."""
        self._run(["kill", "--dir", self.dir], timeout_s)

    def pid(self):
        """The broker JVM's process id (scripts/kafka-local writes it to DIR/pid)."""
        with open(os.path.join(self.dir, "pid")) as f:
            return int(f.read().strip())

    def suspend(self):
        """SIGSTOP the broker JVM: its connections stay open but nothing is answered until
        resume()."""
        os.kill(self.pid(), signal.SIGSTOP)

    def resume(self):
        """SIGCONT after suspend()."""
        os.kill(self.pid(), signal.SIGCONT)

    def restart(self, timeout_s=300):
        self.stop()
        return self.start(timeout_s)

    def running(self):
        res = subprocess.run([script_path(), "status", "--dir", self.dir], capture_output=True,
                             text=True, env=_env(), timeout=30)
        return res.returncode == 0

    def log_tail(self, n=30):
        path = os.path.join(self.dir, "logs", "server.log")
        try:
            with open(path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def run_class(self, args, timeout_s=120):
        """Runs a Kafka main class (kafka-local run CLASS ARGS...) and returns its stdout."""
        return self._run(["run"] + list(args), timeout_s).stdout

    def describe_members(self, group, timeout_s=120):
        """{group.instance.id (else consumer id): sorted partition numbers} of group's members,
        from Kafka's ConsumerGroupCommand --describe --members --verbose."""
        out = self.run_class(["org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
                              "--bootstrap-server", self.bootstrap, "--describe", "--group",
                              group, "--members", "--verbose"], timeout_s)
        members = {}
        header = None
        for line in out.splitlines():
            cols = line.split()
            if not cols:
                continue
            if cols[0] == "GROUP":
                header = cols
                continue
            if header is None or len(cols) < len(header):
                continue
            row = dict(zip(header, cols[:len(header) - 1]))
            row["ASSIGNMENT"] = " ".join(cols[len(header) - 1:])
            name = row.get("GROUP-INSTANCE-ID")
            if name in (None, "None", "-"):
                name = row.get("CONSUMER-ID")
            members[name] = _parse_assignment(row["ASSIGNMENT"])
        return members

    def close(self):
        try:
            if self.running():
                self.stop()
        finally:
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
                self._tmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _parse_assignment(text):
    """"topic(0,1,2),other(3)" or "(0,1,2)" -> sorted partition numbers; "-" -> []. The worker
    consumes one topic, and ConsumerGroupCommand leaves the topic name out for librdkafka's
    cooperative-sticky members."""
    parts = []
    for nums in re.findall(r"\(([0-9,]*)\)", text):
        parts += [int(n) for n in nums.split(",") if n]
    return sorted(parts)
