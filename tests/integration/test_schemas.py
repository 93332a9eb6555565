"""JSON Schemas of the request and outcome messages: examples that must pass and must fail."""

import copy
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import schemalib  # noqa: E402

# The contract's outcome example (section 4).
SUCCESS = {
    "schemaVersion": 1,
    "requestId": "7f3c2a10-attach-42",
    "action": "AttachClassicLinkVpc",
    "region": "ap-guangzhou",
    "vpcId": "vpc-2ari9m7h",
    "instanceIds": ["ins-df454d", "ins-5d8a23rs"],
    "status": "succeeded",
    "code": 0,
    "codeDesc": "Success",
    "message": "",
    "taskId": 135254,
    "errorClass": None,
    "attempts": 1,
    "source": {"topic": "classiclink.requests", "partition": 3, "offset": 1742},
    "enqueuedAt": "2026-11-25T21:06:31.990Z",
    "receivedAt": "2026-11-25T21:06:32.001Z",
    "completedAt": "2026-11-25T21:06:32.123Z",
}

# An undecodable record: nothing was carried validly but the default region.
INVALID = dict(SUCCESS, requestId="classiclink.requests:0:17", action=None, region="ap-guangzhou",
               vpcId=None, instanceIds=None, status="failed", code=4000,
               codeDesc="InvalidRequest.NotJson",
               message="invalid JSON at byte 0: unexpected character", taskId=None,
               errorClass="invalid_request", attempts=0,
               source={"topic": "classiclink.requests", "partition": 0, "offset": 17})

API_ERROR = dict(SUCCESS, status="failed", code=4000, codeDesc="InvalidVpc.NotFound",
                 message="vpc vpc-2ari9m7h does not exist", taskId=None, errorClass="api_error")

TIMEOUT = dict(SUCCESS, status="failed", code=None, codeDesc="Transport.Timeout", message="",
               taskId=None, errorClass="retries_exhausted", attempts=9)

HTTP_503 = dict(TIMEOUT, codeDesc="Transport.HttpStatus", httpStatus=503)


def with_(base, **changes):
    doc = copy.deepcopy(base)
    doc.update(changes)
    return doc


def without(base, *names):
    doc = copy.deepcopy(base)
    for name in names:
        doc.pop(name)
    return doc


OUTCOMES_VALID = [
    ("contract success", SUCCESS),
    ("invalid NotJson, default requestId", INVALID),
    ("invalid without any region", with_(INVALID, region=None)),
    ("invalid BadRequestId with rawRequestId",
     with_(INVALID, requestId="classiclink.requests:0:18", rawRequestId="bad id with spaces",
           codeDesc="InvalidRequest.BadRequestId", action="AttachClassicLinkVpc",
           vpcId="vpc-2ari9m7h", instanceIds=["ins-df454d"])),
    ("invalid Empty of a record without timestamp",
     with_(INVALID, codeDesc="InvalidRequest.Empty", enqueuedAt=None, message="empty value")),
    ("api_error with a business codeDesc", API_ERROR),
    ("api_error without codeDesc", with_(API_ERROR, code=5000, codeDesc=None)),
    ("retries_exhausted on timeouts", TIMEOUT),
    ("retries_exhausted on HTTP 503", HTTP_503),
    ("Transport.HttpStatus on a 200 without code", with_(HTTP_503, httpStatus=200)),
    ("Detach with a legacy VPC id",
     with_(SUCCESS, action="DetachClassicLinkVpc", vpcId="gz_vpc_245")),
    ("a coalesced success", with_(SUCCESS, coalesced=42)),
    ("a request that ran alone", with_(API_ERROR, coalesced=1)),
    ("later capability fields are allowed",
     with_(SUCCESS, reconciled=True, taskStatus="running",
           instances=[{"instanceId": "ins-df454d", "state": "linked"}])),
    ("reconciled success after InstanceAlreadyLinked",
     with_(SUCCESS, code=4000, codeDesc="InstanceAlreadyLinked", taskId=None, attempts=2,
           reconciled=True)),
    ("message of exactly 1024 characters", with_(API_ERROR, message="\u00e9" * 1024)),
    ("64-bit task id and offset",
     with_(SUCCESS, taskId=2 ** 62, source={"topic": "t", "partition": 0, "offset": 2 ** 62})),
    ("source with extra member", with_(SUCCESS, source={"topic": "t", "partition": 1,
                                                        "offset": 0, "leaderEpoch": 4})),
]

