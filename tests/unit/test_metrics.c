/* Unit tests for metrics: rendered lines after updates, text grammar, readiness, health. */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clw/metrics.h"

#ifndef CLW_VERSION
#define CLW_VERSION "unknown"
#endif

/* One update applied to a fresh metrics state. */
enum op_kind {
    OP_END = 0,
    OP_CONSUMED,
    OP_REQUEST, /* has_action, action, flag = succeeded, s = error class, secs */
    OP_API,     /* api_action, s = class, l1 = code, l2 = http status, secs */
    OP_CALL,    /* l1 = requests in one call */
    OP_RETRY,
    OP_INFLIGHT,  /* l1 */
    OP_PQUEUE,    /* l1 */
    OP_PART,      /* part, l1 pending, l2 lag, l3 committed */
    OP_FORGET,    /* part */
    OP_PAUSE,     /* reason, flag = on, s = detail */
    OP_GROUP,     /* flag = joined, l1 = assigned */
    OP_PRODUCER,  /* flag */
    OP_ALIVE,     /* l1 = mono ms */
    OP_RL_ANSWER, /* api_action, s = region, flag = throttled */
    OP_RL_STATE,  /* api_action, s = region, secs = rate, share */
    OP_QUOTA,     /* secs = api.quota */
    OP_DEAD_LETTER,
    OP_COMMIT_FAILED,
    OP_CREDS, /* l1 = expiry, wall ms */
};

struct op {
    enum op_kind kind;
    int has_action;
    enum clw_action action;
    const char *api_action;
    int flag;
    const char *s;
    long l1;
    long l2;
    long l3;
    int32_t part;
    enum clw_pause_reason reason;
    double secs;
    double share;
};

#define MAX_OPS   16
#define MAX_LINES 20

#define REQ(has_, act_, ok_, cls_, secs_)                                                          \
    {                                                                                              \
        .kind = OP_REQUEST, .has_action = (has_), .action = (act_), .flag = (ok_), .s = (cls_),    \
        .secs = (secs_)                                                                            \
    }
#define API(act_, cls_, code_, http_, secs_)                                                       \
    {                                                                                              \
        .kind = OP_API, .api_action = (act_), .s = (cls_), .l1 = (code_), .l2 = (http_),           \
        .secs = (secs_)                                                                            \
    }
#define PART(p_, pend_, lag_, com_)                                                                \
    {                                                                                              \
        .kind = OP_PART, .part = (p_), .l1 = (pend_), .l2 = (lag_), .l3 = (com_)                   \
    }
#define PAUSE(r_, on_, d_)                                                                         \
    {                                                                                              \
        .kind = OP_PAUSE, .reason = (r_), .flag = (on_), .s = (d_)                                 \
    }
#define RL_OK(act_, region_, n_)                                                                   \
    {                                                                                              \
        .kind = OP_RL_ANSWER, .api_action = (act_), .s = (region_), .flag = 0, .l1 = (n_)          \
    }
#define RL_THR(act_, region_, n_)                                                                  \
    {                                                                                              \
        .kind = OP_RL_ANSWER, .api_action = (act_), .s = (region_), .flag = 1, .l1 = (n_)          \
    }
#define RL_STATE(act_, region_, rate_, share_)                                                     \
    {                                                                                              \
        .kind = OP_RL_STATE, .api_action = (act_), .s = (region_), .secs = (rate_),                \
        .share = (share_)                                                                          \
    }
#define GROUP(j_, n_)                                                                              \
    {                                                                                              \
        .kind = OP_GROUP, .flag = (j_), .l1 = (n_)                                                 \
    }

static void apply_ops(struct clw_metrics *m, const struct op *ops)
{
    for (; ops->kind != OP_END; ops++) {
        switch (ops->kind) {
        case OP_CONSUMED:
            clw_metrics_consumed(m);
            break;
        case OP_REQUEST:
            clw_metrics_request_done(m, ops->has_action, ops->action, ops->flag, ops->s, ops->secs);
            break;
        case OP_API:
            clw_metrics_api_call(m, ops->api_action, ops->s, ops->l1, ops->l2, ops->secs);
            break;
        case OP_CALL:
            clw_metrics_call_requests(m, (size_t)ops->l1);
            break;
        case OP_RETRY:
            clw_metrics_retry(m);
            break;
        case OP_COMMIT_FAILED:
            clw_metrics_commit_failed(m);
            break;
        case OP_INFLIGHT:
            clw_metrics_set_inflight(m, ops->l1);
            break;
        case OP_PQUEUE:
            clw_metrics_set_producer_queue(m, ops->l1);
            break;
        case OP_PART:
            clw_metrics_set_partition(m, ops->part, ops->l1, ops->l2, ops->l3);
            break;
        case OP_FORGET:
            clw_metrics_forget_partition(m, ops->part);
            break;
        case OP_PAUSE:
            clw_metrics_set_paused(m, ops->reason, ops->flag, ops->s);
            break;
        case OP_GROUP:
            clw_metrics_set_group(m, ops->flag, (int)ops->l1);
            break;
        case OP_PRODUCER:
            clw_metrics_set_producer_ok(m, ops->flag);
            break;
        case OP_ALIVE:
            clw_metrics_loop_alive(m, ops->l1);
            break;
        case OP_DEAD_LETTER:
            clw_metrics_dead_letter(m);
            break;
        case OP_CREDS:
            clw_metrics_set_credentials_expiry(m, (int64_t)ops->l1);
            break;
        case OP_RL_ANSWER:
            for (long n = 0; n < ops->l1; n++)
                clw_metrics_ratelimit_answer(m, ops->api_action, ops->s, ops->flag);
            break;
        case OP_RL_STATE:
            clw_metrics_ratelimit_state(m, ops->api_action, ops->s, ops->secs, ops->share);
            break;
        case OP_QUOTA:
            clw_metrics_set_api_quota(m, ops->secs);
            break;
        case OP_END:
            break;
        }
    }
}

/* 1 when text holds line as one complete line. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    const char *p = text;

    for (p = strstr(text, line); p; p = strstr(p + 1, line)) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    }
    return 0;
}

/* ---- Prometheus text format (0.0.4) line checker ---- */

