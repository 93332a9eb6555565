#!/usr/bin/env python3
"""The container image, built and exercised for real. Run through scripts/check-container (as
root, after it installed podman, debootstrap and docker-compose).

1. Base images: the Dockerfile's `debian:bookworm` and `debian:bookworm-slim` are used as they
   are when podman has them; otherwise they are made once with debootstrap (minbase, from the
   Debian mirror apt already uses, with this machine's apt sources and settings) and imported, so
   nothing is pulled. The root file system tarballs are cached in .cache/container/.
2. The image: `podman build -f docker/Dockerfile .`, as a user runs it (plus the options this
   kind of host needs: no pulls, chroot isolation, host network, Docker format so HEALTHCHECK is
   kept), tagged classiclink-worker:local as compose tags it.
3. What the image promises: entrypoint, user, exposed port, stop signal and healthcheck (image
   configuration), no compiler, headers or source tree, no apt lists or documentation (its
   files), its size.
4. docker/compose.yaml through Compose's own parser (`docker-compose config`): mounted files
   exist, entrypoints exist in the image, published ports are the image's, and every variable it
   sets is one the worker reads (the worker's --check-config names it as a source).
5. A run from the image's filesystem, inside a network, mount and PID namespace of its own:
   each service of the image gets the image's files under a writable overlay, its compose
   volumes, /proc and /dev, and runs as the image's user with the image's environment, entrypoint
   and configuration, the compose service's command and environment. The simulator listens on
   127.0.0.1:8480 and the worker serves :9464 exactly as in the stack (the namespace is the
   shared one of `network_mode: service:vpc-sim`); the project's mock broker (from the image's
   build stage) stands in for Kafka. The demo requests go in with kcat as the demo-requests
   service sends them; every outcome is validated and compared with the expected table; /healthz
   and /readyz answer; the image's HEALTHCHECK command passes while the worker runs and fails
   before it starts and after it stops; SIGTERM with a call in flight drains it, the outcome is
   published and the worker exits 0.

Leaving: the check runs in a PID and mount namespace of its own (enter_namespaces), so every
process it starts, podman build's included, and every mount it makes end with it; on exit,
SIGINT or SIGTERM it kills what still runs, removes an interrupted build's working containers and
undoes the image mounts. One check at a time per machine (a lock in /run/lock). Logs stay in
build-container/.
"""

import ctypes
import fcntl
import glob
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
import urllib.error
import urllib.request

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

IMAGE = "classiclink-worker:local"          # the name docker/compose.yaml builds
BUILD_IMAGE = "classiclink-worker-build:local"  # the Dockerfile's build stage (mock broker)
DOCKERFILE = "docker/Dockerfile"
COMPOSE = "docker/compose.yaml"
CACHE = os.path.join(REPO, ".cache", "container")
WORK = os.path.join(REPO, "build-container")
# The base images the Dockerfile names, and how a stand-in is made when podman has none.
BASES = {"docker.io/library/debian:bookworm": "debian-bookworm",
         "docker.io/library/debian:bookworm-slim": "debian-bookworm-slim"}
SUITE = "bookworm"
RECIPE = "debootstrap-minbase-bookworm-2"   # change when make_rootfs changes
RECIPE_LABEL = "org.classiclink.check-container.base"
# The slim variant's dpkg filter, as Debian's official slim images carry it.
SLIM_DPKG_CFG = """\
# The "slim" variant: files containers seldom need are left out, and stay out.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
"""
# What the runtime stage may add on top of its base image.
RUNTIME_LAYERS_BUDGET_MB = 24
MOCK_BROKER = "/src/build/tools/mock-broker/clw-mock-broker"  # inside the build stage
BUILD_TOOLS = ("cc", "gcc", "g++", "c++", "cpp", "clang", "ld", "as", "make", "cmake", "ninja",
               "pkg-config")

# Sent last, answered after DRAIN_LATENCY_MS: SIGTERM arrives while its call is in flight.
# (demo-detach-1 leaves ins-df454d unlinked, so this attach succeeds.)
DRAIN_REQUEST = {"requestId": "check-drain-1", "vpcId": "vpc-2ari9m7h",
                 "instanceIds": ["ins-df454d"]}
DRAIN_LATENCY_MS = 2000

MACHINE_LOCK = "/run/lock/classiclink-check-container.lock"

PASSED = [0]


class Failed(Exception):
    pass


def say(msg):
    print("check-container: %s" % msg, flush=True)


def check(cond, what, detail=""):
    if not cond:
        raise Failed(what + (": " + detail if detail else ""))
    PASSED[0] += 1
    say("ok  %s" % what)


def run(argv, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    try:
        return subprocess.run(argv, **kw)
    except subprocess.TimeoutExpired as e:
        raise Failed("%s did not finish within %s s" % (" ".join(argv[:6]), e.timeout)) from None


def run_logged(argv, log, **kw):
    """Runs argv with its output in the file log; on an exception (a signal) the process gets
    SIGTERM and time to stop its own children (podman build's RUN steps), then SIGKILL."""
    with open(log, "w", encoding="utf-8") as out:
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **kw)
        try:
            return p.wait()
        except BaseException:
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            raise


def must(argv, what, **kw):
    res = run(argv, **kw)
    if res.returncode != 0:
        raise Failed("%s: %s exited %d\n%s%s" % (what, " ".join(argv[:3]), res.returncode,
                                                 res.stdout or "", res.stderr or ""))
    return res


