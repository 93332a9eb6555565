/* The VPC API client: v2 (signed query or form, HmacSHA1/HmacSHA256) and API 3.0 (JSON body,
 * X-TC-* headers, TC3-HMAC-SHA256) requests for one attempt, and their answers. */
#include "clw/api.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clw/buf.h"
#include "clw/sign.h"

#define V3_VERSION      "2017-03-12"
#define V3_CONTENT_TYPE "application/json; charset=utf-8"
#define V3_SERVICE      "vpc"
/* Common v2 parameters: Action, Region, Timestamp, Nonce, SecretId, SignatureMethod, Token. */
#define V2_COMMON 7
/* Action parameters besides the instance ids: vpcId, offset, limit or taskId. */
#define V2_OWN 3
/* API 3.0 headers: Content-Type, X-TC-Action, -Version, -Region, -Timestamp, -Token,
 * Authorization. */
#define V3_HEADERS 7
/* Room for "instanceIds." and any size_t, or any long long. */
#define NAME_LEN 40

struct clw_api {
    int v3;
    struct clw_endpoint ep;
    char *endpoint;
    enum clw_sign_method method;
    int post;
};

struct clw_api *clw_api_new(const struct clw_config *cfg, char *err, size_t errlen)
{
    struct clw_api *api = calloc(1, sizeof(*api));
    if (api == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    api->v3 = cfg->api_version == CLW_API_V3;
    api->method = cfg->api_signature_method;
    api->post = cfg->api_http_method == CLW_HTTP_POST;
    api->endpoint = strdup(cfg->api_endpoint);
    if (api->endpoint == NULL) {
        snprintf(err, errlen, "out of memory");
        clw_api_free(api);
        return NULL;
    }
    if (clw_config_parse_endpoint(api->endpoint, &api->ep, err, errlen) != 0) {
        clw_api_free(api);
        return NULL;
    }
    return api;
}

void clw_api_free(struct clw_api *api)
{
    if (api == NULL)
        return;
    free(api->endpoint);
    free(api);
}

const char *clw_api_endpoint(const struct clw_api *api)
{
    return api->endpoint;
}

const char *clw_api_host(const struct clw_api *api)
{
    return api->ep.host;
}

int clw_api_https(const struct clw_api *api)
{
    return api->ep.https;
}

const char *clw_api_action(const struct clw_api *api, enum clw_api_op op)
{
    switch (op) {
    case CLW_API_ATTACH:
        return "AttachClassicLinkVpc";
    case CLW_API_DETACH:
        return "DetachClassicLinkVpc";
    case CLW_API_LIST_LINKS:
        return api->v3 ? "DescribeClassicLinkInstances" : "DescribeVpcClassicLink";
    case CLW_API_TASK_RESULT:
        break;
    }
    return "DescribeVpcTaskResult";
}

void clw_api_request_free(struct clw_api_request *req)
{
    if (req->url != NULL)
        clw_sign_wipe(req->url, strlen(req->url));
    if (req->body != NULL)
        clw_sign_wipe(req->body, strlen(req->body));
    for (size_t i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
        clw_sign_wipe(req->headers[i], strlen(req->headers[i]));
        free(req->headers[i]);
    }
    free(req->headers);
    free(req->url);
    free(req->body);
    memset(req, 0, sizeof(*req));
}

/* ---- v2 ---------------------------------------------------------------------------------- */

/* The action's own parameters. names holds the formatted instanceIds.N names and numbers the
 * params point into (NAME_LEN bytes each). Returns how many were added. */
static size_t v2_own_params(const struct clw_api_call *call, struct clw_param *params, char *names)
{
    size_t n = 0;
    switch (call->op) {
    case CLW_API_ATTACH:
    case CLW_API_DETACH:
        params[n++] = (struct clw_param){"vpcId", call->vpc_id};
        for (size_t i = 0; i < call->n_instances; i++) {
            char *name = names + NAME_LEN * i;
            snprintf(name, NAME_LEN, "instanceIds.%zu", i);
            params[n++] = (struct clw_param){name, call->instance_ids[i]};
        }
        break;
    case CLW_API_LIST_LINKS:
        snprintf(names, NAME_LEN, "%ld", call->offset);
        params[n++] = (struct clw_param){"vpcId", call->vpc_id};
        params[n++] = (struct clw_param){"offset", names};
        params[n++] = (struct clw_param){"limit", "50"};
        break;
    case CLW_API_TASK_RESULT:
        snprintf(names, NAME_LEN, "%lld", call->task_id);
        params[n++] = (struct clw_param){"taskId", names};
        break;
    }
    return n;
}

static int v2_build(const struct clw_api *api, const struct clw_api_call *call,
                    const struct clw_api_creds *creds, int64_t now_s, uint64_t nonce,
                    struct clw_api_request *out)
{
    size_t slots = call->n_instances + 1;
    struct clw_param *params = calloc(V2_COMMON + V2_OWN + slots, sizeof(*params));
    char *names = calloc(slots, NAME_LEN);
    char *query = NULL;
    int rc = -1;
    if (params == NULL || names == NULL)
        goto out;
    char timestamp[24];
    char nonce_text[24];
    snprintf(timestamp, sizeof(timestamp), "%" PRId64, now_s);
    snprintf(nonce_text, sizeof(nonce_text), "%" PRIu64, nonce);
    size_t n = 0;
    params[n++] = (struct clw_param){"Action", clw_api_action(api, call->op)};
    params[n++] = (struct clw_param){"Region", call->region};
    params[n++] = (struct clw_param){"Timestamp", timestamp};
    params[n++] = (struct clw_param){"Nonce", nonce_text};
    params[n++] = (struct clw_param){"SecretId", creds->secret_id};
    params[n++] = (struct clw_param){
        "SignatureMethod", api->method == CLW_SIGN_HMAC_SHA256 ? "HmacSHA256" : "HmacSHA1"};
    if (creds->token != NULL && creds->token[0] != '\0')
        params[n++] = (struct clw_param){"Token", creds->token};
    n += v2_own_params(call, params + n, names);
    query = clw_sign_v2_query(api->method, api->post ? "POST" : "GET", api->ep.host, api->ep.path,
                              params, n, creds->secret_key);
    if (query == NULL)
        goto out;
    if (api->post) {
        out->url = strdup(api->endpoint);
        out->body = query;
        query = NULL;
        rc = out->url != NULL ? 0 : -1;
    } else {
        size_t len = strlen(api->endpoint) + strlen(query) + 2;
        out->url = malloc(len);
        if (out->url != NULL) {
            snprintf(out->url, len, "%s?%s", api->endpoint, query);
            rc = 0;
        }
    }
out:
    if (query != NULL) {
        clw_sign_wipe(query, strlen(query));
        free(query);
    }
    free(params);
    free(names);
    return rc;
}

/* ---- API 3.0 ------------------------------------------------------------------------------ */

/* The JSON body. Every value was validated against an id grammar of [a-z0-9_-] characters, so
 * none needs escaping. */
static char *v3_body(const struct clw_api_call *call)
{
    struct clw_buf b = {0};
    switch (call->op) {
    case CLW_API_ATTACH:
    case CLW_API_DETACH:
        clw_buf_printf(&b, "{\"VpcId\":\"%s\",\"InstanceIds\":[", call->vpc_id);
        for (size_t i = 0; i < call->n_instances; i++)
            clw_buf_printf(&b, "%s\"%s\"", i ? "," : "", call->instance_ids[i]);
        clw_buf_puts(&b, "]}");
        break;
    case CLW_API_LIST_LINKS:
        clw_buf_printf(&b,
                       "{\"Filters\":[{\"Name\":\"vpc-id\",\"Values\":[\"%s\"]}],\"Offset\":%ld,"
                       "\"Limit\":%d}",
                       call->vpc_id, call->offset, CLW_API_LINKS_PAGE);
        break;
    case CLW_API_TASK_RESULT:
        clw_buf_printf(&b, "{\"TaskId\":%lld}", call->task_id);
        break;
    }
    return clw_buf_take(&b, NULL);
}

int clw_api_request_header(struct clw_api_request *req, size_t *n, const char *name,
                           const char *value)
{
    size_t len = strlen(name) + strlen(value) + 3;
    char *line = malloc(len);
    if (line == NULL)
        return -1;
    snprintf(line, len, "%s: %s", name, value);
    req->headers[(*n)++] = line;
    return 0;
}

static int v3_build(const struct clw_api *api, const struct clw_api_call *call,
                    const struct clw_api_creds *creds, int64_t now_s, struct clw_api_request *out)
{
    char *auth = NULL;
    int rc = -1;
    out->body = v3_body(call);
    out->url = strdup(api->endpoint);
    out->headers = calloc(V3_HEADERS + 1, sizeof(*out->headers));
    if (out->body == NULL || out->url == NULL || out->headers == NULL)
        goto out;
    struct clw_tc3_input in = {
        .secret_id = creds->secret_id,
        .secret_key = creds->secret_key,
        .service = V3_SERVICE,
        .host = api->ep.host,
        .method = "POST",
        .path = "/",
        .query = "",
        .content_type = V3_CONTENT_TYPE,
        .payload = out->body,
        .payload_len = strlen(out->body),
        .timestamp = now_s,
    };
    auth = clw_sign_tc3_authorization(&in, NULL, NULL);
    if (auth == NULL)
        goto out;
    char ts[24];
    snprintf(ts, sizeof(ts), "%" PRId64, now_s);
    size_t n = 0;
    if (clw_api_request_header(out, &n, "Content-Type", V3_CONTENT_TYPE) != 0 ||
        clw_api_request_header(out, &n, "X-TC-Action", clw_api_action(api, call->op)) != 0 ||
        clw_api_request_header(out, &n, "X-TC-Version", V3_VERSION) != 0 ||
        clw_api_request_header(out, &n, "X-TC-Region", call->region) != 0 ||
        clw_api_request_header(out, &n, "X-TC-Timestamp", ts) != 0 ||
        (creds->token != NULL && creds->token[0] != '\0' &&
         clw_api_request_header(out, &n, "X-TC-Token", creds->token) != 0) ||
        clw_api_request_header(out, &n, "Authorization", auth) != 0)
        goto out;
    rc = 0;
out:
    if (auth != NULL) {
        clw_sign_wipe(auth, strlen(auth));
        free(auth);
    }
    return rc;
}

int clw_api_build(const struct clw_api *api, const struct clw_api_call *call,
                  const struct clw_api_creds *creds, int64_t now_s, uint64_t nonce,
                  struct clw_api_request *out)
{
    memset(out, 0, sizeof(*out));
    int rc = api->v3 ? v3_build(api, call, creds, now_s, out)
                     : v2_build(api, call, creds, now_s, nonce, out);
    if (rc != 0)
        clw_api_request_free(out);
    return rc;
}

int clw_api_parse(const struct clw_api *api, enum clw_transport transport, long http_status,
                  const char *body, size_t body_len, int64_t retry_after_ms, struct clw_answer *ans)
{
    ans->transport = transport;
    ans->http_status = http_status;
    ans->retry_after_ms = retry_after_ms;
    if (transport != CLW_TRANSPORT_OK || http_status != 200 || body == NULL || body_len == 0)
        return 0;
    return api->v3 ? clw_answer_parse_body_v3(ans, body, body_len)
                   : clw_answer_parse_body(ans, body, body_len);
}
