"""kafkalib: Kafka helpers for the integration tests (mock broker process, clw-kafkatool wrappers).

Python 3 standard library only. Binaries come from $CLW_BUILD_DIR (default: <repo>/build):
  tools/mock-broker/clw-mock-broker   and   tests/tools/clw-kafkatool
Nothing here sleeps to synchronise: every wait is on a line, an exit code or a condition,
each bounded by a timeout.

Record dicts (produce input, consume output):
  key / value      str or None (value None = tombstone); bytes are accepted on input and sent
                   base64-encoded, so any byte string (NUL, invalid UTF-8) round-trips.
  partition        int (optional on input)
  headers          {name: str or None}
Consumed records also carry topic, offset, timestamp, and key_bytes / value_bytes (bytes or
None), decoded from key_b64 / value_b64 when the tool could not print the bytes as text.
"""

import base64
import json
import os
import queue
import subprocess
import threading

_HERE = os.path.dirname(os.path.abspath(__file__))

# Running MockBroker instances by bootstrap string: create_topics() uses the mock's control
# channel for them, because the mock cluster does not implement the CreateTopics request.
_MOCKS = {}


def build_dir():
    """The CMake build directory holding the tools."""
    return os.environ.get("CLW_BUILD_DIR") or os.path.join(_HERE, "..", "..", "build")


def mock_broker_path():
    return os.path.join(build_dir(), "tools", "mock-broker", "clw-mock-broker")


def kafkatool_path():
    return os.path.join(build_dir(), "tests", "tools", "clw-kafkatool")


class KafkaToolError(RuntimeError):
    """clw-kafkatool failed; carries its exit code and output."""

    def __init__(self, args, returncode, stdout, stderr):
        super().__init__("clw-kafkatool %s: exit %s: %s" % (
            " ".join(args[:1]), returncode, (stderr or "").strip()[-2000:]))
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


class KafkaTimeout(KafkaToolError):
    """consume ended before COUNT messages; .records holds what did arrive."""

    def __init__(self, args, returncode, stdout, stderr, records):
        super().__init__(args, returncode, stdout, stderr)
        self.records = records


class MockBroker:
    """A clw-mock-broker process: one mock Kafka cluster shared by every client process.

    with MockBroker(topics={"requests": 4}) as mb:
        mb.bootstrap            # "127.0.0.1:PORT[,...]"
        mb.command("broker-down 1")   # -> "ok" or "error: ..."
    """

    def __init__(self, topics=None, brokers=1, start_timeout_s=10.0, bootstrap_file=None):
        args = [mock_broker_path(), "--brokers", str(brokers)]
        if bootstrap_file is not None:
            args += ["--bootstrap-file", bootstrap_file]
        for name, partitions in (topics or {}).items():
            args += ["--topic", "%s:%d" % (name, partitions)]
        self._lines = queue.Queue()
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, encoding="utf-8", bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            first = self._next_line(start_timeout_s)
            if first is None or not first.startswith("bootstrap="):
                raise RuntimeError("clw-mock-broker did not start: %r" % (first,))
        except BaseException:
            self._kill()
            raise
        self.bootstrap = first[len("bootstrap="):]
        _MOCKS[self.bootstrap] = self

    def _read(self):
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _next_line(self, timeout_s):
        try:
            return self._lines.get(timeout=timeout_s)
        except queue.Empty:
            raise TimeoutError("clw-mock-broker: no answer within %.1f s" % timeout_s) from None

    def command(self, line, timeout_s=10.0):
        """Sends one control command and returns the reply line ("ok" or "error: ...")."""
        with self._lock:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
            reply = self._next_line(timeout_s)
        if reply is None:
            raise RuntimeError("clw-mock-broker exited (command %r)" % line)
        return reply

    def check(self, line, timeout_s=10.0):
        """command() that raises unless the reply is ok."""
        reply = self.command(line, timeout_s)
        if reply != "ok":
            raise RuntimeError("clw-mock-broker %r: %s" % (line, reply))

    def create_topic(self, name, partitions):
        reply = self.command("topic %s %d" % (name, partitions))
        if reply != "ok" and "already exists" not in reply:
            raise RuntimeError("clw-mock-broker topic %s: %s" % (name, reply))

    def stop(self, timeout_s=10.0):
        """Asks the process to quit (closing stdin) and waits; kills it if it hangs. Returns the
        exit code."""
        _MOCKS.pop(getattr(self, "bootstrap", None), None)
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass
        try:
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._kill()
        self._reader.join(timeout_s)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode

    def _kill(self):
        self.proc.kill()
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def _tool(args, bootstrap, timeout_s, config=None, stdin=None):
    """Runs clw-kafkatool; returns CompletedProcess (the caller checks returncode)."""
    argv = [kafkatool_path(), args[0], "-b", bootstrap]
    for name, value in (config or {}).items():
        argv += ["-X", "%s=%s" % (name, value)]
    argv += list(args[1:])
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, encoding="utf-8",
                          timeout=timeout_s + 15)


def _check(args, res):
    if res.returncode != 0:
        raise KafkaToolError(args, res.returncode, res.stdout, res.stderr)
    return res


