/* Worker intake: records become jobs; partitions are assigned, paused, drained and forgotten. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clw/alloc.h"
#include "clw/clock.h"
#include "clw/coalesce.h"
#include "worker_internal.h"

/* Request headers carried unchanged to the outcome (contract section 3). */
static const char *const carried_headers[] = {"traceparent", "tracestate", "baggage",
                                              "kafka_correlationId", "x-request-id"};

static struct part *part_get(struct worker *w, int32_t id, int create)
{
    if (id < 0)
        return NULL;
    if ((size_t)id >= w->n_parts) {
        if (!create)
            return NULL;
        size_t n = (size_t)id + 1;
        struct part **p = clw_realloc(w->parts, n * sizeof(*p));
        if (p == NULL)
            return NULL;
        for (size_t i = w->n_parts; i < n; i++)
            p[i] = NULL;
        w->parts = p;
        w->n_parts = n;
    }
    if (w->parts[id] == NULL && create) {
        struct part *p = clw_calloc(1, sizeof(*p));
        if (p == NULL)
            return NULL;
        p->id = id;
        p->stored = -1;
        p->max_final = -1;
        p->released = -1;
        p->offs = clw_offsets_new();
        if (p->offs == NULL) {
            free(p);
            return NULL;
        }
        w->parts[id] = p;
    }
    return w->parts[id];
}

static void part_link(struct part *p, struct job *job)
{
    job->part = p;
    job->pprev = NULL;
    job->pnext = p->jobs;
    if (p->jobs != NULL)
        p->jobs->pprev = job;
    p->jobs = job;
    p->n_jobs++;
    job->w->taken++;
}

void clw_part_unlink(struct job *job)
{
    struct part *p = job->part;
    if (p == NULL)
        return;
    if (job->pprev != NULL)
        job->pprev->pnext = job->pnext;
    else
        p->jobs = job->pnext;
    if (job->pnext != NULL)
        job->pnext->pprev = job->pprev;
    job->pprev = job->pnext = NULL;
    p->n_jobs--;
    job->w->taken--;
    job->part = NULL;
}

void clw_worker_sync_pause(struct worker *w, struct part *p)
{
    int want = p->window_paused || w->fault_active || w->circuit_open || w->publish_stuck ||
               w->commits_stalled || w->stopping;
    if (p->revoking || want == p->fetch_paused)
        return;
    clw_kafka_pause(w->kafka, p->id, want);
    p->fetch_paused = want;
    CLW_DEBUG("partition %d %s", (int)p->id, want ? "paused" : "resumed");
}

void clw_worker_sync_all_pauses(struct worker *w)
{
    for (size_t i = 0; i < w->n_parts; i++)
        if (w->parts[i] != NULL)
            clw_worker_sync_pause(w, w->parts[i]);
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
    job->hdrs = clw_calloc(n, sizeof(*job->hdrs));
    if (job->hdrs == NULL)
        return -1;
    for (size_t i = 0; i < msg->n_headers; i++) {
        const struct clw_kafka_header *h = &msg->headers[i];
        if (!is_carried(h->name))
            continue;
        if (copy_header(&job->hdrs[job->n_hdrs], h) != 0)
            return -1;
        const char *v = job->hdrs[job->n_hdrs++].value;
        /* traceparent = version "-" trace-id (32 hex) "-" parent-id "-" flags */
        if (strcmp(h->name, "traceparent") == 0 && v != NULL && h->value_len >= 36 && v[2] == '-' &&
            v[35] == '-') {
            memcpy(job->trace_id, v + 3, 32);
            job->trace_id[32] = '\0';
        }
    }
    return 0;
}

/* Keeps the original value and headers of an invalid record for the dead-letter topic. */
static int keep_raw(struct job *job, const struct clw_kafka_msg *msg)
{
    job->raw_null = msg->value == NULL;
    if (msg->value != NULL) {
        job->raw_value = clw_malloc(msg->value_len ? msg->value_len : 1);
        if (job->raw_value == NULL)
            return -1;
        memcpy(job->raw_value, msg->value, msg->value_len);
        job->raw_len = msg->value_len;
    }
    if (msg->n_headers == 0)
        return 0;
    job->raw_hdrs = clw_calloc(msg->n_headers, sizeof(*job->raw_hdrs));
    if (job->raw_hdrs == NULL)
        return -1;
    for (size_t i = 0; i < msg->n_headers; i++) {
        if (copy_header(&job->raw_hdrs[job->n_raw_hdrs], &msg->headers[i]) != 0)
            return -1;
        job->n_raw_hdrs++;
    }
    return 0;
}

/* The per-partition window: pause at worker.max_pending_per_partition records pending, resume
 * at half (pausing drops prefetched records, so it must not flap). */
