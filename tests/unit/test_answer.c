/* Unit tests for answer: v2 and API 3.0 body decoding (codes, task ids and status, link
 * listings, hostile bodies) and Retry-After. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clw/answer.h"

struct body_case {
    const char *name;
    const char *body;
    size_t len; /* 0: strlen(body) */
    int body_json;
    int has_code;
    long code;
    int has_task_id;
    long long task_id;
    const char *message; /* NULL: expect NULL */
    const char *code_desc;
};

/* name, body, body_json, has_code, code, has_task_id, task_id, message, codeDesc */
#define B(n, b, j, hc, c, ht, t, m, d)                                                             \
    {                                                                                              \
        (n), (b), 0, (j), (hc), (c), (ht), (t), (m), (d)                                           \
    }
#define NOT_JSON(n, b) B(n, b, 0, 0, 0, 0, 0, NULL, NULL)

static const struct body_case body_cases[] = {
    B("success", "{\"code\":0,\"message\":\"\",\"taskId\":135254}", 1, 1, 0, 1, 135254, "", NULL),
    B("code as the string \"0\"", "{\"code\":\"0\",\"message\":\"\",\"taskId\":1}", 1, 1, 0, 1, 1,
      "", NULL),
    B("code 4400 as a string", "{\"code\":\"4400\",\"message\":\"busy\"}", 1, 1, 4400, 0, 0, "busy",
      NULL),
    B("business error with codeDesc",
      "{\"code\":4000,\"message\":\"(100004)vpc not found\",\"codeDesc\":\"InvalidVpc.NotFound\"}",
      1, 1, 4000, 0, 0, "(100004)vpc not found", "InvalidVpc.NotFound"),
    B("codeDesc only", "{\"codeDesc\":\"ServiceUnavailable\"}", 1, 0, 0, 0, 0, NULL,
      "ServiceUnavailable"),
    B("missing code", "{\"message\":\"x\"}", 1, 0, 0, 0, 0, "x", NULL),
    B("empty object", "{}", 1, 0, 0, 0, 0, NULL, NULL),
    B("code null", "{\"code\":null}", 1, 0, 0, 0, 0, NULL, NULL),
    B("code negative integer", "{\"code\":-1}", 1, 1, -1, 0, 0, NULL, NULL),
    B("code integral in exponent form", "{\"code\":4.4e3}", 1, 1, 4400, 0, 0, NULL, NULL),
    B("code with leading zeros in a string", "{\"code\":\"004400\"}", 1, 1, 4400, 0, 0, NULL, NULL),
    B("code fraction", "{\"code\":1.5}", 1, 0, 0, 0, 0, NULL, NULL),
    B("code fraction string", "{\"code\":\"1.5\"}", 1, 0, 0, 0, 0, NULL, NULL),
    B("code word", "{\"code\":\"Success\"}", 1, 0, 0, 0, 0, NULL, NULL),
    B("code empty string", "{\"code\":\"\"}", 1, 0, 0, 0, 0, NULL, NULL),
    B("code string with a space", "{\"code\":\" 0\"}", 1, 0, 0, 0, 0, NULL, NULL),
    B("code string with a sign", "{\"code\":\"-1\"}", 1, 0, 0, 0, 0, NULL, NULL),
    B("code string of 19 digits", "{\"code\":\"1234567890123456789\"}", 1, 0, 0, 0, 0, NULL, NULL),
    B("code boolean", "{\"code\":false}", 1, 0, 0, 0, 0, NULL, NULL),
    B("code huge", "{\"code\":1e300}", 1, 0, 0, 0, 0, NULL, NULL),
    B("code overflowing double", "{\"code\":1e400}", 1, 0, 0, 0, 0, NULL, NULL),
    B("code array", "{\"code\":[0]}", 1, 0, 0, 0, 0, NULL, NULL),
    B("duplicate code: the first wins", "{\"code\":4000,\"code\":0}", 1, 1, 4000, 0, 0, NULL, NULL),
    B("taskId as a string", "{\"code\":0,\"taskId\":\"135254\"}", 1, 1, 0, 1, 135254, NULL, NULL),
    B("taskId 2^53 - 1", "{\"code\":0,\"taskId\":9007199254740991}", 1, 1, 0, 1, 9007199254740991LL,
      NULL, NULL),
    B("taskId 2^53 + 1 as a number is not exact", "{\"code\":0,\"taskId\":9007199254740993}", 1, 1,
      0, 0, 0, NULL, NULL),
    B("taskId 2^53 + 1 as a string is exact", "{\"code\":0,\"taskId\":\"9007199254740993\"}", 1, 1,
      0, 1, 9007199254740993LL, NULL, NULL),
    B("taskId fraction", "{\"code\":0,\"taskId\":1.5}", 1, 1, 0, 0, 0, NULL, NULL),
    B("taskId word", "{\"code\":0,\"taskId\":\"abc\"}", 1, 1, 0, 0, 0, NULL, NULL),
    B("taskId only under data is ignored", "{\"code\":0,\"data\":{\"taskId\":5}}", 1, 1, 0, 0, 0,
      NULL, NULL),
    B("message not a string", "{\"code\":0,\"message\":5,\"codeDesc\":[]}", 1, 1, 0, 0, 0, NULL,
      NULL),
    B("message with escapes and non-ASCII", "{\"message\":\"a\\\"b\\n\xc3\xa9\\u20ac\"}", 1, 0, 0,
      0, 0, "a\"b\n\xc3\xa9\xe2\x82\xac", NULL),
    B("white space around", " \r\n{\"code\":0}\n", 1, 1, 0, 0, 0, NULL, NULL),
    NOT_JSON("HTML error page", "<html><body>502 Bad Gateway</body></html>"),
    NOT_JSON("array", "[{\"code\":0}]"),
    NOT_JSON("string", "\"0\""),
    NOT_JSON("number", "0"),
    NOT_JSON("null", "null"),
    NOT_JSON("truncated", "{\"code\":0,\"message\":\"x"),
    NOT_JSON("trailing garbage", "{\"code\":0}x"),
    NOT_JSON("two objects", "{\"code\":0}{\"code\":1}"),
    NOT_JSON("empty", ""),
    {"NUL inside", "{\"code\":0}\0{", 12, 0, 0, 0, 0, 0, NULL, NULL},
};

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

