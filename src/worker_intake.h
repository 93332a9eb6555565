/* Intake: a consumed record becomes a job (decoded, validated, its carried headers copied) in its
 * partition's list. Every field below, and the job's record slice, are written only by
 * worker_intake.c. */
#ifndef CLW_WORKER_INTAKE_H
#define CLW_WORKER_INTAKE_H

#include <stddef.h>

#include "clw/config.h"
#include "clw/kafka.h"
#include "clw/metrics.h"
#include "clw/request.h"
#include "worker_job.h"
#include "worker_part.h"

struct intake {
    struct clw_request_limits limits;
    size_t taken_cap; /* no more records are taken beyond this many pending (flow control) */
    const struct clw_config *cfg; /* borrowed */
    struct parts *parts;          /* borrowed */
    struct clw_metrics *metrics;  /* borrowed */
    struct job_queue *events;     /* borrowed */
};

void clw_intake_init(struct intake *in, const struct clw_config *cfg, struct parts *parts,
                     struct clw_metrics *metrics, struct job_queue *events);

/* Takes a record: a new job in its partition (JEV_VALID posted, or an invalid request decided).
 * Returns 0, or -1 when out of memory (the offset stays pending or was never taken: the worker
 * must stop, so that nothing commits past it). A re-delivered record is skipped (0). */
int clw_intake_take(struct intake *in, const struct clw_kafka_msg *msg);
/* Room for this many more records. */
size_t clw_intake_room(const struct intake *in);

#endif
