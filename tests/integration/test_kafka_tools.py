"""Self-test of the Kafka test tooling: clw-mock-broker, clw-kafkatool and kafkalib."""

import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kafkalib  # noqa: E402

BINARY = b"\x00\xff\xfebin\x80\x00"


def make_records(n, partitions):
    """n records spread over partitions; some carry a binary value, a tombstone, no key, an
    empty value, non-ASCII text or no headers."""
    records = []
    for i in range(n):
        rec = {"key": "k%03d" % i, "value": "v%03d" % i, "partition": i % partitions,
               "headers": {"idx": str(i), "kind": "test"}}
        if i == 7:
            rec["value"] = BINARY
        elif i == 13:
            rec["value"] = None
        elif i == 21:
            rec["key"] = None
        elif i == 30:
            rec["value"] = ""
        elif i == 42:
            rec["value"] = "h\u00e9llo \u20ac \U0001F600"
        elif i == 55:
            rec["headers"] = {"idx": str(i), "empty": None}
        records.append(rec)
    return records


def as_bytes(v):
    if v is None or isinstance(v, bytes):
        return v
    return v.encode("utf-8")


class KafkaToolsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        t0 = time.monotonic()
        cls.mb = kafkalib.MockBroker(brokers=3)
        cls.startup_s = time.monotonic() - t0
        cls.bs = cls.mb.bootstrap

    @classmethod
    def tearDownClass(cls):
        cls.mb.stop()

    def test_01_startup(self):
        self.assertTrue(self.bs.startswith("127.0.0.1:"), self.bs)
        self.assertEqual(len(self.bs.split(",")), 3)
        md = kafkalib.wait_ready(self.bs, timeout_s=10)
        self.assertEqual(md["brokers"], 3)
        print("\nmock broker startup %.3f s" % self.startup_s, file=sys.stderr)

    def test_02_roundtrip(self):
        kafkalib.create_topics(self.bs, {"roundtrip": 4})
        topics = {t["name"]: t["partitions"] for t in kafkalib.wait_ready(self.bs)["topics"]}
        self.assertEqual(topics.get("roundtrip"), 4)

        sent = make_records(100, 4)
        self.assertEqual(kafkalib.produce(self.bs, "roundtrip", sent), 100)
        got = kafkalib.consume(self.bs, "roundtrip", 100, timeout_s=30)
        self.assertEqual(len(got), 100)

        by_idx = {int(r["headers"]["idx"]): r for r in got}
        self.assertEqual(sorted(by_idx), list(range(100)))
        for i, want in enumerate(sent):
            rec = by_idx[i]
            with self.subTest(i=i):
                self.assertEqual(rec["topic"], "roundtrip")
                self.assertEqual(rec["partition"], want["partition"])
                self.assertEqual(rec["key_bytes"], as_bytes(want["key"]))
                self.assertEqual(rec["value_bytes"], as_bytes(want["value"]))
                self.assertEqual(rec["headers"], want["headers"])
                self.assertGreater(rec["timestamp"], 0)
        self.assertIsNone(by_idx[7]["value"])
        self.assertIn("value_b64", by_idx[7])
        self.assertIsNone(by_idx[13]["value"])
        self.assertNotIn("value_b64", by_idx[13])
        self.assertEqual(by_idx[30]["value"], "")
        self.assertEqual(by_idx[42]["value"], "h\u00e9llo \u20ac \U0001F600")

        # Per partition: offsets 0..24 in production order.
        for p in range(4):
            recs = [r for r in got if r["partition"] == p]
            self.assertEqual([r["offset"] for r in recs], list(range(25)))
            self.assertEqual([int(r["headers"]["idx"]) for r in recs], list(range(p, 100, 4)))

        # count=None reads to the end of every partition.
        self.assertEqual(len(kafkalib.consume(self.bs, "roundtrip", timeout_s=30)), 100)

        # One more than exists: exit 3 after the timeout, with what did arrive.
        with self.assertRaises(kafkalib.KafkaTimeout) as ctx:
            kafkalib.consume(self.bs, "roundtrip", 101, timeout_s=2)
        self.assertEqual(ctx.exception.returncode, 3)
        self.assertEqual(len(ctx.exception.records), 100)

    def test_03_committed_unused_group(self):
        kafkalib.create_topics(self.bs, {"offsets": 4})
        kafkalib.produce(self.bs, "offsets", [{"key": "a", "value": "1", "partition": 2},
                                              {"key": "b", "value": "2", "partition": 2}])
        self.assertEqual(kafkalib.committed(self.bs, "never-used", "offsets"),
                         {0: -1001, 1: -1001, 2: -1001, 3: -1001})
        parts = kafkalib.partition_offsets(self.bs, "never-used", "offsets")
        self.assertEqual([(p["low"], p["high"]) for p in parts], [(0, 0), (0, 0), (0, 2), (0, 0)])

    def test_04_group_consume_commits(self):
        kafkalib.create_topics(self.bs, {"grouped": 2})
        kafkalib.produce(self.bs, "grouped", [{"key": str(i), "value": str(i), "partition": i % 2}
                                              for i in range(6)])
        got = kafkalib.consume(self.bs, "grouped", 6, timeout_s=30, group="g-commit")
        self.assertEqual(len(got), 6)
        # The consumer commits its position on close.
        self.assertEqual(kafkalib.committed(self.bs, "g-commit", "grouped"), {0: 3, 1: 3})

    def test_05_produce_rejects_bad_input(self):
        with self.assertRaises(kafkalib.KafkaToolError):
            kafkalib.produce(self.bs, "roundtrip", [{"value_b64": "not base64!"}])

    def test_06_commands(self):
        self.assertEqual(self.mb.command("ping"), "ok")
        self.assertTrue(self.mb.command("push-errors Bogus NOT_LEADER_FOR_PARTITION 1")
                        .startswith("error:"))
        self.assertTrue(self.mb.command("push-errors Produce NO_SUCH_ERROR 1")
                        .startswith("error:"))
        self.assertTrue(self.mb.command("frobnicate").startswith("error:"))
        self.assertEqual(self.mb.command("rtt -1 0"), "ok")
        kafkalib.create_topics(self.bs, {"faults": 1})
        # A permanent injected error fails the delivery, and only the next request.
        self.assertEqual(self.mb.command("push-errors Produce MSG_SIZE_TOO_LARGE 1"), "ok")
        with self.assertRaises(kafkalib.KafkaToolError) as ctx:
            kafkalib.produce(self.bs, "faults", [{"key": "x", "value": "lost"}])
        self.assertEqual(ctx.exception.stdout.strip(), "produced 0")
        # Retriable injected errors are retried by the idempotent producer.
        self.assertEqual(self.mb.command("push-errors Produce NOT_LEADER_FOR_PARTITION 3"), "ok")
        self.assertEqual(kafkalib.produce(self.bs, "faults", [{"key": "x", "value": "y"}]), 1)
        self.assertEqual(len(kafkalib.consume(self.bs, "faults", 1, timeout_s=10)), 1)


