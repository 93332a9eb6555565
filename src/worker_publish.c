/* Worker outcomes: encode the final outcome, publish it, and store offsets once acknowledged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clw/classify.h"
#include "clw/clock.h"
#include "clw/result.h"
#include "worker_internal.h"

/* Delay before producing an outcome again after a local queue-full or a transient delivery
 * failure. */
#define REPUBLISH_MS 200

void clw_worker_log_ctx(const struct job *job, struct clw_log_ctx *ctx)
{
    ctx->request_id = job->req.request_id;
    ctx->topic = job->w->cfg->topic_requests;
    ctx->partition = job->part != NULL ? job->part->id : -1;
    ctx->offset = job->offset;
    ctx->trace_id = job->trace_id[0] ? job->trace_id : NULL;
}

/* Fills the outcome's API fields from the last answer (contract section 4). */
static void answer_fields(const struct job *job, struct clw_outcome *o)
{
    if (!job->has_last)
        return;
    const struct clw_answer *a = &job->last;
    const char *transport = clw_classify_transport_desc(a);
    if (transport != NULL) {
        o->code_desc = transport;
        o->http_status = a->http_status;
        return;
    }
    o->has_code = 1;
    o->code = a->code;
    o->code_desc = a->code_desc;
    if (o->code_desc == NULL && a->code == 0)
        o->code_desc = "Success";
    o->message = a->message;
    o->has_task_id = a->has_task_id;
    o->task_id = a->task_id;
}

/* Encodes the job's final outcome into job->out. Returns 0, or -1 when out of memory. */
static int encode_outcome(struct worker *w, struct job *job)
{
    const struct clw_request *req = &job->req;
    struct clw_outcome o;
    memset(&o, 0, sizeof(o));
    o.request_id = req->request_id;
    o.raw_request_id = req->raw_request_id;
    o.action = req->has_action ? clw_action_name(req->action) : NULL;
    o.region = req->region;
    o.vpc_id = req->vpc_id;
    o.instance_ids = (const char *const *)req->instance_ids;
    o.n_instances = req->n_instances;
    o.succeeded = job->succeeded;
    o.error_class = job->error_class;
    o.attempts = job->attempts;
    o.source_topic = w->cfg->topic_requests;
    o.source_partition = job->part != NULL ? job->part->id : -1;
    o.source_offset = job->offset;
    o.enqueued_at_ms = job->enqueued_ms;
    o.received_at_ms = job->received_ms;
    o.completed_at_ms = job->completed_ms;
    char desc[64];
    if (!req->valid) {
        o.has_code = 1;
        o.code = 4000;
        snprintf(desc, sizeof(desc), "InvalidRequest.%s", req->reason);
        o.code_desc = desc;
        o.message = req->detail;
    } else {
        answer_fields(job, &o);
    }
    job->out = clw_result_encode(&o, &job->out_len);
    return job->out != NULL ? 0 : -1;
}

void clw_worker_finalize(struct worker *w, struct job *job, int succeeded, const char *error_class)
{
    job->succeeded = succeeded;
    job->error_class = error_class;
    job->completed_ms = clw_clock_wall_ms();
    if (job->part != NULL && job->offset > job->part->max_final)
        job->part->max_final = job->offset;

    struct clw_log_ctx ctx;
    clw_worker_log_ctx(job, &ctx);
    CLW_LOG(succeeded ? CLW_LOG_DEBUG : CLW_LOG_INFO, &ctx, "outcome %s%s%s after %d attempt(s)",
            succeeded ? "succeeded" : "failed", error_class ? ": " : "",
            error_class ? error_class : "", job->attempts);

    /* The outcome is final: later requests on the same instances may start. */
    if (job->ticket != NULL) {
        struct clw_gate_ticket *t = job->ticket;
        job->ticket = NULL;
        clw_gate_leave(w->gate, t, clw_worker_gate_ready, w);
    }
    clw_worker_publish(w, job);
}

