"""Packaging checks without Docker or systemd: image, compose stack, unit, install tree, docs."""

import base64
import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kafkalib  # noqa: E402
import schemalib  # noqa: E402

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the machine
    yaml = None

SRC = schemalib.source_dir()
BUILD = kafkalib.build_dir()
DOCKER = os.path.join(SRC, "docker")
WORKER = os.path.join(BUILD, "src", "classiclink-worker")
SIM = os.path.join(BUILD, "tools", "vpc-sim", "vpc-sim")

# Debian 12 runtime packages of the image and what they provide.
RUNTIME_PACKAGES = {"librdkafka1", "libcurl4", "libcjson1", "libssl3", "libmicrohttpd12",
                    "ca-certificates"}
# Hardening the systemd unit must keep (key -> expected value; None = present, any value).
UNIT_HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "CapabilityBoundingSet": "",
    "KillSignal": "SIGTERM",
    "Type": "simple",
    "Restart": "on-failure",
    "User": "classiclink",
}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


# ---- Dockerfile -----------------------------------------------------------------------------

def dockerfile_instructions(path):
    """[(stage_index, INSTRUCTION, argument text)] with continuation lines joined and comments
    dropped; stage_index counts FROM lines from 0."""
    out = []
    stage = -1
    pending = ""
    for line in read(path).splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        word, _, arg = text.partition(" ")
        word = word.upper()
        if word == "FROM":
            stage += 1
        out.append((stage, word, arg.strip()))
    return out


def stage_of(instrs, name):
    for stage, word, arg in instrs:
        if word == "FROM" and arg.split()[-1] == name and " AS " in arg.upper():
            return stage
    raise AssertionError("no stage named %s" % name)


def sed_expression(instrs, stage):
    """(pattern, replacement) of the `sed -i 's/PATTERN/REPL/'` the runtime stage runs on the
    configuration."""
    for st, word, arg in instrs:
        if st == stage and word == "RUN" and "sed -i" in arg:
            m = re.search(r"sed -i '(s/(.*?)/(.*?)/)'", arg)
            if m:
                return m.group(2), m.group(3)
    raise AssertionError("no sed -i 's/.../.../' in the runtime stage")


def container_config(tmp):
    """The image's /etc/classiclink-worker/classiclink-worker.conf, built like the Dockerfile
    builds it (the sed substitution applied to conf/classiclink-worker.conf)."""
    instrs = dockerfile_instructions(os.path.join(DOCKER, "Dockerfile"))
    pattern, repl = sed_expression(instrs, stage_of(instrs, "runtime"))
    # sed's basic regular expressions: the expression uses only ^, $, '.' and literals.
    regex = re.compile(pattern)
    lines = read(os.path.join(SRC, "conf", "classiclink-worker.conf")).split("\n")
    changed = [i for i, line in enumerate(lines) if regex.search(line)]
    if len(changed) != 1:
        raise AssertionError("the Dockerfile's sed expression matches %d lines of "
                             "conf/classiclink-worker.conf, not 1" % len(changed))
    lines[changed[0]] = regex.sub(repl, lines[changed[0]])
    path = os.path.join(tmp, "classiclink-worker.conf")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return path, lines[changed[0]]


def needed_libraries(binary):
    res = subprocess.run(["objdump", "-p", binary], capture_output=True, text=True, check=True)
    return re.findall(r"^\s*NEEDED\s+(\S+)", res.stdout, re.M)


def package_of_library(soname):
    """Debian package that ships soname, through ldconfig and dpkg -S (merged /usr aware)."""
    res = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True)
    m = re.search(r"^\s*%s\s.*=>\s*(\S+)$" % re.escape(soname), res.stdout, re.M)
    if not m:
        return None
    path = os.path.realpath(m.group(1))
    candidates = [m.group(1), path]
    for p in list(candidates):
        if p.startswith("/usr/"):
            candidates.append(p[4:])
        else:
            candidates.append("/usr" + p)
    for p in candidates:
        res = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if res.returncode == 0:
            return res.stdout.split(":")[0].strip()
    return None