OUTCOMES_INVALID = [
    ("not an object", ["not", "an", "object"]),
    ("schemaVersion 2", with_(SUCCESS, schemaVersion=2)),
    ("empty requestId", with_(SUCCESS, requestId="")),
    ("requestId with a space", with_(SUCCESS, requestId="a b")),
    ("unknown action", with_(SUCCESS, action="CreateVpc")),
    ("uppercase region", with_(SUCCESS, region="AP-GUANGZHOU")),
    ("bad vpcId", with_(SUCCESS, vpcId="VPC-1")),
    ("empty instanceIds", with_(SUCCESS, instanceIds=[])),
    ("duplicate instanceIds", with_(SUCCESS, instanceIds=["ins-1", "ins-1"])),
    ("bad instance id", with_(SUCCESS, instanceIds=["i-1"])),
    ("unknown status", with_(SUCCESS, status="ok")),
    ("code as string", with_(SUCCESS, code="0")),
    ("code as float", with_(SUCCESS, code=0.5)),
    ("taskId as string", with_(SUCCESS, taskId="135254")),
    ("message not a string", with_(SUCCESS, message=None)),
    ("message over 1 KiB", with_(API_ERROR, message="x" * 1025)),
    ("unknown errorClass", with_(API_ERROR, errorClass="weird")),
    ("succeeded with an errorClass", with_(SUCCESS, errorClass="api_error")),
    ("succeeded without attempts", with_(SUCCESS, attempts=0)),
    ("failed without errorClass", with_(API_ERROR, errorClass=None)),
    ("negative attempts", with_(INVALID, attempts=-1)),
    ("coalesced 0", with_(SUCCESS, coalesced=0)),
    ("coalesced as a string", with_(SUCCESS, coalesced="3")),
    ("an invalid request made no call to share", with_(INVALID, coalesced=1)),
    ("attempts as float", with_(SUCCESS, attempts=1.5)),
    ("invalid_request that made a call", with_(INVALID, attempts=1)),
    ("invalid_request with code 4001", with_(INVALID, code=4001)),
    ("invalid_request with an unknown reason", with_(INVALID, codeDesc="InvalidRequest.Bogus")),
    ("invalid_request succeeded", with_(INVALID, status="succeeded", errorClass=None)),
    ("invalid_request with httpStatus", with_(INVALID, httpStatus=400)),
    ("api_error without action", with_(API_ERROR, action=None)),
    ("api_error without instanceIds", with_(API_ERROR, instanceIds=None)),
    ("api_error without attempts", with_(API_ERROR, attempts=0)),
    ("rawRequestId on a valid request", with_(SUCCESS, rawRequestId="x")),
    ("rawRequestId over 128", with_(INVALID, rawRequestId="x" * 129)),
    ("code null with a non-transport codeDesc", with_(TIMEOUT, codeDesc="Success")),
    ("Transport codeDesc with a code", with_(TIMEOUT, code=0)),
    ("Transport.HttpStatus without httpStatus", without(HTTP_503, "httpStatus")),
    ("httpStatus with an API code", with_(SUCCESS, httpStatus=200)),
    ("httpStatus out of range", with_(HTTP_503, httpStatus=42)),
    ("taskId with a transport failure", with_(TIMEOUT, taskId=5)),
    ("source without offset", with_(SUCCESS, source={"topic": "t", "partition": 0})),
    ("negative partition", with_(SUCCESS, source={"topic": "t", "partition": -1, "offset": 0})),
    ("timestamp without milliseconds", with_(SUCCESS, completedAt="2026-11-25T21:06:32Z")),
    ("timestamp with an offset", with_(SUCCESS, receivedAt="2026-11-25T21:06:32.001+08:00")),
    ("timestamp with microseconds", with_(SUCCESS, receivedAt="2026-11-25T21:06:32.001123Z")),
    ("timestamp month 13", with_(SUCCESS, completedAt="2026-13-25T21:06:32.123Z")),
    ("receivedAt null", with_(SUCCESS, receivedAt=None)),
] + [("missing " + name, without(SUCCESS, name)) for name in SUCCESS]

