/* vpc-sim: the API pipeline (v2 parsing and checks; both versions: quota, faults, action,
 * answer, stats, call log). */
#include "sim_api.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sim_sign.h"

#define DEFAULT_LIMIT 20
#define MAX_LIMIT     50

#define QUOTA_KEY_MAX 1024
#define PATH_MAX_LEN  256

struct action_name {
    const char *name;
    enum clw_sim_action action;
};

static const struct action_name v2_actions[] = {
    {"AttachClassicLinkVpc", CLW_SIM_ACTION_ATTACH},
    {"DetachClassicLinkVpc", CLW_SIM_ACTION_DETACH},
    {"DescribeVpcClassicLink", CLW_SIM_ACTION_DESCRIBE_LINKS},
    {"DescribeVpcEx", CLW_SIM_ACTION_DESCRIBE_VPCS},
    {"DescribeVpcTaskResult", CLW_SIM_ACTION_TASK_RESULT},
};

static const struct action_name v3_actions[] = {
    {"AttachClassicLinkVpc", CLW_SIM_ACTION_ATTACH},
    {"DetachClassicLinkVpc", CLW_SIM_ACTION_DETACH},
    {"DescribeClassicLinkInstances", CLW_SIM_ACTION_DESCRIBE_LINKS},
};

int64_t clw_sim_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clw_sim_now_s(const struct clw_sim *sim)
{
    struct timespec ts;

    /* Not time(NULL): that reads the tick-updated coarse clock, which can still show the
     * previous second a few milliseconds after clients' clocks passed an ExpiredTime. */
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec + sim->settings.clock_skew_s;
}

/* ---- answers ---------------------------------------------------------------------------- */

void clw_sim_response_free(struct clw_sim_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}

void clw_sim_respond_text(struct clw_sim_response *resp, int status, const char *content_type,
                          const char *text)
{
    resp->disposition = CLW_SIM_ANSWER;
    resp->status = status;
    resp->content_type = content_type;
    resp->body = strdup(text);
    resp->body_len = resp->body != NULL ? strlen(resp->body) : 0;
}

void clw_sim_respond_json(struct clw_sim_response *resp, int status, cJSON *doc)
{
    resp->disposition = CLW_SIM_ANSWER;
    resp->status = status;
    resp->content_type = "application/json";
    resp->body = doc != NULL ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    if (resp->body == NULL) {
        clw_sim_respond_text(resp, 500, "text/plain", "out of memory\n");
        return;
    }
    resp->body_len = strlen(resp->body);
}

static const char *default_code_desc(int code)
{
    static const struct {
        int code;
        const char *desc;
    } descs[] = {
        {4000, "InvalidParameter"},
        {4100, "AuthFailure.SignatureFailure"},
        {4101, "UnauthorizedOperation"},
        {4104, "AuthFailure.SecretIdNotFound"},
        {4105, "AuthFailure.TokenFailure"},
        {4106, "AuthFailure.MFAFailure"},
        {4200, "RequestExpired"},
        {4300, "AccessDenied"},
        {4400, "RequestLimitExceeded"},
        {4500, "RequestReplayed"},
        {4600, "UnsupportedProtocol"},
        {5000, "ResourceNotFound"},
        {5100, "OperationFailed"},
        {5400, "PartialSuccess"},
        {6000, "InternalError"},
        {6100, "InvalidAction"},
        {6200, "ServiceUnavailable"},
    };

    for (size_t i = 0; i < sizeof(descs) / sizeof(descs[0]); i++) {
        if (descs[i].code == code)
            return descs[i].desc;
    }
    return "Error";
}

/* {"code":N,"message":"...","codeDesc":"..."} plus the reply's extra members. */
static void respond_reply(struct clw_sim_response *resp, struct clw_sim_reply *reply)
{
    cJSON *body = cJSON_CreateObject();

    cJSON_AddNumberToObject(body, "code", reply->code);
    cJSON_AddStringToObject(body, "message", reply->message);
    cJSON_AddStringToObject(body, "codeDesc", reply->code_desc);
    while (reply->code == 0 && reply->extra != NULL && reply->extra->child != NULL) {
        cJSON *item = cJSON_DetachItemViaPointer(reply->extra, reply->extra->child);

        cJSON_AddItemToObject(body, item->string, item);
    }
    clw_sim_respond_json(resp, 200, body);
}

static const char *http_reason(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 408:
        return "Request Timeout";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Error";
    }
}

/* HTTP status with a small HTML body, as a proxy or a failing front end answers. */
static void respond_http_status(struct clw_sim_response *resp, int status)
{
    char html[160];

    snprintf(html, sizeof(html), "<html><body><h1>%d %s</h1></body></html>\n", status,
             http_reason(status));
    clw_sim_respond_text(resp, status, "text/html", html);
}

