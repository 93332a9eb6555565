/* Intake: a consumed record becomes a job — its offset added to the partition's watermark, the
 * value decoded and validated, the carried headers copied — and is posted on (valid) or decided
 * at once (invalid). */
#include "worker_intake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clw/alloc.h"
#include "clw/clock.h"
#include "clw/coalesce.h"
#include "clw/log.h"

/* Request headers carried unchanged to the outcome (contract section 3). */
static const char *const carried_headers[] = {"traceparent", "tracestate", "baggage",
                                              "kafka_correlationId", "x-request-id"};

void clw_intake_init(struct intake *in, const struct clw_config *cfg, struct parts *parts,
                     struct clw_metrics *metrics, struct job_queue *events)
{
    memset(in, 0, sizeof(*in));
    in->cfg = cfg;
    in->parts = parts;
    in->metrics = metrics;
    in->events = events;
    in->limits.max_bytes = (size_t)64 * 1024;
    in->limits.max_instances = (size_t)cfg->worker_max_instances_per_request;
    in->limits.default_region = cfg->api_region;
    /* Enough records to keep every call slot busy while others wait for an instance or a
     * retry, and with coalescing a full call's worth for each of 64 keys (VPCs) at once: the
     * calls a quota admits leave full. The per-partition window
     * (worker.max_pending_per_partition) still applies. */
    in->taken_cap = (size_t)cfg->worker_max_in_flight * 4 + 256;
    if (cfg->api_coalesce_max_instances > 1)
        in->taken_cap += (size_t)cfg->api_coalesce_max_instances * 64;
}

size_t clw_intake_room(const struct intake *in)
{
    return in->parts->taken < in->taken_cap ? in->taken_cap - in->parts->taken : 0;
}

static int copy_header(struct clw_kafka_header *out, const struct clw_kafka_header *h)
{
    out->name = clw_strdup(h->name);
    void *value = NULL;
    if (h->value != NULL) {
        value = clw_malloc(h->value_len + 1);
        if (value != NULL) {
            memcpy(value, h->value, h->value_len);
            ((char *)value)[h->value_len] = '\0';
        }
    }
    if (out->name == NULL || (h->value != NULL && value == NULL)) {
        free((char *)out->name);
        free(value);
        return -1;
    }
    out->value = value;
    out->value_len = h->value_len;
    return 0;
}

static int is_carried(const char *name)
{
    for (size_t c = 0; c < sizeof(carried_headers) / sizeof(carried_headers[0]); c++)
        if (strcmp(name, carried_headers[c]) == 0)
            return 1;
    return 0;
}

/* Copies the carried request headers; the traceparent's trace id goes into the log context.
 * Returns 0, or -1 when out of memory. */
static int copy_headers(struct job *job, const struct clw_kafka_msg *msg)
{
    size_t n = 0;
    for (size_t i = 0; i < msg->n_headers; i++)
        n += (size_t)is_carried(msg->headers[i].name);
    if (n == 0)
        return 0;
    job->rec.hdrs = clw_calloc(n, sizeof(*job->rec.hdrs));
    if (job->rec.hdrs == NULL)
        return -1;
    for (size_t i = 0; i < msg->n_headers; i++) {
        const struct clw_kafka_header *h = &msg->headers[i];
        if (!is_carried(h->name))
            continue;
        if (copy_header(&job->rec.hdrs[job->rec.n_hdrs], h) != 0)
            return -1;
        const char *v = job->rec.hdrs[job->rec.n_hdrs++].value;
        /* traceparent = version "-" trace-id (32 hex) "-" parent-id "-" flags */
        if (strcmp(h->name, "traceparent") == 0 && v != NULL && h->value_len >= 36 && v[2] == '-' &&
            v[35] == '-') {
            memcpy(job->rec.trace_id, v + 3, 32);
            job->rec.trace_id[32] = '\0';
        }
    }
    return 0;
}