static int is_name_start(int c)
{
    return isalpha(c) || c == '_' || c == ':';
}

static int is_name_char(int c)
{
    return isalnum(c) || c == '_' || c == ':';
}

/* Parses a metric name at *p; copies it to name. Returns 0 on success. */
static int parse_name(const char **p, char *name, size_t namelen, int label)
{
    size_t n = 0;
    const char *s = *p;

    if (!is_name_start((unsigned char)*s) || (label && *s == ':'))
        return -1;
    while (is_name_char((unsigned char)*s) && !(label && *s == ':')) {
        if (n + 1 >= namelen)
            return -1;
        name[n++] = *s++;
    }
    name[n] = '\0';
    *p = s;
    return 0;
}

/* Parses a sample value (a float, +Inf, -Inf or NaN) ending the token at *p. */
static int parse_value(const char **p)
{
    const char *s = *p;
    char *end;
    size_t i;
    static const char *const specials[] = {"+Inf", "-Inf", "NaN"};

    for (i = 0; i < 3; i++) {
        size_t n = strlen(specials[i]);

        if (strncmp(s, specials[i], n) == 0 && (s[n] == ' ' || s[n] == '\0')) {
            *p = s + n;
            return 0;
        }
    }
    if (!(isdigit((unsigned char)*s) || *s == '-' || *s == '+' || *s == '.'))
        return -1;
    strtod(s, &end);
    if (end == s || (*end != ' ' && *end != '\0'))
        return -1;
    *p = end;
    return 0;
}

/* Checks one line. family/type: the current # TYPE (updated by TYPE lines). Returns NULL when
 * the line is valid, else a static reason. */
static const char *check_line(const char *line, char *family, char *type)
{
    char name[128];
    char label[128];
    const char *p = line;
    size_t fl;

    if (*p == '#') {
        if (strncmp(p, "# HELP ", 7) == 0) {
            p += 7;
            if (parse_name(&p, name, sizeof(name), 0) != 0 || *p != ' ')
                return "bad HELP";
            return NULL;
        }
        if (strncmp(p, "# TYPE ", 7) == 0) {
            p += 7;
            if (parse_name(&p, name, sizeof(name), 0) != 0 || *p != ' ')
                return "bad TYPE";
            p++;
            if (strcmp(p, "counter") && strcmp(p, "gauge") && strcmp(p, "histogram") &&
                strcmp(p, "summary") && strcmp(p, "untyped"))
                return "unknown TYPE";
            if (strcmp(p, "counter") == 0 &&
                (strlen(name) < 6 || strcmp(name + strlen(name) - 6, "_total") != 0))
                return "counter name without _total";
            strcpy(family, name);
            strcpy(type, p);
            return NULL;
        }
        return "unknown comment";
    }
    if (parse_name(&p, name, sizeof(name), 0) != 0)
        return "bad metric name";
    fl = strlen(family);
    if (!*family || strncmp(name, family, fl) != 0)
        return "sample outside its family";
    if (name[fl] != '\0') {
        if (strcmp(type, "histogram") != 0 ||
            (strcmp(name + fl, "_bucket") && strcmp(name + fl, "_sum") &&
             strcmp(name + fl, "_count")))
            return "sample name does not match family";
    }
    if (*p == '{') {
        p++;
        while (*p != '}') {
            if (parse_name(&p, label, sizeof(label), 1) != 0)
                return "bad label name";
            if (p[0] != '=')
                return "label without =";
            if (p[1] != '"')
                return "label value not quoted";
            p += 2;
            while (*p != '"') {
                if (*p == '\0' || *p == '\n')
                    return "unterminated label value";
                if (*p == '\\') {
                    p++;
                    if (*p != '\\' && *p != '"' && *p != 'n')
                        return "bad escape in label value";
                }
                p++;
            }
            p++;
            if (*p == ',')
                p++;
            else if (*p != '}')
                return "label list not closed";
        }
        p++;
    }
    if (*p != ' ')
        return "no space before value";
    p++;
    if (parse_value(&p) != 0)
        return "bad value";
    if (*p == ' ') {
        char *end;

        p++;
        strtoll(p, &end, 10);
        if (end == p || *end != '\0')
            return "bad timestamp";
        p = end;
    }
    if (*p != '\0')
        return "trailing text";
    return NULL;
}

/* Checks a whole exposition. Returns NULL when valid, else the reason (line copied to bad). */
static const char *check_text(const char *text, char *bad, size_t badlen)
{
    char family[128] = "";
    char type[32] = "";
    char line[1024];
    const char *p = text;
    const char *nl;
    const char *why;
    size_t n;

    if (!*text)
        return "empty";
    while (*p) {
        nl = strchr(p, '\n');
        if (!nl)
            return "last line not terminated";
        n = (size_t)(nl - p);
        if (n >= sizeof(line))
            return "line too long";
        memcpy(line, p, n);
        line[n] = '\0';
        why = check_line(line, family, type);
        if (why) {
            snprintf(bad, badlen, "%s", line);
            return why;
        }
        p = nl + 1;
    }
    return NULL;
}

/* ---- render cases ---- */

struct render_case {
    const char *name;
    struct op ops[MAX_OPS];
    const char *want[MAX_LINES];   /* lines that must be present */
    const char *absent[MAX_LINES]; /* lines (or prefixes, see below) that must not be */
};

