/* The flow: drains the job events the stages posted and runs the action the job's table names —
 * the only caller of the transition function. Drained at a safe time, after each phase of the
 * loop, never from inside a stage. Every field below is written only by worker_flow.c. */
#ifndef CLW_WORKER_FLOW_H
#define CLW_WORKER_FLOW_H

#include "clw/metrics.h"
#include "worker_job.h"
#include "worker_part.h"
#include "worker_publish.h"
#include "worker_sched.h"
#include "worker_txn.h"

struct flow {
    struct job_queue events;     /* what the stages posted */
    int eos;                     /* delivery.mode = exactly_once */
    int draining;                /* inside clw_flow_drain (it is never re-entered) */
    int failed;                  /* an action ran out of memory: the worker stops (exit 2) */
    struct sched *sched;         /* borrowed */
    struct parts *parts;         /* borrowed */
    struct publish *pub;         /* borrowed */
    struct txn *txn;             /* borrowed */
    struct clw_metrics *metrics; /* borrowed */
};

void clw_flow_init(struct flow *f, int eos, struct sched *sched, struct parts *parts,
                   struct publish *pub, struct txn *txn, struct clw_metrics *metrics);
/* Applies every pending event, and those its actions post, in order. */
void clw_flow_drain(struct flow *f);
/* A new start after a stop (the test harness): an earlier failure is forgotten. */
void clw_flow_clear_failure(struct flow *f);
/* The job is abandoned: its pending events are dropped. */
void clw_flow_forget(struct flow *f, struct job *job);

#endif
