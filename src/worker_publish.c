/* Publishing: encode a final job's outcome, produce it (and its dead letter), read the delivery
 * reports, produce again what was not acknowledged. The stages after it learn what happened
 * through job events (produced, unproduced, delivered). */
#include "worker_publish.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clw/alloc.h"
#include "clw/classify.h"
#include "clw/clock.h"
#include "clw/log.h"
#include "clw/result.h"

/* Delay before producing an outcome again after a local queue-full or a transient delivery
 * failure. */
#define REPUBLISH_MS 200

void clw_publish_init(struct publish *pub, const struct clw_config *cfg, struct clw_kafka *kafka,
                      struct clw_metrics *metrics, struct txn *txn, struct guard *guard,
                      struct job_queue *events)
{
    *pub = (struct publish){
        .cfg = cfg,
        .kafka = kafka,
        .metrics = metrics,
        .txn = txn,
        .guard = guard,
        .events = events,
    };
}

void clw_publish_fini(struct publish *pub)
{
    clw_timers_free(&pub->timers);
}

/* Fills the outcome's API fields from the last Attach/Detach answer (contract section 4). */
static void answer_fields(const struct job *job, struct clw_outcome *o)
{
    if (job->verdict.last == NULL)
        return;
    const struct clw_answer *a = &job->verdict.last->a;
    o->coalesced = (long)job->verdict.last->members;
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
static int encode_outcome(struct job *job)
{
    const struct clw_request *req = &job->rec.req;
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
    o.attempts = job->att.attempts;
    o.source_topic = job->rec.topic;
    o.source_partition = job->rec.partition;
    o.source_offset = job->rec.offset;
    o.enqueued_at_ms = job->rec.enqueued_ms;
    o.received_at_ms = job->rec.received_ms;
    o.completed_at_ms = job->completed_ms;
    o.reconciled = job->verdict.reconciled;
    o.task_status = job->verdict.task_status;
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
    job->pub.out = clw_result_encode(&o, &job->pub.out_len);
    return job->pub.out != NULL ? 0 : -1;
}

static int produce_outcome(struct publish *pub, struct job *job, char *err, size_t errlen)
{
    struct clw_kafka_header hdrs[4 + 5];
    size_t n = 0;
    const char *status = job->succeeded ? "succeeded" : "failed";
    hdrs[n++] = (struct clw_kafka_header){"content-type", "application/json", 16};
    hdrs[n++] = (struct clw_kafka_header){"clw-request-id", job->rec.req.request_id,
                                          strlen(job->rec.req.request_id)};
    hdrs[n++] = (struct clw_kafka_header){"clw-status", status, strlen(status)};
    if (job->error_class != NULL)
        hdrs[n++] = (struct clw_kafka_header){"clw-error-class", job->error_class,
                                              strlen(job->error_class)};
    for (size_t i = 0; i < job->rec.n_hdrs && n < sizeof(hdrs) / sizeof(hdrs[0]); i++)
        hdrs[n++] = job->rec.hdrs[i];
    const char *key = job->rec.key != NULL ? job->rec.key : job->rec.req.request_id;
    size_t key_len = job->rec.key != NULL ? job->rec.key_len : strlen(job->rec.req.request_id);
    job->pub.deliveries[0] = (struct delivery){job, REC_OUTCOME};
    return clw_kafka_produce(pub->kafka, CLW_DEST_RESULTS, key, key_len, job->pub.out,
                             job->pub.out_len, hdrs, n, &job->pub.deliveries[0], err, errlen);
}

/* The dead letter: the original key, value and headers, plus where it came from and why. */
static int produce_dead_letter(struct publish *pub, struct job *job, char *err, size_t errlen)
{
    size_t cap = job->rec.n_raw_hdrs + 5;
    struct clw_kafka_header *hdrs = clw_calloc(cap, sizeof(*hdrs));
    if (hdrs == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char partition[16];
    char offset[24];
    snprintf(partition, sizeof(partition), "%d", (int)job->rec.partition);
    snprintf(offset, sizeof(offset), "%lld", (long long)job->rec.offset);
    const char *reason = job->rec.req.reason ? job->rec.req.reason : "";
    const char *message = job->rec.req.detail ? job->rec.req.detail : "";
    size_t n = 0;
    for (size_t i = 0; i < job->rec.n_raw_hdrs; i++)
        hdrs[n++] = job->rec.raw_hdrs[i];
    hdrs[n++] = (struct clw_kafka_header){"clw.error.reason", reason, strlen(reason)};
    hdrs[n++] = (struct clw_kafka_header){"clw.error.message", message, strlen(message)};
    hdrs[n++] =
        (struct clw_kafka_header){"clw.source.topic", job->rec.topic, strlen(job->rec.topic)};
    hdrs[n++] = (struct clw_kafka_header){"clw.source.partition", partition, strlen(partition)};
    hdrs[n++] = (struct clw_kafka_header){"clw.source.offset", offset, strlen(offset)};
    job->pub.deliveries[1] = (struct delivery){job, REC_DEAD_LETTER};
    int rc = clw_kafka_produce(pub->kafka, CLW_DEST_DLQ, job->rec.key, job->rec.key_len,
                               job->rec.raw_null ? NULL : job->rec.raw_value, job->rec.raw_len,
                               hdrs, n, &job->pub.deliveries[1], err, errlen);
    free(hdrs);
    return rc;
}

static void untimed_push(struct publish *pub, struct job *job)
{
    job->pub.untimed = 1;
    clw_dlist_push(&pub->untimed, &job->pub.link, 0);
}

static void untimed_remove(struct publish *pub, struct job *job)
{
    clw_dlist_remove(&pub->untimed, &job->pub.link);
    job->pub.untimed = 0;
}

/* The job's records go out again after delay ms. */
static void retry_later(struct publish *pub, struct job *job, int64_t delay)
{
    if (job->pub.timer.idx != CLW_TIMER_IDLE || job->pub.untimed)
        return; /* already due */
    if (clw_timers_arm(&pub->timers, &job->pub.timer, clw_clock_mono_ms() + delay) != 0)
        untimed_push(pub, job); /* no memory for a timer: next turn */
}

/* Could not produce: the job says so, and its records go out again later. */
static void unproduced(struct publish *pub, struct job *job, int64_t delay)
{
    clw_job_post(pub->events, job, JEV_UNPRODUCED);
    retry_later(pub, job, delay);
}

void clw_publish_start(struct publish *pub, struct job *job)
{
    if (!job->pub.started) {
        job->pub.started = 1;
        clw_timer_init(&job->pub.timer);
        job->pub.to_send = REC_OUTCOME | (job->rec.dead_letter ? REC_DEAD_LETTER : 0u);
    }
    if (job->pub.out == NULL && encode_outcome(job) != 0) {
        struct clw_log_ctx ctx;
        clw_job_log_ctx(job, &ctx);
        CLW_LOG(CLW_LOG_ERROR, &ctx, "cannot encode the outcome (out of memory); retrying");
        unproduced(pub, job, REPUBLISH_MS);
        return;
    }
    if (clw_txn_ensure(pub->txn) != 0)
        return; /* fatal: the worker stops */
    static const enum pub_record order[] = {REC_OUTCOME, REC_DEAD_LETTER};
    for (size_t i = 0; i < 2; i++) {
        enum pub_record rec = order[i];
        if (!(job->pub.to_send & rec))
            continue;
        char err[256];
        int rc = rec == REC_OUTCOME ? produce_outcome(pub, job, err, sizeof(err))
                                    : produce_dead_letter(pub, job, err, sizeof(err));
        if (rc != 0) {
            if (rc == -2)
                clw_txn_record_failed(pub->txn);
            struct clw_log_ctx ctx;
            clw_job_log_ctx(job, &ctx);
            CLW_LOG(CLW_LOG_WARN, &ctx, "cannot queue the %s: %s; retrying",
                    rec == REC_OUTCOME ? "outcome" : "dead letter", err);
            unproduced(pub, job, REPUBLISH_MS);
            return;
        }
        job->pub.to_send &= ~(unsigned)rec;
        job->pub.unacked |= (unsigned)rec;
    }
    clw_job_post(pub->events, job, JEV_PRODUCED);
}

void clw_publish_again(struct publish *pub, struct job *job)
{
    job->pub.to_send = REC_OUTCOME | (job->rec.dead_letter ? REC_DEAD_LETTER : 0u);
    retry_later(pub, job, 0);
}

void clw_publish_tick(struct publish *pub, int64_t now)
{
    if (clw_txn_busy(pub->txn))
        return;
    while (pub->untimed.head != NULL) {
        struct job *job = CLW_DLIST_ITEM(pub->untimed.head, struct job, pub.link);
        untimed_remove(pub, job);
        clw_publish_start(pub, job);
    }
    for (;;) {
        struct clw_timer *tm = clw_timers_pop_due(&pub->timers, now);
        if (tm == NULL)
            break;
        clw_publish_start(pub, (struct job *)((char *)tm - offsetof(struct job, pub.timer)));
    }
}

int64_t clw_publish_wait_ms(const struct publish *pub, int64_t now, int64_t max_ms)
{
    /* Re-publications wait while a transaction ends (the transaction thread wakes the loop). */
    if (clw_txn_busy(pub->txn))
        return max_ms;
    int64_t wait = max_ms;
    struct clw_timer *tm = clw_timers_peek(&pub->timers);
    if (tm != NULL && tm->due - now < wait)
        wait = tm->due - now;
    if (pub->untimed.len > 0)
        wait = 0;
    return wait < 0 ? 0 : wait;
}

int clw_publish_drop(struct publish *pub, struct job *job)
{
    if (job->pub.started)
        clw_timers_disarm(&pub->timers, &job->pub.timer);
    if (job->pub.untimed)
        untimed_remove(pub, job);
    if (job->pub.unacked == 0)
        return 0;
    /* Records in flight name this job: their delivery reports free it. */
    job->pub.to_send = 0;
    pub->orphans++;
    return 1;
}

size_t clw_publish_orphans(const struct publish *pub)
{
    return pub->orphans;
}

void clw_publish_delivered(struct publish *pub, void *opaque, enum clw_publish_err err,
                           const char *errstr)
{
    struct delivery *d = opaque;
    struct job *job = d->job;
    job->pub.unacked &= ~(unsigned)d->rec;
    if (err != CLW_PUBLISH_OK)
        clw_txn_record_failed(pub->txn); /* whoever's record it was */
    if (!job->part.linked) { /* orphan: its partition is gone, so is the duty to publish */
        if (job->pub.unacked == 0) {
            pub->orphans--;
            clw_job_free(job);
        }
        return;
    }
    int64_t now = clw_clock_mono_ms();
    if (err != CLW_PUBLISH_OK) {
        clw_metrics_set_producer_ok(pub->metrics, 0);
        struct clw_log_ctx ctx;
        clw_job_log_ctx(job, &ctx);
        CLW_LOG(CLW_LOG_WARN, &ctx, "%s not acknowledged: %s; producing it again",
                d->rec == REC_OUTCOME ? "outcome" : "dead letter", errstr);
        if (err == CLW_PUBLISH_STUCK)
            clw_guard_publish_stuck(pub->guard, 1, errstr, now);
        job->pub.to_send |= (unsigned)d->rec;
        unproduced(pub, job,
                   err == CLW_PUBLISH_STUCK ? pub->cfg->retry_max_backoff_ms : REPUBLISH_MS);
        return;
    }
    clw_metrics_set_producer_ok(pub->metrics, 1);
    clw_guard_publish_stuck(pub->guard, 0, NULL, now);
    if (job->pub.unacked != 0 || job->pub.to_send != 0)
        return; /* the other record is still on its way */
    clw_job_post(pub->events, job, JEV_DELIVERED);
}