static const struct render_case render_cases[] = {
    {"fresh state",
     {{OP_END}},
     {"classiclink_up 1", "classiclink_records_consumed_total 0",
      "classiclink_requests_total{action=\"AttachClassicLinkVpc\",status=\"succeeded\","
      "error_class=\"\"} 0",
      "classiclink_requests_total{action=\"unknown\",status=\"failed\","
      "error_class=\"invalid_request\"} 0",
      "classiclink_request_duration_seconds_bucket{le=\"+Inf\"} 0",
      "classiclink_request_duration_seconds_sum 0.000000",
      "classiclink_api_call_duration_seconds_count 0", "classiclink_inflight_calls 0",
      "classiclink_commit_failures_total 0", "classiclink_paused{reason=\"worker_fault\"} 0",
      "classiclink_paused{reason=\"circuit_open\"} 0",
      "classiclink_paused{reason=\"publish_error\"} 0",
      "# TYPE classiclink_api_calls_total counter", "# TYPE classiclink_consumer_lag gauge",
      "# TYPE classiclink_request_duration_seconds histogram"},
     {"classiclink_api_calls_total{", "classiclink_pending_records{",
      "classiclink_requests_total{action=\"AttachClassicLinkVpc\",status=\"succeeded\","
      "error_class=\"other\"}"}},
    {"request outcomes by action, status and class",
     {REQ(1, CLW_ACTION_ATTACH, 1, NULL, 0.1),
      REQ(1, CLW_ACTION_ATTACH, 1, NULL, 0.1),
      REQ(1, CLW_ACTION_DETACH, 0, "api_error", 0.1),
      REQ(0, CLW_ACTION_ATTACH, 0, "invalid_request", 0.1),
      REQ(1, CLW_ACTION_ATTACH, 0, "retries_exhausted", 0.1),
      REQ(1, CLW_ACTION_ATTACH, 0, "something new", 0.1),
      REQ(1, CLW_ACTION_ATTACH, 1, "", 0.1),
      {OP_END}},
     {"classiclink_requests_total{action=\"AttachClassicLinkVpc\",status=\"succeeded\","
      "error_class=\"\"} 3",
      "classiclink_requests_total{action=\"DetachClassicLinkVpc\",status=\"failed\","
      "error_class=\"api_error\"} 1",
      "classiclink_requests_total{action=\"unknown\",status=\"failed\","
      "error_class=\"invalid_request\"} 1",
      "classiclink_requests_total{action=\"AttachClassicLinkVpc\",status=\"failed\","
      "error_class=\"retries_exhausted\"} 1",
      "classiclink_requests_total{action=\"AttachClassicLinkVpc\",status=\"failed\","
      "error_class=\"other\"} 1",
      "classiclink_requests_total{action=\"DetachClassicLinkVpc\",status=\"succeeded\","
      "error_class=\"\"} 0",
      "classiclink_request_duration_seconds_count 7",
      "classiclink_request_duration_seconds_bucket{le=\"0.05\"} 0",
      "classiclink_request_duration_seconds_bucket{le=\"0.1\"} 7",
      "classiclink_request_duration_seconds_sum 0.700000"},
     {"classiclink_requests_total{action=\"AttachClassicLinkVpc\",status=\"failed\","
      "error_class=\"something new\"}"}},
    {"api codes fold into bounded labels",
     {API("AttachClassicLinkVpc", "success", 0, 200, 0.01),
      API("AttachClassicLinkVpc", "success", 0, 200, 0.01),
      API("AttachClassicLinkVpc", "permanent", 4400, 200, 0.01),
      API("DetachClassicLinkVpc", "permanent", 9999, 200, 0.01),
      API("AttachClassicLinkVpc", "permanent", 123456789, 200, 0.01),
      API("AttachClassicLinkVpc", "transient", -1, 0, 0.01),
      API("AttachClassicLinkVpc", "transient", -1, 503, 0.01),
      API("AttachClassicLinkVpc", "worker_fault", -1, 401, 0.01),
      API("AttachClassicLinkVpc", "worker_fault", -1, 418, 0.01),
      API("AttachClassicLinkVpc", "resign", 4500, 200, 0.01),
      API("AttachClassicLinkVpc", "brand new class", 6200, 200, 0.01),
      API("AttachClassicLinkVpc", NULL, 6200, 200, 0.01),
      {OP_END}},
     {"classiclink_api_calls_total{action=\"AttachClassicLinkVpc\",class=\"success\","
      "code=\"0\"} 2",
      "classiclink_api_calls_total{action=\"AttachClassicLinkVpc\",class=\"permanent\","
      "code=\"4400\"} 1",
      "classiclink_api_calls_total{action=\"DetachClassicLinkVpc\",class=\"permanent\","
      "code=\"other\"} 1",
      "classiclink_api_calls_total{action=\"AttachClassicLinkVpc\",class=\"permanent\","
      "code=\"other\"} 1",
      "classiclink_api_calls_total{action=\"AttachClassicLinkVpc\",class=\"transient\","
      "code=\"none\"} 1",
      "classiclink_api_calls_total{action=\"AttachClassicLinkVpc\",class=\"transient\","
      "code=\"http_503\"} 1",
      "classiclink_api_calls_total{action=\"AttachClassicLinkVpc\",class=\"worker_fault\","
      "code=\"http_401\"} 1",
      "classiclink_api_calls_total{action=\"AttachClassicLinkVpc\",class=\"worker_fault\","
      "code=\"http_other\"} 1",
      "classiclink_api_calls_total{action=\"AttachClassicLinkVpc\",class=\"resign\","
      "code=\"4500\"} 1",
      "classiclink_api_calls_total{action=\"AttachClassicLinkVpc\",class=\"other\","
      "code=\"6200\"} 2",
      "classiclink_api_call_duration_seconds_count 12"},
     {"classiclink_api_calls_total{action=\"DetachClassicLinkVpc\",class=\"permanent\","
      "code=\"9999\"}",
      "classiclink_api_calls_total{action=\"AttachClassicLinkVpc\",class=\"worker_fault\","
      "code=\"http_418\"}",
      "classiclink_api_calls_total{action=\"AttachClassicLinkVpc\",class=\"success\","
      "code=\"4400\"}"}},
    {"follow-up calls have their own action label; unknown actions fold into other",
     {API("DescribeVpcClassicLink", "success", 0, 200, 0.01),
      API("DescribeClassicLinkInstances", "transient", 4400, 200, 0.01),
      API("DescribeVpcTaskResult", "success", 0, 200, 0.01),
      API("DescribeVpcTaskResult", "success", 0, 200, 0.01),
      API("ins-123 injected\"", "success", 0, 200, 0.01),
      API(NULL, "success", 0, 200, 0.01),
      {OP_END}},
     {"classiclink_api_calls_total{action=\"DescribeVpcClassicLink\",class=\"success\","
      "code=\"0\"} 1",
      "classiclink_api_calls_total{action=\"DescribeClassicLinkInstances\",class=\"transient\","
      "code=\"4400\"} 1",
      "classiclink_api_calls_total{action=\"DescribeVpcTaskResult\",class=\"success\","
      "code=\"0\"} 2",
      "classiclink_api_calls_total{action=\"other\",class=\"success\",code=\"0\"} 2"},
     {"ins-123"}},
    {"requests per call: a histogram with inclusive bounds",
     {{OP_CALL, .l1 = 1},
      {OP_CALL, .l1 = 1},
      {OP_CALL, .l1 = 2},
      {OP_CALL, .l1 = 3},
      {OP_CALL, .l1 = 100},
      {OP_CALL, .l1 = 5000},
      {OP_END}},
     {"# TYPE classiclink_call_requests histogram", "classiclink_call_requests_bucket{le=\"1\"} 2",
      "classiclink_call_requests_bucket{le=\"2\"} 3",
      "classiclink_call_requests_bucket{le=\"5\"} 4",
      "classiclink_call_requests_bucket{le=\"50\"} 4",
      "classiclink_call_requests_bucket{le=\"100\"} 5",
      "classiclink_call_requests_bucket{le=\"1000\"} 5",
      "classiclink_call_requests_bucket{le=\"+Inf\"} 6", "classiclink_call_requests_sum 5107",
      "classiclink_call_requests_count 6"},
     {NULL}},
    {"histogram buckets are cumulative, bounds inclusive",
     {API("AttachClassicLinkVpc", "success", 0, 200, 0.003),
      API("AttachClassicLinkVpc", "success", 0, 200, 0.005),
      API("AttachClassicLinkVpc", "success", 0, 200, 0.2),
      API("AttachClassicLinkVpc", "success", 0, 200, 100.0),
      API("AttachClassicLinkVpc", "success", 0, 200, -3.0),
      API("AttachClassicLinkVpc", "success", 0, 200, NAN),
      {OP_END}},
     {"classiclink_api_call_duration_seconds_bucket{le=\"0.005\"} 4",
      "classiclink_api_call_duration_seconds_bucket{le=\"0.01\"} 4",
      "classiclink_api_call_duration_seconds_bucket{le=\"0.1\"} 4",
      "classiclink_api_call_duration_seconds_bucket{le=\"0.25\"} 5",
      "classiclink_api_call_duration_seconds_bucket{le=\"60\"} 5",
      "classiclink_api_call_duration_seconds_bucket{le=\"+Inf\"} 6",
      "classiclink_api_call_duration_seconds_count 6",
      "classiclink_api_call_duration_seconds_sum 100.208000",
      "classiclink_request_duration_seconds_count 0"},
     {NULL}},
    {"plain counters and gauges",
     {{.kind = OP_CONSUMED},
      {.kind = OP_CONSUMED},
      {.kind = OP_CONSUMED},
      {.kind = OP_RETRY},
      {.kind = OP_RETRY},
      {.kind = OP_COMMIT_FAILED},
      {.kind = OP_INFLIGHT, .l1 = 9},
      {.kind = OP_INFLIGHT, .l1 = 5},
      {.kind = OP_PQUEUE, .l1 = 7},
      GROUP(1, 4),
      {OP_END}},
     {"classiclink_records_consumed_total 3", "classiclink_retries_total 2",
      "classiclink_commit_failures_total 1", "classiclink_inflight_calls 5",
      "classiclink_producer_queue_records 7", "classiclink_assigned_partitions 4"},
     {"classiclink_inflight_calls 9"}},
    {"partitions: sorted, updated, unknown values absent, forgotten",
     {PART(3, 10, 20, 1741),
      PART(1, 1, 2, 3),
      PART(0, 0, -1, -1),
      PART(3, 11, 21, 1742),
      PART(2, 5, 6, 7),
      {.kind = OP_FORGET, .part = 2},
      {.kind = OP_FORGET, .part = 99},
      {OP_END}},
     {"classiclink_pending_records{partition=\"3\"} 11",
      "classiclink_consumer_lag{partition=\"3\"} 21",
      "classiclink_committed_offset{partition=\"3\"} 1742",
      "classiclink_pending_records{partition=\"1\"} 1",
      "classiclink_pending_records{partition=\"0\"} 0"},
     {"classiclink_consumer_lag{partition=\"0\"}", "classiclink_committed_offset{partition=\"0\"}",
      "classiclink_pending_records{partition=\"3\"} 10",
      "classiclink_pending_records{partition=\"2\"}"}},
    {"dead letters and credentials expiry are shown from the start, at 0",
     {{OP_END}},
     {"# TYPE classiclink_dead_letters_total counter", "classiclink_dead_letters_total 0",
      "# TYPE classiclink_credentials_expiry_timestamp_seconds gauge",
      "classiclink_credentials_expiry_timestamp_seconds 0"},
     {NULL}},
    {"dead letters count; the expiry is whole Unix seconds of the latest value",
     {{.kind = OP_DEAD_LETTER},
      {.kind = OP_DEAD_LETTER},
      {.kind = OP_DEAD_LETTER},
      {.kind = OP_CREDS, .l1 = 1767225600999L},
      {.kind = OP_CREDS, .l1 = 1767229200500L},
      {OP_END}},
     {"classiclink_dead_letters_total 3",
      "classiclink_credentials_expiry_timestamp_seconds 1767229200"},
     {"classiclink_credentials_expiry_timestamp_seconds 1767225600",
      "classiclink_credentials_expiry_timestamp_seconds 1767229200.5"}},
    {"long-term keys after temporary ones: the expiry reads 0 again",
     {{.kind = OP_CREDS, .l1 = 1767225600000L}, {.kind = OP_CREDS, .l1 = -1}, {OP_END}},
     {"classiclink_credentials_expiry_timestamp_seconds 0"},
     {"classiclink_credentials_expiry_timestamp_seconds 1767225600"}},
    {"rate limiter: counters per action and region, gauges once the state is known",
     {RL_OK("AttachClassicLinkVpc", "ap-guangzhou", 3),
      RL_THR("AttachClassicLinkVpc", "ap-guangzhou", 2),
      RL_STATE("AttachClassicLinkVpc", "ap-guangzhou", 32.3333, 1.0 / 3),
      RL_STATE("AttachClassicLinkVpc", "ap-guangzhou", 31.5, 0.25),
      RL_OK("DetachClassicLinkVpc", "ap-shanghai", 1),
      RL_OK("DescribeVpcClassicLink", "ap-guangzhou", 4),
      RL_OK("SomethingNew", "ap-guangzhou", 1),
      RL_STATE("DescribeVpcTaskResult", "gz", 97, 1),
      {.kind = OP_QUOTA, .secs = 100},
      {OP_END}},
     {"classiclink_ratelimit_admitted_total{action=\"AttachClassicLinkVpc\","
      "region=\"ap-guangzhou\"} 3",
      "classiclink_ratelimit_throttled_total{action=\"AttachClassicLinkVpc\","
      "region=\"ap-guangzhou\"} 2",
      "classiclink_ratelimit_rate{action=\"AttachClassicLinkVpc\",region=\"ap-guangzhou\"} 31.5",
      "classiclink_ratelimit_share{action=\"AttachClassicLinkVpc\",region=\"ap-guangzhou\"} 0.25",
      "classiclink_ratelimit_admitted_total{action=\"DetachClassicLinkVpc\","
      "region=\"ap-shanghai\"} 1",
      "classiclink_ratelimit_throttled_total{action=\"DetachClassicLinkVpc\","
      "region=\"ap-shanghai\"} 0",
      "classiclink_ratelimit_admitted_total{action=\"DescribeVpcClassicLink\","
      "region=\"ap-guangzhou\"} 4",
      "classiclink_ratelimit_admitted_total{action=\"other\",region=\"ap-guangzhou\"} 1",
      "classiclink_ratelimit_rate{action=\"DescribeVpcTaskResult\",region=\"gz\"} 97",
      "classiclink_ratelimit_admitted_total{action=\"DescribeVpcTaskResult\",region=\"gz\"} 0",
      "classiclink_api_quota{action=\"AttachClassicLinkVpc\"} 100",
      "classiclink_api_quota{action=\"DetachClassicLinkVpc\"} 100",
      "classiclink_api_quota{action=\"DescribeClassicLinkInstances\"} 100",
      "# TYPE classiclink_ratelimit_admitted_total counter",
      "# TYPE classiclink_ratelimit_rate gauge"},
     {"classiclink_ratelimit_rate{action=\"DetachClassicLinkVpc\",",
      "classiclink_ratelimit_share{action=\"DetachClassicLinkVpc\",",
      "classiclink_api_quota{action=\"other\"}", "SomethingNew"}},
    {"rate limiter: no quota, no series; odd regions are escaped or folded",
     {{.kind = OP_QUOTA, .secs = 0},
      RL_OK("AttachClassicLinkVpc", "a\"b\\c\nd", 1),
      RL_OK("AttachClassicLinkVpc", "abcdefghijklmnopqrstuvwxyz0123456789", 2),
      RL_OK("AttachClassicLinkVpc", NULL, 1),
      {OP_END}},
     {"classiclink_ratelimit_admitted_total{action=\"AttachClassicLinkVpc\","
      "region=\"a\\\"b\\\\c\\nd\"} 1",
      "classiclink_ratelimit_admitted_total{action=\"AttachClassicLinkVpc\",region=\"other\"} 3",
      "# TYPE classiclink_api_quota gauge"},
     {"classiclink_api_quota{", "classiclink_ratelimit_rate{"}},
    {"pause gauges follow set and clear",
     {PAUSE(CLW_PAUSE_CIRCUIT_OPEN, 1, "circuit open after 5 failures"),
      PAUSE(CLW_PAUSE_WORKER_FAULT, 1, NULL),
      PAUSE(CLW_PAUSE_WORKER_FAULT, 0, NULL),
      {OP_END}},
     {"classiclink_paused{reason=\"circuit_open\"} 1",
      "classiclink_paused{reason=\"worker_fault\"} 0",
      "classiclink_paused{reason=\"publish_error\"} 0"},
     {"classiclink_paused{reason=\"circuit_open\"} 0"}},
};