# Raw texts: what a strict consumer must refuse even when the decoded object would pass.
OUTCOME_TEXTS_INVALID = [
    ("duplicate field", json.dumps(SUCCESS)[:-1] + ', "status": "failed"}'),
    ("NaN", json.dumps(SUCCESS).replace('"taskId": 135254', '"taskId": NaN')),
    ("not UTF-8", json.dumps(API_ERROR).encode("utf-8").replace(b"does not", b"\xff")),
    ("over 64 KiB", json.dumps(with_(SUCCESS, padding="x" * 65536))),
    ("not JSON", "{"),
]

REQUEST = {
    "schemaVersion": 1,
    "requestId": "7f3c2a10-attach-42",
    "action": "AttachClassicLinkVpc",
    "region": "ap-guangzhou",
    "vpcId": "vpc-2ari9m7h",
    "instanceIds": ["ins-df454d", "ins-5d8a23rs"],
}

REQUESTS_VALID = [
    ("contract example", REQUEST),
    ("minimal", {"vpcId": "vpc-1", "instanceIds": ["ins-1"]}),
    ("nulls count as absent", {"schemaVersion": None, "requestId": None, "action": None,
                               "region": None, "vpcId": "vpc-1", "instanceIds": ["ins-1"]}),
    ("schemaVersion 1.0", with_(REQUEST, schemaVersion=1.0)),
    ("Detach", with_(REQUEST, action="DetachClassicLinkVpc")),
    ("legacy VPC id", with_(REQUEST, vpcId="gz_vpc_245")),
    ("unknown fields are ignored", with_(REQUEST, team="a", priority=3)),
    ("128-character requestId", with_(REQUEST, requestId="a:b.c_d-" * 16)),
    ("default-style requestId", with_(REQUEST, requestId="classiclink.requests:3:1742")),
    ("32-character ids", with_(REQUEST, vpcId="vpc-" + "a" * 32, region="r" * 32,
                               instanceIds=["ins-" + "0" * 32])),
    ("100 instances", with_(REQUEST, instanceIds=["ins-%d" % i for i in range(100)])),
]

REQUESTS_INVALID = [
    ("NotObject", ["vpc-1"]),
    ("UnsupportedVersion", with_(REQUEST, schemaVersion=2)),
    ("UnsupportedVersion 1.5", with_(REQUEST, schemaVersion=1.5)),
    ("WrongType schemaVersion", with_(REQUEST, schemaVersion="1")),
    ("MissingField vpcId", without(REQUEST, "vpcId")),
    ("MissingField instanceIds", without(REQUEST, "instanceIds")),
    ("MissingField vpcId null", with_(REQUEST, vpcId=None)),
    ("MissingField empty instanceIds", with_(REQUEST, instanceIds=[])),
    ("WrongType vpcId", with_(REQUEST, vpcId=5)),
    ("WrongType instanceIds", with_(REQUEST, instanceIds="ins-1")),
    ("WrongType instance id", with_(REQUEST, instanceIds=[5])),
    ("WrongType requestId", with_(REQUEST, requestId=5)),
    ("BadRequestId space", with_(REQUEST, requestId="a b")),
    ("BadRequestId empty", with_(REQUEST, requestId="")),
    ("BadRequestId 129", with_(REQUEST, requestId="a" * 129)),
    ("BadAction", with_(REQUEST, action="Attach")),
    ("BadRegion", with_(REQUEST, region="AP-GUANGZHOU")),
    ("BadRegion too long", with_(REQUEST, region="r" * 33)),
    ("BadVpcId prefix only", with_(REQUEST, vpcId="vpc-")),
    ("BadVpcId uppercase", with_(REQUEST, vpcId="vpc-ABC")),
    ("BadVpcId 33", with_(REQUEST, vpcId="vpc-" + "a" * 33)),
    ("BadVpcId legacy without digits", with_(REQUEST, vpcId="gz_vpc_")),
    ("BadInstanceId", with_(REQUEST, instanceIds=["ins-A"])),
    ("BadInstanceId no prefix", with_(REQUEST, instanceIds=["i-123"])),
    ("DuplicateInstanceId", with_(REQUEST, instanceIds=["ins-1", "ins-2", "ins-1"])),
    ("TooManyInstances", with_(REQUEST, instanceIds=["ins-%d" % i for i in range(101)])),
]

