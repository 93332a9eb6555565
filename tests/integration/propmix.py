#!/usr/bin/env python3
"""propmix: generated mixes of requests, run coalesced and alone, every outcome compared.

Contract section 8 promises that a request in a shared API call gets exactly the outcome its
lone call would have given. A *mix* is a handful of requests with their own small world: VPCs
a and b (o exists, only to be linked to; nx does not), instances i0.. (x.. are not in the
simulator's world) seeded unlinked or linked to a, b or o, and per-instance scripted faults.
Requests (Attach or Detach, 1-5 instances in random order, instances shared between requests
of the mix) go to a (or al, its legacy id), b or nx; some mixes send their last requests
WAVE_S later. Each mix has a region of its own, so mixes share no VPC, no instance and no rate
limiter: many mixes run in one simulator and one worker run per mode, coalesced and alone
(lonelib), and every request's outcome must be the same in both runs (lonelib.FIELDS). A
batch's configuration (gen_config) picks the API version, task follow-up, the simulator's
same-VPC and detach-unlinked choices and how coalesced calls are formed.

Faults, and what the lone outcome is:
  transient   code:5100:ActionLocked (v3 ResourceInUse), code:6000, http:502, http:503 or
              drop for 1-2 calls, code:4400 for one: retried within retry.max_elapsed_ms
              (10 s), so they change no outcome. 10 s, not less: a throttling answer starts
              the region's rate limiter at what the API admitted in the last second, as low as
              one call a second, and the mix's other calls queue behind it;
  lock        ActionLocked (v3 ResourceInUse) on every call, on an instance only one request
              names and whose call would otherwise succeed (_lockable): the lone call ends
              retries_exhausted after the budget, and requests that only shared a call with it
              are not concerned (issue 19, 1);
  business    business:InvalidInstance.NotFound on every call naming the instance, or
              business:InstanceLimitExceeded on every Attach naming it;
  task_fail   (API 2 with task.follow only) every call naming the instance succeeds but its
              task fails and changes nothing;
  apply       http:503 or drop after applying, once: the call naming the instance first is
              ambiguous and reconciled.
Scripts are listed apply first, then business, task_fail, lock, transient: which fault answers
a call naming several scripted instances depends on their kinds, not on how the mix was
written.

A fault scripted per call hits every request sharing that call: "apply then 503" on X makes
the whole coalesced call ambiguous (every member reconciled) where, alone, only X's own call
is. That is the fault, not the worker: a request that shared an "apply" call with instances
not its own (found in the coalesced run's call log) is compared on status and errorClass only,
with that reason. A mix with an apply fault has no other fault but transient ones (an apply
would link instances whose own lone calls a lock or business fault refuses). Everything else
is compared strictly.

Command line (scripts/coalesce-property runs this):
  propmix.py --mixes 10000 [--batch 200] [--seed S]      batches of mixes; prints every seed
  propmix.py --seed S --batch-index I --batch 100        replays one batch
  propmix.py --replay FILE_OR_JSON [--shrink]            replays (and shrinks) printed mixes
"""

import argparse
import copy
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lonelib  # noqa: E402

ATTACH = "AttachClassicLinkVpc"
DETACH = "DetachClassicLinkVpc"
BUDGET_MS = 10000
LASTING = 10**9  # calls a lasting fault answers: more than any run makes
WAVE_S = 2.0  # how much later a mix's late requests are sent

# Fault kinds, in the order their scripts are listed (the first matching script decides).
ORDER = ("apply", "business", "task_fail", "lock", "transient")


def settings_for(config):
    """Worker settings of a batch (both modes)."""
    return {
        "retry.max_elapsed_ms": str(BUDGET_MS),
        "task.follow": "true" if config["follow"] else "false",
        "worker.max_pending_per_partition": "100000",
        "log.level": config.get("log_level", "info"),
        "worker.max_in_flight": str(config["maxInFlight"]) if "maxInFlight" in config else None,
    }


def sim_args_for(config):
    return ["--task-delay-ms", "100"] if config["follow"] else []


def sim_config_for(config):
    return {"sameVpcAttach": config["sameVpcAttach"], "detachUnlinked": config["detachUnlinked"]}


