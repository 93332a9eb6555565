#!/usr/bin/env python3
"""The deployment artefacts, checked. Run through scripts/check-deploy, which installs promtool,
builds helm and the validator (deploy/validate) once per machine and passes their paths:

    check_deploy.py HELM VALIDATOR WORKER_BUILD_DIR

1. The chart: `helm lint --strict` and `helm template` for the default values and for every
   deploy/helm/classiclink-worker/ci/*-values.yaml; every rendered object decoded strictly by the
   validator (the Kubernetes, Prometheus Operator and KEDA Go types); then what the objects must
   say: workload kind, static membership, grace period against the drain, hardening, probes,
   credentials wiring, selectors of the PDB, monitors and KEDA, KEDA's cap.
2. Refusals: values the chart must refuse (a misspelt key, a grace period shorter than the drain,
   KEDA above the partition count, settings the chart owns, exactly-once on a Deployment), a
   misspelt field the validator must reject, and renders these checks must reject.
3. The image: the rendered command, config path, ops port, probe paths and user agree with
   docker/Dockerfile, and with the built image's configuration and files when podman has it
   (scripts/check-container builds it earlier in .ci/run).
4. The worker: every render's configuration file, -X arguments and credential environment are
   accepted by the real binary (--check-config), which names the credential source the variant
   means; OIDC and the CVM role against the simulator's STS and metadata service. And it runs
   with its root file system read-only, as readOnlyRootFilesystem has it (as root: a mount
   namespace of its own).
5. Alert rules: promtool check rules and test rules; every alert has a test with a firing and a
   non-firing series and a runbook heading in docs/operations.md; the chart's PrometheusRule has
   the file's groups.
6. The dashboard: its shape, and every query parses (promtool, as recording rules).
7. Documentation: every metric the rules and the dashboard name is in docs/operations.md.

tests/integration/test_deploy_metrics.py (run by scripts/test) checks that the worker exports
every metric the rules and the dashboard name. Prints one line per check and a closing
"N passed, N failed" line; exits 1 when anything failed.
"""

import copy
import glob
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

import yaml

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

CHART = os.path.join(REPO, "deploy", "helm", "classiclink-worker")
RULES = os.path.join(REPO, "deploy", "prometheus", "classiclink-worker.rules.yaml")
RULE_TESTS = os.path.join(REPO, "deploy", "prometheus", "classiclink-worker.rules.test.yaml")
DASHBOARD = os.path.join(REPO, "deploy", "grafana", "classiclink-worker.json")
DOCKERFILE = os.path.join(REPO, "docker", "Dockerfile")
OPERATIONS = os.path.join(REPO, "docs", "operations.md")
IMAGE = "classiclink-worker:local"  # the tag scripts/check-container builds
RELEASE = "ci"
NAMESPACE = "classiclink"

PASSED = []
FAILED = []


def check(cond, what, detail=""):
    if cond:
        PASSED.append(what)
        print("check-deploy: ok    %s" % what, flush=True)
    else:
        FAILED.append(what)
        print("check-deploy: FAIL  %s%s" % (what, ": " + str(detail) if detail else ""),
              flush=True)
    return bool(cond)


def run(argv, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 300)
    return subprocess.run(argv, **kw)


def quiet(text):
    """helm's output without its INFO notes about the files/ symbolic links."""
    return "\n".join(l for l in text.splitlines() if "found symbolic link in path" not in l)


# ---- the image, as docker/Dockerfile builds it -----------------------------------------------

def dockerfile_facts():
    """What the runtime stage promises: binary path, configuration path, user, port, health
    path, entrypoint."""
    text = open(DOCKERFILE, encoding="utf-8").read().replace("\\\n", " ")
    runtime = text.split("AS runtime", 1)[1]
    facts = {}
    for m in re.finditer(r"^COPY --from=build (\S+) (\S+)$", runtime, re.M):
        if m.group(1).endswith("/classiclink-worker"):
            facts["binary"] = m.group(2)
        if m.group(1).endswith(".conf"):
            facts["config"] = m.group(2)
    m = re.search(r"^USER (\d+):(\d+)$", runtime, re.M)
    facts["uid"], facts["gid"] = (int(m.group(1)), int(m.group(2))) if m else (None, None)
    m = re.search(r"^EXPOSE (\d+)$", runtime, re.M)
    facts["port"] = int(m.group(1)) if m else None
    m = re.search(r"^HEALTHCHECK .*http://127\.0\.0\.1:(\d+)(/\w+)", runtime, re.M)
    facts["health_port"], facts["health_path"] = (int(m.group(1)), m.group(2)) if m else (None, None)
    m = re.search(r"^ENTRYPOINT (\[.*\])$", runtime, re.M)
    facts["entrypoint"] = json.loads(m.group(1)) if m else None
    m = re.search(r"metrics\.listen = :(\d+)", runtime)
    facts["listen_port"] = int(m.group(1)) if m else None
    return facts


