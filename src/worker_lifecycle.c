/* The life cycle of a job (one consumed request): every state change goes through
 * clw_job_fire() and the table below, which is the only place that says what may follow what
 * and which stage acts next. Where does an offset become committable? In finish() (at least
 * once: the outcome is acknowledged) or in the exactly-once hold (worker_txn.c, committed with
 * the transaction) — both reached only from here. */
#include <stdio.h>
#include <stdlib.h>

#include "clw/clock.h"
#include "worker_internal.h"

enum mode { ANY = 0, AT_LEAST_ONCE, EXACTLY_ONCE };

struct transition {
    enum job_state from;
    enum job_event ev;
    enum mode mode;
    enum job_state to;
    void (*enter)(struct worker *w, struct job *job); /* runs after the state changed */
};

static void enter_gate(struct worker *w, struct job *job);
static void enter_pool(struct worker *w, struct job *job);
static void enter_final(struct worker *w, struct job *job);
static void enter_publish(struct worker *w, struct job *job);
static void enter_txn(struct worker *w, struct job *job);
static void finish(struct worker *w, struct job *job);

/* clang-format off */
static const struct transition transitions[] = {
    /* from            event           mode           to               then */
    {JOB_TAKEN,      JEV_VALID,      ANY,           JOB_GATED,       enter_gate},
    {JOB_TAKEN,      JEV_DECIDED,    ANY,           JOB_FINAL,       enter_final},   /* invalid */
    {JOB_GATED,      JEV_UNGATED,    ANY,           JOB_READY,       enter_pool},
    {JOB_READY,      JEV_PLACED,     ANY,           JOB_IN_CALL,     NULL},
    {JOB_IN_CALL,    JEV_DECIDED,    ANY,           JOB_FINAL,       enter_final},
    {JOB_FINAL,      JEV_HELD,       EXACTLY_ONCE,  JOB_ORDERED,     NULL},
    {JOB_ORDERED,    JEV_RELEASED,   EXACTLY_ONCE,  JOB_FINAL,       enter_publish},
    {JOB_FINAL,      JEV_PRODUCED,   ANY,           JOB_PUBLISHING,  NULL},
    {JOB_FINAL,      JEV_UNPRODUCED, ANY,           JOB_REPUBLISH,   NULL},
    {JOB_REPUBLISH,  JEV_PRODUCED,   ANY,           JOB_PUBLISHING,  NULL},
    {JOB_REPUBLISH,  JEV_UNPRODUCED, ANY,           JOB_REPUBLISH,   NULL},
    {JOB_PUBLISHING, JEV_UNPRODUCED, ANY,           JOB_REPUBLISH,   NULL},
    {JOB_PUBLISHING, JEV_DELIVERED,  AT_LEAST_ONCE, JOB_DONE,        finish},
    {JOB_PUBLISHING, JEV_DELIVERED,  EXACTLY_ONCE,  JOB_IN_TXN,      enter_txn},
    {JOB_IN_TXN,     JEV_COMMITTED,  EXACTLY_ONCE,  JOB_DONE,        finish},
    {JOB_IN_TXN,     JEV_ABORTED,    EXACTLY_ONCE,  JOB_REPUBLISH,   NULL},
};
/* clang-format on */

static const char *const state_names[JOB_STATES] = {
    "taken",   "gated",      "ready",     "in_call", "final",
    "ordered", "publishing", "republish", "in_txn",  "done",
};

static const char *const event_names[JEV_EVENTS] = {
    "valid",      "ungated",  "placed",    "decided",   "held",    "produced",
    "unproduced", "released", "delivered", "committed", "aborted",
};

const char *clw_job_state_name(enum job_state s)
{
    return s < JOB_STATES ? state_names[s] : "?";
}

void clw_job_fire(struct worker *w, struct job *job, enum job_event ev)
{
    enum mode mode = w->eos && job->part != NULL ? EXACTLY_ONCE : AT_LEAST_ONCE;
    for (size_t i = 0; i < sizeof(transitions) / sizeof(transitions[0]); i++) {
        const struct transition *t = &transitions[i];
        if (t->from != job->state || t->ev != ev || (t->mode != ANY && t->mode != mode))
            continue;
        job->state = t->to;
        if (t->enter != NULL)
            t->enter(w, job);
        return;
    }
    /* A stage reported something the table does not allow: a bug, never input. */
    struct clw_log_ctx ctx;
    clw_job_log_ctx(job, &ctx);
    CLW_LOG(CLW_LOG_ERROR, &ctx, "internal: event %s in state %s ignored",
            ev < JEV_EVENTS ? event_names[ev] : "?", clw_job_state_name(job->state));
}

int clw_job_started(const struct job *job)
{
    return job->attempts > 0 || job->state >= JOB_FINAL;
}