def gen_config(rng, v3):
    """A batch's configuration: API version, task follow-up (API 2 only: API 3.0 answers carry
    no task), the simulator's choices for attaching to the same VPC and detaching unlinked, and
    how calls are formed when coalesced: gathered for 300 ms (the default here), or only while
    waiting for one of 4 call slots (linger 0, maxInFlight 4, in both modes), or at most 4
    instances a call."""
    config = {"v3": v3, "follow": (not v3) and rng.random() < 0.7,
              "sameVpcAttach": rng.choice(["error", "error", "success"]),
              "detachUnlinked": rng.choice(["error", "error", "success"])}
    shape = rng.random()
    if shape < 0.25:
        config.update(linger=0, maxInFlight=4)
    elif shape < 0.4:
        config["maxInstances"] = 4
    return config


def coalesced_settings(config):
    return {"api.coalesce.linger_ms": str(config.get("linger", 300)),
            "api.coalesce.max_instances": str(config.get("maxInstances", 100))}


def _weighted(rng, pairs):
    total = sum(w for _, w in pairs)
    x = rng.uniform(0, total)
    for value, w in pairs:
        x -= w
        if x <= 0:
            return value
    return pairs[-1][0]


def gen_mix(rng, config):
    """One mix, in local names (materialised with a prefix by build())."""
    world, requests = {}, []
    for r in range(rng.randint(2, 6)):
        action = ATTACH if rng.random() < 0.7 else DETACH
        vpc = _weighted(rng, [("a", 65), ("al", 10), ("b", 17), ("nx", 8)])
        names = set()
        for _ in range(_weighted(rng, [(1, 45), (2, 25), (3, 12), (4, 10), (5, 8)])):
            named = sorted(set(world) - names)
            if named and rng.random() < 0.2:
                names.add(rng.choice(named))  # shared with an earlier request of the mix
            elif rng.random() < 0.07:
                local = "x%d" % len(world)  # not in the simulator's world
                world[local] = "unknown"
                names.add(local)
            else:
                local = "i%d" % len(world)
                world[local] = _weighted(rng, [(None, 65), ("a", 13), ("b", 9), ("o", 13)])
                names.add(local)
        names = sorted(names)
        rng.shuffle(names)  # the API names the first failing instance in the call's order
        requests.append(["r%d" % r, action, vpc, names])
    later = []
    if len(requests) > 1 and rng.random() < 0.3:
        later = [r[0] for r in requests[rng.randint(1, len(requests) - 1):]]
    names = sorted(world)
    kinds = [("none", 65), ("transient", 20), ("lock", 8), ("business", 10), ("apply", 6)]
    if config["follow"]:
        kinds.append(("task_fail", 6))
    kinds = [(k, w) for k, w in kinds if k not in config.get("without", ())]
    faults = []
    for name in names:
        kind = _weighted(rng, kinds)
        if kind == "none":
            continue
        if kind == "apply":
            if any(f[1].startswith("apply") for f in faults):
                continue
            faults.append([name, "apply+" + rng.choice(["http:503", "http:503", "drop"]), 1])
        elif kind == "transient":
            locked = "code:5100:ResourceInUse" if config["v3"] else "code:5100:ActionLocked"
            fault = rng.choice([locked, locked, "code:6000", "code:4400", "http:502",
                                "http:503", "drop"])
            faults.append([name, fault, 1 if fault == "code:4400" else rng.randint(1, 2)])
        elif kind == "lock":
            if _lockable(name, world, requests):
                faults.append([name, "lock", LASTING])
        elif kind == "business":
            faults.append([name, rng.choice(["business:InvalidInstance.NotFound",
                                             "business:InstanceLimitExceeded"]), LASTING])
        else:
            faults.append([name, "task_fail", LASTING])
    if any(f[1].startswith("apply") for f in faults):
        faults = [f for f in faults if f[1].startswith("apply") or fault_kind(f) == "transient"]
    # Likewise a lock beside a business fault on another instance of its request.
    business = {f[0] for f in faults if fault_kind(f) == "business"}
    faults = [f for f in faults if fault_kind(f) != "lock" or
              not any(n in business for r in requests if f[0] in r[3] for n in r[3])]
    mix = {"world": world, "requests": requests, "faults": faults}
    if later:
        mix["later"] = later
    return mix


def _lockable(name, world, requests):
    """Whether a lasting lock on instance name keeps every lone outcome deterministic: one
    request names it (no chain of requests waits for the lock), and that request's own call
    would otherwise succeed. Where the instance also meets a real business error (linked
    elsewhere, unknown, an unknown VPC), a coalesced call decided by a script that runs the
    action (task_fail) answers that error, alone the lock answers: two facts about one
    instance, and which one the API reports is the simulator's order, not the worker's."""
    naming = [r for r in requests if name in r[3]]
    if len(naming) != 1 or naming[0][2] not in ("a", "al", "b"):
        return False
    vpc = naming[0][2][0]  # al is a
    # Every instance of that request, not only this one: a call of the request that would
    # otherwise fail (another instance linked, linked elsewhere or unknown) answers its error
    # wherever a script ahead of the lock lets the action run.
    if naming[0][1] == ATTACH:
        return all(world[n] is None for n in naming[0][3])
    return all(world[n] == vpc for n in naming[0][3])


