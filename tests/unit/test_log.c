/* Unit tests for logging (log.c): record shape, escaping, context keys, levels, truncation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clw/log.h"

#define CAPTURE_MAX 16384

/* Runs one clw_log_write with stderr redirected to a temporary file; returns what was written. */
static char *capture(enum clw_log_level level, const struct clw_log_ctx *ctx, const char *msg)
{
    static char out[CAPTURE_MAX];
    FILE *tmp = tmpfile();
    int saved;
    ssize_t n;

    assert_non_null(tmp);
    fflush(stderr);
    saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), 2) >= 0);
    clw_log_write(level, ctx, "%s", msg);
    assert_true(dup2(saved, 2) >= 0);
    close(saved);
    n = pread(fileno(tmp), out, sizeof(out) - 1, 0);
    assert_true(n >= 0);
    out[n] = '\0';
    fclose(tmp);
    return out;
}

/* Replaces the timestamp with "TS" after checking its shape (YYYY-MM-DDTHH:MM:SS.mmmZ). */
static void normalize_ts(char *rec, int json)
{
    const char *pat = "dddd-dd-ddTdd:dd:dd.dddZ";
    char *ts = rec;
    size_t i;

    if (json) {
        assert_true(strncmp(rec, "{\"ts\":\"", 7) == 0);
        ts = rec + 7;
    }
    for (i = 0; pat[i]; i++) {
        if (pat[i] == 'd')
            assert_true(ts[i] >= '0' && ts[i] <= '9');
        else
            assert_int_equal(ts[i], pat[i]);
    }
    ts[0] = 'T';
    ts[1] = 'S';
    memmove(ts + 2, ts + 24, strlen(ts + 24) + 1);
}

static const struct clw_log_ctx ctx_full = {"req-1", "classiclink.requests", 3, 1742,
                                            "4bf92f3577b34da6a3ce929d0e0e4736"};
static const struct clw_log_ctx ctx_partial = {NULL, "t", -1, 0, NULL};
static const struct clw_log_ctx ctx_spaces = {"a b", NULL, -1, -1, "x\"y"};

struct log_case {
    const char *name;
    int json;
    enum clw_log_level min;
    enum clw_log_level level;
    const struct clw_log_ctx *ctx;
    const char *msg;
    const char *expected; /* "" when nothing is written */
};

static const struct log_case log_cases[] = {
    {"json plain", 1, CLW_LOG_INFO, CLW_LOG_INFO, NULL, "hello",
     "{\"ts\":\"TS\",\"level\":\"info\",\"msg\":\"hello\"}\n"},
    {"json error level", 1, CLW_LOG_INFO, CLW_LOG_ERROR, NULL, "bad",
     "{\"ts\":\"TS\",\"level\":\"error\",\"msg\":\"bad\"}\n"},
    {"below the level is dropped", 1, CLW_LOG_WARN, CLW_LOG_INFO, NULL, "hidden", ""},
    {"debug enabled", 1, CLW_LOG_DEBUG, CLW_LOG_DEBUG, NULL, "d",
     "{\"ts\":\"TS\",\"level\":\"debug\",\"msg\":\"d\"}\n"},
    {"json escapes", 1, CLW_LOG_INFO, CLW_LOG_WARN, NULL, "q\" b\\ n\n t\t r\r c\x01 del\x7f",
     "{\"ts\":\"TS\",\"level\":\"warn\",\"msg\":\"q\\\" b\\\\ n\\n t\\t r\\r c\\u0001 "
     "del\\u007f\"}\n"},
    {"valid utf-8 kept", 1, CLW_LOG_INFO, CLW_LOG_INFO, NULL,
     "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
     "{\"ts\":\"TS\",\"level\":\"info\",\"msg\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}\n"},
    {"invalid utf-8 replaced", 1, CLW_LOG_INFO, CLW_LOG_INFO, NULL,
     "a\xff"
     "b\xc0\xaf"
     "c\xed\xa0\x80"
     "d\xe2\x82",
     "{\"ts\":\"TS\",\"level\":\"info\",\"msg\":\"a\\ufffdb\\ufffd\\ufffdc\\ufffd\\ufffd\\ufffdd"
     "\\ufffd\\ufffd\"}\n"},
    {"json full context in order", 1, CLW_LOG_INFO, CLW_LOG_INFO, &ctx_full, "m",
     "{\"ts\":\"TS\",\"level\":\"info\",\"msg\":\"m\",\"requestId\":\"req-1\",\"topic\":"
     "\"classiclink.requests\",\"partition\":3,\"offset\":1742,\"traceId\":"
     "\"4bf92f3577b34da6a3ce929d0e0e4736\"}\n"},
    {"json only known context", 1, CLW_LOG_INFO, CLW_LOG_INFO, &ctx_partial, "m",
     "{\"ts\":\"TS\",\"level\":\"info\",\"msg\":\"m\",\"topic\":\"t\",\"offset\":0}\n"},
    {"json context escaped", 1, CLW_LOG_INFO, CLW_LOG_INFO, &ctx_spaces, "m",
     "{\"ts\":\"TS\",\"level\":\"info\",\"msg\":\"m\",\"requestId\":\"a b\",\"traceId\":"
     "\"x\\\"y\"}\n"},
    {"text plain", 0, CLW_LOG_INFO, CLW_LOG_INFO, NULL, "hello world", "TS INFO hello world\n"},
    {"text context", 0, CLW_LOG_INFO, CLW_LOG_WARN, &ctx_full, "m",
     "TS WARN m requestId=req-1 topic=classiclink.requests partition=3 offset=1742 "
     "traceId=4bf92f3577b34da6a3ce929d0e0e4736\n"},
    {"text quotes values with blanks", 0, CLW_LOG_INFO, CLW_LOG_ERROR, &ctx_spaces, "m",
     "TS ERROR m requestId=\"a b\" traceId=\"x\\\"y\"\n"},
    {"text escapes newlines", 0, CLW_LOG_INFO, CLW_LOG_INFO, NULL, "a\nb\x01\xff",
     "TS INFO a\\nb\\x01\xef\xbf\xbd\n"},
};

