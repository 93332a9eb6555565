/* Unit tests for classify: every transport kind, HTTP status, codeDesc and code of the v2 and v3
 * tables, and the already-linked, not-found and throttled predicates. */
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

/* Classifies ans and checks class, reason and transport codeDesc. */
static void run_classify(const char *name, const struct clw_answer *ans, enum clw_class want,
                         const char *want_why, const char *want_desc)
{
    const char *why = NULL;
    const char *desc;
    enum clw_class got = clw_classify(ans, &why);

    if (got != want)
        fail_msg("case %s: class %s want %s", name, clw_class_name(got), clw_class_name(want));
    if (why == NULL || strcmp(why, want_why) != 0)
        fail_msg("case %s: why \"%s\" want \"%s\"", name, why ? why : "(null)", want_why);
    if (clw_classify(ans, NULL) != want)
        fail_msg("case %s: class differs without why", name);
    desc = clw_classify_transport_desc(ans);
    if (want_desc == NULL ? desc != NULL : (desc == NULL || strcmp(desc, want_desc) != 0))
        fail_msg("case %s: transport desc %s want %s", name, desc ? desc : "(null)",
                 want_desc ? want_desc : "(null)");
}

/* The v2 table, for answers built by hand (api_version 0) and parsed as v2 (2). */
static void test_classify_table(void **state)
{
    static const int versions[] = {0, 2};
    size_t i, v;

    (void)state;
    for (v = 0; v < sizeof(versions) / sizeof(versions[0]); v++) {
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            const struct classify_case *c = &cases[i];
            struct clw_answer ans;

            memset(&ans, 0, sizeof(ans));
            ans.api_version = versions[v];
            ans.transport = c->transport;
            ans.http_status = c->http_status;
            ans.body_json = c->body_json;
            ans.has_code = c->has_code;
            ans.code = c->code;
            ans.code_desc = (char *)c->code_desc; /* borrowed; never freed here */
            ans.retry_after_ms = -1;
            run_classify(c->name, &ans, c->want, c->want_why, c->want_desc);
        }
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

/* ---- API 3.0 answers ---------------------------------------------------------------------- */

struct v3_case {
    const char *name;
    enum clw_transport transport;
    long http_status;
    int body_json; /* a Response object was found */
    int has_code;  /* success */
    long code;
    const char *code_desc; /* Response.Error.Code */
    enum clw_class want;
    const char *want_why;
    const char *want_desc;
};

/* A 200 answer with Response.Error.Code = c. */
#define V3ERR(c, cls, why)                                                                         \
    {                                                                                              \
        "v3 " c, CLW_TRANSPORT_OK, 200, 1, 0, 0, (c), (cls), (why), NULL                           \
    }

static const struct v3_case v3_cases[] = {
    {"v3 success", CLW_TRANSPORT_OK, 200, 1, 1, 0, NULL, S, "v3 success", NULL},

    /* the v3 string-code rules */
    V3ERR("AuthFailure.SignatureExpire", RS, "v3 AuthFailure.SignatureExpire"),
    V3ERR("AuthFailure", WF, "v3 AuthFailure"),
    V3ERR("AuthFailure.SignatureFailure", WF, "v3 AuthFailure.*"),
    V3ERR("AuthFailure.SecretIdNotFound", WF, "v3 AuthFailure.*"),
    V3ERR("AuthFailure.InvalidSecretId", WF, "v3 AuthFailure.*"),
    V3ERR("AuthFailure.TokenFailure", WF, "v3 AuthFailure.*"),
    V3ERR("AuthFailure.MFAFailure", WF, "v3 AuthFailure.*"),
    V3ERR("AuthFailure.UnauthorizedOperation", WF, "v3 AuthFailure.*"),
    V3ERR("AuthFailure.InvalidAuthorization", WF, "v3 AuthFailure.*"),
    V3ERR("AuthFailure.", WF, "v3 AuthFailure.*"),
    V3ERR("AuthFailure.SignatureExpired", WF, "v3 AuthFailure.*"),
    V3ERR("AuthFailureX", P, "v3 other code"),
    V3ERR("InvalidAction", WF, "v3 InvalidAction"),
    V3ERR("NoSuchVersion", WF, "v3 NoSuchVersion"),
    V3ERR("UnsupportedProtocol", WF, "v3 UnsupportedProtocol"),
    V3ERR("UnauthorizedOperation", WF, "v3 UnauthorizedOperation*"),
    V3ERR("UnauthorizedOperation.CamNoAuth", WF, "v3 UnauthorizedOperation*"),
    V3ERR("RequestLimitExceeded", TR, "v3 RequestLimitExceeded*"),
    V3ERR("RequestLimitExceeded.UinLimitExceeded", TR, "v3 RequestLimitExceeded*"),
    V3ERR("RequestLimitExceeded.GlobalRegionUinLimitExceeded", TR, "v3 RequestLimitExceeded*"),
    V3ERR("RequestLimitExceeded.IPLimitExceeded", TR, "v3 RequestLimitExceeded*"),
    V3ERR("InternalError", TR, "v3 InternalError*"),
    V3ERR("InternalError.DbError", TR, "v3 InternalError*"),
    V3ERR("ServiceUnavailable", TR, "v3 ServiceUnavailable"),
    V3ERR("ResourceInUse", TR, "v3 ResourceInUse"),
    V3ERR("UnsupportedOperation.ClassicInstanceIdAlreadyExists", P,
          "v3 UnsupportedOperation.ClassicInstanceIdAlreadyExists"),
    V3ERR("ResourceNotFound", P, "v3 ResourceNotFound"),
    V3ERR("LimitExceeded", P, "v3 LimitExceeded"),

    /* everything else is permanent; exact rules do not match longer codes */
    V3ERR("UnsupportedOperation.CIDRUnSupportedClassicLink", P, "v3 other code"),
    V3ERR("InvalidParameterValue.Malformed", P, "v3 other code"),
    V3ERR("InvalidParameter", P, "v3 other code"),
    V3ERR("MissingParameter", P, "v3 other code"),
    V3ERR("FailedOperation", P, "v3 other code"),
    V3ERR("ResourceNotFound.Vpc", P, "v3 other code"),
    V3ERR("ServiceUnavailable.Maintenance", P, "v3 other code"),
    V3ERR("ResourceInUse.Vpc", P, "v3 other code"),
    V3ERR("InvalidAction.X", P, "v3 other code"),
    V3ERR("LimitExceeded.Quota", P, "v3 other code"),
    V3ERR("internalerror", P, "v3 other code"),
    V3ERR("requestlimitexceeded", P, "v3 other code"),
    V3ERR("ActionLocked", P, "v3 other code"),
    V3ERR("InstanceAlreadyLinked", P, "v3 other code"),
    V3ERR("4400", P, "v3 other code"),
    V3ERR(" InternalError", P, "v3 other code"),

    /* the transport, HTTP and body stages are the v2 ones */
    {"v3 timeout", CLW_TRANSPORT_TIMEOUT, 0, 0, 0, 0, NULL, TR, "timeout", "Transport.Timeout"},
    {"v3 tls", CLW_TRANSPORT_TLS, 0, 0, 0, 0, NULL, WF, "tls", "Transport.TLS"},
    {"v3 503 with an error body", CLW_TRANSPORT_OK, 503, 1, 0, 0, "AuthFailure", TR, "http 503",
     "Transport.HttpStatus"},
    {"v3 403 with a success body", CLW_TRANSPORT_OK, 403, 1, 1, 0, NULL, WF, "http 403",
     "Transport.HttpStatus"},
    {"v3 429", CLW_TRANSPORT_OK, 429, 1, 0, 0, "RequestLimitExceeded", TR, "http 429",
     "Transport.HttpStatus"},
    {"v3 no Response object", CLW_TRANSPORT_OK, 200, 0, 0, 0, NULL, TR, "body not json",
     "Transport.HttpStatus"},
    {"v3 no Response with a stray code", CLW_TRANSPORT_OK, 200, 0, 0, 0, "InternalError", TR,
     "body not json", "Transport.HttpStatus"},
    {"v3 Error without Code", CLW_TRANSPORT_OK, 200, 1, 0, 0, NULL, TR, "body without code",
     "Transport.HttpStatus"},
    {"v3 Error with an empty Code", CLW_TRANSPORT_OK, 200, 1, 0, 0, "", TR, "body without code",
     "Transport.HttpStatus"},

    /* answers the parser never builds: an error code beats a success flag */
    {"v3 success flag with an error code", CLW_TRANSPORT_OK, 200, 1, 1, 0, "InternalError", TR,
     "v3 InternalError*", NULL},
    {"v3 success flag with a non-zero code", CLW_TRANSPORT_OK, 200, 1, 1, 4400, NULL, P,
     "v3 code other", NULL},
};

static void test_classify_v3_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(v3_cases) / sizeof(v3_cases[0]); i++) {
        const struct v3_case *c = &v3_cases[i];
        struct clw_answer ans;

        memset(&ans, 0, sizeof(ans));
        ans.api_version = 3;
        ans.transport = c->transport;
        ans.http_status = c->http_status;
        ans.body_json = c->body_json;
        ans.has_code = c->has_code;
        ans.code = c->code;
        ans.code_desc = (char *)c->code_desc; /* borrowed */
        ans.retry_after_ms = -1;
        run_classify(c->name, &ans, c->want, c->want_why, c->want_desc);
    }
}

