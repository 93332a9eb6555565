/* Classification of an API answer: the tables of transport, HTTP, v2 and v3 code rules. */
#include "clw/classify.h"

#include <limits.h>
#include <stddef.h>
#include <string.h>

/* What a rule looks at. Kinds are checked in the stage an answer reaches, so at most one
 * stage applies to any answer:
 *   TRANSPORT  the transport failed (transport != OK); lo..hi is the transport kind
 *   HTTP       a response arrived with a status other than 200; lo..hi is the status range
 *   BODY       status 200 but the body is not a JSON object (v3: no Response object) (lo 0),
 *              or carries no code (lo 1)
 *   DESC       status 200, decodable answer, codeDesc (v3: Error.Code) equal to text
 *   DESC_PREFIX  the same, codeDesc starting with text
 *   CODE       status 200, decodable answer with a numeric code in lo..hi (v3: 0 on success)
 * An answer is decodable when the body carried a code: v2 an integer code; v3 either success
 * (has_code) or a non-empty Error.Code. Within a table the first matching row wins, so DESC
 * rows come before CODE rows (string codes override the numeric code) and exact codes come
 * before ranges and the catch-all. */
enum classify_kind {
    CLASSIFY_TRANSPORT,
    CLASSIFY_HTTP,
    CLASSIFY_BODY,
    CLASSIFY_DESC,
    CLASSIFY_DESC_PREFIX,
    CLASSIFY_CODE,
};

struct classify_rule {
    enum classify_kind kind;
    long lo;
    long hi;
    const char *text;
    enum clw_class cls;
    const char *why;
    /* The outcome's codeDesc when this row matched: the answer carried no API code. NULL for
     * DESC and CODE rows. CLASSIFY_HTTP_STATUS becomes "Transport.Connect" when no HTTP
     * status arrived at all. */
    const char *transport_desc;
};

#define CLASSIFY_TIMEOUT     "Transport.Timeout"
#define CLASSIFY_CONNECT     "Transport.Connect"
#define CLASSIFY_TLS         "Transport.TLS"
#define CLASSIFY_HTTP_STATUS "Transport.HttpStatus"

/* v3 codes that are both a class row and a signal (below), written once. */
#define V3_THROTTLE_PREFIX "RequestLimitExceeded"
#define V3_ALREADY_LINKED  "UnsupportedOperation.ClassicInstanceIdAlreadyExists"
#define V3_NOT_FOUND       "ResourceNotFound"

#define T(kind_, why_, cls_, desc_)                                                                \
    {                                                                                              \
        CLASSIFY_TRANSPORT, (long)(kind_), (long)(kind_), NULL, (cls_), (why_), (desc_)            \
    }
#define H(lo_, hi_, why_, cls_)                                                                    \
    {                                                                                              \
        CLASSIFY_HTTP, (lo_), (hi_), NULL, (cls_), (why_), CLASSIFY_HTTP_STATUS                    \
    }
#define C(code_, cls_)                                                                             \
    {                                                                                              \
        CLASSIFY_CODE, (code_), (code_), NULL, (cls_), "code " #code_, NULL                        \
    }
#define D(text_, cls_)                                                                             \
    {                                                                                              \
        CLASSIFY_DESC, 0, 0, (text_), (cls_), "v3 " text_, NULL                                    \
    }
#define DP(text_, cls_)                                                                            \
    {                                                                                              \
        CLASSIFY_DESC_PREFIX, 0, 0, (text_), (cls_), "v3 " text_ "*", NULL                         \
    }

/* The stages every answer goes through first, whatever its API version: an HTTP status other
 * than 200 or a body without an API code is a transport-level failure (API 3.0 also answers
 * its errors with 200). */