static void run_body_case(void **state)
{
    const struct body_case *c = *state;
    struct clw_answer ans;
    size_t len = c->len != 0 ? c->len : strlen(c->body);

    memset(&ans, 0, sizeof(ans));
    ans.transport = CLW_TRANSPORT_OK;
    ans.http_status = 200;
    ans.retry_after_ms = 1234;
    assert_int_equal(clw_answer_parse_body(&ans, c->body, len), 0);
    assert_int_equal(ans.body_json, c->body_json);
    assert_int_equal(ans.has_code, c->has_code);
    if (c->has_code)
        assert_int_equal(ans.code, c->code);
    assert_int_equal(ans.has_task_id, c->has_task_id);
    if (c->has_task_id)
        assert_true(ans.task_id == c->task_id);
    check_opt_string("message", c->message, ans.message);
    check_opt_string("codeDesc", c->code_desc, ans.code_desc);
    /* None of these bodies carries a task status, a listing or a v3 member. */
    assert_int_equal(ans.api_version, 2);
    assert_int_equal(ans.task_status, -1);
    assert_int_equal(ans.total_count, -1);
    assert_int_equal(ans.n_links, 0);
    assert_null(ans.links);
    assert_null(ans.request_id);
    /* Left alone: */
    assert_int_equal(ans.transport, CLW_TRANSPORT_OK);
    assert_int_equal(ans.http_status, 200);
    assert_int_equal(ans.retry_after_ms, 1234);
    clw_answer_free(&ans);
    assert_null(ans.message);
    assert_null(ans.code_desc);
    assert_int_equal(ans.has_code, 0);
    assert_int_equal(ans.api_version, 0);
}

/* Hostile bodies the http module could hand over: must not crash, must not be JSON. */
static void test_deep_body(void **state)
{
    size_t n = 10000;
    char *body = malloc(2 * n + 2);
    struct clw_answer ans;

    (void)state;
    assert_non_null(body);
    body[0] = '{';
    memset(body + 1, '[', n);
    memset(body + 1 + n, ']', n);
    body[2 * n + 1] = '}';
    memset(&ans, 0, sizeof(ans));
    assert_int_equal(clw_answer_parse_body(&ans, body, 2 * n + 2), 0);
    assert_int_equal(ans.body_json, 0);
    assert_int_equal(ans.has_code, 0);
    clw_answer_free(&ans);
    assert_int_equal(clw_answer_parse_body(&ans, NULL, 0), 0);
    assert_int_equal(ans.body_json, 0);
    clw_answer_free(&ans);
    clw_answer_free(NULL);
    free(body);
}

/* ---- link rows (shared by the v2 and v3 tables) ---- */

#define MAX_WANT_LINKS 4

struct want_link {
    const char *instance_id;
    const char *vpc_id;    /* NULL: expect NULL */
    const char *un_vpc_id; /* NULL: expect NULL */
};

static void check_links(const char *name, const struct clw_answer *ans, size_t want_n,
                        const struct want_link *want)
{
    size_t i;

    if (ans->n_links != want_n)
        fail_msg("%s: %zu links, want %zu", name, ans->n_links, want_n);
    if (want_n == 0) {
        assert_null(ans->links);
        return;
    }
    assert_non_null(ans->links);
    for (i = 0; i < want_n && i < MAX_WANT_LINKS; i++) {
        assert_non_null(ans->links[i].instance_id);
        assert_string_equal(ans->links[i].instance_id, want[i].instance_id);
        check_opt_string("vpcId", want[i].vpc_id, ans->links[i].vpc_id);
        check_opt_string("unVpcId", want[i].un_vpc_id, ans->links[i].un_vpc_id);
    }
}

/* ---- v2: DescribeVpcTaskResult status and DescribeVpcClassicLink rows ---- */

struct v2_data_case {
    const char *name;
    const char *body;
    int task_status;
    long total_count;
    size_t n_links;
    struct want_link links[MAX_WANT_LINKS];
};

#define ROW(i, v, u) "{\"instanceId\":\"" i "\",\"vpcId\":\"" v "\",\"unVpcId\":\"" u "\"}"

