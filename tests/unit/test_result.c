/* Unit tests for result: outcomes encoded to the exact contract JSON, cuts and UTF-8 repair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "clw/request.h"
#include "clw/result.h"

#define X10   "xxxxxxxxxx"
#define X100  X10 X10 X10 X10 X10 X10 X10 X10 X10 X10
#define X1000 X100 X100 X100 X100 X100 X100 X100 X100 X100 X100
#define FFFD  "\xef\xbf\xbd"

#define T_ENQ  1795640791990LL /* 2026-11-25T21:06:31.990Z */
#define T_RECV 1795640792001LL
#define T_DONE 1795640792123LL
#define TIMES                                                                                      \
    "\"enqueuedAt\":\"2026-11-25T21:06:31.990Z\",\"receivedAt\":\"2026-11-25T21:06:32.001Z\","     \
    "\"completedAt\":\"2026-11-25T21:06:32.123Z\"}"
#define SOURCE "\"source\":{\"topic\":\"classiclink.requests\",\"partition\":3,\"offset\":1742},"

static const char *const two_ids[] = {"ins-df454d", "ins-5d8a23rs"};
static const char *const one_id[] = {"ins-df454d"};
static const char *const quote_id[] = {"ins-\"x\\"};

/* Common parts of the outcomes below; each case overrides what it tests. */
#define SOURCE_AND_TIMES                                                                           \
    .source_topic = "classiclink.requests", .source_partition = 3, .source_offset = 1742,          \
    .enqueued_at_ms = T_ENQ, .received_at_ms = T_RECV, .completed_at_ms = T_DONE
#define ATTACH_ONE                                                                                 \
    .request_id = "r-1", .action = "AttachClassicLinkVpc", .region = "ap-guangzhou",               \
    .vpc_id = "vpc-2ari9m7h", .instance_ids = one_id, .n_instances = 1
#define ATTACH_ONE_JSON                                                                            \
    "{\"schemaVersion\":1,\"requestId\":\"r-1\",\"action\":\"AttachClassicLinkVpc\","              \
    "\"region\":\"ap-guangzhou\",\"vpcId\":\"vpc-2ari9m7h\",\"instanceIds\":[\"ins-df454d\"],"
/* A failed api_error outcome of ATTACH_ONE with the given message JSON text. */
#define API_ERROR_JSON(msg)                                                                        \
    ATTACH_ONE_JSON "\"status\":\"failed\",\"code\":4000,\"codeDesc\":\"InvalidVpc.NotFound\","    \
                    "\"message\":\"" msg "\",\"taskId\":null,\"errorClass\":\"api_error\","        \
                    "\"attempts\":1," SOURCE TIMES
#define API_ERROR(msg)                                                                             \
    ATTACH_ONE, .has_code = 1, .code = 4000, .code_desc = "InvalidVpc.NotFound", .message = (msg), \
                .error_class = "api_error", .attempts = 1, SOURCE_AND_TIMES

struct result_case {
    const char *name;
    struct clw_outcome o;
    const char *want;
};