/* The same v3 error code in a v2 answer goes through the v2 table, and the reverse. */
static void test_classify_version_dispatch(void **state)
{
    struct clw_answer ans;
    const char *why = NULL;

    (void)state;
    memset(&ans, 0, sizeof(ans));
    ans.transport = CLW_TRANSPORT_OK;
    ans.http_status = 200;
    ans.body_json = 1;
    ans.has_code = 1;
    ans.code = 4000;
    ans.code_desc = (char *)"RequestLimitExceeded";
    ans.api_version = 2;
    assert_int_equal(clw_classify(&ans, &why), CLW_CLASS_PERMANENT);
    assert_string_equal(why, "code 4000");
    ans.api_version = 3;
    assert_int_equal(clw_classify(&ans, &why), CLW_CLASS_TRANSIENT);
    assert_string_equal(why, "v3 RequestLimitExceeded*");
    /* v2's ActionLocked rule is not a v3 rule */
    ans.code_desc = (char *)"ActionLocked";
    assert_int_equal(clw_classify(&ans, &why), CLW_CLASS_PERMANENT);
    ans.api_version = 2;
    assert_int_equal(clw_classify(&ans, &why), CLW_CLASS_TRANSIENT);
    /* any version but 3 is v2 */
    ans.api_version = 7;
    assert_int_equal(clw_classify(&ans, &why), CLW_CLASS_TRANSIENT);
    assert_string_equal(why, "codeDesc ActionLocked");
    /* a v2 body without code but a codeDesc is not decodable; in v3 the code alone is */
    ans.api_version = 2;
    ans.has_code = 0;
    ans.code_desc = (char *)"ResourceNotFound";
    assert_int_equal(clw_classify(&ans, &why), CLW_CLASS_TRANSIENT);
    assert_string_equal(why, "body without code");
    ans.api_version = 3;
    assert_int_equal(clw_classify(&ans, &why), CLW_CLASS_PERMANENT);
    assert_string_equal(why, "v3 ResourceNotFound");
}

