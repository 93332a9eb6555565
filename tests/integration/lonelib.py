"""lonelib: run one scenario coalesced and alone and compare the outcomes request by request.

Contract section 8: a request in a shared API call gets exactly the outcome its lone call would
have given. A scenario (records, a simulator seed, scripted faults, settings) runs twice against
the real worker, the mock-cluster broker process and the API simulator, each time on a fresh
stack (same seed, same faults):

  coalesced  settings + {"api.coalesce.linger_ms": "300"}  (requests of a batch share calls)
  alone      settings + {"api.coalesce.max_instances": "1"} (every request its own call)

    import lonelib
    coalesced, alone = lonelib.run_both(records, seed, {"retry.max_elapsed_ms": "8000"},
                                        faults={"scripts": [...]}, v3=True)
    lonelib.assert_same(self, coalesced, alone)

run() returns a Run: .outcomes {requestId: outcome} (the first outcome of each request),
.duplicates {requestId: [every outcome]} for requests published more than once, .missing (ids
sent but without an outcome), .calls (the simulator's call log), .stats (/_sim/stats at the
end), .state (/_sim/state at the end), .settings (the worker's full settings), .elapsed_s, and
.worker_tail (the last worker log lines). A missing or duplicated outcome is a difference in
diff() and assert_same() whatever the other run did: the contract wants exactly one outcome.

Python 3 standard library only; starts nothing at import time.
"""

import concurrent.futures
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kafkalib  # noqa: E402
import worklib  # noqa: E402

REGION = "ap-guangzhou"
COALESCED = {"api.coalesce.linger_ms": "300"}
ALONE = dict(worklib.ALONE)

# The compared fields of an outcome (view()).
FIELDS = ("status", "errorClass", "code", "codeDesc", "taskId", "reconciled", "taskStatus")
# What a request hit by a per-call fault meant for another member may still be compared on.
COLLATERAL_FIELDS = ("status", "errorClass")


def view(outcome):
    """The compared fields of an outcome: status, errorClass, code, codeDesc, taskId (whether
    one is present), reconciled (absent = False) and taskStatus (None when absent)."""
    if outcome is None:
        return None
    return {
        "status": outcome.get("status"),
        "errorClass": outcome.get("errorClass"),
        "code": outcome.get("code"),
        "codeDesc": outcome.get("codeDesc"),
        "taskId": outcome.get("taskId") is not None,
        "reconciled": bool(outcome.get("reconciled", False)),
        "taskStatus": outcome.get("taskStatus"),
    }


def record(request_id, vpc, instances, action=None, region=REGION, partition=0):
    """One request record keyed by its requestId (all on one partition by default, so that
    requests sharing an instance run in the order given)."""
    extra = {"action": action} if action else {}
    return {"key": request_id, "partition": partition,
            "value": worklib.request(vpc, list(instances), request_id=request_id, region=region,
                                     **extra)}


def request_ids(records):
    """The requestIds of records, in order (each record's value must carry one)."""
    return [json.loads(r["value"])["requestId"] for r in records]


class Run:
    """What one run of a scenario produced (see the module docstring)."""

    def __init__(self, mode, settings):
        self.mode = mode
        self.settings = settings
        self.outcomes = {}
        self.duplicates = {}
        self.missing = []
        self.calls = []
        self.stats = {}
        self.state = {}
        self.elapsed_s = 0.0
        self.worker_tail = ""
        self.worker_exit = None

    def calls_for(self, action=None):
        """Call-log entries of action (every API call when None)."""
        return [c for c in self.calls if action is None or c.get("action") == action]

    def __repr__(self):
        return "Run(%s, %d outcomes, %d missing, %d duplicated, %d calls)" % (
            self.mode, len(self.outcomes), len(self.missing), len(self.duplicates),
            len(self.calls))


