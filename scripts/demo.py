#!/usr/bin/env python3
"""The embedded end-to-end demo: a local broker process, the API simulator, the worker, a
handful of sample requests (a success, each business error, invalid ones, a transient failure
that succeeds on retry), the outcomes printed as a table. Run through scripts/demo."""

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import worklib  # noqa: E402
from worklib import request  # noqa: E402

REGION = "ap-guangzhou"
SEED = {
    "regions": {REGION: {"linkLimit": 100}, "ap-tiny": {"linkLimit": 1}},
    "vpcs": [
        {"vpcId": "vpc-2ari9m7h", "legacyId": "gz_vpc_245", "region": REGION, "name": "demo"},
        {"vpcId": "vpc-other001", "region": REGION, "name": "someone else's"},
        {"vpcId": "vpc-tiny0001", "region": "ap-tiny"},
    ],
    "instances": [
        {"instanceId": "ins-df454d", "region": REGION},
        {"instanceId": "ins-5d8a23rs", "region": REGION},
        {"instanceId": "ins-flaky01", "region": REGION},
        {"instanceId": "ins-taken01", "region": REGION, "linkedVpc": "vpc-other001"},
        {"instanceId": "ins-tiny001", "region": "ap-tiny", "linkedVpc": "vpc-tiny0001"},
        {"instanceId": "ins-tiny002", "region": "ap-tiny"},
    ],
}

SAMPLES = [
    ("attach two instances", "demo-ok",
     request("vpc-2ari9m7h", ["ins-df454d", "ins-5d8a23rs"], request_id="demo-ok", region=REGION)),
    ("503 twice, then success", "demo-retry",
     request("vpc-2ari9m7h", ["ins-flaky01"], request_id="demo-retry", region=REGION)),
    ("unknown VPC", "demo-novpc",
     request("vpc-nowhere1", ["ins-df454d"], request_id="demo-novpc", region=REGION)),
    ("unknown instance", "demo-noins",
     request("vpc-2ari9m7h", ["ins-ghost01"], request_id="demo-noins", region=REGION)),
    ("instance linked elsewhere", "demo-taken",
     request("vpc-2ari9m7h", ["ins-taken01"], request_id="demo-taken", region=REGION)),
    ("region link limit", "demo-limit",
     request("vpc-tiny0001", ["ins-tiny002"], request_id="demo-limit", region="ap-tiny")),
    ("not JSON", "demo-notjson", "attach please"),
    ("query injection in vpcId", "demo-inject",
     request("vpc-1&Action=DeleteVpc", ["ins-df454d"], request_id="demo-inject", region=REGION)),
    ("no instanceIds", "demo-missing", json.dumps({"vpcId": "vpc-2ari9m7h"})),
]


def table(rows, header):
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = "  ".join("%-*s" % (w, h) for w, h in zip(widths, header))
    print(line)
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join("%-*s" % (w, c) for w, c in zip(widths, r)))


def main():
    t0 = time.monotonic()
    print("demo: starting the broker (mock cluster) and the API simulator ...", flush=True)
    with worklib.Stack(seed=SEED, partitions=2) as st:
        print("demo: broker %s, simulator %s" % (st.bootstrap, st.sim.endpoint), flush=True)
        st.sim.add_faults({"scripts": [{"instanceId": "ins-flaky01", "fault": "http:503",
                                        "times": 2}]})
        print("demo: starting classiclink-worker and waiting for its partitions ...", flush=True)
        w = st.worker({"log.level": "info", "log.format": "text"})
        st.send([{"key": key, "value": value} for _, key, value in SAMPLES])
        print("demo: sent %d requests to %s" % (len(SAMPLES), worklib.REQUESTS), flush=True)
        outcomes = {}
        deadline = time.monotonic() + 60
        while len(outcomes) < len(SAMPLES) and time.monotonic() < deadline:
            for r in st.all_outcome_records():
                outcomes[r["key"]] = json.loads(r["value"])
            print("\rdemo: outcomes received %d/%d" % (len(outcomes), len(SAMPLES)), end="",
                  flush=True)
            if len(outcomes) < len(SAMPLES):
                time.sleep(0.2)
        print()
        rows = []
        for what, key, _ in SAMPLES:
            o = outcomes.get(key)
            if o is None:
                rows.append((what, key, "(none)", "", "", "", ""))
                continue
            rows.append((what, o["requestId"], o["status"], o["code"], o["codeDesc"],
                         o["errorClass"] or "", o["attempts"]))
        print()
        table(rows, ("sample", "requestId", "status", "code", "codeDesc", "errorClass",
                     "attempts"))
        print()
        print("demo: simulator state: %s linked to vpc-2ari9m7h" % ", ".join(
            i["instanceId"] for i in st.sim.state()["instances"]
            if i["linkedVpc"] == "vpc-2ari9m7h"))
        code = w.stop()
        ok = len(outcomes) == len(SAMPLES) and code == 0
        summary = [("requests sent", len(SAMPLES)), ("outcomes", len(outcomes)),
                   ("succeeded", sum(o["status"] == "succeeded" for o in outcomes.values())),
                   ("failed", sum(o["status"] == "failed" for o in outcomes.values())),
                   ("API calls", st.sim.stats()["calls"]), ("worker exit status", code),
                   ("seconds", "%.1f" % (time.monotonic() - t0))]
        table(summary, ("summary", "value"))
        print("\nOne outcome, as published to %s:\n%s" % (
            worklib.RESULTS, json.dumps(outcomes.get("demo-ok"), indent=2)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