static const struct result_case cases[] = {
    {"contract success example",
     {.request_id = "7f3c2a10-attach-42",
      .action = "AttachClassicLinkVpc",
      .region = "ap-guangzhou",
      .vpc_id = "vpc-2ari9m7h",
      .instance_ids = two_ids,
      .n_instances = 2,
      .succeeded = 1,
      .has_code = 1,
      .code = 0,
      .code_desc = "Success",
      .message = "",
      .has_task_id = 1,
      .task_id = 135254,
      .attempts = 1,
      SOURCE_AND_TIMES},
     "{\"schemaVersion\":1,\"requestId\":\"7f3c2a10-attach-42\",\"action\":"
     "\"AttachClassicLinkVpc\","
     "\"region\":\"ap-guangzhou\",\"vpcId\":\"vpc-2ari9m7h\","
     "\"instanceIds\":[\"ins-df454d\",\"ins-5d8a23rs\"],\"status\":\"succeeded\",\"code\":0,"
     "\"codeDesc\":\"Success\",\"message\":\"\",\"taskId\":135254,\"errorClass\":null,"
     "\"attempts\":1," SOURCE TIMES},
    {"invalid request with rawRequestId",
     {.request_id = "classiclink.requests:3:1742",
      .raw_request_id = "bad id&x=1",
      .region = "ap-guangzhou",
      .has_code = 1,
      .code = 4000,
      .code_desc = "InvalidRequest.BadRequestId",
      .message = "requestId must be 1-128 characters of [A-Za-z0-9._:-]",
      .error_class = "invalid_request",
      SOURCE_AND_TIMES},
     "{\"schemaVersion\":1,\"requestId\":\"classiclink.requests:3:1742\","
     "\"rawRequestId\":\"bad id&x=1\",\"action\":null,\"region\":\"ap-guangzhou\","
     "\"vpcId\":null,\"instanceIds\":null,\"status\":\"failed\",\"code\":4000,"
     "\"codeDesc\":\"InvalidRequest.BadRequestId\","
     "\"message\":\"requestId must be 1-128 characters of [A-Za-z0-9._:-]\",\"taskId\":null,"
     "\"errorClass\":\"invalid_request\",\"attempts\":0," SOURCE TIMES},
    {"transport failure with httpStatus and null code",
     {ATTACH_ONE, .code_desc = "Transport.HttpStatus", .error_class = "retries_exhausted",
      .attempts = 7, .http_status = 503, SOURCE_AND_TIMES},
     ATTACH_ONE_JSON "\"status\":\"failed\",\"code\":null,\"codeDesc\":\"Transport.HttpStatus\","
                     "\"message\":\"\",\"taskId\":null,\"errorClass\":\"retries_exhausted\","
                     "\"attempts\":7,\"httpStatus\":503," SOURCE TIMES},
    {"timeout without httpStatus",
     {ATTACH_ONE, .code_desc = "Transport.Timeout", .error_class = "retries_exhausted",
      .attempts = 3, .http_status = 0, SOURCE_AND_TIMES},
     ATTACH_ONE_JSON "\"status\":\"failed\",\"code\":null,\"codeDesc\":\"Transport.Timeout\","
                     "\"message\":\"\",\"taskId\":null,\"errorClass\":\"retries_exhausted\","
                     "\"attempts\":3," SOURCE TIMES},
    {"message cut to 1 KiB", {API_ERROR(X1000 X1000)}, API_ERROR_JSON(X1000 X10 X10 "xxxx")},
    {"message of exactly 1 KiB kept",
     {API_ERROR(X1000 X10 X10 "xxxx")},
     API_ERROR_JSON(X1000 X10 X10 "xxxx")},
    {"message cut counts bytes before escaping",
     {API_ERROR(X1000 X10 X10 "xxx\n\n")},
     API_ERROR_JSON(X1000 X10 X10 "xxx\\n")},
    {"message cut before a split character",
     {API_ERROR(X1000 X10 X10 "xxx\xc3\xa9")},
     API_ERROR_JSON(X1000 X10 X10 "xxx")},
    {"message cut before a replacement that does not fit",
     {API_ERROR(X1000 X10 X10 "xx\xff")},
     API_ERROR_JSON(X1000 X10 X10 "xx")},
    {"UTF-8 repair in message",
     {API_ERROR("bad \xff\xfe end \xc0\xaf ok \xe2\x82")},
     API_ERROR_JSON("bad " FFFD FFFD " end " FFFD FFFD " ok " FFFD FFFD)},
    {"UTF-8 repair in codeDesc",
     {ATTACH_ONE, .has_code = 1, .code = 4000, .code_desc = "Err\xed\xa0\x80",
      .message = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", .error_class = "api_error",
      .attempts = 1, SOURCE_AND_TIMES},
     ATTACH_ONE_JSON "\"status\":\"failed\",\"code\":4000,\"codeDesc\":\"Err" FFFD FFFD FFFD "\","
                     "\"message\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\",\"taskId\":null,"
                     "\"errorClass\":\"api_error\",\"attempts\":1," SOURCE TIMES},
    {"escaping of quotes, backslashes and control characters",
     {API_ERROR("q\"b\\s/n\nt\tr\rc\x01"
                "d\x1f"
                "e\x7f")},
     API_ERROR_JSON("q\\\"b\\\\s/n\\nt\\tr\\rc\\u0001d\\u001fe\x7f")},
    {"query characters need no escaping in JSON",
     {API_ERROR("a&b=c%20#d?e f")},
     API_ERROR_JSON("a&b=c%20#d?e f")},
    {"strings from the request are escaped too",
     {.request_id = "r\"1",
      .raw_request_id = "a\\b\n",
      .action = "AttachClassicLinkVpc",
      .instance_ids = quote_id,
      .n_instances = 1,
      .attempts = 0,
      SOURCE_AND_TIMES},
     "{\"schemaVersion\":1,\"requestId\":\"r\\\"1\",\"rawRequestId\":\"a\\\\b\\n\","
     "\"action\":\"AttachClassicLinkVpc\",\"region\":null,\"vpcId\":null,"
     "\"instanceIds\":[\"ins-\\\"x\\\\\"],\"status\":\"failed\",\"code\":null,\"codeDesc\":null,"
     "\"message\":\"\",\"taskId\":null,\"errorClass\":null,\"attempts\":0," SOURCE TIMES},
    {"extremes: exact int64, negative code, empty list, null times",
     {.request_id = NULL,
      .instance_ids = one_id,
      .n_instances = 0,
      .succeeded = 0,
      .has_code = 1,
      .code = -1,
      .has_task_id = 1,
      .task_id = 9007199254740993LL,
      .attempts = 2147483647,
      .http_status = -5,
      .source_topic = NULL,
      .source_partition = -1,
      .source_offset = INT64_MAX,
      .enqueued_at_ms = -1,
      .received_at_ms = 0,
      .completed_at_ms = 253402300799999LL},
     "{\"schemaVersion\":1,\"requestId\":null,\"action\":null,\"region\":null,\"vpcId\":null,"
     "\"instanceIds\":[],\"status\":\"failed\",\"code\":-1,\"codeDesc\":null,\"message\":\"\","
     "\"taskId\":9007199254740993,\"errorClass\":null,\"attempts\":2147483647,"
     "\"source\":{\"topic\":null,\"partition\":-1,\"offset\":9223372036854775807},"
     "\"enqueuedAt\":null,\"receivedAt\":\"1970-01-01T00:00:00.000Z\","
     "\"completedAt\":\"9999-12-31T23:59:59.999Z\"}"},
    {"time past year 9999 is null",
     {ATTACH_ONE, .succeeded = 1, .has_code = 1, .code_desc = "Success", .has_task_id = 1,
      .task_id = 1, .attempts = 1, .source_topic = "classiclink.requests", .source_partition = 3,
      .source_offset = 1742, .enqueued_at_ms = 253402300800000LL, .received_at_ms = INT64_MAX,
      .completed_at_ms = 1000},
     ATTACH_ONE_JSON
     "\"status\":\"succeeded\",\"code\":0,\"codeDesc\":\"Success\",\"message\":\"\","
     "\"taskId\":1,\"errorClass\":null,\"attempts\":1," SOURCE
     "\"enqueuedAt\":null,\"receivedAt\":null,"
     "\"completedAt\":\"1970-01-01T00:00:01.000Z\"}"},
};

