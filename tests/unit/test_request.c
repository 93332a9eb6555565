/* Unit tests for request: invalid reasons in first-match order, hostile input, id grammar. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clw/request.h"

#define DEFAULT_ID     "classiclink.requests:3:1742"
#define DEFAULT_REGION "ap-guangzhou"
#define MAX_INSTANCES  3
#define MAX_BYTES      65536

/* Generators build inputs too big or too regular for a literal; they return malloc'd bytes. */
typedef char *(*gen_fn)(size_t *len);

struct request_case {
    const char *name;
    const char *json; /* NULL: a tombstone (unless gen is set) */
    size_t len;       /* 0: strlen(json); set it for inputs holding NUL bytes */
    gen_fn gen;
    int no_default_region;
    const char *reason; /* NULL: valid */
    const char *detail; /* when set, the exact detail */
    /* Expected carried fields, checked only when check is set (reason and ids always). */
    const char *request_id; /* NULL: DEFAULT_ID */
    const char *raw_request_id;
    int check;
    const char *region;
    const char *vpc_id;
    int has_action;
    enum clw_action action;
    size_t n_instances;
    const char *first_instance;
};

/* A valid body around one replaced field. */
#define VPC         "\"vpcId\":\"vpc-2ari9m7h\""
#define INS         "\"instanceIds\":[\"ins-df454d\"]"
#define WITH(f)     "{" f "," VPC "," INS "}"
#define WITH_VPC(v) "{\"vpcId\":" v "," INS "}"
#define WITH_INS(v) "{" VPC ",\"instanceIds\":" v "}"
#define WITH_RID(v) "{\"requestId\":" v "," VPC "," INS "}"
#define WITH_REG(v) "{\"region\":" v "," VPC "," INS "}"
#define WITH_ACT(v) "{\"action\":" v "," VPC "," INS "}"
#define WITH_SV(v)  "{\"schemaVersion\":" v "," VPC "," INS "}"
#define VALID(n, j)                                                                                \
    {                                                                                              \
        .name = (n), .json = (j)                                                                   \
    }
#define BAD(n, j, r)                                                                               \
    {                                                                                              \
        .name = (n), .json = (j), .reason = (r)                                                    \
    }
#define BAD_RAW(n, j, raw)                                                                         \
    {                                                                                              \
        .name = (n), .json = (j), .reason = "BadRequestId", .raw_request_id = (raw)                \
    }

static char *gen_too_large(size_t *len);
static char *gen_exactly_max(size_t *len);
static char *gen_deep_10000(size_t *len);
static char *gen_deep_1000(size_t *len);
static char *gen_deep_1001(size_t *len);
static char *gen_many_fields(size_t *len);
static char *gen_many_fields_dup(size_t *len);
static char *gen_huge_number(size_t *len);
static char *gen_huge_garbage(size_t *len);

