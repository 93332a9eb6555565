/* Calls: starting an attempt (signed through the API client, sent by the HTTP adapter) and
 * taking its answer — parsed, classified, counted, told to the guard and the rate limiter —
 * to the verdict. Every field below, and the call slice named for it, are written only by
 * worker_call.c. */
#ifndef CLW_WORKER_CALL_H
#define CLW_WORKER_CALL_H

#include <stdint.h>

#include "clw/api.h"
#include "clw/config.h"
#include "clw/http.h"
#include "clw/metrics.h"
#include "worker_creds.h"
#include "worker_guard.h"
#include "worker_sched.h"
#include "worker_verdict.h"

struct calls {
    uint64_t rng;                 /* nonces */
    const struct clw_config *cfg; /* borrowed */
    struct clw_api *api;          /* borrowed */
    struct clw_http *http;        /* borrowed */
    struct clw_metrics *metrics;  /* borrowed */
    struct sched *sched;          /* borrowed */
    struct guard *guard;          /* borrowed */
    struct credstage *creds;      /* borrowed */
    struct verdict *verdict;      /* borrowed */
};

void clw_calls_init(struct calls *c, uint64_t seed, const struct clw_config *cfg,
                    struct clw_api *api, struct clw_http *http, struct clw_metrics *metrics,
                    struct sched *sched, struct guard *guard, struct credstage *creds,
                    struct verdict *verdict);

/* Starts calls while the scheduler hands them out in the guard's start mode (under a worker
 * fault or an open circuit, one probe at a time). */
void clw_calls_dispatch(struct calls *c, int64_t now);
/* The HTTP adapter finished call's attempt. */
void clw_calls_answered(struct calls *c, struct call *call, const struct clw_http_response *resp);

#endif