void clw_job_log_ctx(const struct job *job, struct clw_log_ctx *ctx)
{
    ctx->request_id = job->req.request_id;
    ctx->topic = job->w->cfg->topic_requests;
    ctx->partition = job->part != NULL ? job->part->id : -1;
    ctx->offset = job->offset;
    ctx->trace_id = job->trace_id[0] ? job->trace_id : NULL;
}

/* Out of memory where a record cannot be kept pending: stop, so that nothing commits past it
 * (its offset stays pending) and the next owner redoes it. */
static void out_of_memory(struct worker *w, struct job *job, const char *what)
{
    struct clw_log_ctx ctx;
    clw_job_log_ctx(job, &ctx);
    CLW_LOG(CLW_LOG_ERROR, &ctx, "out of memory %s; stopping (exit 2) so that nothing is lost",
            what);
    w->exit_code = CLW_EXIT_FATAL;
    w->stopping = 1;
}

static void enter_gate(struct worker *w, struct job *job)
{
    if (clw_sched_submit(w, job) != 0)
        out_of_memory(w, job, "entering the per-instance gate");
}

static void enter_pool(struct worker *w, struct job *job)
{
    clw_sched_pool_add(w, job);
}

void clw_job_decide(struct worker *w, struct job *job, int succeeded, const char *error_class)
{
    job->succeeded = succeeded;
    job->error_class = error_class;
    clw_job_fire(w, job, JEV_DECIDED);
}

/* The outcome is final: later requests on the same instances may start, and it goes to
 * publishing (exactly-once: in offset order, see worker_txn.c). */
static void enter_final(struct worker *w, struct job *job)
{
    job->completed_ms = clw_clock_wall_ms();
    if (job->part != NULL && job->offset > job->part->max_final)
        job->part->max_final = job->offset;
    struct clw_log_ctx ctx;
    clw_job_log_ctx(job, &ctx);
    CLW_LOG(job->succeeded ? CLW_LOG_DEBUG : CLW_LOG_INFO, &ctx,
            "outcome %s%s%s after %d attempt(s)", job->succeeded ? "succeeded" : "failed",
            job->error_class ? ": " : "", job->error_class ? job->error_class : "", job->attempts);
    job->to_send |= REC_OUTCOME;
    clw_sched_release(w, job);
    if (w->eos && job->part != NULL) {
        clw_job_fire(w, job, JEV_HELD);
        clw_worker_txn_hold(w, job);
    } else {
        clw_publish_start(w, job);
    }
}

static void enter_publish(struct worker *w, struct job *job)
{
    clw_publish_start(w, job);
}

static void enter_txn(struct worker *w, struct job *job)
{
    clw_worker_txn_delivered(w, job);
}

/* Acknowledged (at least once), or committed (exactly once): the request is done. At least
 * once, its offset is marked done here and the partition's commit point stored when it moved. */
static void finish(struct worker *w, struct job *job)
{
    clw_metrics_request_done(w->metrics, job->req.has_action, job->req.action, job->succeeded,
                             job->error_class,
                             (double)(clw_clock_mono_ms() - job->received_mono) / 1000.0);
    if (!job->req.valid && w->cfg->topic_dlq[0] != '\0')
        clw_metrics_dead_letter(w->metrics); /* its dead letter went out with the outcome */
    struct part *p = job->part;
    int64_t offset = job->offset;
    clw_job_free(job);
    if (p == NULL)
        return;
    if (!w->eos) {
        clw_offsets_done(p->offs, offset);
        clw_offsets_advance(w, p);
    } else {
        clw_worker_window_check(w, p);
    }
}

void clw_job_abandon(struct worker *w, struct job *job)
{
    clw_timers_disarm(&w->timers, &job->timer);
    if (job->untimed) {
        clw_jobq_remove(&w->untimed, job);
        job->untimed = 0;
    }
    if (job->state == JOB_IN_TXN)
        clw_jobq_remove(&w->txn, job);
    clw_sched_drop(w, job);
    if (job->unacked != 0) {
        /* Records in flight name this job: their delivery reports free it. */
        job->to_send = 0;
        clw_part_unlink(job);
        w->orphans++;
        return;
    }
    clw_job_free(job);
}

void clw_job_free(struct job *job)
{
    clw_part_unlink(job);
    clw_request_free(&job->req);
    if (job->last != NULL)
        clw_shared_answer_put(job->last);
    free(job->group);
    free(job->found);
    free(job->key);
    for (size_t i = 0; i < job->n_hdrs; i++) {
        free((char *)job->hdrs[i].name);
        free((void *)job->hdrs[i].value);
    }
    free(job->hdrs);
    for (size_t i = 0; i < job->n_raw_hdrs; i++) {
        free((char *)job->raw_hdrs[i].name);
        free((void *)job->raw_hdrs[i].value);
    }
    free(job->raw_hdrs);
    free(job->raw_value);
    free(job->out);
    free(job);
}