def tail(path, n=40):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


# ---- 1. base images -------------------------------------------------------------------------

def image_inspect(ref):
    res = run(["podman", "image", "inspect", ref])
    if res.returncode != 0:
        return None
    return json.loads(res.stdout)[0]


def apt_mirror():
    """The Debian mirror apt already uses for SUITE main (from apt's own index targets)."""
    res = must(["apt-get", "indextargets", "--format", "$(REPO_URI)", "Release: " + SUITE,
                "Component: main", "Identifier: Packages"], "apt-get indextargets")
    uris = [u for u in res.stdout.split() if u]
    if not uris:
        raise Failed("apt has no index for Debian %s main: run apt-get update" % SUITE)
    return uris[0]


def copy_host_apt_config(root):
    """This machine's apt sources and its own apt settings (files no package ships), so apt in
    the image build reaches the same mirror the same way; keyrings they name are copied when the
    base system lacks them. Returns the copied paths."""
    copied = []
    os.makedirs(os.path.join(root, "etc/apt/sources.list.d"), exist_ok=True)
    sources = [p for p in ["/etc/apt/sources.list"] if os.path.isfile(p)]
    sources += sorted(glob.glob("/etc/apt/sources.list.d/*.list") +
                      glob.glob("/etc/apt/sources.list.d/*.sources"))
    settings = [p for p in sorted(glob.glob("/etc/apt/apt.conf.d/*"))
                if os.path.isfile(p) and run(["dpkg", "-S", p]).returncode != 0]
    for path in sources + settings:
        shutil.copy2(path, root + path)
        copied.append(path)
    for path in sources:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for key in re.findall(r"(?:Signed-By:[ \t]*|signed-by=)(/[^\s\]]+)", text):
            if os.path.isfile(key) and not os.path.exists(root + key):
                os.makedirs(os.path.dirname(root + key), exist_ok=True)
                shutil.copy2(key, root + key)
                copied.append(key)
    return copied


def clear_dir(path):
    for entry in glob.glob(os.path.join(path, "*")):
        if os.path.isdir(entry) and not os.path.islink(entry):
            shutil.rmtree(entry)
        else:
            os.unlink(entry)


def slim_down(root):
    """What Debian's slim images leave out: documentation but copyright files, manuals,
    translations; the dpkg filter keeps them out of later installs."""
    os.makedirs(os.path.join(root, "etc/dpkg/dpkg.cfg.d"), exist_ok=True)
    with open(os.path.join(root, "etc/dpkg/dpkg.cfg.d/docker"), "w", encoding="utf-8") as f:
        f.write(SLIM_DPKG_CFG)
    doc = os.path.join(root, "usr/share/doc")
    for dirpath, dirnames, filenames in os.walk(doc, topdown=False):
        for name in filenames:
            if name != "copyright":
                os.unlink(os.path.join(dirpath, name))
        for name in dirnames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                os.unlink(full)
            elif not os.listdir(full):
                os.rmdir(full)
    for rel in ("usr/share/groff", "usr/share/info", "usr/share/linda",
                "usr/share/lintian/overrides", "usr/share/locale", "usr/share/man"):
        if os.path.isdir(os.path.join(root, rel)):
            clear_dir(os.path.join(root, rel))