def fault_kind(fault):
    text = fault[1]
    if text.startswith("apply+"):
        return "apply"
    if text.startswith("business:"):
        return "business"
    if text in ("task_fail", "lock"):
        return text
    return "transient"


# ---- materialising mixes ------------------------------------------------------------------

def ins_id(prefix, local):
    return "ins-%s%s" % (prefix, local)


def vpc_id(prefix, local):
    """VPC a also has a legacy spelling, al: pm_vpc_12 for prefix m12 (API 3.0 refuses it as
    malformed, API 2 takes it; it never shares a call with the vpc- spelling)."""
    if local == "al":
        return "p%s_vpc_%s" % ("".join(c for c in prefix if c.isalpha()),
                               "".join(c for c in prefix if c.isdigit()))
    return "vpc-%s%s" % (prefix, local)


def region_of(prefix):
    return "ap-%s" % prefix


def build(config, mixes):
    """(records, later, seed, faults, requests) for a list of (prefix, mix): later holds the
    records of the requests a mix sends WAVE_S late; requests maps each requestId to (prefix,
    action, vpcId, instance set)."""
    vpcs, instances, scripts, records, late, requests = [], [], [], [], [], {}
    lock = "code:5100:ResourceInUse" if config["v3"] else "code:5100:ActionLocked"
    for prefix, mix in mixes:
        region = region_of(prefix)
        for local in ("a", "b", "o"):
            vpcs.append({"vpcId": vpc_id(prefix, local), "region": region})
        vpcs[-3]["legacyId"] = vpc_id(prefix, "al")
        for local, linked in sorted(mix["world"].items()):
            if linked == "unknown":
                continue
            ins = {"instanceId": ins_id(prefix, local), "region": region}
            if linked:
                ins["linkedVpc"] = vpc_id(prefix, linked)
            instances.append(ins)
        for local, action, vpc, names in mix["requests"]:
            rid = prefix + local
            ids = [ins_id(prefix, n) for n in names]
            (late if local in mix.get("later", ()) else records).append(
                lonelib.record(rid, vpc_id(prefix, vpc), ids,
                               action=None if action == ATTACH else action, region=region))
            requests[rid] = (prefix, action, vpc_id(prefix, vpc), frozenset(ids))
        for local, text, times in sorted(mix["faults"],
                                         key=lambda f: (ORDER.index(fault_kind(f)), f[0])):
            script = {"instanceId": ins_id(prefix, local), "times": times}
            if text == "business:InstanceLimitExceeded":
                script["action"] = ATTACH  # a Detach makes no link: it cannot exceed a limit
            if text.startswith("apply+"):
                script.update(fault=text[len("apply+"):], apply=True)
            else:
                script["fault"] = lock if text == "lock" else text
            scripts.append(script)
    seed = {"vpcs": vpcs, "instances": instances}
    return records, late, seed, ({"scripts": scripts} if scripts else None), requests


def _owners(instance, ts, order, outcomes):
    """The requests that may have carried instance in a call logged at ts: requests naming one
    instance run one after the other in offset order, so it is the first of them whose outcome
    came at or after ts, and the next one too when that outcome came in the same millisecond."""
    out = []
    for rid, ids in order:
        if instance not in ids:
            continue
        done = (outcomes.get(rid) or {}).get("completedAt")
        if done is not None and done < ts:
            continue  # finished before the call
        out.append(rid)
        if done is None or done > ts:
            break  # in flight at ts: the later ones had not started
    return out


def _effect_unknown(fault):
    """Whether a simulator fault leaves the call's effect unknown to the worker."""
    if fault.startswith("apply+") or fault in ("drop", "hang"):
        return True
    return fault.startswith("http:") and fault[5:].isdigit() and int(fault[5:]) >= 500


