/* Unit tests for answer: v2 body decoding (code, taskId, codeDesc forms) and Retry-After. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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
    /* Left alone: */
    assert_int_equal(ans.transport, CLW_TRANSPORT_OK);
    assert_int_equal(ans.http_status, 200);
    assert_int_equal(ans.retry_after_ms, 1234);
    clw_answer_free(&ans);
    assert_null(ans.message);
    assert_null(ans.code_desc);
    assert_int_equal(ans.has_code, 0);
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
    struct CMUnitTest *tests = calloc(n + 2, sizeof(*tests));
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
    rc = _cmocka_run_group_tests("answer", tests, n + 2, NULL, NULL);
    free(tests);
    return rc;
}
