/* vpc-sim: STS AssumeRoleWithWebIdentity, trading an OIDC token for temporary credentials. */
#include "sim_api.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "sim_sign.h"

#define TOKEN_FILE_MAX   ((size_t)64 * 1024)
#define DURATION_DEFAULT 7200
#define DURATION_MAX     43200
#define SESSION_MIN      2
#define SESSION_MAX      128
#define NOT_JSON_HTML    "<html><body>sts service busy</body></html>\n"

/* One AssumeRoleWithWebIdentity call from its headers to the call log. */
struct sts_call {
    struct clw_sim_settings set; /* the settings when the call came in */
    char request_id[40];
    cJSON *body;                 /* NULL when absent or not JSON */
    char code[CLW_SIM_CODE_MAX]; /* the error Code; empty while the call is good */
    char message[256];
    const char *provider_id; /* borrowed from body */
    const char *token;
    const char *role_arn;
    const char *session_name;
    int64_t duration_s;
};

static void fail(struct sts_call *call, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct sts_call *call, const char *code, const char *fmt, ...)
{
    va_list ap;

    snprintf(call->code, sizeof(call->code), "%s", code);
    va_start(ap, fmt);
    vsnprintf(call->message, sizeof(call->message), fmt, ap);
    va_end(ap);
}

bool clw_sim_oidc_value_ok(const char *value)
{
    size_t n = strlen(value);

    if (n == 0 || n >= CLW_SIM_OIDC_MAX)
        return false;
    for (const char *c = value; *c != '\0'; c++) {
        if (!isgraph((unsigned char)*c))
            return false;
    }
    return true;
}

bool clw_sim_error_code_ok(const char *code)
{
    size_t n = strlen(code);

    if (n == 0 || n >= CLW_SIM_CODE_MAX || !isalpha((unsigned char)code[0]))
        return false;
    for (const char *c = code; *c != '\0'; c++) {
        if (!isalnum((unsigned char)*c) && *c != '.')
            return false;
    }
    return true;
}

static const char *header(const struct clw_sim_request *req, const char *name)
{
    return req->header != NULL ? req->header(req->header_ctx, name) : NULL;
}

/* The headers the official SDKs send when they skip the signature. */
static bool check_headers(const struct clw_sim_request *req, struct sts_call *call)
{
    static const char json[] = "application/json";
    const char *version = header(req, "X-TC-Version");
    const char *auth = header(req, "Authorization");
    const char *type = req->content_type;

    if (version == NULL || version[0] == '\0') {
        fail(call, "MissingParameter", "missing header %s", "X-TC-Version");
        return false;
    }
    if (auth == NULL || auth[0] == '\0') {
        fail(call, "MissingParameter", "missing header %s", "Authorization");
        return false;
    }
    if (type == NULL || strncasecmp(type, json, sizeof(json) - 1) != 0 ||
        (type[sizeof(json) - 1] != '\0' && type[sizeof(json) - 1] != ';' &&
         type[sizeof(json) - 1] != ' ')) {
        fail(call, "InvalidParameter", "Content-Type must be application/json");
        return false;
    }
    if (strcmp(auth, "SKIP") != 0) {
        fail(call, "AuthFailure.InvalidAuthorization",
             CLW_SIM_STS_ACTION " is not signed: send Authorization: SKIP");
        return false;
    }
    if (strcmp(version, CLW_SIM_STS_VERSION) != 0) {
        fail(call, "InvalidAction", "action " CLW_SIM_STS_ACTION " of version %.32s not supported",
             version);
        return false;
    }
    return true;
}

/* A required string member of the body. */
static bool body_string(struct sts_call *call, const char *name, const char **out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(call->body, name);

    if (item == NULL || (cJSON_IsString(item) && item->valuestring[0] == '\0')) {
        fail(call, "MissingParameter", "missing parameter %s", name);
        return false;
    }
    if (!cJSON_IsString(item)) {
        fail(call, "InvalidParameter", "%s must be a string", name);
        return false;
    }
    *out = item->valuestring;
    return true;
}

/* RoleSessionName: SESSION_MIN..SESSION_MAX of letters, digits and +=,.@_- */
static bool session_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n < SESSION_MIN || n > SESSION_MAX)
        return false;
    for (const char *c = name; *c != '\0'; c++) {
        if (!isalnum((unsigned char)*c) && strchr("+=,.@_-", *c) == NULL)
            return false;
    }
    return true;
}