REQUEST_TEXTS_INVALID = [
    ("DuplicateField", '{"vpcId":"vpc-1","instanceIds":["ins-1"],"vpcId":"vpc-2"}'),
    ("NotJson", "{'vpcId': 'vpc-1'}"),
    ("TooLarge", json.dumps(with_(REQUEST, pad="x" * 65536))),
]


class SchemaFiles(unittest.TestCase):
    def test_schemas_are_valid_draft_2020_12(self):
        for name in ("request", "outcome"):
            with self.subTest(schema=name):
                with open(schemalib.schema_path(name), encoding="utf-8") as f:
                    schema = json.load(f)
                self.assertEqual(schema["$schema"],
                                 "https://json-schema.org/draft/2020-12/schema")
                schemalib.jsonschema.Draft202012Validator.check_schema(schema)

    def test_outcome_schema_lists_every_contract_field(self):
        with open(schemalib.schema_path("outcome"), encoding="utf-8") as f:
            schema = json.load(f)
        self.assertEqual(set(schema["required"]), set(SUCCESS))
        self.assertTrue(schema.get("additionalProperties", True))
        for optional in ("rawRequestId", "httpStatus"):
            self.assertIn(optional, schema["properties"])
            self.assertNotIn(optional, schema["required"])

    def test_invalid_reasons_match_the_readme(self):
        # The outcome schema's InvalidRequest.<Reason> list is the README's, in its order.
        with open(os.path.join(schemalib.source_dir(), "README.md"), encoding="utf-8") as f:
            readme = f.read()
        para = readme[readme.index("`InvalidRequest.<Reason>`"):]
        para = para[:para.index("first")]
        reasons = re.findall(r"`([A-Za-z]+)`", para)
        with open(schemalib.schema_path("outcome"), encoding="utf-8") as f:
            schema = json.load(f)
        listed = schema["allOf"][1]["then"]["properties"]["codeDesc"]["enum"]
        self.assertEqual(["InvalidRequest." + r for r in reasons], listed)


class Outcomes(unittest.TestCase):
    def test_valid(self):
        for name, doc in OUTCOMES_VALID:
            with self.subTest(name):
                self.assertEqual(schemalib.validate_outcome(doc), doc)
                self.assertEqual(schemalib.validate_outcome(json.dumps(doc)), doc)

    def test_invalid(self):
        for name, doc in OUTCOMES_INVALID:
            with self.subTest(name):
                with self.assertRaises(schemalib.SchemaError):
                    schemalib.validate_outcome(doc)

    def test_invalid_texts(self):
        for name, text in OUTCOME_TEXTS_INVALID:
            with self.subTest(name):
                with self.assertRaises(schemalib.SchemaError):
                    schemalib.validate_outcome(text)

    def test_error_names_the_path(self):
        with self.assertRaises(schemalib.SchemaError) as cm:
            schemalib.validate_outcome(with_(SUCCESS, source={"topic": "t", "partition": "3",
                                                              "offset": 1}))
        self.assertIn("/source/partition", str(cm.exception))

    def test_readme_example(self):
        # The outcome example in the README is a valid outcome.
        examples = readme_json_blocks()
        outcomes = [d for d in examples if "status" in d]
        self.assertEqual(len(outcomes), 1)
        schemalib.validate_outcome(outcomes[0])


class Requests(unittest.TestCase):
    def test_valid(self):
        for name, doc in REQUESTS_VALID:
            with self.subTest(name):
                self.assertEqual(schemalib.validate_request(doc), doc)

    def test_invalid(self):
        for name, doc in REQUESTS_INVALID:
            with self.subTest(name):
                with self.assertRaises(schemalib.SchemaError):
                    schemalib.validate_request(doc)

    def test_invalid_texts(self):
        for name, text in REQUEST_TEXTS_INVALID:
            with self.subTest(name):
                with self.assertRaises(schemalib.SchemaError):
                    schemalib.validate_request(text)

    def test_readme_example(self):
        requests = [d for d in readme_json_blocks() if "status" not in d]
        self.assertEqual(len(requests), 1)
        schemalib.validate_request(requests[0])


def readme_json_blocks():
    with open(os.path.join(schemalib.source_dir(), "README.md"), encoding="utf-8") as f:
        text = f.read()
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]


if __name__ == "__main__":
    unittest.main()