bool clw_sim_respond_gone(const struct clw_sim_svcmode *mode, struct clw_sim_response *resp,
                          char *result, size_t resultsz)
{
    if (mode->kind != CLW_SIM_SVC_DROP && mode->kind != CLW_SIM_SVC_HTTP)
        return false;
    if (mode->kind == CLW_SIM_SVC_DROP)
        resp->disposition = CLW_SIM_CLOSE;
    else
        respond_http_status(resp, mode->status);
    clw_sim_svcmode_format(mode, result, resultsz);
    return true;
}

static void respond_fault(struct clw_sim *sim, const struct clw_sim_call *call,
                          struct clw_sim_response *resp)
{
    const struct clw_sim_fault *fault = &call->fault;
    bool throttled;

    switch (fault->kind) {
    case CLW_SIM_FAULT_CODE: {
        struct clw_sim_reply reply = {0};

        if (call->version == 3) {
            clw_sim_v3_respond_error(call->request_id, clw_sim_v3_fault_code(fault),
                                     "(vpc-sim) injected fault", resp);
        } else {
            clw_sim_reply_error(&reply, fault->code,
                                fault->code_desc[0] ? fault->code_desc
                                                    : default_code_desc(fault->code),
                                "(vpc-sim) injected fault");
            respond_reply(resp, &reply);
        }
        throttled = fault->code == 4400;
        break;
    }
    case CLW_SIM_FAULT_HTTP:
        respond_http_status(resp, fault->code);
        throttled = fault->code == 429 || fault->code == 503;
        break;
    case CLW_SIM_FAULT_HANG:
        resp->disposition = CLW_SIM_CLOSE;
        resp->delay_ms = sim->faults.hang_ms;
        return;
    default:
        resp->disposition = CLW_SIM_CLOSE;
        return;
    }
    if (fault->retry_after_s >= 0)
        resp->retry_after_s = fault->retry_after_s;
    else if (throttled)
        resp->retry_after_s = sim->faults.retry_after_s;
}

/* ---- parsing ---------------------------------------------------------------------------- */

