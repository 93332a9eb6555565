/* The guard: every reason the worker pauses (worker fault, open circuit, publish stuck,
 * credentials), the probes that end a pause, the circuit breaker's streak and the paused-time
 * clock. Its fields are read and written only by worker_guard.c, which calls only metrics and
 * log; the stages report to it, and it answers with return values and start modes. */
#ifndef CLW_WORKER_GUARD_H
#define CLW_WORKER_GUARD_H

#include <stddef.h>
#include <stdint.h>

#include "clw/config.h"
#include "clw/metrics.h"

struct guard {
    const struct clw_config *cfg; /* borrowed */
    struct clw_metrics *metrics;  /* borrowed */
    int fault_active;             /* a worker fault: every call held, one probes */
    char fault_reason[256];
    int circuit_open; /* consecutive transient failures of the service */
    int64_t circuit_since;
    int64_t probe_interval; /* open circuit: the wait before the next probe, growing */
    int publish_stuck;      /* a delivery failed with an error that will not go away */
    int creds_fault;        /* temporary credentials expired (or never came) */
    int probe_in_flight;
    int64_t next_probe_mono;
    int transient_streak;
    char streak_key[64];
    int streak_distinct;
    int64_t paused_total; /* ms spent paused, ended pauses */
    int64_t paused_since; /* -1 when not paused */
    int exit_requested;   /* a worker fault with api.on_worker_fault = exit */
    int unhold;           /* a worker fault cleared: held calls may go */
    unsigned generation;  /* changes whenever a pause starts or ends */
};

/* What the scheduler may start now. */
enum guard_start {
    GUARD_START_ALL = 0, /* no pause of the API: everything */
    GUARD_START_PROBE,   /* open circuit: one call, the head of the queue or the pool */
    GUARD_START_HELD,    /* worker fault: one held call */
    GUARD_START_NONE,    /* a pause, and no probe due */
};

/* An answer to a call, as the guard sees it. */
struct guard_answer {
    int action; /* an Attach/Detach call (only these count toward the circuit) */
    int probe;  /* the call was the probe */
    int fault;  /* a worker-fault class answer */
    int outage; /* a transient failure that says the service is in trouble (not throttling,
                   not a resource lock) */
    const char *const *instance_ids; /* what the attempt carried */
    size_t n_instances;
};

void clw_guard_init(struct guard *g, const struct clw_config *cfg, struct clw_metrics *metrics);

enum guard_start clw_guard_start_mode(const struct guard *g, int64_t now);
void clw_guard_probe_started(struct guard *g, int64_t now);
/* The probe in flight ended without an answer the guard should read (cancelled, or signed
 * again with new credentials): the next may go at once. */
void clw_guard_probe_lost(struct guard *g, int64_t now);
/* Reads an answer: clears a worker fault on a probe's answer that is not one; counts the
 * circuit breaker's streak; closes the circuit on a probe's good answer, or spaces the next
 * probe out. */
void clw_guard_answered(struct guard *g, const struct guard_answer *ga, int64_t now);

/* A worker fault (reason: what the API answered). Returns 1 when the worker must exit
 * (api.on_worker_fault = exit), 0 when it pauses until a probe passes. */
int clw_guard_fault(struct guard *g, const char *reason, int64_t now);
void clw_guard_publish_stuck(struct guard *g, int on, const char *why, int64_t now);
/* Temporary credentials expired unrefreshed (on), or a refresh succeeded (off). With
 * api.on_worker_fault = exit, on requests the exit. */
void clw_guard_creds_fault(struct guard *g, int on, const char *why, int64_t now);

/* 1 while any pause is active: no new records are taken. */
int clw_guard_paused(const struct guard *g);
/* 1 while the API may not be called at all (temporary credentials expired). */
int clw_guard_creds_blocked(const struct guard *g);
/* Paused time so far (ended pauses and the one under way). */
int64_t clw_guard_paused_total(const struct guard *g, int64_t now);
/* Milliseconds until a probe is due, at most max_ms. */
int64_t clw_guard_wait_ms(const struct guard *g, int64_t now, int64_t max_ms);
/* Changes whenever a pause starts or ends. */
unsigned clw_guard_generation(const struct guard *g);
/* 1 once after a worker fault cleared: the held calls may go. */
int clw_guard_take_unhold(struct guard *g);
int clw_guard_exit_requested(const struct guard *g);

#endif