class MockBrokerLifecycleTest(unittest.TestCase):
    def test_broker_down_up(self):
        with kafkalib.MockBroker(topics={"t": 1}) as mb:
            self.assertEqual(mb.command("broker-down 1"), "ok")
            with self.assertRaises(kafkalib.KafkaToolError):
                kafkalib.wait_ready(mb.bootstrap, timeout_s=1)
            self.assertEqual(mb.command("broker-up 1"), "ok")
            md = kafkalib.wait_ready(mb.bootstrap, timeout_s=10)
            self.assertEqual(md["topics"], [{"name": "t", "partitions": 1}])

    def _exits_cleanly(self, how):
        mb = kafkalib.MockBroker(topics={"t": 1})
        try:
            how(mb.proc)
            self.assertEqual(mb.proc.wait(timeout=10), 0)
        finally:
            mb.stop()

    def test_exit_on_sigterm(self):
        self._exits_cleanly(lambda p: p.send_signal(signal.SIGTERM))

    def test_exit_on_sigint(self):
        self._exits_cleanly(lambda p: p.send_signal(signal.SIGINT))

    def test_exit_on_stdin_eof(self):
        self._exits_cleanly(lambda p: p.stdin.close())

    def test_bootstrap_file(self):
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "clw-bs-%d.txt" % os.getpid())
        try:
            with kafkalib.MockBroker(bootstrap_file=path) as mb:
                with open(path) as f:
                    self.assertEqual(f.read(), "bootstrap=%s\n" % mb.bootstrap)
                self.assertEqual(mb.command("quit"), "ok")
                self.assertEqual(mb.proc.wait(timeout=10), 0)
        finally:
            if os.path.exists(path):
                os.unlink(path)


if __name__ == "__main__":
    unittest.main(verbosity=2)