/* ---- reconcile and throttling predicates --------------------------------------------------- */

struct signal_case {
    const char *name;
    int api_version;
    enum clw_transport transport;
    long http_status;
    int body_json;
    int has_code;
    long code;
    const char *code_desc;
    int already_linked;
    int not_found;
    int throttled;
};

#define OK_ CLW_TRANSPORT_OK

static const struct signal_case signal_cases[] = {
    /* already linked */
    {"v2 InstanceAlreadyLinked", 2, OK_, 200, 1, 1, 4000, "InstanceAlreadyLinked", 1, 0, 0},
    {"v2 InstanceAlreadyLinked with code 5000", 2, OK_, 200, 1, 1, 5000, "InstanceAlreadyLinked", 1,
     0, 0},
    {"unparsed (version 0) counts as v2", 0, OK_, 200, 1, 1, 4000, "InstanceAlreadyLinked", 1, 0,
     0},
    {"v2 InstanceAlreadyLinked without a code", 2, OK_, 200, 1, 0, 0, "InstanceAlreadyLinked", 0, 0,
     0},
    {"v2 InstanceAlreadyLinked on a 503", 2, OK_, 503, 1, 1, 4000, "InstanceAlreadyLinked", 0, 0,
     0},
    {"v2 InstanceAlreadyLinked after a timeout", 2, CLW_TRANSPORT_TIMEOUT, 200, 1, 1, 4000,
     "InstanceAlreadyLinked", 0, 0, 0},
    {"v2 InstanceAlreadyLinked not json", 2, OK_, 200, 0, 1, 4000, "InstanceAlreadyLinked", 0, 0,
     0},
    {"v2 InstanceAlreadyLinkedX", 2, OK_, 200, 1, 1, 4000, "InstanceAlreadyLinkedX", 0, 0, 0},
    {"v2 lower-case", 2, OK_, 200, 1, 1, 4000, "instancealreadylinked", 0, 0, 0},
    {"v3 ClassicInstanceIdAlreadyExists", 3, OK_, 200, 1, 0, 0,
     "UnsupportedOperation.ClassicInstanceIdAlreadyExists", 1, 0, 0},
    {"v3 code in a v2 answer", 2, OK_, 200, 1, 1, 4000,
     "UnsupportedOperation.ClassicInstanceIdAlreadyExists", 0, 0, 0},
    {"v2 code in a v3 answer", 3, OK_, 200, 1, 0, 0, "InstanceAlreadyLinked", 0, 0, 0},
    {"v3 ClassicInstanceIdAlreadyExists on a 500", 3, OK_, 500, 1, 0, 0,
     "UnsupportedOperation.ClassicInstanceIdAlreadyExists", 0, 0, 0},
    {"v3 other UnsupportedOperation", 3, OK_, 200, 1, 0, 0,
     "UnsupportedOperation.CIDRUnSupportedClassicLink", 0, 0, 0},

    /* not found */
    {"v2 InvalidInstance.NotFound", 2, OK_, 200, 1, 1, 5000, "InvalidInstance.NotFound", 0, 1, 0},
    {"v2 InvalidVpc.NotFound is not about the instance", 2, OK_, 200, 1, 1, 5000,
     "InvalidVpc.NotFound", 0, 0, 0},
    {"v2 InvalidInstance.NotFound without a code", 2, OK_, 200, 1, 0, 0, "InvalidInstance.NotFound",
     0, 0, 0},
    {"v3 ResourceNotFound", 3, OK_, 200, 1, 0, 0, "ResourceNotFound", 0, 1, 0},
    {"v3 ResourceNotFound.Vpc is not exact", 3, OK_, 200, 1, 0, 0, "ResourceNotFound.Vpc", 0, 0, 0},
    {"v3 InvalidParameterValue naming an instance", 3, OK_, 200, 1, 0, 0,
     "InvalidParameterValue.InstanceIdMalformed", 0, 0, 0},
    {"v3 InvalidInstance.NotFound is a v2 code", 3, OK_, 200, 1, 0, 0, "InvalidInstance.NotFound",
     0, 0, 0},
    {"v2 ResourceNotFound is a v3 code", 2, OK_, 200, 1, 1, 5000, "ResourceNotFound", 0, 0, 0},

    /* throttled */
    {"v2 code 4400", 2, OK_, 200, 1, 1, 4400, NULL, 0, 0, 1},
    {"v2 code 4400 with a codeDesc", 2, OK_, 200, 1, 1, 4400, "RequestLimitExceeded", 0, 0, 1},
    {"v2 code 4400 not json", 2, OK_, 200, 0, 1, 4400, NULL, 0, 0, 0},
    {"v2 code 4401", 2, OK_, 200, 1, 1, 4401, NULL, 0, 0, 0},
    {"v2 code 5100", 2, OK_, 200, 1, 1, 5100, NULL, 0, 0, 0},
    {"v2 http 429", 2, OK_, 429, 0, 0, 0, NULL, 0, 0, 1},
    {"v3 http 429", 3, OK_, 429, 0, 0, 0, NULL, 0, 0, 1},
    {"unparsed http 429", 0, OK_, 429, 0, 0, 0, NULL, 0, 0, 1},
    {"http 429 with a success body", 2, OK_, 429, 1, 1, 0, NULL, 0, 0, 1},
    {"http 503", 2, OK_, 503, 0, 0, 0, NULL, 0, 0, 0},
    {"transport error after a 429 status", 2, CLW_TRANSPORT_ERROR, 429, 0, 0, 0, NULL, 0, 0, 0},
    {"timeout", 2, CLW_TRANSPORT_TIMEOUT, 0, 0, 0, 0, NULL, 0, 0, 0},
    {"v3 RequestLimitExceeded", 3, OK_, 200, 1, 0, 0, "RequestLimitExceeded", 0, 0, 1},
    {"v3 RequestLimitExceeded.UinLimitExceeded", 3, OK_, 200, 1, 0, 0,
     "RequestLimitExceeded.UinLimitExceeded", 0, 0, 1},
    {"v3 RequestLimitExceeded.IPLimitExceeded", 3, OK_, 200, 1, 0, 0,
     "RequestLimitExceeded.IPLimitExceeded", 0, 0, 1},
    {"v3 LimitExceeded is a quota of resources", 3, OK_, 200, 1, 0, 0, "LimitExceeded", 0, 0, 0},
    {"v3 RequestLimitExceeded on a 502", 3, OK_, 502, 1, 0, 0, "RequestLimitExceeded", 0, 0, 0},
    {"v3 code 4400 is a v2 rule", 3, OK_, 200, 1, 1, 4400, NULL, 0, 0, 0},
    {"v2 codeDesc RequestLimitExceeded with code 4000", 2, OK_, 200, 1, 1, 4000,
     "RequestLimitExceeded", 0, 0, 0},

    /* neither */
    {"v2 success", 2, OK_, 200, 1, 1, 0, NULL, 0, 0, 0},
    {"v3 success", 3, OK_, 200, 1, 1, 0, NULL, 0, 0, 0},
    {"v3 InternalError", 3, OK_, 200, 1, 0, 0, "InternalError", 0, 0, 0},
};

