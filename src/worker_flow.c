/* The flow: job events in, the next stage called. A stage that is done with a job posts an event
 * (worker_job.h); the flow takes them in order at a safe time — after each phase of the loop —
 * applies the job's table (clw_job_step, called from here only) and runs the action it names.
 * So no stage calls the stage after it, and no transition runs inside another. */
#include "worker_flow.h"

#include <stdlib.h>

#include "clw/clock.h"
#include "clw/log.h"

void clw_flow_init(struct flow *f, int eos, struct sched *sched, struct parts *parts,
                   struct publish *pub, struct txn *txn, struct clw_metrics *metrics)
{
    *f = (struct flow){
        .eos = eos,
        .sched = sched,
        .parts = parts,
        .pub = pub,
        .txn = txn,
        .metrics = metrics,
    };
}

void clw_flow_clear_failure(struct flow *f)
{
    f->failed = 0;
}

void clw_flow_forget(struct flow *f, struct job *job)
{
    clw_job_forget_events(&f->events, job);
}

/* Out of memory where a job cannot be kept: the worker stops, so that nothing commits past it
 * (its offset stays pending) and the next owner redoes it. */
static void out_of_memory(struct flow *f, const struct job *job, const char *what)
{
    struct clw_log_ctx ctx;
    clw_job_log_ctx(job, &ctx);
    CLW_LOG(CLW_LOG_ERROR, &ctx, "out of memory %s; stopping (exit 2) so that nothing is lost",
            what);
    f->failed = 1;
}

/* The outcome is final: later requests on the same instances may start. */
static void finalize(struct flow *f, struct job *job)
{
    clw_parts_final(f->parts, job);
    clw_sched_release(f->sched, job);
    struct clw_log_ctx ctx;
    clw_job_log_ctx(job, &ctx);
    CLW_LOG(job->succeeded ? CLW_LOG_DEBUG : CLW_LOG_INFO, &ctx,
            "outcome %s%s%s after %d attempt(s)", job->succeeded ? "succeeded" : "failed",
            job->error_class ? ": " : "", job->error_class ? job->error_class : "",
            job->att.attempts);
}

/* Acknowledged (at least once), or committed (exactly once): the request is done. */
static void finish(struct flow *f, struct job *job)
{
    clw_metrics_request_done(f->metrics, job->rec.req.has_action, job->rec.req.action,
                             job->succeeded, job->error_class,
                             (double)(clw_clock_mono_ms() - job->rec.received_mono) / 1000.0);
    if (job->rec.dead_letter)
        clw_metrics_dead_letter(f->metrics); /* its dead letter went out with the outcome */
    int32_t partition = job->rec.partition;
    int64_t offset = job->rec.offset;
    clw_parts_unlink(f->parts, job);
    clw_job_free(job);
    clw_parts_done(f->parts, partition, offset);
}

static void act(struct flow *f, struct job *job, enum job_state from, enum job_action action)
{
    switch (action) {
    case JACT_NONE:
        break;
    case JACT_GATE:
        if (clw_sched_submit(f->sched, job) != 0)
            out_of_memory(f, job, "entering the per-instance gate");
        break;
    case JACT_POOL:
        if (clw_sched_pool_add(f->sched, job) != 0)
            out_of_memory(f, job, "queueing a request");
        break;
    case JACT_PUBLISH:
        if (from != JOB_ORDERED) /* exactly-once: finalized when it was held */
            finalize(f, job);
        clw_publish_start(f->pub, job);
        break;
    case JACT_HOLD:
        finalize(f, job);
        clw_txn_hold(f->txn, job);
        break;
    case JACT_TXN:
        clw_txn_delivered(f->txn, job);
        break;
    case JACT_FINISH:
        finish(f, job);
        break;
    case JACT_REPUBLISH:
        clw_publish_again(f->pub, job);
        break;
    case JOB_ACTIONS:
        break;
    }
}

void clw_flow_drain(struct flow *f)
{
    if (f->draining) {
        /* A stage ran the loop from inside an action: the shape of the core forbids it. */
        CLW_ERROR("internal: job events drained re-entrantly");
        abort();
    }
    f->draining = 1;
    struct job *job;
    enum job_event ev;
    while (clw_job_next_event(&f->events, &job, &ev)) {
        enum job_state from = job->state;
        enum job_action action;
        if (clw_job_step(job, ev, f->eos, &action) != 0) {
            /* A stage reported something the table does not allow: a bug, never input. */
            struct clw_log_ctx ctx;
            clw_job_log_ctx(job, &ctx);
            CLW_LOG(CLW_LOG_ERROR, &ctx, "internal: event %s in state %s ignored",
                    clw_job_event_name(ev), clw_job_state_name(from));
            continue;
        }
        act(f, job, from, action);
    }
    f->draining = 0;
}