def call_instances(call):
    """The instance ids an Attach/Detach call-log entry carried, v2 or v3, in call order."""
    if call.get("version") == 3:
        body = call.get("body") or {}
        ids = body.get("InstanceIds")
        return list(ids) if isinstance(ids, list) else []
    params = call.get("params") or {}
    named = [(int(k.split(".", 1)[1]), v) for k, v in params.items()
             if k.startswith("instanceIds.") and k.split(".", 1)[1].isdigit()]
    return [v for _, v in sorted(named)]


def call_vpc(call):
    if call.get("version") == 3:
        return (call.get("body") or {}).get("VpcId")
    return (call.get("params") or {}).get("vpcId")


def call_region(call):
    params = call.get("params") or {}
    return params.get("X-TC-Region") if call.get("version") == 3 else params.get("Region")


def run(records, seed, settings=None, faults=None, v3=False, sim_args=(), sim_config=None,
        partitions=1, timeout_s=90, quiet_s=None, mode="run", log_path=None, later=()):
    """Runs records once on a fresh broker, simulator and worker; returns a Run.

    seed: the simulator's seed document. faults: a fault document applied before the worker
    starts. sim_config: a /_sim/config change (e.g. {"sameVpcAttach": "success"}). settings:
    worker keys on top of worklib's test defaults. v3: api.version=3 against the simulator's
    API 3.0 endpoint. later: [(delay_s, records), ...] sent that long after records (requests
    that arrive while earlier ones are under way; the same schedule in every mode). The run
    waits until every request has an outcome, at most timeout_s, and gives up earlier when no
    new outcome arrived within quiet_s (default: the retry budget plus 20 s), then stops the
    worker (SIGTERM) and reads the results topic to its end, so duplicates published meanwhile
    count."""
    ids = request_ids(records) + [i for _, recs in later for i in request_ids(recs)]
    if len(set(ids)) != len(ids):
        raise ValueError("requestIds must be distinct within a scenario")
    conf = dict(settings or {})
    if v3:
        conf["api.version"] = "3"
    if quiet_s is None:
        budget_ms = int(conf.get("retry.max_elapsed_ms") or 0)
        quiet_s = (budget_ms / 1000.0 if budget_ms > 0 else 40.0) + 20.0
    result = Run(mode, conf)
    started = time.monotonic()
    with worklib.Stack(seed=seed, partitions=partitions, sim_args=list(sim_args)) as st:
        if sim_config:
            st.sim.config(sim_config)
        if faults:
            st.sim.add_faults(faults)
        endpoint = st.sim.endpoint_v3 if v3 else st.sim.endpoint
        w = worklib.Worker(st.bootstrap, endpoint, conf, log_path=log_path)
        st.workers.append(w)
        w.wait_assigned()
        result.settings = dict(w.settings)
        sent = time.monotonic()
        st.send(records)
        for delay_s, recs in sorted(later, key=lambda wave: wave[0]):
            time.sleep(max(0.0, sent + delay_s - time.monotonic()))  # the scenario's schedule
            st.send(recs)
        want = set(ids)
        deadline, got = started + timeout_s, 0
        while time.monotonic() < deadline:
            try:
                kafkalib.consume(st.bootstrap, worklib.RESULTS, count=len(ids),
                                 timeout_s=min(quiet_s, deadline - time.monotonic()))
                break
            except kafkalib.KafkaTimeout as timeout:
                if len(timeout.records) <= got:
                    break  # nothing new for quiet_s; what came is read again below
                got = len(timeout.records)
        result.elapsed_s = time.monotonic() - started
        result.stats = st.sim.stats()
        result.state = st.sim.state()
        result.worker_exit = w.stop(timeout_s=60)
        result.worker_tail = w.tail(60)
        seen = {}
        for r in st.all_outcome_records():
            o = json.loads(r["value"])
            seen.setdefault(o["requestId"], []).append(o)
        result.calls = st.sim.read_call_log()
    for rid, outs in seen.items():
        if rid not in want:
            raise AssertionError("outcome for a request never sent: %r" % outs[0])
        result.outcomes[rid] = outs[0]
        if len(outs) > 1:
            result.duplicates[rid] = outs
    result.missing = [rid for rid in ids if rid not in seen]
    return result