def collateral(coalesced, requests):
    """{requestId: (fields allowed to differ, reason)} for requests that were members of a call
    of the coalesced run with instances not their own whose effect the worker cannot know: an
    "apply then fail", or any answer that leaves it unknown (HTTP 5xx, a dropped or hung
    connection) — the worker then treats every member as ambiguous (contract section 5), which
    alone only the lone call naming the instance is. Members are found from the call log and the
    outcomes' completedAt (see _owners)."""
    out = {}
    order = [(rid, ids) for rid, (_, _, _, ids) in requests.items()]
    fields = tuple(f for f in lonelib.FIELDS if f not in lonelib.COLLATERAL_FIELDS)
    for call in coalesced.calls:
        fault = call.get("fault") or ""
        if not _effect_unknown(fault) or call.get("action") not in (ATTACH, DETACH):
            continue
        carried = frozenset(lonelib.call_instances(call))
        members = set()
        for instance in carried:
            members.update(_owners(instance, call["ts"], order, coalesced.outcomes))
        for rid in members:
            _, action, vpc, ids = requests[rid]
            if action == call["action"] and vpc == lonelib.call_vpc(call) and ids != carried:
                out[rid] = (fields, "shared an %s call carrying %s: the fault hits every member "
                            "of a shared call, alone only the lone call naming the instance" % (
                                fault, ",".join(sorted(carried))))
    return out


def run_mixes(config, mixes, log_dir=None, timeout_s=120):
    """Runs [(prefix, mix), ...] coalesced and alone; returns (failures, info): failures maps
    a prefix to its differences {requestId: rows}; info has both Runs, the exemptions and the
    timings."""
    records, late, seed, faults, requests = build(config, mixes)
    kw = dict(settings=settings_for(config), faults=faults, v3=config["v3"],
              sim_args=sim_args_for(config), sim_config=sim_config_for(config),
              timeout_s=timeout_s, later=[(WAVE_S, late)] if late else ())
    started = time.monotonic()
    logs = {}
    if log_dir:
        os.makedirs(log_dir, exist_ok=True)
        for mode in ("coalesced", "alone"):
            logs[mode] = os.path.join(log_dir, "worker-%s.log" % mode)
            if os.path.exists(logs[mode]):
                os.unlink(logs[mode])
    settings = kw.pop("settings")
    coalesced, alone = lonelib.side_by_side(
        lambda: lonelib.run(records, seed, dict(settings, **coalesced_settings(config)),
                            mode="coalesced", log_path=logs.get("coalesced"), **kw),
        lambda: lonelib.run(records, seed, dict(settings, **lonelib.ALONE), mode="alone",
                            log_path=logs.get("alone"), **kw))
    exempt = collateral(coalesced, requests)
    differences = lonelib.diff(coalesced, alone, exempt=exempt, ids=sorted(requests))
    failures = {}
    for rid, rows in differences.items():
        failures.setdefault(requests[rid][0], {})[rid] = rows
    info = {"coalesced": coalesced, "alone": alone, "exempt": exempt, "requests": requests,
            "elapsed_s": time.monotonic() - started}
    return failures, info


def signature(rows_by_request):
    """The kind of a failure: its (field, coalesced, alone) rows, whatever the request."""
    return frozenset((f, json.dumps(a), json.dumps(b)) for rows in rows_by_request.values()
                     for f, a, b in rows)


def core(sig):
    """What a smaller mix must still show to be the same failure: the rows about the outcome
    itself (missing, duplicated, status, errorClass) when there are any, else every row."""
    main = frozenset(r for r in sig if r[0] in ("outcome", "outcomes", "status", "errorClass"))
    return main or sig


def describe(prefix, mix, rows_by_request, info):
    """Lines describing one failing mix: its requests, world, faults and the differences."""
    lines = []
    for local, linked in sorted(mix["world"].items()):
        lines.append("    instance %s: %s" % (
            ins_id(prefix, local), "not in the world" if linked == "unknown"
            else "linked to " + vpc_id(prefix, linked) if linked else "unlinked"))
    for local, action, vpc, names in mix["requests"]:
        lines.append("    request %s%s: %s %s %s%s" % (
            prefix, local, action[:6], vpc_id(prefix, vpc), [ins_id(prefix, n) for n in names],
            " (sent %g s later)" % WAVE_S if local in mix.get("later", ()) else ""))
    for local, text, times in mix["faults"]:
        lines.append("    fault %s: %s %s" % (ins_id(prefix, local), text,
                                              "always" if times >= LASTING else "x%d" % times))
    lines.append(lonelib.format_diff(rows_by_request, info["coalesced"], info["alone"],
                                     info["exempt"]))
    return "\n".join(lines)


def replay_doc(config, mixes):
    return {"config": config, "mixes": [m for _, m in mixes]}


