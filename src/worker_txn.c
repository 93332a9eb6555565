/* Exactly-once transactions (delivery.mode = exactly_once): outcomes, dead letters and the input
 * offsets they complete commit together, in one Kafka transaction every ~100 ms. The event loop
 * never waits for the broker: a due transaction first waits (woken by delivery reports) until
 * every record is acknowledged, then the transaction thread (kafka.c) sends its offsets and
 * commits it — or aborts it — while the loop keeps turning. Until it ended nothing is produced:
 * new outcomes wait in ORDERED, due re-publications on their timers. What happens to each job
 * is posted as an event (released, committed, aborted). */
#include "worker_txn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clw/clock.h"
#include "clw/log.h"

/* How long a transaction collects outcomes before it commits. */
#define TXN_INTERVAL_MS 100

void clw_txn_init(struct txn *t, int eos, struct clw_kafka *kafka, struct parts *parts,
                  struct job_queue *events)
{
    *t = (struct txn){
        .eos = eos,
        .kafka = kafka,
        .parts = parts,
        .events = events,
    };
}

static void forget_offsets(struct txn *t)
{
    free(t->ids);
    free(t->offs);
    t->ids = NULL;
    t->offs = NULL;
    t->n = 0;
}

void clw_txn_fini(struct txn *t)
{
    forget_offsets(t); /* a commit that did not end before the stop */
}

static void txn_fatal(struct txn *t, const char *msg)
{
    CLW_ERROR("Kafka transaction failed fatally: %s (another instance with the same "
              "transactional.id?); stopping",
              msg);
    t->fatal = 1;
}

int clw_txn_busy(const struct txn *t)
{
    return t->phase >= TXN_FLUSHING;
}

int clw_txn_idle(const struct txn *t)
{
    return t->phase == TXN_IDLE;
}

int clw_txn_ensure(struct txn *t)
{
    if (!t->eos || t->phase != TXN_IDLE)
        return 0;
    char err[512];
    if (clw_kafka_txn_begin(t->kafka, err, sizeof(err)) != 0) {
        txn_fatal(t, err);
        return -1;
    }
    t->phase = TXN_OPEN;
    t->started = clw_clock_mono_ms();
    t->failed = 0;
    return 0;
}

void clw_txn_record_failed(struct txn *t)
{
    if (t->phase != TXN_IDLE)
        t->failed = 1;
}

/* ---- the list of delivered jobs ----------------------------------------------------------------
 */

static void list_push(struct txn *t, struct job *job)
{
    job->txn.listed = 1;
    clw_dlist_push(&t->list, &job->txn.link, 0);
}

static void list_remove(struct txn *t, struct job *job)
{
    clw_dlist_remove(&t->list, &job->txn.link);
    job->txn.listed = 0;
}

static struct job *list_head(const struct txn *t)
{
    return CLW_DLIST_ITEM(t->list.head, struct job, txn.link);
}

void clw_txn_drop(struct txn *t, struct job *job)
{
    if (job->txn.listed)
        list_remove(t, job);
}

void clw_txn_delivered(struct txn *t, struct job *job)
{
    list_push(t, job);
}

/* ---- releasing outcomes in watermark order --------------------------------------------------- */

/* Releases the partition's final outcomes below its commit point to publishing. */
static void release(struct txn *t, struct part *p)
{
    int64_t cp = clw_offsets_commit_point(p->offs);
    int64_t before = p->released;
    if (cp <= before)
        return;
    clw_parts_set_released(p, cp);
    /* Only the outcomes this release covers: one released earlier may still be ORDERED, its
     * event not taken yet. */
    for (struct job *j = clw_parts_first(p); j != NULL; j = clw_parts_next(j))
        if (j->state == JOB_ORDERED && j->rec.offset >= before && j->rec.offset < cp)
            clw_job_post(t->events, j, JEV_RELEASED);
}

static void release_all(struct txn *t)
{
    for (size_t i = 0; i < t->parts->n; i++)
        if (t->parts->parts[i] != NULL)
            release(t, t->parts->parts[i]);
}

/* A final outcome may join a transaction only once every earlier offset of its partition is
 * final too: the transaction commits the partition's watermark, so an outcome above it would
 * commit without its offset and be published again after a crash. Outcomes are therefore
 * released in watermark order (a slow request holds back the publication of later ones), and
 * not while a transaction ends: they join the next one. */
void clw_txn_hold(struct txn *t, struct job *job)
{
    clw_parts_hold(t->parts, job);
    struct part *p = clw_parts_of(t->parts, job);
    if (p != NULL && !clw_txn_busy(t))
        release(t, p);
}

/* 1 while a finished job still has a record to produce again: its offset is released, so no
 * commit may carry it before its outcome is back in the transaction. */
static int republish_pending(const struct txn *t)
{
    for (size_t i = 0; i < t->parts->n; i++)
        for (const struct job *job =
                 t->parts->parts[i] != NULL ? clw_parts_first(t->parts->parts[i]) : NULL;
             job != NULL; job = clw_parts_next(job))
            if (job->state == JOB_REPUBLISH && job->pub.to_send != 0)
                return 1;
    return 0;
}