def side_by_side(*calls):
    """The results of the zero-argument callables, run at the same time: runs share nothing
    (each its own broker process, simulator and worker) and spend their time waiting for them.
    CLW_LONE_SERIAL=1 runs them one after the other."""
    if os.environ.get("CLW_LONE_SERIAL") == "1":
        return tuple(call() for call in calls)
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        return tuple(f.result() for f in futures)


def run_both(records, seed, settings=None, **kw):
    """(coalesced, alone): run() with COALESCED and with ALONE, on top of settings, side by
    side."""
    return side_by_side(
        lambda: run(records, seed, dict(settings or {}, **COALESCED), mode="coalesced", **kw),
        lambda: run(records, seed, dict(settings or {}, **ALONE), mode="alone", **kw))


def _outcomes(x):
    return x.outcomes if isinstance(x, Run) else x


def diff(coalesced, alone, fields=None, exempt=None, ids=None):
    """{requestId: [(field, coalesced value, alone value), ...]} for every request whose
    compared fields differ. fields: the compared fields (default FIELDS). exempt:
    {requestId: (fields allowed to differ, reason)}. ids: the requests to compare (default
    every request of either run). A request missing from a run, or published more than once,
    differs as ("outcome", ...)."""
    fields = tuple(fields or FIELDS)
    exempt = exempt or {}
    left, right = _outcomes(coalesced), _outcomes(alone)
    if ids is None:
        ids = sorted(set(left) | set(right)
                     | set(getattr(coalesced, "missing", ())) | set(getattr(alone, "missing", ())))
    out = {}
    for rid in ids:
        rows = []
        counts = [len(getattr(r, "duplicates", {}).get(rid, ())) for r in (coalesced, alone)]
        if max(counts) > 1:
            rows.append(("outcomes", max(counts[0], 1), max(counts[1], 1)))
        a, b = left.get(rid), right.get(rid)
        if a is None or b is None:
            rows.append(("outcome", "none" if a is None else view(a),
                         "none" if b is None else view(b)))
        else:
            va, vb = view(a), view(b)
            allowed = exempt.get(rid, ((), ""))[0]
            rows += [(f, va[f], vb[f]) for f in fields if f not in allowed and va[f] != vb[f]]
        if rows:
            out[rid] = rows
    return out


def format_diff(differences, coalesced=None, alone=None, exempt=None, limit=40):
    """A readable report of diff()'s result: one block per request, the differing fields and
    both outcomes' messages."""
    lines = []
    exempt = exempt or {}
    left = _outcomes(coalesced) if coalesced is not None else {}
    right = _outcomes(alone) if alone is not None else {}
    for n, (rid, rows) in enumerate(sorted(differences.items())):
        if n == limit:
            lines.append("... and %d more request(s)" % (len(differences) - limit))
            break
        lines.append("request %s:" % rid)
        for field, a, b in rows:
            lines.append("    %-11s coalesced=%-28s alone=%s" % (field, json.dumps(a),
                                                                  json.dumps(b)))
        for name, outs in (("coalesced", left), ("alone", right)):
            o = outs.get(rid)
            if o is not None:
                lines.append("    %-9s message=%r attempts=%s coalesced=%s" % (
                    name, o.get("message", "")[:120], o.get("attempts"), o.get("coalesced")))
        if rid in exempt:
            lines.append("    (exempt: %s may differ: %s)" % (", ".join(exempt[rid][0]),
                                                              exempt[rid][1]))
    return "\n".join(lines)


def assert_same(testcase, coalesced, alone, fields=None, exempt=None):
    """Fails testcase with a per-request report unless every request has exactly one outcome
    in each run and their compared fields agree (exempt: {requestId: (fields, reason)})."""
    differences = diff(coalesced, alone, fields, exempt)
    if differences:
        testcase.fail("%d request(s) differ between coalesced and alone:\n%s" % (
            len(differences), format_diff(differences, coalesced, alone, exempt)))
