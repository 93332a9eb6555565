"""schemalib: validate request and outcome messages against docs/schemas/*.schema.json.

Uses the Debian package python3-jsonschema (installed by scripts/deps). Integration tests call
validate_outcome() on every outcome they read:

    import schemalib
    for rec in kafkalib.consume(bootstrap, "classiclink.results"):
        schemalib.validate_outcome(rec["value"])      # str, bytes or an already decoded dict

Both functions raise SchemaError (an AssertionError, so unittest reports a failure, not an
error) naming every violation with its JSON path; they return the decoded object.
"""

import json
import os

try:
    import jsonschema
except ImportError as exc:  # pragma: no cover - depends on the machine
    raise ImportError("schemalib needs python3-jsonschema (run scripts/deps)") from exc

_HERE = os.path.dirname(os.path.abspath(__file__))


def source_dir():
    """The repository root: $CLW_SOURCE_DIR, else two levels above this file."""
    return os.environ.get("CLW_SOURCE_DIR") or os.path.normpath(os.path.join(_HERE, "..", ".."))


def schema_path(name):
    """Path of docs/schemas/<name>.schema.json."""
    return os.path.join(source_dir(), "docs", "schemas", name + ".schema.json")


class SchemaError(AssertionError):
    """A message does not match its schema; .errors holds the individual messages."""

    def __init__(self, what, errors, document):
        self.errors = errors
        self.document = document
        text = "; ".join(errors)
        if len(text) > 2000:
            text = text[:2000] + "..."
        super().__init__("%s does not match its schema: %s\n  document: %.1000r"
                         % (what, text, document))


_VALIDATORS = {}


def validator(name):
    """A cached Draft 2020-12 validator for docs/schemas/<name>.schema.json (the schema itself
    is checked against the metaschema on first use)."""
    v = _VALIDATORS.get(name)
    if v is None:
        with open(schema_path(name), encoding="utf-8") as f:
            schema = json.load(f)
        jsonschema.Draft202012Validator.check_schema(schema)
        v = jsonschema.Draft202012Validator(schema)
        _VALIDATORS[name] = v
    return v


def _strict_json(text):
    """Decodes JSON the way a strict consumer would: NaN/Infinity and duplicate names are
    errors (Python's json module accepts both by default)."""
    def no_constant(name):
        raise ValueError("not JSON: %s" % name)

    def no_duplicates(pairs):
        seen = {}
        for key, value in pairs:
            if key in seen:
                raise ValueError("duplicate field %r" % key)
            seen[key] = value
        return seen

    return json.loads(text, parse_constant=no_constant, object_pairs_hook=no_duplicates)


def _errors(name, obj):
    found = sorted(validator(name).iter_errors(obj), key=lambda e: list(e.absolute_path))
    return ["%s: %s" % ("/" + "/".join(str(p) for p in e.absolute_path), e.message)
            for e in found]


def _check(name, doc):
    obj = doc
    if isinstance(doc, (bytes, bytearray)):
        try:
            doc = bytes(doc).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SchemaError(name, ["not UTF-8: %s" % exc], doc[:200]) from None
    if isinstance(doc, str):
        try:
            obj = _strict_json(doc)
        except ValueError as exc:
            raise SchemaError(name, ["not JSON: %s" % exc], doc) from None
    errors = _errors(name, obj)
    if errors:
        raise SchemaError(name, errors, obj)
    return obj


def validate_outcome(obj):
    """Validates one results-topic value (dict, str or bytes); returns the decoded dict. Also
    checks the 64 KiB limit when given the raw text."""
    if isinstance(obj, (str, bytes, bytearray)):
        raw = obj.encode("utf-8") if isinstance(obj, str) else bytes(obj)
        if len(raw) > 65536:
            raise SchemaError("outcome", ["value of %d bytes exceeds 65536" % len(raw)],
                              raw[:200])
    return _check("outcome", obj)


def validate_request(obj):
    """Validates one requests-topic value (dict, str or bytes) against the request schema;
    returns the decoded dict."""
    if isinstance(obj, (str, bytes, bytearray)):
        raw = obj.encode("utf-8") if isinstance(obj, str) else bytes(obj)
        if len(raw) > 65536:
            raise SchemaError("request", ["value of %d bytes exceeds 65536" % len(raw)],
                              raw[:200])
    return _check("request", obj)
