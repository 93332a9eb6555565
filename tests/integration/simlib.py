"""Reusable pieces for tests that talk to the VPC API simulator (tools/vpc-sim).

Python 3 standard library only. The signers here are a third, independent implementation of the
Tencent Cloud API v2 signature and of the API 3.0 TC3-HMAC-SHA256 signature (the worker and the
simulator each have their own in C).

    from simlib import Sim
    with Sim().start(seed={"generate": {"vpcs": 1, "instances": 10}}) as sim:
        reply = sim.call("AttachClassicLinkVpc", {"vpcId": "vpc-0", "instanceIds": ["ins-1"]})
        assert reply.json["code"] == 0
        reply = sim.call_v3("DetachClassicLinkVpc", {"VpcId": "vpc-0", "InstanceIds": ["ins-1"]})
        assert "Error" not in reply.json["Response"]
        assert sim.stats()["instances"]["attached"]["ins-1"] == 1

Temporary credentials (start the simulator with --cvm-role NAME, or the --oidc-* options):

        cred = sim.metadata("NAME").json            # the CVM metadata service
        cred = sim.assume_role_with_web_identity({...}).json["Response"]  # STS
        sim.call("DescribeVpcEx", {}, **temp_credential_args(cred))
"""

import base64
import hashlib
import hmac
import json
import os
import random
import select
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import namedtuple

API_PATH = "/v2/index.php"
V3_PATH = "/"
V3_VERSION = "2017-03-12"
V3_SERVICE = "vpc"
V3_CONTENT_TYPE = "application/json; charset=utf-8"
DEFAULT_SECRET_ID = "AKIDvpcsimTEST0000000000000000000000"
DEFAULT_SECRET_KEY = "vpcsimTestSecretKey0000000000000"
DEFAULT_REGION = "ap-guangzhou"
METADATA_PATH = "/latest/meta-data/cam/security-credentials/"
STS_ACTION = "AssumeRoleWithWebIdentity"
STS_VERSION = "2018-08-13"

Reply = namedtuple("Reply", "status headers body json")


def sim_binary():
    """Path of the built simulator: $CLW_BUILD_DIR/tools/vpc-sim/vpc-sim."""
    build = os.environ.get("CLW_BUILD_DIR")
    if not build:
        source = os.environ.get("CLW_SOURCE_DIR",
                                os.path.join(os.path.dirname(__file__), "..", ".."))
        build = os.path.join(source, "build")
    return os.path.join(build, "tools", "vpc-sim", "vpc-sim")


# ---- signing -------------------------------------------------------------------------------

def url_encode(value):
    """Percent-encodes everything outside [A-Za-z0-9-_.~] (so '/', '+', '=' are encoded)."""
    return urllib.parse.quote(str(value), safe="-_.~")


def flatten(params):
    """{"instanceIds": ["a", "b"]} -> {"instanceIds.0": "a", "instanceIds.1": "b"}; values
    become strings; None values are dropped."""
    flat = {}
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                flat["%s.%d" % (name, i)] = str(item)
        else:
            flat[name] = str(value)
    return flat


def string_to_sign(method, host, path, params):
    """METHOD + host + path + '?' + name=value pairs ('_' -> '.' in names, byte order, raw
    values, Signature left out)."""
    pairs = sorted(((name.replace("_", "."), value) for name, value in params.items()
                    if name != "Signature"), key=lambda p: p[0].encode("utf-8"))
    return "%s%s%s?%s" % (method, host, path, "&".join("%s=%s" % p for p in pairs))


def signature(secret_key, text, signature_method=None):
    """Base64(HMAC(key, text)): SHA-256 for HmacSHA256, SHA-1 otherwise."""
    digest = hashlib.sha256 if signature_method == "HmacSHA256" else hashlib.sha1
    mac = hmac.new(secret_key.encode("utf-8"), text.encode("utf-8"), digest).digest()
    return base64.b64encode(mac).decode("ascii")


def common_params(action, secret_id=DEFAULT_SECRET_ID, region=DEFAULT_REGION, timestamp=None,
                  nonce=None, signature_method="HmacSHA256"):
    """The capitalised common parameters with a fresh Timestamp and random Nonce."""
    params = {
        "Action": action,
        "Region": region,
        "SecretId": secret_id,
        "Timestamp": str(int(time.time()) if timestamp is None else timestamp),
        "Nonce": str(random.randint(1, 2**62) if nonce is None else nonce),
    }
    if signature_method is not None:
        params["SignatureMethod"] = signature_method
    return params


