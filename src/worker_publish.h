/* Publishing: a final job's outcome encoded and produced (and its dead letter), delivery reports
 * read, records produced again until acknowledged. Every field below, and the job slice named for
 * it, are written only by worker_publish.c; what happens to a job is posted as an event. */
#ifndef CLW_WORKER_PUBLISH_H
#define CLW_WORKER_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include "clw/config.h"
#include "clw/kafka.h"
#include "clw/metrics.h"
#include "clw/timers.h"
#include "worker_guard.h"
#include "worker_job.h"
#include "worker_txn.h"

struct publish {
    struct clw_timers timers;     /* jobs waiting to publish again */
    struct clw_dlist untimed;     /* jobs whose republish timer could not be armed */
    size_t orphans;               /* jobs of forgotten partitions still waiting for a report */
    const struct clw_config *cfg; /* borrowed */
    struct clw_kafka *kafka;      /* borrowed */
    struct clw_metrics *metrics;  /* borrowed */
    struct txn *txn;              /* borrowed */
    struct guard *guard;          /* borrowed */
    struct job_queue *events;     /* borrowed */
};

void clw_publish_init(struct publish *pub, const struct clw_config *cfg, struct clw_kafka *kafka,
                      struct clw_metrics *metrics, struct txn *txn, struct guard *guard,
                      struct job_queue *events);
void clw_publish_fini(struct publish *pub);

/* Produces every record of the final job still to send (the first time: its outcome, and its
 * dead letter when it has one); posts JEV_PRODUCED, or JEV_UNPRODUCED and tries again later. */
void clw_publish_start(struct publish *pub, struct job *job);
/* Exactly-once: the job's transaction aborted; every record of it is produced again. */
void clw_publish_again(struct publish *pub, struct job *job);
/* Serves jobs whose records are due to be produced again (not while a transaction ends). */
void clw_publish_tick(struct publish *pub, int64_t now);
int64_t clw_publish_wait_ms(const struct publish *pub, int64_t now, int64_t max_ms);
/* A delivery report (routed from the Kafka adapter). */
void clw_publish_delivered(struct publish *pub, void *opaque, enum clw_publish_err err,
                           const char *errstr);
/* The job leaves publishing (abandoned). Returns 1 when records of it are still in flight: it
 * is then an orphan, freed by their reports (the caller must not free it). */
int clw_publish_drop(struct publish *pub, struct job *job);
size_t clw_publish_orphans(const struct publish *pub);

#endif