/* A 4000 answer: code_desc is InvalidParameter or MissingParameter. */
static void fail_param(struct clw_sim_call *call, const char *code_desc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_param(struct clw_sim_call *call, const char *code_desc, const char *fmt, ...)
{
    va_list ap;

    call->reply.code = 4000;
    snprintf(call->reply.code_desc, sizeof(call->reply.code_desc), "%s", code_desc);
    va_start(ap, fmt);
    vsnprintf(call->reply.message, sizeof(call->reply.message), fmt, ap);
    va_end(ap);
}

bool clw_sim_parse_number(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (s == NULL || *s == '\0' || strlen(s) > 20)
        return false;
    for (; *s != '\0'; s++) {
        if (!isdigit((unsigned char)*s) || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

static bool content_type_is_form(const char *content_type)
{
    static const char form[] = "application/x-www-form-urlencoded";

    return content_type != NULL && strncasecmp(content_type, form, sizeof(form) - 1) == 0 &&
           (content_type[sizeof(form) - 1] == '\0' || content_type[sizeof(form) - 1] == ';' ||
            content_type[sizeof(form) - 1] == ' ');
}

static bool parse_request_params(const struct clw_sim_request *req, const char *query,
                                 struct clw_sim_call *call)
{
    enum clw_sim_params_err err = CLW_SIM_PARAMS_OK;

    if (query != NULL)
        err = clw_sim_params_parse(&call->params, query, strlen(query));
    if (err == CLW_SIM_PARAMS_OK && strcmp(req->method, "POST") == 0) {
        if (!content_type_is_form(req->content_type)) {
            fail_param(call, "InvalidParameter", "POST needs %s",
                       "Content-Type: application/x-www-form-urlencoded");
            return false;
        }
        err = clw_sim_params_parse(&call->params, req->body, req->body_len);
    }
    if (err != CLW_SIM_PARAMS_OK) {
        fail_param(call, "InvalidParameter", "%s", clw_sim_params_strerror(err));
        return false;
    }
    return true;
}

struct indexed_id {
    uint64_t index;
    const char *id;
};

static int by_index(const void *a, const void *b)
{
    const struct indexed_id *ia = a;
    const struct indexed_id *ib = b;

    return ia->index < ib->index ? -1 : ia->index > ib->index;
}

/* Collects instanceIds.N in N order; distinct, non-empty, at most max_instances. */
static bool parse_instance_ids(struct clw_sim_call *call, size_t max_instances)
{
    static const char prefix[] = "instanceIds.";
    struct indexed_id *found = calloc(call->params.count + 1, sizeof(*found));
    size_t n = 0;
    bool ok = false;

    call->ids = calloc(call->params.count + 1, sizeof(*call->ids));
    if (found == NULL || call->ids == NULL) {
        clw_sim_reply_error(&call->reply, 6000, "InternalError", "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < call->params.count; i++) {
        const struct clw_sim_param *prm = &call->params.items[i];

        if (strncmp(prm->name, prefix, sizeof(prefix) - 1) != 0)
            continue;
        if (!clw_sim_parse_number(prm->name + sizeof(prefix) - 1, UINT32_MAX, &found[n].index) ||
            prm->value[0] == '\0') {
            fail_param(call, "InvalidParameter", "bad parameter %s", prm->name);
            goto fail;
        }
        found[n++].id = prm->value;
    }
    if (n == 0) {
        fail_param(call, "MissingParameter", "missing parameter %s", "instanceIds.0");
        goto fail;
    }
    if (n > max_instances) {
        clw_sim_reply_error(&call->reply, 4000, "InvalidParameter",
                            "at most %zu instanceIds per call", max_instances);
        goto fail;
    }
    qsort(found, n, sizeof(*found), by_index);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(found[i].id, found[j].id) == 0) {
                fail_param(call, "InvalidParameter", "instance %s listed twice", found[i].id);
                goto fail;
            }
        }
        call->ids[i] = found[i].id;
    }
    call->nids = n;
    ok = true;

fail:
    free(found);
    return ok;
}

/* Reads an optional offset/limit pair into *offset / *limit. */
static bool parse_paging(struct clw_sim_call *call, size_t *offset, size_t *limit)
{
    const char *off = clw_sim_params_get(&call->params, "offset");
    const char *lim = clw_sim_params_get(&call->params, "limit");
    uint64_t v;

    *offset = 0;
    *limit = DEFAULT_LIMIT;
    if (off != NULL) {
        if (!clw_sim_parse_number(off, 1000000000, &v)) {
            fail_param(call, "InvalidParameter", "bad parameter %s", "offset");
            return false;
        }
        *offset = (size_t)v;
    }
    if (lim != NULL) {
        if (!clw_sim_parse_number(lim, MAX_LIMIT, &v) || v == 0) {
            fail_param(call, "InvalidParameter", "limit must be 1..%s", "50");
            return false;
        }
        *limit = (size_t)v;
    }
    return true;
}

static bool require_vpc(struct clw_sim_call *call)
{
    call->vpc_id = clw_sim_params_get(&call->params, "vpcId");
    if (call->vpc_id == NULL || call->vpc_id[0] == '\0') {
        fail_param(call, "MissingParameter", "missing parameter %s", "vpcId");
        return false;
    }
    return true;
}

/* The action's own parameters; on failure call->reply holds a 4000 error. */
static bool parse_action_args(struct clw_sim_call *call, size_t max_instances)
{
    const char *value;
    uint64_t task_id;

    switch (call->action) {
    case CLW_SIM_ACTION_ATTACH:
    case CLW_SIM_ACTION_DETACH:
        return require_vpc(call) && parse_instance_ids(call, max_instances);
    case CLW_SIM_ACTION_DESCRIBE_LINKS:
        call->links.vpc_id = clw_sim_params_get(&call->params, "vpcId");
        call->links.classic_link_id = clw_sim_params_get(&call->params, "classicLinkId");
        call->links.lan_ip = clw_sim_params_get(&call->params, "lanIp");
        value = clw_sim_params_get(&call->params, "orderDirection");
        call->links.descending = value != NULL && strcasecmp(value, "desc") == 0;
        return parse_paging(call, &call->links.offset, &call->links.limit);
    case CLW_SIM_ACTION_DESCRIBE_VPCS:
        call->vpcs.vpc_id = clw_sim_params_get(&call->params, "vpcId");
        call->vpcs.vpc_name = clw_sim_params_get(&call->params, "vpcName");
        return parse_paging(call, &call->vpcs.offset, &call->vpcs.limit);
    case CLW_SIM_ACTION_TASK_RESULT:
        value = clw_sim_params_get(&call->params, "taskId");
        if (value == NULL) {
            fail_param(call, "MissingParameter", "missing parameter %s", "taskId");
            return false;
        }
        if (!clw_sim_parse_number(value, INT64_MAX, &task_id)) {
            fail_param(call, "InvalidParameter", "bad parameter %s", "taskId");
            return false;
        }
        call->task_id = task_id;
        return true;
    case CLW_SIM_ACTION_UNKNOWN:
        break;
    }
    return false;
}

/* ---- authentication --------------------------------------------------------------------- */

static const char *const required_common[] = {
    "Action", "Region", "SecretId", "Timestamp", "Nonce", "Signature",
};

void clw_sim_signing_host(const struct clw_sim *sim, const char *host, char *out, size_t outsz)
{
    const char *end;

    if (sim->sign_host != NULL || host == NULL) {
        snprintf(out, outsz, "%s", sim->sign_host != NULL ? sim->sign_host : "");
        return;
    }
    if (host[0] == '[') {
        end = strchr(host, ']');
        end = end != NULL ? end + 1 : host + strlen(host);
    } else {
        end = strchr(host, ':');
        end = end != NULL ? end : host + strlen(host);
    }
    snprintf(out, outsz, "%.*s", (int)(end - host), host);
}

bool clw_sim_principal_find(struct clw_sim *sim, const char *secret_id,
                            struct clw_sim_principal *who)
{
    int idx = clw_sim_creds_find(&sim->creds, secret_id);
    const struct clw_sim_tmpcred *tmp;
    bool found = false;

    memset(who, 0, sizeof(*who));
    if (idx >= 0) {
        who->secret_key = sim->creds.items[idx].secret_key;
        who->token = sim->creds.items[idx].token;
        who->id = (uint32_t)idx;
        snprintf(who->account, sizeof(who->account), "#%d", idx);
        return true;
    }
    pthread_mutex_lock(&sim->lock);
    tmp = clw_sim_tmpcreds_find(&sim->tmpcreds, secret_id);
    if (tmp != NULL) {
        memcpy(who->key_buf, tmp->secret_key, sizeof(who->key_buf));
        memcpy(who->token_buf, tmp->token, sizeof(who->token_buf));
        memcpy(who->account, tmp->account, sizeof(who->account));
        who->secret_key = who->key_buf;
        who->token = who->token_buf;
        who->id = (uint32_t)sim->creds.count + tmp->serial;
        who->expires = tmp->expires;
        found = true;
    }
    pthread_mutex_unlock(&sim->lock);
    return found;
}

/* Checks presence, SecretId, signature and token without the lock held (but for the lookup of
 * a temporary SecretId). Returns true with call->who filled, or false with call->reply set. */
static bool authenticate(struct clw_sim *sim, const struct clw_sim_request *req,
                         struct clw_sim_call *call)
{
    const char *secret_id;
    const char *token;
    char host[256];

    for (size_t i = 0; i < sizeof(required_common) / sizeof(required_common[0]); i++) {
        const char *value = clw_sim_params_get(&call->params, required_common[i]);

        if (value == NULL || value[0] == '\0') {
            fail_param(call, "MissingParameter", "missing parameter %s", required_common[i]);
            return false;
        }
    }
    secret_id = clw_sim_params_get(&call->params, "SecretId");
    if (!clw_sim_principal_find(sim, secret_id, &call->who)) {
        clw_sim_reply_error(&call->reply, 4104, "AuthFailure.SecretIdNotFound",
                            "SecretId not found");
        return false;
    }
    clw_sim_signing_host(sim, req->host, host, sizeof(host));
    if (!clw_sim_sign_verify(req->method, host, CLW_SIM_API_PATH, &call->params,
                             call->who.secret_key)) {
        clw_sim_reply_error(&call->reply, 4100, "AuthFailure.SignatureFailure",
                            "signature verification failed");
        return false;
    }
    token = clw_sim_params_get(&call->params, "Token");
    if (call->who.token != NULL && (token == NULL || strcmp(token, call->who.token) != 0)) {
        clw_sim_reply_error(&call->reply, 4105, "AuthFailure.TokenFailure", "token invalid");
        return false;
    }
    return true;
}

/* Timestamp window and Nonce reuse. Caller holds the lock. */
static bool check_replay(struct clw_sim *sim, struct clw_sim_call *call)
{
    int64_t now = clw_sim_now_s(sim);
    int64_t window = sim->settings.window_s;
    uint64_t ts;
    uint64_t nonce;

    if (!clw_sim_parse_number(clw_sim_params_get(&call->params, "Timestamp"), INT64_MAX / 2, &ts)) {
        fail_param(call, "InvalidParameter", "bad parameter %s", "Timestamp");
        return false;
    }
    if (!clw_sim_parse_number(clw_sim_params_get(&call->params, "Nonce"), UINT64_MAX, &nonce) ||
        nonce == 0) {
        fail_param(call, "InvalidParameter", "bad parameter %s (a positive integer)", "Nonce");
        return false;
    }
    if ((int64_t)ts < now - window || (int64_t)ts > now + window) {
        clw_sim_reply_error(&call->reply, 4500, "InvalidTimestamp",
                            "Timestamp %" PRIu64 " is more than %" PRId64
                            " s from server time %" PRId64,
                            ts, window, now);
        return false;
    }
    if (!clw_sim_nonces_use(&sim->nonces, call->who.id, nonce, now,
                            ((int64_t)ts > now ? (int64_t)ts : now) + window)) {
        clw_sim_reply_error(&call->reply, 4500, "InvalidNonce",
                            "Nonce %" PRIu64 " already used within %" PRId64 " s", nonce, window);
        return false;
    }
    return true;
}

/* ---- the call --------------------------------------------------------------------------- */

static void run_action(struct clw_sim *sim, struct clw_sim_call *call, bool task_fail)
{
    const char *region = call->region;
    const struct clw_sim_rules *rules = &sim->settings.rules;
    int64_t now_ms = clw_sim_now_ms();

    switch (call->action) {
    case CLW_SIM_ACTION_ATTACH:
        clw_sim_state_attach(&sim->state, rules, region, call->vpc_id, call->ids, call->nids,
                             task_fail, now_ms, &call->reply);
        break;
    case CLW_SIM_ACTION_DETACH:
        clw_sim_state_detach(&sim->state, rules, region, call->vpc_id, call->ids, call->nids,
                             task_fail, now_ms, &call->reply);
        break;
    case CLW_SIM_ACTION_DESCRIBE_LINKS:
        clw_sim_state_describe_links(&sim->state, region, &call->links, &call->reply);
        break;
    case CLW_SIM_ACTION_DESCRIBE_VPCS:
        clw_sim_state_describe_vpcs(&sim->state, region, &call->vpcs, &call->reply);
        break;
    case CLW_SIM_ACTION_TASK_RESULT:
        clw_sim_state_task_result(&sim->state, rules, call->task_id, now_ms, &call->reply);
        break;
    case CLW_SIM_ACTION_UNKNOWN:
        break;
    }
}

static int64_t monotonic_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The quota: true when the call may go on; otherwise the reply is 4400 RequestLimitExceeded.
 * The key is the account and the action (and the region with quota_per_region). Counts
 * accepted and refused calls, per second and per action. Caller holds the lock. */
static bool admit(struct clw_sim *sim, struct clw_sim_call *call)
{
    uint32_t limit = sim->settings.quota;
    bool per_region = sim->settings.quota_per_region;
    bool ok = true;
    char key[QUOTA_KEY_MAX];

    if (limit > 0) {
        if (per_region)
            snprintf(key, sizeof(key), "%s\n%s\n%s", call->who.account,
                     clw_sim_region_canonical(call->region), call->action_name);
        else
            snprintf(key, sizeof(key), "%s\n%s", call->who.account, call->action_name);
        ok = clw_sim_quota_admit(&sim->quota, key, limit, sim->settings.quota_reserve,
                                 monotonic_us());
    }
    clw_sim_stats_admission(&sim->stats, call->action_name, ok, (int64_t)time(NULL));
    if (!ok) {
        call->throttled = true;
        clw_sim_reply_error(&call->reply, 4400, "RequestLimitExceeded",
                            "(vpc-sim) quota of %u calls per second for this account%s and "
                            "action exceeded",
                            limit, per_region ? ", region" : "");
    }
    return ok;
}

/* Faults that answer instead of the action (task_fail and business faults do not). */
static bool fault_answers(const struct clw_sim_fault *fault)
{
    return fault->kind != CLW_SIM_FAULT_NONE && fault->kind != CLW_SIM_FAULT_TASK_FAIL &&
           fault->kind != CLW_SIM_FAULT_BUSINESS;
}

/* A scripted business error: what the action's own check would answer about the scripted
 * instance, which the message names (InstanceLimitExceeded names none). Nothing changes. */
static void business_fault(const struct clw_sim *sim, struct clw_sim_call *call)
{
    const char *code = call->fault.code_desc;
    const char *id = call->fault.instance_id;
    int num = sim->settings.rules.business_code;

    if (strcmp(code, "InvalidInstance.NotFound") == 0)
        clw_sim_reply_error(&call->reply, num, code, "instance %s not found in region %s", id,
                            call->region);
    else if (strcmp(code, "InstanceAlreadyLinked") == 0)
        clw_sim_reply_error(&call->reply, num, code, "instance %s is already linked to a VPC", id);
    else if (strcmp(code, "InstanceLimitExceeded") == 0)
        clw_sim_reply_error(&call->reply, num, code, "region %s allows no more classic links",
                            call->region);
    else
        clw_sim_reply_error(&call->reply, num, code, "VPC %s not found in region %s", call->vpc_id,
                            call->region);
}

/* A temporary credential used at or after its expiry is refused with the configured code.
 * Caller holds the lock. */
static bool expired(struct clw_sim *sim, struct clw_sim_call *call)
{
    char when[32];

    if (call->who.expires == 0 || clw_sim_now_s(sim) < call->who.expires)
        return false;
    sim->stats.rejected_expired++;
    clw_sim_rfc3339(call->who.expires, when, sizeof(when));
    if (sim->settings.expired_code == CLW_SIM_EXPIRED_SECRET_ID_UNKNOWN)
        clw_sim_reply_error(&call->reply, 4104, "AuthFailure.SecretIdNotFound",
                            "SecretId not found (a temporary credential that expired at %s)", when);
    else
        clw_sim_reply_error(&call->reply, 4105, "AuthFailure.TokenFailure",
                            "token invalid: the temporary credential expired at %s", when);
    return true;
}

/* Decides and runs the call once authenticated: replay window, action, its parameters, quota,
 * faults, then the action itself. Caller holds the lock. */
static void process(struct clw_sim *sim, struct clw_sim_call *call)
{
    bool fresh = call->version == 3 ? clw_sim_v3_check_time(sim, call) : check_replay(sim, call);

    if (!fresh)
        return;
    if (call->action == CLW_SIM_ACTION_UNKNOWN) {
        if (call->version == 3)
            clw_sim_reply_error(&call->reply, 6100, "InvalidAction",
                                "action %s of version %s not supported", call->action_name,
                                call->api_version);
        else
            clw_sim_reply_error(&call->reply, 6100, "InvalidAction", "action %s not supported",
                                call->action_name);
        return;
    }
    if (call->version == 3 ? !clw_sim_v3_parse_args(call, sim->settings.max_instances)
                           : !parse_action_args(call, sim->settings.max_instances))
        return;
    if (!admit(sim, call))
        return;
    clw_sim_faults_pick(&sim->faults, call->action_name, call->ids, call->nids, &call->fault);
    if (call->fault.kind == CLW_SIM_FAULT_BUSINESS)
        business_fault(sim, call);
    else if (!fault_answers(&call->fault) || call->fault.apply)
        run_action(sim, call, call->fault.kind == CLW_SIM_FAULT_TASK_FAIL);
}

static const char *result_key(const struct clw_sim_call *call, const struct clw_sim_response *resp,
                              char *buf, size_t bufsz)
{
    if (resp->disposition == CLW_SIM_CLOSE)
        return call->fault.kind == CLW_SIM_FAULT_HANG ? "hang" : "drop";
    if (resp->status != 200)
        snprintf(buf, bufsz, "http:%d", resp->status);
    else if (call->fault.kind == CLW_SIM_FAULT_CODE && call->version == 3)
        snprintf(buf, bufsz, "%s", clw_sim_v3_fault_code(&call->fault));
    else if (call->fault.kind == CLW_SIM_FAULT_CODE)
        snprintf(buf, bufsz, "%d", call->fault.code);
    else if (call->version == 3 && call->reply.code != 0)
        snprintf(buf, bufsz, "%s", call->reply.code_desc);
    else
        snprintf(buf, bufsz, "%d", call->reply.code);
    return buf;
}

static void count_call(struct clw_sim *sim, const struct clw_sim_call *call,
                       const struct clw_sim_response *resp)
{
    struct clw_sim_stats *stats = &sim->stats;
    char buf[96];

    stats->calls++;
    stats->by_version[call->version]++;
    clw_sim_counter_add(&stats->by_action,
                        call->action != CLW_SIM_ACTION_UNKNOWN ? call->action_name
                        : call->action_name != NULL            ? "(other)"
                                                               : "(none)",
                        1);
    clw_sim_counter_add(&stats->by_result, result_key(call, resp, buf, sizeof(buf)), 1);
    if (call->fault.kind != CLW_SIM_FAULT_NONE) {
        clw_sim_fault_format(&call->fault, buf, sizeof(buf));
        clw_sim_counter_add(&stats->by_fault, buf, 1);
    }
    for (size_t i = 0; i < call->nids; i++) {
        clw_sim_counter_add(&stats->calls_per_instance, call->ids[i], 1);
        if (call->reply.applied)
            clw_sim_counter_add(call->action == CLW_SIM_ACTION_ATTACH
                                    ? &stats->attached_per_instance
                                    : &stats->detached_per_instance,
                                call->ids[i], 1);
    }
}

/* The members only a v2 or only a v3 entry has. */
static void log_version_fields(const struct clw_sim_call *call, const struct clw_sim_response *resp,
                               cJSON *entry)
{
    const struct clw_sim_fault *f = &call->fault;
    bool answered = resp->disposition == CLW_SIM_ANSWER && resp->status == 200;
    bool by_fault = f->kind == CLW_SIM_FAULT_CODE;

    if (call->version == 3) {
        if (call->body != NULL)
            cJSON_AddItemToObject(entry, "body", cJSON_Duplicate(call->body, true));
        else
            cJSON_AddNullToObject(entry, "body");
        if (answered && (by_fault || call->reply.code != 0))
            cJSON_AddStringToObject(entry, "errorCode",
                                    by_fault ? clw_sim_v3_fault_code(f) : call->reply.code_desc);
        else
            cJSON_AddNullToObject(entry, "errorCode");
        cJSON_AddStringToObject(entry, "requestId", call->request_id);
        return;
    }
    if (answered) {
        cJSON_AddNumberToObject(entry, "code", by_fault ? f->code : call->reply.code);
        cJSON_AddStringToObject(entry, "codeDesc",
                                by_fault
                                    ? (f->code_desc[0] ? f->code_desc : default_code_desc(f->code))
                                    : call->reply.code_desc);
    }
}

static void log_call(struct clw_sim *sim, const char *method, const struct clw_sim_call *call,
                     const struct clw_sim_response *resp)
{
    cJSON *entry;
    cJSON *params;
    char buf[96];

    if (sim->log.fd < 0)
        return;
    entry = cJSON_CreateObject();
    clw_sim_log_timestamp(buf, sizeof(buf));
    cJSON_AddStringToObject(entry, "ts", buf);
    cJSON_AddNumberToObject(entry, "version", call->version);
    cJSON_AddStringToObject(entry, "method", method);
    if (call->action_name != NULL)
        cJSON_AddStringToObject(entry, "action", call->action_name);
    else
        cJSON_AddNullToObject(entry, "action");
    params = cJSON_AddObjectToObject(entry, "params");
    for (size_t i = 0; params != NULL && i < call->params.count; i++) {
        const struct clw_sim_param *prm = &call->params.items[i];

        /* Never the signature or the token; the key id only as a placeholder. */
        if (strcmp(prm->name, "Signature") == 0 || strcmp(prm->name, "Token") == 0)
            continue;
        cJSON_AddStringToObject(params, prm->name,
                                strcmp(prm->name, "SecretId") == 0 ? "[redacted]" : prm->value);
    }
    cJSON_AddBoolToObject(entry, "authenticated", call->authenticated);
    if (resp->disposition == CLW_SIM_ANSWER) {
        cJSON_AddNumberToObject(entry, "httpStatus", resp->status);
    } else {
        cJSON_AddNullToObject(entry, "httpStatus");
    }
    cJSON_AddStringToObject(entry, "result", result_key(call, resp, buf, sizeof(buf)));
    log_version_fields(call, resp, entry);
    if (call->fault.kind != CLW_SIM_FAULT_NONE) {
        clw_sim_fault_format(&call->fault, buf, sizeof(buf));
        cJSON_AddStringToObject(entry, "fault", buf);
    } else {
        cJSON_AddNullToObject(entry, "fault");
    }
    cJSON_AddBoolToObject(entry, "applied", call->reply.applied);
    cJSON_AddBoolToObject(entry, "throttled", call->throttled);
    if (call->reply.task_id != 0)
        cJSON_AddNumberToObject(entry, "taskId", (double)call->reply.task_id);
    cJSON_AddNumberToObject(entry, "delayMs", resp->delay_ms);
    clw_sim_log_write(&sim->log, entry);
    cJSON_Delete(entry);
}

static enum clw_sim_action find_action(const struct action_name *table, size_t n, const char *name)
{
    for (size_t i = 0; name != NULL && i < n; i++) {
        if (strcmp(table[i].name, name) == 0)
            return table[i].action;
    }
    return CLW_SIM_ACTION_UNKNOWN;
}

/* The checks made without the lock: v2 parameters and signature, or the v3 headers, signature
 * and body. Returns true with call->who filled, or false with call->reply set. */
static bool authenticate_call(struct clw_sim *sim, const struct clw_sim_request *req,
                              const char *query, struct clw_sim_call *call)
{
    bool ok;

    if (call->version == 3) {
        ok = clw_sim_v3_authenticate(sim, req, call);
        /* An action is only known together with the version it belongs to. */
        if (call->api_version != NULL && strcmp(call->api_version, CLW_SIM_V3_VERSION) == 0)
            call->action = find_action(v3_actions, sizeof(v3_actions) / sizeof(v3_actions[0]),
                                       call->action_name);
        return ok;
    }
    if (!parse_request_params(req, query, call))
        return false;
    call->action_name = clw_sim_params_get(&call->params, "Action");
    call->action =
        find_action(v2_actions, sizeof(v2_actions) / sizeof(v2_actions[0]), call->action_name);
    call->region = clw_sim_params_get(&call->params, "Region");
    return authenticate(sim, req, call);
}

static void handle_api(struct clw_sim *sim, const struct clw_sim_request *req, int version,
                       const char *query, struct clw_sim_response *resp)
{
    struct clw_sim_call call;
    bool known;
    uint32_t latency;

    memset(&call, 0, sizeof(call));
    call.version = version;
    known = authenticate_call(sim, req, query, &call);

    pthread_mutex_lock(&sim->lock);
    if (known && !expired(sim, &call)) {
        call.authenticated = true;
        process(sim, &call);
    }
    if (version == 3) {
        clw_sim_v3_translate(&call);
        clw_sim_v3_request_id(++sim->request_seq, sim->rng_seed, call.request_id);
    }
    if (fault_answers(&call.fault))
        respond_fault(sim, &call, resp);
    else if (version == 3)
        clw_sim_v3_respond(&call, resp);
    else
        respond_reply(resp, &call.reply);
    if (call.throttled && sim->faults.retry_after_s > 0)
        resp->retry_after_s = sim->faults.retry_after_s;
    latency = clw_sim_faults_latency(&sim->faults);
    resp->delay_ms += latency;
    count_call(sim, &call, resp);
    pthread_mutex_unlock(&sim->lock);

    log_call(sim, req->method, &call, resp);
    cJSON_Delete(call.reply.extra);
    free(call.ids);
    clw_sim_v3_call_free(&call);
    clw_sim_params_free(&call.params);
    clw_sim_sign_wipe(&call.who, sizeof(call.who));
}

/* An API 3.0 request for STS rather than the VPC API. */
static bool is_sts_call(const struct clw_sim_request *req)
{
    const char *action = req->header != NULL ? req->header(req->header_ctx, "X-TC-Action") : NULL;

    return action != NULL && strcmp(action, CLW_SIM_STS_ACTION) == 0;
}

void clw_sim_handle(struct clw_sim *sim, const struct clw_sim_request *req,
                    struct clw_sim_response *resp)
{
    const char *q = strchr(req->target, '?');
    size_t path_len = q != NULL ? (size_t)(q - req->target) : strlen(req->target);
    char path[PATH_MAX_LEN];

    memset(resp, 0, sizeof(*resp));
    if (path_len >= sizeof(path)) {
        clw_sim_respond_text(resp, 404, "text/plain", "not found\n");
        return;
    }
    memcpy(path, req->target, path_len);
    path[path_len] = '\0';
    if (strcmp(path, CLW_SIM_API_PATH) == 0) {
        if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "POST") != 0) {
            clw_sim_respond_text(resp, 405, "text/plain", "method not allowed\n");
            return;
        }
        handle_api(sim, req, 2, q != NULL ? q + 1 : NULL, resp);
    } else if (strcmp(path, CLW_SIM_V3_PATH) == 0) {
        if (strcmp(req->method, "POST") != 0) {
            clw_sim_respond_text(resp, 405, "text/plain", "API 3.0: POST only\n");
            return;
        }
        if (is_sts_call(req))
            clw_sim_sts_handle(sim, req, resp);
        else
            handle_api(sim, req, 3, NULL, resp);
    } else if (strncmp(path, CLW_SIM_METADATA_PATH, strlen(CLW_SIM_METADATA_PATH)) == 0) {
        clw_sim_metadata_handle(sim, req, path, resp);
    } else if (sim->admin && strncmp(path, CLW_SIM_ADMIN_PATH, strlen(CLW_SIM_ADMIN_PATH)) == 0) {
        clw_sim_admin_handle(sim, req, path, resp);
    } else {
        clw_sim_respond_text(resp, 404, "text/plain", "not found\n");
    }
}