static const struct classify_rule classify_front[] = {
    /* Transport failures before any complete response. Network trouble is transient; a TLS
     * failure (certificate verification above all) means our CA setup or the endpoint is
     * wrong and no retry of this request will fix it: worker fault. A body over the size limit
     * comes from a broken or hostile endpoint; it is retried like any transport failure, bounded
     * by retry.max_elapsed_ms. ERROR and TOO_LARGE may come after a status line, hence
     * "Transport.HttpStatus" (or "Transport.Connect" when no status arrived). */
    T(CLW_TRANSPORT_TIMEOUT, "timeout", CLW_CLASS_TRANSIENT, CLASSIFY_TIMEOUT),
    T(CLW_TRANSPORT_CONNECT, "connect", CLW_CLASS_TRANSIENT, CLASSIFY_CONNECT),
    T(CLW_TRANSPORT_TLS, "tls", CLW_CLASS_WORKER_FAULT, CLASSIFY_TLS),
    T(CLW_TRANSPORT_ERROR, "transport error", CLW_CLASS_TRANSIENT, CLASSIFY_HTTP_STATUS),
    T(CLW_TRANSPORT_TOO_LARGE, "response too large", CLW_CLASS_TRANSIENT, CLASSIFY_HTTP_STATUS),
    {CLASSIFY_TRANSPORT, LONG_MIN, LONG_MAX, NULL, CLW_CLASS_TRANSIENT, "transport unknown",
     CLASSIFY_HTTP_STATUS},

    /* HTTP status other than 200 (the API answers its own errors with 200). Server-side
     * trouble, request timeout and throttling are transient. Any other status (400, 401, 403,
     * 404, 405, a redirect, ...) says the endpoint, proxy or credentials setup is wrong, not
     * this request: worker fault, so a misconfigured endpoint never turns a backlog into
     * failed outcomes. A status outside 100..599 is a malformed response: transient. */
    H(408, 408, "http 408", CLW_CLASS_TRANSIENT),
    H(429, 429, "http 429", CLW_CLASS_TRANSIENT),
    H(500, 500, "http 500", CLW_CLASS_TRANSIENT),
    H(502, 502, "http 502", CLW_CLASS_TRANSIENT),
    H(503, 503, "http 503", CLW_CLASS_TRANSIENT),
    H(504, 504, "http 504", CLW_CLASS_TRANSIENT),
    H(500, 599, "http 5xx", CLW_CLASS_TRANSIENT),
    H(400, 400, "http 400", CLW_CLASS_WORKER_FAULT),
    H(401, 401, "http 401", CLW_CLASS_WORKER_FAULT),
    H(403, 403, "http 403", CLW_CLASS_WORKER_FAULT),
    H(404, 404, "http 404", CLW_CLASS_WORKER_FAULT),
    H(405, 405, "http 405", CLW_CLASS_WORKER_FAULT),
    H(100, 499, "http status", CLW_CLASS_WORKER_FAULT),
    H(LONG_MIN, LONG_MAX, "http invalid status", CLW_CLASS_TRANSIENT),

    /* 200 without a decodable code: a transport-level failure per the API spec. */
    {CLASSIFY_BODY, 0, 0, NULL, CLW_CLASS_TRANSIENT, "body not json", CLASSIFY_HTTP_STATUS},
    {CLASSIFY_BODY, 1, 1, NULL, CLW_CLASS_TRANSIENT, "body without code", CLASSIFY_HTTP_STATUS},
};