void clw_worker_window_check(struct worker *w, struct part *p)
{
    size_t pending = clw_offsets_pending(p->offs);
    size_t max = (size_t)w->cfg->worker_max_pending_per_partition;
    if (!p->window_paused && pending >= max) {
        p->window_paused = 1;
        clw_worker_sync_pause(w, p);
    } else if (p->window_paused && pending <= max / 2) {
        p->window_paused = 0;
        clw_worker_sync_pause(w, p);
    }
}

/* Out of memory while taking a record: stop, so that nothing commits past it (its offset stays
 * pending, or was never taken) and the next owner redoes it. Exit status 2. */
static void intake_oom(struct worker *w, const struct clw_kafka_msg *msg)
{
    CLW_ERROR("out of memory taking %s [%d] offset %lld; stopping (exit 2) so that nothing is "
              "lost",
              msg->topic, (int)msg->partition, (long long)msg->offset);
    w->exit_code = CLW_EXIT_FATAL;
    w->stopping = 1;
}

/* The record's default request id and, for a valid request, its coalescing key. */
static int job_decode(struct worker *w, struct job *job, const struct clw_kafka_msg *msg)
{
    char default_id[300];
    snprintf(default_id, sizeof(default_id), "%s:%d:%lld", msg->topic, (int)msg->partition,
             (long long)msg->offset);
    if (clw_request_parse(&job->req, msg->value, msg->value_len, default_id, &w->limits) != 0)
        return -1;
    if (!job->req.valid)
        return 0;
    char key[512];
    if (clw_coalesce_key(key, sizeof(key), job->req.action, job->req.region, job->req.vpc_id) != 0)
        return -1; /* validated ids are short: cannot happen */
    job->group = clw_strdup(key);
    return job->group != NULL ? 0 : -1;
}

void clw_worker_on_message(void *arg, const struct clw_kafka_msg *msg)
{
    struct worker *w = arg;
    if (w->stopping)
        return; /* not taken: redone after the restart */
    struct part *p = part_get(w, msg->partition, 1);
    if (p == NULL) {
        intake_oom(w, msg);
        return;
    }
    int added = clw_offsets_add(p->offs, msg->offset);
    if (added < 0) {
        intake_oom(w, msg);
        return;
    }
    if (added > 0) {
        /* Already taken in this assignment (a re-delivery): its first copy is in progress. */
        CLW_DEBUG("skipping re-delivered %s [%d] offset %lld", msg->topic, (int)msg->partition,
                  (long long)msg->offset);
        return;
    }
    clw_metrics_consumed(w->metrics);
    struct job *job = clw_calloc(1, sizeof(*job));
    if (job == NULL) {
        intake_oom(w, msg);
        return;
    }
    job->w = w;
    job->offset = msg->offset;
    job->enqueued_ms = msg->timestamp_ms;
    job->received_ms = clw_clock_wall_ms();
    job->received_mono = clw_clock_mono_ms();
    clw_timer_init(&job->timer);
    part_link(p, job);
    if (msg->key != NULL) {
        job->key = clw_malloc(msg->key_len + 1);
        if (job->key == NULL)
            goto oom;
        memcpy(job->key, msg->key, msg->key_len);
        job->key[msg->key_len] = '\0';
        job->key_len = msg->key_len;
    }
    if (copy_headers(job, msg) != 0 || job_decode(w, job, msg) != 0)
        goto oom;
    struct clw_log_ctx ctx;
    clw_job_log_ctx(job, &ctx);
    if (!job->req.valid) {
        CLW_LOG(CLW_LOG_INFO, &ctx, "invalid request: %s: %s", job->req.reason,
                job->req.detail ? job->req.detail : "");
        if (w->cfg->topic_dlq[0] != '\0') {
            if (keep_raw(job, msg) != 0)
                goto oom;
            job->to_send |= REC_DEAD_LETTER;
        }
        clw_job_decide(w, job, 0, "invalid_request");
    } else {
        CLW_LOG(CLW_LOG_DEBUG, &ctx, "request taken: %s %s, %zu instance(s)",
                clw_action_name(job->req.action), job->req.vpc_id, job->req.n_instances);
        clw_job_fire(w, job, JEV_VALID);
    }
    clw_worker_window_check(w, p);
    return;
oom:
    /* The offset stays pending: never committed past, redone after the restart. */
    clw_job_free(job);
    intake_oom(w, msg);
}

void clw_worker_on_assigned(void *arg, const int32_t *partitions, size_t n)
{
    struct worker *w = arg;
    for (size_t i = 0; i < n; i++) {
        struct part *p = part_get(w, partitions[i], 1);
        if (p == NULL) {
            CLW_ERROR("out of memory assigning partition %d", (int)partitions[i]);
            continue;
        }
        p->revoking = 0;
    }
    w->joined = 1;
    size_t assigned = 0;
    for (size_t i = 0; i < w->n_parts; i++)
        assigned += w->parts[i] != NULL;
    clw_metrics_set_group(w->metrics, 1, (int)assigned);
    clw_worker_sync_all_pauses(w);
}

