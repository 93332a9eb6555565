/* The worker's stages wired together: the struct worker.c owns (the adapters and every stage),
 * and the entry points through which worker.c routes what the adapters report. Exposed for the
 * in-process test harness, which drives a worker the way the adapters would. Every field below
 * is written only by worker.c. */
#ifndef CLW_WORKER_STAGES_H
#define CLW_WORKER_STAGES_H

#include <stdint.h>

#include "clw/api.h"
#include "clw/config.h"
#include "clw/http.h"
#include "clw/httpd.h"
#include "clw/kafka.h"
#include "clw/metrics.h"
#include "clw/worker.h"
#include "worker_call.h"
#include "worker_creds.h"
#include "worker_flow.h"
#include "worker_guard.h"
#include "worker_intake.h"
#include "worker_part.h"
#include "worker_publish.h"
#include "worker_sched.h"
#include "worker_txn.h"
#include "worker_verdict.h"

struct worker {
    struct clw_config *cfg;
    const struct clw_worker_io *io;
    /* the adapters (owned) */
    struct clw_api *api;
    struct clw_kafka *kafka;
    struct clw_http *http;
    struct clw_metrics *metrics;
    struct clw_httpd *httpd;
    /* the stages (owned) */
    struct guard guard;
    struct credstage creds;
    struct parts parts;
    struct flow flow;
    struct sched sched;
    struct txn txn;
    struct publish pub;
    struct intake intake;
    struct verdict verdict;
    struct calls calls;
    int eos;        /* delivery.mode = exactly_once */
    int opened;     /* every stage was set up */
    int subscribed; /* the consumer joined (or tried to join) the group */
    int stopping;
    int64_t stop_since;    /* monotonic ms when the stop's drain began (0: none) */
    int64_t stop_deadline; /* stop_since + worker.shutdown_timeout_ms */
    int exit_code;
    int joined;
    int64_t last_consume; /* monotonic ms of the last consumer poll */
    int intake_more;      /* the last poll stopped at the intake limit: records may wait */
    int64_t next_housekeeping;
    unsigned guard_seen; /* the guard's generation the partitions' pauses follow */
};

/* Sets up every adapter and stage (the consumer does not subscribe). Returns 0, or -1 with err
 * (w->exit_code says whether it is a configuration error). */
int clw_worker_open(struct worker *w, struct clw_config *cfg, const struct clw_worker_io *io,
                    char *err, size_t errlen);
/* Tears down what clw_worker_open set up (leaving the group first when subscribed). */
void clw_worker_close(struct worker *w);

/* What the adapters report, routed as worker.c routes them in its loop (each ends with the job
 * events drained): a consumed record, an HTTP transfer's end, a delivery report. */
void clw_worker_take(struct worker *w, const struct clw_kafka_msg *msg);
void clw_worker_http_done(struct worker *w, void *opaque, const struct clw_http_response *resp);
void clw_worker_delivered(struct worker *w, void *opaque, enum clw_publish_err err,
                          const char *errstr);
/* The timers and the scheduler at now: backoffs due, republications due, calls started. */
void clw_worker_step(struct worker *w, int64_t now);
/* Abandons every job of every partition and forgets the partitions; clears a stop. */
void clw_worker_reset(struct worker *w);

#endif