static const struct v2_data_case v2_data_cases[] = {
    {"task running", "{\"code\":0,\"message\":\"\",\"data\":{\"status\":2}}", 2, -1, 0, {{0}}},
    {"task succeeded", "{\"code\":0,\"data\":{\"status\":0}}", 0, -1, 0, {{0}}},
    {"task failed with output",
     "{\"code\":0,\"data\":{\"status\":1,\"output\":{\"errorCode\":\"X\",\"errorMsg\":\"y\"}}}",
     1,
     -1,
     0,
     {{0}}},
    {"task status as a digit string", "{\"code\":0,\"data\":{\"status\":\"1\"}}", 1, -1, 0, {{0}}},
    {"task status 3 is unknown", "{\"code\":0,\"data\":{\"status\":3}}", -1, -1, 0, {{0}}},
    {"task status negative", "{\"code\":0,\"data\":{\"status\":-1}}", -1, -1, 0, {{0}}},
    {"task status fraction", "{\"code\":0,\"data\":{\"status\":0.5}}", -1, -1, 0, {{0}}},
    {"task status word", "{\"code\":0,\"data\":{\"status\":\"RUNNING\"}}", -1, -1, 0, {{0}}},
    {"task status null", "{\"code\":0,\"data\":{\"status\":null}}", -1, -1, 0, {{0}}},
    {"task status huge", "{\"code\":0,\"data\":{\"status\":4294967296}}", -1, -1, 0, {{0}}},
    {"task status at top level is ignored", "{\"code\":0,\"status\":0}", -1, -1, 0, {{0}}},
    {"data a string", "{\"code\":0,\"data\":\"status\"}", -1, -1, 0, {{0}}},
    {"data null", "{\"code\":0,\"data\":null}", -1, -1, 0, {{0}}},
    {"listing of two",
     "{\"code\":0,\"totalCount\":2,\"data\":[" ROW("ins-1", "gz_vpc_1", "vpc-aaaaaaa1") "," ROW(
         "ins-2", "vpc-bbbbbbb2", "vpc-bbbbbbb2") "]}",
     -1,
     2,
     2,
     {{"ins-1", "gz_vpc_1", "vpc-aaaaaaa1"}, {"ins-2", "vpc-bbbbbbb2", "vpc-bbbbbbb2"}}},
    {"empty listing", "{\"code\":0,\"totalCount\":0,\"data\":[]}", -1, 0, 0, {{0}}},
    {"totalCount beyond the page",
     "{\"code\":0,\"totalCount\":120,\"data\":[" ROW("ins-1", "v", "u") "]}",
     -1,
     120,
     1,
     {{"ins-1", "v", "u"}}},
    {"totalCount as a string", "{\"code\":0,\"totalCount\":\"7\"}", -1, 7, 0, {{0}}},
    {"totalCount negative", "{\"code\":0,\"totalCount\":-1}", -1, -1, 0, {{0}}},
    {"totalCount fraction", "{\"code\":0,\"totalCount\":1.5}", -1, -1, 0, {{0}}},
    {"totalCount object", "{\"code\":0,\"totalCount\":{}}", -1, -1, 0, {{0}}},
    {"row without unVpcId",
     "{\"code\":0,\"data\":[{\"instanceId\":\"ins-1\",\"vpcId\":\"vpc-1\"}]}",
     -1,
     -1,
     1,
     {{"ins-1", "vpc-1", NULL}}},
    {"row with only instanceId",
     "{\"code\":0,\"data\":[{\"instanceId\":\"ins-1\"}]}",
     -1,
     -1,
     1,
     {{"ins-1", NULL, NULL}}},
    {"wrong types in a row are absent",
     "{\"code\":0,\"data\":[{\"instanceId\":\"ins-1\",\"vpcId\":5,\"unVpcId\":[\"vpc-1\"]}]}",
     -1,
     -1,
     1,
     {{"ins-1", NULL, NULL}}},
    {"rows without a string instanceId are skipped",
     "{\"code\":0,\"data\":[{\"vpcId\":\"vpc-1\"},{\"instanceId\":5},{\"instanceId\":null},"
     "{\"instanceId\":[\"ins-x\"]},{\"InstanceId\":\"ins-v3\"}," ROW("ins-2", "vpc-2",
                                                                     "vpc-2") "]}",
     -1,
     -1,
     1,
     {{"ins-2", "vpc-2", "vpc-2"}}},
    {"non-object rows are skipped",
     "{\"code\":0,\"data\":[1,\"ins-1\",null,true,[],[{\"instanceId\":\"ins-n\"}]," ROW(
         "ins-3", "v", "u") "]}",
     -1,
     -1,
     1,
     {{"ins-3", "v", "u"}}},
    {"extra row members are ignored",
     "{\"code\":0,\"data\":[{\"lanIp\":\"10.0.0.1\",\"classicLinkId\":\"cl-1\",\"instanceName\":"
     "\"n\",\"createTime\":\"2020-01-01 00:00:00\",\"instanceId\":\"ins-1\",\"vpcId\":\"vpc-1\","
     "\"unVpcId\":\"vpc-1\"}]}",
     -1,
     -1,
     1,
     {{"ins-1", "vpc-1", "vpc-1"}}},
    {"duplicate rows are both kept",
     "{\"code\":0,\"data\":[" ROW("ins-1", "v", "u") "," ROW("ins-1", "v", "u") "]}",
     -1,
     -1,
     2,
     {{"ins-1", "v", "u"}, {"ins-1", "v", "u"}}},
    {"data object is a task, not a listing",
     "{\"code\":0,\"data\":{\"instanceId\":\"ins-1\"}}",
     -1,
     -1,
     0,
     {{0}}},
    {"listing on an error answer is still read",
     "{\"code\":4000,\"codeDesc\":\"X\",\"data\":[{\"instanceId\":\"ins-1\"}]}",
     -1,
     -1,
     1,
     {{"ins-1", NULL, NULL}}},
    {"escaped NUL cannot cut an instance id",
     "{\"code\":0,\"data\":[{\"instanceId\":\"ins-1\\u0000x\",\"vpcId\":\"vpc-1\\u0000\"}]}",
     -1,
     -1,
     1,
     {{"ins-1\xef\xbf\xbdx", "vpc-1\xef\xbf\xbd", NULL}}},
    {"escaped backslash before u0000 stays text",
     "{\"code\":0,\"data\":[{\"instanceId\":\"a\\\\u0000\"}]}",
     -1,
     -1,
     1,
     {{"a\\u0000", NULL, NULL}}},
    {"not json: nothing", "{\"code\":0,\"data\":[" ROW("ins-1", "v", "u") "]", -1, -1, 0, {{0}}},
};

