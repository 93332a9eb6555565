/* vpc-sim: the API 3.0 front end: X-TC-* headers, TC3 signature, JSON bodies and answers. */
#include "sim_api.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sim_tc3.h"

#define DEFAULT_LIMIT  20
#define MAX_LIMIT      100
#define MAX_OFFSET     1000000000
#define MAX_ID_CHARS   32 /* after the "vpc-" / "ins-" prefix */
#define MAX_CANON_HDRS 4096

/* An error answer: code is the API 3.0 Code. */
static void fail(struct clw_sim_call *call, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct clw_sim_call *call, const char *code, const char *fmt, ...)
{
    va_list ap;

    call->reply.code = 1; /* only "not zero" matters for a v3 call */
    snprintf(call->reply.code_desc, sizeof(call->reply.code_desc), "%s", code);
    va_start(ap, fmt);
    vsnprintf(call->reply.message, sizeof(call->reply.message), fmt, ap);
    va_end(ap);
}

/* ---- headers and authentication --------------------------------------------------------- */

static const char *header(const struct clw_sim_request *req, const char *name)
{
    if (strcasecmp(name, "content-type") == 0)
        return req->content_type;
    if (strcasecmp(name, "host") == 0)
        return req->host;
    return req->header != NULL ? req->header(req->header_ctx, name) : NULL;
}