static const struct request_case cases[] = {
    /* ---- valid ---- */
    {.name = "minimal: defaults applied",
     .json = "{" VPC "," INS "}",
     .check = 1,
     .region = DEFAULT_REGION,
     .vpc_id = "vpc-2ari9m7h",
     .has_action = 1,
     .action = CLW_ACTION_ATTACH,
     .n_instances = 1,
     .first_instance = "ins-df454d"},
    {.name = "contract example",
     .json = "{\"schemaVersion\":1,\"requestId\":\"7f3c2a10-attach-42\","
             "\"action\":\"AttachClassicLinkVpc\",\"region\":\"ap-shanghai\","
             "\"vpcId\":\"vpc-2ari9m7h\",\"instanceIds\":[\"ins-df454d\",\"ins-5d8a23rs\"]}",
     .request_id = "7f3c2a10-attach-42",
     .check = 1,
     .region = "ap-shanghai",
     .vpc_id = "vpc-2ari9m7h",
     .has_action = 1,
     .action = CLW_ACTION_ATTACH,
     .n_instances = 2,
     .first_instance = "ins-df454d"},
    {.name = "detach action",
     .json = WITH_ACT("\"DetachClassicLinkVpc\""),
     .check = 1,
     .region = DEFAULT_REGION,
     .vpc_id = "vpc-2ari9m7h",
     .has_action = 1,
     .action = CLW_ACTION_DETACH,
     .n_instances = 1,
     .first_instance = "ins-df454d"},
    {.name = "legacy vpc id",
     .json = WITH_VPC("\"gz_vpc_245\""),
     .check = 1,
     .region = DEFAULT_REGION,
     .vpc_id = "gz_vpc_245",
     .has_action = 1,
     .n_instances = 1,
     .first_instance = "ins-df454d"},
    VALID("legacy vpc id at its limits", WITH_VPC("\"abcdefghijklmnop_vpc_12345678901234567890\"")),
    VALID("vpc id of 32 characters", WITH_VPC("\"vpc-0123456789abcdefghijklmnopqrstuv\"")),
    VALID("instance id of 32 characters", WITH_INS("[\"ins-0123456789abcdefghijklmnopqrstuv\"]")),
    {.name = "max instances exactly",
     .json = WITH_INS("[\"ins-a\",\"ins-b\",\"ins-c\"]"),
     .check = 1,
     .region = DEFAULT_REGION,
     .vpc_id = "vpc-2ari9m7h",
     .has_action = 1,
     .n_instances = 3,
     .first_instance = "ins-a"},
    {.name = "region without a default",
     .json = WITH_REG("\"ap-beijing\""),
     .no_default_region = 1,
     .check = 1,
     .region = "ap-beijing",
     .vpc_id = "vpc-2ari9m7h",
     .has_action = 1,
     .n_instances = 1,
     .first_instance = "ins-df454d"},
    VALID("schemaVersion 1", WITH_SV("1")),
    VALID("schemaVersion 1.0", WITH_SV("1.0")),
    VALID("schemaVersion 1e0", WITH_SV("1e0")),
    VALID("schemaVersion 10E-1", WITH_SV("10E-1")),
    VALID("schemaVersion null is absent", WITH_SV("null")),
    {.name = "nulls count as absent",
     .json = "{\"requestId\":null,\"action\":null,\"region\":null,\"schemaVersion\":null," VPC
             "," INS "}",
     .check = 1,
     .region = DEFAULT_REGION,
     .vpc_id = "vpc-2ari9m7h",
     .has_action = 1,
     .action = CLW_ACTION_ATTACH,
     .n_instances = 1,
     .first_instance = "ins-df454d"},
    VALID("unknown fields ignored",
          "{\"traceId\":\"x&y=z\",\"nested\":{\"a\":[1,2.5e-3,{\"b\":null}],\"c\":true},"
          "\"Vpcid\":5,\"VPCID\":\"bad\",\"instanceids\":7,\"\":\"\"," VPC "," INS "}"),
    VALID("unknown field with non-ASCII and \\u0000",
          WITH("\"note\":\"caf\xc3\xa9 \\u0000 \xf0\x9f\x98\x80\"")),
    VALID("unknown field with a surrogate pair escape", WITH("\"e\":\"\\ud83d\\ude00\"")),
    VALID("white space around and inside", " \t\r\n{ \"vpcId\" : \"vpc-1\" ,\n\"instanceIds\" :"
                                           " [ \"ins-1\" ] }\r\n "),
    VALID("escaped characters decode to a valid id", WITH_VPC("\"vpc\\u002d2ari\\u0039\"")),
    {.name = "requestId of 128 characters with every allowed class",
     .json = WITH_RID("\"AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-"
                      "AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-12345678\""),
     .request_id = "AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-"
                   "AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-12345678"},
    {.name = "exactly 64 KiB", .gen = gen_exactly_max},
    {.name = "nesting of 1000 levels in an unknown field", .gen = gen_deep_1000},
    {.name = "5000 distinct fields", .gen = gen_many_fields},

    /* ---- Empty ---- */
    {.name = "tombstone",
     .json = NULL,
     .reason = "Empty",
     .detail = "null value (tombstone)",
     .check = 1,
     .region = NULL},
    {.name = "empty value", .json = "", .reason = "Empty", .detail = "empty value"},

    /* ---- TooLarge ---- */
    {.name = "64 KiB + 1",
     .gen = gen_too_large,
     .reason = "TooLarge",
     .detail = "value of 65537 bytes exceeds 65536"},
    {.name = "TooLarge beats NotJson", .gen = gen_huge_garbage, .reason = "TooLarge"},

    /* ---- NotJson ---- */
    BAD("plain text", "vpc-1 ins-1", "NotJson"),
    BAD("white space only", "   ", "NotJson"),
    BAD("unterminated object", "{\"vpcId\":\"vpc-1\"", "NotJson"),
    BAD("unterminated string", "{\"vpcId\":\"vpc-1", "NotJson"),
    BAD("trailing comma", "{" VPC "," INS ",}", "NotJson"),
    BAD("trailing garbage", "{" VPC "," INS "} x", "NotJson"),
    BAD("two objects", "{" VPC "," INS "}{}", "NotJson"),
    BAD("single quotes", "{'vpcId':'vpc-1','instanceIds':['ins-1']}", "NotJson"),
    BAD("unquoted key", "{vpcId:\"vpc-1\"," INS "}", "NotJson"),
    BAD("leading zero", WITH("\"n\":01"), "NotJson"),
    BAD("bare decimal point", WITH("\"n\":1."), "NotJson"),
    BAD("leading plus", WITH("\"n\":+1"), "NotJson"),
    BAD("hex number", WITH("\"n\":0x10"), "NotJson"),
    BAD("NaN literal", WITH("\"n\":NaN"), "NotJson"),
    BAD("Infinity literal", WITH("\"n\":-Infinity"), "NotJson"),
    BAD("comment", "{/* c */" VPC "," INS "}", "NotJson"),
    BAD("raw newline in a string", WITH_VPC("\"vpc-1\n\""), "NotJson"),
    BAD("raw tab in a string", WITH_VPC("\"vpc-1\t\""), "NotJson"),
    BAD("bad escape", WITH_VPC("\"vpc-1\\x41\""), "NotJson"),
    BAD("short \\u escape", WITH_VPC("\"vpc-\\u12\""), "NotJson"),
    BAD("lone high surrogate escape", WITH("\"e\":\"\\ud800\""), "NotJson"),
    BAD("lone low surrogate escape", WITH("\"e\":\"\\udc00x\""), "NotJson"),
    BAD("high surrogate then non-surrogate", WITH("\"e\":\"\\ud800\\u0041\""), "NotJson"),
    {.name = "raw NUL byte inside a string",
     .json = "{\"vpcId\":\"vpc-1\0x\",\"instanceIds\":[\"ins-1\"]}",
     .len = 41,
     .reason = "NotJson"},
    {.name = "raw NUL byte after the object",
     .json = "{\"vpcId\":\"vpc-1\",\"instanceIds\":[\"ins-1\"]}\0",
     .len = 40,
     .reason = "NotJson"},
    BAD("invalid UTF-8 byte FF", WITH("\"e\":\"\xff\""), "NotJson"),
    BAD("overlong UTF-8 C0 AF", WITH_VPC("\"vpc-1\xc0\xaf\""), "NotJson"),
    BAD("overlong 3-byte E0 80 AF", WITH("\"e\":\"\xe0\x80\xaf\""), "NotJson"),
    BAD("UTF-8 surrogate ED A0 80", WITH("\"e\":\"\xed\xa0\x80\""), "NotJson"),
    BAD("above U+10FFFF F4 90 80 80", WITH("\"e\":\"\xf4\x90\x80\x80\""), "NotJson"),
    BAD("truncated sequence E2 82", WITH("\"e\":\"\xe2\x82\""), "NotJson"),
    BAD("stray continuation byte", WITH("\"e\":\"\x80\""), "NotJson"),
    BAD("byte order mark", "\xef\xbb\xbf{" VPC "," INS "}", "NotJson"),
    BAD("number longer than 63 characters",
        WITH("\"n\":1234567890123456789012345678901234567890123456789012345678901234"), "NotJson"),
    {.name = "10 000 levels of nesting",
     .gen = gen_deep_10000,
     .reason = "NotJson",
     .detail = "invalid JSON at byte 1000: nesting deeper than 1000 levels"},
    {.name = "1001 levels of nesting", .gen = gen_deep_1001, .reason = "NotJson"},
    {.name = "NotJson carries no region, not even the default",
     .json = "{",
     .reason = "NotJson",
     .detail = "invalid JSON at byte 1: unexpected end of input",
     .check = 1,
     .region = NULL},

    /* ---- NotObject ---- */
    BAD("array", "[{" VPC "," INS "}]", "NotObject"),
    BAD("empty array", "[]", "NotObject"),
    {.name = "string",
     .json = "\"vpc-1\"",
     .reason = "NotObject",
     .detail = "value is a JSON string, not an object"},
    BAD("number", "1", "NotObject"),
    BAD("huge number", "1e400", "NotObject"),
    BAD("null", "null", "NotObject"),
    BAD("boolean", "true", "NotObject"),

    /* ---- DuplicateField ---- */
    {.name = "vpcId twice",
     .json = "{\"vpcId\":\"vpc-1\",\"vpcId\":\"vpc-2\"," INS "}",
     .reason = "DuplicateField",
     .detail = "field \"vpcId\" appears more than once",
     .check = 1,
     .region = NULL,
     .vpc_id = NULL,
     .has_action = 1,
     .n_instances = 1,
     .first_instance = "ins-df454d"},
    {.name = "requestId twice: neither is used",
     .json = "{\"requestId\":\"a\",\"requestId\":\"b\"," VPC "," INS "}",
     .reason = "DuplicateField"},
    {.name = "duplicate keeps the single requestId",
     .json = "{\"requestId\":\"r-1\",\"x\":1,\"x\":2," VPC "," INS "}",
     .reason = "DuplicateField",
     .request_id = "r-1"},
    BAD("unknown field twice", WITH("\"a\":1,\"a\":1"), "DuplicateField"),
    BAD("same name through an escape", "{\"vpc\\u0049d\":\"vpc-1\"," VPC "," INS "}",
        "DuplicateField"),
    {.name = "duplicate among 5000 fields found",
     .gen = gen_many_fields_dup,
     .reason = "DuplicateField",
     .detail = "field \"f4999\" appears more than once"},
    VALID("key with \\u0000 is not vpcId", "{\"vpcId\\u0000\":\"vpc-2\"," VPC "," INS "}"),
    {.name = "long duplicate name cut in the detail",
     .json =
         WITH("\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9zzzz\":1,"
              "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9zzzz\":1"),
     .reason = "DuplicateField",
     .detail = "field \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9\" "
               "appears more than once"},

    /* ---- UnsupportedVersion ---- */
    BAD("schemaVersion 2", WITH_SV("2"), "UnsupportedVersion"),
    BAD("schemaVersion 1.5", WITH_SV("1.5"), "UnsupportedVersion"),
    BAD("schemaVersion 0", WITH_SV("0"), "UnsupportedVersion"),
    BAD("schemaVersion -1", WITH_SV("-1"), "UnsupportedVersion"),
    BAD("schemaVersion 1e400", WITH_SV("1e400"), "UnsupportedVersion"),
    BAD("schemaVersion -1e400", WITH_SV("-1e400"), "UnsupportedVersion"),
    BAD("schemaVersion 1e-400", WITH_SV("1e-400"), "UnsupportedVersion"),
    {.name = "huge number schemaVersion of 63 digits",
     .gen = gen_huge_number,
     .reason = "UnsupportedVersion"},

    /* ---- MissingField ---- */
    {.name = "no vpcId",
     .json = "{" INS "}",
     .reason = "MissingField",
     .detail = "vpcId is required"},
    BAD("vpcId null", WITH_VPC("null"), "MissingField"),
    {.name = "no instanceIds",
     .json = "{" VPC "}",
     .reason = "MissingField",
     .detail = "instanceIds is required",
     .check = 1,
     .region = NULL,
     .vpc_id = "vpc-2ari9m7h",
     .has_action = 1},
    BAD("instanceIds null", WITH_INS("null"), "MissingField"),
    {.name = "instanceIds empty array",
     .json = WITH_INS("[]"),
     .reason = "MissingField",
     .detail = "instanceIds must not be empty"},
    BAD("empty object", "{}", "MissingField"),
    BAD("field names are case-sensitive", "{\"VpcId\":\"vpc-1\"," INS "}", "MissingField"),

    /* ---- WrongType ---- */
    BAD("schemaVersion string", WITH_SV("\"1\""), "WrongType"),
    BAD("schemaVersion boolean", WITH_SV("true"), "WrongType"),
    BAD("schemaVersion array", WITH_SV("[1]"), "WrongType"),
    {.name = "requestId number",
     .json = WITH_RID("42"),
     .reason = "WrongType",
     .detail = "requestId must be a string"},
    BAD("requestId object", WITH_RID("{\"id\":\"a\"}"), "WrongType"),
    BAD("requestId boolean", WITH_RID("false"), "WrongType"),
    BAD("action number", WITH_ACT("1"), "WrongType"),
    BAD("action array", WITH_ACT("[\"AttachClassicLinkVpc\"]"), "WrongType"),
    BAD("region number", WITH_REG("1"), "WrongType"),
    BAD("region object", WITH_REG("{}"), "WrongType"),
    BAD("vpcId number", WITH_VPC("123"), "WrongType"),
    BAD("vpcId array", WITH_VPC("[\"vpc-1\"]"), "WrongType"),
    BAD("vpcId object", WITH_VPC("{\"id\":\"vpc-1\"}"), "WrongType"),
    BAD("vpcId boolean", WITH_VPC("true"), "WrongType"),
    BAD("vpcId huge number", WITH_VPC("1e400"), "WrongType"),
    {.name = "instanceIds string",
     .json = WITH_INS("\"ins-1\""),
     .reason = "WrongType",
     .detail = "instanceIds must be an array of strings"},
    BAD("instanceIds object", WITH_INS("{\"a\":\"ins-1\"}"), "WrongType"),
    BAD("instanceIds number", WITH_INS("1"), "WrongType"),
    {.name = "instanceIds element number",
     .json = WITH_INS("[\"ins-1\",2]"),
     .reason = "WrongType",
     .detail = "instanceIds[1] must be a string"},
    BAD("instanceIds element null", WITH_INS("[\"ins-1\",null]"), "WrongType"),
    BAD("instanceIds nested array", WITH_INS("[[\"ins-1\"]]"), "WrongType"),

    /* ---- BadRequestId ---- */
    BAD_RAW("requestId empty", WITH_RID("\"\""), ""),
    BAD_RAW("requestId with a space", WITH_RID("\"a b\""), "a b"),
    BAD_RAW("requestId with & and =", WITH_RID("\"a&Action=DetachClassicLinkVpc\""),
            "a&Action=DetachClassicLinkVpc"),
    BAD_RAW("requestId with %", WITH_RID("\"a%26b\""), "a%26b"),
    BAD_RAW("requestId with #", WITH_RID("\"a#b\""), "a#b"),
    BAD_RAW("requestId with ?", WITH_RID("\"a?b\""), "a?b"),
    BAD_RAW("requestId with a newline escape", WITH_RID("\"a\\nb\""), "a\nb"),
    BAD_RAW("requestId with \\u0000", WITH_RID("\"a\\u0000b\""),
            "a\xef\xbf\xbd"
            "b"),
    BAD_RAW("requestId non-ASCII", WITH_RID("\"caf\xc3\xa9\""), "caf\xc3\xa9"),
    BAD_RAW("requestId slash", WITH_RID("\"a/b\""), "a/b"),
    BAD_RAW("requestId of 129 characters",
            WITH_RID("\"AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-"
                     "AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-123456789\""),
            "AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-"
            "AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-AZaz09._:-12345678"),
    BAD_RAW("raw requestId cut before a split character",
            WITH_RID(
                "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9zz\""),
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
    {.name = "BadRequestId keeps the valid fields",
     .json = "{\"requestId\":\"bad id\",\"region\":\"ap-beijing\",\"action\":"
             "\"DetachClassicLinkVpc\"," VPC "," INS "}",
     .reason = "BadRequestId",
     .detail = "requestId must be 1-128 characters of [A-Za-z0-9._:-]",
     .raw_request_id = "bad id",
     .check = 1,
     .region = "ap-beijing",
     .vpc_id = "vpc-2ari9m7h",
     .has_action = 1,
     .action = CLW_ACTION_DETACH,
     .n_instances = 1,
     .first_instance = "ins-df454d"},

    /* ---- BadAction ---- */
    BAD("action lowercase", WITH_ACT("\"attachClassicLinkVpc\""), "BadAction"),
    BAD("action empty", WITH_ACT("\"\""), "BadAction"),
    BAD("action other API", WITH_ACT("\"DescribeVpcClassicLink\""), "BadAction"),
    BAD("action with &", WITH_ACT("\"AttachClassicLinkVpc&Action=DeleteVpc\""), "BadAction"),
    BAD("action with a space", WITH_ACT("\"AttachClassicLinkVpc \""), "BadAction"),
    BAD("action with \\u0000", WITH_ACT("\"AttachClassicLinkVpc\\u0000x\""), "BadAction"),
    {.name = "BadAction leaves has_action 0",
     .json = "{\"requestId\":\"r-9\",\"action\":\"Delete\"," VPC "," INS "}",
     .reason = "BadAction",
     .request_id = "r-9",
     .check = 1,
     .region = NULL,
     .vpc_id = "vpc-2ari9m7h",
     .has_action = 0,
     .n_instances = 1,
     .first_instance = "ins-df454d"},

    /* ---- BadRegion ---- */
    BAD("region uppercase", WITH_REG("\"AP-GUANGZHOU\""), "BadRegion"),
    BAD("region empty", WITH_REG("\"\""), "BadRegion"),
    BAD("region of 33 characters", WITH_REG("\"abcdefghijklmnopqrstuvwxyz0123456\""), "BadRegion"),
    BAD("region with &", WITH_REG("\"ap-guangzhou&Action=DeleteVpc\""), "BadRegion"),
    BAD("region with =", WITH_REG("\"a=b\""), "BadRegion"),
    BAD("region with %", WITH_REG("\"ap%2Dgz\""), "BadRegion"),
    BAD("region with #", WITH_REG("\"ap#\""), "BadRegion"),
    BAD("region with ?", WITH_REG("\"ap?\""), "BadRegion"),
    BAD("region with a space", WITH_REG("\"ap guangzhou\""), "BadRegion"),
    BAD("region with a newline escape", WITH_REG("\"ap-guangzhou\\n\""), "BadRegion"),
    BAD("region with \\u0000", WITH_REG("\"ap-guangzhou\\u0000evil\""), "BadRegion"),
    BAD("region non-ASCII", WITH_REG("\"\xe5\xb9\xbf\xe5\xb7\x9e\""), "BadRegion"),
    {.name = "bad region is not replaced by the default",
     .json = WITH_REG("\"AP\""),
     .reason = "BadRegion",
     .detail = "region must match [a-z0-9-]{1,32}",
     .check = 1,
     .region = NULL,
     .vpc_id = "vpc-2ari9m7h",
     .has_action = 1,
     .n_instances = 1,
     .first_instance = "ins-df454d"},

    /* ---- MissingRegion ---- */
    {.name = "no region and no default",
     .json = "{" VPC "," INS "}",
     .no_default_region = 1,
     .reason = "MissingRegion",
     .check = 1,
     .region = NULL,
     .vpc_id = "vpc-2ari9m7h",
     .has_action = 1,
     .n_instances = 1,
     .first_instance = "ins-df454d"},
    {.name = "region null and no default",
     .json = WITH_REG("null"),
     .no_default_region = 1,
     .reason = "MissingRegion"},

    /* ---- BadVpcId ---- */
    BAD("vpc prefix only", WITH_VPC("\"vpc-\""), "BadVpcId"),
    BAD("vpc empty", WITH_VPC("\"\""), "BadVpcId"),
    BAD("vpc uppercase body", WITH_VPC("\"vpc-ABC\""), "BadVpcId"),
    BAD("vpc uppercase prefix", WITH_VPC("\"VPC-abc\""), "BadVpcId"),
    BAD("vpc of 33 characters", WITH_VPC("\"vpc-0123456789abcdefghijklmnopqrstuvw\""), "BadVpcId"),
    BAD("vpc with &", WITH_VPC("\"vpc-1&instanceIds.1=ins-2\""), "BadVpcId"),
    BAD("vpc with =", WITH_VPC("\"vpc-1=\""), "BadVpcId"),
    BAD("vpc with %", WITH_VPC("\"vpc-1%26\""), "BadVpcId"),
    BAD("vpc with #", WITH_VPC("\"vpc-1#\""), "BadVpcId"),
    BAD("vpc with ?", WITH_VPC("\"vpc-1?\""), "BadVpcId"),
    BAD("vpc with a space", WITH_VPC("\"vpc-1 \""), "BadVpcId"),
    BAD("vpc with a newline escape", WITH_VPC("\"vpc-1\\n\""), "BadVpcId"),
    {.name = "vpc with \\u0000 is not cut to a valid id",
     .json = WITH_VPC("\"vpc-1\\u0000&x=1\""),
     .reason = "BadVpcId",
     .detail = "vpcId must match vpc-[a-z0-9]{1,32} or <letters>_vpc_<digits>"},
    BAD("vpc with \\u0000 at the end", WITH_VPC("\"vpc-1\\u0000\""), "BadVpcId"),
    BAD("vpc non-ASCII", WITH_VPC("\"vpc-\xc3\xa9\""), "BadVpcId"),
    BAD("vpc underscore", WITH_VPC("\"vpc_1\""), "BadVpcId"),
    BAD("legacy without digits", WITH_VPC("\"gz_vpc_\""), "BadVpcId"),
    BAD("legacy without letters", WITH_VPC("\"_vpc_1\""), "BadVpcId"),
    BAD("legacy with letters in the number", WITH_VPC("\"gz_vpc_12a\""), "BadVpcId"),
    BAD("legacy with uppercase letters", WITH_VPC("\"GZ_vpc_1\""), "BadVpcId"),
    BAD("legacy with a digit prefix", WITH_VPC("\"g2_vpc_1\""), "BadVpcId"),
    BAD("legacy with 17 letters", WITH_VPC("\"abcdefghijklmnopq_vpc_1\""), "BadVpcId"),
    BAD("legacy with 21 digits", WITH_VPC("\"gz_vpc_123456789012345678901\""), "BadVpcId"),
    BAD("legacy with a sign", WITH_VPC("\"gz_vpc_-1\""), "BadVpcId"),
    BAD("legacy with a trailing space", WITH_VPC("\"gz_vpc_1 \""), "BadVpcId"),

    /* ---- BadInstanceId ---- */
    BAD("instance prefix only", WITH_INS("[\"ins-\"]"), "BadInstanceId"),
    BAD("instance empty", WITH_INS("[\"\"]"), "BadInstanceId"),
    BAD("instance uppercase", WITH_INS("[\"ins-ABC\"]"), "BadInstanceId"),
    BAD("instance of 33 characters", WITH_INS("[\"ins-0123456789abcdefghijklmnopqrstuvw\"]"),
        "BadInstanceId"),
    BAD("instance with &", WITH_INS("[\"ins-1&instanceIds.1=ins-2\"]"), "BadInstanceId"),
    BAD("instance with =", WITH_INS("[\"ins-1=\"]"), "BadInstanceId"),
    BAD("instance with %", WITH_INS("[\"ins-1%00\"]"), "BadInstanceId"),
    BAD("instance with #", WITH_INS("[\"ins-1#\"]"), "BadInstanceId"),
    BAD("instance with ?", WITH_INS("[\"ins-1?\"]"), "BadInstanceId"),
    BAD("instance with a space", WITH_INS("[\" ins-1\"]"), "BadInstanceId"),
    BAD("instance with a newline escape", WITH_INS("[\"ins-1\\n\"]"), "BadInstanceId"),
    BAD("instance with \\u0000", WITH_INS("[\"ins-1\\u0000\"]"), "BadInstanceId"),
    BAD("instance non-ASCII", WITH_INS("[\"ins-\xe4\xb8\x80\"]"), "BadInstanceId"),
    BAD("instance with a vpc id", WITH_INS("[\"vpc-1\"]"), "BadInstanceId"),
    {.name = "third instance bad",
     .json = WITH_INS("[\"ins-a\",\"ins-b\",\"ins-C\"]"),
     .reason = "BadInstanceId",
     .detail = "instanceIds[2] must match ins-[a-z0-9]{1,32}",
     .check = 1,
     .region = NULL,
     .vpc_id = "vpc-2ari9m7h",
     .has_action = 1,
     .n_instances = 0},

    /* ---- DuplicateInstanceId ---- */
    {.name = "instance repeated",
     .json = WITH_INS("[\"ins-a\",\"ins-b\",\"ins-a\"]"),
     .reason = "DuplicateInstanceId",
     .detail = "instanceIds[2] repeats instanceIds[0] (ins-a)",
     .check = 1,
     .region = NULL,
     .vpc_id = "vpc-2ari9m7h",
     .has_action = 1,
     .n_instances = 0},
    {.name = "earliest repeat reported",
     .json = WITH_INS("[\"ins-z\",\"ins-a\",\"ins-a\",\"ins-z\"]"),
     .reason = "DuplicateInstanceId",
     .detail = "instanceIds[2] repeats instanceIds[1] (ins-a)"},
    BAD("same id through an escape", WITH_INS("[\"ins-a\",\"ins\\u002da\"]"),
        "DuplicateInstanceId"),

    /* ---- TooManyInstances ---- */
    {.name = "one more than the limit",
     .json = WITH_INS("[\"ins-a\",\"ins-b\",\"ins-c\",\"ins-d\"]"),
     .reason = "TooManyInstances",
     .detail = "instanceIds has 4 entries, at most 3 are allowed",
     .check = 1,
     .region = NULL,
     .vpc_id = "vpc-2ari9m7h",
     .has_action = 1,
     .n_instances = 0},

    /* ---- first match wins ---- */
    {.name = "BadRequestId beats BadVpcId",
     .json = "{\"requestId\":\"x y\",\"vpcId\":\"vpc-X\"," INS "}",
     .reason = "BadRequestId",
     .raw_request_id = "x y"},
    {.name = "WrongType beats BadRequestId (raw id still echoed)",
     .json = "{\"requestId\":\"x y\",\"vpcId\":5," INS "}",
     .reason = "WrongType",
     .raw_request_id = "x y"},
    BAD("MissingField beats WrongType", "{\"requestId\":7," INS "}", "MissingField"),
    BAD("UnsupportedVersion beats MissingField", "{\"schemaVersion\":2}", "UnsupportedVersion"),
    BAD("DuplicateField beats UnsupportedVersion",
        "{\"schemaVersion\":2,\"a\":1,\"a\":2," VPC "," INS "}", "DuplicateField"),
    BAD("NotObject beats everything inside", "[{\"vpcId\":1}]", "NotObject"),
    BAD("BadAction beats BadRegion", "{\"action\":\"x\",\"region\":\"X\"," VPC "," INS "}",
        "BadAction"),
    BAD("BadRegion beats BadVpcId", "{\"region\":\"X\",\"vpcId\":\"x\"," INS "}", "BadRegion"),
    {.name = "MissingRegion beats BadVpcId",
     .json = "{\"vpcId\":\"x\"," INS "}",
     .no_default_region = 1,
     .reason = "MissingRegion"},
    BAD("BadVpcId beats BadInstanceId", "{\"vpcId\":\"x\",\"instanceIds\":[\"y\"]}", "BadVpcId"),
    BAD("BadInstanceId beats DuplicateInstanceId and TooManyInstances",
        WITH_INS("[\"ins-a\",\"ins-a\",\"ins-b\",\"ins-c\",\"bad\"]"), "BadInstanceId"),
    BAD("DuplicateInstanceId beats TooManyInstances",
        WITH_INS("[\"ins-a\",\"ins-a\",\"ins-b\",\"ins-c\"]"), "DuplicateInstanceId"),
    {.name = "WrongType element beats an earlier bad element",
     .json = WITH_INS("[\"bad\",5]"),
     .reason = "WrongType",
     .detail = "instanceIds[1] must be a string"},
    {.name = "WrongType schemaVersion beats BadRequestId",
     .json = "{\"schemaVersion\":\"2\",\"requestId\":\"?\"," VPC "," INS "}",
     .reason = "WrongType",
     .detail = "schemaVersion must be a number",
     .raw_request_id = "?"},
    {.name = "valid requestId kept while vpcId is bad",
     .json = "{\"requestId\":\"req-1\",\"vpcId\":\"vpc-1&x\"," INS "}",
     .reason = "BadVpcId",
     .request_id = "req-1",
     .check = 1,
     .region = NULL,
     .vpc_id = NULL,
     .has_action = 1,
     .n_instances = 1,
     .first_instance = "ins-df454d"},
};

/* ---- generators ---- */

static char *alloc_or_die(size_t n)
{
    char *p = malloc(n);

    assert_non_null(p);
    return p;
}

/* A valid request padded with an unknown string field to exactly total bytes. */
static char *padded(size_t total, size_t *len)
{
    static const char head[] = "{" VPC "," INS ",\"pad\":\"";
    static const char tail[] = "\"}";
    size_t fixed = sizeof(head) - 1 + sizeof(tail) - 1;
    char *p = alloc_or_die(total);

    memcpy(p, head, sizeof(head) - 1);
    memset(p + sizeof(head) - 1, 'x', total - fixed);
    memcpy(p + total - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
    *len = total;
    return p;
}

static char *gen_exactly_max(size_t *len)
{
    return padded(MAX_BYTES, len);
}

static char *gen_too_large(size_t *len)
{
    return padded(MAX_BYTES + 1, len);
}

static char *gen_huge_garbage(size_t *len)
{
    char *p = alloc_or_die(MAX_BYTES * 2);

    memset(p, 0xff, MAX_BYTES * 2);
    *len = MAX_BYTES * 2;
    return p;
}

/* levels '[' inside {"x": ... } followed by the valid fields: depth = levels + 1. */
static char *deep(size_t levels, size_t *len)
{
    static const char head[] = "{\"x\":";
    static const char tail[] = "," VPC "," INS "}";
    size_t n = sizeof(head) - 1 + 2 * levels + sizeof(tail) - 1;
    char *p = alloc_or_die(n);

    memcpy(p, head, sizeof(head) - 1);
    memset(p + sizeof(head) - 1, '[', levels);
    memset(p + sizeof(head) - 1 + levels, ']', levels);
    memcpy(p + sizeof(head) - 1 + 2 * levels, tail, sizeof(tail) - 1);
    *len = n;
    return p;
}

/* 10 000 levels of bare arrays: refused at the 1001st '[' (byte 1000), without recursion. */
static char *gen_deep_10000(size_t *len)
{
    size_t n = 10000;
    char *p = alloc_or_die(2 * n);

    memset(p, '[', n);
    memset(p + n, ']', n);
    *len = 2 * n;
    return p;
}

static char *gen_deep_1000(size_t *len)
{
    return deep(999, len);
}

static char *gen_deep_1001(size_t *len)
{
    return deep(1000, len);
}

static char *fields(size_t n, int dup_last, size_t *len)
{
    size_t cap = 64 + n * 16, o = 0, k;
    char *p = alloc_or_die(cap);

    o += (size_t)snprintf(p + o, cap - o, "{" VPC "," INS);
    for (k = 0; k < n; k++)
        o += (size_t)snprintf(p + o, cap - o, ",\"f%zu\":0", k);
    if (dup_last)
        o += (size_t)snprintf(p + o, cap - o, ",\"f%zu\":0", n - 1);
    o += (size_t)snprintf(p + o, cap - o, "}");
    *len = o;
    return p;
}

static char *gen_many_fields(size_t *len)
{
    return fields(5000, 0, len);
}

static char *gen_many_fields_dup(size_t *len)
{
    return fields(5000, 1, len);
}

/* schemaVersion with 63 digits: the longest number cJSON reads; it is not 1. */
static char *gen_huge_number(size_t *len)
{
    static const char head[] = "{\"schemaVersion\":";
    static const char tail[] = "," VPC "," INS "}";
    size_t n = sizeof(head) - 1 + 63 + sizeof(tail) - 1;
    char *p = alloc_or_die(n);

    memcpy(p, head, sizeof(head) - 1);
    memset(p + sizeof(head) - 1, '9', 63);
    memcpy(p + sizeof(head) - 1 + 63, tail, sizeof(tail) - 1);
    *len = n;
    return p;
}

/* ---- the table runner ---- */

static void check_opt_string(const char *what, const char *want, const char *got)
{
    if (want == NULL) {
        if (got != NULL)
            fail_msg("%s: want NULL, got \"%s\"", what, got);
        return;
    }
    if (got == NULL)
        fail_msg("%s: want \"%s\", got NULL", what, want);
    assert_string_equal(got, want);
}

static void run_case(void **state)
{
    const struct request_case *c = *state;
    struct clw_request_limits lim = {MAX_BYTES, MAX_INSTANCES, DEFAULT_REGION};
    struct clw_request req;
    char *generated = NULL;
    const void *payload = c->json;
    size_t len = c->len;

    if (c->gen != NULL) {
        generated = c->gen(&len);
        payload = generated;
    } else if (c->json != NULL && len == 0) {
        len = strlen(c->json);
    }
    if (c->no_default_region)
        lim.default_region = NULL;
    assert_int_equal(clw_request_parse(&req, payload, len, DEFAULT_ID, &lim), 0);

    if (c->reason == NULL) {
        if (!req.valid)
            fail_msg("want valid, got %s: %s", req.reason, req.detail);
        assert_null(req.reason);
        assert_null(req.detail);
        assert_non_null(req.vpc_id);
        assert_non_null(req.region);
        assert_true(req.has_action);
        assert_true(req.n_instances >= 1);
        assert_non_null(req.instance_ids);
    } else {
        assert_false(req.valid);
        check_opt_string("reason", c->reason, req.reason);
        assert_non_null(req.detail);
        assert_true(strlen(req.detail) < 192);
        if (c->detail != NULL)
            assert_string_equal(req.detail, c->detail);
    }
    check_opt_string("requestId", c->request_id != NULL ? c->request_id : DEFAULT_ID,
                     req.request_id);
    check_opt_string("rawRequestId", c->raw_request_id, req.raw_request_id);
    if (req.raw_request_id != NULL)
        assert_true(strlen(req.raw_request_id) <= 128);
    if (c->check) {
        check_opt_string("region", c->region, req.region);
        check_opt_string("vpcId", c->vpc_id, req.vpc_id);
        assert_int_equal(req.has_action, c->has_action);
        if (c->has_action)
            assert_int_equal(req.action, c->action);
        assert_int_equal(req.n_instances, c->n_instances);
        if (c->n_instances > 0)
            assert_string_equal(req.instance_ids[0], c->first_instance);
        else
            assert_null(req.instance_ids);
    }
    clw_request_free(&req);
    assert_null(req.request_id);
    free(generated);
}

/* ---- id grammar and UTF-8 tables ---- */

struct grammar_case {
    int (*fn)(const char *s);
    const char *fn_name;
    const char *input;
    int want;
};

#define G(f, s, w)                                                                                 \
    {                                                                                              \
        clw_request_valid_##f, #f, (s), (w)                                                        \
    }

static const struct grammar_case grammar_cases[] = {
    G(vpc_id, "vpc-a", 1),
    G(vpc_id, "vpc-2ari9m7h", 1),
    G(vpc_id, "gz_vpc_245", 1),
    G(vpc_id, "a_vpc_0", 1),
    G(vpc_id, "vpc-", 0),
    G(vpc_id, "gz_vpc_", 0),
    G(vpc_id, "gz_vpc_2_", 0),
    G(vpc_id, "gz__vpc_2", 0),
    G(vpc_id, "", 0),
    G(vpc_id, NULL, 0),
    G(instance_id, "ins-a", 1),
    G(instance_id, "ins-df454d", 1),
    G(instance_id, "ins-", 0),
    G(instance_id, "ins-a-b", 0),
    G(instance_id, "INS-a", 0),
    G(instance_id, NULL, 0),
    G(region, "ap-guangzhou", 1),
    G(region, "a", 1),
    G(region, "-", 1),
    G(region, "abcdefghijklmnopqrstuvwxyz012345", 1),
    G(region, "abcdefghijklmnopqrstuvwxyz0123456", 0),
    G(region, "ap_guangzhou", 0),
    G(region, "", 0),
    G(region, NULL, 0),
    G(request_id, "a", 1),
    G(request_id, "topic.x:0:17", 1),
    G(request_id, "A-Z_a.z:0-9", 1),
    G(request_id, "a b", 0),
    G(request_id, "a/b", 0),
    G(request_id, "", 0),
    G(request_id, NULL, 0),
};

static void test_grammar(void **state)
{
    size_t k;

    (void)state;
    for (k = 0; k < sizeof(grammar_cases) / sizeof(grammar_cases[0]); k++) {
        const struct grammar_case *c = &grammar_cases[k];
        int got = c->fn(c->input);

        if (got != c->want)
            fail_msg("valid_%s(\"%s\"): want %d, got %d", c->fn_name,
                     c->input != NULL ? c->input : "(null)", c->want, got);
    }
}

struct utf8_case {
    const char *name;
    const char *bytes;
    size_t len;
    int want;
};

#define U(n, b, w)                                                                                 \
    {                                                                                              \
        (n), (b), sizeof(b) - 1, (w)                                                               \
    }

static const struct utf8_case utf8_cases[] = {
    U("empty", "", 1),
    U("ASCII", "hello", 1),
    U("NUL is a character", "a\0b", 1),
    U("2-byte U+00E9", "\xc3\xa9", 1),
    U("3-byte U+20AC", "\xe2\x82\xac", 1),
    U("4-byte U+1F600", "\xf0\x9f\x98\x80", 1),
    U("U+10FFFF", "\xf4\x8f\xbf\xbf", 1),
    U("U+D7FF before surrogates", "\xed\x9f\xbf", 1),
    U("U+E000 after surrogates", "\xee\x80\x80", 1),
    U("U+FFFD", "\xef\xbf\xbd", 1),
    U("overlong C0 AF", "\xc0\xaf", 0),
    U("overlong C1 BF", "\xc1\xbf", 0),
    U("overlong E0 80 AF", "\xe0\x80\xaf", 0),
    U("overlong F0 80 80 AF", "\xf0\x80\x80\xaf", 0),
    U("surrogate U+D800", "\xed\xa0\x80", 0),
    U("surrogate U+DFFF", "\xed\xbf\xbf", 0),
    U("above U+10FFFF", "\xf4\x90\x80\x80", 0),
    U("F5 lead", "\xf5\x80\x80\x80", 0),
    U("FF byte", "\xff", 0),
    U("lone continuation", "\x80", 0),
    U("truncated 2-byte", "\xc3", 0),
    U("truncated 3-byte", "\xe2\x82", 0),
    U("truncated 4-byte", "\xf0\x9f\x98", 0),
    U("bad continuation", "\xe2\x28\xa1", 0),
    U("valid then truncated", "ok\xc3\xa9\xe2", 0),
};

static void test_utf8(void **state)
{
    size_t k;

    (void)state;
    for (k = 0; k < sizeof(utf8_cases) / sizeof(utf8_cases[0]); k++) {
        const struct utf8_case *c = &utf8_cases[k];
        int got = clw_utf8_valid(c->bytes, c->len);

        if (got != c->want)
            fail_msg("utf8 %s: want %d, got %d", c->name, c->want, got);
    }
    assert_int_equal(clw_utf8_valid(NULL, 0), 1);
}

static void test_action_names(void **state)
{
    (void)state;
    assert_string_equal(clw_action_name(CLW_ACTION_ATTACH), "AttachClassicLinkVpc");
    assert_string_equal(clw_action_name(CLW_ACTION_DETACH), "DetachClassicLinkVpc");
    assert_null(clw_action_name((enum clw_action)7));
}

/* Limits: a NULL limits pointer uses the documented defaults; a malformed default region
 * counts as none; a NULL default id still gives a request id. */
static void test_limits(void **state)
{
    static const char body[] = "{" VPC "," INS "}";
    struct clw_request_limits bad_region = {MAX_BYTES, MAX_INSTANCES, "AP&x=1"};
    struct clw_request_limits empty_region = {MAX_BYTES, MAX_INSTANCES, ""};
    struct clw_request req;

    (void)state;
    assert_int_equal(clw_request_parse(&req, body, sizeof(body) - 1, "t:0:1", NULL), 0);
    assert_string_equal(req.reason, "MissingRegion");
    clw_request_free(&req);
    assert_int_equal(clw_request_parse(&req, body, sizeof(body) - 1, "t:0:1", &bad_region), 0);
    assert_string_equal(req.reason, "MissingRegion");
    clw_request_free(&req);
    assert_int_equal(clw_request_parse(&req, body, sizeof(body) - 1, "t:0:1", &empty_region), 0);
    assert_string_equal(req.reason, "MissingRegion");
    clw_request_free(&req);
    assert_int_equal(clw_request_parse(&req, NULL, 0, NULL, &empty_region), 0);
    assert_string_equal(req.request_id, "");
    assert_string_equal(req.reason, "Empty");
    clw_request_free(&req);
}

int main(void)
{
    size_t n = sizeof(cases) / sizeof(cases[0]), k;
    struct CMUnitTest *tests = calloc(n + 4, sizeof(*tests));
    int rc;

    if (tests == NULL)
        return 1;
    for (k = 0; k < n; k++) {
        tests[k].name = cases[k].name;
        tests[k].test_func = run_case;
        tests[k].initial_state = (void *)&cases[k];
    }
    tests[n].name = "id grammar";
    tests[n].test_func = test_grammar;
    tests[n + 1].name = "utf8 validation";
    tests[n + 1].test_func = test_utf8;
    tests[n + 2].name = "action names";
    tests[n + 2].test_func = test_action_names;
    tests[n + 3].name = "limits";
    tests[n + 3].test_func = test_limits;
    rc = _cmocka_run_group_tests("request", tests, n + 4, NULL, NULL);
    free(tests);
    return rc;
}