/* Every output must be valid UTF-8, parse as a JSON object and fit in 64 KiB. */
static void check_well_formed(const char *text, size_t len)
{
    cJSON *root;

    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    assert_true(len <= 65536);
    assert_true(clw_utf8_valid(text, len));
    root = cJSON_Parse(text);
    assert_non_null(root);
    assert_true(cJSON_IsObject(root));
    cJSON_Delete(root);
}

static void run_case(void **state)
{
    const struct result_case *c = *state;
    size_t len = 0;
    char *text = clw_result_encode(&c->o, &len);

    check_well_formed(text, len);
    assert_string_equal(text, c->want);
    free(text);
}

/* ---- the 64 KiB limit ---- */

static char *filled(size_t n, char c)
{
    char *s = malloc(n + 1);

    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static const char *const *many_ids(size_t n)
{
    static const char id[] = "ins-0123456789abcdefghijklmnopqrstuv"; /* 36 bytes, 39 printed */
    const char **ids = malloc(n * sizeof(*ids));
    size_t k;

    assert_non_null(ids);
    for (k = 0; k < n; k++)
        ids[k] = id;
    return ids;
}

static const char *message_of(const char *text)
{
    const char *m = strstr(text, "\"message\":\"");

    assert_non_null(m);
    return m + strlen("\"message\":\"");
}

/* A huge codeDesc (the API's, unbounded): message goes first, then codeDesc is cut so the
 * value is exactly 64 KiB. */
static void test_huge_code_desc(void **state)
{
    struct clw_outcome o = {API_ERROR("m")};
    char *desc = filled(70000, 'c');
    size_t len = 0;
    char *text;

    (void)state;
    o.code_desc = desc;
    text = clw_result_encode(&o, &len);
    check_well_formed(text, len);
    assert_int_equal(len, 65536);
    assert_non_null(strstr(text, "\"message\":\"\""));
    free(text);
    free(desc);
}

/* A message whose escapes (\u0001 prints as 6 bytes) push a large value over 64 KiB: the
 * message is cut further, but only as far as needed. */
static void test_message_cut_further(void **state)
{
    struct clw_outcome o = {API_ERROR("")};
    char *msg = filled(1024, '\x01');
    size_t len = 0, n_ids = 1550, kept;
    char *text;
    const char *m;

    (void)state;
    o.message = msg;
    o.instance_ids = many_ids(n_ids);
    o.n_instances = n_ids;
    text = clw_result_encode(&o, &len);
    check_well_formed(text, len);
    assert_true(len > 65536 - 6); /* one escape's slack */
    m = message_of(text);
    kept = (size_t)(strchr(m, '"') - m) / 6; /* characters kept, each printed as \u0001 */
    assert_true(kept > 0);
    assert_true(kept < 1024);
    free(text);
    free((void *)o.instance_ids);
    free(msg);
}

/* An instance list no sane configuration allows: nothing fits, the encoder refuses. */
static void test_too_big_to_fit(void **state)
{
    struct clw_outcome o = {API_ERROR("m")};
    size_t len = 123;
    char *text;

    (void)state;
    o.instance_ids = many_ids(2000);
    o.n_instances = 2000;
    text = clw_result_encode(&o, &len);
    assert_null(text);
    assert_int_equal(len, 0);
    free((void *)o.instance_ids);
}

int main(void)
{
    size_t n = sizeof(cases) / sizeof(cases[0]), k;
    struct CMUnitTest *tests = calloc(n + 3, sizeof(*tests));
    int rc;

    if (tests == NULL)
        return 1;
    for (k = 0; k < n; k++) {
        tests[k].name = cases[k].name;
        tests[k].test_func = run_case;
        tests[k].initial_state = (void *)&cases[k];
    }
    tests[n].name = "huge codeDesc cut to fit 64 KiB";
    tests[n].test_func = test_huge_code_desc;
    tests[n + 1].name = "message cut further to fit 64 KiB";
    tests[n + 1].test_func = test_message_cut_further;
    tests[n + 2].name = "too big to fit";
    tests[n + 2].test_func = test_too_big_to_fit;
    rc = _cmocka_run_group_tests("result", tests, n + 3, NULL, NULL);
    free(tests);
    return rc;
}