/* application/json, with or without parameters such as "; charset=utf-8". */
static bool content_type_is_json(const char *content_type)
{
    static const char json[] = "application/json";
    char next;

    if (content_type == NULL || strncasecmp(content_type, json, sizeof(json) - 1) != 0)
        return false;
    next = content_type[sizeof(json) - 1];
    return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

/* Builds the canonical headers from the SignedHeaders list: host is the signing host, the
 * others are read from the request. Fills call->reply and returns false on a problem. */
static bool canonical_headers(const struct clw_sim *sim, const struct clw_sim_request *req,
                              const struct clw_sim_tc3_auth *auth, struct clw_sim_call *call,
                              char *out, size_t outsz)
{
    char names[sizeof(auth->signed_headers)];
    char host[256];
    char *save = NULL;
    bool has_type = false;
    bool has_host = false;

    out[0] = '\0';
    snprintf(names, sizeof(names), "%s", auth->signed_headers);
    for (char *name = strtok_r(names, ";", &save); name != NULL;
         name = strtok_r(NULL, ";", &save)) {
        const char *value;

        for (const char *c = name; *c != '\0'; c++) {
            if (isupper((unsigned char)*c) || *c == ' ') {
                fail(call, "AuthFailure.InvalidAuthorization",
                     "SignedHeaders must be lowercase names joined by ';'");
                return false;
            }
        }
        if (strcmp(name, "host") == 0) {
            clw_sim_signing_host(sim, req->host, host, sizeof(host));
            value = host;
            has_host = true;
        } else {
            value = header(req, name);
            has_type = has_type || strcmp(name, "content-type") == 0;
        }
        if (value == NULL) {
            fail(call, "AuthFailure.SignatureFailure", "signed header %s was not sent", name);
            return false;
        }
        if (clw_sim_tc3_add_header(out, outsz, name, value) != 0) {
            fail(call, "AuthFailure.InvalidAuthorization", "signed headers too long");
            return false;
        }
    }
    if (!has_type || !has_host) {
        fail(call, "AuthFailure.InvalidAuthorization",
             "SignedHeaders must include content-type and host");
        return false;
    }
    return true;
}

/* The TC3 signature of the request, checked against auth with key. */
static bool verify_signature(const struct clw_sim *sim, const struct clw_sim_request *req,
                             const struct clw_sim_tc3_auth *auth, int64_t timestamp,
                             const char *key, struct clw_sim_call *call)
{
    char headers[MAX_CANON_HDRS];
    char hashed_payload[CLW_SIM_TC3_HEX];
    char expected[CLW_SIM_TC3_HEX];
    char date[16];
    char *creq = NULL;
    char *sts = NULL;
    bool ok = false;

    if (strcmp(auth->service, CLW_SIM_V3_SERVICE) != 0) {
        fail(call, "AuthFailure.SignatureFailure",
             "the credential scope names service %s, not " CLW_SIM_V3_SERVICE, auth->service);
        goto fail;
    }
    clw_sim_tc3_date(timestamp, date, sizeof(date));
    if (strcmp(auth->date, date) != 0) {
        fail(call, "AuthFailure.SignatureFailure",
             "the credential date %s is not the UTC date of X-TC-Timestamp (%s)", auth->date, date);
        goto fail;
    }
    if (!canonical_headers(sim, req, auth, call, headers, sizeof(headers)))
        goto fail;
    clw_sim_tc3_sha256_hex(req->body, req->body_len, hashed_payload);
    creq =
        clw_sim_tc3_canonical_request(req->method, headers, auth->signed_headers, hashed_payload);
    sts = creq != NULL
              ? clw_sim_tc3_string_to_sign(clw_sim_params_get(&call->params, "X-TC-Timestamp"),
                                           auth->date, auth->service, creq)
              : NULL;
    if (sts == NULL || clw_sim_tc3_sign(key, auth->date, auth->service, sts, expected) != 0) {
        fail(call, "InternalError", "out of memory");
        goto fail;
    }
    if (!clw_sim_tc3_equal(auth->signature, expected)) {
        fail(call, "AuthFailure.SignatureFailure", "signature verification failed");
        goto fail;
    }
    ok = true;

fail:
    free(creq);
    free(sts);
    return ok;
}

/* The body as one JSON value with nothing but blanks after it; NULL otherwise. */
static cJSON *parse_body(const struct clw_sim_request *req)
{
    const char *end = NULL;
    cJSON *doc;

    if (req->body_len == 0)
        return NULL;
    doc = cJSON_ParseWithLengthOpts(req->body, req->body_len, &end, false);
    if (doc == NULL)
        return NULL;
    while (end != NULL && end < req->body + req->body_len && isspace((unsigned char)*end))
        end++;
    if (end != req->body + req->body_len) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

bool clw_sim_v3_authenticate(struct clw_sim *sim, const struct clw_sim_request *req,
                             struct clw_sim_call *call)
{
    static const char *const logged[] = {"X-TC-Action", "X-TC-Region", "X-TC-Timestamp",
                                         "X-TC-Version"};
    static const char *const required[] = {"X-TC-Action", "X-TC-Version", "X-TC-Region",
                                           "X-TC-Timestamp", "Authorization"};
    struct clw_sim_tc3_auth auth;
    const char *token;
    uint64_t timestamp;

    for (size_t i = 0; i < sizeof(logged) / sizeof(logged[0]); i++) {
        const char *value = header(req, logged[i]);

        if (value != NULL && clw_sim_params_add(&call->params, logged[i], value) != 0) {
            fail(call, "InternalError", "out of memory");
            return false;
        }
    }
    call->action_name = clw_sim_params_get(&call->params, "X-TC-Action");
    call->api_version = clw_sim_params_get(&call->params, "X-TC-Version");
    call->region = clw_sim_params_get(&call->params, "X-TC-Region");
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        const char *value = header(req, required[i]);

        if (value == NULL || value[0] == '\0') {
            fail(call, "MissingParameter", "missing header %s", required[i]);
            return false;
        }
    }
    if (!content_type_is_json(req->content_type)) {
        fail(call, "InvalidParameter", "Content-Type must be application/json");
        return false;
    }
    if (!clw_sim_parse_number(clw_sim_params_get(&call->params, "X-TC-Timestamp"), INT64_MAX / 2,
                              &timestamp)) {
        fail(call, "InvalidParameter", "X-TC-Timestamp must be a Unix time in seconds");
        return false;
    }
    if (clw_sim_tc3_parse_auth(header(req, "Authorization"), &auth) != 0) {
        fail(call, "AuthFailure.InvalidAuthorization",
             "Authorization is not \"TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, "
             "SignedHeaders=..., Signature=HEX\"");
        return false;
    }
    if (!clw_sim_principal_find(sim, auth.secret_id, &call->who)) {
        fail(call, "AuthFailure.SecretIdNotFound", "SecretId not found");
        return false;
    }
    if (!verify_signature(sim, req, &auth, (int64_t)timestamp, call->who.secret_key, call))
        return false;
    token = header(req, "X-TC-Token");
    if (call->who.token != NULL && (token == NULL || strcmp(token, call->who.token) != 0)) {
        fail(call, "AuthFailure.TokenFailure", "token invalid");
        return false;
    }
    call->body = parse_body(req);
    return true;
}

bool clw_sim_v3_check_time(const struct clw_sim *sim, struct clw_sim_call *call)
{
    int64_t now = clw_sim_now_s(sim);
    int64_t window = sim->settings.window_s;
    uint64_t ts = 0;

    clw_sim_parse_number(clw_sim_params_get(&call->params, "X-TC-Timestamp"), INT64_MAX / 2, &ts);
    if ((int64_t)ts < now - window || (int64_t)ts > now + window) {
        fail(call, "AuthFailure.SignatureExpire",
             "X-TC-Timestamp %" PRIu64 " is more than %" PRId64 " s from server time %" PRId64, ts,
             window, now);
        return false;
    }
    return true;
}

/* ---- the body --------------------------------------------------------------------------- */

/* PREFIX followed by 1..MAX_ID_CHARS lowercase letters or digits, e.g. vpc-2ari9m7h. */
static bool well_formed_id(const char *id, const char *prefix)
{
    size_t plen = strlen(prefix);
    size_t n = 0;

    if (strncmp(id, prefix, plen) != 0)
        return false;
    for (const char *c = id + plen; *c != '\0'; c++, n++) {
        if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c)))
            return false;
    }
    return n >= 1 && n <= MAX_ID_CHARS;
}