/* v2 answers that carried a code. */
static const struct classify_rule classify_v2[] = {
    /* VPC module string codes that mean "try again later", whatever the numeric code. */
    {CLASSIFY_DESC, 0, 0, "ServiceUnavailable", CLW_CLASS_TRANSIENT, "codeDesc ServiceUnavailable",
     NULL},
    {CLASSIFY_DESC_PREFIX, 0, 0, "ServiceUnavailable.", CLW_CLASS_TRANSIENT,
     "codeDesc ServiceUnavailable.*", NULL},
    {CLASSIFY_DESC, 0, 0, "ActionLocked", CLW_CLASS_TRANSIENT, "codeDesc ActionLocked", NULL},

    /* Numeric codes (vpc-api.md section 4). Worker faults are the codes that come from our
     * setup (signature/credentials, unknown SecretId, bad token, plain HTTP, wrong domain). */
    C(0, CLW_CLASS_SUCCESS),
    C(4000, CLW_CLASS_PERMANENT),
    C(4100, CLW_CLASS_WORKER_FAULT),
    C(4101, CLW_CLASS_WORKER_FAULT),
    C(4104, CLW_CLASS_WORKER_FAULT),
    C(4105, CLW_CLASS_WORKER_FAULT),
    {CLASSIFY_CODE, 4102, 4110, NULL, CLW_CLASS_PERMANENT, "code 4102-4110", NULL},
    C(4200, CLW_CLASS_RESIGN),
    C(4300, CLW_CLASS_PERMANENT),
    C(4400, CLW_CLASS_TRANSIENT),
    C(4500, CLW_CLASS_RESIGN),
    C(4600, CLW_CLASS_WORKER_FAULT),
    C(5000, CLW_CLASS_PERMANENT),
    C(5100, CLW_CLASS_TRANSIENT),
    C(5200, CLW_CLASS_PERMANENT),
    C(5300, CLW_CLASS_PERMANENT),
    C(5400, CLW_CLASS_PERMANENT),
    C(5500, CLW_CLASS_PERMANENT),
    C(6000, CLW_CLASS_TRANSIENT),
    C(6100, CLW_CLASS_WORKER_FAULT),
    C(6200, CLW_CLASS_TRANSIENT),
    {CLASSIFY_CODE, LONG_MIN, LONG_MAX, NULL, CLW_CLASS_PERMANENT, "code other", NULL},
};

/* API 3.0 answers that carried a code: Response.Error.Code strings (vpc-api.md section 6 and
 * the common error codes of API 3.0), then success. An answer with both an Error.Code and a
 * success flag cannot come from the parser; the string rows come first so such an answer is
 * never a success. Exact rows come before the prefixes that would also match them. */
static const struct classify_rule classify_v3[] = {
    /* A stale X-TC-Timestamp: re-sign with a fresh one (the v2 4200). */
    D("AuthFailure.SignatureExpire", CLW_CLASS_RESIGN),
    /* Signature, SecretId, token, MFA or CAM trouble: our credentials or clock are wrong. */
    D("AuthFailure", CLW_CLASS_WORKER_FAULT),
    DP("AuthFailure.", CLW_CLASS_WORKER_FAULT),
    /* Wrong endpoint, action or version, or plain HTTP: our setup. */
    D("InvalidAction", CLW_CLASS_WORKER_FAULT),
    D("NoSuchVersion", CLW_CLASS_WORKER_FAULT),
    D("UnsupportedProtocol", CLW_CLASS_WORKER_FAULT),
    DP("UnauthorizedOperation", CLW_CLASS_WORKER_FAULT),
    /* Throttling, server trouble and a resource busy with another operation: try again. */
    DP(V3_THROTTLE_PREFIX, CLW_CLASS_TRANSIENT),
    DP("InternalError", CLW_CLASS_TRANSIENT),
    D("ServiceUnavailable", CLW_CLASS_TRANSIENT),
    D("ResourceInUse", CLW_CLASS_TRANSIENT),
    /* Business errors named for a clearer reason; the catch-all would say permanent too. */
    D(V3_ALREADY_LINKED, CLW_CLASS_PERMANENT),
    D(V3_NOT_FOUND, CLW_CLASS_PERMANENT),
    D("LimitExceeded", CLW_CLASS_PERMANENT),
    {CLASSIFY_DESC_PREFIX, 0, 0, "", CLW_CLASS_PERMANENT, "v3 other code", NULL},
    {CLASSIFY_CODE, 0, 0, NULL, CLW_CLASS_SUCCESS, "v3 success", NULL},
    {CLASSIFY_CODE, LONG_MIN, LONG_MAX, NULL, CLW_CLASS_PERMANENT, "v3 code other", NULL},
};