/* An absent entry ending in '{' or '}' is matched as a line prefix, others as whole lines. */
static int has_prefix_line(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    const char *p = text;

    for (p = strstr(text, prefix); p; p = strstr(p + n, prefix)) {
        if (p == text || p[-1] == '\n')
            return 1;
    }
    return 0;
}

static void test_render_table(void **state)
{
    size_t i;
    size_t j;
    size_t len;
    char *text;
    char bad[1024];
    const char *why;
    struct clw_metrics *m;
    const struct render_case *c;
    const char *a;
    int present;

    (void)state;
    for (i = 0; i < sizeof(render_cases) / sizeof(render_cases[0]); i++) {
        c = &render_cases[i];
        m = clw_metrics_new();
        assert_non_null(m);
        apply_ops(m, c->ops);
        text = clw_metrics_render(m, &len);
        assert_non_null(text);
        assert_int_equal(len, strlen(text));
        for (j = 0; j < MAX_LINES && c->want[j]; j++) {
            if (!has_line(text, c->want[j]))
                fail_msg("case %s: missing line %s\n%s", c->name, c->want[j], text);
        }
        for (j = 0; j < MAX_LINES && c->absent[j]; j++) {
            a = c->absent[j];
            present = (a[strlen(a) - 1] == '{' || a[strlen(a) - 1] == '}')
                          ? has_prefix_line(text, a)
                          : has_line(text, a);
            if (present)
                fail_msg("case %s: unexpected line %s\n%s", c->name, a, text);
        }
        why = check_text(text, bad, sizeof(bad));
        if (why)
            fail_msg("case %s: grammar: %s: %s", c->name, why, bad);
        free(text);
        clw_metrics_free(m);
    }
}