static void test_v2_data_table(void **state)
{
    size_t k;

    (void)state;
    for (k = 0; k < sizeof(v2_data_cases) / sizeof(v2_data_cases[0]); k++) {
        const struct v2_data_case *c = &v2_data_cases[k];
        struct clw_answer ans;

        memset(&ans, 0, sizeof(ans));
        assert_int_equal(clw_answer_parse_body(&ans, c->body, strlen(c->body)), 0);
        assert_int_equal(ans.api_version, 2);
        if (ans.task_status != c->task_status)
            fail_msg("%s: task_status %d want %d", c->name, ans.task_status, c->task_status);
        if (ans.total_count != c->total_count)
            fail_msg("%s: total_count %ld want %ld", c->name, ans.total_count, c->total_count);
        check_links(c->name, &ans, c->n_links, c->links);
        assert_null(ans.request_id);
        clw_answer_free(&ans);
        assert_null(ans.links);
        assert_int_equal(ans.n_links, 0);
    }
}

/* ---- API 3.0 bodies ---- */

struct v3_case {
    const char *name;
    const char *body;
    int body_json;
    int has_code; /* 1: success (code 0) */
    const char *code_desc;
    const char *message;
    const char *request_id;
    int has_task_id;
    long long task_id;
    long total_count;
    size_t n_links;
    struct want_link links[MAX_WANT_LINKS];
};

#define RID  "\"RequestId\":\"6ef60bec-0242-43af-bb20-270359fb54a7\""
#define RIDV "6ef60bec-0242-43af-bb20-270359fb54a7"
/* clang-format off */
#define V3_NOT_JSON(n, b) {(n), (b), 0, 0, NULL, NULL, NULL, 0, 0, -1, 0, {{0}}}
/* clang-format on */

