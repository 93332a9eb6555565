/* Worker transactions (delivery.mode = exactly_once): outcomes, dead letters and the input
 * offsets they complete commit together, in one Kafka transaction every ~100 ms. The event loop
 * never waits for the broker: a due transaction first waits (woken by delivery reports) until
 * every record is acknowledged, then the transaction thread (kafka.c) sends its offsets and
 * commits it — or aborts it — while the loop keeps turning. Until it ended nothing is produced:
 * new outcomes wait in ORDERED, due re-publications on their timers. */
#include <stdio.h>
#include <stdlib.h>

#include "clw/clock.h"
#include "worker_internal.h"

/* How long a transaction collects outcomes before it commits. */
#define TXN_INTERVAL_MS 100

static void txn_fatal(struct worker *w, const char *msg)
{
    CLW_ERROR("Kafka transaction failed fatally: %s (another instance with the same "
              "transactional.id?); stopping",
              msg);
    w->exit_code = CLW_EXIT_FATAL;
    w->stopping = 1;
}

int clw_worker_txn_busy(const struct worker *w)
{
    return w->txn_phase >= TXN_FLUSHING;
}

/* Opens a transaction before the first record of a batch is produced. Returns 0 or -1. Callers
 * produce only while no end is under way (clw_worker_txn_busy() is 0). */
int clw_worker_txn_ensure(struct worker *w)
{
    if (!w->eos || w->txn_phase != TXN_IDLE)
        return 0;
    char err[512];
    if (clw_kafka_txn_begin(w->kafka, err, sizeof(err)) != 0) {
        txn_fatal(w, err);
        return -1;
    }
    w->txn_phase = TXN_OPEN;
    w->txn_started = clw_clock_mono_ms();
    w->txn_failed = 0;
    return 0;
}

void clw_worker_txn_failed(struct worker *w)
{
    if (w->txn_phase != TXN_IDLE)
        w->txn_failed = 1;
}

/* Releases the partition's final outcomes below its commit point to publishing. */
static void release(struct worker *w, struct part *p)
{
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

/* A final outcome may join a transaction only once every earlier offset of its partition is
 * final too: the transaction commits the partition's watermark, so an outcome above it would
 * commit without its offset and be published again after a crash. Outcomes are therefore
 * released in watermark order (a slow request holds back the publication of later ones), and
 * not while a transaction ends: they join the next one. */
void clw_worker_txn_hold(struct worker *w, struct job *job)
{
    clw_offsets_done(job->part->offs, job->offset);
    if (!clw_worker_txn_busy(w))
        release(w, job->part);
}

/* Every record of the job was delivered in the open transaction; the job waits for the
 * commit. */
void clw_worker_txn_delivered(struct worker *w, struct job *job)
{
    clw_jobq_push(&w->txn, job, 0);
}

/* 1 while a finished job still has a record to produce again: its offset is released, so no
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

static void start_abort(struct worker *w)
{
    char err[512];
    if (clw_kafka_txn_abort_start(w->kafka, err, sizeof(err)) != 0) {
        txn_fatal(w, err);
        return;
    }
    w->txn_phase = TXN_ABORTING;
}

void clw_worker_txn_abort(struct worker *w)
{
    /* A commit under way carries the offsets taken with its outcomes: it commits both or
     * neither, and an abort under way needs nothing more. */
    if (w->txn_phase == TXN_OPEN || w->txn_phase == TXN_FLUSHING)
        start_abort(w);
}

void clw_worker_txn_commit_now(struct worker *w)
{
    if (w->txn_phase == TXN_OPEN)
        w->txn_phase = TXN_FLUSHING;
}

static void forget_offsets(struct worker *w)
{
    free(w->txn_ids);
    free(w->txn_offs);
    w->txn_ids = NULL;
    w->txn_offs = NULL;
    w->txn_n = 0;
}

/* The commit could not start (out of memory): the transaction stays open and is tried again
 * when it is next due. */
static void commit_later(struct worker *w, const char *why)
{
    CLW_WARN("cannot commit the Kafka transaction now (%s); trying again", why);
    forget_offsets(w);
    w->txn_phase = TXN_OPEN;
    w->txn_started = clw_clock_mono_ms();
}

/* TXN_FLUSHING: once every record is acknowledged, the transaction thread commits the released
 * commit points. A transaction with a failed delivery cannot commit (librdkafka refuses): it
 * is aborted. While an outcome must be produced again, the transaction stays open. */