/* Keeps the original value and headers of an invalid record for the dead-letter topic. */
static int keep_raw(struct job *job, const struct clw_kafka_msg *msg)
{
    job->rec.raw_null = msg->value == NULL;
    if (msg->value != NULL) {
        job->rec.raw_value = clw_malloc(msg->value_len ? msg->value_len : 1);
        if (job->rec.raw_value == NULL)
            return -1;
        memcpy(job->rec.raw_value, msg->value, msg->value_len);
        job->rec.raw_len = msg->value_len;
    }
    if (msg->n_headers == 0)
        return 0;
    job->rec.raw_hdrs = clw_calloc(msg->n_headers, sizeof(*job->rec.raw_hdrs));
    if (job->rec.raw_hdrs == NULL)
        return -1;
    for (size_t i = 0; i < msg->n_headers; i++) {
        if (copy_header(&job->rec.raw_hdrs[job->rec.n_raw_hdrs], &msg->headers[i]) != 0)
            return -1;
        job->rec.n_raw_hdrs++;
    }
    return 0;
}

/* The record's default request id and, for a valid request, its coalescing key. */
static int job_decode(struct intake *in, struct job *job, const struct clw_kafka_msg *msg)
{
    char default_id[300];
    snprintf(default_id, sizeof(default_id), "%s:%d:%lld", msg->topic, (int)msg->partition,
             (long long)msg->offset);
    if (clw_request_parse(&job->rec.req, msg->value, msg->value_len, default_id, &in->limits) != 0)
        return -1;
    if (!job->rec.req.valid)
        return 0;
    char key[512];
    if (clw_coalesce_key(key, sizeof(key), job->rec.req.action, job->rec.req.region,
                         job->rec.req.vpc_id) != 0)
        return -1; /* validated ids are short: cannot happen */
    job->rec.group = clw_strdup(key);
    return job->rec.group != NULL ? 0 : -1;
}

/* Out of memory while taking a record: the worker stops, so that nothing commits past it (its
 * offset stays pending, or was never taken) and the next owner redoes it. */
static int intake_oom(const struct clw_kafka_msg *msg)
{
    CLW_ERROR("out of memory taking %s [%d] offset %lld; stopping (exit 2) so that nothing is "
              "lost",
              msg->topic, (int)msg->partition, (long long)msg->offset);
    return -1;
}

int clw_intake_take(struct intake *in, const struct clw_kafka_msg *msg)
{
    struct part *p = clw_parts_get(in->parts, msg->partition, 1);
    if (p == NULL)
        return intake_oom(msg);
    int added = clw_offsets_add(p->offs, msg->offset);
    if (added < 0)
        return intake_oom(msg);
    if (added > 0) {
        /* Already taken in this assignment (a re-delivery): its first copy is in progress. */
        CLW_DEBUG("skipping re-delivered %s [%d] offset %lld", msg->topic, (int)msg->partition,
                  (long long)msg->offset);
        return 0;
    }
    clw_metrics_consumed(in->metrics);
    struct job *job = clw_job_new();
    if (job == NULL)
        return intake_oom(msg);
    struct job_record *r = &job->rec;
    r->topic = in->cfg->topic_requests;
    r->partition = msg->partition;
    r->offset = msg->offset;
    r->enqueued_ms = msg->timestamp_ms;
    r->received_ms = clw_clock_wall_ms();
    r->received_mono = clw_clock_mono_ms();
    clw_parts_link(in->parts, p, job);
    if (msg->key != NULL) {
        r->key = clw_malloc(msg->key_len + 1);
        if (r->key == NULL)
            goto oom;
        memcpy(r->key, msg->key, msg->key_len);
        r->key[msg->key_len] = '\0';
        r->key_len = msg->key_len;
    }
    if (copy_headers(job, msg) != 0 || job_decode(in, job, msg) != 0)
        goto oom;
    struct clw_log_ctx ctx;
    clw_job_log_ctx(job, &ctx);
    if (!r->req.valid) {
        CLW_LOG(CLW_LOG_INFO, &ctx, "invalid request: %s: %s", r->req.reason,
                r->req.detail ? r->req.detail : "");
        if (in->cfg->topic_dlq[0] != '\0') {
            if (keep_raw(job, msg) != 0)
                goto oom;
            r->dead_letter = 1;
        }
        clw_job_decide(in->events, job, 0, "invalid_request");
    } else {
        CLW_LOG(CLW_LOG_DEBUG, &ctx, "request taken: %s %s, %zu instance(s)",
                clw_action_name(r->req.action), r->req.vpc_id, r->req.n_instances);
        clw_job_post(in->events, job, JEV_VALID);
    }
    clw_parts_window_check(in->parts, p);
    return 0;
oom:
    /* The offset stays pending: never committed past, redone after the restart. */
    clw_parts_unlink(in->parts, job);
    clw_job_free(job);
    return intake_oom(msg);
}