void clw_worker_forget_part(struct worker *w, struct part *p)
{
    struct job *next;
    for (struct job *job = p->jobs; job != NULL; job = next) {
        next = job->pnext; /* abandoning frees this job only */
        clw_job_abandon(w, job);
    }
    w->parts[p->id] = NULL;
    clw_metrics_forget_partition(w->metrics, p->id);
    clw_offsets_free(p->offs);
    free(p);
}

/* Winds a partition down before it is revoked or the worker stops. The drain limit is the
 * highest offset whose request was sent or has an outcome: every request at or below it must
 * finish (even with retries), so that the commit point can pass every outcome published;
 * requests above it have not started and are abandoned — the next owner redoes them. */
static void part_wind_down(struct worker *w, struct part *p)
{
    int64_t limit = p->max_final;
    for (struct job *job = p->jobs; job != NULL; job = job->pnext)
        if (clw_job_started(job) && job->offset > limit)
            limit = job->offset;
    struct job *next;
    for (struct job *job = p->jobs; job != NULL; job = next) {
        next = job->pnext;
        if (job->offset > limit)
            clw_job_abandon(w, job);
    }
}

void clw_worker_drain_parts(struct worker *w, struct part **parts, size_t n, int64_t deadline)
{
    for (size_t i = 0; i < n; i++)
        part_wind_down(w, parts[i]);
    for (;;) {
        int busy = 0;
        int waiting_commit = 0;
        for (size_t i = 0; i < n; i++)
            for (const struct job *job = parts[i]->jobs; job != NULL; job = job->pnext) {
                busy = 1;
                waiting_commit |= job->state == JOB_IN_TXN;
            }
        int64_t left = deadline - clw_clock_mono_ms();
        if (!busy || left <= 0)
            break;
        if (waiting_commit)
            clw_worker_txn_commit_now(w); /* exactly-once: commit what finished */
        clw_worker_turn(w, 0, left < 100 ? (int)left : 100);
    }
}

void clw_worker_commit_stored(struct worker *w, struct part **parts, size_t n)
{
    int32_t *ids = clw_calloc(n ? n : 1, sizeof(*ids));
    int64_t *offs = clw_calloc(n ? n : 1, sizeof(*offs));
    size_t k = 0;
    if (ids == NULL || offs == NULL) {
        CLW_WARN("out of memory committing; the offsets go with the next automatic commit");
    } else {
        for (size_t i = 0; i < n; i++)
            if (parts[i]->stored >= 0) {
                ids[k] = parts[i]->id;
                offs[k++] = parts[i]->stored;
            }
        if (clw_kafka_commit(w->kafka, ids, offs, k) != 0)
            clw_metrics_commit_failed(w->metrics);
    }
    free(ids);
    free(offs);
}

void clw_worker_on_revoked(void *arg, const int32_t *partitions, size_t n, int lost)
{
    struct worker *w = arg;
    struct part **list = clw_calloc(n ? n : 1, sizeof(*list));
    size_t k = 0;
    for (size_t i = 0; i < n && list != NULL; i++) {
        struct part *p = part_get(w, partitions[i], 0);
        if (p != NULL) {
            p->revoking = 1;
            list[k++] = p;
        }
    }
    /* Exactly-once: a lost assignment's outcomes must not commit without their offsets (the
     * abort runs on the transaction thread; what it discards is produced again only for the
     * partitions still assigned). */
    if (lost && w->eos)
        clw_worker_txn_abort(w);
    /* A lost assignment stores nothing; a stopping worker has drained already. Otherwise the
     * revoked partitions' work finishes within the limit, every acknowledgement storing its
     * partition's new commit point. */
    if (!lost && !w->stopping && list != NULL)
        clw_worker_drain_parts(w, list, k,
                               clw_clock_mono_ms() + w->cfg->worker_shutdown_timeout_ms);
    /* The new owner starts from the committed offsets: commit now and wait (exactly-once:
     * the transactions committed them). A stopping worker committed before leaving the group:
     * here it runs inside rd_kafka_consumer_close(), where a synchronous commit hung or tripped
     * librdkafka 2.0.2's assertion "!rd_kafka_assignment_in_progress" (the close itself commits
     * what is stored). */
    if (!lost && !w->eos && !w->stopping && list != NULL && w->exit_code != CLW_EXIT_FATAL)
        clw_worker_commit_stored(w, list, k);
    free(list);
    for (size_t i = 0; i < n; i++) {
        struct part *p = part_get(w, partitions[i], 0);
        if (p == NULL)
            continue;
        if (p->n_jobs > 0)
            CLW_WARN("partition %d revoked with %zu request(s) unfinished; the next owner redoes "
                     "them",
                     (int)p->id, p->n_jobs);
        clw_worker_forget_part(w, p);
    }
    size_t assigned = 0;
    for (size_t i = 0; i < w->n_parts; i++)
        assigned += w->parts[i] != NULL;
    clw_metrics_set_group(w->metrics, w->joined, (int)assigned);
}