class Dockerfile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.path = os.path.join(DOCKER, "Dockerfile")
        cls.instrs = dockerfile_instructions(cls.path)
        cls.build = stage_of(cls.instrs, "build")
        cls.runtime = stage_of(cls.instrs, "runtime")

    def of(self, stage, word):
        return [arg for st, w, arg in self.instrs if st == stage and w == word]

    def test_starts_with_purpose_comment(self):
        self.assertTrue(read(self.path).startswith("# "))

    def test_build_stage_runs_the_readme_scripts(self):
        self.assertEqual(self.of(self.build, "FROM"), ["debian:bookworm AS build"])
        workdir = self.of(self.build, "WORKDIR")[-1]
        self.assertIn(". " + workdir, self.of(self.build, "COPY"))
        runs = " && ".join(self.of(self.build, "RUN"))
        steps = [s.strip() for s in runs.split("&&")]
        # The README's commands, unchanged: scripts/deps, then scripts/build with no arguments
        # (so the binaries land in build/, where the README says they are).
        self.assertIn("scripts/deps", steps)
        self.assertIn("scripts/build", steps)
        self.assertLess(steps.index("scripts/deps"), steps.index("scripts/build"))
        readme = read(os.path.join(SRC, "README.md"))
        self.assertIn("scripts/deps", readme)
        self.assertRegex(readme, r"(?m)^scripts/build\s")
        for rel in ("build/src/classiclink-worker", "build/tools/vpc-sim/vpc-sim"):
            self.assertIn(rel, readme)

    def test_runtime_copies_what_the_build_produces(self):
        workdir = self.of(self.build, "WORKDIR")[-1].rstrip("/")
        copies = [arg.split() for arg in self.of(self.runtime, "COPY")]
        self.assertTrue(copies)
        seen = set()
        for parts in copies:
            self.assertEqual(parts[0], "--from=build", parts)
            src, dst = parts[1], parts[2]
            self.assertTrue(src.startswith(workdir + "/"), src)
            rel = src[len(workdir) + 1:]
            if rel.startswith("build/"):
                # The same path in this checkout's build directory holds a built binary.
                built = os.path.join(BUILD, rel[len("build/"):])
                self.assertTrue(os.access(built, os.X_OK), "%s: not built (%s)" % (src, built))
            else:
                self.assertTrue(os.path.isfile(os.path.join(SRC, rel)), src)
            seen.add(dst)
        self.assertEqual(seen, {"/usr/bin/classiclink-worker", "/usr/bin/vpc-sim",
                                "/etc/classiclink-worker/classiclink-worker.conf"})

    def test_runtime_stage_is_slim_non_root_with_healthcheck(self):
        self.assertEqual(self.of(self.runtime, "FROM"), ["debian:bookworm-slim AS runtime"])
        self.assertEqual(self.runtime, max(st for st, _, _ in self.instrs),
                         "the runtime stage must be the last (the default target)")
        users = self.of(self.runtime, "USER")
        self.assertTrue(users, "no USER in the runtime stage")
        user = users[-1].split(":")[0]
        self.assertNotIn(user, ("root", "0"))
        run = " ".join(self.of(self.runtime, "RUN"))
        self.assertRegex(run, r"useradd .*--uid %s\b" % re.escape(user))
        self.assertIn("9464", self.of(self.runtime, "EXPOSE"))
        self.assertEqual(self.of(self.runtime, "STOPSIGNAL"), ["SIGTERM"])
        entry = json.loads(self.of(self.runtime, "ENTRYPOINT")[-1])
        self.assertEqual(entry, ["classiclink-worker"])
        health = self.of(self.runtime, "HEALTHCHECK")
        self.assertEqual(len(health), 1)
        self.assertIn("/healthz", health[0])
        self.assertIn(" CMD curl ", " " + health[0])

    def runtime_packages(self):
        run = " ".join(self.of(self.runtime, "RUN"))
        m = re.search(r"apt-get install -y --no-install-recommends ([a-z0-9.+\- ]+?)(?:&&|$)",
                      run)
        self.assertIsNotNone(m, "no apt-get install in the runtime stage")
        return set(m.group(1).split())

    def test_runtime_packages(self):
        self.assertEqual(self.runtime_packages(), RUNTIME_PACKAGES | {"curl"})  # curl: HEALTHCHECK
        self.assertIn("rm -rf /var/lib/apt/lists/*", " ".join(self.of(self.runtime, "RUN")))

    def test_runtime_packages_cover_every_linked_library(self):
        if not shutil.which("dpkg") or not shutil.which("objdump"):
            self.skipTest("dpkg or objdump missing: cannot map libraries to packages")
        installed = self.runtime_packages() | {"libc6"}  # libc6: in every Debian image
        for binary in (WORKER, SIM):
            for soname in needed_libraries(binary):
                with self.subTest(binary=os.path.basename(binary), library=soname):
                    pkg = package_of_library(soname)
                    self.assertIsNotNone(pkg, "no package ships %s" % soname)
                    self.assertIn(pkg, installed,
                                  "%s comes from %s, which the image does not install"
                                  % (soname, pkg))

    def test_container_configuration_is_valid(self):
        with tempfile.TemporaryDirectory() as tmp:
            path, line = container_config(tmp)
            self.assertEqual(line, "metrics.listen = :9464")
            env = dict(compose_worker_env(), TENCENTCLOUD_SECRET_ID="AKIDx",
                       TENCENTCLOUD_SECRET_KEY="x")  # the compose stack's role needs its sim
            res = run_worker(["-c", path, "--check-config"], env=env)
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertRegex(res.stdout, r"(?m)^metrics\.listen = :9464\s+# %s:\d+$"
                             % re.escape(path))

    def test_dockerignore(self):
        # Build trees and the git directory stay out of the context; sources stay in.
        patterns = [p.strip() for p in read(os.path.join(SRC, ".dockerignore")).splitlines()
                    if p.strip() and not p.startswith("#")]
        import fnmatch

        def ignored(name):
            return any(fnmatch.fnmatch(name, p) for p in patterns)

        for name in ("build", "build-ci", "build-lead", ".git"):
            self.assertTrue(ignored(name), name)
        for name in sorted(os.listdir(SRC)):
            if name.startswith("build") or name in (".git", ".cache"):
                continue
            self.assertFalse(ignored(name), "%s would be left out of the image build" % name)


