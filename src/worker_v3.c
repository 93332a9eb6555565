/* Worker API 3.0 calls: the JSON body, the X-TC-* headers and the TC3-HMAC-SHA256
 * Authorization of one attempt. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clw/buf.h"
#include "clw/clock.h"
#include "worker_internal.h"

#define V3_VERSION      "2017-03-12"
#define V3_CONTENT_TYPE "application/json; charset=utf-8"
#define V3_SERVICE      "vpc"

/* The action of the job's next v3 call. */
static const char *v3_action(const struct job *job)
{
    if (job->phase == PHASE_RECONCILE)
        return "DescribeClassicLinkInstances";
    return clw_worker_phase_action(job);
}

/* The JSON body. Every value was validated against an id grammar of [a-z0-9_-] characters, so
 * none needs escaping. */
static char *v3_body(const struct job *job)
{
    const struct clw_request *req = &job->req;
    struct clw_buf b = {0};
    switch (job->phase) {
    case PHASE_ACTION:
        clw_buf_printf(&b, "{\"VpcId\":\"%s\",\"InstanceIds\":[", req->vpc_id);
        for (size_t i = 0; i < req->n_instances; i++)
            clw_buf_printf(&b, "%s\"%s\"", i ? "," : "", req->instance_ids[i]);
        clw_buf_puts(&b, "]}");
        break;
    case PHASE_RECONCILE:
        clw_buf_printf(&b,
                       "{\"Filters\":[{\"Name\":\"vpc-id\",\"Values\":[\"%s\"]}],\"Offset\":%ld,"
                       "\"Limit\":50}",
                       req->vpc_id, job->describe_offset);
        break;
    case PHASE_TASK:
        clw_buf_printf(&b, "{\"TaskId\":%lld}", job->last.task_id);
        break;
    }
    return clw_buf_take(&b, NULL);
}

int clw_worker_start_v3(struct worker *w, struct job *job)
{
    const struct clw_config *cfg = w->cfg;
    char *body = v3_body(job);
    char *auth = NULL;
    char lines[7][320];
    const char *headers[8];
    size_t n = 0;
    int rc = -1;
    if (body == NULL)
        goto out;
    int64_t ts = clw_clock_wall_ms() / 1000;
    struct clw_tc3_input in = {
        .secret_id = cfg->api_secret_id,
        .secret_key = cfg->api_secret_key,
        .service = V3_SERVICE,
        .host = w->ep.host,
        .method = "POST",
        .path = "/",
        .query = "",
        .content_type = V3_CONTENT_TYPE,
        .payload = body,
        .payload_len = strlen(body),
        .timestamp = ts,
    };
    auth = clw_sign_tc3_authorization(&in, NULL, NULL);
    if (auth == NULL)
        goto out;
    snprintf(lines[n], sizeof(lines[n]), "Content-Type: %s", V3_CONTENT_TYPE);
    headers[n] = lines[n];
    n++;
    snprintf(lines[n], sizeof(lines[n]), "X-TC-Action: %s", v3_action(job));
    headers[n] = lines[n];
    n++;
    snprintf(lines[n], sizeof(lines[n]), "X-TC-Version: %s", V3_VERSION);
    headers[n] = lines[n];
    n++;
    snprintf(lines[n], sizeof(lines[n]), "X-TC-Region: %s", job->req.region);
    headers[n] = lines[n];
    n++;
    snprintf(lines[n], sizeof(lines[n]), "X-TC-Timestamp: %" PRId64, ts);
    headers[n] = lines[n];
    n++;
    if (cfg->api_token[0] != '\0') {
        snprintf(lines[n], sizeof(lines[n]), "X-TC-Token: %s", cfg->api_token);
        headers[n] = lines[n];
        n++;
    }
    snprintf(lines[n], sizeof(lines[n]), "Authorization: %s", auth);
    headers[n] = lines[n];
    n++;
    headers[n] = NULL;
    rc = clw_http_submit(w->http, w->endpoint, body, headers, 3, job);
out:
    if (auth != NULL)
        clw_sign_wipe(auth, strlen(auth));
    clw_sign_wipe(lines, sizeof(lines));
    free(auth);
    free(body);
    return rc;
}
