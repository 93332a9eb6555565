/* Worker transactions (delivery.mode = exactly_once): outcomes, dead letters and the input
 * offsets they complete commit together, in one Kafka transaction every ~100 ms. */
#include <stdio.h>
#include <stdlib.h>

#include "clw/clock.h"
#include "worker_internal.h"

/* How long a transaction collects outcomes before it commits. */
#define TXN_INTERVAL_MS 100
#define TXN_TIMEOUT_MS  30000

static void txn_fatal(struct worker *w, const char *msg)
{
    CLW_ERROR("Kafka transaction failed fatally: %s (another instance with the same "
              "transactional.id?); stopping",
              msg);
    w->exit_code = CLW_EXIT_FATAL;
    w->stopping = 1;
}

/* Opens a transaction before the first record of a batch is produced. Returns 0 or -1. */
int clw_worker_txn_ensure(struct worker *w)
{
    if (!w->eos || w->in_txn)
        return 0;
    char err[512];
    if (clw_kafka_txn_begin(w->kafka, err, sizeof(err)) != 0) {
        txn_fatal(w, err);
        return -1;
    }
    w->in_txn = 1;
    w->txn_started = clw_clock_mono_ms();
    return 0;
}

/* A final outcome may join a transaction only once every earlier offset of its partition is
 * final too: the transaction commits the partition's watermark, so an outcome above it would
 * commit without its offset and be published again after a crash. Outcomes are therefore
 * released in watermark order (a slow request holds back the publication of later ones). */
void clw_worker_txn_hold(struct worker *w, struct job *job)
{
    struct part *p = job->part;
    clw_offsets_done(p->offs, job->offset);
    int64_t cp = clw_offsets_commit_point(p->offs);
    if (cp <= p->released)
        return;
    p->released = cp;
    struct job *next;
    for (struct job *j = p->jobs; j != NULL; j = next) {
        next = j->pnext;
        if (j->state == JOB_ORDERED && j->offset < cp)
            clw_job_fire(w, j, JEV_RELEASED);
    }
}

/* Every record of the job was delivered in the open transaction; the job waits for the
 * commit. */
void clw_worker_txn_delivered(struct worker *w, struct job *job)
{
    clw_jobq_push(&w->txn, job, 0);
}

/* 1 while a finished job still has a record to produce again: its offset is marked done, so no
 * commit may carry it before its outcome is back in the transaction. */
static int republish_pending(const struct worker *w)
{
    for (size_t i = 0; i < w->n_parts; i++)
        for (const struct job *job = w->parts[i] ? w->parts[i]->jobs : NULL; job != NULL;
             job = job->pnext)
            if (job->state == JOB_REPUBLISH && job->to_send != 0)
                return 1;
    return 0;
}

/* The aborted transaction's outcomes are produced again in the next one. */
static void requeue(struct worker *w)
{
    while (w->txn.head != NULL) {
        struct job *job = w->txn.head;
        clw_jobq_remove(&w->txn, job);
        job->to_send = REC_OUTCOME;
        if (w->cfg->topic_dlq[0] != '\0' && !job->req.valid)
            job->to_send |= REC_DEAD_LETTER;
        clw_job_fire(w, job, JEV_ABORTED);
        clw_publish_retry_later(w, job, 0);
    }
}

void clw_worker_txn_abort(struct worker *w)
{
    if (!w->in_txn)
        return;
    char err[512];
    w->in_txn = 0;
    if (clw_kafka_txn_abort(w->kafka, TXN_TIMEOUT_MS, err, sizeof(err)) != 0) {
        txn_fatal(w, err);
        return;
    }
    requeue(w);
}

void clw_worker_txn_commit(struct worker *w)
{
    if (!w->in_txn)
        return;
    /* Every record produced so far is acknowledged first (delivery reports are served). */
    clw_kafka_flush(w->kafka, TXN_TIMEOUT_MS);
    if (republish_pending(w))
        return; /* the next tick commits, once those outcomes are back in */
    int32_t *ids = calloc(w->n_parts ? w->n_parts : 1, sizeof(*ids));
    int64_t *offs = calloc(w->n_parts ? w->n_parts : 1, sizeof(*offs));
    size_t n = 0;
    if (ids == NULL || offs == NULL)
        goto out;
    for (size_t i = 0; i < w->n_parts; i++) {
        struct part *p = w->parts[i];
        if (p == NULL)
            continue;
        int64_t cp = clw_offsets_commit_point(p->offs);
        if (cp >= 0 && cp > p->stored) {
            ids[n] = p->id;
            offs[n++] = cp;
        }
    }
    char err[512];
    enum clw_txn_result r =
        clw_kafka_txn_commit(w->kafka, ids, offs, n, TXN_TIMEOUT_MS, err, sizeof(err));
    w->in_txn = 0;
    if (r == CLW_TXN_FATAL) {
        txn_fatal(w, err);
        goto out;
    }
    if (r == CLW_TXN_ABORTED) {
        CLW_WARN("transaction aborted (%s); producing its %zu outcome(s) again", err, w->txn.len);
        requeue(w);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        w->parts[ids[i]]->stored = offs[i];
    while (w->txn.head != NULL) {
        struct job *job = w->txn.head;
        clw_jobq_remove(&w->txn, job);
        clw_job_fire(w, job, JEV_COMMITTED);
    }
out:
    free(ids);
    free(offs);
}

void clw_worker_txn_tick(struct worker *w, int64_t now)
{
    if (w->in_txn && now - w->txn_started >= TXN_INTERVAL_MS)
        clw_worker_txn_commit(w);
}