static void test_signals_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(signal_cases) / sizeof(signal_cases[0]); i++) {
        const struct signal_case *c = &signal_cases[i];
        struct clw_answer ans;
        int al, nf, th;

        memset(&ans, 0, sizeof(ans));
        ans.api_version = c->api_version;
        ans.transport = c->transport;
        ans.http_status = c->http_status;
        ans.body_json = c->body_json;
        ans.has_code = c->has_code;
        ans.code = c->code;
        ans.code_desc = (char *)c->code_desc;
        ans.retry_after_ms = -1;
        al = clw_classify_already_linked(&ans);
        nf = clw_classify_not_found(&ans);
        th = clw_classify_throttled(&ans);
        if (al != c->already_linked || nf != c->not_found || th != c->throttled)
            fail_msg("case %s: already_linked %d not_found %d throttled %d, want %d %d %d", c->name,
                     al, nf, th, c->already_linked, c->not_found, c->throttled);
        /* A throttling signal is always retried, never an outcome. */
        if (th && clw_classify(&ans, NULL) != CLW_CLASS_TRANSIENT)
            fail_msg("case %s: throttled but classified %s", c->name,
                     clw_class_name(clw_classify(&ans, NULL)));
    }
    assert_int_equal(clw_classify_already_linked(NULL), 0);
    assert_int_equal(clw_classify_not_found(NULL), 0);
    assert_int_equal(clw_classify_throttled(NULL), 0);
}