static void test_build_info(void **state)
{
    struct clw_metrics *m = clw_metrics_new();
    char esc[256];
    char line[512];
    char *text;

    (void)state;
    assert_non_null(m);
    assert_int_equal(clw_metrics_label_escape(esc, sizeof(esc), CLW_VERSION), 0);
    snprintf(line, sizeof(line), "classiclink_build_info{version=\"%s\"} 1", esc);
    text = clw_metrics_render(m, NULL);
    assert_non_null(text);
    if (!has_line(text, line))
        fail_msg("missing %s", line);
    assert_true(has_line(text, "# TYPE classiclink_build_info gauge"));
    free(text);
    clw_metrics_free(m);
}

/* Every family has HELP and TYPE exactly once, and no label names an id. */
static void test_families_once(void **state)
{
    static const char *const families[] = {
        "classiclink_requests_total",
        "classiclink_api_calls_total",
        "classiclink_api_call_duration_seconds",
        "classiclink_request_duration_seconds",
        "classiclink_inflight_calls",
        "classiclink_producer_queue_records",
        "classiclink_records_consumed_total",
        "classiclink_retries_total",
        "classiclink_dead_letters_total",
        "classiclink_credentials_expiry_timestamp_seconds",
        "classiclink_commit_failures_total",
        "classiclink_pending_records",
        "classiclink_consumer_lag",
        "classiclink_committed_offset",
        "classiclink_paused",
        "classiclink_build_info",
        "classiclink_up",
        "classiclink_ratelimit_rate",
        "classiclink_ratelimit_share",
        "classiclink_ratelimit_admitted_total",
        "classiclink_ratelimit_throttled_total",
        "classiclink_api_quota",
    };
    struct clw_metrics *m = clw_metrics_new();
    char *text;
    char want[160];
    const char *p;
    size_t i;
    int n;

    (void)state;
    assert_non_null(m);
    apply_ops(m, (const struct op[]){API("AttachClassicLinkVpc", "success", 0, 200, 0.1),
                                     PART(1, 1, 1, 1),
                                     RL_STATE("AttachClassicLinkVpc", "ap-guangzhou", 50, 0.5),
                                     RL_THR("AttachClassicLinkVpc", "ap-guangzhou", 1),
                                     {.kind = OP_QUOTA, .secs = 100},
                                     {OP_END}});
    text = clw_metrics_render(m, NULL);
    assert_non_null(text);
    for (i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        const char *kinds[] = {"# HELP ", "# TYPE "};
        size_t k;

        for (k = 0; k < 2; k++) {
            snprintf(want, sizeof(want), "%s%s ", kinds[k], families[i]);
            n = 0;
            for (p = strstr(text, want); p; p = strstr(p + 1, want))
                n++;
            if (n != 1)
                fail_msg("%s appears %d times", want, n);
        }
    }
    assert_null(strstr(text, "requestId"));
    assert_null(strstr(text, "vpc"));
    assert_null(strstr(text, "instance"));
    free(text);
    clw_metrics_free(m);
}