def sign_v2(params, secret_key=DEFAULT_SECRET_KEY, method="GET", host="127.0.0.1",
            path=API_PATH):
    """Signs flat params (must hold every common parameter but Signature) and returns the
    URL-encoded "name=value&...&Signature=..." string for a GET query or a POST body."""
    params = dict(params)
    params["Signature"] = signature(secret_key, string_to_sign(method, host, path, params),
                                    params.get("SignatureMethod"))
    return "&".join("%s=%s" % (url_encode(k), url_encode(v)) for k, v in params.items())


# ---- API 3.0 signing (TC3-HMAC-SHA256) -----------------------------------------------------

def tc3_canonical_request(payload, host, content_type=V3_CONTENT_TYPE, method="POST",
                          signed_headers=None):
    """METHOD, "/", "" (query), the canonical headers (lowercase names and values, trimmed),
    the signed header names and hex SHA-256 of the payload (bytes), joined by newlines.
    signed_headers: list of (name, value); default content-type and host."""
    if signed_headers is None:
        signed_headers = [("content-type", content_type), ("host", host)]
    canonical = "".join("%s:%s\n" % (name.lower(), value.strip().lower())
                        for name, value in signed_headers)
    names = ";".join(name.lower() for name, _ in signed_headers)
    return "\n".join([method, "/", "", canonical, names, hashlib.sha256(payload).hexdigest()])


def tc3_string_to_sign(timestamp, canonical_request, service=V3_SERVICE, date=None):
    """TC3-HMAC-SHA256, the timestamp, DATE/SERVICE/tc3_request, hex SHA-256 of the canonical
    request. DATE defaults to the UTC date of timestamp."""
    date = date or tc3_date(timestamp)
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return "TC3-HMAC-SHA256\n%d\n%s/%s/tc3_request\n%s" % (int(timestamp), date, service, digest)


def tc3_date(timestamp):
    return time.strftime("%Y-%m-%d", time.gmtime(int(timestamp)))


def tc3_signature(secret_key, string_to_sign, date, service=V3_SERVICE):
    """Hex HMAC-SHA256 with the derived key TC3+key -> date -> service -> tc3_request."""
    def mac(key, msg):
        return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()
    key = mac(("TC3" + secret_key).encode("utf-8"), date)
    key = mac(key, service)
    key = mac(key, "tc3_request")
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def tc3_authorization(secret_id, secret_key, payload, host, timestamp, service=V3_SERVICE,
                      content_type=V3_CONTENT_TYPE, date=None, signed_headers=None):
    """The Authorization header value for a POST / with payload (bytes)."""
    date = date or tc3_date(timestamp)
    creq = tc3_canonical_request(payload, host, content_type, signed_headers=signed_headers)
    sig = tc3_signature(secret_key, tc3_string_to_sign(timestamp, creq, service, date), date,
                        service)
    names = ";".join(n.lower() for n, _ in (signed_headers or [("content-type", ""),
                                                                 ("host", "")]))
    return ("TC3-HMAC-SHA256 Credential=%s/%s/%s/tc3_request, SignedHeaders=%s, Signature=%s"
            % (secret_id, date, service, names, sig))


def temp_credential_args(cred):
    """secret_id, secret_key and token keyword arguments of Sim.call / Sim.call_v3 for a
    temporary credential: the metadata document, or STS's Response (its Credentials)."""
    cred = cred.get("Credentials", cred)
    return {"secret_id": cred["TmpSecretId"], "secret_key": cred["TmpSecretKey"],
            "token": cred["Token"]}


def wait_for_time(unix_s, timeout=30.0):
    """Returns once the wall clock reached unix_s (e.g. a credential's ExpiredTime); raises
    SimError when that is more than timeout seconds away."""
    if unix_s - time.time() > timeout:
        raise SimError("%s is more than %s s away" % (unix_s, timeout))
    while time.time() < unix_s:
        time.sleep(min(0.05, max(0.0, unix_s - time.time())))


# ---- the simulator process -----------------------------------------------------------------

class SimError(Exception):
    pass