/* Every member of obj must be one of names. */
static bool known_fields(struct clw_sim_call *call, const cJSON *obj, const char *const *names,
                         size_t n)
{
    const cJSON *item;

    cJSON_ArrayForEach(item, obj)
    {
        bool known = false;

        for (size_t i = 0; i < n && !known; i++)
            known = strcmp(item->string, names[i]) == 0;
        if (!known) {
            fail(call, "UnknownParameter", "unknown parameter %s", item->string);
            return false;
        }
    }
    return true;
}

static bool parse_vpc_id(struct clw_sim_call *call)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(call->body, "VpcId");

    if (item == NULL) {
        fail(call, "MissingParameter", "missing parameter %s", "VpcId");
        return false;
    }
    if (!cJSON_IsString(item)) {
        fail(call, "InvalidParameter", "VpcId must be a string");
        return false;
    }
    if (!well_formed_id(item->valuestring, "vpc-")) {
        fail(call, "InvalidParameterValue.Malformed", "VpcId %.64s is not a VPC id",
             item->valuestring);
        return false;
    }
    call->vpc_id = item->valuestring;
    return true;
}

static bool parse_instance_ids(struct clw_sim_call *call, size_t max_instances)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(call->body, "InstanceIds");
    const cJSON *item;
    size_t n;
    size_t found = 0;

    if (arr == NULL) {
        fail(call, "MissingParameter", "missing parameter %s", "InstanceIds");
        return false;
    }
    if (!cJSON_IsArray(arr)) {
        fail(call, "InvalidParameter", "InstanceIds must be an array of strings");
        return false;
    }
    n = (size_t)cJSON_GetArraySize(arr);
    if (n == 0) {
        fail(call, "MissingParameter", "InstanceIds is empty");
        return false;
    }
    if (n > max_instances) {
        fail(call, "InvalidParameterValue.Limit", "at most %zu InstanceIds per call",
             max_instances);
        return false;
    }
    call->ids = calloc(n, sizeof(*call->ids));
    if (call->ids == NULL) {
        fail(call, "InternalError", "out of memory");
        return false;
    }
    cJSON_ArrayForEach(item, arr)
    {
        if (!cJSON_IsString(item)) {
            fail(call, "InvalidParameter", "InstanceIds must be an array of strings");
            return false;
        }
        if (!well_formed_id(item->valuestring, "ins-")) {
            fail(call, "InvalidParameterValue.Malformed", "%.64s is not an instance id",
                 item->valuestring);
            return false;
        }
        for (size_t j = 0; j < found; j++) {
            if (strcmp(call->ids[j], item->valuestring) == 0) {
                fail(call, "InvalidParameterValue.Duplicate", "instance %s listed twice",
                     item->valuestring);
                return false;
            }
        }
        call->ids[found++] = item->valuestring;
    }
    /* Only a call whose parameters are good names its instances (stats, scripted faults). */
    call->nids = found;
    return true;
}