def prefixes(n, start=0):
    return ["m%d" % i for i in range(start, start + n)]


# ---- shrinking ----------------------------------------------------------------------------

def _reductions(mix):
    """Every mix one step smaller than mix."""
    out = []
    reqs, faults, world = mix["requests"], mix["faults"], mix["world"]
    for i in range(len(reqs)):
        if len(reqs) > 1:
            out.append(dict(mix, requests=reqs[:i] + reqs[i + 1:]))
    for i in range(len(faults)):
        out.append(dict(mix, faults=faults[:i] + faults[i + 1:]))
    for i, (local, action, vpc, names) in enumerate(reqs):
        for n in names:
            if len(names) > 1:
                smaller = copy.deepcopy(reqs)
                smaller[i][3] = [x for x in names if x != n]
                out.append(dict(mix, requests=smaller))
        if action == DETACH:
            flipped = copy.deepcopy(reqs)
            flipped[i][1] = ATTACH
            out.append(dict(mix, requests=flipped))
        if vpc != "a":
            moved = copy.deepcopy(reqs)
            moved[i][2] = "a"
            out.append(dict(mix, requests=moved))
    if mix.get("later"):
        out.append({k: v for k, v in mix.items() if k != "later"})
    for local, linked in world.items():
        if linked not in (None, "unknown"):
            out.append(dict(mix, world=dict(world, **{local: None})))
    for i, f in enumerate(faults):
        if f[2] > 1 and fault_kind(f) == "transient":
            fewer = copy.deepcopy(faults)
            fewer[i][2] = 1
            out.append(dict(mix, faults=fewer))
    return [tidy(m) for m in out]


def tidy(mix):
    """Drops instances no request names and faults on them."""
    used = {n for r in mix["requests"] for n in r[3]}
    out = {"world": {k: v for k, v in mix["world"].items() if k in used},
           "requests": mix["requests"],
           "faults": [f for f in mix["faults"] if f[0] in used]}
    later = [r[0] for r in mix["requests"] if r[0] in mix.get("later", ())]
    if later:
        out["later"] = later
    return out


def size(mix):
    return (len(mix["requests"]) + len(mix["faults"]) + sum(len(r[3]) for r in mix["requests"])
            + len(mix.get("later", ()))
            + sum(1 for v in mix["world"].values() if v not in (None, "unknown")))


def shrink(config, mix, out=sys.stdout, log_dir=None, rounds=12):
    """Greedy shrinking: every one-step reduction of the current mix runs in one batch (they do
    not interact); the smallest that still shows core() of the first failure's rows becomes
    current. Returns (mix, rows) of the smallest failing mix found, or None when mix does not
    fail on its own."""
    mix = tidy(mix)
    failures, info = run_mixes(config, [("s0", mix)], log_dir)
    if not failures:
        out.write("shrink: the mix does not fail on its own\n")
        return None
    want = core(signature(failures["s0"]))
    best, best_rows = mix, failures["s0"]
    for n in range(rounds):
        candidates = _reductions(best)
        if not candidates:
            break
        named = [("s%d" % i, m) for i, m in enumerate(candidates)]
        failures, info = run_mixes(config, named, log_dir)
        kept = [(size(m), p, m) for p, m in named
                if p in failures and want <= signature(failures[p])]
        out.write("shrink round %d: %d candidates, %d still fail (%.0f s)\n" % (
            n + 1, len(candidates), len(kept), info["elapsed_s"]))
        out.flush()
        if not kept:
            break
        kept.sort(key=lambda t: (t[0], int(t[1][1:])))
        _, p, best = kept[0]
        best_rows = failures[p]
    return best, best_rows


# ---- the command line ---------------------------------------------------------------------

def batch_mixes(seed, index, count, without=()):
    """(config, [(prefix, mix)]) of batch `index` of run `seed` (even batches API 2, odd ones
    API 3.0); without: fault kinds left out."""
    rng = random.Random("%s/%d" % (seed, index))
    config = gen_config(rng, v3=index % 2 == 1)
    if without:
        config["without"] = sorted(without)
    mixes = [(p, gen_mix(rng, config)) for p in prefixes(count)]
    return config, mixes