/* A resource busy with another operation: transient, and about that resource. */
struct busy_case {
    const char *name;
    int api_version;
    long http_status;
    int has_code;
    long code;
    const char *code_desc;
    int want;
};

static const struct busy_case busy_cases[] = {
    {"v2 ActionLocked", 2, 200, 1, 5100, "ActionLocked", 1},
    {"v2 ActionLocked without a code", 2, 200, 0, 0, "ActionLocked", 0},
    {"v2 ActionLocked on a 503", 2, 503, 1, 5100, "ActionLocked", 0},
    {"v2 plain 5100", 2, 200, 1, 5100, NULL, 0},
    {"v2 ServiceUnavailable is the service", 2, 200, 1, 6000, "ServiceUnavailable", 0},
    {"v3 ResourceInUse", 3, 200, 0, 0, "ResourceInUse", 1},
    {"v3 ResourceInUse.X is another code (permanent)", 3, 200, 0, 0, "ResourceInUse.Vpc", 0},
    {"v3 ActionLocked is a v2 code", 3, 200, 0, 0, "ActionLocked", 0},
    {"v3 InternalError", 3, 200, 0, 0, "InternalError", 0},
};

static void test_resource_busy(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(busy_cases) / sizeof(busy_cases[0]); i++) {
        const struct busy_case *c = &busy_cases[i];
        struct clw_answer ans;
        memset(&ans, 0, sizeof(ans));
        ans.api_version = c->api_version;
        ans.transport = CLW_TRANSPORT_OK;
        ans.http_status = c->http_status;
        ans.body_json = 1;
        ans.has_code = c->has_code;
        ans.code = c->code;
        ans.code_desc = (char *)c->code_desc;
        ans.retry_after_ms = -1;
        int got = clw_classify_resource_busy(&ans);
        if (got != c->want)
            fail_msg("case %s: busy %d, want %d", c->name, got, c->want);
        /* A busy resource is always retried when alone, never an outcome. */
        if (got && clw_classify(&ans, NULL) != CLW_CLASS_TRANSIENT)
            fail_msg("case %s: busy but %s", c->name, clw_class_name(clw_classify(&ans, NULL)));
    }
    assert_int_equal(clw_classify_resource_busy(NULL), 0);
}