static const struct v3_case v3_cases[] = {
    {"success", "{\"Response\":{" RID "}}", 1, 1, NULL, NULL, RIDV, 0, 0, -1, 0, {{0}}},
    {"success with TaskId",
     "{\"Response\":{\"TaskId\":1234," RID "}}",
     1,
     1,
     NULL,
     NULL,
     RIDV,
     1,
     1234,
     -1,
     0,
     {{0}}},
    {"TaskId as a digit string",
     "{\"Response\":{\"TaskId\":\"99\"}}",
     1,
     1,
     NULL,
     NULL,
     NULL,
     1,
     99,
     -1,
     0,
     {{0}}},
    {"TaskId fraction is absent",
     "{\"Response\":{\"TaskId\":1.5}}",
     1,
     1,
     NULL,
     NULL,
     NULL,
     0,
     0,
     -1,
     0,
     {{0}}},
    {"TaskId word is absent",
     "{\"Response\":{\"TaskId\":\"task-1\"}}",
     1,
     1,
     NULL,
     NULL,
     NULL,
     0,
     0,
     -1,
     0,
     {{0}}},
    {"error",
     "{\"Response\":{\"Error\":{\"Code\":\"ResourceNotFound\",\"Message\":\"vpc not found\"}," RID
     "}}",
     1,
     0,
     "ResourceNotFound",
     "vpc not found",
     RIDV,
     0,
     0,
     -1,
     0,
     {{0}}},
    {"error with a dotted code",
     "{\"Response\":{\"Error\":{\"Code\":\"UnsupportedOperation.ClassicInstanceIdAlreadyExists\","
     "\"Message\":\"m\"}}}",
     1,
     0,
     "UnsupportedOperation.ClassicInstanceIdAlreadyExists",
     "m",
     NULL,
     0,
     0,
     -1,
     0,
     {{0}}},
    {"error without Message",
     "{\"Response\":{\"Error\":{\"Code\":\"InternalError\"}}}",
     1,
     0,
     "InternalError",
     NULL,
     NULL,
     0,
     0,
     -1,
     0,
     {{0}}},
    {"error without Code",
     "{\"Response\":{\"Error\":{\"Message\":\"m\"}}}",
     1,
     0,
     NULL,
     "m",
     NULL,
     0,
     0,
     -1,
     0,
     {{0}}},
    {"empty Error object is no success",
     "{\"Response\":{\"Error\":{}}}",
     1,
     0,
     NULL,
     NULL,
     NULL,
     0,
     0,
     -1,
     0,
     {{0}}},
    {"Error null is no success",
     "{\"Response\":{\"Error\":null}}",
     1,
     0,
     NULL,
     NULL,
     NULL,
     0,
     0,
     -1,
     0,
     {{0}}},
    {"Error string is no success",
     "{\"Response\":{\"Error\":\"AuthFailure\"}}",
     1,
     0,
     NULL,
     NULL,
     NULL,
     0,
     0,
     -1,
     0,
     {{0}}},
    {"Error array is no success",
     "{\"Response\":{\"Error\":[{\"Code\":\"X\"}]}}",
     1,
     0,
     NULL,
     NULL,
     NULL,
     0,
     0,
     -1,
     0,
     {{0}}},
    {"Error false is no success",
     "{\"Response\":{\"Error\":false}}",
     1,
     0,
     NULL,
     NULL,
     NULL,
     0,
     0,
     -1,
     0,
     {{0}}},
    {"Code of the wrong type",
     "{\"Response\":{\"Error\":{\"Code\":4400,\"Message\":[1]}}}",
     1,
     0,
     NULL,
     NULL,
     NULL,
     0,
     0,
     -1,
     0,
     {{0}}},
    {"nested garbage in Code",
     "{\"Response\":{\"Error\":{\"Code\":{\"Code\":\"RequestLimitExceeded\"}}}}",
     1,
     0,
     NULL,
     NULL,
     NULL,
     0,
     0,
     -1,
     0,
     {{0}}},
    {"lower-case error member is not an error",
     "{\"Response\":{\"error\":{\"Code\":\"InternalError\"}}}",
     1,
     1,
     NULL,
     NULL,
     NULL,
     0,
     0,
     -1,
     0,
     {{0}}},
    {"RequestId of the wrong type",
     "{\"Response\":{\"RequestId\":5}}",
     1,
     1,
     NULL,
     NULL,
     NULL,
     0,
     0,
     -1,
     0,
     {{0}}},
    {"v2 members inside Response are ignored",
     "{\"Response\":{\"code\":4000,\"codeDesc\":\"X\",\"message\":\"y\",\"taskId\":5}}",
     1,
     1,
     NULL,
     NULL,
     NULL,
     0,
     0,
     -1,
     0,
     {{0}}},
    {"listing",
     "{\"Response\":{\"TotalCount\":3,\"ClassicLinkInstanceSet\":[{\"InstanceId\":\"ins-1\","
     "\"VpcId\":\"vpc-1\"},{\"InstanceId\":\"ins-2\",\"VpcId\":\"vpc-2\"}]," RID "}}",
     1,
     1,
     NULL,
     NULL,
     RIDV,
     0,
     0,
     3,
     2,
     {{"ins-1", "vpc-1", NULL}, {"ins-2", "vpc-2", NULL}}},
    {"empty listing",
     "{\"Response\":{\"TotalCount\":0,\"ClassicLinkInstanceSet\":[]}}",
     1,
     1,
     NULL,
     NULL,
     NULL,
     0,
     0,
     0,
     0,
     {{0}}},
    {"listing rows without a string InstanceId are skipped",
     "{\"Response\":{\"ClassicLinkInstanceSet\":[1,null,{\"VpcId\":\"vpc-1\"},{\"InstanceId\":7},"
     "{\"instanceId\":\"ins-v2\"},{\"InstanceId\":\"ins-3\",\"VpcId\":{}}]}}",
     1,
     1,
     NULL,
     NULL,
     NULL,
     0,
     0,
     -1,
     1,
     {{"ins-3", NULL, NULL}}},
    {"unVpcId is not a v3 member",
     "{\"Response\":{\"ClassicLinkInstanceSet\":[{\"InstanceId\":\"ins-1\",\"VpcId\":\"vpc-1\","
     "\"unVpcId\":\"vpc-x\"}]}}",
     1,
     1,
     NULL,
     NULL,
     NULL,
     0,
     0,
     -1,
     1,
     {{"ins-1", "vpc-1", NULL}}},
    {"listing an object is no listing",
     "{\"Response\":{\"ClassicLinkInstanceSet\":{\"InstanceId\":\"ins-1\"}}}",
     1,
     1,
     NULL,
     NULL,
     NULL,
     0,
     0,
     -1,
     0,
     {{0}}},
    {"TotalCount negative",
     "{\"Response\":{\"TotalCount\":-5}}",
     1,
     1,
     NULL,
     NULL,
     NULL,
     0,
     0,
     -1,
     0,
     {{0}}},
    {"TotalCount huge",
     "{\"Response\":{\"TotalCount\":1e300}}",
     1,
     1,
     NULL,
     NULL,
     NULL,
     0,
     0,
     -1,
     0,
     {{0}}},
    {"listing on an error answer",
     "{\"Response\":{\"Error\":{\"Code\":\"X\"},\"ClassicLinkInstanceSet\":[{\"InstanceId\":\"i\"}]"
     "}}",
     1,
     0,
     "X",
     NULL,
     NULL,
     0,
     0,
     -1,
     1,
     {{"i", NULL, NULL}}},
    {"escaped NUL cannot cut a code",
     "{\"Response\":{\"Error\":{\"Code\":\"ResourceNotFound\\u0000.x\"}}}",
     1,
     0,
     "ResourceNotFound\xef\xbf\xbd.x",
     NULL,
     NULL,
     0,
     0,
     -1,
     0,
     {{0}}},
    {"Response lower-case", "{\"response\":{}}", 0, 0, NULL, NULL, NULL, 0, 0, -1, 0, {{0}}},
    V3_NOT_JSON("empty object", "{}"),
    V3_NOT_JSON("Response null", "{\"Response\":null}"),
    V3_NOT_JSON("Response string", "{\"Response\":\"ok\"}"),
    V3_NOT_JSON("Response array", "{\"Response\":[{\"RequestId\":\"x\"}]}"),
    V3_NOT_JSON("a v2 success body", "{\"code\":0,\"message\":\"\",\"taskId\":1}"),
    V3_NOT_JSON("array at the top", "[{\"Response\":{}}]"),
    V3_NOT_JSON("truncated", "{\"Response\":{\"RequestId\":\"x\"}"),
    V3_NOT_JSON("trailing garbage", "{\"Response\":{}}x"),
    V3_NOT_JSON("HTML", "<html>502</html>"),
    V3_NOT_JSON("empty", ""),
};