static bool parse_body(const struct clw_sim_request *req, struct sts_call *call)
{
    static const char *const fields[] = {"ProviderId", "WebIdentityToken", "RoleArn",
                                         "RoleSessionName", "DurationSeconds"};
    const cJSON *item;
    const cJSON *duration;

    call->body = req->body_len > 0 ? cJSON_ParseWithLength(req->body, req->body_len) : NULL;
    if (!cJSON_IsObject(call->body)) {
        fail(call, "InvalidParameter", "the body must be a JSON object");
        return false;
    }
    cJSON_ArrayForEach(item, call->body)
    {
        bool known = false;

        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]) && !known; i++)
            known = strcmp(item->string, fields[i]) == 0;
        if (!known) {
            fail(call, "UnknownParameter", "unknown parameter %.64s", item->string);
            return false;
        }
    }
    if (!body_string(call, "ProviderId", &call->provider_id) ||
        !body_string(call, "WebIdentityToken", &call->token) ||
        !body_string(call, "RoleArn", &call->role_arn) ||
        !body_string(call, "RoleSessionName", &call->session_name))
        return false;
    if (!session_name_ok(call->session_name)) {
        fail(call, "InvalidParameter.ParamError",
             "RoleSessionName must be %d..%d of letters, digits and +=,.@_-", SESSION_MIN,
             SESSION_MAX);
        return false;
    }
    duration = cJSON_GetObjectItemCaseSensitive(call->body, "DurationSeconds");
    call->duration_s = DURATION_DEFAULT;
    if (duration != NULL) {
        if (!cJSON_IsNumber(duration) || duration->valuedouble < 1 ||
            duration->valuedouble > DURATION_MAX ||
            duration->valuedouble != (double)(int64_t)duration->valuedouble) {
            fail(call, "InvalidParameter.ParamError",
                 "DurationSeconds must be a whole number in [1, %d]", DURATION_MAX);
            return false;
        }
        call->duration_s = (int64_t)duration->valuedouble;
    }
    return true;
}

/* len bytes without the blanks and line ends at their end. */
static size_t trimmed_len(const char *s, size_t len)
{
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    return len;
}

/* The token file's content, read now (so a test can rotate it), against WebIdentityToken;
 * trailing blanks and line ends of either do not count. */
static bool token_matches(const char *path, const char *token)
{
    FILE *fp = path[0] != '\0' ? fopen(path, "rb") : NULL;
    char *buf;
    size_t len;
    size_t want = trimmed_len(token, strlen(token));
    bool ok = false;

    if (fp == NULL)
        return false;
    buf = malloc(TOKEN_FILE_MAX + 1);
    if (buf != NULL) {
        len = fread(buf, 1, TOKEN_FILE_MAX + 1, fp);
        if (!ferror(fp) && len <= TOKEN_FILE_MAX) {
            len = trimmed_len(buf, len);
            ok = len > 0 && len == want && CRYPTO_memcmp(buf, token, len) == 0;
        }
        clw_sim_sign_wipe(buf, TOKEN_FILE_MAX + 1);
        free(buf);
    }
    fclose(fp);
    return ok;
}

/* Everything but the issue, without the lock: headers, body, provider, token, role. */
static void check(const struct clw_sim_request *req, struct sts_call *call)
{
    const struct clw_sim_settings *set = &call->set;

    if (!check_headers(req, call) || !parse_body(req, call))
        return;
    if (set->oidc_provider_id[0] == '\0' || strcmp(call->provider_id, set->oidc_provider_id) != 0)
        fail(call, set->sts_provider_error, "OIDC provider %.64s not found", call->provider_id);
    else if (!token_matches(set->oidc_token_file, call->token))
        fail(call, "InvalidParameter.WebIdentityTokenError", "WebIdentityToken is invalid");
    else if (set->oidc_role_arn[0] == '\0' || strcmp(call->role_arn, set->oidc_role_arn) != 0)
        fail(call, set->sts_role_error, "role %.128s cannot be assumed with this provider",
             call->role_arn);
}

/* The answer of a good call: fresh credentials, or the malformed document the mode asks for.
 * Returns the stats key. Caller holds the lock. */
static const char *respond_credentials(struct clw_sim *sim, struct sts_call *call,
                                       struct clw_sim_response *resp)
{
    const struct clw_sim_settings *set = &call->set;
    int64_t life = call->duration_s < set->temp_life_s ? call->duration_s : set->temp_life_s;
    int64_t expires = clw_sim_now_s(sim) + life;
    const struct clw_sim_tmpcred *cred = NULL;
    char account[CLW_SIM_ACCOUNT_MAX];
    char expiration[32];
    cJSON *root;
    cJSON *response;