/* Offset / Limit: a whole number or a string of digits (the API documents them as strings). */
static bool parse_count(struct clw_sim_call *call, const char *name, uint64_t min, uint64_t max,
                        size_t *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(call->body, name);
    uint64_t v = 0;

    if (item == NULL)
        return true;
    if (cJSON_IsNumber(item) && item->valuedouble >= 0 && item->valuedouble <= 9.0e15 &&
        item->valuedouble == (double)(uint64_t)item->valuedouble) {
        v = (uint64_t)item->valuedouble;
    } else if (!cJSON_IsString(item) || !clw_sim_parse_number(item->valuestring, UINT64_MAX, &v)) {
        fail(call, "InvalidParameter", "%s must be a whole number", name);
        return false;
    }
    if (v < min || v > max) {
        fail(call, "InvalidParameterValue.Range", "%s must be in [%" PRIu64 ", %" PRIu64 "]", name,
             min, max);
        return false;
    }
    *out = (size_t)v;
    return true;
}

/* Filters: [{"Name": "vpc-id" | "instance-id", "Values": ["...", ...]}, ...]. */
static bool parse_filters(struct clw_sim_call *call)
{
    static const char *const filter_fields[] = {"Name", "Values"};
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(call->body, "Filters");
    const cJSON *filter;
    size_t nvalues = 0;
    size_t f = 0;

    if (arr == NULL)
        return true;
    if (!cJSON_IsArray(arr)) {
        fail(call, "InvalidParameter", "Filters must be an array");
        return false;
    }
    cJSON_ArrayForEach(filter, arr)
    {
        const cJSON *values = cJSON_GetObjectItemCaseSensitive(filter, "Values");

        nvalues += cJSON_IsArray(values) ? (size_t)cJSON_GetArraySize(values) : 0;
    }
    call->filters = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*call->filters));
    call->filter_values = calloc(nvalues + 1, sizeof(*call->filter_values));
    if (call->filters == NULL || call->filter_values == NULL) {
        fail(call, "InternalError", "out of memory");
        return false;
    }
    nvalues = 0;
    cJSON_ArrayForEach(filter, arr)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(filter, "Name");
        const cJSON *values = cJSON_GetObjectItemCaseSensitive(filter, "Values");
        const cJSON *value;
        struct clw_sim_link_filter *out = &call->filters[f];

        if (!cJSON_IsObject(filter)) {
            fail(call, "InvalidParameter.FilterNotDict", "Filters[%zu] is not an object", f);
            return false;
        }
        if (!known_fields(call, filter, filter_fields, 2))
            return false;
        if (!cJSON_IsString(name) || (strcmp(name->valuestring, "vpc-id") != 0 &&
                                      strcmp(name->valuestring, "instance-id") != 0)) {
            fail(call, "InvalidParameter.FilterInvalidKey",
                 "Filters[%zu].Name must be vpc-id or instance-id", f);
            return false;
        }
        if (!cJSON_IsArray(values)) {
            fail(call, "InvalidParameter.FilterValuesNotList",
                 "Filters[%zu].Values must be an array of strings", f);
            return false;
        }
        out->instance = strcmp(name->valuestring, "instance-id") == 0;
        out->values = &call->filter_values[nvalues];
        cJSON_ArrayForEach(value, values)
        {
            if (!cJSON_IsString(value)) {
                fail(call, "InvalidParameter.FilterValuesNotList",
                     "Filters[%zu].Values must be an array of strings", f);
                return false;
            }
            call->filter_values[nvalues++] = value->valuestring;
            out->nvalues++;
        }
        f++;
    }
    call->links.filters = call->filters;
    call->links.nfilters = f;
    return true;
}

bool clw_sim_v3_parse_args(struct clw_sim_call *call, size_t max_instances)
{
    static const char *const link_fields[] = {"VpcId", "InstanceIds"};
    static const char *const list_fields[] = {"Filters", "Offset", "Limit"};

    if (!cJSON_IsObject(call->body)) {
        fail(call, "InvalidParameter", "the body must be a JSON object");
        return false;
    }
    switch (call->action) {
    case CLW_SIM_ACTION_ATTACH:
    case CLW_SIM_ACTION_DETACH:
        return known_fields(call, call->body, link_fields, 2) && parse_vpc_id(call) &&
               parse_instance_ids(call, max_instances);
    case CLW_SIM_ACTION_DESCRIBE_LINKS:
        call->links.v3 = true;
        call->links.limit = DEFAULT_LIMIT;
        return known_fields(call, call->body, list_fields, 3) && parse_filters(call) &&
               parse_count(call, "Offset", 0, MAX_OFFSET, &call->links.offset) &&
               parse_count(call, "Limit", 1, MAX_LIMIT, &call->links.limit);
    default:
        fail(call, "InvalidAction", "action %s not supported", call->action_name);
        return false;
    }
}

