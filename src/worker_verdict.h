/* Verdicts: what an answer means for every member of the call it answered, read against what
 * the attempt carried: members decided (job events), calls split, reconciled, followed, retried
 * or held, all through the stages below it. Every field below, and the job and call slices
 * named for it, are written only by worker_verdict.c. */
#ifndef CLW_WORKER_VERDICT_H
#define CLW_WORKER_VERDICT_H

#include <stdint.h>

#include "clw/answer.h"
#include "clw/classify.h"
#include "clw/config.h"
#include "clw/metrics.h"
#include "worker_callobj.h"
#include "worker_guard.h"
#include "worker_job.h"
#include "worker_sched.h"

struct verdict {
    uint64_t rng;                 /* backoff jitter */
    const struct clw_config *cfg; /* borrowed */
    struct job_queue *events;     /* borrowed */
    struct sched *sched;          /* borrowed */
    struct guard *guard;          /* borrowed: paused time, worker faults */
    struct clw_metrics *metrics;  /* borrowed */
};

void clw_verdict_init(struct verdict *v, uint64_t seed, const struct clw_config *cfg,
                      struct job_queue *events, struct sched *sched, struct guard *guard,
                      struct clw_metrics *metrics);

/* The answer (ownership taken) to an Attach/Detach call being decided. sent: the request
 * reached the server (an unanswered failure may have taken effect). */
void clw_verdict_action(struct verdict *v, struct call *call, struct clw_answer *ans,
                        enum clw_class cls, const char *why, int sent, int64_t now);
/* The answer to a listing of the VPC's links (reconciliation). */
void clw_verdict_links(struct verdict *v, struct call *call, struct clw_answer *ans,
                       enum clw_class cls, int64_t now);
/* The answer to a task poll. */
void clw_verdict_task(struct verdict *v, struct call *call, struct clw_answer *ans,
                      enum clw_class cls, int64_t now);

#endif