static void test_records_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(log_cases) / sizeof(log_cases[0]); i++) {
        const struct log_case *c = &log_cases[i];
        char *rec;

        print_message("case: %s\n", c->name);
        clw_log_setup(c->min, c->json);
        rec = capture(c->level, c->ctx, c->msg);
        if (c->expected[0])
            normalize_ts(rec, c->json);
        assert_string_equal(rec, c->expected);
    }
    clw_log_setup(CLW_LOG_INFO, 1);
}

static void test_long_message_is_cut(void **state)
{
    static char msg[20000];
    static const struct clw_log_ctx ctx = {"r", "t", 1, 2, "tr"};
    char *rec;
    size_t len;
    int json;

    (void)state;
    memset(msg, '"', sizeof(msg) - 1); /* every byte doubles when escaped */
    for (json = 0; json <= 1; json++) {
        clw_log_setup(CLW_LOG_INFO, json);
        rec = capture(CLW_LOG_INFO, &ctx, msg);
        len = strlen(rec);
        assert_true(len <= 8192);
        assert_true(len > 4000);
        assert_int_equal(rec[len - 1], '\n');
        assert_ptr_equal(strchr(rec, '\n'), rec + len - 1); /* one line */
        assert_non_null(strstr(rec, "..."));
        /* The context survives the cut. */
        assert_non_null(strstr(rec, json ? "\"traceId\":\"tr\"}\n" : "traceId=tr\n"));
    }
    clw_log_setup(CLW_LOG_INFO, 1);
}

struct level_case {
    const char *text;
    int rc;
    enum clw_log_level level;
};

static const struct level_case level_cases[] = {
    {"debug", 0, CLW_LOG_DEBUG}, {"info", 0, CLW_LOG_INFO},  {"warn", 0, CLW_LOG_WARN},
    {"error", 0, CLW_LOG_ERROR}, {"INFO", -1, CLW_LOG_INFO}, {"warning", -1, CLW_LOG_INFO},
    {"", -1, CLW_LOG_INFO},      {NULL, -1, CLW_LOG_INFO},
};

static void test_level_parse_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(level_cases) / sizeof(level_cases[0]); i++) {
        enum clw_log_level lv = CLW_LOG_INFO;
        int rc = clw_log_level_parse(level_cases[i].text, &lv);

        assert_int_equal(rc, level_cases[i].rc);
        assert_int_equal(lv, level_cases[i].level);
        if (rc == 0)
            assert_string_equal(clw_log_level_name(lv), level_cases[i].text);
    }
    assert_string_equal(clw_log_level_name((enum clw_log_level)42), "unknown");
}

static void test_enabled_and_errno(void **state)
{
    char *rec;

    (void)state;
    clw_log_setup(CLW_LOG_WARN, 1);
    assert_false(clw_log_enabled(CLW_LOG_INFO));
    assert_true(clw_log_enabled(CLW_LOG_WARN));
    assert_true(clw_log_enabled(CLW_LOG_ERROR));
    errno = ENOENT;
    rec = capture(CLW_LOG_ERROR, NULL, "x");
    assert_int_equal(errno, ENOENT);
    assert_non_null(strstr(rec, "\"msg\":\"x\""));
    clw_log_setup(CLW_LOG_INFO, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_table),
        cmocka_unit_test(test_long_message_is_cut),
        cmocka_unit_test(test_level_parse_table),
        cmocka_unit_test(test_enabled_and_errno),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