struct escape_case {
    const char *name;
    const char *in;
    size_t dstlen;
    const char *want;
    int rc;
};

static const struct escape_case escape_cases[] = {
    {"plain", "0.1.0", 64, "0.1.0", 0},
    {"quote", "a\"b", 64, "a\\\"b", 0},
    {"backslash", "a\\b", 64, "a\\\\b", 0},
    {"newline", "a\nb", 64, "a\\nb", 0},
    {"utf-8 kept", "caf\xc3\xa9", 64, "caf\xc3\xa9", 0},
    {"empty", "", 1, "", 0},
    {"exact fit", "abc", 4, "abc", 0},
    {"cut plain", "abcd", 4, "abc", -1},
    {"cut before escape", "ab\"", 4, "ab", -1},
    {"no room at all", "x", 1, "", -1},
};

static void test_label_escape_table(void **state)
{
    size_t i;
    char out[64];
    int rc;

    (void)state;
    for (i = 0; i < sizeof(escape_cases) / sizeof(escape_cases[0]); i++) {
        const struct escape_case *c = &escape_cases[i];

        memset(out, 'Z', sizeof(out));
        rc = clw_metrics_label_escape(out, c->dstlen, c->in);
        if (rc != c->rc || strcmp(out, c->want) != 0)
            fail_msg("case %s: got rc %d \"%s\", want rc %d \"%s\"", c->name, rc, out, c->rc,
                     c->want);
        if (c->dstlen < sizeof(out) && out[c->dstlen] != 'Z')
            fail_msg("case %s: wrote past dstlen", c->name);
    }
}

/* The checker itself must reject malformed lines, or the grammar test proves nothing. */
struct grammar_case {
    const char *name;
    const char *text;
    int valid;
};