class Sim:
    """One simulator process. start() returns self; use as a context manager or call stop()."""

    def __init__(self, binary=None):
        self.binary = binary or sim_binary()
        self.proc = None
        self.port = None
        self.host = "127.0.0.1"
        self.scheme = "http"
        self.ssl_context = None
        self.secret_id = DEFAULT_SECRET_ID
        self.secret_key = DEFAULT_SECRET_KEY
        self.tmp = None
        self.stderr_path = None
        self.call_log = None

    # -- life cycle --

    def start(self, seed=None, credentials=None, extra_args=(), tls=None, listen="127.0.0.1:0",
              call_log=True, ready_timeout=10.0):
        """Starts the simulator and waits for its "listening on HOST:PORT" line.

        seed: a seed document (dict) or None for an empty world.
        credentials: list of (secret_id, secret_key) pairs; the first is used by call().
        tls: (cert_path, key_path[, ca_path]) to serve HTTPS; calls then verify with ca_path
             (default cert_path).
        call_log: True for a log file in the temp dir (path in .call_log), a path, or False.
        """
        self.tmp = tempfile.TemporaryDirectory(prefix="vpc-sim-")
        creds = credentials or [(DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY)]
        self.secret_id, self.secret_key = creds[0][0], creds[0][1]
        creds_path = os.path.join(self.tmp.name, "credentials")
        with open(creds_path, "w") as f:
            for cred in creds:
                f.write(" ".join(cred) + "\n")
        os.chmod(creds_path, 0o600)
        args = [self.binary, "--listen", listen, "--credentials", creds_path]
        if seed is not None:
            seed_path = os.path.join(self.tmp.name, "seed.json")
            with open(seed_path, "w") as f:
                json.dump(seed, f)
            args += ["--seed", seed_path]
        if call_log:
            self.call_log = (call_log if isinstance(call_log, str)
                             else os.path.join(self.tmp.name, "calls.jsonl"))
            args += ["--call-log", self.call_log]
        if tls:
            args += ["--tls-cert", tls[0], "--tls-key", tls[1]]
            self.scheme = "https"
            self.ssl_context = ssl.create_default_context(
                cafile=tls[2] if len(tls) > 2 else tls[0])
        args += list(extra_args)
        self.stderr_path = os.path.join(self.tmp.name, "stderr")
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err)
        self._wait_ready(ready_timeout)
        return self

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise SimError("vpc-sim did not report readiness: " + self.stderr())
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 1)
                if not chunk:
                    code = self.proc.wait()
                    raise SimError("vpc-sim exited with %s: %s" % (code, self.stderr()))
                line += chunk
        text = line.decode().strip()
        if not text.startswith("listening on "):
            self.stop()
            raise SimError("unexpected first line from vpc-sim: %r" % text)
        hostport = text[len("listening on "):]
        self.port = int(hostport.rsplit(":", 1)[1])

    def stderr(self):
        try:
            with open(self.stderr_path, "r", errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def stop(self, timeout=10.0):
        """SIGTERM, wait, SIGKILL if needed. Returns the exit status."""
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            code = self.proc.returncode
            self.proc.stdout.close()
            self.proc = None
            if code != 0:
                sys.stderr.write("vpc-sim exited with status %s:\n%s\n" % (code, self.stderr()))
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None
        return code

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- addresses --

    @property
    def url(self):
        """Base URL, e.g. http://127.0.0.1:PORT"""
        return "%s://%s:%d" % (self.scheme, self.host, self.port)

    @property
    def endpoint(self):
        """The v2 API endpoint URL, for api.endpoint of the worker."""
        return self.url + API_PATH

    @property
    def endpoint_v3(self):
        """The API 3.0 endpoint URL (base URL + "/")."""
        return self.url + V3_PATH

    # -- the API --

    def request(self, query, method="GET", timeout=10.0, content_type=None):
        """Sends an already signed query (GET) or form body (POST). Returns a Reply for any
        HTTP answer; raises OSError (e.g. ConnectionResetError, RemoteDisconnected, timeout)
        when the connection is dropped or nothing comes back in time."""
        if method == "GET":
            req = urllib.request.Request(self.endpoint + "?" + query, method="GET")
        else:
            req = urllib.request.Request(self.endpoint, data=query.encode(), method=method)
            req.add_header("Content-Type",
                           content_type or "application/x-www-form-urlencoded")
        return self._send(req, timeout)

    def call(self, action, params=None, method="GET", secret_id=None, secret_key=None,
             region=DEFAULT_REGION, timestamp=None, nonce=None, signature_method="HmacSHA256",
             timeout=10.0, sign_host=None, token=None):
        """Signs and sends one API call. params may hold lists (instanceIds). token: the Token
        parameter (a temporary credential's)."""
        full = common_params(action, secret_id or self.secret_id, region, timestamp, nonce,
                             signature_method)
        full.update(flatten(params or {}))
        if token is not None:
            full["Token"] = token
        query = sign_v2(full, secret_key or self.secret_key, method, sign_host or self.host)
        return self.request(query, method, timeout)

    def call_v3(self, action, body_dict=None, secret_id=None, secret_key=None,
                region=DEFAULT_REGION, timestamp=None, host=None, version=V3_VERSION,
                token=None, content_type=V3_CONTENT_TYPE, service=V3_SERVICE, date=None,
                body=None, headers=None, omit=(), timeout=10.0):
        """Signs (TC3-HMAC-SHA256) and sends one API 3.0 call: POST / with body_dict as JSON.

        host: the host signed (default the simulator's, without the port).
        body: raw payload bytes instead of body_dict. headers: extra or replacing headers,
        added after signing (so they can break it). omit: header names not to send.
        Returns a Reply; the answer is in reply.json["Response"]."""
        payload = body if body is not None else json.dumps(body_dict or {}).encode("utf-8")
        ts = int(time.time()) if timestamp is None else int(timestamp)
        sign_host = host or self.host
        hdrs = {
            "Content-Type": content_type,
            "X-TC-Action": action,
            "X-TC-Version": version,
            "X-TC-Region": region,
            "X-TC-Timestamp": str(ts),
            "Authorization": tc3_authorization(secret_id or self.secret_id,
                                               secret_key or self.secret_key, payload,
                                               sign_host, ts, service, content_type, date),
        }
        if token is not None:
            hdrs["X-TC-Token"] = token
        hdrs.update(headers or {})
        for name in omit:
            hdrs.pop(name, None)
        return self.request_v3(payload, hdrs, timeout)

    def request_v3(self, payload, headers, timeout=10.0):
        """POSTs payload (bytes) to / with exactly these headers (plus Host and
        Content-Length); returns a Reply."""
        req = urllib.request.Request(self.endpoint_v3, data=payload, method="POST")
        for name, value in headers.items():
            req.add_header(name, value)
        if "Content-Type" not in headers:
            # urllib would add a form content type of its own: send none instead.
            req.add_unredirected_header("Content-Type", "")
        return self._send(req, timeout)

    def metadata(self, role="", timeout=10.0):
        """GET the CVM metadata service's role list (role "") or a role's credentials."""
        return self.get(METADATA_PATH + role, timeout)

    def assume_role_with_web_identity(self, body_dict=None, headers=None, omit=(), body=None,
                                      region=DEFAULT_REGION, timeout=10.0):
        """POST / as the official SDKs call STS AssumeRoleWithWebIdentity: unsigned
        (Authorization: SKIP), X-TC-Version 2018-08-13, a JSON body. headers replace or add
        headers, omit drops some, body sends raw bytes. The answer is reply.json["Response"]."""
        payload = body if body is not None else json.dumps(body_dict or {}).encode("utf-8")
        hdrs = {
            "Content-Type": "application/json",
            "X-TC-Action": STS_ACTION,
            "X-TC-Version": STS_VERSION,
            "X-TC-Region": region,
            "X-TC-Timestamp": str(int(time.time())),
            "Authorization": "SKIP",
        }
        hdrs.update(headers or {})
        for name in omit:
            hdrs.pop(name, None)
        return self.request_v3(payload, hdrs, timeout)

    def get(self, path, timeout=10.0):
        """GET any path on the simulator (e.g. "/_sim/stats"); returns a Reply."""
        return self._send(urllib.request.Request(self.url + path, method="GET"), timeout)

    def _send(self, req, timeout):
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ssl_context) as resp:
                return self._reply(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as err:
            return self._reply(err.code, err.headers, err.read())

    @staticmethod
    def _reply(status, headers, body):
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        return Reply(status, headers, body, doc)

    # -- admin endpoints --

    def admin(self, name, body=None, method=None):
        """GET (no body) or POST (body as JSON) /_sim/<name>; returns the decoded JSON.
        Raises SimError on a non-200 answer."""
        data = json.dumps(body).encode() if body is not None else None
        method = method or ("POST" if data is not None else "GET")
        req = urllib.request.Request(self.url + "/_sim/" + name, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        reply = self._send(req, 30.0)
        if reply.status != 200:
            raise SimError("/_sim/%s: HTTP %d %s" % (name, reply.status, reply.body[:200]))
        return reply.json

    def state(self):
        return self.admin("state")

    def stats(self):
        return self.admin("stats")

    def reset(self):
        """State back to the seed, counters zero, faults and config as at start."""
        return self.admin("reset", method="POST")

    def set_seed(self, seed):
        """Replaces the seed and reloads the state from it (counters zero)."""
        return self.admin("seed", seed)

    def add_faults(self, doc):
        """POST /_sim/faults, e.g. {"scripts": [{"instanceId": "ins-1", "fault": "http:503"}]}."""
        return self.admin("faults", doc)

    def faults(self):
        return self.admin("faults")

    def config(self, doc=None):
        """GET, or POST a change to, /_sim/config (sameVpcAttach, businessCode, ...)."""
        return self.admin("config", doc) if doc is not None else self.admin("config")

    def linked(self, instance_id):
        """The VPC id instance_id is linked to in the simulator's state, or None."""
        for ins in self.state()["instances"]:
            if ins["instanceId"] == instance_id:
                return ins["linkedVpc"]
        raise KeyError(instance_id)

    def read_call_log(self):
        """Every call-log entry so far, as dicts."""
        with open(self.call_log) as f:
            return [json.loads(line) for line in f if line.strip()]
