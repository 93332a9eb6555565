/* Unit tests for classify: every transport kind, HTTP status, codeDesc and code of the table. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "clw/classify.h"

struct classify_case {
    const char *name;
    enum clw_transport transport;
    long http_status;
    int body_json;
    int has_code;
    long code;
    const char *code_desc;
    enum clw_class want;
    const char *want_why;
    const char *want_desc; /* clw_classify_transport_desc(); NULL when the code is decodable */
};

#define S  CLW_CLASS_SUCCESS
#define P  CLW_CLASS_PERMANENT
#define TR CLW_CLASS_TRANSIENT
#define RS CLW_CLASS_RESIGN
#define WF CLW_CLASS_WORKER_FAULT

/* A 200 answer with a decodable numeric code and no codeDesc. */
#define CODE(c, cls, why)                                                                          \
    {                                                                                              \
        "code " #c, CLW_TRANSPORT_OK, 200, 1, 1, (c), NULL, (cls), (why), NULL                     \
    }
/* A non-200 answer whose body would say success: the status decides. */
#define HTTP(st, cls, why)                                                                         \
    {                                                                                              \
        "http " #st, CLW_TRANSPORT_OK, (st), 1, 1, 0, NULL, (cls), (why), "Transport.HttpStatus"   \
    }

static const struct classify_case cases[] = {
    /* transport kinds */
    {"timeout", CLW_TRANSPORT_TIMEOUT, 0, 0, 0, 0, NULL, TR, "timeout", "Transport.Timeout"},
    {"connect", CLW_TRANSPORT_CONNECT, 0, 0, 0, 0, NULL, TR, "connect", "Transport.Connect"},
    {"tls", CLW_TRANSPORT_TLS, 0, 0, 0, 0, NULL, WF, "tls", "Transport.TLS"},
    {"transport error before status", CLW_TRANSPORT_ERROR, 0, 0, 0, 0, NULL, TR, "transport error",
     "Transport.Connect"},
    {"transport error after status", CLW_TRANSPORT_ERROR, 200, 0, 0, 0, NULL, TR, "transport error",
     "Transport.HttpStatus"},
    {"too large after status", CLW_TRANSPORT_TOO_LARGE, 200, 0, 0, 0, NULL, TR,
     "response too large", "Transport.HttpStatus"},
    {"too large without status", CLW_TRANSPORT_TOO_LARGE, 0, 0, 0, 0, NULL, TR,
     "response too large", "Transport.Connect"},
    {"timeout ignores a partial body", CLW_TRANSPORT_TIMEOUT, 200, 1, 1, 0, NULL, TR, "timeout",
     "Transport.Timeout"},
    {"tls ignores status", CLW_TRANSPORT_TLS, 503, 0, 0, 0, NULL, WF, "tls", "Transport.TLS"},
    {"unknown transport kind", (enum clw_transport)42, 0, 0, 0, 0, NULL, TR, "transport unknown",
     "Transport.Connect"},

    /* HTTP statuses other than 200: the body (here code 0) is not looked at */
    HTTP(408, TR, "http 408"),
    HTTP(429, TR, "http 429"),
    HTTP(500, TR, "http 500"),
    HTTP(502, TR, "http 502"),
    HTTP(503, TR, "http 503"),
    HTTP(504, TR, "http 504"),
    HTTP(501, TR, "http 5xx"),
    HTTP(599, TR, "http 5xx"),
    HTTP(400, WF, "http 400"),
    HTTP(401, WF, "http 401"),
    HTTP(403, WF, "http 403"),
    HTTP(404, WF, "http 404"),
    HTTP(405, WF, "http 405"),
    HTTP(409, WF, "http status"),
    HTTP(499, WF, "http status"),
    HTTP(301, WF, "http status"),
    HTTP(302, WF, "http status"),
    HTTP(204, WF, "http status"),
    HTTP(100, WF, "http status"),
    HTTP(600, TR, "http invalid status"),
    HTTP(99, TR, "http invalid status"),
    {"ok transport without status", CLW_TRANSPORT_OK, 0, 0, 0, 0, NULL, TR, "http invalid status",
     "Transport.Connect"},
    {"503 with a transient api body", CLW_TRANSPORT_OK, 503, 1, 1, 6200, "ServiceUnavailable", TR,
     "http 503", "Transport.HttpStatus"},
    {"403 with a success body", CLW_TRANSPORT_OK, 403, 1, 1, 0, "Success", WF, "http 403",
     "Transport.HttpStatus"},

    /* 200 without a decodable code */
    {"body not json", CLW_TRANSPORT_OK, 200, 0, 0, 0, NULL, TR, "body not json",
     "Transport.HttpStatus"},
    {"body not json with stray code", CLW_TRANSPORT_OK, 200, 0, 1, 0, NULL, TR, "body not json",
     "Transport.HttpStatus"},
    {"json without code", CLW_TRANSPORT_OK, 200, 1, 0, 0, NULL, TR, "body without code",
     "Transport.HttpStatus"},
    {"json without code but codeDesc", CLW_TRANSPORT_OK, 200, 1, 0, 0, "InvalidVpc.NotFound", TR,
     "body without code", "Transport.HttpStatus"},

    /* string codes override the numeric code */
    {"ServiceUnavailable with 4000", CLW_TRANSPORT_OK, 200, 1, 1, 4000, "ServiceUnavailable", TR,
     "codeDesc ServiceUnavailable", NULL},
    {"ServiceUnavailable with 0", CLW_TRANSPORT_OK, 200, 1, 1, 0, "ServiceUnavailable", TR,
     "codeDesc ServiceUnavailable", NULL},
    {"ServiceUnavailable with 4100", CLW_TRANSPORT_OK, 200, 1, 1, 4100, "ServiceUnavailable", TR,
     "codeDesc ServiceUnavailable", NULL},
    {"ServiceUnavailable.prefix", CLW_TRANSPORT_OK, 200, 1, 1, 5000,
     "ServiceUnavailable.Maintenance", TR, "codeDesc ServiceUnavailable.*", NULL},
    {"ServiceUnavailable. alone", CLW_TRANSPORT_OK, 200, 1, 1, 5000, "ServiceUnavailable.", TR,
     "codeDesc ServiceUnavailable.*", NULL},
    {"ActionLocked with 5000", CLW_TRANSPORT_OK, 200, 1, 1, 5000, "ActionLocked", TR,
     "codeDesc ActionLocked", NULL},
    {"ActionLocked with 4000", CLW_TRANSPORT_OK, 200, 1, 1, 4000, "ActionLocked", TR,
     "codeDesc ActionLocked", NULL},
    {"ServiceUnavailableX is no match", CLW_TRANSPORT_OK, 200, 1, 1, 5000, "ServiceUnavailableX", P,
     "code 5000", NULL},
    {"lower-case is no match", CLW_TRANSPORT_OK, 200, 1, 1, 5000, "serviceunavailable", P,
     "code 5000", NULL},
    {"ActionLocked. prefix is no match", CLW_TRANSPORT_OK, 200, 1, 1, 4000, "ActionLocked.Vpc", P,
     "code 4000", NULL},
    {"business codeDesc follows the code", CLW_TRANSPORT_OK, 200, 1, 1, 5000, "InvalidVpc.NotFound",
     P, "code 5000", NULL},
    {"InstanceAlreadyLinked", CLW_TRANSPORT_OK, 200, 1, 1, 4000, "InstanceAlreadyLinked", P,
     "code 4000", NULL},
    {"Success codeDesc with 0", CLW_TRANSPORT_OK, 200, 1, 1, 0, "Success", S, "code 0", NULL},
    {"empty codeDesc", CLW_TRANSPORT_OK, 200, 1, 1, 6000, "", TR, "code 6000", NULL},

    /* every numeric code of the table */
    CODE(0, S, "code 0"),
    CODE(4000, P, "code 4000"),
    CODE(4100, WF, "code 4100"),
    CODE(4101, WF, "code 4101"),
    CODE(4102, P, "code 4102-4110"),
    CODE(4103, P, "code 4102-4110"),
    CODE(4104, WF, "code 4104"),
    CODE(4105, WF, "code 4105"),
    CODE(4106, P, "code 4102-4110"),
    CODE(4107, P, "code 4102-4110"),
    CODE(4108, P, "code 4102-4110"),
    CODE(4109, P, "code 4102-4110"),
    CODE(4110, P, "code 4102-4110"),
    CODE(4200, RS, "code 4200"),
    CODE(4300, P, "code 4300"),
    CODE(4400, TR, "code 4400"),
    CODE(4500, RS, "code 4500"),
    CODE(4600, WF, "code 4600"),
    CODE(5000, P, "code 5000"),
    CODE(5100, TR, "code 5100"),
    CODE(5200, P, "code 5200"),
    CODE(5300, P, "code 5300"),
    CODE(5400, P, "code 5400"),
    CODE(5500, P, "code 5500"),
    CODE(6000, TR, "code 6000"),
    CODE(6100, WF, "code 6100"),
    CODE(6200, TR, "code 6200"),
    /* codes outside the table are permanent */
    CODE(1, P, "code other"),
    CODE(-1, P, "code other"),
    CODE(3999, P, "code other"),
    CODE(4001, P, "code other"),
    CODE(4099, P, "code other"),
    CODE(4111, P, "code other"),
    CODE(4201, P, "code other"),
    CODE(6300, P, "code other"),
    CODE(99999, P, "code other"),
    CODE(LONG_MAX, P, "code other"),
    CODE(LONG_MIN, P, "code other"),
};