static const struct grammar_case grammar_cases[] = {
    {"gauge ok", "# HELP a_b x\n# TYPE a_b gauge\na_b 1\n", 1},
    {"labels ok", "# TYPE a gauge\na{x=\"1\",y=\"q\\\"\\\\\\n\"} 2.5\n", 1},
    {"histogram ok", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 0.5\nh_count 1\n", 1},
    {"value +Inf ok", "# TYPE a gauge\na +Inf\n", 1},
    {"timestamp ok", "# TYPE a gauge\na 1 1700000000000\n", 1},
    {"no type", "a 1\n", 0},
    {"counter without _total", "# TYPE a counter\na 1\n", 0},
    {"wrong family", "# TYPE a gauge\nb 1\n", 0},
    {"bucket on gauge", "# TYPE a gauge\na_bucket 1\n", 0},
    {"bad name", "# TYPE a gauge\n1a 1\n", 0},
    {"unquoted label", "# TYPE a gauge\na{x=1} 1\n", 0},
    {"bad escape", "# TYPE a gauge\na{x=\"\\t\"} 1\n", 0},
    {"unterminated labels", "# TYPE a gauge\na{x=\"1\" 1\n", 0},
    {"no value", "# TYPE a gauge\na\n", 0},
    {"text value", "# TYPE a gauge\na one\n", 0},
    {"two spaces", "# TYPE a gauge\na  1\n", 0},
    {"trailing junk", "# TYPE a gauge\na 1 2 3\n", 0},
    {"no final newline", "# TYPE a gauge\na 1", 0},
    {"unknown type", "# TYPE a meter\na 1\n", 0},
    {"stray comment", "# hello\n", 0},
};

static void test_grammar_checker_table(void **state)
{
    size_t i;
    char bad[1024];
    const char *why;

    (void)state;
    for (i = 0; i < sizeof(grammar_cases) / sizeof(grammar_cases[0]); i++) {
        const struct grammar_case *c = &grammar_cases[i];

        why = check_text(c->text, bad, sizeof(bad));
        if ((why == NULL) != c->valid)
            fail_msg("case %s: checker says %s", c->name, why ? why : "valid");
    }
}

struct ready_case {
    const char *name;
    struct op ops[MAX_OPS];
    int ready;
    const char *body;
};

static const char long_detail[] =
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "yyyyyyyyyy";

/* 200 x's: what remains of long_detail. */
#define X50  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
#define X200 X50 X50 X50 X50

static const struct ready_case ready_cases[] = {
    {"fresh: nothing joined or connected",
     {{OP_END}},
     0,
     "{\"ready\":false,\"reasons\":[\"consumer group not joined\",\"producer not connected\"],"
     "\"partitions\":0}"},
    {"joined with zero partitions is ready",
     {GROUP(1, 0), {.kind = OP_PRODUCER, .flag = 1}, {OP_END}},
     1,
     "{\"ready\":true,\"reasons\":[],\"partitions\":0}"},
    {"joined with partitions",
     {GROUP(1, 3), {.kind = OP_PRODUCER, .flag = 1}, {OP_END}},
     1,
     "{\"ready\":true,\"reasons\":[],\"partitions\":3}"},
    {"join in progress is not ready",
     {GROUP(1, 3), GROUP(0, 0), {.kind = OP_PRODUCER, .flag = 1}, {OP_END}},
     0,
     "{\"ready\":false,\"reasons\":[\"consumer group not joined\"],\"partitions\":0}"},
    {"producer down",
     {GROUP(1, 2), {.kind = OP_PRODUCER, .flag = 1}, {.kind = OP_PRODUCER, .flag = 0}, {OP_END}},
     0,
     "{\"ready\":false,\"reasons\":[\"producer not connected\"],\"partitions\":2}"},
    {"worker fault with detail",
     {GROUP(1, 3),
      {.kind = OP_PRODUCER, .flag = 1},
      PAUSE(CLW_PAUSE_WORKER_FAULT, 1, "HTTP 401 from the API"),
      {OP_END}},
     0,
     "{\"ready\":false,\"reasons\":[\"paused: worker_fault: HTTP 401 from the API\"],"
     "\"partitions\":3}"},
    {"two pauses, one without detail",
     {GROUP(1, 1),
      {.kind = OP_PRODUCER, .flag = 1},
      PAUSE(CLW_PAUSE_PUBLISH_ERROR, 1, "x"),
      PAUSE(CLW_PAUSE_CIRCUIT_OPEN, 1, NULL),
      {OP_END}},
     0,
     "{\"ready\":false,\"reasons\":[\"paused: circuit_open\",\"paused: publish_error: x\"],"
     "\"partitions\":1}"},
    {"pause cleared",
     {GROUP(1, 1),
      {.kind = OP_PRODUCER, .flag = 1},
      PAUSE(CLW_PAUSE_CIRCUIT_OPEN, 1, "open"),
      PAUSE(CLW_PAUSE_CIRCUIT_OPEN, 0, NULL),
      {OP_END}},
     1,
     "{\"ready\":true,\"reasons\":[],\"partitions\":1}"},
    {"detail escaped and sanitized",
     {GROUP(1, 1),
      {.kind = OP_PRODUCER, .flag = 1},
      PAUSE(CLW_PAUSE_PUBLISH_ERROR, 1, "a\"b\\c\n\tcaf\xc3\xa9"),
      {OP_END}},
     0,
     "{\"ready\":false,\"reasons\":[\"paused: publish_error: a\\\"b\\\\c??caf??\"],"
     "\"partitions\":1}"},
    {"detail capped at 200 bytes",
     {GROUP(1, 1),
      {.kind = OP_PRODUCER, .flag = 1},
      PAUSE(CLW_PAUSE_WORKER_FAULT, 1, long_detail),
      {OP_END}},
     0,
     "{\"ready\":false,\"reasons\":[\"paused: worker_fault: " X200 "\"],\"partitions\":1}"},
    {"old detail replaced",
     {GROUP(1, 1),
      {.kind = OP_PRODUCER, .flag = 1},
      PAUSE(CLW_PAUSE_WORKER_FAULT, 1, "first, long detail"),
      PAUSE(CLW_PAUSE_WORKER_FAULT, 1, "second"),
      {OP_END}},
     0,
     "{\"ready\":false,\"reasons\":[\"paused: worker_fault: second\"],\"partitions\":1}"},
};

static void test_ready_table(void **state)
{
    size_t i;
    struct clw_metrics *m;
    char *body;
    int ready;

    (void)state;
    for (i = 0; i < sizeof(ready_cases) / sizeof(ready_cases[0]); i++) {
        const struct ready_case *c = &ready_cases[i];

        m = clw_metrics_new();
        assert_non_null(m);
        apply_ops(m, c->ops);
        body = NULL;
        ready = clw_metrics_ready(m, &body);
        assert_non_null(body);
        if (ready != c->ready || strcmp(body, c->body) != 0)
            fail_msg("case %s: got %d %s\nwant %d %s", c->name, ready, body, c->ready, c->body);
        free(body);
        clw_metrics_free(m);
    }
}

struct healthy_case {
    const char *name;
    int alive; /* 0: the loop never reported */
    int64_t beat_ms;
    int64_t now_ms;
    int want;
};

static const struct healthy_case healthy_cases[] = {
    {"never ran", 0, 0, 0, 0},           {"never ran, later", 0, 0, 50000, 0},
    {"just now", 1, 1000, 1000, 1},      {"beat at 0 counts", 1, 0, 5000, 1},
    {"exactly 10 s", 1, 1000, 11000, 1}, {"10 s + 1 ms", 1, 1000, 11001, 0},
    {"long ago", 1, 1000, 1000000, 0},   {"beat after now", 1, 5000, 4000, 1},
};

static void test_healthy_table(void **state)
{
    size_t i;
    struct clw_metrics *m;

    (void)state;
    for (i = 0; i < sizeof(healthy_cases) / sizeof(healthy_cases[0]); i++) {
        const struct healthy_case *c = &healthy_cases[i];

        m = clw_metrics_new();
        assert_non_null(m);
        if (c->alive)
            clw_metrics_loop_alive(m, c->beat_ms);
        if (clw_metrics_healthy(m, c->now_ms) != c->want)
            fail_msg("case %s: want %d", c->name, c->want);
        clw_metrics_free(m);
    }
}

static void test_pause_reason_names(void **state)
{
    (void)state;
    assert_string_equal(clw_pause_reason_name(CLW_PAUSE_WORKER_FAULT), "worker_fault");
    assert_string_equal(clw_pause_reason_name(CLW_PAUSE_CIRCUIT_OPEN), "circuit_open");
    assert_string_equal(clw_pause_reason_name(CLW_PAUSE_PUBLISH_ERROR), "publish_error");
}

/* Updates from one thread while another renders: counts are exact at the end and every
 * rendering in between is well-formed. */
#define HAMMER_N 20000

static void *hammer(void *arg)
{
    struct clw_metrics *m = arg;
    int i;

    char region[32];

    for (i = 0; i < HAMMER_N; i++) {
        clw_metrics_consumed(m);
        clw_metrics_api_call(m, "AttachClassicLinkVpc", "success", 0, 200, 0.001);
        if (i % 1000 == 0)
            clw_metrics_set_partition(m, i / 1000, i, i, i);
        /* new rate limiter series appear while the listener renders */
        snprintf(region, sizeof(region), "region-%d", i % 100);
        clw_metrics_ratelimit_answer(m, "AttachClassicLinkVpc", region, i % 7 == 0);
        if (i % 100 == 0)
            clw_metrics_ratelimit_state(m, "AttachClassicLinkVpc", region, i, 0.5);
    }
    return NULL;
}

static void test_concurrent_updates(void **state)
{
    struct clw_metrics *m = clw_metrics_new();
    pthread_t th;
    char *text;
    char bad[1024];
    char want[128];
    const char *why;
    int k;

    (void)state;
    assert_non_null(m);
    assert_int_equal(pthread_create(&th, NULL, hammer, m), 0);
    for (k = 0; k < 20; k++) {
        text = clw_metrics_render(m, NULL);
        assert_non_null(text);
        why = check_text(text, bad, sizeof(bad));
        if (why)
            fail_msg("render %d: %s: %s", k, why, bad);
        free(text);
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    text = clw_metrics_render(m, NULL);
    assert_non_null(text);
    snprintf(want, sizeof(want), "classiclink_records_consumed_total %d", HAMMER_N);
    assert_true(has_line(text, want));
    snprintf(want, sizeof(want),
             "classiclink_api_calls_total{action=\"AttachClassicLinkVpc\",class=\"success\","
             "code=\"0\"} %d",
             HAMMER_N);
    assert_true(has_line(text, want));
    snprintf(want, sizeof(want), "classiclink_api_call_duration_seconds_sum %d.%06d",
             HAMMER_N / 1000, 0);
    assert_true(has_line(text, want));
    assert_true(has_line(text, "classiclink_pending_records{partition=\"19\"} 19000"));
    free(text);
    clw_metrics_free(m);
}

/* At most CLW_METRICS_RATELIMIT_SERIES series: regions past the named ones fold into "other",
 * which every action can still get. */
static void test_ratelimit_series_bound(void **state)
{
    struct clw_metrics *m = clw_metrics_new();
    char region[32];
    char want[160];
    char *text;
    const char *p;
    int named = 0, lines = 0;

    (void)state;
    assert_non_null(m);
    for (int i = 0; i < 200; i++) {
        snprintf(region, sizeof(region), "region-%d", i);
        clw_metrics_ratelimit_answer(m, "AttachClassicLinkVpc", region, 0);
    }
    clw_metrics_ratelimit_answer(m, "DetachClassicLinkVpc", "region-0", 1);
    clw_metrics_ratelimit_answer(m, "DescribeVpcTaskResult", "region-1", 0);
    text = clw_metrics_render(m, NULL);
    assert_non_null(text);
    for (int i = 0; i < 200; i++) {
        snprintf(want, sizeof(want),
                 "classiclink_ratelimit_admitted_total{action=\"AttachClassicLinkVpc\","
                 "region=\"region-%d\"} 1",
                 i);
        named += has_line(text, want);
    }
    /* the named ones are the first to come; the rest are counted under "other" */
    assert_int_equal(named, CLW_METRICS_RATELIMIT_SERIES - 6);
    snprintf(want, sizeof(want),
             "classiclink_ratelimit_admitted_total{action=\"AttachClassicLinkVpc\","
             "region=\"other\"} %d",
             200 - named);
    assert_true(has_line(text, want));
    assert_true(has_line(text,
                         "classiclink_ratelimit_throttled_total{action=\"DetachClassicLinkVpc\","
                         "region=\"other\"} 1"));
    assert_true(has_line(text,
                         "classiclink_ratelimit_admitted_total{action=\"DescribeVpcTaskResult\","
                         "region=\"other\"} 1"));
    for (p = strstr(text, "\nclassiclink_ratelimit_admitted_total{"); p;
         p = strstr(p + 1, "\nclassiclink_ratelimit_admitted_total{"))
        lines++;
    assert_true(lines <= CLW_METRICS_RATELIMIT_SERIES);
    free(text);
    clw_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_table),          cmocka_unit_test(test_build_info),
        cmocka_unit_test(test_families_once),         cmocka_unit_test(test_label_escape_table),
        cmocka_unit_test(test_grammar_checker_table), cmocka_unit_test(test_ready_table),
        cmocka_unit_test(test_healthy_table),         cmocka_unit_test(test_pause_reason_names),
        cmocka_unit_test(test_concurrent_updates),    cmocka_unit_test(test_ratelimit_series_bound),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
