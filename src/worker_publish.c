/* Worker outcomes: encode a final job's outcome, produce it (and its dead letter), report the
 * delivery to the life cycle, and store a partition's commit point when it moves. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clw/alloc.h"
#include "clw/classify.h"
#include "clw/clock.h"
#include "clw/result.h"
#include "worker_internal.h"

/* Delay before producing an outcome again after a local queue-full or a transient delivery
 * failure. */
#define REPUBLISH_MS 200

/* Fills the outcome's API fields from the last Attach/Detach answer (contract section 4). */
static void answer_fields(const struct job *job, struct clw_outcome *o)
{
    if (job->last == NULL)
        return;
    const struct clw_answer *a = &job->last->a;
    o->coalesced = (long)job->last->members;
    const char *transport = clw_classify_transport_desc(a);
    if (transport != NULL) {
        o->code_desc = transport;
        o->http_status = a->http_status;
        return;
    }
    o->has_code = a->has_code; /* an API 3.0 error has a string code only */
    o->code = a->code;
    o->code_desc = a->code_desc;
    if (o->code_desc == NULL && a->code == 0)
        o->code_desc = "Success";
    o->message = a->message;
    o->has_task_id = a->has_task_id;
    o->task_id = a->task_id;
    o->api_request_id = a->request_id;
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
    o.reconciled = job->reconciled;
    o.task_status = job->task_status;
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

static int produce_outcome(struct worker *w, struct job *job, char *err, size_t errlen)
{
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
    job->deliveries[0] = (struct delivery){job, REC_OUTCOME};
    return clw_kafka_produce(w->kafka, CLW_DEST_RESULTS, key, key_len, job->out, job->out_len, hdrs,
                             n, &job->deliveries[0], err, errlen);
}

/* The dead letter: the original key, value and headers, plus where it came from and why. */
static int produce_dead_letter(struct worker *w, struct job *job, char *err, size_t errlen)
{
    size_t cap = job->n_raw_hdrs + 5;
    struct clw_kafka_header *hdrs = clw_calloc(cap, sizeof(*hdrs));
    if (hdrs == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char partition[16];
    char offset[24];
    snprintf(partition, sizeof(partition), "%d", (int)(job->part ? job->part->id : -1));
    snprintf(offset, sizeof(offset), "%lld", (long long)job->offset);
    const char *reason = job->req.reason ? job->req.reason : "";
    const char *message = job->req.detail ? job->req.detail : "";
    size_t n = 0;
    for (size_t i = 0; i < job->n_raw_hdrs; i++)
        hdrs[n++] = job->raw_hdrs[i];
    hdrs[n++] = (struct clw_kafka_header){"clw.error.reason", reason, strlen(reason)};
    hdrs[n++] = (struct clw_kafka_header){"clw.error.message", message, strlen(message)};
    hdrs[n++] = (struct clw_kafka_header){"clw.source.topic", w->cfg->topic_requests,
                                          strlen(w->cfg->topic_requests)};
    hdrs[n++] = (struct clw_kafka_header){"clw.source.partition", partition, strlen(partition)};
    hdrs[n++] = (struct clw_kafka_header){"clw.source.offset", offset, strlen(offset)};
    job->deliveries[1] = (struct delivery){job, REC_DEAD_LETTER};
    int rc = clw_kafka_produce(w->kafka, CLW_DEST_DLQ, job->key, job->key_len,
                               job->raw_null ? NULL : job->raw_value, job->raw_len, hdrs, n,
                               &job->deliveries[1], err, errlen);
    free(hdrs);
    return rc;
}

/* The job's records go out again after delay ms. */
void clw_publish_retry_later(struct worker *w, struct job *job, int64_t delay)
{
    if (job->timer.idx != CLW_TIMER_IDLE || job->untimed)
        return; /* already due */
    if (clw_timers_arm(&w->timers, &job->timer, clw_clock_mono_ms() + delay) != 0) {
        job->untimed = 1; /* no memory for a timer: next turn */
        clw_jobq_push(&w->untimed, job, 0);
    }
}

/* Serves jobs whose records are due to be produced again (exactly-once: not while a
 * transaction ends; they join the next one). */
void clw_publish_tick(struct worker *w, int64_t now)
{
    if (clw_worker_txn_busy(w))
        return;
    while (w->untimed.head != NULL) {
        struct job *job = w->untimed.head;
        clw_jobq_remove(&w->untimed, job);
        job->untimed = 0;
        clw_publish_start(w, job);
    }
    for (;;) {
        struct clw_timer *tm = clw_timers_pop_due(&w->timers, now);
        if (tm == NULL)
            break;
        clw_publish_start(w, (struct job *)((char *)tm - offsetof(struct job, timer)));
    }
}

/* Produces every record of the job still to send; a refused one is tried again later. */
void clw_publish_start(struct worker *w, struct job *job)
{
    if (job->out == NULL && encode_outcome(w, job) != 0) {
        struct clw_log_ctx ctx;
        clw_job_log_ctx(job, &ctx);
        CLW_LOG(CLW_LOG_ERROR, &ctx, "cannot encode the outcome (out of memory); retrying");
        clw_job_fire(w, job, JEV_UNPRODUCED);
        clw_publish_retry_later(w, job, REPUBLISH_MS);
        return;
    }
    if (clw_worker_txn_ensure(w) != 0)
        return; /* fatal: the worker is stopping */
    static const enum job_record order[] = {REC_OUTCOME, REC_DEAD_LETTER};
    for (size_t i = 0; i < 2; i++) {
        enum job_record rec = order[i];
        if (!(job->to_send & rec))
            continue;
        char err[256];
        int rc = rec == REC_OUTCOME ? produce_outcome(w, job, err, sizeof(err))
                                    : produce_dead_letter(w, job, err, sizeof(err));
        if (rc != 0) {
            if (rc == -2)
                clw_worker_txn_failed(w);
            struct clw_log_ctx ctx;
            clw_job_log_ctx(job, &ctx);
            CLW_LOG(CLW_LOG_WARN, &ctx, "cannot queue the %s: %s; retrying",
                    rec == REC_OUTCOME ? "outcome" : "dead letter", err);
            clw_job_fire(w, job, JEV_UNPRODUCED);
            clw_publish_retry_later(w, job, REPUBLISH_MS);
            return;
        }
        job->to_send &= ~(unsigned)rec;
        job->unacked |= (unsigned)rec;
    }
    clw_job_fire(w, job, JEV_PRODUCED);
}

static void set_publish_stuck(struct worker *w, int on, const char *why)
{
    if (w->publish_stuck == on)
        return;
    w->publish_stuck = on;
    clw_metrics_set_paused(w->metrics, CLW_PAUSE_PUBLISH_ERROR, on, on ? why : NULL);
    if (on)
        CLW_ERROR("cannot publish to Kafka (%s%s%s): %s; pausing all partitions",
                  w->cfg->topic_results, w->cfg->topic_dlq[0] ? " or " : "", w->cfg->topic_dlq,
                  why);
    else
        CLW_WARN("publishing outcomes works again; resuming");
    clw_worker_pause_update(w, clw_clock_mono_ms());
}

/* Stores the partition's commit point when it moved. */
void clw_offsets_advance(struct worker *w, struct part *p)
{
    int64_t cp = clw_offsets_commit_point(p->offs);
    if (cp >= 0 && cp > p->stored) {
        if (clw_kafka_store(w->kafka, p->id, cp) == 0)
            p->stored = cp;
    }
    clw_worker_window_check(w, p);
}

void clw_worker_on_delivered(void *arg, void *opaque, enum clw_publish_err err, const char *errstr)
{
    struct worker *w = arg;
    struct delivery *d = opaque;
    struct job *job = d->job;
    job->unacked &= ~(unsigned)d->rec;
    if (err != CLW_PUBLISH_OK && w->eos)
        clw_worker_txn_failed(w); /* whoever's record it was */
    if (job->part == NULL) {      /* orphan: its partition is gone, so is the duty to publish */
        if (job->unacked == 0) {
            w->orphans--;
            clw_job_free(job);
        }
        return;
    }
    if (err != CLW_PUBLISH_OK) {
        clw_metrics_set_producer_ok(w->metrics, 0);
        struct clw_log_ctx ctx;
        clw_job_log_ctx(job, &ctx);
        CLW_LOG(CLW_LOG_WARN, &ctx, "%s not acknowledged: %s; producing it again",
                d->rec == REC_OUTCOME ? "outcome" : "dead letter", errstr);
        if (err == CLW_PUBLISH_STUCK)
            set_publish_stuck(w, 1, errstr);
        job->to_send |= (unsigned)d->rec;
        if (job->state != JOB_REPUBLISH)
            clw_job_fire(w, job, JEV_UNPRODUCED);
        clw_publish_retry_later(
            w, job, err == CLW_PUBLISH_STUCK ? w->cfg->retry_max_backoff_ms : REPUBLISH_MS);
        return;
    }
    clw_metrics_set_producer_ok(w->metrics, 1);
    if (w->publish_stuck)
        set_publish_stuck(w, 0, NULL);
    if (job->unacked != 0 || job->to_send != 0)
        return; /* the other record is still on its way */
    clw_job_fire(w, job, JEV_DELIVERED);
}