static void test_v3_table(void **state)
{
    size_t k;

    (void)state;
    for (k = 0; k < sizeof(v3_cases) / sizeof(v3_cases[0]); k++) {
        const struct v3_case *c = &v3_cases[k];
        struct clw_answer ans;

        memset(&ans, 0, sizeof(ans));
        ans.transport = CLW_TRANSPORT_OK;
        ans.http_status = 200;
        ans.retry_after_ms = 77;
        assert_int_equal(clw_answer_parse_body_v3(&ans, c->body, strlen(c->body)), 0);
        assert_int_equal(ans.api_version, 3);
        if (ans.body_json != c->body_json)
            fail_msg("%s: body_json %d want %d", c->name, ans.body_json, c->body_json);
        if (ans.has_code != c->has_code)
            fail_msg("%s: has_code %d want %d", c->name, ans.has_code, c->has_code);
        assert_int_equal(ans.code, 0);
        check_opt_string("Code", c->code_desc, ans.code_desc);
        check_opt_string("Message", c->message, ans.message);
        check_opt_string("RequestId", c->request_id, ans.request_id);
        if (ans.has_task_id != c->has_task_id || (c->has_task_id && ans.task_id != c->task_id))
            fail_msg("%s: task id %d/%lld want %d/%lld", c->name, ans.has_task_id, ans.task_id,
                     c->has_task_id, c->task_id);
        if (ans.total_count != c->total_count)
            fail_msg("%s: total_count %ld want %ld", c->name, ans.total_count, c->total_count);
        assert_int_equal(ans.task_status, -1);
        check_links(c->name, &ans, c->n_links, c->links);
        assert_int_equal(ans.transport, CLW_TRANSPORT_OK);
        assert_int_equal(ans.http_status, 200);
        assert_int_equal(ans.retry_after_ms, 77);
        clw_answer_free(&ans);
        assert_null(ans.request_id);
        assert_null(ans.links);
        assert_int_equal(ans.api_version, 0);
    }
}

/* ---- hostile bodies: huge arrays, deep nesting, reuse after free ---- */

/* Appends to a growing buffer; fails the test when out of memory. */
struct sbuf {
    char *p;
    size_t len;
    size_t cap;
};