def image_config():
    """The built image's configuration (podman image inspect), or None when there is none."""
    try:
        res = run(["podman", "image", "inspect", IMAGE], timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if res.returncode != 0:
        return None
    return (json.loads(res.stdout) or [None])[0]


# ---- rendering ----------------------------------------------------------------------------------

class Render:
    """One helm template output, split into objects."""

    def __init__(self, name, text):
        self.name = name
        self.text = text
        self.objects = [d for d in yaml.safe_load_all(text) if d]

    def kind(self, kind):
        return [o for o in self.objects if o.get("kind") == kind]

    def one(self, kind):
        found = self.kind(kind)
        return found[0] if len(found) == 1 else None

    def workload(self):
        found = self.kind("StatefulSet") + self.kind("Deployment")
        return found[0] if len(found) == 1 else None


def helm_template(helm, values=None, sets=()):
    argv = [helm, "template", RELEASE, CHART, "--namespace", NAMESPACE]
    if values:
        argv += ["-f", values]
    for s in sets:
        argv += ["--set", s]
    return run(argv)


def variants():
    """(name, values file or None): the defaults and every documented variant."""
    out = [("default", None)]
    for path in sorted(glob.glob(os.path.join(CHART, "ci", "*-values.yaml"))):
        out.append((os.path.basename(path)[:-len("-values.yaml")], path))
    return out


def values_of(path):
    """The chart's default values with the variant's merged in (maps merge, others replace)."""
    base = yaml.safe_load(open(os.path.join(CHART, "values.yaml"), encoding="utf-8"))

    def merge(a, b):
        for k, v in (b or {}).items():
            if isinstance(v, dict) and isinstance(a.get(k), dict):
                merge(a[k], v)
            else:
                a[k] = v
        return a
    if path:
        merge(base, yaml.safe_load(open(path, encoding="utf-8")))
    return base


# ---- what a render must say ----------------------------------------------------------------------

def conf_lines(text):
    """The ConfigMap's classiclink-worker.conf as {key: value}."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def container_of(workload):
    containers = workload["spec"]["template"]["spec"]["containers"]
    return containers[0] if len(containers) == 1 else None


def env_map(container):
    return {e["name"]: e for e in container.get("env") or []}


def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def semantic_problems(r, values, facts):
    """Everything wrong with one render, as a list of strings (empty: fine)."""
    p = []
    w = r.workload()
    if w is None:
        return ["not exactly one StatefulSet or Deployment"]
    if w["kind"] != values["workload"]:
        p.append("workload is a %s, values ask for %s" % (w["kind"], values["workload"]))
    spec = w["spec"]
    pod = spec["template"]["spec"]
    c = container_of(w)
    if c is None:
        return p + ["not exactly one container"]
    labels = spec["template"]["metadata"].get("labels") or {}
    if not labels_match(spec["selector"].get("matchLabels"), labels):
        p.append("the workload's selector does not match its pod labels")
    cm = [o for o in r.kind("ConfigMap") if "classiclink-worker.conf" in (o.get("data") or {})]
    if len(cm) != 1:
        return p + ["not exactly one ConfigMap with classiclink-worker.conf"]
    conf = conf_lines(cm[0]["data"]["classiclink-worker.conf"])

    # Command, configuration, port and probes against the image.
    cmd = (c.get("command") or []) + (c.get("args") or [])
    if not cmd or cmd[0] != facts["binary"]:
        p.append("command %r does not start with the image's binary %s" % (cmd[:1], facts["binary"]))
    if facts["entrypoint"] and cmd and os.path.basename(cmd[0]) != facts["entrypoint"][0]:
        p.append("command %s is not the image's entrypoint %r" % (cmd[0], facts["entrypoint"]))
    if "-c" not in cmd or cmd[cmd.index("-c") + 1] != facts["config"]:
        p.append("-c is not the image's configuration path %s" % facts["config"])
    mounts = {m["name"]: m for m in c.get("volumeMounts") or []}
    vols = {v["name"]: v for v in pod.get("volumes") or []}
    cfg_dir = os.path.dirname(facts["config"])
    cfg_mount = [m for m in mounts.values() if m["mountPath"] == cfg_dir]
    if not cfg_mount or "configMap" not in vols.get(cfg_mount[0]["name"], {}) or \
            vols[cfg_mount[0]["name"]]["configMap"]["name"] != cm[0]["metadata"]["name"]:
        p.append("the ConfigMap is not mounted at %s" % cfg_dir)
    elif not cfg_mount[0].get("readOnly"):
        p.append("the configuration is mounted writable")
    ports = {q["name"]: q["containerPort"] for q in c.get("ports") or []}
    if ports.get("ops") != facts["port"]:
        p.append("container port ops %r is not the image's EXPOSE %r" % (ports.get("ops"), facts["port"]))
    if conf.get("metrics.listen") != ":%d" % facts["port"]:
        p.append("metrics.listen %r does not listen on all addresses at port %d"
                 % (conf.get("metrics.listen"), facts["port"]))
    for probe, path in (("startupProbe", facts["health_path"]), ("livenessProbe", facts["health_path"]),
                        ("readinessProbe", "/readyz")):
        get = (c.get(probe) or {}).get("httpGet") or {}
        if get.get("path") != path or ports.get(get.get("port")) != facts["port"]:
            p.append("%s is %r on %r, not %s on the ops port" % (probe, get.get("path"), get.get("port"), path))

    # Drain: SIGKILL only after the preStop, the drain, the final commit and flush.
    drain_s = -(-int(conf.get("worker.shutdown_timeout_ms", "20000")) // 1000)
    pre = ((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds", 0)
    if (c.get("lifecycle") or {}).get("preStop") and "sleep" not in c["lifecycle"]["preStop"]:
        p.append("a preStop other than a sleep")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace < drain_s + 10 + pre:
        p.append("terminationGracePeriodSeconds %d < drain %d s + commit/flush 10 s + preStop %d s"
                 % (grace, drain_s, pre))

    # Hardening.
    psc = pod.get("securityContext") or {}
    csc = c.get("securityContext") or {}
    if not psc.get("runAsNonRoot") or psc.get("runAsUser") != facts["uid"] or psc.get("runAsGroup") != facts["gid"]:
        p.append("the pod does not run as the image's non-root user %s:%s" % (facts["uid"], facts["gid"]))
    if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        p.append("seccomp is not RuntimeDefault")
    if not csc.get("readOnlyRootFilesystem") or csc.get("allowPrivilegeEscalation") is not False \
            or (csc.get("capabilities") or {}).get("drop") != ["ALL"] or csc.get("privileged"):
        p.append("the container is not hardened (read-only root, no escalation, drop ALL)")
    if pod.get("automountServiceAccountToken") is not False:
        p.append("the pod mounts a Kubernetes API token")
    sa = r.one("ServiceAccount")
    if sa is not None:
        if sa.get("automountServiceAccountToken") is not False:
            p.append("the ServiceAccount automounts its token")
        if pod.get("serviceAccountName") != sa["metadata"]["name"]:
            p.append("the pod does not use the chart's ServiceAccount")
    res = c.get("resources") or {}
    if not (res.get("requests") or {}).get("memory") or not (res.get("limits") or {}).get("memory"):
        p.append("no memory request and limit")

    # Static membership (and exactly-once's transactional.id) from the pod name.
    env = env_map(c)
    args = " ".join(cmd)
    pod_name = (env.get("POD_NAME") or {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    has_static = "kafka.consumer.group.instance.id=" in args
    if w["kind"] == "StatefulSet":
        if values["staticMembership"]["enabled"] and not (
                has_static and "$(POD_NAME)" in args and pod_name == "metadata.name"):
            p.append("a StatefulSet without group.instance.id from the pod name")
        svc = r.one("Service")
        if svc is None or spec.get("serviceName") != svc["metadata"]["name"] or \
                svc["spec"].get("clusterIP") != "None":
            p.append("the StatefulSet's serviceName is not the chart's headless Service")
    elif has_static:
        p.append("a Deployment with static membership (its pod names change at every restart)")
    if values["config"].get("delivery.mode") == "exactly_once" and \
            "kafka.producer.transactional.id=" not in args:
        p.append("exactly-once without a transactional.id from the pod name")

    # Credentials.
    src = values["credentials"]["source"]
    oidc = values["credentials"]["oidc"]
    tke = {n for n in env if n.startswith("TKE_")}
    keys = {n for n in env if n.startswith("TENCENTCLOUD_")}
    if src == "secret":
        ref = lambda n: (env.get(n) or {}).get("valueFrom", {}).get("secretKeyRef", {})
        if not (ref("TENCENTCLOUD_SECRET_ID").get("name") and ref("TENCENTCLOUD_SECRET_KEY").get("name")) or tke:
            p.append("credentials.source=secret without both keys from the Secret")
    elif src == "oidc" and not oidc["injectedByWebhook"]:
        tf = (env.get("TKE_WEB_IDENTITY_TOKEN_FILE") or {}).get("value", "")
        vol = [v for v in vols.values()
               if any("serviceAccountToken" in s for s in (v.get("projected") or {}).get("sources", []))]
        mount = [m for m in mounts.values() if vol and m["name"] == vol[0]["name"]]
        token = vol[0]["projected"]["sources"][0]["serviceAccountToken"] if vol else {}
        if tke != {"TKE_REGION", "TKE_PROVIDER_ID", "TKE_ROLE_ARN", "TKE_WEB_IDENTITY_TOKEN_FILE"} or keys:
            p.append("OIDC without exactly the four TKE_* variables")
        if not mount or tf != os.path.join(mount[0]["mountPath"], token.get("path", "")) \
                or token.get("audience") != oidc["audience"]:
            p.append("TKE_WEB_IDENTITY_TOKEN_FILE is not the projected token for %s" % oidc["audience"])
    elif src == "oidc":
        ann = (sa or {}).get("metadata", {}).get("annotations") or {}
        if tke or keys or ann.get("tke.cloud.tencent.com/role-arn") != oidc["roleArn"]:
            p.append("webhook OIDC: the ServiceAccount must carry the role and the pod no TKE_* or keys")
    elif src == "cvmRole":
        if tke or keys:
            p.append("credentials.source=cvmRole with credential variables")
        if values["credentials"]["cvmRole"]["roleName"] and \
                conf.get("api.role_name") != values["credentials"]["cvmRole"]["roleName"]:
            p.append("api.role_name is not the values' cvmRole.roleName")

    # Replicas, PDB, monitors, KEDA.
    pdb = r.one("PodDisruptionBudget")
    if values["podDisruptionBudget"]["enabled"] and (
            pdb is None or not labels_match(pdb["spec"]["selector"]["matchLabels"], labels)):
        p.append("no PodDisruptionBudget selecting the pods")
    pm = r.one("PodMonitor")
    if values["podMonitor"]["enabled"] and (
            pm is None or not labels_match(pm["spec"]["selector"]["matchLabels"], labels)
            or pm["spec"]["podMetricsEndpoints"][0].get("port") not in ports):
        p.append("the PodMonitor does not select the pods' ops port")
    sm = r.one("ServiceMonitor")
    svc = r.one("Service")
    if values["serviceMonitor"]["enabled"] and (
            sm is None or svc is None
            or not labels_match(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"])
            or sm["spec"]["endpoints"][0].get("port") not in [q["name"] for q in svc["spec"]["ports"]]):
        p.append("the ServiceMonitor does not select the Service's ops port")
    if svc is not None and not labels_match(svc["spec"]["selector"], labels):
        p.append("the Service does not select the pods")
    so = r.one("ScaledObject")
    if values["keda"]["enabled"]:
        parts = values["requestsTopicPartitions"]
        trig = (so or {}).get("spec", {}).get("triggers") or [{}]
        meta = trig[0].get("metadata") or {}
        if so is None or so["spec"]["maxReplicaCount"] > parts \
                or so["spec"]["scaleTargetRef"] != {"apiVersion": "apps/v1", "kind": w["kind"],
                                                    "name": w["metadata"]["name"]}:
            p.append("the ScaledObject does not scale the workload up to at most %d" % parts)
        if trig[0].get("type") != "kafka" or meta.get("allowIdleConsumers") != "false" or \
                meta.get("consumerGroup") != conf.get("kafka.group.id", "classiclink-worker") or \
                meta.get("topic") != conf.get("topic.requests", "classiclink.requests"):
            p.append("the kafka trigger does not watch the worker's group and topic without idle consumers")
        if "replicas" in spec:
            p.append("replicas set on a workload KEDA scales")
    elif so is not None or spec.get("replicas") != values["replicaCount"]:
        p.append("replicas is not replicaCount")
    return p


def mutated(render, fn):
    """A deep copy of the render with fn applied to its workload."""
    r = copy.deepcopy(render)
    fn(r.workload())
    return r


# ---- the worker accepts what the chart renders -----------------------------------------------------

def pod_run(r, values, tmp):
    """argv and environment the rendered pod would run the worker with, on this machine: the
    configuration written to a file, $(VAR) references expanded, Secret references given fake
    values, the projected token a file in tmp."""
    w = r.workload()
    c = container_of(w)
    cm = [o for o in r.kind("ConfigMap") if "classiclink-worker.conf" in (o.get("data") or {})][0]
    conf_path = os.path.join(tmp, "classiclink-worker.conf")
    with open(conf_path, "w", encoding="utf-8") as f:
        f.write(cm["data"]["classiclink-worker.conf"])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp}
    for e in c.get("env") or []:
        vf = e.get("valueFrom") or {}
        if "value" in e:
            env[e["name"]] = e["value"]
        elif vf.get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[e["name"]] = w["metadata"]["name"] + "-0"
        elif "secretKeyRef" in vf:
            env[e["name"]] = "AKIDchartCheck000000000000000000001" if e["name"].endswith("_ID") else "chartCheckKey"
    tokdir = values["credentials"]["oidc"]["tokenDir"]
    if "TKE_WEB_IDENTITY_TOKEN_FILE" in env:
        env["TKE_WEB_IDENTITY_TOKEN_FILE"] = env["TKE_WEB_IDENTITY_TOKEN_FILE"].replace(tokdir, tmp)
        with open(env["TKE_WEB_IDENTITY_TOKEN_FILE"], "w", encoding="utf-8") as f:
            f.write("eyJhbGciOiJSUzI1NiJ9.chartCheckToken\n")
    args = []
    for a in (c.get("command") or [])[1:] + (c.get("args") or []):
        a = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), a)
        args.append(conf_path if a == "/etc/classiclink-worker/classiclink-worker.conf" else a)
    return args, env


def check_worker_accepts(renders, worker, build):
    import simlib  # the project's simulator driver (tests/integration)
    role = "classiclink-worker"
    provider = "cls-abcd1234"
    for name, values, r in renders:
        with tempfile.TemporaryDirectory(prefix="check-deploy-") as tmp:
            args, env = pod_run(r, values, tmp)
            src = values["credentials"]["source"]
            oidc = values["credentials"]["oidc"]
            sim = None
            extra = []
            want = "# credentials: keys (api.secret_id, api.secret_key)"
            if src == "oidc" and oidc["injectedByWebhook"]:
                # What the webhook injects, as the chart's own mode renders it.
                env.update({"TKE_REGION": "ap-guangzhou", "TKE_PROVIDER_ID": provider,
                            "TKE_ROLE_ARN": oidc["roleArn"],
                            "TKE_WEB_IDENTITY_TOKEN_FILE": os.path.join(tmp, "token")})
                with open(env["TKE_WEB_IDENTITY_TOKEN_FILE"], "w", encoding="utf-8") as f:
                    f.write("eyJhbGciOiJSUzI1NiJ9.chartCheckToken\n")
            if src == "oidc":
                sim = simlib.Sim().start(extra_args=[
                    "--oidc-token-file", env["TKE_WEB_IDENTITY_TOKEN_FILE"],
                    "--oidc-provider-id", env["TKE_PROVIDER_ID"], "--oidc-role-arn", env["TKE_ROLE_ARN"]])
                extra = ["-X", "api.sts_endpoint=%s/" % sim.url]
                want = "# credentials: OIDC role %s" % env["TKE_ROLE_ARN"]
            elif src == "cvmRole":
                sim = simlib.Sim().start(extra_args=["--cvm-role", role])
                extra = ["-X", "api.metadata_endpoint=%s/latest/meta-data/cam/security-credentials/" % sim.url]
                want = "# credentials: CVM role %s" % (values["credentials"]["cvmRole"]["roleName"] or role)
            try:
                res = run([worker] + args + extra + ["--check-config"], env=env, timeout=60)
            finally:
                if sim is not None:
                    sim.stop()
            out = res.stdout + res.stderr
            first = res.stdout.splitlines()[0] if res.stdout else ""
            pod = r.workload()["metadata"]["name"] + "-0"
            check(res.returncode == 0 and first.startswith(want),
                  "%s: the worker accepts the rendered configuration, -X arguments and "
                  "environment (--check-config: %s)" % (name, first or "no output"),
                  out[-600:])
            keys = [a.split("=", 1)[0] for i, a in enumerate(args) if i and args[i - 1] == "-X"]
            lines = res.stdout.splitlines()
            unused = [k for k in keys
                      if not any(l.startswith(k + " = ") and l.endswith("# -X") for l in lines)]
            if keys:
                check(not unused, "%s: the worker takes every -X of the pod (%s)" % (
                    name, ", ".join(keys)), "not from -X: %s" % unused)
            if r.workload()["kind"] == "StatefulSet":
                want_id = "kafka.consumer.group.instance.id = %s%s  # -X" % (
                    values["staticMembership"]["prefix"], pod)
                check(want_id in res.stdout.splitlines(),
                      "%s: the worker's group.instance.id is the pod name (%s)" % (name, want_id),
                      res.stdout[-400:])


def check_read_only_root(build):
    """readOnlyRootFilesystem holds for the worker: tests/integration/test_deploy_metrics.py (API
    calls, a dead letter, temporary credentials, metrics) with the worker in a mount namespace of
    its own whose root file system is remounted read-only."""
    if os.geteuid() != 0:
        print("check-deploy: note  not root: the worker was not run on a read-only root file system")
        return
    # The worker never starts when the remount did not make / read-only (the probe write works).
    wrapper = ("unshare --mount --propagation private -- sh -c 'mount -o remount,bind,ro / && "
               "! touch /.clw-read-only-probe 2>/dev/null && exec \"$@\"' sh")
    env = dict(os.environ, CLW_WORKER_WRAPPER=wrapper, CLW_BUILD_DIR=os.path.abspath(build))
    res = run([sys.executable, os.path.join(REPO, "tests", "integration", "test_deploy_metrics.py")],
              env=env, timeout=600)
    check(res.returncode == 0, "the worker runs on a read-only root file system "
          "(test_deploy_metrics.py, / remounted read-only)", (res.stdout + res.stderr)[-1500:])


# ---- alert rules and dashboard ------------------------------------------------------------------------

def metric_names(text):
    """classiclink_* metric families named in PromQL text (histogram suffixes removed)."""
    names = set(re.findall(r"\bclassiclink_[a-z0-9_]+", text))
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}


def anchor(heading):
    """GitHub's anchor of a Markdown heading."""
    h = heading.strip().lower().replace("`", "")
    h = re.sub(r"[^\w\- ]", "", h)
    return h.replace(" ", "-")


def check_rules(helm):
    res = run(["promtool", "check", "rules", RULES])
    check(res.returncode == 0, "promtool check rules %s (%s)" % (
        os.path.relpath(RULES, REPO), res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""),
        res.stdout + res.stderr)
    res = run(["promtool", "test", "rules", os.path.basename(RULE_TESTS)], cwd=os.path.dirname(RULE_TESTS))
    check(res.returncode == 0 and "SUCCESS" in res.stdout, "promtool test rules %s" % os.path.relpath(RULE_TESTS, REPO),
          res.stdout[-2000:] + res.stderr)

    rules = yaml.safe_load(open(RULES, encoding="utf-8"))
    tests = yaml.safe_load(open(RULE_TESTS, encoding="utf-8"))
    alerts = [rule for g in rules["groups"] for rule in g["rules"] if "alert" in rule]
    docs = open(OPERATIONS, encoding="utf-8").read()
    headings = {anchor(m.group(1)): m.group(1) for m in re.finditer(r"^#{2,6} (.+)$", docs, re.M)}
    for a in alerts:
        name = a["alert"]
        # A test group for it expects it to fire for some series and has other series too.
        fired = [t for t in tests["tests"] for at in t.get("alert_rule_test", [])
                 if at["alertname"] == name and at.get("exp_alerts")]
        def identities(t):
            return {tuple(sorted((k, v) for k, v in re.findall(r'(\w+)="([^"]*)"', s["series"])
                                 if k not in ("reason", "status", "error_class", "code", "class", "action")))
                    for s in t["input_series"]}
        quiet_series = [t for t in fired
                        if len(identities(t)) > max(len(at["exp_alerts"]) for at in t["alert_rule_test"]
                                                    if at["alertname"] == name)]
        check(bool(fired) and bool(quiet_series),
              "alert %s: a promtool test with a firing series and one that does not fire" % name)
        url = (a.get("annotations") or {}).get("runbook_url", "")
        frag = url.split("#", 1)[1] if "#" in url else ""
        check(url == "docs/operations.md#" + name.lower() and headings.get(frag) == name,
              "alert %s: runbook_url %s names its heading in docs/operations.md" % (name, url))

    # The chart's PrometheusRule carries the file's groups, links made absolute.
    base = "https://runbooks.example/"
    res = helm_template(helm, sets=["prometheusRule.enabled=true", "prometheusRule.runbookBaseUrl=" + base])
    pr = Render("prometheusRule", res.stdout).one("PrometheusRule") if res.returncode == 0 else None
    want = copy.deepcopy(rules["groups"])
    for g in want:
        for rule in g["rules"]:
            if "runbook_url" in rule.get("annotations", {}):
                rule["annotations"]["runbook_url"] = base + rule["annotations"]["runbook_url"]
    check(pr is not None and pr["spec"]["groups"] == want,
          "the chart's PrometheusRule has the groups of %s" % os.path.relpath(RULES, REPO))
    return alerts


def check_dashboard(tmp):
    d = json.load(open(DASHBOARD, encoding="utf-8"))
    panels = d.get("panels") or []
    ids = [p.get("id") for p in panels]
    targets = [(p, t) for p in panels if p.get("type") != "row" for t in p.get("targets") or []]
    shaped = (d.get("uid") and d.get("title") and len(ids) == len(set(ids)) and
              all(p.get("type") == "row" or (p.get("targets") and p.get("datasource", {}).get("uid") == "${datasource}")
                  for p in panels) and
              all(0 <= p["gridPos"]["x"] and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in panels) and
              any(v.get("type") == "datasource" and v.get("name") == "datasource"
                  for v in d.get("templating", {}).get("list", [])))
    check(shaped, "dashboard %s: unique panel ids, every panel queries ${datasource}, fits 24 columns "
          "(%d panels, %d queries)" % (os.path.relpath(DASHBOARD, REPO), len(panels), len(targets)))
    # Every query, variables replaced, must parse: promtool checks them as recording rules.
    subst = {"$__rate_interval": "5m", "$namespace": ".*", "$job": ".*", "$pod": ".*"}
    recs = []
    for i, (p, t) in enumerate(targets):
        expr = t["expr"]
        for k, v in subst.items():
            expr = expr.replace(k, v)
        recs.append({"record": "dashboard:query_%d" % i, "expr": expr})
    path = os.path.join(tmp, "dashboard-queries.rules.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recs}]}, f)
    res = run(["promtool", "check", "rules", path])
    check(res.returncode == 0 and len(recs) > 0, "every dashboard query parses (promtool, %d queries)" % len(recs),
          res.stdout + res.stderr)
    return " ".join(t["expr"] for _, t in targets)


# ---- main ---------------------------------------------------------------------------------------------

def main():
    helm, validator, build = sys.argv[1:4]
    worker = os.path.join(build, "src", "classiclink-worker")
    os.environ["CLW_BUILD_DIR"] = build  # simlib finds vpc-sim there
    facts = dockerfile_facts()
    check(all(facts.get(k) for k in ("binary", "config", "uid", "port", "health_path", "entrypoint")) and
          facts["port"] == facts["health_port"] == facts["listen_port"],
          "docker/Dockerfile: binary %s, configuration %s, user %s, port %s = HEALTHCHECK port = its "
          "metrics.listen, health path %s" % (facts.get("binary"), facts.get("config"), facts.get("uid"),
                                              facts.get("port"), facts.get("health_path")))
    img = image_config()
    if img is None:
        print("check-deploy: note  podman has no image %s (scripts/check-container builds it): "
              "checked against docker/Dockerfile only" % IMAGE)
    else:
        cfg = img.get("Config") or {}
        hc = " ".join((img.get("Healthcheck") or cfg.get("Healthcheck") or {}).get("Test") or [])
        path_env = dict(e.split("=", 1) for e in cfg.get("Env") or []).get("PATH", "")
        check(cfg.get("Entrypoint") == facts["entrypoint"] and
              "%d/tcp" % facts["port"] in (cfg.get("ExposedPorts") or {}) and
              cfg.get("User") == "%d:%d" % (facts["uid"], facts["gid"]) and
              facts["health_path"] in hc and os.path.dirname(facts["binary"]) in path_env.split(":"),
              "image %s: entrypoint %s on PATH, port %d, user %d:%d, healthcheck %s (podman image inspect)"
              % (IMAGE, cfg.get("Entrypoint"), facts["port"], facts["uid"], facts["gid"], facts["health_path"]))
        # The files the pods use, in the image's file system.
        mnt = run(["podman", "image", "mount", IMAGE], timeout=60)
        if check(mnt.returncode == 0, "podman image mount %s" % IMAGE, mnt.stderr):
            try:
                root = mnt.stdout.strip()
                binary = os.path.join(root, facts["binary"].lstrip("/"))
                check(os.path.isfile(binary) and os.access(binary, os.X_OK) and
                      os.path.isdir(os.path.join(root, os.path.dirname(facts["config"]).lstrip("/"))),
                      "image %s holds the binary %s and the directory %s the chart mounts over"
                      % (IMAGE, facts["binary"], os.path.dirname(facts["config"])))
            finally:
                run(["podman", "image", "unmount", IMAGE], timeout=60)

    cmake = open(os.path.join(REPO, "CMakeLists.txt"), encoding="utf-8").read()
    version = re.search(r"project\(classiclink-worker VERSION (\S+)", cmake).group(1)
    chart = yaml.safe_load(open(os.path.join(CHART, "Chart.yaml"), encoding="utf-8"))
    check(chart["appVersion"] == version, "Chart.yaml appVersion %s is the worker's version %s"
          % (chart["appVersion"], version))

    renders = []
    kinds = set()
    with tempfile.TemporaryDirectory(prefix="check-deploy-") as tmp:
        for name, path in variants():
            lint = run([helm, "lint", "--strict", CHART] + (["-f", path] if path else []))
            check(lint.returncode == 0, "%s: helm lint --strict" % name, quiet(lint.stdout + lint.stderr)[-1500:])
            res = helm_template(helm, path)
            if not check(res.returncode == 0, "%s: helm template" % name, quiet(res.stderr)[-1500:]):
                continue
            out = os.path.join(tmp, name + ".yaml")
            with open(out, "w", encoding="utf-8") as f:
                f.write(res.stdout)
            v = run([validator, out])
            last = v.stdout.strip().splitlines()[-1] if v.stdout.strip() else ""
            check(v.returncode == 0, "%s: strict decoding (%s)" % (name, last), v.stdout[-1500:] + v.stderr)
            r = Render(name, res.stdout)
            values = values_of(path)
            problems = semantic_problems(r, values, facts)
            kinds |= {o["kind"] for o in r.objects}
            check(not problems, "%s: %d objects (%s) say what the values ask" % (
                name, len(r.objects), ", ".join(sorted({o["kind"] for o in r.objects}))), "; ".join(problems))
            renders.append((name, values, r))
        check({"StatefulSet", "Deployment", "PodDisruptionBudget", "PodMonitor", "ServiceMonitor",
               "PrometheusRule", "ScaledObject", "ConfigMap", "Service", "ServiceAccount"} <= kinds,
              "the variants render every kind the chart offers (%s)" % ", ".join(sorted(kinds)))

        # Refusals. (helm lint renders with fail and required made harmless, so the chart's own
        # refusals show in helm template, as in helm install; the schema's in both.)
        lint = run([helm, "lint", "--strict", CHART, "--set", "keda.enabeld=true"])
        check(lint.returncode != 0 and "enabeld" in lint.stdout + lint.stderr,
              "helm lint --strict refuses a misspelt values key (values.schema.json)")
        for what, sets in (
                ("a misspelt values key", ["keda.enabeld=true"]),
                ("a grace period shorter than the drain", ["terminationGracePeriodSeconds=20"]),
                ("KEDA above the partition count", ["keda.enabled=true", "keda.maxReplicaCount=13"]),
                ("metrics.listen in config", ["config.metrics\\.listen=127.0.0.1:9464"]),
                ("group.instance.id in config", ["config.kafka\\.consumer\\.group\\.instance\\.id=x"]),
                ("exactly-once on a Deployment", ["workload=Deployment", "config.delivery\\.mode=exactly_once"]),
                ("OIDC without a role", ["credentials.source=oidc", "credentials.oidc.region=ap-guangzhou",
                                         "credentials.oidc.providerId=p"]),
                ("an unknown credentials source", ["credentials.source=keys"])):
            res = helm_template(helm, sets=sets)
            err = [l for l in res.stderr.splitlines() if l.startswith("Error:")] or ["?"]
            check(res.returncode != 0, "helm template refuses %s (%s)" % (what, err[0][:160]))
        default = renders[0][2]
        bad = os.path.join(tmp, "misspelt.yaml")
        with open(bad, "w", encoding="utf-8") as f:
            f.write(default.text.replace("terminationGracePeriodSeconds:", "terminationGracePeriodSecond:", 1))
        v = run([validator, bad])
        check(v.returncode != 0 and "terminationGracePeriodSecond" in v.stdout,
              "the validator rejects a misspelt field (spec.template.spec.terminationGracePeriodSecond)")
        with open(bad, "w", encoding="utf-8") as f:
            f.write(default.text.replace("kind: PodDisruptionBudget", "kind: PodDisruptionBudgets", 1))
        check(run([validator, bad]).returncode != 0, "the validator rejects a kind it does not know")
        dv = values_of(None)
        for what, fn in (
                ("a probe on another path", lambda w: w["spec"]["template"]["spec"]["containers"][0]
                 ["livenessProbe"]["httpGet"].update(path="/health")),
                ("another binary", lambda w: w["spec"]["template"]["spec"]["containers"][0]
                 .update(command=["/usr/local/bin/classiclink-worker"])),
                ("a grace period of 25 s", lambda w: w["spec"]["template"]["spec"]
                 .update(terminationGracePeriodSeconds=25)),
                ("a writable root file system", lambda w: w["spec"]["template"]["spec"]["containers"][0]
                 ["securityContext"].update(readOnlyRootFilesystem=False)),
                ("no static membership", lambda w: w["spec"]["template"]["spec"]["containers"][0]
                 .update(args=["-c", "/etc/classiclink-worker/classiclink-worker.conf"]))):
            check(semantic_problems(mutated(default, fn), dv, facts),
                  "these checks reject a render with %s" % what)

        check_worker_accepts(renders, worker, build)
        check_read_only_root(build)
        alerts = check_rules(helm)
        dash_text = check_dashboard(tmp)

    names = metric_names(" ".join(str(a["expr"]) for a in alerts) + " " + dash_text)
    docs = open(OPERATIONS, encoding="utf-8").read()
    table = set(re.findall(r"^\| `(classiclink_[a-z0-9_]+)` \|", docs, re.M))
    check(names <= table, "docs/operations.md's metrics table lists every metric of the rules and the "
          "dashboard (%d)" % len(names), sorted(names - table))

    print("check-deploy: %d passed, %d failed" % (len(PASSED), len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