/* ---- answers ---------------------------------------------------------------------------- */

void clw_sim_v3_translate(struct clw_sim_call *call)
{
    static const char *const codes[][2] = {
        {"InvalidVpc.NotFound", "ResourceNotFound"},
        {"InvalidInstance.NotFound", "ResourceNotFound"},
        {"InvalidTask.NotFound", "ResourceNotFound"},
        {"InstanceAlreadyLinked", "UnsupportedOperation.ClassicInstanceIdAlreadyExists"},
        {"InstanceLimitExceeded", "LimitExceeded"},
    };

    if (call->reply.code == 0)
        return;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        if (strcmp(call->reply.code_desc, codes[i][0]) == 0) {
            snprintf(call->reply.code_desc, sizeof(call->reply.code_desc), "%s", codes[i][1]);
            return;
        }
    }
}

const char *clw_sim_v3_fault_code(const struct clw_sim_fault *fault)
{
    if (fault->code_desc[0] != '\0')
        return fault->code_desc;
    switch (fault->code) {
    case 4000:
        return "InvalidParameter";
    case 4100:
        return "AuthFailure.SignatureFailure";
    case 4101:
    case 4300:
        return "UnauthorizedOperation";
    case 4104:
        return "AuthFailure.SecretIdNotFound";
    case 4105:
        return "AuthFailure.TokenFailure";
    case 4106:
        return "AuthFailure.MFAFailure";
    case 4200:
    case 4500:
        return "AuthFailure.SignatureExpire";
    case 4400:
        return "RequestLimitExceeded";
    case 4600:
        return "UnsupportedProtocol";
    case 5000:
        return "ResourceNotFound";
    case 6100:
        return "InvalidAction";
    default: /* 5100, 6000, 6200 and anything else */
        return "InternalError";
    }
}

void clw_sim_v3_respond_error(const char *request_id, const char *code, const char *message,
                              struct clw_sim_response *resp)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *response = cJSON_AddObjectToObject(root, "Response");
    cJSON *error = cJSON_AddObjectToObject(response, "Error");

    cJSON_AddStringToObject(error, "Code", code);
    cJSON_AddStringToObject(error, "Message", message);
    cJSON_AddStringToObject(response, "RequestId", request_id);
    clw_sim_respond_json(resp, 200, root);
}

void clw_sim_v3_respond(struct clw_sim_call *call, struct clw_sim_response *resp)
{
    struct clw_sim_reply *reply = &call->reply;
    cJSON *root;
    cJSON *response;

    if (reply->code != 0) {
        clw_sim_v3_respond_error(call->request_id, reply->code_desc, reply->message, resp);
        return;
    }
    root = cJSON_CreateObject();
    response = cJSON_AddObjectToObject(root, "Response");
    /* A v2-style taskId is the simulator's business: API 3.0 answers carry none. */
    while (response != NULL && reply->extra != NULL && reply->extra->child != NULL) {
        cJSON *item = cJSON_DetachItemViaPointer(reply->extra, reply->extra->child);

        if (strcmp(item->string, "taskId") == 0)
            cJSON_Delete(item);
        else
            cJSON_AddItemToObject(response, item->string, item);
    }
    cJSON_AddStringToObject(response, "RequestId", call->request_id);
    clw_sim_respond_json(resp, 200, root);
}

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void clw_sim_v3_request_id(uint64_t seq, uint64_t salt, char *out)
{
    uint64_t a = mix(salt ^ mix(seq));
    uint64_t b = mix(a ^ seq);

    snprintf(out, 40, "%08" PRIx32 "-%04" PRIx32 "-4%03" PRIx32 "-%04" PRIx32 "-%012" PRIx64,
             (uint32_t)(a >> 32), (uint32_t)(a >> 16) & 0xffff, (uint32_t)a & 0xfff,
             (uint32_t)(0x8000 | ((b >> 48) & 0x3fff)), (uint64_t)(b & 0xffffffffffffull));
}

void clw_sim_v3_call_free(struct clw_sim_call *call)
{
    cJSON_Delete(call->body);
    free(call->filters);
    free(call->filter_values);
    call->body = NULL;
    call->filters = NULL;
    call->filter_values = NULL;
}