static void sbuf_add(struct sbuf *b, const char *s)
{
    size_t n = strlen(s);

    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : 1024;
        char *p;

        while (b->len + n + 1 > cap)
            cap *= 2;
        p = realloc(b->p, cap);
        assert_non_null(p);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

/* A listing of n rows "ins-<i>" (v2 or v3 names), every skip-th row without an instance id. */
static char *listing_body(int v3, int n, int skip)
{
    struct sbuf b = {NULL, 0, 0};
    char row[128];
    int i;

    sbuf_add(&b, v3 ? "{\"Response\":{\"TotalCount\":999999,\"ClassicLinkInstanceSet\":["
                    : "{\"code\":0,\"totalCount\":999999,\"data\":[");
    for (i = 0; i < n; i++) {
        if (skip > 0 && i % skip == 0)
            snprintf(row, sizeof(row), "%s{\"%s\":\"vpc-x\"}", i ? "," : "",
                     v3 ? "VpcId" : "vpcId");
        else
            snprintf(row, sizeof(row), "%s{\"%s\":\"ins-%d\",\"%s\":\"vpc-%d\"}", i ? "," : "",
                     v3 ? "InstanceId" : "instanceId", i, v3 ? "VpcId" : "vpcId", i);
        sbuf_add(&b, row);
    }
    sbuf_add(&b, v3 ? "]}}" : "]}");
    return b.p;
}

static int parse_version(int v3, struct clw_answer *ans, const char *body, size_t len)
{
    return v3 ? clw_answer_parse_body_v3(ans, body, len) : clw_answer_parse_body(ans, body, len);
}

struct huge_case {
    const char *name;
    int v3;
    int rows;
    int skip;
    size_t want_n;
    const char *want_first;
    const char *want_last;
};

static const struct huge_case huge_cases[] = {
    {"v2 5000 rows are capped at 1000", 0, 5000, 0, 1000, "ins-0", "ins-999"},
    {"v3 5000 rows are capped at 1000", 1, 5000, 0, 1000, "ins-0", "ins-999"},
    {"v2 exactly 1000 rows", 0, 1000, 0, 1000, "ins-0", "ins-999"},
    {"v2 1001 rows", 0, 1001, 0, 1000, "ins-0", "ins-999"},
    {"v2 skipped rows do not count toward the cap", 0, 3000, 2, 1000, "ins-1", "ins-1999"},
    {"v3 skipped rows do not count toward the cap", 1, 3000, 3, 1000, "ins-1", "ins-1499"},
    {"v3 every row skipped", 1, 2000, 1, 0, NULL, NULL},
};

static void test_huge_listings(void **state)
{
    size_t k;

    (void)state;
    for (k = 0; k < sizeof(huge_cases) / sizeof(huge_cases[0]); k++) {
        const struct huge_case *c = &huge_cases[k];
        char *body = listing_body(c->v3, c->rows, c->skip);
        struct clw_answer ans;

        memset(&ans, 0, sizeof(ans));
        assert_int_equal(parse_version(c->v3, &ans, body, strlen(body)), 0);
        assert_int_equal(ans.body_json, 1);
        assert_int_equal(ans.total_count, 999999);
        if (ans.n_links != c->want_n)
            fail_msg("%s: %zu links want %zu", c->name, ans.n_links, c->want_n);
        if (c->want_n > 0) {
            assert_string_equal(ans.links[0].instance_id, c->want_first);
            assert_string_equal(ans.links[c->want_n - 1].instance_id, c->want_last);
        } else {
            assert_null(ans.links);
        }
        clw_answer_free(&ans);
        free(body);
    }
}

/* 200000 scalars before one usable row: skipped without trouble. */
static void test_huge_scalar_array(void **state)
{
    struct sbuf b = {NULL, 0, 0};
    struct clw_answer ans;
    int i;

    (void)state;
    sbuf_add(&b, "{\"code\":0,\"data\":[");
    for (i = 0; i < 200000; i++)
        sbuf_add(&b, "0,");
    sbuf_add(&b, "{\"instanceId\":\"ins-last\"}]}");
    memset(&ans, 0, sizeof(ans));
    assert_int_equal(clw_answer_parse_body(&ans, b.p, b.len), 0);
    assert_int_equal(ans.n_links, 1);
    assert_string_equal(ans.links[0].instance_id, "ins-last");
    clw_answer_free(&ans);
    free(b.p);
}

/* Nesting past cJSON's limit inside Response (or data) is not JSON at all; nesting within it
 * is just ignored garbage. */
struct deep_case {
    const char *name;
    int v3;
    const char *prefix;
    const char *suffix;
    size_t depth;
    int body_json;
};

static const struct deep_case deep_cases[] = {
    {"v3 Response 10000 deep", 1, "{\"Response\":", "}", 10000, 0},
    {"v3 Error 10000 deep", 1, "{\"Response\":{\"Error\":", "}}", 10000, 0},
    {"v3 listing 500 deep", 1, "{\"Response\":{\"ClassicLinkInstanceSet\":", "}}", 500, 1},
    {"v2 data 10000 deep", 0, "{\"code\":0,\"data\":", "}", 10000, 0},
    {"v2 data 500 deep", 0, "{\"code\":0,\"data\":", "}", 500, 1},
};

static void test_deep_nesting(void **state)
{
    size_t k;

    (void)state;
    for (k = 0; k < sizeof(deep_cases) / sizeof(deep_cases[0]); k++) {
        const struct deep_case *c = &deep_cases[k];
        size_t pl = strlen(c->prefix), sl = strlen(c->suffix), len = pl + 2 * c->depth + sl;
        char *body = malloc(len);
        struct clw_answer ans;

        assert_non_null(body);
        memcpy(body, c->prefix, pl);
        memset(body + pl, '[', c->depth);
        memset(body + pl + c->depth, ']', c->depth);
        memcpy(body + pl + 2 * c->depth, c->suffix, sl);
        memset(&ans, 0, sizeof(ans));
        assert_int_equal(parse_version(c->v3, &ans, body, len), 0);
        if (ans.body_json != c->body_json)
            fail_msg("%s: body_json %d want %d", c->name, ans.body_json, c->body_json);
        assert_int_equal(ans.n_links, 0);
        assert_int_equal(ans.task_status, -1);
        clw_answer_free(&ans);
        free(body);
    }
}

/* One answer parsed, freed and parsed again with the other grammar: nothing carries over. */
static void test_reuse_after_free(void **state)
{
    static const char v2[] = "{\"code\":0,\"taskId\":5,\"totalCount\":1,\"data\":[{\"instanceId\":"
                             "\"ins-1\"}]}";
    static const char v3[] = "{\"Response\":{\"Error\":{\"Code\":\"X\",\"Message\":\"m\"}}}";
    struct clw_answer ans;

    (void)state;
    memset(&ans, 0, sizeof(ans));
    assert_int_equal(clw_answer_parse_body(&ans, v2, strlen(v2)), 0);
    assert_int_equal(ans.n_links, 1);
    clw_answer_free(&ans);
    assert_int_equal(clw_answer_parse_body_v3(&ans, v3, strlen(v3)), 0);
    assert_int_equal(ans.has_task_id, 0);
    assert_int_equal(ans.total_count, -1);
    assert_int_equal(ans.n_links, 0);
    assert_string_equal(ans.code_desc, "X");
    clw_answer_free(&ans);
    assert_int_equal(clw_answer_parse_body_v3(&ans, NULL, 0), 0);
    assert_int_equal(ans.api_version, 3);
    assert_int_equal(ans.body_json, 0);
    assert_int_equal(ans.total_count, -1);
    clw_answer_free(&ans);
    /* a NUL inside the body is not JSON for v3 either */
    assert_int_equal(clw_answer_parse_body_v3(&ans, "{\"Response\":{}}\0", 16), 0);
    assert_int_equal(ans.body_json, 0);
    clw_answer_free(&ans);
}

struct retry_case {
    const char *name;
    const char *value;
    int64_t now_ms;
    int64_t want;
};

#define DAY_MS (86400LL * 1000)
#define OCT21  (1445412480LL * 1000) /* Wed, 21 Oct 2015 07:28:00 GMT */
#define FEB29  (1456704000LL * 1000) /* Mon, 29 Feb 2016 00:00:00 GMT */
#define IMF    "Wed, 21 Oct 2015 07:28:00 GMT"

static const struct retry_case retry_cases[] = {
    {"delta 120", "120", 0, 120000},
    {"delta 0", "0", 0, 0},
    {"delta 1", "1", OCT21, 1000},
    {"delta with surrounding white space", " \t5 ", 0, 5000},
    {"delta with leading zeros", "007", 0, 7000},
    {"delta one day", "86400", 0, DAY_MS},
    {"delta capped to a day", "86401", 0, DAY_MS},
    {"delta huge is capped, not overflowed", "99999999999999999999999999999", 0, DAY_MS},
    {"negative delta", "-1", 0, -1},
    {"fractional delta", "1.5", 0, -1},
    {"delta with a unit", "12s", 0, -1},
    {"delta with a sign", "+5", 0, -1},
    {"empty", "", 0, -1},
    {"white space only", "  ", 0, -1},
    {"NULL", NULL, 0, -1},
    {"garbage", "soon", 0, -1},
    {"date 30 s ahead", IMF, OCT21 - 30000, 30000},
    {"date with sub-second now", IMF, OCT21 - 1500, 1500},
    {"date now", IMF, OCT21, 0},
    {"date in the past", IMF, OCT21 + 5000, 0},
    {"date far ahead is capped", IMF, OCT21 - 10 * DAY_MS, DAY_MS},
    {"leap day", "Mon, 29 Feb 2016 00:00:00 GMT", FEB29 - 2000, 2000},
    {"date with trailing white space", IMF "  ", OCT21 - 1000, 1000},
    {"no leap day in 2015", "Sun, 29 Feb 2015 00:00:00 GMT", 0, -1},
    {"day 32", "Wed, 32 Oct 2015 07:28:00 GMT", 0, -1},
    {"day 00", "Wed, 00 Oct 2015 07:28:00 GMT", 0, -1},
    {"hour 24", "Wed, 21 Oct 2015 24:00:00 GMT", 0, -1},
    {"minute 60", "Wed, 21 Oct 2015 07:60:00 GMT", 0, -1},
    {"bad month", "Wed, 21 Foo 2015 07:28:00 GMT", 0, -1},
    {"bad day name", "Xyz, 21 Oct 2015 07:28:00 GMT", 0, -1},
    {"UTC instead of GMT", "Wed, 21 Oct 2015 07:28:00 UTC", 0, -1},
    {"single-digit day", "Wed, 1 Oct 2015 07:28:00 GMT", 0, -1},
    {"RFC 850 form is not accepted", "Wednesday, 21-Oct-15 07:28:00 GMT", 0, -1},
    {"asctime form is not accepted", "Wed Oct 21 07:28:00 2015", 0, -1},
    {"date with garbage after", IMF "x", 0, -1},
};

static void test_retry_after(void **state)
{
    size_t k;

    (void)state;
    for (k = 0; k < sizeof(retry_cases) / sizeof(retry_cases[0]); k++) {
        const struct retry_case *c = &retry_cases[k];
        int64_t got = clw_answer_parse_retry_after(c->value, c->now_ms);

        if (got != c->want)
            fail_msg("retry-after %s: want %lld, got %lld", c->name, (long long)c->want,
                     (long long)got);
    }
}

int main(void)
{
    size_t n = sizeof(body_cases) / sizeof(body_cases[0]), k;
    struct CMUnitTest *tests = calloc(n + 8, sizeof(*tests));
    int rc;

    if (tests == NULL)
        return 1;
    for (k = 0; k < n; k++) {
        tests[k].name = body_cases[k].name;
        tests[k].test_func = run_body_case;
        tests[k].initial_state = (void *)&body_cases[k];
    }
    tests[n].name = "deep and NULL bodies";
    tests[n].test_func = test_deep_body;
    tests[n + 1].name = "retry-after";
    tests[n + 1].test_func = test_retry_after;
    tests[n + 2].name = "v2 task status and link listings";
    tests[n + 2].test_func = test_v2_data_table;
    tests[n + 3].name = "v3 bodies";
    tests[n + 3].test_func = test_v3_table;
    tests[n + 4].name = "huge listings are capped";
    tests[n + 4].test_func = test_huge_listings;
    tests[n + 5].name = "huge scalar array";
    tests[n + 5].test_func = test_huge_scalar_array;
    tests[n + 6].name = "deep nesting";
    tests[n + 6].test_func = test_deep_nesting;
    tests[n + 7].name = "reuse after free";
    tests[n + 7].test_func = test_reuse_after_free;
    rc = _cmocka_run_group_tests("answer", tests, n + 8, NULL, NULL);
    free(tests);
    return rc;
}