def create_topics(bootstrap, topics, timeout_s=30.0, config=None):
    """Creates {name: partitions} (replication factor 1); existing topics are fine. On a
    MockBroker of this process the mock's own control channel is used."""
    mock = _MOCKS.get(bootstrap)
    if mock is not None:
        for name, partitions in topics.items():
            mock.create_topic(name, partitions)
        return
    args = ["create-topics", "--timeout-ms", str(int(timeout_s * 1000))]
    args += ["%s:%d" % (name, partitions) for name, partitions in topics.items()]
    _check(args, _tool(args, bootstrap, timeout_s, config))


def _encode_record(rec):
    out = {}
    for field in ("key", "value"):
        v = rec.get(field)
        if isinstance(v, (bytes, bytearray)):
            out[field + "_b64"] = base64.b64encode(bytes(v)).decode("ascii")
        else:
            out[field] = v
    for field in ("key_b64", "value_b64", "partition", "headers"):
        if field in rec:
            out[field] = rec[field]
    return json.dumps(out)


def produce(bootstrap, topic, records, timeout_s=60.0, config=None):
    """Produces every record (idempotent, acks=all); returns the count. Raises KafkaToolError
    unless every delivery succeeded."""
    args = ["produce", "-t", topic, "--timeout-ms", str(int(timeout_s * 1000))]
    stdin = "".join(_encode_record(r) + "\n" for r in records)
    res = _check(args, _tool(args, bootstrap, timeout_s, config, stdin))
    return int(res.stdout.split()[-1])


class Producer:
    """One long-lived clw-kafkatool producer fed line by line: records go out as they are
    written (no process per batch), for steady streams."""

    def __init__(self, bootstrap, topic, timeout_s=600.0, config=None):
        argv = [kafkatool_path(), "produce", "-b", bootstrap]
        for name, value in (config or {}).items():
            argv += ["-X", "%s=%s" % (name, value)]
        argv += ["-t", topic, "--timeout-ms", str(int(timeout_s * 1000))]
        self.args = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, encoding="utf-8")

    def send(self, records):
        for rec in records:
            self.proc.stdin.write(_encode_record(rec) + "\n")
        self.proc.stdin.flush()

    def close(self, timeout_s=60.0):
        """Ends the stream; returns the number delivered. Raises KafkaToolError unless every
        record was."""
        out, err = self.proc.communicate(timeout=timeout_s)
        if self.proc.returncode != 0:
            raise KafkaToolError(self.args, self.proc.returncode, out, err)
        return int(out.split()[-1])


def _decode_record(rec):
    for field in ("key", "value"):
        if field + "_b64" in rec:
            rec[field + "_bytes"] = base64.b64decode(rec[field + "_b64"])
        elif rec.get(field) is None:
            rec[field + "_bytes"] = None
        else:
            rec[field + "_bytes"] = rec[field].encode("utf-8")
    return rec


def consume(bootstrap, topic, count=None, timeout_s=30.0, group=None, config=None,
            from_beginning=False, idle_s=None):
    """Reads records (read_committed) and returns them as dicts.

    count=N: stop after N records, raising KafkaTimeout (with .records) if fewer arrive within
    timeout_s. count=None: everything up to the current end of every partition. Without a
    group every partition is read from the beginning and nothing is committed; with group=G
    the tool joins G, resumes from its committed offsets and commits what it read."""
    args = ["consume", "-t", topic, "--timeout-ms", str(int(timeout_s * 1000))]
    if count is None:
        args.append("--eof")
    else:
        args += ["-n", str(count)]
    if group is not None:
        args += ["-g", group]
    if from_beginning:
        args.append("--from-beginning")
    if idle_s is not None:
        args += ["--idle-ms", str(int(idle_s * 1000))]
    res = _tool(args, bootstrap, timeout_s, config)
    records = [_decode_record(json.loads(line)) for line in res.stdout.splitlines() if line]
    if res.returncode == 3:
        raise KafkaTimeout(args, res.returncode, res.stdout, res.stderr, records)
    _check(args, res)
    return records


def partition_offsets(bootstrap, group, topic, timeout_s=30.0, config=None):
    """[{"partition", "committed", "low", "high"}, ...] for every partition of topic; committed
    is -1001 where group has committed nothing. Does not join the group."""
    args = ["committed", "-g", group, "-t", topic, "--timeout-ms", str(int(timeout_s * 1000))]
    res = _check(args, _tool(args, bootstrap, timeout_s, config))
    return json.loads(res.stdout)["partitions"]


def committed(bootstrap, group, topic, timeout_s=30.0, config=None):
    """{partition: committed offset} (-1001 = none) for every partition of topic."""
    return {p["partition"]: p["committed"]
            for p in partition_offsets(bootstrap, group, topic, timeout_s, config)}


def wait_ready(bootstrap, timeout_s=30.0, config=None):
    """Waits until the cluster answers metadata; returns {"brokers": N, "topics": [...]}."""
    args = ["metadata", "--timeout-ms", str(int(timeout_s * 1000))]
    res = _check(args, _tool(args, bootstrap, timeout_s, config))
    return json.loads(res.stdout)