/* ---- life cycle ------------------------------------------------------------------------- */

int clw_sim_init(struct clw_sim *sim, struct clw_sim_options *opts, char *err, size_t errsz)
{
    int rc = -1;

    memset(sim, 0, sizeof(*sim));
    sim->log.fd = -1;
    pthread_mutex_init(&sim->lock, NULL);
    sim->sign_host = opts->sign_host;
    sim->admin = opts->admin;
    sim->settings = opts->settings;
    sim->initial_settings = opts->settings;
    sim->rng_seed = opts->rng_seed;
    sim->seed = opts->seed;
    sim->initial_faults = opts->faults;
    opts->seed = NULL;
    opts->faults = NULL;
    clw_sim_faults_init(&sim->faults, sim->rng_seed);

    if (clw_sim_creds_load(&sim->creds, opts->credentials_path, err, errsz) != 0)
        goto fail;
    if (clw_sim_state_load(&sim->state, sim->seed, 100000, err, errsz) != 0)
        goto fail;
    if (sim->initial_faults != NULL &&
        clw_sim_faults_apply_json(&sim->faults, sim->initial_faults, err, errsz) != 0)
        goto fail;
    if (opts->call_log_path != NULL && clw_sim_log_open(&sim->log, opts->call_log_path) != 0) {
        snprintf(err, errsz, "%s: cannot open call log", opts->call_log_path);
        goto fail;
    }
    rc = 0;

fail:
    return rc;
}

void clw_sim_free(struct clw_sim *sim)
{
    clw_sim_log_close(&sim->log);
    clw_sim_creds_free(&sim->creds);
    clw_sim_nonces_free(&sim->nonces);
    clw_sim_state_free(&sim->state);
    clw_sim_faults_free(&sim->faults);
    clw_sim_stats_free(&sim->stats);
    clw_sim_quota_free(&sim->quota);
    clw_sim_tmpcreds_free(&sim->tmpcreds);
    cJSON_Delete(sim->seed);
    cJSON_Delete(sim->initial_faults);
    pthread_mutex_destroy(&sim->lock);
    sim->seed = NULL;
    sim->initial_faults = NULL;
}
