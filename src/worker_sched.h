/* The scheduler: the per-instance gate, the pool of ready jobs grouped by coalescing key, the
 * queue of formed calls, held and waiting calls, retry timers, the rate limiter and the
 * in-flight cap. It is told what it may start (the guard's start mode) and never reads a pause
 * flag. Every field below, and the job and call slices named for it, are written only by
 * worker_sched.c. */
#ifndef CLW_WORKER_SCHED_H
#define CLW_WORKER_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "clw/api.h"
#include "clw/config.h"
#include "clw/creds.h"
#include "clw/dlist.h"
#include "clw/gate.h"
#include "clw/http.h"
#include "clw/metrics.h"
#include "clw/ratelimit.h"
#include "clw/strtab.h"
#include "clw/timers.h"
#include "worker_callobj.h"
#include "worker_guard.h"
#include "worker_job.h"

/* Ready jobs with one coalescing key, oldest first. */
struct pool_group {
    struct clw_strtab_node node; /* first: a node is its group */
    struct clw_dlist jobs;       /* oldest first (job->sched.link) */
    size_t n_instances;
    int64_t since;         /* when its oldest job became ready (linger) */
    struct clw_dlink link; /* the scheduler's order of groups */
    char key[];
};

struct sched {
    struct clw_gate *gate;
    struct clw_strtab groups; /* key -> struct pool_group */
    struct clw_dlist order;   /* groups with ready jobs, in order of their oldest */
    size_t ready;             /* jobs in the pool */
    struct clw_dlist queued;  /* formed calls waiting for a slot (front first) */
    struct clw_dlist held;    /* calls parked by a worker fault */
    struct clw_dlist untimed; /* calls whose backoff timer could not be armed */
    struct clw_timers timers; /* calls in backoff */
    struct clw_ratelimit *rl;
    size_t running;                /* calls in flight */
    int64_t rate_wait_until;       /* nothing could start before this (rate limit), 0 none */
    const struct clw_config *cfg;  /* borrowed */
    const struct clw_api *api;     /* borrowed: action names for the rate limiter's keys */
    const struct clw_creds *creds; /* borrowed: the principal of the rate limiter's keys */
    struct clw_http *http;         /* borrowed: cancels a call nobody waits for */
    struct guard *guard;           /* borrowed: a cancelled probe */
    struct job_queue *events;      /* borrowed: where job events are posted */
};

/* seed: the rate limiter's random draws (each process its own). */
int clw_sched_init(struct sched *s, const struct clw_config *cfg, const struct clw_api *api,
                   const struct clw_creds *creds, struct clw_http *http, struct guard *guard,
                   struct job_queue *events, uint64_t seed, char *err, size_t errlen);
void clw_sched_fini(struct sched *s);

/* Enters the gate; posts JEV_UNGATED at once or later. Returns 0, -1 when out of memory. */
int clw_sched_submit(struct sched *s, struct job *job);
/* A job that holds its instances joins the pool. Returns 0, -1 when out of memory (it is then
 * in no group: never started, redone after the restart). */
int clw_sched_pool_add(struct sched *s, struct job *job);
/* The job's outcome is final: it leaves its call (if still in one) and the gate. */
void clw_sched_release(struct sched *s, struct job *job);
/* The job leaves the scheduler altogether (abandoned). */
void clw_sched_drop(struct sched *s, struct job *job);

/* The next call to start now in the given mode (the guard's), marked running, or NULL; a
 * probe (GUARD_START_PROBE or _HELD) has call->att.probe set by the caller. */
struct call *clw_sched_next(struct sched *s, enum guard_start mode, int64_t now);
/* A call's attempt could not start: it waits in front of the queue. */
void clw_sched_unstart(struct sched *s, struct call *call);
void clw_sched_queue(struct sched *s, struct call *call, int front);
void clw_sched_backoff(struct sched *s, struct call *call, int64_t due);
void clw_sched_hold(struct sched *s, struct call *call);
void clw_sched_unhold_all(struct sched *s);
/* The first held call, or NULL (a stop abandons their members). */
struct call *clw_sched_first_held(const struct sched *s);
/* waiting (in no list) waits for lone, the call confirming its error. */
void clw_sched_wait_confirm(struct sched *s, struct call *waiting, struct call *lone);
/* The call waiting for lone's answer, no longer linked to it, or NULL. */
struct call *clw_sched_take_waiting(struct sched *s, struct call *lone);
/* The answer to a running call arrived: the attempt has ended (members that left meanwhile
 * release their instances now). throttled: the answer was a throttling one (a fresh call
 * stays fresh). */
void clw_sched_answered(struct sched *s, struct call *call, int throttled);
/* Frees call if it has no members left and is not running. */
void clw_sched_end_if_empty(struct sched *s, struct call *call);

/* Serves due backoff timers. */
void clw_sched_tick(struct sched *s, int64_t now);
/* Milliseconds until the scheduler has something to do (0: now), at most max_ms. */
int64_t clw_sched_wait_ms(const struct sched *s, int64_t now, int64_t max_ms);
/* 1 when it could start a call now in mode ALL (a slot, work, no rate-limit wait). */
int clw_sched_startable(const struct sched *s);
/* The rate limiter's key of a call. */
void clw_sched_rate_key(const struct sched *s, const struct call *call, char *key, size_t len);
/* This worker's share of the account's quota (api.quota): its assigned partitions over the
 * requests topic's partitions. */
void clw_sched_set_share(struct sched *s, double share, int64_t now);
/* The rate limiter's state per key, for the metrics (once a second). */
void clw_sched_report(const struct sched *s, struct clw_metrics *m, int64_t now);
/* Tells the rate limiter what the API answered a call. */
void clw_sched_rate_answer(struct sched *s, const struct call *call, int64_t now, int throttled,
                           int64_t retry_after_ms);

#endif