/* The aborted transaction's outcomes are produced again in the next one. */
static void requeue(struct txn *t)
{
    for (struct job *job; (job = list_head(t)) != NULL;) {
        list_remove(t, job);
        clw_job_post(t->events, job, JEV_ABORTED);
    }
}

static void start_abort(struct txn *t)
{
    char err[512];
    if (clw_kafka_txn_abort_start(t->kafka, err, sizeof(err)) != 0) {
        txn_fatal(t, err);
        return;
    }
    t->phase = TXN_ABORTING;
}

void clw_txn_abort(struct txn *t)
{
    /* A commit under way carries the offsets taken with its outcomes: it commits both or
     * neither, and an abort under way needs nothing more. */
    if (t->phase == TXN_OPEN || t->phase == TXN_FLUSHING)
        start_abort(t);
}

void clw_txn_commit_now(struct txn *t)
{
    if (t->phase == TXN_OPEN)
        t->phase = TXN_FLUSHING;
}

/* The commit could not start (out of memory): the transaction stays open and is tried again
 * when it is next due. */
static void commit_later(struct txn *t, const char *why)
{
    CLW_WARN("cannot commit the Kafka transaction now (%s); trying again", why);
    forget_offsets(t);
    t->phase = TXN_OPEN;
    t->started = clw_clock_mono_ms();
}

/* TXN_FLUSHING: once every record is acknowledged, the transaction thread commits the released
 * commit points. A transaction with a failed delivery cannot commit (librdkafka refuses): it
 * is aborted. While an outcome must be produced again, the transaction stays open. */
static void flushed(struct txn *t)
{
    if (clw_kafka_producer_queue_len(t->kafka) > 0)
        return; /* the delivery reports wake the loop */
    if (t->failed) {
        CLW_WARN("a record of the Kafka transaction was not delivered; aborting it and producing "
                 "its outcomes again");
        start_abort(t);
        return;
    }
    if (republish_pending(t)) {
        t->phase = TXN_OPEN; /* due again after another interval */
        t->started = clw_clock_mono_ms();
        return;
    }
    size_t cap = t->parts->n ? t->parts->n : 1;
    t->ids = calloc(cap, sizeof(*t->ids));
    t->offs = calloc(cap, sizeof(*t->offs));
    if (t->ids == NULL || t->offs == NULL) {
        commit_later(t, "out of memory");
        return;
    }
    for (size_t i = 0; i < t->parts->n; i++) {
        const struct part *p = t->parts->parts[i];
        if (p != NULL && p->released >= 0 && p->released > p->stored) {
            t->ids[t->n] = p->id;
            t->offs[t->n++] = p->released;
        }
    }
    char err[512];
    if (clw_kafka_txn_commit_start(t->kafka, t->ids, t->offs, t->n, err, sizeof(err)) != 0) {
        commit_later(t, err);
        return;
    }
    t->phase = TXN_COMMITTING;
}

/* TXN_COMMITTING, TXN_ABORTING: takes the transaction thread's result once it is there. */
static void ended(struct txn *t)
{
    char err[512];
    enum clw_txn_result r = clw_kafka_txn_poll(t->kafka, err, sizeof(err));
    if (r == CLW_TXN_RUNNING)
        return;
    int committing = t->phase == TXN_COMMITTING;
    t->phase = TXN_IDLE;
    if (r == CLW_TXN_FATAL) {
        forget_offsets(t);
        txn_fatal(t, err);
        return;
    }
    if (r == CLW_TXN_ABORTED) {
        if (committing)
            CLW_WARN("transaction aborted (%s); producing its %zu outcome(s) again", err,
                     t->list.len);
        requeue(t);
    } else {
        for (size_t i = 0; i < t->n; i++) {
            struct part *p = clw_parts_get(t->parts, t->ids[i], 0);
            if (p != NULL)
                clw_parts_set_committed(p, t->offs[i]);
        }
        for (struct job *job; (job = list_head(t)) != NULL;) {
            list_remove(t, job);
            clw_job_post(t->events, job, JEV_COMMITTED);
        }
    }
    forget_offsets(t);
    /* The outcomes that became final meanwhile go into the next transaction. */
    release_all(t);
}

void clw_txn_tick(struct txn *t, int64_t now)
{
    if (!t->eos)
        return;
    if (t->phase == TXN_OPEN && now - t->started >= TXN_INTERVAL_MS)
        t->phase = TXN_FLUSHING;
    if (t->phase == TXN_FLUSHING)
        flushed(t);
    if (t->phase == TXN_COMMITTING || t->phase == TXN_ABORTING)
        ended(t);
}

int64_t clw_txn_wait_ms(const struct txn *t, int64_t now, int64_t max_ms)
{
    if (!t->eos || t->phase != TXN_OPEN)
        return max_ms; /* delivery reports or the transaction thread wake the loop */
    int64_t due = t->started + TXN_INTERVAL_MS - now;
    return due < 0 ? 0 : due < max_ms ? due : max_ms;
}