/* Every v3 table case: a throttling signal is transient, and an already-linked or not-found
 * answer is a permanent class (reconcile decides, never the retry loop). */
static void test_signals_agree_with_classes(void **state)
{
    size_t i;
    int throttled = 0;

    (void)state;
    for (i = 0; i < sizeof(v3_cases) / sizeof(v3_cases[0]); i++) {
        const struct v3_case *c = &v3_cases[i];
        struct clw_answer ans;
        enum clw_class cls;

        memset(&ans, 0, sizeof(ans));
        ans.api_version = 3;
        ans.transport = c->transport;
        ans.http_status = c->http_status;
        ans.body_json = c->body_json;
        ans.has_code = c->has_code;
        ans.code = c->code;
        ans.code_desc = (char *)c->code_desc;
        cls = clw_classify(&ans, NULL);
        if (clw_classify_throttled(&ans)) {
            throttled++;
            if (cls != CLW_CLASS_TRANSIENT)
                fail_msg("case %s: throttled but %s", c->name, clw_class_name(cls));
        }
        if ((clw_classify_already_linked(&ans) || clw_classify_not_found(&ans)) &&
            cls != CLW_CLASS_PERMANENT)
            fail_msg("case %s: reconcile signal but %s", c->name, clw_class_name(cls));
    }
    assert_true(throttled >= 5);
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
        cmocka_unit_test(test_classify_v3_table),
        cmocka_unit_test(test_classify_version_dispatch),
        cmocka_unit_test(test_signals_table),
        cmocka_unit_test(test_resource_busy),
        cmocka_unit_test(test_signals_agree_with_classes),
    };

    return cmocka_run_group_tests_name("classify", tests, NULL, NULL);
}