def make_base_tarballs():
    """debootstrap once, then the full and the slim root file system as tarballs in CACHE."""
    mirror = apt_mirror()
    work = tempfile.mkdtemp(prefix="rootfs.", dir=CACHE)
    try:
        root = os.path.join(work, "root")
        log = os.path.join(CACHE, "debootstrap.log")
        say("making the base images: debootstrap --variant=minbase %s (from apt's mirror)"
            % SUITE)
        t0 = time.monotonic()
        # Its own mount namespace: whatever debootstrap mounts in the target goes with it.
        code = run_logged(["unshare", "--mount", "--fork", "--kill-child", "debootstrap",
                           "--variant=minbase", SUITE, root, mirror], log)
        if code != 0:
            raise Failed("debootstrap exited %d (log %s):\n%s" % (code, log, tail(log)))
        say("debootstrap: %.0f s" % (time.monotonic() - t0))
        # As Debian's container images: no package lists, no downloaded packages, no host
        # name server; apt's sources are the machine's.
        clear_dir(os.path.join(root, "var/lib/apt/lists"))
        os.makedirs(os.path.join(root, "var/lib/apt/lists/partial"), exist_ok=True)
        for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin"):
            for p in glob.glob(os.path.join(root, pattern)):
                os.unlink(p)
        for rel in ("etc/apt/sources.list", "etc/resolv.conf", "etc/hostname"):
            p = os.path.join(root, rel)
            if os.path.lexists(p):
                os.unlink(p)
        with open(os.path.join(root, "etc/hostname"), "w", encoding="utf-8") as f:
            f.write("localhost\n")
        open(os.path.join(root, "etc/resolv.conf"), "w", encoding="utf-8").close()
        copied = copy_host_apt_config(root)
        say("apt configuration copied from this machine: %s" % " ".join(copied))
        for name, slim in (("debian-bookworm", False), ("debian-bookworm-slim", True)):
            if slim:
                slim_down(root)
            tmp = os.path.join(CACHE, name + ".tar.part")
            must(["tar", "-C", root, "--numeric-owner", "-cf", tmp, "."], "tar " + name)
            os.replace(tmp, os.path.join(CACHE, name + ".tar"))
            with open(os.path.join(CACHE, name + ".recipe"), "w", encoding="utf-8") as f:
                f.write(RECIPE + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cached_tarball(name):
    tar = os.path.join(CACHE, name + ".tar")
    try:
        with open(os.path.join(CACHE, name + ".recipe"), encoding="utf-8") as f:
            ok = f.read().strip() == RECIPE
    except OSError:
        ok = False
    return tar if ok and os.path.isfile(tar) else None


def ensure_base_images():
    os.makedirs(CACHE, exist_ok=True)
    missing = []
    for ref, name in BASES.items():
        info = image_inspect(ref)
        label = ((info or {}).get("Config") or {}).get("Labels") or {}
        if info is None or label.get(RECIPE_LABEL) not in (None, RECIPE):
            missing.append((ref, name))
        else:
            how = ("made by this check, recipe %s" % RECIPE if RECIPE_LABEL in label
                   else "not made by this check")
            say("base image %s: present (%s, %s)" % (ref, info["Id"][:12], how))
    if not missing:
        return
    if any(cached_tarball(name) is None for _, name in missing):
        make_base_tarballs()
    for ref, name in missing:
        t0 = time.monotonic()
        must(["podman", "import", "--change", 'CMD ["bash"]',
              "--change", "LABEL %s=%s" % (RECIPE_LABEL, RECIPE), cached_tarball(name), ref],
             "podman import " + name)
        info = image_inspect(ref)
        say("base image %s: imported from .cache/container/%s.tar (%s, %.0f MB, %.1f s)"
            % (ref, name, info["Id"][:12], info["Size"] / 1e6, time.monotonic() - t0))


# ---- 2. the image ---------------------------------------------------------------------------

def external_containers():
    """IDs of the containers in podman's storage that podman itself does not run: buildah's
    working containers."""
    res = must(["podman", "ps", "-a", "--external", "--format", "{{.ID}}"], "podman ps")
    return set(res.stdout.split())


# While a build runs: the working containers that existed before it (see cleanup()).
BUILDING = {}


def podman_build(extra, tag, log):
    old = image_inspect(tag)
    BUILDING["before"] = external_containers()
    argv = ["podman", "build", "--pull=never", "--isolation=chroot", "--network=host",
            "--format", "docker", "-f", DOCKERFILE] + extra + ["-t", tag, "."]
    say("$ " + " ".join(shlex.quote(a) for a in argv))
    t0 = time.monotonic()
    code = run_logged(argv, log, cwd=REPO)
    seconds = time.monotonic() - t0
    BUILDING.clear()  # finished: podman build removed its working containers (--force-rm)
    if code != 0:
        raise Failed("podman build exited %d (log %s):\n%s" % (code, log, tail(log)))
    info = image_inspect(tag)
    if old is not None and old["Id"] != info["Id"]:
        # The image this tag named before, now unnamed: removed unless something still uses it.
        run(["podman", "rmi", old["Id"]])
    return info, seconds


# ---- 3. what the image promises -------------------------------------------------------------

def image_user(info, mnt):
    """(uid, gid) of the image's USER, through its own /etc/passwd for a name or a bare uid."""
    user = info["Config"].get("User") or "0"
    name, _, group = user.partition(":")
    passwd = {}
    with open(os.path.join(mnt, "etc/passwd"), encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split(":")
            if len(parts) >= 4:
                passwd[parts[0]] = passwd[parts[2]] = (int(parts[2]), int(parts[3]))
    if name not in passwd:
        raise Failed("the image's user %r is not in its /etc/passwd" % name)
    uid, gid = passwd[name]
    if group:
        gid = int(group)
    return uid, gid


def check_image_config(info, base):
    cfg = info["Config"]
    check(cfg.get("Entrypoint") == ["classiclink-worker"], "entrypoint is classiclink-worker",
          str(cfg.get("Entrypoint")))
    check(not cfg.get("Cmd"), "no CMD (arguments are the worker's)", str(cfg.get("Cmd")))
    check(cfg.get("User") == "10001:10001", "user 10001:10001", str(cfg.get("User")))
    check(set(cfg.get("ExposedPorts") or {}) == {"9464/tcp"}, "exposes 9464/tcp",
          str(cfg.get("ExposedPorts")))
    check(cfg.get("StopSignal") == "SIGTERM", "stop signal SIGTERM", str(cfg.get("StopSignal")))
    hc = info.get("Healthcheck") or {}
    test = hc.get("Test") or []
    check(len(test) == 2 and test[0] == "CMD-SHELL" and test[1].startswith("curl ")
          and "/healthz" in test[1], "HEALTHCHECK kept: curl on /healthz", str(test))
    check(hc.get("Interval") == 15 * 10**9 and hc.get("Retries") == 3,
          "HEALTHCHECK every 15 s, 3 retries", str(hc))
    size_mb = info["Size"] / 1e6
    added_mb = (info["Size"] - base["Size"]) / 1e6
    say("image size: %.1f MB (%s), of which %.1f MB on top of debian:bookworm-slim (%.1f MB)"
        % (size_mb, info["Id"][:12], added_mb, base["Size"] / 1e6))
    check(added_mb <= RUNTIME_LAYERS_BUDGET_MB,
          "runtime stage adds at most %d MB" % RUNTIME_LAYERS_BUDGET_MB, "%.1f MB" % added_mb)
    return test[1]


def installed_packages(mnt):
    names = []
    with open(os.path.join(mnt, "var/lib/dpkg/status"), encoding="utf-8") as f:
        for block in f.read().split("\n\n"):
            name = re.search(r"(?m)^Package: (\S+)", block)
            status = re.search(r"(?m)^Status: .* installed$", block)
            if name and status:
                names.append(name.group(1))
    return names


def check_image_files(mnt, info):
    for path in ("/usr/bin/classiclink-worker", "/usr/bin/vpc-sim"):
        check(os.access(mnt + path, os.X_OK), "%s is in the image" % path)
    conf = mnt + "/etc/classiclink-worker/classiclink-worker.conf"
    with open(conf, encoding="utf-8") as f:
        lines = f.read().splitlines()
    check(lines.count("metrics.listen = :9464") == 1,
          "the image's configuration listens for metrics on :9464")
    uid, gid = image_user(info, mnt)
    check(uid == 10001 and gid == 10001, "the image's /etc/passwd has uid 10001 gid 10001")

    path_dirs = [d for d in image_env(info).get("PATH", "").split(":") if d]
    tools = [os.path.join(d, t) for d in path_dirs for t in BUILD_TOOLS
             if os.path.lexists(mnt + os.path.join(d, t))]
    check(not tools, "no compiler or build tool on the image's PATH", " ".join(tools))
    pkgs = installed_packages(mnt)
    dev = [p for p in pkgs if p.endswith("-dev") or p in ("gcc", "gcc-12", "cpp", "binutils",
                                                          "make", "cmake", "ninja-build")]
    check(not dev, "no development package installed (%d packages)" % len(pkgs), " ".join(dev))
    sources = []
    for dirpath, dirnames, filenames in os.walk(mnt):
        rel = dirpath[len(mnt):] or "/"
        if rel in ("/proc", "/sys", "/dev"):
            dirnames[:] = []
            continue
        for name in filenames:
            if name.endswith((".c", ".h", ".o")) or name in ("CMakeLists.txt", "CMakeCache.txt"):
                sources.append(os.path.join(rel, name))
    check(not os.path.exists(mnt + "/src") and not sources,
          "no source tree, headers or objects in the image", " ".join(sources[:10]))
    lists = [p[len(mnt):] for p in glob.glob(mnt + "/var/lib/apt/lists/*")
             if os.path.isfile(p) and not p.endswith("/lock")]
    check(not lists, "no apt package lists", " ".join(lists[:5]))
    docs = []
    for dirpath, _, filenames in os.walk(mnt + "/usr/share/doc"):
        docs += [os.path.join(dirpath[len(mnt):], n) for n in filenames if n != "copyright"]
    man = [p[len(mnt):] for p in glob.glob(mnt + "/usr/share/man/*")]
    check(not docs and not man, "no documentation beyond copyright files",
          " ".join((docs + man)[:5]))


def image_env(info):
    return dict(e.split("=", 1) for e in info["Config"].get("Env") or [])


# ---- 4. compose -----------------------------------------------------------------------------

def compose_config():
    res = run(["docker-compose", "-f", COMPOSE, "config"], cwd=REPO)
    version = run(["docker-compose", "version", "--short"]).stdout.strip()
    check(res.returncode == 0, "docker-compose %s parses %s" % (version, COMPOSE),
          (res.stderr or res.stdout).strip())
    import yaml
    return yaml.safe_load(res.stdout)


def volumes_of(svc):
    """[(host, container, read_only)] of a service, as compose resolved them."""
    out = []
    for vol in svc.get("volumes", []):
        if isinstance(vol, dict):
            out.append((vol["source"], vol["target"], bool(vol.get("read_only"))))
            continue
        parts = vol.split(":")
        out.append((parts[0], parts[1], len(parts) > 2 and "ro" in parts[2].split(",")))
    return out


def host_path(path, svc):
    for host, ctr, _ in volumes_of(svc):
        if path == ctr or path.startswith(ctr.rstrip("/") + "/"):
            return os.path.join(host, path[len(ctr):].lstrip("/"))
    return None


def resolve_in_image(mnt, info, name):
    if "/" in name:
        return name if os.access(mnt + name, os.X_OK) else None
    for d in image_env(info).get("PATH", "").split(":"):
        if d and os.access(mnt + os.path.join(d, name), os.X_OK):
            return os.path.join(d, name)
    return None


def check_compose(doc, mnt, info):
    services = doc["services"]
    ours = sorted(n for n, s in services.items() if s.get("image") == IMAGE)
    check(ours == ["vpc-sim", "worker"], "compose runs vpc-sim and worker from %s" % IMAGE,
          str(ours))
    for name in ours:
        build = services[name].get("build") or {}
        check(os.path.normpath(build.get("context", "")) == REPO
              and build.get("dockerfile") == DOCKERFILE,
              "compose builds %s from the repository's %s" % (name, DOCKERFILE), str(build))
    for name, svc in sorted(services.items()):
        for host, ctr, _ in volumes_of(svc):
            check(os.path.exists(host), "%s: mounted %s exists" % (name, os.path.relpath(host,
                                                                                       REPO)))
        cmd = svc.get("command") if isinstance(svc.get("command"), list) else []
        for arg in cmd:
            if arg.startswith("/") and host_path(arg, svc) is not None:
                check(os.path.isfile(host_path(arg, svc)),
                      "%s: %s is a mounted file" % (name, arg))
    for name in ours:
        svc = services[name]
        entry = svc.get("entrypoint") or info["Config"]["Entrypoint"]
        check(resolve_in_image(mnt, info, entry[0]) is not None,
              "%s: entrypoint %s is in the image" % (name, entry[0]))
    exposed = {p.split("/")[0] for p in info["Config"].get("ExposedPorts") or {}}
    for name in ours:
        for port in services[name].get("ports", []):
            target = str(port["target"] if isinstance(port, dict) else
                         port.split(":")[-1].split("/")[0])
            check(target in exposed, "%s: published port %s is one the image exposes"
                  % (name, target))


# ---- 5. the run, inside the check's own namespaces ------------------------------------------

class Proc:
    """A process whose output lines are kept (and written to a log file); wait_line() blocks
    on a pattern."""

    def __init__(self, name, argv, stdin=None):
        self.name = name
        self.log = open(os.path.join(WORK, name + ".log"), "w", encoding="utf-8")
        self.p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.q = queue.Queue()
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.log.write(line)
            self.log.flush()
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def wait_line(self, pattern, timeout_s=60.0):
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self.q.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                line = False
            if line:
                self.lines.append(line)
                m = re.search(pattern, line)
                if m:
                    return m
                continue
            if line is None or time.monotonic() >= deadline:
                raise Failed("%s: no line matching %r within %.0f s (exit %s); last lines:\n%s"
                             % (self.name, pattern, timeout_s, self.p.poll(),
                                "\n".join(self.lines[-20:])))


class Container:
    """A service's file system: the image under a writable overlay, with /proc, /dev and the
    service's volumes; processes run in it as the image's user with the image's environment."""

    def __init__(self, name, lower, tmp, info, volumes):
        self.name = name
        self.info = info
        base = os.path.join(tmp, name)
        self.root = os.path.join(base, "root")
        for d in ("upper", "work", "root"):
            os.makedirs(os.path.join(base, d))
        must(["mount", "-t", "overlay", "overlay", "-o", "lowerdir=%s,upperdir=%s,workdir=%s"
              % (lower, os.path.join(base, "upper"), os.path.join(base, "work")), self.root],
             "overlay for " + name)
        must(["mount", "-t", "proc", "proc", self.root + "/proc"], "/proc for " + name)
        must(["mount", "--rbind", "/dev", self.root + "/dev"], "/dev for " + name)
        for host, ctr, ro in volumes:
            os.makedirs(self.root + ctr, exist_ok=True)
            must(["mount", "--bind", host, self.root + ctr], "volume %s" % ctr)
            if ro:
                must(["mount", "-o", "remount,bind,ro", self.root + ctr], "volume %s ro" % ctr)
        self.user = "%d:%d" % image_user(info, self.root)

    def argv(self, args, env=None, user=None):
        full = image_env(self.info)
        full.update(env or {})
        return (["env", "-i"] + ["%s=%s" % kv for kv in sorted(full.items())] +
                ["chroot", "--userspec=" + (user or self.user), self.root] + list(args))

    def run(self, args, env=None, timeout=30):
        return run(self.argv(args, env), timeout=timeout)


def proc_ids(pid):
    with open("/proc/%d/status" % pid, encoding="utf-8") as f:
        status = f.read()
    uid = re.search(r"(?m)^Uid:\s+(.*)$", status).group(1).split()
    gid = re.search(r"(?m)^Gid:\s+(.*)$", status).group(1).split()
    return set(uid), set(gid), os.readlink("/proc/%d/root" % pid)


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, ""


def x_args(args, key, value):
    """args with the -X key=... setting replaced by key=value."""
    out = list(args)
    for i, a in enumerate(out):
        if a.startswith(key + "="):
            out[i] = key + "=" + value
            return out
    raise Failed("no -X %s= in %s" % (key, args))


def option(args, name):
    return args[args.index(name) + 1] if name in args else None


def check_outcomes(outcomes):
    """Every outcome valid against the schema and as docker/README.md lists it (the table
    tests/integration/test_packaging.py checks in its rehearsal)."""
    import schemalib
    from test_packaging import DEMO_EXPECTED
    by_id = {}
    for o in outcomes:
        try:
            schemalib.validate_outcome(o)
        except AssertionError as e:  # schemalib.SchemaError
            raise Failed("outcome not valid against the schema: %s" % e) from None
        key = o["requestId"]
        if key.startswith("classiclink.requests:"):
            key = o["codeDesc"]  # the two requests without a valid id
        by_id.setdefault(key, []).append(o)
    check(len(outcomes) == len(DEMO_EXPECTED) and set(by_id) == set(DEMO_EXPECTED),
          "one outcome, valid against the schema, for each of the %d demo requests"
          % len(DEMO_EXPECTED), str(sorted(by_id)))
    by_id = {k: v[0] for k, v in by_id.items()}
    for key, (status, error_class, code_desc) in sorted(DEMO_EXPECTED.items()):
        o = by_id[key]
        if key == "demo-already-linked" and o["status"] == "succeeded":
            check(o.get("reconciled") is True and o["codeDesc"] == code_desc,
                  "%s: succeeded, reconciled, codeDesc %s" % (key, code_desc), str(o))
            continue
        check((o["status"], o["errorClass"], o["codeDesc"]) == (status, error_class, code_desc),
              "%s: %s %s %s" % (key, status, error_class or "-", code_desc),
              "got %s %s %s" % (o["status"], o["errorClass"], o["codeDesc"]))
    check(by_id["InvalidRequest.BadRequestId"].get("rawRequestId") == "demo bad id!",
          "the bad requestId is echoed as rawRequestId")


def inside(ctx_path):
    """PID 1 of the check's PID namespace, in its own network and mount namespaces."""
    with open(ctx_path, encoding="utf-8") as f:
        ctx = json.load(f)
    info, doc = ctx["info"], ctx["compose"]
    services = doc["services"]
    sim_svc, worker_svc, req_svc = (services["vpc-sim"], services["worker"],
                                    services["demo-requests"])
    must(["ip", "link", "set", "lo", "up"], "loopback up")
    sim_c = Container("vpc-sim", ctx["mnt"], ctx["tmp"], info, volumes_of(sim_svc))
    worker_c = Container("worker", ctx["mnt"], ctx["tmp"], info, volumes_of(worker_svc))
    entry = info["Config"]["Entrypoint"]

    for c, prog in ((worker_c, "classiclink-worker"), (sim_c, "vpc-sim")):
        res = c.run([prog, "--version"])
        check(res.returncode == 0 and res.stdout.strip(), "%s --version as %s: %s"
              % (prog, c.user, res.stdout.strip()), res.stderr)

    wenv = {k: str(v) for k, v in (worker_svc.get("environment") or {}).items()}

    # Kafka: the project's mock broker (from the build stage), with the compose topics.
    topics = re.findall(r"--topic (\S+) --partitions (\d+)",
                        " ".join(services["kafka-topics"]["command"]))
    check(len(topics) == 2, "compose creates two topics", str(topics))
    bargs = [MOCK_BROKER]
    for name, parts in topics:
        bargs += ["--topic", "%s:%s" % (name, parts)]
    broker = Proc("mock-broker", ["chroot", ctx["build_mnt"]] + bargs, stdin=subprocess.PIPE)
    bootstrap = broker.wait_line(r"^bootstrap=(\S+)", 30).group(1)
    say("mock broker on %s, topics %s" % (bootstrap, ", ".join("%s:%s" % t for t in topics)))

    healthcheck = ["/bin/sh", "-c", ctx["healthcheck"]]
    res = worker_c.run(healthcheck, env=wenv)
    check(res.returncode != 0, "the image's HEALTHCHECK fails while no worker runs")

    sim_entry = sim_svc.get("entrypoint") or entry
    sim = Proc("vpc-sim", sim_c.argv(sim_entry + sim_svc["command"],
                                     {k: str(v) for k, v in
                                      (sim_svc.get("environment") or {}).items()}))
    listen = option(sim_svc["command"], "--listen")
    sim.wait_line(r"listening on %s$" % re.escape(listen), 30)
    uid, gid, root = proc_ids(sim.p.pid)
    check(uid == {"10001"} and gid == {"10001"} and root == sim_c.root,
          "vpc-sim runs as 10001:10001 in its image root (%s)" % listen, "%s %s %s"
          % (uid, gid, root))
    hc = sim_svc["healthcheck"]["test"]
    check(hc[0] == "CMD" and sim_c.run(hc[1:]).returncode == 0,
          "vpc-sim's compose healthcheck passes")

    # The variables compose sets are ones the worker reads, and the image's configuration is
    # the one in use: --check-config names the source of every setting. It also fetches the
    # CAM role's credentials from the simulator's metadata service (the compose settings run
    # the worker on a role): so it runs once the simulator does.
    res = worker_c.run(entry + worker_svc["command"] + ["--check-config"], env=wenv)
    check(res.returncode == 0, "worker --check-config with the compose settings", res.stderr)
    for var in sorted(wenv):
        check(re.search(r"(?m)^\S+ = .*# env %s$" % re.escape(var), res.stdout) is not None,
              "compose's %s is read by the worker" % var)
    check(re.search(r"(?m)^metrics\.listen = :9464\s+# /etc/classiclink-worker/"
                    r"classiclink-worker\.conf:\d+$", res.stdout) is not None,
          "metrics.listen comes from /etc/classiclink-worker/classiclink-worker.conf")

    check("# credentials: CVM role " in res.stdout,
          "the worker runs on the CAM role the simulator's metadata service hands out",
          res.stdout[:300])

    wargs = x_args(worker_svc["command"], "kafka.bootstrap.servers", bootstrap)
    t_start = time.monotonic()
    worker = Proc("worker", worker_c.argv(entry + wargs, wenv))
    worker.wait_line(r"metrics listening on \S*:9464\b", 30)
    uid, gid, root = proc_ids(worker.p.pid)
    check(uid == {"10001"} and gid == {"10001"} and root == worker_c.root,
          "the worker runs as 10001:10001 in its image root", "%s %s %s" % (uid, gid, root))

    # The demo requests, as the demo-requests service sends them.
    kargs = list(req_svc["command"])
    kargs[kargs.index("-b") + 1] = bootstrap
    kargs[kargs.index("-l") + 1] = host_path(option(kargs, "-l"), req_svc)
    with open(kargs[kargs.index("-l") + 1], encoding="utf-8") as f:
        count = len([line for line in f if line.strip()])
    res = run(["kcat"] + kargs, timeout=60)
    check(res.returncode == 0, "kcat sent the %d demo requests" % count, res.stderr)

    # Outcomes: kcat returns once COUNT records have arrived.
    results = topics[1][0]
    res = run(["kcat", "-b", bootstrap, "-C", "-t", results, "-o", "beginning", "-c",
               str(count), "-J", "-q"], timeout=120)
    records = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    check(res.returncode == 0 and len(records) == count, "%d outcomes on %s in %.1f s"
          % (len(records), results, time.monotonic() - t_start), res.stderr)
    outcomes = [json.loads(r["payload"]) for r in records]
    with open(os.path.join(WORK, "outcomes.json"), "w", encoding="utf-8") as f:
        json.dump(outcomes, f, indent=2)
    for o in outcomes:
        say("    %-22s %-9s %-16s %s" % (o["requestId"][:22], o["status"],
                                          o["errorClass"] or "-", o["codeDesc"]))
    check_outcomes(outcomes)

    status, _ = http_status("http://127.0.0.1:9464/healthz")
    check(status == 200, "/healthz answers 200", str(status))
    status, _ = http_status("http://127.0.0.1:9464/readyz")
    check(status == 200, "/readyz answers 200", str(status))
    status, body = http_status("http://127.0.0.1:9464/metrics")
    consumed = sum(float(v) for v in re.findall(
        r"(?m)^classiclink_records_consumed_total(?:\{[^}]*\})? (\S+)$", body))
    check(status == 200 and consumed == count, "/metrics counts %d consumed records" % count,
          "status %s, %s" % (status, consumed))
    res = worker_c.run(healthcheck, env=wenv)
    check(res.returncode == 0, "the image's HEALTHCHECK command passes as %s" % worker_c.user,
          res.stdout + res.stderr)

    # Draining: one more request, whose answer the simulator holds for DRAIN_LATENCY_MS;
    # SIGTERM while the call is in flight; its outcome must still be published.
    sim_url = "http://%s/_sim/faults" % listen
    req = urllib.request.Request(sim_url, data=json.dumps({"latencyMs": DRAIN_LATENCY_MS})
                                 .encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        check(r.status == 200, "vpc-sim holds every answer for %d ms from now" % DRAIN_LATENCY_MS)
    res = run(["kcat", "-b", bootstrap, "-P", "-t", topics[0][0], "-K", "\t"],
              input="team-d\t%s\n" % json.dumps(DRAIN_REQUEST), timeout=60)
    check(res.returncode == 0, "kcat sent %s" % DRAIN_REQUEST["requestId"], res.stderr)
    deadline = time.monotonic() + 30
    while True:
        _, body = http_status("http://127.0.0.1:9464/metrics")
        m = re.search(r"(?m)^classiclink_inflight_calls (\S+)$", body)
        if m and float(m.group(1)) >= 1:
            break
        if time.monotonic() >= deadline:
            raise Failed("no call in flight within 30 s (classiclink_inflight_calls %s)"
                         % (m.group(1) if m else "missing"))
        time.sleep(0.05)
    grace = int(str(worker_svc["stop_grace_period"]).rstrip("s"))
    t0 = time.monotonic()
    worker.p.send_signal(signal.SIGTERM)
    try:
        code = worker.p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        raise Failed("the worker still runs %d s (stop_grace_period) after SIGTERM" % grace)
    drain_s = time.monotonic() - t0
    worker.wait_line(r"\bstopped\b", 5)
    check(any(re.search(r"stopping: 1 call\(s\) in flight", line) for line in worker.lines),
          "SIGTERM came with 1 call in flight")
    check(code == 0, "SIGTERM: the worker drained and exited 0 in %.1f s" % drain_s,
          "exit %s" % code)
    res = run(["kcat", "-b", bootstrap, "-C", "-t", results, "-o", "beginning", "-c",
               str(count + 1), "-J", "-q"], timeout=60)
    last = [json.loads(json.loads(line)["payload"]) for line in res.stdout.splitlines()
            if line.strip()]
    drained = [o for o in last if o["requestId"] == DRAIN_REQUEST["requestId"]]
    check(len(drained) == 1 and drained[0]["status"] == "succeeded"
          and drained[0]["codeDesc"] == "Success",
          "the in-flight request's outcome was published before the exit: succeeded, Success",
          str(drained))
    res = worker_c.run(healthcheck, env=wenv)
    check(res.returncode != 0, "the image's HEALTHCHECK fails once the worker has stopped")

    sim.p.send_signal(signal.SIGTERM)
    check(sim.p.wait(timeout=30) == 0, "vpc-sim exits 0 on SIGTERM")
    broker.p.stdin.close()
    check(broker.p.wait(timeout=30) == 0, "the mock broker exits 0")
    return PASSED[0]


# ---- main -----------------------------------------------------------------------------------

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
PR_SET_PDEATHSIG = 1


def enter_namespaces():
    """Forks the check into a PID and mount namespace of its own, so that every process it
    starts (podman build's RUN steps included) and every mount it makes end with it. Returns in
    the child, PID 1 there; this process forwards SIGTERM, SIGINT and SIGHUP to it and exits
    with its status (the child gets SIGTERM if this process is killed)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS | CLONE_NEWPID) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS | CLONE_NEWPID)")
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        # Mounts stay in this namespace; /proc shows its processes.
        subprocess.run(["mount", "--make-rprivate", "/"], check=True)
        subprocess.run(["mount", "-t", "proc", "proc", "/proc"], check=True)
        return

    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, forward)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def end_other_processes():
    """The check runs as PID 1 of a PID namespace of its own (enter_namespaces): every other
    process in it was started by the check, directly or not (podman build's RUN steps outlive
    an interrupted podman). SIGKILL them all and reap them."""
    if os.getpid() != 1:
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        others = [int(n) for n in os.listdir("/proc") if n.isdigit() and n != "1"]
        if not others:
            return
        for pid in others:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0] != 0:
                pass
        except ChildProcessError:
            pass
        time.sleep(0.05)  # until the killed are gone (and reaped: they are this process's)
    say("processes still present after SIGKILL: %s" % " ".join(
        n for n in os.listdir("/proc") if n.isdigit() and n != "1"))


def cleanup(inner, mounted, tmp):
    if inner is not None and inner.poll() is None:
        inner.kill()  # unshare --kill-child: the run's namespaces go with it
        inner.wait()
    end_other_processes()
    if BUILDING:
        # An interrupted build leaves buildah's working containers in podman's storage.
        for cid in sorted(external_containers() - BUILDING["before"]):
            run(["podman", "rm", "--force", cid])
            say("removed the interrupted build's working container %s" % cid)
    for ref in reversed(mounted):
        run(["podman", "image", "unmount", ref])
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--inside":
        try:
            passed = inside(sys.argv[2])
        except (Failed, KeyboardInterrupt) as e:
            say("FAILED: %s" % (e if isinstance(e, Failed) else "interrupted"))
            print(PASSED[0], file=open(sys.argv[2] + ".passed", "w"))
            return 1
        print(passed, file=open(sys.argv[2] + ".passed", "w"))
        return 0

    t_all = time.monotonic()
    if os.geteuid() != 0:
        say("needs root (podman build, mounts, namespaces)")
        return 1
    enter_namespaces()
    interrupted = []

    def on_signal(signum, _frame):
        if not interrupted:
            interrupted.append(signum)  # once: Ctrl-C also arrives forwarded
            raise Failed("interrupted by signal %d" % signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    mounted = []
    tmp = None
    inner = None
    try:
        os.makedirs(WORK, exist_ok=True)
        # One check at a time on a machine: podman's storage and the image names are shared.
        lock = open(MACHINE_LOCK, "w", encoding="utf-8")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("waiting for another check-container run on this machine (%s)" % MACHINE_LOCK)
            fcntl.flock(lock, fcntl.LOCK_EX)
        say("%s; %s" % (run(["podman", "--version"]).stdout.strip(),
                        run(["debootstrap", "--version"]).stdout.strip()))
        doc = compose_config()

        t0 = time.monotonic()
        ensure_base_images()
        say("base images ready in %.1f s" % (time.monotonic() - t0))

        info, seconds = podman_build([], IMAGE, os.path.join(WORK, "image-build.log"))
        say("built %s (%s) in %.1f s" % (IMAGE, info["Id"][:12], seconds))
        binfo, seconds = podman_build(["--target", "build"], BUILD_IMAGE,
                                      os.path.join(WORK, "build-stage.log"))
        say("build stage %s (%s, %.0f MB) in %.1f s" % (BUILD_IMAGE, binfo["Id"][:12],
                                                         binfo["Size"] / 1e6, seconds))

        healthcheck = check_image_config(info, image_inspect("docker.io/library/debian:"
                                                             "bookworm-slim"))
        mnt = must(["podman", "image", "mount", IMAGE], "podman image mount").stdout.strip()
        mounted.append(IMAGE)
        build_mnt = must(["podman", "image", "mount", BUILD_IMAGE],
                         "podman image mount").stdout.strip()
        mounted.append(BUILD_IMAGE)
        check_image_files(mnt, info)
        check_compose(doc, mnt, info)

        tmp = tempfile.mkdtemp(prefix="clw-container-")
        ctx_path = os.path.join(tmp, "context.json")
        with open(ctx_path, "w", encoding="utf-8") as f:
            json.dump({"info": info, "compose": doc, "mnt": mnt, "build_mnt": build_mnt,
                       "tmp": tmp, "healthcheck": healthcheck}, f)
        say("running the image's services in a network, mount and PID namespace of their own")
        inner = subprocess.Popen(["unshare", "--net", "--mount", "--pid", "--fork",
                                  "--mount-proc", "--kill-child", sys.executable,
                                  os.path.abspath(__file__), "--inside", ctx_path])
        code = inner.wait()
        inner = None
        try:
            with open(ctx_path + ".passed", encoding="utf-8") as f:
                PASSED[0] += int(f.read().strip())
        except (OSError, ValueError):
            pass
        if code != 0:
            raise Failed("the run from the image failed (logs in %s)" % os.path.relpath(WORK,
                                                                                      REPO))
    except Failed as e:
        say("FAILED: %s" % e)
        say("%d passed, 1 failed" % PASSED[0])
        return 1
    finally:
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)  # cleanup runs to its end
        cleanup(inner, mounted, tmp)
    say("done in %.0f s" % (time.monotonic() - t_all))
    say("%d passed, 0 failed" % PASSED[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