/* The answers the worker acts on beyond their class: reconcile ("already linked", "not
 * found") and the rate limiter (throttled). version 0 means any API version. Matching uses
 * the rule kinds above, so a signal only ever comes from a decodable 200 answer or (HTTP rows)
 * the status. */
enum classify_signal {
    CLASSIFY_ALREADY_LINKED,
    CLASSIFY_NOT_FOUND,
    CLASSIFY_THROTTLED,
    CLASSIFY_RESOURCE_BUSY,
};

struct classify_signal_rule {
    enum classify_signal signal;
    int version;
    struct classify_rule rule;
};

#define SIG_DESC(sig_, ver_, text_)                                                                \
    {                                                                                              \
        (sig_), (ver_),                                                                            \
        {                                                                                          \
            CLASSIFY_DESC, 0, 0, (text_), CLW_CLASS_PERMANENT, (text_), NULL                       \
        }                                                                                          \
    }

static const struct classify_signal_rule classify_signals[] = {
    SIG_DESC(CLASSIFY_ALREADY_LINKED, 2, "InstanceAlreadyLinked"),
    SIG_DESC(CLASSIFY_ALREADY_LINKED, 3, V3_ALREADY_LINKED),
    SIG_DESC(CLASSIFY_NOT_FOUND, 2, "InvalidInstance.NotFound"),
    SIG_DESC(CLASSIFY_NOT_FOUND, 3, V3_NOT_FOUND),
    {CLASSIFY_THROTTLED, 0, H(429, 429, "http 429", CLW_CLASS_TRANSIENT)},
    {CLASSIFY_THROTTLED, 2, C(4400, CLW_CLASS_TRANSIENT)},
    {CLASSIFY_THROTTLED,
     3,
     {CLASSIFY_DESC_PREFIX, 0, 0, V3_THROTTLE_PREFIX, CLW_CLASS_TRANSIENT, NULL, NULL}},
    SIG_DESC(CLASSIFY_RESOURCE_BUSY, 2, "ActionLocked"),
    SIG_DESC(CLASSIFY_RESOURCE_BUSY, 3, "ResourceInUse"),
};

#undef T
#undef H
#undef C
#undef D
#undef DP
#undef SIG_DESC

#define CLASSIFY_COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int classify_in(long v, const struct classify_rule *r)
{
    return v >= r->lo && v <= r->hi;
}

static int classify_is_v3(const struct clw_answer *ans)
{
    return ans->api_version == 3;
}

/* Whether the body carried an API code (see the comment on enum classify_kind). */
static int classify_decodable(const struct clw_answer *ans)
{
    if (!ans->body_json)
        return 0;
    if (classify_is_v3(ans))
        return ans->has_code || (ans->code_desc != NULL && ans->code_desc[0] != '\0');
    return ans->has_code;
}

/* Whether rule r applies to ans (see enum classify_kind for the stages). */
static int classify_matches(const struct classify_rule *r, const struct clw_answer *ans)
{
    int decodable;

    if (ans->transport != CLW_TRANSPORT_OK)
        return r->kind == CLASSIFY_TRANSPORT && classify_in((long)ans->transport, r);
    if (ans->http_status != 200)
        return r->kind == CLASSIFY_HTTP && classify_in(ans->http_status, r);
    decodable = classify_decodable(ans);
    switch (r->kind) {
    case CLASSIFY_TRANSPORT:
    case CLASSIFY_HTTP:
        return 0;
    case CLASSIFY_BODY:
        return r->lo == 0 ? !ans->body_json : (ans->body_json && !decodable);
    case CLASSIFY_DESC:
        return decodable && ans->code_desc != NULL && strcmp(ans->code_desc, r->text) == 0;
    case CLASSIFY_DESC_PREFIX:
        return decodable && ans->code_desc != NULL &&
               strncmp(ans->code_desc, r->text, strlen(r->text)) == 0;
    case CLASSIFY_CODE:
        return decodable && ans->has_code && classify_in(ans->code, r);
    }
    return 0;
}