static void test_classify_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct classify_case *c = &cases[i];
        struct clw_answer ans;
        const char *why = NULL;
        const char *desc;
        enum clw_class got;

        memset(&ans, 0, sizeof(ans));
        ans.transport = c->transport;
        ans.http_status = c->http_status;
        ans.body_json = c->body_json;
        ans.has_code = c->has_code;
        ans.code = c->code;
        ans.code_desc = (char *)c->code_desc; /* borrowed; never freed here */
        ans.retry_after_ms = -1;

        got = clw_classify(&ans, &why);
        if (got != c->want)
            fail_msg("case %s: class %s want %s", c->name, clw_class_name(got),
                     clw_class_name(c->want));
        if (why == NULL || strcmp(why, c->want_why) != 0)
            fail_msg("case %s: why \"%s\" want \"%s\"", c->name, why ? why : "(null)", c->want_why);
        /* why may be NULL */
        if (clw_classify(&ans, NULL) != c->want)
            fail_msg("case %s: class differs without why", c->name);

        desc = clw_classify_transport_desc(&ans);
        if (c->want_desc == NULL ? desc != NULL : (desc == NULL || strcmp(desc, c->want_desc) != 0))
            fail_msg("case %s: transport desc %s want %s", c->name, desc ? desc : "(null)",
                     c->want_desc ? c->want_desc : "(null)");
    }
}