void clw_worker_publish(struct worker *w, struct job *job)
{
    if (job->out == NULL && encode_outcome(w, job) != 0) {
        struct clw_log_ctx ctx;
        clw_worker_log_ctx(job, &ctx);
        CLW_LOG(CLW_LOG_ERROR, &ctx, "cannot encode the outcome (out of memory); retrying");
        job->state = JOB_REPUBLISH;
        clw_timers_arm(&w->timers, &job->timer, clw_clock_mono_ms() + REPUBLISH_MS);
        return;
    }
    struct clw_kafka_header hdrs[4 + 5];
    size_t n = 0;
    const char *status = job->succeeded ? "succeeded" : "failed";
    hdrs[n++] = (struct clw_kafka_header){"content-type", "application/json", 16};
    hdrs[n++] = (struct clw_kafka_header){"clw-request-id", job->req.request_id,
                                          strlen(job->req.request_id)};
    hdrs[n++] = (struct clw_kafka_header){"clw-status", status, strlen(status)};
    if (job->error_class != NULL)
        hdrs[n++] = (struct clw_kafka_header){"clw-error-class", job->error_class,
                                              strlen(job->error_class)};
    for (size_t i = 0; i < job->n_hdrs && n < sizeof(hdrs) / sizeof(hdrs[0]); i++)
        hdrs[n++] = job->hdrs[i];
    const char *key = job->key != NULL ? job->key : job->req.request_id;
    size_t key_len = job->key != NULL ? job->key_len : strlen(job->req.request_id);
    char err[256];
    if (clw_kafka_produce(w->kafka, key, key_len, job->out, job->out_len, hdrs, n, job, err,
                          sizeof(err)) != 0) {
        struct clw_log_ctx ctx;
        clw_worker_log_ctx(job, &ctx);
        CLW_LOG(CLW_LOG_WARN, &ctx, "cannot queue the outcome: %s; retrying", err);
        job->state = JOB_REPUBLISH;
        clw_timers_arm(&w->timers, &job->timer, clw_clock_mono_ms() + REPUBLISH_MS);
        return;
    }
    job->state = JOB_PUBLISHING;
}

static void set_publish_stuck(struct worker *w, int on, const char *why)
{
    if (w->publish_stuck == on)
        return;
    w->publish_stuck = on;
    if (on)
        CLW_ERROR("cannot publish outcomes to %s: %s; pausing all partitions",
                  w->cfg->topic_results, why);
    else
        CLW_WARN("publishing outcomes works again; resuming");
    clw_metrics_set_paused(w->metrics, CLW_PAUSE_PUBLISH_ERROR, on, on ? why : NULL);
    clw_worker_pause_update(w, clw_clock_mono_ms());
}

/* Stores the partition's commit point when it moved. */
static void advance(struct worker *w, struct part *p)
{
    int64_t cp = clw_offsets_commit_point(p->offs);
    if (cp >= 0 && cp > p->stored) {
        if (clw_kafka_store(w->kafka, p->id, cp) == 0)
            p->stored = cp;
    }
    size_t pending = clw_offsets_pending(p->offs);
    size_t max = (size_t)w->cfg->worker_max_pending_per_partition;
    if (p->window_paused && pending <= max / 2) {
        p->window_paused = 0;
        clw_worker_sync_pause(w, p);
    }
}

void clw_worker_on_delivered(void *arg, void *opaque, enum clw_publish_err err, const char *errstr)
{
    struct worker *w = arg;
    struct job *job = opaque;
    int64_t now = clw_clock_mono_ms();
    if (err != CLW_PUBLISH_OK) {
        clw_metrics_set_producer_ok(w->metrics, 0);
        if (job->part == NULL) { /* orphan: its partition is gone, so is the duty to publish */
            w->orphans--;
            clw_worker_job_free(job);
            return;
        }
        struct clw_log_ctx ctx;
        clw_worker_log_ctx(job, &ctx);
        CLW_LOG(CLW_LOG_WARN, &ctx, "outcome not acknowledged: %s; producing it again", errstr);
        if (err == CLW_PUBLISH_STUCK)
            set_publish_stuck(w, 1, errstr);
        job->state = JOB_REPUBLISH;
        int64_t delay = err == CLW_PUBLISH_STUCK ? w->cfg->retry_max_backoff_ms : REPUBLISH_MS;
        clw_timers_arm(&w->timers, &job->timer, now + delay);
        return;
    }
    clw_metrics_set_producer_ok(w->metrics, 1);
    if (w->publish_stuck)
        set_publish_stuck(w, 0, NULL);
    clw_metrics_request_done(w->metrics, job->req.has_action, job->req.action, job->succeeded,
                             job->error_class, (double)(now - job->received_mono) / 1000.0);
    struct part *p = job->part;
    if (p == NULL) {
        w->orphans--;
        clw_worker_job_free(job);
        return;
    }
    int64_t offset = job->offset;
    clw_worker_job_free(job);
    clw_offsets_done(p->offs, offset);
    advance(w, p);
}