static const struct classify_rule *classify_scan(const struct classify_rule *rules, size_t n,
                                                 const struct clw_answer *ans)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (classify_matches(&rules[i], ans))
            return &rules[i];
    }
    return NULL;
}

/* The first matching row: the front stages, then the table of the answer's API version (an
 * answer never parsed as v3 counts as v2). The catch-all rows guarantee one for every
 * reachable stage. */
static const struct classify_rule *classify_find(const struct clw_answer *ans)
{
    const struct classify_rule *r =
        classify_scan(classify_front, CLASSIFY_COUNT(classify_front), ans);

    if (r == NULL && classify_is_v3(ans))
        r = classify_scan(classify_v3, CLASSIFY_COUNT(classify_v3), ans);
    else if (r == NULL)
        r = classify_scan(classify_v2, CLASSIFY_COUNT(classify_v2), ans);
    return r;
}

const char *clw_class_name(enum clw_class c)
{
    switch (c) {
    case CLW_CLASS_SUCCESS:
        return "success";
    case CLW_CLASS_PERMANENT:
        return "permanent";
    case CLW_CLASS_TRANSIENT:
        return "transient";
    case CLW_CLASS_RESIGN:
        return "resign";
    case CLW_CLASS_WORKER_FAULT:
        return "worker_fault";
    }
    return "unknown";
}

enum clw_class clw_classify(const struct clw_answer *ans, const char **why)
{
    const struct classify_rule *r = ans != NULL ? classify_find(ans) : NULL;
    enum clw_class cls = CLW_CLASS_TRANSIENT;
    const char *reason = "no answer";

    if (r != NULL) {
        cls = r->cls;
        reason = r->why;
    }
    if (why != NULL)
        *why = reason;
    return cls;
}

const char *clw_classify_transport_desc(const struct clw_answer *ans)
{
    const struct classify_rule *r = ans != NULL ? classify_find(ans) : NULL;
    const char *desc = CLASSIFY_CONNECT;

    if (r != NULL) {
        desc = r->transport_desc;
        if (desc != NULL && strcmp(desc, CLASSIFY_HTTP_STATUS) == 0 && ans->http_status <= 0)
            desc = CLASSIFY_CONNECT;
    }
    return desc;
}

static int classify_has_signal(const struct clw_answer *ans, enum classify_signal signal)
{
    int version;
    size_t i;

    if (ans == NULL)
        return 0;
    version = classify_is_v3(ans) ? 3 : 2;
    for (i = 0; i < CLASSIFY_COUNT(classify_signals); i++) {
        const struct classify_signal_rule *s = &classify_signals[i];

        if (s->signal == signal && (s->version == 0 || s->version == version) &&
            classify_matches(&s->rule, ans))
            return 1;
    }
    return 0;
}

int clw_classify_already_linked(const struct clw_answer *ans)
{
    return classify_has_signal(ans, CLASSIFY_ALREADY_LINKED);
}

int clw_classify_not_found(const struct clw_answer *ans)
{
    return classify_has_signal(ans, CLASSIFY_NOT_FOUND);
}

int clw_classify_throttled(const struct clw_answer *ans)
{
    return classify_has_signal(ans, CLASSIFY_THROTTLED);
}

int clw_classify_resource_busy(const struct clw_answer *ans)
{
    return classify_has_signal(ans, CLASSIFY_RESOURCE_BUSY);
}

int clw_classify_credentials_refused(const struct clw_answer *ans)
{
    if (classify_is_v3(ans))
        return ans->code_desc != NULL && strncmp(ans->code_desc, "AuthFailure.", 12) == 0 &&
               strcmp(ans->code_desc, "AuthFailure.SignatureExpire") != 0;
    return classify_decodable(ans) && ans->has_code &&
           (ans->code == 4100 || ans->code == 4104 || ans->code == 4105);
}