    if (set->sts.kind == CLW_SIM_SVC_NOT_JSON) {
        clw_sim_respond_text(resp, 200, "text/html", NOT_JSON_HTML);
        return "not-json";
    }
    if (set->sts.kind != CLW_SIM_SVC_MISSING_FIELDS) {
        snprintf(account, sizeof(account), "oidc-role/%s", call->role_arn);
        cred = clw_sim_tmpcreds_issue(&sim->tmpcreds, CLW_SIM_TMP_STS, account, clw_sim_now_s(sim),
                                      life);
        if (cred == NULL) {
            fail(call, "InternalError.SystemError", "cannot issue a credential");
            clw_sim_v3_respond_error(call->request_id, call->code, call->message, resp);
            return call->code;
        }
        expires = cred->expires;
        sim->stats.issued_sts++;
    }
    clw_sim_rfc3339(expires, expiration, sizeof(expiration));
    root = cJSON_CreateObject();
    response = cJSON_AddObjectToObject(root, "Response");
    if (cred != NULL) {
        cJSON *creds = cJSON_AddObjectToObject(response, "Credentials");

        cJSON_AddStringToObject(creds, "Token", cred->token);
        cJSON_AddStringToObject(creds, "TmpSecretId", cred->secret_id);
        cJSON_AddStringToObject(creds, "TmpSecretKey", cred->secret_key);
    }
    cJSON_AddNumberToObject(response, "ExpiredTime", (double)expires);
    cJSON_AddStringToObject(response, "Expiration", expiration);
    cJSON_AddStringToObject(response, "RequestId", call->request_id);
    clw_sim_respond_json(resp, 200, root);
    return cred != NULL ? "0" : "missing-fields";
}

/* One call-log line: never the WebIdentityToken nor what was issued. */
static void log_call(struct clw_sim *sim, const struct clw_sim_request *req,
                     const struct sts_call *call, const struct clw_sim_response *resp,
                     const char *result, bool issued)
{
    static const char *const logged[] = {"X-TC-Action", "X-TC-Region", "X-TC-Timestamp",
                                         "X-TC-Version"};
    cJSON *entry;
    cJSON *params;
    cJSON *body;
    char ts[32];

    if (sim->log.fd < 0)
        return;
    entry = cJSON_CreateObject();
    clw_sim_log_timestamp(ts, sizeof(ts));
    cJSON_AddStringToObject(entry, "ts", ts);
    cJSON_AddNumberToObject(entry, "version", 3);
    cJSON_AddStringToObject(entry, "service", "sts");
    cJSON_AddStringToObject(entry, "method", req->method);
    cJSON_AddStringToObject(entry, "action", CLW_SIM_STS_ACTION);
    params = cJSON_AddObjectToObject(entry, "params");
    for (size_t i = 0; params != NULL && i < sizeof(logged) / sizeof(logged[0]); i++) {
        const char *value = header(req, logged[i]);

        if (value != NULL)
            cJSON_AddStringToObject(params, logged[i], value);
    }
    body = cJSON_IsObject(call->body) ? cJSON_Duplicate(call->body, true) : NULL;
    if (cJSON_GetObjectItemCaseSensitive(body, "WebIdentityToken") != NULL)
        cJSON_ReplaceItemInObjectCaseSensitive(body, "WebIdentityToken",
                                               cJSON_CreateString("[redacted]"));
    cJSON_AddItemToObject(entry, "body", body != NULL ? body : cJSON_CreateNull());
    if (resp->disposition == CLW_SIM_ANSWER)
        cJSON_AddNumberToObject(entry, "httpStatus", resp->status);
    else
        cJSON_AddNullToObject(entry, "httpStatus");
    cJSON_AddStringToObject(entry, "result", result);
    if (call->code[0] != '\0')
        cJSON_AddStringToObject(entry, "errorCode", call->code);
    else
        cJSON_AddNullToObject(entry, "errorCode");
    cJSON_AddStringToObject(entry, "requestId", call->request_id);
    cJSON_AddBoolToObject(entry, "issued", issued);
    clw_sim_log_write(&sim->log, entry);
    cJSON_Delete(entry);
}

void clw_sim_sts_handle(struct clw_sim *sim, const struct clw_sim_request *req,
                        struct clw_sim_response *resp)
{
    struct sts_call *call = calloc(1, sizeof(*call));
    const char *result;
    char gone_key[CLW_SIM_CODE_MAX];
    bool gone;
    bool issued = false;

    if (call == NULL) {
        clw_sim_respond_text(resp, 500, "text/plain", "out of memory\n");
        return;
    }
    pthread_mutex_lock(&sim->lock);
    call->set = sim->settings;
    sim->stats.sts_calls++;
    clw_sim_v3_request_id(++sim->request_seq, sim->rng_seed, call->request_id);
    pthread_mutex_unlock(&sim->lock);

    /* A service that is gone reads nothing; the checks read the token file without the lock. */
    gone = clw_sim_respond_gone(&call->set.sts, resp, gone_key, sizeof(gone_key));
    if (!gone)
        check(req, call);

    pthread_mutex_lock(&sim->lock);
    if (gone) {
        result = gone_key;
    } else if (call->code[0] != '\0') {
        clw_sim_v3_respond_error(call->request_id, call->code, call->message, resp);
        result = call->code;
    } else {
        result = respond_credentials(sim, call, resp);
        issued = strcmp(result, "0") == 0;
    }
    clw_sim_counter_add(&sim->stats.sts_results, result, 1);
    pthread_mutex_unlock(&sim->lock);

    log_call(sim, req, call, resp, result, issued);
    cJSON_Delete(call->body);
    free(call);
}