/* The answer's other fields (message, task id, Retry-After) never change the class. */
static void test_classify_ignores_other_fields(void **state)
{
    struct clw_answer ans;
    const char *why = NULL;

    (void)state;
    memset(&ans, 0, sizeof(ans));
    ans.transport = CLW_TRANSPORT_OK;
    ans.http_status = 200;
    ans.body_json = 1;
    ans.has_code = 1;
    ans.code = 0;
    ans.message = (char *)"(ServiceUnavailable) text";
    ans.has_task_id = 1;
    ans.task_id = 135254;
    ans.retry_after_ms = 5000;
    assert_int_equal(clw_classify(&ans, &why), CLW_CLASS_SUCCESS);
    assert_string_equal(why, "code 0");
    assert_null(clw_classify_transport_desc(&ans));
}

struct name_case {
    enum clw_class cls;
    const char *want;
};

static const struct name_case names[] = {
    {CLW_CLASS_SUCCESS, "success"},           {CLW_CLASS_PERMANENT, "permanent"},
    {CLW_CLASS_TRANSIENT, "transient"},       {CLW_CLASS_RESIGN, "resign"},
    {CLW_CLASS_WORKER_FAULT, "worker_fault"}, {(enum clw_class)99, "unknown"},
};

static void test_class_names(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        assert_string_equal(clw_class_name(names[i].cls), names[i].want);
}

static void test_classify_null(void **state)
{
    const char *why = NULL;

    (void)state;
    assert_int_equal(clw_classify(NULL, &why), CLW_CLASS_TRANSIENT);
    assert_non_null(why);
    assert_string_equal(clw_classify_transport_desc(NULL), "Transport.Connect");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_table),
        cmocka_unit_test(test_classify_ignores_other_fields),
        cmocka_unit_test(test_class_names),
        cmocka_unit_test(test_classify_null),
    };

    return cmocka_run_group_tests_name("classify", tests, NULL, NULL);
}