static void flushed(struct worker *w)
{
    if (clw_kafka_producer_queue_len(w->kafka) > 0)
        return; /* the delivery reports wake the loop */
    if (w->txn_failed) {
        CLW_WARN("a record of the Kafka transaction was not delivered; aborting it and producing "
                 "its outcomes again");
        start_abort(w);
        return;
    }
    if (republish_pending(w)) {
        w->txn_phase = TXN_OPEN; /* due again after another interval */
        w->txn_started = clw_clock_mono_ms();
        return;
    }
    size_t cap = w->n_parts ? w->n_parts : 1;
    w->txn_ids = calloc(cap, sizeof(*w->txn_ids));
    w->txn_offs = calloc(cap, sizeof(*w->txn_offs));
    if (w->txn_ids == NULL || w->txn_offs == NULL) {
        commit_later(w, "out of memory");
        return;
    }
    for (size_t i = 0; i < w->n_parts; i++) {
        const struct part *p = w->parts[i];
        if (p != NULL && p->released >= 0 && p->released > p->stored) {
            w->txn_ids[w->txn_n] = p->id;
            w->txn_offs[w->txn_n++] = p->released;
        }
    }
    char err[512];
    if (clw_kafka_txn_commit_start(w->kafka, w->txn_ids, w->txn_offs, w->txn_n, err, sizeof(err)) !=
        0) {
        commit_later(w, err);
        return;
    }
    w->txn_phase = TXN_COMMITTING;
}

/* TXN_COMMITTING, TXN_ABORTING: takes the transaction thread's result once it is there. */
static void ended(struct worker *w)
{
    char err[512];
    enum clw_txn_result r = clw_kafka_txn_poll(w->kafka, err, sizeof(err));
    if (r == CLW_TXN_RUNNING)
        return;
    int committing = w->txn_phase == TXN_COMMITTING;
    w->txn_phase = TXN_IDLE;
    if (r == CLW_TXN_FATAL) {
        forget_offsets(w);
        txn_fatal(w, err);
        return;
    }
    if (r == CLW_TXN_ABORTED) {
        if (committing)
            CLW_WARN("transaction aborted (%s); producing its %zu outcome(s) again", err,
                     w->txn.len);
        requeue(w);
    } else {
        for (size_t i = 0; i < w->txn_n; i++) {
            struct part *p = (size_t)w->txn_ids[i] < w->n_parts ? w->parts[w->txn_ids[i]] : NULL;
            if (p != NULL && w->txn_offs[i] > p->stored)
                p->stored = w->txn_offs[i];
        }
        while (w->txn.head != NULL) {
            struct job *job = w->txn.head;
            clw_jobq_remove(&w->txn, job);
            clw_job_fire(w, job, JEV_COMMITTED);
        }
    }
    forget_offsets(w);
    /* The outcomes that became final meanwhile go into the next transaction. */
    for (size_t i = 0; i < w->n_parts; i++)
        if (w->parts[i] != NULL)
            release(w, w->parts[i]);
}

void clw_worker_txn_tick(struct worker *w, int64_t now)
{
    if (w->txn_phase == TXN_OPEN && now - w->txn_started >= TXN_INTERVAL_MS)
        w->txn_phase = TXN_FLUSHING;
    if (w->txn_phase == TXN_FLUSHING)
        flushed(w);
    if (w->txn_phase == TXN_COMMITTING || w->txn_phase == TXN_ABORTING)
        ended(w);
}

int64_t clw_worker_txn_wait_ms(const struct worker *w, int64_t now, int64_t max_ms)
{
    if (w->txn_phase != TXN_OPEN)
        return max_ms; /* delivery reports or the transaction thread wake the loop */
    int64_t due = w->txn_started + TXN_INTERVAL_MS - now;
    return due < 0 ? 0 : due < max_ms ? due : max_ms;
}

void clw_worker_txn_settle(struct worker *w, int64_t deadline)
{
    for (;;) {
        if (w->exit_code == CLW_EXIT_FATAL)
            return; /* the clients are unusable */
        clw_worker_txn_commit_now(w);
        if (w->txn_phase == TXN_IDLE)
            return;
        int64_t left = deadline - clw_clock_mono_ms();
        if (left <= 0) {
            CLW_WARN("stopping before the Kafka transaction ended; its outcomes are published "
                     "again by the next owner");
            return;
        }
        clw_worker_turn(w, 0, left < 100 ? (int)left : 100);
    }
}