# ---- compose.yaml ---------------------------------------------------------------------------

def load_compose():
    if yaml is None:
        raise unittest.SkipTest("python3-yaml missing (run scripts/deps)")
    with open(os.path.join(DOCKER, "compose.yaml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


def option(args, name):
    """The value after name in an argument list (last occurrence)."""
    value = None
    for i, a in enumerate(args[:-1]):
        if a == name:
            value = args[i + 1]
    return value


def x_settings(args):
    """{key: value} of the -X key=value arguments."""
    out = {}
    for i, a in enumerate(args[:-1]):
        if a == "-X":
            key, _, value = args[i + 1].partition("=")
            out[key] = value
    return out


def compose_worker_env():
    env = dict(load_compose()["services"]["worker"]["environment"])
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    full.update({k: str(v) for k, v in env.items()})
    return full


def run_worker(args, env, timeout=30):
    return subprocess.run([WORKER] + args, capture_output=True, text=True, env=env,
                          timeout=timeout)


def host_path(container_path, service):
    """Maps a path inside a service's container to the bind-mounted file of this checkout."""
    for vol in service.get("volumes", []):
        src, dst = vol.split(":")[:2]
        if container_path == dst or container_path.startswith(dst.rstrip("/") + "/"):
            return os.path.normpath(os.path.join(DOCKER, src, container_path[len(dst):]
                                                 .lstrip("/")))
    return None


class Lines:
    """Collects a process's output lines on a thread; wait() blocks on a pattern."""

    def __init__(self, stream):
        self.q = queue.Queue()
        self.lines = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        for line in stream:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def wait(self, pattern, timeout_s=30.0):
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.q.get(timeout=max(left, 0.01))
            except queue.Empty:
                line = None
                left = 0
            if line is not None:
                self.lines.append(line)
                m = re.search(pattern, line)
                if m:
                    return m
                continue
            if left <= 0 or line is None:
                raise AssertionError("no line matching %r within %.0f s; got:\n%s"
                                     % (pattern, timeout_s, "\n".join(self.lines[-30:])))


class Compose(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.doc = load_compose()
        cls.services = cls.doc["services"]

    def test_starts_with_purpose_comment(self):
        self.assertTrue(read(os.path.join(DOCKER, "compose.yaml")).startswith("# "))

    def test_services_and_images(self):
        self.assertEqual(set(self.services),
                         {"kafka", "kafka-topics", "vpc-sim", "worker", "demo-requests"})
        self.assertEqual(self.services["kafka"]["image"], "apache/kafka:3.9.0")
        self.assertEqual(self.services["kafka-topics"]["image"], "apache/kafka:3.9.0")
        self.assertRegex(self.services["demo-requests"]["image"], r"^edenhill/kcat:\d+\.\d+\.\d+$")
        for name in ("vpc-sim", "worker"):
            svc = self.services[name]
            build = svc["build"]
            context = os.path.normpath(os.path.join(DOCKER, build["context"]))
            self.assertEqual(context, os.path.normpath(SRC), name)
            self.assertTrue(os.path.isfile(os.path.join(context, build["dockerfile"])))
        self.assertEqual(self.services["vpc-sim"]["image"], self.services["worker"]["image"])
        self.assertEqual(self.services["vpc-sim"]["entrypoint"], ["vpc-sim"])
        self.assertNotIn("entrypoint", self.services["worker"])  # the image's: the worker

    def test_no_top_level_name(self):
        # Debian 12's docker-compose (1.29, which scripts/check-container parses the file with)
        # rejects a top-level `name:`.
        self.assertEqual(set(self.doc) - {"services"},
                         {k for k in self.doc if k.startswith("x-")})

    def test_no_unintended_interpolation(self):
        # Compose substitutes $VAR and ${VAR} everywhere; this file needs none.
        text = read(os.path.join(DOCKER, "compose.yaml"))
        self.assertNotRegex(text.replace("$$", ""), r"\$")

    def test_kraft_single_node(self):
        env = self.services["kafka"]["environment"]
        self.assertEqual(set(env["KAFKA_PROCESS_ROLES"].split(",")), {"broker", "controller"})
        cluster = env["CLUSTER_ID"]
        self.assertEqual(len(base64.urlsafe_b64decode(cluster + "==")), 16, "CLUSTER_ID")
        self.assertEqual(len(cluster), 22)
        voter = env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
        self.assertEqual(voter.split("@")[0], str(env["KAFKA_NODE_ID"]))
        protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
                         .split(","))
        listeners = {l.split("://")[0]: l.split(":")[-1] for l in env["KAFKA_LISTENERS"]
                     .split(",")}
        self.assertEqual(set(listeners), set(protocols))
        self.assertEqual(voter.split(":")[-1], listeners[env["KAFKA_CONTROLLER_LISTENER_NAMES"]])
        advertised = env["KAFKA_ADVERTISED_LISTENERS"].split(",")
        # Every client in the stack uses the internal listener.
        internal = "kafka:%s" % listeners[env["KAFKA_INTER_BROKER_LISTENER_NAME"]]
        self.assertIn("PLAINTEXT://" + internal, advertised)
        worker_args = self.services["worker"]["command"]
        self.assertEqual(x_settings(worker_args)["kafka.bootstrap.servers"], internal)
        self.assertEqual(option(self.services["demo-requests"]["command"], "-b"), internal)
        self.assertIn("--bootstrap-server " + internal,
                      " ".join(self.services["kafka-topics"]["command"]))
        self.assertIn("localhost:9092", env["KAFKA_ADVERTISED_LISTENERS"])
        self.assertIn("127.0.0.1:9092:9092", self.services["kafka"]["ports"])

    def test_topics_match_the_worker_defaults(self):
        cmd = " ".join(self.services["kafka-topics"]["command"])
        topics = re.findall(r"--topic (\S+)", cmd)
        self.assertEqual(topics, ["classiclink.requests", "classiclink.results"])
        self.assertEqual(cmd.count("--if-not-exists"), 2)
        conf = read(os.path.join(SRC, "conf", "classiclink-worker.conf"))
        for topic in topics:
            self.assertIn("= " + topic, conf)

    def test_dependencies_and_healthchecks(self):
        for name, svc in self.services.items():
            for dep, cond in svc.get("depends_on", {}).items():
                with self.subTest(service=name, depends_on=dep):
                    self.assertIn(dep, self.services)
                    target = self.services[dep]
                    if cond["condition"] == "service_healthy":
                        self.assertIn("healthcheck", target)
                    else:
                        self.assertEqual(cond["condition"], "service_completed_successfully")
                        self.assertEqual(target.get("restart"), "no")
        worker = self.services["worker"]
        self.assertEqual(worker["depends_on"]["kafka-topics"]["condition"],
                         "service_completed_successfully",
                         "the worker exits 2 while the results topic is missing")
        # The simulator runs from the worker's image, whose HEALTHCHECK probes the worker: it
        # must bring its own.
        self.assertIn("/_sim/", " ".join(self.services["vpc-sim"]["healthcheck"]["test"]))
        self.assertEqual(self.services["vpc-sim"]["healthcheck"]["test"][:2], ["CMD", "curl"])
        self.assertNotIn("healthcheck", worker)  # the image's /healthz check applies

    def test_worker_reaches_the_simulator_on_loopback(self):
        worker, sim = self.services["worker"], self.services["vpc-sim"]
        self.assertEqual(worker["network_mode"], "service:vpc-sim")
        self.assertNotIn("ports", worker)  # a service in another's namespace publishes none
        self.assertIn("127.0.0.1:9464:9464", sim["ports"])
        endpoint = x_settings(worker["command"])["api.endpoint"]
        m = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/v2/index\.php", endpoint)
        self.assertIsNotNone(m, endpoint)
        self.assertEqual(option(sim["command"], "--listen"), "127.0.0.1:" + m.group(1))
        self.assertIn("127.0.0.1:%s/_sim/" % m.group(1), " ".join(sim["healthcheck"]["test"]))

    def test_worker_runs_on_the_simulators_cam_role(self):
        # The role-based way: no key in the worker's environment or arguments; the role the
        # simulator's metadata service hands out, on the simulator's address.
        sim = self.services["vpc-sim"]
        worker = self.services["worker"]
        env = worker["environment"]
        self.assertFalse([k for k in env if k.startswith("TENCENTCLOUD_SECRET")], env)
        settings = x_settings(worker["command"])
        self.assertFalse([k for k in settings if k.startswith("api.secret")], settings)
        self.assertEqual(settings["api.role_name"], option(sim["command"], "--cvm-role"))
        self.assertEqual(settings["api.metadata_endpoint"],
                         "http://%s/latest/meta-data/cam/security-credentials/" %
                         option(sim["command"], "--listen"))

    def test_mounted_files_exist(self):
        for name, svc in self.services.items():
            for vol in svc.get("volumes", []):
                src = vol.split(":")[0]
                with self.subTest(service=name, volume=vol):
                    self.assertTrue(src.startswith("./"), "bind mounts are relative")
                    self.assertTrue(os.path.exists(os.path.join(DOCKER, src)))
            for arg in svc.get("command", []) if isinstance(svc.get("command"), list) else []:
                if arg.startswith("/demo/"):
                    with self.subTest(service=name, file=arg):
                        path = host_path(arg, svc)
                        self.assertIsNotNone(path, "%s is not mounted" % arg)
                        self.assertTrue(os.path.isfile(path), path)

    def test_simulator_flags_exist(self):
        res = subprocess.run([SIM, "--help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(res.returncode, 0)
        for arg in self.services["vpc-sim"]["command"]:
            if arg.startswith("--"):
                with self.subTest(flag=arg):
                    self.assertRegex(res.stdout, r"(?m)^\s+%s(?=\s|$)" % re.escape(arg))

    def test_worker_settings_are_valid(self):
        # --check-config fetches the role's credentials to tell when they expire: the
        # simulator runs with its compose arguments (any free port).
        sim_svc = self.services["vpc-sim"]
        args = [host_path(a, sim_svc) if a.startswith("/demo/") else a
                for a in sim_svc["command"]]
        args[args.index("--listen") + 1] = "127.0.0.1:0"
        sim = subprocess.Popen([SIM] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
        try:
            port = Lines(sim.stdout).wait(r"listening on 127\.0\.0\.1:(\d+)").group(1)
            wargs = [a.replace(":8480/", ":%s/" % port) for a in self.services["worker"]["command"]]
            with tempfile.TemporaryDirectory() as tmp:
                conf, _ = container_config(tmp)
                res = run_worker(["-c", conf] + wargs + ["--check-config"],
                                 env=compose_worker_env())
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertIn("api.endpoint = http://127.0.0.1:", res.stdout)
            self.assertIn("# credentials: CVM role classiclink-worker", res.stdout)
        finally:
            sim.kill()
            sim.wait()
            sim.stdout.close()

    def test_stop_grace_covers_the_drain(self):
        grace = self.services["worker"]["stop_grace_period"]
        self.assertRegex(grace, r"^\d+s$")
        self.assertGreater(int(grace[:-1]) * 1000, default_shutdown_timeout_ms() + 5000)

    def test_demo_requests_file(self):
        svc = self.services["demo-requests"]
        cmd = svc["command"]
        self.assertEqual(svc["entrypoint"], ["kcat"])
        self.assertEqual(option(cmd, "-t"), "classiclink.requests")
        self.assertEqual(option(cmd, "-K"), "\\t")
        self.assertIn("-P", cmd)
        lines = read(host_path(option(cmd, "-l"), svc)).splitlines()
        self.assertEqual(len(lines), len(DEMO_EXPECTED))
        for line in lines:
            key, sep, value = line.partition("\t")
            self.assertEqual(sep, "\t", line)
            self.assertRegex(key, r"^team-[a-z]$")

    def test_rehearsal_without_docker(self):
        """Runs the stack's own commands as local processes (the mock broker stands in for
        Kafka): simulator and worker as compose starts them, the demo requests through kcat,
        then checks every outcome against the schema and the expected result."""
        if not shutil.which("kcat"):
            self.skipTest("kcat missing (run scripts/deps)")
        sim_svc, worker_svc = self.services["vpc-sim"], self.services["worker"]
        demo_svc = self.services["demo-requests"]
        procs = []
        tmp = tempfile.mkdtemp(prefix="clw-rehearsal-")
        mock = kafkalib.MockBroker(topics={"classiclink.requests": 3, "classiclink.results": 3})
        try:
            # vpc-sim: the compose arguments, mounted paths mapped, any free port.
            args = []
            for a in sim_svc["command"]:
                args.append(host_path(a, sim_svc) if a.startswith("/demo/") else a)
            args[args.index("--listen") + 1] = "127.0.0.1:0"
            sim = subprocess.Popen([SIM] + args, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
            procs.append(sim)
            port = Lines(sim.stdout).wait(r"listening on 127\.0\.0\.1:(\d+)").group(1)
            health = [a.replace(":8480/", ":%s/" % port) for a in
                      sim_svc["healthcheck"]["test"][1:]]
            self.assertEqual(subprocess.run(health, capture_output=True, timeout=10).returncode,
                             0, "the simulator's compose healthcheck fails")

            # The worker: the image's configuration, the compose arguments with the local
            # broker and port, the compose environment.
            conf, _ = container_config(tmp)
            wargs = list(worker_svc["command"])
            for i, a in enumerate(wargs):
                if a.startswith("kafka.bootstrap.servers="):
                    wargs[i] = "kafka.bootstrap.servers=" + mock.bootstrap
                elif ":8480/" in a:  # api.endpoint, api.metadata_endpoint
                    wargs[i] = a.replace(":8480/", ":%s/" % port)
            wargs += ["-X", "metrics.listen=127.0.0.1:0"]
            worker = subprocess.Popen([WORKER, "-c", conf] + wargs, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True,
                                      env=compose_worker_env())
            procs.append(worker)
            wlog = Lines(worker.stderr)
            mport = wlog.wait(r"metrics listening on \S+:(\d+)").group(1)

            # The demo requests, as the demo-requests service sends them.
            kargs = list(demo_svc["command"])
            kargs[kargs.index("-b") + 1] = mock.bootstrap
            kargs[kargs.index("-l") + 1] = host_path(option(kargs, "-l"), demo_svc)
            res = subprocess.run(["kcat"] + kargs, capture_output=True, text=True, timeout=60)
            self.assertEqual(res.returncode, 0, res.stderr)

            records = kafkalib.consume(mock.bootstrap, "classiclink.results",
                                       count=len(DEMO_EXPECTED), timeout_s=90)
            outcomes = [schemalib.validate_outcome(r["value"]) for r in records]
            self.check_demo_outcomes(outcomes)

            # The image's HEALTHCHECK command, run by /bin/sh as Docker runs it.
            self.assertEqual(http_status(mport, "/readyz"), 200)
            instrs = dockerfile_instructions(os.path.join(DOCKER, "Dockerfile"))
            hc = [arg for _, w, arg in instrs if w == "HEALTHCHECK"][0]
            cmd = hc[hc.index("CMD ") + 4:]
            env = dict(os.environ, CLW_HEALTHCHECK_URL="http://127.0.0.1:%s/healthz" % mport)
            self.assertEqual(subprocess.run(["/bin/sh", "-c", cmd], env=env,
                                            timeout=10).returncode, 0)
            env["CLW_HEALTHCHECK_URL"] = "http://127.0.0.1:%s/nothing" % mport
            self.assertNotEqual(subprocess.run(["/bin/sh", "-c", cmd], env=env,
                                               capture_output=True, timeout=10).returncode, 0)

            # docker stop: SIGTERM, a clean drain well within stop_grace_period.
            worker.send_signal(signal.SIGTERM)
            grace = int(worker_svc["stop_grace_period"][:-1])
            self.assertEqual(worker.wait(timeout=grace), 0)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
                for stream in (p.stdout, p.stderr):
                    if stream is not None:
                        stream.close()
            mock.stop()
            shutil.rmtree(tmp, ignore_errors=True)

    def check_demo_outcomes(self, outcomes):
        by_id = {}
        for o in outcomes:
            self.assertNotIn(o["requestId"], by_id, "duplicate outcome")
            by_id[o["requestId"]] = o
        default_ids = sorted(k for k in by_id if k.startswith("classiclink.requests:"))
        self.assertEqual(len(default_ids), 2, sorted(by_id))
        # The two undecodable-id requests carry default ids; tell them apart by codeDesc.
        for k in default_ids:
            o = by_id.pop(k)
            by_id[o["codeDesc"]] = o
        self.assertEqual(set(by_id), set(DEMO_EXPECTED))
        for key, (status, error_class, code_desc) in DEMO_EXPECTED.items():
            o = by_id[key]
            with self.subTest(request=key):
                if key == "demo-already-linked" and o["status"] == "succeeded":
                    self.assertIs(o.get("reconciled"), True)  # once reconciliation exists
                    continue
                self.assertEqual((o["status"], o["errorClass"]), (status, error_class))
                if code_desc is not None:
                    self.assertEqual(o["codeDesc"], code_desc)
        self.assertEqual(by_id["InvalidRequest.BadRequestId"]["rawRequestId"], "demo bad id!")


# requestId (or codeDesc for requests without a valid one) -> (status, errorClass, codeDesc).
DEMO_EXPECTED = {
    "demo-attach-1": ("succeeded", None, "Success"),
    "demo-detach-1": ("succeeded", None, "Success"),
    "demo-legacy-id": ("succeeded", None, "Success"),
    "demo-unknown-vpc": ("failed", "api_error", "InvalidVpc.NotFound"),
    "demo-already-linked": ("failed", "api_error", "InstanceAlreadyLinked"),
    "demo-bad-vpc": ("failed", "invalid_request", "InvalidRequest.BadVpcId"),
    "InvalidRequest.NotJson": ("failed", "invalid_request", "InvalidRequest.NotJson"),
    "InvalidRequest.BadRequestId": ("failed", "invalid_request", "InvalidRequest.BadRequestId"),
}


def http_status(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%s%s" % (port, path), timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


_SHUTDOWN_MS = []


def default_shutdown_timeout_ms():
    """worker.shutdown_timeout_ms as the built worker reports its default."""
    if not _SHUTDOWN_MS:
        env = {"PATH": os.environ.get("PATH", ""), "TENCENTCLOUD_SECRET_ID": "AKIDx",
               "TENCENTCLOUD_SECRET_KEY": "x"}
        res = run_worker(["-c", "/dev/null", "--check-config"], env=env)
        m = re.search(r"(?m)^worker\.shutdown_timeout_ms = (\d+)\s+# default$", res.stdout)
        if not m:
            raise AssertionError("no default worker.shutdown_timeout_ms in --check-config:\n"
                                 + res.stdout + res.stderr)
        _SHUTDOWN_MS.append(int(m.group(1)))
    return _SHUTDOWN_MS[0]


# ---- systemd unit and install ---------------------------------------------------------------

def parse_unit(path):
    """{section: [(key, value)]} of a systemd unit file (repeated keys kept in order)."""
    sections = {}
    current = None
    for line in read(path).splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def unit_value(section, key):
    values = [v for k, v in section if k == key]
    return values[-1] if values else None


def systemd_seconds(text):
    m = re.fullmatch(r"(\d+)(s|min)?", text)
    if not m:
        raise AssertionError("cannot read %r as seconds" % text)
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1)


class Install:
    """One `cmake --install --prefix` into a temporary directory, shared by the tests."""
    prefix = None

    @classmethod
    def get(cls):
        if cls.prefix is None:
            cls.prefix = tempfile.mkdtemp(prefix="clw-install-")
            res = subprocess.run(["cmake", "--install", BUILD, "--prefix", cls.prefix],
                                 capture_output=True, text=True, timeout=120)
            if res.returncode != 0:
                raise AssertionError("cmake --install failed:\n" + res.stdout + res.stderr)
        return cls.prefix

    @classmethod
    def cleanup(cls):
        if cls.prefix is not None:
            shutil.rmtree(cls.prefix, ignore_errors=True)
            cls.prefix = None


class SystemdUnit(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.path = os.path.join(SRC, "conf", "classiclink-worker.service")
        cls.unit = parse_unit(cls.path)
        cls.service = cls.unit["Service"]

    def test_starts_with_purpose_comment(self):
        self.assertTrue(read(self.path).startswith("# "))

    def test_directives(self):
        for key, want in UNIT_HARDENING.items():
            with self.subTest(key=key):
                self.assertEqual(unit_value(self.service, key), want)
        self.assertEqual(unit_value(self.service, "EnvironmentFile"),
                         "-/etc/classiclink-worker/credentials.env")
        self.assertEqual(unit_value(self.service, "ExecReload"), "/bin/kill -HUP $MAINPID")
        self.assertEqual(unit_value(self.service, "ExecStart"),
                         "/usr/bin/classiclink-worker -c "
                         "/etc/classiclink-worker/classiclink-worker.conf")
        self.assertIn("1", unit_value(self.service, "RestartPreventExitStatus").split())
        families = set(unit_value(self.service, "RestrictAddressFamilies").split())
        self.assertTrue({"AF_INET", "AF_INET6", "AF_UNIX"} <= families)
        self.assertIn("@system-service",
                      [v for k, v in self.service if k == "SystemCallFilter"])
        self.assertIn("/etc/classiclink-worker",
                      unit_value(self.service, "ReadOnlyPaths").lstrip("-"))
        self.assertEqual(unit_value(self.unit["Install"], "WantedBy"), "multi-user.target")

    def test_stop_timeout_covers_the_drain(self):
        stop = systemd_seconds(unit_value(self.service, "TimeoutStopSec"))
        self.assertGreater(stop * 1000, default_shutdown_timeout_ms() + 5000)

    def test_environment_file_names_the_worker_variables(self):
        # The variables the comments tell operators to put there are the ones the worker reads.
        text = read(self.path)
        for name in re.findall(r"TENCENTCLOUD_[A-Z_]+", text):
            with self.subTest(variable=name):
                self.assertIn(name, read(os.path.join(SRC, "docs", "configuration.md")))

    def test_systemd_analyze_verify(self):
        tool = shutil.which("systemd-analyze")
        if tool is None:
            self.skipTest("systemd-analyze missing (Debian package systemd, in scripts/deps)")
        installed = os.path.join(Install.get(), "lib", "systemd", "system",
                                 "classiclink-worker.service")
        res = subprocess.run([tool, "verify", installed], capture_output=True, text=True,
                             timeout=60)
        complaints = [l for l in (res.stdout + res.stderr).splitlines()
                      if "classiclink-worker" in l]
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertEqual(complaints, [])

    def test_systemd_analyze_security(self):
        tool = shutil.which("systemd-analyze")
        if tool is None:
            self.skipTest("systemd-analyze missing (Debian package systemd, in scripts/deps)")
        res = subprocess.run([tool, "security", "--offline=true", self.path],
                             capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", res.stdout)
        if res.returncode != 0 and m is None:
            self.skipTest("systemd-analyze security --offline unsupported: " + res.stderr[:200])
        self.assertIsNotNone(m, res.stdout)
        self.assertLessEqual(float(m.group(1)), 2.0, res.stdout)


class InstallTree(unittest.TestCase):
    @classmethod
    def tearDownClass(cls):
        Install.cleanup()

    def test_files_land(self):
        prefix = Install.get()
        want = ["bin/classiclink-worker", "bin/vpc-sim",
                "etc/classiclink-worker/classiclink-worker.conf",
                "lib/systemd/system/classiclink-worker.service",
                "share/doc/classiclink-worker/README.md",
                "share/doc/classiclink-worker/configuration.md",
                "share/doc/classiclink-worker/operations.md",
                "share/doc/classiclink-worker/design.md",
                "share/doc/classiclink-worker/schemas/request.schema.json",
                "share/doc/classiclink-worker/schemas/outcome.schema.json"]
        for rel in want:
            with self.subTest(file=rel):
                self.assertTrue(os.path.isfile(os.path.join(prefix, rel)))
        self.assertEqual(read(os.path.join(prefix, want[2])),
                         read(os.path.join(SRC, "conf", "classiclink-worker.conf")))
        res = subprocess.run([os.path.join(prefix, "bin", "classiclink-worker"), "--version"],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(res.returncode, 0)

    def test_unit_follows_the_prefix(self):
        prefix = Install.get()
        unit = parse_unit(os.path.join(prefix, "lib/systemd/system/classiclink-worker.service"))
        svc = unit["Service"]
        self.assertEqual(unit_value(svc, "ExecStart"),
                         "%s/bin/classiclink-worker -c "
                         "%s/etc/classiclink-worker/classiclink-worker.conf" % (prefix, prefix))
        self.assertEqual(unit_value(svc, "EnvironmentFile"),
                         "-%s/etc/classiclink-worker/credentials.env" % prefix)

    def test_existing_configuration_is_kept(self):
        with tempfile.TemporaryDirectory() as prefix:
            conf = os.path.join(prefix, "etc/classiclink-worker/classiclink-worker.conf")
            os.makedirs(os.path.dirname(conf))
            with open(conf, "w", encoding="utf-8") as f:
                f.write("log.level = debug\n")
            res = subprocess.run(["cmake", "--install", BUILD, "--prefix", prefix],
                                 capture_output=True, text=True, timeout=120)
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertIn("Keeping existing", res.stdout)
            self.assertEqual(read(conf), "log.level = debug\n")
            self.assertTrue(os.path.isfile(os.path.join(prefix, "bin", "classiclink-worker")))

    def test_system_prefix_with_destdir(self):
        # A distribution layout: --prefix /usr puts the configuration in /etc, and the unit
        # is then exactly conf/classiclink-worker.service.
        with tempfile.TemporaryDirectory() as dest:
            res = subprocess.run(["cmake", "--install", BUILD, "--prefix", "/usr"],
                                 capture_output=True, text=True, timeout=120,
                                 env=dict(os.environ, DESTDIR=dest))
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertTrue(os.path.isfile(os.path.join(
                dest, "etc/classiclink-worker/classiclink-worker.conf")))
            self.assertEqual(read(os.path.join(dest, "usr/lib/systemd/system/"
                                               "classiclink-worker.service")),
                             read(os.path.join(SRC, "conf", "classiclink-worker.service")))


# ---- docs -----------------------------------------------------------------------------------

class Docs(unittest.TestCase):
    def test_operations_guide_names_every_metric(self):
        names = set(re.findall(r'"(classiclink_[a-z_]+)', read(os.path.join(SRC, "src",
                                                                               "metrics.c"))))
        self.assertGreater(len(names), 10)
        guide = read(os.path.join(SRC, "docs", "operations.md"))
        for name in sorted(names):
            with self.subTest(metric=name):
                self.assertIn("`%s" % name, guide)

    def test_operations_guide_names_every_pause_reason(self):
        reasons = re.findall(r'return "([a-z_]+)";', read(os.path.join(SRC, "src", "metrics.c")))
        guide = read(os.path.join(SRC, "docs", "operations.md"))
        for reason in ("worker_fault", "circuit_open", "publish_error", "credentials"):
            self.assertIn(reason, reasons)
            self.assertIn(reason, guide)

    def test_docs_point_to_the_container_check(self):
        # The image is built and run by scripts/check-container in CI; the docs say so and no
        # longer claim it was never built.
        for rel in ("docker/README.md", "docs/operations.md", "docker/Dockerfile",
                    "docker/compose.yaml"):
            with self.subTest(doc=rel):
                text = read(os.path.join(SRC, rel))
                self.assertIn("scripts/check-container", text)
                self.assertNotIn("No Docker engine", text)
                self.assertNotIn("never built", text)
        self.assertRegex(read(os.path.join(SRC, ".ci", "run")),
                         r"(?m)^scripts/check-container$")
        script = os.path.join(SRC, "scripts", "check-container")
        self.assertTrue(os.access(script, os.X_OK))
        lines = read(script).splitlines()
        self.assertEqual(lines[0], "#!/usr/bin/env bash")
        self.assertTrue(lines[1].startswith("# "))
        self.assertIn("set -euo pipefail", lines)

    def test_operations_guide_examples_are_valid_outcomes(self):
        guide = read(os.path.join(SRC, "docs", "operations.md"))
        blocks = re.findall(r"```json\n(.*?)```", guide, re.S)
        for block in blocks:
            doc = json.loads(block)
            if isinstance(doc, dict) and "status" in doc:
                schemalib.validate_outcome(doc)


if __name__ == "__main__":
    unittest.main()