def report_failures(config, mixes, failures, info, out, header, save=None):
    """Prints each failing mix with a replay document (and appends it to the JSON-lines file
    save: {"where", "config", "mix", "differences"}); returns the number of failing mixes."""
    by_prefix = dict(mixes)
    for prefix in sorted(failures, key=lambda p: int(p[1:])):
        if save:
            with open(save, "a") as f:
                f.write(json.dumps({"where": "%s %s" % (header, prefix), "config": config,
                                    "mix": by_prefix[prefix],
                                    "differences": failures[prefix]}) + "\n")
        out.write("%s: FAILING MIX %s\n" % (header, prefix))
        out.write(describe(prefix, by_prefix[prefix], failures[prefix], info) + "\n")
        out.write("  replay alone: scripts/coalesce-property --replay '%s'\n" % json.dumps(
            replay_doc(config, [(prefix, by_prefix[prefix])]), separators=(",", ":")))
    out.flush()
    return len(failures)


def run_batch(seed, index, count, out, log_dir=None, without=(), save=None, timeout_s=120):
    config, mixes = batch_mixes(seed, index, count, without)
    failures, info = run_mixes(config, mixes, log_dir, timeout_s)
    nreq = len(info["requests"])
    out.write("batch seed=%s index=%d mixes=%d requests=%d config=%s: %d failing mix(es), "
              "calls coalesced=%d alone=%d, %d collateral, %.1f s\n" % (
                  seed, index, count, nreq, json.dumps(config, sort_keys=True), len(failures),
                  len(info["coalesced"].calls), len(info["alone"].calls), len(info["exempt"]),
                  info["elapsed_s"]))
    header = "seed=%s index=%d" % (seed, index)
    report_failures(config, mixes, failures, info, out, header, save)
    return config, mixes, failures, info


def _load_replay(text):
    if os.path.exists(text):
        with open(text) as f:
            text = f.read()
    return json.loads(text)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", help="run seed (default: random, printed)")
    ap.add_argument("--mixes", type=int, default=200, help="mixes in all (default 200)")
    ap.add_argument("--batch", type=int, default=200, help="mixes per worker run (default 200)")
    ap.add_argument("--batch-index", type=int, help="run only this batch of the seed")
    ap.add_argument("--replay", help="a replay document (JSON, or a file holding one)")
    ap.add_argument("--shrink", action="store_true", help="shrink each failing replayed mix")
    ap.add_argument("--log-dir", help="keep the last run's worker logs here")
    ap.add_argument("--save", help="append every failing mix to this JSON-lines file")
    ap.add_argument("--without", default="", help="fault kinds to leave out, comma-separated "
                    "(%s, task_fail)" % ", ".join(k for k in ORDER if k != "task_fail"))
    args = ap.parse_args(argv)
    out = sys.stdout
    if args.replay:
        doc = _load_replay(args.replay)
        config, mixes = doc["config"], list(zip(prefixes(len(doc["mixes"])), doc["mixes"]))
        failures, info = run_mixes(config, mixes, args.log_dir)
        report_failures(config, mixes, failures, info, out, "replay", args.save)
        out.write("replay: %d of %d mix(es) fail (%.1f s)\n" % (len(failures), len(mixes),
                                                                 info["elapsed_s"]))
        if args.shrink:
            for prefix in sorted(failures):
                result = shrink(config, dict(mixes)[prefix], out, args.log_dir)
                if result:
                    small, _ = result
                    f2, info2 = run_mixes(config, [("m0", small)], args.log_dir)
                    out.write("SHRUNK %s:\n" % prefix)
                    report_failures(config, [("m0", small)], f2, info2, out, "shrunk")
        return 1 if failures else 0
    seed = args.seed or str(random.SystemRandom().randrange(10 ** 9))
    without = [k for k in args.without.split(",") if k]
    if set(without) - set(ORDER):
        ap.error("unknown fault kind in --without: %s" % args.without)
    batches = max(1, -(-args.mixes // args.batch))
    indexes = [args.batch_index] if args.batch_index is not None else range(batches)
    out.write("coalesce-property: seed=%s mixes=%d in %d batch(es) of %d\n" % (
        seed, args.mixes, len(indexes), args.batch))
    total_fail, started = 0, time.monotonic()
    for i in indexes:
        count = min(args.batch, args.mixes - i * args.batch) if args.batch_index is None \
            else args.batch
        _, _, failures, _ = run_batch(seed, i, count, out, args.log_dir, without, args.save)
        total_fail += len(failures)
    out.write("coalesce-property: seed=%s: %d failing mix(es) of %d, %.0f s\n" % (
        seed, total_fail, args.mixes if args.batch_index is None else args.batch,
        time.monotonic() - started))
    return 1 if total_fail else 0


if __name__ == "__main__":
    sys.exit(main())
